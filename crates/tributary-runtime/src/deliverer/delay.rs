//! Delay topics: partitions of a delay topic whose next record is not due yet are
//! paused (the consumer keeps polling the others, so it stays in its group) and
//! rewound to that record, which is read again once it is due.
//!
//! A delay topic holds records in the order they were delayed, all for the same delay,
//! so the first record of a partition that is not due means none after it is: one
//! pause per partition, no timer per record.

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::Duration;

/// How long each delay topic holds a record, by default: half a minute, five minutes,
/// half an hour. A target that is down for longer than about 36 minutes (with the
/// in-place retries) turns its records into dead letters, to be redriven once fixed.
pub const DEFAULT_DELAYS: [Duration; 3] = [
    Duration::from_secs(30),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
];

/// Partitions held back until their next record is due: `(topic, partition)` → (the
/// offset to read again, when).
#[derive(Debug, Default)]
pub(super) struct Held {
    partitions: HashMap<(String, i32), (i64, DateTime<Utc>)>,
}

impl Held {
    pub(super) fn get(&self, topic: &str, partition: i32) -> Option<(i64, DateTime<Utc>)> {
        self.partitions.get(&(topic.to_owned(), partition)).copied()
    }

    /// Pauses the partition and rewinds it to `offset`. Were the rewind to fail, the
    /// partition's position would be past a record nobody answered for: the error ends
    /// the step, and the deliverer starts again from its committed offsets.
    pub(super) fn hold(
        &mut self,
        consumer: &BaseConsumer,
        topic: &str,
        partition: i32,
        offset: i64,
        due: DateTime<Utc>,
    ) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        consumer.pause(&tpl)?;
        consumer.seek(
            topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(5),
        )?;
        self.partitions
            .insert((topic.to_owned(), partition), (offset, due));
        Ok(())
    }

    /// Resumes the partitions whose record is due. A partition this consumer lost in a
    /// rebalance meanwhile is simply forgotten: its new owner reads it from the
    /// committed offset and holds it itself.
    pub(super) fn resume_due(&mut self, consumer: &BaseConsumer, now: DateTime<Utc>) {
        let due: Vec<(String, i32)> = self
            .partitions
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(tp, _)| tp.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in &due {
            tpl.add_partition(topic, *partition);
            self.partitions.remove(&(topic.clone(), *partition));
        }
        if let Err(e) = consumer.resume(&tpl) {
            tracing::debug!(error = %e, "resuming delay partitions (some may have moved to another deliverer)");
        }
    }

    pub(super) fn len(&self) -> usize {
        self.partitions.len()
    }
}

/// When a record delayed now at `level` (1-based) may be tried again: the level's
/// delay, or the target's `Retry-After` if that asks for longer.
pub(super) fn due_at(
    now: DateTime<Utc>,
    delay: Duration,
    retry_after: Option<Duration>,
) -> DateTime<Utc> {
    let wait = delay.max(retry_after.unwrap_or_default());
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_retry_after_wins_over_the_level_delay() {
        let now = Utc::now();
        let delay = Duration::from_secs(30);
        assert_eq!(
            due_at(now, delay, None),
            now + chrono::Duration::seconds(30)
        );
        assert_eq!(
            due_at(now, delay, Some(Duration::from_secs(5))),
            now + chrono::Duration::seconds(30)
        );
        assert_eq!(
            due_at(now, delay, Some(Duration::from_secs(120))),
            now + chrono::Duration::seconds(120)
        );
    }

    #[test]
    fn the_default_delays_grow_and_fill_every_level() {
        assert_eq!(
            DEFAULT_DELAYS.len(),
            usize::from(tributary_log::topics::RETRY_LEVELS)
        );
        assert!(DEFAULT_DELAYS.windows(2).all(|w| w[0] < w[1]));
    }
}
