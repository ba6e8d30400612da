//! Polite HTTP for one site: a delay between requests, robots.txt, and status codes read
//! as the source contract wants them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT,
};
use texting_robots::Robot;
use tokio::time::Instant;
use url::Url;

use crate::source::{Result, SourceError};

/// Pages bigger than this are failures: nobody indexes a 10 MiB web page whole.
pub(crate) const MAX_PAGE_BYTES: usize = 10 * 1024 * 1024;
/// The sitemap protocol's own limit for one file.
pub(crate) const MAX_SITEMAP_BYTES: usize = 50 * 1024 * 1024;
/// A robots.txt `Crawl-delay` above this is capped: honouring an hour would stall the run.
pub(crate) const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);
/// The wait asked for when a 429 comes without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What a GET brought back, when it was not an error for the whole run.
#[derive(Debug)]
pub(crate) enum Fetched {
    Body(Vec<u8>),
    /// The content type was not wanted; the body was not read.
    Skipped {
        content_type: String,
    },
    Redirect(Url),
    /// Over the size limit; the rest of the body was not read.
    TooBig,
    /// A 4xx other than 429 (and 401/403 when the caller asked them to be errors).
    Status(StatusCode),
}

pub(crate) struct Http {
    client: reqwest::Client,
    user_agent: HeaderValue,
    auth: Option<HeaderValue>,
    origin: url::Origin,
    delay: Duration,
    last: Option<Instant>,
}

impl Http {
    pub(crate) fn new(
        client: reqwest::Client,
        user_agent: &str,
        auth: Option<HeaderValue>,
        origin: url::Origin,
        delay: Duration,
    ) -> Result<Self> {
        let user_agent = HeaderValue::from_str(user_agent).map_err(|_| SourceError::Config {
            message:
                "user_agent contains characters not allowed in an HTTP header; use printable ASCII."
                    .to_owned(),
        })?;
        Ok(Self {
            client,
            user_agent,
            auth,
            origin,
            delay,
            last: None,
        })
    }

    pub(crate) fn delay(&self) -> Duration {
        self.delay
    }

    pub(crate) fn raise_delay(&mut self, delay: Duration) {
        self.delay = self.delay.max(delay);
    }

    /// GETs `url` after the politeness delay. Rate limits, 5xx and network failures are
    /// errors; so are 401/403 when `auth_errors` (the start URL, sitemaps): for a page they
    /// only fail that page. `wants` decides from the content type whether to read the body.
    pub(crate) async fn get(
        &mut self,
        url: &Url,
        accept: &'static str,
        max_bytes: usize,
        auth_errors: bool,
        wants: impl Fn(Option<&str>) -> bool,
    ) -> Result<Fetched> {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.delay).await;
        }
        self.last = Some(Instant::now());
        let mut request = self
            .client
            .get(url.clone())
            .header(USER_AGENT, self.user_agent.clone())
            .header(ACCEPT, accept);
        // Credentials go only to the site they were given for.
        if let Some(auth) = &self.auth
            && url.origin() == self.origin
        {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let mut response = request.send().await.map_err(|e| transport(url, &e))?;
        let status = response.status();
        let headers = response.headers();
        if status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(RETRY_AFTER))
        {
            let retry_after = retry_after(headers, Utc::now()).unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(SourceError::RateLimited {
                retry_after,
                message: format!("{url} answered {status}"),
            });
        }
        if status.is_server_error() {
            return Err(SourceError::Transient {
                message: format!("{url} answered {status}"),
            });
        }
        if auth_errors && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(SourceError::Auth {
                message: format!(
                    "{url} answered {status}; give the profile a credential the site accepts (basic_auth or bearer_token), or check that the site lets crawlers in"
                ),
            });
        }
        if status.is_redirection() {
            let target = headers
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok());
            return Ok(match target {
                Some(target) => Fetched::Redirect(target),
                None => Fetched::Status(status),
            });
        }
        if !status.is_success() {
            return Ok(Fetched::Status(status));
        }
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.to_ascii_lowercase());
        if !wants(content_type.as_deref()) {
            return Ok(Fetched::Skipped {
                content_type: content_type.unwrap_or_default(),
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > max_bytes as u64)
        {
            return Ok(Fetched::TooBig);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(url, &e))? {
            if body.len() + chunk.len() > max_bytes {
                return Ok(Fetched::TooBig);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body(body))
    }
}

fn transport(url: &Url, e: &reqwest::Error) -> SourceError {
    let what = if e.is_timeout() {
        "did not answer in time"
    } else if e.is_connect() {
        "could not be reached"
    } else {
        "broke off the response"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    SourceError::Transient {
        message: format!("{url} {what} ({cause})"),
    }
}

/// `Retry-After` as seconds or an HTTP date.
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

/// A site's robots.txt, read for our agent (or `*`).
pub(crate) struct Robots {
    robot: Option<Robot>,
    pub(crate) crawl_delay: Option<Duration>,
}

impl Robots {
    pub(crate) fn allow_all() -> Self {
        Self {
            robot: None,
            crawl_delay: None,
        }
    }

    /// Reads a robots.txt body; one that does not parse allows everything, with a warning.
    pub(crate) fn parse(agent: &str, body: &[u8]) -> (Self, Option<String>) {
        match Robot::new(agent, body) {
            Ok(robot) => {
                let crawl_delay = robot
                    .delay
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .map(|d| Duration::from_secs_f32(d.min(86_400.0)));
                (
                    Self {
                        robot: Some(robot),
                        crawl_delay,
                    },
                    None,
                )
            }
            Err(e) => (
                Self::allow_all(),
                Some(format!(
                    "robots.txt could not be read ({e}); every page is treated as allowed."
                )),
            ),
        }
    }

    pub(crate) fn allowed(&self, url: &Url) -> bool {
        self.robot.as_ref().is_none_or(|r| r.allowed(url.as_str()))
    }
}

/// Whether a content type is HTML; a missing one is given the benefit of the doubt.
pub(crate) fn is_html(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence == "text/html" || essence == "application/xhtml+xml"
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 0).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(60)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("later"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn robots_match_our_group_before_the_star_group() {
        let txt = b"User-agent: *\nDisallow: /\n\nUser-agent: TributaryBot\nDisallow: /private/\nAllow: /private/open\nCrawl-delay: 2\n";
        let (robots, warning) = Robots::parse("TributaryBot", txt);
        assert!(warning.is_none());
        let url = |p: &str| Url::parse(&format!("https://a.example{p}")).unwrap();
        assert!(robots.allowed(&url("/docs")));
        assert!(!robots.allowed(&url("/private/x")));
        assert!(robots.allowed(&url("/private/open")));
        assert_eq!(robots.crawl_delay, Some(Duration::from_secs(2)));
        let (other, _) = Robots::parse("OtherBot", txt);
        assert!(!other.allowed(&url("/docs")));
    }

    #[test]
    fn html_content_types() {
        assert!(is_html(Some("text/html; charset=utf-8")));
        assert!(is_html(Some("application/xhtml+xml")));
        assert!(is_html(None));
        assert!(!is_html(Some("application/pdf")));
    }
}
