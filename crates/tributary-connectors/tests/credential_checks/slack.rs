//! A fake of Slack's `POST /api/auth.test`: HTTP 200 with `ok: false` and an error code
//! for a bad token, 429 with `Retry-After` when rate limited.

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tributary_connectors::credentials::CheckStatus;

use super::{bearer, closed_port, run, serve};

const GOOD: &str = "xoxb-1111-2222-GOODsecret";
const REVOKED: &str = "xoxb-1111-2222-REVOKEDsecret";
const INACTIVE: &str = "xoxb-1111-2222-INACTIVEsecret";
const LIMITED: &str = "xoxb-1111-2222-LIMITEDsecret";

async fn auth_test(headers: HeaderMap) -> Response {
    let refusal = |error: &str| Json(json!({"ok": false, "error": error})).into_response();
    match bearer(&headers) {
        None => refusal("not_authed"),
        Some(GOOD) => Json(json!({
            "ok": true,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "tributary",
            "team_id": "T0001",
            "user_id": "U0001",
            "bot_id": "B0001",
            "is_enterprise_install": false
        }))
        .into_response(),
        Some(REVOKED) => refusal("token_revoked"),
        Some(INACTIVE) => refusal("account_inactive"),
        Some(LIMITED) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "30")],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response(),
        Some(_) => refusal("invalid_auth"),
    }
}

async fn fake() -> String {
    serve(Router::new().route("/api/auth.test", post(auth_test))).await
}

#[tokio::test]
async fn a_valid_token_names_the_workspace() {
    let base = fake().await;
    let result = run("slack_bot_token", json!({"token": GOOD, "base_url": base})).await;
    assert_eq!(result.status, CheckStatus::Ok, "{}", result.message);
    assert_eq!(result.identity.as_deref(), Some("Acme"));
    assert!(result.message.contains("tributary"), "{}", result.message);
}

#[tokio::test]
async fn refused_tokens_are_unauthorized_with_the_slack_error() {
    let base = fake().await;
    for (token, code) in [
        ("xoxb-1111-2222-WRONGsecret", "invalid_auth"),
        (REVOKED, "token_revoked"),
        (INACTIVE, "account_inactive"),
    ] {
        let result = run("slack_bot_token", json!({"token": token, "base_url": base})).await;
        assert_eq!(result.status, CheckStatus::Unauthorized, "{code}");
        assert!(result.message.contains(code), "{}", result.message);
        assert_eq!(result.identity, None);
    }
}

#[tokio::test]
async fn a_rate_limit_reports_retry_after() {
    let base = fake().await;
    let result = run(
        "slack_bot_token",
        json!({"token": LIMITED, "base_url": base}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::RateLimited);
    assert!(result.message.contains("in 30 s"), "{}", result.message);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let result = run(
        "slack_bot_token",
        json!({"token": GOOD, "base_url": closed_port()}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Unreachable);
}
