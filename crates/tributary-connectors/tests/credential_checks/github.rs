//! A fake of `GET /user` on api.github.com (and GitHub Enterprise's `/api/v3/user`).

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tributary_connectors::credentials::CheckStatus;

use super::{bearer, closed_port, run, serve};

const GOOD: &str = "github_pat_GOOD0000secret1111";
const EXHAUSTED: &str = "ghp_EXHAUSTED000secret2222";
const SECONDARY: &str = "ghp_SECONDARY000secret3333";
const ECHOED: &str = "ghp_ECHOED0000secret4444";

async fn user(headers: HeaderMap) -> Response {
    // GitHub refuses requests without a User-Agent.
    if headers.get("user-agent").is_none() {
        return (
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        )
            .into_response();
    }
    assert_eq!(headers["accept"], "application/vnd.github+json");
    assert_eq!(headers["x-github-api-version"], "2022-11-28");
    let limits = |remaining: &'static str| {
        [
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", "1893456000"),
            ("x-ratelimit-resource", "core"),
        ]
    };
    match bearer(&headers) {
        Some(GOOD) => (
            limits("4999"),
            [("x-oauth-scopes", "repo, read:org")],
            Json(json!({"login": "octocat", "id": 1, "type": "User", "site_admin": false})),
        )
            .into_response(),
        Some(EXHAUSTED) => (
            StatusCode::FORBIDDEN,
            limits("0"),
            Json(json!({
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
            })),
        )
            .into_response(),
        Some(SECONDARY) => (
            StatusCode::FORBIDDEN,
            limits("4000"),
            [("retry-after", "60")],
            Json(json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"
            })),
        )
            .into_response(),
        // A server that echoes the credential back must not make the check leak it.
        Some(ECHOED) => (
            StatusCode::FORBIDDEN,
            limits("4999"),
            Json(json!({"message": format!("Resource not accessible by integration ({ECHOED})")})),
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401"
            })),
        )
            .into_response(),
    }
}

async fn fake() -> String {
    serve(
        Router::new()
            .route("/user", get(user))
            .route("/api/v3/user", get(user)),
    )
    .await
}

#[tokio::test]
async fn a_valid_token_names_the_login_and_scopes() {
    let base = fake().await;
    let result = run("github_token", json!({"token": GOOD, "base_url": base})).await;
    assert_eq!(result.status, CheckStatus::Ok, "{}", result.message);
    assert!(result.ok);
    assert_eq!(result.identity.as_deref(), Some("octocat"));
    assert!(
        result.message.contains("repo, read:org"),
        "{}",
        result.message
    );
}

#[tokio::test]
async fn enterprise_base_urls_keep_their_path() {
    let base = fake().await;
    let result = run(
        "github_token",
        json!({"token": GOOD, "base_url": format!("{base}/api/v3/")}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Ok, "{}", result.message);
}

#[tokio::test]
async fn a_rejected_token_is_unauthorized_and_says_to_rotate() {
    let base = fake().await;
    let result = run(
        "github_token",
        json!({"token": "ghp_WRONG000secret5555", "base_url": base}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Unauthorized);
    assert!(!result.ok);
    assert_eq!(result.identity, None);
    assert!(result.message.contains("rotate"), "{}", result.message);
}

#[tokio::test]
async fn an_exhausted_rate_limit_reports_the_reset_time() {
    let base = fake().await;
    let result = run(
        "github_token",
        json!({"token": EXHAUSTED, "base_url": base}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::RateLimited);
    // X-RateLimit-Reset: 1893456000 is 2030-01-01T00:00:00Z.
    assert!(
        result.message.contains("2030-01-01T00:00:00Z"),
        "{}",
        result.message
    );
}

#[tokio::test]
async fn a_secondary_rate_limit_reports_retry_after() {
    let base = fake().await;
    let result = run(
        "github_token",
        json!({"token": SECONDARY, "base_url": base}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::RateLimited);
    assert!(result.message.contains("in 60 s"), "{}", result.message);
}

#[tokio::test]
async fn a_forbidden_token_never_echoes_the_secret() {
    let base = fake().await;
    let result = run("github_token", json!({"token": ECHOED, "base_url": base})).await;
    assert_eq!(result.status, CheckStatus::Forbidden);
    assert!(
        result
            .message
            .contains("Resource not accessible by integration"),
        "{}",
        result.message
    );
}

#[tokio::test]
async fn a_wrong_base_url_is_invalid() {
    let base = fake().await;
    let result = run(
        "github_token",
        json!({"token": GOOD, "base_url": format!("{base}/nothing-here")}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Invalid);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let result = run(
        "github_token",
        json!({"token": GOOD, "base_url": closed_port()}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Unreachable);
    assert!(result.message.contains("127.0.0.1"), "{}", result.message);
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_invalid() {
    let result = run(
        "github_token",
        json!({"token": "ghp_LINE\nBREAK000secret", "base_url": closed_port()}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Invalid);
}

#[tokio::test]
async fn a_missing_token_is_invalid() {
    let result = run("github_token", json!({"base_url": closed_port()})).await;
    assert_eq!(result.status, CheckStatus::Invalid);
    assert!(result.message.contains("token"), "{}", result.message);
}
