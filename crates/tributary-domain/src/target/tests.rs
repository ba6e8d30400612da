use super::*;
use crate::testkit::{round_trips, step, when};
use serde_json::{Value, json};

pub(crate) struct Fixture {
    pub(crate) target: TargetId,
    pub(crate) org: OrgId,
    pub(crate) actor: String,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self {
            target: TargetId::new(),
            org: OrgId::new(),
            actor: format!("user:{}", uuid::Uuid::now_v7()),
        }
    }

    /// Command data for this target: ids, actor and time plus `extra`.
    pub(crate) fn data(&self, extra: Value) -> Value {
        let mut data = json!({
            "target_id": self.target,
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
            "name": "Exports",
            "kind": "csv",
            "config": { "path": "exports/docs.csv" },
        }))
    }

    pub(crate) fn created(&self) -> Option<TargetState> {
        step::<Target>(None, CREATE, self.create()).0
    }
}

fn code(result: Result<Decision<TargetEvent>, Rejection>) -> RejectionCode {
    result.unwrap_err().code
}

/// Every command and event type of the target, in one life; returns the final state.
pub(crate) fn full_lifecycle() -> Option<TargetState> {
    let f = Fixture::new();
    let credential = CredentialId::new();
    let (s, _) = step::<Target>(
        f.created(),
        UPDATE,
        f.data(json!({ "name": "Exports (all)", "credential_id": credential })),
    );
    let (s, _) = step::<Target>(s, DELETE, f.data(json!({})));
    s
}

#[test]
fn a_target_lives_and_is_deleted_for_good() {
    let s = full_lifecycle().unwrap();
    assert_eq!(s.status, TargetStatus::Deleted);
    assert!(s.config.is_empty(), "a deleted target keeps no config");
}

#[test]
fn create_keeps_what_it_was_given() {
    let f = Fixture::new();
    let mut data = f.create();
    data["name"] = json!("  Exports  ");
    let (s, _) = step::<Target>(None, CREATE, data);
    let s = s.unwrap();
    assert_eq!(s.name, "Exports", "names are trimmed");
    assert_eq!(s.kind, "csv");
    assert_eq!(s.config["path"], "exports/docs.csv");
    assert_eq!(s.credential_id, None);
    round_trips(Target::KIND, &f.target.to_string(), &s);
}

#[test]
fn creating_twice_is_idempotent_but_a_different_target_conflicts() {
    let f = Fixture::new();
    let s = f.created();
    let again = when::<Target>(s.as_ref(), CREATE, f.create()).unwrap();
    assert!(again.events.is_empty());
    let mut other = f.create();
    other["config"] = json!({ "path": "elsewhere.csv" });
    assert_eq!(
        code(when::<Target>(s.as_ref(), CREATE, other)),
        RejectionCode::Conflict
    );
}

#[test]
fn structure_is_checked_even_from_code() {
    let f = Fixture::new();
    for (field, value) in [
        ("kind", json!("Not-A-Kind")),
        ("name", json!("   ")),
        (
            "config",
            json!({ "blob": "x".repeat(crate::checks::COMPONENT_CONFIG_MAX_BYTES) }),
        ),
    ] {
        let mut data = f.create();
        data[field] = value;
        // Callers in code skip the schema; the aggregate refuses on its own.
        let command = Target::parse_command(CREATE, data).unwrap();
        let rejection = Target::decide(None, &command).unwrap_err();
        assert_eq!(rejection.code, RejectionCode::Invalid, "{field}");
    }
}

#[test]
fn updates_are_partial_and_say_what_changed() {
    let f = Fixture::new();
    let credential = CredentialId::new();
    let (s, d) = step::<Target>(
        f.created(),
        UPDATE,
        f.data(json!({ "credential_id": credential })),
    );
    let TargetEvent::Updated(e) = &d.events[0] else {
        panic!("{d:?}")
    };
    assert_eq!(e.changed, ["credential_id"]);
    assert_eq!(
        e.name, "Exports",
        "unchanged fields are carried as they are"
    );
    assert_eq!(s.as_ref().unwrap().credential_id, Some(credential));

    // null detaches the credential; leaving it out keeps it.
    let (kept, _) = step::<Target>(s.clone(), UPDATE, f.data(json!({ "name": "Renamed" })));
    assert_eq!(kept.unwrap().credential_id, Some(credential));
    let (s, _) = step::<Target>(s, UPDATE, f.data(json!({ "credential_id": null })));
    assert_eq!(s.as_ref().unwrap().credential_id, None);

    // No change, no event.
    let same = when::<Target>(s.as_ref(), UPDATE, f.data(json!({ "name": "Exports" }))).unwrap();
    assert!(same.events.is_empty());
}

#[test]
fn another_orgs_target_answers_not_found() {
    let f = Fixture::new();
    let s = f.created();
    let mut rename = f.data(json!({ "name": "mine now" }));
    rename["org_id"] = json!(OrgId::new());
    assert_eq!(
        code(when::<Target>(s.as_ref(), UPDATE, rename)),
        RejectionCode::NotFound
    );
    let mut delete = f.data(json!({}));
    delete["org_id"] = json!(OrgId::new());
    assert_eq!(
        code(when::<Target>(s.as_ref(), DELETE, delete)),
        RejectionCode::NotFound
    );
}

#[test]
fn deleted_is_final() {
    let f = Fixture::new();
    let (s, _) = step::<Target>(f.created(), DELETE, f.data(json!({})));
    assert_eq!(
        code(when::<Target>(
            s.as_ref(),
            UPDATE,
            f.data(json!({ "name": "back" }))
        )),
        RejectionCode::NotFound
    );
    assert_eq!(
        code(when::<Target>(s.as_ref(), DELETE, f.data(json!({})))),
        RejectionCode::NotFound
    );
    assert_eq!(
        code(when::<Target>(s.as_ref(), CREATE, f.create())),
        RejectionCode::Conflict,
        "a deleted id is not reused"
    );
}

#[test]
fn missing_targets_answer_not_found() {
    let f = Fixture::new();
    assert_eq!(
        code(when::<Target>(None, UPDATE, f.data(json!({ "name": "x" })))),
        RejectionCode::NotFound
    );
}
