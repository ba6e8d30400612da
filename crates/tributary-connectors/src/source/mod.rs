//! The source contract: what the worker asks of every connector.
//!
//! A connector kind ([`ConnectorKind`]) has a name, a config schema in
//! `schemas/connectors/<name>.json`, the credential kinds it accepts and its
//! capabilities. Building it with a validated config, the decrypted credential and where
//! to start gives a [`Source`], which the worker pulls batches from.
//!
//! The checkpoint is the source's own opaque JSON. The worker commits each batch's
//! documents and its checkpoint in one Kafka transaction, and hands the last committed
//! checkpoint back on resume (same run, after a crash) or on the next incremental run.
//! A source must therefore be able to start from any checkpoint it ever returned, and
//! documents after that checkpoint may be produced twice: delivery is idempotent.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_domain::document::{Document, DocumentFailure};

pub mod access;
pub mod airbyte;
pub mod filesystem;
mod html;
pub mod synthetic;
pub mod web;

pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// Why a source call failed, and so what the worker does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source said to slow down. Only this run waits; other runs go on.
    #[error("the source is rate limiting us; retrying in {}s ({message})", retry_after.as_secs())]
    RateLimited {
        retry_after: Duration,
        message: String,
    },
    /// A timeout, a reset connection, a 5xx: the same call is retried with backoff.
    #[error("the source failed for now: {message}; it will be retried")]
    Transient { message: String },
    /// The profile's config cannot work (a missing directory, a bad URL). The run fails;
    /// fixing the profile is the next step.
    #[error("the source config is not usable: {message}")]
    Config { message: String },
    /// The credential was refused. The run fails; fix or re-authorize the credential.
    #[error("the source refused the credential: {message}")]
    Auth { message: String },
    /// The source cannot do what was asked (e.g. list ids for pruning).
    #[error("the {kind} source cannot {what}")]
    Unsupported {
        kind: &'static str,
        what: &'static str,
    },
    /// Anything else that will not get better by retrying.
    #[error("the source failed: {message}")]
    Failed { message: String },
}

impl SourceError {
    /// Whether calling again later can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient { .. })
    }

    /// How long the source asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Full: everything at the source. Incremental: what changed since the checkpoint of the
/// last successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Incremental,
}

/// Where a run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub mode: Mode,
    /// The last checkpoint committed: of this run when it resumes after a crash, else of
    /// the last successful run (incremental only). `None` starts from the beginning.
    pub checkpoint: Option<Value>,
    /// Whether `checkpoint` belongs to this run (resume) rather than a previous one.
    pub resuming: bool,
    /// The run's start time; sources that poll a time window end it here.
    pub now: DateTime<Utc>,
}

/// What a built source needs from the runtime. Its `Debug` leaves the credential out:
/// it holds decrypted secrets.
#[derive(Clone)]
pub struct BuildContext {
    /// The profile's source config, already valid against the kind's schema.
    pub config: Value,
    /// The credential's full value (secrets decrypted), when the profile has one.
    pub credential: Option<Value>,
    pub start: Start,
    /// A shared HTTP client (timeouts set, no redirects followed by default).
    pub http: reqwest::Client,
    /// A directory this run may use for scratch files (Airbyte config, catalog, state).
    pub work_dir: PathBuf,
}

/// One pull from a source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// New or changed documents.
    pub documents: Vec<Document>,
    /// Ids the source reports as deleted since the checkpoint.
    pub deleted: Vec<String>,
    /// Documents the source could not produce; the run shows them, the rest goes on.
    pub failures: Vec<DocumentFailure>,
    /// Where to resume after this batch is committed.
    pub checkpoint: Value,
    pub progress: Progress,
    /// A new credential value the source handed us (Airbyte CONTROL messages, rotated
    /// tokens): stored encrypted in the profile's credential before the checkpoint moves.
    pub credential_update: Option<Value>,
    /// Things a person should know about this run (skipped files, robots.txt refusals).
    pub warnings: Vec<String>,
}

/// How far a run is. `total` is known only where the source tells it (a sitemap's size,
/// a generator's count, an Airbyte ESTIMATE); the ETA is computed from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Items (documents, deletions, failures) produced so far in this run, resumes included.
    pub done: u64,
    pub total: Option<u64>,
}

/// A running source. Calls come one at a time.
pub trait Source: Send {
    /// The next batch, or `None` when the run is complete. After an error the worker may
    /// call again (after the wait a [`SourceError::RateLimited`] asked for): the source
    /// resumes after the last batch it returned.
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>>>;

    /// Every id present at the source now (a slim listing, for pruning).
    fn list_ids(&mut self) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Tries the config and credential against the source without producing documents,
    /// and says what it found (e.g. "42 files under /srv/docs").
    fn check(&mut self) -> BoxFuture<'_, Result<String>>;
}

/// What a connector kind can do, shown by `GET /api/v1/connectors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Runs can fetch only what changed since the last run.
    pub incremental: bool,
    /// A run resumes from its last checkpoint after a crash.
    pub checkpoint: bool,
    /// `list_ids` works, so deletions are found by pruning.
    pub prune: bool,
    /// Documents carry access lists.
    pub permissions: bool,
    /// Progress has a total, so runs have an ETA.
    pub estimate: bool,
}

/// A connector kind. Registered explicitly in [`Connectors::builtin`].
pub struct ConnectorKind {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub capabilities: Capabilities,
    /// Credential kinds (see [`crate::credentials::Kinds`]) a profile may use; empty when
    /// the source needs none.
    pub credential_kinds: &'static [&'static str],
    /// The JSON Schema of the config.
    pub schema: Value,
    build: fn(BuildContext) -> Result<Box<dyn Source>>,
}

impl ConnectorKind {
    /// Builds a source from a config already valid against [`Self::schema`].
    pub fn build(&self, ctx: BuildContext) -> Result<Box<dyn Source>> {
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
            .field("start", &self.start)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ConnectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorKind")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The connector kinds this build knows, and what the operator lets them reach on the
/// machine (see [`access`]).
#[derive(Debug)]
pub struct Connectors {
    kinds: Vec<ConnectorKind>,
    access: access::LocalAccess,
}

impl Connectors {
    /// Every kind, with nothing on the machine allowed (`filesystem` and `airbyte`
    /// profiles are refused) until [`Self::with_access`] says otherwise.
    pub fn builtin() -> Self {
        Self {
            kinds: vec![
                synthetic::kind(),
                filesystem::kind(),
                web::kind(),
                airbyte::kind(),
            ],
            access: access::LocalAccess::default(),
        }
    }

    pub fn with_access(mut self, access: access::LocalAccess) -> Self {
        self.access = access;
        self
    }

    /// Whether a profile of `kind` with `config` stays within what the operator allows:
    /// asked when a profile is created, changed or checked, and before every run.
    pub fn permit(&self, kind: &str, config: &Value) -> Result<()> {
        self.access.permit(kind, config)
    }

    pub fn get(&self, name: &str) -> Option<&ConnectorKind> {
        self.kinds.iter().find(|k| k.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConnectorKind> {
        self.kinds.iter()
    }
}

/// Parses a bundled schema file; a broken one is a build defect, caught by the tests.
pub(crate) fn bundled_schema(text: &str) -> Value {
    serde_json::from_str(text).expect("bundled connector schema is valid JSON")
}

pub(crate) fn kind(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    capabilities: Capabilities,
    credential_kinds: &'static [&'static str],
    schema: Value,
    build: fn(BuildContext) -> Result<Box<dyn Source>>,
) -> ConnectorKind {
    ConnectorKind {
        name,
        title,
        description,
        capabilities,
        credential_kinds,
        schema,
        build,
    }
}
