//! The projector: one consumer group per projection, each batch applied to Postgres in
//! one transaction together with its offsets; on assignment it seeks to those offsets.

use crate::batch::{self, Applied, Batch};
use crate::supervise::sleep_unless_stopped;
use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_log::client::KafkaSettings;
use tributary_log::consume::{Rebalance, entries, gather, rebalance};
use tributary_log::{Envelope, Topics};
use tributary_store::projection::{Offsets, Projection};
use tributary_store::{Db, Registry};

#[derive(Clone)]
pub struct ProjectorConfig {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub db: Db,
    pub max_batch: usize,
}

/// Whether each projection in this process has nothing waiting (for `/readyz`).
#[derive(Debug, Default, Clone)]
pub struct Readiness {
    caught_up: Arc<Mutex<std::collections::HashMap<&'static str, bool>>>,
}

impl Readiness {
    fn set(&self, projection: Projection, value: bool) {
        self.caught_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(projection.name(), value);
    }

    /// Projections that still have records waiting.
    pub fn behind(&self) -> Vec<&'static str> {
        self.caught_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(name, _)| *name)
            .collect()
    }
}

struct Ctx {
    projection: Projection,
    db: Db,
    handle: Handle,
    version: Arc<AtomicI32>,
    rebalanced: AtomicBool,
}

impl ClientContext for Ctx {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tributary_log::client::report_client_error(error, reason);
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.rebalanced.store(true, Ordering::SeqCst);
        let on = |change: Rebalance<'_>| {
            let Rebalance::Assign(tpl) = change else {
                return;
            };
            let version = self.version.load(Ordering::SeqCst);
            let offsets = self.handle.block_on(async {
                let client = self.db.get().await?;
                Registry::offsets(&**client, self.projection, version).await
            });
            match offsets {
                Ok(offsets) => set_offsets(tpl, &offsets),
                // Without stored offsets we cannot know where to start: start from the
                // beginning; the version guard in each statement keeps replays harmless.
                Err(e) => {
                    tracing::error!(error = %e, "could not read projection offsets; replaying from the beginning")
                }
            }
            tracing::info!(
                projection = self.projection.name(),
                partitions = tpl.count(),
                "partitions assigned"
            );
        };
        if let Err(e) = rebalance(consumer, err, tpl, on) {
            tracing::error!(projection = self.projection.name(), error = %e, "assigning partitions failed");
        }
    }
}

fn set_offsets(tpl: &mut TopicPartitionList, offsets: &Offsets) {
    for (topic, partition) in entries(tpl) {
        let offset = offsets
            .get(&(topic.clone(), partition))
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        let _ = tpl.set_partition_offset(&topic, partition, offset);
    }
}

pub struct Projector {
    projection: Projection,
    config: ProjectorConfig,
    consumer: BaseConsumer<Ctx>,
    version: Arc<AtomicI32>,
    handle: Handle,
    readiness: Readiness,
    group: String,
}

impl Projector {
    /// Must be called from outside the async runtime (it blocks on `handle`). When the
    /// projection's tables were built from other definitions than this code's, it first
    /// rebuilds the projection from the log (ADR 0016), which takes as long as a
    /// `tributary rebuild`.
    pub fn new(
        projection: Projection,
        config: ProjectorConfig,
        handle: Handle,
        readiness: Readiness,
    ) -> anyhow::Result<Self> {
        let ensure = || {
            handle.block_on(async {
                let client = config.db.get().await?;
                Registry::ensure(&**client, projection).await
            })
        };
        ensure()?;
        crate::rebuild::rebuild_if_changed(
            projection,
            &config.kafka,
            &config.topics,
            &config.db,
            &handle,
            config.max_batch,
        )?;
        // Read again: a rebuild, ours or another process's, may have swapped versions.
        let version = ensure()?;
        let version = Arc::new(AtomicI32::new(version));
        let group = format!("{}.projector.{}", config.topics.prefix(), projection.name());
        let ctx = Ctx {
            projection,
            db: config.db.clone(),
            handle: handle.clone(),
            version: version.clone(),
            rebalanced: AtomicBool::new(false),
        };
        let consumer: BaseConsumer<Ctx> = config.kafka.consumer(&group).create_with_context(ctx)?;
        let topics = projection.topics(&config.topics);
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        readiness.set(projection, false);
        Ok(Self {
            projection,
            config,
            consumer,
            version,
            handle,
            readiness,
            group,
        })
    }

    pub fn run(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut last_lag = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            self.try_run_once(Duration::from_millis(200), stop)?;
            if last_lag.elapsed() > Duration::from_secs(5) {
                crate::lag::report(&self.consumer, &self.group);
                last_lag = Instant::now();
            }
        }
        Ok(())
    }

    fn gather(&self, wait: Duration) -> Batch {
        let rebalanced = || {
            let ctx = self.consumer.context();
            Ok::<_, std::convert::Infallible>(ctx.rebalanced.swap(false, Ordering::SeqCst))
        };
        let Ok(messages) = gather(&self.consumer, wait, self.config.max_batch, rebalanced);
        let mut batch = Batch::default();
        for m in messages {
            let env = match Envelope::decode(m.headers(), m.payload().unwrap_or_default()) {
                Ok(env) => Some(env),
                Err(e) => {
                    // Commands from upstream may be malformed; the processor answers
                    // them. A projection only skips what it cannot read.
                    tracing::debug!(topic = m.topic(), offset = m.offset(), error = %e, "skipping an unreadable record");
                    metrics::counter!("tributary_projection_skipped_total", "projection" => self.projection.name()).increment(1);
                    None
                }
            };
            batch.push(m.topic(), m.partition(), m.offset(), env);
        }
        batch
    }

    /// Reads one batch and applies it; retries Postgres failures with backoff until
    /// they pass, so a database restart costs time, never data.
    pub fn try_run_once(&mut self, wait: Duration, stop: &AtomicBool) -> anyhow::Result<u64> {
        let batch = self.gather(wait);
        if batch.is_empty() {
            self.readiness.set(self.projection, true);
            return Ok(0);
        }
        self.readiness.set(self.projection, false);
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        let started = std::time::Instant::now();
        loop {
            let version = self.version.load(Ordering::SeqCst);
            let result = self.handle.block_on(batch::apply(
                &self.config.db,
                self.projection,
                version,
                true,
                &batch,
            ));
            match result {
                Ok(Applied::Done(applied)) => {
                    tracing::debug!(
                        projection = self.projection.name(),
                        events = batch.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "batch applied"
                    );
                    metrics::counter!("tributary_events_projected_total", "projection" => self.projection.name())
                        .increment(applied);
                    return Ok(applied);
                }
                Ok(Applied::VersionChanged(active)) => {
                    tracing::info!(
                        projection = self.projection.name(),
                        from = version,
                        to = active,
                        "a rebuild swapped versions; continuing from its offsets"
                    );
                    self.version.store(active, Ordering::SeqCst);
                    self.seek_to_stored(active)?;
                    return Ok(0);
                }
                Err(e) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(projection = self.projection.name(), error = %e, retry_in = ?delay, "projection batch failed; retrying");
                    if stop.load(Ordering::Relaxed) {
                        return Ok(0);
                    }
                    sleep_unless_stopped(stop, delay);
                }
            }
        }
    }

    fn seek_to_stored(&self, version: i32) -> anyhow::Result<()> {
        let offsets = self.handle.block_on(async {
            let client = self.config.db.get().await?;
            Registry::offsets(&**client, self.projection, version).await
        })?;
        let assignment = self.consumer.assignment()?;
        for e in assignment.elements() {
            let offset = offsets
                .get(&(e.topic().to_owned(), e.partition()))
                .map_or(Offset::Beginning, |o| Offset::Offset(*o));
            self.consumer
                .seek(e.topic(), e.partition(), offset, Duration::from_secs(10))?;
        }
        Ok(())
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        tributary_log::client::leave_group(&self.consumer);
    }
}
