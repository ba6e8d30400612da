//! Given / when / then for the aggregates, through the path the processor takes: the
//! command's schema, `parse_command`, `decide`; every event and follow-up that comes out
//! is checked against its schema and its aggregate's routing.

use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection};
use crate::{email::Email, org::Org, schema, session::Session, slug::Slug, user::User};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Debug;

thread_local! {
    /// Every command and event type this test's thread produced or consumed.
    static SEEN: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

pub(crate) fn seen() -> BTreeSet<String> {
    SEEN.with(|s| s.borrow().clone())
}

fn saw(ty: &str) {
    SEEN.with(|s| s.borrow_mut().insert(ty.to_owned()));
}

pub(crate) fn given<A: Aggregate>(events: &[A::Event]) -> Option<A::State> {
    apply::<A>(None, events)
}

pub(crate) fn apply<A: Aggregate>(
    state: Option<A::State>,
    events: &[A::Event],
) -> Option<A::State> {
    events.iter().fold(state, |s, e| Some(A::evolve(s, e)))
}

/// Decides a command given as JSON, which must satisfy its schema.
pub(crate) fn when<A: Aggregate>(
    state: Option<&A::State>,
    ty: &str,
    data: serde_json::Value,
) -> Result<Decision<A::Event>, Rejection> {
    if let Err(e) = schema::validate(ty, &data) {
        panic!("test command does not satisfy its schema: {e}");
    }
    saw(ty);
    let command = A::parse_command(ty, data)?;
    let result = A::decide(state, &command);
    match &result {
        Ok(decision) => {
            for event in &decision.events {
                let ty = A::event_type(event);
                let data = serde_json::to_value(event).unwrap();
                if let Err(e) = schema::validate(ty, &data) {
                    panic!("{e}: {data}");
                }
                saw(ty);
            }
            decision.follow_ups.iter().for_each(check_follow_up);
            if !decision.completes {
                assert!(
                    !decision.follow_ups.is_empty(),
                    "a command handed on needs a follow-up"
                );
            }
        }
        Err(rejection) => rejection.follow_ups.iter().for_each(check_follow_up),
    }
    result
}

/// Decides and applies; panics on a rejection.
pub(crate) fn step<A: Aggregate>(
    state: Option<A::State>,
    ty: &str,
    data: serde_json::Value,
) -> (Option<A::State>, Decision<A::Event>)
where
    A::Event: Debug,
{
    let decision = when::<A>(state.as_ref(), ty, data).unwrap_or_else(|r| panic!("{ty}: {r}"));
    (apply::<A>(state, &decision.events), decision)
}

/// A follow-up must satisfy its schema, be a command of its aggregate, and be keyed by
/// what that aggregate takes as the target.
pub(crate) fn check_follow_up(f: &FollowUp) {
    if let Err(e) = schema::validate(f.command_type, &f.data) {
        panic!("follow-up {}: {e}", f.command_type);
    }
    match f.aggregate {
        "org" => routed::<Org>(f),
        "slug" => routed::<Slug>(f),
        "email" => routed::<Email>(f),
        "user" => routed::<User>(f),
        "session" => routed::<Session>(f),
        "credential" => routed::<crate::credential::Credential>(f),
        "target" => routed::<crate::target::Target>(f),
        "profile" => routed::<crate::profile::Profile>(f),
        "sync" => routed::<crate::sync::Sync>(f),
        other => panic!("no aggregate {other}"),
    }
}

fn routed<A: Aggregate>(f: &FollowUp) {
    assert!(
        A::COMMAND_TYPES.contains(&f.command_type),
        "{}",
        f.command_type
    );
    let command = A::parse_command(f.command_type, f.data.clone()).unwrap();
    assert_eq!(A::target(&command), f.key, "{}", f.command_type);
    assert_eq!(A::org_of(&command), f.org_id, "{}", f.command_type);
}

/// The follow-up as the next aggregate decides it.
pub(crate) fn follow<A: Aggregate>(
    state: Option<&A::State>,
    f: &FollowUp,
) -> Result<Decision<A::Event>, Rejection> {
    assert_eq!(f.aggregate, A::KIND);
    when::<A>(state, f.command_type, f.data.clone())
}

/// A state survives its snapshot, and the snapshot record satisfies its schema.
pub(crate) fn round_trips<S>(kind: &str, id: &str, state: &S)
where
    S: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let snapshot = serde_json::json!({ "aggregate": kind, "id": id, "version": 3, "state": state });
    schema::validate("tributary.snapshot.v1", &snapshot).unwrap();
    let text = serde_json::to_string(state).unwrap();
    let back: S = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, state);
    assert_eq!(
        serde_json::to_string(&back).unwrap(),
        text,
        "not deterministic"
    );
}

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A hash as the gateway would send it (hex SHA-256 of a token).
pub(crate) fn hash(seed: char) -> String {
    seed.to_string().repeat(64)
}

pub(crate) const PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

/// A stand-in for the vault's blind index of an address: the same shape, and derived
/// from the address so a test can name the index of "alice@acme.com".
pub(crate) fn ix(email: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    email.hash(&mut h);
    format!("ebi1_{:016x}{}", h.finish(), "0".repeat(48))
}

/// A stand-in for a value sealed by the vault: the shape the aggregates check.
pub(crate) fn sealed(plain: &str) -> String {
    let data: String = plain
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("tv1.1.{data}")
}

/// A sealed argon2id hash, as a sign-up sends it.
pub(crate) fn sealed_hash() -> String {
    sealed(PASSWORD_HASH)
}
