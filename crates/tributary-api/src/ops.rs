//! `/healthz`, `/readyz`, `/metrics`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rdkafka::producer::Producer;
use std::time::Duration;

/// The process is alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when Kafka and Postgres answer and the projections in this process have
/// nothing waiting.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    match state.db.get().await {
        Ok(client) => {
            if let Err(e) = client.simple_query("SELECT 1").await {
                problems.push(format!("postgres: {e}"));
            }
        }
        Err(e) => problems.push(format!("postgres: {e}")),
    }
    let producer = state.producer.clone();
    let kafka = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
            .map(|_| ())
    })
    .await;
    match kafka {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("kafka: {e}")),
        Err(e) => problems.push(format!("kafka: {e}")),
    }
    if let Some(probe) = &state.readiness {
        for projection in probe() {
            problems.push(format!("projection {projection} is catching up"));
        }
    }
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not ready", "problems": problems })),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        )
            .into_response(),
    }
}
