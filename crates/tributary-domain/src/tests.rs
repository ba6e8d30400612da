//! Sign-up chains across aggregates, decided step by step as the processor would: each
//! follow-up goes to the next aggregate under the same command id (the processor copies
//! it), and only the last step completes, so the client's outcome is the chain's.

use crate::aggregate::{Aggregate, Decision, FollowUp, RejectionCode};
use crate::credential::Credential;
use crate::email::{self, Email, EmailState};
use crate::org::{self, Org, OrgState};
use crate::outcome::{CommandOutcome, OUTCOME_TYPE, OutcomeStatus};
use crate::schema::{self, SCHEMAS, SchemaKind};
use crate::session::{self, Session};
use crate::slug::{self, Slug, SlugState};
use crate::testkit::{apply, follow, hash, ix, sealed, sealed_hash, seen, step, when};
use crate::user::{self, User, UserState};
use crate::{ApiKeyId, CommandId, InvitationId, OrgId, Role, SessionId, UserId};
use serde_json::{Value, json};

fn claim(address: &str, user: UserId, then: Value) -> Value {
    json!({
        "email_index": ix(address),
        "email": sealed(address),
        "user_id": user,
        "name": sealed("Alice"),
        "password_hash": sealed_hash(),
        "then": then,
    })
}

fn only(decision: &Decision<impl Sized>) -> &FollowUp {
    assert_eq!(decision.follow_ups.len(), 1);
    &decision.follow_ups[0]
}

/// The states a chain leaves behind.
#[derive(Default)]
struct World {
    email: Option<EmailState>,
    slug: Option<SlugState>,
    org: Option<OrgState>,
    user: Option<UserState>,
}

/// email.claim(new_org) → org.create at the slug → org.register → user.register.
fn sign_up_with_new_org(w: &mut World, user: UserId, org: OrgId, address: &str) -> Vec<bool> {
    let then = json!({ "kind": "new_org", "org_id": org, "slug": "acme", "name": "Acme" });
    let d1 = when::<Email>(w.email.as_ref(), email::CLAIM, claim(address, user, then)).unwrap();
    w.email = apply::<Email>(w.email.take(), &d1.events);
    let to_slug = only(&d1);
    assert_eq!(
        (to_slug.aggregate, to_slug.command_type),
        ("slug", slug::CREATE_ORG)
    );

    let d2 = follow::<Slug>(w.slug.as_ref(), to_slug).unwrap();
    w.slug = apply::<Slug>(w.slug.take(), &d2.events);
    let to_org = only(&d2);
    assert_eq!(
        (to_org.aggregate, to_org.command_type),
        ("org", org::REGISTER)
    );
    assert_eq!(to_org.data["founder"]["email_index"], json!(ix(address)));
    assert_eq!(to_org.data["founder"]["email"], json!(sealed(address)));

    let d3 = follow::<Org>(w.org.as_ref(), to_org).unwrap();
    w.org = apply::<Org>(w.org.take(), &d3.events);
    let to_user = only(&d3);
    assert_eq!(
        (to_user.aggregate, to_user.command_type),
        ("user", user::REGISTER)
    );

    let d4 = follow::<User>(w.user.as_ref(), to_user).unwrap();
    w.user = apply::<User>(w.user.take(), &d4.events);
    assert!(d4.follow_ups.is_empty());
    vec![d1.completes, d2.completes, d3.completes, d4.completes]
}

#[test]
fn signing_up_with_a_new_org_runs_through_four_aggregates_and_completes_once() {
    let mut w = World::default();
    let (user, org) = (UserId::new(), OrgId::new());
    let completes = sign_up_with_new_org(&mut w, user, org, "alice@acme.com");
    assert_eq!(completes, vec![false, false, false, true]);
    assert_eq!(w.email.unwrap().user_id, Some(user));
    assert_eq!(w.slug.unwrap().org_id, Some(org));
    let org_state = w.org.unwrap();
    assert_eq!(org_state.members[&user].role, Role::Admin);
    assert_eq!(org_state.members[&user].email_index, ix("alice@acme.com"));
    let user_state = w.user.unwrap();
    assert_eq!(user_state.email_index, ix("alice@acme.com"));
    assert!(!user_state.forgotten);
}

#[test]
fn a_sign_up_retried_under_a_new_command_id_succeeds_again_without_events() {
    let mut w = World::default();
    let (user, org) = (UserId::new(), OrgId::new());
    sign_up_with_new_org(&mut w, user, org, "alice@acme.com");
    // Every step sees its own earlier work and carries on; nothing is released.
    let completes = sign_up_with_new_org(&mut w, user, org, "alice@acme.com");
    assert_eq!(completes, vec![false, false, false, true]);
    assert_eq!(w.email.unwrap().user_id, Some(user));
}

#[test]
fn a_taken_slug_refuses_the_sign_up_and_releases_the_address() {
    let mut w = World::default();
    sign_up_with_new_org(&mut w, UserId::new(), OrgId::new(), "first@acme.com");
    let bob = UserId::new();
    let then =
        json!({ "kind": "new_org", "org_id": OrgId::new(), "slug": "acme", "name": "Acme 2" });
    let (email_state, d1) = step::<Email>(None, email::CLAIM, claim("bob@acme.com", bob, then));
    let rejection = follow::<Slug>(w.slug.as_ref(), only(&d1)).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::SlugTaken);
    let release = &rejection.follow_ups[0];
    assert_eq!(
        (release.aggregate, release.key.as_str()),
        ("email", ix("bob@acme.com").as_str())
    );
    // The compensation frees the address for the next attempt.
    let done = follow::<Email>(email_state.as_ref(), release).unwrap();
    let email_state = apply::<Email>(email_state, &done.events);
    assert_eq!(email_state.unwrap().user_id, None);
}

#[test]
fn the_original_org_creation_without_a_founder_is_unchanged() {
    let org = OrgId::new();
    let create = json!({ "org_id": org, "slug": "acme", "name": "Acme" });
    let (_, d1) = step::<Slug>(None, slug::CREATE_ORG, create);
    let register = only(&d1);
    assert!(register.data.get("founder").is_none());
    let d2 = follow::<Org>(None, register).unwrap();
    assert!(d2.completes);
    assert!(d2.follow_ups.is_empty());
    // Without a founder, a taken slug has no address to give back.
    let state = apply::<Slug>(None, &d1.events);
    let rejection = when::<Slug>(
        state.as_ref(),
        slug::CREATE_ORG,
        json!({ "org_id": OrgId::new(), "slug": "acme", "name": "Other" }),
    )
    .unwrap_err();
    assert!(rejection.follow_ups.is_empty());
}

/// An org founded by alice@acme.com that lets acme.com addresses join, with an
/// invitation for carol@example.org (token hash 'c…').
fn org_for_joining() -> (World, OrgId, UserId, InvitationId) {
    let mut w = World::default();
    let (admin, org) = (UserId::new(), OrgId::new());
    sign_up_with_new_org(&mut w, admin, org, "alice@acme.com");
    let set = json!({ "org_id": org, "domains": ["acme.com"], "actor": format!("user:{admin}") });
    let (state, _) = step::<Org>(w.org.take(), org::SET_ALLOWED_DOMAINS, set);
    let invitation = InvitationId::new();
    let invite = json!({
        "org_id": org,
        "invitation_id": invitation,
        "email_index": ix("carol@example.org"), "email": sealed("carol@example.org"),
        "role": "curator",
        "token_hash": hash('c'),
        "expires_at": "2030-01-08T00:00:00Z",
        "actor": format!("user:{admin}"),
    });
    let (state, _) = step::<Org>(state, org::INVITE, invite);
    w.org = state;
    (w, org, admin, invitation)
}

#[test]
fn signing_up_by_domain_runs_email_org_user() {
    let (mut w, org, _, _) = org_for_joining();
    let bob = UserId::new();
    let then = json!({ "kind": "join_by_domain", "org_id": org, "email_domain": "acme.com" });
    let (_, d1) = step::<Email>(None, email::CLAIM, claim("bob@acme.com", bob, then));
    let d2 = follow::<Org>(w.org.as_ref(), only(&d1)).unwrap();
    w.org = apply::<Org>(w.org.take(), &d2.events);
    let d3 = follow::<User>(None, only(&d2)).unwrap();
    assert_eq!(
        (d1.completes, d2.completes, d3.completes),
        (false, false, true)
    );
    assert_eq!(w.org.unwrap().members[&bob].role, Role::Member);
}

#[test]
fn signing_up_from_a_domain_not_allowed_releases_the_address() {
    let (w, org, _, _) = org_for_joining();
    let eve = UserId::new();
    let then = json!({ "kind": "join_by_domain", "org_id": org, "email_domain": "evil.com" });
    let (email_state, d1) = step::<Email>(None, email::CLAIM, claim("eve@evil.com", eve, then));
    let rejection = follow::<Org>(w.org.as_ref(), only(&d1)).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::NotAllowed);
    let done = follow::<Email>(email_state.as_ref(), &rejection.follow_ups[0]).unwrap();
    assert_eq!(
        apply::<Email>(email_state, &done.events).unwrap().user_id,
        None
    );
}

#[test]
fn signing_up_by_invitation_runs_email_org_user() {
    let (mut w, org, _, invitation) = org_for_joining();
    let carol = UserId::new();
    let then = json!({
        "kind": "accept_invitation",
        "org_id": org,
        "invitation_id": invitation,
        "token_hash": hash('c'),
        "at": "2030-01-02T00:00:00Z",
    });
    let (_, d1) = step::<Email>(
        None,
        email::CLAIM,
        claim("carol@example.org", carol, then.clone()),
    );
    let d2 = follow::<Org>(w.org.as_ref(), only(&d1)).unwrap();
    w.org = apply::<Org>(w.org.take(), &d2.events);
    let d3 = follow::<User>(None, only(&d2)).unwrap();
    assert_eq!(
        (d1.completes, d2.completes, d3.completes),
        (false, false, true)
    );
    assert_eq!(w.org.as_ref().unwrap().members[&carol].role, Role::Curator);

    // Someone else signing up with the same invitation is refused and released.
    let mallory = UserId::new();
    let (_, d1) = step::<Email>(
        None,
        email::CLAIM,
        claim("carol2@example.org", mallory, then),
    );
    let rejection = follow::<Org>(w.org.as_ref(), only(&d1)).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::InvitationInvalid);
    assert_eq!(rejection.follow_ups[0].key, ix("carol2@example.org"));
}

/// One scenario touching every command and event type, so each has been produced by
/// the aggregates and validated against its schema at least once.
#[test]
fn every_command_and_event_type_is_exercised_and_valid() {
    let (mut w, org, admin, _) = org_for_joining();
    let by = format!("user:{admin}");
    let bob = UserId::new();
    let then = json!({ "kind": "join_by_domain", "org_id": org, "email_domain": "acme.com" });
    let (_, d) = step::<Email>(None, email::CLAIM, claim("bob@acme.com", bob, then));
    let d = follow::<Org>(w.org.as_ref(), only(&d)).unwrap();
    let mut state = apply::<Org>(w.org.take(), &d.events);
    let (user_state, _) = step::<User>(None, only(&d).command_type, only(&d).data.clone());
    step::<User>(
        user_state,
        user::RENAME,
        json!({ "user_id": bob, "name": sealed("Robert"), "org_id": org }),
    );

    let dave = UserId::new();
    let invitation = InvitationId::new();
    let org_steps: Vec<(&str, Value)> = vec![
        (org::RENAME, json!({ "org_id": org, "name": "Acme Inc" })),
        (
            org::CHANGE_ROLE,
            json!({ "org_id": org, "user_id": bob, "role": "admin", "actor": by }),
        ),
        (
            org::DEACTIVATE_MEMBER,
            json!({ "org_id": org, "user_id": bob, "actor": by }),
        ),
        (
            org::REACTIVATE_MEMBER,
            json!({ "org_id": org, "user_id": bob, "actor": by }),
        ),
        (
            org::INVITE,
            json!({
                "org_id": org, "invitation_id": invitation, "email_index": ix("dave@example.org"), "email": sealed("dave@example.org"), "role": "member",
                "token_hash": hash('d'), "expires_at": "2030-01-08T00:00:00Z",
            }),
        ),
        (
            org::ACCEPT_INVITATION,
            json!({
                "org_id": org, "invitation_id": invitation, "token_hash": hash('d'), "user_id": dave,
                "email_index": ix("dave@example.org"), "at": "2030-01-02T00:00:00Z",
            }),
        ),
        (
            org::REVOKE_INVITATION,
            json!({ "org_id": org, "invitation_id": InvitationId::new() }),
        ),
        (
            org::REMOVE_MEMBER,
            json!({ "org_id": org, "user_id": bob, "actor": by }),
        ),
        (
            org::CREATE_API_KEY,
            json!({
                "org_id": org, "key_id": ApiKeyId::new(), "name": "CI", "role": "member",
                "prefix": "trb_x", "secret_hash": hash('e'), "actor": by,
            }),
        ),
    ];
    for (ty, data) in org_steps {
        if ty == org::REVOKE_INVITATION {
            // Revoke a fresh one so the event is produced.
            let fresh = InvitationId::new();
            let invite = json!({
                "org_id": org, "invitation_id": fresh, "email_index": ix("erin@example.org"), "email": sealed("erin@example.org"),
                "role": "member", "token_hash": hash('f'), "expires_at": "2030-01-08T00:00:00Z",
            });
            state = step::<Org>(state, org::INVITE, invite).0;
            state = step::<Org>(state, ty, json!({ "org_id": org, "invitation_id": fresh })).0;
            continue;
        }
        let (next, decision) = step::<Org>(state, ty, data);
        assert!(!decision.events.is_empty(), "{ty} produced nothing");
        state = next;
    }
    let key = *state.as_ref().unwrap().api_keys.keys().next().unwrap();
    state = step::<Org>(
        state,
        org::REVOKE_API_KEY,
        json!({ "org_id": org, "key_id": key }),
    )
    .0;
    let (_, deleted) = step::<Org>(state, org::DELETE, json!({ "org_id": org }));
    let release_slug = only(&deleted);
    follow::<Slug>(w.slug.as_ref(), release_slug).unwrap();
    let release_email = email::release_follow_up(&ix("alice@acme.com"), admin, Some(org));
    follow::<Email>(w.email.as_ref(), &release_email).unwrap();

    let session = SessionId::new();
    let start = json!({
        "session_id": session, "user_id": admin, "org_id": org, "role": "admin",
        "token_hash": hash('a'), "expires_at": "2030-01-31T00:00:00Z", "at": "2030-01-01T00:00:00Z",
    });
    let refresh = |presented: char, next: char| {
        json!({
            "session_id": session, "presented_hash": hash(presented), "next_hash": hash(next),
            "expires_at": "2030-02-01T00:00:00Z", "at": "2030-01-02T00:00:00Z", "org_id": org,
        })
    };
    let (s, _) = step::<Session>(None, session::START, start);
    let (s, _) = step::<Session>(s, session::REFRESH, refresh('a', 'b'));
    let (revoked, _) = step::<Session>(s.clone(), session::REFRESH, refresh('a', 'c'));
    assert_eq!(revoked.unwrap().status, session::SessionStatus::Revoked);
    step::<Session>(
        s,
        session::END,
        json!({ "session_id": session, "org_id": org, "reason": "logout" }),
    );

    crate::credential::tests::full_lifecycle();
    crate::target::tests::full_lifecycle();
    crate::profile::tests::full_lifecycle();
    crate::sync::tests::full_lifecycle();

    let (user_state, _) = step::<User>(
        w.user.clone(),
        user::FORGET,
        json!({ "user_id": admin, "actor": "system:cli" }),
    );
    assert!(user_state.unwrap().forgotten);

    let seen = seen();
    let missing: Vec<_> = SCHEMAS
        .iter()
        .map(|(ty, _, _)| *ty)
        // Written by the processor itself, by the API (failed logins) and by the
        // deliverer (dead letters), not by a decision; tests/processor.rs and
        // tributary-log's dead_letter tests validate those records.
        .filter(|ty| {
            ![
                OUTCOME_TYPE,
                "tributary.dead_letter.recorded.v1",
                "tributary.dead_letter.redriven.v1",
                "tributary.snapshot.v1",
                crate::security::LOGIN_FAILED,
                crate::security::OAUTH_FAILED,
                crate::vault::DATA_KEY_CREATED,
                crate::vault::KEK_ROTATED,
                crate::vault::SHREDDED,
            ]
            .contains(ty)
        })
        .filter(|ty| !seen.contains(*ty))
        .collect();
    assert!(missing.is_empty(), "never exercised: {missing:?}");
}

#[test]
fn every_rejection_code_fits_the_outcome_schema() {
    for code in RejectionCode::ALL {
        let outcome = CommandOutcome {
            command_id: CommandId::new(),
            command_type: email::CLAIM.into(),
            status: OutcomeStatus::Rejected,
            aggregate: "email".into(),
            aggregate_id: Some("alice@acme.com".into()),
            aggregate_version: None,
            events: 0,
            code: Some(code),
            reason: Some("because".into()),
        };
        let data = serde_json::to_value(&outcome).unwrap();
        assert_eq!(data["code"], json!(code.as_str()));
        schema::validate(OUTCOME_TYPE, &data).unwrap();
    }
    let dead: Vec<_> = RejectionCode::ALL
        .into_iter()
        .filter(|c| c.is_dead_letter())
        .collect();
    assert_eq!(
        dead,
        vec![
            RejectionCode::Malformed,
            RejectionCode::UnknownType,
            RejectionCode::Invalid
        ]
    );
}

#[test]
fn every_command_type_has_a_schema_and_exactly_one_aggregate() {
    let handled: Vec<(&str, &str)> = [
        (Org::KIND, Org::COMMAND_TYPES),
        (Slug::KIND, Slug::COMMAND_TYPES),
        (Email::KIND, Email::COMMAND_TYPES),
        (User::KIND, User::COMMAND_TYPES),
        (Session::KIND, Session::COMMAND_TYPES),
        (Credential::KIND, Credential::COMMAND_TYPES),
        (
            crate::target::Target::KIND,
            crate::target::Target::COMMAND_TYPES,
        ),
        (
            crate::profile::Profile::KIND,
            crate::profile::Profile::COMMAND_TYPES,
        ),
        (crate::sync::Sync::KIND, crate::sync::Sync::COMMAND_TYPES),
    ]
    .into_iter()
    .flat_map(|(kind, types)| types.iter().map(move |t| (kind, *t)))
    .collect();
    for (kind, ty) in &handled {
        assert!(
            schema::is_known(ty, SchemaKind::Command),
            "{ty} has no schema"
        );
        let text: Value = serde_json::from_str(schema::schema_text(ty).unwrap()).unwrap();
        assert_eq!(
            text["x-tributary-topic"],
            json!(format!("{kind}.commands")),
            "{ty}"
        );
    }
    for (ty, kind, _) in SCHEMAS.iter() {
        if *kind == SchemaKind::Command {
            let owners = handled.iter().filter(|(_, t)| t == ty).count();
            assert_eq!(owners, 1, "{ty} is handled by {owners} aggregates");
        }
    }
    let kinds: Vec<_> = handled.iter().map(|(k, _)| *k).collect();
    for aggregate in crate::AGGREGATES {
        assert!(kinds.contains(aggregate), "{aggregate}");
    }
}

#[test]
fn formats_are_checked() {
    let mut start = json!({
        "session_id": SessionId::new(), "user_id": UserId::new(), "org_id": OrgId::new(),
        "role": "admin", "token_hash": hash('a'), "expires_at": "2030-01-31T00:00:00Z",
        "at": "2030-01-01T00:00:00Z",
    });
    schema::validate(session::START, &start).unwrap();
    start["at"] = json!("yesterday");
    assert!(schema::validate(session::START, &start).is_err());
}
