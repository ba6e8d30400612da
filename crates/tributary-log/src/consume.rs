//! What every consumer loop here shares: gathering a batch from a group consumer, and
//! the assign/revoke half of a rebalance callback.

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaRespErr;
use std::time::Duration;

/// Polls until `max` records or nothing more is waiting; the first poll waits up to
/// `wait`. After every poll `rebalanced` is asked whether the assignment changed: if so
/// the records gathered so far are dropped, since the new assignment starts again from
/// committed offsets. An `Err` from `rebalanced` ends the gathering with that error.
pub fn gather<'c, C: ConsumerContext, E>(
    consumer: &'c BaseConsumer<C>,
    wait: Duration,
    max: usize,
    mut rebalanced: impl FnMut() -> Result<bool, E>,
) -> Result<Vec<BorrowedMessage<'c>>, E> {
    let mut batch = Vec::new();
    let mut timeout = wait;
    while batch.len() < max {
        let polled = consumer.poll(timeout);
        if rebalanced()? {
            batch.clear();
        }
        match polled {
            None => break,
            Some(Ok(message)) => batch.push(message),
            // One partition reached its end; others may still have records queued, and
            // an empty poll ends the batch anyway.
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error");
                break;
            }
        }
        timeout = Duration::ZERO;
    }
    Ok(batch)
}

/// The `(topic, partition)` pairs of a list.
pub fn entries(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

/// The half of a rebalance a consumer acts on.
pub enum Rebalance<'a> {
    /// About to be assigned: set start offsets or load state in the list first.
    Assign(&'a mut TopicPartitionList),
    /// About to be given up.
    Revoke(&'a TopicPartitionList),
}

/// Serves a rebalance: `on` sees the change first, then the partitions are assigned or
/// unassigned. A failed unassign is only logged (the partitions are gone either way); a
/// failed assign is returned, since the consumer would sit idle.
pub fn rebalance<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    err: RDKafkaRespErr,
    tpl: &mut TopicPartitionList,
    on: impl FnOnce(Rebalance<'_>),
) -> KafkaResult<()> {
    match err {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
            on(Rebalance::Assign(tpl));
            consumer.assign(tpl)?;
        }
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
            on(Rebalance::Revoke(tpl));
            if let Err(e) = consumer.unassign() {
                tracing::warn!(error = %e, "unassign failed");
            }
        }
        other => tracing::error!(error = ?other, "rebalance error"),
    }
    Ok(())
}
