//! R2R v3 documents API: create (multipart), get, delete.
#![expect(
    clippy::result_large_err,
    reason = "checks return a ready error response to answer at once; once per request, so its size does not matter"
)]

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::faults::{Faults, Injector, inject};
use super::server::Server;

/// How the fake R2R behaves from the start.
#[derive(Debug, Clone)]
pub struct FakeR2rConfig {
    /// The key accepted as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    pub api_key: String,
    /// Larger texts answer 413, like R2R's upload size limit.
    pub max_text_bytes: Option<usize>,
    /// Creating beyond this many documents answers 403, like R2R's per-user quota.
    pub max_documents: Option<usize>,
    pub faults: Faults,
}

impl Default for FakeR2rConfig {
    fn default() -> Self {
        Self {
            api_key: "fake-key-id.fake-raw-key".to_owned(),
            max_text_bytes: None,
            max_documents: None,
            faults: Faults::none(),
        }
    }
}

/// One stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeR2rDoc {
    /// `raw_text`, the chunks joined by blank lines, or the file's bytes as UTF-8.
    pub text: String,
    pub metadata: Map<String, Value>,
    pub collection_ids: Vec<Uuid>,
    pub ingestion_mode: String,
}

/// A running fake R2R. Dropping it stops the server.
pub struct FakeR2r {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    config: FakeR2rConfig,
    injector: Arc<Injector>,
    documents: Mutex<BTreeMap<Uuid, FakeR2rDoc>>,
    auth_schemes: Mutex<BTreeMap<&'static str, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeR2r {
    pub async fn start(config: FakeR2rConfig) -> io::Result<Self> {
        let injector = Injector::new(config.faults.clone());
        let shared = Arc::new(Shared {
            config,
            injector: injector.clone(),
            documents: Mutex::new(BTreeMap::new()),
            auth_schemes: Mutex::new(BTreeMap::new()),
        });
        let router = Router::new()
            .route("/v3/documents", post(create))
            .route("/v3/documents/{id}", get(fetch).delete(remove))
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone())
            .layer(from_fn_with_state(injector, inject));
        Ok(Self {
            shared,
            server: Server::start(router).await?,
        })
    }

    /// The API root to put in an R2R target's `base_url`.
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

    pub fn documents(&self) -> BTreeMap<Uuid, FakeR2rDoc> {
        lock(&self.shared.documents).clone()
    }

    pub fn document(&self, id: Uuid) -> Option<FakeR2rDoc> {
        lock(&self.shared.documents).get(&id).cloned()
    }

    pub fn document_count(&self) -> usize {
        lock(&self.shared.documents).len()
    }

    /// Stores a document as if it had been created earlier, e.g. by another client.
    pub fn insert(&self, id: Uuid, document: FakeR2rDoc) {
        lock(&self.shared.documents).insert(id, document);
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

    /// How requests that reached a handler authenticated: `bearer`, `api_key`, `both`
    /// (answered 400) or `none`.
    pub fn auth_schemes(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.shared.auth_schemes).clone()
    }
}

fn r2r_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "message": message, "error_type": "R2RException" })),
    )
        .into_response()
}

fn unprocessable(message: &str) -> Response {
    r2r_error(StatusCode::UNPROCESSABLE_ENTITY, message)
}

impl Shared {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let bearer = headers.get(AUTHORIZATION);
        let api_key = headers.get("x-api-key");
        let scheme = match (bearer, api_key) {
            (Some(_), Some(_)) => "both",
            (Some(_), None) => "bearer",
            (None, Some(_)) => "api_key",
            (None, None) => "none",
        };
        *lock(&self.auth_schemes).entry(scheme).or_default() += 1;
        let presented = match (bearer, api_key) {
            (Some(_), Some(_)) => {
                return Err(r2r_error(
                    StatusCode::BAD_REQUEST,
                    "Send either an Authorization header or an X-API-Key header, not both.",
                ));
            }
            (Some(value), None) => value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")),
            (None, Some(value)) => value.to_str().ok(),
            (None, None) => None,
        };
        if presented == Some(self.config.api_key.as_str()) {
            Ok(())
        } else {
            Err(r2r_error(
                StatusCode::UNAUTHORIZED,
                "Invalid or missing credentials.",
            ))
        }
    }
}

#[derive(Default)]
struct CreateForm {
    file: Option<Vec<u8>>,
    raw_text: Option<String>,
    chunks: Option<String>,
    id: Option<String>,
    metadata: Option<String>,
    collection_ids: Option<String>,
    ingestion_mode: Option<String>,
    run_with_orchestration: Option<String>,
}

async fn read_form(mut multipart: Multipart) -> Result<CreateForm, Response> {
    let bad = |_| unprocessable("The multipart body could not be read.");
    let mut form = CreateForm::default();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            form.file = Some(field.bytes().await.map_err(bad)?.to_vec());
            continue;
        }
        let value = field.text().await.map_err(bad)?;
        let slot = match name.as_str() {
            "raw_text" => &mut form.raw_text,
            "chunks" => &mut form.chunks,
            "id" => &mut form.id,
            "metadata" => &mut form.metadata,
            "collection_ids" => &mut form.collection_ids,
            "ingestion_mode" => &mut form.ingestion_mode,
            "run_with_orchestration" => &mut form.run_with_orchestration,
            // FastAPI ignores form fields it does not declare.
            _ => continue,
        };
        *slot = Some(value);
    }
    Ok(form)
}

async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    if let Err(response) = shared.authorize(&headers) {
        return response;
    }
    let form = match read_form(multipart).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match validate(form) {
        Ok((id, document, orchestrated)) => shared.store(id, document, orchestrated),
        Err(response) => response,
    }
}

fn validate(form: CreateForm) -> Result<(Uuid, FakeR2rDoc, bool), Response> {
    let given = [
        form.file.is_some(),
        form.raw_text.is_some(),
        form.chunks.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(unprocessable(
            "Exactly one of file, raw_text, or chunks must be provided.",
        ));
    }
    let text = if let Some(raw) = form.raw_text {
        raw
    } else if let Some(chunks) = form.chunks {
        let chunks: Vec<String> = serde_json::from_str(&chunks)
            .map_err(|_| unprocessable("chunks must be a JSON list of strings."))?;
        if chunks.len() > 102_400 {
            return Err(unprocessable("chunks holds more than 102,400 entries."));
        }
        chunks.join("\n\n")
    } else {
        String::from_utf8_lossy(&form.file.unwrap_or_default()).into_owned()
    };
    let id = match form.id {
        Some(id) => Uuid::parse_str(&id).map_err(|_| unprocessable("id must be a UUID."))?,
        None => Uuid::new_v4(),
    };
    let metadata = match form.metadata {
        Some(m) => serde_json::from_str::<Map<String, Value>>(&m)
            .map_err(|_| unprocessable("metadata must be a JSON object."))?,
        None => Map::new(),
    };
    let collection_ids = match form.collection_ids {
        Some(c) => serde_json::from_str::<Vec<Uuid>>(&c)
            .map_err(|_| unprocessable("collection_ids must be a JSON list of UUIDs."))?,
        None => Vec::new(),
    };
    let ingestion_mode = form.ingestion_mode.unwrap_or_else(|| "custom".to_owned());
    if !["hi-res", "ocr", "fast", "custom"].contains(&ingestion_mode.as_str()) {
        return Err(unprocessable(
            "ingestion_mode must be one of hi-res, ocr, fast, custom.",
        ));
    }
    let orchestrated = match form.run_with_orchestration.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => {
            return Err(unprocessable(
                "run_with_orchestration must be true or false.",
            ));
        }
    };
    Ok((
        id,
        FakeR2rDoc {
            text,
            metadata,
            collection_ids,
            ingestion_mode,
        },
        orchestrated,
    ))
}

impl Shared {
    fn store(&self, id: Uuid, document: FakeR2rDoc, orchestrated: bool) -> Response {
        if let Some(max) = self.config.max_text_bytes
            && document.text.len() > max
        {
            return r2r_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("File size exceeds maximum of {max} bytes."),
            );
        }
        let mut documents = lock(&self.documents);
        if documents.contains_key(&id) {
            return r2r_error(
                StatusCode::CONFLICT,
                &format!("Document {id} already exists. Submit a DELETE request first."),
            );
        }
        if let Some(max) = self.config.max_documents
            && documents.len() >= max
        {
            return r2r_error(
                StatusCode::FORBIDDEN,
                &format!("User has reached the maximum number of documents allowed ({max})."),
            );
        }
        documents.insert(id, document);
        drop(documents);
        let (status, message, task_id) = if orchestrated {
            (
                StatusCode::ACCEPTED,
                "Document created and ingestion task queued.",
                Value::String(Uuid::new_v4().to_string()),
            )
        } else {
            (
                StatusCode::OK,
                "Document created and ingested successfully.",
                Value::Null,
            )
        };
        (
            status,
            axum::Json(json!({
                "results": { "message": message, "task_id": task_id, "document_id": id }
            })),
        )
            .into_response()
    }
}

fn parse_id(raw: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(raw).map_err(|_| unprocessable("The document id must be a UUID."))
}

async fn fetch(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = shared.authorize(&headers) {
        return response;
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match lock(&shared.documents).get(&id) {
        Some(doc) => axum::Json(json!({
            "results": {
                "id": id,
                "title": doc.metadata.get("title"),
                "metadata": doc.metadata,
                "collection_ids": doc.collection_ids,
                "size_in_bytes": doc.text.len(),
                "ingestion_status": "success",
            }
        }))
        .into_response(),
        None => r2r_error(StatusCode::NOT_FOUND, "Document not found."),
    }
}

async fn remove(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = shared.authorize(&headers) {
        return response;
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match lock(&shared.documents).remove(&id) {
        Some(_) => axum::Json(json!({ "results": { "success": true } })).into_response(),
        None => r2r_error(StatusCode::NOT_FOUND, "Document not found."),
    }
}
