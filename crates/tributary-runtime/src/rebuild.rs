//! `tributary rebuild <projection>`: replays the log from the earliest offset into a
//! fresh version of the projection's tables while the live version keeps serving, then
//! swaps atomically. Nothing but the new tables is written: no side effect runs.

use crate::batch::{self, Applied, Batch};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_log::client::KafkaSettings;
use tributary_log::client::Quiet;
use tributary_log::{Envelope, Topics};
use tributary_store::projection::{Offsets, Projection, Swap};
use tributary_store::{Db, Registry};

#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub projection: &'static str,
    pub from_version: i32,
    pub to_version: i32,
    pub records: u64,
    pub seconds: f64,
}

impl RebuildReport {
    pub fn per_second(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }
}

/// Runs a rebuild; must be called outside the async runtime (it blocks on `handle`).
pub fn rebuild(
    projection: Projection,
    kafka: &KafkaSettings,
    topics: &Topics,
    db: &Db,
    handle: &Handle,
    batch_size: usize,
) -> anyhow::Result<RebuildReport> {
    let started = Instant::now();
    let version = handle.block_on(async {
        let client = db.get().await?;
        Registry::new_version(&**client, projection).await
    })?;
    let sources = projection.topics(topics);
    let reader: BaseConsumer<Quiet> = kafka.reader().create_with_context(Quiet)?;
    let total = estimate(&reader, &sources)?;
    let bar = progress(projection, total);
    let mut ours = Offsets::new();
    let mut records = 0;
    for topic in &sources {
        records += replay(
            &reader,
            topic,
            &Offsets::new(),
            &mut ours,
            batch_size,
            |b| apply(db, handle, projection, version, b, &bar),
        )?;
    }
    // The live projector kept going meanwhile: catch up with it, then swap under the
    // registry lock, which also waits for its batch in flight.
    let from = loop {
        let swap = handle.block_on(async {
            let mut client = db.get().await?;
            Registry::swap(&mut client, projection, version, &ours).await
        })?;
        match swap {
            Swap::Swapped { from, .. } => break from,
            Swap::Behind(behind) => {
                let topics_behind: HashSet<String> =
                    behind.keys().map(|(t, _)| t.clone()).collect();
                for topic in topics_behind {
                    let start = ours.clone();
                    records += replay(&reader, &topic, &start, &mut ours, batch_size, |b| {
                        apply(db, handle, projection, version, b, &bar)
                    })?;
                }
            }
        }
    };
    bar.finish_and_clear();
    let report = RebuildReport {
        projection: projection.name(),
        from_version: from,
        to_version: version,
        records,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        projection = report.projection,
        from = report.from_version,
        to = report.to_version,
        records = report.records,
        per_second = report.per_second() as u64,
        "rebuild swapped in"
    );
    Ok(report)
}

fn apply(
    db: &Db,
    handle: &Handle,
    projection: Projection,
    version: i32,
    batch: &Batch,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    match handle.block_on(batch::apply(db, projection, version, false, batch))? {
        Applied::Done(_) | Applied::VersionChanged(_) => {}
    }
    bar.inc(batch.len() as u64);
    Ok(())
}

/// Records between the low and high watermarks of every partition: an upper bound
/// (transaction markers count too), good enough for a percentage.
fn estimate(reader: &BaseConsumer<Quiet>, topics: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for topic in topics {
        let metadata = reader.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                let (low, high) =
                    reader.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                total += (high - low).max(0) as u64;
            }
        }
    }
    Ok(total)
}

fn progress(projection: Projection, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {percent}% {human_pos}/{human_len} events, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(format!("rebuilding {}", projection.name()));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// Reads one topic from `start` (or the beginning) to its current end in batches,
/// handing each to `sink`; records where it got to in `ours`.
fn replay(
    reader: &BaseConsumer<Quiet>,
    topic: &str,
    start: &Offsets,
    ours: &mut Offsets,
    batch_size: usize,
    mut sink: impl FnMut(&Batch) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let metadata = reader.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        let offset = start
            .get(&(topic.to_owned(), *p))
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(topic, *p, offset)?;
    }
    reader.assign(&tpl)?;
    let mut open: HashSet<i32> = partitions.into_iter().collect();
    let mut batch = Batch::default();
    let mut count = 0;
    let mut last_log = Instant::now();
    while !open.is_empty() {
        match reader.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(m)) => {
                let env = Envelope::decode(m.headers(), m.payload().unwrap_or_default()).ok();
                batch.push(topic, m.partition(), m.offset(), env);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
        }
        if batch.len() >= batch_size || (open.is_empty() && !batch.is_empty()) {
            sink(&batch)?;
            count += batch.len() as u64;
            ours.extend(batch.next.drain());
            batch = Batch::default();
            if last_log.elapsed() > Duration::from_secs(5) && !std::io::stderr().is_terminal() {
                tracing::info!(topic, records = count, "rebuild progress");
                last_log = Instant::now();
            }
        }
    }
    reader.unassign()?;
    Ok(count)
}
