use super::*;
use crate::testkit::{hash, ix, round_trips, sealed, step, when};
use crate::{email, user};

fn member_command(org: OrgId, user: UserId, by: UserId) -> Value {
    json!({ "org_id": org, "user_id": user, "actor": actor(by) })
}

fn change_role(org: OrgId, user: UserId, role: &str, by: UserId) -> Value {
    json!({ "org_id": org, "user_id": user, "role": role, "actor": actor(by) })
}

fn code(result: Result<Decision<OrgEvent>, Rejection>) -> RejectionCode {
    result.unwrap_err().code
}

#[test]
fn a_founder_becomes_the_first_admin_and_the_user_is_registered_next() {
    let (org, founder) = (OrgId::new(), UserId::new());
    let (state, decision) = step::<Org>(None, REGISTER, register_with_founder(org, founder));
    assert!(!decision.completes);
    assert_eq!(decision.events.len(), 2);
    assert_eq!(
        decision.events[1],
        OrgEvent::MemberAdded(MemberAdded {
            org_id: org,
            user_id: founder,
            email_index: ix("founder@acme.com"),
            role: Role::Admin,
            via: JoinedVia::Founder,
            invitation_id: None,
        })
    );
    let next = &decision.follow_ups[0];
    assert_eq!(
        (next.aggregate, next.command_type),
        ("user", user::REGISTER)
    );
    assert_eq!(next.key, founder.to_string());
    let state = state.unwrap();
    assert_eq!(state.active_admins(), 1);
    assert_eq!(state.members[&founder].role, Role::Admin);
}

#[test]
fn a_retried_founding_carries_on_to_the_user_without_events() {
    let (org, founder, state) = founded();
    let decision = when::<Org>(
        state.as_ref(),
        REGISTER,
        register_with_founder(org, founder),
    )
    .unwrap();
    assert!(decision.events.is_empty());
    assert!(!decision.completes);
    assert_eq!(decision.follow_ups[0].command_type, user::REGISTER);
}

#[test]
fn founding_an_existing_org_releases_the_slug_and_the_address() {
    let (org, _, state) = founded();
    let mut other = register_with_founder(org, UserId::new());
    other["slug"] = json!("other");
    let rejection = when::<Org>(state.as_ref(), REGISTER, other).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Conflict);
    let kinds: Vec<_> = rejection
        .follow_ups
        .iter()
        .map(|f| f.command_type)
        .collect();
    assert_eq!(kinds, vec![email::RELEASE, crate::slug::RELEASE]);
    assert_eq!(rejection.follow_ups[0].key, ix("founder@acme.com"));
}

#[test]
fn the_last_active_admin_cannot_be_demoted_deactivated_or_removed() {
    let (org, admin, state) = founded();
    let s = state.as_ref();
    assert_eq!(
        code(when::<Org>(
            s,
            CHANGE_ROLE,
            change_role(org, admin, "curator", admin)
        )),
        RejectionCode::LastAdmin
    );
    assert_eq!(
        code(when::<Org>(
            s,
            DEACTIVATE_MEMBER,
            member_command(org, admin, admin)
        )),
        RejectionCode::LastAdmin
    );
    assert_eq!(
        code(when::<Org>(
            s,
            REMOVE_MEMBER,
            member_command(org, admin, admin)
        )),
        RejectionCode::LastAdmin
    );
}

#[test]
fn a_deactivated_admin_does_not_count() {
    let (org, first, state) = founded();
    let second = UserId::new();
    let state = with_member(state, second, "second@acme.com", Role::Admin);
    let (state, _) = step::<Org>(state, DEACTIVATE_MEMBER, member_command(org, second, first));
    assert_eq!(state.as_ref().unwrap().active_admins(), 1);
    assert_eq!(
        code(when::<Org>(
            state.as_ref(),
            CHANGE_ROLE,
            change_role(org, first, "member", first)
        )),
        RejectionCode::LastAdmin
    );
    // Once reactivated, the first admin may step down.
    let (state, decision) =
        step::<Org>(state, REACTIVATE_MEMBER, member_command(org, second, first));
    assert_eq!(decision.events.len(), 1);
    let (state, decision) = step::<Org>(
        state,
        CHANGE_ROLE,
        change_role(org, first, "member", second),
    );
    assert_eq!(
        decision.events,
        vec![OrgEvent::MemberRoleChanged(MemberRoleChanged {
            org_id: org,
            user_id: first,
            from: Role::Admin,
            to: Role::Member,
            actor: Some(actor(second)),
        })]
    );
    assert_eq!(state.unwrap().members[&first].role, Role::Member);
}

#[test]
fn with_another_active_admin_an_admin_can_be_removed() {
    let (org, first, state) = founded();
    let second = UserId::new();
    let state = with_member(state, second, "second@acme.com", Role::Admin);
    let (state, decision) = step::<Org>(state, REMOVE_MEMBER, member_command(org, first, second));
    assert_eq!(decision.events.len(), 1);
    let state = state.unwrap();
    assert!(!state.members.contains_key(&first));
    assert!(state.is_last_active_admin(&second));
}

#[test]
fn members_are_deactivated_and_reactivated_once() {
    let (org, admin, state) = founded();
    let bob = UserId::new();
    let state = with_member(state, bob, "bob@acme.com", Role::Member);
    let (state, decision) = step::<Org>(state, DEACTIVATE_MEMBER, member_command(org, bob, admin));
    assert_eq!(decision.events.len(), 1);
    assert!(!state.as_ref().unwrap().members[&bob].active);
    let again = when::<Org>(
        state.as_ref(),
        DEACTIVATE_MEMBER,
        member_command(org, bob, admin),
    );
    assert!(again.unwrap().events.is_empty());
    let (state, _) = step::<Org>(state, REACTIVATE_MEMBER, member_command(org, bob, admin));
    let again = when::<Org>(
        state.as_ref(),
        REACTIVATE_MEMBER,
        member_command(org, bob, admin),
    );
    assert!(again.unwrap().events.is_empty());
    assert!(state.unwrap().members[&bob].active);
}

#[test]
fn the_same_role_changes_nothing_and_strangers_are_not_found() {
    let (org, admin, state) = founded();
    let s = state.as_ref();
    assert!(
        when::<Org>(s, CHANGE_ROLE, change_role(org, admin, "admin", admin))
            .unwrap()
            .events
            .is_empty()
    );
    let stranger = UserId::new();
    for (ty, data) in [
        (CHANGE_ROLE, change_role(org, stranger, "member", admin)),
        (DEACTIVATE_MEMBER, member_command(org, stranger, admin)),
        (REACTIVATE_MEMBER, member_command(org, stranger, admin)),
        (REMOVE_MEMBER, member_command(org, stranger, admin)),
    ] {
        assert_eq!(
            code(when::<Org>(s, ty, data)),
            RejectionCode::NotFound,
            "{ty}"
        );
    }
}

#[test]
fn commands_on_a_deleted_org_are_not_found() {
    let (org, admin, state) = founded();
    let (state, _) = step::<Org>(state, DELETE, json!({ "org_id": org }));
    let s = state.as_ref();
    assert_eq!(
        code(when::<Org>(
            s,
            CHANGE_ROLE,
            change_role(org, admin, "member", admin)
        )),
        RejectionCode::NotFound
    );
    let invite = json!({
        "org_id": org,
        "invitation_id": crate::InvitationId::new(),
        "email_index": ix("bob@acme.com"),
        "email": sealed("bob@acme.com"),
        "role": "member",
        "token_hash": hash('a'),
        "expires_at": "2030-01-08T00:00:00Z",
    });
    assert_eq!(
        code(when::<Org>(s, INVITE, invite)),
        RejectionCode::NotFound
    );
    // A sign-up refused because the org is gone gives its address back.
    let join = json!({
        "org_id": org,
        "user_id": UserId::new(),
        "email_index": ix("bob@acme.com"),
        "email_domain": "acme.com",
        "new_user": new_user(),
    });
    let rejection = when::<Org>(s, JOIN_BY_DOMAIN, join).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::NotFound);
    assert_eq!(rejection.follow_ups[0].command_type, email::RELEASE);
}

#[test]
fn actors_must_name_a_user_or_a_key() {
    let (org, admin, state) = founded();
    let mut data = change_role(org, admin, "admin", admin);
    data["actor"] = json!("root");
    assert!(crate::schema::validate(CHANGE_ROLE, &data).is_err());
    let command = Org::parse_command(CHANGE_ROLE, data).unwrap();
    assert_eq!(
        Org::decide(state.as_ref(), &command).unwrap_err().code,
        RejectionCode::Invalid
    );
}

#[test]
fn the_org_state_round_trips_with_members_invitations_domains_and_keys() {
    let (org, admin, state) = founded();
    let state = with_member(state, UserId::new(), "bob@acme.com", Role::Curator);
    let (state, _) = step::<Org>(
        state,
        INVITE,
        json!({
            "org_id": org,
            "invitation_id": crate::InvitationId::new(),
            "email_index": ix("carol@acme.com"),
            "email": sealed("carol@acme.com"),
            "role": "member",
            "token_hash": hash('c'),
            "expires_at": "2030-01-08T00:00:00Z",
            "actor": actor(admin),
        }),
    );
    let (state, _) = step::<Org>(
        state,
        SET_ALLOWED_DOMAINS,
        json!({ "org_id": org, "domains": ["acme.com"] }),
    );
    let (state, _) = step::<Org>(
        state,
        CREATE_API_KEY,
        json!({
            "org_id": org,
            "key_id": crate::ApiKeyId::new(),
            "name": "CI",
            "role": "curator",
            "prefix": "trb_ab12",
            "secret_hash": hash('d'),
            "expires_at": "2031-01-01T00:00:00Z",
        }),
    );
    let state = state.unwrap();
    assert_eq!(
        (
            state.members.len(),
            state.invitations.len(),
            state.api_keys.len()
        ),
        (2, 1, 1)
    );
    round_trips("org", &org.to_string(), &state);
}

#[test]
fn snapshots_from_before_members_still_load() {
    let id = OrgId::new();
    let old = json!({ "id": id, "slug": "acme", "name": "Acme", "deleted": false });
    let state: OrgState = serde_json::from_value(old).unwrap();
    assert!(state.members.is_empty() && state.allowed_domains.is_empty());
}
