//! What became of a command: the record written to the command-results topic.

use crate::aggregate::RejectionCode;
use crate::ids::CommandId;
use serde::{Deserialize, Serialize};

/// CloudEvents type of a command outcome record.
pub const OUTCOME_TYPE: &str = "tributary.command.outcome.v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Accepted,
    Rejected,
}

impl OutcomeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    pub command_id: CommandId,
    pub command_type: String,
    pub status: OutcomeStatus,
    /// The aggregate kind that decided (`org`, `slug`).
    pub aggregate: String,
    /// The aggregate id that decided, when the command named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_id: Option<String>,
    /// The aggregate's version after the command's events (accepted only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_version: Option<u64>,
    /// How many events the command produced.
    pub events: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RejectionCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
