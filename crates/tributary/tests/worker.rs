//! The worker's write path against the real Kafka, processor and projector: a synthetic
//! source driven through a claimed run writes its documents and each batch's checkpoint
//! in one transaction per batch; the run shows the counts; a worker taking over an
//! interrupted run fences the previous one, whose writes then fail; deliveries reported
//! for the recorded batches finish the run.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tributary::Roles;
use tributary_connectors::source::{BuildContext, Connectors, Mode, Start};
use tributary_domain::document::{DocumentRecord, headers};
use tributary_domain::{OrgId, ProfileId, SyncRunId, TargetId, sync};
use tributary_log::Envelope;
use tributary_runtime::worker::{Ended, RunRef, RunWriter, drive};
use tributary_testkit::{Http, TestEnv};

async fn send(
    env: &TestEnv,
    org: OrgId,
    profile: ProfileId,
    ty: &str,
    data: Value,
) -> anyhow::Result<()> {
    let mut envelope = Envelope::json("/tests/worker", ty, &data)?;
    envelope.org_id = Some(org);
    env.command("sync", &profile.to_string(), &envelope).await
}

async fn run_where(
    env: &TestEnv,
    http: &Http,
    run: SyncRunId,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    env.eventually(30, what, || async {
        let (status, body) = http
            .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
            .await;
        Ok((status == StatusCode::OK && check(&body)).then_some(body))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_run_writes_batches_with_their_checkpoints_and_fences_zombies()
-> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, session) = Http::signed_up(&app, "worker@example.com", "worker").await?;
    let org = OrgId(session["org_id"].as_str().unwrap().parse()?);
    let (profile, target, run) = (ProfileId::new(), TargetId::new(), SyncRunId::new());
    let request = json!({
        "profile_id": profile, "org_id": org, "run_id": run, "mode": "full", "trigger": "manual",
        "targets": [target], "at": chrono::Utc::now(),
    });
    send(&env, org, profile, sync::REQUEST, request).await?;
    let claim = |worker: &str| json!({ "profile_id": profile, "run_id": run, "worker": worker, "at": chrono::Utc::now() });
    send(&env, org, profile, sync::START, claim("worker:one")).await?;
    run_where(&env, &http, run, "attempt 1", |r| r["attempt"] == 1).await?;

    // Attempt 1 writes 1,200 synthetic documents in batches of 500.
    let kind = Connectors::builtin();
    let synthetic = kind.get("synthetic").unwrap();
    let work = tempfile::tempdir()?;
    let context = |checkpoint: Option<Value>, resuming: bool| BuildContext {
        config: json!({ "count": 1200, "batch_size": 500, "seed": 7, "size_bytes": 256 }),
        credential: None,
        start: Start {
            mode: Mode::Full,
            checkpoint,
            resuming,
            now: chrono::Utc::now(),
        },
        http: reqwest::Client::new(),
        work_dir: work.path().to_owned(),
    };
    let mut source = synthetic.build(context(None, false))?;
    let kafka = env.kafka();
    let reference = RunRef {
        org,
        profile,
        run,
        attempt: 1,
        targets: vec![target],
    };
    let first =
        tokio::task::block_in_place(|| RunWriter::new(&kafka, env.topics(), reference.clone()))?;
    let mut batches_left = 2;
    let ended = drive(source.as_mut(), &first, 0, || {
        // Stop after two batches: the worker "dies" here.
        batches_left -= 1;
        batches_left < 0
    })
    .await;
    assert!(matches!(ended, Ended::Stopped), "{ended:?}");
    let running = run_where(&env, &http, run, "two batches", |r| {
        r["counts"]["fetched"] == 1000
    })
    .await?;
    assert_eq!(running["progress"]["total"], 1200);

    // The run is interrupted and claimed again: attempt 2 resumes after batch 2, and its
    // producer fences attempt 1's.
    let interrupt = json!({ "profile_id": profile, "run_id": run, "attempt": 1, "reason": "worker one stopped answering", "at": chrono::Utc::now() });
    send(&env, org, profile, sync::INTERRUPT, interrupt).await?;
    run_where(&env, &http, run, "interrupted", |r| {
        r["state"] == "interrupted"
    })
    .await?;
    send(&env, org, profile, sync::START, claim("worker:two")).await?;
    run_where(&env, &http, run, "attempt 2", |r| r["attempt"] == 2).await?;
    let pg = env.pg().await?;
    let row = pg
        .query_one(
            "SELECT checkpoint, seq FROM sync_runs WHERE id = $1",
            &[&run.0],
        )
        .await?;
    let (checkpoint, seq): (Value, i64) = (row.get(0), row.get(1));
    assert_eq!(seq, 2);
    let second = tokio::task::block_in_place(|| {
        RunWriter::new(
            &kafka,
            env.topics(),
            RunRef {
                attempt: 2,
                ..reference.clone()
            },
        )
    })?;
    let zombie = tokio::task::block_in_place(|| {
        first.write(3, &tributary_connectors::source::Batch::default(), false)
    });
    assert!(zombie.is_err(), "the first worker was fenced");
    let mut resumed = synthetic.build(context(Some(checkpoint), true))?;
    let ended = drive(resumed.as_mut(), &second, seq as u64, || false).await;
    match ended {
        Ended::SourceDone { batches, written } => {
            assert_eq!(batches, 2, "one batch of 200 and the final one");
            assert_eq!(written.documents, 200);
        }
        other => panic!("{other:?}"),
    }
    let done = run_where(&env, &http, run, "source done", |r| {
        r["counts"]["fetched"] == 1200
    })
    .await?;
    assert_eq!(
        done["state"], "running",
        "the targets have not answered yet"
    );

    // Every document is on the documents topic once, with its run, attempt and batch.
    let records = env.read_all(&env.topics().documents())?;
    let mut ids = BTreeSet::new();
    for record in &records {
        assert_eq!(record.header(headers::RUN), Some(run.to_string().as_str()));
        assert_eq!(
            record.header(headers::TARGETS),
            Some(target.to_string().as_str())
        );
        let body: DocumentRecord = serde_json::from_slice(record.payload.as_deref().unwrap())?;
        assert!(
            record
                .key
                .as_deref()
                .unwrap()
                .starts_with(&profile.to_string())
        );
        assert!(
            ids.insert(body.doc_id().to_owned()),
            "{} twice",
            body.doc_id()
        );
    }
    assert_eq!(ids.len(), 1200);

    // The deliverer's answers for the recorded batches finish the run.
    let counts: Vec<Value> = [(1, 1, 500), (1, 2, 500), (2, 3, 200), (2, 4, 0)]
        .into_iter()
        .map(|(attempt, seq, n)| json!({ "attempt": attempt, "seq": seq, "delivered": n, "failed": 0 }))
        .collect();
    let delivered = json!({ "profile_id": profile, "run_id": run, "target_id": target, "counts": counts, "at": chrono::Utc::now() });
    send(&env, org, profile, sync::RECORD_DELIVERIES, delivered).await?;
    let finished = run_where(&env, &http, run, "finished", |r| r["state"] == "succeeded").await?;
    assert_eq!(finished["counts"]["delivered"], 1200);
    app.shutdown().await;
    Ok(())
}
