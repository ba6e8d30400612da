//! The monitor: watches every active run and says, through the sync aggregate, when one
//! needs attention.
//!
//! - A running run whose heartbeats stopped (its worker died or hangs) is **interrupted**,
//!   so another worker resumes it from its last checkpoint without a person.
//! - A run without progress (no batch, no delivery report) for `stall_after` is
//!   **flagged as stalled** with a sentence saying what it waits for; progress clears
//!   the flag.
//!
//! Every worker process runs a monitor; none leads. Their commands carry ids derived
//! from what they decide (the run, the attempt, the time of the last sign of life), so
//! two monitors deciding the same thing send the same command once, and the aggregate
//! ignores signals for attempts that have moved on.

use crate::produce;
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tributary_domain::{CommandId, OrgId, sync};
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_store::Db;
use tributary_store::sync_runs::{self, RunRow};
use uuid::Uuid;

const SOURCE: &str = "tributary://monitor";
const ACTOR: &str = "system:monitor";

pub struct MonitorConfig {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub db: Db,
    /// A running run without a heartbeat for this long is interrupted.
    pub heartbeat_timeout: Duration,
    /// An active run without progress for this long is flagged as stalled.
    pub stall_after: Duration,
    pub tick: Duration,
}

/// What one look found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    pub active: usize,
    pub interrupted: usize,
    pub stalled: usize,
}

/// What the monitor decides for one run, with the command's deterministic id.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Interrupt { attempt: i32, reason: String },
    Stalled { reason: String },
}

pub struct Monitor {
    config: MonitorConfig,
    producer: FutureProducer,
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> anyhow::Result<Self> {
        let producer = config.kafka.producer().create()?;
        Ok(Self { config, producer })
    }

    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::SeqCst) {
            match self.check(Utc::now()).await {
                Ok(checked) => {
                    metrics::gauge!("tributary_sync_runs_active").set(checked.active as f64);
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "checking the active runs failed; trying again");
                }
            }
            let mut slept = Duration::ZERO;
            while slept < self.config.tick && !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                slept += Duration::from_millis(200);
            }
        }
    }

    /// Looks at every active run once, as of `now`.
    pub async fn check(&self, now: DateTime<Utc>) -> anyhow::Result<Checked> {
        let active = {
            let client = self.config.db.get().await?;
            sync_runs::active_runs(&**client).await?
        };
        let mut checked = Checked {
            active: active.len(),
            ..Checked::default()
        };
        for run in &active {
            for verdict in self.judge(&run.run, now) {
                let (ty, data, id) = match &verdict {
                    Verdict::Interrupt { attempt, reason } => {
                        checked.interrupted += 1;
                        let seen = run.run.heartbeat_at.unwrap_or(run.run.requested_at);
                        (
                            sync::INTERRUPT,
                            serde_json::json!({
                                "profile_id": run.run.profile_id, "run_id": run.run.id,
                                "attempt": attempt, "reason": reason, "actor": ACTOR, "at": now,
                            }),
                            decision_id(run.run.id, "interrupt", *attempt, seen),
                        )
                    }
                    Verdict::Stalled { reason } => {
                        checked.stalled += 1;
                        let seen = last_progress(&run.run);
                        (
                            sync::FLAG_STALLED,
                            serde_json::json!({
                                "profile_id": run.run.profile_id, "run_id": run.run.id,
                                "reason": reason, "actor": ACTOR, "at": now,
                            }),
                            decision_id(run.run.id, "stalled", run.run.attempt, seen),
                        )
                    }
                };
                tracing::info!(run = %run.run.id, ?verdict, "the monitor acts on a run");
                let key = run.run.profile_id.to_string();
                produce::command_with_id(
                    &self.producer,
                    &self.config.topics,
                    SOURCE,
                    ("sync", &key),
                    ty,
                    OrgId(run.run.org_id),
                    &data,
                    id,
                )
                .await?;
            }
        }
        metrics::counter!("tributary_sync_runs_interrupted_total")
            .increment(checked.interrupted as u64);
        metrics::counter!("tributary_sync_runs_stalled_total").increment(checked.stalled as u64);
        Ok(checked)
    }

    fn judge(&self, run: &RunRow, now: DateTime<Utc>) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        let since = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default();
        // Once the source is done no worker holds the run: it waits for the targets.
        if run.state == "running" && !run.source_done {
            let seen = run
                .heartbeat_at
                .or(run.started_at)
                .unwrap_or(run.requested_at);
            if since(seen) >= self.config.heartbeat_timeout {
                verdicts.push(Verdict::Interrupt {
                    attempt: run.attempt,
                    reason: format!(
                        "no heartbeat from {} since {}; another worker resumes the run from its \
                         last checkpoint",
                        run.worker.as_deref().unwrap_or("its worker"),
                        seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                });
            }
        }
        let progress = last_progress(run);
        if !run.stalled && since(progress) >= self.config.stall_after {
            let at = progress.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let reason = match run.state.as_str() {
                "queued" => format!(
                    "queued since {at} and no worker has claimed it: is a worker running, or \
                     are the org's or the connector kind's run limits reached?"
                ),
                "interrupted" => format!(
                    "interrupted and not resumed since {at} ({}); is a worker running?",
                    run.stalled_reason.as_deref().unwrap_or("no reason given")
                ),
                _ if run.source_done => format!(
                    "the source is done but the targets have not answered since {at}: is a \
                     deliverer running, and are the targets reachable? (see the dead letters)"
                ),
                _ => format!(
                    "no documents from the source since {at}; the worker is alive but the source \
                     does not answer, or asked to wait"
                ),
            };
            verdicts.push(Verdict::Stalled { reason });
        }
        verdicts
    }
}

fn last_progress(run: &RunRow) -> DateTime<Utc> {
    run.last_progress_at.unwrap_or(run.requested_at)
}

/// The same decision about the same run, by any monitor, gets the same command id.
fn decision_id(run: Uuid, what: &str, attempt: i32, seen: DateTime<Utc>) -> CommandId {
    let name = format!("{run}/{what}/{attempt}/{}", seen.timestamp_micros());
    CommandId(Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()))
}
