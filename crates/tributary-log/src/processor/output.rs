//! Writes a decision's records into the open transaction.

use crate::dead_letter::DeadLetter;
use crate::envelope::Envelope;
use crate::topics::Topics;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use std::time::Duration;
use tributary_domain::aggregate::FollowUp;
use tributary_domain::outcome::OUTCOME_TYPE;
use tributary_domain::{CommandOutcome, OrgId};

pub(crate) const SOURCE: &str = "/tributary/processor";

pub(crate) struct Output<'a> {
    producer: &'a ThreadedProducer<DefaultProducerContext>,
    topics: &'a Topics,
}

fn schema_uri(ty: &str) -> String {
    format!("https://tributary.dev/schemas/events/{ty}.json")
}

/// An envelope caused by `cause`: same correlation, causation = the command.
fn caused(cause: &Envelope, ty: &str, data: Vec<u8>) -> Envelope {
    let mut env = Envelope::new(SOURCE, ty, data);
    env.correlation_id = Some(
        cause
            .correlation_id
            .clone()
            .unwrap_or_else(|| cause.id.clone()),
    );
    env.causation_id = Some(cause.id.clone());
    env
}

impl<'a> Output<'a> {
    pub(crate) fn new(
        producer: &'a ThreadedProducer<DefaultProducerContext>,
        topics: &'a Topics,
    ) -> Self {
        Self { producer, topics }
    }

    fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &[u8],
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), KafkaError> {
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).key(key).headers(headers);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn event(
        &self,
        aggregate: &str,
        partition: i32,
        id: &str,
        org_id: Option<OrgId>,
        ty: &str,
        data: Vec<u8>,
        version: u64,
        cause: &Envelope,
    ) -> Result<(), KafkaError> {
        let mut env = caused(cause, ty, data);
        env.subject = Some(id.to_owned());
        env.org_id = org_id;
        env.agg_version = Some(version);
        env.data_schema = Some(schema_uri(ty));
        self.send(
            &self.topics.events(aggregate),
            Some(partition),
            id.as_bytes(),
            Some(&env.data),
            env.encode_headers(),
        )
    }

    pub(crate) fn snapshot(
        &self,
        aggregate: &str,
        partition: i32,
        id: &str,
        data: Vec<u8>,
        cause: &Envelope,
    ) -> Result<(), KafkaError> {
        let mut env = caused(cause, "tributary.snapshot.v1", data);
        env.subject = Some(id.to_owned());
        self.send(
            &self.topics.state(aggregate),
            Some(partition),
            id.as_bytes(),
            Some(&env.data),
            env.encode_headers(),
        )
    }

    /// A command for another aggregate. Handed on (`Handoff::Continue`), it keeps the
    /// id of the command that caused it, so the final outcome carries the id the client
    /// knows. A side effect of a command already answered (a compensation, a release)
    /// gets an id derived from the cause: its own outcome must not answer the client's
    /// command a second time, and a replay derives the same id, so it stays idempotent.
    pub(crate) fn follow_up(
        &self,
        follow_up: &FollowUp,
        cause: &Envelope,
        handoff: Handoff,
    ) -> Result<(), KafkaError> {
        let data = encode("a follow-up command", &follow_up.data)?;
        let mut env = caused(cause, follow_up.command_type, data);
        env.id = match handoff {
            Handoff::Continue => cause.id.clone(),
            Handoff::SideEffect => {
                let name = format!("{}/{}/{}", cause.id, follow_up.command_type, follow_up.key);
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
            }
        };
        env.subject = Some(follow_up.key.clone());
        env.org_id = follow_up.org_id;
        self.send(
            &self.topics.commands(follow_up.aggregate),
            None,
            follow_up.key.as_bytes(),
            Some(&env.data),
            env.encode_headers(),
        )
    }

    pub(crate) fn outcome(
        &self,
        partition: i32,
        outcome: &CommandOutcome,
        org_id: Option<OrgId>,
        cause: Option<&Envelope>,
    ) -> Result<(), KafkaError> {
        let data = encode("a command outcome", outcome)?;
        let mut env = match cause {
            Some(cause) => caused(cause, OUTCOME_TYPE, data),
            None => Envelope::new(SOURCE, OUTCOME_TYPE, data),
        };
        env.subject = Some(outcome.command_id.to_string());
        env.org_id = org_id;
        env.data_schema = Some(schema_uri(OUTCOME_TYPE));
        let key = outcome.command_id.to_string();
        self.send(
            &self.topics.command_results(),
            Some(partition),
            key.as_bytes(),
            Some(&env.data),
            env.encode_headers(),
        )
    }

    pub(crate) fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        letter: &DeadLetter<'_>,
    ) -> Result<(), KafkaError> {
        let headers = letter.headers(message.headers());
        // Secret fields (a credential command sent with plaintext, say) never reach the
        // dead-letter topic.
        let payload = match (
            message.payload(),
            self.topics.aggregate_of_commands(message.topic()),
        ) {
            (Some(payload), Some(aggregate)) => {
                Some(tributary_domain::schema::redact_command(aggregate, payload))
            }
            (payload, _) => payload.map(<[u8]>::to_vec),
        };
        self.send(
            &self.topics.dead_letters(),
            None,
            message.key().unwrap_or_default(),
            payload.as_deref(),
            headers,
        )
    }
}

/// Whether a follow-up carries the client's command on, or is a side effect of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handoff {
    Continue,
    SideEffect,
}

/// Serialises a record body. JSON values and our outcome type always serialise; should
/// one ever fail, the transaction aborts, and the log says what could not be encoded.
fn encode(what: &'static str, value: &impl serde::Serialize) -> Result<Vec<u8>, KafkaError> {
    serde_json::to_vec(value).map_err(|e| {
        tracing::error!(error = %e, what, "could not encode a record");
        KafkaError::MessageProduction(RDKafkaErrorCode::InvalidMessage)
    })
}
