//! The HTTP side of token requests: the shared `reqwest` client, wrapped so that `oauth2`
//! sees RFC 6749-shaped answers and we keep what `oauth2` would lose (status, `Retry-After`).
//!
//! `oauth2` treats every non-200 answer as an OAuth error body, so a 503 page or a 429 would
//! reach us as a "parse error" without its status. The adapter turns those into
//! [`HttpError::Unavailable`] first. It also rewrites provider quirks:
//!
//! - Slack answers `200 {"ok":false,"error":"invalid_code"}`; GitHub answers
//!   `200 {"error":"bad_verification_code",...}`. Both become `400` with the RFC 6749 body.
//! - A form-encoded body (GitHub without `Accept: application/json`) becomes JSON.
//! - `expires_in` as a string or a float becomes an integer; `scope` as a list becomes a
//!   space-separated string; Slack's user-token-only answer (`authed_user.access_token`) is
//!   lifted to the top level.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use oauth2::http::{HeaderMap, HeaderValue, StatusCode};
use oauth2::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

/// A `reqwest` client set up for token endpoints: no redirects (a token request must never
/// be replayed to another host), a connect timeout and an overall timeout.
///
/// Any client works with this crate's functions, but it must not follow redirects.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("tributary-oauth/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why a token request got no usable HTTP answer. None of these carries response bodies or
/// request data, so they are safe to show.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("the request to the token endpoint timed out")]
    Timeout,
    #[error("could not connect to the token endpoint")]
    Connect,
    #[error("the connection to the token endpoint failed")]
    Io,
    #[error("the token endpoint answered HTTP {}", status.as_u16())]
    Unavailable {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("the token endpoint answered HTTP {} without an OAuth error", status.as_u16())]
    UnexpectedStatus { status: StatusCode },
    #[error("the token request could not be built")]
    Build,
}

impl From<HttpClientError<reqwest::Error>> for HttpError {
    fn from(err: HttpClientError<reqwest::Error>) -> Self {
        match err {
            HttpClientError::Reqwest(e) if e.is_timeout() => Self::Timeout,
            HttpClientError::Reqwest(e) if e.is_connect() => Self::Connect,
            HttpClientError::Reqwest(e) if e.is_builder() => Self::Build,
            HttpClientError::Http(_) => Self::Build,
            _ => Self::Io,
        }
    }
}

/// The adapter `oauth2` sends its requests through.
pub(crate) struct OAuthHttp {
    client: reqwest::Client,
}

impl OAuthHttp {
    pub(crate) fn new(client: &reqwest::Client) -> Self {
        Self {
            client: client.clone(),
        }
    }
}

impl<'c> AsyncHttpClient<'c> for OAuthHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, mut request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            // GitHub answers form-encoded unless asked for JSON.
            request
                .headers_mut()
                .insert(ACCEPT, HeaderValue::from_static("application/json"));
            let response = AsyncHttpClient::call(&self.client, request).await?;
            normalize(response, Utc::now())
        })
    }
}

/// Classifies unavailability by status and rewrites bodies into what `oauth2` parses.
pub(crate) fn normalize(
    response: HttpResponse,
    now: DateTime<Utc>,
) -> Result<HttpResponse, HttpError> {
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        return Err(HttpError::Unavailable {
            status,
            retry_after: retry_after(response.headers(), now),
        });
    }

    let (mut parts, body) = response.into_parts();
    let object = body_as_object(&parts.headers, &body);

    let rewritten = match object {
        Some(object) if is_error(&object) => {
            // 2xx error bodies (Slack, GitHub) become real errors; 4xx keep their status.
            if parts.status.is_success() {
                parts.status = StatusCode::BAD_REQUEST;
            }
            error_body(&object)
        }
        Some(mut object) if parts.status.is_success() => {
            parts.status = StatusCode::OK;
            fix_token_fields(&mut object);
            Value::Object(object)
        }
        _ if parts.status.is_success() => {
            // Not JSON: let `oauth2` report it as an unparseable answer.
            return Ok(HttpResponse::from_parts(parts, body));
        }
        _ => return Err(HttpError::UnexpectedStatus { status }),
    };
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(oauth2::http::header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&rewritten).expect("JSON values serialize");
    Ok(HttpResponse::from_parts(parts, body))
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn body_as_object(headers: &HeaderMap, body: &[u8]) -> Option<Map<String, Value>> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let object: Map<String, Value> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return (!object.is_empty()).then_some(object);
    }
    // Some providers label JSON as text/plain or text/javascript: look at the body.
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

fn is_error(object: &Map<String, Value>) -> bool {
    object.get("ok") == Some(&Value::Bool(false))
        || (object.contains_key("error") && !object.contains_key("access_token"))
}

/// Keeps only the RFC 6749 §5.2 fields, as strings.
fn error_body(object: &Map<String, Value>) -> Value {
    let string = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut out = Map::new();
    let code = string("error")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown_error".to_owned());
    out.insert("error".to_owned(), Value::String(code));
    if let Some(description) = string("error_description").or_else(|| string("message")) {
        out.insert("error_description".to_owned(), Value::String(description));
    }
    if let Some(uri) = string("error_uri") {
        out.insert("error_uri".to_owned(), Value::String(uri));
    }
    Value::Object(out)
}

fn fix_token_fields(object: &mut Map<String, Value>) {
    // Slack, user token only: the token is under `authed_user`.
    if !object.contains_key("access_token")
        && let Some(Value::Object(user)) = object.get("authed_user").cloned()
        && user.contains_key("access_token")
    {
        for key in [
            "access_token",
            "token_type",
            "scope",
            "refresh_token",
            "expires_in",
        ] {
            if let Some(value) = user.get(key) {
                object.insert(key.to_owned(), value.clone());
            }
        }
    }
    // Slack's user tokens have no token_type; RFC 6749 requires one.
    if !object.contains_key("token_type") && object.contains_key("access_token") {
        object.insert("token_type".to_owned(), Value::String("bearer".to_owned()));
    }
    if let Some(expires_in) = object.get("expires_in") {
        let seconds = match expires_in {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match seconds {
            Some(seconds) => object.insert("expires_in".to_owned(), Value::from(seconds)),
            None => object.remove("expires_in"),
        };
    }
    if let Some(Value::Array(scopes)) = object.get("scope") {
        let joined = scopes
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        object.insert("scope".to_owned(), Value::String(joined));
    }
    if object.get("scope") == Some(&Value::Null) {
        object.remove("scope");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::http::Response;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn response(status: u16, content_type: &str, body: &str) -> HttpResponse {
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, content_type)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn body(r: &HttpResponse) -> Value {
        serde_json::from_slice(r.body()).unwrap()
    }

    #[test]
    fn slack_ok_false_becomes_an_oauth_error() {
        let r = normalize(
            response(
                200,
                "application/json",
                r#"{"ok":false,"error":"invalid_code"}"#,
            ),
            now(),
        )
        .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body(&r), serde_json::json!({"error": "invalid_code"}));
    }

    #[test]
    fn github_form_answers_become_json() {
        let r = normalize(
            response(
                200,
                "application/x-www-form-urlencoded; charset=utf-8",
                "access_token=gho_abc&scope=repo%2Cgist&token_type=bearer&expires_in=28800",
            ),
            now(),
        )
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            body(&r),
            serde_json::json!({"access_token": "gho_abc", "scope": "repo,gist",
                               "token_type": "bearer", "expires_in": 28800})
        );

        let r = normalize(
            response(
                200,
                "application/x-www-form-urlencoded",
                "error=bad_verification_code&error_description=The+code+is+wrong",
            ),
            now(),
        )
        .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body(&r)["error"], "bad_verification_code");
    }

    #[test]
    fn slack_user_tokens_are_lifted() {
        let r = normalize(
            response(
                200,
                "application/json",
                r#"{"ok":true,"authed_user":{"id":"U1","scope":"search:read","access_token":"xoxp-1"}}"#,
            ),
            now(),
        )
        .unwrap();
        let b = body(&r);
        assert_eq!(b["access_token"], "xoxp-1");
        assert_eq!(b["token_type"], "bearer");
        assert_eq!(b["scope"], "search:read");
    }

    #[test]
    fn unavailability_keeps_status_and_retry_after() {
        let mut r = response(429, "text/plain", "slow down");
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("7"));
        match normalize(r, now()) {
            Err(HttpError::Unavailable {
                status,
                retry_after,
            }) => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            normalize(response(503, "text/html", "<html>"), now()),
            Err(HttpError::Unavailable { .. })
        ));
        assert!(matches!(
            normalize(response(404, "text/html", "<html>"), now()),
            Err(HttpError::UnexpectedStatus { .. })
        ));
    }

    #[test]
    fn retry_after_accepts_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sat, 01 Mar 2025 12:00:30 GMT"),
        );
        assert_eq!(retry_after(&headers, now()), Some(Duration::from_secs(30)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now()), None);
    }
}
