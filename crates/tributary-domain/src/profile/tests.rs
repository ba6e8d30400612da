use super::*;
use crate::testkit::{round_trips, step, when};
use serde_json::{Value, json};

pub(crate) struct Fixture {
    pub(crate) profile: ProfileId,
    pub(crate) org: OrgId,
    pub(crate) actor: String,
    pub(crate) targets: Vec<TargetId>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self {
            profile: ProfileId::new(),
            org: OrgId::new(),
            actor: format!("user:{}", uuid::Uuid::now_v7()),
            targets: vec![TargetId::new(), TargetId::new()],
        }
    }

    /// Command data for this profile: ids, actor and time plus `extra`.
    pub(crate) fn data(&self, extra: Value) -> Value {
        let mut data = json!({
            "profile_id": self.profile,
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
            "name": "Handbook",
            "source": { "kind": "filesystem", "config": { "root": "/srv/handbook" } },
            "targets": self.targets,
            "schedule": { "interval_secs": 1800 },
        }))
    }

    pub(crate) fn created(&self) -> Option<ProfileState> {
        step::<Profile>(None, CREATE, self.create()).0
    }
}

fn code(result: Result<Decision<ProfileEvent>, Rejection>) -> RejectionCode {
    result.unwrap_err().code
}

fn rejected(state: Option<&ProfileState>, ty: &str, data: Value) -> Rejection {
    when::<Profile>(state, ty, data).unwrap_err()
}

/// Every command and event type of the profile, in one life; returns the final state.
pub(crate) fn full_lifecycle() -> Option<ProfileState> {
    let f = Fixture::new();
    let (s, _) = step::<Profile>(
        f.created(),
        UPDATE,
        f.data(json!({
            "schedule": { "cron": "0 */6 * * *", "jitter_secs": 120 },
            "credential_id": CredentialId::new(),
        })),
    );
    let (s, _) = step::<Profile>(s, PAUSE, f.data(json!({ "reason": "maintenance" })));
    let (s, _) = step::<Profile>(s, RESUME, f.data(json!({})));
    let (s, _) = step::<Profile>(s, DELETE, f.data(json!({})));
    s
}

#[test]
fn a_profile_lives_and_is_deleted_for_good() {
    let s = full_lifecycle().unwrap();
    assert_eq!(s.status, ProfileStatus::Deleted);
    assert!(s.schedule.is_none(), "a deleted profile is never due");
}

#[test]
fn create_fills_in_defaults() {
    let f = Fixture::new();
    let s = f.created().unwrap();
    assert_eq!(s.prune_interval_secs, DEFAULT_PRUNE_INTERVAL_SECS);
    assert_eq!(s.schedule, Some(Schedule::every(1800)));
    assert!(!s.paused);
    assert_eq!(s.targets, f.targets);
    round_trips(Profile::KIND, &f.profile.to_string(), &s);

    // Manual-only: no schedule at all.
    let manual = Fixture::new();
    let mut data = manual.create();
    data["schedule"] = json!(null);
    let (s, _) = step::<Profile>(None, CREATE, data);
    assert_eq!(s.unwrap().schedule, None);
}

#[test]
fn creating_twice_is_idempotent_but_a_different_profile_conflicts() {
    let f = Fixture::new();
    let s = f.created();
    assert!(
        when::<Profile>(s.as_ref(), CREATE, f.create())
            .unwrap()
            .events
            .is_empty()
    );
    let mut other = f.create();
    other["name"] = json!("Other");
    assert_eq!(
        code(when::<Profile>(s.as_ref(), CREATE, other)),
        RejectionCode::Conflict
    );
}

#[test]
fn structure_is_checked_even_from_code() {
    let f = Fixture::new();
    let t = TargetId::new();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("targets", json!([]), "1 to 20"),
        ("targets", json!([t, t]), "distinct"),
        (
            "targets",
            json!((0..21).map(|_| TargetId::new()).collect::<Vec<_>>()),
            "1 to 20",
        ),
        ("schedule", json!({ "interval_secs": 30 }), "interval_secs"),
        ("schedule", json!({ "cron": "61 * * * *" }), "cron"),
        (
            "schedule",
            json!({ "interval_secs": 60, "cron": "* * * * *" }),
            "exactly one",
        ),
        (
            "schedule",
            json!({ "interval_secs": 60, "jitter_secs": 7200 }),
            "jitter",
        ),
        ("prune_interval_secs", json!(60), "prune_interval_secs"),
        (
            "source",
            json!({ "kind": "Bad Kind", "config": {} }),
            "source.kind",
        ),
    ];
    for (field, value, says) in cases {
        let mut data = f.create();
        data[field] = value;
        // Callers in code skip the schema; the aggregate refuses on its own.
        let command = Profile::parse_command(CREATE, data).unwrap();
        let rejection = Profile::decide(None, &command).unwrap_err();
        assert_eq!(rejection.code, RejectionCode::Invalid, "{field}");
        assert!(rejection.reason.contains(says), "{field}: {rejection}");
    }
}

#[test]
fn the_schema_refuses_the_same_on_the_topic() {
    let f = Fixture::new();
    for (field, value) in [
        ("targets", json!([])),
        ("schedule", json!({ "interval_secs": 30 })),
        ("schedule", json!({ "cron": "* * *" })),
        (
            "schedule",
            json!({ "interval_secs": 60, "cron": "* * * * *" }),
        ),
        ("prune_interval_secs", json!(60)),
        ("prune_interval_secs", json!(-1)),
        ("prune_interval_secs", json!(40_000_000)),
    ] {
        let mut data = f.create();
        data[field] = value;
        assert!(crate::schema::validate(CREATE, &data).is_err(), "{field}");
    }
}

#[test]
fn a_prune_interval_of_zero_means_never() {
    let f = Fixture::new();
    let mut data = f.create();
    data["prune_interval_secs"] = json!(0);
    crate::schema::validate(CREATE, &data).expect("0 passes the schema");
    let (s, _) = step::<Profile>(None, CREATE, data);
    assert_eq!(s.as_ref().unwrap().prune_interval_secs, NEVER_PRUNE);
    let (s, d) = step::<Profile>(s, UPDATE, f.data(json!({ "prune_interval_secs": 3600 })));
    assert!(!d.events.is_empty(), "{d:?}");
    assert_eq!(s.unwrap().prune_interval_secs, 3600);
}

#[test]
fn updates_are_partial_and_say_what_changed() {
    let f = Fixture::new();
    let (s, d) = step::<Profile>(
        f.created(),
        UPDATE,
        f.data(json!({
            "source": { "kind": "filesystem", "config": { "root": "/srv/other" } },
            "prune_interval_secs": 86400,
        })),
    );
    let ProfileEvent::Updated(e) = &d.events[0] else {
        panic!("{d:?}")
    };
    assert_eq!(e.changed, ["source", "prune_interval_secs"]);
    assert_eq!(
        e.targets, f.targets,
        "unchanged fields are carried as they are"
    );
    // schedule null: manual-only from now on.
    let (s, _) = step::<Profile>(s, UPDATE, f.data(json!({ "schedule": null })));
    assert_eq!(s.as_ref().unwrap().schedule, None);
    // No change, no event.
    let same = when::<Profile>(s.as_ref(), UPDATE, f.data(json!({ "name": "Handbook" }))).unwrap();
    assert!(same.events.is_empty());
}

#[test]
fn the_source_kind_cannot_change() {
    let f = Fixture::new();
    let rejection = rejected(
        f.created().as_ref(),
        UPDATE,
        f.data(json!({ "source": { "kind": "web", "config": { "url": "https://example.com" } } })),
    );
    assert_eq!(rejection.code, RejectionCode::Invalid);
    assert!(
        rejection.reason.contains("create a new profile"),
        "{rejection}"
    );
}

#[test]
fn pause_and_resume_are_idempotent() {
    let f = Fixture::new();
    let (s, d) = step::<Profile>(f.created(), PAUSE, f.data(json!({})));
    assert_eq!(d.events.len(), 1);
    assert!(s.as_ref().unwrap().paused);
    let again = when::<Profile>(s.as_ref(), PAUSE, f.data(json!({}))).unwrap();
    assert!(again.events.is_empty());
    let (s, d) = step::<Profile>(s, RESUME, f.data(json!({})));
    assert_eq!(d.events.len(), 1);
    assert!(!s.as_ref().unwrap().paused);
    let again = when::<Profile>(s.as_ref(), RESUME, f.data(json!({}))).unwrap();
    assert!(again.events.is_empty());
}

#[test]
fn another_orgs_profile_answers_not_found() {
    let f = Fixture::new();
    let s = f.created();
    for ty in [UPDATE, PAUSE, RESUME, DELETE] {
        let mut data = f.data(json!({}));
        data["org_id"] = json!(OrgId::new());
        assert_eq!(
            code(when::<Profile>(s.as_ref(), ty, data)),
            RejectionCode::NotFound,
            "{ty}"
        );
    }
}

#[test]
fn deleted_is_final() {
    let f = Fixture::new();
    let (s, _) = step::<Profile>(f.created(), DELETE, f.data(json!({})));
    for ty in [UPDATE, PAUSE, RESUME, DELETE] {
        assert_eq!(
            code(when::<Profile>(s.as_ref(), ty, f.data(json!({})))),
            RejectionCode::NotFound,
            "{ty}"
        );
    }
    assert_eq!(
        code(when::<Profile>(s.as_ref(), CREATE, f.create())),
        RejectionCode::Conflict,
        "a deleted id is not reused"
    );
}
