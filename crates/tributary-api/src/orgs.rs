//! `/api/v1/orgs`: commands through the gateway, reads from the `orgs` read model.

use crate::auth::{Actor, AdminRole, AnyRole, Authorized, Caller, InOrg, Member};
use crate::commands::CommandAccepted;
use crate::gateway::{self, Command};
use crate::paging::Keyset;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tributary_domain::org::{self, validate_name, validate_slug};
use tributary_domain::{CommandId, OrgId, slug};
use tributary_store::queries::{self, OrgRow};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct Org {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change.
    pub version: i64,
}

impl From<OrgRow> for Org {
    fn from(r: OrgRow) -> Self {
        Self {
            id: r.id,
            slug: r.slug,
            name: r.name,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// 1–63 lowercase letters, digits and inner hyphens; unique; cannot change later.
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgPage {
    pub items: Vec<Org>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub(crate) fn invalid(rejection: tributary_domain::Rejection) -> ApiError {
    ApiError::Invalid {
        detail: rejection.reason,
    }
}

/// 202 pointing at the command, when the client did not wait or the wait ran out.
pub(crate) fn accepted(id: CommandId) -> Response {
    let location = format!("/api/v1/commands/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(CommandAccepted {
            command_id: id.0,
            status: "pending".into(),
            location: location.clone(),
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn preference_applied(mut response: Response, wait: std::time::Duration) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("wait={}", wait.as_secs())) {
        response.headers_mut().insert("preference-applied", value);
    }
    response
}

/// Waits for an accepted command to show in the read model and answers with the org.
async fn settle(
    state: &AppState,
    id: CommandId,
    wait: std::time::Duration,
    created: bool,
) -> ApiResult<Response> {
    let started = std::time::Instant::now();
    let Some(outcome) = gateway::outcome(state, id, wait).await? else {
        return Ok(accepted(id));
    };
    if outcome.status != "accepted" {
        return Err(gateway::rejected(&outcome));
    }
    let org_id: Uuid = outcome
        .aggregate_id
        .as_deref()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::Kafka("the outcome names no organization".into()))?;
    let version = outcome.aggregate_version.unwrap_or(0);
    let left = wait.saturating_sub(started.elapsed());
    let Some(row) = gateway::org_at(state, org_id, version, left).await? else {
        return Ok(accepted(id));
    };
    // A new org's creator is its admin: that membership lives in the identity model,
    // and must be there before the creator uses the org.
    let left = wait.saturating_sub(started.elapsed());
    if created && !gateway::identity_at(state, org_id, version, left).await? {
        return Ok(accepted(id));
    }
    if row.deleted_at.is_some() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(Org::from(row))).into_response();
    if created && let Ok(value) = HeaderValue::from_str(&format!("/api/v1/orgs/{org_id}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    id: CommandId,
    created: bool,
) -> ApiResult<Response> {
    match gateway::preferred_wait(headers, state.max_wait_secs) {
        None => Ok(accepted(id)),
        Some(wait) => Ok(preference_applied(
            settle(state, id, wait, created).await?,
            wait,
        )),
    }
}

/// Create an organization.
///
/// Answers 202 with the command's location; with `Prefer: wait=<seconds>` it waits for
/// the outcome and answers 201 with the org, 409 if the slug is taken, 422 if invalid.
#[utoipa::path(
    post, path = "/orgs", tag = "orgs",
    request_body = CreateOrg,
    params(("Prefer" = Option<String>, Header, description = "wait=<seconds> to wait for the outcome")),
    responses(
        (status = 201, description = "Created (with Prefer: wait)", body = Org),
        (status = 202, description = "Accepted; poll the Location", body = CommandAccepted),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    )
,
    security(("bearer" = ["member"])))]
pub async fn create_org(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    headers: HeaderMap,
    Json(body): Json<CreateOrg>,
) -> ApiResult<Response> {
    let member = caller.member();
    let Actor::User(user) = member.actor else {
        return Err(ApiError::Forbidden(
            "API keys cannot create organizations; a signed-in user can".into(),
        ));
    };
    validate_slug(&body.slug).map_err(invalid)?;
    validate_name(&body.name).map_err(invalid)?;
    let email = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        tributary_store::accounts::user_email_index(&**client, user).await?
    }
    .ok_or_else(|| {
        ApiError::Unauthenticated("your account is not known here; sign in again".into())
    })?;
    let org_id = OrgId::new();
    let command = Command {
        aggregate: "slug",
        key: &body.slug,
        ty: slug::CREATE_ORG,
        org_id: Some(org_id),
        data: serde_json::json!({
            "org_id": org_id, "slug": body.slug, "name": body.name,
            "admin": { "user_id": user, "email_index": email },
        }),
    };
    let id = gateway::send(
        &state,
        &Caller::Member(member),
        command,
        gateway::correlation(&headers),
    )
    .await?;
    respond(&state, &headers, id, true).await
}

/// Rename an organization.
#[utoipa::path(
    patch, path = "/orgs/{id}", tag = "orgs",
    request_body = UpdateOrg,
    params(("id" = Uuid, Path), ("Prefer" = Option<String>, Header, description = "wait=<seconds>")),
    responses(
        (status = 200, description = "Updated (with Prefer: wait)", body = Org),
        (status = 202, description = "Accepted", body = CommandAccepted),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    )
,
    security(("bearer" = ["admin"])))]
pub async fn update_org(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<UpdateOrg>,
) -> ApiResult<Response> {
    let org_id = OrgId(caller.member().org);
    let caller = Caller::Member(caller.member());
    validate_name(&body.name).map_err(invalid)?;
    let data = serde_json::json!({ "org_id": org_id, "name": body.name });
    org_command(&state, &caller, &headers, org_id, org::RENAME, data).await
}

/// Sends a command to an existing org and answers it like every org command.
async fn org_command(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    org_id: OrgId,
    ty: &'static str,
    data: serde_json::Value,
) -> ApiResult<Response> {
    let key = org_id.to_string();
    let command = Command {
        aggregate: "org",
        key: &key,
        ty,
        org_id: Some(org_id),
        data,
    };
    let id = gateway::send(state, caller, command, gateway::correlation(headers)).await?;
    respond(state, headers, id, false).await
}

/// Delete an organization and release its slug.
#[utoipa::path(
    delete, path = "/orgs/{id}", tag = "orgs",
    params(("id" = Uuid, Path), ("Prefer" = Option<String>, Header, description = "wait=<seconds>")),
    responses(
        (status = 204, description = "Deleted (with Prefer: wait)"),
        (status = 202, description = "Accepted", body = CommandAccepted),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    )
,
    security(("bearer" = ["admin"])))]
pub async fn delete_org(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org_id = OrgId(caller.member().org);
    let caller = Caller::Member(caller.member());
    let data = serde_json::json!({ "org_id": org_id });
    org_command(&state, &caller, &headers, org_id, org::DELETE, data).await
}

/// One organization.
#[utoipa::path(
    get, path = "/orgs/{id}", tag = "orgs",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Org),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    )
,
    security(("bearer" = ["member"])))]
pub async fn get_org(
    State(state): State<AppState>,
    caller: InOrg<AnyRole>,
) -> ApiResult<Json<Org>> {
    let member = caller.member();
    state
        .read_as(&member, async |tx| queries::org(tx, member.org).await)
        .await?
        .filter(|r| r.deleted_at.is_none())
        .map(|r| Json(Org::from(r)))
        .ok_or(ApiError::NotFound {
            what: format!("organization {}", member.org),
        })
}

/// Organizations, oldest first, in pages.
#[utoipa::path(
    get, path = "/orgs", tag = "orgs",
    params(ListParams),
    responses(
        (status = 200, body = OrgPage),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
,
    security(("bearer" = ["member"])))]
pub async fn list_orgs(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<OrgPage>> {
    let member = caller.member();
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    let ids = visible_orgs(&state, &member).await?;
    // A tenant read: row-level security admits the caller's own orgs only, whatever
    // the list of ids says.
    let mut rows = state
        .read_as(&member, async |tx| {
            queries::orgs(tx, &ids, keyset.after, keyset.fetch()).await
        })
        .await?;
    let next_cursor = keyset.finish(&mut rows, |r| (r.created_at, r.id));
    Ok(Json(OrgPage {
        items: rows.into_iter().map(Org::from).collect(),
        next_cursor,
    }))
}

/// The orgs a caller may see listed: a person's active memberships, a key's own org.
async fn visible_orgs(state: &AppState, member: &Member) -> ApiResult<Vec<Uuid>> {
    let Actor::User(user) = member.actor else {
        return Ok(vec![member.org]);
    };
    let client = state.db.get().await.map_err(tributary_store::Error::from)?;
    Ok(
        tributary_store::accounts::memberships_of(&**client, &[user])
            .await?
            .into_iter()
            .filter(|m| m.active)
            .map(|m| m.org_id)
            .collect(),
    )
}
