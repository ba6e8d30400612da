//! The target aggregate, keyed by the target id: one configured destination of an org —
//! a destination kind, its config and, when the kind needs one, the credential it signs
//! in with.
//!
//! The aggregate checks structure only: the kind's shape, the config's size, the name,
//! and that a command belongs to the target's org. Whether the kind exists, whether the
//! config fits the kind's JSON Schema and whether the credential is a live one of the
//! org and of an accepted kind are checked by the API before it sends a command: those
//! checks need the registries and read models, which the pure domain does not have (see
//! ADR 0012). A deleted target stays deleted: its id is never used again.

#[cfg(test)]
pub(crate) mod tests;

use crate::aggregate::{Aggregate, Decision, Rejection, RejectionCode, parse_data};
use crate::checks::{present, validate_component_config, validate_component_kind};
use crate::credential::validate_actor;
use crate::ids::{CredentialId, OrgId, TargetId};
use crate::org::validate_name;
use crate::schema::{SchemaEntry, SchemaKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const CREATE: &str = "tributary.target.create.v1";
pub const UPDATE: &str = "tributary.target.update.v1";
pub const DELETE: &str = "tributary.target.delete.v1";

pub const CREATED: &str = "tributary.target.created.v1";
pub const UPDATED: &str = "tributary.target.updated.v1";
pub const DELETED: &str = "tributary.target.deleted.v1";

/// The schemas of this aggregate's commands and events.
pub const SCHEMAS: &[SchemaEntry] = &[
    (
        CREATE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.target.create.v1.json"),
    ),
    (
        UPDATE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.target.update.v1.json"),
    ),
    (
        DELETE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.target.delete.v1.json"),
    ),
    (
        CREATED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.target.created.v1.json"),
    ),
    (
        UPDATED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.target.updated.v1.json"),
    ),
    (
        DELETED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.target.deleted.v1.json"),
    ),
];

/// A destination kind's config (its schema is `schemas/destinations/<kind>.json`).
pub type Config = serde_json::Map<String, serde_json::Value>;

pub struct Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    Active,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetState {
    pub target_id: TargetId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: String,
    pub config: Config,
    pub credential_id: Option<CredentialId>,
    pub status: TargetStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateTarget {
    pub target_id: TargetId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: String,
    pub config: Config,
    #[serde(default)]
    pub credential_id: Option<CredentialId>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Changes what is given; `credential_id: null` detaches the credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateTarget {
    pub target_id: TargetId,
    pub org_id: OrgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Replaces the config as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Config>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_id: Option<Option<CredentialId>>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteTarget {
    pub target_id: TargetId,
    pub org_id: OrgId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetCommand {
    Create(CreateTarget),
    Update(UpdateTarget),
    Delete(DeleteTarget),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetCreated {
    pub target_id: TargetId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: String,
    pub config: Config,
    #[serde(default)]
    pub credential_id: Option<CredentialId>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// The target as it is after the change (every field, so a reader needs no history),
/// and which fields changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetUpdated {
    pub target_id: TargetId,
    pub org_id: OrgId,
    pub name: String,
    pub config: Config,
    #[serde(default)]
    pub credential_id: Option<CredentialId>,
    /// Of `name`, `config`, `credential_id`.
    pub changed: Vec<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDeleted {
    pub target_id: TargetId,
    pub org_id: OrgId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetEvent {
    Created(TargetCreated),
    Updated(TargetUpdated),
    Deleted(TargetDeleted),
}

impl TargetEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            CREATED => serde_json::from_slice(data).map(Self::Created),
            UPDATED => serde_json::from_slice(data).map(Self::Updated),
            DELETED => serde_json::from_slice(data).map(Self::Deleted),
            other => Err(serde::de::Error::custom(format!(
                "unknown target event type {other}"
            ))),
        }
    }

    pub fn target_id(&self) -> TargetId {
        match self {
            Self::Created(e) => e.target_id,
            Self::Updated(e) => e.target_id,
            Self::Deleted(e) => e.target_id,
        }
    }

    pub fn org_id(&self) -> OrgId {
        match self {
            Self::Created(e) => e.org_id,
            Self::Updated(e) => e.org_id,
            Self::Deleted(e) => e.org_id,
        }
    }

    /// Who did it: `user:<uuid>`, `key:<uuid>` or `system:<role>`.
    pub fn actor(&self) -> &str {
        match self {
            Self::Created(e) => &e.actor,
            Self::Updated(e) => &e.actor,
            Self::Deleted(e) => &e.actor,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Created(e) => e.at,
            Self::Updated(e) => e.at,
            Self::Deleted(e) => e.at,
        }
    }
}

fn not_found(target_id: TargetId) -> Rejection {
    Rejection::new(
        RejectionCode::NotFound,
        format!("target {target_id} does not exist"),
    )
}

/// The live target a command addresses. Another org's target answers exactly like a
/// missing one.
fn live(
    state: Option<&TargetState>,
    target_id: TargetId,
    org_id: OrgId,
) -> Result<&TargetState, Rejection> {
    state
        .filter(|s| s.org_id == org_id && s.status == TargetStatus::Active)
        .ok_or_else(|| not_found(target_id))
}

fn command_ids(command: &TargetCommand) -> (TargetId, OrgId, &str) {
    match command {
        TargetCommand::Create(c) => (c.target_id, c.org_id, &c.actor),
        TargetCommand::Update(c) => (c.target_id, c.org_id, &c.actor),
        TargetCommand::Delete(c) => (c.target_id, c.org_id, &c.actor),
    }
}

impl Aggregate for Target {
    const KIND: &'static str = "target";
    const COMMAND_TYPES: &'static [&'static str] = &[CREATE, UPDATE, DELETE];

    type State = TargetState;
    type Command = TargetCommand;
    type Event = TargetEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        match command_type {
            CREATE => parse_data(data).map(TargetCommand::Create),
            UPDATE => parse_data(data).map(TargetCommand::Update),
            DELETE => parse_data(data).map(TargetCommand::Delete),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the target aggregate has no command {other}"),
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
        state: Option<&TargetState>,
        command: &TargetCommand,
    ) -> Result<Decision<TargetEvent>, Rejection> {
        validate_actor(command_ids(command).2)?;
        let done = |event: TargetEvent| Ok(Decision::done(vec![event]));
        match command {
            TargetCommand::Create(c) => {
                validate_component_kind("kind", &c.kind)?;
                validate_name(&c.name)?;
                validate_component_config("config", &c.config)?;
                let name = c.name.trim().to_owned();
                match state {
                    None => done(TargetEvent::Created(TargetCreated {
                        target_id: c.target_id,
                        org_id: c.org_id,
                        name,
                        kind: c.kind.clone(),
                        config: c.config.clone(),
                        credential_id: c.credential_id,
                        actor: c.actor.clone(),
                        at: c.at,
                    })),
                    // The same creation retried under a new command id.
                    Some(s)
                        if s.org_id == c.org_id
                            && s.status == TargetStatus::Active
                            && s.kind == c.kind
                            && s.name == name
                            && s.config == c.config
                            && s.credential_id == c.credential_id =>
                    {
                        Ok(Decision::done(Vec::new()))
                    }
                    Some(_) => Err(Rejection::new(
                        RejectionCode::Conflict,
                        format!(
                            "target {} already exists or existed; choose a new id",
                            c.target_id
                        ),
                    )),
                }
            }
            TargetCommand::Update(c) => {
                let s = live(state, c.target_id, c.org_id)?;
                let name = match &c.name {
                    Some(n) => {
                        validate_name(n)?;
                        n.trim().to_owned()
                    }
                    None => s.name.clone(),
                };
                let config = c.config.clone().unwrap_or_else(|| s.config.clone());
                validate_component_config("config", &config)?;
                let credential_id = c.credential_id.unwrap_or(s.credential_id);
                let mut changed = Vec::new();
                if name != s.name {
                    changed.push("name".to_owned());
                }
                if config != s.config {
                    changed.push("config".to_owned());
                }
                if credential_id != s.credential_id {
                    changed.push("credential_id".to_owned());
                }
                if changed.is_empty() {
                    return Ok(Decision::done(Vec::new()));
                }
                done(TargetEvent::Updated(TargetUpdated {
                    target_id: c.target_id,
                    org_id: c.org_id,
                    name,
                    config,
                    credential_id,
                    changed,
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            TargetCommand::Delete(c) => {
                live(state, c.target_id, c.org_id)?;
                done(TargetEvent::Deleted(TargetDeleted {
                    target_id: c.target_id,
                    org_id: c.org_id,
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
        }
    }

    fn evolve(state: Option<TargetState>, event: &TargetEvent) -> TargetState {
        let Some(mut s) = state else {
            return match event {
                TargetEvent::Created(e) => TargetState {
                    target_id: e.target_id,
                    org_id: e.org_id,
                    name: e.name.clone(),
                    kind: e.kind.clone(),
                    config: e.config.clone(),
                    credential_id: e.credential_id,
                    status: TargetStatus::Active,
                },
                TargetEvent::Updated(e) => TargetState {
                    target_id: e.target_id,
                    org_id: e.org_id,
                    name: e.name.clone(),
                    kind: String::new(),
                    config: e.config.clone(),
                    credential_id: e.credential_id,
                    status: TargetStatus::Active,
                },
                // Any other first event means the history is incomplete; keep what it says.
                TargetEvent::Deleted(e) => TargetState {
                    target_id: e.target_id,
                    org_id: e.org_id,
                    name: String::new(),
                    kind: String::new(),
                    config: Config::new(),
                    credential_id: None,
                    status: TargetStatus::Deleted,
                },
            };
        };
        match event {
            TargetEvent::Created(e) => {
                s.name.clone_from(&e.name);
                s.kind.clone_from(&e.kind);
                s.config.clone_from(&e.config);
                s.credential_id = e.credential_id;
            }
            TargetEvent::Updated(e) => {
                s.name.clone_from(&e.name);
                s.config.clone_from(&e.config);
                s.credential_id = e.credential_id;
            }
            TargetEvent::Deleted(_) => {
                s.status = TargetStatus::Deleted;
                // Nothing of a deleted target is needed again; the state stays small.
                s.config.clear();
                s.credential_id = None;
            }
        }
        s
    }

    fn event_type(event: &TargetEvent) -> &'static str {
        match event {
            TargetEvent::Created(_) => CREATED,
            TargetEvent::Updated(_) => UPDATED,
            TargetEvent::Deleted(_) => DELETED,
        }
    }
}
