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
    /// Access-token signing keys: `kid:secret[,kid:secret...]`, each secret base64url of
    /// at least 32 random bytes. The first key signs; every key listed verifies, so to
    /// rotate put a new key first and drop the old one once its tokens have expired
    /// (after the access-token lifetime). Unset: a random key per process, fine for a
    /// demo on one machine, wrong for several API processes (tokens would not verify
    /// across them) and every restart logs everyone out.
    #[arg(
        long,
        env = "TRIBUTARY_JWT_KEYS",
        global = true,
        hide_env_values = true
    )]
    pub jwt_keys: Option<String>,
    /// The `iss` and `aud` of access tokens.
    #[arg(
        long,
        env = "TRIBUTARY_JWT_ISSUER",
        default_value = "tributary",
        global = true
    )]
    pub jwt_issuer: String,
    /// Access-token lifetime in seconds.
    #[arg(
        long,
        env = "TRIBUTARY_ACCESS_TTL",
        default_value_t = 900,
        global = true
    )]
    pub access_ttl_secs: u64,
    /// Refresh-token lifetime in seconds (each refresh starts it again).
    #[arg(
        long,
        env = "TRIBUTARY_REFRESH_TTL",
        default_value_t = 30 * 24 * 3600,
        global = true
    )]
    pub refresh_ttl_secs: u64,
    /// Key-encryption keys that wrap the vault's data keys: `id:BASE64[,id:BASE64...]`,
    /// each 32 random bytes (`tributary keys generate-kek`). The first wraps new data
    /// keys; every one listed unwraps, so to rotate put a new key first, run
    /// `tributary keys rotate-kek`, then drop the old one. Or use TRIBUTARY_KEK_FILE.
    #[arg(long, env = "TRIBUTARY_KEK", global = true, hide_env_values = true)]
    pub kek: Option<String>,
    /// A file holding the key-encryption keys (same format, one per line allowed).
    #[arg(long, env = "TRIBUTARY_KEK_FILE", global = true)]
    pub kek_file: Option<std::path::PathBuf>,
    /// OAuth providers, a JSON object: `{"github": {"client_id": "...", "client_secret":
    /// "..."}, ...}`. Built-in names (github, google, slack, atlassian, notion, microsoft)
    /// fill in endpoints and scopes; any other name is a custom provider that gives
    /// `authorize_url` and `token_url` too. Unset: no OAuth.
    #[arg(
        long,
        env = "TRIBUTARY_OAUTH_PROVIDERS",
        global = true,
        hide_env_values = true
    )]
    pub oauth_providers: Option<String>,
    /// The API's address as browsers reach it; OAuth providers redirect to
    /// `<public url>/api/v1/oauth/<provider>/callback`. Default: `http://<listen>`.
    #[arg(long, env = "TRIBUTARY_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// How often the refresher looks for OAuth tokens to renew, in seconds.
    #[arg(
        long,
        env = "TRIBUTARY_REFRESH_TICK",
        default_value_t = 30,
        global = true
    )]
    pub refresh_tick_secs: u64,
    /// Where file-based destinations (the CSV target) write when a target's path is
    /// relative, and where checks of such targets try their path. Relative to the
    /// working directory unless absolute; created when first written to.
    #[arg(
        long,
        env = "TRIBUTARY_DATA_DIR",
        default_value = "data",
        global = true
    )]
    pub data_dir: std::path::PathBuf,
    /// Directories `filesystem` profiles may read, comma-separated; `*` allows any
    /// directory the server can read. Empty (the default) refuses filesystem profiles:
    /// curators of every org configure profiles, and the server's own files are not theirs.
    #[arg(
        long,
        env = "TRIBUTARY_FILESYSTEM_ROOTS",
        default_value = "",
        global = true
    )]
    pub filesystem_roots: String,
    /// Commands `airbyte` profiles may run, comma-separated: an exact command line
    /// (`/opt/venvs/faker/bin/source-faker`, or `python3 /opt/src/main.py`), or a
    /// directory ending in `/` whose programs may run; `*` allows any. Empty (the
    /// default) refuses airbyte profiles, which would otherwise run any program a
    /// curator names.
    #[arg(
        long,
        env = "TRIBUTARY_AIRBYTE_COMMANDS",
        default_value = "",
        global = true
    )]
    pub airbyte_commands: String,
    /// Sync runs one worker process drives at once.
    #[arg(
        long,
        env = "TRIBUTARY_WORKER_SLOTS",
        default_value_t = 4,
        global = true
    )]
    pub worker_slots: usize,
    /// Sync runs of one org running at once, across every worker.
    #[arg(
        long,
        env = "TRIBUTARY_RUNS_PER_ORG",
        default_value_t = 4,
        global = true
    )]
    pub runs_per_org: usize,
    /// Sync runs of a connector kind running at once, across every worker and org:
    /// `kind=n[,kind=n...]`, e.g. `web=2,airbyte=1`. Kinds not named are not limited.
    #[arg(
        long,
        env = "TRIBUTARY_RUNS_PER_KIND",
        default_value = "",
        global = true
    )]
    pub runs_per_kind: String,
    /// Seconds between a worker's heartbeats for each run it holds.
    #[arg(
        long,
        env = "TRIBUTARY_HEARTBEAT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub heartbeat_secs: u64,
    /// Seconds without a heartbeat after which a run is interrupted and resumed by
    /// another worker (heartbeats are recorded at most every 10 s, so keep it above 20).
    #[arg(
        long,
        env = "TRIBUTARY_HEARTBEAT_TIMEOUT",
        default_value_t = 60,
        global = true
    )]
    pub heartbeat_timeout_secs: u64,
    /// Seconds without progress (documents from the source, answers from the targets)
    /// after which a run is flagged as stalled.
    #[arg(
        long,
        env = "TRIBUTARY_STALL_AFTER",
        default_value_t = 1800,
        global = true
    )]
    pub stall_after_secs: u64,
    /// Document records per deliverer transaction (at most; a poll gathers what
    /// arrives within 200 ms).
    #[arg(
        long,
        env = "TRIBUTARY_DELIVERER_BATCH",
        default_value_t = 2000,
        global = true
    )]
    pub deliverer_batch: usize,
    /// In-place retries of a transient delivery failure before it moves on (to a delay
    /// topic, and in the end to the dead letters).
    #[arg(
        long,
        env = "TRIBUTARY_DELIVERER_RETRIES",
        default_value_t = 6,
        global = true
    )]
    pub deliverer_retries: usize,
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
    /// The OAuth providers from the settings (none when unset).
    pub fn oauth_providers(&self) -> anyhow::Result<tributary_oauth::Providers> {
        tributary_oauth::Providers::from_config(self.oauth_providers.as_deref().unwrap_or("{}"))
            .map_err(|e| anyhow::anyhow!("TRIBUTARY_OAUTH_PROVIDERS is not valid: {e}"))
    }

    /// Where browsers reach the API.
    pub fn public_url(&self) -> anyhow::Result<tributary_oauth::Url> {
        let raw = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        tributary_oauth::Url::parse(&raw).map_err(|e| {
            anyhow::anyhow!("TRIBUTARY_PUBLIC_URL {raw:?} is not a URL ({e}); e.g. https://tributary.example.com")
        })
    }

    /// The key-encryption keys, or a clear error saying how to configure them.
    pub fn kek_ring(&self) -> anyhow::Result<tributary_vault::KekRing> {
        tributary_vault::KekRing::from_config(self.kek.as_deref(), self.kek_file.as_deref())
            .map_err(|e| anyhow::anyhow!("the vault's key-encryption key is not usable: {e}"))
    }

    /// The connector kinds, limited to what TRIBUTARY_FILESYSTEM_ROOTS and
    /// TRIBUTARY_AIRBYTE_COMMANDS allow.
    pub fn connectors(&self) -> tributary_connectors::source::Connectors {
        tributary_connectors::source::Connectors::builtin().with_access(
            tributary_connectors::source::access::LocalAccess::from_settings(
                &self.filesystem_roots,
                &self.airbyte_commands,
            ),
        )
    }

    /// The worker's run limits, or a clear error about TRIBUTARY_RUNS_PER_KIND.
    pub fn worker_limits(&self) -> anyhow::Result<tributary_runtime::worker::Limits> {
        let per_kind = tributary_runtime::worker::Limits::parse_per_kind(&self.runs_per_kind)
            .map_err(|e| anyhow::anyhow!("TRIBUTARY_RUNS_PER_KIND is not valid: {e}"))?;
        anyhow::ensure!(
            self.worker_slots > 0 && self.runs_per_org > 0,
            "TRIBUTARY_WORKER_SLOTS and TRIBUTARY_RUNS_PER_ORG must be at least 1"
        );
        Ok(tributary_runtime::worker::Limits {
            slots: self.worker_slots,
            per_org: self.runs_per_org,
            per_kind,
        })
    }

    pub fn instance_id(&self) -> String {
        self.instance_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string())
    }
}
