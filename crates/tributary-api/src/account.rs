//! `/api/v1/auth`: sign up, sign in, refresh, switch org, sign out, who am I.
//!
//! Passwords are hashed here (argon2id) and refresh tokens hashed (SHA-256) before any
//! command is produced: topics, logs and errors only ever see hashes. Every change goes
//! through the log (email, org, user and session aggregates); the answers wait for the
//! read model, so a token handed out here works on the very next request.

use crate::auth::{AnyRole, Authorized};
use crate::gateway::{self, Command};
use crate::orgs::{accepted, invalid};
use crate::people;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tributary_auth::{password, secret};
use tributary_domain::org::{validate_name, validate_slug};
use tributary_domain::{OrgId, Role, email_domain, normalize_email};
use tributary_store::accounts::{self, MembershipRow, SessionRow};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewOrg {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InvitationRef {
    pub id: Uuid,
    /// The token the inviting admin received.
    pub token: String,
}

/// Sign up with a new org (you become its admin), with an invitation, or — when your
/// email's domain is allowed by exactly one org — into that org as a member.
#[derive(Deserialize, ToSchema)]
pub struct Signup {
    pub email: String,
    pub password: String,
    pub name: String,
    pub org: Option<NewOrg>,
    pub invitation: Option<InvitationRef>,
}

#[derive(Deserialize, ToSchema)]
pub struct Login {
    pub email: String,
    pub password: String,
    /// The org to sign in to; default: your oldest active membership.
    pub org_id: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SwitchOrg {
    pub refresh_token: String,
    pub org_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tokens {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single use: each refresh returns a new one. Presenting a used one revokes the
    /// whole session.
    pub refresh_token: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    pub org_id: Uuid,
    pub slug: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub org_id: Uuid,
    pub role: String,
    pub memberships: Vec<MembershipView>,
}

/// The client's address, for login throttling (the peer address; proxies are not
/// trusted).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn problem(detail: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        detail: detail.into(),
    }
}

fn wait_for(state: &AppState) -> Duration {
    Duration::from_secs(state.max_wait_secs)
}

/// Create an account.
#[utoipa::path(
    post, path = "/auth/signup", tag = "auth", request_body = Signup,
    responses(
        (status = 201, description = "Signed up and signed in", body = Tokens),
        (status = 202, description = "Still being processed; sign in in a moment", body = crate::commands::CommandAccepted),
        (status = 409, description = "Email or slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The email's domain may not join that org", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The invitation is unknown, used, expired or not for this email", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input or a weak password", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Signup>,
) -> ApiResult<Response> {
    let email = normalize_email(&body.email).map_err(problem)?;
    let name = body.name.trim().to_owned();
    validate_name(&name).map_err(invalid)?;
    password::check_strength(&body.password, &[&email, &name])
        .map_err(|w| problem(w.to_string()))?;
    let client = state.db.get().await.map_err(tributary_store::Error::from)?;
    let (org_id, then) = match (&body.org, &body.invitation) {
        (Some(org), None) => {
            validate_slug(&org.slug).map_err(invalid)?;
            validate_name(&org.name).map_err(invalid)?;
            let org_id = OrgId::new().0;
            let then = serde_json::json!({ "kind": "new_org", "org_id": org_id, "slug": org.slug, "name": org.name.trim() });
            (org_id, then)
        }
        (None, Some(invitation)) => {
            let org_id = accounts::invitation_org(&**client, invitation.id)
                .await?
                .ok_or_else(|| ApiError::Rejected {
                    status: StatusCode::GONE,
                    code: "invitation_invalid".into(),
                    detail: "the invitation is unknown; ask an admin for a new one".into(),
                    command_id: String::new(),
                })?;
            let then = serde_json::json!({
                "kind": "accept_invitation", "org_id": org_id, "invitation_id": invitation.id,
                "token_hash": secret::hash_token(&invitation.token), "at": Utc::now(),
            });
            (org_id, then)
        }
        (None, None) => {
            let domain = email_domain(&email);
            let org_id = accounts::org_for_domain(&**client, domain).await?.ok_or_else(|| {
                problem(format!(
                    "no organization admits {domain} addresses; give `org` to create one, or an `invitation`"
                ))
            })?;
            (
                org_id,
                serde_json::json!({ "kind": "join_by_domain", "org_id": org_id, "email_domain": domain }),
            )
        }
        (Some(_), Some(_)) => return Err(problem("give either `org` or `invitation`, not both")),
    };
    drop(client);
    let password = body.password;
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::Kafka(format!("hashing failed: {e}")))?
        .map_err(|e| problem(e.to_string()))?;
    let user_id = Uuid::now_v7();
    // Only the blind index and sealed values reach the log: forgetting the user later
    // shreds the key, and these become unreadable for good.
    let email_index = people::email_index(&state, &email).await?;
    let sealed = people::seal_profile(&state, user_id, &email, &name, &password_hash).await?;
    let command = Command {
        aggregate: "email",
        key: &email_index,
        ty: tributary_domain::email::CLAIM,
        org_id: Some(OrgId(org_id)),
        data: serde_json::json!({
            "email_index": email_index, "user_id": user_id, "email": sealed.email,
            "name": sealed.name, "password_hash": sealed.password_hash, "then": then,
        }),
    };
    let caller = crate::auth::Caller::Anonymous;
    let id = gateway::send(&state, &caller, command, gateway::correlation(&headers)).await?;
    let started = Instant::now();
    let Some(outcome) = gateway::outcome(&state, id, wait_for(&state)).await? else {
        return Ok(accepted(id));
    };
    if outcome.status != "accepted" {
        return Err(gateway::rejected(&outcome));
    }
    let left = wait_for(&state).saturating_sub(started.elapsed());
    let Some(membership) = membership_in(&state, user_id, org_id, left).await? else {
        return Ok(accepted(id));
    };
    let tokens = start_session(&state, user_id, org_id, membership.role).await?;
    Ok((StatusCode::CREATED, Json(tokens)).into_response())
}

/// Waits until the user's membership in `org` is in the read model.
pub(crate) async fn membership_in(
    state: &AppState,
    user: Uuid,
    org: Uuid,
    wait: Duration,
) -> ApiResult<Option<MembershipRow>> {
    let has = move |rows: &Vec<MembershipRow>| rows.iter().any(|m| m.org_id == org);
    let rx = state.waiters.memberships.register(user, has);
    let now = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        Some(accounts::memberships_of(&**client, &[user]).await?).filter(has)
    };
    Ok(crate::waiters::Waiters::wait(rx, now, wait)
        .await
        .and_then(|rows| rows.into_iter().find(|m| m.org_id == org)))
}

/// Starts a refresh-token session and hands out the first tokens.
async fn start_session(state: &AppState, user: Uuid, org: Uuid, role: Role) -> ApiResult<Tokens> {
    let issued = secret::refresh_token();
    let session_id = Uuid::now_v7();
    let expires_at = Utc::now() + state.identity.refresh_ttl;
    let key = session_id.to_string();
    let command = Command {
        aggregate: "session",
        key: &key,
        ty: tributary_domain::session::START,
        org_id: Some(OrgId(org)),
        data: serde_json::json!({
            "session_id": session_id, "user_id": user, "org_id": org, "role": role,
            "token_hash": issued.hash, "expires_at": expires_at, "at": Utc::now(),
        }),
    };
    let hash = issued.hash.clone();
    settle_session(state, command, session_id, move |s| s.token_hash == hash).await?;
    Ok(tokens(state, user, org, role, issued.token))
}

fn tokens(state: &AppState, user: Uuid, org: Uuid, role: Role, refresh_token: String) -> Tokens {
    Tokens {
        access_token: state.identity.keys.issue(
            user,
            org,
            role.as_str(),
            state.identity.access_ttl,
        ),
        token_type: "Bearer",
        expires_in: state.identity.access_ttl.as_secs(),
        refresh_token,
        user_id: user,
        org_id: org,
        role: role.to_string(),
    }
}

/// Sends a session command and waits until its outcome is accepted and the session row
/// satisfies `ready`; answers 401 on a refused session command.
async fn settle_session(
    state: &AppState,
    command: Command<'_>,
    session_id: Uuid,
    ready: impl Fn(&SessionRow) -> bool + Send + 'static,
) -> ApiResult<SessionRow> {
    let caller = crate::auth::Caller::Anonymous;
    let rx = state.waiters.sessions.register(session_id, ready);
    let id = gateway::send(state, &caller, command, uuid::Uuid::now_v7().to_string()).await?;
    let busy =
        || ApiError::Kafka("the session change is taking longer than expected; retry".into());
    let outcome = gateway::outcome(state, id, wait_for(state))
        .await?
        .ok_or_else(busy)?;
    if outcome.status != "accepted" {
        return Err(ApiError::Unauthenticated(outcome.reason.unwrap_or_else(
            || "the session is not valid; sign in again".into(),
        )));
    }
    tokio::time::timeout(wait_for(state), rx)
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(busy)
}

const WRONG_CREDENTIALS: &str = "the email or the password is not right";

/// Sign in with email and password.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth", request_body = Login,
    responses(
        (status = 200, description = "Signed in", body = Tokens),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No active membership (in that org)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<Login>,
) -> ApiResult<Json<Tokens>> {
    let email = normalize_email(&body.email).unwrap_or_else(|_| body.email.trim().to_lowercase());
    let email = people::email_index(&state, &email).await?;
    let now = Instant::now();
    let keys = [
        Some(format!("account:{email}")),
        addr.map(|a| format!("addr:{a}")),
    ];
    let login = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        accounts::login(&**client, &email).await?
    };
    let account = login.as_ref().map(|l| l.user_id);
    // The hash is sealed under the user's key; a forgotten user has no login left.
    let login = match login {
        Some(l) => people::open_user(&state, l.user_id, "password_hash", Some(&l.password_hash))
            .await?
            .map(|password_hash| accounts::Login {
                user_id: l.user_id,
                password_hash,
            }),
        None => None,
    };
    for key in keys.iter().flatten() {
        if let Err(wait) = state.identity.throttle.check(key, now) {
            crate::security::login_failed(&state, &email, account, addr, true).await;
            return Err(ApiError::Throttled(wait));
        }
    }
    let password = body.password;
    let verified = tokio::task::spawn_blocking(move || match login {
        Some(login) if password::verify(&password, &login.password_hash) => Some(login.user_id),
        Some(_) => None,
        None => {
            // Unknown email: spend the same time as a wrong password.
            password::verify_dummy(&password);
            None
        }
    })
    .await
    .map_err(|e| ApiError::Kafka(format!("verifying failed: {e}")))?;
    let Some(user) = verified else {
        for key in keys.iter().flatten() {
            state.identity.throttle.fail(key, Instant::now());
        }
        tracing::info!(addr = ?addr, "failed login");
        crate::security::login_failed(&state, &email, account, addr, false).await;
        metrics::counter!("tributary_login_failures_total").increment(1);
        return Err(ApiError::Unauthenticated(WRONG_CREDENTIALS.into()));
    };
    state.identity.throttle.succeed(&format!("account:{email}"));
    let memberships = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        accounts::memberships_of(&**client, &[user]).await?
    };
    let membership = match body.org_id {
        Some(org) => memberships
            .into_iter()
            .find(|m| m.org_id == org && m.active),
        None => memberships.into_iter().find(|m| m.active),
    }
    .ok_or_else(|| {
        ApiError::Forbidden(match body.org_id {
            Some(org) => format!("you are not an active member of organization {org}"),
            None => "your account has no active membership; ask an admin for an invitation".into(),
        })
    })?;
    Ok(Json(
        start_session(&state, user, membership.org_id, membership.role).await?,
    ))
}

/// The session a refresh token belongs to, if it can still refresh.
async fn live_session(state: &AppState, token: &str) -> ApiResult<(SessionRow, String)> {
    let hash = secret::hash_token(token);
    let session = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        accounts::session_by_token(&**client, &hash).await?
    };
    let session = session.ok_or_else(|| {
        ApiError::Unauthenticated("the refresh token is not valid; sign in again".into())
    })?;
    if session.status != "active" {
        return Err(ApiError::Unauthenticated(format!(
            "the session is {}; sign in again",
            session.status
        )));
    }
    Ok((session, hash))
}

/// Rotates the refresh token, optionally into another org of the user's.
async fn rotate(state: &AppState, token: &str, org: Option<Uuid>) -> ApiResult<Tokens> {
    let (session, presented) = live_session(state, token).await?;
    let org = org.unwrap_or(session.org_id);
    let membership = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        accounts::membership(&**client, org, session.user_id).await?
    }
    .filter(|m| m.active);
    let Some(membership) = membership else {
        return Err(if org == session.org_id {
            ApiError::Unauthenticated(
                "you are no longer an active member of this organization".into(),
            )
        } else {
            ApiError::NotFound {
                what: format!("organization {org}"),
            }
        });
    };
    let issued = secret::refresh_token();
    let key = session.id.to_string();
    let command = Command {
        aggregate: "session",
        key: &key,
        ty: tributary_domain::session::REFRESH,
        org_id: Some(OrgId(org)),
        data: serde_json::json!({
            "session_id": session.id, "presented_hash": presented, "next_hash": issued.hash,
            "expires_at": Utc::now() + state.identity.refresh_ttl, "at": Utc::now(),
            "org_id": org, "role": membership.role,
        }),
    };
    let next = issued.hash.clone();
    let after = settle_session(state, command, session.id, move |s| {
        s.token_hash == next || s.status != "active"
    })
    .await?;
    if after.token_hash != issued.hash {
        tracing::warn!(session = %session.id, user = %session.user_id, "refresh token reused; session revoked");
        metrics::counter!("tributary_refresh_token_reuse_total").increment(1);
        return Err(ApiError::Unauthenticated(
            "this refresh token was already used, so the session has been revoked; sign in again"
                .into(),
        ));
    }
    Ok(tokens(
        state,
        session.user_id,
        org,
        membership.role,
        issued.token,
    ))
}

/// Exchange a refresh token for new tokens (the old refresh token stops working).
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = Tokens),
        (status = 401, description = "Unknown, ended, revoked or reused token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    Ok(Json(rotate(&state, &body.refresh_token, None).await?))
}

/// Move the session to another org the user belongs to.
#[utoipa::path(
    post, path = "/auth/switch-org", tag = "auth", request_body = SwitchOrg,
    responses(
        (status = 200, body = Tokens),
        (status = 401, description = "The refresh token is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not an org you are an active member of", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn switch_org(
    State(state): State<AppState>,
    Json(body): Json<SwitchOrg>,
) -> ApiResult<Json<Tokens>> {
    Ok(Json(
        rotate(&state, &body.refresh_token, Some(body.org_id)).await?,
    ))
}

/// End the session of a refresh token. Always 204, known token or not.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out"))
)]
pub async fn logout(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    if let Ok((session, _)) = live_session(&state, &body.refresh_token).await {
        let key = session.id.to_string();
        let command = Command {
            aggregate: "session",
            key: &key,
            ty: tributary_domain::session::END,
            org_id: Some(OrgId(session.org_id)),
            data: serde_json::json!({ "session_id": session.id, "org_id": session.org_id, "reason": "logout" }),
        };
        settle_session(&state, command, session.id, |s| s.status != "active").await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Who is calling, in which org, with which role; and the user's memberships.
#[utoipa::path(
    get, path = "/auth/me", tag = "auth",
    responses(
        (status = 200, body = Me),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
,
    security(("bearer" = ["member"])))]
pub async fn me(State(state): State<AppState>, caller: Authorized<AnyRole>) -> ApiResult<Json<Me>> {
    let member = caller.member();
    let memberships = match member.actor.user() {
        Some(user) => {
            let client = state.db.get().await.map_err(tributary_store::Error::from)?;
            accounts::memberships_of(&**client, &[user]).await?
        }
        None => Vec::new(),
    };
    Ok(Json(Me {
        user_id: member.actor.user(),
        api_key_id: match member.actor {
            crate::auth::Actor::Key(id) => Some(id),
            crate::auth::Actor::User(_) => None,
        },
        org_id: member.org,
        role: member.role.to_string(),
        memberships: memberships
            .into_iter()
            .map(|m| MembershipView {
                org_id: m.org_id,
                slug: m.slug,
                name: m.org_name,
                role: m.role.to_string(),
                active: m.active,
            })
            .collect(),
    }))
}
