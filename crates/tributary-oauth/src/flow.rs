//! The authorization-code grant (RFC 6749 §4.1, with PKCE) and the refresh grant (§6).
//!
//! A typical flow, with `signer` a [`crate::StateSigner`]:
//!
//! ```no_run
//! # use tributary_oauth::*;
//! # async fn demo(http: reqwest::Client, provider: &ProviderConfig, signer: &StateSigner,
//! #   redirect_uri: &Url, org: uuid::Uuid, user: uuid::Uuid, query: &str)
//! #   -> Result<(), Box<dyn std::error::Error>> {
//! let now = chrono::Utc::now();
//! // Start: send the user's browser to `url`.
//! let claims = StateClaims::new(&provider.name, org, user, None, now);
//! let challenge = provider.pkce.then(|| signer.pkce_challenge_for(claims.nonce));
//! let state = signer.issue(claims, now);
//! let url = authorize_url(provider, redirect_uri, &state, challenge.as_ref());
//!
//! // Callback: the provider sent the browser back with `?code=...&state=...`.
//! let params = CallbackParams::from_query(query);
//! let claims = signer.verify(params.state.as_deref().unwrap_or(""), &provider.name, now)?;
//! // ...record claims.nonce and refuse it if it was already used...
//! let code = params.code(&provider.name)?;
//! let verifier = provider.pkce.then(|| signer.pkce_verifier_for(claims.nonce));
//! let tokens = exchange_code(&http, provider, redirect_uri, code, verifier).await?;
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;

use chrono::Utc;
use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    TokenUrl,
};
use serde::Deserialize;
use url::Url;

use crate::error::{OAuthError, Redactor, Result, from_error_code};
use crate::http::{HttpError, OAuthHttp};
use crate::providers::{AuthStyle, ProviderConfig};
use crate::token::TokenSet;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn client(provider: &ProviderConfig) -> Client {
    let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(provider.authorize_url.clone()))
        .set_token_uri(TokenUrl::from_url(provider.token_url.clone()))
        .set_auth_type(match provider.auth_style {
            AuthStyle::ClientSecretPost => AuthType::RequestBody,
            AuthStyle::BasicAuth => AuthType::BasicAuth,
        });
    match &provider.client_secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.clone())),
        None => client,
    }
}

fn check(provider: &ProviderConfig) -> Result<()> {
    provider.validate().map_err(|e| OAuthError::Misconfigured {
        provider: provider.name.clone(),
        detail: e.to_string(),
    })
}

/// The URL to send the user's browser to.
///
/// Pass the challenge from [`crate::StateSigner::pkce_challenge_for`] when `provider.pkce` is
/// set, and `None` otherwise. `provider` is assumed valid (as it is when it comes from
/// [`crate::Providers`]); the token requests check it again.
pub fn authorize_url(
    provider: &ProviderConfig,
    redirect_uri: &Url,
    state: &str,
    pkce_challenge: Option<&PkceCodeChallenge>,
) -> Url {
    let client = client(provider);
    let mut request = client
        .authorize_url(|| CsrfToken::new(state.to_owned()))
        .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())));
    if !provider.scopes.is_empty() {
        // Joined here rather than by `oauth2`, which only knows spaces (Slack wants commas).
        request = request.add_extra_param("scope", provider.scope_separator.join(&provider.scopes));
    }
    if let Some(challenge) = pkce_challenge {
        request = request.set_pkce_challenge(challenge.clone());
    }
    for (name, value) in &provider.extra_authorize_params {
        request = request.add_extra_param(name, value);
    }
    request.url().0
}

/// Exchanges the authorization code from the callback for tokens.
///
/// `redirect_uri` must be the one used in [`authorize_url`]; `verifier` the one derived from
/// the same nonce (or `None` without PKCE). When the provider does not list the granted
/// scopes, [`TokenSet::scopes`] holds the requested ones.
pub async fn exchange_code(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    redirect_uri: &Url,
    code: &str,
    verifier: Option<PkceCodeVerifier>,
) -> Result<TokenSet> {
    check(provider)?;
    let verifier_secret = verifier.as_ref().map(|v| v.secret().clone());
    let redactor = Redactor::new()
        .with(provider.client_secret.as_deref())
        .with(Some(code))
        .with(verifier_secret.as_deref());

    let client = client(provider);
    let mut request = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())));
    if let Some(verifier) = verifier {
        request = request.set_pkce_verifier(verifier);
    }
    let requested_at = Utc::now();
    let http = OAuthHttp::new(http);
    let response = request
        .request_async(&http)
        .await
        .map_err(|e| classify(provider, &redactor, e))?;
    let tokens = TokenSet::from_response(&response, requested_at, &provider.scopes);
    tracing::debug!(provider = %provider.name, expires_at = ?tokens.expires_at,
        has_refresh_token = tokens.refresh_token.is_some(), "authorization code exchanged");
    Ok(tokens)
}

/// Uses a refresh token once.
///
/// A provider that rotates refresh tokens invalidates `refresh_token` as soon as it answers:
/// store the returned [`TokenSet::refresh_token`] before anything else. When it is `None`,
/// keep `refresh_token`. Scopes are not sent (the grant keeps what was consented), and an
/// empty [`TokenSet::scopes`] means "unchanged". No retries here; see
/// [`crate::refresh_with_retry`].
pub async fn refresh(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    refresh_token: &str,
) -> Result<TokenSet> {
    check(provider)?;
    let redactor = Redactor::new()
        .with(provider.client_secret.as_deref())
        .with(Some(refresh_token));
    let client = client(provider);
    let refresh_token = RefreshToken::new(refresh_token.to_owned());
    let requested_at = Utc::now();
    let http = OAuthHttp::new(http);
    let response = client
        .exchange_refresh_token(&refresh_token)
        .request_async(&http)
        .await
        .map_err(|e| classify(provider, &redactor, e))?;
    let tokens = TokenSet::from_response(&response, requested_at, &[]);
    tracing::debug!(provider = %provider.name, expires_at = ?tokens.expires_at,
        rotated = tokens.refresh_token.is_some(), "access token refreshed");
    Ok(tokens)
}

fn classify(
    provider: &ProviderConfig,
    redactor: &Redactor<'_>,
    error: RequestTokenError<HttpError, BasicErrorResponse>,
) -> OAuthError {
    let name = provider.name.clone();
    match error {
        RequestTokenError::ServerResponse(response) => from_error_code(
            &provider.name,
            response.error().as_ref(),
            redactor.clean_opt(response.error_description().map(String::as_str)),
            None,
        ),
        RequestTokenError::Request(error) => match error {
            HttpError::Timeout | HttpError::Connect | HttpError::Io => OAuthError::Transient {
                provider: name,
                retry_after: None,
                message: error.to_string(),
            },
            HttpError::Unavailable { retry_after, .. } => OAuthError::Transient {
                provider: name,
                retry_after,
                message: error.to_string(),
            },
            HttpError::UnexpectedStatus { status }
                if matches!(status.as_u16(), 401 | 403 | 404 | 405) =>
            {
                OAuthError::Misconfigured {
                    provider: name,
                    detail: format!(
                        "{error} (check `token_url` `{}` and the client credentials)",
                        provider.token_url
                    ),
                }
            }
            HttpError::UnexpectedStatus { .. } => OAuthError::InvalidResponse {
                provider: name,
                detail: error.to_string(),
            },
            HttpError::Build => OAuthError::Misconfigured {
                provider: name,
                detail: error.to_string(),
            },
        },
        // serde's messages can quote the offending value, which might be a token: describe
        // the failure by field and category only.
        RequestTokenError::Parse(error, _body) => {
            let inner = error.inner().to_string();
            let detail = match inner
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                Some(field) => format!("the token response has no `{field}`"),
                None => format!(
                    "the token response could not be read at `{}` ({:?} error)",
                    error.path(),
                    error.inner().classify()
                ),
            };
            OAuthError::InvalidResponse {
                provider: name,
                detail,
            }
        }
        RequestTokenError::Other(message) => OAuthError::InvalidResponse {
            provider: name,
            detail: redactor.clean(&message),
        },
    }
}

/// The query parameters of the redirect back to us (RFC 6749 §4.1.2).
///
/// `Debug` hides the code.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

impl CallbackParams {
    /// Reads the parameters from a query string (without the leading `?`).
    pub fn from_query(query: &str) -> Self {
        let mut params = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        params
    }

    /// Reads the parameters from the full callback URL.
    pub fn from_url(url: &Url) -> Self {
        Self::from_query(url.query().unwrap_or(""))
    }

    /// The authorization code, or the error the provider redirected with:
    /// [`OAuthError::AccessDenied`] when the user declined. Verify the state first either way.
    pub fn code(&self, provider: &str) -> Result<&str> {
        if let Some(error) = self.error.as_deref() {
            let description = Redactor::new().clean_opt(self.error_description.as_deref());
            return Err(from_error_code(provider, error, description, None));
        }
        self.code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::InvalidResponse {
                provider: provider.to_owned(),
                detail: "the callback has neither a `code` nor an `error` parameter".to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::builtin;
    use std::collections::HashMap;

    fn query(url: &Url) -> HashMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn authorize_url_carries_everything() {
        let provider = builtin("google", "cid", "secret").unwrap();
        let redirect = Url::parse("https://tributary.example/oauth/google/callback").unwrap();
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new("v".repeat(43)));
        let url = authorize_url(&provider, &redirect, "the-state", Some(&challenge));
        assert!(
            url.as_str()
                .starts_with("https://accounts.google.com/o/oauth2/v2/auth?")
        );
        let q = query(&url);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["redirect_uri"], redirect.as_str());
        assert_eq!(q["state"], "the-state");
        assert_eq!(q["scope"], "openid email profile");
        assert_eq!(q["code_challenge"], challenge.as_str());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert!(!url.as_str().contains("secret"));
    }

    #[test]
    fn slack_scopes_are_comma_separated_and_notion_has_none() {
        let redirect = Url::parse("https://t.example/cb").unwrap();
        let slack = builtin("slack", "cid", "s").unwrap();
        let q = query(&authorize_url(&slack, &redirect, "s", None));
        assert_eq!(q["scope"], "channels:read,channels:history,users:read");
        assert!(!q.contains_key("code_challenge"));

        let notion = builtin("notion", "cid", "s").unwrap();
        let q = query(&authorize_url(&notion, &redirect, "s", None));
        assert!(!q.contains_key("scope"));
        assert_eq!(q["owner"], "user");
    }

    #[test]
    fn callback_errors_are_classified() {
        let p = CallbackParams::from_query("error=access_denied&state=abc");
        assert_eq!(p.state.as_deref(), Some("abc"));
        assert!(matches!(
            p.code("github"),
            Err(OAuthError::AccessDenied { .. })
        ));
        let p = CallbackParams::from_query("code=c0de&state=abc");
        assert_eq!(p.code("github").unwrap(), "c0de");
        assert!(!format!("{p:?}").contains("c0de"));
        assert!(matches!(
            CallbackParams::from_query("state=abc").code("github"),
            Err(OAuthError::InvalidResponse { .. })
        ));
    }
}
