//! The session aggregate, keyed by the session id: one family of rotating refresh
//! tokens. Each refresh replaces the token; presenting a replaced one again means the
//! family leaked, so the whole session is revoked.

#[cfg(test)]
mod tests;

use crate::aggregate::{Aggregate, Decision, Rejection, RejectionCode, parse_data};
use crate::checks::{same_hash, validate_hash};
use crate::ids::{OrgId, SessionId, UserId};
use crate::role::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const START: &str = "tributary.session.start.v1";
pub const REFRESH: &str = "tributary.session.refresh.v1";
pub const END: &str = "tributary.session.end.v1";
pub const STARTED: &str = "tributary.session.started.v1";
pub const REFRESHED: &str = "tributary.session.refreshed.v1";
pub const REVOKED: &str = "tributary.session.revoked.v1";
pub const ENDED: &str = "tributary.session.ended.v1";

/// How many replaced token hashes a session remembers for reuse detection. Older ones
/// are refused as unknown instead of revoking the session; this bounds the snapshot.
pub const USED_HASHES_KEPT: usize = 128;

/// The reason a session is revoked when a replaced refresh token comes back.
pub const REUSE: &str = "reuse";

pub struct Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    /// Logged out (or ended by the server).
    Ended,
    /// Revoked because a replaced token was presented again.
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub role: Role,
    /// Hash of the one refresh token that is valid now.
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub status: SessionStatus,
    /// Hashes of replaced tokens, oldest first, at most [`USED_HASHES_KEPT`].
    #[serde(default)]
    pub used_hashes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub role: Role,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshSession {
    pub session_id: SessionId,
    pub presented_hash: String,
    pub next_hash: String,
    pub expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    /// The org the new tokens are for: the session's own, or another to switch to.
    pub org_id: OrgId,
    /// The role in that org, as the gateway found it; kept when absent and the org is
    /// the same, required when switching.
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndSession {
    pub session_id: SessionId,
    /// The session's org (for the events' `orgid`).
    pub org_id: OrgId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    Start(StartSession),
    Refresh(RefreshSession),
    End(EndSession),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SessionEvent {
    Started(SessionStarted),
    Refreshed(SessionRefreshed),
    Revoked(SessionClosed),
    Ended(SessionClosed),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionStarted {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub role: Role,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRefreshed {
    pub session_id: SessionId,
    pub user_id: UserId,
    /// The org after the refresh.
    pub org_id: OrgId,
    pub role: Role,
    pub next_hash: String,
    pub expires_at: DateTime<Utc>,
    /// Set when the refresh switched the session to another org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_org_id: Option<OrgId>,
}

/// A session was revoked or ended (the type says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClosed {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub reason: String,
}

impl SessionEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            STARTED => serde_json::from_slice(data).map(Self::Started),
            REFRESHED => serde_json::from_slice(data).map(Self::Refreshed),
            REVOKED => serde_json::from_slice(data).map(Self::Revoked),
            ENDED => serde_json::from_slice(data).map(Self::Ended),
            other => Err(serde::de::Error::custom(format!(
                "unknown session event type {other}"
            ))),
        }
    }

    pub fn org_id(&self) -> OrgId {
        match self {
            Self::Started(e) => e.org_id,
            Self::Refreshed(e) => e.org_id,
            Self::Revoked(e) | Self::Ended(e) => e.org_id,
        }
    }
}

fn invalid(why: String) -> Rejection {
    Rejection::new(RejectionCode::SessionInvalid, why)
}

fn closed(s: &SessionState, reason: &str) -> SessionClosed {
    SessionClosed {
        session_id: s.session_id,
        user_id: s.user_id,
        org_id: s.org_id,
        reason: reason.to_owned(),
    }
}

fn validate_reason(reason: &str) -> Result<(), Rejection> {
    let ok = (1..=40).contains(&reason.len())
        && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::Invalid,
            "reason must be 1 to 40 lowercase letters or _, like logout",
        ))
    }
}

fn start(
    state: Option<&SessionState>,
    c: &StartSession,
) -> Result<Decision<SessionEvent>, Rejection> {
    validate_hash("token_hash", &c.token_hash)?;
    if c.expires_at <= c.at {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            "expires_at must be after at",
        ));
    }
    if state.is_some() {
        return Err(Rejection::new(
            RejectionCode::Conflict,
            format!("session {} already exists; choose a new id", c.session_id),
        ));
    }
    Ok(Decision::done(vec![SessionEvent::Started(
        SessionStarted {
            session_id: c.session_id,
            user_id: c.user_id,
            org_id: c.org_id,
            role: c.role,
            token_hash: c.token_hash.clone(),
            expires_at: c.expires_at,
        },
    )]))
}

fn refresh(
    state: Option<&SessionState>,
    c: &RefreshSession,
) -> Result<Decision<SessionEvent>, Rejection> {
    validate_hash("presented_hash", &c.presented_hash)?;
    validate_hash("next_hash", &c.next_hash)?;
    let id = c.session_id;
    let s = state.ok_or_else(|| invalid(format!("session {id} does not exist")))?;
    match s.status {
        SessionStatus::Active => {}
        SessionStatus::Ended => return Err(invalid(format!("session {id} has ended"))),
        SessionStatus::Revoked => return Err(invalid(format!("session {id} was revoked"))),
    }
    if c.at >= s.expires_at {
        return Err(invalid(format!("session {id} has expired")));
    }
    if !same_hash(&s.token_hash, &c.presented_hash) {
        if s.used_hashes
            .iter()
            .any(|h| same_hash(h, &c.presented_hash))
        {
            // A replaced token came back: someone else holds the family. Accepted, so
            // the revocation is committed; the caller gets no new tokens.
            return Ok(Decision::done(vec![SessionEvent::Revoked(closed(
                s, REUSE,
            ))]));
        }
        return Err(invalid(format!(
            "the refresh token is not the current one of session {id}"
        )));
    }
    let seen =
        |h: &str| same_hash(&s.token_hash, h) || s.used_hashes.iter().any(|u| same_hash(u, h));
    if seen(&c.next_hash) {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            "next_hash must be the hash of a new token",
        ));
    }
    if c.expires_at <= c.at {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            "expires_at must be after at",
        ));
    }
    let switching = c.org_id != s.org_id;
    let role = match (c.role, switching) {
        (Some(role), _) => role,
        (None, false) => s.role,
        (None, true) => {
            return Err(Rejection::new(
                RejectionCode::Invalid,
                "switching to another org needs the role there",
            ));
        }
    };
    Ok(Decision::done(vec![SessionEvent::Refreshed(
        SessionRefreshed {
            session_id: id,
            user_id: s.user_id,
            org_id: c.org_id,
            role,
            next_hash: c.next_hash.clone(),
            expires_at: c.expires_at,
            previous_org_id: switching.then_some(s.org_id),
        },
    )]))
}

fn end(state: Option<&SessionState>, c: &EndSession) -> Result<Decision<SessionEvent>, Rejection> {
    validate_reason(&c.reason)?;
    // Ending what is unknown or already over changes nothing: logging out twice is fine.
    let Some(s) = state.filter(|s| s.status == SessionStatus::Active) else {
        return Ok(Decision::done(Vec::new()));
    };
    if s.org_id != c.org_id {
        return Err(invalid(format!(
            "session {} belongs to another organization now",
            c.session_id
        )));
    }
    Ok(Decision::done(vec![SessionEvent::Ended(closed(
        s, &c.reason,
    ))]))
}

impl Aggregate for Session {
    const KIND: &'static str = "session";
    const COMMAND_TYPES: &'static [&'static str] = &[START, REFRESH, END];

    type State = SessionState;
    type Command = SessionCommand;
    type Event = SessionEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        match command_type {
            START => parse_data(data).map(SessionCommand::Start),
            REFRESH => parse_data(data).map(SessionCommand::Refresh),
            END => parse_data(data).map(SessionCommand::End),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the session aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        match command {
            SessionCommand::Start(c) => c.session_id.to_string(),
            SessionCommand::Refresh(c) => c.session_id.to_string(),
            SessionCommand::End(c) => c.session_id.to_string(),
        }
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        Some(match command {
            SessionCommand::Start(c) => c.org_id,
            SessionCommand::Refresh(c) => c.org_id,
            SessionCommand::End(c) => c.org_id,
        })
    }

    fn decide(
        state: Option<&SessionState>,
        command: &SessionCommand,
    ) -> Result<Decision<SessionEvent>, Rejection> {
        match command {
            SessionCommand::Start(c) => start(state, c),
            SessionCommand::Refresh(c) => refresh(state, c),
            SessionCommand::End(c) => end(state, c),
        }
    }

    fn evolve(state: Option<SessionState>, event: &SessionEvent) -> SessionState {
        match (state, event) {
            (_, SessionEvent::Started(e)) => SessionState {
                session_id: e.session_id,
                user_id: e.user_id,
                org_id: e.org_id,
                role: e.role,
                token_hash: e.token_hash.clone(),
                expires_at: e.expires_at,
                status: SessionStatus::Active,
                used_hashes: Vec::new(),
            },
            (Some(mut s), SessionEvent::Refreshed(e)) => {
                let replaced = std::mem::replace(&mut s.token_hash, e.next_hash.clone());
                s.used_hashes.push(replaced);
                let excess = s.used_hashes.len().saturating_sub(USED_HASHES_KEPT);
                s.used_hashes.drain(..excess);
                s.org_id = e.org_id;
                s.role = e.role;
                s.expires_at = e.expires_at;
                s
            }
            (Some(s), SessionEvent::Revoked(_)) => SessionState {
                status: SessionStatus::Revoked,
                ..s
            },
            (Some(s), SessionEvent::Ended(_)) => SessionState {
                status: SessionStatus::Ended,
                ..s
            },
            // An event without its start cannot come from our log; keep a state that
            // refuses everything rather than panic in a replay.
            (None, event) => {
                let (session_id, user_id, role, expires_at) = match event {
                    SessionEvent::Refreshed(e) => (e.session_id, e.user_id, e.role, e.expires_at),
                    SessionEvent::Started(e) => (e.session_id, e.user_id, e.role, e.expires_at),
                    SessionEvent::Revoked(e) | SessionEvent::Ended(e) => (
                        e.session_id,
                        e.user_id,
                        Role::Member,
                        DateTime::<Utc>::MIN_UTC,
                    ),
                };
                SessionState {
                    session_id,
                    user_id,
                    org_id: event.org_id(),
                    role,
                    token_hash: String::new(),
                    expires_at,
                    status: SessionStatus::Revoked,
                    used_hashes: Vec::new(),
                }
            }
        }
    }

    fn event_type(event: &SessionEvent) -> &'static str {
        match event {
            SessionEvent::Started(_) => STARTED,
            SessionEvent::Refreshed(_) => REFRESHED,
            SessionEvent::Revoked(_) => REVOKED,
            SessionEvent::Ended(_) => ENDED,
        }
    }
}
