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
}
