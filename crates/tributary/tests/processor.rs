//! The processor against the real broker: bad input is answered and dead-lettered
//! without stopping the partition, repeated command ids get their first outcome, and
//! every record the system writes matches its JSON Schema.

use rdkafka::message::{Header, OwnedHeaders};
use serde_json::json;
use std::collections::HashMap;
use tributary::Roles;
use tributary_domain::schema;
use tributary_domain::{OrgId, org, slug};
use tributary_log::Envelope;
use tributary_testkit::{Record, TestEnv};

fn command(ty: &str, data: serde_json::Value) -> Envelope {
    Envelope::json("/tests", ty, &data).unwrap()
}

fn header(key: &'static str, value: &'static str) -> Header<'static, &'static str> {
    Header {
        key,
        value: Some(value),
    }
}

async fn outcomes(env: &TestEnv, expected: usize) -> anyhow::Result<Vec<Record>> {
    let topic = env.topics().command_results();
    env.eventually(30, "command outcomes", || async {
        let records = env.read_all(&topic)?;
        Ok((records.len() >= expected).then_some(records))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_are_rejected_dead_lettered_and_do_not_block_the_partition()
-> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let topics = env.topics();
    let app = env
        .start(Roles {
            processor: true,
            ..Roles::NONE
        })
        .await?;
    let key = "same-key";
    let org_topic = topics.commands("org");
    // 1. Not a CloudEvent at all.
    env.produce(&org_topic, key, b"{not json", None).await?;
    // 2. A CloudEvent whose data is not JSON.
    let mut not_json = command(org::RENAME, json!({}));
    not_json.data = b"\x00\x01garbage".to_vec();
    env.command("org", key, &not_json).await?;
    // 3. An unknown type.
    env.command("org", key, &command("tributary.org.explode.v1", json!({})))
        .await?;
    // 4. A schema violation.
    env.command(
        "org",
        key,
        &command(org::RENAME, json!({ "org_id": "nope" })),
    )
    .await?;
    // 5. A rename of an org that does not exist.
    let missing = OrgId::new();
    env.command(
        "org",
        &missing.to_string(),
        &command(org::RENAME, json!({ "org_id": missing, "name": "X" })),
    )
    .await?;
    // 5b. A command under a key that is not its aggregate's id (so possibly on the wrong
    // partition): refused before anything is decided.
    env.command(
        "org",
        key,
        &command(org::RENAME, json!({ "org_id": OrgId::new(), "name": "Y" })),
    )
    .await?;
    // 6. A ce_id that is no UUID.
    let headers = OwnedHeaders::new()
        .insert(header("ce_specversion", "1.0"))
        .insert(header("ce_id", "not-a-uuid"))
        .insert(header("ce_source", "/tests"))
        .insert(header("ce_type", org::DELETE));
    env.produce(&org_topic, key, b"{}", Some(headers)).await?;
    // 7. After all that, a good command on the same key is still handled.
    let org_id = OrgId::new();
    let good = command(
        slug::CREATE_ORG,
        json!({ "org_id": org_id, "slug": "fine", "name": "Fine" }),
    );
    env.command("slug", "fine", &good).await?;

    let results = outcomes(&env, 8).await?;
    let by_code: HashMap<String, usize> = results.iter().fold(HashMap::new(), |mut m, r| {
        let code = r.json()["code"].as_str().unwrap_or("accepted").to_owned();
        *m.entry(code).or_default() += 1;
        m
    });
    assert_eq!(by_code.get("malformed"), Some(&3), "{by_code:?}");
    assert_eq!(by_code.get("unknown_type"), Some(&1), "{by_code:?}");
    assert_eq!(by_code.get("invalid"), Some(&2), "{by_code:?}");
    assert_eq!(by_code.get("not_found"), Some(&1), "{by_code:?}");
    assert_eq!(by_code.get("accepted"), Some(&1), "{by_code:?}");
    for r in &results {
        let outcome = r.json();
        if outcome["status"] == "rejected" {
            assert!(
                !outcome["reason"].as_str().unwrap_or_default().is_empty(),
                "{outcome}"
            );
        }
    }
    let invalid: Vec<serde_json::Value> = results
        .iter()
        .map(|r| r.json())
        .filter(|o| o["code"] == "invalid")
        .collect();
    assert!(
        invalid.iter().any(|o| o["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("record key")),
        "{invalid:?}"
    );
    let schema_violation = invalid
        .iter()
        .find(|o| {
            !o["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("record key")
        })
        .unwrap()
        .clone();
    assert!(
        schema_violation["reason"]
            .as_str()
            .unwrap()
            .contains("/org_id"),
        "{schema_violation}"
    );

    // Everything not understood is in the dead-letter topic with its context; a
    // well-formed command that was merely refused (not found) is not.
    let letters = env.read_all(&topics.dead_letters())?;
    assert_eq!(letters.len(), 6, "{letters:#?}");
    for letter in &letters {
        assert_eq!(
            letter.header("dlq_original_topic"),
            Some(org_topic.as_str())
        );
        assert_eq!(letter.header("dlq_stage"), Some("processor"));
        assert!(letter.header("dlq_original_offset").is_some());
        assert!(
            letter
                .header("dlq_error_message")
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(letter.key.as_deref(), Some(key));
    }
    assert!(
        letters
            .iter()
            .any(|l| l.payload.as_deref() == Some(b"{not json".as_slice()))
    );
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_command_id_gets_its_first_outcome_again() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env
        .start(Roles {
            processor: true,
            ..Roles::NONE
        })
        .await?;
    let org_id = OrgId::new();
    let create = command(
        slug::CREATE_ORG,
        json!({ "org_id": org_id, "slug": "twice", "name": "Twice" }),
    );
    env.command("slug", "twice", &create).await?;
    let first = outcomes(&env, 1).await?;
    env.command("slug", "twice", &create).await?;
    let rename = command(org::RENAME, json!({ "org_id": org_id, "name": "Renamed" }));
    let key = org_id.to_string();
    env.command("org", &key, &rename).await?;
    env.command("org", &key, &rename).await?;
    let all = outcomes(&env, 4).await?;
    assert_eq!(all.len(), 4);
    let create_outcomes: Vec<_> = all
        .iter()
        .filter(|r| r.key.as_deref() == Some(create.id.as_str()))
        .collect();
    assert_eq!(create_outcomes.len(), 2);
    assert_eq!(create_outcomes[0].json(), first[0].json());
    assert_eq!(create_outcomes[1].json(), first[0].json());
    let rename_outcomes: Vec<_> = all
        .iter()
        .filter(|r| r.key.as_deref() == Some(rename.id.as_str()))
        .collect();
    assert_eq!(rename_outcomes[0].json(), rename_outcomes[1].json());
    assert_eq!(rename_outcomes[0].json()["aggregate_version"], 2);
    // One creation and one rename, not two of each.
    let events = env.read_all(&env.topics().events("org"))?;
    let types: Vec<_> = events
        .iter()
        .map(|e| e.header("ce_type").unwrap().to_owned())
        .collect();
    assert_eq!(types, [org::CREATED, org::RENAMED]);
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_the_system_writes_matches_its_schema() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    // Signing up runs the identity chain: email, slug, org (with a founder), user, session.
    let (http, _) = tributary_testkit::Http::signed_up(&app, "schema@example.com", "home").await?;
    // A failed login lands on the security topic.
    http.client
        .post(http.url("/api/v1/auth/login"))
        .json(&json!({ "email": "schema@example.com", "password": "not the password at all" }))
        .send()
        .await?;
    let created: serde_json::Value = http
        .client
        .post(http.url("/api/v1/orgs"))
        .header("prefer", "wait=20")
        .json(&json!({ "slug": "schema", "name": "Schema" }))
        .send()
        .await?
        .json()
        .await?;
    let location = format!("/api/v1/orgs/{}", created["id"].as_str().unwrap());
    http.client
        .patch(http.url(&location))
        .header("prefer", "wait=20")
        .json(&json!({ "name": "Schema 2" }))
        .send()
        .await?;
    http.client
        .delete(http.url(&location))
        .header("prefer", "wait=20")
        .send()
        .await?;
    // Wait for the slug release, the last record of the delete.
    let topics = env.topics();
    env.eventually(20, "the slug release", || async {
        let events = env.read_all(&topics.events("slug"))?;
        Ok((events
            .iter()
            .any(|e| e.header("ce_type") == Some(slug::RELEASED)))
        .then_some(()))
    })
    .await?;
    let mut checked: HashMap<String, usize> = HashMap::new();
    let mut sources = vec![topics.command_results(), topics.security()];
    for aggregate in tributary_domain::AGGREGATES {
        sources.push(topics.events(aggregate));
        sources.push(topics.state(aggregate));
        sources.push(topics.commands(aggregate));
    }
    for topic in sources {
        for record in env.read_all(&topic)? {
            let ty = record
                .header("ce_type")
                .expect("every record has ce_type")
                .to_owned();
            assert_eq!(record.header("ce_specversion"), Some("1.0"));
            assert!(record.header("ce_id").is_some() && record.header("ce_source").is_some());
            // Commands and the API's own security records start chains; the rest were
            // caused by something.
            if !topic.ends_with(".commands") && topic != topics.security() {
                assert!(record.header("ce_correlationid").is_some(), "{topic} {ty}");
                assert!(record.header("ce_causationid").is_some(), "{topic} {ty}");
            }
            if let Err(e) = schema::validate(&ty, &record.json()) {
                panic!("{topic}: {e}");
            }
            *checked.entry(ty).or_default() += 1;
        }
    }
    for ty in [
        org::CREATED,
        org::RENAMED,
        org::DELETED,
        slug::RESERVED,
        slug::RELEASED,
        "tributary.command.outcome.v1",
        "tributary.snapshot.v1",
        slug::CREATE_ORG,
        org::REGISTER,
        org::RENAME,
        org::DELETE,
        slug::RELEASE,
        tributary_domain::email::CLAIM,
        tributary_domain::email::CLAIMED,
        tributary_domain::user::REGISTER,
        tributary_domain::user::REGISTERED,
        tributary_domain::session::START,
        tributary_domain::session::STARTED,
        org::MEMBER_ADDED,
        tributary_domain::security::LOGIN_FAILED,
    ] {
        assert!(
            checked.contains_key(ty),
            "no {ty} was produced: {checked:?}"
        );
    }
    app.shutdown().await;
    Ok(())
}
