//! Who is calling: an access token (a person acting in one org) or an API key (an
//! upstream system scoped to one org), and what their role lets them do.
//!
//! The middleware authenticates; handlers state what they need with an extractor:
//! [`Caller`] (anyone, signed in or not), or [`Authorized`] with a minimum role. A
//! member's current role and status come from the read model on every request, so a
//! demotion or a deactivation takes effect at once, not when the token expires.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::marker::PhantomData;
use std::time::Duration;
use tributary_auth::jwt::{KeyRing, TokenError};
use tributary_auth::secret;
use tributary_auth::throttle::{Throttle, ThrottlePolicy};
use tributary_domain::role::Role;
use tributary_store::accounts;
use uuid::Uuid;

/// Token settings and the login throttle, shared by every request.
pub struct Identity {
    pub keys: KeyRing,
    pub throttle: Throttle,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl Identity {
    pub fn new(keys: KeyRing, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            keys,
            throttle: Throttle::new(ThrottlePolicy::default()),
            access_ttl,
            refresh_ttl,
        }
    }
}

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    Key(Uuid),
}

impl Actor {
    /// `user:<id>` or `key:<id>`, as carried in commands and security events.
    pub fn tag(self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Key(id) => format!("key:{id}"),
        }
    }

    pub fn user(self) -> Option<Uuid> {
        match self {
            Self::User(id) => Some(id),
            Self::Key(_) => None,
        }
    }
}

/// An authenticated caller acting in one org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub org: Uuid,
    pub role: Role,
    pub actor: Actor,
}

impl Member {
    pub fn scope(&self) -> tributary_store::tenant::Scope {
        tributary_store::tenant::Scope {
            org: self.org,
            user: self.actor.user(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Member(Member),
}

/// Middleware: establishes who is calling. A credential that is present but not valid
/// is answered 401 here; no credential is anonymous, and handlers that need more say so.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned);
    let caller = match token {
        None => Caller::Anonymous,
        Some(token) => match resolve(&state, &token).await {
            Ok(member) => Caller::Member(member),
            Err(e) => return e.into_response(),
        },
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

async fn resolve(state: &AppState, token: &str) -> Result<Member, ApiError> {
    let client = state.db.get().await.map_err(tributary_store::Error::from)?;
    if let Some(prefix) = secret::api_key_prefix(token) {
        let key = accounts::api_key_by_prefix(&**client, prefix)
            .await?
            .filter(|k| secret::hashes_match(&k.secret_hash, &secret::hash_token(token)))
            .ok_or_else(|| ApiError::Unauthenticated("the API key is not valid".into()))?;
        if key.revoked_at.is_some() {
            return Err(ApiError::Unauthenticated("the API key was revoked".into()));
        }
        if key.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
            return Err(ApiError::Unauthenticated(
                "the API key has expired; an admin can create a new one".into(),
            ));
        }
        accounts::touch_api_key(&**client, key.id, key.org_id).await?;
        return Ok(Member {
            org: key.org_id,
            role: key.role,
            actor: Actor::Key(key.id),
        });
    }
    let claims = state.identity.keys.verify(token).map_err(|e| {
        ApiError::Unauthenticated(match e {
            TokenError::Expired => "the access token has expired; refresh it".into(),
            _ => "the access token is not valid; sign in again".into(),
        })
    })?;
    let membership = accounts::membership(&**client, claims.org, claims.sub)
        .await?
        .filter(|m| m.active)
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "you are no longer an active member of this organization".into(),
            )
        })?;
    Ok(Member {
        org: claims.org,
        role: membership.role,
        actor: Actor::User(claims.sub),
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .copied()
            .unwrap_or(Caller::Anonymous))
    }
}

/// The least role an endpoint needs.
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
}

/// Read-only access: every member.
pub struct AnyRole;
impl MinRole for AnyRole {
    const ROLE: Role = Role::Member;
}

/// Profiles, targets, syncs.
pub struct CuratorRole;
impl MinRole for CuratorRole {
    const ROLE: Role = Role::Curator;
}

/// Users, roles, keys, credentials, settings.
pub struct AdminRole;
impl MinRole for AdminRole {
    const ROLE: Role = Role::Admin;
}

/// A member with at least role `R`; 401 without credentials, 403 below the role.
pub struct Authorized<R: MinRole>(pub Member, PhantomData<R>);

impl<R: MinRole> Authorized<R> {
    pub fn member(&self) -> Member {
        self.0
    }
}

impl<S: Send + Sync, R: MinRole> FromRequestParts<S> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, state).await;
        match caller {
            Caller::Anonymous => Err(ApiError::Unauthenticated(
                "sign in, or send an API key, as `Authorization: Bearer <token>`".into(),
            )),
            Caller::Member(m) if m.role.at_least(R::ROLE) => Ok(Self(m, PhantomData)),
            Caller::Member(m) => Err(ApiError::Forbidden(format!(
                "this needs the {} role; you are {}",
                R::ROLE,
                m.role
            ))),
        }
    }
}

/// The caller acting in the org a path names: the token's own org, or — for a person —
/// any org they are an active member of, with their role there. Not a member: 404,
/// exactly like an org that does not exist. A member below `need`: 403.
pub async fn act_in(
    state: &AppState,
    caller: Caller,
    org: Uuid,
    need: Role,
) -> Result<Member, ApiError> {
    let not_found = || ApiError::NotFound {
        what: format!("organization {org}"),
    };
    let Caller::Member(member) = caller else {
        return Err(ApiError::Unauthenticated(
            "sign in, or send an API key, as `Authorization: Bearer <token>`".into(),
        ));
    };
    let member = if member.org == org {
        member
    } else {
        let Actor::User(user) = member.actor else {
            return Err(not_found());
        };
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        let membership = accounts::membership(&**client, org, user)
            .await?
            .filter(|m| m.active)
            .ok_or_else(not_found)?;
        Member {
            org,
            role: membership.role,
            actor: member.actor,
        }
    };
    if member.role.at_least(need) {
        Ok(member)
    } else {
        Err(ApiError::Forbidden(format!(
            "this needs the {need} role in the organization; you are {}",
            member.role
        )))
    }
}

/// The caller acting in the org named by the path's `{id}`, with at least role `R`.
/// As an extractor it runs before the body is read, so 401, 404 (not a member, or no
/// such org) and 403 (role too low) come before any 422 about the body.
pub struct InOrg<R: MinRole>(pub Member, PhantomData<R>);

impl<R: MinRole> InOrg<R> {
    pub fn member(&self) -> Member {
        self.0
    }
}

impl<R: MinRole> FromRequestParts<AppState> for InOrg<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, state).await;
        if caller == Caller::Anonymous {
            return Err(ApiError::Unauthenticated(
                "sign in, or send an API key, as `Authorization: Bearer <token>`".into(),
            ));
        }
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::Invalid {
                detail: e.to_string(),
            })?;
        let id = params
            .iter()
            .find(|(name, _)| *name == "id")
            .map(|(_, value)| value.to_owned())
            .unwrap_or_default();
        let org: Uuid = id.parse().map_err(|_| ApiError::NotFound {
            what: format!("organization {id}"),
        })?;
        act_in(state, caller, org, R::ROLE)
            .await
            .map(|m| Self(m, PhantomData))
    }
}
