//! The deliverer: reads document records, delivers them to every target they name, and
//! reports what each target took or refused — in one Kafka transaction with its consumer
//! offsets, so every record is answered for exactly once however often the deliverer
//! crashes (deliveries themselves may repeat; every sink is idempotent).
//!
//! Transient failures (5xx, timeouts, 429 with `Retry-After`) are retried in place with
//! exponential backoff and jitter. What still fails moves, for that one target, to the
//! next delay topic (`<prefix>.documents.retry.<n>`), where it waits its delay without
//! holding any other partition; the same deliverer reads the delay topics and tries the
//! record again once it is due. Only after the last delay, or at once for what a target
//! refuses for good, does a record go to `<prefix>.documents.dead-letters` with its
//! context, and count as failed on its run. A record waiting in a delay topic is not
//! answered yet: it is reported when it is finally delivered or dead-lettered, in the
//! transaction that consumes it from its delay topic — so a run's counts stay exact and
//! the run finishes only when every such record has an answer.

mod delay;
mod output;
mod record;
mod sinks;

pub use delay::DEFAULT_DELAYS;

use chrono::Utc;
use output::{About, Delay, Letter, Report};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset};
use record::{decode, header, not_before, origin};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tributary_destinations::{Destinations, ErrorClass};
use tributary_domain::document::headers;
use tributary_domain::sync::{self, Failure, MAX_FAILURES};
use tributary_log::client::KafkaSettings;
use tributary_log::topics::{DOCUMENT_MAX_BYTES, RETRY_LEVELS};
use tributary_log::{Envelope, Topics};
use tributary_store::Db;
use tributary_store::vault::Vault;
use uuid::Uuid;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const SOURCE: &str = "tributary://deliverer";
/// The longest a `Retry-After` is honoured in place; a longer wait sends the record to
/// a delay topic.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(30);

pub struct DelivererConfig {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub db: Db,
    pub vault: Vault,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    /// Distinguishes this process's transactional producer from other deliverers'.
    pub instance_id: String,
    /// Most records per transaction.
    pub batch: usize,
    /// In-place retries of a transient failure before the record moves to a delay
    /// topic.
    pub retries: usize,
    /// How long each delay topic holds a record, level 1 first ([`DEFAULT_DELAYS`]);
    /// at most [`RETRY_LEVELS`] are used. Empty: what still fails after the in-place
    /// retries is dead-lettered at once.
    pub delays: Vec<Duration>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Records answered for: from the documents topic and, once due, from delay topics.
    pub records: usize,
    /// Of those, the ones read from a delay topic.
    pub redelivered: usize,
    /// Deliveries the targets took.
    pub delivered: u64,
    /// Deliveries dead-lettered.
    pub failed: u64,
    /// Deliveries moved to a delay topic (not answered yet).
    pub delayed: u64,
}

/// `(profile, run, target)`: what one `record_deliveries` command reports on.
type RunTarget = (Uuid, Uuid, Uuid);
/// Per `(attempt, batch)`: delivered and failed.
type BatchCounts = BTreeMap<(u32, u64), (u64, u64)>;

pub struct Deliverer {
    config: DelivererConfig,
    consumer: BaseConsumer,
    producer: FutureProducer,
    destinations: Destinations,
    sinks: Mutex<HashMap<Uuid, sinks::Kept>>,
    /// The delay topics in use, level 1 first.
    levels: Vec<String>,
    held: Mutex<delay::Held>,
}

fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Transient => "transient",
        ErrorClass::RateLimited => "rate_limited",
        ErrorClass::Permanent => "permanent",
    }
}

impl Deliverer {
    /// Joins the `<prefix>.deliverer` group on the documents topic and the delay topics
    /// in use. Blocking.
    pub fn new(config: DelivererConfig) -> Result<Self, KafkaError> {
        let group = format!("{}.deliverer", config.topics.prefix());
        let mut consumer_config = config.kafka.consumer(&group);
        // Fetches stay small, so what the consumer prefetches (and so its memory) does
        // not grow with the backlog; a record bigger than a fetch still comes whole,
        // alone (the broker returns the first batch of a fetch however big), which is
        // why a response may be as large as the largest document.
        consumer_config
            .set("fetch.max.bytes", (16 << 20).to_string())
            .set("max.partition.fetch.bytes", (4 << 20).to_string())
            .set("queued.max.messages.kbytes", (32 << 10).to_string())
            .set(
                "receive.message.max.bytes",
                (DOCUMENT_MAX_BYTES + (17 << 20)).to_string(),
            )
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = consumer_config.create()?;
        let used = config.delays.len().min(usize::from(RETRY_LEVELS));
        let levels: Vec<String> = (1..=RETRY_LEVELS)
            .take(used)
            .map(|level| config.topics.documents_retry(level))
            .collect();
        let mut topics = vec![config.topics.documents()];
        topics.extend(levels.iter().cloned());
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        let mut producer_config = config.kafka.producer();
        producer_config
            .set(
                "transactional.id",
                format!(
                    "{}.deliverer.{}",
                    config.topics.prefix(),
                    config.instance_id
                ),
            )
            .set("transaction.timeout.ms", "120000")
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "100")
            .set("message.max.bytes", DOCUMENT_MAX_BYTES.to_string());
        let producer: FutureProducer = producer_config.create()?;
        producer.init_transactions(TXN_TIMEOUT)?;
        Ok(Self {
            config,
            consumer,
            producer,
            destinations: Destinations::builtin(),
            sinks: Mutex::default(),
            levels,
            held: Mutex::default(),
        })
    }

    /// 0 for the documents topic, `n` for delay topic `n`.
    fn level_of(&self, topic: &str) -> u8 {
        self.levels
            .iter()
            .position(|t| t == topic)
            .map_or(0, |i| i as u8 + 1)
    }

    /// Polls for up to 200 ms. Records of a delay topic that are not due yet are not
    /// returned: their partition is held back (paused and rewound) until they are.
    fn poll(&self) -> Result<Vec<OwnedMessage>, KafkaError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.resume_due(&self.consumer, Utc::now());
        let mut polled = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(200);
        while polled.len() < self.config.batch {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(wait.max(Duration::from_millis(1))) {
                Some(Ok(m)) => polled.push(m.detach()),
                // A delay topic of an installation whose topics were created before
                // it existed: say what to do, and serve the other topics meanwhile.
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                ))) => {
                    tracing::warn!(
                        "a topic the deliverer reads does not exist; run `tributary topics create`"
                    );
                }
                Some(Err(e)) => return Err(e),
                None if Instant::now() >= deadline => break,
                None => {}
            }
        }
        let now = Utc::now();
        let mut out = Vec::with_capacity(polled.len());
        let mut stopped: HashSet<(String, i32)> = HashSet::new();
        for m in polled {
            let tp = (m.topic().to_owned(), m.partition());
            if stopped.contains(&tp) {
                continue;
            }
            if self.level_of(m.topic()) > 0 {
                // A partition still held (a rebalance may hand it back unpaused) goes
                // back to the record it waits for; otherwise the record's own time.
                let wait = match held.get(&tp.0, tp.1) {
                    Some((offset, due)) if due > now => Some((offset.min(m.offset()), due)),
                    _ => not_before(&m)
                        .filter(|due| *due > now)
                        .map(|due| (m.offset(), due)),
                };
                if let Some((offset, due)) = wait {
                    held.hold(&self.consumer, &tp.0, tp.1, offset, due)?;
                    stopped.insert(tp);
                    continue;
                }
            }
            out.push(m);
        }
        metrics::gauge!("tributary_delay_partitions_held").set(held.len() as f64);
        Ok(out)
    }

    /// Polls one batch of records and answers for it. Call from a multi-threaded tokio
    /// runtime: Kafka calls block in place.
    pub async fn step(&self) -> Result<Step, KafkaError> {
        let messages = tokio::task::block_in_place(|| self.poll())?;
        if messages.is_empty() {
            return Ok(Step::default());
        }
        let now = Utc::now();
        let mut items = Vec::new();
        let mut letters: Vec<Letter<'_>> = Vec::new();
        let mut delays: Vec<Delay<'_>> = Vec::new();
        let mut step = Step {
            records: messages.len(),
            ..Step::default()
        };
        for m in &messages {
            let level = self.level_of(m.topic());
            if level > 0 {
                step.redelivered += 1;
            }
            match decode(m, level) {
                Ok(item) => items.push(item),
                Err(why) => {
                    let uuid = |name| header(m, name).and_then(|v| v.parse::<Uuid>().ok());
                    letters.push(Letter {
                        message: m,
                        target: None,
                        class: "malformed",
                        text: why,
                        attempts: 1,
                        first_failure: now,
                        origin: origin(m),
                        about: uuid(headers::ORG).map(|org| About {
                            org,
                            profile: uuid(headers::PROFILE),
                            run: uuid(headers::RUN),
                            doc_id: None,
                            op: None,
                            redrive_of: uuid(tributary_log::dead_letter::H_REDRIVE),
                        }),
                    });
                }
            }
        }
        // Per target, in record order: what to deliver, and which record it came from.
        let mut per_target: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            for target in &item.targets {
                per_target.entry(*target).or_default().push(i);
            }
        }
        let mut counts: BTreeMap<RunTarget, BatchCounts> = BTreeMap::new();
        let mut failures: BTreeMap<RunTarget, Vec<Failure>> = BTreeMap::new();
        for (target, indexes) in per_target {
            let results = self.deliver(target, &items, &indexes).await;
            for (&i, (result, tries)) in indexes.iter().zip(results) {
                let item = &items[i];
                let key = (item.profile, item.run, target);
                // A redriven record's run counted the document as failed already.
                let reported = item.redrive_of.is_none();
                let attempts = item.attempts + tries;
                match result {
                    Ok(()) => {
                        step.delivered += 1;
                        if reported {
                            let entry = counts.entry(key).or_default();
                            entry.entry((item.attempt, item.seq)).or_default().0 += 1;
                        }
                    }
                    Err(e) if e.is_retriable() && usize::from(item.level) < self.levels.len() => {
                        step.delayed += 1;
                        let wait = self.config.delays[usize::from(item.level)];
                        delays.push(Delay {
                            message: item.message,
                            target,
                            level: item.level + 1,
                            class: class_name(e.class),
                            text: e.message,
                            attempts,
                            first_failure: item.first_failure.unwrap_or(now),
                            not_before: delay::due_at(now, wait, e.retry_after),
                            origin: origin(item.message),
                        });
                    }
                    Err(e) => {
                        step.failed += 1;
                        let class = class_name(e.class);
                        if reported {
                            let entry = counts.entry(key).or_default();
                            entry.entry((item.attempt, item.seq)).or_default().1 += 1;
                            failures.entry(key).or_default().push(Failure {
                                doc_id: item.record.doc_id().to_owned(),
                                target_id: Some(tributary_domain::TargetId(target)),
                                class: class.into(),
                                message: e.message.clone(),
                            });
                        }
                        letters.push(Letter {
                            message: item.message,
                            target: Some(target),
                            class,
                            text: e.message,
                            attempts,
                            first_failure: item.first_failure.unwrap_or(now),
                            origin: origin(item.message),
                            about: Some(About {
                                org: item.org,
                                profile: Some(item.profile),
                                run: Some(item.run),
                                doc_id: Some(item.record.doc_id().to_owned()),
                                op: Some(item.op()),
                                redrive_of: item.redrive_of,
                            }),
                        });
                    }
                }
            }
        }
        let reports: Vec<Report> = counts
            .into_iter()
            .map(|((profile, run, target), by_batch)| {
                let org = items
                    .iter()
                    .find(|i| i.run == run)
                    .map(|i| i.org)
                    .unwrap_or_default();
                let mut listed = failures.remove(&(profile, run, target)).unwrap_or_default();
                listed.truncate(MAX_FAILURES);
                let data = serde_json::json!({
                    "profile_id": profile, "run_id": run, "target_id": target,
                    "counts": by_batch.iter().map(|((attempt, seq), (delivered, failed))| serde_json::json!({
                        "attempt": attempt, "seq": seq, "delivered": delivered, "failed": failed,
                    })).collect::<Vec<_>>(),
                    "failures": listed, "at": Utc::now(),
                });
                let mut envelope = Envelope::new(SOURCE, sync::RECORD_DELIVERIES, serde_json::to_vec(&data).unwrap_or_default());
                envelope.subject = Some(profile.to_string());
                envelope.org_id = Some(tributary_domain::OrgId(org));
                Report { profile, envelope }
            })
            .collect();
        let now = Utc::now();
        tokio::task::block_in_place(|| self.commit(&messages, &reports, &letters, &delays, now))?;
        metrics::counter!("tributary_documents_delivered_total").increment(step.delivered);
        metrics::counter!("tributary_documents_dead_lettered_total").increment(step.failed);
        metrics::counter!("tributary_documents_delayed_total").increment(step.delayed);
        Ok(step)
    }

    /// After a failed transaction: reads the records again from the first of each
    /// partition.
    fn rewind(&self, messages: &[OwnedMessage]) {
        let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in messages {
            let offset = first
                .entry((m.topic(), m.partition()))
                .or_insert(m.offset());
            *offset = (*offset).min(m.offset());
        }
        for ((topic, partition), offset) in first {
            let _ = self.consumer.seek(
                topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(5),
            );
        }
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        self.consumer.unsubscribe();
    }
}

/// Runs deliverer steps until `stop` is set, restarting after errors with a pause.
pub async fn run(config: impl Fn() -> DelivererConfig, stop: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::SeqCst) {
        let deliverer = match tokio::task::block_in_place(|| Deliverer::new(config())) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "the deliverer could not start; retrying in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = deliverer.step().await {
                tracing::warn!(error = %e, "a delivery step failed; its records are read again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                break;
            }
        }
    }
}
