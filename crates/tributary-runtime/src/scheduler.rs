//! The scheduler (`tributary scheduler`): requests the runs that profiles' schedules make
//! due. Any number of schedulers may run at once; none leads, and losing any is harmless.
//!
//! **Slots.** A schedule names slots: the times of its cron pattern, or, for an interval,
//! the multiples of the interval since the Unix epoch (UTC). Every process computes the
//! same slots from the profile alone, with no state to share. Slot `s` of profile `p` is
//! due at `s + jitter(p)` ([`Schedule::jitter_for`]). A tick requests the *latest* due
//! slot only, so the slots missed while no scheduler ran (or while the profile was paused)
//! become one catch-up run, not a storm. A new profile runs at its first tick, for the
//! latest slot that is already due.
//!
//! **Mode.** A scheduled run fetches what changed since the last run, unless the
//! schedule's `mode` is `full` (a periodic full refresh).
//!
//! **Each slot runs once.** A request carries its slot and a run id derived from
//! (profile, slot). The sync aggregate, keyed by the profile, decides: a slot at or before
//! the last one it ran is a no-op, so schedulers that ask for the same slot, at the same
//! time or after a restart, start one run between them.
//!
//! **Never two runs at once.** While a run of the profile is active (a slow run, or one
//! started by hand), the request for a newer slot is refused (`conflict`). Nothing is
//! queued: the first tick after the run has finished requests the latest due slot then,
//! the refused one or a later one. A run that outlasts several slots is followed by one
//! run, not a backlog.
//!
//! **Command ids** are derived from (profile, slot, minute of the tick): schedulers that
//! tick in the same minute send the same command, which the processor decides once. The
//! minute is in the id because the processor answers a repeated id with its first outcome
//! for seven days: a request refused while a run was active must be asked again under a new
//! id once the run is over.
//!
//! **The read models are hints.** The `catalog` read model says which profiles are
//! scheduled and unpaused, and `sync_runs` lets a tick skip a profile whose due slot was
//! already requested or whose run is still active, which saves commands that would change
//! nothing. Neither decides anything: a stale read model costs a command that the
//! aggregate turns down, never a second run. (A profile paused in the instant before a
//! tick may get one more run.)
//!
//! **Prunes** ([`Scheduler::prune_tick`], ADR 0017). A live, unpaused profile is pruned
//! every `prune_interval_secs` (0: never): once its last prune run (any state, from the
//! `sync_runs` read model; else its creation) is that old, a tick requests a `prune` run.
//! Its run id comes from (profile, prune window = floor(now / interval)), so schedulers
//! ticking in the same window ask for the same run; the command id adds the retry
//! window's minute like a slot's. A prune carries no slot (slots are the schedule's), so
//! here the read model is not only a hint: it says when the last prune was. A stale one
//! costs at most a repeated request for a run the aggregate just finished, which it
//! turns down (it never reuses a run id it remembers as its last).

use chrono::{DateTime, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tributary_domain::profile::{Schedule, parse_cron};
use tributary_domain::sync::{self, Mode, RequestRun, Trigger};
use tributary_domain::{CommandId, OrgId, ProfileId, SyncRunId, TargetId};
use tributary_log::client::KafkaSettings;
use tributary_log::{Envelope, Topics};
use tributary_store::Db;
use tributary_store::catalog::{self, ProfileRow, RunsSeen};
use uuid::Uuid;

const SOURCE: &str = "/tributary/scheduler";
const ACTOR: &str = "system:scheduler";

/// Schedulers whose ticks fall in the same window of this many seconds send the same
/// command for a slot; a refused request is asked again under a new id in the next one.
pub const RETRY_WINDOW_SECS: i64 = 60;

/// The latest slot of `schedule` that is due for `profile` at `now` (its jitter
/// included), or `None` if the schedule names none (it does not validate, or its pattern
/// never matched before `now`).
pub fn latest_due_slot(
    schedule: &Schedule,
    profile: ProfileId,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let latest = now.checked_sub_signed(schedule.jitter_for(profile))?;
    match (schedule.interval_secs, &schedule.cron) {
        (Some(secs), None) => {
            let secs = i64::try_from(secs).ok().filter(|s| *s > 0)?;
            DateTime::from_timestamp(latest.timestamp().div_euclid(secs) * secs, 0)
        }
        (None, Some(pattern)) => parse_cron(pattern)
            .ok()?
            .find_previous_occurrence(&latest, true)
            .ok(),
        _ => None,
    }
}

/// The run of `profile` for `slot`: the same in every scheduler process.
pub fn run_id(profile: ProfileId, slot: DateTime<Utc>) -> SyncRunId {
    SyncRunId(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("tributary:scheduler:run/{profile}/{}", slot.timestamp()).as_bytes(),
    ))
}

/// The command that requests `slot` of `profile` in the retry window of `now`.
pub fn command_id(profile: ProfileId, slot: DateTime<Utc>, now: DateTime<Utc>) -> CommandId {
    let window = now.timestamp().div_euclid(RETRY_WINDOW_SECS);
    CommandId(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!(
            "tributary:scheduler:request/{profile}/{}/{window}",
            slot.timestamp()
        )
        .as_bytes(),
    ))
}

/// The prune run of `profile` for the prune window `window` (`floor(now / interval)`).
pub fn prune_run_id(profile: ProfileId, window: i64) -> SyncRunId {
    SyncRunId(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("tributary:scheduler:prune/{profile}/{window}").as_bytes(),
    ))
}

/// The command that requests the prune of `profile` for `window` in the retry window
/// of `now`.
pub fn prune_command_id(profile: ProfileId, window: i64, now: DateTime<Utc>) -> CommandId {
    let minute = now.timestamp().div_euclid(RETRY_WINDOW_SECS);
    CommandId(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("tributary:scheduler:prune-request/{profile}/{window}/{minute}").as_bytes(),
    ))
}

/// Whether a profile pruned every `interval_secs` (0: never) is due for a prune at
/// `now`, given when it was last pruned (or created, if never), and if so its window.
pub fn prune_window(interval_secs: i64, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<i64> {
    (interval_secs > 0 && (now - since).num_seconds() >= interval_secs)
        .then(|| now.timestamp().div_euclid(interval_secs))
}

/// A request a tick produced; the sync aggregate still decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub profile: ProfileId,
    /// The schedule slot; for a prune, the start of its prune window.
    pub slot: DateTime<Utc>,
    pub run: SyncRunId,
    pub command: CommandId,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Scheduled, unpaused profiles looked at.
    pub profiles: usize,
    /// Requests produced.
    pub requested: Vec<Requested>,
    /// Skipped: the read model shows a run for the due slot (or a later one) already.
    pub already_requested: usize,
    /// Skipped: the read model shows a run of the profile that has not finished.
    pub run_active: usize,
    /// Skipped: the schedule names no slot due yet.
    pub not_due: usize,
    /// Requests that could not be produced (logged; the next tick tries again).
    pub failed: usize,
}

pub struct Scheduler {
    topics: Topics,
    db: Db,
    tick: Duration,
    producer: FutureProducer,
    use_read_model: bool,
}

impl Scheduler {
    /// A scheduler that looks at the schedules every `tick`.
    pub fn new(
        kafka: &KafkaSettings,
        topics: Topics,
        db: Db,
        tick: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            topics,
            db,
            tick,
            producer: kafka.producer().create()?,
            use_read_model: true,
        })
    }

    /// Sends every due slot without asking the `sync_runs` read model first, leaving
    /// every decision to the sync aggregate (tests show that this alone is correct).
    pub fn without_read_model(mut self) -> Self {
        self.use_read_model = false;
        self
    }

    /// Ticks until `stop` is set.
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        tracing::info!(tick = ?self.tick, "the scheduler is running");
        while !stop.load(Ordering::SeqCst) {
            let now = Utc::now();
            if let Err(e) = self.prune_tick(now).await {
                tracing::warn!(
                    error = %format!("{e:#}"),
                    "looking for profiles to prune failed; trying again at the next tick"
                );
            }
            match self.tick(now).await {
                Ok(report) => tracing::debug!(
                    profiles = report.profiles,
                    requested = report.requested.len(),
                    already_requested = report.already_requested,
                    run_active = report.run_active,
                    failed = report.failed,
                    "scheduler tick"
                ),
                Err(e) => tracing::warn!(
                    error = %format!("{e:#}"),
                    "a scheduler tick failed; trying again at the next tick"
                ),
            }
            let step = Duration::from_millis(200);
            let mut slept = Duration::ZERO;
            while slept < self.tick && !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(step).await;
                slept += step;
            }
        }
    }

    /// Requests the latest due slot of every scheduled, unpaused profile at `now`, unless
    /// the read model shows it requested already or a run still active.
    pub async fn tick(&self, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
        let (profiles, seen) = self.read().await?;
        let mut report = TickReport {
            profiles: profiles.len(),
            ..TickReport::default()
        };
        let mut pending = Vec::new();
        for row in &profiles {
            let profile = ProfileId(row.id);
            let Some((schedule, slot)) = row
                .schedule
                .as_ref()
                .and_then(|s| Some((s, latest_due_slot(s, profile, now)?)))
            else {
                report.not_due += 1;
                continue;
            };
            let seen = seen.get(&row.id).cloned().unwrap_or_default();
            if seen.last_slot.is_some_and(|last| last >= slot) {
                report.already_requested += 1;
                skipped("already_requested");
                continue;
            }
            if seen.active.is_some() {
                report.run_active += 1;
                skipped("run_active");
                continue;
            }
            let request = Requested {
                profile,
                slot,
                run: run_id(profile, slot),
                command: command_id(profile, slot, now),
            };
            match self.send(row, &request, schedule.mode.run_mode()) {
                Ok(delivery) => pending.push((request, delivery)),
                Err(e) => {
                    report.failed += 1;
                    failed(&request, &e);
                }
            }
        }
        self.settle(pending, &mut report, "requested a scheduled run")
            .await;
        Ok(report)
    }

    /// Requests a prune of every live, unpaused profile whose last prune is
    /// `prune_interval_secs` old at `now` (see the module docs). `already_requested`
    /// counts profiles pruned recently, `not_due` those never pruned (0).
    pub async fn prune_tick(&self, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
        let client = self.db.get().await?;
        let profiles: Vec<ProfileRow> = catalog::live_profiles(&**client)
            .await?
            .into_iter()
            .filter(|p| !p.paused)
            .collect();
        let ids: Vec<Uuid> = profiles.iter().map(|p| p.id).collect();
        let last = tributary_store::documents::last_prunes(&**client, &ids).await?;
        let seen = if self.use_read_model {
            catalog::runs_seen(&**client, &ids)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not read the active runs; sending every due prune");
                    HashMap::new()
                })
        } else {
            HashMap::new()
        };
        drop(client);
        let mut report = TickReport {
            profiles: profiles.len(),
            ..TickReport::default()
        };
        let mut pending = Vec::new();
        for row in &profiles {
            if row.prune_interval_secs <= 0 {
                report.not_due += 1;
                continue;
            }
            let since = last.get(&row.id).copied().unwrap_or(row.created_at);
            let Some(window) = prune_window(row.prune_interval_secs, since, now) else {
                report.already_requested += 1;
                continue;
            };
            if seen.get(&row.id).is_some_and(|s| s.active.is_some()) {
                report.run_active += 1;
                skipped("run_active");
                continue;
            }
            let profile = ProfileId(row.id);
            let request = Requested {
                profile,
                slot: DateTime::from_timestamp(window * row.prune_interval_secs, 0).unwrap_or(now),
                run: prune_run_id(profile, window),
                command: prune_command_id(profile, window, now),
            };
            match self.send(row, &request, Mode::Prune) {
                Ok(delivery) => pending.push((request, delivery)),
                Err(e) => {
                    report.failed += 1;
                    failed(&request, &e);
                }
            }
        }
        self.settle(pending, &mut report, "requested a prune").await;
        Ok(report)
    }

    /// Waits for the queued requests and reports them.
    async fn settle(
        &self,
        pending: Vec<(Requested, rdkafka::producer::DeliveryFuture)>,
        report: &mut TickReport,
        what: &'static str,
    ) {
        for (request, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => {
                    metrics::counter!("tributary_scheduler_requested_total").increment(1);
                    tracing::info!(
                        profile = %request.profile,
                        slot = %request.slot,
                        run = %request.run,
                        "{what}"
                    );
                    report.requested.push(request);
                }
                Ok(Err((e, _))) => {
                    report.failed += 1;
                    failed(&request, &e);
                }
                Err(_canceled) => {
                    report.failed += 1;
                    failed(&request, &"the producer shut down");
                }
            }
        }
    }

    /// The scheduled profiles, and what the runs read model shows of them.
    async fn read(&self) -> anyhow::Result<(Vec<ProfileRow>, HashMap<Uuid, RunsSeen>)> {
        let client = self.db.get().await?;
        let profiles = catalog::scheduled_profiles(&**client).await?;
        if !self.use_read_model {
            return Ok((profiles, HashMap::new()));
        }
        let ids: Vec<Uuid> = profiles.iter().map(|p| p.id).collect();
        // Only a hint: without it every due slot is sent and the aggregate decides.
        let seen = catalog::runs_seen(&**client, &ids)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read the sync runs read model; sending every due slot");
                HashMap::new()
            });
        Ok((profiles, seen))
    }

    /// Queues the request with the producer; the future resolves once Kafka has it.
    fn send(
        &self,
        row: &ProfileRow,
        request: &Requested,
        mode: Mode,
    ) -> anyhow::Result<rdkafka::producer::DeliveryFuture> {
        let data = RequestRun {
            profile_id: request.profile,
            org_id: OrgId(row.org_id),
            run_id: request.run,
            // Profiles have no mode of their own: each scheduled run goes on from the
            // last cursor.
            mode,
            trigger: Trigger::Schedule,
            targets: row.targets.iter().copied().map(TargetId).collect(),
            slot: (mode != Mode::Prune).then_some(request.slot),
            // When the command was made, not the (possibly simulated) tick time.
            at: Utc::now(),
            actor: Some(ACTOR.to_owned()),
        };
        let mut env = Envelope::json(SOURCE, sync::REQUEST, &data)?;
        env.id = request.command.to_string();
        let key = request.profile.to_string();
        env.subject = Some(key.clone());
        env.org_id = Some(OrgId(row.org_id));
        let topic = self.topics.commands("sync");
        let record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&env.data)
            .headers(env.encode_headers());
        self.producer
            .send_result(record)
            .map_err(|(e, _)| anyhow::anyhow!("queueing the request for {topic}: {e}"))
    }
}

fn skipped(reason: &'static str) {
    metrics::counter!("tributary_scheduler_skipped_total", "reason" => reason).increment(1);
}

fn failed(request: &Requested, error: &dyn std::fmt::Display) {
    metrics::counter!("tributary_scheduler_failed_total").increment(1);
    tracing::warn!(
        profile = %request.profile,
        slot = %request.slot,
        error = %error,
        "could not request a scheduled run; the next tick tries again"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A profile whose jitter under `schedule` is `secs`.
    fn profile_with_jitter(schedule: &Schedule, secs: i64) -> ProfileId {
        (0..)
            .map(|_| ProfileId::new())
            .find(|p| schedule.jitter_for(*p).num_seconds() == secs)
            .unwrap()
    }

    #[test]
    fn intervals_count_from_the_epoch_and_only_the_latest_slot_is_due() {
        let hourly = Schedule::every(3600);
        let p = ProfileId::new();
        assert_eq!(
            latest_due_slot(&hourly, p, at("2030-01-01T10:59:59Z")),
            Some(at("2030-01-01T10:00:00Z"))
        );
        assert_eq!(
            latest_due_slot(&hourly, p, at("2030-01-01T11:00:00Z")),
            Some(at("2030-01-01T11:00:00Z"))
        );
        // Five slots missed: one catch-up, the latest.
        assert_eq!(
            latest_due_slot(&hourly, p, at("2030-01-01T15:30:00Z")),
            Some(at("2030-01-01T15:00:00Z"))
        );
        let odd = Schedule::every(7 * 60);
        let slot = latest_due_slot(&odd, p, at("2030-01-01T10:00:00Z")).unwrap();
        assert_eq!(slot.timestamp() % 420, 0);
        assert!(at("2030-01-01T10:00:00Z") - slot < chrono::Duration::seconds(420));
    }

    #[test]
    fn a_slot_is_due_only_once_its_jitter_has_passed() {
        let schedule = Schedule {
            jitter_secs: 600,
            ..Schedule::cron("0 * * * *")
        };
        let p = profile_with_jitter(&schedule, 120);
        assert_eq!(
            latest_due_slot(&schedule, p, at("2030-01-01T11:01:59Z")),
            Some(at("2030-01-01T10:00:00Z"))
        );
        assert_eq!(
            latest_due_slot(&schedule, p, at("2030-01-01T11:02:00Z")),
            Some(at("2030-01-01T11:00:00Z"))
        );
        let every = Schedule {
            jitter_secs: 600,
            ..Schedule::every(3600)
        };
        let p = profile_with_jitter(&every, 300);
        assert_eq!(
            latest_due_slot(&every, p, at("2030-01-01T11:04:59Z")),
            Some(at("2030-01-01T10:00:00Z"))
        );
        assert_eq!(
            latest_due_slot(&every, p, at("2030-01-01T11:05:00Z")),
            Some(at("2030-01-01T11:00:00Z"))
        );
    }

    #[test]
    fn cron_patterns_give_their_latest_past_time() {
        let p = ProfileId::new();
        let half = Schedule::cron("*/30 * * * *");
        assert_eq!(
            latest_due_slot(&half, p, at("2030-01-01T10:29:59.900Z")),
            Some(at("2030-01-01T10:00:00Z"))
        );
        assert_eq!(
            latest_due_slot(&half, p, at("2030-01-01T10:30:00Z")),
            Some(at("2030-01-01T10:30:00Z"))
        );
        // A weekday pattern after a long weekend: Friday's slot, once.
        let weekdays = Schedule::cron("0 9 * * MON-FRI");
        assert_eq!(
            latest_due_slot(&weekdays, p, at("2030-01-06T20:00:00Z")),
            Some(at("2030-01-04T09:00:00Z"))
        );
        let broken = Schedule {
            interval_secs: Some(60),
            cron: Some("* * * * *".into()),
            jitter_secs: 0,
            mode: Default::default(),
        };
        assert_eq!(
            latest_due_slot(&broken, p, at("2030-01-01T10:00:00Z")),
            None
        );
    }

    #[test]
    fn a_prune_is_due_once_the_last_one_is_an_interval_old() {
        let hour = 3600;
        let last = at("2030-01-01T10:30:00Z");
        assert_eq!(prune_window(hour, last, at("2030-01-01T11:29:59Z")), None);
        let window = prune_window(hour, last, at("2030-01-01T11:30:00Z")).unwrap();
        assert_eq!(window, at("2030-01-01T11:00:00Z").timestamp() / hour);
        assert_eq!(prune_window(0, last, at("2031-01-01T00:00:00Z")), None);
        let (p, q) = (ProfileId::new(), ProfileId::new());
        assert_eq!(prune_run_id(p, window), prune_run_id(p, window));
        assert_ne!(prune_run_id(p, window), prune_run_id(p, window + 1));
        assert_ne!(prune_run_id(p, window), prune_run_id(q, window));
        let now = at("2030-01-01T11:30:10Z");
        assert_eq!(
            prune_command_id(p, window, now),
            prune_command_id(p, window, at("2030-01-01T11:30:59Z"))
        );
        assert_ne!(
            prune_command_id(p, window, now),
            prune_command_id(p, window, at("2030-01-01T11:31:00Z"))
        );
    }

    #[test]
    fn ids_depend_on_profile_slot_and_retry_window_only() {
        let (p, q) = (ProfileId::new(), ProfileId::new());
        let (s, t) = (at("2030-01-01T10:00:00Z"), at("2030-01-01T11:00:00Z"));
        assert_eq!(run_id(p, s), run_id(p, s));
        assert_ne!(run_id(p, s), run_id(p, t));
        assert_ne!(run_id(p, s), run_id(q, s));
        let now = at("2030-01-01T10:05:00Z");
        assert_eq!(
            command_id(p, s, now),
            command_id(p, s, at("2030-01-01T10:05:59Z"))
        );
        assert_ne!(
            command_id(p, s, now),
            command_id(p, s, at("2030-01-01T10:06:00Z"))
        );
        assert_ne!(command_id(p, s, now), command_id(p, t, now));
        assert_ne!(command_id(p, s, now), command_id(q, s, now));
    }
}
