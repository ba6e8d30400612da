//! The pure core of Tributary: ids, commands, events and the aggregates that decide on
//! them. Nothing here does I/O; the processor in `tributary-log` feeds commands in and
//! writes what comes out.

pub mod aggregate;
mod checks;
pub mod email;
pub mod ids;
pub mod org;
pub mod outcome;
pub mod role;
pub mod schema;
pub mod session;

/// Security events that are no aggregate's decision: the API writes them itself.
pub mod security {
    /// A sign-in failed or was throttled (`<prefix>.security.events`).
    pub const LOGIN_FAILED: &str = "tributary.security.login_failed.v1";
}
pub mod slug;
pub mod user;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode};
pub use email::{email_domain, normalize_email};
pub use ids::{ApiKeyId, CommandId, EventId, InvitationId, OrgId, SessionId, UserId};
pub use outcome::{CommandOutcome, OutcomeStatus};
pub use role::Role;

/// Every aggregate kind; each has `<prefix>.<kind>.commands|events|state` topics.
pub const AGGREGATES: &[&str] = &[
    org::Org::KIND,
    slug::Slug::KIND,
    email::Email::KIND,
    user::User::KIND,
    session::Session::KIND,
];
