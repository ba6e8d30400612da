//! Commands per second through HTTP → Kafka → processor → projection with
//! `Prefer: wait` (read-your-writes), against raw rdkafka produce (acks=all) of the
//! same payloads.

use futures::StreamExt;
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant};
use tributary::Roles;
use tributary_benches::{knob, quantile_ms, result_line, size};
use tributary_testkit::{Http, TestEnv};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = size(5_000);
    // How many requests are open at once: `BENCH_CONCURRENCY`, 64 by default.
    let concurrency = knob("BENCH_CONCURRENCY", 64);
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "bench@example.com", "bench-home").await?;
    let bodies: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({ "slug": format!("bench-{i}"), "name": format!("Bench {i}") }))
        .collect();

    eprintln!(
        "command_path: {n} org creations over HTTP with Prefer: wait, {concurrency} at a time"
    );
    // Warm up (partition assignment, state loading, connection pools) untimed.
    let warmup: Vec<serde_json::Value> = (0..concurrency)
        .map(|i| serde_json::json!({ "slug": format!("warmup-{i}"), "name": "Warm-up" }))
        .collect();
    create_all(&http, &warmup, concurrency).await;
    let started = Instant::now();
    let mut latencies = create_all(&http, &bodies, concurrency).await;
    let ours = n as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    eprintln!(
        "ours: {ours:.0} commands/s, p50 {:.1} ms, p99 {:.1} ms",
        quantile_ms(&latencies, 0.5),
        quantile_ms(&latencies, 0.99)
    );

    let producer = env.producer()?;
    // A topic of its own: raw payloads on the command topic would only be dead-lettered.
    let topic = env
        .scratch_topic("bench.raw", tributary_testkit::PARTITIONS)
        .await?;
    let payloads: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| serde_json::to_vec(b).unwrap())
        .collect();
    let started = Instant::now();
    let sends = payloads.iter().enumerate().map(|(i, p)| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let key = format!("raw-{i}");
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(p),
                    Duration::from_secs(30),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| e)
        }
    });
    for r in futures::future::join_all(sends).await {
        r?;
    }
    let baseline = n as f64 / started.elapsed().as_secs_f64();
    eprintln!("baseline: raw produce acks=all {baseline:.0} records/s");
    app.shutdown().await;
    println!(
        "{}",
        result_line("command_path", ours, baseline, "commands/s")
    );
    Ok(())
}

/// Creates every org over HTTP with `Prefer: wait`, `concurrency` at a time; returns
/// each request's latency.
async fn create_all(
    http: &Http,
    bodies: &[serde_json::Value],
    concurrency: usize,
) -> Vec<Duration> {
    futures::stream::iter(bodies)
        .map(|body| async move {
            let t = Instant::now();
            let response = http
                .client
                .post(http.url("/api/v1/orgs"))
                .header("prefer", "wait=30")
                .json(body)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 201, "{:?}", response.text().await);
            t.elapsed()
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}
