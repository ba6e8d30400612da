//! The credential vault end to end, against a `tributary serve` process whose logs are
//! kept: create, list, test, rotate (failing and passing), reveal, audit (API and log
//! replay), data-key rotation with background re-encryption, KEK rotation, org deletion
//! with crypto-shredding, and a rebuild afterwards. Then every record and header of
//! every topic, and the process's logs, are scanned for the secrets: zero hits.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::get;
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tributary_log::client::KafkaSettings;
use tributary_store::Projection;
use tributary_store::vault::Vault;
use tributary_testkit::{Http, TestEnv};
use tributary_vault::{KekRing, KeyScope};

const FIRST: &str = "ghp_FirstSecretToken0123456789abcdefXYZ1";
const WRONG: &str = "ghp_RejectedByGitHub0123456789abcdefXYZ2";
const SECOND: &str = "ghp_SecondSecretToken123456789abcdefXYZ3";
const PASSWORD: &str = "a long test passphrase 123";
/// Sent in plaintext by a careless upstream producer, straight to Kafka.
const UPSTREAM: &str = "ghp_UpstreamPlaintextToken456789abcXYZ4";

/// A GitHub API stand-in: `GET /user` answers 200 with a login for a valid token and
/// 401 with GitHub's body otherwise, like api.github.com.
async fn fake_github(valid: Arc<Mutex<HashSet<String>>>) -> anyhow::Result<String> {
    async fn user(
        State(valid): State<Arc<Mutex<HashSet<String>>>>,
        headers: HeaderMap,
    ) -> (AxumStatus, axum::Json<Value>) {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        if valid.lock().unwrap().contains(&token) {
            (
                AxumStatus::OK,
                axum::Json(json!({ "login": "octocat", "id": 1 })),
            )
        } else {
            (
                AxumStatus::UNAUTHORIZED,
                axum::Json(
                    json!({ "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401" }),
                ),
            )
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/user", get(user))
        .with_state(valid);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

async fn send(
    http: &Http,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    http.send(method, path, body).await
}

/// Starts `tributary serve` with its logs (at debug level) going to a file.
fn serve(env: &TestEnv, log: &std::path::Path) -> anyhow::Result<(std::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("serve")
        .env("TRIBUTARY_KAFKA_BROKERS", &env.settings.kafka_brokers)
        .env("TRIBUTARY_DATABASE_URL", &env.settings.database_url)
        .env("TRIBUTARY_TOPIC_PREFIX", &env.prefix)
        .env("TRIBUTARY_PARTITIONS", tributary_testkit::PARTITIONS.to_string())
        .env("TRIBUTARY_KEK", env.settings.kek.as_deref().unwrap_or_default())
        .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "debug,librdkafka=info,rdkafka=info,tokio_postgres=info,hyper=info,h2=info,reqwest=info")
        .stdout(std::fs::File::create(log.with_extension("out"))?)
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

/// Runs the `tributary` binary against this test's installation; its stdout.
fn cli(env: &TestEnv, kek: Option<&str>, args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env("TRIBUTARY_KAFKA_BROKERS", &env.settings.kafka_brokers)
        .env("TRIBUTARY_DATABASE_URL", &env.settings.database_url)
        .env("TRIBUTARY_TOPIC_PREFIX", &env.prefix)
        .env(
            "TRIBUTARY_KEK",
            kek.or(env.settings.kek.as_deref()).unwrap_or_default(),
        )
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "tributary {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client
            .get(format!("{base}/api/v1/openapi.json"))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("tributary serve did not answer within 30 s")
}

async fn signed_up(base: &str) -> anyhow::Result<(Http, Value)> {
    let anonymous = Http {
        base: base.to_owned(),
        client: reqwest::Client::new(),
    };
    let (status, session) = send(
        &anonymous,
        Method::POST,
        "/api/v1/auth/signup",
        Some(json!({
            "email": "admin@example.com", "password": PASSWORD, "name": "Ada Admin",
            "org": { "slug": "vaulted", "name": "Vaulted" },
        })),
    )
    .await;
    anyhow::ensure!(status == StatusCode::CREATED, "sign-up: {status} {session}");
    Ok((
        anonymous.with_token(session["access_token"].as_str().unwrap())?,
        session,
    ))
}

/// Every secret this test used, as it must never appear anywhere.
const SECRETS: [&str; 4] = [FIRST, WRONG, SECOND, UPSTREAM];

fn hits(haystack: &[u8]) -> Vec<&'static str> {
    SECRETS
        .into_iter()
        .filter(|s| haystack.windows(s.len()).any(|w| w == s.as_bytes()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_stay_encrypted_audited_and_shreddable() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let logs = std::env::temp_dir().join(format!("{}-serve.log", env.prefix));
    let (mut child, base) = serve(&env, &logs)?;
    let result = flow(&env, &base).await;
    tributary_testkit::kill_hard(&mut child);
    result?;

    // The secret scan: every record and header of every topic of this installation,
    // and everything the process logged.
    let kafka = KafkaSettings::new(&env.settings.kafka_brokers);
    let consumer: rdkafka::consumer::BaseConsumer = kafka.reader().create()?;
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(10))?;
    let topics: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|n| n.starts_with(&format!("{}.", env.prefix)))
        .collect();
    let dead = env.read_all(&format!("{}.dead-letters", env.prefix))?;
    assert!(
        dead.len() >= 2,
        "the upstream records were dead-lettered: {}",
        dead.len()
    );
    let mut scanned = 0;
    for topic in &topics {
        for record in env.read_all(topic)? {
            // What the careless upstream producer wrote itself is its own doing; what
            // Tributary wrote because of it (outcomes, dead letters) is scanned below.
            if topic.ends_with(".commands") && record.header("ce_source") == Some("/upstream") {
                continue;
            }
            scanned += 1;
            let mut bytes = record.payload.clone().unwrap_or_default();
            bytes.extend(record.key.clone().unwrap_or_default().into_bytes());
            for (name, value) in &record.headers {
                bytes.extend(name.as_bytes());
                bytes.extend(value.clone().unwrap_or_default().into_bytes());
            }
            assert!(
                hits(&bytes).is_empty(),
                "a secret in {topic}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    assert!(scanned > 50, "only {scanned} records scanned");
    let log = std::fs::read(&logs)?;
    assert!(log.len() > 1000, "the process logged almost nothing");
    assert_eq!(
        hits(&log),
        Vec::<&str>::new(),
        "a secret in the process log"
    );
    let _ = std::fs::remove_file(&logs);
    let _ = std::fs::remove_file(logs.with_extension("out"));
    Ok(())
}

async fn flow(env: &TestEnv, base: &str) -> anyhow::Result<()> {
    wait_ready(base).await?;
    let valid = Arc::new(Mutex::new(HashSet::from([FIRST.to_owned()])));
    let github = fake_github(valid.clone()).await?;
    let (admin, session) = signed_up(base).await?;
    let org: uuid::Uuid = session["org_id"].as_str().unwrap().parse()?;
    let admin_actor = format!("user:{}", session["user_id"].as_str().unwrap());

    // Bad input: an unknown kind, a missing secret, a wrong type; never echoing values.
    let (status, problem) = send(
        &admin,
        Method::POST,
        "/api/v1/credentials",
        Some(json!({ "kind": "nope", "name": "x", "values": {} })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("github_token"),
        "{problem}"
    );
    let (status, problem) = send(&admin, Method::POST, "/api/v1/credentials",
        Some(json!({ "kind": "github_token", "name": "x", "values": { "token": 5, "base_url": github } }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    // An upstream system producing a credential command with a plaintext secret, and a
    // record that is not even JSON: both are refused and dead-lettered, without the secret.
    let upstream = json!({
        "credential_id": uuid::Uuid::now_v7(), "org_id": org, "kind": "github_token",
        "name": "upstream", "actor": "system:upstream", "at": Utc::now(),
        "secrets": { "token": { "sealed": UPSTREAM, "mask": "x" } },
    });
    let mut env_upstream =
        tributary_log::Envelope::json("/upstream", "tributary.credential.create.v1", &upstream)?;
    env_upstream.org_id = Some(tributary_domain::OrgId(org));
    let key = upstream["credential_id"].as_str().unwrap().to_owned();
    env.command("credential", &key, &env_upstream).await?;
    let mut garbage = env_upstream.clone();
    garbage.id = uuid::Uuid::now_v7().to_string();
    garbage.data = format!("{{not json {UPSTREAM}").into_bytes();
    env.command("credential", &key, &garbage).await?;

    // Create: the answer shows a mask, never the token.
    let (status, created) = send(&admin, Method::POST, "/api/v1/credentials",
        Some(json!({ "kind": "github_token", "name": "GitHub", "values": { "token": FIRST, "base_url": github } }))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(hits(created.to_string().as_bytes()).is_empty());
    let id = created["id"].as_str().unwrap().to_owned();
    let mask = created["secrets"]["token"]["mask"].as_str().unwrap();
    assert!(mask.ends_with("XYZ1") && mask.starts_with('•'), "{mask}");
    assert_eq!(created["secrets"]["token"]["key_version"], 1);
    assert_eq!(created["config"]["base_url"], github.as_str());

    let (status, list) = send(&admin, Method::GET, "/api/v1/credentials", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(hits(list.to_string().as_bytes()).is_empty());

    // Test: GitHub accepts the token.
    let (status, tested) = send(
        &admin,
        Method::POST,
        &format!("/api/v1/credentials/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["result"]["ok"], true, "{tested}");
    assert_eq!(tested["credential"]["last_test"]["identity"], "octocat");

    // A rotation to a token GitHub rejects stays pending; the old one stays in use.
    let rotate = format!("/api/v1/credentials/{id}/rotate");
    let (status, rotated) = send(
        &admin,
        Method::POST,
        &rotate,
        Some(json!({ "values": { "token": WRONG } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["active"], false, "{rotated}");
    assert_eq!(rotated["test"]["status"], "unauthorized", "{rotated}");
    assert_eq!(rotated["credential"]["version"], 1);
    assert_eq!(rotated["credential"]["pending_version"], 2);
    let (status, canceled) = send(
        &admin,
        Method::POST,
        &format!("{rotate}/cancel"),
        Some(json!({ "version": 2 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert!(canceled["pending_version"].is_null());

    // A rotation to a token GitHub accepts takes over after its test.
    valid.lock().unwrap().insert(SECOND.to_owned());
    let (status, rotated) = send(
        &admin,
        Method::POST,
        &rotate,
        Some(json!({ "values": { "token": SECOND } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["active"], true, "{rotated}");
    assert_eq!(rotated["version"], 3, "canceled version 2 is not reused");
    assert!(
        rotated["credential"]["secrets"]["token"]["mask"]
            .as_str()
            .unwrap()
            .ends_with("XYZ3")
    );

    // Reveal: a wrong password is refused; the right one answers the plaintext once.
    let reveal = format!("/api/v1/credentials/{id}/reveal");
    let (status, _) = send(
        &admin,
        Method::POST,
        &reveal,
        Some(json!({ "password": "not my password at all" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = admin
        .client
        .post(admin.url(&reveal))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let revealed: Value = response.json().await?;
    assert_eq!(revealed["values"]["token"], SECOND);

    // The audit: who did what, through the API and by replaying the log alone.
    let (status, audit) = send(
        &admin,
        Method::GET,
        &format!("/api/v1/audit?credential={id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "credential.created",
        "credential.tested",
        "credential.rotation_started",
        "credential.rotation_canceled",
        "credential.rotated",
        "credential.revealed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let (_, reveals) = send(
        &admin,
        Method::GET,
        &format!("/api/v1/audit?action=credential.revealed&actor={admin_actor}"),
        None,
    )
    .await;
    let reveals = reveals["items"].as_array().unwrap();
    assert_eq!(reveals.len(), 1, "{reveals:?}");
    assert_eq!(reveals[0]["detail"]["client"], "127.0.0.1");
    assert_eq!(reveals[0]["detail"]["fields"], json!(["token"]));
    let kafka = KafkaSettings::new(&env.settings.kafka_brokers);
    let topics = env.topics();
    let query = tributary::audit::Query {
        org,
        credential: Some(id.parse()?),
        ..Default::default()
    };
    let replayed = tokio::task::spawn_blocking({
        let (kafka, topics, query) = (kafka.clone(), topics.clone(), query.clone());
        move || tributary::audit::replay(&kafka, &topics, &query)
    })
    .await??;
    let replayed_actions: Vec<&str> = replayed.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        replayed_actions, actions,
        "the log and the read model tell the same story"
    );
    // The same through the command line.
    let audited = cli(
        env,
        None,
        &[
            "audit",
            "--org",
            &org.to_string(),
            "--credential",
            &id,
            "--json",
        ],
    )?;
    let cli_actions: Vec<String> = audited
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| v["action"].as_str().unwrap_or_default().to_owned())
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(cli_actions, actions, "tributary audit: {audited}");

    // Data-key rotation: new secrets use version 2 at once, the keeper moves the old.
    let (status, report) = send(
        &admin,
        Method::POST,
        "/api/v1/security/encryption/rotate",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["data_keys"][0]["version"], 2);
    env.eventually(30, "re-encryption under data key 2", || async {
        let (_, report) = send(&admin, Method::GET, "/api/v1/security/encryption", None).await;
        Ok(
            (report["awaiting_reencryption"] == 0 && report["data_keys"][0]["secrets"] == 1)
                .then_some(()),
        )
    })
    .await?;
    let (_, credential) = send(
        &admin,
        Method::GET,
        &format!("/api/v1/credentials/{id}"),
        None,
    )
    .await;
    assert_eq!(
        credential["secrets"]["token"]["key_version"], 2,
        "{credential}"
    );
    let (status, revealed) = send(
        &admin,
        Method::POST,
        &reveal,
        Some(json!({ "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        revealed["values"]["token"], SECOND,
        "re-encrypted, not changed"
    );

    // KEK rotation: with a new KEK first, every data key is re-wrapped; afterwards the
    // new KEK alone opens the secrets.
    let old = env.settings.kek.clone().unwrap();
    let new = KekRing::generate_entry("kek-2")?;
    let db = tributary_store::connect(&env.settings.database_url, 2)?;
    let both = Vault::new(
        db.clone(),
        Arc::new(KekRing::parse(&format!("{new},{old}"))?),
    );
    let rotated = cli(env, Some(&format!("{new},{old}")), &["keys", "rotate-kek"])?;
    assert!(rotated.contains("re-wrapped"), "{rotated}");
    let rewrapped = both.keys_per_kek().await?[0].1 as u64;
    assert!(rewrapped >= 2, "{rewrapped}");
    let status = cli(env, Some(&format!("{new},{old}")), &["keys", "status"])?;
    assert!(
        status.contains("primary KEK: kek-2") && !status.contains("test-kek"),
        "{status}"
    );
    assert_eq!(
        both.keys_per_kek().await?,
        vec![("kek-2".to_owned(), rewrapped as i64)]
    );
    let only_new = Vault::new(db.clone(), Arc::new(KekRing::parse(&new)?));
    let client = db.get().await?;
    let sealed: String = client
        .query_one(
            "SELECT sealed FROM credential_secrets WHERE credential_id = $1",
            &[&id.parse::<uuid::Uuid>()?],
        )
        .await?
        .get(0);
    let plain = only_new
        .open(KeyScope::Org(org), &id, "token", &sealed)
        .await?;
    assert_eq!(plain.as_slice(), SECOND.as_bytes());
    // Moved to another record or field, the ciphertext does not open.
    assert!(
        only_new
            .open(KeyScope::Org(org), &id, "other", &sealed)
            .await
            .is_err()
    );

    // Deleting the org shreds its keys: its ciphertext in the log is gone for good.
    let (status, body) = send(&admin, Method::DELETE, &format!("/api/v1/orgs/{org}"), None).await;
    assert!(status.is_success(), "{status} {body}");
    env.eventually(30, "the org's keys shredded", || async {
        Ok(both.is_shredded(KeyScope::Org(org)).await?.then_some(()))
    })
    .await?;
    let gone = only_new
        .open(KeyScope::Org(org), &id, "token", &sealed)
        .await
        .unwrap_err();
    assert!(gone.is_shredded(), "{gone}");

    // A full rebuild after the shredding shows the values as shredded, without failing.
    for projection in [Projection::Credentials, Projection::Audit] {
        let (kafka, topics, db) = (kafka.clone(), topics.clone(), db.clone());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            tributary_runtime::rebuild(projection, &kafka, &topics, &db, &handle, 500)
        })
        .await??;
    }
    let rows = client
        .query(
            "SELECT shredded FROM credential_secrets WHERE org_id = $1",
            &[&org],
        )
        .await?;
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.get::<_, bool>(0)),
        "{rows:?}"
    );
    let shredded = client
        .query(
            "SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'vault.shredded'",
            &[&org],
        )
        .await?;
    assert_eq!(shredded[0].get::<_, i64>(0), 1);
    Ok(())
}
