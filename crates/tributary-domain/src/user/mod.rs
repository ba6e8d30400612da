//! The user aggregate, keyed by the user id: the end of every sign-up chain. Email
//! uniqueness is the `email` reservation's job, memberships the org's.
//!
//! A user's personal data (address, name, password hash) is sealed under the user's own
//! key before it reaches a command; the aggregate checks that it is sealed and never
//! reads it. Forgetting a user records `user.forgotten`: the keeper then destroys that
//! key, so the sealed values left in the log can never be read again, and the address
//! is released for a new sign-up.

#[cfg(test)]
mod tests;

use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode, parse_data};
use crate::checks::{validate_actor, validate_email_index, validate_sealed};
use crate::email;
use crate::ids::{OrgId, UserId};
use serde::{Deserialize, Serialize};

pub const REGISTER: &str = "tributary.user.register.v1";
pub const RENAME: &str = "tributary.user.rename.v1";
pub const FORGET: &str = "tributary.user.forget.v1";
pub const REGISTERED: &str = "tributary.user.registered.v1";
pub const RENAMED: &str = "tributary.user.renamed.v1";
pub const FORGOTTEN: &str = "tributary.user.forgotten.v1";

/// Longest accepted password hash (an argon2id PHC string is about 100 characters).
pub const PASSWORD_HASH_MAX_CHARS: usize = 512;

pub struct User;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub user_id: UserId,
    pub email_index: String,
    #[serde(default)]
    pub forgotten: bool,
}

/// The profile of a user who signs up in the same step as joining an org, each field
/// sealed under the new user's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterUser {
    pub user_id: UserId,
    pub email_index: String,
    /// Sealed under the user's key, like `name` and `password_hash`.
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
    /// Sealed under the user's key.
    pub name: String,
    #[serde(default)]
    pub org_id: Option<OrgId>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForgetUser {
    pub user_id: UserId,
    /// `user:<id>` when users forget themselves, `system:<role>` from the CLI.
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register(RegisterUser),
    Rename(RenameUser),
    Forget(ForgetUser),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserEvent {
    Registered(UserRegistered),
    Renamed(UserRenamed),
    Forgotten(UserForgotten),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRegistered {
    pub user_id: UserId,
    pub email_index: String,
    /// Sealed: the address, the name and the argon2id PHC string the read model checks
    /// passwords against.
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRenamed {
    pub user_id: UserId,
    /// Sealed under the user's key.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserForgotten {
    pub user_id: UserId,
    pub email_index: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl UserEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            REGISTERED => serde_json::from_slice(data).map(Self::Registered),
            RENAMED => serde_json::from_slice(data).map(Self::Renamed),
            FORGOTTEN => serde_json::from_slice(data).map(Self::Forgotten),
            other => Err(serde::de::Error::custom(format!(
                "unknown user event type {other}"
            ))),
        }
    }

    pub fn user_id(&self) -> UserId {
        match self {
            Self::Registered(e) => e.user_id,
            Self::Renamed(e) => e.user_id,
            Self::Forgotten(e) => e.user_id,
        }
    }
}

/// Only argon2id hashes are stored; the API checks that before sealing, since the
/// sealed value cannot be checked here.
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

/// A sign-up's profile must be sealed; nothing else can be checked here.
pub(crate) fn validate_new_user(u: &NewUser) -> Result<(), Rejection> {
    validate_sealed("email", &u.email)?;
    validate_sealed("name", &u.name)?;
    validate_sealed("password_hash", &u.password_hash)
}

/// The last step of a sign-up chain: register the user the previous steps made room for.
pub fn register_follow_up(
    user_id: UserId,
    email_index: &str,
    new_user: &NewUser,
    org_id: Option<OrgId>,
) -> FollowUp {
    let mut data = serde_json::json!({
        "user_id": user_id,
        "email_index": email_index,
        "email": new_user.email,
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

fn forgotten(user_id: UserId) -> Rejection {
    Rejection::new(
        RejectionCode::NotFound,
        format!("user {user_id} was forgotten; their data is gone for good"),
    )
}

impl Aggregate for User {
    const KIND: &'static str = "user";
    const COMMAND_TYPES: &'static [&'static str] = &[REGISTER, RENAME, FORGET];

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
            FORGET => parse_data(data).map(UserCommand::Forget),
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
            UserCommand::Forget(c) => c.user_id.to_string(),
        }
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        match command {
            UserCommand::Register(c) => c.org_id,
            UserCommand::Rename(c) => c.org_id,
            UserCommand::Forget(_) => None,
        }
    }

    fn decide(
        state: Option<&UserState>,
        command: &UserCommand,
    ) -> Result<Decision<UserEvent>, Rejection> {
        match command {
            UserCommand::Register(c) => {
                validate_email_index(&c.email_index)?;
                validate_sealed("email", &c.email)?;
                validate_sealed("name", &c.name)?;
                validate_sealed("password_hash", &c.password_hash)?;
                match state {
                    None => Ok(Decision::done(vec![UserEvent::Registered(
                        UserRegistered {
                            user_id: c.user_id,
                            email_index: c.email_index.clone(),
                            email: c.email.clone(),
                            name: c.name.clone(),
                            password_hash: c.password_hash.clone(),
                        },
                    )])),
                    Some(user) if user.forgotten => Err(forgotten(c.user_id)),
                    // A sign-up retried under a new command id comes through every step
                    // again; the user it registered is its answer.
                    Some(user) if user.email_index == c.email_index => {
                        Ok(Decision::done(Vec::new()))
                    }
                    Some(_) => Err(Rejection::new(
                        RejectionCode::Conflict,
                        format!("user {} already exists; choose a new id", c.user_id),
                    )),
                }
            }
            UserCommand::Rename(c) => {
                let user = live(state, c.user_id)?;
                validate_sealed("name", &c.name)?;
                validate_actor(c.actor.as_deref())?;
                Ok(Decision::done(vec![UserEvent::Renamed(UserRenamed {
                    user_id: user.user_id,
                    name: c.name.clone(),
                    actor: c.actor.clone(),
                })]))
            }
            UserCommand::Forget(c) => {
                validate_forget_actor(c.actor.as_deref())?;
                match state {
                    // Forgetting twice changes nothing.
                    Some(user) if user.forgotten => Ok(Decision::done(Vec::new())),
                    // The address is given back in the same transaction, so it can sign
                    // up again.
                    Some(user) => Ok(Decision::done(vec![UserEvent::Forgotten(UserForgotten {
                        user_id: user.user_id,
                        email_index: user.email_index.clone(),
                        actor: c.actor.clone(),
                    })])
                    .with_follow_up(email::release_follow_up(
                        &user.email_index,
                        user.user_id,
                        None,
                    ))),
                    None => Err(Rejection::new(
                        RejectionCode::NotFound,
                        format!("user {} does not exist", c.user_id),
                    )),
                }
            }
        }
    }

    fn evolve(state: Option<UserState>, event: &UserEvent) -> UserState {
        match (state, event) {
            (_, UserEvent::Registered(e)) => UserState {
                user_id: e.user_id,
                email_index: e.email_index.clone(),
                forgotten: false,
            },
            (Some(s), UserEvent::Renamed(_)) => s,
            (None, UserEvent::Renamed(e)) => UserState {
                user_id: e.user_id,
                email_index: String::new(),
                forgotten: false,
            },
            (_, UserEvent::Forgotten(e)) => UserState {
                user_id: e.user_id,
                email_index: e.email_index.clone(),
                forgotten: true,
            },
        }
    }

    fn event_type(event: &UserEvent) -> &'static str {
        match event {
            UserEvent::Registered(_) => REGISTERED,
            UserEvent::Renamed(_) => RENAMED,
            UserEvent::Forgotten(_) => FORGOTTEN,
        }
    }
}

fn live(state: Option<&UserState>, user_id: UserId) -> Result<&UserState, Rejection> {
    match state {
        Some(user) if user.forgotten => Err(forgotten(user_id)),
        Some(user) => Ok(user),
        None => Err(Rejection::new(
            RejectionCode::NotFound,
            format!("user {user_id} does not exist"),
        )),
    }
}

/// Users forget themselves (`user:<id>`); operators do it with the CLI (`system:cli`).
fn validate_forget_actor(actor: Option<&str>) -> Result<(), Rejection> {
    match actor {
        Some(a) if a.starts_with("system:") && a.len() <= 64 => Ok(()),
        other => validate_actor(other),
    }
}
