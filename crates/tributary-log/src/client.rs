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
