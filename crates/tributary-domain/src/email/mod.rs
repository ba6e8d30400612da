//! The email reservation aggregate, keyed by the blind index of the normalized address:
//! one partition decides which user holds an address, so two sign-ups can never share
//! one. A claim starts a sign-up chain and hands it on to the org (and from there to the
//! user).
//!
//! Addresses never travel in plaintext: the key and every event carry the blind index
//! (`ebi1_…`, see `tributary-vault`), and the address, name and password hash travel
//! sealed under the new user's own key, so forgetting the user makes them unreadable in
//! the log for good.

mod address;
#[cfg(test)]
mod tests;

pub use address::{EMAIL_MAX_CHARS, email_domain, normalize_domain, normalize_email};

use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode, parse_data};
use crate::checks::{validate_email_index, validate_sealed};
use crate::ids::{InvitationId, OrgId, UserId};
use crate::org::{self, Org, validate_name, validate_slug};
use crate::slug::{self, Slug};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const CLAIM: &str = "tributary.email.claim.v1";
pub const RELEASE: &str = "tributary.email.release.v1";
pub const CLAIMED: &str = "tributary.email.claimed.v1";
pub const RELEASED: &str = "tributary.email.released.v1";

pub struct Email;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailState {
    pub email_index: String,
    /// The user holding the address; `None` once released.
    pub user_id: Option<UserId>,
}

/// Public command: sign up with a new address, and do `then` in the same step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimEmail {
    /// Blind index of the normalized address: the reservation's key.
    pub email_index: String,
    pub user_id: UserId,
    /// The address, sealed under the user's key.
    pub email: String,
    /// Sealed under the user's key.
    pub name: String,
    /// The argon2id hash, sealed under the user's key.
    pub password_hash: String,
    pub then: NextStep,
}

/// Where a sign-up goes once its address is held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NextStep {
    /// Create an org with the new user as its first admin.
    NewOrg {
        org_id: OrgId,
        slug: String,
        name: String,
    },
    /// Join an org that allows the address's domain.
    JoinByDomain { org_id: OrgId, email_domain: String },
    /// Join an org by an invitation sent to the address.
    AcceptInvitation {
        org_id: OrgId,
        invitation_id: InvitationId,
        token_hash: String,
        at: DateTime<Utc>,
    },
}

impl NextStep {
    pub fn org_id(&self) -> OrgId {
        match self {
            Self::NewOrg { org_id, .. }
            | Self::JoinByDomain { org_id, .. }
            | Self::AcceptInvitation { org_id, .. } => *org_id,
        }
    }
}

/// Internal: give an address back after its sign-up was refused further on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseEmail {
    pub email_index: String,
    pub user_id: UserId,
    #[serde(default)]
    pub org_id: Option<OrgId>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmailCommand {
    Claim(ClaimEmail),
    Release(ReleaseEmail),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmailEvent {
    Claimed(EmailClaimed),
    Released(EmailReleased),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailClaimed {
    pub email_index: String,
    pub user_id: UserId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailReleased {
    pub email_index: String,
    pub user_id: UserId,
}

impl EmailEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            CLAIMED => serde_json::from_slice(data).map(Self::Claimed),
            RELEASED => serde_json::from_slice(data).map(Self::Released),
            other => Err(serde::de::Error::custom(format!(
                "unknown email event type {other}"
            ))),
        }
    }
}

/// The compensation every refused sign-up step carries.
pub fn release_follow_up(email_index: &str, user_id: UserId, org_id: Option<OrgId>) -> FollowUp {
    let mut data = serde_json::json!({ "email_index": email_index, "user_id": user_id });
    if let Some(org_id) = org_id {
        data["org_id"] = serde_json::json!(org_id);
    }
    FollowUp {
        aggregate: Email::KIND,
        key: email_index.to_owned(),
        command_type: RELEASE,
        data,
        org_id,
    }
}

/// The next step of a sign-up, with the same command id.
fn hand_on(c: &ClaimEmail) -> FollowUp {
    let new_user = serde_json::json!({
        "email": c.email, "name": c.name, "password_hash": c.password_hash,
    });
    match &c.then {
        NextStep::NewOrg { org_id, slug, name } => FollowUp {
            aggregate: Slug::KIND,
            key: slug.clone(),
            command_type: slug::CREATE_ORG,
            data: serde_json::json!({
                "org_id": org_id,
                "slug": slug,
                "name": name,
                "founder": {
                    "user_id": c.user_id,
                    "email_index": c.email_index,
                    "email": c.email,
                    "name": c.name,
                    "password_hash": c.password_hash,
                },
            }),
            org_id: Some(*org_id),
        },
        NextStep::JoinByDomain {
            org_id,
            email_domain,
        } => FollowUp {
            aggregate: Org::KIND,
            key: org_id.to_string(),
            command_type: org::JOIN_BY_DOMAIN,
            data: serde_json::json!({
                "org_id": org_id,
                "user_id": c.user_id,
                "email_index": c.email_index,
                "email_domain": email_domain,
                "new_user": new_user,
            }),
            org_id: Some(*org_id),
        },
        NextStep::AcceptInvitation {
            org_id,
            invitation_id,
            token_hash,
            at,
        } => FollowUp {
            aggregate: Org::KIND,
            key: org_id.to_string(),
            command_type: org::ACCEPT_INVITATION,
            data: serde_json::json!({
                "org_id": org_id,
                "invitation_id": invitation_id,
                "token_hash": token_hash,
                "user_id": c.user_id,
                "email_index": c.email_index,
                "at": at,
                "new_user": new_user,
            }),
            org_id: Some(*org_id),
        },
    }
}

impl Aggregate for Email {
    const KIND: &'static str = "email";
    const COMMAND_TYPES: &'static [&'static str] = &[CLAIM, RELEASE];

    type State = EmailState;
    type Command = EmailCommand;
    type Event = EmailEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        match command_type {
            CLAIM => parse_data(data).map(EmailCommand::Claim),
            RELEASE => parse_data(data).map(EmailCommand::Release),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the email aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        match command {
            EmailCommand::Claim(c) => c.email_index.clone(),
            EmailCommand::Release(c) => c.email_index.clone(),
        }
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        match command {
            EmailCommand::Claim(c) => Some(c.then.org_id()),
            EmailCommand::Release(c) => c.org_id,
        }
    }

    fn decide(
        state: Option<&EmailState>,
        command: &EmailCommand,
    ) -> Result<Decision<EmailEvent>, Rejection> {
        let holder = state.and_then(|s| s.user_id);
        match command {
            EmailCommand::Claim(c) => {
                validate_email_index(&c.email_index)?;
                validate_sealed("email", &c.email)?;
                validate_sealed("name", &c.name)?;
                validate_sealed("password_hash", &c.password_hash)?;
                if let NextStep::JoinByDomain { email_domain, .. } = &c.then {
                    normalize_domain(email_domain)
                        .map_err(|e| Rejection::new(RejectionCode::Invalid, e))?;
                }
                // Checked here too, so a bad request does not claim and release.
                if let NextStep::NewOrg { slug, name, .. } = &c.then {
                    validate_slug(slug)?;
                    validate_name(name)?;
                }
                match holder {
                    None => Ok(Decision::handed_on(
                        vec![EmailEvent::Claimed(EmailClaimed {
                            email_index: c.email_index.clone(),
                            user_id: c.user_id,
                        })],
                        hand_on(c),
                    )),
                    // A retried sign-up: the same new user id can only come from it.
                    Some(holder) if holder == c.user_id => {
                        Ok(Decision::handed_on(Vec::new(), hand_on(c)))
                    }
                    Some(_) => Err(Rejection::new(
                        RejectionCode::EmailTaken,
                        "this email address already has an account; sign in instead",
                    )),
                }
            }
            EmailCommand::Release(c) => match holder {
                Some(holder) if holder == c.user_id => {
                    Ok(Decision::done(vec![EmailEvent::Released(EmailReleased {
                        email_index: c.email_index.clone(),
                        user_id: c.user_id,
                    })]))
                }
                // Releasing what this user does not hold changes nothing.
                _ => Ok(Decision::done(Vec::new())),
            },
        }
    }

    fn evolve(_state: Option<EmailState>, event: &EmailEvent) -> EmailState {
        match event {
            EmailEvent::Claimed(e) => EmailState {
                email_index: e.email_index.clone(),
                user_id: Some(e.user_id),
            },
            EmailEvent::Released(e) => EmailState {
                email_index: e.email_index.clone(),
                user_id: None,
            },
        }
    }

    fn event_type(event: &EmailEvent) -> &'static str {
        match event {
            EmailEvent::Claimed(_) => CLAIMED,
            EmailEvent::Released(_) => RELEASED,
        }
    }
}
