//! The processor's in-memory state (aggregates and the command de-duplication window)
//! and the rebalance callback that loads and drops it as partitions move.

use super::output::{Handoff, Output};
use super::store::{Handled, Handler};
use crate::consume::{Rebalance, entries, rebalance};
use crate::dead_letter::DeadLetter;
use crate::envelope::Envelope;
use crate::error::{Error, kafka};
use crate::reader::read_to_end;
use crate::topics::Topics;
use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tributary_domain::aggregate::{Rejection, RejectionCode};
use tributary_domain::{CommandId, CommandOutcome, OrgId, OutcomeStatus, schema};

type PartitionKey = (String, i32);

pub(crate) struct Shared {
    handlers: Vec<Box<dyn Handler>>,
    topics: Topics,
    /// First outcome of every command seen on a command partition, loaded from the
    /// command-results topic; its retention is the de-duplication window.
    dedupe: HashMap<PartitionKey, HashMap<String, CommandOutcome>>,
    staged: Vec<(PartitionKey, CommandOutcome)>,
    pub(crate) rebalanced: bool,
    pub(crate) fatal: Option<Error>,
}

/// A command that was not understood or not accepted.
struct Refusal<'a> {
    command_id: String,
    command_type: String,
    aggregate: &'a str,
    aggregate_id: Option<String>,
    org_id: Option<OrgId>,
    rejection: Rejection,
}

impl Shared {
    pub(crate) fn new(handlers: Vec<Box<dyn Handler>>, topics: Topics) -> Self {
        Self {
            handlers,
            topics,
            dedupe: HashMap::new(),
            staged: Vec::new(),
            rebalanced: false,
            fatal: None,
        }
    }

    pub(crate) fn commit(&mut self) {
        for handler in &mut self.handlers {
            handler.commit();
        }
        for (key, outcome) in self.staged.drain(..) {
            self.dedupe
                .entry(key)
                .or_default()
                .insert(outcome.command_id.to_string(), outcome);
        }
    }

    pub(crate) fn abort(&mut self) {
        for handler in &mut self.handlers {
            handler.abort();
        }
        self.staged.clear();
    }

    pub(crate) fn loaded(&self) -> Vec<(&'static str, usize)> {
        self.handlers
            .iter()
            .map(|h| (h.kind(), h.loaded()))
            .collect()
    }

    fn first_outcome(&self, key: &PartitionKey, id: &str) -> Option<&CommandOutcome> {
        self.staged
            .iter()
            .rev()
            .find(|(k, o)| k == key && o.command_id.to_string() == id)
            .map(|(_, o)| o)
            .or_else(|| self.dedupe.get(key)?.get(id))
    }

    /// Decides one command and writes what follows into the open transaction.
    pub(crate) fn process(
        &mut self,
        message: &BorrowedMessage<'_>,
        out: &mut Output<'_>,
    ) -> Result<(), KafkaError> {
        let topic = message.topic();
        let partition = message.partition();
        let key: PartitionKey = (topic.to_owned(), partition);
        let aggregate = self
            .topics
            .aggregate_of_commands(topic)
            .unwrap_or("unknown");
        let positional = || {
            let name = format!("{topic}/{partition}/{}", message.offset());
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
        };
        let payload = message.payload().unwrap_or_default();
        let env = match Envelope::decode(message.headers(), payload) {
            Ok(env) => env,
            Err(e) => {
                let refusal = Refusal {
                    command_id: positional(),
                    command_type: "unknown".into(),
                    aggregate,
                    aggregate_id: None,
                    org_id: None,
                    rejection: Rejection::new(RejectionCode::Malformed, e.to_string()),
                };
                return self.refuse(message, key, refusal, None, out);
            }
        };
        let refusal = |rejection: Rejection, id: String| Refusal {
            command_id: id,
            command_type: env.ty.clone(),
            aggregate,
            aggregate_id: env.subject.clone(),
            org_id: env.org_id,
            rejection,
        };
        if env.id.parse::<uuid::Uuid>().is_err() {
            let rejection = Rejection::new(
                RejectionCode::Malformed,
                format!("ce_id {:?} is not a UUID; commands need UUID ids", env.id),
            );
            return self.refuse(
                message,
                key,
                refusal(rejection, positional()),
                Some(&env),
                out,
            );
        }
        if let Some(first) = self.first_outcome(&key, &env.id).cloned() {
            metrics::counter!("tributary_processor_duplicate_commands_total").increment(1);
            return out.outcome(partition, &first, env.org_id, Some(&env));
        }
        let Some(index) = self
            .handlers
            .iter()
            .position(|h| h.kind() == aggregate && h.accepts(&env.ty))
        else {
            let rejection = Rejection::new(
                RejectionCode::UnknownType,
                format!(
                    "{} is not a command of the {aggregate} aggregate (topic {topic})",
                    env.ty
                ),
            );
            return self.refuse(
                message,
                key,
                refusal(rejection, env.id.clone()),
                Some(&env),
                out,
            );
        };
        let data = match env.data_json() {
            Ok(data) => data,
            Err(e) => {
                let rejection = Rejection::new(
                    RejectionCode::Malformed,
                    format!("the data is not JSON: {e}"),
                );
                return self.refuse(
                    message,
                    key,
                    refusal(rejection, env.id.clone()),
                    Some(&env),
                    out,
                );
            }
        };
        if let Err(e) = schema::validate(&env.ty, &data) {
            let rejection = Rejection::new(RejectionCode::Invalid, e.to_string());
            return self.refuse(
                message,
                key,
                refusal(rejection, env.id.clone()),
                Some(&env),
                out,
            );
        }
        if let Some(time) = env.time {
            let age = (Utc::now() - time).to_std().unwrap_or_default();
            metrics::histogram!("tributary_command_queue_seconds", "aggregate" => aggregate.to_owned()).record(age);
        }
        match self.handlers[index].handle(
            partition,
            message.key().unwrap_or_default(),
            &env.ty,
            data,
        ) {
            Handled::Decided {
                aggregate_id,
                org_id,
                events,
                version,
                snapshot,
                follow_ups,
                completes,
            } => {
                let produced = events.len() as u32;
                for (ty, data, v) in events {
                    out.event(
                        aggregate,
                        partition,
                        &aggregate_id,
                        org_id,
                        ty,
                        data,
                        v,
                        &env,
                    )?;
                }
                if let Some(snapshot) = snapshot {
                    out.snapshot(aggregate, partition, &aggregate_id, snapshot, &env)?;
                }
                let handoff = if completes {
                    Handoff::SideEffect
                } else {
                    Handoff::Continue
                };
                for follow_up in &follow_ups {
                    out.follow_up(follow_up, &env, handoff)?;
                }
                if completes {
                    let outcome = CommandOutcome {
                        command_id: CommandId(env.id.parse().unwrap_or_default()),
                        command_type: env.ty.clone(),
                        status: OutcomeStatus::Accepted,
                        aggregate: aggregate.to_owned(),
                        aggregate_id: Some(aggregate_id),
                        aggregate_version: (version > 0).then_some(version),
                        events: produced,
                        code: None,
                        reason: None,
                    };
                    out.outcome(partition, &outcome, org_id, Some(&env))?;
                    self.staged.push((key, outcome));
                }
                metrics::counter!("tributary_commands_total", "aggregate" => aggregate.to_owned(), "status" => "accepted").increment(1);
                Ok(())
            }
            Handled::Rejected {
                aggregate_id,
                org_id,
                rejection,
            } => {
                let refusal = Refusal {
                    aggregate_id: aggregate_id.or(env.subject.clone()),
                    org_id: org_id.or(env.org_id),
                    ..refusal(rejection, env.id.clone())
                };
                self.refuse(message, key, refusal, Some(&env), out)
            }
        }
    }

    fn refuse(
        &mut self,
        message: &BorrowedMessage<'_>,
        key: PartitionKey,
        refusal: Refusal<'_>,
        env: Option<&Envelope>,
        out: &mut Output<'_>,
    ) -> Result<(), KafkaError> {
        let code = refusal.rejection.code;
        tracing::info!(
            command_id = %refusal.command_id,
            command_type = %refusal.command_type,
            code = code.as_str(),
            reason = %refusal.rejection.reason,
            "command rejected"
        );
        metrics::counter!("tributary_commands_total", "aggregate" => refusal.aggregate.to_owned(), "status" => "rejected").increment(1);
        if let Some(env) = env {
            for follow_up in &refusal.rejection.follow_ups {
                out.follow_up(follow_up, env, Handoff::SideEffect)?;
            }
        }
        let outcome = CommandOutcome {
            command_id: CommandId(refusal.command_id.parse().unwrap_or_default()),
            command_type: refusal.command_type,
            status: OutcomeStatus::Rejected,
            aggregate: refusal.aggregate.to_owned(),
            aggregate_id: refusal.aggregate_id,
            aggregate_version: None,
            events: 0,
            code: Some(code),
            reason: Some(refusal.rejection.reason.clone()),
        };
        out.outcome(message.partition(), &outcome, refusal.org_id, env)?;
        if code.is_dead_letter() {
            let now = Utc::now();
            let letter = DeadLetter {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                attempts: 1,
                first_failure: now,
                last_failure: now,
                error_class: code.as_str(),
                message: &refusal.rejection.reason,
                stage: "processor",
                org_id: refusal.org_id.map(|o| o.to_string()),
                command_id: Some(outcome.command_id.to_string()),
            };
            out.dead_letter(message, &letter)?;
            metrics::counter!("tributary_dead_letters_total", "stage" => "processor").increment(1);
        }
        self.staged.push((key, outcome));
        Ok(())
    }

    /// Loads the state and the de-duplication window of newly assigned partitions.
    fn assign(&mut self, reader: &ClientConfig, assigned: &[(String, i32)]) -> Result<(), Error> {
        let mut by_aggregate: HashMap<&str, Vec<i32>> = HashMap::new();
        for (topic, partition) in assigned {
            if let Some(aggregate) = self.topics.aggregate_of_commands(topic) {
                by_aggregate.entry(aggregate).or_default().push(*partition);
            }
        }
        for (aggregate, partitions) in &by_aggregate {
            let Some(handler) = self.handlers.iter_mut().find(|h| h.kind() == *aggregate) else {
                continue;
            };
            let mut failure = None;
            let loaded = read_to_end(reader, &self.topics.state(aggregate), partitions, |m| {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default());
                if let Err(e) = handler.load_snapshot(m.partition(), &key, m.payload()) {
                    failure.get_or_insert(e);
                }
            })?;
            if let Some(e) = failure {
                tracing::error!(aggregate, error = %e, "a snapshot could not be read; it is skipped");
            }
            tracing::info!(
                aggregate,
                ?partitions,
                snapshots = loaded,
                "aggregate state loaded"
            );
        }
        let mut all: Vec<i32> = by_aggregate.values().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        let mut outcomes = 0;
        read_to_end(reader, &self.topics.command_results(), &all, |m| {
            let Some(payload) = m.payload() else { return };
            let Ok(outcome) = serde_json::from_slice::<CommandOutcome>(payload) else {
                return;
            };
            let topic = self.topics.commands(&outcome.aggregate);
            let key = (topic, m.partition());
            if by_aggregate
                .get(outcome.aggregate.as_str())
                .is_some_and(|ps| ps.contains(&m.partition()))
            {
                outcomes += 1;
                self.dedupe
                    .entry(key)
                    .or_default()
                    .entry(outcome.command_id.to_string())
                    .or_insert(outcome);
            }
        })?;
        tracing::info!(outcomes, "command de-duplication window loaded");
        Ok(())
    }

    fn revoke(&mut self, revoked: &[(String, i32)]) {
        for (topic, partition) in revoked {
            if let Some(aggregate) = self.topics.aggregate_of_commands(topic)
                && let Some(handler) = self.handlers.iter_mut().find(|h| h.kind() == aggregate)
            {
                handler.drop_partition(*partition);
            }
            self.dedupe.remove(&(topic.clone(), *partition));
        }
        self.staged.clear();
    }
}

pub(crate) struct Ctx {
    shared: Arc<Mutex<Shared>>,
    reader: ClientConfig,
}

impl Ctx {
    pub(crate) fn new(shared: Arc<Mutex<Shared>>, reader: ClientConfig) -> Self {
        Self { shared, reader }
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        crate::client::report_client_error(error, reason);
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.rebalanced = true;
        let shared = &mut *shared;
        let on = |change: Rebalance<'_>| match change {
            Rebalance::Assign(tpl) => {
                let assigned = entries(tpl);
                tracing::info!(partitions = ?assigned, "partitions assigned; loading state");
                // Waits until offsets are stable: a previous owner's open transaction is
                // committed or aborted first, so the state read next is complete.
                if let Err(e) = consumer.committed_offsets(tpl.clone(), Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "committed offsets not stable yet");
                }
                if let Err(e) = shared.assign(&self.reader, &assigned) {
                    tracing::error!(error = %e, "loading state failed");
                    shared.fatal = Some(e);
                }
            }
            Rebalance::Revoke(tpl) => {
                let revoked = entries(tpl);
                tracing::info!(partitions = ?revoked, "partitions revoked");
                shared.revoke(&revoked);
            }
        };
        if let Err(e) = rebalance(consumer, err, tpl, on) {
            shared.fatal = Some(kafka("assigning partitions")(e));
        }
    }
}
