//! `/api/v1/audit` (who did what to credentials and keys) and
//! `/api/v1/security/encryption` (key versions, and how many secrets each protects).

use crate::auth::{AdminRole, Authorized};
use crate::paging::Keyset;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tributary_store::credentials::{AuditFilter, tenant_reads};
use tributary_vault::KeyScope;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditParams {
    /// `user:<id>`, `key:<id>` or `system:<role>`.
    pub actor: Option<String>,
    pub credential: Option<Uuid>,
    /// e.g. `credential.revealed`, `credential.tested`, `vault.shredded`.
    pub action: Option<String>,
    /// From this time on (inclusive), RFC 3339.
    pub since: Option<DateTime<Utc>>,
    /// Before this time, RFC 3339.
    pub until: Option<DateTime<Utc>>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub action: String,
    pub actor: Option<String>,
    pub credential_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    /// The event, without ciphertext; secret fields appear by name with their masks.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The org's audit log, oldest first: credential create, update, test, rotate, reveal
/// and delete; data-key rotations, KEK rotations and shredding.
#[utoipa::path(get, path = "/audit", tag = "security", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Authorized<AdminRole>,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let member = caller.member();
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    if let (Some(since), Some(until)) = (params.since, params.until)
        && since >= until
    {
        return Err(ApiError::Invalid {
            detail: "since must be before until".into(),
        });
    }
    let filter = AuditFilter {
        actor: params.actor,
        credential: params.credential,
        action: params.action,
        since: params.since,
        until: params.until,
    };
    let org = member.org;
    let mut rows = state
        .read_as(&member, async |tx| {
            tenant_reads::audit(tx, org, &filter, keyset.after, keyset.fetch()).await
        })
        .await?;
    let next_cursor = keyset.finish(&mut rows, |r| (r.at, r.id));
    Ok(Json(AuditPage {
        items: rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                action: r.action,
                actor: r.actor,
                credential_id: r.credential_id,
                at: r.at,
                detail: r.detail,
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyVersionOut {
    pub version: u32,
    /// The key-encryption key that wraps this data key.
    pub kek_id: String,
    /// Encryptions made with it (it retires long before the safe limit).
    pub encryptions: i64,
    /// Secret fields it still protects.
    pub secrets: i64,
    /// `active` (new writes) or `retired` (decrypts only, until re-encryption moved
    /// its secrets forward).
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EncryptionReport {
    pub algorithm: String,
    /// The key-encryption key new data keys are wrapped with.
    pub primary_kek: String,
    /// Every configured key-encryption key.
    pub configured_keks: Vec<String>,
    /// The org's data-key versions, newest first.
    pub data_keys: Vec<KeyVersionOut>,
    /// Secret fields still under a retired version (re-encryption moves them forward).
    pub awaiting_reencryption: i64,
}

async fn report(state: &AppState, member: &crate::auth::Member) -> ApiResult<EncryptionReport> {
    let scope = KeyScope::Org(member.org);
    let versions = state
        .vault
        .versions(scope)
        .await
        .map_err(|e| ApiError::Kafka(e.to_string()))?;
    let org = member.org;
    let counts: HashMap<i32, i64> = state
        .read_as(member, async |tx| {
            tenant_reads::secrets_per_key(tx, org).await
        })
        .await?
        .into_iter()
        .collect();
    let newest = versions.first().map(|v| v.version);
    let data_keys: Vec<KeyVersionOut> = versions
        .into_iter()
        .map(|v| KeyVersionOut {
            secrets: counts.get(&(v.version as i32)).copied().unwrap_or(0),
            state: if v.retired_at.is_none() {
                "active".into()
            } else {
                "retired".into()
            },
            version: v.version,
            kek_id: v.kek_id,
            encryptions: v.encryptions,
            created_at: v.created_at,
            retired_at: v.retired_at,
        })
        .collect();
    let awaiting_reencryption = counts
        .iter()
        .filter(|(version, _)| Some(**version as u32) != newest)
        .map(|(_, n)| n)
        .sum();
    let ring = state.vault.ring();
    Ok(EncryptionReport {
        algorithm: "AES-256-GCM, per-org data keys wrapped by a key-encryption key".into(),
        primary_kek: ring.primary_id().to_owned(),
        configured_keks: ring.ids().into_iter().map(str::to_owned).collect(),
        data_keys,
        awaiting_reencryption,
    })
}

/// The org's encryption keys: versions, which KEK wraps them, and how many secrets each
/// still protects.
#[utoipa::path(get, path = "/security/encryption", tag = "security",
    responses((status = 200, body = EncryptionReport), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn encryption(
    State(state): State<AppState>,
    caller: Authorized<AdminRole>,
) -> ApiResult<Json<EncryptionReport>> {
    Ok(Json(report(&state, &caller.member()).await?))
}

/// Start a new data-key version for the org. New secrets use it at once; the keeper
/// re-encrypts the existing ones in the background (each as a new event), and the
/// report shows how many are left.
#[utoipa::path(post, path = "/security/encryption/rotate", tag = "security",
    responses((status = 200, body = EncryptionReport), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Authorized<AdminRole>,
) -> ApiResult<Json<EncryptionReport>> {
    let member = caller.member();
    state
        .vault
        .rotate(KeyScope::Org(member.org), &member.actor.tag())
        .await
        .map_err(|e| ApiError::Kafka(e.to_string()))?;
    Ok(Json(report(&state, &member).await?))
}
