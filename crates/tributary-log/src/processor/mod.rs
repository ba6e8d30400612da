//! The command processor: the single writer of every aggregate in its partitions.
//!
//! It consumes the command topics `read_committed`, decides on state it holds in memory
//! (loaded from the compacted state topics when partitions are assigned), and writes
//! each batch's events, snapshots, follow-up commands, outcomes, dead letters and the
//! consumed offsets in one Kafka transaction. A crash at any point leaves either the
//! whole batch or none of it.

mod context;
mod output;
pub mod store;

use crate::client::KafkaSettings;
use crate::error::{Error, Result, kafka};
use crate::topics::Topics;
use context::{Ctx, Shared};
use output::Output;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
pub use store::{AggregateStore, Handled, Handler};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    /// Stable per process instance: a restart with the same id fences the old
    /// incarnation and aborts its open transaction at once.
    pub instance_id: String,
    pub max_batch: usize,
}

impl ProcessorConfig {
    pub fn group(&self) -> String {
        format!("{}.processor", self.topics.prefix())
    }
}

/// Every aggregate the processor serves.
pub fn default_handlers() -> Vec<Box<dyn Handler>> {
    use tributary_domain::{
        credential::Credential, email::Email, org::Org, profile::Profile, session::Session,
        slug::Slug, target::Target, user::User,
    };
    vec![
        Box::new(AggregateStore::<Org>::default()),
        Box::new(AggregateStore::<Slug>::default()),
        Box::new(AggregateStore::<Email>::default()),
        Box::new(AggregateStore::<User>::default()),
        Box::new(AggregateStore::<Session>::default()),
        Box::new(AggregateStore::<Credential>::default()),
        Box::new(AggregateStore::<Target>::default()),
        Box::new(AggregateStore::<Profile>::default()),
        Box::new(AggregateStore::<tributary_domain::sync::Sync>::default()),
    ]
}

pub struct Processor {
    config: ProcessorConfig,
    consumer: BaseConsumer<Ctx>,
    producer: ThreadedProducer<DefaultProducerContext>,
    shared: Arc<Mutex<Shared>>,
}

/// What one step of the loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Idle,
    Committed {
        commands: usize,
    },
    /// The transaction was aborted; the batch will be read again.
    Retried,
}

impl Processor {
    pub fn new(config: ProcessorConfig, handlers: Vec<Box<dyn Handler>>) -> Result<Self> {
        let shared = Arc::new(Mutex::new(Shared::new(handlers, config.topics.clone())));
        let ctx = Ctx::new(shared.clone(), config.kafka.reader());
        let mut consumer_config = config.kafka.consumer(&config.group());
        consumer_config
            // Range keeps co-partitioned topics together on one member.
            .set("partition.assignment.strategy", "range")
            .set("client.id", format!("processor-{}", config.instance_id));
        let consumer: BaseConsumer<Ctx> = consumer_config
            .create_with_context(ctx)
            .map_err(kafka("creating the processor consumer"))?;
        let topics: Vec<String> = tributary_domain::AGGREGATES
            .iter()
            .map(|a| config.topics.commands(a))
            .collect();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(kafka("subscribing to the command topics"))?;

        let mut producer_config = config.kafka.producer();
        producer_config
            .set(
                "transactional.id",
                format!(
                    "{}.processor.{}",
                    config.topics.prefix(),
                    config.instance_id
                ),
            )
            .set("transaction.timeout.ms", "10000")
            // A transaction begun right after a commit gets CONCURRENT_TRANSACTIONS from
            // the coordinator until the markers are written, and librdkafka retries after
            // retry.backoff.ms: at the default 100 ms that alone caps a partition at ten
            // transactions a second. Retry fast, backing off to 100 ms.
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "100")
            .set("linger.ms", "1");
        let producer: ThreadedProducer<DefaultProducerContext> = producer_config
            .create()
            .map_err(kafka("creating the processor producer"))?;
        producer
            .init_transactions(TXN_TIMEOUT)
            .map_err(kafka("initialising transactions"))?;
        Ok(Self {
            config,
            consumer,
            producer,
            shared,
        })
    }

    /// Runs until `stop` is set or a fatal error (e.g. fenced by a newer instance).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        while !stop.load(Ordering::Relaxed) {
            self.try_run_once(Duration::from_millis(200))?;
        }
        Ok(())
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads one batch and commits it in one transaction.
    pub fn try_run_once(&mut self, wait: Duration) -> Result<Step> {
        let batch = self.gather(wait)?;
        if batch.is_empty() {
            return Ok(Step::Idle);
        }
        let started = Instant::now();
        let count = batch.len();
        match self.commit_batch(&batch) {
            Ok(()) => {
                self.shared().commit();
                tracing::debug!(
                    commands = count,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "batch committed"
                );
                metrics::histogram!("tributary_processor_batch_seconds").record(started.elapsed());
                metrics::counter!("tributary_processor_commands_total").increment(count as u64);
                Ok(Step::Committed { commands: count })
            }
            Err(e) => {
                self.shared().abort();
                let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
                if fatal {
                    return Err(Error::Fenced);
                }
                tracing::warn!(error = %e, commands = count, "transaction failed; aborting and reading the batch again");
                if let Err(abort) = self.producer.abort_transaction(TXN_TIMEOUT) {
                    tracing::error!(error = %abort, "abort failed");
                    return Err(kafka("aborting a transaction")(abort));
                }
                self.rewind(&batch)?;
                Ok(Step::Retried)
            }
        }
    }

    /// Gathers a batch; a rebalance in between throws it away, and a fatal error from
    /// the rebalance callback (state could not be loaded) ends the loop.
    fn gather(&self, wait: Duration) -> Result<Vec<BorrowedMessage<'_>>> {
        crate::consume::gather(&self.consumer, wait, self.config.max_batch, || {
            let mut shared = self.shared();
            match shared.fatal.take() {
                Some(error) => Err(error),
                None => Ok(std::mem::take(&mut shared.rebalanced)),
            }
        })
    }

    fn commit_batch(&self, batch: &[BorrowedMessage<'_>]) -> Result<(), KafkaError> {
        self.producer.begin_transaction()?;
        {
            let mut shared = self.shared();
            let mut out = Output::new(&self.producer, &self.config.topics);
            for message in batch {
                shared.process(message, &mut out)?;
            }
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in next_offsets(batch) {
            offsets.add_partition_offset(topic, partition, Offset::Offset(next))?;
        }
        let group = self
            .consumer
            .group_metadata()
            .ok_or_else(|| KafkaError::Subscription("no group metadata".into()))?;
        self.producer
            .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)?;
        self.await_deliveries()?;
        self.producer.commit_transaction(TXN_TIMEOUT)?;
        Ok(())
    }

    /// Waits until every record of the open transaction is acknowledged.
    ///
    /// `commit_transaction` in the rdkafka crate flushes first, and its flush polls in
    /// 100 ms steps; with the producer's own polling thread taking the delivery reports,
    /// each of those polls sleeps its full 100 ms, so every commit took 100 ms at least.
    /// Waiting here on the in-flight count lets the commit find nothing left to flush.
    fn await_deliveries(&self) -> Result<(), KafkaError> {
        let deadline = Instant::now() + TXN_TIMEOUT;
        let mut pause = Duration::from_micros(200);
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(KafkaError::Flush(
                    rdkafka::types::RDKafkaErrorCode::MessageTimedOut,
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        Ok(())
    }

    fn rewind(&self, batch: &[BorrowedMessage<'_>]) -> Result<()> {
        let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in batch {
            first
                .entry((m.topic(), m.partition()))
                .or_insert(m.offset());
        }
        for ((topic, partition), offset) in first {
            self.consumer
                .seek(
                    topic,
                    partition,
                    Offset::Offset(offset),
                    Duration::from_secs(10),
                )
                .map_err(kafka("rewinding after an aborted transaction"))?;
        }
        Ok(())
    }

    /// How many aggregates are in memory, per kind (for metrics and tests).
    pub fn loaded(&self) -> Vec<(&'static str, usize)> {
        self.shared().loaded()
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        // Leave the group at once so partitions move without waiting for a timeout.
        crate::client::leave_group(&self.consumer);
    }
}

fn next_offsets<'a>(batch: &'a [BorrowedMessage<'_>]) -> BTreeMap<(&'a str, i32), i64> {
    let mut next = BTreeMap::new();
    for m in batch {
        next.insert((m.topic(), m.partition()), m.offset() + 1);
    }
    next
}
