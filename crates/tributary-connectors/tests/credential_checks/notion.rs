//! A fake of Notion's `GET /v1/users/me`: requires `Notion-Version`; errors are
//! `{"object": "error", "status", "code", "message"}`.

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tributary_connectors::credentials::CheckStatus;

use super::{bearer, closed_port, run, serve};

const GOOD: &str = "ntn_GOOD000000secret";
const LIMITED: &str = "ntn_LIMITED000secret";

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "object": "error",
            "status": status.as_u16(),
            "code": code,
            "message": message,
            "request_id": "5a1b2c3d-0000-0000-0000-000000000000"
        })),
    )
        .into_response()
}

async fn me(headers: HeaderMap) -> Response {
    if headers.get("notion-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined.",
        );
    }
    assert_eq!(headers["notion-version"], "2022-06-28");
    match bearer(&headers) {
        Some(GOOD) => Json(json!({
            "object": "user",
            "id": "92a680bb-6970-4726-952b-4f4c03bff617",
            "name": "Tributary",
            "avatar_url": null,
            "type": "bot",
            "bot": {
                "owner": {"type": "workspace", "workspace": true},
                "workspace_name": "Acme HQ"
            },
            "request_id": "5a1b2c3d-0000-0000-0000-000000000001"
        }))
        .into_response(),
        Some(LIMITED) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "You have been rate limited. Please try again in a few minutes.",
            );
            response
                .headers_mut()
                .insert("retry-after", "2".parse().unwrap());
            response
        }
        _ => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "API token is invalid.",
        ),
    }
}

async fn fake() -> String {
    serve(Router::new().route("/v1/users/me", get(me))).await
}

#[tokio::test]
async fn a_valid_token_names_the_bot() {
    let base = fake().await;
    let result = run("notion_token", json!({"token": GOOD, "base_url": base})).await;
    assert_eq!(result.status, CheckStatus::Ok, "{}", result.message);
    assert_eq!(result.identity.as_deref(), Some("Tributary"));
    assert!(result.message.contains("Acme HQ"), "{}", result.message);
}

#[tokio::test]
async fn a_rejected_token_is_unauthorized() {
    let base = fake().await;
    let result = run(
        "notion_token",
        json!({"token": "ntn_WRONG00000secret", "base_url": base}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Unauthorized);
    assert!(
        result.message.contains("unauthorized"),
        "{}",
        result.message
    );
    assert!(result.message.contains("rotate"), "{}", result.message);
}

#[tokio::test]
async fn a_rate_limit_reports_retry_after() {
    let base = fake().await;
    let result = run("notion_token", json!({"token": LIMITED, "base_url": base})).await;
    assert_eq!(result.status, CheckStatus::RateLimited);
    assert!(result.message.contains("in 2 s"), "{}", result.message);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let result = run(
        "notion_token",
        json!({"token": GOOD, "base_url": closed_port()}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Unreachable);
}
