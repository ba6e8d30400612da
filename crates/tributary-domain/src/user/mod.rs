//! The user aggregate, keyed by the user id: the end of every sign-up chain. Email
//! uniqueness is the `email` reservation's job, memberships the org's.

#[cfg(test)]
mod tests;

use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode, parse_data};
use crate::ids::{OrgId, UserId};
use crate::org::validate_name;
use serde::{Deserialize, Serialize};

pub const REGISTER: &str = "tributary.user.register.v1";
pub const RENAME: &str = "tributary.user.rename.v1";
pub const REGISTERED: &str = "tributary.user.registered.v1";
pub const RENAMED: &str = "tributary.user.renamed.v1";

/// Longest accepted password hash (an argon2id PHC string is about 100 characters).
pub const PASSWORD_HASH_MAX_CHARS: usize = 512;

pub struct User;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
}

/// The profile of a user who signs up in the same step as joining an org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterUser {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    /// The org the user signed up into; only for the events' `orgid`.
    #[serde(default)]
    pub org_id: Option<OrgId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenameUser {
    pub user_id: UserId,
    pub name: String,
    #[serde(default)]
    pub org_id: Option<OrgId>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register(RegisterUser),
    Rename(RenameUser),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserEvent {
    Registered(UserRegistered),
    Renamed(UserRenamed),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRegistered {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    /// argon2id PHC string; the read model needs it to check passwords.
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRenamed {
    pub user_id: UserId,
    pub name: String,
    pub previous_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl UserEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            REGISTERED => serde_json::from_slice(data).map(Self::Registered),
            RENAMED => serde_json::from_slice(data).map(Self::Renamed),
            other => Err(serde::de::Error::custom(format!(
                "unknown user event type {other}"
            ))),
        }
    }

    pub fn user_id(&self) -> UserId {
        match self {
            Self::Registered(e) => e.user_id,
            Self::Renamed(e) => e.user_id,
        }
    }
}

/// Only hashes travel: a plaintext password must never reach a topic.
pub fn validate_password_hash(hash: &str) -> Result<(), Rejection> {
    if hash.starts_with("$argon2id$") && hash.len() <= PASSWORD_HASH_MAX_CHARS {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::Invalid,
            "password_hash must be an argon2id PHC string",
        ))
    }
}

/// The last step of a sign-up chain: register the user the previous steps made room for.
pub fn register_follow_up(
    user_id: UserId,
    email: &str,
    new_user: &NewUser,
    org_id: Option<OrgId>,
) -> FollowUp {
    let mut data = serde_json::json!({
        "user_id": user_id,
        "email": email,
        "name": new_user.name,
        "password_hash": new_user.password_hash,
    });
    if let Some(org_id) = org_id {
        data["org_id"] = serde_json::json!(org_id);
    }
    FollowUp {
        aggregate: User::KIND,
        key: user_id.to_string(),
        command_type: REGISTER,
        data,
        org_id,
    }
}

impl Aggregate for User {
    const KIND: &'static str = "user";
    const COMMAND_TYPES: &'static [&'static str] = &[REGISTER, RENAME];

    type State = UserState;
    type Command = UserCommand;
    type Event = UserEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        match command_type {
            REGISTER => parse_data(data).map(UserCommand::Register),
            RENAME => parse_data(data).map(UserCommand::Rename),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the user aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        match command {
            UserCommand::Register(c) => c.user_id.to_string(),
            UserCommand::Rename(c) => c.user_id.to_string(),
        }
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        match command {
            UserCommand::Register(c) => c.org_id,
            UserCommand::Rename(c) => c.org_id,
        }
    }

    fn decide(
        state: Option<&UserState>,
        command: &UserCommand,
    ) -> Result<Decision<UserEvent>, Rejection> {
        match command {
            UserCommand::Register(c) => {
                crate::email::require_normalized(&c.email)?;
                validate_name(&c.name)?;
                validate_password_hash(&c.password_hash)?;
                match state {
                    None => Ok(Decision::done(vec![UserEvent::Registered(
                        UserRegistered {
                            user_id: c.user_id,
                            email: c.email.clone(),
                            name: c.name.trim().to_owned(),
                            password_hash: c.password_hash.clone(),
                        },
                    )])),
                    // A sign-up retried under a new command id comes through every step
                    // again; the user it registered is its answer.
                    Some(user) if user.email == c.email => Ok(Decision::done(Vec::new())),
                    Some(_) => Err(Rejection::new(
                        RejectionCode::Conflict,
                        format!("user {} already exists; choose a new id", c.user_id),
                    )),
                }
            }
            UserCommand::Rename(c) => {
                let user = state.ok_or_else(|| {
                    Rejection::new(
                        RejectionCode::NotFound,
                        format!("user {} does not exist", c.user_id),
                    )
                })?;
                validate_name(&c.name)?;
                let name = c.name.trim();
                if name == user.name {
                    return Ok(Decision::done(Vec::new()));
                }
                Ok(Decision::done(vec![UserEvent::Renamed(UserRenamed {
                    user_id: c.user_id,
                    name: name.to_owned(),
                    previous_name: user.name.clone(),
                    actor: c.actor.clone(),
                })]))
            }
        }
    }

    fn evolve(state: Option<UserState>, event: &UserEvent) -> UserState {
        match (state, event) {
            (_, UserEvent::Registered(e)) => UserState {
                user_id: e.user_id,
                email: e.email.clone(),
                name: e.name.clone(),
            },
            (Some(s), UserEvent::Renamed(e)) => UserState {
                name: e.name.clone(),
                ..s
            },
            (None, UserEvent::Renamed(e)) => UserState {
                user_id: e.user_id,
                email: String::new(),
                name: e.name.clone(),
            },
        }
    }

    fn event_type(event: &UserEvent) -> &'static str {
        match event {
            UserEvent::Registered(_) => REGISTERED,
            UserEvent::Renamed(_) => RENAMED,
        }
    }
}
