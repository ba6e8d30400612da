//! `/api/v1/credentials`: the secrets connectors and destinations sign in with.
//!
//! The API is the only place plaintext exists, and only for the length of a request:
//! each secret field (per the kind's schema, `writeOnly`) is sealed by the vault under
//! the org's data key before the command is produced, and what is shown afterwards is a
//! mask. Curators may list, read (masked) and test credentials, to attach them; changing
//! them, and revealing a secret, is for admins — a reveal needs the admin's password
//! again and is recorded (who, when, from where) before the plaintext is answered.

use crate::account::ClientAddr;
use crate::auth::{AdminRole, Authorized, CuratorRole, Member, MinRole};
use crate::gateway::{self, Command};
use crate::orgs::accepted;
use crate::paging::Keyset;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::marker::PhantomData;
use tributary_connectors::credentials::{CheckResult, CredentialKind, Kinds};
use tributary_domain::credential::{self as cred, Credential};
use tributary_domain::{Aggregate, CommandId, OrgId};
use tributary_store::credentials::{self as store, CredentialRow, SecretRow, tenant_reads};
use tributary_vault::{KeyScope, Secret};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        detail: detail.into(),
    }
}

fn not_found(id: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound {
        what: format!("credential {id}"),
    }
}

fn parse_id(id: &str) -> ApiResult<Uuid> {
    id.parse().map_err(|_| not_found(id))
}

/// A vault failure as an answer: never the secret, and a hint what to do.
use crate::people::vault_error;

fn kind_of(name: &str) -> ApiResult<&'static CredentialKind> {
    Kinds::builtin().get(name).ok_or_else(|| {
        let known: Vec<&str> = Kinds::builtin().all().map(|k| k.name).collect();
        bad(format!(
            "unknown credential kind {name:?}; known kinds: {}",
            known.join(", ")
        ))
    })
}

fn field_errors(errors: Vec<tributary_connectors::credentials::FieldError>) -> ApiError {
    let details: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.pointer, e.message))
        .collect();
    bad(format!(
        "the values do not fit the kind: {}",
        details.join("; ")
    ))
}

/// Field values of a request (secret and not), by field name.
pub type Values = serde_json::Map<String, serde_json::Value>;

/// Seals each secret field under the org's data key, bound to this credential and field.
pub(crate) async fn seal(
    state: &AppState,
    org: Uuid,
    credential: Uuid,
    secrets: &BTreeMap<String, Secret>,
    actor: &str,
) -> ApiResult<cred::SealedFields> {
    let record = credential.to_string();
    let fields: Vec<(&str, &[u8])> = secrets
        .iter()
        .map(|(f, s)| (f.as_str(), s.expose().as_bytes()))
        .collect();
    let sealed = state
        .vault
        .seal(KeyScope::Org(org), &record, &fields, actor)
        .await
        .map_err(vault_error)?;
    Ok(secrets
        .iter()
        .zip(sealed)
        .map(|((field, secret), sealed)| {
            (
                field.clone(),
                cred::SealedField {
                    sealed,
                    mask: tributary_vault::mask(secret.expose()),
                },
            )
        })
        .collect())
}

/// Splits request values into config and secrets, after validating them in full.
fn split(
    kind: &CredentialKind,
    values: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<(cred::Config, BTreeMap<String, Secret>)> {
    kind.validate(&serde_json::Value::Object(values.clone()))
        .map_err(field_errors)?;
    let (config, secrets) = kind.split(values);
    Ok((
        config,
        secrets
            .into_iter()
            .map(|(f, s)| (f, Secret::new(s)))
            .collect(),
    ))
}

/// Sends a credential command and waits until the read model shows it. `Ok(Err(id))`:
/// still in progress after the longest wait (answer 202).
pub(crate) async fn send(
    state: &AppState,
    member: &Member,
    headers: &HeaderMap,
    credential: Uuid,
    ty: &'static str,
    mut data: serde_json::Value,
) -> ApiResult<Result<(), CommandId>> {
    data["credential_id"] = serde_json::json!(credential);
    data["org_id"] = serde_json::json!(member.org);
    data["actor"] = serde_json::json!(member.actor.tag());
    data["at"] = serde_json::json!(Utc::now());
    let key = credential.to_string();
    let command = Command {
        aggregate: Credential::KIND,
        key: &key,
        ty,
        org_id: Some(OrgId(member.org)),
        data,
    };
    let caller = crate::auth::Caller::Member(*member);
    let (id, version, left) = match gateway::send_accepted(state, &caller, command, headers).await?
    {
        gateway::Sent::Accepted { id, version, left } => (id, version, left),
        gateway::Sent::Pending(id) => return Ok(Err(id)),
    };
    let caught_up = move |v: &i64| *v >= version;
    let rx = state.waiters.credentials.register(credential, caught_up);
    let now = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        store::versions(&**client, &[credential])
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .find(caught_up)
    };
    Ok(match crate::waiters::Waiters::wait(rx, now, left).await {
        Some(_) => Ok(()),
        None => Err(id),
    })
}

/// A secret field as shown: its mask, never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaskedSecret {
    pub mask: String,
    /// The data-key version it is sealed under.
    pub key_version: i32,
    /// The org's keys were destroyed: the value is gone for good.
    pub shredded: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialOut {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    /// Non-secret fields.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Secret fields of the version in use, masked.
    pub secrets: BTreeMap<String, MaskedSecret>,
    /// The secret version in use.
    pub version: i32,
    /// A rotated version waiting for a passing test or a confirmation.
    pub pending_version: Option<i32>,
    /// `active` or `needs_reauthorization`.
    pub status: String,
    /// The last check's result.
    #[schema(value_type = Option<Object>)]
    pub last_test: Option<serde_json::Value>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn out(row: CredentialRow, secrets: &[SecretRow]) -> CredentialOut {
    CredentialOut {
        secrets: secrets
            .iter()
            .filter(|s| s.credential_id == row.id && s.secret_version == row.version)
            .map(|s| {
                (
                    s.field.clone(),
                    MaskedSecret {
                        mask: if s.shredded {
                            "shredded".into()
                        } else {
                            s.mask.clone()
                        },
                        key_version: s.key_version,
                        shredded: s.shredded,
                    },
                )
            })
            .collect(),
        id: row.id,
        kind: row.kind,
        name: row.name,
        config: row.config,
        version: row.version,
        pending_version: row.pending_version,
        status: row.status,
        last_test: row.last_test,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

async fn read_one(
    state: &AppState,
    member: &Member,
    id: Uuid,
) -> ApiResult<(CredentialRow, Vec<SecretRow>)> {
    let org = member.org;
    state
        .read_as(member, async |tx| {
            let row = tenant_reads::get(tx, org, id).await?;
            let secrets = match &row {
                Some(_) => tenant_reads::secrets(tx, org, &[id]).await?,
                None => Vec::new(),
            };
            Ok(row.map(|r| (r, secrets)))
        })
        .await?
        .ok_or_else(|| not_found(id))
}

pub(crate) async fn answer(
    state: &AppState,
    member: &Member,
    id: Uuid,
    status: StatusCode,
) -> ApiResult<Response> {
    let (row, secrets) = read_one(state, member, id).await?;
    Ok((status, Json(out(row, &secrets))).into_response())
}

/// A credential of the caller's org, named by the path's `{id}`; resolved (role first,
/// then 404 for an id that is not the org's) before any body is read, so another org's
/// id answers exactly like one that does not exist.
pub struct OwnCredential<R: MinRole> {
    pub member: Member,
    pub id: Uuid,
    _role: PhantomData<R>,
}

impl<R: MinRole> FromRequestParts<AppState> for OwnCredential<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let member = Authorized::<R>::from_request_parts(parts, state)
            .await?
            .member();
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found("(no id)"))?;
        let raw = params.get("id").map(String::as_str).unwrap_or_default();
        let id = parse_id(raw)?;
        let org = member.org;
        let exists = state
            .read_as(&member, async |tx| tenant_reads::get(tx, org, id).await)
            .await?
            .is_some();
        if !exists {
            return Err(not_found(id));
        }
        Ok(Self {
            member,
            id,
            _role: PhantomData,
        })
    }
}

fn settled(result: Result<(), CommandId>) -> Option<CommandId> {
    result.err()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// A kind from `GET /credential-kinds`, e.g. `github_token`.
    pub kind: String,
    pub name: String,
    /// All fields of the kind, secret and not.
    #[schema(value_type = Object)]
    pub values: Values,
}

/// Create a credential. Secret fields are encrypted before anything is stored.
#[utoipa::path(post, path = "/credentials", tag = "credentials", request_body = NewCredential,
    responses((status = 201, body = CredentialOut), (status = 202, description = "Accepted; still being applied"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authorized<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<NewCredential>,
) -> ApiResult<Response> {
    let member = caller.member();
    let kind = kind_of(&body.kind)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(bad("name must be 1 to 200 characters"));
    }
    let (config, secrets) = split(kind, body.values)?;
    if secrets.is_empty() {
        return Err(bad("the kind has secret fields; give at least one"));
    }
    let id = Uuid::now_v7();
    let sealed = seal(&state, member.org, id, &secrets, &member.actor.tag()).await?;
    let data = serde_json::json!({
        "kind": kind.name, "name": name, "config": config, "secrets": sealed,
    });
    match settled(send(&state, &member, &headers, id, cred::CREATE, data).await?) {
        Some(command) => Ok(accepted(command)),
        None => answer(&state, &member, id, StatusCode::CREATED).await,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialPage {
    pub items: Vec<CredentialOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The org's credentials, secrets masked (curators and admins).
#[utoipa::path(get, path = "/credentials", tag = "credentials", params(ListParams),
    responses((status = 200, body = CredentialPage), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<CuratorRole>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<CredentialPage>> {
    let member = caller.member();
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    let org = member.org;
    let (mut rows, secrets) = state
        .read_as(&member, async |tx| {
            let rows = tenant_reads::list(tx, org, keyset.after, keyset.fetch()).await?;
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            let secrets = tenant_reads::secrets(tx, org, &ids).await?;
            Ok((rows, secrets))
        })
        .await?;
    let next_cursor = keyset.finish(&mut rows, |r| (r.created_at, r.id));
    Ok(Json(CredentialPage {
        items: rows.into_iter().map(|r| out(r, &secrets)).collect(),
        next_cursor,
    }))
}

/// One credential, secrets masked (curators and admins).
#[utoipa::path(get, path = "/credentials/{id}", tag = "credentials", params(("id" = Uuid, Path)),
    responses((status = 200, body = CredentialOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn get(
    State(state): State<AppState>,
    credential: OwnCredential<CuratorRole>,
) -> ApiResult<Response> {
    answer(&state, &credential.member, credential.id, StatusCode::OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialPatch {
    pub name: Option<String>,
    /// Non-secret fields to change; secret fields change through `rotate`.
    #[schema(value_type = Option<Object>)]
    pub values: Option<Values>,
}

/// Rename a credential or change its non-secret fields.
#[utoipa::path(patch, path = "/credentials/{id}", tag = "credentials", request_body = CredentialPatch,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CredentialOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn update(
    State(state): State<AppState>,
    credential: OwnCredential<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<CredentialPatch>,
) -> ApiResult<Response> {
    let (member, id) = (credential.member, credential.id);
    let (row, _) = read_one(&state, &member, id).await?;
    let kind = kind_of(&row.kind)?;
    let mut data = serde_json::json!({});
    if let Some(name) = &body.name {
        data["name"] = serde_json::json!(name.trim());
    }
    if let Some(values) = body.values {
        if let Some(secret) = values.keys().find(|f| kind.is_secret(f)) {
            return Err(bad(format!(
                "{secret} is a secret field; change it with POST /credentials/{id}/rotate"
            )));
        }
        let mut config = row.config.as_object().cloned().unwrap_or_default();
        config.extend(values);
        // Validate the whole value with placeholders for the secrets we do not hold;
        // only problems with the non-secret fields count.
        let mut full = config.clone();
        for field in kind.secret_fields() {
            full.entry(field.clone())
                .or_insert_with(|| serde_json::json!("placeholder"));
        }
        if let Err(errors) = kind.validate(&serde_json::Value::Object(full)) {
            let errors: Vec<_> = errors
                .into_iter()
                .filter(|e| {
                    !kind
                        .secret_fields()
                        .iter()
                        .any(|f| e.pointer == format!("/{f}"))
                })
                .collect();
            if !errors.is_empty() {
                return Err(field_errors(errors));
            }
        }
        data["config"] = serde_json::Value::Object(config);
    }
    match settled(send(&state, &member, &headers, id, cred::UPDATE, data).await?) {
        Some(command) => Ok(accepted(command)),
        None => answer(&state, &member, id, StatusCode::OK).await,
    }
}

/// Delete a credential.
#[utoipa::path(delete, path = "/credentials/{id}", tag = "credentials", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn delete(
    State(state): State<AppState>,
    credential: OwnCredential<AdminRole>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (member, id) = (credential.member, credential.id);
    read_one(&state, &member, id).await?;
    match settled(
        send(
            &state,
            &member,
            &headers,
            id,
            cred::DELETE,
            serde_json::json!({}),
        )
        .await?,
    ) {
        Some(command) => Ok(accepted(command)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// The full value of credential `id` of the member's org — its config with the secret
/// fields of the version in use opened — to build a source or a sink with. `Ok(None)`:
/// the org has no live credential of that id. The value is plaintext: it must never
/// reach a log line, an error, an event or an answer; drop it once the component is
/// built.
pub(crate) async fn open_full(
    state: &AppState,
    member: &Member,
    id: Uuid,
) -> ApiResult<Option<store::OpenCredential>> {
    let client = state.db.get().await.map_err(tributary_store::Error::from)?;
    store::open_value(&**client, &state.vault, member.org, id)
        .await
        .map_err(vault_error)
}

/// Opens the secret fields of one version of a credential.
async fn open_version(
    state: &AppState,
    org: Uuid,
    id: Uuid,
    secrets: &[SecretRow],
    version: i32,
    only: Option<&[String]>,
) -> ApiResult<BTreeMap<String, Secret>> {
    let record = id.to_string();
    let mut open = BTreeMap::new();
    for s in secrets.iter().filter(|s| s.secret_version == version) {
        if only.is_some_and(|only| !only.contains(&s.field)) {
            continue;
        }
        let plain = state
            .vault
            .open(KeyScope::Org(org), &record, &s.field, &s.sealed)
            .await
            .map_err(vault_error)?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| bad(format!("secret field {} is not text", s.field)))?;
        open.insert(s.field.clone(), Secret::new(text));
    }
    Ok(open)
}

/// Runs the kind's check with one version's secrets and records the result.
async fn run_test(
    state: &AppState,
    member: &Member,
    headers: &HeaderMap,
    row: &CredentialRow,
    secrets: BTreeMap<String, Secret>,
    version: i32,
) -> ApiResult<(CheckResult, Result<(), CommandId>)> {
    let kind = kind_of(&row.kind)?;
    let config = row.config.as_object().cloned().unwrap_or_default();
    let plain: BTreeMap<String, String> = secrets
        .iter()
        .map(|(f, s)| (f.clone(), s.expose().to_owned()))
        .collect();
    let result = tributary_connectors::credentials::check(&state.http, kind, &config, &plain).await;
    drop(plain);
    let mut data = serde_json::json!({
        "version": version, "ok": result.ok,
        "status": serde_json::to_value(result.status).unwrap_or_default(),
        "message": result.message.chars().take(1000).collect::<String>(),
    });
    if let Some(identity) = &result.identity {
        data["identity"] = serde_json::json!(identity.chars().take(500).collect::<String>());
    }
    let settled = send(state, member, headers, row.id, cred::RECORD_TEST, data).await?;
    Ok((result, settled))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// Test the pending (rotated) version instead of the one in use; default: the
    /// pending one if there is one. A passing pending version takes over.
    pub pending: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestOut {
    pub version: i32,
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
    pub credential: CredentialOut,
}

/// Check a credential against its source and record the result (curators and admins).
#[utoipa::path(post, path = "/credentials/{id}/test", tag = "credentials", request_body = Option<TestRequest>,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TestOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn test(
    State(state): State<AppState>,
    credential: OwnCredential<CuratorRole>,
    headers: HeaderMap,
    body: Option<Json<TestRequest>>,
) -> ApiResult<Response> {
    let (member, id) = (credential.member, credential.id);
    let (row, secrets) = read_one(&state, &member, id).await?;
    let pending = body.and_then(|b| b.0.pending);
    let version = match (pending, row.pending_version) {
        (Some(true), None) => return Err(bad("the credential has no pending rotation")),
        (Some(false), _) | (None, None) => row.version,
        (_, Some(p)) => p,
    };
    let open = open_version(&state, member.org, id, &secrets, version, None).await?;
    let (result, settled) = run_test(&state, &member, &headers, &row, open, version).await?;
    if let Err(command) = settled {
        return Ok(accepted(command));
    }
    let (row, secrets) = read_one(&state, &member, id).await?;
    Ok(Json(TestOut {
        version,
        result: serde_json::to_value(&result).unwrap_or_default(),
        credential: out(row, &secrets),
    })
    .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// New values of secret fields; fields left out keep their value.
    #[schema(value_type = Object)]
    pub values: Values,
    /// Test the new version right away (default true); it takes over if it passes.
    pub test: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotateOut {
    /// The new secret version (pending until tested or confirmed).
    pub version: i32,
    /// Whether the new version is in use now.
    pub active: bool,
    #[schema(value_type = Option<Object>)]
    pub test: Option<serde_json::Value>,
    pub credential: CredentialOut,
}

/// Replace secret fields. The previous secrets stay in use until the new ones pass a
/// test or an admin confirms them (`…/rotate/confirm`).
#[utoipa::path(post, path = "/credentials/{id}/rotate", tag = "credentials", request_body = RotateRequest,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = RotateOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn rotate(
    State(state): State<AppState>,
    credential: OwnCredential<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<RotateRequest>,
) -> ApiResult<Response> {
    let (member, id) = (credential.member, credential.id);
    let (row, secrets) = read_one(&state, &member, id).await?;
    let kind = kind_of(&row.kind)?;
    if let Some(field) = body.values.keys().find(|f| !kind.is_secret(f)) {
        return Err(bad(format!(
            "{field} is not a secret field of {}; change it with PATCH /credentials/{id}",
            kind.name
        )));
    }
    let mut new: BTreeMap<String, Secret> = BTreeMap::new();
    for (field, value) in body.values {
        let serde_json::Value::String(text) = value else {
            return Err(bad(format!("{field} must be a string")));
        };
        new.insert(field, Secret::new(text));
    }
    if new.is_empty() {
        return Err(bad("give at least one secret field to rotate"));
    }
    // The full new value must fit the kind: the new secrets over the current ones.
    let mut current = open_version(&state, member.org, id, &secrets, row.version, None).await?;
    let mut full = row.config.as_object().cloned().unwrap_or_default();
    for (field, secret) in current.iter().chain(new.iter()) {
        full.insert(field.clone(), serde_json::json!(secret.expose()));
    }
    if let Err(errors) = kind.validate(&serde_json::Value::Object(full)) {
        return Err(field_errors(errors));
    }
    drop(std::mem::take(&mut current));
    let sealed_new = seal(&state, member.org, id, &new, &member.actor.tag()).await?;
    // Unchanged fields keep their ciphertext: it is bound to the credential and field,
    // not to the secret version.
    let mut all: cred::SealedFields = secrets
        .iter()
        .filter(|s| s.secret_version == row.version)
        .map(|s| {
            (
                s.field.clone(),
                cred::SealedField {
                    sealed: s.sealed.clone(),
                    mask: s.mask.clone(),
                },
            )
        })
        .collect();
    all.extend(sealed_new);
    let data = serde_json::json!({ "secrets": all });
    if let Err(command) = send(&state, &member, &headers, id, cred::ROTATE, data).await? {
        return Ok(accepted(command));
    }
    let (row, secrets) = read_one(&state, &member, id).await?;
    let version = row
        .pending_version
        .ok_or_else(|| ApiError::Kafka("the rotation was applied but is not pending".into()))?;
    let mut test = None;
    if body.test.unwrap_or(true) {
        let open = open_version(&state, member.org, id, &secrets, version, None).await?;
        let (result, settled) = run_test(&state, &member, &headers, &row, open, version).await?;
        if let Err(command) = settled {
            return Ok(accepted(command));
        }
        test = Some(serde_json::to_value(&result).unwrap_or_default());
    }
    let (row, secrets) = read_one(&state, &member, id).await?;
    Ok(Json(RotateOut {
        version,
        active: row.version == version,
        test,
        credential: out(row, &secrets),
    })
    .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    /// The pending version.
    pub version: i32,
}

async fn settle(
    state: AppState,
    member: Member,
    headers: HeaderMap,
    id: Uuid,
    version: i32,
    ty: &'static str,
) -> ApiResult<Response> {
    if version < 1 {
        return Err(bad("version must be at least 1"));
    }
    let data = serde_json::json!({ "version": version });
    match settled(send(&state, &member, &headers, id, ty, data).await?) {
        Some(command) => Ok(accepted(command)),
        None => answer(&state, &member, id, StatusCode::OK).await,
    }
}

/// Put a pending secret version in use without a passing test.
#[utoipa::path(post, path = "/credentials/{id}/rotate/confirm", tag = "credentials", request_body = SettleRequest,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CredentialOut), (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn confirm_rotation(
    State(state): State<AppState>,
    credential: OwnCredential<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<SettleRequest>,
) -> ApiResult<Response> {
    settle(
        state,
        credential.member,
        headers,
        credential.id,
        body.version,
        cred::CONFIRM_ROTATION,
    )
    .await
}

/// Discard a pending secret version.
#[utoipa::path(post, path = "/credentials/{id}/rotate/cancel", tag = "credentials", request_body = SettleRequest,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CredentialOut), (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn cancel_rotation(
    State(state): State<AppState>,
    credential: OwnCredential<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<SettleRequest>,
) -> ApiResult<Response> {
    settle(
        state,
        credential.member,
        headers,
        credential.id,
        body.version,
        cred::CANCEL_ROTATION,
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    /// The admin's password, confirmed again for every reveal.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
    /// Which secret fields; default all.
    pub fields: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct RevealOut {
    pub version: i32,
    /// Plaintext of the secret fields. Shown once: keep it out of logs and tickets.
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, String>,
}

/// Reveal secret fields in plaintext (admins, with their password). Recorded in the
/// audit log — who, when, from where — before the answer is sent.
#[utoipa::path(post, path = "/credentials/{id}/reveal", tag = "credentials", request_body = RevealRequest,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = RevealOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn reveal(
    State(state): State<AppState>,
    credential: OwnCredential<AdminRole>,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Json(body): Json<RevealRequest>,
) -> ApiResult<Response> {
    let (member, id) = (credential.member, credential.id);
    let Some(user) = member.actor.user() else {
        return Err(ApiError::Forbidden(
            "revealing a secret needs a person's password; API keys cannot reveal".into(),
        ));
    };
    if !crate::people::confirm_password(&state, user, body.password).await? {
        return Err(ApiError::Forbidden(
            "the password does not match; confirm your own password to reveal a secret".into(),
        ));
    }
    let (row, secrets) = read_one(&state, &member, id).await?;
    let fields: Vec<String> = match body.fields {
        Some(fields) if !fields.is_empty() => fields,
        _ => secrets
            .iter()
            .filter(|s| s.secret_version == row.version)
            .map(|s| s.field.clone())
            .collect(),
    };
    // Open first (a shredded or broken value answers without a record), then record,
    // then answer: no plaintext leaves without its audit entry.
    let open = open_version(&state, member.org, id, &secrets, row.version, Some(&fields)).await?;
    if let Some(missing) = fields.iter().find(|f| !open.contains_key(*f)) {
        return Err(bad(format!("the credential has no secret field {missing}")));
    }
    let mut data = serde_json::json!({ "version": row.version, "fields": fields });
    if let Some(ip) = client {
        data["client"] = serde_json::json!(ip.to_string());
    }
    if let Err(command) = send(&state, &member, &headers, id, cred::RECORD_REVEAL, data).await? {
        // Recorded later than we can wait for: do not answer the plaintext unrecorded.
        return Ok(accepted(command));
    }
    let values = open
        .iter()
        .map(|(f, s)| (f.clone(), s.expose().to_owned()))
        .collect();
    let mut response = Json(RevealOut {
        version: row.version,
        values,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KindOut {
    pub name: String,
    pub title: String,
    pub description: String,
    pub secret_fields: Vec<String>,
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

/// The credential kinds, with their JSON Schemas (`writeOnly` marks secret fields).
#[utoipa::path(get, path = "/credential-kinds", tag = "credentials",
    responses((status = 200, body = [KindOut])),
    security(("bearer" = ["member"])))]
pub async fn kinds(_caller: Authorized<crate::auth::AnyRole>) -> Json<Vec<KindOut>> {
    Json(
        Kinds::builtin()
            .all()
            .map(|k| KindOut {
                name: k.name.to_owned(),
                title: k.title.clone(),
                description: k.description.clone(),
                secret_fields: k.secret_fields().to_vec(),
                schema: k.schema.clone(),
            })
            .collect(),
    )
}
