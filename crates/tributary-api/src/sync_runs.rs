//! Sync runs: list, one run with its per-document failures, cancel, and start one by
//! hand (`POST /profiles/{id}/sync`).
//!
//! A run is the sync aggregate's (keyed by its profile): the answers here read the
//! `sync_runs` read model, and changes go through the aggregate like every command.

use crate::auth::{AnyRole, Authorized, Caller, CuratorRole, Member};
use crate::gateway::{self, Command, Sent};
use crate::orgs::accepted;
use crate::paging::Keyset;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tributary_domain::{OrgId, sync};
use tributary_store::sync_runs::{self as store, RunFilter, RunRow};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The run states a listing can filter by.
pub const STATES: [&str; 7] = [
    "queued",
    "running",
    "interrupted",
    "succeeded",
    "completed_with_errors",
    "failed",
    "canceled",
];

#[derive(Debug, Serialize, ToSchema)]
pub struct RunCounts {
    /// Documents the source produced (new or changed).
    pub fetched: u64,
    /// Deletions the source (or pruning) produced.
    pub deleted: u64,
    /// Operations the targets took, summed over targets.
    pub delivered: u64,
    /// Documents the source could not produce plus operations dead-lettered.
    pub failed: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunProgress {
    pub done: u64,
    /// Known only where the source tells how much there is.
    pub total: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    pub id: Uuid,
    pub profile_id: Uuid,
    /// `full`, `incremental` or `prune`.
    pub mode: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// queued, running, interrupted, succeeded, completed_with_errors, failed, canceled.
    pub state: String,
    /// 0 until a worker claims the run; each claim after a crash is the next attempt.
    pub attempt: i32,
    /// The worker holding the run while it is running.
    pub worker: Option<String>,
    /// The last heartbeat of that worker; when they stop the run is resumed elsewhere.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// True while the run made no progress for too long; `stalled_reason` says since when.
    pub stalled: bool,
    pub stalled_reason: Option<String>,
    pub counts: RunCounts,
    /// Per target id: `{delivered, failed}`.
    #[schema(value_type = Object)]
    pub targets: serde_json::Value,
    pub progress: RunProgress,
    pub documents_per_second: Option<f64>,
    pub eta_seconds: Option<u64>,
    /// Why a failed run failed: `{class, message}`.
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    pub canceled_by: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_progress_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailureOut {
    pub doc_id: String,
    pub target_id: Option<Uuid>,
    /// `source`, `transient`, `rate_limited` or `permanent`.
    pub class: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunOut,
    /// The first 100 per-document failures.
    pub failures: Vec<FailureOut>,
}

fn out(r: RunRow) -> RunOut {
    let (rate, eta) = (r.rate(), r.eta_secs());
    RunOut {
        id: r.id,
        profile_id: r.profile_id,
        mode: r.mode,
        trigger: r.trigger,
        state: r.state,
        attempt: r.attempt,
        worker: r.worker,
        heartbeat_at: r.heartbeat_at,
        stalled: r.stalled,
        stalled_reason: r.stalled_reason,
        counts: RunCounts {
            fetched: r.documents as u64,
            deleted: r.deletions as u64,
            delivered: r.delivered as u64,
            failed: (r.source_failed + r.delivery_failed) as u64,
        },
        targets: r.targets,
        progress: RunProgress {
            done: r.progress_done as u64,
            total: r.progress_total.map(|t| t as u64),
        },
        documents_per_second: rate.map(|r| (r * 10.0).round() / 10.0),
        eta_seconds: eta,
        error: r.error,
        canceled_by: r.canceled_by,
        requested_at: r.requested_at,
        started_at: r.started_at,
        last_progress_at: r.last_progress_at,
        finished_at: r.finished_at,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RunListParams {
    pub profile_id: Option<Uuid>,
    /// One of the run states.
    pub state: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunOut>,
    pub next_cursor: Option<String>,
}

/// The org's sync runs, newest first.
#[utoipa::path(get, path = "/sync-runs", tag = "sync", params(RunListParams),
    responses((status = 200, body = RunPage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["member"])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    Query(params): Query<RunListParams>,
) -> ApiResult<Json<RunPage>> {
    let member = caller.member();
    if let Some(s) = params.state.as_deref()
        && !STATES.contains(&s)
    {
        return Err(ApiError::Invalid {
            detail: format!(
                "state {s:?} is not a run state; use one of {}",
                STATES.join(", ")
            ),
        });
    }
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    let filter = RunFilter {
        profile_id: params.profile_id,
        state: params.state,
    };
    let mut rows = state
        .read_as(&member, async |tx| {
            store::list(tx, member.org, &filter, keyset.after, keyset.fetch()).await
        })
        .await?;
    let next_cursor = keyset.finish(&mut rows, |r| (r.requested_at, r.id));
    Ok(Json(RunPage {
        items: rows.into_iter().map(out).collect(),
        next_cursor,
    }))
}

fn not_found(id: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound {
        what: format!("sync run {id}"),
    }
}

async fn read(state: &AppState, member: &Member, id: Uuid) -> ApiResult<RunRow> {
    state
        .read_as(member, async |tx| store::get(tx, member.org, id).await)
        .await?
        .ok_or_else(|| not_found(id))
}

/// One run, with its first 100 per-document failures.
#[utoipa::path(get, path = "/sync-runs/{id}", tag = "sync", params(("id" = Uuid, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["member"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunDetail>> {
    let member = caller.member();
    let id: Uuid = id.parse().map_err(|_| not_found(&id))?;
    let (run, failures) = state
        .read_as(&member, async |tx| {
            let run = store::get(tx, member.org, id).await?;
            let failures = store::failures(tx, member.org, id, 100).await?;
            Ok((run, failures))
        })
        .await?;
    let run = run.ok_or_else(|| not_found(id))?;
    Ok(Json(RunDetail {
        run: out(run),
        failures: failures
            .into_iter()
            .map(|f| FailureOut {
                doc_id: f.doc_id,
                target_id: f.target_id,
                class: f.class,
                message: f.message,
                at: f.at,
            })
            .collect(),
    }))
}

/// Waits, up to `left`, until the read model shows the run as `done` says.
async fn settled(
    state: &AppState,
    member: &Member,
    id: Uuid,
    left: Duration,
    done: impl Fn(&RunRow) -> bool,
) -> ApiResult<Option<RunRow>> {
    let deadline = Instant::now() + left;
    loop {
        let row = state
            .read_as(member, async |tx| store::get(tx, member.org, id).await)
            .await?;
        if let Some(row) = row.filter(|r| done(r)) {
            return Ok(Some(row));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cancel a run: it ends as `canceled`, and its worker stops at its next batch.
#[utoipa::path(post, path = "/sync-runs/{id}/cancel", tag = "sync", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Canceled (or already finished: the run as it is)", body = RunOut),
        (status = 202, description = "Accepted; the run shows it shortly"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Authorized<CuratorRole>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let member = caller.member();
    let id: Uuid = id.parse().map_err(|_| not_found(&id))?;
    let run = read(&state, &member, id).await?;
    if !run.is_active() {
        return Ok((StatusCode::OK, Json(out(run))).into_response());
    }
    let key = run.profile_id.to_string();
    let command = Command {
        aggregate: "sync",
        key: &key,
        ty: sync::CANCEL,
        org_id: Some(OrgId(member.org)),
        data: serde_json::json!({
            "profile_id": run.profile_id, "run_id": id, "actor": member.actor.tag(),
            "reason": "canceled through the API", "at": Utc::now(),
        }),
    };
    match gateway::send_accepted(&state, &Caller::Member(member), command, &headers).await? {
        Sent::Pending(command) => Ok(accepted(command)),
        Sent::Accepted {
            id: command, left, ..
        } => match settled(&state, &member, id, left, |r| !r.is_active()).await? {
            Some(row) => Ok((StatusCode::OK, Json(out(row))).into_response()),
            None => Ok(accepted(command)),
        },
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// `incremental` (default: what changed since the last successful run), `full`, or
    /// `prune` (delete at every target the documents the source no longer lists).
    pub mode: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStarted {
    pub run_id: Uuid,
    pub run: Option<RunOut>,
}

/// Start a run of a profile now: `incremental` (default) or `full`. `201` with the run
/// once it is queued; `409` while a run of the profile is active.
#[utoipa::path(post, path = "/profiles/{id}/sync", tag = "sync", request_body = Option<SyncRequest>,
    params(("id" = Uuid, Path)),
    responses((status = 201, description = "Queued", body = SyncStarted),
        (status = 202, description = "Accepted; the run shows shortly"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A run of this profile is active", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn sync_profile(
    State(state): State<AppState>,
    profile: crate::catalog::OwnProfile<CuratorRole>,
    headers: HeaderMap,
    body: Option<Json<SyncRequest>>,
) -> ApiResult<Response> {
    let (member, id) = (profile.member, profile.id);
    let row = state
        .read_as(&member, async |tx| {
            tributary_store::catalog::tenant_reads::profile(tx, member.org, id).await
        })
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: format!("profile {id}"),
        })?;
    let body = body.map(|b| b.0).unwrap_or_default();
    request(&state, member, &headers, id, row.targets, body).await
}

async fn request(
    state: &AppState,
    member: Member,
    headers: &HeaderMap,
    profile: Uuid,
    targets: Vec<Uuid>,
    body: SyncRequest,
) -> ApiResult<Response> {
    let mode = match body.mode.as_deref().unwrap_or("incremental") {
        m @ ("full" | "incremental" | "prune") => m.to_owned(),
        other => {
            return Err(ApiError::Invalid {
                detail: format!(
                    "mode {other:?} is not a sync mode; use full, incremental or prune"
                ),
            });
        }
    };
    let run_id = Uuid::now_v7();
    let key = profile.to_string();
    let command = Command {
        aggregate: "sync",
        key: &key,
        ty: sync::REQUEST,
        org_id: Some(OrgId(member.org)),
        data: serde_json::json!({
            "profile_id": profile, "org_id": member.org, "run_id": run_id, "mode": mode,
            "trigger": "manual", "targets": targets, "at": Utc::now(),
            "actor": member.actor.tag(),
        }),
    };
    match gateway::send_accepted(state, &Caller::Member(member), command, headers).await? {
        Sent::Pending(command) => Ok(accepted(command)),
        Sent::Accepted { left, .. } => {
            let run = settled(state, &member, run_id, left, |_| true).await?;
            let status = if run.is_some() {
                StatusCode::CREATED
            } else {
                StatusCode::ACCEPTED
            };
            let location = format!("/api/v1/sync-runs/{run_id}");
            Ok((
                status,
                [(axum::http::header::LOCATION, location)],
                Json(SyncStarted {
                    run_id,
                    run: run.map(out),
                }),
            )
                .into_response())
        }
    }
}
