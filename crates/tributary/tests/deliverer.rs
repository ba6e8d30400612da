//! The deliverer against the real Kafka, processor and projector and a fake R2R that
//! follows the R2R v3 contract and answers 500 and 429 (with `Retry-After`) to some
//! requests: documents written by the worker path reach R2R exactly once each, a target
//! that does not exist dead-letters every document with its context, and the run ends
//! with counts equal to what the destination holds.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use tributary::Roles;
use tributary_connectors::source::{BuildContext, Connectors, Mode, Start};
use tributary_destinations::fake::{FakeR2r, FakeR2rConfig, Faults};
use tributary_domain::{OrgId, ProfileId, SyncRunId, TargetId, sync};
use tributary_log::Envelope;
use tributary_runtime::deliverer::{Deliverer, DelivererConfig};
use tributary_runtime::worker::{Ended, RunRef, RunWriter, drive};
use tributary_store::vault::Vault;
use tributary_testkit::{Http, TestEnv};

async fn send(
    env: &TestEnv,
    org: OrgId,
    profile: ProfileId,
    ty: &str,
    data: Value,
) -> anyhow::Result<()> {
    let mut envelope = Envelope::json("/tests/deliverer", ty, &data)?;
    envelope.org_id = Some(org);
    env.command("sync", &profile.to_string(), &envelope).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_reach_the_destination_once_and_refusals_are_dead_lettered() -> anyhow::Result<()>
{
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, session) = Http::signed_up(&app, "deliver@example.com", "deliver").await?;
    let org = OrgId(session["org_id"].as_str().unwrap().parse()?);
    let r2r = FakeR2r::start(FakeR2rConfig::default()).await?;
    r2r.set_faults(Faults {
        error_500: 0.10,
        rate_limit_429: 0.05,
        retry_after_secs: 1,
        latency: None,
        seed: 11,
    });
    let (status, credential) = http
        .send(
            Method::POST,
            "/api/v1/credentials",
            Some(json!({ "kind": "bearer_token", "name": "r2r", "values": r2r.credential() })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{credential}");
    let (status, target) = http
        .send(
            Method::POST,
            "/api/v1/targets",
            Some(json!({ "name": "r2r", "kind": "r2r", "config": { "base_url": r2r.base_url() }, "credential_id": credential["id"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{target}");
    let target = TargetId(target["id"].as_str().unwrap().parse()?);
    let missing = TargetId::new();

    // A run of 300 synthetic documents for the R2R target and one that does not exist.
    let (profile, run) = (ProfileId::new(), SyncRunId::new());
    let request = json!({
        "profile_id": profile, "org_id": org, "run_id": run, "mode": "full", "trigger": "manual",
        "targets": [target, missing], "at": chrono::Utc::now(),
    });
    send(&env, org, profile, sync::REQUEST, request).await?;
    send(&env, org, profile, sync::START, json!({ "profile_id": profile, "run_id": run, "worker": "worker:test", "at": chrono::Utc::now() })).await?;
    env.eventually(20, "the claimed run", || async {
        let (_, r) = http
            .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
            .await;
        Ok((r["attempt"] == 1).then_some(()))
    })
    .await?;
    let work = tempfile::tempdir()?;
    let mut source = Connectors::builtin()
        .get("synthetic")
        .unwrap()
        .build(BuildContext {
            config: json!({ "count": 300, "batch_size": 120, "seed": 3, "size_bytes": 512 }),
            credential: None,
            start: Start {
                mode: Mode::Full,
                checkpoint: None,
                resuming: false,
                now: chrono::Utc::now(),
            },
            http: reqwest::Client::new(),
            work_dir: work.path().to_owned(),
        })?;
    let reference = RunRef {
        org,
        profile,
        run,
        attempt: 1,
        targets: vec![target, missing],
    };
    let kafka = env.kafka();
    let writer = tokio::task::block_in_place(|| RunWriter::new(&kafka, env.topics(), reference))?;
    let ended = drive(source.as_mut(), &writer, 0, || false).await;
    assert!(matches!(ended, Ended::SourceDone { .. }), "{ended:?}");

    // The deliverer answers for every record.
    let db = tributary_store::connect(&env.settings.database_url, 4)?;
    let ring = std::sync::Arc::new(tributary_vault::KekRing::parse(
        env.settings.kek.as_deref().unwrap(),
    )?);
    let config = DelivererConfig {
        kafka: env.kafka(),
        topics: env.topics(),
        db: db.clone(),
        vault: Vault::new(db, ring),
        http: reqwest::Client::new(),
        data_dir: PathBuf::from(work.path()),
        instance_id: "test".into(),
        batch: 100,
        retries: 10,
        // With ten retries in place the faults here never exhaust them; a target that
        // does not exist is permanent, so its records are dead letters at once.
        delays: vec![std::time::Duration::from_secs(1)],
    };
    let deliverer = tokio::task::block_in_place(|| Deliverer::new(config))?;
    let mut answered = 0;
    for _ in 0..200 {
        answered += deliverer.step().await?.records;
        if answered >= 300 {
            break;
        }
    }
    assert_eq!(answered, 300, "every record was answered for once");
    let done = env
        .eventually(30, "the finished run", || async {
            let (_, r) = http
                .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
                .await;
            Ok(r["finished_at"].is_string().then_some(r))
        })
        .await?;
    assert_eq!(done["state"], "completed_with_errors", "{done}");
    assert_eq!(
        done["targets"][target.to_string()],
        json!({ "delivered": 300, "failed": 0 })
    );
    assert_eq!(
        done["targets"][missing.to_string()],
        json!({ "delivered": 0, "failed": 300 })
    );
    assert!(
        done["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{done}"
    );

    // R2R holds each document once, whatever the faults; the faults did happen.
    assert_eq!(r2r.document_count(), 300);
    let statuses = r2r.status_counts();
    assert!(
        statuses.get(&500).copied().unwrap_or_default() > 0,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&429).copied().unwrap_or_default() > 0,
        "{statuses:?}"
    );

    // The refused records are dead letters with the original record and their context.
    let dead = env.read_all(&env.topics().documents_dead_letters())?;
    assert_eq!(dead.len(), 300);
    let letter = &dead[0];
    assert_eq!(
        letter.header("dlq_target_id"),
        Some(missing.to_string().as_str())
    );
    assert_eq!(letter.header("dlq_error_class"), Some("permanent"));
    assert_eq!(letter.header("dlq_stage"), Some("deliverer"));
    assert_eq!(
        letter.header("tributary-run"),
        Some(run.to_string().as_str())
    );
    assert!(letter.header("dlq_original_offset").is_some());
    assert!(letter.payload.as_ref().is_some_and(|p| !p.is_empty()));
    app.shutdown().await;
    Ok(())
}
