//! What every networked check shares: request defaults, turning transport errors and
//! unexpected answers into results, rate-limit headers, bounded bodies.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER, USER_AGENT};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;

use super::{CheckResult, CheckStatus};

pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT_VALUE: &str = concat!("tributary/", env!("CARGO_PKG_VERSION"));
/// A check reads small JSON documents; more than this is not the API we expect.
const MAX_BODY: usize = 1 << 20;

/// `base` joined with `path` (`base` itself when `path` is empty), or an `invalid` result
/// naming the setting to fix.
pub(super) fn endpoint(base: &str, path: &str, setting: &str) -> Result<Url, CheckResult> {
    let joined = if path.is_empty() {
        base.to_owned()
    } else {
        format!("{}{path}", base.trim_end_matches('/'))
    };
    match Url::parse(&joined) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        Ok(_) => Err(CheckResult::new(
            CheckStatus::Invalid,
            format!("the {setting} {base} is not an http(s) URL: correct it and check again"),
        )),
        Err(e) => Err(CheckResult::new(
            CheckStatus::Invalid,
            format!("the {setting} {base} is not a valid URL ({e}): correct it and check again"),
        )),
    }
}

/// Sends with the check's timeout and a User-Agent (GitHub refuses requests without one).
pub(super) async fn send(request: RequestBuilder) -> Result<Response, reqwest::Error> {
    request
        .timeout(TIMEOUT)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .send()
        .await
}

/// A request that did not produce a response.
pub(super) fn transport_error(source: &str, url: &Url, e: &reqwest::Error) -> CheckResult {
    if e.is_builder() {
        // The URL was parsed before, so what cannot be sent is a header, i.e. the secret.
        return CheckResult::new(
            CheckStatus::Invalid,
            format!(
                "the credential cannot be sent to {source}: the secret contains characters \
                 not allowed in an HTTP header (such as line breaks); enter it again and check again"
            ),
        );
    }
    let host = url.host_str().unwrap_or("?");
    let what = if e.is_timeout() {
        format!(
            "{source} did not answer within {} s at {url}",
            TIMEOUT.as_secs()
        )
    } else if e.is_connect() {
        format!("could not connect to {source} at {url} ({})", root_cause(e))
    } else {
        format!(
            "the request to {source} at {url} failed ({})",
            root_cause(e)
        )
    };
    CheckResult::new(
        CheckStatus::Unreachable,
        format!(
            "{what}: check the URL and that Tributary can reach {host} (DNS, proxy, firewall), \
             then check again"
        ),
    )
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An answer the check has no specific reading for.
pub(super) fn unexpected(source: &str, url: &Url, status: StatusCode) -> CheckResult {
    if status.is_server_error() {
        CheckResult::new(
            CheckStatus::Unreachable,
            format!(
                "{source} answered {status} at {url}: it may be having problems; check again later"
            ),
        )
    } else {
        CheckResult::new(
            CheckStatus::Invalid,
            format!(
                "{source} answered {status} at {url}, which is not what its API answers: \
                 check the URL and check again"
            ),
        )
    }
}

/// `rate_limited`, saying when to check again if the source said so.
pub(super) fn rate_limited(source: &str, when: Option<String>) -> CheckResult {
    rate_limited_because(
        &format!("{source} is rate limiting requests with this credential"),
        when,
    )
}

/// `rate_limited` with the source's own reason, e.g. an exhausted hourly quota.
pub(super) fn rate_limited_because(reason: &str, when: Option<String>) -> CheckResult {
    let when = when.unwrap_or_else(|| "in a few minutes".to_owned());
    CheckResult::new(
        CheckStatus::RateLimited,
        format!("{reason}, so it could not be checked now: check again {when}"),
    )
}

/// When `Retry-After` (seconds or an HTTP date) says to come back, as `in N s` / `after T`.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(format!("in {seconds} s"));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some(format!(
        "after {}",
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    ))
}

/// A header as an integer, e.g. `X-RateLimit-Remaining`.
pub(super) fn header_int(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// An epoch-seconds timestamp (GitHub's `X-RateLimit-Reset`) as RFC 3339.
pub(super) fn epoch_to_rfc3339(seconds: i64) -> Option<String> {
    DateTime::from_timestamp(seconds, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The body as JSON, if it is JSON and not larger than any answer a check expects.
pub(super) async fn read_json(mut response: Response) -> Option<Value> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).ok()
}

/// A string field of a JSON answer, fit to show: trimmed, single line, bounded.
pub(super) fn text_field(body: &Value, pointer: &str) -> Option<String> {
    let raw = body.pointer(pointer)?.as_str()?;
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// An API error code (`invalid_auth`, `restricted_resource`), reduced to the characters a
/// code has so that whatever the server sent cannot inject text into the message.
pub(super) fn code_field(body: &Value, pointer: &str) -> Option<String> {
    let code: String = body
        .pointer(pointer)?
        .as_str()?
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    (!code.is_empty()).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(retry_after(&headers).as_deref(), Some("in 30 s"));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers).as_deref(),
            Some("after 2015-10-21T07:28:00Z")
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn endpoint_joins_and_rejects_non_http() {
        assert_eq!(
            endpoint("https://api.github.com/", "/user", "base_url")
                .unwrap()
                .as_str(),
            "https://api.github.com/user"
        );
        assert_eq!(
            endpoint("ftp://x", "/user", "base_url").unwrap_err().status,
            CheckStatus::Invalid
        );
        assert_eq!(
            endpoint("not a url", "/user", "base_url")
                .unwrap_err()
                .status,
            CheckStatus::Invalid
        );
    }

    #[test]
    fn codes_are_reduced_to_code_characters() {
        let body = serde_json::json!({"error": "invalid_auth\n<b>x</b>"});
        assert_eq!(
            code_field(&body, "/error").as_deref(),
            Some("invalid_authbxb")
        );
    }
}
