//! Pruning as `tributary serve` runs it (ADR 0017): a prune run compares the source's id
//! listing with the `documents` read model (what the profile's runs delivered) and
//! deletes at every target what is gone at the source; a second prune deletes nothing,
//! and the next incremental run still starts from the last sync's cursor. A source that
//! cannot list its ids fails the prune with a sentence saying so. The scheduler requests
//! one prune per profile and prune window, however often it ticks.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use tributary::Roles;
use tributary_domain::{ProfileId, sync};
use tributary_log::Envelope;
use tributary_runtime::scheduler::{self, Scheduler};
use tributary_store::catalog;
use tributary_testkit::{Http, TestEnv};
use uuid::Uuid;

const FAKE_AIRBYTE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tributary-connectors/tests/fixtures/airbyte/fake_source.py"
);

async fn create(http: &Http, path: &str, body: Value) -> String {
    let (status, created) = http.send(Method::POST, path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Requests a run of `mode` through the API; its id.
async fn request(http: &Http, profile: &str, mode: &str) -> String {
    let (status, run) = http
        .send(
            Method::POST,
            &format!("/api/v1/profiles/{profile}/sync"),
            Some(json!({ "mode": mode })),
        )
        .await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::ACCEPTED,
        "{status} {run}"
    );
    run["run_id"].as_str().unwrap().to_owned()
}

async fn finished(env: &TestEnv, http: &Http, run: &str) -> anyhow::Result<Value> {
    env.eventually(90, "the run to finish", || async {
        let (status, body) = http
            .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
            .await;
        Ok((status == StatusCode::OK && body["finished_at"].is_string()).then_some(body))
    })
    .await
}

/// Waits until the `documents` read model shows `live` documents of `profile`.
async fn until_live(env: &TestEnv, profile: &str, live: i64) -> anyhow::Result<()> {
    let pg = env.pg().await?;
    let profile: Uuid = profile.parse()?;
    env.eventually(30, "the documents read model", || async {
        let n: i64 = pg
            .query_one(
                "SELECT count(*) FROM documents WHERE profile_id = $1 AND NOT deleted",
                &[&profile],
            )
            .await?
            .get(0);
        Ok((n == live).then_some(()))
    })
    .await
}

/// The doc ids of a CSV target's rows with `op`.
fn csv_ids(path: &Path, op: &str) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::Reader::from_path(path)?;
    let mut ids = Vec::new();
    for record in reader.records() {
        let record = record?;
        if &record[1] == op {
            ids.push(record[3].to_owned());
        }
    }
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn documents_gone_at_the_source_are_deleted_at_every_target() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::ALL).await?;
    let (http, _) = Http::signed_up(&app, "prune@example.com", "prune").await?;
    let dir = tempfile::tempdir()?;
    for name in ["a", "b", "c", "d", "e"] {
        std::fs::write(dir.path().join(format!("{name}.md")), format!("# {name}\n"))?;
    }
    let target = create(
        &http,
        "/api/v1/targets",
        json!({ "name": "Out", "kind": "csv", "config": { "path": "prune.csv" } }),
    )
    .await;
    let csv = env.settings.data_dir.join("prune.csv");
    let profile = create(
        &http,
        "/api/v1/profiles",
        json!({
            "name": "Files",
            "source": { "kind": "filesystem", "config": { "root": dir.path() } },
            "targets": [target],
        }),
    )
    .await;

    let run = request(&http, &profile, "full").await;
    let synced = finished(&env, &http, &run).await?;
    assert_eq!(synced["state"], "succeeded", "{synced}");
    assert_eq!(synced["counts"]["fetched"], 5, "{synced}");
    let delivered: BTreeSet<String> = csv_ids(&csv, "upsert")?.into_iter().collect();
    assert_eq!(delivered.len(), 5, "{delivered:?}");
    until_live(&env, &profile, 5).await?;

    std::fs::remove_file(dir.path().join("b.md"))?;
    std::fs::remove_file(dir.path().join("d.md"))?;
    let prune = request(&http, &profile, "prune").await;
    let pruned = finished(&env, &http, &prune).await?;
    assert_eq!(pruned["state"], "succeeded", "{pruned}");
    assert_eq!(pruned["mode"], "prune", "{pruned}");
    assert_eq!(pruned["counts"]["fetched"], 0, "{pruned}");
    assert_eq!(pruned["counts"]["deleted"], 2, "{pruned}");
    assert_eq!(pruned["counts"]["delivered"], 2, "{pruned}");
    assert_eq!(pruned["targets"][&target]["delivered"], 2, "{pruned}");
    // Each document's records keep their order; different documents' need not.
    let deleted: BTreeSet<String> = csv_ids(&csv, "delete")?.into_iter().collect();
    assert_eq!(csv_ids(&csv, "delete")?.len(), 2, "one delete row each");
    let expected: BTreeSet<String> = delivered
        .iter()
        .filter(|id| id.ends_with("b.md") || id.ends_with("d.md"))
        .cloned()
        .collect();
    assert_eq!(expected.len(), 2, "{delivered:?}");
    assert_eq!(
        deleted, expected,
        "a delete row for exactly the files removed"
    );

    // The index saw the deletions: nothing is left to prune.
    until_live(&env, &profile, 3).await?;
    let again = request(&http, &profile, "prune").await;
    let again = finished(&env, &http, &again).await?;
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["counts"]["deleted"], 0, "{again}");
    assert_eq!(csv_ids(&csv, "delete")?.len(), 2, "no delete row more");

    // The read model comes from the compacted index, not the documents: an entry per
    // change with no content (a tombstone for a deletion), and a rebuild from it gives
    // the same live documents.
    let index = env.read_all(&env.topics().documents_index())?;
    let upserts = index
        .iter()
        .filter(|r| r.payload.as_deref() == Some(&[][..]));
    assert_eq!(upserts.count(), 5, "one empty entry per delivered document");
    let tombstones: BTreeSet<String> = index
        .iter()
        .filter(|r| r.payload.is_none())
        .filter_map(|r| r.key.as_deref()?.split_once('/').map(|(_, d)| d.to_owned()))
        .collect();
    assert_eq!(tombstones, expected, "a tombstone for each pruned document");
    assert!(
        index
            .iter()
            .all(|r| r.header("tributary-op").is_some() && r.header("ce_orgid").is_some()),
        "index entries carry the record's headers"
    );
    let db = tributary_store::connect(&env.settings.database_url, 2)?;
    let (kafka, topics, handle) = (
        tributary_log::client::KafkaSettings::new(&env.settings.kafka_brokers),
        env.topics(),
        tokio::runtime::Handle::current(),
    );
    tokio::task::spawn_blocking(move || {
        tributary_runtime::rebuild(
            tributary_store::Projection::Documents,
            &kafka,
            &topics,
            &db,
            &handle,
            500,
        )
    })
    .await??;
    until_live(&env, &profile, 3).await?;

    // A prune's checkpoint is not a cursor: the next incremental run starts from the
    // full sync's.
    let next = request(&http, &profile, "incremental").await;
    let done = finished(&env, &http, &next).await?;
    assert_eq!(done["state"], "succeeded", "{done}");
    let requested = env
        .read_all(&env.topics().events("sync"))?
        .into_iter()
        .filter(|r| r.header("ce_type") == Some(sync::REQUESTED))
        .map(|r| r.json())
        .find(|e| e["run_id"] == next.as_str())
        .expect("the incremental run's request");
    let cursor = &requested["checkpoint"];
    assert!(
        cursor.is_object() && cursor.get("pruned").is_none(),
        "the full sync's cursor, not a prune's count: {cursor}"
    );
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_that_cannot_list_its_ids_fails_the_prune_clearly() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::ALL).await?;
    let (http, _) = Http::signed_up(&app, "noprune@example.com", "noprune").await?;
    let target = create(
        &http,
        "/api/v1/targets",
        json!({ "name": "Sink", "kind": "discard" }),
    )
    .await;
    // The fake Airbyte source's `events` stream supports incremental sync only, so it
    // cannot be listed completely.
    let profile = create(
        &http,
        "/api/v1/profiles",
        json!({
            "name": "Events",
            "source": { "kind": "airbyte", "config": {
                "command": ["python3", FAKE_AIRBYTE],
                "config": { "scenario": "basic" },
                "streams": [{ "name": "events" }],
                "timeout_secs": 60,
            } },
            "targets": [target],
        }),
    )
    .await;
    let (status, body) = http
        .send(
            Method::POST,
            &format!("/api/v1/profiles/{profile}/sync"),
            Some(json!({ "mode": "sometimes" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("prune"),
        "the modes are named: {body}"
    );
    let run = request(&http, &profile, "prune").await;
    let done = finished(&env, &http, &run).await?;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["error"]["class"], "config", "{done}");
    let message = done["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("airbyte source cannot list ids") && message.contains("cannot be pruned"),
        "{message}"
    );
    app.shutdown().await;
    Ok(())
}

/// The prune runs the sync aggregate recorded as requested for `profile`, in order.
fn prunes_requested(env: &TestEnv, profile: ProfileId) -> anyhow::Result<Vec<Uuid>> {
    let key = profile.to_string();
    Ok(env
        .read_all(&env.topics().events("sync"))?
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(key.as_str()))
        .filter(|r| r.header("ce_type") == Some(sync::REQUESTED))
        .map(|r| r.json())
        .filter(|e| e["mode"] == "prune")
        .map(|e| e["run_id"].as_str().unwrap().parse().unwrap())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduler_requests_one_prune_per_profile_and_window() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    // No worker: a requested prune stays queued until the test cancels it.
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "pruner@example.com", "pruner").await?;
    let target = create(
        &http,
        "/api/v1/targets",
        json!({ "name": "Sink", "kind": "discard" }),
    )
    .await;
    let synthetic = |name: &str, prune_interval_secs: u64| {
        json!({
            "name": name,
            "source": { "kind": "synthetic", "config": { "count": 3 } },
            "targets": [target],
            "prune_interval_secs": prune_interval_secs,
        })
    };
    let profile = create(&http, "/api/v1/profiles", synthetic("Docs", 3600)).await;
    // 0 means never pruned on a schedule; between 0 and an hour is refused.
    let (status, refused) = http
        .send(
            Method::POST,
            "/api/v1/profiles",
            Some(synthetic("Too often", 60)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("0 (never)"), "{refused}");
    let never = create(&http, "/api/v1/profiles", synthetic("Never pruned", 0)).await;
    let never = ProfileId(never.parse()?);
    let id: Uuid = profile.parse()?;
    let profile = ProfileId(id);
    let db = tributary_store::connect(&env.settings.database_url, 4)?;
    env.eventually(20, "the catalog to show the profiles", || async {
        let client = db.get().await?;
        let live = catalog::live_profiles(&**client).await?;
        Ok((live.iter().any(|p| p.id == id) && live.iter().any(|p| p.id == never.0)).then_some(()))
    })
    .await?;
    let scheduler = Scheduler::new(
        &env.kafka(),
        env.topics(),
        db.clone(),
        std::time::Duration::from_secs(1),
    )?;
    let mine = |report: &scheduler::TickReport| {
        report
            .requested
            .iter()
            .filter(|r| r.profile == profile)
            .cloned()
            .collect::<Vec<_>>()
    };

    // A new profile is first pruned an interval after it was created.
    let report = scheduler.prune_tick(Utc::now()).await?;
    assert!(mine(&report).is_empty(), "{report:?}");

    let now = Utc::now() + Duration::hours(2);
    let window = now.timestamp().div_euclid(3600);
    let first = scheduler.prune_tick(now).await?;
    let requested = mine(&first);
    assert_eq!(requested.len(), 1, "{first:?}");
    assert!(
        first.requested.iter().all(|r| r.profile != never),
        "a profile with interval 0 is never due: {first:?}"
    );

    assert_eq!(requested[0].run, scheduler::prune_run_id(profile, window));
    let run = requested[0].run.0;
    let pg = env.pg().await?;
    env.eventually(20, "the prune run in the read model", || async {
        let row = pg
            .query_opt(
                "SELECT mode, trigger, slot IS NULL FROM sync_runs WHERE id = $1",
                &[&run],
            )
            .await?;
        Ok(row.map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, bool>(2),
            )
        }))
    })
    .await
    .map(|(mode, trigger, no_slot)| {
        assert_eq!(
            (mode.as_str(), trigger.as_str(), no_slot),
            ("prune", "schedule", true)
        );
    })?;

    // Ticks later in the window, while the prune waits for a worker: nothing more.
    let busy = scheduler.prune_tick(now + Duration::minutes(1)).await?;
    assert!(mine(&busy).is_empty(), "{busy:?}");
    assert!(busy.run_active >= 1, "{busy:?}");

    // Once it ended, a scheduler whose read model still says "due" asks again in the same
    // window under a new command id: the aggregate does not run it twice.
    let data = json!({
        "profile_id": profile, "run_id": run, "actor": "system:tests",
        "reason": "the test is done with it", "at": Utc::now(),
    });
    env.command(
        "sync",
        &profile.to_string(),
        &Envelope::json("/tests", sync::CANCEL, &data)?,
    )
    .await?;
    env.eventually(20, "the prune to end", || async {
        let row = pg
            .query_opt(
                "SELECT finished_at IS NOT NULL FROM sync_runs WHERE id = $1",
                &[&run],
            )
            .await?;
        Ok(row.filter(|r| r.get::<_, bool>(0)).map(|_| ()))
    })
    .await?;
    let repeat = scheduler.prune_tick(now + Duration::minutes(2)).await?;
    assert_eq!(
        mine(&repeat).len(),
        1,
        "the read model is only so wise: {repeat:?}"
    );
    assert_eq!(mine(&repeat)[0].run.0, run);

    // The next window is a new prune.
    let later = now + Duration::hours(1);
    let next = scheduler.prune_tick(later).await?;
    let next = mine(&next);
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(
        next[0].run,
        scheduler::prune_run_id(profile, later.timestamp().div_euclid(3600))
    );
    let second = next[0].run.0;
    env.eventually(20, "both prunes recorded", || async {
        let prunes = prunes_requested(&env, profile)?;
        Ok((prunes.len() >= 2).then_some(prunes))
    })
    .await
    .map(|prunes| assert_eq!(prunes, vec![run, second], "one prune per window"))?;
    app.shutdown().await;
    Ok(())
}
