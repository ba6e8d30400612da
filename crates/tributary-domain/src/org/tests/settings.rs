use super::*;
use crate::ApiKeyId;
use crate::testkit::{hash, ix, step, when};
use crate::{email, user};

fn domains(org: OrgId, list: &[&str]) -> Value {
    json!({ "org_id": org, "domains": list })
}

fn join(org: OrgId, user: UserId, address: &str, signing_up: bool) -> Value {
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    let mut data = json!({
        "org_id": org, "user_id": user, "email_index": ix(address), "email_domain": domain,
    });
    if signing_up {
        data["new_user"] = new_user();
    }
    data
}

#[test]
fn allowed_domains_are_normalized_deduplicated_and_sorted() {
    let (org, admin, state) = founded();
    let mut data = domains(org, &["Widgets.io", " acme.com", "ACME.com."]);
    data["actor"] = json!(actor(admin));
    let (state, decision) = step::<Org>(state, SET_ALLOWED_DOMAINS, data);
    assert_eq!(
        decision.events,
        vec![OrgEvent::AllowedDomainsSet(AllowedDomainsSet {
            org_id: org,
            domains: vec!["acme.com".into(), "widgets.io".into()],
            actor: Some(actor(admin)),
        })]
    );
    let same = domains(org, &["widgets.io", "acme.com"]);
    assert!(
        when::<Org>(state.as_ref(), SET_ALLOWED_DOMAINS, same)
            .unwrap()
            .events
            .is_empty()
    );
    let bad = domains(org, &["localhost"]);
    assert_eq!(
        when::<Org>(state.as_ref(), SET_ALLOWED_DOMAINS, bad)
            .unwrap_err()
            .code,
        RejectionCode::Invalid
    );
}

#[test]
fn an_allowed_domain_lets_a_new_user_join_as_member() {
    let (org, _, state) = founded();
    let (state, _) = step::<Org>(state, SET_ALLOWED_DOMAINS, domains(org, &["acme.com"]));
    let bob = UserId::new();
    let (state, decision) =
        step::<Org>(state, JOIN_BY_DOMAIN, join(org, bob, "bob@acme.com", true));
    assert!(!decision.completes);
    assert_eq!(
        decision.events,
        vec![OrgEvent::MemberAdded(MemberAdded {
            org_id: org,
            user_id: bob,
            email_index: ix("bob@acme.com"),
            role: Role::Member,
            via: JoinedVia::Domain,
            invitation_id: None,
        })]
    );
    assert_eq!(decision.follow_ups[0].command_type, user::REGISTER);
    // A retried sign-up carries on; anyone else with the same id is a member already.
    let again = when::<Org>(
        state.as_ref(),
        JOIN_BY_DOMAIN,
        join(org, bob, "bob@acme.com", true),
    )
    .unwrap();
    assert!(again.events.is_empty());
    assert_eq!(
        when::<Org>(
            state.as_ref(),
            JOIN_BY_DOMAIN,
            join(org, bob, "bob@acme.com", false)
        )
        .unwrap_err()
        .code,
        RejectionCode::Conflict
    );
}

#[test]
fn a_signed_in_user_joins_without_a_follow_up() {
    let (org, _, state) = founded();
    let (state, _) = step::<Org>(state, SET_ALLOWED_DOMAINS, domains(org, &["acme.com"]));
    let decision = when::<Org>(
        state.as_ref(),
        JOIN_BY_DOMAIN,
        join(org, UserId::new(), "bob@acme.com", false),
    )
    .unwrap();
    assert!(decision.completes);
    assert!(decision.follow_ups.is_empty());
}

#[test]
fn another_domain_is_not_allowed_and_gives_the_address_back() {
    let (org, _, state) = founded();
    let (state, _) = step::<Org>(state, SET_ALLOWED_DOMAINS, domains(org, &["acme.com"]));
    for address in ["eve@evil.com", "eve@sub.acme.com"] {
        let rejection = when::<Org>(
            state.as_ref(),
            JOIN_BY_DOMAIN,
            join(org, UserId::new(), address, true),
        )
        .unwrap_err();
        assert_eq!(rejection.code, RejectionCode::NotAllowed);
        assert_eq!(rejection.follow_ups[0].command_type, email::RELEASE);
        assert_eq!(rejection.follow_ups[0].key, ix(address));
    }
    // No domains at all: nobody joins by domain.
    let (fresh, _, fresh_state) = founded();
    let rejection = when::<Org>(
        fresh_state.as_ref(),
        JOIN_BY_DOMAIN,
        join(fresh, UserId::new(), "bob@acme.com", false),
    )
    .unwrap_err();
    assert_eq!(rejection.code, RejectionCode::NotAllowed);
    assert!(rejection.follow_ups.is_empty());
}

fn create_key(org: OrgId, key: ApiKeyId) -> Value {
    json!({
        "org_id": org,
        "key_id": key,
        "name": " CI pipeline ",
        "role": "curator",
        "prefix": "trb_ab12",
        "secret_hash": hash('e'),
    })
}

#[test]
fn api_keys_are_created_with_a_hash_and_revoked_once() {
    let (org, admin, state) = founded();
    let key = ApiKeyId::new();
    let (state, decision) = step::<Org>(state, CREATE_API_KEY, create_key(org, key));
    assert_eq!(
        decision.events,
        vec![OrgEvent::ApiKeyCreated(ApiKeyCreated {
            org_id: org,
            key_id: key,
            name: "CI pipeline".into(),
            role: Role::Curator,
            prefix: "trb_ab12".into(),
            secret_hash: hash('e'),
            expires_at: None,
            actor: None,
        })]
    );
    // The org keeps what it decides on; the hash is the read model's.
    let snapshot = serde_json::to_string(state.as_ref().unwrap()).unwrap();
    assert!(!snapshot.contains(&hash('e')));
    assert_eq!(
        when::<Org>(state.as_ref(), CREATE_API_KEY, create_key(org, key))
            .unwrap_err()
            .code,
        RejectionCode::Conflict
    );

    let revoke = json!({ "org_id": org, "key_id": key, "actor": actor(admin) });
    let (state, decision) = step::<Org>(state, REVOKE_API_KEY, revoke.clone());
    assert_eq!(decision.events.len(), 1);
    assert!(state.as_ref().unwrap().api_keys[&key].revoked);
    assert!(
        when::<Org>(state.as_ref(), REVOKE_API_KEY, revoke)
            .unwrap()
            .events
            .is_empty()
    );
    let unknown = json!({ "org_id": org, "key_id": ApiKeyId::new() });
    assert_eq!(
        when::<Org>(state.as_ref(), REVOKE_API_KEY, unknown)
            .unwrap_err()
            .code,
        RejectionCode::NotFound
    );
}

#[test]
fn a_key_secret_must_be_a_hash() {
    let (org, _, state) = founded();
    let mut data = create_key(org, ApiKeyId::new());
    data["secret_hash"] = json!("short");
    assert!(crate::schema::validate(CREATE_API_KEY, &data).is_err());
    let command = Org::parse_command(CREATE_API_KEY, data).unwrap();
    assert_eq!(
        Org::decide(state.as_ref(), &command).unwrap_err().code,
        RejectionCode::Invalid
    );
}
