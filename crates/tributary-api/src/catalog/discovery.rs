//! `GET /connectors` and `GET /destinations`: the kinds this build knows, with what they
//! can do, the credential kinds they accept and the JSON Schema of their config, so a
//! UI can draw the form and a script can check a config before sending it.

use crate::auth::{AnyRole, Authorized};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// What a connector kind can do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorCapabilities {
    /// Runs can fetch only what changed since the last run.
    pub incremental: bool,
    /// A run resumes from its last checkpoint after a crash.
    pub checkpoint: bool,
    /// Ids can be listed, so deletions at the source are found by pruning.
    pub prune: bool,
    /// Documents carry access lists.
    pub permissions: bool,
    /// Progress has a total, so runs have an ETA.
    pub estimate: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorOut {
    /// The `source.kind` of a profile.
    pub name: String,
    pub title: String,
    pub description: String,
    pub capabilities: ConnectorCapabilities,
    /// Credential kinds a profile of this kind may use; empty when it takes none.
    pub credential_kinds: Vec<String>,
    /// The JSON Schema of `source.config`.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

/// The connector kinds profiles can read from (any member).
#[utoipa::path(get, path = "/connectors", tag = "catalog",
    responses((status = 200, body = [ConnectorOut])),
    security(("bearer" = ["member"])))]
pub async fn list_connectors(
    State(state): State<AppState>,
    _caller: Authorized<AnyRole>,
) -> Json<Vec<ConnectorOut>> {
    Json(
        state
            .connectors
            .iter()
            .map(|k| ConnectorOut {
                name: k.name.to_owned(),
                title: k.title.to_owned(),
                description: k.description.to_owned(),
                capabilities: ConnectorCapabilities {
                    incremental: k.capabilities.incremental,
                    checkpoint: k.capabilities.checkpoint,
                    prune: k.capabilities.prune,
                    permissions: k.capabilities.permissions,
                    estimate: k.capabilities.estimate,
                },
                credential_kinds: k.credential_kinds.iter().map(|c| (*c).to_owned()).collect(),
                schema: k.schema.clone(),
            })
            .collect(),
    )
}

/// What a destination kind can do.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationCapabilities {
    /// Applies per-document access lists.
    pub permissions: bool,
    /// Takes several documents per request.
    pub batches: bool,
    /// Can delete documents (pruning reaches it).
    pub deletes: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationOut {
    /// The `kind` of a target.
    pub name: String,
    pub title: String,
    pub description: String,
    pub capabilities: DestinationCapabilities,
    /// Credential kinds a target of this kind may use; empty when it takes none.
    pub credential_kinds: Vec<String>,
    /// What a user must know before choosing it.
    pub warnings: Vec<String>,
    /// The JSON Schema of a target's `config`.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

/// The destination kinds targets can deliver to (any member).
#[utoipa::path(get, path = "/destinations", tag = "catalog",
    responses((status = 200, body = [DestinationOut])),
    security(("bearer" = ["member"])))]
pub async fn list_destinations(
    State(state): State<AppState>,
    _caller: Authorized<AnyRole>,
) -> Json<Vec<DestinationOut>> {
    Json(
        state
            .destinations
            .iter()
            .map(|k| DestinationOut {
                name: k.name.to_owned(),
                title: k.title.to_owned(),
                description: k.description.to_owned(),
                capabilities: DestinationCapabilities {
                    permissions: k.capabilities.permissions,
                    batches: k.capabilities.batches,
                    deletes: k.capabilities.deletes,
                },
                credential_kinds: k.credential_kinds.iter().map(|c| (*c).to_owned()).collect(),
                warnings: k.warnings.iter().map(|w| (*w).to_owned()).collect(),
                schema: k.schema.clone(),
            })
            .collect(),
    )
}
