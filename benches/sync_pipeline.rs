//! Documents per second from `synthetic` (2 KB documents) through the worker, Kafka and
//! the deliverer into a `discard` target, with `tributary serve` as a process of its own,
//! against raw rdkafka produce + consume of the same records; and the peak resident
//! memory of both.
//!
//! Ours is timed by the server: `finished_at − started_at` of the run (from the worker's
//! claim to the deliverer's last report), so the up-to-2 s wait for a worker to notice a
//! queued run is left out; the wall time from the request is printed beside it. A small
//! untimed run warms everything up first. After the run, the worker's and the
//! deliverer's step times are read back from the log (`stages:` lines).
//!
//! The baseline runs in a child process (this executable again, with
//! `SYNC_PIPELINE_BASELINE` set), so its peak resident memory is that of a process that
//! only produces and consumes. It runs once before ours and once after, and counts with
//! the mean of the two: the machines this runs on are shared.
//!
//! Knobs: `BENCH_N` documents (200,000), `BENCH_SOURCE_BATCH` documents per source batch
//! (1,000), `BENCH_DELIVERER_BATCH` records per deliverer transaction (2,000, the `serve`
//! default), `BENCH_TIMEOUT_SECS` (1,800), `BENCH_STAGES=0` skips the step times.
//! `BENCH_SERVE_LOG=<file>` keeps `tributary serve`'s log (`RUST_LOG`, default `info`);
//! `TEST_LOG=1` shows it on stderr. `TRIBUTARY_BIN` names the `tributary` binary
//! (`scripts/bench` builds it; otherwise the one beside this executable's directory).

use anyhow::Context;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tributary_benches::{
    RssSampler, free_port, knob, mib, proc_status_kib, quantile_ms, result_line, size,
};
use tributary_connectors::source::synthetic::{self, SyntheticConfig};
use tributary_domain::document::{self, DocumentRecord, headers, record_key};
use tributary_domain::{OrgId, ProfileId};
use tributary_log::Envelope;
use tributary_log::client::KafkaSettings;
use tributary_testkit::{Http, PARTITIONS, TestEnv, kill_hard};

/// Set (to the baseline's spec as JSON) in the child process that runs the baseline.
const BASELINE: &str = "SYNC_PIPELINE_BASELINE";
const DOC_BYTES: u64 = 2048;
/// Distinct payloads the baseline cycles through: enough that no producer batch holds
/// the same payload twice (so compression sees what ours sees), few enough that the
/// baseline's memory is not a copy of every document.
const POOL: usize = 4096;
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

fn main() -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(BASELINE) {
        return baseline_child(&serde_json::from_str(&spec)?);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

/// What the pipeline run measured.
struct Ours {
    docs_per_sec: f64,
    wall_docs_per_sec: f64,
    peak_kib: u64,
    sampled_max_kib: u64,
    idle_kib: u64,
    profile: String,
    run: String,
}

async fn bench() -> anyhow::Result<()> {
    let n = size(200_000);
    let source_batch = knob("BENCH_SOURCE_BATCH", 1_000);
    let deliverer_batch = knob("BENCH_DELIVERER_BATCH", 2_000);
    let timeout = Duration::from_secs(knob("BENCH_TIMEOUT_SECS", 1_800) as u64);
    let bin = tributary_bin()?;
    eprintln!(
        "sync_pipeline: {n} synthetic documents of {DOC_BYTES} B, source batches of \
         {source_batch}, deliverer batches of {deliverer_batch}, {PARTITIONS} partitions; \
         load average {}",
        load_average()
    );
    let env = TestEnv::new().await?;
    // The baseline runs before and after ours and counts with the mean of both, so a
    // machine that gets busier or quieter during the run favours neither side.
    let before = raw_baseline(&env, n, source_batch, 1).await?;

    let ours = {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let (partitions, batch) = (PARTITIONS.to_string(), deliverer_batch.to_string());
        let child = spawn_serve(
            &env,
            &bin,
            &[
                ("TRIBUTARY_LISTEN", listen.as_str()),
                ("TRIBUTARY_PARTITIONS", partitions.as_str()),
                ("TRIBUTARY_DELIVERER_BATCH", batch.as_str()),
            ],
        )?;
        let mut serve = Serve(child);
        let result = pipeline(&mut serve, &listen, n, source_batch, timeout).await;
        serve.stop();
        result?
    };
    eprintln!(
        "ours: {:.0} docs/s (run's finished_at − started_at), {:.0} docs/s from the request; \
         tributary serve peak RSS {:.1} MiB (VmHWM; sampled max {:.1} MiB, {:.1} MiB idle \
         before the run)",
        ours.docs_per_sec,
        ours.wall_docs_per_sec,
        mib(ours.peak_kib),
        mib(ours.sampled_max_kib),
        mib(ours.idle_kib)
    );
    if knob("BENCH_STAGES", 1) == 1 {
        let (topics, kafka) = (env.topics(), env.kafka());
        let (profile, run) = (ours.profile.clone(), ours.run.clone());
        tokio::task::spawn_blocking(move || stages(&kafka, &topics, &profile, &run, source_batch))
            .await??;
    }

    let after = raw_baseline(&env, n, source_batch, 2).await?;
    let baseline_rate = (before.docs_per_sec + after.docs_per_sec) / 2.0;
    let baseline_kib = before.peak_kib.max(after.peak_kib);
    eprintln!(
        "summary: ours {:.0} docs/s vs raw {baseline_rate:.0} docs/s (mean of {:.0} before \
         and {:.0} after; ours is {:.0} % of raw, the aim is 50 %); serve peaks at {:.0} MiB \
         vs {:.0} MiB for the raw clients; load average now {}",
        ours.docs_per_sec,
        before.docs_per_sec,
        after.docs_per_sec,
        100.0 * ours.docs_per_sec / baseline_rate.max(f64::MIN_POSITIVE),
        mib(ours.peak_kib),
        mib(baseline_kib),
        load_average()
    );
    // Peak resident memory (VmHWM): all of `tributary serve` (API, processor, projectors,
    // worker, deliverer, their Kafka clients, pools and buffers) against a process that
    // only produced and consumed the same records with librdkafka's default buffering
    // (the larger of its two rounds). Not like for like: it says what the whole server
    // costs next to the bare clients it cannot do without.
    println!(
        "{}",
        result_line(
            "sync_pipeline_peak_rss",
            mib(ours.peak_kib),
            mib(baseline_kib),
            "MiB"
        )
    );
    println!(
        "{}",
        result_line("sync_pipeline", ours.docs_per_sec, baseline_rate, "docs/s")
    );
    Ok(())
}

/// What one round of the baseline measured.
struct Raw {
    docs_per_sec: f64,
    peak_kib: u64,
}

/// One round of the baseline on a scratch topic of its own, in a child process; prints
/// what it measured.
async fn raw_baseline(
    env: &TestEnv,
    n: usize,
    source_batch: usize,
    round: u32,
) -> anyhow::Result<Raw> {
    let topic = env
        .scratch_topic(&format!("bench.raw.{round}"), PARTITIONS)
        .await?;
    eprintln!("baseline {round}: raw produce + consume of {n} records on {topic}");
    // Ids only give the headers their real shape and length.
    let id = || uuid::Uuid::now_v7().to_string();
    let spec = json!({
        "brokers": env.settings.kafka_brokers, "topic": topic, "n": n,
        "source_batch": source_batch, "profile": id(), "org": id(), "target": id(),
        "run": id(),
    });
    let raw = tokio::task::spawn_blocking(move || baseline(&spec)).await??;
    let out = Raw {
        docs_per_sec: raw["docs_per_sec"].as_f64().unwrap_or_default(),
        peak_kib: raw["peak_kib"].as_u64().unwrap_or_default(),
    };
    eprintln!(
        "baseline {round}: {:.0} docs/s produce+consume (produce alone {:.0} docs/s); peak \
         RSS {:.1} MiB (VmHWM; sampled max {:.1} MiB; {} payloads of {:.0} B held in it); \
         generating and encoding alone: {:.0} docs/s",
        out.docs_per_sec,
        raw["produce_docs_per_sec"].as_f64().unwrap_or_default(),
        mib(out.peak_kib),
        mib(raw["sampled_max_kib"].as_u64().unwrap_or_default()),
        raw["pool"],
        raw["payload_bytes"].as_f64().unwrap_or_default(),
        raw["generate_docs_per_sec"].as_f64().unwrap_or_default(),
    );
    Ok(out)
}

/// Starts `tributary serve` against the environment, like [`TestEnv::spawn_with`] but
/// with `serve`'s own processor and projector batch sizes (`spawn_with` pins both to the
/// tests' 100, which would make every projection, the `documents` one included, commit
/// twenty times as often as a real server). Its log goes to `BENCH_SERVE_LOG` (a file;
/// `RUST_LOG` as given, else `info`) or, with `TEST_LOG`, to stderr.
fn spawn_serve(env: &TestEnv, bin: &Path, settings: &[(&str, &str)]) -> anyhow::Result<Child> {
    let s = &env.settings;
    let log = std::env::var_os("BENCH_SERVE_LOG");
    let stderr = match &log {
        Some(path) => Stdio::from(std::fs::File::create(path)?),
        None if std::env::var_os("TEST_LOG").is_some() => Stdio::inherit(),
        None => Stdio::null(),
    };
    let filter = match (&log, std::env::var("RUST_LOG")) {
        (Some(_), Ok(filter)) => filter,
        (None, _) if std::env::var_os("TEST_LOG").is_none() => "warn".to_owned(),
        _ => "info".to_owned(),
    };
    Ok(Command::new(bin)
        .arg("serve")
        .envs(settings.iter().copied())
        .env("TRIBUTARY_DATA_DIR", &s.data_dir)
        .env("TRIBUTARY_KAFKA_BROKERS", &s.kafka_brokers)
        .env("TRIBUTARY_DATABASE_URL", &s.database_url)
        .env("TRIBUTARY_TOPIC_PREFIX", &env.prefix)
        .env("TRIBUTARY_KEK", s.kek.as_deref().unwrap_or_default())
        .env("TRIBUTARY_INSTANCE_ID", "bench")
        .env("RUST_LOG", filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()?)
}

/// `tributary serve`, stopped when dropped (by SIGKILL, if [`Serve::stop`] was not
/// called), so a failing bench leaves no server behind.
struct Serve(Child);

impl Serve {
    /// SIGTERM, then SIGKILL if it has not shut down in 15 s.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        kill_hard(&mut self.0);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            kill_hard(&mut self.0);
        }
    }
}

/// Signs up, makes a discard target and a synthetic profile, runs a small warm-up sync,
/// then the measured one.
async fn pipeline(
    serve: &mut Serve,
    listen: &str,
    n: usize,
    source_batch: usize,
    timeout: Duration,
) -> anyhow::Result<Ours> {
    let pid = serve.0.id();
    let sampler = RssSampler::start(pid, SAMPLE_EVERY);
    let anonymous = Http {
        base: format!("http://{listen}"),
        client: reqwest::Client::new(),
    };
    wait_for_api(serve, &anonymous).await?;
    let (status, session) = anonymous
        .send(
            Method::POST,
            "/api/v1/auth/signup",
            Some(json!({
                "email": "bench@example.com", "password": "a long bench passphrase 123",
                "name": "Bench", "org": { "slug": "bench", "name": "Bench" },
            })),
        )
        .await;
    anyhow::ensure!(status == StatusCode::CREATED, "sign-up: {status} {session}");
    let http = anonymous.with_token(session["access_token"].as_str().unwrap_or_default())?;
    let target = created(
        &http,
        "/api/v1/targets",
        json!({ "name": "discard", "kind": "discard", "config": {} }),
    )
    .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let profile = |name: &str, count: usize| {
        json!({
            "name": name, "targets": [target],
            "source": { "kind": "synthetic", "config": {
                "count": count, "size_bytes": DOC_BYTES, "batch_size": source_batch,
            } },
        })
    };
    // Untimed: the first claim, the run's transactional producer, the deliverer's
    // partitions and every pool are warm before the measured run.
    let warmup = created(&http, "/api/v1/profiles", profile("warm-up", 2_000)).await?;
    let warmup = warmup["id"].as_str().unwrap_or_default();
    let run = sync(&http, warmup).await?;
    let done = finish(&http, &sampler, &run, 2_000, timeout, false).await?;
    anyhow::ensure!(done.run["state"] == "succeeded", "warm-up: {}", done.run);
    let idle_kib = proc_status_kib(pid, "VmRSS").unwrap_or_default();

    let measured = created(&http, "/api/v1/profiles", profile("measured", n)).await?;
    let profile = measured["id"].as_str().unwrap_or_default().to_owned();
    eprintln!("ours: requesting a full sync of {n} documents");
    let requested = Instant::now();
    let run = sync(&http, &profile).await?;
    let done = finish(&http, &sampler, &run, n, timeout, true).await?;
    let wall = requested.elapsed();
    let peak_kib = proc_status_kib(pid, "VmHWM").unwrap_or_default();
    let sampled_max_kib = sampler.stop();
    let r = &done.run;
    anyhow::ensure!(
        r["state"] == "succeeded" && r["counts"]["delivered"].as_u64() == Some(n as u64),
        "the measured run did not deliver every document: {r}"
    );
    let at = |field: &str| -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        Ok(r[field]
            .as_str()
            .with_context(|| format!("no {field} in {r}"))?
            .parse()?)
    };
    let server = (at("finished_at")? - at("started_at")?)
        .to_std()?
        .as_secs_f64();
    let queued = (at("started_at")? - at("requested_at")?)
        .to_std()
        .unwrap_or_default();
    eprintln!(
        "ours: claimed {:.2} s after the request; the worker had written everything {:.1} s \
         after the request ({:.0} docs/s), the deliverer answered for the last record {:.1} s \
         after it; started → finished {server:.1} s, request → seen finished {:.1} s",
        queued.as_secs_f64(),
        done.fetched_all.as_secs_f64(),
        n as f64 / done.fetched_all.as_secs_f64().max(f64::MIN_POSITIVE),
        done.delivered_all.as_secs_f64(),
        wall.as_secs_f64()
    );
    Ok(Ours {
        docs_per_sec: n as f64 / server,
        wall_docs_per_sec: n as f64 / wall.as_secs_f64(),
        peak_kib,
        sampled_max_kib,
        idle_kib,
        profile,
        run,
    })
}

async fn wait_for_api(serve: &mut Serve, http: &Http) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = serve.0.try_wait()? {
            anyhow::bail!("tributary serve exited with {status}; TEST_LOG=1 shows its log");
        }
        let up = http
            .client
            .get(http.url("/api/v1/openapi.json"))
            .send()
            .await;
        if up.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "tributary serve did not answer on {} within 120 s",
            http.base
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// POSTs `body`; the answer, which must be 201.
async fn created(http: &Http, path: &str, body: Value) -> anyhow::Result<Value> {
    let (status, answer) = http.send(Method::POST, path, Some(body)).await;
    anyhow::ensure!(
        status == StatusCode::CREATED,
        "POST {path}: {status} {answer}"
    );
    Ok(answer)
}

async fn sync(http: &Http, profile: &str) -> anyhow::Result<String> {
    let run = created(
        http,
        &format!("/api/v1/profiles/{profile}/sync"),
        json!({ "mode": "full" }),
    )
    .await?;
    Ok(run["run_id"].as_str().unwrap_or_default().to_owned())
}

/// A finished run, and when (after the polling began) the read model first showed every
/// document fetched and every document delivered.
struct Finished {
    run: Value,
    fetched_all: Duration,
    delivered_all: Duration,
}

/// Polls the run every 200 ms until `finished_at` is set; with `progress`, prints where
/// the worker and the deliverer are every 2 s.
async fn finish(
    http: &Http,
    sampler: &RssSampler,
    run: &str,
    n: usize,
    timeout: Duration,
    progress: bool,
) -> anyhow::Result<Finished> {
    let started = Instant::now();
    let mut next_print = started + Duration::from_secs(2);
    let (mut fetched_all, mut delivered_all) = (None, None);
    loop {
        let (status, now) = http
            .send(Method::GET, &format!("/api/v1/sync-runs/{run}"), None)
            .await;
        anyhow::ensure!(status == StatusCode::OK, "GET run {run}: {status} {now}");
        let (fetched, delivered) = (
            now["counts"]["fetched"].as_u64().unwrap_or_default(),
            now["counts"]["delivered"].as_u64().unwrap_or_default(),
        );
        if fetched >= n as u64 {
            fetched_all.get_or_insert(started.elapsed());
        }
        if delivered >= n as u64 {
            delivered_all.get_or_insert(started.elapsed());
        }
        if now["finished_at"].is_string() {
            return Ok(Finished {
                run: now,
                fetched_all: fetched_all.unwrap_or_else(|| started.elapsed()),
                delivered_all: delivered_all.unwrap_or_else(|| started.elapsed()),
            });
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "run {run} did not finish in {timeout:?}: {now}"
        );
        if progress && Instant::now() >= next_print {
            next_print += Duration::from_secs(2);
            eprintln!(
                "  +{:>5.1} s  {:<11} fetched {fetched:>8}  delivered {delivered:>8}  RSS {:>6.1} MiB",
                started.elapsed().as_secs_f64(),
                now["state"].as_str().unwrap_or_default(),
                mib(sampler.last_kib())
            );
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// Where the measured run's time went, read back from the log once it is over: the
/// worker's batches from its document records' create times (stamped when the worker
/// hands a record to its producer) and its `record_batch` commands (sent after a batch's
/// records, before waiting for their acks and committing), the deliverer's steps from
/// its `record_deliveries` commands (one per step here: one run, one target).
fn stages(
    kafka: &KafkaSettings,
    topics: &tributary_log::Topics,
    profile: &str,
    run: &str,
    source_batch: usize,
) -> anyhow::Result<()> {
    // Per batch: first and last document record, and the record_batch command (ms).
    let mut batches: BTreeMap<u64, (i64, i64, Option<i64>)> = BTreeMap::new();
    read_topic(kafka, &topics.documents(), |m| {
        let Some(seq) = header(m, headers::SEQ).and_then(|s| s.parse().ok()) else {
            return;
        };
        if header(m, headers::RUN) != Some(run) {
            return;
        }
        let t = m.timestamp().to_millis().unwrap_or_default();
        let e = batches.entry(seq).or_insert((t, t, None));
        (e.0, e.1) = (e.0.min(t), e.1.max(t));
    })?;
    // Per deliverer step: when its report was sent, and how many records it answered.
    let mut steps: Vec<(i64, u64)> = Vec::new();
    read_topic(kafka, &topics.commands("sync"), |m| {
        let Ok(env) = Envelope::decode(m.headers(), m.payload().unwrap_or_default()) else {
            return;
        };
        let Ok(data) = serde_json::from_slice::<Value>(&env.data) else {
            return;
        };
        if data["run_id"].as_str() != Some(run) || data["profile_id"].as_str() != Some(profile) {
            return;
        }
        let t = m.timestamp().to_millis().unwrap_or_default();
        if env.ty == tributary_domain::sync::RECORD_BATCH {
            if let Some(b) = data["seq"].as_u64().and_then(|seq| batches.get_mut(&seq)) {
                b.2 = Some(t);
            }
        } else if env.ty == tributary_domain::sync::RECORD_DELIVERIES {
            let answered = data["counts"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|c| {
                            c["delivered"].as_u64().unwrap_or(0) + c["failed"].as_u64().unwrap_or(0)
                        })
                        .sum()
                })
                .unwrap_or(0);
            steps.push((t, answered));
        }
    })?;
    steps.sort_unstable();
    let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
    let list: Vec<(i64, i64, Option<i64>)> = batches.values().copied().collect();
    let (mut sending, mut gaps, mut cycles) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (first, last, command)) in list.iter().enumerate() {
        sending.push(ms(last - first));
        if let (Some(next), Some(command)) = (list.get(i + 1), command) {
            gaps.push(ms(next.0 - command));
            cycles.push(ms(next.0 - first));
        }
    }
    let generating = {
        let config = SyntheticConfig {
            size_bytes: DOC_BYTES,
            ..SyntheticConfig::new(source_batch as u64)
        };
        let t = Instant::now();
        let generated = (0..source_batch)
            .filter_map(|i| synthetic::document(&config, 0, &format!("doc-{i:06}")))
            .count();
        anyhow::ensure!(generated == source_batch, "synthetic documents");
        t.elapsed()
    };
    let step_gaps: Vec<Duration> = steps.windows(2).map(|w| ms(w[1].0 - w[0].0)).collect();
    let mut per_step: Vec<u64> = steps.iter().map(|s| s.1).collect();
    per_step.sort_unstable();
    let summary = |name: &str, mut d: Vec<Duration>| {
        let total: Duration = d.iter().sum();
        d.sort_unstable();
        eprintln!(
            "  {name:<44} p50 {:>6.1} ms  p90 {:>6.1} ms  max {:>6.1} ms  total {:>6.1} s",
            quantile_ms(&d, 0.5),
            quantile_ms(&d, 0.9),
            quantile_ms(&d, 1.0),
            total.as_secs_f64()
        );
    };
    eprintln!(
        "stages: worker, {} batches of up to {source_batch} documents (generating one batch \
         in this process: {:.1} ms)",
        list.len(),
        generating.as_secs_f64() * 1000.0
    );
    summary("encode + hand to producer (first→last record)", sending);
    summary("acks + commit + next source batch", gaps);
    summary("whole batch cycle", cycles);
    eprintln!(
        "stages: deliverer, {} steps, records per step p50 {} max {}",
        steps.len(),
        per_step
            .get(per_step.len() / 2)
            .copied()
            .unwrap_or_default(),
        per_step.last().copied().unwrap_or_default()
    );
    summary("step cycle (report to report)", step_gaps);
    Ok(())
}

/// Calls `each` for every committed record of `topic`, up to its current end.
fn read_topic(
    kafka: &KafkaSettings,
    topic: &str,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = kafka.reader().create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut open = PARTITIONS;
    while open > 0 {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => each(&m),
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("reading {topic} timed out"),
        }
    }
    Ok(())
}

fn header<'m>(m: &'m rdkafka::message::BorrowedMessage<'_>, name: &str) -> Option<&'m str> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

/// Runs the baseline in a child process; its answer (see [`baseline_child`]) with the
/// largest resident memory sampled from outside added as `sampled_max_kib`.
fn baseline(spec: &Value) -> anyhow::Result<Value> {
    let child = Command::new(std::env::current_exe()?)
        .env(BASELINE, spec.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let sampler = RssSampler::start(child.id(), SAMPLE_EVERY);
    let output = child.wait_with_output()?;
    let sampled = sampler.stop();
    anyhow::ensure!(output.status.success(), "the baseline failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut answer: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("the baseline's answer: {stdout}"))?;
    answer["sampled_max_kib"] = json!(sampled);
    Ok(answer)
}

/// The baseline, in a process of its own: produces `n` records shaped like the worker's
/// (an upsert of a synthetic document, keyed `<profile>/<doc id>`, with the same headers)
/// with the producer settings the worker uses minus transactions, while a plain consumer
/// reads them back. Docs/s from the first send to the last record read. Prints one JSON
/// line.
fn baseline_child(spec: &Value) -> anyhow::Result<()> {
    let n = spec["n"].as_u64().context("n")? as usize;
    let topic = spec["topic"].as_str().context("topic")?.to_owned();
    let text = |name: &str| spec[name].as_str().unwrap_or_default().to_owned();
    let kafka = KafkaSettings::new(text("brokers"));
    let source_batch = spec["source_batch"].as_u64().unwrap_or(1_000).max(1) as usize;
    let profile: ProfileId = text("profile").parse()?;
    let (org, run, target) = (text("org"), text("run"), text("target"));
    let profile_id = profile.to_string();

    let config = SyntheticConfig {
        size_bytes: DOC_BYTES,
        ..SyntheticConfig::new(n as u64)
    };
    let pool_len = n.clamp(1, POOL);
    let generating = Instant::now();
    let pool: Vec<Vec<u8>> = (0..pool_len)
        .map(|i| {
            let document = synthetic::document(&config, 0, &format!("doc-{i:06}"))
                .context("a generation-0 document")?;
            Ok(serde_json::to_vec(&DocumentRecord::Upsert { document })?)
        })
        .collect::<anyhow::Result<_>>()?;
    let generate_rate = pool_len as f64 / generating.elapsed().as_secs_f64();
    let payload_bytes = pool.iter().map(Vec::len).sum::<usize>() as f64 / pool_len as f64;

    let consumer: BaseConsumer = kafka
        .base()
        .set("group.id", format!("{topic}.raw"))
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
        // Connects to the partition's leader before the clock starts; a topic created a
        // moment ago may take a few seconds to show its partitions.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)) {
            anyhow::ensure!(Instant::now() < deadline, "partition {p} of {topic}: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    consumer.assign(&assignment)?;
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka.producer().set("linger.ms", "5").create()?;

    let started = Instant::now();
    let reader = std::thread::spawn(move || -> anyhow::Result<Instant> {
        let mut read = 0;
        let mut last = Instant::now();
        while read < n {
            match consumer.poll(Duration::from_secs(30)) {
                Some(Ok(m)) => {
                    anyhow::ensure!(m.payload_len() > 0, "an empty record");
                    read += 1;
                    last = Instant::now();
                }
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("no record for 30 s after {read} of {n}"),
            }
        }
        Ok(last)
    });
    for i in 0..n {
        let key = record_key(&profile, &format!("doc-{i:06}"));
        let seq = (i / source_batch + 1).to_string();
        let headers = document_headers(&key, &org, &profile_id, &run, &seq, &target);
        let mut record = BaseRecord::to(&topic)
            .key(&key)
            .payload(&pool[i % pool_len])
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let produced = started.elapsed();
    let last = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    let total = last.duration_since(started);
    println!(
        "{}",
        json!({
            "docs_per_sec": n as f64 / total.as_secs_f64(),
            "produce_docs_per_sec": n as f64 / produced.as_secs_f64(),
            "generate_docs_per_sec": generate_rate,
            "peak_kib": proc_status_kib(std::process::id(), "VmHWM").unwrap_or_default(),
            "pool": pool_len,
            "payload_bytes": payload_bytes,
        })
    );
    Ok(())
}

/// Headers like the worker's on a document record: CloudEvents attributes (type,
/// subject = key, org, correlation = run) and the record's own.
fn document_headers(
    key: &str,
    org: &str,
    profile: &str,
    run: &str,
    seq: &str,
    targets: &str,
) -> OwnedHeaders {
    let mut env = Envelope::new("tributary://worker", document::UPSERTED, Vec::new());
    env.subject = Some(key.to_owned());
    env.org_id = org.parse().ok().map(OrgId);
    env.correlation_id = Some(run.to_owned());
    [
        (headers::ORG, org),
        (headers::PROFILE, profile),
        (headers::RUN, run),
        (headers::ATTEMPT, "1"),
        (headers::SEQ, seq),
        (headers::TARGETS, targets),
        (headers::OP, "upsert"),
    ]
    .into_iter()
    .fold(env.encode_headers(), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value),
        })
    })
}

/// The `tributary` binary: `TRIBUTARY_BIN`, else the release build's, next to the
/// directory this bench runs from (`target/release/deps/..`).
fn tributary_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("TRIBUTARY_BIN") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?
            .parent()
            .and_then(|deps| deps.parent())
            .context("the bench's directory")?
            .join("tributary"),
    };
    anyhow::ensure!(
        path.is_file(),
        "no tributary binary at {}; build it with `cargo build --release -p tributary` \
         (scripts/bench does) or set TRIBUTARY_BIN",
        path.display()
    );
    Ok(path)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
