//! Dead-letter records: the original key, value and headers, plus `dlq_*` headers that
//! say where the record came from and why it could not be handled. Messages put here
//! must already be redacted by the caller.

use crate::error::kafka as failed;
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Why and where a record failed.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub attempts: u32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    /// A stable, machine-readable class (`malformed`, `invalid`, `http_4xx`, …).
    pub error_class: &'a str,
    /// A human sentence, never containing a secret.
    pub message: &'a str,
    /// Which stage failed (`processor`, `deliverer`, …).
    pub stage: &'a str,
    pub org_id: Option<String>,
    pub command_id: Option<String>,
}

pub const H_TOPIC: &str = "dlq_original_topic";
pub const H_PARTITION: &str = "dlq_original_partition";
pub const H_OFFSET: &str = "dlq_original_offset";
pub const H_ATTEMPTS: &str = "dlq_attempts";
pub const H_FIRST: &str = "dlq_first_failure";
pub const H_LAST: &str = "dlq_last_failure";
pub const H_CLASS: &str = "dlq_error_class";
pub const H_MESSAGE: &str = "dlq_error_message";
pub const H_STAGE: &str = "dlq_stage";
pub const H_ORG: &str = "dlq_org_id";
pub const H_COMMAND: &str = "dlq_command_id";

impl DeadLetter<'_> {
    /// The original headers followed by the dead-letter context.
    pub fn headers<H: Headers>(&self, original: Option<&H>) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = original {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let fields = [
            (H_TOPIC, Some(self.topic.to_owned())),
            (H_PARTITION, Some(self.partition.to_string())),
            (H_OFFSET, Some(self.offset.to_string())),
            (H_ATTEMPTS, Some(self.attempts.to_string())),
            (H_FIRST, Some(time(self.first_failure))),
            (H_LAST, Some(time(self.last_failure))),
            (H_CLASS, Some(self.error_class.to_owned())),
            (H_MESSAGE, Some(self.message.to_owned())),
            (H_STAGE, Some(self.stage.to_owned())),
            (H_ORG, self.org_id.clone()),
            (H_COMMAND, self.command_id.clone()),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
        }
        headers
    }
}

/// The target a document dead letter is for (a document record may name several).
pub const H_TARGET: &str = "dlq_target_id";
/// On a document record re-produced by a redrive: the id of the dead letter it came
/// from. The deliverer does not report such a record to its run (the run already
/// counted the document as failed); a new failure becomes a new dead letter that
/// names the one it was redriven from.
pub const H_REDRIVE: &str = "tributary-redrive";

/// Headers a record carries while it waits in a delay topic
/// (`<prefix>.documents.retry.<n>`): the context a dead letter would carry, so the
/// next level or the dead letter continues where it stopped.
pub mod retry {
    /// Every header of this module starts with it.
    pub const PREFIX: &str = "retry_";
    /// Delivery attempts so far, over every level.
    pub const ATTEMPTS: &str = "retry_attempts";
    /// When the first attempt failed (RFC 3339).
    pub const FIRST_FAILURE: &str = "retry_first_failure";
    /// Not to be delivered before this time (RFC 3339).
    pub const NOT_BEFORE: &str = "retry_not_before";
    pub const ERROR_CLASS: &str = "retry_error_class";
    /// The last failure, redacted like a dead letter's message.
    pub const ERROR_MESSAGE: &str = "retry_error_message";
    /// Where the record was first written (the documents topic).
    pub const ORIGINAL_TOPIC: &str = "retry_original_topic";
    pub const ORIGINAL_PARTITION: &str = "retry_original_partition";
    pub const ORIGINAL_OFFSET: &str = "retry_original_offset";
}

/// CloudEvent type on `<prefix>.dead-letter.events`: a document dead letter was
/// written ([`LetterRecorded`]).
pub const RECORDED: &str = "tributary.dead_letter.recorded.v1";
/// CloudEvent type on `<prefix>.dead-letter.events`: a dead letter was redriven
/// ([`LetterRedriven`]).
pub const REDRIVEN: &str = "tributary.dead_letter.redriven.v1";

/// Where a record lies in the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coordinates {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The stable id of the dead letter at these coordinates of the dead-letter topic: a
/// name-based UUID, so anyone holding the record can tell its id, and a rebuild of the
/// read model gives every letter the id it had.
pub fn letter_id(topic: &str, partition: i32, offset: i64) -> uuid::Uuid {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b1d_3f0e_8c2a_4e57_9a41_d3c0_5e7b_2a19);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{topic}/{partition}/{offset}").as_bytes(),
    )
}

/// A document dead letter, as the `dead_letters` read model shows it: everything but
/// the document itself, which stays in the dead-letter record at `letter`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterRecorded {
    pub id: uuid::Uuid,
    pub org_id: uuid::Uuid,
    #[serde(default)]
    pub profile_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub run_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub target_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub doc_id: Option<String>,
    /// `upsert` or `delete`.
    #[serde(default)]
    pub op: Option<String>,
    /// `permanent`, `transient`, `rate_limited` or `malformed`.
    pub class: String,
    /// Redacted by the sink that failed; never a secret.
    pub message: String,
    pub stage: String,
    pub attempts: u32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    /// The dead-letter record.
    pub letter: Coordinates,
    /// The document record as the worker (or a redrive) wrote it.
    pub original: Coordinates,
    /// The dead letter whose redrive failed again into this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_of: Option<uuid::Uuid>,
}

/// A dead letter was re-produced to the documents topic, for its target only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterRedriven {
    pub id: uuid::Uuid,
    pub org_id: uuid::Uuid,
    /// `user:<id>`, `key:<id>` or `system:cli`.
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Whether a header is dead-letter or delay context rather than part of the record.
fn is_context(key: &str) -> bool {
    key.starts_with("dlq_") || key.starts_with(retry::PREFIX)
}

/// The headers of a document record sent on for one target: the record's own headers
/// without dead-letter and delay context, the targets narrowed to `target`, then
/// `extra` (a redrive marker, delay context).
pub fn narrowed<H: Headers>(
    original: Option<&H>,
    target: uuid::Uuid,
    extra: &[(&str, String)],
) -> OwnedHeaders {
    let target = target.to_string();
    let mut headers = OwnedHeaders::new();
    let mut named = false;
    if let Some(original) = original {
        for h in original.iter() {
            if is_context(h.key) || h.key == H_REDRIVE {
                continue;
            }
            if h.key == tributary_domain::document::headers::TARGETS {
                named = true;
                headers = headers.insert(Header {
                    key: h.key,
                    value: Some(target.as_str()),
                });
                continue;
            }
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    if !named {
        headers = headers.insert(Header {
            key: tributary_domain::document::headers::TARGETS,
            value: Some(target.as_str()),
        });
    }
    for (key, value) in extra {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }
    headers
}

/// The record's own headers without delay context (a dead letter keeps what the
/// worker wrote, and says the rest in its `dlq_*` headers).
pub fn without_context<H: Headers>(original: Option<&H>) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = original {
        for h in original.iter().filter(|h| !is_context(h.key)) {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    headers
}

/// A dead letter to redrive: where its record lies in the dead-letter topic and the
/// target it failed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToRedrive {
    pub id: uuid::Uuid,
    pub target_id: uuid::Uuid,
    pub partition: i32,
    pub offset: i64,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redrive {
    /// Re-produced to the documents topic, each with its `redriven` event.
    pub redriven: Vec<uuid::Uuid>,
    /// Not found at their offsets in the dead-letter topic (nothing was produced).
    pub missing: Vec<uuid::Uuid>,
}

const REDRIVE_SOURCE: &str = "tributary://redrive";
const REDRIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Redrives dead letters of one org: each letter's original record (key, value and
/// headers, the targets narrowed to the letter's target, plus [`H_REDRIVE`]) goes back
/// to `<prefix>.documents`, and a [`REDRIVEN`] event keyed by the letter id goes to
/// `<prefix>.dead-letter.events` — all in one Kafka transaction, so a letter is marked
/// redriven exactly when its record is back. The transactional id is the org's, so two
/// redrives of one org at once fence each other instead of both producing. Blocking.
pub fn redrive(
    kafka: &crate::client::KafkaSettings,
    topics: &crate::Topics,
    org: uuid::Uuid,
    letters: &[ToRedrive],
    actor: &str,
) -> crate::Result<Redrive> {
    use rdkafka::Message;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let mut outcome = Redrive::default();
    if letters.is_empty() {
        return Ok(outcome);
    }
    let dlq = topics.documents_dead_letters();
    let wanted: Vec<(i32, i64)> = letters.iter().map(|l| (l.partition, l.offset)).collect();
    let found = read_at(kafka, &dlq, &wanted)?;
    let mut config = kafka.producer();
    config
        .set(
            "transactional.id",
            format!("{}.redrive.{org}", topics.prefix()),
        )
        .set("transaction.timeout.ms", "60000")
        .set("retry.backoff.ms", "5")
        .set("retry.backoff.max.ms", "100")
        .set(
            "message.max.bytes",
            crate::topics::DOCUMENT_MAX_BYTES.to_string(),
        );
    let producer: ThreadedProducer<DefaultProducerContext> = config
        .create()
        .map_err(failed("creating the redrive producer"))?;
    producer
        .init_transactions(REDRIVE_TIMEOUT)
        .map_err(failed("starting the redrive transaction"))?;
    producer
        .begin_transaction()
        .map_err(failed("starting the redrive transaction"))?;
    let documents = topics.documents();
    let events = topics.dead_letter_events();
    let sent = (|| {
        for letter in letters {
            let Some(m) = found.get(&(letter.partition, letter.offset)) else {
                outcome.missing.push(letter.id);
                continue;
            };
            let id = letter.id.to_string();
            let headers = narrowed(m.headers(), letter.target_id, &[(H_REDRIVE, id.clone())]);
            let mut record = BaseRecord::to(&documents).headers(headers);
            if let Some(key) = m.key() {
                record = record.key(key);
            }
            if let Some(payload) = m.payload() {
                record = record.payload(payload);
            }
            send(&producer, record)?;
            let data = LetterRedriven {
                id: letter.id,
                org_id: org,
                actor: actor.to_owned(),
                at: Utc::now(),
            };
            let mut env =
                crate::Envelope::json(REDRIVE_SOURCE, REDRIVEN, &data).map_err(|source| {
                    crate::Error::Encode {
                        what: "a redriven event",
                        source,
                    }
                })?;
            env.subject = Some(id.clone());
            env.org_id = Some(tributary_domain::OrgId(org));
            send(
                &producer,
                BaseRecord::to(&events)
                    .key(&id)
                    .payload(&env.data)
                    .headers(env.encode_headers()),
            )?;
            outcome.redriven.push(letter.id);
        }
        // Acknowledged before the commit, which then has nothing left to flush.
        let deadline = std::time::Instant::now() + REDRIVE_TIMEOUT;
        while producer.in_flight_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        producer
            .commit_transaction(REDRIVE_TIMEOUT)
            .map_err(failed("committing the redrive"))
    })();
    if let Err(e) = sent {
        let _ = producer.abort_transaction(REDRIVE_TIMEOUT);
        return Err(e);
    }
    Ok(outcome)
}

fn send<K, P>(
    producer: &rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    mut record: rdkafka::producer::BaseRecord<'_, K, P>,
) -> crate::Result<()>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err((e, _)) => return Err(failed("producing a redriven record")(e)),
        }
    }
}

/// The committed records of `topic` at the given `(partition, offset)`s; an offset that
/// holds no record (it never held one, or retention removed it) is left out.
pub fn read_at(
    kafka: &crate::client::KafkaSettings,
    topic: &str,
    wanted: &[(i32, i64)],
) -> crate::Result<std::collections::HashMap<(i32, i64), rdkafka::message::OwnedMessage>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::{Message, Offset, TopicPartitionList};
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    /// Further than this ahead, re-assigning at the next wanted offset beats reading on.
    const GAP: i64 = 500;
    let mut by_partition: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for (partition, offset) in wanted {
        by_partition.entry(*partition).or_default().insert(*offset);
    }
    let mut found = HashMap::new();
    if by_partition.is_empty() {
        return Ok(found);
    }
    let mut config = kafka.reader();
    config
        .set(
            "fetch.max.bytes",
            (2 * crate::topics::DOCUMENT_MAX_BYTES).to_string(),
        )
        .set(
            "max.partition.fetch.bytes",
            crate::topics::DOCUMENT_MAX_BYTES.to_string(),
        );
    let consumer: BaseConsumer<crate::client::Quiet> = config
        .create_with_context(crate::client::Quiet)
        .map_err(failed("creating a dead-letter reader"))?;
    let assign = |partition: i32, offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .and_then(|()| consumer.assign(&tpl))
            .map_err(failed("assigning a dead-letter reader"))
    };
    let deadline = std::time::Instant::now() + REDRIVE_TIMEOUT;
    for (partition, mut pending) in by_partition {
        let Some(&first) = pending.first() else {
            continue;
        };
        assign(partition, first)?;
        while !pending.is_empty() {
            if std::time::Instant::now() > deadline {
                return Err(crate::Error::Kafka {
                    action: "reading dead letters",
                    source: KafkaError::MessageConsumption(
                        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                    ),
                });
            }
            match consumer.poll(std::time::Duration::from_millis(500)) {
                None => {}
                Some(Ok(m)) => {
                    let offset = m.offset();
                    // Offsets passed over hold no record (transaction markers).
                    pending.retain(|o| *o >= offset);
                    if pending.remove(&offset) {
                        found.insert((partition, offset), m.detach());
                    }
                    if let Some(&next) = pending.first()
                        && next > offset + GAP
                    {
                        assign(partition, next)?;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => return Err(failed("reading dead letters")(e)),
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(headers: &OwnedHeaders) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn letter_events_follow_their_schemas() {
        let at = chrono::Utc::now();
        let place = |topic: &str| Coordinates {
            topic: topic.into(),
            partition: 1,
            offset: 7,
        };
        let recorded = LetterRecorded {
            id: letter_id("p.documents.dead-letters", 1, 7),
            org_id: uuid::Uuid::now_v7(),
            profile_id: Some(uuid::Uuid::now_v7()),
            run_id: None,
            target_id: Some(uuid::Uuid::now_v7()),
            doc_id: Some("docs/a.md".into()),
            op: Some("upsert".into()),
            class: "permanent".into(),
            message: "R2R answered 422".into(),
            stage: "deliverer".into(),
            attempts: 1,
            first_failure: at,
            last_failure: at,
            letter: place("p.documents.dead-letters"),
            original: place("p.documents"),
            redrive_of: None,
        };
        let redriven = LetterRedriven {
            id: recorded.id,
            org_id: recorded.org_id,
            actor: "system:cli".into(),
            at,
        };
        for (ty, data) in [
            (RECORDED, serde_json::to_value(&recorded).unwrap()),
            (REDRIVEN, serde_json::to_value(&redriven).unwrap()),
        ] {
            tributary_domain::schema::validate(ty, &data).unwrap();
        }
        let mut bad = serde_json::to_value(&recorded).unwrap();
        bad["class"] = "whatever".into();
        assert!(tributary_domain::schema::validate(RECORDED, &bad).is_err());
    }

    #[test]
    fn a_letter_id_names_one_place_for_good() {
        let id = letter_id("t.documents.dead-letters", 2, 41);
        assert_eq!(id, letter_id("t.documents.dead-letters", 2, 41));
        assert_ne!(id, letter_id("t.documents.dead-letters", 2, 42));
        assert_ne!(id, letter_id("t.documents.dead-letters", 1, 41));
        assert_ne!(id, letter_id("u.documents.dead-letters", 2, 41));
    }

    #[test]
    fn a_record_sent_on_keeps_its_own_headers_for_one_target() {
        let targets = tributary_domain::document::headers::TARGETS;
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let both = format!("{a},{b}");
        let original = OwnedHeaders::new()
            .insert(Header {
                key: "tributary-run",
                value: Some("run-1"),
            })
            .insert(Header {
                key: targets,
                value: Some(both.as_str()),
            })
            .insert(Header {
                key: H_CLASS,
                value: Some("permanent"),
            })
            .insert(Header {
                key: retry::ATTEMPTS,
                value: Some("7"),
            })
            .insert(Header {
                key: H_REDRIVE,
                value: Some("old-letter"),
            });
        let sent = pairs(&narrowed(
            Some(&original),
            b,
            &[(H_REDRIVE, "new-letter".to_owned())],
        ));
        assert_eq!(
            sent,
            vec![
                ("tributary-run".to_owned(), "run-1".to_owned()),
                (targets.to_owned(), b.to_string()),
                (H_REDRIVE.to_owned(), "new-letter".to_owned()),
            ]
        );
        let kept = pairs(&without_context(Some(&original)));
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(
            kept.iter()
                .all(|(k, _)| !k.starts_with("dlq_") && !k.starts_with("retry_"))
        );
    }

    #[test]
    fn letter_events_round_trip() {
        let at = Utc::now();
        let recorded = LetterRecorded {
            id: letter_id("t.documents.dead-letters", 0, 3),
            org_id: uuid::Uuid::now_v7(),
            profile_id: Some(uuid::Uuid::now_v7()),
            run_id: None,
            target_id: Some(uuid::Uuid::now_v7()),
            doc_id: Some("doc-1".into()),
            op: Some("upsert".into()),
            class: "permanent".into(),
            message: "R2R refused the key (401)".into(),
            stage: "deliverer".into(),
            attempts: 4,
            first_failure: at,
            last_failure: at,
            letter: Coordinates {
                topic: "t.documents.dead-letters".into(),
                partition: 0,
                offset: 3,
            },
            original: Coordinates {
                topic: "t.documents".into(),
                partition: 1,
                offset: 17,
            },
            redrive_of: None,
        };
        let json = serde_json::to_vec(&recorded).unwrap();
        assert_eq!(
            serde_json::from_slice::<LetterRecorded>(&json).unwrap(),
            recorded
        );
        let odd = serde_json::json!({ "id": recorded.id, "org_id": recorded.org_id, "actor": "system:cli", "at": at, "extra": 1 });
        assert!(serde_json::from_value::<LetterRedriven>(odd).is_err());
    }
}
