//! Projections whose tables were built from other definitions than the running code's
//! (ADR 0016): the projector rebuilds them from the log before it projects, instead of
//! failing forever on a column that does not exist; a version recorded before shapes
//! were recorded is checked column by column; an older process refuses tables a newer
//! one rebuilt, until someone rebuilds them on purpose.

use serde_json::{Value, json};
use tributary::Roles;
use tributary_domain::sync;
use tributary_log::Envelope;
use tributary_runtime::{Projector, ProjectorConfig, Readiness};
use tributary_store::{Projection, Registry};
use tributary_testkit::{Http, TestEnv};
use uuid::Uuid;

/// Every row of a read model, as JSON, in a stable order.
async fn rows(pg: &tokio_postgres::Client, view: &str) -> anyhow::Result<Vec<Value>> {
    let rows = pg
        .query(
            &format!("SELECT to_jsonb(t) FROM {view} t ORDER BY to_jsonb(t)::text"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `(active_version, fingerprint)` of a projection.
async fn registry(
    pg: &tokio_postgres::Client,
    projection: Projection,
) -> anyhow::Result<(i32, Option<String>)> {
    let row = pg
        .query_one(
            "SELECT active_version, fingerprint FROM projections WHERE name = $1",
            &[&projection.name()],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

async fn send_sync(
    env: &TestEnv,
    org: Uuid,
    profile: Uuid,
    ty: &str,
    data: Value,
) -> anyhow::Result<()> {
    let mut envelope = Envelope::json("/tests/worker", ty, &data)?;
    envelope.org_id = Some(tributary_domain::OrgId(org));
    env.command("sync", &profile.to_string(), &envelope).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_built_from_other_tables_are_rebuilt_before_projecting() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let pg = env.pg().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, session) = Http::signed_up(&app, "shape@example.com", "shape").await?;
    let org: Uuid = session["org_id"].as_str().unwrap().parse()?;

    // Something in each read model the test changes: a target and a profile (catalog), a
    // run a worker claimed (sync_runs), the founder and the org (identity, orgs).
    let (_, target) = http
        .send(
            reqwest::Method::POST,
            "/api/v1/targets",
            Some(json!({ "name": "Sink", "kind": "discard" })),
        )
        .await;
    let (status, profile) = http
        .send(
            reqwest::Method::POST,
            "/api/v1/profiles",
            Some(json!({
                "name": "Docs",
                "source": { "kind": "synthetic", "config": { "count": 10 } },
                "targets": [target["id"]],
                "schedule": { "cron": "0 3 * * *" },
            })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{profile}");
    let profile: Uuid = profile["id"].as_str().unwrap().parse()?;
    let run = Uuid::now_v7();
    let request = json!({
        "profile_id": profile, "org_id": org, "run_id": run, "mode": "full",
        "trigger": "manual", "targets": [target["id"]], "at": chrono::Utc::now(),
    });
    send_sync(&env, org, profile, sync::REQUEST, request).await?;
    let start = json!({ "profile_id": profile, "run_id": run, "worker": "worker:test", "at": chrono::Utc::now() });
    send_sync(&env, org, profile, sync::START, start).await?;
    env.eventually(20, "the claimed run", || async {
        let rows = pg
            .query(
                "SELECT 1 FROM sync_runs WHERE id = $1 AND state = 'running' AND heartbeat_at IS NOT NULL",
                &[&run],
            )
            .await?;
        Ok((!rows.is_empty()).then_some(()))
    })
    .await?;
    let mut before = Vec::new();
    for view in [
        "sync_runs",
        "profiles",
        "targets",
        "members",
        "users",
        "orgs",
    ] {
        before.push(rows(&pg, view).await?);
    }
    app.shutdown().await;

    // Four pasts of an installation:
    // - sync_runs was built before shapes were recorded, and before `heartbeat_at`;
    // - catalog was built before shapes were recorded, and before it had `profiles`;
    // - identity was built from other definitions (another shape is recorded);
    // - orgs was built before shapes were recorded, with the columns it has today.
    pg.batch_execute(
        "DROP VIEW sync_runs;
         ALTER TABLE sync_runs_v1 DROP COLUMN heartbeat_at;
         CREATE VIEW sync_runs AS SELECT * FROM sync_runs_v1;
         DROP VIEW profiles;
         DROP TABLE profiles_v1;
         UPDATE projections SET fingerprint = NULL WHERE name IN ('sync_runs', 'catalog', 'orgs');
         UPDATE projections SET fingerprint = 'an older shape' WHERE name = 'identity';",
    )
    .await?;

    let app = env.start(Roles::CONTROL).await?;
    for projection in [
        Projection::SyncRuns,
        Projection::Catalog,
        Projection::Identity,
    ] {
        env.eventually(60, &format!("{} rebuilt", projection.name()), || async {
            let (version, fingerprint) = registry(&pg, projection).await?;
            Ok((version == 2).then_some(fingerprint))
        })
        .await
        .map(|fingerprint| {
            assert_eq!(fingerprint, Some(Registry::fingerprint(projection)));
        })?;
    }
    // Orgs had this code's columns: its shape is recorded, and nothing is rebuilt.
    env.eventually(20, "the orgs shape recorded", || async {
        let (version, fingerprint) = registry(&pg, Projection::Orgs).await?;
        Ok(fingerprint.map(|f| (version, f)))
    })
    .await
    .map(|(version, fingerprint)| {
        assert_eq!(
            (version, fingerprint),
            (1, Registry::fingerprint(Projection::Orgs))
        );
    })?;

    // Every row is back as it was, the profile included, which the empty table lacked.
    let mut after = Vec::new();
    for view in [
        "sync_runs",
        "profiles",
        "targets",
        "members",
        "users",
        "orgs",
    ] {
        after.push(rows(&pg, view).await?);
    }
    assert_eq!(after, before);
    assert_eq!(after[1].len(), 1, "the profile: {:?}", after[1]);

    // And projecting goes on: the worker's next batch lands in the rebuilt version.
    let batch = json!({
        "profile_id": profile, "run_id": run, "attempt": 1, "seq": 1, "documents": 10,
        "deletions": 0, "checkpoint": { "position": 1 }, "progress": { "done": 10 },
        "at": chrono::Utc::now(),
    });
    send_sync(&env, org, profile, sync::RECORD_BATCH, batch).await?;
    let claimed: chrono::DateTime<chrono::Utc> =
        before[0][0]["heartbeat_at"].as_str().unwrap().parse()?;
    env.eventually(20, "the batch projected", || async {
        let rows = pg
            .query(
                "SELECT 1 FROM sync_runs WHERE id = $1 AND documents = 10 AND heartbeat_at > $2",
                &[&run, &claimed],
            )
            .await?;
        Ok((!rows.is_empty()).then_some(()))
    })
    .await?;
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_process_refuses_tables_a_newer_one_rebuilt() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let pg = env.pg().await?;
    let ours = Registry::fingerprint(Projection::Orgs);
    // A newer Tributary rebuilt `orgs` to its shape, replacing this code's.
    pg.execute(
        "UPDATE projections SET fingerprint = 'a newer shape', replaced_fingerprints = ARRAY[$1]
         WHERE name = 'orgs'",
        &[&ours],
    )
    .await?;
    let db = tributary_store::connect(&env.settings.database_url, 2)?;
    let config = ProjectorConfig {
        kafka: env.kafka(),
        topics: env.topics(),
        db: db.clone(),
        max_batch: 100,
    };
    let handle = tokio::runtime::Handle::current();
    let start = {
        let (config, handle) = (config.clone(), handle.clone());
        move || Projector::new(Projection::Orgs, config, handle, Readiness::default()).map(drop)
    };
    let refused = tokio::task::spawn_blocking(start.clone())
        .await?
        .expect_err("an older projector must not write to newer tables");
    let message = format!("{refused:#}");
    assert!(
        message.contains("newer Tributary") && message.contains("`tributary rebuild orgs`"),
        "{message}"
    );
    assert_eq!(
        registry(&pg, Projection::Orgs).await?,
        (1, Some("a newer shape".into()))
    );

    // Going back on purpose: a rebuild with this version takes the tables back, and
    // remembers the shape it replaced.
    for attempt in 0.. {
        let (kafka, topics, db, handle) = (env.kafka(), env.topics(), db.clone(), handle.clone());
        let rebuilt = tokio::task::spawn_blocking(move || {
            tributary_runtime::rebuild(Projection::Orgs, &kafka, &topics, &db, &handle, 100)
        })
        .await?;
        match rebuilt {
            Ok(_) => break,
            // Topics this young may not have their leaders yet.
            Err(e) if attempt < 20 && e.to_string().contains("Leader") => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
    let row = pg
        .query_one(
            "SELECT active_version, fingerprint, replaced_fingerprints FROM projections WHERE name = 'orgs'",
            &[],
        )
        .await?;
    let replaced: Vec<String> = row.get(2);
    assert_eq!(
        (
            row.get::<_, i32>(0),
            row.get::<_, Option<String>>(1),
            replaced
        ),
        (2, Some(ours), vec!["a newer shape".to_owned()])
    );
    tokio::task::spawn_blocking(start).await??;
    Ok(())
}
