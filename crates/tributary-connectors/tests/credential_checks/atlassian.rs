//! Fakes of Atlassian Cloud: Jira's `GET /rest/api/3/myself` with Basic auth (401 with
//! `X-Seraph-LoginReason: AUTHENTICATED_FAILED`, 403 `AUTHENTICATION_DENIED` when a
//! CAPTCHA is required, 429 with `Retry-After`), and a Confluence-only site where that
//! path is 404 and `GET /wiki/rest/api/user/current` answers.

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tributary_connectors::credentials::CheckStatus;

use super::{closed_port, run, serve};

const EMAIL: &str = "ops@acme.example";
const GOOD: &str = "ATATT3xGOOD000secret";
const CAPTCHA: &str = "ATATT3xCAPTCHA000secret";
const LIMITED: &str = "ATATT3xLIMITED000secret";

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn rejected() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("x-seraph-loginreason", "AUTHENTICATED_FAILED")],
        "Client must be authenticated to access this resource.",
    )
        .into_response()
}

async fn myself(headers: HeaderMap) -> Response {
    let Some((email, token)) = basic(&headers) else {
        return rejected();
    };
    match (email.as_str(), token.as_str()) {
        (EMAIL, GOOD) => Json(json!({
            "self": "https://acme.atlassian.net/rest/api/3/user?accountId=5b10a2844c20165700ede21g",
            "accountId": "5b10a2844c20165700ede21g",
            "accountType": "atlassian",
            "emailAddress": EMAIL,
            "displayName": "Mia Krystof",
            "active": true,
            "timeZone": "Europe/Berlin"
        }))
        .into_response(),
        (EMAIL, CAPTCHA) => (
            StatusCode::FORBIDDEN,
            [("x-seraph-loginreason", "AUTHENTICATION_DENIED")],
            "CAPTCHA_CHALLENGE",
        )
            .into_response(),
        (EMAIL, LIMITED) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "10")],
            Json(json!({"errorMessages": ["Rate limit exceeded."]})),
        )
            .into_response(),
        _ => rejected(),
    }
}

async fn confluence_current(headers: HeaderMap) -> Response {
    match basic(&headers) {
        Some((email, token)) if email == EMAIL && token == GOOD => Json(json!({
            "type": "known",
            "accountId": "5b10a2844c20165700ede21g",
            "accountType": "atlassian",
            "email": EMAIL,
            "publicName": "Mia Krystof",
            "displayName": "Mia Krystof"
        }))
        .into_response(),
        _ => rejected(),
    }
}

async fn jira_site() -> String {
    serve(Router::new().route("/rest/api/3/myself", get(myself))).await
}

async fn confluence_only_site() -> String {
    serve(Router::new().route("/wiki/rest/api/user/current", get(confluence_current))).await
}

fn value(site: &str, token: &str) -> serde_json::Value {
    json!({"site_url": site, "email": EMAIL, "api_token": token})
}

#[tokio::test]
async fn a_valid_token_names_the_account() {
    let site = jira_site().await;
    let result = run("atlassian_api_token", value(&site, GOOD)).await;
    assert_eq!(result.status, CheckStatus::Ok, "{}", result.message);
    assert_eq!(result.identity.as_deref(), Some("Mia Krystof"));
}

#[tokio::test]
async fn a_confluence_only_site_is_checked_through_confluence() {
    let site = confluence_only_site().await;
    let result = run("atlassian_api_token", value(&format!("{site}/"), GOOD)).await;
    assert_eq!(result.status, CheckStatus::Ok, "{}", result.message);
    assert_eq!(result.identity.as_deref(), Some("Mia Krystof"));
    let result = run("atlassian_api_token", value(&site, "ATATT3xWRONG000secret")).await;
    assert_eq!(result.status, CheckStatus::Unauthorized);
}

#[tokio::test]
async fn a_rejected_token_is_unauthorized_and_names_the_email() {
    let site = jira_site().await;
    let result = run("atlassian_api_token", value(&site, "ATATT3xWRONG000secret")).await;
    assert_eq!(result.status, CheckStatus::Unauthorized);
    assert!(result.message.contains(EMAIL), "{}", result.message);
}

#[tokio::test]
async fn a_captcha_is_forbidden_and_says_to_log_in() {
    let site = jira_site().await;
    let result = run("atlassian_api_token", value(&site, CAPTCHA)).await;
    assert_eq!(result.status, CheckStatus::Forbidden);
    assert!(result.message.contains("CAPTCHA"), "{}", result.message);
}

#[tokio::test]
async fn a_rate_limit_reports_retry_after() {
    let site = jira_site().await;
    let result = run("atlassian_api_token", value(&site, LIMITED)).await;
    assert_eq!(result.status, CheckStatus::RateLimited);
    assert!(result.message.contains("in 10 s"), "{}", result.message);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let result = run("atlassian_api_token", value(&closed_port(), GOOD)).await;
    assert_eq!(result.status, CheckStatus::Unreachable);
}

#[tokio::test]
async fn a_site_with_neither_product_is_invalid() {
    let site = serve(Router::new()).await;
    let result = run("atlassian_api_token", value(&site, GOOD)).await;
    assert_eq!(result.status, CheckStatus::Invalid);
}
