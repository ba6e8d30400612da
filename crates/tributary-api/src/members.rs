//! `/api/v1/orgs/{id}/...`: members, invitations, allowed domains and API keys.
//!
//! Every change is a command to the org aggregate (which keeps the last active admin in
//! place); the answer waits until the change is visible in the identity read model, or
//! is 202 with the command's Location if that takes longer than `TRIBUTARY_MAX_WAIT`.

use crate::auth::{AdminRole, AnyRole, Authorized, Caller, InOrg, Member};
use crate::gateway::{self, Command};
use crate::orgs::accepted;
use crate::people;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tributary_auth::secret;
use tributary_domain::{OrgId, Role, normalize_email, org};
use tributary_store::accounts::{self, tenant_reads};
use utoipa::ToSchema;
use uuid::Uuid;

fn parse_org(id: &str) -> ApiResult<Uuid> {
    id.parse().map_err(|_| ApiError::NotFound {
        what: format!("organization {id}"),
    })
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        detail: detail.into(),
    }
}

/// An admin's change: sends `ty` to the org with the admin as its `actor`, and waits
/// until the identity read model shows it. `Ok(Err(id))`: still in progress after the
/// longest wait (answer 202).
pub(crate) async fn change(
    state: &AppState,
    member: Member,
    headers: &HeaderMap,
    ty: &'static str,
    mut data: serde_json::Value,
) -> ApiResult<Result<(), tributary_domain::CommandId>> {
    data["actor"] = serde_json::json!(member.actor.tag());
    send_and_settle(state, Caller::Member(member), member.org, headers, ty, data).await
}

/// Sends `ty` to org `org` for `caller` and waits until the identity read model shows it.
async fn send_and_settle(
    state: &AppState,
    caller: Caller,
    org: Uuid,
    headers: &HeaderMap,
    ty: &'static str,
    mut data: serde_json::Value,
) -> ApiResult<Result<(), tributary_domain::CommandId>> {
    data["org_id"] = serde_json::json!(org);
    let key = org.to_string();
    let command = Command {
        aggregate: "org",
        key: &key,
        ty,
        org_id: Some(OrgId(org)),
        data,
    };
    let (id, version, left) = match gateway::send_accepted(state, &caller, command, headers).await?
    {
        gateway::Sent::Accepted { id, version, left } => (id, version, left),
        gateway::Sent::Pending(id) => return Ok(Err(id)),
    };
    Ok(
        match gateway::identity_at(state, org, version, left).await? {
            true => Ok(()),
            false => Err(id),
        },
    )
}

fn done_or_accepted(result: Result<(), tributary_domain::CommandId>, done: Response) -> Response {
    match result {
        Ok(()) => done,
        Err(id) => accepted(id),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub user_id: Uuid,
    /// `null` once the user was forgotten (their key is shredded).
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub active: bool,
    /// `founder`, `invitation` or `domain`.
    pub via: String,
    pub joined_at: DateTime<Utc>,
}

/// The org's members.
#[utoipa::path(get, path = "/orgs/{id}/members", tag = "members",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = [MemberOut]), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["member"])))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: InOrg<AnyRole>,
) -> ApiResult<Json<Vec<MemberOut>>> {
    let member = caller.member();
    let rows = state
        .read_as(&member, async |tx| {
            tenant_reads::members(tx, member.org).await
        })
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let user = m.user_id;
        out.push(MemberOut {
            user_id: user,
            email: people::open_user(&state, user, "email", m.email.as_deref()).await?,
            name: people::open_user(&state, user, "name", m.name.as_deref()).await?,
            role: m.role.to_string(),
            active: m.active,
            via: m.via,
            joined_at: m.joined_at,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin`, `curator` or `member`.
    pub role: String,
}

fn parse_user(user: &str) -> ApiResult<Uuid> {
    user.parse().map_err(|_| ApiError::NotFound {
        what: format!("member {user}"),
    })
}

/// Change a member's role. The last active admin cannot be demoted (409).
#[utoipa::path(put, path = "/orgs/{id}/members/{user_id}/role", tag = "members", request_body = RoleChange,
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "Changed"), (status = 202, description = "Still in progress"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active admin", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn change_role(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Path((_id, user)): Path<(String, String)>,
    Json(body): Json<RoleChange>,
) -> ApiResult<Response> {
    let member = caller.member();
    let user = parse_user(&user)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: tributary_domain::role::UnknownRole| bad(e.to_string()))?;
    let data = serde_json::json!({ "user_id": user, "role": role });
    let result = change(&state, member, &headers, org::CHANGE_ROLE, data).await?;
    Ok(done_or_accepted(
        result,
        StatusCode::NO_CONTENT.into_response(),
    ))
}

async fn member_command(
    state: AppState,
    member: Member,
    headers: HeaderMap,
    user: String,
    ty: &'static str,
) -> ApiResult<Response> {
    let user = parse_user(&user)?;
    let result = change(
        &state,
        member,
        &headers,
        ty,
        serde_json::json!({ "user_id": user }),
    )
    .await?;
    Ok(done_or_accepted(
        result,
        StatusCode::NO_CONTENT.into_response(),
    ))
}

/// Deactivate a member: their tokens stop working at once. Not the last active admin.
#[utoipa::path(post, path = "/orgs/{id}/members/{user_id}/deactivate", tag = "members",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "Deactivated"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active admin", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Path((_org, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    member_command(
        state,
        caller.member(),
        headers,
        user,
        org::DEACTIVATE_MEMBER,
    )
    .await
}

/// Reactivate a member.
#[utoipa::path(post, path = "/orgs/{id}/members/{user_id}/reactivate", tag = "members",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "Reactivated"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Path((_org, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    member_command(
        state,
        caller.member(),
        headers,
        user,
        org::REACTIVATE_MEMBER,
    )
    .await
}

/// Remove a member from the org. Not the last active admin.
#[utoipa::path(delete, path = "/orgs/{id}/members/{user_id}", tag = "members",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active admin", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Path((_org, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    member_command(state, caller.member(), headers, user, org::REMOVE_MEMBER).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    pub email: String,
    /// Default `member`.
    pub role: Option<String>,
    /// Hours until the invitation expires: 1 to 720, default 168 (a week).
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationCreated {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
    /// Shown once: pass it on to the invitee (sign up with `invitation: {id, token}`,
    /// or accept while signed in). Only its hash is kept.
    pub token: String,
}

/// Hours until an invitation expires: 1 to 720, default 168 (a week).
pub(crate) fn invitation_hours(hours: Option<u32>) -> Result<u32, String> {
    let hours = hours.unwrap_or(168);
    if (1..=720).contains(&hours) {
        Ok(hours)
    } else {
        Err(format!(
            "expires_in_hours must be between 1 and 720, not {hours}"
        ))
    }
}

/// A new invitation: the `org::INVITE` command's data, still without the address, and
/// the answer that shows its token once (only the hash goes into the command). Add the
/// address with [`seal_invitation`] before sending.
pub(crate) fn new_invitation(
    email: String,
    role: Role,
    hours: u32,
) -> (serde_json::Value, InvitationCreated) {
    let issued = secret::invitation_token();
    let invitation = Uuid::now_v7();
    let expires_at = Utc::now() + chrono::Duration::hours(i64::from(hours));
    let data = serde_json::json!({
        "invitation_id": invitation, "role": role,
        "token_hash": issued.hash, "expires_at": expires_at,
    });
    let created = InvitationCreated {
        id: invitation,
        email,
        role: role.to_string(),
        expires_at,
        token: issued.token,
    };
    (data, created)
}

/// Adds the invitee's address to an invitation's command: its blind index, and the
/// address sealed under the org's key (the invitee is no user yet).
pub(crate) async fn seal_invitation(
    state: &AppState,
    member: &Member,
    data: &mut serde_json::Value,
    invitation: &InvitationCreated,
) -> ApiResult<()> {
    let email = &invitation.email;
    data["email_index"] = serde_json::json!(people::email_index(state, email).await?);
    let sealed =
        people::seal_invitee(state, member.org, invitation.id, email, &member.actor.tag()).await?;
    data["email"] = serde_json::json!(sealed);
    Ok(())
}

/// Invite someone by email.
#[utoipa::path(post, path = "/orgs/{id}/invitations", tag = "members", request_body = NewInvitation,
    params(("id" = Uuid, Path)),
    responses((status = 201, body = InvitationCreated), (status = 409, description = "Already a member", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn invite(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<NewInvitation>,
) -> ApiResult<Response> {
    let member = caller.member();
    let email = normalize_email(&body.email).map_err(bad)?;
    let role: Role = body
        .role
        .as_deref()
        .unwrap_or("member")
        .parse()
        .map_err(|e: tributary_domain::role::UnknownRole| bad(e.to_string()))?;
    let hours = invitation_hours(body.expires_in_hours).map_err(bad)?;
    let (mut data, created) = new_invitation(email, role, hours);
    seal_invitation(&state, &member, &mut data, &created).await?;
    let result = change(&state, member, &headers, org::INVITE, data).await?;
    let status = if result.is_ok() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(created)).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationOut {
    pub id: Uuid,
    /// `null` if the org's keys were shredded.
    pub email: Option<String>,
    pub role: String,
    /// `pending`, `accepted` or `revoked`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// The org's invitations.
#[utoipa::path(get, path = "/orgs/{id}/invitations", tag = "members",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = [InvitationOut]), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn list_invitations(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
) -> ApiResult<Json<Vec<InvitationOut>>> {
    let member = caller.member();
    let rows = state
        .read_as(&member, async |tx| {
            tenant_reads::invitations(tx, member.org).await
        })
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for i in rows {
        let scope = tributary_vault::KeyScope::Org(member.org);
        out.push(InvitationOut {
            id: i.id,
            email: people::open(&state, scope, i.id, "email", Some(&i.email)).await?,
            role: i.role.to_string(),
            status: i.status,
            expires_at: i.expires_at,
            created_at: i.created_at,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    pub token: String,
}

/// Accept an invitation as the signed-in user (the invitation's email must be yours).
#[utoipa::path(post, path = "/orgs/{id}/invitations/{invitation_id}/accept", tag = "members", request_body = AcceptInvitation,
    params(("id" = Uuid, Path), ("invitation_id" = Uuid, Path)),
    responses((status = 204, description = "You are a member now"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Unknown, used, expired, or for another email", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    headers: HeaderMap,
    Path((id, invitation)): Path<(String, String)>,
    Json(body): Json<AcceptInvitation>,
) -> ApiResult<Response> {
    let org = parse_org(&id)?;
    let me = caller.member();
    let Some(user) = me.actor.user() else {
        return Err(ApiError::Forbidden(
            "an API key cannot accept invitations".into(),
        ));
    };
    let gone = || ApiError::Rejected {
        status: StatusCode::GONE,
        code: "invitation_invalid".into(),
        detail: "the invitation is unknown, used, expired or for another email; ask for a new one"
            .into(),
        command_id: String::new(),
    };
    let invitation: Uuid = invitation.parse().map_err(|_| gone())?;
    let email = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        if accounts::invitation_org(&**client, invitation).await? != Some(org) {
            return Err(gone());
        }
        accounts::user_email_index(&**client, user).await?
    }
    .ok_or_else(|| {
        ApiError::Unauthenticated("your account is not known here; sign in again".into())
    })?;
    // The invitee is not a member yet: the invitation, not a role, lets them in.
    let data = serde_json::json!({
        "invitation_id": invitation, "token_hash": secret::hash_token(&body.token),
        "user_id": user, "email_index": email, "at": Utc::now(),
    });
    let caller = Caller::Member(me);
    let result =
        send_and_settle(&state, caller, org, &headers, org::ACCEPT_INVITATION, data).await?;
    Ok(done_or_accepted(
        result,
        StatusCode::NO_CONTENT.into_response(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedDomains {
    /// People signing up with these email domains join as members; empty allows none.
    pub domains: Vec<String>,
}

/// Set the email domains whose people may join by signing up.
#[utoipa::path(put, path = "/orgs/{id}/allowed-domains", tag = "members", request_body = AllowedDomains,
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Set"), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn set_allowed_domains(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<AllowedDomains>,
) -> ApiResult<Response> {
    let member = caller.member();
    let mut domains = Vec::with_capacity(body.domains.len());
    for domain in &body.domains {
        domains.push(tributary_domain::email::normalize_domain(domain).map_err(bad)?);
    }
    domains.sort();
    domains.dedup();
    let result = change(
        &state,
        member,
        &headers,
        org::SET_ALLOWED_DOMAINS,
        serde_json::json!({ "domains": domains }),
    )
    .await?;
    Ok(done_or_accepted(
        result,
        StatusCode::NO_CONTENT.into_response(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// `admin`, `curator` or `member`.
    pub role: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Shown once; send it as `Authorization: Bearer <token>`. Only its hash is kept.
    pub token: String,
}

/// Create an API key for an upstream system, scoped to this org and a role.
#[utoipa::path(post, path = "/orgs/{id}/api-keys", tag = "api-keys", request_body = NewApiKey,
    params(("id" = Uuid, Path)),
    responses((status = 201, body = ApiKeyCreated), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Json(body): Json<NewApiKey>,
) -> ApiResult<Response> {
    let member = caller.member();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(bad("name must be 1 to 200 characters"));
    }
    let role: Role = body
        .role
        .parse()
        .map_err(|e: tributary_domain::role::UnknownRole| bad(e.to_string()))?;
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(bad("expires_at is in the past"));
    }
    let issued = secret::api_key();
    let key = Uuid::now_v7();
    let mut data = serde_json::json!({
        "key_id": key, "name": name, "role": role, "prefix": issued.prefix,
        "secret_hash": issued.hash,
    });
    if let Some(at) = body.expires_at {
        data["expires_at"] = serde_json::json!(at);
    }
    let result = change(&state, member, &headers, org::CREATE_API_KEY, data).await?;
    let created = ApiKeyCreated {
        id: key,
        name,
        role: role.to_string(),
        prefix: issued.prefix,
        expires_at: body.expires_at,
        token: issued.token,
    };
    let status = if result.is_ok() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(created)).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The org's API keys (never their secrets).
#[utoipa::path(get, path = "/orgs/{id}/api-keys", tag = "api-keys",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = [ApiKeyOut]), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
) -> ApiResult<Json<Vec<ApiKeyOut>>> {
    let member = caller.member();
    let rows = state
        .read_as(&member, async |tx| {
            tenant_reads::api_keys(tx, member.org).await
        })
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|k| ApiKeyOut {
                id: k.id,
                name: k.name,
                role: k.role.to_string(),
                prefix: k.prefix,
                expires_at: k.expires_at,
                revoked_at: k.revoked_at,
                created_at: k.created_at,
                last_used_at: k.last_used_at,
            })
            .collect(),
    ))
}

/// Revoke an API key: it stops working at once.
#[utoipa::path(delete, path = "/orgs/{id}/api-keys/{key_id}", tag = "api-keys",
    params(("id" = Uuid, Path), ("key_id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    Path((_id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    let member = caller.member();
    let key: Uuid = key.parse().map_err(|_| ApiError::NotFound {
        what: format!("API key {key}"),
    })?;
    let result = change(
        &state,
        member,
        &headers,
        org::REVOKE_API_KEY,
        serde_json::json!({ "key_id": key }),
    )
    .await?;
    Ok(done_or_accepted(
        result,
        StatusCode::NO_CONTENT.into_response(),
    ))
}
