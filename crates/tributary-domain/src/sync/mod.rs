//! The sync aggregate, keyed by the profile id: the runs of one profile, decided by one
//! partition, so two runs of a profile can never be active at once.
//!
//! A run is requested (by the scheduler or a person), claimed by a worker (`start`, one
//! attempt per claim), fed by the worker's batches (each written in the same Kafka
//! transaction as the batch's documents, so a batch is recorded exactly when its
//! documents exist) and by the deliverers' reports, and finishes on its own once the
//! source is exhausted and every target has answered for every document.
//!
//! Attempts make crashes safe. When a worker dies, the run is interrupted and another
//! worker starts attempt n+1 from the last recorded checkpoint. Batches and deliveries
//! name their attempt and batch number: a batch of a superseded attempt is refused, and
//! deliveries count only for batches that were recorded, so the counts equal what the
//! destinations hold even when a zombie worker wrote documents nobody recorded.

mod run;
#[cfg(test)]
pub(crate) mod tests;

pub use run::{Counts, Run, RunPhase, TargetCounts};

use crate::aggregate::{Aggregate, Decision, Rejection, RejectionCode, parse_data};
use crate::ids::{OrgId, ProfileId, SyncRunId, TargetId};
use crate::schema::{SchemaEntry, SchemaKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const REQUEST: &str = "tributary.sync.request.v1";
pub const START: &str = "tributary.sync.start.v1";
pub const RECORD_BATCH: &str = "tributary.sync.record_batch.v1";
pub const RECORD_DELIVERIES: &str = "tributary.sync.record_deliveries.v1";
pub const HEARTBEAT: &str = "tributary.sync.heartbeat.v1";
pub const FLAG_STALLED: &str = "tributary.sync.flag_stalled.v1";
pub const INTERRUPT: &str = "tributary.sync.interrupt.v1";
pub const REQUEUE: &str = "tributary.sync.requeue.v1";
pub const CANCEL: &str = "tributary.sync.cancel.v1";
pub const FAIL: &str = "tributary.sync.fail.v1";

pub const REQUESTED: &str = "tributary.sync.run_requested.v1";
pub const STARTED: &str = "tributary.sync.run_started.v1";
pub const BATCH_RECORDED: &str = "tributary.sync.batch_recorded.v1";
pub const DELIVERIES_RECORDED: &str = "tributary.sync.deliveries_recorded.v1";
pub const ALIVE: &str = "tributary.sync.run_alive.v1";
pub const STALLED: &str = "tributary.sync.run_stalled.v1";
pub const INTERRUPTED: &str = "tributary.sync.run_interrupted.v1";
pub const REQUEUED: &str = "tributary.sync.run_requeued.v1";
pub const FINISHED: &str = "tributary.sync.run_finished.v1";

/// Most per-document failures one command or event carries; more are counted, not listed.
pub const MAX_FAILURES: usize = 100;
/// Most targets one profile feeds.
pub const MAX_TARGETS: usize = 20;
/// Largest checkpoint, serialized: a source's checkpoint is a cursor, not data.
pub const CHECKPOINT_MAX_BYTES: usize = 64 * 1024;
/// Heartbeats closer together than this record nothing.
pub const HEARTBEAT_EVERY_SECS: i64 = 10;

pub struct Sync;

/// Full: everything at the source. Incremental: from the last successful run's cursor.
/// Prune: no documents; the source's id listing is compared with what was delivered, and
/// what is gone at the source is deleted at every target (ADR 0017).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Incremental,
    Prune,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
            Self::Prune => "prune",
        }
    }
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    CompletedWithErrors,
    Failed,
    Canceled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::CompletedWithErrors => "completed_with_errors",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// A document that could not be fetched or delivered: named, with a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub doc_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<TargetId>,
    /// `source`, `transient`, `rate_limited` or `permanent`.
    pub class: String,
    pub message: String,
}

/// Why a run failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunError {
    /// `config`, `auth`, `source` or `internal`.
    pub class: String,
    pub message: String,
}

/// Where a run is, as far as the source can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    pub done: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

// ---- commands -------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRun {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub run_id: SyncRunId,
    pub mode: Mode,
    pub trigger: Trigger,
    /// The targets the run feeds, as the profile names them when it is requested.
    pub targets: Vec<TargetId>,
    /// The schedule slot a scheduled run is for: a slot is run once, however many
    /// schedulers ask for it. None for a prune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    /// The claiming worker, e.g. `worker:<host>:<uuid>`.
    pub worker: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordBatch {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub attempt: u32,
    /// 1, 2, … across the whole run: attempt n+1 goes on from attempt n's last batch.
    pub seq: u64,
    /// Upserts written to the documents topic in this batch.
    pub documents: u64,
    /// Deletions written in this batch.
    pub deletions: u64,
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// How many failures the batch had in all (`failures` lists at most 100).
    #[serde(default)]
    pub failed: u64,
    /// The source's checkpoint after this batch.
    pub checkpoint: Value,
    #[serde(default)]
    pub progress: Progress,
    /// The source has nothing more: the run ends once the targets have answered.
    #[serde(default)]
    pub source_done: bool,
    pub at: DateTime<Utc>,
}

/// Counts one target's deliverer reports for the documents of one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryCount {
    pub attempt: u32,
    pub seq: u64,
    pub delivered: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordDeliveries {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub target_id: TargetId,
    pub counts: Vec<DeliveryCount>,
    #[serde(default)]
    pub failures: Vec<Failure>,
    pub at: DateTime<Utc>,
}

/// Heartbeat, flag as stalled, interrupt, requeue, cancel: a run and a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSignal {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    /// The attempt it concerns; a signal for a superseded attempt changes nothing.
    #[serde(default)]
    pub attempt: Option<u32>,
    /// For interrupt, stalled and cancel: a sentence for the run's history.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRun {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub attempt: u32,
    pub error: RunError,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SyncCommand {
    Request(RequestRun),
    Start(StartRun),
    RecordBatch(RecordBatch),
    RecordDeliveries(RecordDeliveries),
    Heartbeat(RunSignal),
    FlagStalled(RunSignal),
    Interrupt(RunSignal),
    Requeue(RunSignal),
    Cancel(RunSignal),
    Fail(FailRun),
}

// ---- events ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequested {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    pub run_id: SyncRunId,
    pub mode: Mode,
    pub trigger: Trigger,
    pub targets: Vec<TargetId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
    /// Where the source starts: the last successful run's cursor for an incremental
    /// run, none for a full one.
    #[serde(default)]
    pub checkpoint: Option<Value>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunStarted {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub attempt: u32,
    pub worker: String,
    /// Where this attempt starts: the run's last recorded checkpoint.
    #[serde(default)]
    pub checkpoint: Option<Value>,
    /// Whether `checkpoint` is this run's own (a resumed run) rather than a cursor.
    pub resuming: bool,
    /// The last batch recorded before this attempt; its first batch is `seq + 1`.
    pub seq: u64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRecorded {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub attempt: u32,
    pub seq: u64,
    pub documents: u64,
    pub deletions: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    #[serde(default)]
    pub failed: u64,
    pub checkpoint: Value,
    pub progress: Progress,
    pub source_done: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesRecorded {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub target_id: TargetId,
    pub delivered: u64,
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    pub at: DateTime<Utc>,
}

/// A heartbeat, stall, interruption or requeue of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSignaled {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFinished {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub outcome: Outcome,
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SyncEvent {
    Requested(RunRequested),
    Started(RunStarted),
    BatchRecorded(BatchRecorded),
    DeliveriesRecorded(DeliveriesRecorded),
    Alive(RunSignaled),
    Stalled(RunSignaled),
    Interrupted(RunSignaled),
    Requeued(RunSignaled),
    Finished(RunFinished),
}

impl SyncEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        let signal = || serde_json::from_slice::<RunSignaled>(data);
        match event_type {
            REQUESTED => serde_json::from_slice(data).map(Self::Requested),
            STARTED => serde_json::from_slice(data).map(Self::Started),
            BATCH_RECORDED => serde_json::from_slice(data).map(Self::BatchRecorded),
            DELIVERIES_RECORDED => serde_json::from_slice(data).map(Self::DeliveriesRecorded),
            ALIVE => signal().map(Self::Alive),
            STALLED => signal().map(Self::Stalled),
            INTERRUPTED => signal().map(Self::Interrupted),
            REQUEUED => signal().map(Self::Requeued),
            FINISHED => serde_json::from_slice(data).map(Self::Finished),
            other => Err(serde::de::Error::custom(format!(
                "unknown sync event type {other}"
            ))),
        }
    }

    pub fn run_id(&self) -> SyncRunId {
        match self {
            Self::Requested(e) => e.run_id,
            Self::Started(e) => e.run_id,
            Self::BatchRecorded(e) => e.run_id,
            Self::DeliveriesRecorded(e) => e.run_id,
            Self::Alive(e) | Self::Stalled(e) | Self::Interrupted(e) | Self::Requeued(e) => {
                e.run_id
            }
            Self::Finished(e) => e.run_id,
        }
    }
}

// ---- state ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    pub profile_id: ProfileId,
    pub org_id: OrgId,
    /// The run requested and not finished, if any.
    pub active: Option<Run>,
    /// The last schedule slot a run was requested for.
    #[serde(default)]
    pub last_slot: Option<DateTime<Utc>>,
    /// The final checkpoint of the last run that completed: incremental runs start here.
    #[serde(default)]
    pub cursor: Option<Value>,
    /// The last finished run and how it ended.
    #[serde(default)]
    pub last: Option<(SyncRunId, Outcome)>,
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::Invalid, reason)
}

fn conflict(reason: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::Conflict, reason)
}

fn check_failures(failures: &[Failure]) -> Result<(), Rejection> {
    if failures.len() > MAX_FAILURES {
        return Err(invalid(format!(
            "a command lists at most {MAX_FAILURES} failures; count the rest in `failed`"
        )));
    }
    for f in failures {
        if f.doc_id.is_empty() || f.doc_id.len() > 2048 || f.message.len() > 2000 {
            return Err(invalid(
                "a failure needs a doc_id of 1 to 2048 bytes and a message of at most 2000",
            ));
        }
    }
    Ok(())
}

/// The active run a command names, or why there is none.
fn active(state: Option<&SyncState>, run_id: SyncRunId) -> Result<&Run, Rejection> {
    let state = state.ok_or_else(|| {
        Rejection::new(
            RejectionCode::NotFound,
            format!("run {run_id} does not exist"),
        )
    })?;
    match &state.active {
        Some(run) if run.run_id == run_id => Ok(run),
        _ => Err(Rejection::new(
            RejectionCode::NotFound,
            match state.last {
                Some((last, outcome)) if last == run_id => {
                    format!("run {run_id} already finished ({})", outcome.as_str())
                }
                _ => format!("run {run_id} is not an active run of this profile"),
            },
        )),
    }
}

impl Aggregate for Sync {
    const KIND: &'static str = "sync";
    const COMMAND_TYPES: &'static [&'static str] = &[
        REQUEST,
        START,
        RECORD_BATCH,
        RECORD_DELIVERIES,
        HEARTBEAT,
        FLAG_STALLED,
        INTERRUPT,
        REQUEUE,
        CANCEL,
        FAIL,
    ];

    type State = SyncState;
    type Command = SyncCommand;
    type Event = SyncEvent;

    fn parse_command(command_type: &str, data: Value) -> Result<SyncCommand, Rejection> {
        Ok(match command_type {
            REQUEST => SyncCommand::Request(parse_data(data)?),
            START => SyncCommand::Start(parse_data(data)?),
            RECORD_BATCH => SyncCommand::RecordBatch(parse_data(data)?),
            RECORD_DELIVERIES => SyncCommand::RecordDeliveries(parse_data(data)?),
            HEARTBEAT => SyncCommand::Heartbeat(parse_data(data)?),
            FLAG_STALLED => SyncCommand::FlagStalled(parse_data(data)?),
            INTERRUPT => SyncCommand::Interrupt(parse_data(data)?),
            REQUEUE => SyncCommand::Requeue(parse_data(data)?),
            CANCEL => SyncCommand::Cancel(parse_data(data)?),
            FAIL => SyncCommand::Fail(parse_data(data)?),
            other => {
                return Err(Rejection::new(
                    RejectionCode::UnknownType,
                    format!("the sync aggregate has no command {other}"),
                ));
            }
        })
    }

    fn target(command: &SyncCommand) -> String {
        use SyncCommand as C;
        match command {
            C::Request(c) => c.profile_id,
            C::Start(c) => c.profile_id,
            C::RecordBatch(c) => c.profile_id,
            C::RecordDeliveries(c) => c.profile_id,
            C::Heartbeat(c)
            | C::FlagStalled(c)
            | C::Interrupt(c)
            | C::Requeue(c)
            | C::Cancel(c) => c.profile_id,
            C::Fail(c) => c.profile_id,
        }
        .to_string()
    }

    fn org_of(command: &SyncCommand) -> Option<OrgId> {
        match command {
            SyncCommand::Request(c) => Some(c.org_id),
            _ => None,
        }
    }

    fn decide(
        state: Option<&SyncState>,
        command: &SyncCommand,
    ) -> Result<Decision<SyncEvent>, Rejection> {
        use SyncCommand as C;
        match command {
            C::Request(c) => request(state, c),
            C::Start(c) => active(state, c.run_id)?.start(c),
            C::RecordBatch(c) => {
                check_failures(&c.failures)?;
                if serde_json::to_vec(&c.checkpoint).map_or(0, |v| v.len()) > CHECKPOINT_MAX_BYTES {
                    return Err(invalid(format!(
                        "a checkpoint is at most {CHECKPOINT_MAX_BYTES} bytes of JSON; keep a \
                         cursor in it, not data"
                    )));
                }
                active(state, c.run_id)?.record_batch(c)
            }
            C::RecordDeliveries(c) => {
                check_failures(&c.failures)?;
                match active(state, c.run_id) {
                    Ok(run) => run.record_deliveries(c),
                    // Documents of a canceled or finished run may still be delivered;
                    // their reports change nothing.
                    Err(_) => Ok(Decision::done(Vec::new())),
                }
            }
            C::Heartbeat(c) => active(state, c.run_id)?.heartbeat(c),
            C::FlagStalled(c) => active(state, c.run_id)?.flag_stalled(c),
            C::Interrupt(c) => active(state, c.run_id)?.interrupt(c),
            C::Requeue(c) => active(state, c.run_id)?.requeue(c),
            C::Cancel(c) => match active(state, c.run_id) {
                Ok(run) => Ok(run.cancel(c)),
                Err(_)
                    if state
                        .and_then(|s| s.last)
                        .is_some_and(|(id, _)| id == c.run_id) =>
                {
                    Ok(Decision::done(Vec::new()))
                }
                Err(e) => Err(e),
            },
            C::Fail(c) => active(state, c.run_id)?.fail(c),
        }
    }

    fn evolve(state: Option<SyncState>, event: &SyncEvent) -> SyncState {
        let mut state = match (state, event) {
            (Some(s), _) => s,
            (None, SyncEvent::Requested(e)) => SyncState {
                profile_id: e.profile_id,
                org_id: e.org_id,
                active: None,
                last_slot: None,
                cursor: None,
                last: None,
            },
            // An event before any request cannot come from our log; keep a state that
            // says so rather than panic in a replay.
            (None, _) => SyncState {
                profile_id: ProfileId(uuid::Uuid::nil()),
                org_id: OrgId(uuid::Uuid::nil()),
                active: None,
                last_slot: None,
                cursor: None,
                last: None,
            },
        };
        match event {
            SyncEvent::Requested(e) => {
                state.active = Some(Run::requested(e));
                if e.slot.is_some() {
                    state.last_slot = e.slot;
                }
            }
            SyncEvent::Finished(e) => {
                // A prune's checkpoint counts deletions; it is no cursor for the next run.
                if let Some(run) = state.active.take()
                    && run.mode != Mode::Prune
                    && matches!(e.outcome, Outcome::Succeeded | Outcome::CompletedWithErrors)
                {
                    state.cursor = run.checkpoint;
                }
                state.last = Some((e.run_id, e.outcome));
            }
            other => {
                if let Some(run) = state.active.as_mut() {
                    run.apply(other);
                }
            }
        }
        state
    }

    fn event_type(event: &SyncEvent) -> &'static str {
        match event {
            SyncEvent::Requested(_) => REQUESTED,
            SyncEvent::Started(_) => STARTED,
            SyncEvent::BatchRecorded(_) => BATCH_RECORDED,
            SyncEvent::DeliveriesRecorded(_) => DELIVERIES_RECORDED,
            SyncEvent::Alive(_) => ALIVE,
            SyncEvent::Stalled(_) => STALLED,
            SyncEvent::Interrupted(_) => INTERRUPTED,
            SyncEvent::Requeued(_) => REQUEUED,
            SyncEvent::Finished(_) => FINISHED,
        }
    }
}

fn request(state: Option<&SyncState>, c: &RequestRun) -> Result<Decision<SyncEvent>, Rejection> {
    if c.targets.is_empty() || c.targets.len() > MAX_TARGETS {
        return Err(invalid(format!(
            "a run feeds 1 to {MAX_TARGETS} targets; give the profile's targets"
        )));
    }
    let mut distinct = c.targets.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != c.targets.len() {
        return Err(invalid("a run names each target once"));
    }
    if let Some(state) = state {
        if state.org_id != c.org_id {
            return Err(Rejection::new(
                RejectionCode::NotFound,
                format!("profile {} does not exist", c.profile_id),
            ));
        }
        // A slot already run (another scheduler, or the same one after a restart).
        if let (Some(slot), Some(last)) = (c.slot, state.last_slot)
            && slot <= last
        {
            return Ok(Decision::done(Vec::new()));
        }
        // The run just finished, asked for again (a scheduler reading a stale read
        // model): a run id is never reused.
        if state.last.is_some_and(|(last, _)| last == c.run_id) {
            return Ok(Decision::done(Vec::new()));
        }
        if let Some(run) = &state.active {
            if run.run_id == c.run_id {
                return Ok(Decision::done(Vec::new()));
            }
            return Err(conflict(format!(
                "run {} of this profile is still {}; wait for it to finish or cancel it",
                run.run_id,
                run.phase.as_str()
            )));
        }
    }
    let checkpoint = match c.mode {
        Mode::Incremental => state.and_then(|s| s.cursor.clone()),
        Mode::Full | Mode::Prune => None,
    };
    Ok(Decision::done(vec![SyncEvent::Requested(RunRequested {
        profile_id: c.profile_id,
        org_id: c.org_id,
        run_id: c.run_id,
        mode: c.mode,
        trigger: c.trigger,
        targets: c.targets.clone(),
        slot: c.slot,
        checkpoint,
        at: c.at,
        actor: c.actor.clone(),
    })]))
}

/// The schemas of the sync aggregate's commands and events.
pub const SCHEMAS: &[SchemaEntry] = &[
    (
        REQUEST,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.request.v1.json"),
    ),
    (
        START,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.start.v1.json"),
    ),
    (
        RECORD_BATCH,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.record_batch.v1.json"),
    ),
    (
        RECORD_DELIVERIES,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.record_deliveries.v1.json"),
    ),
    (
        HEARTBEAT,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.heartbeat.v1.json"),
    ),
    (
        FLAG_STALLED,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.flag_stalled.v1.json"),
    ),
    (
        INTERRUPT,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.interrupt.v1.json"),
    ),
    (
        REQUEUE,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.requeue.v1.json"),
    ),
    (
        CANCEL,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.cancel.v1.json"),
    ),
    (
        FAIL,
        SchemaKind::Command,
        include_str!("../../../../schemas/commands/tributary.sync.fail.v1.json"),
    ),
    (
        REQUESTED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.run_requested.v1.json"),
    ),
    (
        STARTED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.run_started.v1.json"),
    ),
    (
        BATCH_RECORDED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.batch_recorded.v1.json"),
    ),
    (
        DELIVERIES_RECORDED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.deliveries_recorded.v1.json"),
    ),
    (
        ALIVE,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.run_alive.v1.json"),
    ),
    (
        STALLED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.run_stalled.v1.json"),
    ),
    (
        INTERRUPTED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.run_interrupted.v1.json"),
    ),
    (
        REQUEUED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.run_requeued.v1.json"),
    ),
    (
        FINISHED,
        SchemaKind::Event,
        include_str!("../../../../schemas/events/tributary.sync.run_finished.v1.json"),
    ),
];
