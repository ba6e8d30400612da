//! Writing a run's batches: each batch's document records, their entries in the
//! documents index (`<prefix>.documents.index`, the `documents` read model's source) and
//! the batch's `record_batch` command go to Kafka in one transaction, so the sync aggregate records a batch exactly
//! when its documents exist, and never a batch whose documents were lost.
//!
//! The transactional id is the run's own (`<prefix>.run.<run id>`): when a worker takes
//! over an interrupted run, initialising its producer fences the previous worker's, so a
//! worker that was only presumed dead can no longer commit anything for the run.

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::time::{Duration, Instant};
use tributary_connectors::source::Batch;
use tributary_domain::document::{self, DocumentRecordRef, headers, record_key};
use tributary_domain::sync::{self, Failure, MAX_FAILURES};
use tributary_domain::{OrgId, ProfileId, SyncRunId, TargetId};
use tributary_log::client::KafkaSettings;
use tributary_log::topics::DOCUMENT_MAX_BYTES;
use tributary_log::{Envelope, Topics};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const SOURCE: &str = "tributary://worker";

/// The run a worker holds: which attempt, and what its documents are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    pub org: OrgId,
    pub profile: ProfileId,
    pub run: SyncRunId,
    pub attempt: u32,
    pub targets: Vec<TargetId>,
}

/// The per-batch headers of [`RunWriter::headers`], formatted once.
struct BatchHeaders {
    org: String,
    profile: String,
    run: String,
    attempt: String,
    seq: String,
}

/// What a batch came to once written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub documents: u64,
    pub deletions: u64,
    pub failed: u64,
}

pub struct RunWriter {
    producer: ThreadedProducer<DefaultProducerContext>,
    topics: Topics,
    run: RunRef,
    targets: String,
}

impl RunWriter {
    /// A transactional producer for the run; fences any earlier attempt's producer.
    /// Blocking: call it off the async threads.
    pub fn new(kafka: &KafkaSettings, topics: Topics, run: RunRef) -> Result<Self, KafkaError> {
        let mut config = kafka.producer();
        config
            .set(
                "transactional.id",
                format!("{}.run.{}", topics.prefix(), run.run),
            )
            .set("transaction.timeout.ms", "60000")
            .set("message.max.bytes", DOCUMENT_MAX_BYTES.to_string())
            .set("linger.ms", "5")
            // Nothing waits on a record's own report: the commit says whether all of
            // them arrived. Reports of failures still come (and are logged).
            .set("delivery.report.only.error", "true");
        let producer: ThreadedProducer<DefaultProducerContext> = config.create()?;
        producer.init_transactions(TXN_TIMEOUT)?;
        let targets = run
            .targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self {
            producer,
            topics,
            run,
            targets,
        })
    }

    /// The headers of one batch's records that do not change from record to record.
    fn batch_headers(&self, seq: u64) -> BatchHeaders {
        BatchHeaders {
            org: self.run.org.to_string(),
            profile: self.run.profile.to_string(),
            run: self.run.run.to_string(),
            attempt: self.run.attempt.to_string(),
            seq: seq.to_string(),
        }
    }

    /// A record's headers: its own, plus CloudEvents attributes (type = the operation,
    /// subject = the record key, org, correlation = the run) so that the projectors'
    /// decoder reads document records and their index entries like any event.
    fn headers(&self, batch: &BatchHeaders, key: &str, delete: bool) -> OwnedHeaders {
        let (ty, op) = if delete {
            (document::DELETED, "delete")
        } else {
            (document::UPSERTED, "upsert")
        };
        let mut env = Envelope::new(SOURCE, ty, Vec::new());
        env.subject = Some(key.to_owned());
        env.org_id = Some(self.run.org);
        env.correlation_id = Some(batch.run.clone());
        let own = [
            (headers::ORG, batch.org.as_str()),
            (headers::PROFILE, &batch.profile),
            (headers::RUN, &batch.run),
            (headers::ATTEMPT, &batch.attempt),
            (headers::SEQ, &batch.seq),
            (headers::TARGETS, &self.targets),
            (headers::OP, op),
        ];
        own.into_iter()
            .fold(env.encode_headers(), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value),
                })
            })
    }

    /// Sends one document change: the record to the documents topic, and its entry
    /// (no content; a tombstone for a deletion) to the index topic, in the transaction.
    fn send_change(
        &self,
        topics: &(String, String),
        key: &str,
        payload: &[u8],
        headers: OwnedHeaders,
        delete: bool,
    ) -> Result<(), KafkaError> {
        self.send(&topics.0, key, Some(payload), headers.clone())?;
        self.send(&topics.1, key, (!delete).then_some(&[][..]), headers)
    }

    fn send(
        &self,
        topic: &str,
        key: &str,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), KafkaError> {
        let mut record = BaseRecord::to(topic).key(key).headers(headers);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Writes batch `seq` and its `record_batch` command in a transaction of its own.
    /// Blocking.
    pub fn write(&self, seq: u64, batch: &Batch, source_done: bool) -> Result<Written, KafkaError> {
        self.begin()?;
        let written = self
            .put(seq, batch, source_done)
            .and_then(|written| self.commit().map(|()| written));
        if written.is_err() {
            self.abort();
        }
        written
    }

    /// Opens a transaction for [`Self::put`]s. Blocking.
    pub fn begin(&self) -> Result<(), KafkaError> {
        self.producer.begin_transaction()
    }

    /// Adds batch `seq` and its `record_batch` command to the open transaction. A
    /// document too large for a record becomes that document's failure. Blocking; on an
    /// error, [`Self::abort`] the transaction.
    pub fn put(&self, seq: u64, batch: &Batch, source_done: bool) -> Result<Written, KafkaError> {
        let topics = (self.topics.documents(), self.topics.documents_index());
        let fixed = self.batch_headers(seq);
        let mut written = Written::default();
        let mut failures: Vec<Failure> = batch
            .failures
            .iter()
            .map(|f| Failure {
                doc_id: f.id.clone(),
                target_id: None,
                class: "source".into(),
                message: f.message.clone(),
            })
            .collect();
        for document in &batch.documents {
            let key = record_key(&self.run.profile, &document.id);
            let payload =
                serde_json::to_vec(&DocumentRecordRef::Upsert { document }).unwrap_or_default();
            if payload.len() + key.len() + 1024 > DOCUMENT_MAX_BYTES {
                failures.push(Failure {
                    doc_id: document.id.clone(),
                    target_id: None,
                    class: "source".into(),
                    message: format!(
                        "the document is {} MiB, more than the {} MiB a document may be; \
                         split it at the source or exclude it",
                        payload.len() / (1024 * 1024),
                        DOCUMENT_MAX_BYTES / (1024 * 1024)
                    ),
                });
                continue;
            }
            let headers = self.headers(&fixed, &key, false);
            self.send_change(&topics, &key, &payload, headers, false)?;
            written.documents += 1;
        }
        for doc_id in &batch.deleted {
            let key = record_key(&self.run.profile, doc_id);
            let payload =
                serde_json::to_vec(&DocumentRecordRef::Delete { doc_id }).unwrap_or_default();
            let headers = self.headers(&fixed, &key, true);
            self.send_change(&topics, &key, &payload, headers, true)?;
            written.deletions += 1;
        }
        written.failed = failures.len() as u64;
        failures.truncate(MAX_FAILURES);
        let command = serde_json::json!({
            "profile_id": self.run.profile, "run_id": self.run.run,
            "attempt": self.run.attempt, "seq": seq,
            "documents": written.documents, "deletions": written.deletions,
            "failures": failures, "failed": written.failed,
            "checkpoint": batch.checkpoint, "progress": progress(batch),
            "source_done": source_done, "at": chrono::Utc::now(),
        });
        let mut env = Envelope::new(
            SOURCE,
            sync::RECORD_BATCH,
            serde_json::to_vec(&command).unwrap_or_default(),
        );
        env.subject = Some(self.run.profile.to_string());
        env.org_id = Some(self.run.org);
        let key = self.run.profile.to_string();
        self.send(
            &self.topics.commands("sync"),
            &key,
            Some(&env.data),
            env.encode_headers(),
        )?;
        Ok(written)
    }

    /// Commits the open transaction once every record in it is acknowledged. Blocking;
    /// on an error, [`Self::abort`] the transaction.
    pub fn commit(&self) -> Result<(), KafkaError> {
        let deadline = Instant::now() + TXN_TIMEOUT;
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.producer.commit_transaction(TXN_TIMEOUT)
    }

    /// Aborts the open transaction: nothing put in it becomes visible. Blocking.
    pub fn abort(&self) {
        if let Err(e) = self.producer.abort_transaction(TXN_TIMEOUT) {
            tracing::debug!(error = %e, "aborting a transaction failed");
        }
    }
}

/// The schema's progress: `total` only where the source knows it.
fn progress(batch: &Batch) -> serde_json::Value {
    match batch.progress.total {
        Some(total) => serde_json::json!({ "done": batch.progress.done, "total": total }),
        None => serde_json::json!({ "done": batch.progress.done }),
    }
}
