//! The `sync_runs` read model: every run of every profile with its state, counts and
//! progress, and its per-document failures, from the sync aggregate's events.
//!
//! Only `run_requested` carries the org; later events find the run by id. Events of a
//! run whose request the model has not seen (impossible in one partition's order) are
//! skipped rather than guessed.

use super::{Table, decode_error};
use crate::error::{Result, pg};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;
use tributary_domain::sync::{Failure, SyncEvent};
use tributary_log::Envelope;
use uuid::Uuid;

pub(super) const TABLES: &[Table] = &[
    Table {
        name: "sync_runs",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/sync/sync_runs.sql"),
    },
    Table {
        name: "sync_run_failures",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/sync/sync_run_failures.sql"),
    },
];

async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    tx.execute(sql, params)
        .await
        .map_err(pg("writing the sync runs read model"))
}

pub(super) async fn apply(
    tx: &Transaction<'_>,
    version: i32,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let runs = format!("sync_runs_v{version}");
    let failures_table = format!("sync_run_failures_v{version}");
    let mut applied = 0;
    for (_, env) in batch {
        if !env.ty.starts_with("tributary.sync.") {
            continue;
        }
        let event = SyncEvent::decode(&env.ty, &env.data).map_err(|e| decode_error(env, e))?;
        let run = event.run_id().0;
        let changed = match &event {
            SyncEvent::Requested(e) => {
                let targets: serde_json::Map<String, serde_json::Value> = e
                    .targets
                    .iter()
                    .map(|t| {
                        (
                            t.to_string(),
                            serde_json::json!({ "delivered": 0, "failed": 0 }),
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO {runs} (id, org_id, profile_id, mode, trigger, state, targets,
                         checkpoint, slot, requested_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $9)
                     ON CONFLICT (id) DO NOTHING"
                );
                let (mode, trigger) = (enum_text(&e.mode), enum_text(&e.trigger));
                let targets = serde_json::Value::Object(targets);
                let params: [&(dyn ToSql + Sync); 9] = [
                    &run,
                    &e.org_id.0,
                    &e.profile_id.0,
                    &mode,
                    &trigger,
                    &targets,
                    &e.checkpoint,
                    &e.slot,
                    &e.at,
                ];
                exec(tx, &sql, &params).await?
            }
            SyncEvent::Started(e) => {
                let sql = format!(
                    "UPDATE {runs} SET state = 'running', attempt = $2, worker = $3,
                         stalled = false, stalled_reason = NULL,
                         started_at = coalesce(started_at, $4), last_progress_at = $4,
                         heartbeat_at = $4, updated_at = $4
                     WHERE id = $1"
                );
                exec(tx, &sql, &[&run, &(e.attempt as i32), &e.worker, &e.at]).await?
            }
            SyncEvent::BatchRecorded(e) => {
                let sql = format!(
                    "UPDATE {runs} SET seq = $2, documents = documents + $3,
                         deletions = deletions + $4, source_failed = source_failed + $5,
                         checkpoint = $6, progress_done = $7, progress_total = $8,
                         source_done = $9, stalled = false, stalled_reason = NULL,
                         last_progress_at = $10, heartbeat_at = $10, updated_at = $10
                     WHERE id = $1"
                );
                let params: [&(dyn ToSql + Sync); 10] = [
                    &run,
                    &(e.seq as i64),
                    &(e.documents as i64),
                    &(e.deletions as i64),
                    &(e.failed as i64),
                    &e.checkpoint,
                    &(e.progress.done as i64),
                    &e.progress.total.map(|t| t as i64),
                    &e.source_done,
                    &e.at,
                ];
                let n = exec(tx, &sql, &params).await?;
                failures(tx, &runs, &failures_table, run, &e.failures, e.at).await?;
                n
            }
            SyncEvent::DeliveriesRecorded(e) => {
                let target = e.target_id.to_string();
                let sql = format!(
                    "UPDATE {runs} SET delivered = delivered + $3, delivery_failed = delivery_failed + $4,
                         targets = jsonb_set(targets, ARRAY[$2], jsonb_build_object(
                             'delivered', coalesce((targets -> $2 ->> 'delivered')::bigint, 0) + $3,
                             'failed', coalesce((targets -> $2 ->> 'failed')::bigint, 0) + $4)),
                         stalled = false, stalled_reason = NULL,
                         last_progress_at = greatest(last_progress_at, $5), updated_at = $5
                     WHERE id = $1"
                );
                let params: [&(dyn ToSql + Sync); 5] = [
                    &run,
                    &target,
                    &(e.delivered as i64),
                    &(e.failed as i64),
                    &e.at,
                ];
                let n = exec(tx, &sql, &params).await?;
                failures(tx, &runs, &failures_table, run, &e.failures, e.at).await?;
                n
            }
            SyncEvent::Alive(e) => {
                let sql =
                    format!("UPDATE {runs} SET heartbeat_at = $2, updated_at = $2 WHERE id = $1");
                exec(tx, &sql, &[&run, &e.at]).await?
            }
            SyncEvent::Stalled(e) => {
                let sql = format!(
                    "UPDATE {runs} SET stalled = true, stalled_reason = $2, updated_at = $3
                     WHERE id = $1"
                );
                exec(tx, &sql, &[&run, &e.reason, &e.at]).await?
            }
            SyncEvent::Interrupted(e) => {
                let sql = format!(
                    "UPDATE {runs} SET state = 'interrupted', worker = NULL,
                         stalled_reason = $2, updated_at = $3 WHERE id = $1"
                );
                exec(tx, &sql, &[&run, &e.reason, &e.at]).await?
            }
            SyncEvent::Requeued(e) => {
                let sql = format!("UPDATE {runs} SET updated_at = $2 WHERE id = $1");
                exec(tx, &sql, &[&run, &e.at]).await?
            }
            SyncEvent::Finished(e) => {
                let error = e.error.as_ref().map(|e| serde_json::json!(e));
                let sql = format!(
                    "UPDATE {runs} SET state = $2, error = $3, canceled_by = $4, worker = NULL,
                         finished_at = $5, updated_at = $5
                     WHERE id = $1"
                );
                let params: [&(dyn ToSql + Sync); 5] =
                    [&run, &e.outcome.as_str(), &error, &e.actor, &e.at];
                exec(tx, &sql, &params).await?
            }
        };
        applied += changed;
    }
    Ok(applied)
}

async fn failures(
    tx: &Transaction<'_>,
    runs: &str,
    table: &str,
    run: Uuid,
    failures: &[Failure],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let docs: Vec<&str> = failures.iter().map(|f| f.doc_id.as_str()).collect();
    let targets: Vec<Option<Uuid>> = failures.iter().map(|f| f.target_id.map(|t| t.0)).collect();
    let classes: Vec<&str> = failures.iter().map(|f| f.class.as_str()).collect();
    let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
    let sql = format!(
        "INSERT INTO {table} (run_id, org_id, doc_id, target_id, class, message, at)
         SELECT $1, r.org_id, f.doc_id, f.target_id, f.class, f.message, $6
         FROM {runs} r,
              unnest($2::text[], $3::uuid[], $4::text[], $5::text[])
                  AS f(doc_id, target_id, class, message)
         WHERE r.id = $1"
    );
    exec(tx, &sql, &[&run, &docs, &targets, &classes, &messages, &at]).await?;
    Ok(())
}

/// The snake_case name serde gives a unit enum variant.
fn enum_text(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
