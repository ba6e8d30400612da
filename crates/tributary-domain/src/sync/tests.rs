//! Given / when / then for sync runs.

use super::*;
use crate::testkit::{step, when};
use serde_json::json;

struct Profile {
    id: ProfileId,
    org: OrgId,
    target: TargetId,
}

fn profile() -> Profile {
    Profile {
        id: ProfileId::new(),
        org: OrgId::new(),
        target: TargetId::new(),
    }
}

const AT: &str = "2030-01-01T00:00:00Z";

fn at(secs: i64) -> String {
    (AT.parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(secs)).to_rfc3339()
}

impl Profile {
    fn request(&self, run: SyncRunId, mode: &str) -> Value {
        json!({
            "profile_id": self.id, "org_id": self.org, "run_id": run, "mode": mode,
            "trigger": "manual", "targets": [self.target], "at": AT, "actor": "system:test",
        })
    }

    fn start(&self, run: SyncRunId, worker: &str) -> Value {
        json!({ "profile_id": self.id, "run_id": run, "worker": worker, "at": at(1) })
    }

    fn batch(&self, run: SyncRunId, attempt: u32, seq: u64, docs: u64, done: bool) -> Value {
        json!({
            "profile_id": self.id, "run_id": run, "attempt": attempt, "seq": seq,
            "documents": docs, "deletions": 0, "checkpoint": { "position": seq },
            "progress": { "done": seq * docs, "total": 30 }, "source_done": done,
            "at": at(seq as i64 * 5),
        })
    }

    fn delivered(&self, run: SyncRunId, counts: Value) -> Value {
        json!({
            "profile_id": self.id, "run_id": run, "target_id": self.target, "counts": counts,
            "at": at(100),
        })
    }

    fn signal(&self, run: SyncRunId, secs: i64) -> Value {
        json!({ "profile_id": self.id, "run_id": run, "at": at(secs) })
    }
}

fn finished(decision: &Decision<SyncEvent>) -> Option<&RunFinished> {
    decision.events.iter().find_map(|e| match e {
        SyncEvent::Finished(f) => Some(f),
        _ => None,
    })
}

/// Every command and event type of a run's life, for the scenario that checks each type
/// is produced and valid.
pub(crate) fn full_lifecycle() {
    let p = profile();
    let run = SyncRunId::new();
    let (s, _) = step::<Sync>(None, REQUEST, p.request(run, "full"));
    let (s, _) = step::<Sync>(s, REQUEUE, p.signal(run, 1));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:a"));
    let (s, _) = step::<Sync>(s, HEARTBEAT, p.signal(run, 20));
    let (s, _) = step::<Sync>(s, FLAG_STALLED, p.signal(run, 300));
    let (s, _) = step::<Sync>(s, INTERRUPT, p.signal(run, 301));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:b"));
    let (s, _) = step::<Sync>(s, RECORD_BATCH, p.batch(run, 2, 1, 3, true));
    let counts = json!([{ "attempt": 2, "seq": 1, "delivered": 3, "failed": 0 }]);
    let (s, d) = step::<Sync>(s, RECORD_DELIVERIES, p.delivered(run, counts));
    assert_eq!(finished(&d).unwrap().outcome, Outcome::Succeeded);
    let second = SyncRunId::new();
    let (s, _) = step::<Sync>(s, REQUEST, p.request(second, "incremental"));
    let (s, _) = step::<Sync>(s, CANCEL, p.signal(second, 400));
    let third = SyncRunId::new();
    let (s, _) = step::<Sync>(s, REQUEST, p.request(third, "full"));
    let (s, _) = step::<Sync>(s, START, p.start(third, "worker:c"));
    let fail = json!({
        "profile_id": p.id, "run_id": third, "attempt": 1,
        "error": { "class": "config", "message": "the directory /nope does not exist" }, "at": AT,
    });
    let (s, d) = step::<Sync>(s, FAIL, fail);
    assert_eq!(finished(&d).unwrap().outcome, Outcome::Failed);
    assert!(s.unwrap().active.is_none());
}

#[test]
fn the_lifecycle_runs() {
    full_lifecycle();
}

#[test]
fn one_active_run_per_profile() {
    let p = profile();
    let (first, second) = (SyncRunId::new(), SyncRunId::new());
    let (s, _) = step::<Sync>(None, REQUEST, p.request(first, "full"));
    let refused = when::<Sync>(s.as_ref(), REQUEST, p.request(second, "full")).unwrap_err();
    assert_eq!(refused.code, RejectionCode::Conflict);
    assert!(
        refused.reason.contains("still queued"),
        "{}",
        refused.reason
    );
    // The same request again (a retry) changes nothing.
    let again = when::<Sync>(s.as_ref(), REQUEST, p.request(first, "full")).unwrap();
    assert!(again.events.is_empty());
}

#[test]
fn a_schedule_slot_runs_once() {
    let p = profile();
    let run = SyncRunId::new();
    let mut data = p.request(run, "incremental");
    data["trigger"] = json!("schedule");
    data["slot"] = json!(AT);
    let (s, _) = step::<Sync>(None, REQUEST, data.clone());
    let (s, _) = step::<Sync>(s, CANCEL, p.signal(run, 1));
    data["run_id"] = json!(SyncRunId::new());
    assert!(
        when::<Sync>(s.as_ref(), REQUEST, data.clone())
            .unwrap()
            .events
            .is_empty()
    );
    data["slot"] = json!(at(1800));
    assert_eq!(
        when::<Sync>(s.as_ref(), REQUEST, data)
            .unwrap()
            .events
            .len(),
        1
    );
}

#[test]
fn a_second_worker_cannot_take_a_running_run_until_it_is_interrupted() {
    let p = profile();
    let run = SyncRunId::new();
    let (s, _) = step::<Sync>(None, REQUEST, p.request(run, "full"));
    let (s, d) = step::<Sync>(s, START, p.start(run, "worker:a"));
    assert!(matches!(&d.events[0], SyncEvent::Started(e) if e.attempt == 1 && !e.resuming));
    let taken = when::<Sync>(s.as_ref(), START, p.start(run, "worker:b")).unwrap_err();
    assert_eq!(taken.code, RejectionCode::Conflict);
    let (s, _) = step::<Sync>(s, RECORD_BATCH, p.batch(run, 1, 1, 10, false));
    let (s, _) = step::<Sync>(s, INTERRUPT, p.signal(run, 60));
    let (s, d) = step::<Sync>(s, START, p.start(run, "worker:b"));
    match &d.events[0] {
        SyncEvent::Started(e) => {
            assert_eq!((e.attempt, e.seq, e.resuming), (2, 1, true));
            assert_eq!(e.checkpoint, Some(json!({ "position": 1 })));
        }
        other => panic!("{other:?}"),
    }
    // The first worker comes back: its batch is refused, and counts nothing.
    let zombie = when::<Sync>(s.as_ref(), RECORD_BATCH, p.batch(run, 1, 2, 10, false));
    assert!(zombie.unwrap_err().reason.contains("superseded"));
    let (s, _) = step::<Sync>(s, RECORD_BATCH, p.batch(run, 2, 2, 10, true));
    let run_state = s.as_ref().unwrap().active.as_ref().unwrap();
    assert_eq!(run_state.counts.documents, 20);
    assert_eq!(run_state.batches, vec![(1, 1, 1), (2, 2, 2)]);
}

#[test]
fn deliveries_count_only_for_recorded_batches_and_finish_the_run() {
    let p = profile();
    let run = SyncRunId::new();
    let (s, _) = step::<Sync>(None, REQUEST, p.request(run, "full"));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:a"));
    let (s, _) = step::<Sync>(s, RECORD_BATCH, p.batch(run, 1, 1, 10, false));
    let (s, _) = step::<Sync>(s, INTERRUPT, p.signal(run, 60));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:b"));
    let (s, _) = step::<Sync>(s, RECORD_BATCH, p.batch(run, 2, 2, 5, true));
    // Documents of attempt 1's unrecorded batch 2 (a zombie's) count nothing.
    let zombie = json!([{ "attempt": 1, "seq": 2, "delivered": 10, "failed": 0 }]);
    assert!(
        when::<Sync>(s.as_ref(), RECORD_DELIVERIES, p.delivered(run, zombie))
            .unwrap()
            .events
            .is_empty()
    );
    let late = json!([{ "attempt": 1, "seq": 1, "delivered": 9, "failed": 1 }]);
    let (s, d) = step::<Sync>(s, RECORD_DELIVERIES, p.delivered(run, late));
    assert!(finished(&d).is_none(), "batch 2 is not answered yet");
    let rest = json!([{ "attempt": 2, "seq": 2, "delivered": 5, "failed": 0 }]);
    let (s, d) = step::<Sync>(s, RECORD_DELIVERIES, p.delivered(run, rest));
    let end = finished(&d).expect("all answered");
    assert_eq!(end.outcome, Outcome::CompletedWithErrors);
    assert_eq!(end.counts.documents, 15);
    assert_eq!(
        end.counts.targets[&p.target],
        TargetCounts {
            delivered: 14,
            failed: 1
        }
    );
    let s = s.unwrap();
    assert_eq!(s.last, Some((run, Outcome::CompletedWithErrors)));
    // The next incremental run starts from this run's last checkpoint.
    let next = SyncRunId::new();
    let d = when::<Sync>(Some(&s), REQUEST, p.request(next, "incremental")).unwrap();
    assert!(
        matches!(&d.events[0], SyncEvent::Requested(e) if e.checkpoint == Some(json!({ "position": 2 })))
    );
    let d = when::<Sync>(Some(&s), REQUEST, p.request(next, "full")).unwrap();
    assert!(matches!(&d.events[0], SyncEvent::Requested(e) if e.checkpoint.is_none()));
    // Late reports for a finished run change nothing.
    let after = json!([{ "attempt": 2, "seq": 2, "delivered": 5, "failed": 0 }]);
    assert!(
        when::<Sync>(Some(&s), RECORD_DELIVERIES, p.delivered(run, after))
            .unwrap()
            .events
            .is_empty()
    );
}

#[test]
fn an_empty_source_finishes_at_once_and_batches_are_recorded_once_in_order() {
    let p = profile();
    let run = SyncRunId::new();
    let (s, _) = step::<Sync>(None, REQUEST, p.request(run, "full"));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:a"));
    let gap = when::<Sync>(s.as_ref(), RECORD_BATCH, p.batch(run, 1, 2, 1, false));
    assert_eq!(gap.unwrap_err().code, RejectionCode::Invalid);
    let (s, d) = step::<Sync>(s.clone(), RECORD_BATCH, p.batch(run, 1, 1, 0, true));
    assert_eq!(finished(&d).unwrap().outcome, Outcome::Succeeded);
    assert!(s.unwrap().active.is_none());
}

#[test]
fn heartbeats_are_recorded_sparingly_and_only_progress_clears_a_stall() {
    let p = profile();
    let run = SyncRunId::new();
    let (s, _) = step::<Sync>(None, REQUEST, p.request(run, "full"));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:a"));
    assert!(
        when::<Sync>(s.as_ref(), HEARTBEAT, p.signal(run, 5))
            .unwrap()
            .events
            .is_empty()
    );
    let (s, d) = step::<Sync>(s, FLAG_STALLED, p.signal(run, 600));
    assert!(
        matches!(&d.events[0], SyncEvent::Stalled(e) if e.reason.as_deref().unwrap().contains("no progress"))
    );
    assert!(
        when::<Sync>(s.as_ref(), FLAG_STALLED, p.signal(run, 700))
            .unwrap()
            .events
            .is_empty()
    );
    // The worker lives, but the run does not move: still stalled.
    let (s, d) = step::<Sync>(s, HEARTBEAT, p.signal(run, 601));
    assert_eq!(d.events.len(), 1);
    assert!(s.as_ref().unwrap().active.as_ref().unwrap().stalled);
    let (s, _) = step::<Sync>(s, RECORD_BATCH, p.batch(run, 1, 1, 0, false));
    assert!(!s.unwrap().active.unwrap().stalled);
}

#[test]
fn a_run_whose_source_is_done_needs_no_worker() {
    let p = profile();
    let run = SyncRunId::new();
    let (s, _) = step::<Sync>(None, REQUEST, p.request(run, "full"));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:a"));
    let (s, d) = step::<Sync>(s, RECORD_BATCH, p.batch(run, 1, 1, 3, true));
    assert!(finished(&d).is_none(), "the target has not answered yet");
    // The worker let go once the source was done: its missing heartbeats change nothing.
    assert!(
        when::<Sync>(s.as_ref(), INTERRUPT, p.signal(run, 120))
            .unwrap()
            .events
            .is_empty()
    );
    let refused = when::<Sync>(s.as_ref(), START, p.start(run, "worker:b")).unwrap_err();
    assert_eq!(refused.code, RejectionCode::Conflict);
    assert!(
        refused.reason.contains("needs no worker"),
        "{}",
        refused.reason
    );
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let p = profile();
    let run = SyncRunId::new();
    let mut data = p.request(run, "full");
    data["targets"] = json!([]);
    let command = Sync::parse_command(REQUEST, data).unwrap();
    assert_eq!(
        Sync::decide(None, &command).unwrap_err().code,
        RejectionCode::Invalid
    );
    let unknown = when::<Sync>(None, START, p.start(run, "worker:a")).unwrap_err();
    assert_eq!(unknown.code, RejectionCode::NotFound);
    let (s, _) = step::<Sync>(None, REQUEST, p.request(run, "full"));
    let (s, _) = step::<Sync>(s, START, p.start(run, "worker:a"));
    let mut big = p.batch(run, 1, 1, 1, false);
    big["checkpoint"] = json!({ "blob": "x".repeat(CHECKPOINT_MAX_BYTES) });
    let command = Sync::parse_command(RECORD_BATCH, big).unwrap();
    assert!(
        Sync::decide(s.as_ref(), &command)
            .unwrap_err()
            .reason
            .contains("a cursor")
    );
    let mut other_org = p.request(SyncRunId::new(), "full");
    other_org["org_id"] = json!(OrgId::new());
    let (s, _) = step::<Sync>(s, CANCEL, p.signal(run, 2));
    assert_eq!(
        when::<Sync>(s.as_ref(), REQUEST, other_org)
            .unwrap_err()
            .code,
        RejectionCode::NotFound
    );
}

#[test]
fn a_prune_starts_from_no_checkpoint_and_leaves_the_cursor_alone() {
    let p = profile();
    let sync = SyncRunId::new();
    let (s, _) = step::<Sync>(None, REQUEST, p.request(sync, "full"));
    let (s, _) = step::<Sync>(s, START, p.start(sync, "worker:a"));
    let (s, _) = step::<Sync>(s, RECORD_BATCH, p.batch(sync, 1, 1, 0, true));
    assert_eq!(s.as_ref().unwrap().cursor, Some(json!({ "position": 1 })));

    let prune = SyncRunId::new();
    let (s, d) = step::<Sync>(s, REQUEST, p.request(prune, "prune"));
    assert!(
        matches!(&d.events[0], SyncEvent::Requested(e) if e.mode == Mode::Prune && e.checkpoint.is_none())
    );
    let (s, _) = step::<Sync>(s, START, p.start(prune, "worker:a"));
    let mut last = p.batch(prune, 1, 1, 0, true);
    last["deletions"] = json!(2);
    last["checkpoint"] = json!({ "pruned": 2, "after": "b" });
    let (s, d) = step::<Sync>(s, RECORD_BATCH, last);
    assert!(
        finished(&d).is_none(),
        "the targets answer for the deletions"
    );
    let answered = json!([{ "attempt": 1, "seq": 1, "delivered": 2, "failed": 0 }]);
    let (s, d) = step::<Sync>(s, RECORD_DELIVERIES, p.delivered(prune, answered));
    let end = finished(&d).expect("every deletion answered");
    assert_eq!((end.outcome, end.counts.deletions), (Outcome::Succeeded, 2));
    let s = s.unwrap();
    assert_eq!(
        s.cursor,
        Some(json!({ "position": 1 })),
        "a prune's count is no cursor"
    );

    // Asked for again once finished (a stale scheduler): no second run under its id.
    let again = when::<Sync>(Some(&s), REQUEST, p.request(prune, "prune")).unwrap();
    assert!(again.events.is_empty());
    let next = when::<Sync>(
        Some(&s),
        REQUEST,
        p.request(SyncRunId::new(), "incremental"),
    )
    .unwrap();
    assert!(
        matches!(&next.events[0], SyncEvent::Requested(e) if e.checkpoint == Some(json!({ "position": 1 })))
    );
}
