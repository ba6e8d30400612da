//! The pure core of Tributary: ids, commands, events and the aggregates that decide on
//! them. Nothing here does I/O; the processor in `tributary-log` feeds commands in and
//! writes what comes out.

pub mod aggregate;
pub mod ids;
pub mod org;
pub mod outcome;
pub mod schema;
pub mod slug;

pub use aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode};
pub use ids::{CommandId, EventId, OrgId};
pub use outcome::{CommandOutcome, OutcomeStatus};

/// Every aggregate kind; each has `<prefix>.<kind>.commands|events|state` topics.
pub const AGGREGATES: &[&str] = &[org::Org::KIND, slug::Slug::KIND];
