//! The sync engine as `tributary serve` runs it: runs requested through the API are
//! claimed by the worker, their documents delivered by the deliverer, and the runs
//! finish on their own with counts equal to what the target holds. Cancel stops the
//! worker; the per-org limit holds a second run back until the first ends; a run whose
//! worker vanished (no heartbeats) is interrupted by the monitor and resumed by another
//! worker from its checkpoint; a run without progress is flagged as stalled, visibly.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use tributary::{Roles, Settings};
use tributary_domain::sync;
use tributary_log::Envelope;
use tributary_testkit::{Http, TestEnv};

/// A CSV target and the path it writes to.
async fn csv_target(http: &Http, env: &TestEnv, name: &str) -> anyhow::Result<(String, String)> {
    let (status, target) = http
        .send(
            Method::POST,
            "/api/v1/targets",
            Some(
                json!({ "name": name, "kind": "csv", "config": { "path": format!("{name}.csv") } }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{target}");
    let path = env.settings.data_dir.join(format!("{name}.csv"));
    Ok((
        target["id"].as_str().unwrap().to_owned(),
        path.display().to_string(),
    ))
}

async fn synthetic_profile(http: &Http, target: &str, config: Value) -> anyhow::Result<String> {
    let body = json!({
        "name": "synthetic", "source": { "kind": "synthetic", "config": config },
        "targets": [target],
    });
    let (status, profile) = http
        .send(Method::POST, "/api/v1/profiles", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    Ok(profile["id"].as_str().unwrap().to_owned())
}

async fn sync_now(http: &Http, profile: &str) -> anyhow::Result<String> {
    let (status, run) = http
        .send(
            Method::POST,
            &format!("/api/v1/profiles/{profile}/sync"),
            Some(json!({ "mode": "full" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    Ok(run["run_id"].as_str().unwrap().to_owned())
}

async fn run_where(
    env: &TestEnv,
    http: &Http,
    run: &str,
    secs: u64,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    env.eventually(secs, what, || async {
        let (status, body) = http
            .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
            .await;
        Ok((status == StatusCode::OK && check(&body)).then_some(body))
    })
    .await
}

async fn get_run(http: &Http, run: &str) -> Value {
    http.send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
        .await
        .1
}

/// The upserted doc ids in a CSV target's file, and how many upsert rows it has.
fn csv_upserts(path: &Path) -> anyhow::Result<(BTreeSet<String>, usize)> {
    let mut reader = csv::Reader::from_path(path)?;
    let (mut ids, mut rows) = (BTreeSet::new(), 0);
    for record in reader.records() {
        let record = record?;
        if &record[1] == "upsert" {
            rows += 1;
            ids.insert(record[3].to_owned());
        }
    }
    Ok((ids, rows))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_requested_run_is_claimed_delivered_and_finishes_on_its_own() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::ALL).await?;
    let (http, _) = Http::signed_up(&app, "engine@example.com", "engine").await?;
    let (target, path) = csv_target(&http, &env, "engine").await?;
    let config = json!({ "count": 1500, "batch_size": 250, "size_bytes": 256, "seed": 5 });
    let profile = synthetic_profile(&http, &target, config).await?;
    let run = sync_now(&http, &profile).await?;

    let done = run_where(&env, &http, &run, 90, "the finished run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempt"], 1, "one worker, one claim: {done}");
    assert_eq!(done["counts"]["fetched"], 1500, "{done}");
    assert_eq!(done["counts"]["delivered"], 1500, "{done}");
    assert_eq!(done["counts"]["failed"], 0, "{done}");
    assert_eq!(done["targets"][&target]["delivered"], 1500, "{done}");
    assert!(done["worker"].is_null(), "a finished run is held by nobody");
    let (ids, rows) = csv_upserts(Path::new(&path))?;
    assert_eq!(ids.len(), 1500, "every document reached the CSV target");
    assert_eq!(rows, 1500, "each once");

    // A second run of the same profile is claimed again once the first is over.
    let again = sync_now(&http, &profile).await?;
    let second = run_where(&env, &http, &again, 90, "the second run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(second["state"], "succeeded", "{second}");
    assert_eq!(csv_upserts(Path::new(&path))?.1, 3000);
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_stops_the_worker_and_the_org_limit_holds_the_next_run_back() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let settings = Settings {
        runs_per_org: 1,
        ..env.settings.clone()
    };
    let app = tributary::start(&settings, Roles::ALL, None).await?;
    let (http, _) = Http::signed_up(&app, "limits@example.com", "limits").await?;
    let (target, _) = csv_target(&http, &env, "limits").await?;
    // Every batch of the slow profile is rate limited once for 400 ms: it runs for minutes.
    let slow = synthetic_profile(
        &http,
        &target,
        json!({ "count": 100000, "batch_size": 5, "size_bytes": 64,
                "rate_limit_every": 1, "rate_limit_retry_after_ms": 400 }),
    )
    .await?;
    let quick = synthetic_profile(&http, &target, json!({ "count": 20, "size_bytes": 64 })).await?;
    let slow_run = sync_now(&http, &slow).await?;
    run_where(&env, &http, &slow_run, 30, "the slow run moving", |r| {
        r["state"] == "running" && r["counts"]["fetched"].as_u64() > Some(0)
    })
    .await?;
    let quick_run = sync_now(&http, &quick).await?;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let held = get_run(&http, &quick_run).await;
    assert_eq!(
        held["state"], "queued",
        "the org may run one run at a time: {held}"
    );

    let (status, canceled) = http
        .send(
            Method::POST,
            &format!("/api/v1/sync-runs/{slow_run}/cancel"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {canceled}");
    let canceled = run_where(&env, &http, &slow_run, 30, "the canceled run", |r| {
        r["state"] == "canceled"
    })
    .await?;
    // The worker notices at its next heartbeat and writes nothing more.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let later = get_run(&http, &slow_run).await;
    assert_eq!(later["state"], "canceled");
    let (stopped_at, fetched_then) = (
        later["counts"]["fetched"].as_u64().unwrap(),
        canceled["counts"]["fetched"].as_u64().unwrap(),
    );
    assert!(
        stopped_at <= fetched_then + 50,
        "the canceled run kept going: {fetched_then} then {stopped_at}"
    );
    let records_before = env.read_all(&env.topics().documents())?.len();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        env.read_all(&env.topics().documents())?.len(),
        records_before,
        "no documents are written for a canceled run"
    );

    // The slot is free: the queued run is claimed and finishes.
    let quick_done = run_where(&env, &http, &quick_run, 60, "the held-back run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(quick_done["state"], "succeeded", "{quick_done}");
    assert_eq!(quick_done["counts"]["delivered"], 20, "{quick_done}");
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vanished_worker_is_replaced_and_a_run_without_progress_is_flagged() -> anyhow::Result<()>
{
    let env = TestEnv::new().await?;
    let settings = Settings {
        heartbeat_timeout_secs: 4,
        stall_after_secs: 3,
        ..env.settings.clone()
    };
    // The control plane and a deliverer, but no worker yet.
    let app = tributary::start(
        &settings,
        Roles {
            worker: false,
            scheduler: false,
            ..Roles::ALL
        },
        None,
    )
    .await?;
    let (http, session) = Http::signed_up(&app, "ghost@example.com", "ghost").await?;
    let org: uuid::Uuid = session["org_id"].as_str().unwrap().parse()?;
    let (target, path) = csv_target(&http, &env, "ghost").await?;
    let profile = synthetic_profile(
        &http,
        &target,
        json!({ "count": 300, "batch_size": 100, "size_bytes": 64 }),
    )
    .await?;
    let run = sync_now(&http, &profile).await?;
    // A worker claims the run and vanishes at once: no heartbeat, no batch.
    let mut claim = Envelope::json(
        "/tests/sync_engine",
        sync::START,
        &json!({ "profile_id": profile, "run_id": run, "worker": "worker:ghost", "at": chrono::Utc::now() }),
    )?;
    claim.org_id = Some(tributary_domain::OrgId(org));
    env.command("sync", &profile, &claim).await?;
    run_where(&env, &http, &run, 30, "the ghost's claim", |r| {
        r["worker"] == "worker:ghost"
    })
    .await?;

    // A real worker (with its monitor) joins: the ghost's run is interrupted, flagged as
    // making no progress, and resumed as attempt 2.
    let worker = tributary::start(
        &settings,
        Roles {
            worker: true,
            ..Roles::NONE
        },
        None,
    )
    .await?;
    let done = run_where(&env, &http, &run, 90, "the resumed run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempt"], 2, "the ghost had attempt 1: {done}");
    assert_eq!(done["counts"]["delivered"], 300, "{done}");
    assert_eq!(csv_upserts(Path::new(&path))?.0.len(), 300);
    let history = env.read_all(&env.topics().events("sync"))?;
    let types: Vec<&str> = history.iter().filter_map(|r| r.header("ce_type")).collect();
    let interrupted = history
        .iter()
        .find(|r| r.header("ce_type") == Some(sync::INTERRUPTED))
        .expect("the monitor interrupted the ghost's attempt");
    assert!(
        interrupted.json()["reason"]
            .as_str()
            .unwrap()
            .contains("no heartbeat from worker:ghost"),
        "{}",
        interrupted.json()
    );
    assert!(
        types.contains(&sync::STALLED),
        "the run without progress was flagged: {types:?}"
    );
    worker.shutdown().await;
    app.shutdown().await;
    Ok(())
}

/// The fake Airbyte source of the connectors' tests; its `control` scenario rotates its
/// API key mid-read with a CONTROL message.
const FAKE_AIRBYTE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tributary-connectors/tests/fixtures/airbyte/fake_source.py"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credential_the_source_rotated_is_stored_sealed() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::ALL).await?;
    let (http, _) = Http::signed_up(&app, "control@example.com", "control").await?;
    let (status, credential) = http
        .send(
            Method::POST,
            "/api/v1/credentials",
            Some(json!({ "kind": "bearer_token", "name": "fake api", "values": { "token": "s3cret-key-123456" } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{credential}");
    let credential_id = credential["id"].as_str().unwrap().to_owned();
    let (target, path) = csv_target(&http, &env, "control").await?;
    let body = json!({
        "name": "fake airbyte",
        "source": { "kind": "airbyte", "config": {
            "command": ["python3", FAKE_AIRBYTE], "config": { "scenario": "control" },
            "streams": [{ "name": "items" }], "credential_fields": { "token": "/api_key" },
            "timeout_secs": 60,
        } },
        "credential_id": credential_id,
        "targets": [target],
    });
    let (status, profile) = http
        .send(Method::POST, "/api/v1/profiles", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    let run = sync_now(&http, profile["id"].as_str().unwrap()).await?;
    let done = run_where(&env, &http, &run, 90, "the finished run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["counts"]["delivered"], 2, "{done}");
    assert_eq!(csv_upserts(Path::new(&path))?.0.len(), 2);

    // The rotated key is the credential's now: a new secret version, masked.
    let (_, stored) = http
        .send(
            Method::GET,
            &format!("/api/v1/credentials/{credential_id}"),
            None,
        )
        .await;
    assert_eq!(stored["version"], 2, "{stored}");
    assert!(
        stored["secrets"]["token"]["mask"]
            .as_str()
            .unwrap()
            .ends_with("7654"),
        "{stored}"
    );
    // ...and never travelled in plaintext.
    for (topic, _) in env.topics().all() {
        for record in env.read_all(&topic)? {
            let text = String::from_utf8_lossy(record.payload.as_deref().unwrap_or_default());
            assert!(
                !text.contains("rotated-key-987654") && !text.contains("s3cret-key-123456"),
                "a secret in plaintext on {topic}"
            );
        }
    }
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_that_shuts_down_hands_its_run_back_at_once() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env
        .start(Roles {
            worker: false,
            scheduler: false,
            ..Roles::ALL
        })
        .await?;
    let (http, _) = Http::signed_up(&app, "handback@example.com", "handback").await?;
    let (target, _) = csv_target(&http, &env, "handback").await?;
    let slow = synthetic_profile(
        &http,
        &target,
        json!({ "count": 100000, "batch_size": 5, "size_bytes": 64,
                "rate_limit_every": 1, "rate_limit_retry_after_ms": 300 }),
    )
    .await?;
    let run = sync_now(&http, &slow).await?;
    let worker = env
        .start(Roles {
            worker: true,
            ..Roles::NONE
        })
        .await?;
    run_where(&env, &http, &run, 30, "the run moving", |r| {
        r["state"] == "running" && r["counts"]["fetched"].as_u64() > Some(0)
    })
    .await?;
    worker.shutdown().await;
    // Well within the 60 s heartbeat timeout: the worker said so itself.
    let handed_back = run_where(&env, &http, &run, 15, "the handed-back run", |r| {
        r["state"] == "interrupted"
    })
    .await?;
    assert!(
        handed_back["stalled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("shut down")),
        "{handed_back}"
    );
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_of_tens_of_megabytes_passes_whole_and_a_too_large_one_fails_alone()
-> anyhow::Result<()> {
    const BIG: u64 = 20_000_000;
    let env = TestEnv::new().await?;
    let app = env.start(Roles::ALL).await?;
    let (http, _) = Http::signed_up(&app, "large@example.com", "large").await?;
    let (target, path) = csv_target(&http, &env, "large").await?;
    // 20 MB each: every batch holds one (batches stop at 16 MiB of text), and each
    // record is far bigger than the deliverer's 4 MiB partition fetch.
    let big = synthetic_profile(
        &http,
        &target,
        json!({ "count": 2, "size_bytes": BIG, "seed": 9 }),
    )
    .await?;
    // 64 MiB of text: more than a document record may be.
    let huge = synthetic_profile(
        &http,
        &target,
        json!({ "count": 1, "size_bytes": 64 * 1024 * 1024, "seed": 9 }),
    )
    .await?;
    let small = synthetic_profile(&http, &target, json!({ "count": 50, "size_bytes": 64 })).await?;
    let runs = [
        sync_now(&http, &big).await?,
        sync_now(&http, &huge).await?,
        sync_now(&http, &small).await?,
    ];
    let mut done = Vec::new();
    for run in &runs {
        done.push(
            run_where(&env, &http, run, 240, "the finished run", |r| {
                r["finished_at"].is_string()
            })
            .await?,
        );
    }
    assert_eq!(done[0]["state"], "succeeded", "{}", done[0]);
    assert_eq!(done[0]["counts"]["delivered"], 2, "{}", done[0]);
    assert_eq!(
        done[1]["state"], "completed_with_errors",
        "the too-large document is that run's one error: {}",
        done[1]
    );
    assert_eq!(done[1]["counts"]["failed"], 1, "{}", done[1]);
    assert_eq!(done[1]["counts"]["delivered"], 0, "{}", done[1]);
    let failure = &done[1]["failures"][0];
    assert_eq!(failure["doc_id"], "doc-000000", "{failure}");
    let message = failure["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("more than the 64 MiB") && message.contains("split it"),
        "the failure says why and what to do: {message}"
    );
    assert_eq!(done[2]["state"], "succeeded", "{}", done[2]);
    assert_eq!(done[2]["counts"]["delivered"], 50, "{}", done[2]);

    // The big documents arrived whole.
    let mut reader = csv::Reader::from_path(&path)?;
    let text_column = reader
        .headers()?
        .iter()
        .position(|h| h == "text")
        .expect("a text column");
    let mut big_rows = 0;
    for record in reader.records() {
        let record = record?;
        if record[text_column].len() as u64 >= BIG {
            assert_eq!(record[text_column].len() as u64, BIG, "exactly the text");
            big_rows += 1;
        }
    }
    assert_eq!(big_rows, 2, "both 20 MB documents, each once");
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn profiles_reach_only_the_directories_and_commands_the_operator_allows() -> anyhow::Result<()>
{
    let mut env = TestEnv::new().await?;
    let dir = tempfile::tempdir()?;
    let (allowed, other) = (dir.path().join("allowed"), dir.path().join("other"));
    for d in [&allowed, &other] {
        std::fs::create_dir_all(d)?;
        std::fs::write(d.join("a.md"), "# a\n")?;
    }
    env.settings.filesystem_roots = allowed.display().to_string();
    env.settings.airbyte_commands = "/opt/airbyte/".into();
    let app = env.start(Roles::ALL).await?;
    let (http, _) = Http::signed_up(&app, "limits@example.com", "limits").await?;
    let (target, _) = csv_target(&http, &env, "limits").await?;
    let profile = |name: &str, kind: &str, config: Value| json!({ "name": name, "source": { "kind": kind, "config": config }, "targets": [target] });
    let post = |body: Value| http.send(Method::POST, "/api/v1/profiles", Some(body));

    let (status, outside) = post(profile("other", "filesystem", json!({ "root": other }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outside}");
    let said = outside.to_string();
    assert!(
        said.contains("/source/config") && said.contains("TRIBUTARY_FILESYSTEM_ROOTS"),
        "says which field and what the operator can set: {said}"
    );
    let (status, program) = post(profile(
        "shell",
        "airbyte",
        json!({ "command": ["sh", "-c", "cat /etc/passwd"] }),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{program}");
    assert!(program.to_string().contains("TRIBUTARY_AIRBYTE_COMMANDS"));

    // Inside the allowed root: made and synced.
    let (status, inside) = post(profile("allowed", "filesystem", json!({ "root": allowed }))).await;
    assert_eq!(status, StatusCode::CREATED, "{inside}");
    let inside = inside["id"].as_str().unwrap().to_owned();
    let run = sync_now(&http, &inside).await?;
    let done = run_where(&env, &http, &run, 60, "the allowed run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["counts"]["delivered"], 1, "{done}");
    app.shutdown().await;

    // The operator narrows the limits: the worker refuses the next run itself, as it
    // would a profile whose command reached Kafka without the API.
    env.settings.filesystem_roots = other.display().to_string();
    let app = env.start(Roles::ALL).await?;
    let http = Http::logged_in(&app, "limits@example.com").await?;
    let run = sync_now(&http, &inside).await?;
    let refused = run_where(&env, &http, &run, 60, "the refused run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(refused["state"], "failed", "{refused}");
    assert_eq!(refused["error"]["class"], "config", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("outside the directories"),
        "the run says why: {message}"
    );
    app.shutdown().await;
    Ok(())
}
