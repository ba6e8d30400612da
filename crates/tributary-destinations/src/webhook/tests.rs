//! The webhook sink against the fake receiver, which verifies signatures and timestamps
//! and de-duplicates by Idempotency-Key.

use std::time::Duration;

use serde_json::{Value, json};
use tributary_domain::document::Document;
use uuid::Uuid;

use super::{WebhookOperation, kind};
use crate::fake::{FakeWebhook, FakeWebhookConfig, Faults};
use crate::{BuildContext, Delivery, ErrorClass, Scope, Sink};

fn scope() -> Scope {
    Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())
}

fn sink(fake: &FakeWebhook, timeout_secs: u64, credential: Value) -> Box<dyn Sink> {
    kind()
        .build(BuildContext {
            config: json!({ "url": fake.url(), "timeout_secs": timeout_secs }),
            credential: Some(credential),
            http: reqwest::Client::new(),
            data_dir: std::env::temp_dir(),
        })
        .unwrap()
}

async fn started() -> (FakeWebhook, Box<dyn Sink>) {
    let fake = FakeWebhook::start(FakeWebhookConfig::default())
        .await
        .unwrap();
    let sink = sink(&fake, 5, fake.credential());
    (fake, sink)
}

fn batch() -> Vec<Delivery> {
    vec![
        Delivery::upsert(Document::text("web", "a", "A", "alpha, \"quoted\"")),
        Delivery::delete("b"),
    ]
}

#[tokio::test]
async fn posts_the_batch_signed_so_the_receiver_verifies_it() {
    let (fake, sink) = started().await;
    let scope = scope();

    let results = sink.deliver(&scope, &batch()).await;

    assert_eq!(results, vec![Ok(()), Ok(())]);
    let received = fake.batches();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.batch.target_id, scope.target_id);
    assert_eq!(got.batch.profile_id, scope.profile_id);
    assert_eq!(
        got.batch.operations,
        vec![
            WebhookOperation::Upsert {
                doc_id: "a".into(),
                document: Document::text("web", "a", "A", "alpha, \"quoted\"")
            },
            WebhookOperation::Delete { doc_id: "b".into() },
        ]
    );
    assert_eq!(got.idempotency_key.len(), 64);
    assert!((chrono::Utc::now().timestamp() - got.timestamp).abs() < 5);
}

#[tokio::test]
async fn the_json_secret_field_is_preferred_over_a_token() {
    let fake = FakeWebhook::start(FakeWebhookConfig::default())
        .await
        .unwrap();
    let credential = json!({ "secret": fake.secret(), "token": "not-the-secret" });
    let sink = sink(&fake, 5, credential);
    assert!(
        sink.deliver(&scope(), &batch())
            .await
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(fake.batches().len(), 1);
}

#[tokio::test]
async fn a_redelivered_batch_repeats_its_key_and_is_deduplicated() {
    let (fake, sink) = started().await;
    let scope = scope();

    sink.deliver(&scope, &batch()).await;
    let again = sink.deliver(&scope, &batch()).await;

    assert_eq!(again, vec![Ok(()), Ok(())]);
    assert_eq!(fake.batches().len(), 1);
    assert_eq!(fake.duplicates(), 1);

    sink.deliver(&scope, &[Delivery::delete("other")]).await;
    let other_target = Scope {
        target_id: Uuid::new_v4(),
        ..scope.clone()
    };
    sink.deliver(&other_target, &batch()).await;
    let keys: Vec<String> = fake
        .batches()
        .into_iter()
        .map(|b| b.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 3, "other ops and another target make new keys");
}

#[tokio::test]
async fn a_wrong_secret_fails_every_item_permanently() {
    let fake = FakeWebhook::start(FakeWebhookConfig::default())
        .await
        .unwrap();
    let sink = sink(&fake, 5, json!({ "token": "not-the-secret" }));

    let results = sink.deliver(&scope(), &batch()).await;

    assert_eq!(results.len(), 2);
    for result in results {
        let error = result.unwrap_err();
        assert_eq!(
            (error.class, error.status),
            (ErrorClass::Permanent, Some(401))
        );
        assert!(!error.message.contains("not-the-secret"));
    }
    assert!(fake.batches().is_empty());
}

#[tokio::test]
async fn server_errors_are_transient_and_rate_limits_carry_retry_after_for_every_item() {
    let (fake, sink) = started().await;
    let scope = scope();

    fake.set_faults(Faults {
        error_500: 1.0,
        ..Faults::none()
    });
    for result in sink.deliver(&scope, &batch()).await {
        let error = result.unwrap_err();
        assert_eq!(
            (error.class, error.status),
            (ErrorClass::Transient, Some(500))
        );
    }

    fake.set_faults(Faults {
        rate_limit_429: 1.0,
        retry_after_secs: 7,
        ..Faults::none()
    });
    for result in sink.deliver(&scope, &batch()).await {
        let error = result.unwrap_err();
        assert_eq!(error.class, ErrorClass::RateLimited);
        assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    }
    assert!(fake.batches().is_empty());

    fake.set_faults(Faults::none());
    assert!(
        sink.deliver(&scope, &batch())
            .await
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(fake.batches().len(), 1);
}

#[tokio::test]
async fn a_slow_receiver_times_out_as_transient() {
    let fake = FakeWebhook::start(FakeWebhookConfig {
        faults: Faults {
            latency: Some(Duration::from_millis(1500)),
            ..Faults::none()
        },
        ..FakeWebhookConfig::default()
    })
    .await
    .unwrap();
    let sink = sink(&fake, 1, fake.credential());

    let error = sink.deliver(&scope(), &batch()).await[0]
        .clone()
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Transient);
    assert!(
        error.message.contains("did not answer within 1 s"),
        "{error}"
    );
}

#[tokio::test]
async fn check_sends_a_signed_empty_batch_and_an_empty_delivery_sends_nothing() {
    let (fake, sink) = started().await;

    assert!(sink.deliver(&scope(), &[]).await.is_empty());
    assert_eq!(fake.request_count(), 0);

    let message = sink.check().await.unwrap();
    assert!(message.contains("accepted"), "{message}");
    let received = fake.batches();
    assert_eq!(received.len(), 1);
    assert!(received[0].batch.operations.is_empty());
}
