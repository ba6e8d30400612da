//! Kinds without a source of their own (basic auth, bearer tokens, OAuth 2.0 tokens):
//! checked by fetching a URL the user configured, and not checked without one.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::RequestBuilder;

use super::http::{endpoint, rate_limited, retry_after, send, transport_error, unexpected};
use super::{CheckResult, CheckStatus, Inputs};

pub(super) async fn check_basic(cx: &Inputs<'_>) -> CheckResult {
    let run = async || {
        let username = cx.required_setting("username")?;
        let password = cx.required_secret("password")?;
        let Some(base_url) = cx.setting("base_url") else {
            return Ok(CheckResult::new(
                CheckStatus::NotChecked,
                "no base URL is configured, so the username and password were not tried: add \
                 the URL of a page that needs them to have them checked",
            ));
        };
        let url = endpoint(base_url, "", "base URL")?;
        let request = cx
            .http
            .get(url.clone())
            .basic_auth(username, Some(password));
        Ok(probe(request, &url, "the username and password").await)
    };
    run().await.unwrap_or_else(|result| result)
}

pub(super) async fn check_bearer(cx: &Inputs<'_>) -> CheckResult {
    let run = async || {
        let token = cx.required_secret("token")?;
        let Some(check_url) = cx.setting("check_url") else {
            return Ok(CheckResult::new(
                CheckStatus::NotChecked,
                "no check URL is configured, so the token was not tried: add a URL that \
                 answers 2xx with a valid token to have it checked",
            ));
        };
        let url = endpoint(check_url, "", "check URL")?;
        let request = cx.http.get(url.clone()).bearer_auth(token);
        Ok(probe(request, &url, "the token").await)
    };
    run().await.unwrap_or_else(|result| result)
}

pub(super) async fn check_oauth2(cx: &Inputs<'_>) -> CheckResult {
    let run = async || {
        let provider = cx.required_setting("provider")?;
        let access_token = cx.required_secret("access_token")?;
        if let Some(token_type) = cx.setting("token_type")
            && !token_type.eq_ignore_ascii_case("bearer")
        {
            return Err(CheckResult::new(
                CheckStatus::Invalid,
                format!(
                    "the token type {token_type} is not supported; Tributary sends Bearer \
                     tokens: reconnect {provider}"
                ),
            ));
        }
        let expires_at = match cx.setting("expires_at") {
            None => None,
            Some(raw) => Some(
                DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| {
                        CheckResult::new(
                            CheckStatus::Invalid,
                            format!(
                                "the expiry {raw} is not an RFC 3339 date-time: reconnect {provider}"
                            ),
                        )
                    })?
                    .with_timezone(&Utc),
            ),
        };
        let shown = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        if let Some(expired) = expires_at.filter(|t| *t <= Utc::now()) {
            let next = if cx.secret("refresh_token").is_some() {
                format!(
                    "it must be refreshed with the refresh token before use; if refreshing \
                     fails, reconnect {provider} through Tributary's OAuth flow"
                )
            } else {
                format!(
                    "there is no refresh token, so reconnect {provider} through Tributary's \
                     OAuth flow"
                )
            };
            return Ok(CheckResult::new(
                CheckStatus::Unauthorized,
                format!(
                    "the {provider} access token expired at {}: {next}",
                    shown(expired)
                ),
            ));
        }
        let Some(check_url) = cx.setting("check_url") else {
            let expiry = expires_at.map_or_else(
                || "does not expire".to_owned(),
                |t| format!("is valid until {}", shown(t)),
            );
            return Ok(CheckResult::new(
                CheckStatus::NotChecked,
                format!(
                    "the {provider} access token {expiry}, but no check URL is configured, so \
                     it was not tried: add the provider's user-info URL to have it checked"
                ),
            ));
        };
        let url = endpoint(check_url, "", "check URL")?;
        let request = cx.http.get(url.clone()).bearer_auth(access_token);
        Ok(probe(request, &url, &format!("the {provider} access token")).await)
    };
    run().await.unwrap_or_else(|result| result)
}

/// Fetches `url` with the credential: 2xx accepted, 401/403 rejected.
async fn probe(request: RequestBuilder, url: &reqwest::Url, what: &str) -> CheckResult {
    let source = url.host_str().unwrap_or("the server").to_owned();
    let response = match send(request).await {
        Ok(response) => response,
        Err(e) => return transport_error(&source, url, &e),
    };
    let status = response.status();
    match status.as_u16() {
        200..=299 => CheckResult::new(CheckStatus::Ok, format!("{url} accepted {what} ({status})")),
        401 | 403 => CheckResult::new(
            CheckStatus::Unauthorized,
            format!(
                "{url} rejected {what} ({status}): correct the credential, or give it access \
                 to this URL, and check again"
            ),
        ),
        429 => rate_limited(&source, retry_after(response.headers())),
        _ => unexpected(&source, url, status),
    }
}
