//! Reads whole partitions outside any consumer group: state topics on assignment,
//! command results for de-duplication, and the projection rebuild.

use crate::error::{Result, kafka};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashSet;
use std::time::Duration;

/// Calls `f` for every committed record of the given partitions of one topic, from the
/// beginning to the current end (the last stable offset, since reads are
/// `read_committed`).
pub fn read_to_end(
    config: &ClientConfig,
    topic: &str,
    partitions: &[i32],
    mut f: impl FnMut(&BorrowedMessage<'_>),
) -> Result<u64> {
    if partitions.is_empty() {
        return Ok(0);
    }
    let consumer: BaseConsumer<crate::client::Quiet> = config
        .create_with_context(crate::client::Quiet)
        .map_err(kafka("creating a reader"))?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(kafka("preparing a reader assignment"))?;
    }
    consumer.assign(&tpl).map_err(kafka("assigning a reader"))?;
    let mut open: HashSet<i32> = partitions.iter().copied().collect();
    let mut count = 0;
    while !open.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(message)) => {
                count += 1;
                f(&message);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(kafka("reading a partition")(e)),
        }
    }
    Ok(count)
}
