//! Reads of the sync runs read model: tenant reads for the API (run them inside
//! [`crate::tenant::begin`], so row-level security limits them to the caller's org) and
//! system reads for the roles that drive runs.

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub profile_id: Uuid,
    pub mode: String,
    pub trigger: String,
    pub state: String,
    pub attempt: i32,
    pub worker: Option<String>,
    pub stalled: bool,
    pub stalled_reason: Option<String>,
    pub seq: i64,
    pub documents: i64,
    pub deletions: i64,
    pub source_failed: i64,
    pub delivered: i64,
    pub delivery_failed: i64,
    pub targets: serde_json::Value,
    pub checkpoint: Option<serde_json::Value>,
    pub progress_done: i64,
    pub progress_total: Option<i64>,
    pub source_done: bool,
    pub error: Option<serde_json::Value>,
    pub canceled_by: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_progress_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last sign of life from the worker holding the run.
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, org_id, profile_id, mode, trigger, state, attempt, worker, stalled, \
     stalled_reason, seq, documents, deletions, source_failed, delivered, delivery_failed, \
     targets, checkpoint, progress_done, progress_total, source_done, error, canceled_by, \
     requested_at, started_at, last_progress_at, finished_at, heartbeat_at, updated_at";

fn run(r: &Row) -> RunRow {
    RunRow {
        id: r.get(0),
        org_id: r.get(1),
        profile_id: r.get(2),
        mode: r.get(3),
        trigger: r.get(4),
        state: r.get(5),
        attempt: r.get(6),
        worker: r.get(7),
        stalled: r.get(8),
        stalled_reason: r.get(9),
        seq: r.get(10),
        documents: r.get(11),
        deletions: r.get(12),
        source_failed: r.get(13),
        delivered: r.get(14),
        delivery_failed: r.get(15),
        targets: r.get(16),
        checkpoint: r.get(17),
        progress_done: r.get(18),
        progress_total: r.get(19),
        source_done: r.get(20),
        error: r.get(21),
        canceled_by: r.get(22),
        requested_at: r.get(23),
        started_at: r.get(24),
        last_progress_at: r.get(25),
        finished_at: r.get(26),
        heartbeat_at: r.get(27),
        updated_at: r.get(28),
    }
}

impl RunRow {
    /// Queued, running or interrupted: not finished.
    pub fn is_active(&self) -> bool {
        self.finished_at.is_none()
    }

    /// Documents (upserts and deletions) per second while the run ran.
    pub fn rate(&self) -> Option<f64> {
        let start = self.started_at?;
        let end = self.finished_at.or(self.last_progress_at)?;
        let secs = (end - start).num_milliseconds() as f64 / 1000.0;
        let done = (self.documents + self.deletions) as f64;
        (secs > 0.0 && done > 0.0).then(|| done / secs)
    }

    /// Seconds until the source is done, where it told how much there is.
    pub fn eta_secs(&self) -> Option<u64> {
        if !self.is_active() || self.source_done {
            return None;
        }
        let total = self.progress_total?;
        let left = (total - self.progress_done).max(0) as f64;
        let rate = self.rate()?;
        Some((left / rate).ceil() as u64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailureRow {
    pub doc_id: String,
    pub target_id: Option<Uuid>,
    pub class: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Filters of a run listing.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub profile_id: Option<Uuid>,
    pub state: Option<String>,
}

/// Runs of the org, newest first, after `before` (the last row of the previous page).
pub async fn list(
    client: &impl GenericClient,
    org: Uuid,
    filter: &RunFilter,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RunRow>> {
    let (time, id) = before.unzip();
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM sync_runs WHERE org_id = $1 \
                 AND ($2::uuid IS NULL OR profile_id = $2) \
                 AND ($3::text IS NULL OR state = $3) \
                 AND ($4::timestamptz IS NULL OR (requested_at, id) < ($4, $5)) \
                 ORDER BY requested_at DESC, id DESC LIMIT $6"
            ),
            &[&org, &filter.profile_id, &filter.state, &time, &id, &limit],
        )
        .await
        .map_err(pg("listing sync runs"))?;
    Ok(rows.iter().map(run).collect())
}

/// One run of the org.
pub async fn get(client: &impl GenericClient, org: Uuid, id: Uuid) -> Result<Option<RunRow>> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM sync_runs WHERE org_id = $1 AND id = $2"),
            &[&org, &id],
        )
        .await
        .map_err(pg("reading a sync run"))?;
    Ok(row.as_ref().map(run))
}

/// The first `limit` per-document failures of a run, oldest first.
pub async fn failures(
    client: &impl GenericClient,
    org: Uuid,
    run: Uuid,
    limit: i64,
) -> Result<Vec<FailureRow>> {
    let rows = client
        .query(
            "SELECT doc_id, target_id, class, message, at FROM sync_run_failures \
             WHERE org_id = $1 AND run_id = $2 ORDER BY seq LIMIT $3",
            &[&org, &run, &limit],
        )
        .await
        .map_err(pg("reading a run's failures"))?;
    Ok(rows
        .iter()
        .map(|r| FailureRow {
            doc_id: r.get(0),
            target_id: r.get(1),
            class: r.get(2),
            message: r.get(3),
            at: r.get(4),
        })
        .collect())
}

/// Any run by id, whatever its org (system read, for workers and the monitor).
pub async fn run_by_id(client: &impl GenericClient, id: Uuid) -> Result<Option<RunRow>> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM sync_runs WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(pg("reading a sync run"))?;
    Ok(row.as_ref().map(run))
}

/// A run not finished yet, with its profile's source kind (`None` when the profile is
/// gone from the catalog).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveRun {
    pub run: RunRow,
    pub source_kind: Option<String>,
}

/// Every run not finished yet, of every org, oldest request first (system read, for the
/// workers' claims and limits and for the monitor). At most one per profile.
pub async fn active_runs(client: &impl GenericClient) -> Result<Vec<ActiveRun>> {
    let columns: String = COLUMNS
        .split(", ")
        .map(|c| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .query(
            &format!(
                "SELECT {columns}, p.source_kind FROM sync_runs r \
                 LEFT JOIN profiles p ON p.id = r.profile_id \
                 WHERE r.finished_at IS NULL ORDER BY r.requested_at, r.id"
            ),
            &[],
        )
        .await
        .map_err(pg("listing active sync runs"))?;
    Ok(rows
        .iter()
        .map(|r| ActiveRun {
            run: run(r),
            source_kind: r.get(29),
        })
        .collect())
}
