//! The fake provider's routes and in-memory grants.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use super::{Fault, Shared};

const CODE_TTL: TimeDelta = TimeDelta::seconds(60);

struct CodeGrant {
    client_redirect_uri: String,
    challenge: Option<String>,
    scope: String,
    expires_at: DateTime<Utc>,
    used: bool,
}

struct AccessGrant {
    scope: String,
    expires_at: DateTime<Utc>,
}

pub(super) struct State {
    pub(super) deny: bool,
    pub(super) expires_in: u64,
    pub(super) faults: VecDeque<Fault>,
    pub(super) token_calls: usize,
    pub(super) authorize_calls: usize,
    pub(super) clock_offset: TimeDelta,
    codes: HashMap<String, CodeGrant>,
    /// Refresh token → (scope, still usable).
    refresh_tokens: HashMap<String, (String, bool)>,
    access_tokens: HashMap<String, AccessGrant>,
}

impl State {
    pub(super) fn new(expires_in: u64) -> Self {
        Self {
            deny: false,
            expires_in,
            faults: VecDeque::new(),
            token_calls: 0,
            authorize_calls: 0,
            clock_offset: TimeDelta::zero(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub(super) fn new_refresh_token(&mut self, scope: String) -> String {
        let token = format!("fake-rt-{}", Uuid::new_v4().simple());
        self.refresh_tokens.insert(token.clone(), (scope, true));
        token
    }

    fn new_access_token(&mut self, scope: &str) -> (String, u64) {
        let token = format!("fake-at-{}", Uuid::new_v4().simple());
        let expires_in = self.expires_in;
        let lifetime = TimeDelta::seconds(i64::try_from(expires_in).unwrap_or(i64::MAX / 1000));
        self.access_tokens.insert(
            token.clone(),
            AccessGrant {
                scope: scope.to_owned(),
                expires_at: self.now() + lifetime,
            },
        );
        (token, expires_in)
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .with_state(shared)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn redirect(mut to: Url, params: &[(&str, &str)]) -> Response {
    to.query_pairs_mut().extend_pairs(params);
    (StatusCode::FOUND, [(LOCATION, to.to_string())]).into_response()
}

async fn authorize(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str);
    let mut state = shared.lock();
    state.authorize_calls += 1;

    // RFC 6749 §4.1.2.1: with an unknown client or a bad redirect URI, do not redirect.
    if param("client_id") != Some(shared.config.client_id.as_str()) {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let Some(redirect_uri) = param("redirect_uri").and_then(|u| Url::parse(u).ok()) else {
        return (StatusCode::BAD_REQUEST, "missing or invalid redirect_uri").into_response();
    };
    let client_state = param("state").unwrap_or("");
    let fail = |error: &str, description: &str| {
        redirect(
            redirect_uri.clone(),
            &[
                ("error", error),
                ("error_description", description),
                ("state", client_state),
            ],
        )
    };

    if param("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if state.deny {
        return fail("access_denied", "the user denied the request");
    }
    let challenge = param("code_challenge").map(str::to_owned);
    match (&challenge, param("code_challenge_method")) {
        (Some(_), Some("S256")) | (None, None) => {}
        (Some(_), _) => {
            return fail(
                "invalid_request",
                "only code_challenge_method=S256 is supported",
            );
        }
        (None, Some(_)) => return fail("invalid_request", "code_challenge is missing"),
    }
    if challenge.is_none() && shared.config.require_pkce {
        return fail("invalid_request", "PKCE is required");
    }

    let code = format!("fake-code-{}", Uuid::new_v4().simple());
    let expires_at = state.now() + CODE_TTL;
    state.codes.insert(
        code.clone(),
        CodeGrant {
            client_redirect_uri: redirect_uri.to_string(),
            challenge,
            scope: param("scope").unwrap_or("").to_owned(),
            expires_at,
            used: false,
        },
    );
    redirect(redirect_uri, &[("code", &code), ("state", client_state)])
}

/// Why client authentication could not even be read.
enum ClientAuthError {
    TwoMethods,
    Malformed,
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: each part form-urlencoded) or the body.
fn client_credentials(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(String, String), ClientAuthError> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    match basic {
        Some(encoded) => {
            if params.contains_key("client_secret") {
                return Err(ClientAuthError::TwoMethods);
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(ClientAuthError::Malformed);
            };
            let unescape = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok((unescape(id), unescape(secret)))
        }
        None => Ok((
            params.get("client_id").cloned().unwrap_or_default(),
            params.get("client_secret").cloned().unwrap_or_default(),
        )),
    }
}

fn invalid_client() -> Response {
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        "Basic realm=\"fake\"".parse().expect("static header value"),
    );
    response
}

async fn token(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut state = shared.lock();
        state.token_calls += 1;
        state.faults.pop_front()
    };
    match fault {
        Some(Fault::Unavailable) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(CONTENT_TYPE, "text/html")],
                "<html><body>503 Service Unavailable</body></html>",
            )
                .into_response();
        }
        Some(Fault::RateLimited { retry_after }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(RETRY_AFTER, retry_after.as_secs().to_string())],
                axum::Json(json!({"error": "rate_limited"})),
            )
                .into_response();
        }
        Some(Fault::InvalidGrant) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "injected failure");
        }
        Some(Fault::Status200Body(body)) => {
            return (StatusCode::OK, axum::Json(body)).into_response();
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }

    if !headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let params: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (client_id, client_secret) = match client_credentials(&headers, &params) {
        Ok(credentials) => credentials,
        Err(ClientAuthError::TwoMethods) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "use one client authentication method",
            );
        }
        Err(ClientAuthError::Malformed) => return invalid_client(),
    };
    if client_id != shared.config.client_id || client_secret != shared.config.client_secret {
        return invalid_client();
    }

    let mut state = shared.lock();
    let now = state.now();
    let param = |name: &str| params.get(name).map(String::as_str);
    let (scope, refresh_token) = match param("grant_type") {
        Some("authorization_code") => {
            let Some(grant) = param("code").and_then(|c| state.codes.get_mut(c)) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
            };
            if grant.used {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code was already used",
                );
            }
            // Any presentation spends the code, as RFC 6749 §4.1.2 asks.
            grant.used = true;
            if now >= grant.expires_at {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code expired");
            }
            if param("redirect_uri") != Some(grant.client_redirect_uri.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri does not match the authorization request",
                );
            }
            if let Some(challenge) = &grant.challenge {
                let Some(verifier) = param("code_verifier") else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "code_verifier is missing",
                    );
                };
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                if &computed != challenge {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "code_verifier does not match the code_challenge",
                    );
                }
            }
            let scope = grant.scope.clone();
            let refresh_token = state.new_refresh_token(scope.clone());
            (scope, Some(refresh_token))
        }
        Some("refresh_token") => {
            let presented = param("refresh_token").unwrap_or("");
            let Some((scope, usable)) = state.refresh_tokens.get_mut(presented) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown refresh token",
                );
            };
            if !*usable {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token was already used",
                );
            }
            let scope = scope.clone();
            if shared.config.rotate_refresh_tokens {
                *usable = false;
                let next = state.new_refresh_token(scope.clone());
                (scope, Some(next))
            } else {
                (scope, None)
            }
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unknown grant_type",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            );
        }
    };

    let (access_token, expires_in) = state.new_access_token(&scope);
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": scope,
    });
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    (
        StatusCode::OK,
        [(CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

async fn userinfo(AxumState(shared): AxumState<Arc<Shared>>, headers: HeaderMap) -> Response {
    let state = shared.lock();
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| state.access_tokens.get(t)) {
        Some(grant) if state.now() < grant.expires_at => (
            StatusCode::OK,
            axum::Json(json!({ "sub": "fake-user", "scope": grant.scope })),
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            axum::Json(json!({ "error": "invalid_token" })),
        )
            .into_response(),
    }
}
