//! What a step writes, in one Kafka transaction with its consumer offsets: the run
//! reports, the records moved to a delay topic, the dead letters and, for each dead
//! letter, the `recorded` event the `dead_letters` read model is built from.

use super::record::header;
use super::{Deliverer, SOURCE, TXN_TIMEOUT};
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::future_producer::{Delivery, DeliveryFuture};
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;
use tributary_domain::document::headers;
use tributary_log::Envelope;
use tributary_log::dead_letter::{
    self, Coordinates, DeadLetter, H_TARGET, LetterRecorded, RECORDED, retry,
};
use uuid::Uuid;

/// What the dead letter's `recorded` event says besides where the letter lies; `None`
/// for a record too malformed to name its org.
pub(super) struct About {
    pub(super) org: Uuid,
    pub(super) profile: Option<Uuid>,
    pub(super) run: Option<Uuid>,
    pub(super) doc_id: Option<String>,
    pub(super) op: Option<&'static str>,
    pub(super) redrive_of: Option<Uuid>,
}

/// A record to dead-letter.
pub(super) struct Letter<'a> {
    pub(super) message: &'a OwnedMessage,
    /// The target that refused it; `None` for a record no target could be read from.
    pub(super) target: Option<Uuid>,
    pub(super) class: &'static str,
    pub(super) text: String,
    pub(super) attempts: u32,
    pub(super) first_failure: DateTime<Utc>,
    pub(super) origin: Coordinates,
    pub(super) about: Option<About>,
}

/// A record to move to delay topic `level`, for one target.
pub(super) struct Delay<'a> {
    pub(super) message: &'a OwnedMessage,
    pub(super) target: Uuid,
    pub(super) level: u8,
    pub(super) class: &'static str,
    pub(super) text: String,
    pub(super) attempts: u32,
    pub(super) first_failure: DateTime<Utc>,
    pub(super) not_before: DateTime<Utc>,
    pub(super) origin: Coordinates,
}

/// A `record_deliveries` command for the sync aggregate, keyed by the profile.
pub(super) struct Report {
    pub(super) profile: Uuid,
    pub(super) envelope: Envelope,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn waited(handle: &tokio::runtime::Handle, future: DeliveryFuture) -> Result<Delivery, KafkaError> {
    match handle.block_on(future) {
        Ok(Ok(delivery)) => Ok(delivery),
        Ok(Err((e, _))) => Err(e),
        Err(_) => Err(KafkaError::Canceled),
    }
}

impl Deliverer {
    fn send<K, P>(&self, mut record: FutureRecord<'_, K, P>) -> Result<DeliveryFuture, KafkaError>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        loop {
            match self.producer.send_result(record) {
                Ok(future) => return Ok(future),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Writes the step's output and commits its offsets; on failure the records are read
    /// again from the last committed offsets. Blocking: call inside `block_in_place`.
    pub(super) fn commit(
        &self,
        messages: &[OwnedMessage],
        reports: &[Report],
        letters: &[Letter<'_>],
        delays: &[Delay<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), KafkaError> {
        self.producer.begin_transaction()?;
        let result = (|| {
            let handle = tokio::runtime::Handle::current();
            let dlq = self.config.topics.documents_dead_letters();
            let mut pending = Vec::new();
            let mut placed = Vec::new();
            for letter in letters {
                placed.push(self.send(self.letter_record(&dlq, letter, now))?);
            }
            let delay_topics: Vec<String> = delays
                .iter()
                .map(|d| self.config.topics.documents_retry(d.level))
                .collect();
            for (delay, topic) in delays.iter().zip(&delay_topics) {
                let headers = delay_headers(delay);
                let mut record = FutureRecord::to(topic).headers(headers);
                if let Some(key) = delay.message.key() {
                    record = record.key(key);
                }
                if let Some(payload) = delay.message.payload() {
                    record = record.payload(payload);
                }
                pending.push(self.send(record)?);
            }
            let commands = self.config.topics.commands("sync");
            let keys: Vec<String> = reports.iter().map(|r| r.profile.to_string()).collect();
            for (report, key) in reports.iter().zip(&keys) {
                pending.push(
                    self.send(
                        FutureRecord::to(&commands)
                            .key(key)
                            .payload(&report.envelope.data)
                            .headers(report.envelope.encode_headers()),
                    )?,
                );
            }
            // A letter's id is its place in the dead-letter topic, known once written.
            let events = self.config.topics.dead_letter_events();
            let mut recorded = Vec::new();
            for (letter, future) in letters.iter().zip(placed) {
                let delivery = waited(&handle, future)?;
                if let Some(env) = recorded_event(&dlq, letter, &delivery, now) {
                    recorded.push(env);
                }
            }
            let event_keys: Vec<String> = recorded
                .iter()
                .map(|e| e.subject.clone().unwrap_or_default())
                .collect();
            for (env, key) in recorded.iter().zip(&event_keys) {
                pending.push(
                    self.send(
                        FutureRecord::to(&events)
                            .key(key)
                            .payload(&env.data)
                            .headers(env.encode_headers()),
                    )?,
                );
            }
            // Acknowledged before the commit, which then has nothing left to flush.
            for future in pending {
                waited(&handle, future)?;
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
            use rdkafka::consumer::Consumer;
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
            self.rewind(messages);
            return Err(e);
        }
        Ok(())
    }

    fn letter_record<'m>(
        &self,
        dlq: &'m str,
        letter: &'m Letter<'_>,
        now: DateTime<Utc>,
    ) -> FutureRecord<'m, [u8], [u8]> {
        let m = letter.message;
        let context = DeadLetter {
            topic: &letter.origin.topic,
            partition: letter.origin.partition,
            offset: letter.origin.offset,
            attempts: letter.attempts,
            first_failure: letter.first_failure,
            last_failure: now,
            error_class: letter.class,
            message: &letter.text,
            stage: "deliverer",
            org_id: header(m, headers::ORG).map(str::to_owned),
            command_id: None,
        };
        let own = dead_letter::without_context(m.headers());
        let mut headers = context.headers(Some(&own));
        if let Some(target) = letter.target {
            let target = target.to_string();
            headers = headers.insert(Header {
                key: H_TARGET,
                value: Some(&target),
            });
        }
        let mut record = FutureRecord::to(dlq).headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        if let Some(payload) = m.payload() {
            record = record.payload(payload);
        }
        record
    }
}

/// The record's own headers, narrowed to the delay's target, with the delay context.
fn delay_headers(delay: &Delay<'_>) -> OwnedHeaders {
    let context = [
        (retry::ATTEMPTS, delay.attempts.to_string()),
        (retry::FIRST_FAILURE, time(delay.first_failure)),
        (retry::NOT_BEFORE, time(delay.not_before)),
        (retry::ERROR_CLASS, delay.class.to_owned()),
        (retry::ERROR_MESSAGE, delay.text.clone()),
        (retry::ORIGINAL_TOPIC, delay.origin.topic.clone()),
        (
            retry::ORIGINAL_PARTITION,
            delay.origin.partition.to_string(),
        ),
        (retry::ORIGINAL_OFFSET, delay.origin.offset.to_string()),
    ];
    let mut extra: Vec<(&str, String)> = context.into_iter().collect();
    // A redriven record stays one through its delays.
    if let Some(redrive) = header(delay.message, dead_letter::H_REDRIVE) {
        extra.push((dead_letter::H_REDRIVE, redrive.to_owned()));
    }
    dead_letter::narrowed(delay.message.headers(), delay.target, &extra)
}

/// The `recorded` event of a letter written at `delivery`; keyed (and its subject) by
/// the letter id, so a later `redriven` event of the letter follows it in order.
fn recorded_event(
    dlq: &str,
    letter: &Letter<'_>,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Option<Envelope> {
    let about = letter.about.as_ref()?;
    let id = dead_letter::letter_id(dlq, delivery.partition, delivery.offset);
    let data = LetterRecorded {
        id,
        org_id: about.org,
        profile_id: about.profile,
        run_id: about.run,
        target_id: letter.target,
        doc_id: about.doc_id.clone(),
        op: about.op.map(str::to_owned),
        class: letter.class.to_owned(),
        message: letter.text.clone(),
        stage: "deliverer".to_owned(),
        attempts: letter.attempts,
        first_failure: letter.first_failure,
        last_failure: now,
        letter: Coordinates {
            topic: dlq.to_owned(),
            partition: delivery.partition,
            offset: delivery.offset,
        },
        original: letter.origin.clone(),
        redrive_of: about.redrive_of,
    };
    let mut env = Envelope::json(SOURCE, RECORDED, &data).ok()?;
    env.subject = Some(id.to_string());
    env.org_id = Some(tributary_domain::OrgId(about.org));
    Some(env)
}
