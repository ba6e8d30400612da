//! The profile aggregate, keyed by the profile id: a connection of an org — a source
//! (connector kind and config), the credential it signs in with, the targets its
//! documents go to, its schedule and how often it is pruned.
//!
//! Like the target, it checks structure only (kind shape, config size, name, 1 to 20
//! distinct targets, the schedule, the prune interval) and the org binding. The API
//! checks the kind, the config against its schema, the credential and that every target
//! is a live target of the org before it sends a command (ADR 0012). Pausing stops
//! scheduled runs; pause and resume are idempotent. A deleted profile stays deleted.

mod schedule;
#[cfg(test)]
pub(crate) mod tests;

pub use schedule::{
    MAX_CRON_CHARS, MAX_INTERVAL_SECS, MAX_JITTER_SECS, MIN_INTERVAL_SECS, Schedule, ScheduledMode,
    parse_cron,
};

use crate::aggregate::{Aggregate, Decision, Rejection, RejectionCode, parse_data};
use crate::checks::{present, validate_component_config, validate_component_kind};
use crate::credential::validate_actor;
use crate::ids::{CredentialId, OrgId, ProfileId, TargetId};
use crate::org::validate_name;
use crate::schema::{SchemaEntry, SchemaKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub const CREATE: &str = "tributary.profile.create.v1";
pub const UPDATE: &str = "tributary.profile.update.v1";
pub const PAUSE: &str = "tributary.profile.pause.v1";
pub const RESUME: &str = "tributary.profile.resume.v1";
pub const DELETE: &str = "tributary.profile.delete.v1";

pub const CREATED: &str = "tributary.profile.created.v1";
pub const UPDATED: &str = "tributary.profile.updated.v1";
pub const PAUSED: &str = "tributary.profile.paused.v1";
pub const RESUMED: &str = "tributary.profile.resumed.v1";
pub const DELETED: &str = "tributary.profile.deleted.v1";

/// How often a profile is pruned when its creator does not say: every 7 days.
pub const DEFAULT_PRUNE_INTERVAL_SECS: u64 = 7 * 24 * 3600;
pub const MIN_PRUNE_INTERVAL_SECS: u64 = 3600;
/// The prune interval of a profile that is never pruned on a schedule (a prune can still
/// be asked for).
pub const NEVER_PRUNE: u64 = 0;
pub const MAX_TARGETS: usize = 20;
pub const MAX_REASON_CHARS: usize = 500;

/// The schemas of this aggregate's commands and events.
pub const SCHEMAS: &[SchemaEntry] = &[
    (
        CREATE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.profile.create.v1.json"),
    ),
    (
        UPDATE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.profile.update.v1.json"),
    ),
    (
        PAUSE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.profile.pause.v1.json"),
    ),
    (
        RESUME,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.profile.resume.v1.json"),
    ),
    (
        DELETE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.profile.delete.v1.json"),
    ),
    (
        CREATED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.profile.created.v1.json"),
    ),
    (
        UPDATED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.profile.updated.v1.json"),
    ),
    (
        PAUSED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.profile.paused.v1.json"),
    ),
    (
        RESUMED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.profile.resumed.v1.json"),
    ),
    (
        DELETED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.profile.deleted.v1.json"),
    ),
];

/// A connector kind's config (its schema is `schemas/connectors/<kind>.json`).
pub type Config = serde_json::Map<String, serde_json::Value>;

/// What a profile reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub kind: String,
    pub config: Config,
}

pub struct Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    Active,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub name: String,
    pub source: Source,
    pub credential_id: Option<CredentialId>,
    pub targets: Vec<TargetId>,
    /// `None`: runs only when asked.
    pub schedule: Option<Schedule>,
    pub prune_interval_secs: u64,
    pub paused: bool,
    pub status: ProfileStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateProfile {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub name: String,
    pub source: Source,
    #[serde(default)]
    pub credential_id: Option<CredentialId>,
    pub targets: Vec<TargetId>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Default [`DEFAULT_PRUNE_INTERVAL_SECS`].
    #[serde(default)]
    pub prune_interval_secs: Option<u64>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Changes what is given. `credential_id: null` detaches the credential and
/// `schedule: null` makes the profile manual-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateProfile {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its kind must stay the profile's kind; the config is replaced as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_id: Option<Option<CredentialId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetId>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub schedule: Option<Option<Schedule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_interval_secs: Option<u64>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseProfile {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Resume and delete carry the same fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRef {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProfileCommand {
    Create(CreateProfile),
    Update(UpdateProfile),
    Pause(PauseProfile),
    Resume(ProfileRef),
    Delete(ProfileRef),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileCreated {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub name: String,
    pub source: Source,
    pub credential_id: Option<CredentialId>,
    pub targets: Vec<TargetId>,
    pub schedule: Option<Schedule>,
    pub prune_interval_secs: u64,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// The profile as it is after the change (every field, so a reader needs no history),
/// and which fields changed: a scheduler re-plans on `schedule`, a worker may want a
/// full run after `source` changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdated {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub name: String,
    pub source: Source,
    pub credential_id: Option<CredentialId>,
    pub targets: Vec<TargetId>,
    pub schedule: Option<Schedule>,
    pub prune_interval_secs: u64,
    /// Of `name`, `source`, `credential_id`, `targets`, `schedule`,
    /// `prune_interval_secs`.
    pub changed: Vec<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePaused {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Resumed and deleted carry the same fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileMarked {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileEvent {
    Created(ProfileCreated),
    Updated(ProfileUpdated),
    Paused(ProfilePaused),
    Resumed(ProfileMarked),
    Deleted(ProfileMarked),
}

impl ProfileEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            CREATED => serde_json::from_slice(data).map(Self::Created),
            UPDATED => serde_json::from_slice(data).map(Self::Updated),
            PAUSED => serde_json::from_slice(data).map(Self::Paused),
            RESUMED => serde_json::from_slice(data).map(Self::Resumed),
            DELETED => serde_json::from_slice(data).map(Self::Deleted),
            other => Err(serde::de::Error::custom(format!(
                "unknown profile event type {other}"
            ))),
        }
    }

    pub fn profile_id(&self) -> ProfileId {
        self.ids().0
    }

    pub fn org_id(&self) -> OrgId {
        self.ids().1
    }

    fn ids(&self) -> (ProfileId, OrgId) {
        match self {
            Self::Created(e) => (e.profile_id, e.org_id),
            Self::Updated(e) => (e.profile_id, e.org_id),
            Self::Paused(e) => (e.profile_id, e.org_id),
            Self::Resumed(e) | Self::Deleted(e) => (e.profile_id, e.org_id),
        }
    }

    /// Who did it: `user:<uuid>`, `key:<uuid>` or `system:<role>`.
    pub fn actor(&self) -> &str {
        match self {
            Self::Created(e) => &e.actor,
            Self::Updated(e) => &e.actor,
            Self::Paused(e) => &e.actor,
            Self::Resumed(e) | Self::Deleted(e) => &e.actor,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Created(e) => e.at,
            Self::Updated(e) => e.at,
            Self::Paused(e) => e.at,
            Self::Resumed(e) | Self::Deleted(e) => e.at,
        }
    }
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::Invalid, reason)
}

fn validate_targets(targets: &[TargetId]) -> Result<(), Rejection> {
    if targets.is_empty() || targets.len() > MAX_TARGETS {
        return Err(invalid(format!(
            "a profile feeds 1 to {MAX_TARGETS} targets, not {}",
            targets.len()
        )));
    }
    let distinct: BTreeSet<_> = targets.iter().collect();
    if distinct.len() != targets.len() {
        return Err(invalid(
            "a profile's targets must be distinct; list each target once",
        ));
    }
    Ok(())
}

/// Whether `secs` is a prune interval a profile may have: [`NEVER_PRUNE`], or an hour
/// to a year.
pub fn prune_interval_ok(secs: u64) -> bool {
    secs == NEVER_PRUNE || (MIN_PRUNE_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&secs)
}

fn validate_prune(secs: u64) -> Result<(), Rejection> {
    if !prune_interval_ok(secs) {
        return Err(invalid(format!(
            "prune_interval_secs must be 0 (never) or between {MIN_PRUNE_INTERVAL_SECS} and \
             {MAX_INTERVAL_SECS}, not {secs}"
        )));
    }
    Ok(())
}

fn validate_source(source: &Source) -> Result<(), Rejection> {
    validate_component_kind("source.kind", &source.kind)?;
    validate_component_config("source.config", &source.config)
}

fn not_found(profile_id: ProfileId) -> Rejection {
    Rejection::new(
        RejectionCode::NotFound,
        format!("profile {profile_id} does not exist"),
    )
}

/// The live profile a command addresses. Another org's profile answers exactly like a
/// missing one.
fn live(
    state: Option<&ProfileState>,
    profile_id: ProfileId,
    org_id: OrgId,
) -> Result<&ProfileState, Rejection> {
    state
        .filter(|s| s.org_id == org_id && s.status == ProfileStatus::Active)
        .ok_or_else(|| not_found(profile_id))
}

fn command_ids(command: &ProfileCommand) -> (ProfileId, OrgId, &str) {
    match command {
        ProfileCommand::Create(c) => (c.profile_id, c.org_id, &c.actor),
        ProfileCommand::Update(c) => (c.profile_id, c.org_id, &c.actor),
        ProfileCommand::Pause(c) => (c.profile_id, c.org_id, &c.actor),
        ProfileCommand::Resume(c) | ProfileCommand::Delete(c) => (c.profile_id, c.org_id, &c.actor),
    }
}

fn create(
    state: Option<&ProfileState>,
    c: &CreateProfile,
) -> Result<Decision<ProfileEvent>, Rejection> {
    validate_name(&c.name)?;
    validate_source(&c.source)?;
    validate_targets(&c.targets)?;
    if let Some(schedule) = &c.schedule {
        schedule.validate()?;
    }
    let prune_interval_secs = c.prune_interval_secs.unwrap_or(DEFAULT_PRUNE_INTERVAL_SECS);
    validate_prune(prune_interval_secs)?;
    let created = ProfileCreated {
        profile_id: c.profile_id,
        org_id: c.org_id,
        name: c.name.trim().to_owned(),
        source: c.source.clone(),
        credential_id: c.credential_id,
        targets: c.targets.clone(),
        schedule: c.schedule.clone(),
        prune_interval_secs,
        actor: c.actor.clone(),
        at: c.at,
    };
    match state {
        None => Ok(Decision::done(vec![ProfileEvent::Created(created)])),
        // The same creation retried under a new command id.
        Some(s)
            if s.status == ProfileStatus::Active
                && s.org_id == created.org_id
                && s.name == created.name
                && s.source == created.source
                && s.credential_id == created.credential_id
                && s.targets == created.targets
                && s.schedule == created.schedule
                && s.prune_interval_secs == created.prune_interval_secs =>
        {
            Ok(Decision::done(Vec::new()))
        }
        Some(_) => Err(Rejection::new(
            RejectionCode::Conflict,
            format!(
                "profile {} already exists or existed; choose a new id",
                c.profile_id
            ),
        )),
    }
}

fn update(s: &ProfileState, c: &UpdateProfile) -> Result<Decision<ProfileEvent>, Rejection> {
    let name = match &c.name {
        Some(n) => {
            validate_name(n)?;
            n.trim().to_owned()
        }
        None => s.name.clone(),
    };
    let source = match &c.source {
        Some(source) => {
            validate_source(source)?;
            if source.kind != s.source.kind {
                return Err(invalid(format!(
                    "the source kind of profile {} is {} and cannot change; create a new \
                     profile for {}",
                    s.profile_id, s.source.kind, source.kind
                )));
            }
            source.clone()
        }
        None => s.source.clone(),
    };
    let targets = match &c.targets {
        Some(targets) => {
            validate_targets(targets)?;
            targets.clone()
        }
        None => s.targets.clone(),
    };
    let schedule = match &c.schedule {
        Some(Some(schedule)) => {
            schedule.validate()?;
            Some(schedule.clone())
        }
        Some(None) => None,
        None => s.schedule.clone(),
    };
    let prune_interval_secs = c.prune_interval_secs.unwrap_or(s.prune_interval_secs);
    validate_prune(prune_interval_secs)?;
    let credential_id = c.credential_id.unwrap_or(s.credential_id);
    let changed: Vec<String> = [
        ("name", name != s.name),
        ("source", source != s.source),
        ("credential_id", credential_id != s.credential_id),
        ("targets", targets != s.targets),
        ("schedule", schedule != s.schedule),
        (
            "prune_interval_secs",
            prune_interval_secs != s.prune_interval_secs,
        ),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(field, _)| field.to_owned())
    .collect();
    if changed.is_empty() {
        return Ok(Decision::done(Vec::new()));
    }
    Ok(Decision::done(vec![ProfileEvent::Updated(
        ProfileUpdated {
            profile_id: c.profile_id,
            org_id: c.org_id,
            name,
            source,
            credential_id,
            targets,
            schedule,
            prune_interval_secs,
            changed,
            actor: c.actor.clone(),
            at: c.at,
        },
    )]))
}

impl Aggregate for Profile {
    const KIND: &'static str = "profile";
    const COMMAND_TYPES: &'static [&'static str] = &[CREATE, UPDATE, PAUSE, RESUME, DELETE];

    type State = ProfileState;
    type Command = ProfileCommand;
    type Event = ProfileEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        match command_type {
            CREATE => parse_data(data).map(ProfileCommand::Create),
            UPDATE => parse_data(data).map(ProfileCommand::Update),
            PAUSE => parse_data(data).map(ProfileCommand::Pause),
            RESUME => parse_data(data).map(ProfileCommand::Resume),
            DELETE => parse_data(data).map(ProfileCommand::Delete),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the profile aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        command_ids(command).0.to_string()
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        Some(command_ids(command).1)
    }

    fn decide(
        state: Option<&ProfileState>,
        command: &ProfileCommand,
    ) -> Result<Decision<ProfileEvent>, Rejection> {
        validate_actor(command_ids(command).2)?;
        match command {
            ProfileCommand::Create(c) => create(state, c),
            ProfileCommand::Update(c) => update(live(state, c.profile_id, c.org_id)?, c),
            ProfileCommand::Pause(c) => {
                let s = live(state, c.profile_id, c.org_id)?;
                if let Some(reason) = &c.reason
                    && reason.chars().count() > MAX_REASON_CHARS
                {
                    return Err(invalid(format!(
                        "a pause reason has at most {MAX_REASON_CHARS} characters"
                    )));
                }
                if s.paused {
                    return Ok(Decision::done(Vec::new()));
                }
                Ok(Decision::done(vec![ProfileEvent::Paused(ProfilePaused {
                    profile_id: c.profile_id,
                    org_id: c.org_id,
                    reason: c.reason.clone(),
                    actor: c.actor.clone(),
                    at: c.at,
                })]))
            }
            ProfileCommand::Resume(c) => {
                let s = live(state, c.profile_id, c.org_id)?;
                if !s.paused {
                    return Ok(Decision::done(Vec::new()));
                }
                Ok(Decision::done(vec![ProfileEvent::Resumed(c.marked())]))
            }
            ProfileCommand::Delete(c) => {
                live(state, c.profile_id, c.org_id)?;
                Ok(Decision::done(vec![ProfileEvent::Deleted(c.marked())]))
            }
        }
    }

    fn evolve(state: Option<ProfileState>, event: &ProfileEvent) -> ProfileState {
        let mut s = state.unwrap_or_else(|| ProfileState {
            // Any first event but `created` means the history is incomplete; keep what
            // the events say.
            profile_id: event.profile_id(),
            org_id: event.org_id(),
            name: String::new(),
            source: Source {
                kind: String::new(),
                config: Config::new(),
            },
            credential_id: None,
            targets: Vec::new(),
            schedule: None,
            prune_interval_secs: DEFAULT_PRUNE_INTERVAL_SECS,
            paused: false,
            status: ProfileStatus::Active,
        });
        match event {
            ProfileEvent::Created(e) => {
                s.name.clone_from(&e.name);
                s.source.clone_from(&e.source);
                s.credential_id = e.credential_id;
                s.targets.clone_from(&e.targets);
                s.schedule.clone_from(&e.schedule);
                s.prune_interval_secs = e.prune_interval_secs;
            }
            ProfileEvent::Updated(e) => {
                s.name.clone_from(&e.name);
                s.source.clone_from(&e.source);
                s.credential_id = e.credential_id;
                s.targets.clone_from(&e.targets);
                s.schedule.clone_from(&e.schedule);
                s.prune_interval_secs = e.prune_interval_secs;
            }
            ProfileEvent::Paused(_) => s.paused = true,
            ProfileEvent::Resumed(_) => s.paused = false,
            ProfileEvent::Deleted(_) => {
                s.status = ProfileStatus::Deleted;
                // Nothing of a deleted profile is needed again; the state stays small.
                s.source.config.clear();
                s.schedule = None;
            }
        }
        s
    }

    fn event_type(event: &ProfileEvent) -> &'static str {
        match event {
            ProfileEvent::Created(_) => CREATED,
            ProfileEvent::Updated(_) => UPDATED,
            ProfileEvent::Paused(_) => PAUSED,
            ProfileEvent::Resumed(_) => RESUMED,
            ProfileEvent::Deleted(_) => DELETED,
        }
    }
}

impl ProfileRef {
    fn marked(&self) -> ProfileMarked {
        ProfileMarked {
            profile_id: self.profile_id,
            org_id: self.org_id,
            actor: self.actor.clone(),
            at: self.at,
        }
    }
}
