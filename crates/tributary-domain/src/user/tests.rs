use super::*;
use crate::schema;
use crate::testkit::{PASSWORD_HASH, round_trips, step, when};
use serde_json::{Value, json};

fn register(user: UserId, email: &str) -> Value {
    json!({
        "user_id": user,
        "email": email,
        "name": " Alice ",
        "password_hash": PASSWORD_HASH,
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
            email: "alice@acme.com".into(),
            name: "Alice".into(),
            password_hash: PASSWORD_HASH.into(),
        })]
    );
    assert_eq!(state.unwrap().name, "Alice");
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
fn rename_changes_the_name_once() {
    let user = UserId::new();
    let (state, _) = step::<User>(None, REGISTER, register(user, "alice@acme.com"));
    let rename = json!({ "user_id": user, "name": "Alice B", "actor": format!("user:{user}") });
    let (state, decision) = step::<User>(state, RENAME, rename.clone());
    assert_eq!(
        decision.events,
        vec![UserEvent::Renamed(UserRenamed {
            user_id: user,
            name: "Alice B".into(),
            previous_name: "Alice".into(),
            actor: Some(format!("user:{user}")),
        })]
    );
    assert!(
        when::<User>(state.as_ref(), RENAME, rename)
            .unwrap()
            .events
            .is_empty()
    );
    let unknown = json!({ "user_id": UserId::new(), "name": "X" });
    assert_eq!(
        when::<User>(None, RENAME, unknown).unwrap_err().code,
        RejectionCode::NotFound
    );
}

#[test]
fn only_argon2id_hashes_are_accepted() {
    let mut data = register(UserId::new(), "alice@acme.com");
    data["password_hash"] = json!("correct horse battery staple");
    assert!(schema::validate(REGISTER, &data).is_err());
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
