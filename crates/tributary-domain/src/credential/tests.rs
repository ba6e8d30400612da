use super::*;
use crate::testkit::{round_trips, step, when};
use serde_json::{Value, json};

pub(crate) struct Fixture {
    pub(crate) credential: CredentialId,
    pub(crate) org: OrgId,
    pub(crate) actor: String,
}

pub(crate) fn sealed(version: u32, seed: char) -> Value {
    json!({ "sealed": format!("tv1.{version}.{}", seed.to_string().repeat(40)), "mask": "••••••••abcd" })
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self {
            credential: CredentialId::new(),
            org: OrgId::new(),
            actor: format!("user:{}", uuid::Uuid::now_v7()),
        }
    }

    /// Command data for this credential: ids, actor and time plus `extra`.
    pub(crate) fn data(&self, extra: Value) -> Value {
        let mut data = json!({
            "credential_id": self.credential,
            "org_id": self.org,
            "actor": self.actor,
            "at": "2030-01-01T00:00:00Z",
        });
        data.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        data
    }

    pub(crate) fn create(&self) -> Value {
        self.data(json!({
            "kind": "github_token",
            "name": "GitHub (acme)",
            "config": { "base_url": "https://api.github.com" },
            "secrets": { "token": sealed(1, 'a') },
        }))
    }

    pub(crate) fn created(&self) -> Option<CredentialState> {
        step::<Credential>(None, CREATE, self.create()).0
    }
}

fn code(result: Result<Decision<CredentialEvent>, Rejection>) -> RejectionCode {
    result.unwrap_err().code
}

/// Every command and event type of the credential, in one life; returns the final state.
pub(crate) fn full_lifecycle() -> Option<CredentialState> {
    let f = Fixture::new();
    let s = f.created();
    let (s, _) = step::<Credential>(s, UPDATE, f.data(json!({ "name": "GitHub (acme corp)" })));
    // Rotation settled by a passing test.
    let (s, _) = step::<Credential>(
        s,
        ROTATE,
        f.data(json!({ "secrets": { "token": sealed(1, 'b') } })),
    );
    let (s, d) = step::<Credential>(
        s,
        RECORD_TEST,
        f.data(json!({ "version": 2, "ok": true, "status": "ok", "message": "signed in", "identity": "octocat" })),
    );
    assert_eq!(d.events.len(), 2, "a passing pending version takes over");
    // Rotation canceled, then one confirmed without a test.
    let (s, _) = step::<Credential>(
        s,
        ROTATE,
        f.data(json!({ "secrets": { "token": sealed(1, 'c') } })),
    );
    let (s, _) = step::<Credential>(s, CANCEL_ROTATION, f.data(json!({ "version": 3 })));
    let (s, _) = step::<Credential>(
        s,
        ROTATE,
        f.data(json!({ "secrets": { "token": sealed(1, 'd') } })),
    );
    let (s, _) = step::<Credential>(s, CONFIRM_ROTATION, f.data(json!({ "version": 4 })));
    assert_eq!(
        s.as_ref().unwrap().version,
        4,
        "canceled version 3 is not reused"
    );
    let (s, _) = step::<Credential>(
        s,
        RECORD_REVEAL,
        f.data(json!({ "version": 4, "fields": ["token"], "client": "127.0.0.1" })),
    );
    let (s, _) = step::<Credential>(
        s,
        REENCRYPT,
        json!({
            "credential_id": f.credential, "org_id": f.org, "actor": "system:keeper",
            "at": "2030-01-02T00:00:00Z", "version": 4,
            "secrets": { "token": "tv1.2.dddddddddddddddddddddddd" },
        }),
    );
    let (s, _) = step::<Credential>(
        s,
        STORE_TOKENS,
        json!({
            "credential_id": f.credential, "org_id": f.org, "actor": "system:refresher",
            "at": "2030-01-03T00:00:00Z", "expected_version": 4,
            "secrets": { "token": sealed(2, 'e') }, "config": { "expires_at": "2030-01-03T01:00:00Z" },
        }),
    );
    let (s, _) = step::<Credential>(
        s,
        REQUIRE_REAUTHORIZATION,
        json!({
            "credential_id": f.credential, "org_id": f.org, "actor": "system:refresher",
            "at": "2030-01-04T00:00:00Z", "expected_version": 5, "reason": "invalid_grant",
        }),
    );
    let (s, _) = step::<Credential>(s, DELETE, f.data(json!({})));
    s
}

#[test]
fn a_credential_lives_through_every_command() {
    let s = full_lifecycle().unwrap();
    assert_eq!(s.status, CredentialStatus::Deleted);
    assert!(
        s.secrets.is_empty(),
        "a deleted credential keeps no ciphertext"
    );
}

#[test]
fn create_keeps_sealed_secrets_and_starts_at_version_one() {
    let f = Fixture::new();
    let s = f.created().unwrap();
    assert_eq!(s.version, 1);
    assert_eq!(s.kind, "github_token");
    assert!(s.secrets["token"].sealed.starts_with("tv1.1."));
    round_trips(Credential::KIND, &f.credential.to_string(), &s);
}

#[test]
fn plaintext_secrets_are_refused() {
    let f = Fixture::new();
    let mut data = f.create();
    data["secrets"]["token"]["sealed"] = json!("ghp_plaintexttoken");
    // The schema refuses it on the topic; the aggregate refuses it from code too.
    assert!(crate::schema::validate(CREATE, &data).is_err());
    let command = Credential::parse_command(CREATE, data).unwrap();
    let rejection = Credential::decide(None, &command).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Invalid);
    assert!(!rejection.reason.contains("ghp_plaintexttoken"));
}

#[test]
fn creating_twice_is_idempotent_but_a_different_credential_conflicts() {
    let f = Fixture::new();
    let s = f.created();
    let again = when::<Credential>(s.as_ref(), CREATE, f.create()).unwrap();
    assert!(again.events.is_empty());
    let mut other = f.create();
    other["secrets"]["token"] = sealed(1, 'z');
    assert_eq!(
        code(when::<Credential>(s.as_ref(), CREATE, other)),
        RejectionCode::Conflict
    );
}

#[test]
fn another_orgs_credential_answers_not_found() {
    let f = Fixture::new();
    let s = f.created();
    let mut rename = f.data(json!({ "name": "mine now" }));
    rename["org_id"] = json!(OrgId::new());
    assert_eq!(
        code(when::<Credential>(s.as_ref(), UPDATE, rename)),
        RejectionCode::NotFound
    );
}

#[test]
fn a_rotation_keeps_the_previous_secrets_until_it_passes() {
    let f = Fixture::new();
    let (s, _) = step::<Credential>(
        f.created(),
        ROTATE,
        f.data(json!({ "secrets": { "token": sealed(1, 'b') } })),
    );
    let state = s.clone().unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(state.secrets["token"].sealed, sealed(1, 'a')["sealed"]);
    assert_eq!(state.pending.as_ref().unwrap().version, 2);

    // A failing test records the result and changes nothing else.
    let (s, d) = step::<Credential>(
        s,
        RECORD_TEST,
        f.data(
            json!({ "version": 2, "ok": false, "status": "unauthorized", "message": "rejected" }),
        ),
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(s.as_ref().unwrap().version, 1);

    // Confirming a version that is not pending is a conflict.
    assert_eq!(
        code(when::<Credential>(
            s.as_ref(),
            CONFIRM_ROTATION,
            f.data(json!({ "version": 3 }))
        )),
        RejectionCode::Conflict
    );
    let (s, _) = step::<Credential>(s, CONFIRM_ROTATION, f.data(json!({ "version": 2 })));
    let s = s.unwrap();
    assert_eq!(s.version, 2);
    assert_eq!(s.secrets["token"].sealed, sealed(1, 'b')["sealed"]);
    assert!(s.pending.is_none());
}

#[test]
fn a_test_of_a_stale_version_is_refused() {
    let f = Fixture::new();
    let s = f.created();
    assert_eq!(
        code(when::<Credential>(
            s.as_ref(),
            RECORD_TEST,
            f.data(json!({ "version": 7, "ok": true, "status": "ok", "message": "" }))
        )),
        RejectionCode::Conflict
    );
}

#[test]
fn reencryption_moves_ciphertext_and_keeps_masks() {
    let f = Fixture::new();
    let s = f.created();
    let (s, _) = step::<Credential>(
        s,
        REENCRYPT,
        f.data(json!({ "version": 1, "secrets": { "token": "tv1.2.moved" } })),
    );
    let s = s.unwrap();
    assert_eq!(s.secrets["token"].sealed, "tv1.2.moved");
    assert_eq!(s.secrets["token"].mask, "••••••••abcd");
    // A field set that does not match is refused.
    assert_eq!(
        code(when::<Credential>(
            Some(&s),
            REENCRYPT,
            f.data(json!({ "version": 1, "secrets": { "other": "tv1.2.x" } }))
        )),
        RejectionCode::Conflict
    );
}

#[test]
fn a_refresh_that_lost_a_race_is_refused() {
    let f = Fixture::new();
    let s = f.created();
    let store = |expected: u32| {
        f.data(json!({
            "expected_version": expected,
            "secrets": { "access_token": sealed(1, 'x') },
            "config": { "expires_at": "2030-01-01T01:00:00Z" },
        }))
    };
    let (s, _) = step::<Credential>(s, STORE_TOKENS, store(1));
    let state = s.clone().unwrap();
    assert_eq!(state.version, 2);
    assert_eq!(state.config["expires_at"], "2030-01-01T01:00:00Z");
    assert_eq!(
        state.config["base_url"], "https://api.github.com",
        "config is merged"
    );
    assert_eq!(
        code(when::<Credential>(s.as_ref(), STORE_TOKENS, store(1))),
        RejectionCode::Conflict
    );
    // A stale invalid_grant does not flag a credential that was refreshed meanwhile.
    assert_eq!(
        code(when::<Credential>(
            s.as_ref(),
            REQUIRE_REAUTHORIZATION,
            f.data(json!({ "expected_version": 1, "reason": "invalid_grant" }))
        )),
        RejectionCode::Conflict
    );
}

#[test]
fn actors_are_people_keys_or_tributary_roles() {
    assert!(validate_actor("system:refresher").is_ok());
    assert!(validate_actor(&format!("key:{}", uuid::Uuid::now_v7())).is_ok());
    for bad in ["system:", "system:Root", "root", "user:nope"] {
        assert!(validate_actor(bad).is_err(), "{bad}");
    }
}

#[test]
fn deleted_credentials_refuse_everything() {
    let f = Fixture::new();
    let (s, _) = step::<Credential>(f.created(), DELETE, f.data(json!({})));
    assert_eq!(
        code(when::<Credential>(
            s.as_ref(),
            RECORD_REVEAL,
            f.data(json!({ "version": 1, "fields": ["token"] }))
        )),
        RejectionCode::NotFound
    );
}

#[test]
fn reveal_names_only_existing_fields() {
    let f = Fixture::new();
    assert_eq!(
        code(when::<Credential>(
            f.created().as_ref(),
            RECORD_REVEAL,
            f.data(json!({ "version": 1, "fields": ["password"] }))
        )),
        RejectionCode::Invalid
    );
}
