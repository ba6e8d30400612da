//! Forgetting a user: `POST /auth/forget-me`.
//!
//! The user leaves every org (`org.remove_member`), then `user.forget` records
//! `user.forgotten` and releases the address. The user's key is shredded at once here
//! and again by the keeper when it sees the event (both idempotent), so the sealed
//! address, name and password hash left in the log can never be read again. Nothing of
//! the person is left in plaintext anywhere: the log only ever held the blind index and
//! sealed values.

use crate::auth::{AnyRole, Authorized, Caller};
use crate::gateway::{self, Command, Sent};
use crate::orgs::accepted;
use crate::people;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tributary_domain::{OrgId, RejectionCode, org, user};
use tributary_store::accounts;
use tributary_vault::{KeyScope, Secret};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgetMe {
    /// Your password, confirmed again: forgetting cannot be undone.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

/// Forget me: leave every org and destroy the key of my personal data (address, name,
/// password hash), for good. The address can sign up again afterwards, as a new user.
#[utoipa::path(post, path = "/auth/forget-me", tag = "auth", request_body = ForgetMe,
    responses(
        (status = 204, description = "Forgotten: your data is unreadable everywhere, for good"),
        (status = 202, description = "Accepted; it completes shortly"),
        (status = 403, description = "Wrong password, or an API key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "You are the last admin of an org", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn forget_me(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    headers: HeaderMap,
    Json(body): Json<ForgetMe>,
) -> ApiResult<Response> {
    let member = caller.member();
    let Some(user_id) = member.actor.user() else {
        return Err(ApiError::Forbidden(
            "an API key has no personal data to forget; a person signs in to forget themselves"
                .into(),
        ));
    };
    if !people::confirm_password(&state, user_id, body.password).await? {
        return Err(ApiError::Forbidden(
            "the password does not match; confirm your own password to be forgotten".into(),
        ));
    }
    let (last_admin, memberships) = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        (
            accounts::orgs_where_last_admin(&**client, user_id).await?,
            accounts::memberships_of(&**client, &[user_id]).await?,
        )
    };
    if !last_admin.is_empty() {
        return Err(last_admin_error(&last_admin));
    }
    let caller = Caller::Member(member);
    let actor = format!("user:{user_id}");
    for m in memberships {
        let key = m.org_id.to_string();
        let command = Command {
            aggregate: "org",
            key: &key,
            ty: org::REMOVE_MEMBER,
            org_id: Some(OrgId(m.org_id)),
            data: serde_json::json!({ "org_id": m.org_id, "user_id": user_id, "actor": actor }),
        };
        match gateway::send_accepted(&state, &caller, command, &headers).await {
            Ok(Sent::Accepted { .. }) => {}
            Ok(Sent::Pending(id)) => return Ok(accepted(id)),
            // Removed meanwhile: nothing left to leave.
            Err(ApiError::Rejected { code, .. }) if code == RejectionCode::NotFound.as_str() => {}
            Err(ApiError::Rejected { code, .. }) if code == RejectionCode::LastAdmin.as_str() => {
                return Err(last_admin_error(&[m.slug.unwrap_or(key)]));
            }
            Err(e) => return Err(e),
        }
    }
    let key = user_id.to_string();
    let command = Command {
        aggregate: "user",
        key: &key,
        ty: user::FORGET,
        org_id: None,
        data: serde_json::json!({ "user_id": user_id, "actor": actor }),
    };
    match gateway::send_accepted(&state, &caller, command, &headers).await? {
        Sent::Pending(id) => Ok(accepted(id)),
        Sent::Accepted { .. } => {
            state
                .vault
                .shred(KeyScope::User(user_id), "user forgotten", &actor)
                .await
                .map_err(people::vault_error)?;
            tracing::info!(user = %user_id, "a user was forgotten");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

fn last_admin_error(orgs: &[String]) -> ApiError {
    ApiError::Rejected {
        status: StatusCode::CONFLICT,
        code: RejectionCode::LastAdmin.as_str().into(),
        detail: format!(
            "you are the last admin of {}; make someone else admin there, or delete the org, \
             before you are forgotten",
            orgs.join(", ")
        ),
        command_id: String::new(),
    }
}
