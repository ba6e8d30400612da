//! Faults against the real broker and database: processes killed with SIGKILL in the
//! middle of their work, and a second processor taking over.

use std::collections::HashMap;
use std::time::Duration;
use tributary::Roles;
use tributary_domain::org;
use tributary_testkit::{TestEnv, kill_hard};

const BIN: &str = env!("CARGO_BIN_EXE_tributary");

/// Waits until `topic` holds at least `n` records.
async fn wait_for_records(
    env: &TestEnv,
    topic: &str,
    n: usize,
    secs: u64,
) -> anyhow::Result<usize> {
    env.eventually(secs, topic, || async {
        let count = env.read_all(topic)?.len();
        Ok((count >= n).then_some(count))
    })
    .await
}

/// Every command has exactly one outcome, and every org exactly one creation.
fn assert_exactly_once(env: &TestEnv, ids: &[String]) -> anyhow::Result<()> {
    let results = env.read_all(&env.topics().command_results())?;
    let mut per_command: HashMap<String, usize> = HashMap::new();
    for r in &results {
        *per_command
            .entry(r.key.clone().unwrap_or_default())
            .or_default() += 1;
        assert_eq!(r.json()["status"], "accepted", "{}", r.json());
    }
    assert_eq!(per_command.len(), ids.len(), "one outcome per command");
    assert!(
        per_command.values().all(|c| *c == 1),
        "a command has more than one outcome"
    );
    for id in ids {
        assert!(per_command.contains_key(id), "command {id} has no outcome");
    }
    let events = env.read_all(&env.topics().events("org"))?;
    let mut created: HashMap<String, usize> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e.header("ce_type") == Some(org::CREATED))
    {
        *created
            .entry(e.key.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(created.len(), ids.len(), "one org per command");
    assert!(
        created.values().all(|c| *c == 1),
        "an org was created twice"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_killed_mid_batch_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let results = env.topics().command_results();
    // Enough work that the processor is still busy when killed (it handles thousands
    // of commands a second).
    let ids = env.create_orgs(12_000, "kill").await?;
    let mut processor = env.spawn(BIN, "processor", "p1")?;
    wait_for_records(&env, &results, 100, 60).await?;
    kill_hard(&mut processor);
    let seen = env.read_all(&results)?.len();
    assert!(
        seen < ids.len(),
        "the processor finished before it could be killed"
    );
    // The same instance id: its open transaction is aborted at once.
    let mut processor = env.spawn(BIN, "processor", "p1")?;
    wait_for_records(&env, &results, ids.len(), 120).await?;
    kill_hard(&mut processor);
    assert_exactly_once(&env, &ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processors_share_the_work_and_one_takes_over_when_the_other_dies() -> anyhow::Result<()>
{
    let env = TestEnv::new().await?;
    let results = env.topics().command_results();
    let mut a = env.spawn(BIN, "processor", "a")?;
    let mut b = env.spawn(BIN, "processor", "b")?;
    // Let both join the group before the work arrives.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ids = env.create_orgs(12_000, "pair").await?;
    wait_for_records(&env, &results, 100, 60).await?;
    kill_hard(&mut a);
    wait_for_records(&env, &results, ids.len(), 120).await?;
    kill_hard(&mut b);
    assert_exactly_once(&env, &ids)
}

async fn org_rows(env: &TestEnv) -> anyhow::Result<Vec<(String, String, String, i64)>> {
    let pg = env.pg().await?;
    let rows = pg
        .query(
            "SELECT id::text, slug, name, version FROM orgs ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_batch_ends_equal_to_a_rebuild_from_scratch() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let processor = env
        .start(Roles {
            processor: true,
            ..Roles::NONE
        })
        .await?;
    let ids = env.create_orgs(3000, "proj").await?;
    wait_for_records(&env, &env.topics().command_results(), ids.len(), 120).await?;
    let mut projector = env.spawn(BIN, "projector", "j1")?;
    let pg = env.pg().await?;
    env.eventually(60, "some orgs projected", || async {
        let n: i64 = pg.query_one("SELECT count(*) FROM orgs", &[]).await?.get(0);
        Ok((n >= 200).then_some(()))
    })
    .await?;
    kill_hard(&mut projector);
    let mut projector = env.spawn(BIN, "projector", "j1")?;
    env.eventually(120, "every org projected", || async {
        let n: i64 = pg.query_one("SELECT count(*) FROM orgs", &[]).await?.get(0);
        Ok((n as usize == ids.len()).then_some(()))
    })
    .await?;
    let live = org_rows(&env).await?;

    // A rebuild while the projector keeps running: replays into orgs_v2 and swaps.
    let status = std::process::Command::new(BIN)
        .args(["rebuild", "orgs"])
        .env("TRIBUTARY_KAFKA_BROKERS", &env.settings.kafka_brokers)
        .env("TRIBUTARY_DATABASE_URL", &env.settings.database_url)
        .env("TRIBUTARY_TOPIC_PREFIX", &env.prefix)
        .output()?;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let active: i32 = pg
        .query_one(
            "SELECT active_version FROM projections WHERE name = 'orgs'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(active, 2);
    let rebuilt = org_rows(&env).await?;
    assert_eq!(rebuilt.len(), ids.len());
    assert_eq!(
        live, rebuilt,
        "the read model after the crash differs from a rebuild"
    );

    // The live projector follows the swap: a rename after it lands in the new version.
    let (id, _, _, _) = rebuilt[0].clone();
    let rename = tributary_log::Envelope::json(
        "/tests",
        org::RENAME,
        &serde_json::json!({ "org_id": id, "name": "After the swap" }),
    )?;
    env.command("org", &id, &rename).await?;
    env.eventually(30, "the rename after the swap", || async {
        let name: String = pg
            .query_one("SELECT name FROM orgs WHERE id = $1::text::uuid", &[&id])
            .await?
            .get(0);
        Ok((name == "After the swap").then_some(()))
    })
    .await?;
    kill_hard(&mut projector);
    processor.shutdown().await;
    Ok(())
}
