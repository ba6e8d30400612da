//! Refreshing tokens against the fake provider: rotation, retries, classification.

use std::time::{Duration, Instant};

use tributary_oauth::fake::{FakeConfig, FakeProvider, Fault};
use tributary_oauth::{OAuthError, RefreshPolicy, http_client, refresh, refresh_with_retry};

/// Retries quickly, so tests that exercise backoff stay fast.
fn fast_policy() -> RefreshPolicy {
    RefreshPolicy {
        max_attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..RefreshPolicy::new()
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_is_an_invalid_grant() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let http = http_client().unwrap();
    let first = fake.issue_refresh_token();

    let tokens = refresh(&http, &provider, &first).await.unwrap();
    let second = tokens.refresh_token.clone().expect("the fake rotates");
    assert_ne!(second, first);
    assert_eq!(tokens.scopes, ["read", "write"]);

    let err = refresh(&http, &provider, &first).await.unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err}");
    assert!(err.needs_reauthorization());
    let message = err.to_string();
    assert!(message.contains("reconnect the credential"), "{message}");
    assert!(!message.contains(&first), "{message}");
    assert!(!message.contains("fake-client-secret"), "{message}");

    // The rotated one still works (once).
    let third = refresh(&http, &provider, &second).await.unwrap();
    assert!(third.refresh_token.is_some());
}

#[tokio::test]
async fn without_rotation_the_old_refresh_token_is_kept() {
    let fake = FakeProvider::start_with(FakeConfig {
        rotate_refresh_tokens: false,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let provider = fake.provider_config("fake");
    let http = http_client().unwrap();
    let stored = fake.issue_refresh_token();

    let tokens = refresh(&http, &provider, &stored).await.unwrap();
    assert_eq!(tokens.refresh_token, None);
    assert_eq!(tokens.refresh_token_or(&stored), stored);
    // And it can be used again.
    refresh(&http, &provider, tokens.refresh_token_or(&stored))
        .await
        .unwrap();
}

#[tokio::test]
async fn transient_503s_are_retried_then_succeed() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let rt = fake.issue_refresh_token();
    fake.fail_next_with_unavailable(2);

    let tokens = refresh_with_retry(&http_client().unwrap(), &provider, &rt, &fast_policy())
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_some());
    assert_eq!(fake.token_calls(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let rt = fake.issue_refresh_token();
    fake.fail_next_with_unavailable(10);

    let err = refresh_with_retry(&http_client().unwrap(), &provider, &rt, &fast_policy())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert_eq!(fake.token_calls(), 4);
}

#[tokio::test]
async fn retry_after_from_a_429_is_honoured() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let rt = fake.issue_refresh_token();
    fake.fail_next_with_rate_limit(1, Duration::from_secs(1));

    let started = Instant::now();
    refresh_with_retry(&http_client().unwrap(), &provider, &rt, &fast_policy())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited only {:?}",
        started.elapsed()
    );
    assert_eq!(fake.token_calls(), 2);
}

#[tokio::test]
async fn a_retry_after_too_long_to_wait_for_is_returned() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let rt = fake.issue_refresh_token();
    fake.fail_next_with_rate_limit(1, Duration::from_secs(3600));

    let err = refresh_with_retry(&http_client().unwrap(), &provider, &rt, &fast_policy())
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(err.to_string().contains("wait 3600s"), "{err}");
    assert_eq!(fake.token_calls(), 1);
}

#[tokio::test]
async fn invalid_grant_is_never_retried() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let rt = fake.issue_refresh_token();
    fake.fail_next_with_invalid_grant(1);

    let err = refresh_with_retry(&http_client().unwrap(), &provider, &rt, &fast_policy())
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err}");
    assert_eq!(fake.token_calls(), 1);

    // After a transient failure, an invalid grant still stops the retries.
    fake.inject(Fault::Unavailable, 1);
    fake.inject(Fault::InvalidGrant, 1);
    let err = refresh_with_retry(&http_client().unwrap(), &provider, &rt, &fast_policy())
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err}");
    assert_eq!(fake.token_calls(), 3);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_transient() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let rt = fake.issue_refresh_token();
    fake.inject(Fault::Delay(Duration::from_secs(2)), 1);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = refresh(&impatient, &provider, &rt).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");

    // A port nobody listens on: bind one, then free it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let mut gone = provider.clone();
    gone.token_url = format!("http://{closed}/token").parse().unwrap();
    let err = refresh(&http_client().unwrap(), &gone, &rt)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("could not connect"), "{err}");
}

#[tokio::test]
async fn a_wrong_token_url_is_a_misconfiguration() {
    let fake = FakeProvider::start().await.unwrap();
    let mut provider = fake.provider_config("fake");
    provider.token_url = fake.base_url().join("nope").unwrap();
    let err = refresh(&http_client().unwrap(), &provider, "whatever-token")
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::Misconfigured { .. }), "{err}");
    assert!(err.to_string().contains("HTTP 404"), "{err}");

    // And an insecure one is refused before any request.
    provider.token_url = "http://example.com/token".parse().unwrap();
    let err = refresh(&http_client().unwrap(), &provider, "whatever-token")
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::Misconfigured { .. }), "{err}");
}
