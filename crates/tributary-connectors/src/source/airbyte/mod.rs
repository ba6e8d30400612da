//! The `airbyte` source: runs any Airbyte source (e.g. `airbyte-source-github` from PyPI)
//! as a subprocess and turns its records into documents.
//!
//! # Protocol
//! The commands are `spec`, `check --config F`, `discover --config F` and
//! `read --config F --catalog F [--state F]`; the source answers with one JSON message per
//! stdout line. The config file is the profile's `config` with the credential merged in
//! (see [`AirbyteConfig::credential_fields`]); it, the configured catalog and the state
//! file are written to the run's work directory with mode 0600 and removed when the
//! command ends, or when the source is dropped, which also kills the process.
//!
//! The process gets only a few variables of Tributary's environment (`PATH`, `HOME`,
//! locale, proxy and CA settings) plus [`AirbyteConfig::env`]: the server's own
//! environment holds secrets a third-party source has no business seeing.
//!
//! # Batches and checkpoints
//! During `read`, a batch ends at each STATE message; its checkpoint is the last state
//! of every stream (see the format in `state.rs`: `{"v": 1, "states": [...],
//! "records": n}`). The worker commits a batch and its checkpoint together, so a state is
//! persisted only once everything before it is. A batch also ends after
//! [`AirbyteConfig::batch_size`] records without a STATE, with the checkpoint of the last
//! state seen: a resume then re-reads the records after that state, and idempotent
//! delivery absorbs them. A CONTROL message ends a batch too, so that the updated
//! credential is stored at once (a refreshed token may have revoked the old one).
//!
//! A full run passes no state, so incremental streams read everything and leave the
//! states the next incremental run starts from. Full-refresh streams start over on
//! every new run; a resume (same run) passes their state as well.
//!
//! # Errors
//! A TRACE error's `failure_type` decides: `config_error` → [`SourceError::Config`](super::SourceError::Config),
//! `transient_error` → [`SourceError::Transient`](super::SourceError::Transient), `system_error` →
//! [`SourceError::Failed`](super::SourceError::Failed), with the source's message. A process that exits non-zero
//! without one fails with the end of its stderr. What was read after the last batch is
//! dropped; a retry starts again from the last checkpoint. Records that cannot be mapped
//! are per-document failures. Every message that reaches an error, a warning, a failure
//! or a log line has the credential's secret values (and any value a CONTROL message
//! brought) replaced by `[redacted]`.
//!
//! # Listing ids
//! `list_ids` runs a second, full-refresh `read` of the synced streams and keeps only the
//! ids: it costs as much as a full sync (API calls, rate limits, time), so prune rarely.
//! A stream that only supports incremental sync cannot be listed completely, so
//! `list_ids` is then [`SourceError::Unsupported`](super::SourceError::Unsupported).

mod catalog;
mod config;
mod connector;
mod credential;
mod mapping;
mod process;
mod protocol;
mod redact;
mod source;
mod state;
mod template;

pub use config::{
    AirbyteConfig, Command, MetadataMapping, Pointers, StreamConfig, StreamMapping, SyncMode,
    TextMapping,
};
pub use connector::AirbyteConnector;
pub use protocol::DiscoveredStream;

use super::{Capabilities, ConnectorKind};

/// Every credential kind can be passed to an Airbyte source: it is merged into the
/// source's config.
const CREDENTIAL_KINDS: &[&str] = &[
    "github_token",
    "slack_bot_token",
    "notion_token",
    "atlassian_api_token",
    "google_service_account",
    "basic_auth",
    "bearer_token",
    "oauth2",
];

pub(crate) fn kind() -> ConnectorKind {
    super::kind(
        "airbyte",
        "Airbyte source",
        "Runs any Airbyte source (installed from PyPI as airbyte-source-<name>) and turns the records of its streams into documents.",
        Capabilities {
            incremental: true,
            checkpoint: true,
            prune: true,
            permissions: false,
            estimate: true,
        },
        CREDENTIAL_KINDS,
        super::bundled_schema(include_str!(
            "../../../../../schemas/connectors/airbyte.json"
        )),
        source::build,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Kinds;

    #[test]
    fn schema_accepts_its_examples_and_they_parse() {
        let kind = kind();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&kind.schema)
            .unwrap();
        let examples = kind.schema["examples"].as_array().unwrap();
        assert!(!examples.is_empty());
        for example in examples {
            assert!(validator.is_valid(example), "{example}");
            AirbyteConfig::from_value(example.clone()).unwrap();
        }
        for bad in [
            serde_json::json!({}),
            serde_json::json!({ "command": "x", "extra": 1 }),
            serde_json::json!({ "command": "x", "mapping": { "s": { "id": "no-slash" } } }),
            serde_json::json!({ "command": "x", "streams": [{ "name": "s", "sync_mode": "sometimes" }] }),
        ] {
            assert!(!validator.is_valid(&bad), "{bad}");
        }
    }

    #[test]
    fn schema_defaults_are_the_typed_defaults() {
        let schema = kind().schema;
        let typed = serde_json::to_value(AirbyteConfig::new(Command::Program("x".into()))).unwrap();
        for field in ["timeout_secs", "batch_size"] {
            assert_eq!(
                schema["properties"][field]["default"], typed[field],
                "{field}"
            );
        }
        for (field, property) in schema["properties"].as_object().unwrap() {
            assert!(property.get("title").is_some(), "{field} has no title");
            assert!(
                property.get("description").is_some(),
                "{field} has no description"
            );
        }
    }

    #[test]
    fn credential_kinds_exist() {
        for name in CREDENTIAL_KINDS {
            assert!(Kinds::builtin().get(name).is_some(), "{name}");
        }
    }
}
