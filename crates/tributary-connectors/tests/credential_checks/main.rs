//! Credential checks against fakes of each source that follow the real API's contract
//! (paths, headers, status codes, JSON bodies, rate-limit headers), served on
//! 127.0.0.1:0. Every check runs through [`run`], which asserts that no secret appears in
//! the result.

mod atlassian;
mod generic;
mod github;
mod google;
mod notion;
mod slack;

use std::collections::BTreeMap;

use axum::Router;
use axum::http::HeaderMap;
use serde_json::{Map, Value};
use tributary_connectors::credentials::{CheckResult, CheckStatus, Kinds, check};

/// Serves `router` on a random local port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The base URL of a port that nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Runs the check of `kind` on a full value, split as the server would, and asserts that
/// no secret leaked into the result.
async fn run(kind: &str, value: Value) -> CheckResult {
    let kind = Kinds::builtin().get(kind).unwrap();
    let Value::Object(value) = value else {
        panic!("not an object")
    };
    let (config, secrets): (Map<String, Value>, BTreeMap<String, String>) = kind.split(value);
    let result = check(&reqwest::Client::new(), kind, &config, &secrets).await;
    assert_no_secret(&result, &secrets);
    assert_eq!(result.ok, result.status == CheckStatus::Ok);
    assert!(!result.message.is_empty());
    result
}

fn assert_no_secret(result: &CheckResult, secrets: &BTreeMap<String, String>) {
    let text = serde_json::to_string(result).unwrap();
    for (field, secret) in secrets {
        assert!(!text.contains(secret.as_str()), "{field} leaked: {text}");
    }
}

/// The Bearer token of a request, as a fake reads it.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
