//! The scheduler against the real processor, projectors and API: each slot of a schedule
//! is run once however many schedulers tick at once; after downtime one catch-up run is
//! requested, not one per missed slot; a paused profile gets none until it is resumed; a
//! slot that falls due while a run is active is refused and requested once the run is
//! over; cron patterns with jitter. Ticks are given the time, so no test waits for a
//! clock. The app runs without its own scheduler and worker (`Roles::CONTROL`): runs stay
//! queued until the test cancels them.
//!
//! What was requested is read from the sync events topic, which only the sync aggregate
//! writes: it is what happened, whatever the read models show.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tributary::{Roles, Running};
use tributary_domain::profile::Schedule;
use tributary_domain::{ProfileId, sync};
use tributary_log::Envelope;
use tributary_runtime::scheduler::{self, Requested, Scheduler};
use tributary_store::queries::CommandRow;
use tributary_store::{Db, catalog};
use tributary_testkit::{Http, TestEnv};
use uuid::Uuid;

fn at(s: &str) -> DateTime<Utc> {
    format!("2030-01-01T{s}Z").parse().unwrap()
}

/// A `run_requested` event of the sync aggregate.
#[derive(Debug, Clone, PartialEq)]
struct RunRequested {
    run: Uuid,
    slot: Option<DateTime<Utc>>,
    trigger: String,
    mode: String,
    targets: Value,
}

struct World {
    env: TestEnv,
    _app: Running,
    http: Http,
    db: Db,
    target: Uuid,
}

impl World {
    async fn new(slug: &str) -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let app = env.start(Roles::CONTROL).await?;
        let (http, _) = Http::signed_up(&app, &format!("admin@{slug}.example.com"), slug).await?;
        let (status, target) = http
            .send(
                Method::POST,
                "/api/v1/targets",
                Some(json!({ "name": "Sink", "kind": "discard" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{target}");
        let target = target["id"].as_str().unwrap().parse()?;
        let db = tributary_store::connect(&env.settings.database_url, 4)?;
        Ok(Self {
            env,
            _app: app,
            http,
            db,
            target,
        })
    }

    /// A profile with `schedule`, once the scheduler can see it.
    async fn profile(&self, schedule: Value) -> anyhow::Result<ProfileId> {
        let (status, profile) = self
            .http
            .send(
                Method::POST,
                "/api/v1/profiles",
                Some(json!({
                    "name": "Docs",
                    "source": { "kind": "synthetic", "config": { "count": 10 } },
                    "targets": [self.target],
                    "schedule": schedule,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{profile}");
        let id: Uuid = profile["id"].as_str().unwrap().parse()?;
        self.until_scheduled(id, true).await?;
        Ok(ProfileId(id))
    }

    /// Waits until the catalog lists the profile among the scheduled ones, or not.
    async fn until_scheduled(&self, id: Uuid, scheduled: bool) -> anyhow::Result<()> {
        self.env
            .eventually(20, "the catalog to show the profile", || async {
                let client = self.db.get().await?;
                let listed = catalog::scheduled_profiles(&**client)
                    .await?
                    .iter()
                    .any(|p| p.id == id);
                Ok((listed == scheduled).then_some(()))
            })
            .await
    }

    fn scheduler(&self) -> anyhow::Result<Scheduler> {
        Scheduler::new(
            &self.env.kafka(),
            self.env.topics(),
            self.db.clone(),
            std::time::Duration::from_secs(1),
        )
    }

    /// The outcome of every request, once the processor has decided each.
    async fn settle(&self, requests: &[Requested]) -> anyhow::Result<Vec<CommandRow>> {
        let ids: BTreeSet<Uuid> = requests.iter().map(|r| r.command.0).collect();
        let ids: Vec<Uuid> = ids.into_iter().collect();
        self.env
            .eventually(20, "the requests' outcomes", || async {
                let client = self.db.get().await?;
                let rows = tributary_store::queries::commands(&**client, &ids).await?;
                let done = rows.len() == ids.len() && rows.iter().all(|r| r.status != "pending");
                Ok(done.then_some(rows))
            })
            .await
    }

    /// Every run the sync aggregate recorded as requested for `profile`, in order.
    fn requested(&self, profile: ProfileId) -> anyhow::Result<Vec<RunRequested>> {
        Ok(self
            .sync_events(profile)?
            .into_iter()
            .filter(|(ty, _)| ty == sync::REQUESTED)
            .map(|(_, e)| RunRequested {
                run: e["run_id"].as_str().unwrap().parse().unwrap(),
                slot: e["slot"].as_str().map(|s| s.parse().unwrap()),
                trigger: e["trigger"].as_str().unwrap().to_owned(),
                mode: e["mode"].as_str().unwrap().to_owned(),
                targets: e["targets"].clone(),
            })
            .collect())
    }

    /// The sync aggregate's events for `profile` (type and data), in order.
    fn sync_events(&self, profile: ProfileId) -> anyhow::Result<Vec<(String, Value)>> {
        let key = profile.to_string();
        Ok(self
            .env
            .read_all(&self.env.topics().events("sync"))?
            .into_iter()
            .filter(|r| r.key.as_deref() == Some(key.as_str()))
            .map(|r| (r.header("ce_type").unwrap_or_default().to_owned(), r.json()))
            .collect())
    }

    /// Cancels a run as a person would, and waits until the read model shows it ended.
    async fn cancel(&self, profile: ProfileId, run: Uuid) -> anyhow::Result<()> {
        let data = json!({
            "profile_id": profile, "run_id": run, "actor": "system:tests",
            "reason": "the test is done with it", "at": Utc::now(),
        });
        let envelope = Envelope::json("/tests", sync::CANCEL, &data)?;
        self.env
            .command("sync", &profile.to_string(), &envelope)
            .await?;
        self.until_run(run, "the run to end", |r| r.finished_at.is_some())
            .await
    }

    async fn until_run(
        &self,
        run: Uuid,
        what: &str,
        check: impl Fn(&tributary_store::sync_runs::RunRow) -> bool,
    ) -> anyhow::Result<()> {
        self.env
            .eventually(20, what, || async {
                let client = self.db.get().await?;
                let row = tributary_store::sync_runs::run_by_id(&**client, run).await?;
                Ok(row.filter(|r| check(r)).map(|_| ()))
            })
            .await
    }
}

/// Runs both schedulers' ticks at `now` at the same time; everything they requested.
async fn tick_both(a: &Scheduler, b: &Scheduler, now: DateTime<Utc>) -> Vec<Requested> {
    let (ra, rb) = tokio::join!(a.tick(now), b.tick(now));
    let (ra, rb) = (ra.expect("tick a"), rb.expect("tick b"));
    assert_eq!(ra.failed + rb.failed, 0, "{ra:?} {rb:?}");
    ra.requested.into_iter().chain(rb.requested).collect()
}

/// How many of the outcomes wrote an event: the requests that did something.
fn effective(outcomes: &[CommandRow]) -> i32 {
    outcomes.iter().map(|o| o.events.unwrap_or(0)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_run_each_slot_once_and_catch_up_once_after_downtime() -> anyhow::Result<()>
{
    let w = World::new("sched-once").await?;
    let profile = w.profile(json!({ "interval_secs": 3600 })).await?;
    // One trusts the runs read model to skip needless requests, one sends every due slot:
    // correctness must not depend on the read model.
    let a = w.scheduler()?;
    let b = w.scheduler()?.without_read_model();

    let mut sent = Vec::new();
    for now in ["10:00:00", "10:00:01", "10:20:00", "10:59:59"] {
        sent.extend(tick_both(&a, &b, at(now)).await);
    }
    assert!(
        sent.iter().all(|r| r.slot == at("10:00:00")),
        "every tick in the hour asks for the 10:00 slot: {sent:?}"
    );
    let outcomes = w.settle(&sent).await?;
    assert!(
        outcomes.iter().all(|o| o.status == "accepted"),
        "a repeated slot is no error: {outcomes:?}"
    );
    assert_eq!(effective(&outcomes), 1, "{outcomes:?}");
    let runs = w.requested(profile)?;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let first = &runs[0];
    assert_eq!(first.slot, Some(at("10:00:00")));
    assert_eq!(first.run, scheduler::run_id(profile, at("10:00:00")).0);
    assert_eq!(
        (first.trigger.as_str(), first.mode.as_str()),
        ("schedule", "incremental")
    );
    assert_eq!(first.targets, json!([w.target]));

    // No scheduler runs for five hours; the run finished meanwhile. Both come back at
    // once: one catch-up run, for the latest slot, not one per missed slot.
    w.cancel(profile, first.run).await?;
    let mut sent = Vec::new();
    for now in ["15:30:00", "15:30:00", "15:31:00"] {
        sent.extend(tick_both(&a, &b, at(now)).await);
    }
    assert!(sent.iter().all(|r| r.slot == at("15:00:00")), "{sent:?}");
    let outcomes = w.settle(&sent).await?;
    assert_eq!(effective(&outcomes), 1, "{outcomes:?}");
    let slots: Vec<_> = w.requested(profile)?.iter().map(|r| r.slot).collect();
    assert_eq!(slots, [Some(at("10:00:00")), Some(at("15:00:00"))]);

    // The scheduler that reads the runs read model sends nothing for a slot it sees
    // requested.
    w.until_run(
        scheduler::run_id(profile, at("15:00:00")).0,
        "the catch-up run",
        |_| true,
    )
    .await?;
    let report = a.tick(at("15:45:00")).await?;
    assert_eq!(
        (report.requested.len(), report.already_requested),
        (0, 1),
        "{report:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_profile_gets_no_runs_until_it_is_resumed() -> anyhow::Result<()> {
    let w = World::new("sched-pause").await?;
    let profile = w.profile(json!({ "interval_secs": 3600 })).await?;
    let scheduler = w.scheduler()?.without_read_model();
    let path = format!("/api/v1/profiles/{profile}");

    let (status, paused) = w
        .http
        .send(
            Method::POST,
            &format!("{path}/pause"),
            Some(json!({ "reason": "moving the share" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    w.until_scheduled(profile.0, false).await?;
    for now in ["10:30:00", "11:30:00", "12:30:00"] {
        let report = scheduler.tick(at(now)).await?;
        assert_eq!(report.profiles, 0, "{report:?}");
        assert!(report.requested.is_empty(), "{report:?}");
    }

    let (status, resumed) = w
        .http
        .send(Method::POST, &format!("{path}/resume"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    w.until_scheduled(profile.0, true).await?;
    let report = scheduler.tick(at("13:10:00")).await?;
    assert_eq!(report.requested.len(), 1, "{report:?}");
    let outcomes = w.settle(&report.requested).await?;
    assert_eq!(effective(&outcomes), 1, "{outcomes:?}");
    // The slots missed while paused are one run, for the latest of them.
    let slots: Vec<_> = w.requested(profile)?.iter().map(|r| r.slot).collect();
    assert_eq!(slots, [Some(at("13:00:00"))]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_due_during_a_run_is_refused_then_requested_once_the_run_ends() -> anyhow::Result<()>
{
    let w = World::new("sched-busy").await?;
    let profile = w.profile(json!({ "interval_secs": 3600 })).await?;
    let hinted = w.scheduler()?;
    let blind = w.scheduler()?.without_read_model();

    let report = hinted.tick(at("10:05:00")).await?;
    w.settle(&report.requested).await?;
    let first = scheduler::run_id(profile, at("10:00:00")).0;
    w.until_run(first, "the 10:00 run, queued", |r| r.state == "queued")
        .await?;

    // The 11:00 slot falls due while the 10:00 run is still active: the aggregate refuses
    // it; the scheduler that reads the runs read model does not even ask.
    let refused = blind.tick(at("11:05:00")).await?;
    assert_eq!(refused.requested.len(), 1, "{refused:?}");
    let outcome = &w.settle(&refused.requested).await?[0];
    assert_eq!(
        (outcome.status.as_str(), outcome.code.as_deref()),
        ("rejected", Some("conflict")),
        "{outcome:?}"
    );
    let skipped = hinted.tick(at("11:05:00")).await?;
    assert_eq!(
        (skipped.requested.len(), skipped.run_active),
        (0, 1),
        "{skipped:?}"
    );

    // The run ends. Within the same minute the request is the same command, and the
    // processor answers it as it did; the next minute's request runs the slot.
    w.cancel(profile, first).await?;
    let same_minute = blind.tick(at("11:05:30")).await?;
    assert_eq!(
        same_minute.requested[0].command,
        refused.requested[0].command
    );
    let outcome = &w.settle(&same_minute.requested).await?[0];
    assert_eq!(outcome.code.as_deref(), Some("conflict"));
    let next_minute = hinted.tick(at("11:06:00")).await?;
    assert_eq!(next_minute.requested.len(), 1, "{next_minute:?}");
    let outcomes = w.settle(&next_minute.requested).await?;
    assert_eq!(effective(&outcomes), 1, "{outcomes:?}");

    // Never two runs at once: the 11:00 run was requested after the 10:00 run ended.
    let order: Vec<String> = w
        .sync_events(profile)?
        .into_iter()
        .map(|(ty, e)| format!("{ty} {}", e["run_id"].as_str().unwrap_or_default()))
        .collect();
    let second = scheduler::run_id(profile, at("11:00:00")).0;
    assert_eq!(
        order,
        [
            format!("{} {first}", sync::REQUESTED),
            format!("{} {first}", sync::FINISHED),
            format!("{} {second}", sync::REQUESTED),
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_schedules_run_at_their_times_plus_the_profile_jitter() -> anyhow::Result<()> {
    let w = World::new("sched-cron").await?;
    let profile = w
        .profile(json!({ "cron": "0 */6 * * *", "jitter_secs": 900, "mode": "full" }))
        .await?;
    let jitter = Schedule {
        jitter_secs: 900,
        ..Schedule::cron("0 */6 * * *")
    }
    .jitter_for(profile);
    let scheduler = w.scheduler()?;

    // Just before noon's slot plus the jitter, the latest due slot is 06:00.
    let report = scheduler
        .tick(at("12:00:00") + jitter - Duration::seconds(1))
        .await?;
    assert_eq!(report.requested.len(), 1, "{report:?}");
    assert_eq!(report.requested[0].slot, at("06:00:00"));
    w.settle(&report.requested).await?;
    w.cancel(profile, report.requested[0].run.0).await?;

    let report = scheduler.tick(at("12:00:00") + jitter).await?;
    assert_eq!(report.requested.len(), 1, "{report:?}");
    w.settle(&report.requested).await?;
    let slots: Vec<_> = w.requested(profile)?.iter().map(|r| r.slot).collect();
    assert_eq!(slots, [Some(at("06:00:00")), Some(at("12:00:00"))]);
    // The schedule's mode: a periodic full refresh.
    let modes: Vec<_> = w.requested(profile)?.into_iter().map(|r| r.mode).collect();
    assert_eq!(modes, ["full", "full"]);
    let (status, shown) = w
        .http
        .send(Method::GET, &format!("/api/v1/profiles/{profile}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["schedule"]["mode"], "full", "{shown}");
    let (status, refused) = w
        .http
        .send(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({
                "name": "Odd", "source": { "kind": "synthetic", "config": { "count": 1 } },
                "targets": [w.target], "schedule": { "interval_secs": 3600, "mode": "prune" },
            })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    Ok(())
}
