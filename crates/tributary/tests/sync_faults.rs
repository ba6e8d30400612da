//! The fault test of issue 5: a 50,000-document sync from `synthetic` into a fake R2R
//! that answers 500 to 10 % and 429 with `Retry-After` to 5 % of requests, while the
//! worker and the deliverer — separate processes — are each killed with SIGKILL several
//! times. A second, incremental run then updates and deletes documents under the same
//! faults. In the end R2R holds exactly the source's latest documents, each once with its
//! latest text, the deleted ones are gone, nothing is in flight or stuck, and each run's
//! counts equal what the destination took.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};
use tributary::Roles;
use tributary_connectors::source::synthetic::{SyntheticConfig, content_hash, expected};
use tributary_destinations::fake::{FakeR2r, FakeR2rConfig, Faults};
use tributary_testkit::{Http, TestEnv, kill_hard};

const BIN: &str = env!("CARGO_BIN_EXE_tributary");
const COUNT: u64 = 50_000;
/// Settings of the spawned worker and deliverer: heartbeats often, a short timeout, big
/// delivery batches.
const SETTINGS: &[(&str, &str)] = &[
    ("TRIBUTARY_HEARTBEAT_SECS", "3"),
    ("TRIBUTARY_HEARTBEAT_TIMEOUT", "15"),
    ("TRIBUTARY_DELIVERER_BATCH", "2000"),
    ("TRIBUTARY_DELIVERER_RETRIES", "8"),
];

/// The worker and deliverer processes, killed and replaced on a timetable.
struct Chaos<'a> {
    env: &'a TestEnv,
    worker: Child,
    deliverer: Child,
    generation: u32,
    kills: BTreeMap<&'static str, u32>,
}

impl<'a> Chaos<'a> {
    fn start(env: &'a TestEnv) -> anyhow::Result<Self> {
        Ok(Self {
            env,
            worker: env.spawn_with(BIN, "worker", "w0", SETTINGS)?,
            deliverer: env.spawn_with(BIN, "deliverer", "d0", SETTINGS)?,
            generation: 0,
            kills: BTreeMap::new(),
        })
    }

    /// SIGKILLs one role and starts a new process of it. A new worker comes under a new
    /// name, so its predecessor's run is only resumed once the monitor sees the
    /// heartbeats stop; the deliverer keeps its instance id, so its successor fences the
    /// dead one's open transaction at once.
    fn kill(&mut self, role: &'static str) -> anyhow::Result<()> {
        self.generation += 1;
        match role {
            "worker" => {
                kill_hard(&mut self.worker);
                let name = format!("w{}", self.generation);
                self.worker = self.env.spawn_with(BIN, "worker", &name, SETTINGS)?;
            }
            _ => {
                kill_hard(&mut self.deliverer);
                self.deliverer = self.env.spawn_with(BIN, "deliverer", "d0", SETTINGS)?;
            }
        }
        *self.kills.entry(role).or_default() += 1;
        Ok(())
    }

    fn stop(mut self) -> BTreeMap<&'static str, u32> {
        kill_hard(&mut self.worker);
        kill_hard(&mut self.deliverer);
        self.kills
    }
}

async fn run(http: &Http, run: &str) -> Value {
    http.send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
        .await
        .1
}

/// Waits for `run` to finish while killing processes: the worker once during each
/// attempt that is still reading the source (at most `kills` times), and the deliverer
/// every 10 s (at most `kills` times).
async fn finish_under_fire(
    http: &Http,
    chaos: &mut Chaos<'_>,
    id: &str,
    kills: u32,
    limit: Duration,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut next_deliverer_kill = Instant::now() + Duration::from_secs(10);
    let (mut worker_kills, mut deliverer_kills, mut killed_attempt) = (0, 0, 0);
    loop {
        let now = run(http, id).await;
        if now["finished_at"].is_string() {
            return Ok(now);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "run {id} did not finish in {limit:?}: {now}"
        );
        let attempt = now["attempt"].as_u64().unwrap_or_default();
        let reading = now["progress"]["total"]
            .as_u64()
            .is_some_and(|total| now["progress"]["done"].as_u64() < Some(total));
        let fetched = now["counts"]["fetched"].as_u64().unwrap_or_default();
        if now["state"] == "running"
            && reading
            && fetched > 0
            && attempt > killed_attempt
            && worker_kills < kills
        {
            eprintln!("killing the worker of attempt {attempt} at {fetched} fetched");
            chaos.kill("worker")?;
            (killed_attempt, worker_kills) = (attempt, worker_kills + 1);
        }
        if Instant::now() >= next_deliverer_kill && deliverer_kills < kills {
            eprintln!(
                "killing the deliverer at {} delivered",
                now["counts"]["delivered"]
            );
            chaos.kill("deliverer")?;
            deliverer_kills += 1;
            next_deliverer_kill = Instant::now() + Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_thousand_documents_arrive_exactly_once_through_crashes_and_faults()
-> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "faults@example.com", "faults").await?;
    let r2r = FakeR2r::start(FakeR2rConfig::default()).await?;
    r2r.set_faults(Faults {
        error_500: 0.10,
        rate_limit_429: 0.05,
        retry_after_secs: 1,
        latency: None,
        seed: 50,
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
    let target = target["id"].as_str().unwrap().to_owned();
    let config = json!({
        "count": COUNT, "batch_size": 250, "size_bytes": 512, "seed": 50,
        "update_rate": 0.1, "delete_rate": 0.05,
        // Each batch waits 100 ms (a rate limit), so the source reads for half a minute
        // and the worker can be killed mid-run.
        "rate_limit_every": 1, "rate_limit_retry_after_ms": 100,
    });
    let (status, profile) = http
        .send(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({ "name": "fifty", "source": { "kind": "synthetic", "config": config }, "targets": [target] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    let profile = profile["id"].as_str().unwrap().to_owned();
    let mut chaos = Chaos::start(&env)?;

    // Run 1: generation 0, everything.
    let (status, first) = http
        .send(
            Method::POST,
            &format!("/api/v1/profiles/{profile}/sync"),
            Some(json!({ "mode": "full" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first = first["run_id"].as_str().unwrap().to_owned();
    let done = finish_under_fire(&http, &mut chaos, &first, 3, Duration::from_secs(900)).await?;
    eprintln!("run 1: {done}");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["counts"]["fetched"], COUNT, "{done}");
    assert_eq!(done["targets"][&target]["delivered"], COUNT, "{done}");
    assert!(
        done["attempt"].as_u64().unwrap() >= 4,
        "the worker was killed during three attempts: {done}"
    );
    assert_eq!(r2r.document_count() as u64, COUNT);

    // Run 2: generation 1, incremental: updates, deletions and new documents.
    let (status, second) = http
        .send(
            Method::POST,
            &format!("/api/v1/profiles/{profile}/sync"),
            Some(json!({ "mode": "incremental" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second = second["run_id"].as_str().unwrap().to_owned();
    let done2 = finish_under_fire(&http, &mut chaos, &second, 1, Duration::from_secs(600)).await?;
    eprintln!("run 2: {done2}");
    let kills = chaos.stop();
    assert_eq!(done2["state"], "succeeded", "{done2}");
    let (fetched, deleted) = (
        done2["counts"]["fetched"].as_u64().unwrap(),
        done2["counts"]["deleted"].as_u64().unwrap(),
    );
    assert!(fetched > 0 && deleted > 0, "{done2}");
    assert_eq!(
        done2["targets"][&target]["delivered"].as_u64().unwrap(),
        fetched + deleted,
        "the run's counts equal what the destination took: {done2}"
    );

    // R2R holds exactly generation 1: every live document once, with its latest text.
    let synthetic: SyntheticConfig = serde_json::from_value(config)?;
    let want = expected(&synthetic, 1);
    assert!(want.failed.is_empty(), "no injected source failures here");
    let held: BTreeMap<String, String> = r2r
        .documents()
        .into_values()
        .map(|doc| {
            let id = doc.metadata["doc_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (id, content_hash(&doc.text))
        })
        .collect();
    assert_eq!(
        held.len(),
        r2r.document_count(),
        "one R2R document per doc id"
    );
    let missing: Vec<_> = want
        .documents
        .keys()
        .filter(|id| !held.contains_key(*id))
        .take(5)
        .collect();
    let extra: Vec<_> = held
        .keys()
        .filter(|id| !want.documents.contains_key(*id))
        .take(5)
        .collect();
    let stale: Vec<_> = want
        .documents
        .iter()
        .filter(|(id, hash)| held.get(*id).is_some_and(|h| h != *hash))
        .map(|(id, _)| id)
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && stale.is_empty(),
        "missing {missing:?}, deleted but present {extra:?}, stale {stale:?}"
    );
    assert_eq!(held.len(), want.documents.len());

    // The faults and the kills did happen, and nothing was dead-lettered or is stuck.
    let statuses = r2r.status_counts();
    assert!(
        statuses.get(&500).copied().unwrap_or_default() > 100,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&429).copied().unwrap_or_default() > 50,
        "{statuses:?}"
    );
    assert!(kills["worker"] >= 3 && kills["deliverer"] >= 4, "{kills:?}");
    assert!(
        env.read_all(&env.topics().documents_dead_letters())?
            .is_empty(),
        "transient faults are retried, not dead-lettered"
    );
    let (_, active) = http
        .send(Method::GET, "/api/v1/sync-runs?state=running", None)
        .await;
    assert_eq!(
        active["items"].as_array().map(Vec::len),
        Some(0),
        "{active}"
    );
    app.shutdown().await;
    Ok(())
}
