//! `/api/v1/targets`: an org's configured destinations.

use super::{
    CHECK_TIMEOUT, CheckOut, Entity, OwnTarget, bad_field, check_credential, check_schema,
    open_for_check, present, send, unknown_kind, validate_name,
};
use crate::auth::{AnyRole, Authorized, CuratorRole, Member};
use crate::orgs::accepted;
use crate::paging::Keyset;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tributary_destinations::{BuildContext, DestinationKind};
use tributary_domain::target as domain;
use tributary_store::catalog::{TargetRow, tenant_reads};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetOut {
    pub id: Uuid,
    pub name: String,
    /// A destination kind from `GET /destinations`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub credential_id: Option<Uuid>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change.
    pub version: i64,
}

impl From<TargetRow> for TargetOut {
    fn from(r: TargetRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            kind: r.kind,
            config: r.config,
            credential_id: r.credential_id,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_by: r.updated_by,
            updated_at: r.updated_at,
            version: r.aggregate_version,
        }
    }
}

async fn read_one(state: &AppState, member: &Member, id: Uuid) -> ApiResult<TargetRow> {
    let org = member.org;
    state
        .read_as(member, async |tx| tenant_reads::target(tx, org, id).await)
        .await?
        .ok_or_else(|| Entity::Target.not_found(id))
}

async fn answer(
    state: &AppState,
    member: &Member,
    id: Uuid,
    status: StatusCode,
) -> ApiResult<Response> {
    let row = read_one(state, member, id).await?;
    Ok((status, Json(TargetOut::from(row))).into_response())
}

fn kind_of<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a DestinationKind> {
    state.destinations.get(name).ok_or_else(|| {
        unknown_kind(
            "/kind",
            "destination",
            name,
            state.destinations.iter().map(|k| k.name),
        )
    })
}

/// The config must fit the kind's schema and pass its own check (a URL that parses, a
/// path that stays inside the data directory).
fn check_config(kind: &DestinationKind, config: &serde_json::Value) -> ApiResult<()> {
    check_schema(kind.name, &kind.schema, config, "/config")?;
    kind.validate_config(config)
        .map_err(|e| bad_field("/config", e.message))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    pub name: String,
    /// A destination kind from `GET /destinations`, e.g. `csv`.
    pub kind: String,
    /// Valid against the kind's schema; default `{}`.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// A credential of this org, of a kind the destination accepts.
    pub credential_id: Option<Uuid>,
}

/// Create a target (curators and admins).
#[utoipa::path(post, path = "/targets", tag = "targets", request_body = NewTarget,
    responses((status = 201, body = TargetOut), (status = 202, description = "Accepted; still being applied"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn create_target(
    State(state): State<AppState>,
    caller: Authorized<CuratorRole>,
    headers: HeaderMap,
    Json(body): Json<NewTarget>,
) -> ApiResult<Response> {
    let member = caller.member();
    let kind = kind_of(&state, &body.kind)?;
    let name = validate_name(&body.name)?;
    let config = body.config.unwrap_or_else(|| serde_json::json!({}));
    check_config(kind, &config)?;
    check_credential(
        &state,
        &member,
        body.credential_id,
        &format!("the {} destination", kind.name),
        kind.credential_kinds,
    )
    .await?;
    let id = Uuid::now_v7();
    let data = serde_json::json!({
        "name": name, "kind": kind.name, "config": config, "credential_id": body.credential_id,
    });
    match send(
        &state,
        &member,
        &headers,
        Entity::Target,
        id,
        domain::CREATE,
        data,
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => answer(&state, &member, id, StatusCode::CREATED).await,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only targets of this destination kind.
    pub kind: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetPage {
    pub items: Vec<TargetOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The org's targets, oldest first (any member).
#[utoipa::path(get, path = "/targets", tag = "targets", params(ListParams),
    responses((status = 200, body = TargetPage)),
    security(("bearer" = ["member"])))]
pub async fn list_targets(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<TargetPage>> {
    let member = caller.member();
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    let org = member.org;
    let kind = params.kind.as_deref();
    let mut rows = state
        .read_as(&member, async |tx| {
            tenant_reads::targets(tx, org, kind, keyset.after, keyset.fetch()).await
        })
        .await?;
    let next_cursor = keyset.finish(&mut rows, |r| (r.created_at, r.id));
    Ok(Json(TargetPage {
        items: rows.into_iter().map(TargetOut::from).collect(),
        next_cursor,
    }))
}

/// One target (any member).
#[utoipa::path(get, path = "/targets/{id}", tag = "targets", params(("id" = Uuid, Path)),
    responses((status = 200, body = TargetOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["member"])))]
pub async fn get_target(
    State(state): State<AppState>,
    target: OwnTarget<AnyRole>,
) -> ApiResult<Response> {
    answer(&state, &target.member, target.id, StatusCode::OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetPatch {
    pub name: Option<String>,
    /// Replaces the config as a whole; valid against the kind's schema.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Another credential; `null` detaches it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub credential_id: Option<Option<Uuid>>,
}

/// Rename a target, replace its config or change its credential (curators and admins).
/// The kind cannot change: create another target.
#[utoipa::path(patch, path = "/targets/{id}", tag = "targets", request_body = TargetPatch,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TargetOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn update_target(
    State(state): State<AppState>,
    target: OwnTarget<CuratorRole>,
    headers: HeaderMap,
    Json(body): Json<TargetPatch>,
) -> ApiResult<Response> {
    let (member, id) = (target.member, target.id);
    if body.name.is_none() && body.config.is_none() && body.credential_id.is_none() {
        return answer(&state, &member, id, StatusCode::OK).await;
    }
    let row = read_one(&state, &member, id).await?;
    let mut data = serde_json::json!({});
    if let Some(name) = &body.name {
        data["name"] = serde_json::json!(validate_name(name)?);
    }
    if body.config.is_some() || matches!(body.credential_id, Some(Some(_))) {
        let kind = state.destinations.get(&row.kind).ok_or_else(|| {
            bad_field(
                "/kind",
                format!(
                    "this build of Tributary no longer knows the {} destination; only the \
                     name can change, or delete the target",
                    row.kind
                ),
            )
        })?;
        if let Some(config) = &body.config {
            check_config(kind, config)?;
            data["config"] = config.clone();
        }
        if let Some(Some(credential)) = body.credential_id {
            check_credential(
                &state,
                &member,
                Some(credential),
                &format!("the {} destination", kind.name),
                kind.credential_kinds,
            )
            .await?;
        }
    }
    if let Some(credential) = body.credential_id {
        data["credential_id"] = serde_json::json!(credential);
    }
    match send(
        &state,
        &member,
        &headers,
        Entity::Target,
        id,
        domain::UPDATE,
        data,
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => answer(&state, &member, id, StatusCode::OK).await,
    }
}

/// Delete a target (curators and admins). Refused while a profile still feeds it.
#[utoipa::path(delete, path = "/targets/{id}", tag = "targets", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn delete_target(
    State(state): State<AppState>,
    target: OwnTarget<CuratorRole>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (member, id) = (target.member, target.id);
    let org = member.org;
    let users = state
        .read_as(&member, async |tx| {
            tenant_reads::profiles_using_target(tx, org, id).await
        })
        .await?;
    if !users.is_empty() {
        let names: Vec<String> = users
            .iter()
            .map(|(profile, name)| format!("{name:?} ({profile})"))
            .collect();
        return Err(ApiError::Rejected {
            status: StatusCode::CONFLICT,
            code: "conflict".into(),
            detail: format!(
                "target {id} still feeds profiles {}; remove it from them (PATCH \
                 /profiles/{{id}}) or delete them first",
                names.join(", ")
            ),
            command_id: String::new(),
        });
    }
    match send(
        &state,
        &member,
        &headers,
        Entity::Target,
        id,
        domain::DELETE,
        serde_json::json!({}),
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Try a target: build its destination with its decrypted credential and run the
/// destination's own check (curators and admins). Nothing is delivered and nothing is
/// recorded; the answer never holds a secret.
#[utoipa::path(post, path = "/targets/{id}/check", tag = "targets", params(("id" = Uuid, Path)),
    responses((status = 200, body = CheckOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn check_target(
    State(state): State<AppState>,
    target: OwnTarget<CuratorRole>,
) -> ApiResult<Json<CheckOut>> {
    let (member, id) = (target.member, target.id);
    let row = read_one(&state, &member, id).await?;
    let Some(kind) = state.destinations.get(&row.kind) else {
        return Ok(Json(CheckOut::failed(format!(
            "this build of Tributary does not know the {} destination",
            row.kind
        ))));
    };
    let credential = match open_for_check(&state, &member, row.credential_id).await? {
        Ok(credential) => credential,
        Err(answer) => return Ok(Json(answer)),
    };
    let ctx = BuildContext {
        config: row.config,
        credential,
        http: state.http.clone(),
        data_dir: state.data_dir.clone(),
    };
    let sink = match kind.build(ctx) {
        Ok(sink) => sink,
        Err(e) => return Ok(Json(CheckOut::failed(e.message))),
    };
    let result = tokio::time::timeout(CHECK_TIMEOUT, sink.check()).await;
    Ok(Json(match result {
        Ok(Ok(message)) => CheckOut { ok: true, message },
        Ok(Err(e)) => CheckOut::failed(e.message),
        Err(_) => CheckOut::failed(format!(
            "the {} destination did not answer within {} seconds; check that it is \
             reachable and try again",
            kind.name,
            CHECK_TIMEOUT.as_secs()
        )),
    }))
}
