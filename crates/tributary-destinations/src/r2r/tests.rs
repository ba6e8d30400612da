//! The R2R sink against the fake R2R, which follows the v3 contract.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tributary_domain::document::{Document, MetadataValue};
use uuid::Uuid;

use super::kind;
use crate::fake::{FakeR2r, FakeR2rConfig, FakeR2rDoc, Faults};
use crate::{BuildContext, Delivery, ErrorClass, Scope, Sink};

fn scope() -> Scope {
    Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())
}

fn sink(fake: &FakeR2r, extra: Value, credential: Option<Value>) -> Box<dyn Sink> {
    let mut config = json!({ "base_url": fake.base_url(), "timeout_secs": 5 });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    kind()
        .build(BuildContext {
            config,
            credential,
            http: reqwest::Client::new(),
            data_dir: std::env::temp_dir(),
        })
        .unwrap()
}

async fn started(config: FakeR2rConfig) -> (FakeR2r, Box<dyn Sink>) {
    let fake = FakeR2r::start(config).await.unwrap();
    let sink = sink(&fake, json!({}), Some(fake.credential()));
    (fake, sink)
}

fn doc(id: &str, text: &str) -> Document {
    Document::text("github", id, format!("Title of {id}"), text)
}

#[tokio::test]
async fn creates_a_document_under_its_deterministic_id_with_text_and_metadata() {
    let fake = FakeR2r::start(FakeR2rConfig::default()).await.unwrap();
    let collection = Uuid::new_v4();
    let sink = sink(
        &fake,
        json!({ "collection_ids": [collection], "ingestion_mode": "hi-res" }),
        Some(fake.credential()),
    );
    let scope = scope();
    let mut document = doc("issue/1", "first body");
    document
        .metadata
        .insert("state".into(), MetadataValue::One("open".into()));
    document.updated_at = Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap());

    let results = sink
        .deliver(&scope, &[Delivery::upsert(document.clone())])
        .await;

    assert_eq!(results, vec![Ok(())]);
    let stored = fake.document(scope.document_uuid("issue/1")).unwrap();
    assert_eq!(stored.text, document.joined_text());
    assert_eq!(
        Value::Object(stored.metadata),
        json!({
            "title": "Title of issue/1",
            "source": "github",
            "doc_id": "issue/1",
            "updated_at": "2024-05-01T12:00:00Z",
            "state": "open"
        })
    );
    assert_eq!(stored.collection_ids, vec![collection]);
    assert_eq!(stored.ingestion_mode, "hi-res");
    assert_eq!(fake.status_counts().get(&202), Some(&1));
}

#[tokio::test]
async fn an_update_deletes_the_old_version_then_creates_the_new_one() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    let scope = scope();

    sink.deliver(&scope, &[Delivery::upsert(doc("a", "version one"))])
        .await;
    let results = sink
        .deliver(&scope, &[Delivery::upsert(doc("a", "version two"))])
        .await;

    assert_eq!(results, vec![Ok(())]);
    let documents = fake.documents();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[&scope.document_uuid("a")].text, "version two");
    let statuses = fake.status_counts();
    assert_eq!(statuses.get(&202), Some(&2), "{statuses:?}");
    assert_eq!(statuses.get(&409), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&1), "the delete: {statuses:?}");
}

#[tokio::test]
async fn a_conflict_with_a_document_created_elsewhere_replaces_it() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    let scope = scope();
    let id = scope.document_uuid("a");
    fake.insert(
        id,
        FakeR2rDoc {
            text: "stale".into(),
            metadata: serde_json::Map::new(),
            collection_ids: Vec::new(),
            ingestion_mode: "custom".into(),
        },
    );

    let results = sink
        .deliver(&scope, &[Delivery::upsert(doc("a", "fresh"))])
        .await;

    assert_eq!(results, vec![Ok(())]);
    assert_eq!(fake.document(id).unwrap().text, "fresh");
    assert_eq!(fake.status_counts().get(&409), Some(&1));
}

#[tokio::test]
async fn redelivering_a_batch_ends_in_the_same_state() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    let scope = scope();
    let batch = [
        Delivery::upsert(doc("a", "alpha")),
        Delivery::upsert(doc("b", "beta")),
        Delivery::delete("c"),
    ];

    assert!(sink.deliver(&scope, &batch).await.iter().all(Result::is_ok));
    let after_first = fake.documents();
    assert!(sink.deliver(&scope, &batch).await.iter().all(Result::is_ok));

    assert_eq!(fake.documents(), after_first);
    assert_eq!(after_first.len(), 2);
}

#[tokio::test]
async fn deletes_and_treats_a_missing_document_as_deleted() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    let scope = scope();
    sink.deliver(&scope, &[Delivery::upsert(doc("a", "alpha"))])
        .await;

    assert_eq!(
        sink.deliver(&scope, &[Delivery::delete("a")]).await,
        vec![Ok(())]
    );
    assert_eq!(fake.document_count(), 0);
    assert_eq!(
        sink.deliver(&scope, &[Delivery::delete("a")]).await,
        vec![Ok(())]
    );
    assert_eq!(fake.status_counts().get(&404), Some(&1));
}

#[tokio::test]
async fn one_documents_operations_apply_in_batch_order() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    let scope = scope();
    let batch = [
        Delivery::upsert(doc("a", "one")),
        Delivery::upsert(doc("b", "bee")),
        Delivery::delete("a"),
        Delivery::upsert(doc("a", "three")),
        Delivery::delete("b"),
    ];

    let results = sink.deliver(&scope, &batch).await;

    assert_eq!(results.len(), 5);
    assert!(results.iter().all(Result::is_ok));
    let documents = fake.documents();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[&scope.document_uuid("a")].text, "three");
}

#[tokio::test]
async fn sends_exactly_one_auth_header_of_the_configured_kind() {
    for (auth, scheme) in [("bearer", "bearer"), ("api_key", "api_key")] {
        let fake = FakeR2r::start(FakeR2rConfig::default()).await.unwrap();
        let sink = sink(&fake, json!({ "auth": auth }), Some(fake.credential()));
        let scope = scope();
        let batch = [
            Delivery::upsert(doc("a", "x")),
            Delivery::upsert(doc("a", "y")),
        ];

        assert!(sink.deliver(&scope, &batch).await.iter().all(Result::is_ok));
        assert!(sink.check().await.is_ok());

        let schemes = fake.auth_schemes();
        assert_eq!(
            schemes.keys().copied().collect::<Vec<_>>(),
            vec![scheme],
            "{auth}"
        );
        assert_eq!(fake.status_counts().get(&400), None);
    }
}

#[tokio::test]
async fn a_refused_credential_is_permanent_and_never_echoed() {
    let fake = FakeR2r::start(FakeR2rConfig::default()).await.unwrap();
    let wrong = "wrong-key.very-secret";
    let sink = sink(&fake, json!({}), Some(json!({ "token": wrong })));

    let results = sink
        .deliver(&scope(), &[Delivery::upsert(doc("a", "private text"))])
        .await;

    let error = results[0].clone().unwrap_err();
    assert_eq!(error.class, ErrorClass::Permanent);
    assert_eq!(error.status, Some(401));
    assert!(error.message.contains("refused the credential"), "{error}");
    assert!(!error.message.contains(wrong) && !error.message.contains("private text"));
    assert_eq!(sink.check().await.unwrap_err().status, Some(401));
}

#[tokio::test]
async fn server_errors_are_transient_and_rate_limits_carry_retry_after() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    let scope = scope();

    fake.set_faults(Faults {
        error_500: 1.0,
        ..Faults::none()
    });
    let error = sink
        .deliver(&scope, &[Delivery::upsert(doc("a", "x"))])
        .await[0]
        .clone()
        .unwrap_err();
    assert_eq!(
        (error.class, error.status),
        (ErrorClass::Transient, Some(500))
    );

    fake.set_faults(Faults {
        rate_limit_429: 1.0,
        retry_after_secs: 7,
        ..Faults::none()
    });
    let error = sink.deliver(&scope, &[Delivery::delete("a")]).await[0]
        .clone()
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(error.status, Some(429));

    // Faulted requests never reached R2R's state.
    assert_eq!(fake.document_count(), 0);
    assert_eq!(fake.auth_schemes().values().sum::<u64>(), 0);
}

#[tokio::test]
async fn size_and_quota_limits_are_permanent_and_say_which() {
    let (fake, sink) = started(FakeR2rConfig {
        max_text_bytes: Some(10),
        max_documents: Some(1),
        ..FakeR2rConfig::default()
    })
    .await;
    let scope = scope();

    let too_big = sink
        .deliver(&scope, &[Delivery::upsert(doc("big", &"x".repeat(11)))])
        .await;
    let error = too_big[0].clone().unwrap_err();
    assert_eq!(
        (error.class, error.status),
        (ErrorClass::Permanent, Some(413))
    );
    assert!(error.message.contains("11 bytes"), "{error}");

    let results = sink
        .deliver(
            &scope,
            &[
                Delivery::upsert(doc("a", "small")),
                Delivery::upsert(doc("b", "small")),
            ],
        )
        .await;
    assert_eq!(results[0], Ok(()));
    let error = results[1].clone().unwrap_err();
    assert_eq!(
        (error.class, error.status),
        (ErrorClass::Permanent, Some(403))
    );
    assert!(error.message.contains("quota"), "{error}");
    assert_eq!(fake.document_count(), 1, "refused documents are not stored");
}

#[tokio::test]
async fn an_empty_document_is_refused_without_a_request() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    let error = sink
        .deliver(&scope(), &[Delivery::upsert(doc("a", "  "))])
        .await[0]
        .clone()
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Permanent);
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    let fake = FakeR2r::start(FakeR2rConfig::default()).await.unwrap();
    let sink = sink(&fake, json!({}), Some(fake.credential()));
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let error = sink.deliver(&scope(), &[Delivery::delete("a")]).await[0]
        .clone()
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Transient, "{error}");
    assert_eq!(error.status, None);
}

#[tokio::test]
async fn retrying_only_the_failures_under_faults_converges_to_exactly_the_documents() {
    let (fake, sink) = started(FakeR2rConfig::default()).await;
    fake.set_faults(Faults {
        error_500: 0.2,
        rate_limit_429: 0.1,
        retry_after_secs: 0,
        seed: 42,
        ..Faults::none()
    });
    let scope = scope();
    let mut pending: Vec<Delivery> = (0..300)
        .map(|i| Delivery::upsert(doc(&format!("doc-{i}"), &format!("text {i}"))))
        .collect();
    // Some documents are delivered twice, as after a crash.
    pending
        .extend((0..30).map(|i| Delivery::upsert(doc(&format!("doc-{i}"), &format!("text {i}")))));

    for _round in 0..30 {
        if pending.is_empty() {
            break;
        }
        let results = sink.deliver(&scope, &pending).await;
        assert_eq!(results.len(), pending.len());
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().map_or_else(|e| e.is_retriable(), |()| true))
        );
        pending = pending
            .into_iter()
            .zip(results)
            .filter_map(|(d, r)| r.is_err().then_some(d))
            .collect();
    }

    assert!(
        pending.is_empty(),
        "{} deliveries never succeeded",
        pending.len()
    );
    let documents = fake.documents();
    assert_eq!(documents.len(), 300);
    for i in 0..300 {
        let id = scope.document_uuid(&format!("doc-{i}"));
        assert_eq!(documents[&id].text, format!("text {i}"));
    }
    assert!(fake.status_counts().get(&500).is_some_and(|n| *n > 0));
}
