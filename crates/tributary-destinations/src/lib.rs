//! Destinations: where Tributary delivers documents. Tributary does not chunk, embed or
//! search; a destination does that with what it receives.
//!
//! A destination kind ([`DestinationKind`]) has a config schema in
//! `schemas/destinations/<name>.json`, the credential kinds it accepts, its capabilities
//! and warnings a user must see (Onyx ignores per-document access lists sent through its
//! ingestion API). Building it gives a [`Sink`], which the deliverer hands batches of
//! upserts and deletes.
//!
//! Every delivery must be idempotent: the same batch may arrive twice after a crash or a
//! retry, and the destination must end in the same state.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use tributary_domain::document::Document;
use uuid::Uuid;

mod batch;
mod credential;
pub mod csv;
pub mod discard;
#[cfg(feature = "fake")]
pub mod fake;
mod http;
pub mod onyx;
pub mod r2r;
pub mod webhook;

/// What to do with one document at a destination.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every op is an upsert, so boxing would add an allocation per document and save nothing"
)]
pub enum Op {
    Upsert(Document),
    Delete,
}

/// One document-level change to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The document's id at the source.
    pub doc_id: String,
    pub op: Op,
}

impl Delivery {
    /// An upsert keyed by the document's own id.
    pub fn upsert(document: Document) -> Self {
        Self {
            doc_id: document.id.clone(),
            op: Op::Upsert(document),
        }
    }

    pub fn delete(doc_id: impl Into<String>) -> Self {
        Self {
            doc_id: doc_id.into(),
            op: Op::Delete,
        }
    }
}

/// Who the documents belong to. Destinations that need their own ids (R2R takes UUIDs)
/// derive them as `Uuid::new_v5(&scope.namespace, doc_id)`, so the same document always
/// maps to the same id and a redelivery is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub org_id: Uuid,
    pub profile_id: Uuid,
    pub target_id: Uuid,
    /// UUIDv5 namespace for this org and profile.
    pub namespace: Uuid,
}

impl Scope {
    pub fn new(org_id: Uuid, profile_id: Uuid, target_id: Uuid) -> Self {
        let namespace = Uuid::new_v5(&org_id, profile_id.as_bytes());
        Self {
            org_id,
            profile_id,
            target_id,
            namespace,
        }
    }

    /// The destination-side id of a source document.
    pub fn document_uuid(&self, doc_id: &str) -> Uuid {
        Uuid::new_v5(&self.namespace, doc_id.as_bytes())
    }
}

pub type Result<T, E = SinkError> = std::result::Result<T, E>;

/// Retry or dead-letter: every delivery error answers that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 5xx, timeouts, reset connections: retried with backoff.
    Transient,
    /// 429 (or an equivalent): retried after `retry_after` when the destination gave it.
    RateLimited,
    /// 4xx other than 429, a document the destination refuses: dead-lettered at once.
    Permanent,
}

/// A failed delivery, safe to log and to put in a dead letter: the message never holds a
/// secret or a document's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub class: ErrorClass,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    /// A sentence saying what failed and what to do next.
    pub message: String,
}

impl SinkError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }

    /// `retry_after` is `None` when the destination did not say how long to wait; the
    /// deliverer then backs off as for a transient error.
    pub fn rate_limited(retry_after: Option<Duration>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::RateLimited,
            status: None,
            retry_after,
            message: message.into(),
        }
    }

    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn is_retriable(&self) -> bool {
        self.class != ErrorClass::Permanent
    }
}

/// A built destination. `deliver` answers one result per delivery, in order.
pub trait Sink: Send + Sync {
    fn deliver<'a>(
        &'a self,
        scope: &'a Scope,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Vec<Result<()>>>;

    /// Tries the config and credential against the destination; says what it found.
    fn check(&self) -> BoxFuture<'_, Result<String>>;
}

/// What a built sink needs from the runtime. Its `Debug` leaves the credential out:
/// it holds decrypted secrets.
#[derive(Clone)]
pub struct BuildContext {
    /// The target's config, already valid against the kind's schema.
    pub config: Value,
    /// The credential's full value (secrets decrypted), when the target has one.
    pub credential: Option<Value>,
    pub http: reqwest::Client,
    /// Where file-based destinations (CSV) write when their config gives a relative path.
    pub data_dir: PathBuf,
}

/// What a destination kind can do, shown by `GET /api/v1/destinations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Applies per-document access lists.
    pub permissions: bool,
    /// Takes several documents per request.
    pub batches: bool,
    /// Can delete documents (pruning reaches it).
    pub deletes: bool,
}

/// A destination kind. Registered explicitly in [`Destinations::builtin`].
pub struct DestinationKind {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub capabilities: Capabilities,
    pub credential_kinds: &'static [&'static str],
    /// Things a user must know before choosing it.
    pub warnings: &'static [&'static str],
    pub schema: Value,
    validate: fn(&Value) -> Result<()>,
    build: fn(BuildContext) -> Result<Box<dyn Sink>>,
}

impl DestinationKind {
    /// Checks what the schema cannot (a URL that does not parse, a path leaving the data
    /// directory), so a target is refused when it is saved rather than at its first
    /// delivery. Errors are permanent and name the field.
    pub fn validate_config(&self, config: &Value) -> Result<()> {
        (self.validate)(config)
    }

    pub fn build(&self, ctx: BuildContext) -> Result<Box<dyn Sink>> {
        (self.build)(ctx)
    }
}

impl std::fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext")
            .field("config", &self.config)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "[redacted]"),
            )
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DestinationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationKind")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Destinations {
    kinds: Vec<DestinationKind>,
}

impl Destinations {
    pub fn builtin() -> Self {
        Self {
            kinds: vec![
                csv::kind(),
                webhook::kind(),
                r2r::kind(),
                onyx::kind(),
                discard::kind(),
            ],
        }
    }

    pub fn get(&self, name: &str) -> Option<&DestinationKind> {
        self.kinds.iter().find(|k| k.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &DestinationKind> {
        self.kinds.iter()
    }
}

/// Parses a schema compiled into the binary. A broken one is a bug the schema tests catch,
/// so it panics rather than making every caller handle an impossible error.
pub(crate) fn builtin_schema(name: &str, text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the {name} destination schema is not JSON: {e}"))
}

/// Reads a target's config into its typed form. The runtime validated it against the
/// schema already, so a failure here means the schema and the type disagree, or the API
/// skipped validation; the message names the field serde complained about.
pub(crate) fn parse_config<T: serde::de::DeserializeOwned>(
    kind: &str,
    config: &Value,
) -> Result<T> {
    T::deserialize(config).map_err(|e| {
        SinkError::permanent(format!(
            "The {kind} target's config is invalid ({e}); fix it and save the target again."
        ))
    })
}

#[cfg(test)]
mod tests;
