//! The slug reservation aggregate, keyed by the slug itself: one partition decides who
//! holds a slug, so two orgs can never get the same one.

#[cfg(test)]
mod tests;

use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode, parse_data};
use crate::email;
use crate::ids::OrgId;
use crate::org::{self, ExistingUser, Founder, validate_name, validate_slug};
use serde::{Deserialize, Serialize};

/// Public command: create an organization. Produced to `<prefix>.slug.commands` keyed by
/// the slug, because the reservation decides first.
pub const CREATE_ORG: &str = "tributary.org.create.v1";
pub const RELEASE: &str = "tributary.slug.release.v1";
pub const RESERVED: &str = "tributary.slug.reserved.v1";
pub const RELEASED: &str = "tributary.slug.released.v1";

pub struct Slug;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlugState {
    pub slug: String,
    /// The org holding the slug; `None` once released.
    pub org_id: Option<OrgId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateOrg {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
    /// Present when a sign-up creates the org (handed on by the email reservation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub founder: Option<Founder>,
    /// Present when a signed-in user creates the org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<ExistingUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseSlug {
    pub slug: String,
    pub org_id: OrgId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SlugCommand {
    CreateOrg(CreateOrg),
    Release(ReleaseSlug),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlugEvent {
    pub slug: String,
    pub org_id: OrgId,
    #[serde(skip)]
    pub kind: SlugEventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlugEventKind {
    #[default]
    Reserved,
    Released,
}

impl Aggregate for Slug {
    const KIND: &'static str = "slug";
    const COMMAND_TYPES: &'static [&'static str] = &[CREATE_ORG, RELEASE];

    type State = SlugState;
    type Command = SlugCommand;
    type Event = SlugEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        match command_type {
            CREATE_ORG => parse_data(data).map(SlugCommand::CreateOrg),
            RELEASE => parse_data(data).map(SlugCommand::Release),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the slug aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        match command {
            SlugCommand::CreateOrg(c) => c.slug.clone(),
            SlugCommand::Release(c) => c.slug.clone(),
        }
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        Some(match command {
            SlugCommand::CreateOrg(c) => c.org_id,
            SlugCommand::Release(c) => c.org_id,
        })
    }

    fn decide(
        state: Option<&SlugState>,
        command: &SlugCommand,
    ) -> Result<Decision<SlugEvent>, Rejection> {
        let holder = state.and_then(|s| s.org_id);
        match command {
            SlugCommand::CreateOrg(c) => {
                create_org(holder, c).map_err(|rejection| {
                    // A refused sign-up gives its email address back.
                    rejection.with_follow_ups(c.founder.as_ref().map(|f| {
                        email::release_follow_up(&f.email_index, f.user_id, Some(c.org_id))
                    }))
                })
            }
            SlugCommand::Release(c) => match holder {
                Some(holder) if holder == c.org_id => Ok(Decision::done(vec![SlugEvent {
                    slug: c.slug.clone(),
                    org_id: c.org_id,
                    kind: SlugEventKind::Released,
                }])),
                // Releasing what this org does not hold changes nothing.
                _ => Ok(Decision::done(Vec::new())),
            },
        }
    }

    fn evolve(_state: Option<SlugState>, event: &SlugEvent) -> SlugState {
        SlugState {
            slug: event.slug.clone(),
            org_id: match event.kind {
                SlugEventKind::Reserved => Some(event.org_id),
                SlugEventKind::Released => None,
            },
        }
    }

    fn event_type(event: &SlugEvent) -> &'static str {
        match event.kind {
            SlugEventKind::Reserved => RESERVED,
            SlugEventKind::Released => RELEASED,
        }
    }
}

fn create_org(holder: Option<OrgId>, c: &CreateOrg) -> Result<Decision<SlugEvent>, Rejection> {
    validate_slug(&c.slug)?;
    validate_name(&c.name)?;
    let mut data = serde_json::json!({ "org_id": c.org_id, "slug": c.slug, "name": c.name });
    if let Some(founder) = &c.founder {
        data["founder"] = serde_json::to_value(founder)
            .map_err(|e| Rejection::new(RejectionCode::Invalid, e.to_string()))?;
    }
    if let Some(admin) = &c.admin {
        data["admin"] = serde_json::to_value(admin)
            .map_err(|e| Rejection::new(RejectionCode::Invalid, e.to_string()))?;
    }
    let register = FollowUp {
        aggregate: org::Org::KIND,
        key: c.org_id.to_string(),
        command_type: org::REGISTER,
        data,
        org_id: Some(c.org_id),
    };
    match holder {
        None => Ok(Decision::handed_on(
            vec![SlugEvent {
                slug: c.slug.clone(),
                org_id: c.org_id,
                kind: SlugEventKind::Reserved,
            }],
            register,
        )),
        // A retry of the same creation: hand it on again; the org answers with its first
        // outcome (or carries a retried sign-up on to the user).
        Some(holder) if holder == c.org_id => Ok(Decision::handed_on(Vec::new(), register)),
        Some(_) => Err(Rejection::new(
            RejectionCode::SlugTaken,
            format!("the slug {:?} is taken; choose another", c.slug),
        )),
    }
}

impl SlugEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        let kind = match event_type {
            RESERVED => SlugEventKind::Reserved,
            RELEASED => SlugEventKind::Released,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown slug event type {other}"
                )));
            }
        };
        let mut event: Self = serde_json::from_slice(data)?;
        event.kind = kind;
        Ok(event)
    }
}
