use super::*;
use crate::schema;
use crate::testkit::{PASSWORD_HASH, ix, round_trips, sealed, sealed_hash, step, when};
use serde_json::{Value, json};

fn register(user: UserId, email: &str) -> Value {
    json!({
        "user_id": user,
        "email_index": ix(email),
        "email": sealed(email),
        "name": sealed("Alice"),
        "password_hash": sealed_hash(),
        "org_id": OrgId::new(),
    })
}

#[test]
fn register_records_the_user_and_completes_the_sign_up() {
    let user = UserId::new();
    let (state, decision) = step::<User>(None, REGISTER, register(user, "alice@acme.com"));
    assert!(decision.completes);
    assert!(decision.follow_ups.is_empty());
    assert_eq!(
        decision.events,
        vec![UserEvent::Registered(UserRegistered {
            user_id: user,
            email_index: ix("alice@acme.com"),
            email: sealed("alice@acme.com"),
            name: sealed("Alice"),
            password_hash: sealed_hash(),
        })]
    );
    assert!(!state.unwrap().forgotten);
}

#[test]
fn a_retried_registration_is_done_and_another_address_conflicts() {
    let user = UserId::new();
    let (state, _) = step::<User>(None, REGISTER, register(user, "alice@acme.com"));
    let again = when::<User>(state.as_ref(), REGISTER, register(user, "alice@acme.com")).unwrap();
    assert!(again.events.is_empty() && again.completes);
    let other = when::<User>(state.as_ref(), REGISTER, register(user, "eve@acme.com"));
    assert_eq!(other.unwrap_err().code, RejectionCode::Conflict);
}

#[test]
fn rename_records_the_sealed_name() {
    let user = UserId::new();
    let (state, _) = step::<User>(None, REGISTER, register(user, "alice@acme.com"));
    let rename =
        json!({ "user_id": user, "name": sealed("Alice B"), "actor": format!("user:{user}") });
    let decision = when::<User>(state.as_ref(), RENAME, rename).unwrap();
    assert_eq!(
        decision.events,
        vec![UserEvent::Renamed(UserRenamed {
            user_id: user,
            name: sealed("Alice B"),
            actor: Some(format!("user:{user}")),
        })]
    );
    let plaintext = json!({ "user_id": user, "name": "Alice B" });
    assert!(schema::validate(RENAME, &plaintext).is_err());
    let command = User::parse_command(RENAME, plaintext).unwrap();
    assert_eq!(
        User::decide(state.as_ref(), &command).unwrap_err().code,
        RejectionCode::Invalid
    );
    let unknown = json!({ "user_id": UserId::new(), "name": sealed("X") });
    assert_eq!(
        when::<User>(None, RENAME, unknown).unwrap_err().code,
        RejectionCode::NotFound
    );
}

#[test]
fn forgetting_releases_the_address_once_and_ends_the_user() {
    let user = UserId::new();
    let (state, _) = step::<User>(None, REGISTER, register(user, "alice@acme.com"));
    let forget = json!({ "user_id": user, "actor": format!("user:{user}") });
    let (state, decision) = step::<User>(state, FORGET, forget.clone());
    assert_eq!(
        decision.events,
        vec![UserEvent::Forgotten(UserForgotten {
            user_id: user,
            email_index: ix("alice@acme.com"),
            actor: Some(format!("user:{user}")),
        })]
    );
    assert!(decision.completes);
    let release = &decision.follow_ups[0];
    assert_eq!(
        (release.aggregate, release.command_type),
        ("email", crate::email::RELEASE)
    );
    assert_eq!(release.key, ix("alice@acme.com"));
    assert!(state.as_ref().unwrap().forgotten);
    // Forgetting again changes nothing; the user can no longer be renamed or registered.
    assert!(
        when::<User>(state.as_ref(), FORGET, forget)
            .unwrap()
            .events
            .is_empty()
    );
    let rename = json!({ "user_id": user, "name": sealed("Zed") });
    assert_eq!(
        when::<User>(state.as_ref(), RENAME, rename)
            .unwrap_err()
            .code,
        RejectionCode::NotFound
    );
    let again = when::<User>(state.as_ref(), REGISTER, register(user, "alice@acme.com"));
    assert_eq!(again.unwrap_err().code, RejectionCode::NotFound);
    // An operator forgets with the CLI's actor; anything else is refused.
    let cli = json!({ "user_id": UserId::new(), "actor": "system:cli" });
    assert_eq!(
        when::<User>(None, FORGET, cli).unwrap_err().code,
        RejectionCode::NotFound
    );
    let bad = json!({ "user_id": user, "actor": "root" });
    assert!(schema::validate(FORGET, &bad).is_err());
    let command = User::parse_command(FORGET, bad).unwrap();
    assert_eq!(
        User::decide(state.as_ref(), &command).unwrap_err().code,
        RejectionCode::Invalid
    );
}

#[test]
fn only_argon2id_hashes_are_accepted() {
    let mut data = register(UserId::new(), "alice@acme.com");
    data["password_hash"] = json!("correct horse battery staple");
    assert!(schema::validate(REGISTER, &data).is_err());
    let command = User::parse_command(REGISTER, data).unwrap();
    assert_eq!(
        User::decide(None, &command).unwrap_err().code,
        RejectionCode::Invalid
    );
    assert!(validate_password_hash("$2b$12$bcrypt").is_err());
    assert!(validate_password_hash(PASSWORD_HASH).is_ok());
}

#[test]
fn state_and_events_round_trip() {
    let user = UserId::new();
    let (state, decision) = step::<User>(None, REGISTER, register(user, "alice@acme.com"));
    round_trips("user", &user.to_string(), &state.unwrap());
    let bytes = serde_json::to_vec(&decision.events[0]).unwrap();
    assert_eq!(
        UserEvent::decode(REGISTERED, &bytes).unwrap(),
        decision.events[0]
    );
    assert_eq!(decision.events[0].user_id(), user);
}
