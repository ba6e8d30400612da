//! `tributary rebuild <projection>`: replays the log from the earliest offset into a
//! fresh version of the projection's tables while the live version keeps serving, then
//! swaps atomically. Nothing but the new tables is written: no side effect runs.
//!
//! Projectors also rebuild on their own, before they project, when the active version's
//! tables were built from other definitions than their code's ([`rebuild_if_changed`],
//! ADR 0016). Rebuilds of one projection take turns under a Postgres advisory lock.

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
use tributary_store::projection::{Offsets, Projection, Shape, Swap};
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
/// Waits while another process rebuilds the same projection.
pub fn rebuild(
    projection: Projection,
    kafka: &KafkaSettings,
    topics: &Topics,
    db: &Db,
    handle: &Handle,
    batch_size: usize,
) -> anyhow::Result<RebuildReport> {
    let _lock = handle.block_on(Registry::lock_rebuild(db, projection))?;
    replay_and_swap(projection, kafka, topics, db, handle, batch_size, true)
}

/// Rebuilds the projection if its active version was built from other table definitions
/// than this code's (a column or a table was added, an index changed); `None` when it
/// has this code's shape. Refuses (with what to do) when a newer Tributary already
/// rebuilt it to a newer shape. Must be called outside the async runtime.
pub fn rebuild_if_changed(
    projection: Projection,
    kafka: &KafkaSettings,
    topics: &Topics,
    db: &Db,
    handle: &Handle,
    batch_size: usize,
) -> anyhow::Result<Option<RebuildReport>> {
    let _lock = handle.block_on(Registry::lock_rebuild(db, projection))?;
    // Read under the lock: another process may have just rebuilt it.
    let shape = handle.block_on(async {
        let mut client = db.get().await?;
        Registry::shape(&mut client, projection).await
    })?;
    match shape {
        Shape::Current => Ok(None),
        Shape::Replaced { version, recorded } => anyhow::bail!(
            "projection {name} (version {version}) was rebuilt by a newer Tributary with \
             other tables (shape {recorded}) than this process knows (shape {ours}); \
             upgrade this process, or, to go back to this version's tables on purpose, run \
             `tributary rebuild {name}` with this version",
            name = projection.name(),
            ours = Registry::fingerprint(projection),
        ),
        Shape::Changed { version, recorded } => {
            tracing::warn!(
                projection = projection.name(),
                version,
                recorded = recorded.as_deref().unwrap_or("none, and its columns differ"),
                expected = %Registry::fingerprint(projection),
                "the projection's tables were built from other definitions than this \
                 version's (a column, index or table changed); rebuilding it from the log \
                 into a new version before projecting. Readers keep seeing the current \
                 version meanwhile"
            );
            replay_and_swap(projection, kafka, topics, db, handle, batch_size, false).map(Some)
        }
    }
}

/// The rebuild itself, under the caller's lock; `bar`: show a progress bar on a terminal
/// (the command does, a projector inside `serve` only logs).
fn replay_and_swap(
    projection: Projection,
    kafka: &KafkaSettings,
    topics: &Topics,
    db: &Db,
    handle: &Handle,
    batch_size: usize,
    bar: bool,
) -> anyhow::Result<RebuildReport> {
    let started = Instant::now();
    let version = handle.block_on(async {
        let client = db.get().await?;
        Registry::new_version(&**client, projection).await
    })?;
    let sources = projection.topics(topics);
    let reader: BaseConsumer<Quiet> = kafka.reader().create_with_context(Quiet)?;
    let total = estimate(&reader, &sources)?;
    let bar = progress(projection, total, bar);
    // Reading and decoding (this thread) overlap with writing (tasks on the runtime, one
    // per lane of partitions, so an aggregate's events stay in order).
    let writer = Writers::start(db, handle, projection, version, &bar);
    let mut ours = Offsets::new();
    let mut records = 0;
    for topic in &sources {
        records += replay(
            &reader,
            topic,
            &Offsets::new(),
            &mut ours,
            batch_size,
            &writer,
        )?;
    }
    // The live projector kept going meanwhile: catch up with it, then swap under the
    // registry lock, which also waits for its batch in flight.
    let from = loop {
        writer.flush()?;
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
                    records += replay(&reader, &topic, &start, &mut ours, batch_size, &writer)?;
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

/// Writer lanes: partition `p` goes to lane `p % LANES`.
struct Writers {
    lanes: Vec<Writer>,
    bar: ProgressBar,
}

impl Writers {
    /// Two lanes: on a small machine one lane leaves the database's second core idle,
    /// and more contend for it.
    const LANES: usize = 2;

    fn start(
        db: &Db,
        handle: &Handle,
        projection: Projection,
        version: i32,
        bar: &ProgressBar,
    ) -> Self {
        Self {
            lanes: (0..Self::LANES)
                .map(|_| Writer::start(db.clone(), handle, projection, version, bar.clone()))
                .collect(),
            bar: bar.clone(),
        }
    }

    /// Records written so far.
    fn written(&self) -> u64 {
        self.bar.position()
    }

    fn lane(&self, partition: i32) -> usize {
        partition.unsigned_abs() as usize % self.lanes.len()
    }

    fn send(&self, lane: usize, batch: Batch) -> anyhow::Result<()> {
        self.lanes[lane].send(batch)
    }

    /// Returns once every batch sent so far, on every lane, is written.
    fn flush(&self) -> anyhow::Result<()> {
        self.lanes.iter().try_for_each(Writer::flush)
    }
}

enum Write {
    Batch(Batch),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Applies batches in order on the runtime while the caller reads the next ones.
struct Writer {
    tx: tokio::sync::mpsc::Sender<Write>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>,
    handle: Handle,
}

impl Writer {
    /// Two batches queued at most: enough to keep both sides busy, bounded in memory.
    const QUEUE: usize = 2;

    fn start(
        db: Db,
        handle: &Handle,
        projection: Projection,
        version: i32,
        bar: ProgressBar,
    ) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Write>(Self::QUEUE);
        let task = handle.spawn(async move {
            let mut busy = Duration::ZERO;
            while let Some(write) = rx.recv().await {
                let t = Instant::now();
                match write {
                    Write::Batch(batch) => {
                        match batch::apply(&db, projection, version, false, &batch).await? {
                            Applied::Done(_) | Applied::VersionChanged(_) => {}
                        }
                        bar.inc(batch.len() as u64);
                        busy += t.elapsed();
                    }
                    Write::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
            tracing::debug!(writing_seconds = busy.as_secs_f64(), "rebuild writer done");
            Ok(())
        });
        Self {
            tx,
            task: std::sync::Mutex::new(Some(task)),
            handle: handle.clone(),
        }
    }

    fn send(&self, batch: Batch) -> anyhow::Result<()> {
        if self.tx.blocking_send(Write::Batch(batch)).is_err() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// Returns once every batch sent so far is written.
    fn flush(&self) -> anyhow::Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.blocking_send(Write::Flush(done)).is_err() || wait.blocking_recv().is_err() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// The writer stopped: its own error says why.
    fn failure(&self) -> anyhow::Error {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        match task.map(|t| self.handle.block_on(t)) {
            Some(Ok(Err(e))) => e.context("writing the rebuilt projection"),
            Some(Err(join)) => anyhow::Error::new(join).context("the rebuild writer failed"),
            Some(Ok(Ok(()))) | None => anyhow::anyhow!("the rebuild writer stopped"),
        }
    }
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

fn progress(projection: Projection, total: u64, show: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if show && std::io::stderr().is_terminal() {
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
/// handing each lane's batch to the writers; records where it got to in `ours`.
fn replay(
    reader: &BaseConsumer<Quiet>,
    topic: &str,
    start: &Offsets,
    ours: &mut Offsets,
    batch_size: usize,
    writers: &Writers,
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
    let mut batches: Vec<Batch> = writers.lanes.iter().map(|_| Batch::default()).collect();
    let mut count = 0;
    let mut last_log = Instant::now();
    let mut hand_over = |batch: &mut Batch, lane: usize, ours: &mut Offsets| {
        count += batch.len() as u64;
        ours.extend(batch.next.clone());
        writers.send(lane, std::mem::take(batch))
    };
    while !open.is_empty() {
        match reader.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(m)) => {
                let env = Envelope::decode(m.headers(), m.payload().unwrap_or_default()).ok();
                let lane = writers.lane(m.partition());
                let batch = &mut batches[lane];
                batch.push(topic, m.partition(), m.offset(), env);
                if batch.len() >= batch_size {
                    hand_over(batch, lane, ours)?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
        }
        if last_log.elapsed() > Duration::from_secs(5) && writers.bar.is_hidden() {
            tracing::info!(topic, written = writers.written(), "rebuild in progress");
            last_log = Instant::now();
        }
    }
    for (lane, batch) in batches.iter_mut().enumerate() {
        if !batch.is_empty() {
            hand_over(batch, lane, ours)?;
        }
    }
    reader.unassign()?;
    Ok(count)
}
