//! Sync runs through the real processor, projector and API: a run requested and driven by
//! commands as a worker and a deliverer send them (produced here as an upstream system
//! would), shown with its state, counts, rate, ETA and failures; canceled through the
//! API; invisible to other orgs; and the same after a rebuild of the read model.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tributary::Roles;
use tributary_domain::sync;
use tributary_log::Envelope;
use tributary_store::Projection;
use tributary_testkit::{Http, TestEnv};
use uuid::Uuid;

struct Driver<'a> {
    env: &'a TestEnv,
    org: Uuid,
    profile: Uuid,
    target: Uuid,
}

impl Driver<'_> {
    async fn send(&self, ty: &str, data: Value) -> anyhow::Result<()> {
        let mut envelope = Envelope::json("/tests/worker", ty, &data)?;
        envelope.org_id = Some(tributary_domain::OrgId(self.org));
        self.env
            .command("sync", &self.profile.to_string(), &envelope)
            .await
    }

    async fn request(&self, run: Uuid) -> anyhow::Result<()> {
        let data = json!({
            "profile_id": self.profile, "org_id": self.org, "run_id": run, "mode": "full",
            "trigger": "manual", "targets": [self.target], "at": chrono::Utc::now(),
        });
        self.send(sync::REQUEST, data).await
    }

    async fn batch(
        &self,
        run: Uuid,
        seq: u64,
        documents: u64,
        done: bool,
        failures: Value,
    ) -> anyhow::Result<()> {
        let failed = failures.as_array().map_or(0, Vec::len);
        let data = json!({
            "profile_id": self.profile, "run_id": run, "attempt": 1, "seq": seq,
            "documents": documents, "deletions": 0, "failures": failures, "failed": failed,
            "checkpoint": { "position": seq }, "progress": { "done": seq * documents, "total": 40 },
            "source_done": done, "at": chrono::Utc::now(),
        });
        self.send(sync::RECORD_BATCH, data).await
    }
}

async fn run_where(
    env: &TestEnv,
    http: &Http,
    id: Uuid,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    env.eventually(20, what, || async {
        let (status, run) = http
            .send(Method::GET, &format!("/api/v1/sync-runs/{id}"), None)
            .await;
        Ok((status == StatusCode::OK && check(&run)).then_some(run))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_show_state_counts_progress_and_failures_and_can_be_canceled() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, session) = Http::signed_up(&app, "runs@example.com", "runs").await?;
    let org: Uuid = session["org_id"].as_str().unwrap().parse()?;
    let driver = Driver {
        env: &env,
        org,
        profile: Uuid::now_v7(),
        target: Uuid::now_v7(),
    };

    // Requested: queued, waiting for a worker.
    let run = Uuid::now_v7();
    driver.request(run).await?;
    let queued = run_where(&env, &http, run, "the queued run", |r| {
        r["state"] == "queued"
    })
    .await?;
    assert_eq!(queued["attempt"], 0);
    assert_eq!(queued["mode"], "full");

    // A worker claims it and records two batches, one with a failed document.
    let start = json!({ "profile_id": driver.profile, "run_id": run, "worker": "worker:test", "at": chrono::Utc::now() });
    driver.send(sync::START, start).await?;
    driver.batch(run, 1, 10, false, json!([])).await?;
    let failure = json!([{ "doc_id": "doc-7", "class": "source", "message": "doc-7 could not be read: permission denied; grant read access" }]);
    driver.batch(run, 2, 10, false, failure).await?;
    let running = run_where(&env, &http, run, "two batches", |r| {
        r["counts"]["fetched"] == 20
    })
    .await?;
    assert_eq!(running["state"], "running");
    assert_eq!(running["attempt"], 1);
    assert_eq!(running["progress"], json!({ "done": 20, "total": 40 }));
    assert!(
        running["documents_per_second"].as_f64().unwrap() > 0.0,
        "{running}"
    );
    assert!(running["eta_seconds"].is_u64(), "{running}");
    assert_eq!(running["failures"][0]["doc_id"], "doc-7");
    assert_eq!(running["counts"]["failed"], 1);

    // The deliverer answers for both batches, the source is done: the run finishes.
    driver.batch(run, 3, 0, true, json!([])).await?;
    let counts = json!([
        { "attempt": 1, "seq": 1, "delivered": 10, "failed": 0 },
        { "attempt": 1, "seq": 2, "delivered": 9, "failed": 1 },
    ]);
    let delivered = json!({
        "profile_id": driver.profile, "run_id": run, "target_id": driver.target, "counts": counts,
        "failures": [{ "doc_id": "doc-12", "target_id": driver.target, "class": "permanent", "message": "the destination refused doc-12 (413): it is larger than its limit" }],
        "at": chrono::Utc::now(),
    });
    driver.send(sync::RECORD_DELIVERIES, delivered).await?;
    let done = run_where(&env, &http, run, "the finished run", |r| {
        r["finished_at"].is_string()
    })
    .await?;
    assert_eq!(done["state"], "completed_with_errors");
    assert_eq!(
        done["counts"],
        json!({ "fetched": 20, "deleted": 0, "delivered": 19, "failed": 2 })
    );
    assert_eq!(
        done["targets"][driver.target.to_string()],
        json!({ "delivered": 19, "failed": 1 })
    );
    assert!(done["eta_seconds"].is_null());
    assert_eq!(done["failures"].as_array().unwrap().len(), 2, "{done}");

    // The next run is canceled through the API, by a curator or admin.
    let second = Uuid::now_v7();
    driver.request(second).await?;
    run_where(&env, &http, second, "the second run", |r| {
        r["state"] == "queued"
    })
    .await?;
    let (status, canceled) = http
        .send(
            Method::POST,
            &format!("/api/v1/sync-runs/{second}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["state"], "canceled");
    assert!(
        canceled["canceled_by"]
            .as_str()
            .unwrap()
            .starts_with("user:")
    );
    let (status, again) = http
        .send(
            Method::POST,
            &format!("/api/v1/sync-runs/{second}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        (status, &again["state"]),
        (StatusCode::OK, &json!("canceled"))
    );

    // Listing and filters.
    let (status, page) = http
        .send(Method::GET, "/api/v1/sync-runs?limit=1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["id"], second.to_string(), "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = http
        .send(
            Method::GET,
            &format!("/api/v1/sync-runs?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(next["items"][0]["id"], run.to_string());
    let (_, filtered) = http
        .send(
            Method::GET,
            &format!(
                "/api/v1/sync-runs?state=canceled&profile_id={}",
                driver.profile
            ),
            None,
        )
        .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let (status, problem) = http
        .send(Method::GET, "/api/v1/sync-runs?state=done", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("completed_with_errors")
    );

    // Another org sees none of it.
    let (other, _) = Http::signed_up(&app, "other@example.com", "other").await?;
    let (status, _) = other
        .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = other
        .send(
            Method::POST,
            &format!("/api/v1/sync-runs/{run}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = other.send(Method::GET, "/api/v1/sync-runs", None).await;
    assert_eq!(list["items"], json!([]));

    // A rebuild of the read model gives the same runs.
    let before = http
        .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
        .await
        .1;
    let (kafka, topics) = (env.kafka(), env.topics());
    let db = tributary_store::connect(&env.settings.database_url, 2)?;
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        tributary_runtime::rebuild(Projection::SyncRuns, &kafka, &topics, &db, &handle, 500)
    })
    .await??;
    let after = http
        .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
        .await
        .1;
    assert_eq!(before, after);
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_is_synced_by_hand_once_at_a_time() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "manual@example.com", "manual").await?;
    let (status, target) = http
        .send(
            Method::POST,
            "/api/v1/targets",
            Some(json!({ "name": "drop", "kind": "discard", "config": {} })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{target}");
    let profile = json!({ "name": "gen", "source": { "kind": "synthetic", "config": { "count": 10 } }, "targets": [target["id"]] });
    let (status, profile) = http
        .send(Method::POST, "/api/v1/profiles", Some(profile))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    let path = format!("/api/v1/profiles/{}/sync", profile["id"].as_str().unwrap());

    let (status, problem) = http
        .send(Method::POST, &path, Some(json!({ "mode": "everything" })))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, started) = http
        .send(Method::POST, &path, Some(json!({ "mode": "full" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["run"]["state"], "queued");
    assert_eq!(started["run"]["mode"], "full");
    assert_eq!(started["run"]["trigger"], "manual");
    assert_eq!(
        started["run"]["targets"],
        json!({ target["id"].as_str().unwrap(): { "delivered": 0, "failed": 0 } })
    );
    let (status, refused) = http.send(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("still queued"),
        "{refused}"
    );
    // Once canceled, the next one (incremental by default) may start.
    let run = started["run_id"].as_str().unwrap();
    let (status, _) = http
        .send(
            Method::POST,
            &format!("/api/v1/sync-runs/{run}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, next) = http.send(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::CREATED, "{next}");
    assert_eq!(next["run"]["mode"], "incremental");
    let (other, _) = Http::signed_up(&app, "elsewhere@example.com", "elsewhere").await?;
    let (status, _) = other.send(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.shutdown().await;
    Ok(())
}
