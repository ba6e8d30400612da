//! librdkafka settings shared by every role, so a producer here partitions exactly like
//! the Java clients upstream systems use.

use rdkafka::ClientConfig;

/// Connection settings every client needs.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
        }
    }

    pub fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            // Fail fast and say so instead of retrying silently forever.
            .set("socket.connection.setup.timeout.ms", "10000")
            .set("log_level", "4");
        config
    }

    /// An idempotent producer that partitions by key like the Java client (murmur2), so
    /// commands produced by upstream systems and by Tributary land on the same partition.
    pub fn producer(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            .set("compression.type", "lz4")
            .set("message.max.bytes", "10485760");
        config
    }

    /// A consumer that sees only committed transactions and never commits by itself.
    pub fn consumer(&self, group: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "20")
            .set("enable.partition.eof", "true");
        config
    }

    /// A consumer outside any group, for reading a partition from a given offset.
    pub fn reader(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", "tributary-reader")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20")
            .set("enable.partition.eof", "true");
        config
    }
}

/// Leaves the consumer group before the consumer is dropped: unsubscribes and polls
/// until the revocation has been served. Served here, the rebalance callback runs in
/// an ordinary poll; served inside librdkafka's close, an `unassign` from the callback
/// can wait forever.
pub fn leave_group<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
) {
    use rdkafka::consumer::Consumer;
    consumer.unsubscribe();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let _ = consumer.poll(std::time::Duration::from_millis(50));
        if consumer.assignment().map_or(true, |a| a.count() == 0) {
            break;
        }
    }
}

/// How every Tributary client reports librdkafka's global errors. A partition's end,
/// which we ask to be told about, is not an error worth a log line.
pub fn report_client_error(error: rdkafka::error::KafkaError, reason: &str) {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    if matches!(
        error,
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
    ) {
        tracing::trace!(reason, "end of partition");
    } else {
        tracing::error!(error = %error, reason, "Kafka client error");
    }
}

/// A consumer context that only reports errors, through [`report_client_error`].
pub struct Quiet;

impl rdkafka::ClientContext for Quiet {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        report_client_error(error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}
