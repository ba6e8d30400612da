//! One active run: its phase, attempts, recorded batches and counts, and the decisions
//! on it.

use super::{
    BatchRecorded, DeliveriesRecorded, FailRun, HEARTBEAT_EVERY_SECS, Mode, Outcome, RecordBatch,
    RecordDeliveries, RunFinished, RunRequested, RunSignal, RunSignaled, RunStarted, StartRun,
    SyncEvent, Trigger, conflict, invalid,
};
use crate::aggregate::{Decision, Rejection};
use crate::ids::{ProfileId, SyncRunId, TargetId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

type Decided = Result<Decision<SyncEvent>, Rejection>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// Requested, waiting for a worker.
    Queued,
    Running,
    /// Its worker stopped or vanished; the next worker resumes it from its checkpoint.
    Interrupted,
}

impl RunPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What one target has answered for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCounts {
    pub delivered: u64,
    pub failed: u64,
}

/// A run's counts. `documents` and `deletions` are what the source produced; each target
/// answers for every one of them, once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub documents: u64,
    pub deletions: u64,
    /// Documents the source could not produce.
    pub source_failed: u64,
    pub targets: BTreeMap<TargetId, TargetCounts>,
}

impl Counts {
    fn expected(&self) -> u64 {
        self.documents + self.deletions
    }

    /// Every target has answered for everything produced so far.
    fn all_answered(&self) -> bool {
        self.targets
            .values()
            .all(|t| t.delivered + t.failed >= self.expected())
    }

    fn failed(&self) -> u64 {
        self.source_failed + self.targets.values().map(|t| t.failed).sum::<u64>()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub profile_id: ProfileId,
    pub run_id: SyncRunId,
    pub mode: Mode,
    pub trigger: Trigger,
    pub phase: RunPhase,
    /// 0 until a worker claims it; each claim is the next attempt.
    pub attempt: u32,
    pub worker: Option<String>,
    /// The last recorded batch.
    pub seq: u64,
    /// Recorded batches per attempt: `(attempt, first seq, last seq)`.
    pub batches: Vec<(u32, u64, u64)>,
    /// Where the next attempt resumes (or, before the first batch, where the run starts).
    pub checkpoint: Option<Value>,
    pub source_done: bool,
    pub stalled: bool,
    pub counts: Counts,
    pub last_seen: DateTime<Utc>,
}

impl Run {
    pub(super) fn requested(e: &RunRequested) -> Self {
        Self {
            profile_id: e.profile_id,
            run_id: e.run_id,
            mode: e.mode,
            trigger: e.trigger,
            phase: RunPhase::Queued,
            attempt: 0,
            worker: None,
            seq: 0,
            batches: Vec::new(),
            checkpoint: e.checkpoint.clone(),
            source_done: false,
            stalled: false,
            counts: Counts {
                targets: e
                    .targets
                    .iter()
                    .map(|t| (*t, TargetCounts::default()))
                    .collect(),
                ..Counts::default()
            },
            last_seen: e.at,
        }
    }

    fn signaled(&self, c: &RunSignal, reason: Option<String>) -> RunSignaled {
        RunSignaled {
            profile_id: self.profile_id,
            run_id: self.run_id,
            attempt: c.attempt.or((self.attempt > 0).then_some(self.attempt)),
            reason,
            at: c.at,
        }
    }

    fn superseded(&self, attempt: u32) -> Rejection {
        conflict(format!(
            "attempt {attempt} of run {} was superseded by attempt {}; this worker must stop",
            self.run_id, self.attempt
        ))
    }

    fn finished(&self, outcome: Outcome, at: DateTime<Utc>) -> RunFinished {
        RunFinished {
            profile_id: self.profile_id,
            run_id: self.run_id,
            outcome,
            counts: self.counts.clone(),
            error: None,
            actor: None,
            at,
        }
    }

    /// The run ends once the source is exhausted and every target answered for all.
    fn finish_if_complete(&self, at: DateTime<Utc>) -> Option<SyncEvent> {
        if !(self.source_done && self.counts.all_answered()) {
            return None;
        }
        let outcome = if self.counts.failed() == 0 {
            Outcome::Succeeded
        } else {
            Outcome::CompletedWithErrors
        };
        Some(SyncEvent::Finished(self.finished(outcome, at)))
    }

    /// A decision whose events are applied to a copy first, so the completion check sees
    /// the counts they bring.
    fn with_completion(&self, events: Vec<SyncEvent>, at: DateTime<Utc>) -> Decision<SyncEvent> {
        let mut after = self.clone();
        for e in &events {
            after.apply(e);
        }
        let mut events = events;
        events.extend(after.finish_if_complete(at));
        Decision::done(events)
    }

    pub(super) fn start(&self, c: &StartRun) -> Decided {
        if c.worker.is_empty() || c.worker.len() > 200 {
            return Err(invalid(
                "worker must name the claiming worker in 1 to 200 bytes",
            ));
        }
        if self.source_done {
            return Err(conflict(format!(
                "the source of run {} is done; it needs no worker, only the targets' answers",
                self.run_id
            )));
        }
        if self.phase == RunPhase::Running {
            return Err(conflict(format!(
                "run {} is held by {} (attempt {}); it must be interrupted before another \
                 worker takes it",
                self.run_id,
                self.worker.as_deref().unwrap_or("a worker"),
                self.attempt
            )));
        }
        Ok(Decision::done(vec![SyncEvent::Started(RunStarted {
            profile_id: self.profile_id,
            run_id: self.run_id,
            attempt: self.attempt + 1,
            worker: c.worker.clone(),
            checkpoint: self.checkpoint.clone(),
            resuming: self.seq > 0,
            seq: self.seq,
            at: c.at,
        })]))
    }

    pub(super) fn record_batch(&self, c: &RecordBatch) -> Decided {
        if c.attempt != self.attempt || self.phase != RunPhase::Running {
            return Err(self.superseded(c.attempt));
        }
        if c.seq <= self.seq {
            // Recorded already: a retried command.
            return Ok(Decision::done(Vec::new()));
        }
        if c.seq != self.seq + 1 {
            return Err(invalid(format!(
                "batch {} of run {} skips batches; the next batch is {}",
                c.seq,
                self.run_id,
                self.seq + 1
            )));
        }
        if self.source_done {
            return Err(conflict(format!(
                "the source of run {} is already done; no batch can follow",
                self.run_id
            )));
        }
        let event = SyncEvent::BatchRecorded(BatchRecorded {
            profile_id: self.profile_id,
            run_id: self.run_id,
            attempt: c.attempt,
            seq: c.seq,
            documents: c.documents,
            deletions: c.deletions,
            failed: c.failed.max(c.failures.len() as u64),
            failures: c.failures.clone(),
            checkpoint: c.checkpoint.clone(),
            progress: c.progress,
            source_done: c.source_done,
            at: c.at,
        });
        Ok(self.with_completion(vec![event], c.at))
    }

    /// Whether batch `seq` of `attempt` was recorded: only its documents count.
    fn recorded(&self, attempt: u32, seq: u64) -> bool {
        self.batches
            .iter()
            .any(|(a, first, last)| *a == attempt && (*first..=*last).contains(&seq))
    }

    pub(super) fn record_deliveries(&self, c: &RecordDeliveries) -> Decided {
        if !self.counts.targets.contains_key(&c.target_id) {
            return Err(invalid(format!(
                "target {} is not one of run {}'s targets",
                c.target_id, self.run_id
            )));
        }
        let (mut delivered, mut failed) = (0, 0);
        for count in c.counts.iter().filter(|n| self.recorded(n.attempt, n.seq)) {
            delivered += count.delivered;
            failed += count.failed;
        }
        if delivered == 0 && failed == 0 {
            return Ok(Decision::done(Vec::new()));
        }
        let event = SyncEvent::DeliveriesRecorded(DeliveriesRecorded {
            profile_id: self.profile_id,
            run_id: self.run_id,
            target_id: c.target_id,
            delivered,
            failed,
            failures: c.failures.clone(),
            at: c.at,
        });
        Ok(self.with_completion(vec![event], c.at))
    }

    pub(super) fn heartbeat(&self, c: &RunSignal) -> Decided {
        if self.phase != RunPhase::Running || c.attempt.is_some_and(|a| a != self.attempt) {
            return Err(self.superseded(c.attempt.unwrap_or_default()));
        }
        // A heartbeat says the worker lives, not that the run moves: it never clears a
        // stall, which only progress (a batch, a delivery report) does.
        if (c.at - self.last_seen).num_seconds() < HEARTBEAT_EVERY_SECS {
            return Ok(Decision::done(Vec::new()));
        }
        Ok(Decision::done(vec![SyncEvent::Alive(
            self.signaled(c, None),
        )]))
    }

    pub(super) fn flag_stalled(&self, c: &RunSignal) -> Decided {
        if self.stalled || c.attempt.is_some_and(|a| a != self.attempt) {
            return Ok(Decision::done(Vec::new()));
        }
        let reason = c
            .reason
            .clone()
            .unwrap_or_else(|| format!("no progress since {}", self.last_seen.to_rfc3339()));
        Ok(Decision::done(vec![SyncEvent::Stalled(
            self.signaled(c, Some(reason)),
        )]))
    }

    pub(super) fn interrupt(&self, c: &RunSignal) -> Decided {
        // A run whose source is done needs no worker any more: it waits for the targets.
        if self.phase != RunPhase::Running
            || self.source_done
            || c.attempt.is_some_and(|a| a != self.attempt)
        {
            return Ok(Decision::done(Vec::new()));
        }
        let reason = c
            .reason
            .clone()
            .unwrap_or_else(|| "the worker stopped".to_owned());
        Ok(Decision::done(vec![SyncEvent::Interrupted(
            self.signaled(c, Some(reason)),
        )]))
    }

    pub(super) fn requeue(&self, c: &RunSignal) -> Decided {
        if self.phase == RunPhase::Running {
            return Err(conflict(format!(
                "run {} is running (attempt {}); interrupt it first",
                self.run_id, self.attempt
            )));
        }
        Ok(Decision::done(vec![SyncEvent::Requeued(
            self.signaled(c, c.reason.clone()),
        )]))
    }

    pub(super) fn cancel(&self, c: &RunSignal) -> Decision<SyncEvent> {
        let mut finished = self.finished(Outcome::Canceled, c.at);
        finished.actor = c.actor.clone();
        Decision::done(vec![SyncEvent::Finished(finished)])
    }

    pub(super) fn fail(&self, c: &FailRun) -> Decided {
        if c.attempt != self.attempt {
            return Err(self.superseded(c.attempt));
        }
        if c.error.message.is_empty() || c.error.message.len() > 2000 {
            return Err(invalid("a run error needs a message of 1 to 2000 bytes"));
        }
        let mut finished = self.finished(Outcome::Failed, c.at);
        finished.error = Some(c.error.clone());
        Ok(Decision::done(vec![SyncEvent::Finished(finished)]))
    }

    pub(super) fn apply(&mut self, event: &SyncEvent) {
        match event {
            SyncEvent::Started(e) => {
                self.phase = RunPhase::Running;
                self.attempt = e.attempt;
                self.worker = Some(e.worker.clone());
                self.stalled = false;
                self.last_seen = e.at;
            }
            SyncEvent::BatchRecorded(e) => {
                self.seq = e.seq;
                match self.batches.last_mut() {
                    Some((attempt, _, last)) if *attempt == e.attempt => *last = e.seq,
                    _ => self.batches.push((e.attempt, e.seq, e.seq)),
                }
                self.checkpoint = Some(e.checkpoint.clone());
                self.source_done = e.source_done;
                self.counts.documents += e.documents;
                self.counts.deletions += e.deletions;
                self.counts.source_failed += e.failed;
                self.stalled = false;
                self.last_seen = e.at;
            }
            SyncEvent::DeliveriesRecorded(e) => {
                let target = self.counts.targets.entry(e.target_id).or_default();
                target.delivered += e.delivered;
                target.failed += e.failed;
                self.stalled = false;
            }
            SyncEvent::Alive(e) => self.last_seen = e.at,
            SyncEvent::Stalled(_) => self.stalled = true,
            SyncEvent::Interrupted(_) => {
                self.phase = RunPhase::Interrupted;
                self.worker = None;
            }
            SyncEvent::Requeued(e) => self.last_seen = e.at,
            SyncEvent::Requested(_) | SyncEvent::Finished(_) => {}
        }
    }
}
