//! One web site as the source sees it: its origin, robots.txt, sitemaps and pages.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use tributary_domain::document::Document;
use url::Url;

use super::config::WebConfig;
use super::http::{
    Fetched, Http, MAX_CRAWL_DELAY, MAX_PAGE_BYTES, MAX_SITEMAP_BYTES, Robots, is_html,
};
use super::sitemap::{self, Sitemap};
use crate::source::html;
use crate::source::{Result, SourceError};

const SOURCE: &str = "web";
const MAX_REDIRECTS: usize = 5;
/// Sitemap files read per run, index files included, and how deep indexes may nest.
const MAX_SITEMAP_FILES: usize = 1000;
const MAX_SITEMAP_DEPTH: u32 = 3;
/// Google reads the first 500 KiB of a robots.txt; so do we.
const MAX_ROBOTS_BYTES: usize = 500 * 1024;

const HTML_ACCEPT: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1";
const XML_ACCEPT: &str = "application/xml,text/xml;q=0.9,*/*;q=0.1";

/// What fetching one URL gave.
#[derive(Debug, Default)]
pub(crate) struct Visit {
    /// Where the redirects ended; the document id.
    pub(crate) final_url: Option<Url>,
    /// The page as a document, unless filtered out, `noindex`, or not a page.
    pub(crate) document: Option<Document>,
    /// Links to follow: resolved, normalized, on this origin.
    pub(crate) links: Vec<Url>,
    /// Why the page could not be produced, for a per-document failure.
    pub(crate) failure: Option<String>,
    pub(crate) warnings: Vec<String>,
}

pub(crate) struct Site {
    pub(crate) config: WebConfig,
    pub(crate) start_url: Url,
    pub(crate) sitemap_url: Url,
    origin: url::Origin,
    http: Http,
    robots: Option<Robots>,
    /// Warnings not yet handed out in a batch.
    pub(crate) warnings: Vec<String>,
}

impl Site {
    pub(crate) fn new(
        config: WebConfig,
        client: reqwest::Client,
        auth: Option<reqwest::header::HeaderValue>,
    ) -> Result<Self> {
        let start_url = parse_http_url("start_url", &config.start_url)?;
        let sitemap_url = match &config.sitemap_url {
            Some(raw) => parse_http_url("sitemap_url", raw)?,
            None => start_url
                .join("/sitemap.xml")
                .map_err(|e| SourceError::Config {
                    message: format!(
                        "no sitemap URL can be made from start_url ({e}); set sitemap_url."
                    ),
                })?,
        };
        let origin = start_url.origin();
        let http = Http::new(
            client,
            &config.user_agent,
            auth,
            origin.clone(),
            Duration::from_millis(config.politeness_delay_ms),
        )?;
        Ok(Self {
            config,
            start_url,
            sitemap_url,
            origin,
            http,
            robots: None,
            warnings: Vec::new(),
        })
    }

    pub(crate) fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.origin
    }

    pub(crate) fn robots_allow(&self, url: &Url) -> bool {
        self.robots.as_ref().is_none_or(|r| r.allowed(url))
    }

    /// Reads robots.txt once per source: a missing one allows everything, a slow or
    /// failing server is a retriable error.
    pub(crate) async fn ensure_robots(&mut self) -> Result<()> {
        if self.robots.is_some() {
            return Ok(());
        }
        let mut url = self
            .start_url
            .join("/robots.txt")
            .map_err(|e| SourceError::Config {
                message: format!(
                    "no robots.txt URL can be made from start_url ({e}); fix start_url."
                ),
            })?;
        let mut robots = Robots::allow_all();
        for _ in 0..=MAX_REDIRECTS {
            match self
                .http
                .get(
                    &url,
                    "text/plain,*/*;q=0.1",
                    MAX_ROBOTS_BYTES,
                    false,
                    |_| true,
                )
                .await?
            {
                Fetched::Body(body) => {
                    let (parsed, warning) = Robots::parse(self.config.robots_agent(), &body);
                    robots = parsed;
                    self.warnings.extend(warning);
                    break;
                }
                Fetched::Redirect(target) if self.same_origin(&target) => url = target,
                Fetched::TooBig => {
                    self.warnings.push(format!(
                        "robots.txt is over {MAX_ROBOTS_BYTES} bytes; it is ignored and every page is treated as allowed."
                    ));
                    break;
                }
                // No robots.txt (or one elsewhere): nothing is disallowed.
                _ => break,
            }
        }
        if let Some(delay) = robots.crawl_delay {
            if delay > MAX_CRAWL_DELAY {
                self.warnings.push(format!(
                    "robots.txt asks for {} s between requests; Tributary waits {} s, its maximum.",
                    delay.as_secs(),
                    MAX_CRAWL_DELAY.as_secs()
                ));
            }
            self.http.raise_delay(delay.min(MAX_CRAWL_DELAY));
        }
        self.robots = Some(robots);
        Ok(())
    }

    pub(crate) fn delay(&self) -> Duration {
        self.http.delay()
    }

    /// Fetches a page, following redirects within the origin. `is_start` makes 401/403 an
    /// [`SourceError::Auth`]: if the start URL is refused, nothing else will work.
    pub(crate) async fn visit(&mut self, url: &Url, is_start: bool) -> Result<Visit> {
        let mut visit = Visit::default();
        let mut current = url.clone();
        for hop in 0..=MAX_REDIRECTS {
            if !self.robots_allow(&current) {
                visit.warnings.push(format!(
                    "robots.txt disallows {current} for {}; it is not fetched.",
                    self.config.robots_agent()
                ));
                return Ok(visit);
            }
            let fetched = self
                .http
                .get(&current, HTML_ACCEPT, MAX_PAGE_BYTES, is_start, is_html)
                .await?;
            match fetched {
                Fetched::Redirect(target) => {
                    let Some(target) = normalize(&target, "") else {
                        visit.failure = Some(format!(
                            "The page redirects to {target}, which is not a web page."
                        ));
                        return Ok(visit);
                    };
                    if !self.same_origin(&target) {
                        visit.warnings.push(format!(
                            "{current} redirects to {target}, on another site; it is skipped."
                        ));
                        return Ok(visit);
                    }
                    if hop == MAX_REDIRECTS {
                        visit.failure = Some(format!(
                            "The page redirects more than {MAX_REDIRECTS} times; fix the redirect loop or exclude the page."
                        ));
                        return Ok(visit);
                    }
                    current = target;
                }
                Fetched::Body(body) => {
                    let page = html::parse(&String::from_utf8_lossy(&body));
                    let base = page
                        .base
                        .as_deref()
                        .and_then(|b| current.join(b).ok())
                        .unwrap_or_else(|| current.clone());
                    if !page.nofollow {
                        visit.links = page
                            .links
                            .iter()
                            .filter_map(|href| normalize(&base, href))
                            .filter(|link| self.same_origin(link))
                            .collect();
                    }
                    if page.noindex {
                        visit.warnings.push(format!(
                            "{current} asks not to be indexed (meta robots noindex); it is skipped."
                        ));
                    } else if self.config.path_allowed(current.path()) {
                        let title = page.title.unwrap_or_else(|| current.to_string());
                        let mut doc = Document::text(SOURCE, current.as_str(), title, page.text);
                        doc.sections[0].link = Some(current.to_string());
                        visit.document = Some(doc);
                    }
                    visit.final_url = Some(current);
                    return Ok(visit);
                }
                Fetched::Skipped { content_type } => {
                    visit.warnings.push(format!(
                        "{current} is {content_type}, not HTML; it is skipped."
                    ));
                    return Ok(visit);
                }
                Fetched::TooBig => {
                    visit.failure = Some(format!(
                        "The page is over {MAX_PAGE_BYTES} bytes; it is skipped."
                    ));
                    return Ok(visit);
                }
                Fetched::Status(status) => {
                    visit.failure = Some(status_failure(status));
                    return Ok(visit);
                }
            }
        }
        Ok(visit)
    }

    /// The pages the sitemap lists, on this origin, allowed by the path filters and
    /// robots.txt, deduplicated and sorted, at most `max_pages`.
    pub(crate) async fn sitemap_urls(&mut self) -> Result<BTreeMap<String, Option<DateTime<Utc>>>> {
        let mut files: VecDeque<(Url, u32)> = VecDeque::from([(self.sitemap_url.clone(), 0)]);
        let mut read: HashSet<Url> = HashSet::new();
        let mut pages: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
        let (mut off_site, mut disallowed, mut filtered) = (0usize, 0usize, 0usize);
        while let Some((url, depth)) = files.pop_front() {
            if !read.insert(url.clone()) {
                continue;
            }
            if read.len() > MAX_SITEMAP_FILES {
                self.warnings.push(format!(
                    "The sitemap index lists more than {MAX_SITEMAP_FILES} sitemaps; the rest are not read."
                ));
                break;
            }
            // Depth 0 is the configured sitemap and where it redirects to.
            let is_root = depth == 0;
            let fetched = self
                .http
                .get(&url, XML_ACCEPT, MAX_SITEMAP_BYTES, is_root, |_| true)
                .await?;
            let problem = match fetched {
                Fetched::Body(body) if body.starts_with(&[0x1f, 0x8b]) => {
                    "it is gzip-compressed, which Tributary does not read yet; list an uncompressed sitemap".to_owned()
                }
                Fetched::Body(body) => match sitemap::parse(&String::from_utf8_lossy(&body)) {
                    Ok(Sitemap::Index(locations)) => {
                        for location in locations {
                            match normalize(&url, &location) {
                                Some(next) if self.same_origin(&next) && depth < MAX_SITEMAP_DEPTH => {
                                    files.push_back((next, depth + 1));
                                }
                                _ => self.warnings.push(format!(
                                    "The sitemap index {url} lists {location}, which is on another site, not a URL or nested too deep; it is not read."
                                )),
                            }
                        }
                        continue;
                    }
                    Ok(Sitemap::Urls(entries)) => {
                        for (location, lastmod) in entries {
                            let Some(page) = normalize(&url, &location) else {
                                continue;
                            };
                            if !self.same_origin(&page) {
                                off_site += 1;
                            } else if !self.config.path_allowed(page.path()) {
                                filtered += 1;
                            } else if !self.robots_allow(&page) {
                                disallowed += 1;
                            } else {
                                let slot = pages.entry(page.to_string()).or_insert(lastmod);
                                *slot = (*slot).max(lastmod);
                            }
                        }
                        continue;
                    }
                    Err(e) => e,
                },
                Fetched::Redirect(target) => match normalize(&target, "") {
                    Some(target) if self.same_origin(&target) => {
                        files.push_front((target, depth));
                        continue;
                    }
                    _ => format!("it redirects to {target}, on another site"),
                },
                Fetched::Skipped { .. } => continue,
                Fetched::TooBig => format!("it is over {MAX_SITEMAP_BYTES} bytes"),
                Fetched::Status(status) => format!("it answered {status}"),
            };
            if is_root {
                return Err(SourceError::Config {
                    message: format!(
                        "the sitemap {url} cannot be used: {problem}. Set sitemap_url to the site's sitemap, or use mode crawl."
                    ),
                });
            }
            self.warnings
                .push(format!("The sitemap {url} is skipped: {problem}."));
        }
        if off_site > 0 {
            self.warnings.push(format!(
                "{off_site} sitemap URL(s) are on another site than {}; they are skipped.",
                self.start_url
            ));
        }
        if filtered > 0 {
            self.warnings.push(format!(
                "{filtered} sitemap URL(s) are outside include_paths or inside exclude_paths; they are skipped."
            ));
        }
        if disallowed > 0 {
            self.warnings.push(format!(
                "{disallowed} sitemap URL(s) are disallowed by robots.txt for {}; they are skipped.",
                self.config.robots_agent()
            ));
        }
        let max = self.config.max_pages as usize;
        if pages.len() > max {
            self.warnings.push(format!(
                "The sitemap lists {} pages; only the first {max} (by URL) are read. Raise max_pages to read more.",
                pages.len()
            ));
            pages = pages.into_iter().take(max).collect();
        }
        Ok(pages)
    }
}

fn parse_http_url(field: &str, raw: &str) -> Result<Url> {
    let url = Url::parse(raw).map_err(|e| SourceError::Config {
        message: format!(
            "{field} {raw:?} is not a URL ({e}); give a full http:// or https:// URL."
        ),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(SourceError::Config {
            message: format!(
                "{field} {raw:?} is not an http:// or https:// URL with a host; fix it."
            ),
        });
    }
    normalize(&url, "").ok_or_else(|| SourceError::Config {
        message: format!("{field} {raw:?} cannot be normalized; fix it."),
    })
}

/// Resolves `href` against `base` and reduces it to the form used as a document id:
/// http(s) only, no fragment, no empty query, no credentials. `None` for anything else
/// (`mailto:`, `javascript:`, unparsable).
pub(crate) fn normalize(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_fragment(None);
    if url.query() == Some("") {
        url.set_query(None);
    }
    // Failing only for URLs without a host, which were excluded above.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(url)
}

fn status_failure(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => format!(
            "The page answered {status}; it is skipped. Remove the links to it or exclude its path."
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
            "The page answered {status}: it needs a login the profile's credential does not give; it is skipped."
        ),
        _ => format!("The page answered {status}; it is skipped."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_and_drops_fragments_and_credentials() {
        let base = Url::parse("https://a.example/docs/intro.html?x=1").unwrap();
        let n = |href: &str| normalize(&base, href).map(|u| u.to_string());
        assert_eq!(
            n("guide.html#part"),
            Some("https://a.example/docs/guide.html".into())
        );
        assert_eq!(n("../b?"), Some("https://a.example/b".into()));
        assert_eq!(
            n("#top"),
            Some("https://a.example/docs/intro.html?x=1".into())
        );
        assert_eq!(
            n("HTTPS://A.EXAMPLE:443/c"),
            Some("https://a.example/c".into())
        );
        assert_eq!(
            n("https://user:pw@a.example/d"),
            Some("https://a.example/d".into())
        );
        assert_eq!(n("mailto:x@a.example"), None);
        assert_eq!(n("javascript:void(0)"), None);
    }

    #[test]
    fn start_url_must_be_http() {
        let err = parse_http_url("start_url", "ftp://a.example/").unwrap_err();
        assert!(matches!(err, SourceError::Config { .. }));
        assert!(parse_http_url("start_url", "not a url").is_err());
        assert_eq!(
            parse_http_url("start_url", "https://a.example/x#y")
                .unwrap()
                .as_str(),
            "https://a.example/x"
        );
    }
}
