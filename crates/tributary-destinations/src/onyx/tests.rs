//! The Onyx sink against the fake Onyx ingestion API.

use std::time::Duration;

use serde_json::{Value, json};
use tributary_domain::document::{Access, Document, MetadataValue};
use uuid::Uuid;

use super::kind;
use crate::fake::{FakeOnyx, FakeOnyxConfig, Faults};
use crate::{BuildContext, Delivery, ErrorClass, Scope, Sink};

fn scope() -> Scope {
    Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())
}

fn sink(fake: &FakeOnyx, extra: Value, credential: Option<Value>) -> Box<dyn Sink> {
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

async fn started() -> (FakeOnyx, Box<dyn Sink>) {
    let fake = FakeOnyx::start(FakeOnyxConfig::default()).await.unwrap();
    let sink = sink(&fake, json!({ "cc_pair_id": 4 }), Some(fake.credential()));
    (fake, sink)
}

fn onyx_id(scope: &Scope, doc_id: &str) -> String {
    scope.document_uuid(doc_id).to_string()
}

#[tokio::test]
async fn upserts_a_document_base_into_the_configured_pair() {
    let (fake, sink) = started().await;
    let scope = scope();
    let mut doc = Document::text("slack", "C1/1700000000.1", "#general: hello", "hello all");
    doc.metadata
        .insert("channel".into(), MetadataValue::One("general".into()));
    doc.access = Some(Access {
        public: false,
        user_emails: vec!["ada@example.com".into()],
        group_ids: Vec::new(),
    });

    let results = sink.deliver(&scope, &[Delivery::upsert(doc)]).await;

    assert_eq!(results, vec![Ok(())]);
    let stored = fake.document(&onyx_id(&scope, "C1/1700000000.1")).unwrap();
    assert_eq!(stored.cc_pair_id, 4);
    assert_eq!(stored.text(), "hello all");
    assert_eq!(stored.document["source"], "slack");
    assert_eq!(stored.document["semantic_identifier"], "#general: hello");
    assert_eq!(stored.document["metadata"], json!({ "channel": "general" }));
    // Onyx keeps no per-document access list from this API; the fake drops it too.
    assert!(stored.document.get("external_access").is_none());
}

#[tokio::test]
async fn sources_onyx_does_not_know_become_ingestion_api() {
    let (fake, sink) = started().await;
    let scope = scope();
    let doc = Document::text("filesystem", "docs/a.md", "a.md", "text");

    assert_eq!(
        sink.deliver(&scope, &[Delivery::upsert(doc)]).await,
        vec![Ok(())]
    );
    let stored = fake.document(&onyx_id(&scope, "docs/a.md")).unwrap();
    assert_eq!(stored.document["source"], "ingestion_api");
}

#[tokio::test]
async fn redelivery_replaces_the_document_in_place() {
    let (fake, sink) = started().await;
    let scope = scope();
    let batch = [Delivery::upsert(Document::text("web", "u", "U", "v1"))];
    sink.deliver(&scope, &batch).await;
    let first = fake.documents();

    assert_eq!(sink.deliver(&scope, &batch).await, vec![Ok(())]);
    assert_eq!(fake.documents(), first);

    let changed = [Delivery::upsert(Document::text("web", "u", "U", "v2"))];
    assert_eq!(sink.deliver(&scope, &changed).await, vec![Ok(())]);
    let documents = fake.documents();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[&onyx_id(&scope, "u")].text(), "v2");
}

#[tokio::test]
async fn deletes_and_treats_a_missing_document_as_deleted() {
    let (fake, sink) = started().await;
    let scope = scope();
    sink.deliver(
        &scope,
        &[Delivery::upsert(Document::text("web", "u", "U", "x"))],
    )
    .await;

    assert_eq!(
        sink.deliver(&scope, &[Delivery::delete("u")]).await,
        vec![Ok(())]
    );
    assert!(fake.documents().is_empty());
    assert_eq!(
        sink.deliver(&scope, &[Delivery::delete("u")]).await,
        vec![Ok(())]
    );
    assert_eq!(fake.status_counts().get(&404), Some(&1));
}

#[tokio::test]
async fn a_refused_api_key_is_permanent_and_never_echoed() {
    let fake = FakeOnyx::start(FakeOnyxConfig::default()).await.unwrap();
    let sink = sink(
        &fake,
        json!({}),
        Some(json!({ "token": "on_wrong_secret" })),
    );

    let error = sink
        .deliver(
            &scope(),
            &[Delivery::upsert(Document::text("web", "u", "U", "x"))],
        )
        .await[0]
        .clone()
        .unwrap_err();

    assert_eq!(
        (error.class, error.status),
        (ErrorClass::Permanent, Some(401))
    );
    assert!(!error.message.contains("on_wrong_secret"));
    assert!(sink.check().await.is_err());
    assert!(fake.documents().is_empty());
}

#[tokio::test]
async fn server_errors_are_transient_and_rate_limits_carry_retry_after() {
    let (fake, sink) = started().await;
    let scope = scope();
    let batch = [Delivery::upsert(Document::text("web", "u", "U", "x"))];

    fake.set_faults(Faults {
        error_500: 1.0,
        ..Faults::none()
    });
    let error = sink.deliver(&scope, &batch).await[0].clone().unwrap_err();
    assert_eq!(
        (error.class, error.status),
        (ErrorClass::Transient, Some(500))
    );

    fake.set_faults(Faults {
        rate_limit_429: 1.0,
        retry_after_secs: 7,
        ..Faults::none()
    });
    let error = sink.deliver(&scope, &batch).await[0].clone().unwrap_err();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    assert!(fake.documents().is_empty());
}

#[tokio::test]
async fn a_slow_onyx_times_out_as_transient() {
    let fake = FakeOnyx::start(FakeOnyxConfig {
        faults: Faults {
            latency: Some(Duration::from_millis(1500)),
            ..Faults::none()
        },
        ..FakeOnyxConfig::default()
    })
    .await
    .unwrap();
    let sink = sink(&fake, json!({ "timeout_secs": 1 }), Some(fake.credential()));

    let error = sink.deliver(&scope(), &[Delivery::delete("u")]).await[0]
        .clone()
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Transient);
    assert!(error.message.contains("timeout_secs"), "{error}");
}

#[tokio::test]
async fn check_counts_the_documents_pushed_so_far() {
    let (_fake, sink) = started().await;
    sink.deliver(
        &scope(),
        &[Delivery::upsert(Document::text("web", "u", "U", "x"))],
    )
    .await;
    let message = sink.check().await.unwrap();
    assert!(message.contains("1 documents"), "{message}");
}
