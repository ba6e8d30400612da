//! Delay topics, dead letters and redrive against the real Kafka, processor and
//! projectors, with fake R2R destinations that follow the R2R v3 contract:
//!
//! - a target that is down for a while gets its documents through the delay topics
//!   once it is back, while a healthy target of the same run is served at once; the
//!   run's counts are exact and nothing is dead-lettered;
//! - documents a target refuses are dead letters listed with their context through the
//!   API, redriven by id and by filter once the target is fixed (a second redrive does
//!   nothing), and a rebuild of the read model shows the same states;
//! - a document redriven while its run still waits for others is not counted twice;
//! - a target still down after the last delay gets dead letters with every attempt;
//! - the CLI lists and redrives; a member may list but not redrive.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tributary::{Roles, Running};
use tributary_connectors::source::{BuildContext, Connectors, Mode, Start};
use tributary_destinations::fake::{FakeR2r, FakeR2rConfig, Faults};
use tributary_domain::{OrgId, ProfileId, SyncRunId, TargetId, sync};
use tributary_log::Envelope;
use tributary_runtime::deliverer::{Deliverer, DelivererConfig, Step};
use tributary_runtime::worker::{Ended, RunRef, RunWriter, drive};
use tributary_store::vault::Vault;
use tributary_testkit::{Http, TestEnv};

struct World {
    env: TestEnv,
    app: Running,
    http: Http,
    org: OrgId,
    work: tempfile::TempDir,
}

async fn world(slug: &str) -> anyhow::Result<World> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, session) = Http::signed_up(&app, &format!("{slug}@example.com"), slug).await?;
    let org = OrgId(session["org_id"].as_str().unwrap().parse()?);
    Ok(World {
        env,
        app,
        http,
        org,
        work: tempfile::tempdir()?,
    })
}

impl World {
    async fn credential(&self, token: &str) -> anyhow::Result<String> {
        let (status, credential) = self
            .http
            .send(
                Method::POST,
                "/api/v1/credentials",
                Some(
                    json!({ "kind": "bearer_token", "name": "r2r", "values": { "token": token } }),
                ),
            )
            .await;
        anyhow::ensure!(status == StatusCode::CREATED, "{credential}");
        Ok(credential["id"].as_str().unwrap().to_owned())
    }

    /// An R2R target of the org, with a credential holding the fake's key.
    async fn target(&self, r2r: &FakeR2r) -> anyhow::Result<(TargetId, String)> {
        let credential = self.credential(r2r.api_key()).await?;
        let (status, target) = self
            .http
            .send(
                Method::POST,
                "/api/v1/targets",
                Some(json!({ "name": "r2r", "kind": "r2r", "config": { "base_url": r2r.base_url() }, "credential_id": credential })),
            )
            .await;
        anyhow::ensure!(status == StatusCode::CREATED, "{target}");
        Ok((
            TargetId(target["id"].as_str().unwrap().parse()?),
            credential,
        ))
    }

    /// Deletes the target's credential: deliveries to it are refused for good.
    async fn break_target(&self, credential: &str) -> anyhow::Result<()> {
        let path = format!("/api/v1/credentials/{credential}");
        let (status, body) = self.http.send(Method::DELETE, &path, None).await;
        anyhow::ensure!(status.is_success(), "{status} {body}");
        self.env
            .eventually(20, "the deleted credential", || async {
                Ok(
                    (self.http.send(Method::GET, &path, None).await.0 == StatusCode::NOT_FOUND)
                        .then_some(()),
                )
            })
            .await
    }

    /// Gives the target a live credential again.
    async fn fix_target(&self, target: TargetId, r2r: &FakeR2r) -> anyhow::Result<()> {
        let credential = self.credential(r2r.api_key()).await?;
        let path = format!("/api/v1/targets/{target}");
        let (status, body) = self
            .http
            .send(
                Method::PATCH,
                &path,
                Some(json!({ "credential_id": credential })),
            )
            .await;
        anyhow::ensure!(status.is_success(), "{status} {body}");
        self.env
            .eventually(20, "the fixed target", || async {
                let (_, t) = self.http.send(Method::GET, &path, None).await;
                Ok((t["credential_id"] == credential.as_str()).then_some(()))
            })
            .await
    }

    async fn send(&self, profile: ProfileId, ty: &str, data: Value) -> anyhow::Result<()> {
        let mut envelope = Envelope::json("/tests/dead-letters", ty, &data)?;
        envelope.org_id = Some(self.org);
        self.env
            .command("sync", &profile.to_string(), &envelope)
            .await
    }

    /// A claimed run whose `count` synthetic documents the worker path has written.
    async fn run(
        &self,
        targets: &[TargetId],
        count: u64,
    ) -> anyhow::Result<(ProfileId, SyncRunId)> {
        let (profile, run) = (ProfileId::new(), SyncRunId::new());
        let org = self.org;
        let request = json!({
            "profile_id": profile, "org_id": org, "run_id": run, "mode": "full",
            "trigger": "manual", "targets": targets, "at": chrono::Utc::now(),
        });
        self.send(profile, sync::REQUEST, request).await?;
        let start = json!({ "profile_id": profile, "run_id": run, "worker": "worker:test", "at": chrono::Utc::now() });
        self.send(profile, sync::START, start).await?;
        self.env
            .eventually(20, "the claimed run", || async {
                let (_, r) = self
                    .http
                    .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
                    .await;
                Ok((r["attempt"] == 1).then_some(()))
            })
            .await?;
        let mut source = Connectors::builtin()
            .get("synthetic")
            .unwrap()
            .build(BuildContext {
                config: json!({ "count": count, "batch_size": 50, "seed": 5, "size_bytes": 256 }),
                credential: None,
                start: Start {
                    mode: Mode::Full,
                    checkpoint: None,
                    resuming: false,
                    now: chrono::Utc::now(),
                },
                http: reqwest::Client::new(),
                work_dir: self.work.path().to_owned(),
            })?;
        let reference = RunRef {
            org,
            profile,
            run,
            attempt: 1,
            targets: targets.to_vec(),
        };
        let kafka = self.env.kafka();
        let topics = self.env.topics();
        let writer = tokio::task::block_in_place(|| RunWriter::new(&kafka, topics, reference))?;
        let ended = drive(source.as_mut(), &writer, 0, || false).await;
        anyhow::ensure!(matches!(ended, Ended::SourceDone { .. }), "{ended:?}");
        Ok((profile, run))
    }

    /// A deliverer with one quick retry in place and short delays.
    fn deliverer(&self, delays: &[u64]) -> anyhow::Result<Deliverer> {
        let db = tributary_store::connect(&self.env.settings.database_url, 4)?;
        let ring = std::sync::Arc::new(tributary_vault::KekRing::parse(
            self.env.settings.kek.as_deref().unwrap(),
        )?);
        let config = DelivererConfig {
            kafka: self.env.kafka(),
            topics: self.env.topics(),
            db: db.clone(),
            vault: Vault::new(db, ring),
            http: reqwest::Client::new(),
            data_dir: PathBuf::from(self.work.path()),
            instance_id: "test".into(),
            batch: 100,
            retries: 1,
            delays: delays.iter().map(|s| Duration::from_secs(*s)).collect(),
        };
        Ok(tokio::task::block_in_place(|| Deliverer::new(config))?)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.http.send(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn finished_run(&self, run: SyncRunId) -> anyhow::Result<Value> {
        self.env
            .eventually(30, "the finished run", || async {
                let r = self.get(&format!("/api/v1/sync-runs/{run}")).await;
                Ok(r["finished_at"].is_string().then_some(r))
            })
            .await
    }

    /// The org's dead letters for `query`, once there are `n`.
    async fn letters(&self, query: &str, n: usize) -> anyhow::Result<Vec<Value>> {
        self.env
            .eventually(30, "the listed dead letters", || async {
                let page = self.get(&format!("/api/v1/dead-letters?{query}")).await;
                let items = page["items"].as_array().cloned().unwrap_or_default();
                Ok((items.len() == n).then_some(items))
            })
            .await
    }
}

/// Steps until `done` holds for the sum of the steps, or fails after `secs`.
async fn step_until(
    deliverer: &Deliverer,
    secs: u64,
    what: &str,
    done: impl Fn(&Step) -> bool,
) -> anyhow::Result<Step> {
    let mut sum = Step::default();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(&sum) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}; so far {sum:?}"
        );
        let step = deliverer.step().await?;
        sum.records += step.records;
        sum.redelivered += step.redelivered;
        sum.delivered += step.delivered;
        sum.failed += step.failed;
        sum.delayed += step.delayed;
    }
    Ok(sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_for_a_while_catches_up_through_the_delay_topics() -> anyhow::Result<()> {
    let w = world("delays").await?;
    let (down, healthy) = (
        FakeR2r::start(FakeR2rConfig::default()).await?,
        FakeR2r::start(FakeR2rConfig::default()).await?,
    );
    let (down_target, _) = w.target(&down).await?;
    let (healthy_target, _) = w.target(&healthy).await?;
    down.set_faults(Faults {
        error_500: 1.0,
        ..Faults::default()
    });
    let (_, run) = w.run(&[down_target, healthy_target], 40).await?;
    let deliverer = w.deliverer(&[1, 2])?;

    // The healthy target has every document at once; the other's wait in delay topic 1.
    let first = step_until(&deliverer, 60, "the first pass", |s| s.records >= 40).await?;
    assert_eq!((first.delivered, first.delayed, first.failed), (40, 40, 0));
    assert_eq!(healthy.document_count(), 40);
    let topics = w.env.topics();
    let waiting = w.env.read_all(&topics.documents_retry(1))?;
    assert_eq!(waiting.len(), 40);
    let record = &waiting[0];
    let down_id = down_target.to_string();
    assert_eq!(record.header("tributary-targets"), Some(down_id.as_str()));
    assert_eq!(record.header("retry_attempts"), Some("2"));
    assert_eq!(record.header("retry_error_class"), Some("transient"));
    assert_eq!(
        record.header("retry_original_topic"),
        Some(topics.documents().as_str())
    );
    assert!(record.header("retry_not_before").is_some());
    assert!(record.header("retry_first_failure").is_some());
    let r = w.get(&format!("/api/v1/sync-runs/{run}")).await;
    assert!(
        r["finished_at"].is_null(),
        "the delayed documents are not answered yet: {r}"
    );

    // Still down after the first delay: on to delay topic 2, nothing answered.
    let second = step_until(&deliverer, 60, "the second level", |s| s.delayed >= 40).await?;
    assert_eq!(second.redelivered, 40);
    assert_eq!((second.delivered, second.failed), (0, 0));
    assert_eq!(w.env.read_all(&topics.documents_retry(2))?.len(), 40);
    let r = w.get(&format!("/api/v1/sync-runs/{run}")).await;
    assert!(r["finished_at"].is_null(), "{r}");
    assert_eq!(
        r["targets"][&down_id],
        json!({ "delivered": 0, "failed": 0 })
    );

    // Back up: the documents arrive from delay topic 2 and the run's counts are exact.
    down.set_faults(Faults::none());
    let third = step_until(&deliverer, 60, "the recovery", |s| s.delivered >= 40).await?;
    assert_eq!((third.redelivered, third.failed, third.delayed), (40, 0, 0));
    let done = w.finished_run(run).await?;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        done["targets"][&down_id],
        json!({ "delivered": 40, "failed": 0 })
    );
    assert_eq!(
        done["targets"][healthy_target.to_string()],
        json!({ "delivered": 40, "failed": 0 })
    );
    assert_eq!(down.document_count(), 40);
    assert!(w.env.read_all(&topics.documents_dead_letters())?.is_empty());
    let page = w.get("/api/v1/dead-letters").await;
    assert_eq!(page["items"], json!([]), "{page}");
    // Nothing is waiting or answered twice.
    assert_eq!(deliverer.step().await?, Step::default());
    w.app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_documents_are_dead_letters_to_list_and_redrive() -> anyhow::Result<()> {
    let w = world("letters").await?;
    let r2r = FakeR2r::start(FakeR2rConfig::default()).await?;
    let (target, credential) = w.target(&r2r).await?;
    w.break_target(&credential).await?;
    let (profile, run) = w.run(&[target], 6).await?;
    // Delays are for transient failures; a refusal is dead-lettered at once.
    let deliverer = w.deliverer(&[1, 1, 1])?;
    let sum = step_until(&deliverer, 60, "the refusals", |s| s.records >= 6).await?;
    assert_eq!((sum.failed, sum.delayed, sum.delivered), (6, 0, 0));
    let done = w.finished_run(run).await?;
    assert_eq!(done["state"], "completed_with_errors", "{done}");
    assert_eq!(
        done["targets"][target.to_string()],
        json!({ "delivered": 0, "failed": 6 })
    );

    // Listed with their context, newest first, page by page.
    let letters = w.letters(&format!("target_id={target}"), 6).await?;
    let letter = &letters[0];
    assert_eq!(letter["org_id"], w.org.to_string());
    assert_eq!(letter["profile_id"], profile.to_string());
    assert_eq!(letter["run_id"], run.to_string());
    assert_eq!(letter["target_id"], target.to_string());
    assert_eq!(letter["class"], "permanent");
    assert_eq!(letter["state"], "dead");
    assert_eq!(letter["attempts"], 1);
    assert_eq!(letter["op"], "upsert");
    assert!(letter["doc_id"].is_string(), "{letter}");
    assert!(letter["first_failure"].is_string() && letter["last_failure"].is_string());
    assert!(
        letter["message"].as_str().unwrap().contains("was deleted"),
        "{letter}"
    );
    assert_eq!(
        letter["letter"]["topic"],
        w.env.topics().documents_dead_letters()
    );
    let listed = Value::Array(letters.clone()).to_string();
    assert!(
        !listed.contains(r2r.api_key()),
        "no secret in a dead letter"
    );
    let one = w
        .get(&format!(
            "/api/v1/dead-letters/{}",
            letter["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(&one, letter);
    let page = w
        .get("/api/v1/dead-letters?limit=4&class=permanent&state=dead")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = w
        .get(&format!("/api/v1/dead-letters?limit=4&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let mut ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6, "pages neither repeat nor skip");
    let none = w
        .get(&format!("/api/v1/dead-letters?run_id={}", SyncRunId::new()))
        .await;
    assert_eq!(none["items"], json!([]));

    // Bad input is a problem that says what to do.
    for (path, status) in [
        (
            "/api/v1/dead-letters?class=odd",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/dead-letters?state=gone",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/dead-letters?run_id=nope",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/dead-letters?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/v1/dead-letters/nope", StatusCode::NOT_FOUND),
    ] {
        let response = w.http.client.get(w.http.url(path)).send().await?;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    let unknown = uuid::Uuid::now_v7();
    let (status, problem) = w
        .http
        .send(
            Method::GET,
            &format!("/api/v1/dead-letters/{unknown}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    for body in [
        json!({}),
        json!({ "ids": [] }),
        json!({ "filter": {} }),
        json!({ "ids": [unknown], "filter": { "target_id": target } }),
        json!({ "filter": { "target": target } }),
    ] {
        let (status, problem) = w
            .http
            .send(
                Method::POST,
                "/api/v1/dead-letters/redrive",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert!(problem["detail"].is_string(), "{problem}");
    }
    let (status, problem) = w
        .http
        .send(
            Method::POST,
            "/api/v1/dead-letters/redrive",
            Some(json!({ "ids": [unknown] })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    // A member reads dead letters but may not redrive them.
    let org = w.org;
    let (status, key) = w
        .http
        .send(
            Method::POST,
            &format!("/api/v1/orgs/{org}/api-keys"),
            Some(json!({ "name": "viewer", "role": "member" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let member = w.http.with_token(key["token"].as_str().unwrap())?;
    let (status, _) = member.send(Method::GET, "/api/v1/dead-letters", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = member
        .send(
            Method::POST,
            "/api/v1/dead-letters/redrive",
            Some(json!({ "filter": { "target_id": target } })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");

    // Fixed, one letter is redriven by id: its document arrives, the run stays as it
    // ended, and the letter shows who redrove it.
    w.fix_target(target, &r2r).await?;
    let first = letter["id"].as_str().unwrap().to_owned();
    let (status, answer) = w
        .http
        .send(
            Method::POST,
            "/api/v1/dead-letters/redrive",
            Some(json!({ "ids": [first] })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["redriven"], 1, "{answer}");
    assert_eq!(answer["ids"], json!([first]));
    let resent = w.env.read_all(&w.env.topics().documents())?;
    let redriven: Vec<_> = resent
        .iter()
        .filter(|r| r.header("tributary-redrive") == Some(first.as_str()))
        .collect();
    assert_eq!(redriven.len(), 1);
    assert_eq!(
        redriven[0].header("tributary-targets"),
        Some(target.to_string().as_str())
    );
    assert_eq!(
        redriven[0].key.as_deref(),
        Some(format!("{profile}/{}", letter["doc_id"].as_str().unwrap()).as_str())
    );
    let sum = step_until(&deliverer, 60, "the redriven document", |s| {
        s.delivered >= 1
    })
    .await?;
    assert_eq!((sum.delivered, sum.failed), (1, 0));
    assert_eq!(r2r.document_count(), 1);
    let one = w.get(&format!("/api/v1/dead-letters/{first}")).await;
    assert_eq!(one["state"], "redriven", "{one}");
    assert!(
        one["redriven_by"].as_str().unwrap().starts_with("user:"),
        "{one}"
    );

    // The rest by filter; then nothing is left to redrive.
    let (status, answer) = w
        .http
        .send(
            Method::POST,
            "/api/v1/dead-letters/redrive",
            Some(json!({ "filter": { "target_id": target, "class": "permanent" } })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["redriven"], 5, "{answer}");
    assert_eq!(answer["more"], false);
    let sum = step_until(&deliverer, 60, "the redriven documents", |s| {
        s.delivered >= 5
    })
    .await?;
    assert_eq!((sum.delivered, sum.failed), (5, 0));
    assert_eq!(r2r.document_count(), 6);
    let (status, again) = w
        .http
        .send(
            Method::POST,
            "/api/v1/dead-letters/redrive",
            Some(json!({ "filter": { "target_id": target } })),
        )
        .await;
    assert_eq!(
        (status, &again["redriven"]),
        (StatusCode::ACCEPTED, &json!(0)),
        "{again}"
    );
    let (status, again) = w
        .http
        .send(
            Method::POST,
            "/api/v1/dead-letters/redrive",
            Some(json!({ "ids": [first] })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["redriven"], 0, "{again}");
    assert!(
        again["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already redriven"),
        "{again}"
    );
    assert_eq!(deliverer.step().await?.records, 0, "nothing was sent twice");
    let redriven = w.letters("state=redriven", 6).await?;
    assert!(redriven.iter().all(|l| l["redriven_at"].is_string()));
    // A finished run is not changed by its redriven documents.
    let after = w.get(&format!("/api/v1/sync-runs/{run}")).await;
    assert_eq!(after["state"], "completed_with_errors");
    assert_eq!(
        after["targets"][target.to_string()],
        json!({ "delivered": 0, "failed": 6 })
    );

    // The read model comes from the log alone: a rebuild shows the same letters.
    let before = w.get("/api/v1/dead-letters?limit=200").await;
    let (kafka, topics, handle) = (
        w.env.kafka(),
        w.env.topics(),
        tokio::runtime::Handle::current(),
    );
    let db = tributary_store::connect(&w.env.settings.database_url, 4)?;
    let report = tokio::task::spawn_blocking(move || {
        tributary_runtime::rebuild(
            tributary_store::Projection::DeadLetters,
            &kafka,
            &topics,
            &db,
            &handle,
            100,
        )
    })
    .await??;
    assert!(
        report.records >= 12,
        "6 recorded and 6 redriven events: {report:?}"
    );
    assert_eq!(w.get("/api/v1/dead-letters?limit=200").await, before);
    w.app.shutdown().await;
    Ok(())
}

fn cli(env: &TestEnv, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(args)
            .env("TRIBUTARY_DATABASE_URL", &env.settings.database_url)
            .env("TRIBUTARY_KAFKA_BROKERS", &env.settings.kafka_brokers)
            .env("TRIBUTARY_TOPIC_PREFIX", &env.prefix)
            .env("RUST_LOG", "warn")
            .output()
    })?;
    Ok((
        output.status.success(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_and_redrives_dead_letters() -> anyhow::Result<()> {
    let w = world("dlqcli").await?;
    let r2r = FakeR2r::start(FakeR2rConfig::default()).await?;
    let (target, credential) = w.target(&r2r).await?;
    w.break_target(&credential).await?;
    let (_, run) = w.run(&[target], 3).await?;
    let deliverer = w.deliverer(&[])?;
    step_until(&deliverer, 60, "the refusals", |s| s.failed >= 3).await?;
    let letters = w.letters("", 3).await?;
    let org = w.org.to_string();

    let (ok, table, _) = cli(&w.env, &["dlq", "list", "--org", &org])?;
    assert!(ok, "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three letters:\n{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("MESSAGE"),
        "{table}"
    );
    for letter in &letters {
        assert!(table.contains(letter["id"].as_str().unwrap()), "{table}");
    }
    assert!(
        lines[1].contains("dead") && lines[1].contains(&target.to_string()),
        "{table}"
    );
    let (ok, json_lines, _) = cli(
        &w.env,
        &[
            "dlq",
            "list",
            "--run",
            &run.to_string(),
            "--limit",
            "2",
            "--json",
        ],
    )?;
    assert!(ok);
    assert_eq!(json_lines.lines().count(), 2);
    let first: Value = serde_json::from_str(json_lines.lines().next().unwrap())?;
    assert_eq!(first["target_id"], target.to_string());
    let (ok, _, error) = cli(&w.env, &["dlq", "list", "--state", "gone"])?;
    assert!(!ok && error.contains("not a dead-letter state"), "{error}");
    let (ok, _, error) = cli(&w.env, &["dlq", "redrive"])?;
    assert!(!ok && error.contains("--id"), "{error}");
    let unknown = uuid::Uuid::now_v7().to_string();
    let (ok, _, error) = cli(&w.env, &["dlq", "redrive", "--id", &unknown])?;
    assert!(
        !ok && error.contains("was not found") && error.contains("dlq list"),
        "{error}"
    );

    w.fix_target(target, &r2r).await?;
    let (ok, out, error) = cli(&w.env, &["dlq", "redrive", "--target", &target.to_string()])?;
    assert!(ok, "{out}{error}");
    assert!(out.contains("redrove 3 dead letters"), "{out}");
    let sum = step_until(&deliverer, 60, "the redriven documents", |s| {
        s.delivered >= 3
    })
    .await?;
    assert_eq!(sum.failed, 0);
    assert_eq!(r2r.document_count(), 3);
    let (ok, table, _) = cli(
        &w.env,
        &["dlq", "list", "--state", "redriven", "--org", &org],
    )?;
    assert!(ok);
    assert_eq!(table.lines().count(), 4, "{table}");
    let (ok, out, _) = cli(&w.env, &["dlq", "redrive", "--target", &target.to_string()])?;
    assert!(ok && out.contains("nothing to redrive"), "{out}");
    let id = letters[0]["id"].as_str().unwrap();
    let (ok, out, error) = cli(&w.env, &["dlq", "redrive", "--id", id])?;
    assert!(ok && out.contains("nothing to redrive"), "{out}");
    assert!(error.contains("already redriven"), "{error}");
    w.app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_while_its_run_is_active_does_not_count_twice() -> anyhow::Result<()> {
    let w = world("recount").await?;
    let (refusing, down) = (
        FakeR2r::start(FakeR2rConfig::default()).await?,
        FakeR2r::start(FakeR2rConfig::default()).await?,
    );
    let (refusing_target, credential) = w.target(&refusing).await?;
    let (down_target, _) = w.target(&down).await?;
    w.break_target(&credential).await?;
    down.set_faults(Faults {
        error_500: 1.0,
        ..Faults::default()
    });
    let (_, run) = w.run(&[refusing_target, down_target], 5).await?;
    let deliverer = w.deliverer(&[2, 2])?;
    let first = step_until(&deliverer, 60, "the first pass", |s| s.records >= 5).await?;
    assert_eq!((first.failed, first.delayed), (5, 5));

    // The run waits for the delayed documents; meanwhile the refused ones are redriven
    // and delivered. The run counted them as failed already, and still does.
    w.fix_target(refusing_target, &refusing).await?;
    w.letters(&format!("target_id={refusing_target}"), 5)
        .await?;
    let (status, answer) = w
        .http
        .send(
            Method::POST,
            "/api/v1/dead-letters/redrive",
            Some(json!({ "filter": { "run_id": run } })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["redriven"], 5, "{answer}");
    step_until(&deliverer, 60, "the redriven documents", |s| {
        s.delivered >= 5
    })
    .await?;
    assert_eq!(refusing.document_count(), 5);
    let r = w.get(&format!("/api/v1/sync-runs/{run}")).await;
    assert!(r["finished_at"].is_null(), "{r}");

    down.set_faults(Faults::none());
    step_until(&deliverer, 60, "the recovery", |s| s.delivered >= 5).await?;
    let done = w.finished_run(run).await?;
    assert_eq!(done["state"], "completed_with_errors", "{done}");
    assert_eq!(
        done["targets"][refusing_target.to_string()],
        json!({ "delivered": 0, "failed": 5 })
    );
    assert_eq!(
        done["targets"][down_target.to_string()],
        json!({ "delivered": 5, "failed": 0 })
    );
    assert_eq!(done["counts"]["delivered"], 5, "{done}");
    w.app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_past_the_last_delay_gets_dead_letters() -> anyhow::Result<()> {
    let w = world("giveup").await?;
    let r2r = FakeR2r::start(FakeR2rConfig::default()).await?;
    let (target, _) = w.target(&r2r).await?;
    r2r.set_faults(Faults {
        error_500: 1.0,
        ..Faults::default()
    });
    let (_, run) = w.run(&[target], 3).await?;
    let deliverer = w.deliverer(&[1])?;
    let first = step_until(&deliverer, 60, "the first pass", |s| s.delayed >= 3).await?;
    assert_eq!(first.failed, 0);
    let last = step_until(&deliverer, 60, "the last level", |s| s.failed >= 3).await?;
    assert_eq!((last.redelivered, last.delayed, last.delivered), (3, 0, 0));

    // Dead letters with the context of every attempt, pointing at the original record.
    let topics = w.env.topics();
    let dead = w.env.read_all(&topics.documents_dead_letters())?;
    assert_eq!(dead.len(), 3);
    let letter = &dead[0];
    assert_eq!(letter.header("dlq_error_class"), Some("transient"));
    assert_eq!(
        letter.header("dlq_attempts"),
        Some("4"),
        "two tries per level"
    );
    assert_eq!(
        letter.header("dlq_original_topic"),
        Some(topics.documents().as_str())
    );
    assert_eq!(
        letter.header("dlq_target_id"),
        Some(target.to_string().as_str())
    );
    assert!(letter.headers.iter().all(|(k, _)| !k.starts_with("retry_")));
    assert!(letter.header("dlq_first_failure") < letter.header("dlq_last_failure"));
    let originals = w.env.read_all(&topics.documents())?;
    let offset: i64 = letter.header("dlq_original_offset").unwrap().parse()?;
    let partition: i32 = letter.header("dlq_original_partition").unwrap().parse()?;
    let original = originals
        .iter()
        .find(|r| r.partition == partition && r.offset == offset)
        .expect("the original record");
    assert_eq!(original.payload, letter.payload);
    assert_eq!(original.key, letter.key);

    let done = w.finished_run(run).await?;
    assert_eq!(done["state"], "completed_with_errors", "{done}");
    assert_eq!(
        done["targets"][target.to_string()],
        json!({ "delivered": 0, "failed": 3 })
    );
    let listed = w.letters("class=transient", 3).await?;
    assert_eq!(listed[0]["attempts"], 4);
    assert!(listed[0]["first_failure"].as_str() < listed[0]["last_failure"].as_str());
    w.app.shutdown().await;
    Ok(())
}
