//! Starts the roles: the processor and projectors on threads of their own (their Kafka
//! and transaction calls block), the API on the async runtime.

use crate::settings::Settings;
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::producer::FutureProducer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::runtime::Handle;
use tributary_api::AppState;
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_log::processor::{Processor, ProcessorConfig, default_handlers};
use tributary_log::topics::TopicAdmin;
use tributary_runtime::supervise::supervise;
use tributary_runtime::{Projector, ProjectorConfig, Readiness};
use tributary_store::{Db, Projection};

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub processor: bool,
    pub projector: bool,
    pub keeper: bool,
    pub refresher: bool,
    /// Claims sync runs and drives their sources; also runs the monitor.
    pub worker: bool,
    /// Delivers document records to the targets.
    pub deliverer: bool,
    /// Requests scheduled runs.
    pub scheduler: bool,
}

impl Roles {
    /// Every role: what `tributary serve` runs.
    pub const ALL: Roles = Roles {
        api: true,
        processor: true,
        projector: true,
        keeper: true,
        refresher: true,
        worker: true,
        deliverer: true,
        scheduler: true,
    };
    /// Every role but the sync engine's (worker, deliverer, scheduler): for tests that
    /// drive those steps themselves.
    pub const CONTROL: Roles = Roles {
        worker: false,
        deliverer: false,
        scheduler: false,
        ..Roles::ALL
    };
    pub const NONE: Roles = Roles {
        api: false,
        processor: false,
        projector: false,
        keeper: false,
        refresher: false,
        worker: false,
        deliverer: false,
        scheduler: false,
    };
}

/// A started process; `shutdown` stops every role and waits for them.
pub struct Running {
    pub addr: Option<std::net::SocketAddr>,
    pub db: Db,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    server_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(tx) = self.server_stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }

    /// Resolves when the server stops (after `shutdown` or a failure).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }
}

/// Creates the topics (idempotent) and runs the migrations.
pub async fn setup(settings: &Settings) -> anyhow::Result<()> {
    let kafka = KafkaSettings::new(&settings.kafka_brokers);
    let admin = TopicAdmin::new(&kafka.base(), Topics::new(&settings.topic_prefix))?;
    admin
        .create(settings.partitions, settings.replication)
        .await
        .with_context(|| {
            format!(
                "creating topics on Kafka at {}; is it running? (scripts/infra up)",
                settings.kafka_brokers
            )
        })?;
    tributary_store::migrate(&settings.database_url)
        .await
        .context("running migrations; is Postgres running? (scripts/infra up)")?;
    Ok(())
}

pub async fn start(
    settings: &Settings,
    roles: Roles,
    metrics: Option<PrometheusHandle>,
) -> anyhow::Result<Running> {
    let kafka = KafkaSettings::new(&settings.kafka_brokers);
    let topics = Topics::new(&settings.topic_prefix);
    let db = tributary_store::connect(&settings.database_url, settings.db_pool)?;
    let stop = Arc::new(AtomicBool::new(false));
    let readiness = Readiness::default();
    let mut threads = Vec::new();
    let handle = Handle::current();

    if roles.processor {
        let config = ProcessorConfig {
            kafka: kafka.clone(),
            topics: topics.clone(),
            instance_id: settings.instance_id(),
            max_batch: settings.processor_batch,
        };
        let stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("processor".into())
                .spawn(move || {
                    supervise("processor", &stop, || {
                        let mut processor = Processor::new(config.clone(), default_handlers())?;
                        processor.run(&stop)
                    });
                })?,
        );
    }
    if roles.projector {
        for projection in Projection::ALL {
            // Projectors get a pool of their own: API requests waiting on outcomes must
            // never starve the writes they are waiting for.
            let config = ProjectorConfig {
                kafka: kafka.clone(),
                topics: topics.clone(),
                db: tributary_store::connect(&settings.database_url, 2)?,
                max_batch: settings.projector_batch,
            };
            let stop = stop.clone();
            let handle = handle.clone();
            let readiness = readiness.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("projector-{}", projection.name()))
                    .spawn(move || {
                        supervise(projection.name(), &stop, || {
                            let mut projector = Projector::new(
                                projection,
                                config.clone(),
                                handle.clone(),
                                readiness.clone(),
                            )?;
                            projector.run(&stop)
                        });
                    })?,
            );
        }
    }
    let ring = if roles.api || roles.keeper || roles.refresher || roles.worker || roles.deliverer {
        Some(Arc::new(settings.kek_ring()?))
    } else {
        None
    };
    let vault = ring
        .as_ref()
        .map(|ring| tributary_store::vault::Vault::new(db.clone(), ring.clone()));
    let mut tasks = Vec::new();
    if roles.keeper
        && let Some(vault) = &vault
    {
        let keeper = Arc::new(crate::keeper::Keeper {
            kafka: kafka.clone(),
            topics: topics.clone(),
            db: db.clone(),
            vault: vault.clone(),
        });
        tasks.push(tokio::spawn(keeper.run(stop.clone())));
    }
    if roles.refresher
        && let Some(vault) = &vault
    {
        let refresher = Arc::new(crate::refresher::Refresher {
            kafka: kafka.clone(),
            topics: topics.clone(),
            db: db.clone(),
            vault: vault.clone(),
            providers: settings.oauth_providers()?,
            http: tributary_oauth::http_client().context("building the OAuth HTTP client")?,
            policy: tributary_oauth::RefreshPolicy::new(),
            tick: std::time::Duration::from_secs(settings.refresh_tick_secs.max(1)),
        });
        tasks.push(tokio::spawn(refresher.run(stop.clone())));
    }
    let instance = settings.instance_id();
    if roles.worker
        && let Some(vault) = &vault
    {
        let worker = Arc::new(tributary_runtime::worker::Worker::new(
            tributary_runtime::worker::WorkerConfig {
                kafka: kafka.clone(),
                topics: topics.clone(),
                db: db.clone(),
                vault: vault.clone(),
                connectors: Arc::new(settings.connectors()),
                http: source_http()?,
                data_dir: settings.data_dir.clone(),
                worker_id: format!("worker:{instance}"),
                limits: settings.worker_limits()?,
                heartbeat: Duration::from_secs(settings.heartbeat_secs.max(1)),
                poll: Duration::from_secs(2),
            },
        )?);
        let notices = tributary_store::notify::listen(settings.database_url.clone());
        tasks.push(tokio::spawn(worker.run(stop.clone(), Some(notices))));
        let monitor = Arc::new(tributary_runtime::monitor::Monitor::new(
            tributary_runtime::monitor::MonitorConfig {
                kafka: kafka.clone(),
                topics: topics.clone(),
                db: db.clone(),
                heartbeat_timeout: Duration::from_secs(settings.heartbeat_timeout_secs.max(1)),
                stall_after: Duration::from_secs(settings.stall_after_secs.max(1)),
                tick: Duration::from_secs(5),
            },
        )?);
        tasks.push(tokio::spawn(monitor.run(stop.clone())));
    }
    if roles.deliverer
        && let Some(vault) = &vault
    {
        let (kafka, topics, db, vault) = (kafka.clone(), topics.clone(), db.clone(), vault.clone());
        let (http, data_dir) = (source_http()?, settings.data_dir.clone());
        let (instance, batch, retries) = (
            instance.clone(),
            settings.deliverer_batch.max(1),
            settings.deliverer_retries,
        );
        let config = move || tributary_runtime::deliverer::DelivererConfig {
            kafka: kafka.clone(),
            topics: topics.clone(),
            db: db.clone(),
            vault: vault.clone(),
            http: http.clone(),
            data_dir: data_dir.clone(),
            instance_id: instance.clone(),
            batch,
            retries,
            delays: tributary_runtime::deliverer::DEFAULT_DELAYS.to_vec(),
        };
        tasks.push(tokio::spawn(tributary_runtime::deliverer::run(
            config,
            stop.clone(),
        )));
    }
    if roles.scheduler {
        let scheduler = Arc::new(tributary_runtime::scheduler::Scheduler::new(
            &kafka,
            topics.clone(),
            db.clone(),
            Duration::from_secs(5),
        )?);
        tasks.push(tokio::spawn(scheduler.run(stop.clone())));
    }
    let (mut addr, mut server, mut server_stop) = (None, None, None);
    if roles.api
        && let Some(vault) = vault
    {
        let producer: FutureProducer = kafka.producer().create()?;
        let probe: Option<tributary_api::ReadinessProbe> = roles.projector.then(|| {
            let readiness = readiness.clone();
            Arc::new(move || readiness.behind()) as tributary_api::ReadinessProbe
        });
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| {
                format!(
                    "listening on {}; is another process using it? set TRIBUTARY_LISTEN",
                    settings.listen
                )
            })?;
        addr = Some(listener.local_addr()?);
        let state = AppState {
            producer,
            topics: topics.clone(),
            db: db.clone(),
            metrics,
            readiness: probe,
            max_wait_secs: settings.max_wait_secs,
            identity: Arc::new(identity(settings)?),
            waiters: tributary_api::waiters::Waiters::start(
                db.clone(),
                tributary_store::notify::listen(settings.database_url.clone()),
            ),
            oauth: Arc::new(tributary_api::oauth::OAuth {
                providers: settings.oauth_providers()?,
                signer: tributary_oauth::StateSigner::new(
                    *ring
                        .as_ref()
                        .context("the API role has a key ring")?
                        .derive("oauth-state"),
                ),
                public_url: match &settings.public_url {
                    Some(_) => settings.public_url()?,
                    None => {
                        tributary_oauth::Url::parse(&format!("http://{}", listener.local_addr()?))?
                    }
                },
                http: tributary_oauth::http_client().context("building the OAuth HTTP client")?,
            }),
            vault,
            connectors: Arc::new(settings.connectors()),
            destinations: Arc::new(tributary_destinations::Destinations::builtin()),
            data_dir: settings.data_dir.clone(),
            http: reqwest::Client::builder()
                .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .context("building the HTTP client")?,
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        server_stop = Some(tx);
        let app = tributary_api::router(state);
        server = Some(tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        }));
    }
    Ok(Running {
        addr,
        db,
        stop,
        threads,
        tasks,
        server,
        server_stop,
    })
}

/// The HTTP client sources and sinks share: our user agent, bounded waits.
fn source_http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
}

/// Access-token keys from the settings, or a random key for this process (with a
/// warning: tokens then neither survive a restart nor verify on another API process).
fn identity(settings: &Settings) -> anyhow::Result<tributary_api::auth::Identity> {
    let audience = format!("{}-api", settings.jwt_issuer);
    let keys = match settings.jwt_keys.as_deref() {
        Some(spec) => {
            tributary_auth::jwt::KeyRing::from_spec(spec, &settings.jwt_issuer, &audience)
                .context("TRIBUTARY_JWT_KEYS is not valid")?
        }
        None => {
            tracing::warn!(
                "TRIBUTARY_JWT_KEYS is not set: signing access tokens with a random key for this process only; set it for more than one API process"
            );
            tributary_auth::jwt::KeyRing::generate(&settings.jwt_issuer, &audience)
        }
    };
    Ok(tributary_api::auth::Identity::new(
        keys,
        std::time::Duration::from_secs(settings.access_ttl_secs),
        std::time::Duration::from_secs(settings.refresh_ttl_secs),
    ))
}
