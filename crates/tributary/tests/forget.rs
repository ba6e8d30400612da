//! Personal data under per-user keys, and forgetting a user, against the real Kafka and
//! Postgres: addresses, names and password hashes never reach a topic in plaintext;
//! forgetting (by the user, with the password, or by an operator's CLI) removes the user
//! from every org, releases the address and destroys the user's key, so what the log
//! holds of them is unreadable for good; a rebuild after that shows them as forgotten.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tributary::Roles;
use tributary_log::client::KafkaSettings;
use tributary_store::Projection;
use tributary_store::vault::Vault;
use tributary_testkit::{Http, TestEnv};
use tributary_vault::{KekRing, KeyScope};

const ADA: (&str, &str, &str) = (
    "ada@lovelace.example",
    "Ada Lovelace",
    "ada's long engine passphrase",
);
const BOB: (&str, &str, &str) = (
    "bob@builder.example",
    "Bob Builderson",
    "bob's long hammer passphrase",
);
const CAROL: (&str, &str, &str) = (
    "carol@kings.example",
    "Carol Kingsley",
    "carol's long tapestry passphrase",
);

fn cli(env: &TestEnv, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env("TRIBUTARY_KAFKA_BROKERS", &env.settings.kafka_brokers)
        .env("TRIBUTARY_DATABASE_URL", &env.settings.database_url)
        .env("TRIBUTARY_TOPIC_PREFIX", &env.prefix)
        .env(
            "TRIBUTARY_KEK",
            env.settings.kek.as_deref().unwrap_or_default(),
        )
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

async fn invite_and_join(
    admin: &Http,
    anonymous: &Http,
    org: &str,
    (email, name, password): (&str, &str, &str),
) -> (Http, String) {
    let (status, invitation) = admin
        .send(
            Method::POST,
            &format!("/api/v1/orgs/{org}/invitations"),
            Some(json!({ "email": email, "role": "member" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    assert_eq!(invitation["email"], email);
    let (status, session) = anonymous
        .send(
            Method::POST,
            "/api/v1/auth/signup",
            Some(json!({
                "email": email, "password": password, "name": name,
                "invitation": { "id": invitation["id"], "token": invitation["token"] },
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let user = session["user_id"].as_str().unwrap().to_owned();
    (
        anonymous
            .with_token(session["access_token"].as_str().unwrap())
            .unwrap(),
        user,
    )
}

async fn login(anonymous: &Http, (email, _, password): (&str, &str, &str)) -> StatusCode {
    anonymous
        .send(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "email": email, "password": password })),
        )
        .await
        .0
}

async fn forget(who: &Http, password: &str) -> (StatusCode, Value) {
    let body = json!({ "password": password });
    who.send(Method::POST, "/api/v1/auth/forget-me", Some(body))
        .await
}

async fn members(admin: &Http, org: &str) -> Vec<Value> {
    let (status, members) = admin
        .send(Method::GET, &format!("/api/v1/orgs/{org}/members"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{members}");
    members.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_sealed_per_user_and_forgetting_shreds_it() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let anonymous = Http::new(&app);
    let (status, session) = anonymous
        .send(
            Method::POST,
            "/api/v1/auth/signup",
            Some(json!({
                "email": ADA.0, "password": ADA.2, "name": ADA.1,
                "org": { "slug": "engines", "name": "Analytical Engines" },
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let org = session["org_id"].as_str().unwrap().to_owned();
    let ada_id = session["user_id"].as_str().unwrap().to_owned();
    let ada = anonymous.with_token(session["access_token"].as_str().unwrap())?;
    let (bob, bob_id) = invite_and_join(&ada, &anonymous, &org, BOB).await;
    let (_, carol_id) = invite_and_join(&ada, &anonymous, &org, CAROL).await;

    // Answers open the sealed values: the members list shows addresses and names.
    let listed = members(&ada, &org).await;
    let bob_row = listed
        .iter()
        .find(|m| m["user_id"] == bob_id.as_str())
        .unwrap();
    assert_eq!(
        (bob_row["email"].as_str(), bob_row["name"].as_str()),
        (Some(BOB.0), Some(BOB.1))
    );
    let (status, invitations) = ada
        .send(
            Method::GET,
            &format!("/api/v1/orgs/{org}/invitations"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        invitations
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["email"] == BOB.0),
        "{invitations}"
    );

    // The log never held them in plaintext: every record, key and header of every topic.
    let wrong = anonymous
        .send(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "email": BOB.0, "password": "not bob's password" })),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    let needles: Vec<&str> = [ADA, BOB, CAROL]
        .iter()
        .flat_map(|(email, name, password)| [*email, *name, *password])
        .chain(["$argon2id$", "lovelace.example"])
        .collect();
    let consumer: rdkafka::consumer::BaseConsumer = KafkaSettings::new(&env.settings.kafka_brokers)
        .consumer("forget-scan")
        .create()?;
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(10))?;
    let mut scanned = 0;
    for topic in metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|n| n.starts_with(&format!("{}.", env.prefix)))
    {
        for record in env.read_all(&topic)? {
            scanned += 1;
            let mut bytes = record.payload.clone().unwrap_or_default();
            bytes.extend(record.key.clone().unwrap_or_default().into_bytes());
            for (name, value) in &record.headers {
                bytes.extend(name.as_bytes());
                bytes.extend(value.clone().unwrap_or_default().into_bytes());
            }
            let text = String::from_utf8_lossy(&bytes);
            for needle in &needles {
                assert!(
                    !text.contains(needle),
                    "{needle:?} in plaintext on {topic}: {text}"
                );
            }
        }
    }
    assert!(scanned > 30, "only {scanned} records scanned");

    // Forgetting needs the user's own password, and never leaves an org without an admin.
    let (status, problem) = forget(&bob, "not bob's password").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, problem) = forget(&ada, ADA.2).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("last admin of engines"),
        "{problem}"
    );
    assert_eq!(login(&anonymous, ADA).await, StatusCode::OK);

    // Bob forgets himself: out of the org, no login, the key destroyed, the address free.
    let (status, body) = forget(&bob, BOB.2).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(login(&anonymous, BOB).await, StatusCode::UNAUTHORIZED);
    let listed = members(&ada, &org).await;
    assert!(
        listed.iter().all(|m| m["user_id"] != bob_id.as_str()),
        "{listed:?}"
    );
    let db = tributary_store::connect(&env.settings.database_url, 2)?;
    let ring = Arc::new(KekRing::parse(env.settings.kek.as_deref().unwrap())?);
    let vault = Vault::new(db.clone(), ring);
    let bob_uuid: uuid::Uuid = bob_id.parse()?;
    assert!(vault.is_shredded(KeyScope::User(bob_uuid)).await?);
    // What the log holds of him cannot be opened any more.
    let registered = env
        .read_all(&env.topics().events("user"))?
        .into_iter()
        .map(|r| r.json())
        .find(|e| e["user_id"] == bob_id.as_str() && e.get("password_hash").is_some())
        .expect("bob's user.registered");
    let sealed = registered["email"].as_str().unwrap();
    let gone = vault
        .open(KeyScope::User(bob_uuid), &bob_id, "email", sealed)
        .await
        .unwrap_err();
    assert!(gone.is_shredded(), "{gone}");
    let forgotten = env
        .read_all(&env.topics().events("user"))?
        .into_iter()
        .filter(|r| r.header("ce_type") == Some("tributary.user.forgotten.v1"))
        .count();
    assert_eq!(forgotten, 1);
    // The keeper relays the shredding to the vault topic.
    env.eventually(20, "the shredding on the vault topic", || async {
        let shredded = env
            .read_all(&format!("{}.vault.events", env.prefix))?
            .into_iter()
            .any(|r| {
                r.header("ce_type") == Some("tributary.vault.shredded.v1")
                    && r.json()["scope_id"] == bob_id.as_str()
            });
        Ok(shredded.then_some(()))
    })
    .await?;
    // The address can sign up again, as somebody new.
    let (status, again) = anonymous
        .send(
            Method::POST,
            "/api/v1/auth/signup",
            Some(json!({
                "email": BOB.0, "password": BOB.2, "name": "Bob Again",
                "org": { "slug": "bobs", "name": "Bob's" },
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["user_id"], bob_id.as_str());

    // An operator forgets Carol with the CLI.
    let (ok, out) = cli(&env, &["users", "forget", &carol_id])?;
    assert!(ok && out.contains("is forgotten"), "{out}");
    assert_eq!(login(&anonymous, CAROL).await, StatusCode::UNAUTHORIZED);
    let (ok, out) = cli(&env, &["users", "forget", &ada_id])?;
    assert!(!ok && out.contains("last admin"), "{out}");

    // A rebuild from the log shows both as forgotten, without failing.
    let (kafka, topics) = (env.kafka(), env.topics());
    let handle = tokio::runtime::Handle::current();
    let rebuild_db = db.clone();
    tokio::task::spawn_blocking(move || {
        tributary_runtime::rebuild(
            Projection::Identity,
            &kafka,
            &topics,
            &rebuild_db,
            &handle,
            500,
        )
    })
    .await??;
    let client = env.pg().await?;
    let rows = client
        .query(
            "SELECT id, email IS NULL, name IS NULL, forgotten_at IS NOT NULL FROM users ORDER BY created_at",
            &[],
        )
        .await?;
    let state: Vec<(String, bool, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, uuid::Uuid>(0).to_string(),
                r.get(1),
                r.get(2),
                r.get(3),
            )
        })
        .collect();
    for (id, no_email, no_name, forgotten) in &state {
        let expect = *id == bob_id || *id == carol_id;
        assert_eq!(
            (*no_email, *no_name, *forgotten),
            (expect, expect, expect),
            "{state:?}"
        );
    }
    assert_eq!(state.len(), 4, "{state:?}");
    assert_eq!(login(&anonymous, ADA).await, StatusCode::OK);
    let listed = members(&ada, &org).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    app.shutdown().await;
    Ok(())
}
