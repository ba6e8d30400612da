//! The organization aggregate: the tenant. Created only through its slug reservation.

#[cfg(test)]
mod tests;
mod validate;

pub use validate::{NAME_MAX_CHARS, validate_name, validate_slug};

use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode, parse_data};
use crate::ids::OrgId;
use crate::slug::{self, Slug};
use serde::{Deserialize, Serialize};

pub const REGISTER: &str = "tributary.org.register.v1";
pub const RENAME: &str = "tributary.org.rename.v1";
pub const DELETE: &str = "tributary.org.delete.v1";
pub const CREATED: &str = "tributary.org.created.v1";
pub const RENAMED: &str = "tributary.org.renamed.v1";
pub const DELETED: &str = "tributary.org.deleted.v1";

pub struct Org;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgState {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterOrg {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenameOrg {
    pub org_id: OrgId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteOrg {
    pub org_id: OrgId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrgCommand {
    /// Sent by the slug aggregate once the slug is reserved for this org.
    Register(RegisterOrg),
    Rename(RenameOrg),
    Delete(DeleteOrg),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OrgEvent {
    Created(OrgCreated),
    Renamed(OrgRenamed),
    Deleted(OrgDeleted),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgCreated {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgRenamed {
    pub org_id: OrgId,
    pub name: String,
    pub previous_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgDeleted {
    pub org_id: OrgId,
    pub slug: String,
}

impl OrgEvent {
    /// Decodes an event's data by its CloudEvents type.
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            CREATED => serde_json::from_slice(data).map(Self::Created),
            RENAMED => serde_json::from_slice(data).map(Self::Renamed),
            DELETED => serde_json::from_slice(data).map(Self::Deleted),
            other => Err(serde::de::Error::custom(format!(
                "unknown org event type {other}"
            ))),
        }
    }

    pub fn org_id(&self) -> OrgId {
        match self {
            Self::Created(e) => e.org_id,
            Self::Renamed(e) => e.org_id,
            Self::Deleted(e) => e.org_id,
        }
    }
}

fn release_slug(org_id: OrgId, slug: &str) -> FollowUp {
    FollowUp {
        aggregate: Slug::KIND,
        key: slug.to_owned(),
        command_type: slug::RELEASE,
        data: serde_json::json!({ "slug": slug, "org_id": org_id }),
        org_id: Some(org_id),
    }
}

impl Aggregate for Org {
    const KIND: &'static str = "org";
    const COMMAND_TYPES: &'static [&'static str] = &[REGISTER, RENAME, DELETE];

    type State = OrgState;
    type Command = OrgCommand;
    type Event = OrgEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        match command_type {
            REGISTER => parse_data(data).map(OrgCommand::Register),
            RENAME => parse_data(data).map(OrgCommand::Rename),
            DELETE => parse_data(data).map(OrgCommand::Delete),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the org aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        Self::org_of(command)
            .map(|id| id.to_string())
            .unwrap_or_default()
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        Some(match command {
            OrgCommand::Register(c) => c.org_id,
            OrgCommand::Rename(c) => c.org_id,
            OrgCommand::Delete(c) => c.org_id,
        })
    }

    fn decide(
        state: Option<&OrgState>,
        command: &OrgCommand,
    ) -> Result<Decision<OrgEvent>, Rejection> {
        let live = state.filter(|s| !s.deleted);
        match command {
            OrgCommand::Register(c) => match state {
                None => {
                    validate_name(&c.name)?;
                    Ok(Decision::done(vec![OrgEvent::Created(OrgCreated {
                        org_id: c.org_id,
                        slug: c.slug.clone(),
                        name: c.name.trim().to_owned(),
                    })]))
                }
                Some(existing) => {
                    let rejection = Rejection::new(
                        RejectionCode::Conflict,
                        format!("organization {} already exists; choose a new id", c.org_id),
                    );
                    // The slug was reserved for this attempt; give it back unless the
                    // existing org holds it.
                    if existing.slug == c.slug && !existing.deleted {
                        Err(rejection)
                    } else {
                        Err(rejection.with_follow_up(release_slug(c.org_id, &c.slug)))
                    }
                }
            },
            OrgCommand::Rename(c) => {
                let org = live.ok_or_else(|| not_found(c.org_id))?;
                validate_name(&c.name)?;
                let name = c.name.trim();
                if name == org.name {
                    return Ok(Decision::done(Vec::new()));
                }
                Ok(Decision::done(vec![OrgEvent::Renamed(OrgRenamed {
                    org_id: c.org_id,
                    name: name.to_owned(),
                    previous_name: org.name.clone(),
                })]))
            }
            OrgCommand::Delete(c) => {
                let org = live.ok_or_else(|| not_found(c.org_id))?;
                Ok(Decision::done(vec![OrgEvent::Deleted(OrgDeleted {
                    org_id: c.org_id,
                    slug: org.slug.clone(),
                })])
                .with_follow_up(release_slug(c.org_id, &org.slug)))
            }
        }
    }

    fn evolve(state: Option<OrgState>, event: &OrgEvent) -> OrgState {
        match (state, event) {
            (_, OrgEvent::Created(e)) => OrgState {
                id: e.org_id,
                slug: e.slug.clone(),
                name: e.name.clone(),
                deleted: false,
            },
            (Some(s), OrgEvent::Renamed(e)) => OrgState {
                name: e.name.clone(),
                ..s
            },
            (Some(s), OrgEvent::Deleted(_)) => OrgState { deleted: true, ..s },
            // An event without its creation cannot come from our log; keep a state that
            // says so rather than panic in a replay.
            (None, OrgEvent::Renamed(e)) => OrgState {
                id: e.org_id,
                slug: String::new(),
                name: e.name.clone(),
                deleted: false,
            },
            (None, OrgEvent::Deleted(e)) => OrgState {
                id: e.org_id,
                slug: e.slug.clone(),
                name: String::new(),
                deleted: true,
            },
        }
    }

    fn event_type(event: &OrgEvent) -> &'static str {
        match event {
            OrgEvent::Created(_) => CREATED,
            OrgEvent::Renamed(_) => RENAMED,
            OrgEvent::Deleted(_) => DELETED,
        }
    }
}

fn not_found(org_id: OrgId) -> Rejection {
    Rejection::new(
        RejectionCode::NotFound,
        format!("organization {org_id} does not exist"),
    )
}
