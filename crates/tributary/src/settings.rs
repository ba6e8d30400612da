//! Every setting comes from a flag or a `TRIBUTARY_*` environment variable, with
//! defaults that match `scripts/infra`.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "TRIBUTARY_KAFKA_BROKERS",
        default_value = "127.0.0.1:19092",
        global = true
    )]
    pub kafka_brokers: String,
    /// Postgres URL.
    #[arg(
        long,
        env = "TRIBUTARY_DATABASE_URL",
        default_value = "postgres://tributary:tributary@127.0.0.1:15432/tributary",
        global = true
    )]
    pub database_url: String,
    /// Prefix of every topic and consumer group of this installation.
    #[arg(
        long,
        env = "TRIBUTARY_TOPIC_PREFIX",
        default_value = "tributary",
        global = true
    )]
    pub topic_prefix: String,
    /// Partitions per topic when creating topics (the bound on parallelism).
    #[arg(long, env = "TRIBUTARY_PARTITIONS", default_value_t = 6, global = true)]
    pub partitions: i32,
    /// Replication factor when creating topics.
    #[arg(
        long,
        env = "TRIBUTARY_REPLICATION",
        default_value_t = 1,
        global = true
    )]
    pub replication: i32,
    /// Address the HTTP API listens on.
    #[arg(
        long,
        env = "TRIBUTARY_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,
    /// Stable id of this process; the processor's transactional id derives from it, so
    /// a restart with the same id aborts the old incarnation's open transaction at once.
    /// Defaults to a random id.
    #[arg(long, env = "TRIBUTARY_INSTANCE_ID", global = true)]
    pub instance_id: Option<String>,
    /// Commands per processor transaction.
    #[arg(
        long,
        env = "TRIBUTARY_PROCESSOR_BATCH",
        default_value_t = 500,
        global = true
    )]
    pub processor_batch: usize,
    /// Records per projection transaction.
    #[arg(
        long,
        env = "TRIBUTARY_PROJECTOR_BATCH",
        default_value_t = 2000,
        global = true
    )]
    pub projector_batch: usize,
    /// Postgres connections in the pool.
    #[arg(long, env = "TRIBUTARY_DB_POOL", default_value_t = 16, global = true)]
    pub db_pool: usize,
    /// The longest `Prefer: wait` the API honours, in seconds.
    #[arg(long, env = "TRIBUTARY_MAX_WAIT", default_value_t = 30, global = true)]
    pub max_wait_secs: u64,
    /// Log format: `text` or `json`.
    #[arg(
        long,
        env = "TRIBUTARY_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,
}

impl Settings {
    pub fn instance_id(&self) -> String {
        self.instance_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string())
    }
}
