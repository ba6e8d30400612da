//! What the HTTP destinations share: URL checks, and mapping a failed request to retry or
//! dead-letter.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::Url;

use crate::SinkError;

/// An HTTP(S) URL from a target's config, without a trailing slash so paths can be
/// appended. `field` names the config field in the error.
pub(crate) fn base_url(kind: &str, field: &str, raw: &str) -> Result<Url, SinkError> {
    let url = Url::parse(raw).map_err(|_| {
        SinkError::permanent(format!(
            "The {kind} target's {field} is not a valid URL; set it to an http:// or https:// \
             address."
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SinkError::permanent(format!(
            "The {kind} target's {field} must be an http:// or https:// address with a host; \
             change it and save the target again."
        )));
    }
    Ok(url)
}

/// `base` with `path` appended, whether or not `base` ends with a slash.
pub(crate) fn join(base: &Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// How an error names the remote: its role and host, never the full URL, whose path or
/// query may carry a token.
pub(crate) fn remote_name(role: &str, url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{role} at {host}:{port}"),
        (Some(host), None) => format!("{role} at {host}"),
        _ => role.to_owned(),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past
/// means "now".
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A request that got no answer. Timeouts and broken connections are retried; only a
/// request that could not even be built is dead-lettered.
pub(crate) fn send_error(remote: &str, timeout: Duration, error: &reqwest::Error) -> SinkError {
    let subject = capitalized(remote);
    if error.is_timeout() {
        SinkError::transient(format!(
            "{subject} did not answer within {} s; Tributary will retry with backoff. If this \
             keeps happening, raise the target's timeout_secs.",
            timeout.as_secs()
        ))
    } else if error.is_connect() {
        SinkError::transient(format!(
            "Tributary could not connect to {remote}; it will retry with backoff. Check that \
             the server is up and that the target's URL is right."
        ))
    } else if error.is_builder() {
        SinkError::permanent(format!(
            "Tributary could not build a request to {remote}; check the target's URL."
        ))
    } else if error.is_redirect() {
        SinkError::permanent(format!(
            "{subject} redirected too many times; set the target's URL to the final address."
        ))
    } else {
        SinkError::transient(format!(
            "The connection to {remote} failed before it answered; Tributary will retry with \
             backoff."
        ))
    }
}

/// `remote` at the start of a sentence.
pub(crate) fn capitalized(remote: &str) -> String {
    let mut chars = remote.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The default mapping of a non-success status; destinations handle their own special
/// statuses (R2R's 409, 413, 403) before falling back to it.
pub(crate) fn status_error(remote: &str, status: StatusCode, headers: &HeaderMap) -> SinkError {
    let remote = capitalized(remote);
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("");
    let error = match code {
        429 => {
            let wait = retry_after(headers);
            let when = match wait {
                Some(wait) => format!("after {} s, as it asked", wait.as_secs()),
                None => "with backoff".to_owned(),
            };
            SinkError::rate_limited(
                wait,
                format!(
                    "{remote} is rate limiting Tributary (429 Too Many Requests); Tributary will retry {when}."
                ),
            )
        }
        // A request timeout is the server's way of saying "send it again".
        408 => SinkError::transient(format!(
            "{remote} timed out reading the request (408); Tributary will retry with backoff."
        )),
        500..=599 => SinkError::transient(format!(
            "{remote} answered {code} {reason}; Tributary will retry with backoff."
        )),
        401 => SinkError::permanent(format!(
            "{remote} refused the credential (401 Unauthorized); update the target's \
             credential, then redeliver the dead letters."
        )),
        403 => SinkError::permanent(format!(
            "{remote} forbade the request (403 Forbidden); give the credential the permission \
             it needs, then redeliver the dead letters."
        )),
        400..=499 => SinkError::permanent(format!(
            "{remote} rejected the request ({code} {reason}); check the target's config, then \
             redeliver the dead letters."
        )),
        _ => SinkError::permanent(format!(
            "{remote} answered an unexpected {code} {reason}; check that the target's URL \
             points at the API itself, not at a page or a proxy redirect."
        )),
    };
    error.with_status(code)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::ErrorClass;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        headers
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let wait = retry_after(&headers(&httpdate::fmt_http_date(in_a_minute))).unwrap();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_map_to_retry_or_dead_letter() {
        let none = HeaderMap::new();
        let class = |code: u16, h: &HeaderMap| {
            status_error("X", StatusCode::from_u16(code).unwrap(), h).class
        };
        assert_eq!(class(500, &none), ErrorClass::Transient);
        assert_eq!(class(503, &none), ErrorClass::Transient);
        assert_eq!(class(408, &none), ErrorClass::Transient);
        assert_eq!(class(400, &none), ErrorClass::Permanent);
        assert_eq!(class(401, &none), ErrorClass::Permanent);
        assert_eq!(class(404, &none), ErrorClass::Permanent);
        assert_eq!(class(302, &none), ErrorClass::Permanent);
        let limited = status_error("X", StatusCode::TOO_MANY_REQUESTS, &headers("3"));
        assert_eq!(limited.class, ErrorClass::RateLimited);
        assert_eq!(limited.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(limited.status, Some(429));
    }

    #[test]
    fn urls_must_be_http_and_name_only_the_host() {
        assert!(base_url("r2r", "base_url", "ftp://x").is_err());
        assert!(base_url("r2r", "base_url", "not a url").is_err());
        let url = base_url("r2r", "base_url", "https://r2r.example.com/api/").unwrap();
        assert_eq!(
            join(&url, "/v3/documents"),
            "https://r2r.example.com/api/v3/documents"
        );
        let secret = Url::parse("https://hooks.example.com/in?token=abc").unwrap();
        assert_eq!(
            remote_name("the webhook receiver", &secret),
            "the webhook receiver at hooks.example.com"
        );
        assert_eq!(capitalized("the webhook"), "The webhook");
    }
}
