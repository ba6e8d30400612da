//! A webhook receiver that checks what a careful receiver checks: a fresh timestamp, the
//! signature, and an `Idempotency-Key` it has not processed yet.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::faults::{Faults, Injector, inject};
use super::server::Server;
use crate::webhook::{
    IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookBatch, verify,
};

/// How the fake receiver behaves from the start.
#[derive(Debug, Clone)]
pub struct FakeWebhookConfig {
    /// The shared signing secret.
    pub secret: String,
    /// How far the timestamp may be from the receiver's clock.
    pub tolerance: Duration,
    pub faults: Faults,
}

impl Default for FakeWebhookConfig {
    fn default() -> Self {
        Self {
            secret: "fake-webhook-secret".to_owned(),
            tolerance: Duration::from_secs(300),
            faults: Faults::none(),
        }
    }
}

/// A batch the receiver accepted, the first time its key arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedBatch {
    pub idempotency_key: String,
    pub timestamp: i64,
    pub batch: WebhookBatch,
}

/// A running fake receiver on `POST /hook`. Dropping it stops the server.
pub struct FakeWebhook {
    shared: Arc<Shared>,
    server: Server,
    url: String,
}

#[derive(Default)]
struct Received {
    batches: Vec<ReceivedBatch>,
    keys: HashSet<String>,
    duplicates: u64,
}

struct Shared {
    config: FakeWebhookConfig,
    injector: Arc<Injector>,
    received: Mutex<Received>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeWebhook {
    pub async fn start(config: FakeWebhookConfig) -> io::Result<Self> {
        let injector = Injector::new(config.faults.clone());
        let shared = Arc::new(Shared {
            config,
            injector: injector.clone(),
            received: Mutex::new(Received::default()),
        });
        let router = Router::new()
            .route("/hook", post(receive))
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone())
            .layer(from_fn_with_state(injector, inject));
        let server = Server::start(router).await?;
        Ok(Self {
            url: format!("{}/hook", server.base_url()),
            shared,
            server,
        })
    }

    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The receiving endpoint, for a webhook target's `url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn secret(&self) -> &str {
        &self.shared.config.secret
    }

    /// A `bearer_token` credential value holding the secret, as the runtime hands it over.
    pub fn credential(&self) -> Value {
        json!({ "token": self.shared.config.secret })
    }

    /// Accepted batches in arrival order, each key once.
    pub fn batches(&self) -> Vec<ReceivedBatch> {
        lock(&self.shared.received).batches.clone()
    }

    /// Valid requests whose key had been processed already (answered 200, not recorded).
    pub fn duplicates(&self) -> u64 {
        lock(&self.shared.received).duplicates
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.injector.set(faults);
    }

    /// Answers so far by HTTP status, injected faults and refusals included.
    pub fn status_counts(&self) -> BTreeMap<u16, u64> {
        self.shared.injector.status_counts()
    }

    pub fn request_count(&self) -> u64 {
        self.shared.injector.request_count()
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(timestamp) = header(&headers, TIMESTAMP_HEADER).and_then(|t| t.parse::<i64>().ok())
    else {
        return refuse(StatusCode::BAD_REQUEST, "missing or malformed timestamp");
    };
    let skew = chrono::Utc::now().timestamp().abs_diff(timestamp);
    if skew > shared.config.tolerance.as_secs() {
        return refuse(StatusCode::BAD_REQUEST, "timestamp outside the tolerance");
    }
    let signed = header(&headers, SIGNATURE_HEADER).is_some_and(|signature| {
        verify(shared.config.secret.as_bytes(), timestamp, &body, signature)
    });
    if !signed {
        return refuse(StatusCode::UNAUTHORIZED, "missing or invalid signature");
    }
    let Some(key) = header(&headers, IDEMPOTENCY_HEADER).filter(|k| !k.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Idempotency-Key");
    };
    let Ok(batch) = serde_json::from_slice::<WebhookBatch>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "the body is not a Tributary batch");
    };
    let mut received = lock(&shared.received);
    if !received.keys.insert(key.to_owned()) {
        received.duplicates += 1;
        return axum::Json(json!({ "duplicate": true })).into_response();
    }
    received.batches.push(ReceivedBatch {
        idempotency_key: key.to_owned(),
        timestamp,
        batch,
    });
    axum::Json(json!({ "duplicate": false })).into_response()
}
