//! Given / when / then, with no I/O.

mod invitations;
mod members;
mod settings;

use super::*;

fn given(events: &[OrgEvent]) -> Option<OrgState> {
    events.iter().fold(None, |s, e| Some(Org::evolve(s, e)))
}

fn created(id: OrgId) -> OrgEvent {
    OrgEvent::Created(OrgCreated {
        org_id: id,
        slug: "acme".into(),
        name: "Acme".into(),
    })
}

#[test]
fn register_creates_a_new_org_with_a_trimmed_name() {
    let id = OrgId::new();
    let cmd = OrgCommand::Register(RegisterOrg {
        org_id: id,
        slug: "acme".into(),
        name: "  Acme  ".into(),
        founder: None,
        admin: None,
    });
    let decision = Org::decide(None, &cmd).unwrap();
    assert_eq!(decision.events, vec![created(id)]);
    assert!(decision.completes);
}

#[test]
fn register_of_an_existing_id_is_a_conflict_that_gives_the_new_slug_back() {
    let id = OrgId::new();
    let state = given(&[created(id)]);
    let cmd = OrgCommand::Register(RegisterOrg {
        org_id: id,
        slug: "other".into(),
        name: "Other".into(),
        founder: None,
        admin: None,
    });
    let rejection = Org::decide(state.as_ref(), &cmd).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Conflict);
    assert_eq!(rejection.follow_ups.len(), 1);
    assert_eq!(rejection.follow_ups[0].key, "other");
    assert_eq!(rejection.follow_ups[0].command_type, crate::slug::RELEASE);
}

#[test]
fn rename_to_the_same_name_changes_nothing() {
    let id = OrgId::new();
    let state = given(&[created(id)]);
    let cmd = OrgCommand::Rename(RenameOrg {
        org_id: id,
        name: "Acme".into(),
    });
    assert!(Org::decide(state.as_ref(), &cmd).unwrap().events.is_empty());
}

#[test]
fn rename_records_the_previous_name() {
    let id = OrgId::new();
    let state = given(&[created(id)]);
    let cmd = OrgCommand::Rename(RenameOrg {
        org_id: id,
        name: "Acme Inc".into(),
    });
    let events = Org::decide(state.as_ref(), &cmd).unwrap().events;
    assert_eq!(
        events,
        vec![OrgEvent::Renamed(OrgRenamed {
            org_id: id,
            name: "Acme Inc".into(),
            previous_name: "Acme".into()
        })]
    );
}

#[test]
fn commands_on_a_missing_or_deleted_org_are_not_found() {
    let id = OrgId::new();
    let delete = OrgCommand::Delete(DeleteOrg { org_id: id });
    assert_eq!(
        Org::decide(None, &delete).unwrap_err().code,
        RejectionCode::NotFound
    );
    let deleted = given(&[
        created(id),
        OrgEvent::Deleted(OrgDeleted {
            org_id: id,
            slug: "acme".into(),
        }),
    ]);
    assert_eq!(
        Org::decide(deleted.as_ref(), &delete).unwrap_err().code,
        RejectionCode::NotFound
    );
}

#[test]
fn delete_releases_the_slug() {
    let id = OrgId::new();
    let state = given(&[created(id)]);
    let decision = Org::decide(
        state.as_ref(),
        &OrgCommand::Delete(DeleteOrg { org_id: id }),
    )
    .unwrap();
    assert_eq!(decision.events.len(), 1);
    assert_eq!(decision.follow_ups[0].key, "acme");
}

#[test]
fn blank_or_overlong_names_are_invalid() {
    assert!(validate_name("   ").is_err());
    assert!(validate_name(&"x".repeat(201)).is_err());
    assert!(validate_name("a\u{0007}b").is_err());
    assert!(validate_name("Acme, Inc.").is_ok());
}

#[test]
fn slugs_are_lowercase_words_with_inner_hyphens() {
    for ok in ["a", "acme", "acme-inc", "a1"] {
        assert!(validate_slug(ok).is_ok(), "{ok}");
    }
    for bad in ["", "-acme", "acme-", "Acme", "ac me", &"a".repeat(64)] {
        assert!(validate_slug(bad).is_err(), "{bad}");
    }
}

#[test]
fn events_decode_by_type() {
    let id = OrgId::new();
    let bytes = serde_json::to_vec(&created(id)).unwrap();
    assert_eq!(OrgEvent::decode(CREATED, &bytes).unwrap(), created(id));
    assert!(OrgEvent::decode("tributary.org.nope.v1", &bytes).is_err());
}

// Fixtures shared by the member, invitation and settings tests.

use crate::testkit::{apply, ix, sealed, sealed_hash};
use crate::{Role, UserId};
use serde_json::{Value, json};

fn register_with_founder(org: OrgId, founder: UserId) -> Value {
    json!({
        "org_id": org,
        "slug": "acme",
        "name": "Acme",
        "founder": {
            "user_id": founder,
            "email_index": ix("founder@acme.com"),
            "email": sealed("founder@acme.com"),
            "name": sealed("Fran"),
            "password_hash": sealed_hash(),
        },
    })
}

/// An org founded by a sign-up: `(org, its founding admin, state)`.
fn founded() -> (OrgId, UserId, Option<OrgState>) {
    let (org, founder) = (OrgId::new(), UserId::new());
    let (state, _) =
        crate::testkit::step::<Org>(None, REGISTER, register_with_founder(org, founder));
    (org, founder, state)
}

fn with_member(state: Option<OrgState>, user: UserId, email: &str, role: Role) -> Option<OrgState> {
    let org_id = state.as_ref().unwrap().id;
    apply::<Org>(
        state,
        &[OrgEvent::MemberAdded(MemberAdded {
            org_id,
            user_id: user,
            email_index: ix(email),
            role,
            via: JoinedVia::Invitation,
            invitation_id: None,
        })],
    )
}

fn actor(user: UserId) -> String {
    format!("user:{user}")
}

fn new_user() -> Value {
    json!({ "email": sealed("bob@acme.com"), "name": sealed("Bob"), "password_hash": sealed_hash() })
}

#[test]
fn a_signed_in_user_creating_an_org_becomes_its_admin_and_the_command_completes() {
    let id = OrgId::new();
    let user = crate::UserId::new();
    let cmd = OrgCommand::Register(RegisterOrg {
        org_id: id,
        slug: "acme".into(),
        name: "Acme".into(),
        founder: None,
        admin: Some(crate::org::ExistingUser {
            user_id: user,
            email_index: ix("ada@example.com"),
        }),
    });
    let decision = Org::decide(None, &cmd).unwrap();
    assert!(decision.completes, "nothing to register: the user exists");
    assert!(decision.follow_ups.is_empty());
    assert_eq!(decision.events.len(), 2);
    let state = Org::evolve(
        Org::evolve(None, &decision.events[0]).into(),
        &decision.events[1],
    );
    assert_eq!(state.active_admins(), 1);
    assert!(state.members.contains_key(&user));
}
