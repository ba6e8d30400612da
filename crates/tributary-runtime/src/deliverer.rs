//! The deliverer: reads document records, delivers them to every target they name, and
//! reports what each target took or refused — in one Kafka transaction with its consumer
//! offsets, so every record is answered for exactly once however often the deliverer
//! crashes (deliveries themselves may repeat; every sink is idempotent).
//!
//! Transient failures (5xx, timeouts, 429 with `Retry-After`) are retried with
//! exponential backoff and jitter; what still fails, and what a target refuses for good,
//! goes to `<prefix>.documents.dead-letters` with the original record and its context,
//! and counts as failed on the run.

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_destinations::{Delivery, Destinations, ErrorClass, Op, Scope, Sink, SinkError};
use tributary_domain::document::{DocumentRecord, headers};
use tributary_domain::sync::{self, Failure, MAX_FAILURES};
use tributary_log::client::KafkaSettings;
use tributary_log::dead_letter::DeadLetter;
use tributary_log::topics::DOCUMENT_MAX_BYTES;
use tributary_log::{Envelope, Topics};
use tributary_store::Db;
use tributary_store::vault::Vault;
use uuid::Uuid;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const SOURCE: &str = "tributary://deliverer";
/// The longest a `Retry-After` is honoured in place; longer waits count as failures.
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
    /// Retries of a transient failure before it is dead-lettered.
    pub retries: usize,
}

/// One decoded document record.
struct Item<'a> {
    message: &'a OwnedMessage,
    org: Uuid,
    profile: Uuid,
    run: Uuid,
    attempt: u32,
    seq: u64,
    targets: Vec<Uuid>,
    record: DocumentRecord,
}

fn header<'a>(m: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

fn decode(m: &OwnedMessage) -> Result<Item<'_>, String> {
    let uuid = |name: &str| {
        header(m, name)
            .and_then(|v| v.parse::<Uuid>().ok())
            .ok_or_else(|| format!("the record has no valid {name} header"))
    };
    let number = |name: &str| {
        header(m, name)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("the record has no valid {name} header"))
    };
    let targets = header(m, headers::TARGETS)
        .ok_or("the record names no targets")?
        .split(',')
        .map(|t| {
            t.parse::<Uuid>()
                .map_err(|_| format!("{t:?} is not a target id"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let record: DocumentRecord = serde_json::from_slice(m.payload().unwrap_or_default())
        .map_err(|e| format!("the record is not a document record: {e}"))?;
    Ok(Item {
        message: m,
        org: uuid(headers::ORG)?,
        profile: uuid(headers::PROFILE)?,
        run: uuid(headers::RUN)?,
        attempt: number(headers::ATTEMPT)? as u32,
        seq: number(headers::SEQ)?,
        targets,
        record,
    })
}

/// `(profile, run, target)`: what one `record_deliveries` command reports on.
type RunTarget = (Uuid, Uuid, Uuid);
/// Per `(attempt, batch)`: delivered and failed.
type BatchCounts = BTreeMap<(u32, u64), (u64, u64)>;

/// A record to dead-letter: the record, the target that refused it, the error class and
/// message, and how many attempts were made.
type Dead<'a> = (&'a OwnedMessage, Option<Uuid>, String, String, u32);

/// A target's sink, built once and kept; `Err` when the target cannot be used.
type Built = Result<Arc<dyn Sink>, String>;

pub struct Deliverer {
    config: DelivererConfig,
    consumer: BaseConsumer,
    producer: ThreadedProducer<DefaultProducerContext>,
    destinations: Destinations,
    sinks: std::sync::Mutex<HashMap<Uuid, (Instant, Built)>>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    pub records: usize,
    pub delivered: u64,
    pub failed: u64,
}

impl Deliverer {
    /// Joins the `<prefix>.deliverer` group on the documents topic. Blocking.
    pub fn new(config: DelivererConfig) -> Result<Self, KafkaError> {
        let group = format!("{}.deliverer", config.topics.prefix());
        let mut consumer_config = config.kafka.consumer(&group);
        consumer_config
            .set("fetch.max.bytes", (2 * DOCUMENT_MAX_BYTES).to_string())
            .set("max.partition.fetch.bytes", DOCUMENT_MAX_BYTES.to_string())
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = consumer_config.create()?;
        consumer.subscribe(&[&config.topics.documents()])?;
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
            .set("message.max.bytes", DOCUMENT_MAX_BYTES.to_string());
        let producer: ThreadedProducer<DefaultProducerContext> = producer_config.create()?;
        producer.init_transactions(TXN_TIMEOUT)?;
        Ok(Self {
            config,
            consumer,
            producer,
            destinations: Destinations::builtin(),
            sinks: std::sync::Mutex::default(),
        })
    }

    /// Polls one batch of records and answers for it. Call from a multi-threaded tokio
    /// runtime: Kafka calls block in place.
    pub async fn step(&self) -> Result<Step, KafkaError> {
        let messages = tokio::task::block_in_place(|| {
            let mut out = Vec::new();
            let deadline = Instant::now() + Duration::from_millis(200);
            while out.len() < self.config.batch {
                let wait = deadline.saturating_duration_since(Instant::now());
                match self.consumer.poll(wait.max(Duration::from_millis(1))) {
                    Some(Ok(m)) => out.push(m.detach()),
                    Some(Err(e)) => return Err(e),
                    None if Instant::now() >= deadline => break,
                    None => {}
                }
            }
            Ok(out)
        })?;
        if messages.is_empty() {
            return Ok(Step::default());
        }
        let mut items = Vec::new();
        let mut dead: Vec<Dead<'_>> = Vec::new();
        for m in &messages {
            match decode(m) {
                Ok(item) => items.push(item),
                Err(why) => dead.push((m, None, "malformed".into(), why, 1)),
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
        let mut step = Step {
            records: messages.len(),
            ..Step::default()
        };
        for (target, indexes) in per_target {
            let results = self.deliver(target, &items, &indexes).await;
            for (&i, (result, attempts)) in indexes.iter().zip(results) {
                let item = &items[i];
                let key = (item.profile, item.run, target);
                let entry = counts
                    .entry(key)
                    .or_default()
                    .entry((item.attempt, item.seq))
                    .or_default();
                match result {
                    Ok(()) => {
                        entry.0 += 1;
                        step.delivered += 1;
                    }
                    Err(e) => {
                        entry.1 += 1;
                        step.failed += 1;
                        let class = match e.class {
                            ErrorClass::Transient => "transient",
                            ErrorClass::RateLimited => "rate_limited",
                            ErrorClass::Permanent => "permanent",
                        };
                        failures.entry(key).or_default().push(Failure {
                            doc_id: item.record.doc_id().to_owned(),
                            target_id: Some(tributary_domain::TargetId(target)),
                            class: class.into(),
                            message: e.message.clone(),
                        });
                        dead.push((
                            item.message,
                            Some(target),
                            class.into(),
                            e.message,
                            attempts,
                        ));
                    }
                }
            }
        }
        let reports: Vec<(Uuid, Uuid, Envelope)> = counts
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
                let mut env = Envelope::new(SOURCE, sync::RECORD_DELIVERIES, serde_json::to_vec(&data).unwrap_or_default());
                env.subject = Some(profile.to_string());
                env.org_id = Some(tributary_domain::OrgId(org));
                (org, profile, env)
            })
            .collect();
        let now = Utc::now();
        tokio::task::block_in_place(|| self.commit(&messages, &reports, &dead, now))?;
        metrics::counter!("tributary_documents_delivered_total").increment(step.delivered);
        metrics::counter!("tributary_documents_dead_lettered_total").increment(step.failed);
        Ok(step)
    }

    /// Delivers the records `indexes` of `items` to `target`, retrying transient
    /// failures; one result (and the number of attempts) per record.
    async fn deliver(
        &self,
        target: Uuid,
        items: &[Item<'_>],
        indexes: &[usize],
    ) -> Vec<(Result<(), SinkError>, u32)> {
        let sink = match self.sink(target).await {
            Ok(sink) => sink,
            Err(why) => {
                return indexes
                    .iter()
                    .map(|_| (Err(SinkError::permanent(why.clone())), 1))
                    .collect();
            }
        };
        let mut results: Vec<(Result<(), SinkError>, u32)> = indexes
            .iter()
            .map(|_| (Err(SinkError::transient("not tried yet")), 0))
            .collect();
        let mut pending: Vec<usize> = (0..indexes.len()).collect();
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(self.config.retries)
            .with_jitter()
            .build();
        loop {
            // Deliveries of one scope go together; records of several runs may mix.
            let mut next = Vec::new();
            let mut wait = Duration::ZERO;
            let mut by_scope: BTreeMap<(Uuid, Uuid), Vec<usize>> = BTreeMap::new();
            for &p in &pending {
                let item = &items[indexes[p]];
                by_scope
                    .entry((item.org, item.profile))
                    .or_default()
                    .push(p);
            }
            for ((org, profile), positions) in by_scope {
                let scope = Scope::new(org, profile, target);
                let batch: Vec<Delivery> = positions
                    .iter()
                    .map(|&p| {
                        let item = &items[indexes[p]];
                        match &item.record {
                            DocumentRecord::Upsert { document } => Delivery {
                                doc_id: document.id.clone(),
                                op: Op::Upsert(document.clone()),
                            },
                            DocumentRecord::Delete { doc_id } => Delivery {
                                doc_id: doc_id.clone(),
                                op: Op::Delete,
                            },
                        }
                    })
                    .collect();
                let answers = sink.deliver(&scope, &batch).await;
                for (&p, answer) in positions.iter().zip(answers) {
                    results[p].1 += 1;
                    if let Err(e) = &answer
                        && e.is_retriable()
                    {
                        wait = wait.max(e.retry_after.unwrap_or_default());
                        next.push(p);
                    }
                    results[p].0 = answer;
                }
            }
            if next.is_empty() {
                return results;
            }
            let Some(delay) = delays.next() else {
                return results;
            };
            if wait > MAX_INLINE_WAIT {
                return results;
            }
            tokio::time::sleep(delay.max(wait)).await;
            pending = next;
        }
    }

    /// The target's sink, built with its decrypted credential; rebuilt after a minute,
    /// so a changed config or rotated credential is picked up.
    async fn sink(&self, target: Uuid) -> Built {
        let cached = self
            .sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&target)
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(60))
            .map(|(_, built)| built.clone());
        if let Some(built) = cached {
            return built;
        }
        let built = self.build(target).await;
        self.sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(target, (Instant::now(), built.clone()));
        built
    }

    async fn build(&self, target: Uuid) -> Built {
        let client =
            self.config.db.get().await.map_err(|e| {
                format!("the deliverer could not reach Postgres ({e}); it will retry")
            })?;
        let row = tributary_store::catalog::target_by_id(&**client, target)
            .await
            .map_err(|e| format!("reading target {target} failed ({e})"))?
            .filter(|t| t.is_live())
            .ok_or_else(|| {
                format!(
                    "target {target} does not exist or was deleted; nothing was delivered to it"
                )
            })?;
        let kind = self.destinations.get(&row.kind).ok_or_else(|| {
            format!(
                "target {target} has kind {:?}, which this build does not know",
                row.kind
            )
        })?;
        let credential = match row.credential_id {
            None => None,
            Some(id) => Some(
                tributary_store::credentials::open_value(&**client, &self.config.vault, row.org_id, id)
                    .await
                    .map_err(|e| format!("the credential of target {target} could not be opened: {e}"))?
                    .ok_or_else(|| format!("the credential of target {target} was deleted; give the target a live credential"))?
                    .value,
            ),
        };
        let sink = kind
            .build(tributary_destinations::BuildContext {
                config: row.config,
                credential,
                http: self.config.http.clone(),
                data_dir: self.config.data_dir.clone(),
            })
            .map_err(|e| format!("target {target} could not be set up: {e}"))?;
        Ok(Arc::from(sink))
    }

    fn commit(
        &self,
        messages: &[OwnedMessage],
        reports: &[(Uuid, Uuid, Envelope)],
        dead: &[Dead<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), KafkaError> {
        self.producer.begin_transaction()?;
        let result = (|| {
            let dlq = self.config.topics.documents_dead_letters();
            for (m, target, class, message, attempts) in dead {
                let letter = DeadLetter {
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    attempts: *attempts,
                    first_failure: now,
                    last_failure: now,
                    error_class: class,
                    message,
                    stage: "deliverer",
                    org_id: header(m, headers::ORG).map(str::to_owned),
                    command_id: None,
                };
                let mut headers = letter.headers(m.headers());
                if let Some(target) = target {
                    let target = target.to_string();
                    headers = headers.insert(Header {
                        key: "dlq_target_id",
                        value: Some(&target),
                    });
                }
                let mut record = BaseRecord::to(&dlq).headers(headers);
                if let Some(key) = m.key() {
                    record = record.key(key);
                }
                if let Some(payload) = m.payload() {
                    record = record.payload(payload);
                }
                self.producer.send(record).map_err(|(e, _)| e)?;
            }
            let commands = self.config.topics.commands("sync");
            for (_, profile, env) in reports {
                let key = profile.to_string();
                self.producer
                    .send(
                        BaseRecord::to(&commands)
                            .key(&key)
                            .payload(&env.data)
                            .headers(env.encode_headers()),
                    )
                    .map_err(|(e, _)| e)?;
            }
            let mut offsets = TopicPartitionList::new();
            let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
            for m in messages {
                let e = next
                    .entry((m.topic().to_owned(), m.partition()))
                    .or_default();
                *e = (*e).max(m.offset() + 1);
            }
            for ((topic, partition), offset) in next {
                offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
            }
            let group = self
                .consumer
                .group_metadata()
                .ok_or_else(|| KafkaError::Subscription("no group metadata".into()))?;
            self.producer
                .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)?;
            self.producer.commit_transaction(TXN_TIMEOUT)
        })();
        if let Err(e) = result {
            let _ = self.producer.abort_transaction(TXN_TIMEOUT);
            // The records are read again from the last committed offsets.
            for m in messages {
                let _ = self.consumer.seek(
                    m.topic(),
                    m.partition(),
                    Offset::Offset(m.offset()),
                    Duration::from_secs(5),
                );
            }
            return Err(e);
        }
        Ok(())
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
