//! `basic_auth`, `bearer_token` and `oauth2` check against a URL the user configures: a
//! fake protected resource answers 2xx, 401, 403 or 429 with `Retry-After`.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tributary_connectors::credentials::CheckStatus;

use super::{bearer, closed_port, run, serve};

const USER: &str = "crawler";
const PASSWORD: &str = "correct-horse-PASSWORD-staple";
const TOKEN: &str = "eyJ0b2tlbiI6IkdPT0QifQ.secret";
const FORBIDDEN_TOKEN: &str = "eyJ0b2tlbiI6IkZPUkJJRERFTiJ9.secret";

async fn protected(headers: HeaderMap) -> Response {
    let basic_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v == STANDARD.encode(format!("{USER}:{PASSWORD}")));
    if basic_ok {
        return (StatusCode::OK, "<html>intranet</html>").into_response();
    }
    match bearer(&headers) {
        Some(TOKEN) => (StatusCode::OK, "{\"sub\":\"1\"}").into_response(),
        Some(FORBIDDEN_TOKEN) => StatusCode::FORBIDDEN.into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"intranet\"")],
        )
            .into_response(),
    }
}

async fn limited() -> Response {
    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "5")]).into_response()
}

async fn fake() -> String {
    serve(
        Router::new()
            .route("/protected", get(protected))
            .route("/limited", get(limited)),
    )
    .await
}

#[tokio::test]
async fn basic_auth_checks_its_base_url() {
    let base = fake().await;
    let url = format!("{base}/protected");
    let ok = run(
        "basic_auth",
        json!({"username": USER, "password": PASSWORD, "base_url": url}),
    )
    .await;
    assert_eq!(ok.status, CheckStatus::Ok, "{}", ok.message);
    let wrong = run(
        "basic_auth",
        json!({"username": USER, "password": "wrong-PASSWORD-value", "base_url": url}),
    )
    .await;
    assert_eq!(wrong.status, CheckStatus::Unauthorized);
    let limited = run(
        "basic_auth",
        json!({"username": USER, "password": PASSWORD, "base_url": format!("{base}/limited")}),
    )
    .await;
    assert_eq!(limited.status, CheckStatus::RateLimited);
    assert!(limited.message.contains("in 5 s"), "{}", limited.message);
    let down = run(
        "basic_auth",
        json!({"username": USER, "password": PASSWORD, "base_url": closed_port()}),
    )
    .await;
    assert_eq!(down.status, CheckStatus::Unreachable);
}

#[tokio::test]
async fn basic_auth_without_a_url_is_not_checked() {
    let result = run(
        "basic_auth",
        json!({"username": USER, "password": PASSWORD}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::NotChecked);
    assert!(!result.ok);
    assert!(result.message.contains("base URL"), "{}", result.message);
}

#[tokio::test]
async fn bearer_token_checks_its_check_url() {
    let base = fake().await;
    let url = format!("{base}/protected");
    let ok = run("bearer_token", json!({"token": TOKEN, "check_url": url})).await;
    assert_eq!(ok.status, CheckStatus::Ok, "{}", ok.message);
    for token in [FORBIDDEN_TOKEN, "eyJ3cm9uZyJ9.secret"] {
        let result = run("bearer_token", json!({"token": token, "check_url": url})).await;
        assert_eq!(result.status, CheckStatus::Unauthorized);
    }
    let limited = run(
        "bearer_token",
        json!({"token": TOKEN, "check_url": format!("{base}/limited")}),
    )
    .await;
    assert_eq!(limited.status, CheckStatus::RateLimited);
    let down = run(
        "bearer_token",
        json!({"token": TOKEN, "check_url": closed_port()}),
    )
    .await;
    assert_eq!(down.status, CheckStatus::Unreachable);
    let unchecked = run("bearer_token", json!({"token": TOKEN})).await;
    assert_eq!(unchecked.status, CheckStatus::NotChecked);
}

#[tokio::test]
async fn oauth2_checks_its_check_url_while_the_token_is_current() {
    let base = fake().await;
    let value = |token: &str, url: String| {
        json!({
            "provider": "acme",
            "access_token": token,
            "refresh_token": "1//REFRESH000secret",
            "expires_at": "2999-01-01T00:00:00Z",
            "scopes": ["read"],
            "token_type": "bearer",
            "check_url": url
        })
    };
    let ok = run("oauth2", value(TOKEN, format!("{base}/protected"))).await;
    assert_eq!(ok.status, CheckStatus::Ok, "{}", ok.message);
    let wrong = run(
        "oauth2",
        value("ya29.WRONG000secret", format!("{base}/protected")),
    )
    .await;
    assert_eq!(wrong.status, CheckStatus::Unauthorized);
    let limited = run("oauth2", value(TOKEN, format!("{base}/limited"))).await;
    assert_eq!(limited.status, CheckStatus::RateLimited);
    let down = run("oauth2", value(TOKEN, closed_port())).await;
    assert_eq!(down.status, CheckStatus::Unreachable);
}

#[tokio::test]
async fn an_expired_oauth2_token_is_reported_without_a_request() {
    // The check URL is a closed port: had the check tried it, it would say unreachable.
    let result = run(
        "oauth2",
        json!({
            "provider": "acme",
            "access_token": TOKEN,
            "refresh_token": "1//REFRESH000secret",
            "expires_at": "2020-01-01T00:00:00Z",
            "check_url": closed_port()
        }),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Unauthorized);
    assert!(
        result.message.contains("expired at 2020-01-01T00:00:00Z"),
        "{}",
        result.message
    );
    assert!(result.message.contains("refresh"), "{}", result.message);
}

#[tokio::test]
async fn oauth2_without_a_check_url_reports_expiry_only() {
    let result = run(
        "oauth2",
        json!({"provider": "acme", "access_token": TOKEN, "expires_at": "2999-01-01T00:00:00+02:00"}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::NotChecked);
    assert!(
        result.message.contains("valid until 2998-12-31T22:00:00Z"),
        "{}",
        result.message
    );
}
