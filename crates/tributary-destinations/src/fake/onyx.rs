//! Onyx ingestion API: upsert, list, delete.
#![expect(
    clippy::result_large_err,
    reason = "checks return a ready error response to answer at once; once per request, so its size does not matter"
)]

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Map, Value, json};

use super::faults::{Faults, Injector, inject};
use super::server::Server;
use crate::onyx::ONYX_SOURCES;

/// How the fake Onyx behaves from the start.
#[derive(Debug, Clone)]
pub struct FakeOnyxConfig {
    /// The API key accepted as `Authorization: Bearer <key>` (or in
    /// `X-Onyx-Authorization`).
    pub api_key: String,
    pub faults: Faults,
}

impl Default for FakeOnyxConfig {
    fn default() -> Self {
        Self {
            api_key: "on_fake_api_key".to_owned(),
            faults: Faults::none(),
        }
    }
}

/// One stored document, as Onyx keeps it: `external_access` is dropped, as the real
/// ingestion API does.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeOnyxDoc {
    /// The `DocumentBase` received, with its final `id` and without `external_access`.
    pub document: Value,
    /// The pair it joined (`null` in the request means 1).
    pub cc_pair_id: i64,
}

impl FakeOnyxDoc {
    /// The sections' text joined by blank lines.
    pub fn text(&self) -> String {
        self.document["sections"]
            .as_array()
            .map(|sections| {
                sections
                    .iter()
                    .filter_map(|s| s["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .unwrap_or_default()
    }
}

/// A running fake Onyx. Dropping it stops the server.
pub struct FakeOnyx {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    config: FakeOnyxConfig,
    injector: Arc<Injector>,
    documents: Mutex<BTreeMap<String, FakeOnyxDoc>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeOnyx {
    pub async fn start(config: FakeOnyxConfig) -> io::Result<Self> {
        let injector = Injector::new(config.faults.clone());
        let shared = Arc::new(Shared {
            config,
            injector: injector.clone(),
            documents: Mutex::new(BTreeMap::new()),
        });
        let router = Router::new()
            .route("/onyx-api/ingestion", get(list).post(upsert))
            .route("/onyx-api/ingestion/{document_id}", delete(remove))
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone())
            .layer(from_fn_with_state(injector, inject));
        Ok(Self {
            shared,
            server: Server::start(router).await?,
        })
    }

    /// The API root (what `https://<host>/api` is for a real Onyx), for `base_url`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// A `bearer_token` credential value holding the key, as the runtime hands it over.
    pub fn credential(&self) -> Value {
        json!({ "token": self.shared.config.api_key })
    }

    pub fn documents(&self) -> BTreeMap<String, FakeOnyxDoc> {
        lock(&self.shared.documents).clone()
    }

    pub fn document(&self, id: &str) -> Option<FakeOnyxDoc> {
        lock(&self.shared.documents).get(id).cloned()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.injector.set(faults);
    }

    /// Answers so far by HTTP status, injected faults included.
    pub fn status_counts(&self) -> BTreeMap<u16, u64> {
        self.shared.injector.status_counts()
    }

    pub fn request_count(&self) -> u64 {
        self.shared.injector.request_count()
    }
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "detail": message }))).into_response()
}

fn unprocessable(message: &str) -> Response {
    detail(StatusCode::UNPROCESSABLE_ENTITY, message)
}

impl Shared {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let presented = [AUTHORIZATION.as_str(), "x-onyx-authorization"]
            .iter()
            .filter_map(|name| headers.get(*name)?.to_str().ok())
            .filter_map(|value| value.strip_prefix("Bearer "))
            .any(|key| key == self.config.api_key);
        if presented {
            Ok(())
        } else {
            Err(detail(
                StatusCode::UNAUTHORIZED,
                "Invalid or missing API key.",
            ))
        }
    }
}

/// Onyx's `make_url_compatible`: spaces to underscores, then percent-encoding of
/// everything but unreserved characters.
fn url_compatible(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.replace(' ', "_").bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn is_string_list(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|items| items.iter().all(Value::is_string))
}

/// The checks pydantic makes on `IngestionDocument`, answered with FastAPI's 422.
fn validate(body: &Value) -> Result<(Map<String, Value>, i64), Response> {
    let document = body
        .get("document")
        .and_then(Value::as_object)
        .ok_or_else(|| unprocessable("body.document: field required"))?;
    let cc_pair_id = match body.get("cc_pair_id") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| unprocessable("body.cc_pair_id: value is not a valid integer"))?,
    };
    if !document
        .get("semantic_identifier")
        .is_some_and(Value::is_string)
    {
        return Err(unprocessable(
            "body.document.semantic_identifier: field required",
        ));
    }
    let sections = document
        .get("sections")
        .and_then(Value::as_array)
        .ok_or_else(|| unprocessable("body.document.sections: field required"))?;
    for section in sections {
        let text_ok = section.get("text").is_some_and(Value::is_string);
        let optional_ok = ["link", "heading"]
            .iter()
            .all(|k| section.get(*k).is_none_or(|v| v.is_string() || v.is_null()));
        if !text_ok || !optional_ok {
            return Err(unprocessable(
                "body.document.sections: each section needs a string text",
            ));
        }
    }
    if let Some(source) = document.get("source")
        && !source.as_str().is_some_and(|s| ONYX_SOURCES.contains(&s))
    {
        return Err(unprocessable(
            "body.document.source: value is not a valid DocumentSource",
        ));
    }
    if let Some(metadata) = document.get("metadata") {
        let valid = metadata
            .as_object()
            .is_some_and(|m| m.values().all(|v| v.is_string() || is_string_list(v)));
        if !valid {
            return Err(unprocessable(
                "body.document.metadata: values must be strings or lists of strings",
            ));
        }
    }
    Ok((document.clone(), cc_pair_id))
}

async fn upsert(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = shared.authorize(&headers) {
        return response;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return unprocessable("body: invalid JSON");
    };
    let (mut document, cc_pair_id) = match validate(&body) {
        Ok(valid) => valid,
        Err(response) => return response,
    };
    let id = match document.get("id").and_then(Value::as_str) {
        Some(id) => url_compatible(id),
        None => {
            let name = document["semantic_identifier"].as_str().unwrap_or_default();
            format!("ingestion_api_{}", url_compatible(name))
        }
    };
    document.insert("id".into(), Value::String(id.clone()));
    document.remove("external_access");
    let already_existed = lock(&shared.documents)
        .insert(
            id.clone(),
            FakeOnyxDoc {
                document: Value::Object(document),
                cc_pair_id,
            },
        )
        .is_some();
    axum::Json(json!({ "document_id": id, "already_existed": already_existed })).into_response()
}

async fn list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(response) = shared.authorize(&headers) {
        return response;
    }
    let listed: Vec<Value> = lock(&shared.documents)
        .iter()
        .map(|(id, doc)| {
            json!({
                "document_id": id,
                "semantic_id": doc.document["semantic_identifier"],
                "link": doc.document["sections"][0]["link"],
            })
        })
        .collect();
    axum::Json(listed).into_response()
}

async fn remove(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(document_id): Path<String>,
) -> Response {
    if let Err(response) = shared.authorize(&headers) {
        return response;
    }
    match lock(&shared.documents).remove(&document_id) {
        Some(_) => axum::Json(Value::Null).into_response(),
        None => detail(StatusCode::NOT_FOUND, "Document not found."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_made_url_compatible_like_onyx_does() {
        assert_eq!(url_compatible("a b/c?d"), "a_b%2Fc%3Fd");
        assert_eq!(url_compatible("plain-id_1.2~"), "plain-id_1.2~");
    }
}
