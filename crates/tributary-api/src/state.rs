use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::producer::FutureProducer;
use std::sync::Arc;
use tributary_log::Topics;
use tributary_store::Db;

/// Reports which projections in this process still have records waiting.
pub type ReadinessProbe = Arc<dyn Fn() -> Vec<&'static str> + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub producer: FutureProducer,
    pub topics: Topics,
    pub db: Db,
    pub metrics: Option<PrometheusHandle>,
    pub readiness: Option<ReadinessProbe>,
    /// Token keys, lifetimes and the login throttle.
    pub identity: Arc<crate::auth::Identity>,
    /// Requests waiting for the read model.
    pub waiters: Arc<crate::waiters::Waiters>,
    /// The longest `Prefer: wait` honoured, in seconds.
    pub max_wait_secs: u64,
    /// Seals and opens secret fields.
    pub vault: tributary_store::vault::Vault,
    /// For credential checks against their sources.
    pub http: reqwest::Client,
    /// OAuth providers, state signing, redirect address.
    pub oauth: Arc<crate::oauth::OAuth>,
    /// The connector kinds profiles may use (`GET /connectors`).
    pub connectors: Arc<tributary_connectors::source::Connectors>,
    /// The destination kinds targets may use (`GET /destinations`).
    pub destinations: Arc<tributary_destinations::Destinations>,
    /// Where file-based destinations write relative paths (`TRIBUTARY_DATA_DIR`).
    pub data_dir: std::path::PathBuf,
}

impl AppState {
    /// Runs `read` in a tenant transaction: row-level security shows only the member's
    /// org (and, for a person, their own memberships).
    pub async fn read_as<T>(
        &self,
        member: &crate::auth::Member,
        read: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> tributary_store::Result<T>,
    ) -> crate::problem::ApiResult<T> {
        let mut client = self.db.get().await.map_err(tributary_store::Error::from)?;
        let tx = tributary_store::tenant::begin(&mut client, member.scope()).await?;
        let value = read(&tx).await?;
        // Read-only: ending it either way is the same; commit is the cheaper message.
        tx.commit()
            .await
            .map_err(|source| tributary_store::Error::Postgres {
                action: "ending a tenant transaction",
                source,
            })?;
        Ok(value)
    }
}
