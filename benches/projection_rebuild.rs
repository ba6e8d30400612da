//! Events per second replaying org events into a fresh version of the `orgs` read
//! model (`tributary rebuild orgs`), against a raw Postgres COPY of the same rows.

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::time::{Duration, Instant};
use tributary_benches::{result_line, size};
use tributary_domain::org::CREATED;
use tributary_log::Envelope;
use tributary_store::Projection;
use tributary_testkit::TestEnv;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = size(1_000_000);
    let env = TestEnv::new().await?;
    let topic = env.topics().events("org");
    eprintln!("projection_rebuild: writing {n} org events to {topic}");
    let producer: ThreadedProducer<DefaultProducerContext> =
        env.kafka().producer().set("linger.ms", "20").create()?;
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let id = uuid::Uuid::now_v7();
        let slug = format!("org-{i}");
        let name = format!("Org {i}");
        let mut event = Envelope::json(
            "/bench",
            CREATED,
            &serde_json::json!({ "org_id": id, "slug": slug, "name": name }),
        )?;
        event.subject = Some(id.to_string());
        event.agg_version = Some(1);
        let key = id.to_string();
        let mut record = BaseRecord::to(&topic)
            .key(&key)
            .payload(&event.data)
            .headers(event.encode_headers());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        rows.push(format!(
            "{id}\t{slug}\t{name}\t{t}\t{t}\t\\N\t1\n",
            t = "2026-01-01T00:00:00Z"
        ));
    }
    producer.flush(Duration::from_secs(120))?;

    let db = tributary_store::connect(&env.settings.database_url, 4)?;
    let kafka = env.kafka();
    let topics = env.topics();
    let handle = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        tributary_runtime::rebuild(Projection::Orgs, &kafka, &topics, &db, &handle, 20_000)
    })
    .await??;
    let ours = report.per_second();
    eprintln!(
        "ours: {} events in {:.1}s = {ours:.0} events/s",
        report.records, report.seconds
    );

    let pg = env.pg().await?;
    pg.batch_execute("CREATE TABLE copy_baseline (LIKE orgs_v2 INCLUDING ALL)")
        .await?;
    let started = Instant::now();
    let sink = pg
        .copy_in("COPY copy_baseline (id, slug, name, created_at, updated_at, deleted_at, version) FROM STDIN")
        .await?;
    futures::pin_mut!(sink);
    use futures::SinkExt;
    for chunk in rows.chunks(10_000) {
        sink.send(bytes_of(chunk)).await?;
    }
    let copied = sink.finish().await?;
    let baseline = copied as f64 / started.elapsed().as_secs_f64();
    eprintln!("baseline: COPY {copied} rows = {baseline:.0} rows/s");
    println!(
        "{}",
        result_line("projection_rebuild", ours, baseline, "events/s")
    );
    Ok(())
}

fn bytes_of(chunk: &[String]) -> std::io::Cursor<Vec<u8>> {
    std::io::Cursor::new(chunk.concat().into_bytes())
}
