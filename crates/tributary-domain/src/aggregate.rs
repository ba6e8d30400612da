//! The shape every aggregate has: `decide` on the current state, `evolve` by an event.

use crate::ids::OrgId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An event-sourced aggregate. Pure: no I/O, no clock, no randomness.
pub trait Aggregate {
    /// Short name; the topics are `<prefix>.<KIND>.commands|events|state`.
    const KIND: &'static str;
    /// The command types this aggregate handles on its command topic.
    const COMMAND_TYPES: &'static [&'static str];

    type State: Clone + Serialize + DeserializeOwned + Send + 'static;
    type Command;
    type Event: Serialize;

    /// Parses a command's data, already validated against its JSON Schema.
    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection>;

    /// The id of the aggregate a command addresses; also its Kafka key.
    fn target(command: &Self::Command) -> String;

    /// The org a command belongs to, carried on every event it causes.
    fn org_of(command: &Self::Command) -> Option<OrgId>;

    fn decide(
        state: Option<&Self::State>,
        command: &Self::Command,
    ) -> Result<Decision<Self::Event>, Rejection>;

    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Self::State;

    /// CloudEvents type of an event, `tributary.<aggregate>.<event>.v<N>`.
    fn event_type(event: &Self::Event) -> &'static str;
}

/// What a command leads to when it is not rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<E> {
    pub events: Vec<E>,
    /// Commands for other aggregates, written in the same transaction as the events.
    pub follow_ups: Vec<FollowUp>,
    /// `false` when the command was handed on (a follow-up will write its outcome).
    pub completes: bool,
}

impl<E> Decision<E> {
    pub fn done(events: Vec<E>) -> Self {
        Self {
            events,
            follow_ups: Vec::new(),
            completes: true,
        }
    }

    pub fn with_follow_up(mut self, follow_up: FollowUp) -> Self {
        self.follow_ups.push(follow_up);
        self
    }

    /// The command goes on to another aggregate, which will write its outcome.
    pub fn handed_on(events: Vec<E>, follow_up: FollowUp) -> Self {
        Self {
            events,
            follow_ups: vec![follow_up],
            completes: false,
        }
    }
}

/// A command for another aggregate. It keeps the id of the command that caused it, so
/// the outcome the client waits for carries the id it knows.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub aggregate: &'static str,
    pub key: String,
    pub command_type: &'static str,
    pub data: serde_json::Value,
    pub org_id: Option<OrgId>,
}

/// Why a command was refused. Rejections are answers, not failures.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: RejectionCode,
    pub reason: String,
    /// Compensations to run although the command was refused (e.g. release a slug).
    pub follow_ups: Vec<FollowUp>,
}

impl Rejection {
    pub fn new(code: RejectionCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            follow_ups: Vec::new(),
        }
    }

    pub fn with_follow_up(mut self, follow_up: FollowUp) -> Self {
        self.follow_ups.push(follow_up);
        self
    }

    /// Adds compensations; an `Option` adds one or none.
    pub fn with_follow_ups(mut self, follow_ups: impl IntoIterator<Item = FollowUp>) -> Self {
        self.follow_ups.extend(follow_ups);
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The record could not be read at all: not JSON, missing headers.
    Malformed,
    /// No aggregate on this topic handles the command type.
    UnknownType,
    /// The data violates the command's JSON Schema or an invariant.
    Invalid,
    /// The addressed aggregate does not exist (or was deleted).
    NotFound,
    /// The aggregate exists and the command contradicts it.
    Conflict,
    /// The slug is reserved by another organization.
    SlugTaken,
    /// The email address belongs to another user.
    EmailTaken,
    /// The change would leave the org without an active admin.
    LastAdmin,
    /// The invitation is unknown, revoked, expired or used, or the token or the email
    /// does not match; the reason says which.
    InvitationInvalid,
    /// The org does not allow this (e.g. the email's domain is not an allowed one).
    NotAllowed,
    /// The session is unknown, ended, revoked or expired, or the token is not its own.
    SessionInvalid,
}

impl RejectionCode {
    pub const ALL: [RejectionCode; 11] = [
        Self::Malformed,
        Self::UnknownType,
        Self::Invalid,
        Self::NotFound,
        Self::Conflict,
        Self::SlugTaken,
        Self::EmailTaken,
        Self::LastAdmin,
        Self::InvitationInvalid,
        Self::NotAllowed,
        Self::SessionInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownType => "unknown_type",
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::SlugTaken => "slug_taken",
            Self::EmailTaken => "email_taken",
            Self::LastAdmin => "last_admin",
            Self::InvitationInvalid => "invitation_invalid",
            Self::NotAllowed => "not_allowed",
            Self::SessionInvalid => "session_invalid",
        }
    }

    /// Whether the command should also go to the dead-letter topic: it could not be
    /// understood, so someone has to look at it.
    pub fn is_dead_letter(self) -> bool {
        matches!(self, Self::Malformed | Self::UnknownType | Self::Invalid)
    }
}

/// Parses validated command data into its typed form.
pub fn parse_data<T: DeserializeOwned>(data: serde_json::Value) -> Result<T, Rejection> {
    serde_json::from_value(data).map_err(|e| Rejection::new(RejectionCode::Invalid, e.to_string()))
}
