//! Postgres restarted under load: projectors retry and resume, nothing is lost.
//!
//! A test binary of its own: restarting the shared server would break the tests that run
//! beside it, and cargo runs test binaries one after another.

use reqwest::StatusCode;
use std::time::Duration;
use tributary::Roles;
use tributary_testkit::{Http, TestEnv, infra};

const WAVES: usize = 6;
const PER_WAVE: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projectors_resume_without_loss_after_postgres_restarts_under_load() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "owner@example.com", "home").await?;
    let pg = env.pg().await?;

    // Commands keep arriving on Kafka (the processor needs no database) while the
    // database goes away and comes back.
    let producer_env = &env;
    let load = async move {
        let mut ids = Vec::new();
        for wave in 0..WAVES {
            ids.extend(
                producer_env
                    .create_orgs(PER_WAVE, &format!("w{wave}"))
                    .await?,
            );
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        anyhow::Ok(ids)
    };
    let restart = async {
        env.eventually(60, "some orgs projected before the restart", || async {
            let n: i64 = pg.query_one("SELECT count(*) FROM orgs", &[]).await?.get(0);
            Ok((n >= 100).then_some(n))
        })
        .await?;
        // Down for three seconds: long enough for every projector batch to fail.
        tokio::task::spawn_blocking(|| infra(&["restart", "postgres", "3"])).await??;
        anyhow::Ok(())
    };
    let (ids, ()) = tokio::try_join!(load, restart)?;

    // The old connection died with the server.
    let pg = env.pg().await?;
    let total = (WAVES * PER_WAVE) as i64;
    env.eventually(180, "every org projected after the restart", || async {
        let n: i64 = pg
            .query_one("SELECT count(*) FROM orgs WHERE slug ~ '^w[0-9]+-'", &[])
            .await?
            .get(0);
        Ok((n == total).then_some(()))
    })
    .await?;
    let slugs: i64 = pg
        .query_one(
            "SELECT count(DISTINCT slug) FROM orgs WHERE slug ~ '^w[0-9]+-'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(slugs, total, "an org is missing or doubled");
    env.eventually(60, "every command's outcome projected", || async {
        let n: i64 = pg
            .query_one(
                "SELECT count(*) FROM commands WHERE id = ANY($1::text[]::uuid[]) AND status = 'accepted'",
                &[&ids],
            )
            .await?
            .get(0);
        Ok((n == total).then_some(()))
    })
    .await?;

    // Waiting requests work again: the notice listener reconnected (or the sweep
    // found the rows).
    let response = http
        .client
        .post(http.url("/api/v1/orgs"))
        .header("prefer", "wait=20")
        .json(&serde_json::json!({ "slug": "after-restart", "name": "After" }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.shutdown().await;
    Ok(())
}
