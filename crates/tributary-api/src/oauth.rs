//! `/api/v1/oauth`: connect a source with OAuth (authorization code, PKCE) and keep the
//! tokens as an encrypted `oauth2` credential.
//!
//! `start` (an admin, signed in) records the flow and redirects to the provider with a
//! `state` that is signed and carries provider, org, user, a nonce and an expiry of
//! minutes, and with an S256 code challenge whose verifier is derived from the nonce (so
//! it never travels through the browser). `callback` (the provider's redirect, with no
//! bearer token) checks the state's signature, expiry and provider, claims the flow row
//! (single use), exchanges the code with the verifier and stores the tokens. Every
//! failure answers a clear problem and writes `security.oauth_failed`.

use crate::auth::{Actor, AdminRole, AnyRole, Authorized, Member};
use crate::credentials::{answer, seal, send};
use crate::orgs::accepted;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_domain::Role;
use tributary_domain::credential as cred;
use tributary_domain::security::OAUTH_FAILED;
use tributary_oauth::{
    CallbackParams, OAuthError, ProviderConfig, Providers, StateClaims, StateError, StateSigner,
    Url,
};
use tributary_store::oauth::{self as flows, Flow};
use tributary_vault::Secret;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// What the OAuth endpoints need: the configured providers, the state signer and the
/// address the provider redirects back to.
pub struct OAuth {
    pub providers: Providers,
    pub signer: StateSigner,
    /// The API as the browser reaches it, e.g. `https://tributary.example.com`.
    pub public_url: Url,
    /// Follows no redirects, with timeouts (see `tributary_oauth::http_client`).
    pub http: reqwest::Client,
}

impl OAuth {
    pub fn redirect_uri(&self, provider: &str) -> Url {
        let mut url = self.public_url.clone();
        url.set_path(&format!("/api/v1/oauth/{provider}/callback"));
        url.set_query(None);
        url
    }

    fn provider(&self, name: &str) -> ApiResult<&ProviderConfig> {
        self.providers.get(name).ok_or_else(|| ApiError::NotFound {
            what: format!(
                "OAuth provider {name:?} (configured: {}; add it to TRIBUTARY_OAUTH_PROVIDERS)",
                self.providers.names().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

fn failed(status: StatusCode, code: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Rejected {
        status,
        code: code.into(),
        detail: detail.into(),
        command_id: String::new(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderOut {
    pub name: String,
    pub scopes: Vec<String>,
    pub pkce: bool,
    /// Where the provider must redirect back to (register it with the provider).
    pub redirect_uri: String,
}

/// The OAuth providers this installation is configured for.
#[utoipa::path(get, path = "/oauth/providers", tag = "credentials",
    responses((status = 200, body = [ProviderOut])),
    security(("bearer" = ["member"])))]
pub async fn providers(
    State(state): State<AppState>,
    _caller: Authorized<AnyRole>,
) -> Json<Vec<ProviderOut>> {
    Json(
        state
            .oauth
            .providers
            .iter()
            .map(|p| ProviderOut {
                name: p.name.clone(),
                scopes: p.scopes.clone(),
                pkce: p.pkce,
                redirect_uri: state.oauth.redirect_uri(&p.name).to_string(),
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StartParams {
    /// Name of the new credential (default: "<provider> (OAuth)").
    pub name: Option<String>,
    /// Re-authorize this existing `oauth2` credential instead of creating one.
    pub credential_id: Option<Uuid>,
    /// Where to send the browser after the callback (`?credential_id=` is added).
    pub redirect_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StartOut {
    pub authorize_url: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// Start an authorization: redirects (302) to the provider. The answer's body also
/// names the URL, for clients that open it themselves.
#[utoipa::path(get, path = "/oauth/{provider}/start", tag = "credentials",
    params(("provider" = String, Path), StartParams),
    responses((status = 302, body = StartOut, description = "Redirect to the provider"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Authorized<AdminRole>,
    Path(provider_name): Path<String>,
    Query(params): Query<StartParams>,
) -> ApiResult<Response> {
    let member = caller.member();
    let oauth = &state.oauth;
    let provider = oauth.provider(&provider_name)?;
    let Actor::User(user) = member.actor else {
        return Err(ApiError::Forbidden(
            "an OAuth authorization is made by a person in a browser; API keys cannot start one"
                .into(),
        ));
    };
    if let Some(after) = &params.redirect_after
        && (!after.starts_with('/') || after.starts_with("//"))
    {
        return Err(ApiError::Invalid {
            detail: "redirect_after must be a path on this site (starting with a single /)".into(),
        });
    }
    let (credential_id, name, reconnect) = match params.credential_id {
        Some(id) => {
            let org = member.org;
            let row = state
                .read_as(&member, async |tx| {
                    tributary_store::credentials::tenant_reads::get(tx, org, id).await
                })
                .await?
                .ok_or_else(|| ApiError::NotFound {
                    what: format!("credential {id}"),
                })?;
            if row.kind != "oauth2" || row.config["provider"] != provider.name.as_str() {
                return Err(ApiError::Invalid {
                    detail: format!(
                        "credential {id} is not an OAuth credential of {}",
                        provider.name
                    ),
                });
            }
            (id, row.name, true)
        }
        None => {
            let name = params
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map_or_else(|| format!("{} (OAuth)", provider.name), str::to_owned);
            if name.chars().count() > 200 {
                return Err(ApiError::Invalid {
                    detail: "name must be at most 200 characters".into(),
                });
            }
            (Uuid::now_v7(), name, false)
        }
    };
    let now = Utc::now();
    let claims = StateClaims::new(
        provider.name.clone(),
        member.org,
        user,
        params.redirect_after,
        now,
    );
    let flow = Flow {
        nonce: claims.nonce,
        provider: provider.name.clone(),
        org_id: member.org,
        user_id: user,
        credential_id,
        name,
        reconnect,
        expires_at: claims.expires_at,
    };
    {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        flows::start(&**client, &flow).await?;
    }
    let challenge = provider
        .pkce
        .then(|| oauth.signer.pkce_challenge_for(claims.nonce));
    let expires_at = claims.expires_at;
    let signed = oauth.signer.issue(claims, now);
    let url = tributary_oauth::authorize_url(
        provider,
        &oauth.redirect_uri(&provider.name),
        &signed,
        challenge.as_ref(),
    );
    let mut response = (
        StatusCode::FOUND,
        Json(StartOut {
            authorize_url: url.to_string(),
            expires_at,
        }),
    )
        .into_response();
    let location = HeaderValue::from_str(url.as_str()).map_err(|_| ApiError::Invalid {
        detail: "the provider's authorize URL is not a valid header value".into(),
    })?;
    response.headers_mut().insert(header::LOCATION, location);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Records a failed authorization and answers its problem.
async fn refuse(
    state: &AppState,
    provider: &str,
    claims: Option<&StateClaims>,
    reason: &str,
    error: ApiError,
) -> ApiError {
    let mut data = serde_json::json!({
        "provider": provider.chars().take(64).collect::<String>(),
        "reason": reason,
        "detail": error.to_string().chars().take(1000).collect::<String>(),
        "at": Utc::now(),
    });
    if let Some(claims) = claims {
        data["user_id"] = serde_json::json!(claims.user_id);
    }
    let key = claims.map_or_else(|| provider.to_owned(), |c| c.user_id.to_string());
    crate::security::record(state, OAUTH_FAILED, &key, claims.map(|c| c.org_id), &data).await;
    error
}

fn state_problem(e: &StateError) -> (&'static str, ApiError) {
    let bad = |detail: &str| failed(StatusCode::BAD_REQUEST, "oauth_state_invalid", detail);
    match e {
        StateError::Expired => (
            "state_expired",
            failed(
                StatusCode::BAD_REQUEST,
                "oauth_state_expired",
                "this authorization took too long and expired; start it again",
            ),
        ),
        StateError::WrongProvider { .. } => (
            "wrong_provider",
            bad("the state was issued for another provider; start the authorization again"),
        ),
        StateError::Malformed | StateError::BadSignature => (
            "state_invalid",
            bad(
                "the state is not one Tributary issued (or was altered); start the authorization again",
            ),
        ),
    }
}

/// The provider's redirect back: exchanges the code and stores the tokens as an
/// encrypted `oauth2` credential. No bearer token: the signed state says who asked.
#[utoipa::path(get, path = "/oauth/{provider}/callback", tag = "credentials",
    params(("provider" = String, Path), ("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query)),
    responses((status = 201, body = crate::credentials::CredentialOut), (status = 302, description = "To redirect_after"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")))]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(provider_name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let oauth = state.oauth.clone();
    let provider = oauth.provider(&provider_name)?;
    let params = CallbackParams::from_query(query.as_deref().unwrap_or_default());
    let Some(raw_state) = params.state.as_deref() else {
        let error = failed(
            StatusCode::BAD_REQUEST,
            "oauth_state_invalid",
            "the callback has no state; start the authorization from Tributary",
        );
        return Err(refuse(&state, &provider.name, None, "state_missing", error).await);
    };
    let claims = match oauth.signer.verify(raw_state, &provider.name, Utc::now()) {
        Ok(claims) => claims,
        Err(e) => {
            let (reason, error) = state_problem(&e);
            return Err(refuse(&state, &provider.name, None, reason, error).await);
        }
    };
    let flow = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        flows::take(&**client, claims.nonce).await?
    };
    let Some(flow) = flow.filter(|f| f.org_id == claims.org_id && f.user_id == claims.user_id)
    else {
        let error = failed(
            StatusCode::CONFLICT,
            "oauth_state_reused",
            "this authorization was already completed or is unknown; start it again",
        );
        return Err(refuse(&state, &provider.name, Some(&claims), "state_reused", error).await);
    };
    let code = match params.code(&provider.name) {
        Ok(code) => code.to_owned(),
        Err(e) => {
            let reason = if matches!(e, OAuthError::AccessDenied { .. }) {
                "access_denied"
            } else {
                "provider_error"
            };
            let error = failed(StatusCode::BAD_REQUEST, "oauth_denied", e.to_string());
            return Err(refuse(&state, &provider.name, Some(&claims), reason, error).await);
        }
    };
    // The person must still be an active admin of the org.
    let still_admin = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        tributary_store::accounts::membership(&**client, claims.org_id, claims.user_id)
            .await?
            .is_some_and(|m| m.active && m.role == Role::Admin)
    };
    if !still_admin {
        let error = ApiError::Forbidden(
            "you are no longer an active admin of the org this authorization was for".into(),
        );
        return Err(refuse(&state, &provider.name, Some(&claims), "not_allowed", error).await);
    }
    let verifier = provider
        .pkce
        .then(|| oauth.signer.pkce_verifier_for(claims.nonce));
    let tokens = match tributary_oauth::exchange_code(
        &oauth.http,
        provider,
        &oauth.redirect_uri(&provider.name),
        &code,
        verifier,
    )
    .await
    {
        Ok(tokens) => tokens,
        Err(e) => {
            let error = failed(StatusCode::BAD_GATEWAY, "oauth_token_error", e.to_string());
            return Err(refuse(&state, &provider.name, Some(&claims), "token_error", error).await);
        }
    };
    let member = Member {
        org: claims.org_id,
        role: Role::Admin,
        actor: Actor::User(claims.user_id),
    };
    let mut secrets = BTreeMap::from([(
        "access_token".to_owned(),
        Secret::new(tokens.access_token.clone()),
    )]);
    if let Some(refresh) = &tokens.refresh_token {
        secrets.insert("refresh_token".to_owned(), Secret::new(refresh.clone()));
    }
    let sealed = seal(
        &state,
        member.org,
        flow.credential_id,
        &secrets,
        &member.actor.tag(),
    )
    .await?;
    drop(secrets);
    let mut config = serde_json::json!({
        "provider": provider.name, "scopes": tokens.scopes, "token_type": "bearer",
    });
    if let Some(at) = tokens.expires_at {
        config["expires_at"] = serde_json::json!(at);
    }
    let (ty, data) = if flow.reconnect {
        (
            cred::STORE_TOKENS,
            serde_json::json!({ "secrets": sealed, "config": config }),
        )
    } else {
        (
            cred::CREATE,
            serde_json::json!({ "kind": "oauth2", "name": flow.name, "config": config, "secrets": sealed }),
        )
    };
    if let Err(command) = send(&state, &member, &headers, flow.credential_id, ty, data).await? {
        return Ok(accepted(command));
    }
    if let Some(after) = &claims.redirect_after {
        let target = format!(
            "{after}{}credential_id={}",
            if after.contains('?') { '&' } else { '?' },
            flow.credential_id
        );
        let mut response = StatusCode::FOUND.into_response();
        if let Ok(location) = HeaderValue::from_str(&target) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return Ok(response);
    }
    answer(&state, &member, flow.credential_id, StatusCode::CREATED).await
}
