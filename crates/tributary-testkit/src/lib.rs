//! Test helpers: every test gets its own topic prefix and its own database, so tests
//! run in parallel against the one Kafka and Postgres that `scripts/infra` starts.

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::time::Duration;
use tributary::{Roles, Running, Settings};
use tributary_log::client::KafkaSettings;
use tributary_log::{Envelope, Topics};

pub const PARTITIONS: i32 = 3;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Logs only when `TEST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(env_or(
                "RUST_LOG", "info",
            )))
            .with_test_writer()
            .try_init();
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: keeping topics {}.* and database {} (scripts/infra sweep removes them)",
                self.prefix, self.database
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.settings.data_dir);
        let (prefix, database, kafka) = (self.prefix.clone(), self.database.clone(), self.kafka());
        // Drop cannot await, and the test's runtime may be single-threaded: clean
        // up on a thread of its own.
        let cleaned = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(Self::clean_up(prefix, database, kafka)))
        })
        .join();
        if let Ok(Err(e)) = cleaned {
            eprintln!("cleaning up after the test: {e:#}");
        }
    }
}

/// One test's world: a topic prefix, a database, and settings pointing at both.
pub struct TestEnv {
    pub settings: Settings,
    pub prefix: String,
    pub database: String,
}

impl TestEnv {
    /// Creates the database and the topics, and runs the migrations.
    pub async fn new() -> anyhow::Result<Self> {
        init_logging();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let suffix = &id[id.len() - 12..];
        let prefix = format!("t{suffix}");
        let database = format!("t_{suffix}");
        let admin_url = env_or(
            "TRIBUTARY_DATABASE_URL",
            "postgres://tributary:tributary@127.0.0.1:15432/tributary",
        );
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .context("connecting to Postgres; run scripts/infra up")?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let settings = Settings {
            kafka_brokers: env_or("TRIBUTARY_KAFKA_BROKERS", "127.0.0.1:19092"),
            database_url: format!("{base}/{database}"),
            topic_prefix: prefix.clone(),
            partitions: PARTITIONS,
            replication: 1,
            listen: "127.0.0.1:0".into(),
            instance_id: None,
            processor_batch: 200,
            projector_batch: 500,
            db_pool: 8,
            max_wait_secs: 30,
            log_format: "text".into(),
            jwt_keys: None,
            jwt_issuer: "tributary".into(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 3600,
            kek: Some(tributary_vault::KekRing::generate_entry("test-kek")?),
            kek_file: None,
            oauth_providers: None,
            public_url: None,
            refresh_tick_secs: 1,
            // Per test, so CSV targets of parallel tests never share a file.
            data_dir: std::env::temp_dir().join(format!("tributary-{prefix}")),
            // Tests read temporary directories and run fake Airbyte sources; the
            // limits themselves are tested on their own.
            filesystem_roots: "*".into(),
            airbyte_commands: "*".into(),
            worker_slots: 4,
            runs_per_org: 4,
            runs_per_kind: String::new(),
            heartbeat_secs: 10,
            heartbeat_timeout_secs: 60,
            stall_after_secs: 1800,
            deliverer_batch: 200,
            deliverer_retries: 6,
        };
        tributary::app::setup(&settings).await?;
        Ok(Self {
            settings,
            prefix,
            database,
        })
    }

    pub fn topics(&self) -> Topics {
        Topics::new(&self.prefix)
    }

    /// Deletes this test's topics and drops its database. A broker that keeps
    /// thousands of old test partitions takes minutes to start, so every test
    /// cleans up after itself; a failed test keeps its data for inspection
    /// (`scripts/infra sweep` removes such leftovers).
    async fn clean_up(
        prefix: String,
        database: String,
        kafka: KafkaSettings,
    ) -> anyhow::Result<()> {
        use rdkafka::admin::{AdminClient, AdminOptions};
        let admin: AdminClient<_> = kafka.base().create()?;
        let metadata = admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))?;
        let ours: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|name| name.starts_with(&format!("{prefix}.")))
            .collect();
        if !ours.is_empty() {
            let names: Vec<&str> = ours.iter().map(String::as_str).collect();
            admin.delete_topics(&names, &AdminOptions::new()).await?;
        }
        let admin_url = env_or(
            "TRIBUTARY_DATABASE_URL",
            "postgres://tributary:tributary@127.0.0.1:15432/tributary",
        );
        let (client, connection) =
            tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .await?;
        Ok(())
    }

    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings::new(&self.settings.kafka_brokers)
    }

    pub async fn start(&self, roles: Roles) -> anyhow::Result<Running> {
        tributary::start(&self.settings, roles, None).await
    }

    /// A plain client to this test's database.
    pub async fn pg(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) =
            tokio_postgres::connect(&self.settings.database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Creates a plain topic under this test's prefix (for baselines and scratch data).
    pub async fn scratch_topic(&self, name: &str, partitions: i32) -> anyhow::Result<String> {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let topic = format!("{}.{name}", self.prefix);
        let admin: AdminClient<_> = self.kafka().base().create()?;
        let results = admin
            .create_topics(
                &[NewTopic::new(
                    &topic,
                    partitions,
                    TopicReplication::Fixed(1),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await?;
        for result in results {
            result.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
        }
        Ok(topic)
    }

    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        Ok(self.kafka().producer().create()?)
    }

    /// Produces a raw record, as an upstream system would.
    pub async fn produce(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: Option<rdkafka::message::OwnedHeaders>,
    ) -> anyhow::Result<()> {
        let producer = self.producer()?;
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("produce failed: {e}"))?;
        Ok(())
    }

    /// Produces a command envelope to an aggregate's command topic.
    pub async fn command(&self, aggregate: &str, key: &str, env: &Envelope) -> anyhow::Result<()> {
        self.produce(
            &self.topics().commands(aggregate),
            key,
            &env.data,
            Some(env.encode_headers()),
        )
        .await
    }

    /// Every committed record of a topic, read to its current end.
    pub fn read_all(&self, topic: &str) -> anyhow::Result<Vec<Record>> {
        let consumer: BaseConsumer<tributary_log::client::Quiet> = self
            .kafka()
            .reader()
            .create_with_context(tributary_log::client::Quiet)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut open: HashSet<i32> = (0..PARTITIONS).collect();
        let mut records = Vec::new();
        while !open.is_empty() {
            match consumer.poll(Duration::from_secs(5)) {
                None => anyhow::bail!("reading {topic} timed out"),
                Some(Ok(m)) => records.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: m.payload().map(<[u8]>::to_vec),
                    headers: m
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| {
                                    (
                                        h.key.to_owned(),
                                        h.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => return Err(e.into()),
            }
        }
        Ok(records)
    }

    /// Polls `check` until it returns `Some`, or fails after `secs`.
    pub async fn eventually<T, F, Fut>(
        &self,
        secs: u64,
        what: &str,
        mut check: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(value) = check().await? {
                return Ok(value);
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("timed out after {secs}s waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<String>)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn json(&self) -> serde_json::Value {
        self.payload
            .as_deref()
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// An HTTP client for a running app.
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(running: &Running) -> Self {
        let addr = running.addr.expect("the API role is running");
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs up a user who founds org `slug`; returns a client that sends the user's
    /// access token with every request, and the sign-up answer (tokens, org id).
    pub async fn signed_up(
        running: &Running,
        email: &str,
        slug: &str,
    ) -> anyhow::Result<(Self, serde_json::Value)> {
        let anonymous = Self::new(running);
        let response = anonymous
            .client
            .post(anonymous.url("/api/v1/auth/signup"))
            .json(&serde_json::json!({
                "email": email,
                "password": "a long test passphrase 123",
                "name": "Test User",
                "org": { "slug": slug, "name": format!("Org {slug}") },
            }))
            .send()
            .await?;
        let status = response.status();
        let session: serde_json::Value = response.json().await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "sign-up failed: {status} {session}"
        );
        let token = session["access_token"].as_str().unwrap_or_default();
        Ok((anonymous.with_token(token)?, session))
    }

    /// Logs in a user made by [`Http::signed_up`] (on this server or an earlier one of
    /// the same test); a client that sends their new access token.
    pub async fn logged_in(running: &Running, email: &str) -> anyhow::Result<Self> {
        let anonymous = Self::new(running);
        let (status, session) = anonymous
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                Some(
                    serde_json::json!({ "email": email, "password": "a long test passphrase 123" }),
                ),
            )
            .await;
        anyhow::ensure!(
            status == reqwest::StatusCode::OK,
            "login failed: {status} {session}"
        );
        anonymous.with_token(session["access_token"].as_str().unwrap_or_default())
    }

    /// Sends a request (with a JSON body, if given); the status and the answer as JSON,
    /// or as a JSON string when it is not JSON.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, body)
    }

    /// The same server, sending `Authorization: Bearer <token>` on every request.
    pub fn with_token(&self, token: &str) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
        Ok(Self {
            base: self.base.clone(),
            // A redirect (OAuth start) is an answer to check, not to follow.
            client: reqwest::Client::builder()
                .default_headers(headers)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

impl TestEnv {
    /// Starts `tributary <role>` as a separate process (so a test can SIGKILL it).
    pub fn spawn(
        &self,
        bin: &str,
        role: &str,
        instance: &str,
    ) -> anyhow::Result<std::process::Child> {
        self.spawn_with(bin, role, instance, &[])
    }

    /// [`TestEnv::spawn`] with more `TRIBUTARY_*` settings; the data directory is this
    /// test's.
    pub fn spawn_with(
        &self,
        bin: &str,
        role: &str,
        instance: &str,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<std::process::Child> {
        let log = std::env::var_os("TEST_LOG").is_some();
        let child = std::process::Command::new(bin)
            .arg(role)
            .envs(settings.iter().copied())
            .env("TRIBUTARY_DATA_DIR", &self.settings.data_dir)
            .env("TRIBUTARY_KAFKA_BROKERS", &self.settings.kafka_brokers)
            .env("TRIBUTARY_DATABASE_URL", &self.settings.database_url)
            .env("TRIBUTARY_TOPIC_PREFIX", &self.prefix)
            .env(
                "TRIBUTARY_KEK",
                self.settings.kek.as_deref().unwrap_or_default(),
            )
            .env("TRIBUTARY_INSTANCE_ID", instance)
            .env(
                "TRIBUTARY_FILESYSTEM_ROOTS",
                &self.settings.filesystem_roots,
            )
            .env(
                "TRIBUTARY_AIRBYTE_COMMANDS",
                &self.settings.airbyte_commands,
            )
            .env("TRIBUTARY_PROCESSOR_BATCH", "100")
            .env("TRIBUTARY_PROJECTOR_BATCH", "100")
            .env("RUST_LOG", if log { "info" } else { "warn" })
            .stdout(std::process::Stdio::null())
            .stderr(if log {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            })
            .spawn()?;
        Ok(child)
    }

    /// Produces `n` org creations straight to the slug command topic; returns their ids.
    pub async fn create_orgs(&self, n: usize, tag: &str) -> anyhow::Result<Vec<String>> {
        let producer = self.producer()?;
        let topic = self.topics().commands("slug");
        let mut ids = Vec::with_capacity(n);
        let mut pending = Vec::with_capacity(n);
        for i in 0..n {
            let slug = format!("{tag}-{i}");
            let data = serde_json::json!({ "org_id": uuid::Uuid::now_v7(), "slug": slug, "name": format!("Org {i}") });
            let env = Envelope::json("/tests", "tributary.org.create.v1", &data)?;
            ids.push(env.id.clone());
            let producer = producer.clone();
            let topic = topic.clone();
            pending.push(async move {
                producer
                    .send(
                        FutureRecord::to(&topic)
                            .key(&slug)
                            .payload(&env.data)
                            .headers(env.encode_headers()),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| anyhow::anyhow!("produce failed: {e}"))
            });
        }
        for result in futures::future::join_all(pending).await {
            result?;
        }
        Ok(ids)
    }
}

/// Runs the repository's `scripts/infra` with `args` (e.g. `restart postgres 3`): the
/// services the tests use are the ones it manages.
pub fn infra(args: &[&str]) -> anyhow::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/infra");
    let output = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("running {script}"))?;
    anyhow::ensure!(
        output.status.success(),
        "scripts/infra {} failed (does scripts/infra manage the services under test?):\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// SIGKILL: no chance to clean up, like a crash.
pub fn kill_hard(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg("-9")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}
