//! `/api/v1/commands/{id}`: what became of a command.

use crate::auth::{AnyRole, Authorized};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tributary_store::queries;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandAccepted {
    pub command_id: Uuid,
    /// Always `pending` here.
    pub status: String,
    /// Where to ask for the outcome.
    pub location: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandStatus {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub command_type: String,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// The status and outcome of a command.
#[utoipa::path(
    get, path = "/commands/{id}", tag = "commands",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = CommandStatus),
        (status = 404, description = "Unknown command (a command just sent may take a moment to appear)", body = Problem, content_type = "application/problem+json"),
    )
,
    security(("bearer" = ["member"])))]
pub async fn get_command(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    Path(id): Path<String>,
) -> ApiResult<Json<CommandStatus>> {
    let not_found = || ApiError::NotFound {
        what: format!("command {id} (if you just sent it, retry in a moment)"),
    };
    let uuid: Uuid = id.parse().map_err(|_| not_found())?;
    // Row-level security: another org's command is as unknown as a missing one.
    let row = state
        .read_as(&caller.member(), async |tx| {
            queries::command(tx, uuid).await
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(CommandStatus {
        id: row.id,
        command_type: row.command_type,
        status: row.status,
        code: row.code,
        reason: row.reason,
        aggregate: row.aggregate,
        aggregate_id: row.aggregate_id,
        aggregate_version: row.aggregate_version,
        submitted_at: row.submitted_at,
        completed_at: row.completed_at,
    }))
}
