//! The worker role: finds runs waiting for a worker, claims them through the sync
//! aggregate, and drives each claimed run's source while keeping it alive with
//! heartbeats.
//!
//! **Claims come from the read model, decisions from the aggregate.** Workers look for
//! queued and interrupted runs in `sync_runs` and ask for one with `sync.start`. The
//! aggregate (one partition per profile) lets exactly one claim through; the others are
//! refused, so a stale read model costs a refused command, never two workers on a run.
//! Any number of workers can run, none leads, and a free worker takes whatever is
//! waiting (ADR 0014).
//!
//! **Limits** count running runs across every worker, per org and per source kind, so
//! one tenant or one slow kind cannot take every slot; each process also has its own
//! number of slots.
//!
//! **Liveness.** A held run sends a heartbeat every 10 s; the monitor interrupts a run
//! whose heartbeats stopped, and another worker resumes it from its last checkpoint. A
//! worker that shuts down interrupts its runs itself, so they resume at once.

use super::credential::{CredentialStore, CredentialUpdates};
use super::drive::{Ended, drive_with, write_retrying};
use super::write::{RunRef, RunWriter, Written};
use crate::produce;
use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_connectors::source::{
    Batch, BuildContext, Connectors, Mode, Progress, Source, SourceError, Start,
};
use tributary_domain::{CommandId, OrgId, ProfileId, SyncRunId, TargetId, sync};
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_store::Db;
use tributary_store::sync_runs::{self, ActiveRun, RunRow};
use tributary_store::vault::Vault;
use uuid::Uuid;

const SOURCE: &str = "tributary://worker";
/// Who signals a run's interruption; the worker's own name is in the reason.
const ACTOR: &str = "system:worker";
/// After this many attempts an interrupted run fails instead of being claimed again.
pub const MAX_ATTEMPTS: i32 = 12;
/// Deletions per batch of a prune run.
const PRUNE_BATCH: usize = 1000;
/// How long a claim waits to learn whether it won.
const CLAIM_WAIT: Duration = Duration::from_secs(10);

/// How many runs may run at once: in this process, per org and per source kind (the
/// last two across every worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub slots: usize,
    pub per_org: usize,
    /// Per source kind; kinds not named are limited by `slots` and `per_org` only.
    pub per_kind: BTreeMap<String, usize>,
}

impl Limits {
    /// `kind=n[,kind=n…]`, e.g. `web=2,airbyte=1`; empty for none.
    pub fn parse_per_kind(spec: &str) -> Result<BTreeMap<String, usize>, String> {
        spec.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (kind, n) = part
                    .split_once('=')
                    .ok_or_else(|| format!("{part:?} is not kind=number (e.g. web=2,airbyte=1)"))?;
                let n = n.trim().parse::<usize>().map_err(|_| {
                    format!("{n:?} in {part:?} is not a number of runs (e.g. web=2)")
                })?;
                Ok((kind.trim().to_owned(), n))
            })
            .collect()
    }
}

pub struct WorkerConfig {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub db: Db,
    pub vault: Vault,
    pub connectors: Arc<Connectors>,
    pub http: reqwest::Client,
    /// Runs get scratch directories under `<data dir>/work/<run id>`.
    pub data_dir: PathBuf,
    /// This process's name on the runs it holds, e.g. `worker:<host>:<instance>`.
    pub worker_id: String,
    pub limits: Limits,
    pub heartbeat: Duration,
    /// How often to look for waiting runs when no change notice arrives.
    pub poll: Duration,
}

/// A run this worker won, and where its attempt starts.
#[derive(Debug, Clone)]
struct Claim {
    row: RunRow,
    attempt: u32,
}

struct Held {
    org: Uuid,
    kind: String,
    task: JoinHandle<()>,
}

pub struct Worker {
    config: WorkerConfig,
    producer: FutureProducer,
}

impl Worker {
    pub fn new(config: WorkerConfig) -> anyhow::Result<Self> {
        let producer = config.kafka.producer().create()?;
        Ok(Self { config, producer })
    }

    pub fn id(&self) -> &str {
        &self.config.worker_id
    }

    /// Claims and drives runs until `stop`; then interrupts what it holds (so another
    /// worker resumes it at once) and returns when every run has handed back.
    pub async fn run(
        self: Arc<Self>,
        stop: Arc<AtomicBool>,
        mut notices: Option<watch::Receiver<u64>>,
    ) {
        let mut held: HashMap<Uuid, Held> = HashMap::new();
        while !stop.load(Ordering::SeqCst) {
            held.retain(|_, h| !h.task.is_finished());
            if held.len() < self.config.limits.slots
                && let Err(e) = self.round(&mut held, &stop).await
            {
                tracing::warn!(error = %format!("{e:#}"), "looking for runs to claim failed; trying again");
            }
            let wait = tokio::time::sleep(self.config.poll);
            match notices.as_mut() {
                Some(rx) => {
                    tokio::select! {
                        _ = wait => {}
                        _ = rx.changed() => {}
                    }
                }
                None => wait.await,
            }
        }
        for (_, h) in held {
            let _ = h.task.await;
        }
    }

    /// One look at the waiting runs: claims what the limits allow, and hands back runs
    /// recorded as held by this worker that it does not drive (a claim that was decided
    /// after this worker stopped waiting for it).
    async fn round(
        self: &Arc<Self>,
        held: &mut HashMap<Uuid, Held>,
        stop: &Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let active = {
            let client = self.config.db.get().await?;
            sync_runs::active_runs(&**client).await?
        };
        let now = Utc::now();
        let (mut per_org, mut per_kind) = running_counts(&active, held);
        for run in &active {
            let row = &run.run;
            if row.state == "running"
                && row.worker.as_deref() == Some(self.id())
                && !held.contains_key(&row.id)
            {
                self.signal(
                    row,
                    sync::INTERRUPT,
                    row.attempt,
                    "its worker lost track of it",
                )
                .await?;
            }
        }
        for candidate in active.iter().filter(|r| waiting(r, now)) {
            if held.len() >= self.config.limits.slots || stop.load(Ordering::SeqCst) {
                break;
            }
            let row = &candidate.run;
            if held.contains_key(&row.id) {
                continue;
            }
            let kind = candidate.source_kind.clone().unwrap_or_default();
            if per_org.get(&row.org_id).copied().unwrap_or(0) >= self.config.limits.per_org
                || self
                    .config
                    .limits
                    .per_kind
                    .get(&kind)
                    .is_some_and(|limit| per_kind.get(&kind).copied().unwrap_or(0) >= *limit)
            {
                continue;
            }
            if row.state == "interrupted" && row.attempt >= MAX_ATTEMPTS {
                let reason = format!(
                    "the run was interrupted {} times and is not tried again; last: {}",
                    row.attempt,
                    row.stalled_reason.as_deref().unwrap_or("unknown")
                );
                self.fail(row, row.attempt as u32, "internal", &reason)
                    .await?;
                continue;
            }
            let Some(claim) = self.claim(row).await? else {
                continue;
            };
            *per_org.entry(row.org_id).or_default() += 1;
            *per_kind.entry(kind.clone()).or_default() += 1;
            let worker = self.clone();
            let stop = stop.clone();
            let id = row.id;
            let org = row.org_id;
            let task = tokio::spawn(async move { worker.hold(claim, stop).await });
            held.insert(id, Held { org, kind, task });
        }
        Ok(())
    }

    /// Asks for the run and waits to learn who got it.
    async fn claim(&self, row: &RunRow) -> anyhow::Result<Option<Claim>> {
        let data = serde_json::json!({
            "profile_id": row.profile_id, "run_id": row.id,
            "worker": self.id(), "at": Utc::now(),
        });
        self.send(row, sync::START, &data, CommandId::new()).await?;
        let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
        loop {
            let now = {
                let client = self.config.db.get().await?;
                sync_runs::run_by_id(&**client, row.id).await?
            };
            match now {
                Some(now) if now.finished_at.is_some() => return Ok(None),
                Some(now) if now.attempt > row.attempt && now.state == "running" => {
                    if now.worker.as_deref() == Some(self.id()) {
                        let attempt = now.attempt as u32;
                        tracing::info!(run = %row.id, attempt, "claimed a sync run");
                        metrics::counter!("tributary_sync_claims_total").increment(1);
                        return Ok(Some(Claim { row: now, attempt }));
                    }
                    return Ok(None);
                }
                _ if tokio::time::Instant::now() >= deadline => return Ok(None),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Drives one claimed run to its end, then reports how it ended.
    async fn hold(self: Arc<Self>, claim: Claim, stop: Arc<AtomicBool>) {
        let row = &claim.row;
        let run_stop = Arc::new(AtomicBool::new(false));
        let beat = tokio::spawn(self.clone().heartbeat(claim.clone(), run_stop.clone()));
        let ended = self.drive_claim(&claim, &stop, &run_stop).await;
        beat.abort();
        let attempt = claim.attempt;
        let result = match ended {
            Ok(Ended::SourceDone { batches, written }) => {
                tracing::info!(run = %row.id, attempt, batches, documents = written.documents,
                    deletions = written.deletions, "the source is done; the run ends once the targets answered");
                Ok(())
            }
            Ok(Ended::Stopped) if run_stop.load(Ordering::SeqCst) => {
                tracing::info!(run = %row.id, attempt, "the run was canceled or taken over; stopped");
                Ok(())
            }
            Ok(Ended::Stopped) => {
                let reason = format!(
                    "{} shut down; the run resumes from its last checkpoint",
                    self.id()
                );
                self.signal(row, sync::INTERRUPT, attempt as i32, &reason)
                    .await
            }
            Ok(Ended::GaveUp(reason)) => {
                tracing::warn!(run = %row.id, attempt, %reason, "handing the run back");
                self.signal(row, sync::INTERRUPT, attempt as i32, &reason)
                    .await
            }
            Ok(Ended::Failed(e)) => {
                let class = match &e {
                    SourceError::Config { .. } | SourceError::Unsupported { .. } => "config",
                    SourceError::Auth { .. } => "auth",
                    _ => "source",
                };
                tracing::warn!(run = %row.id, attempt, error = %e, "the run failed");
                self.fail(row, attempt, class, &e.to_string()).await
            }
            Err(Setup::Fail(class, message)) => {
                tracing::warn!(run = %row.id, attempt, %message, "the run cannot start");
                self.fail(row, attempt, class, &message).await
            }
            Err(Setup::Retry(message)) => {
                tracing::warn!(run = %row.id, attempt, %message, "the run could not start; handing it back");
                self.signal(row, sync::INTERRUPT, attempt as i32, &message)
                    .await
            }
        };
        if let Err(e) = result {
            // The monitor interrupts the run once its heartbeats are missed.
            tracing::warn!(run = %row.id, error = %format!("{e:#}"), "reporting how the run ended failed");
        }
        let _ = std::fs::remove_dir_all(self.work_dir(row.id));
    }

    fn work_dir(&self, run: Uuid) -> PathBuf {
        self.config.data_dir.join("work").join(run.to_string())
    }

    async fn drive_claim(
        &self,
        claim: &Claim,
        stop: &Arc<AtomicBool>,
        run_stop: &Arc<AtomicBool>,
    ) -> Result<Ended, Setup> {
        let row = &claim.row;
        let (kind, config, credential, opened) = self.profile(row).await?;
        let connector = self.config.connectors.get(&kind).ok_or_else(|| {
            Setup::Fail(
                "config",
                format!("this build has no {kind:?} connector; update Tributary or the profile"),
            )
        })?;
        // Checked again here: a profile command may reach Kafka without the API, and the
        // operator may have narrowed the limits since the profile was made.
        self.config
            .connectors
            .permit(&kind, &config)
            .map_err(|e| Setup::Fail("config", e.to_string()))?;
        let pruning = row.mode == "prune";
        if pruning && !connector.capabilities.prune {
            return Err(Setup::Fail(
                "config",
                format!(
                    "the {kind} source cannot list its document ids, so its profiles cannot be \
                     pruned; documents deleted at the source stay at the targets"
                ),
            ));
        }
        let work_dir = self.work_dir(row.id);
        std::fs::create_dir_all(&work_dir).map_err(|e| {
            Setup::Retry(format!(
                "could not create the scratch directory {}: {e}",
                work_dir.display()
            ))
        })?;
        let mut source = connector
            .build(BuildContext {
                config,
                credential,
                // A prune only lists ids; its checkpoint is the prune's own, not the
                // source's.
                start: Start {
                    mode: if row.mode == "incremental" {
                        Mode::Incremental
                    } else {
                        Mode::Full
                    },
                    checkpoint: row.checkpoint.clone().filter(|_| !pruning),
                    resuming: row.seq > 0 && !pruning,
                    now: row.requested_at,
                },
                http: self.config.http.clone(),
                work_dir,
            })
            .map_err(|e| match e {
                SourceError::Auth { message } => Setup::Fail("auth", message),
                e if e.is_retriable() => Setup::Retry(e.to_string()),
                e => Setup::Fail("config", e.to_string()),
            })?;
        let targets: Vec<TargetId> = row
            .targets
            .as_object()
            .map(|t| t.keys().filter_map(|k| k.parse().ok()).collect())
            .unwrap_or_default();
        let reference = RunRef {
            org: OrgId(row.org_id),
            profile: ProfileId(row.profile_id),
            run: SyncRunId(row.id),
            attempt: claim.attempt,
            targets,
        };
        let (kafka, topics) = (self.config.kafka.clone(), self.config.topics.clone());
        let writer = tokio::task::spawn_blocking(move || RunWriter::new(&kafka, topics, reference))
            .await
            .map_err(|e| Setup::Retry(format!("the writer's thread failed: {e}")))?
            .map_err(|e| Setup::Retry(format!("could not open the run's Kafka writer: {e}")))?;
        let should_stop = || stop.load(Ordering::SeqCst) || run_stop.load(Ordering::SeqCst);
        if pruning {
            return self.prune(source.as_mut(), &writer, row, should_stop).await;
        }
        // What the source hands back about its credential (an Airbyte CONTROL message)
        // is stored in the profile's credential before the batch after it is written.
        let store = opened.map(|(id, kind, version)| CredentialStore {
            producer: self.producer.clone(),
            topics: self.config.topics.clone(),
            db: self.config.db.clone(),
            vault: self.config.vault.clone(),
            org: row.org_id,
            credential: id,
            kind,
            expected_version: std::sync::Mutex::new(Some(version)),
        });
        let updates = store.as_ref().map(|s| s as &dyn CredentialUpdates);
        Ok(drive_with(
            source.as_mut(),
            &writer,
            row.seq as u64,
            should_stop,
            updates,
        )
        .await)
    }

    /// A prune run (ADR 0017): the ids the source lists now against the documents the
    /// profile's runs delivered and did not delete since (the `documents` read model).
    /// What the source no longer lists is written as deletions, [`PRUNE_BATCH`] per
    /// batch in id order, through the same writer as any run, so counts, delivery,
    /// cancellation and resumption work as for a sync. Each checkpoint names the last id
    /// written (`after`): a resumed attempt lists again and goes on after it.
    async fn prune(
        &self,
        source: &mut dyn Source,
        writer: &RunWriter,
        row: &RunRow,
        should_stop: impl Fn() -> bool,
    ) -> Result<Ended, Setup> {
        let listed = match list_ids(source, &should_stop).await {
            Ok(ids) => ids,
            Err(Ended::Failed(e @ SourceError::Unsupported { .. })) => {
                return Err(Setup::Fail(
                    "config",
                    format!(
                        "{e}, so this profile cannot be pruned; documents deleted at the source \
                         stay at the targets"
                    ),
                ));
            }
            Err(ended) => return Ok(ended),
        };
        let delivered = {
            let retry = |e: &dyn std::fmt::Display| {
                Setup::Retry(format!(
                    "reading the documents delivered for the profile: {e}"
                ))
            };
            let client = self.config.db.get().await.map_err(|e| retry(&e))?;
            tributary_store::documents::live_doc_ids(&**client, row.profile_id)
                .await
                .map_err(|e| retry(&e))?
        };
        let resumed = row.checkpoint.as_ref().filter(|_| row.seq > 0);
        let after = resumed
            .and_then(|c| c.get("after"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let mut pruned = resumed
            .and_then(|c| c.get("pruned"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let listed: HashSet<String> = listed.into_iter().collect();
        let mut gone: Vec<String> = delivered
            .into_iter()
            .filter(|id| !listed.contains(id))
            .filter(|id| after.as_ref().is_none_or(|a| id > a))
            .collect();
        gone.sort();
        tracing::info!(run = %row.id, listed = listed.len(), gone = gone.len(), "pruning");
        let total = pruned + gone.len() as u64;
        let mut chunks: Vec<&[String]> = gone.chunks(PRUNE_BATCH).collect();
        if chunks.is_empty() {
            // Nothing gone: one closing batch, so the run ends like any other.
            chunks.push(&[]);
        }
        let (start_seq, last) = (row.seq as u64, chunks.len() - 1);
        let mut seq = start_seq;
        let mut written_total = Written::default();
        let mut last_id = after;
        for (i, chunk) in chunks.into_iter().enumerate() {
            if should_stop() {
                return Ok(Ended::Stopped);
            }
            pruned += chunk.len() as u64;
            if let Some(id) = chunk.last() {
                last_id = Some(id.clone());
            }
            let batch = Batch {
                deleted: chunk.to_vec(),
                checkpoint: serde_json::json!({ "pruned": pruned, "after": last_id }),
                progress: Progress {
                    done: pruned,
                    total: Some(total),
                },
                ..Batch::default()
            };
            seq += 1;
            let done = i == last;
            let written = match write_retrying(writer, seq, batch, done).await {
                Ok(written) => written,
                Err(ended) => return Ok(ended),
            };
            written_total.deletions += written.deletions;
        }
        Ok(Ended::SourceDone {
            batches: seq - start_seq,
            written: written_total,
        })
    }

    /// The profile's source kind and config, its credential opened, and which credential
    /// (id, kind, secret version) that was.
    async fn profile(&self, row: &RunRow) -> Result<ProfileParts, Setup> {
        let retry = |e: &dyn std::fmt::Display| Setup::Retry(format!("reading the profile: {e}"));
        let client = self.config.db.get().await.map_err(|e| retry(&e))?;
        let profile = tributary_store::catalog::profile_by_id(&**client, row.profile_id)
            .await
            .map_err(|e| retry(&e))?
            .filter(|p| p.is_live() && p.org_id == row.org_id)
            .ok_or_else(|| {
                Setup::Fail("config", format!("profile {} was deleted", row.profile_id))
            })?;
        let mut opened = None;
        let credential = match profile.credential_id {
            None => None,
            Some(id) => {
                let open = tributary_store::credentials::open_value(
                    &**client,
                    &self.config.vault,
                    row.org_id,
                    id,
                )
                .await
                .map_err(|e| {
                    if e.is_shredded() {
                        Setup::Fail(
                            "auth",
                            format!("credential {id} can no longer be opened: {e}"),
                        )
                    } else {
                        Setup::Retry(format!("opening credential {id}: {e}"))
                    }
                })?
                .ok_or_else(|| {
                    Setup::Fail(
                        "auth",
                        format!("credential {id} was deleted; give the profile another"),
                    )
                })?;
                if open.status == "needs_reauthorization" {
                    return Err(Setup::Fail(
                        "auth",
                        format!(
                            "credential {id} needs to be authorized again; reconnect it and run again"
                        ),
                    ));
                }
                opened = Some((id, open.kind.clone(), open.version));
                Some(open.value)
            }
        };
        Ok((
            profile.source_kind,
            profile.source_config,
            credential,
            opened,
        ))
    }

    /// Every `heartbeat`: tells the aggregate this attempt lives, and stops the run when
    /// it was canceled, finished, or taken over.
    async fn heartbeat(self: Arc<Self>, claim: Claim, run_stop: Arc<AtomicBool>) {
        let row = &claim.row;
        loop {
            tokio::time::sleep(self.config.heartbeat).await;
            let data = serde_json::json!({
                "profile_id": row.profile_id, "run_id": row.id,
                "attempt": claim.attempt, "at": Utc::now(),
            });
            if let Err(e) = self
                .send(row, sync::HEARTBEAT, &data, CommandId::new())
                .await
            {
                tracing::warn!(run = %row.id, error = %format!("{e:#}"), "sending a heartbeat failed");
            }
            let now = match self.config.db.get().await {
                Ok(client) => sync_runs::run_by_id(&**client, row.id).await,
                Err(e) => {
                    tracing::debug!(error = %e, "no connection to look at the run");
                    continue;
                }
            };
            if let Ok(Some(now)) = now
                && (now.finished_at.is_some()
                    || now.attempt != claim.attempt as i32
                    || now.state != "running")
            {
                run_stop.store(true, Ordering::SeqCst);
                return;
            }
        }
    }

    async fn signal(
        &self,
        row: &RunRow,
        ty: &str,
        attempt: i32,
        reason: &str,
    ) -> anyhow::Result<()> {
        let data = serde_json::json!({
            "profile_id": row.profile_id, "run_id": row.id, "attempt": attempt,
            "reason": reason, "actor": ACTOR, "at": Utc::now(),
        });
        self.send(row, ty, &data, CommandId::new()).await
    }

    async fn fail(
        &self,
        row: &RunRow,
        attempt: u32,
        class: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let mut message = message.to_owned();
        if message.len() > 2000 {
            let mut end = 1990;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" […]");
        }
        let data = serde_json::json!({
            "profile_id": row.profile_id, "run_id": row.id, "attempt": attempt,
            "error": { "class": class, "message": message }, "at": Utc::now(),
        });
        self.send(row, sync::FAIL, &data, CommandId::new()).await
    }

    async fn send(
        &self,
        row: &RunRow,
        ty: &str,
        data: &serde_json::Value,
        id: CommandId,
    ) -> anyhow::Result<()> {
        let key = row.profile_id.to_string();
        produce::command_with_id(
            &self.producer,
            &self.config.topics,
            SOURCE,
            ("sync", &key),
            ty,
            OrgId(row.org_id),
            data,
            id,
        )
        .await?;
        Ok(())
    }
}

/// The source's id listing, retried like a batch pull: rate limits wait as asked,
/// transient errors back off and, if they persist, hand the run back.
async fn list_ids(
    source: &mut dyn Source,
    should_stop: &impl Fn() -> bool,
) -> Result<Vec<String>, Ended> {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(8)
        .with_jitter()
        .build();
    loop {
        if should_stop() {
            return Err(Ended::Stopped);
        }
        match source.list_ids().await {
            Ok(ids) => return Ok(ids),
            Err(SourceError::RateLimited {
                retry_after,
                message,
            }) => {
                tracing::info!(?retry_after, %message, "the source is rate limiting the listing; waiting");
                tokio::time::sleep(retry_after).await;
            }
            Err(e) if e.is_retriable() => match delays.next() {
                Some(delay) => {
                    tracing::warn!(error = %e, ?delay, "listing the source's ids failed for now; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(Ended::GaveUp(e.to_string())),
            },
            Err(e) => return Err(Ended::Failed(e)),
        }
    }
}

/// A profile's source kind and config, its opened credential value, and which
/// credential (id, kind, secret version) that was.
type ProfileParts = (
    String,
    serde_json::Value,
    Option<serde_json::Value>,
    Option<(Uuid, String, i32)>,
);

/// Why a claimed run could not start: fail it (nothing will change by retrying), or
/// hand it back to be tried again.
enum Setup {
    Fail(&'static str, String),
    Retry(String),
}

/// Whether a run waits for a worker now: queued, or interrupted long enough ago (the
/// wait doubles with each attempt, up to 5 minutes, so a run that keeps failing does not
/// spin).
fn waiting(run: &ActiveRun, now: DateTime<Utc>) -> bool {
    let row = &run.run;
    match row.state.as_str() {
        "queued" => true,
        "interrupted" => {
            let backoff = 2i64
                .saturating_pow(row.attempt.clamp(1, 12) as u32 - 1)
                .min(300);
            (now - row.updated_at).num_seconds() >= backoff
        }
        _ => false,
    }
}

/// Running runs per org and per source kind, across all workers; runs this worker just
/// claimed count even before the read model shows them.
fn running_counts(
    active: &[ActiveRun],
    held: &HashMap<Uuid, Held>,
) -> (HashMap<Uuid, usize>, HashMap<String, usize>) {
    let mut per_org: HashMap<Uuid, usize> = HashMap::new();
    let mut per_kind: HashMap<String, usize> = HashMap::new();
    for run in active
        .iter()
        .filter(|r| r.run.state == "running" && !held.contains_key(&r.run.id))
    {
        *per_org.entry(run.run.org_id).or_default() += 1;
        *per_kind
            .entry(run.source_kind.clone().unwrap_or_default())
            .or_default() += 1;
    }
    for h in held.values() {
        *per_org.entry(h.org).or_default() += 1;
        *per_kind.entry(h.kind.clone()).or_default() += 1;
    }
    (per_org, per_kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_kind_limits_parse_and_bad_ones_say_why() {
        let limits = Limits::parse_per_kind(" web=2, airbyte=1 ,").unwrap();
        assert_eq!(limits.get("web"), Some(&2));
        assert_eq!(limits.get("airbyte"), Some(&1));
        assert!(Limits::parse_per_kind("").unwrap().is_empty());
        assert!(
            Limits::parse_per_kind("web")
                .unwrap_err()
                .contains("kind=number")
        );
        assert!(
            Limits::parse_per_kind("web=x")
                .unwrap_err()
                .contains("not a number")
        );
    }
}
