//! The web source: a sitemap walk or a breadth-first crawl, batch by batch, resumable.

use std::collections::{HashSet, VecDeque};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_domain::document::DocumentFailure;
use url::Url;

use super::config::{WebConfig, WebMode};
use super::site::{Site, Visit};
use crate::source::{Batch, BuildContext, Mode, Progress, Result, Source, SourceError, Start};

/// The crawl queue kept in a checkpoint is capped so checkpoints stay small; links beyond
/// it are dropped with a warning.
pub(crate) const MAX_QUEUE: usize = 5000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Queued {
    pub(crate) url: String,
    pub(crate) depth: u32,
}

/// Sitemap: `since` (only pages with a `lastmod` at or after it, or none, are fetched),
/// `max_lastmod` (the newest `lastmod` seen, the next incremental run's `since`) and
/// `after` (the last URL handled; URLs are handled in sorted order).
/// Crawl: the queue, the URLs already queued or fetched (`seen`, as 64-bit FNV-1a hashes
/// in base64) and the number of fetches toward `max_pages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum Checkpoint {
    Sitemap {
        since: Option<DateTime<Utc>>,
        max_lastmod: Option<DateTime<Utc>>,
        after: Option<String>,
        done: u64,
    },
    Crawl {
        queue: Vec<Queued>,
        seen: String,
        fetched: u32,
        done: u64,
    },
}

struct CrawlState {
    queue: VecDeque<(Url, u32)>,
    seen: HashSet<u64>,
    fetched: u32,
    dropped: usize,
    stop_warned: bool,
}

impl CrawlState {
    fn new(start: &Url) -> Self {
        Self {
            queue: VecDeque::from([(start.clone(), 0)]),
            seen: HashSet::from([fnv1a(start.as_str())]),
            fetched: 0,
            dropped: 0,
            stop_warned: false,
        }
    }
}

struct SitemapState {
    since: Option<DateTime<Utc>>,
    max_lastmod: Option<DateTime<Utc>>,
    after: Option<String>,
    queue: Option<VecDeque<(Url, Option<DateTime<Utc>>)>>,
    total: u64,
}

enum Run {
    Crawl(CrawlState),
    Sitemap(SitemapState),
}

pub(crate) struct WebSource {
    site: Site,
    run: Run,
    now: DateTime<Utc>,
    resuming: bool,
    done: u64,
    /// The batch being filled. It outlives an error so that a retry returns what was
    /// fetched before the error instead of fetching it again.
    pending: Batch,
    pending_fetches: u32,
    finished: bool,
    /// A `list_ids` crawl in progress, kept across a retriable error.
    listing: Option<(CrawlState, Vec<String>)>,
}

pub(crate) fn build(ctx: BuildContext) -> Result<Box<dyn Source>> {
    let config: WebConfig =
        serde_json::from_value(ctx.config).map_err(|e| SourceError::Config {
            message: format!("the web config does not parse ({e}); fix the profile's config."),
        })?;
    let auth = auth_header(ctx.credential.as_ref())?;
    Ok(Box::new(WebSource::new(
        config, ctx.http, auth, &ctx.start,
    )?))
}

/// `basic_auth` (`username`, `password`) or `bearer_token` (`token`) as an Authorization
/// header.
fn auth_header(credential: Option<&Value>) -> Result<Option<HeaderValue>> {
    let Some(credential) = credential else {
        return Ok(None);
    };
    let field = |name: &str| credential.get(name).and_then(Value::as_str);
    let value = if let Some(token) = field("token") {
        format!("Bearer {token}")
    } else if let (Some(user), Some(password)) = (field("username"), field("password")) {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    } else {
        return Err(SourceError::Config {
            message: "the web source takes a basic_auth or bearer_token credential; pick one of those for the profile.".to_owned(),
        });
    };
    let mut header = HeaderValue::from_str(&value).map_err(|_| SourceError::Auth {
        message: "the credential contains characters not allowed in an HTTP header (such as line breaks); enter it again.".to_owned(),
    })?;
    header.set_sensitive(true);
    Ok(Some(header))
}

impl WebSource {
    pub(crate) fn new(
        config: WebConfig,
        client: reqwest::Client,
        auth: Option<HeaderValue>,
        start: &Start,
    ) -> Result<Self> {
        if config.batch_size == 0 || config.max_pages == 0 {
            return Err(SourceError::Config {
                message: "batch_size and max_pages must be 1 or more; fix the profile's config."
                    .to_owned(),
            });
        }
        let mode = config.mode;
        let site = Site::new(config, client, auth)?;
        let previous = start
            .checkpoint
            .as_ref()
            .map(|value| {
                serde_json::from_value::<Checkpoint>(value.clone()).map_err(|e| SourceError::Config {
                    message: format!(
                        "the stored checkpoint is not one the web source wrote ({e}); run a full sync to start over."
                    ),
                })
            })
            .transpose()?;
        let mut done = 0;
        let mut resuming = false;
        let run = match (mode, previous) {
            (
                WebMode::Crawl,
                Some(Checkpoint::Crawl {
                    queue,
                    seen,
                    fetched,
                    done: d,
                }),
            ) if start.resuming => {
                resuming = true;
                done = d;
                let queue = queue
                    .into_iter()
                    .filter_map(|q| Url::parse(&q.url).ok().map(|u| (u, q.depth)))
                    .collect();
                Run::Crawl(CrawlState {
                    queue,
                    seen: decode_seen(&seen)?,
                    fetched,
                    dropped: 0,
                    stop_warned: false,
                })
            }
            (
                WebMode::Sitemap,
                Some(Checkpoint::Sitemap {
                    since,
                    max_lastmod,
                    after,
                    done: d,
                }),
            ) => {
                if start.resuming {
                    resuming = true;
                    done = d;
                    Run::Sitemap(SitemapState {
                        since,
                        max_lastmod,
                        after,
                        queue: None,
                        total: 0,
                    })
                } else {
                    let incremental = start.mode == Mode::Incremental;
                    Run::Sitemap(SitemapState {
                        since: if incremental { max_lastmod } else { None },
                        max_lastmod: if incremental { max_lastmod } else { None },
                        after: None,
                        queue: None,
                        total: 0,
                    })
                }
            }
            // A crawl cannot tell what changed without fetching, so every crawl is full.
            (WebMode::Crawl, _) => Run::Crawl(CrawlState::new(&site.start_url)),
            (WebMode::Sitemap, _) => Run::Sitemap(SitemapState {
                since: None,
                max_lastmod: None,
                after: None,
                queue: None,
                total: 0,
            }),
        };
        Ok(Self {
            site,
            run,
            now: start.now,
            resuming,
            done,
            pending: Batch::default(),
            pending_fetches: 0,
            finished: false,
            listing: None,
        })
    }

    fn checkpoint(&self) -> Value {
        let checkpoint = match &self.run {
            Run::Crawl(state) => Checkpoint::Crawl {
                queue: state
                    .queue
                    .iter()
                    .map(|(url, depth)| Queued {
                        url: url.to_string(),
                        depth: *depth,
                    })
                    .collect(),
                seen: encode_seen(&state.seen),
                fetched: state.fetched,
                done: self.done,
            },
            Run::Sitemap(state) => Checkpoint::Sitemap {
                since: state.since,
                max_lastmod: state.max_lastmod,
                after: state.after.clone(),
                done: self.done,
            },
        };
        serde_json::json!(checkpoint)
    }

    fn take_visit(&mut self, id: &str, visit: Visit, lastmod: Option<DateTime<Utc>>) {
        self.pending.warnings.extend(visit.warnings);
        if let Some(mut doc) = visit.document {
            doc.updated_at = lastmod;
            self.pending.documents.push(doc);
            self.done += 1;
        }
        if let Some(message) = visit.failure {
            self.pending.failures.push(DocumentFailure {
                id: id.to_owned(),
                link: Some(id.to_owned()),
                message,
            });
            self.done += 1;
        }
    }

    async fn start_sitemap(&mut self) -> Result<()> {
        let pages = self.site.sitemap_urls().await?;
        let Run::Sitemap(state) = &mut self.run else {
            return Ok(());
        };
        if !self.resuming {
            // Capped at the run's start so one page dated in the future cannot hide the
            // changes of every other page until that date.
            let newest = pages.values().flatten().max().map(|m| (*m).min(self.now));
            state.max_lastmod = state.max_lastmod.max(newest);
        }
        let queue: VecDeque<_> = pages
            .into_iter()
            .filter(|(url, _)| state.after.as_ref().is_none_or(|a| url > a))
            .filter(|(_, lastmod)| match (state.since, lastmod) {
                (Some(since), Some(lastmod)) => *lastmod >= since,
                _ => true,
            })
            .filter_map(|(url, lastmod)| Url::parse(&url).ok().map(|u| (u, lastmod)))
            .collect();
        state.total = self.done + queue.len() as u64;
        state.queue = Some(queue);
        Ok(())
    }

    /// Fetches one page of the sitemap run; `false` when none is left.
    async fn sitemap_step(&mut self) -> Result<bool> {
        let Run::Sitemap(state) = &mut self.run else {
            return Ok(false);
        };
        let Some((url, lastmod)) = state.queue.as_ref().and_then(|q| q.front()).cloned() else {
            return Ok(false);
        };
        let visit = self.site.visit(&url, false).await?;
        if let Run::Sitemap(state) = &mut self.run {
            if let Some(queue) = state.queue.as_mut() {
                queue.pop_front();
            }
            state.after = Some(url.to_string());
        }
        let id = visit.final_url.as_ref().unwrap_or(&url).to_string();
        self.take_visit(&id, visit, lastmod);
        Ok(true)
    }

    async fn next(&mut self) -> Result<Option<Batch>> {
        if self.finished {
            return Ok(None);
        }
        self.site.ensure_robots().await?;
        if let Run::Crawl(state) = &self.run
            && state.fetched == 0
            && state.queue.len() == 1
            && !self.site.robots_allow(&self.site.start_url)
        {
            return Err(SourceError::Config {
                message: format!(
                    "robots.txt of {} disallows the start URL for {}; pick another start URL or ask the site's owner to allow it.",
                    self.site.start_url,
                    self.site.config.robots_agent()
                ),
            });
        }
        if let Run::Sitemap(state) = &self.run
            && state.queue.is_none()
        {
            self.start_sitemap().await?;
        }
        let batch_size = self.site.config.batch_size;
        while self.pending_fetches < batch_size {
            let more = match &mut self.run {
                Run::Crawl(state) => match crawl_step(&mut self.site, state).await? {
                    Some((id, visit)) => {
                        self.take_visit(&id, visit, None);
                        true
                    }
                    None => false,
                },
                Run::Sitemap(_) => self.sitemap_step().await?,
            };
            if !more {
                self.finished = true;
                break;
            }
            self.pending_fetches += 1;
        }
        self.pending_fetches = 0;
        let mut batch = std::mem::take(&mut self.pending);
        batch.warnings.splice(0..0, self.site.warnings.drain(..));
        batch.checkpoint = self.checkpoint();
        batch.progress = Progress {
            done: self.done,
            total: match &self.run {
                Run::Sitemap(state) => Some(state.total),
                Run::Crawl(_) => None,
            },
        };
        Ok(Some(batch))
    }

    async fn list(&mut self) -> Result<Vec<String>> {
        self.site.ensure_robots().await?;
        // Warnings of a listing belong to no batch; robots.txt's stay for the run's first.
        let keep = self.site.warnings.len();
        if self.site.config.mode == WebMode::Sitemap {
            let urls = self.site.sitemap_urls().await;
            self.site.warnings.truncate(keep);
            return Ok(urls?.into_keys().collect());
        }
        let (mut state, mut ids) = self
            .listing
            .take()
            .unwrap_or_else(|| (CrawlState::new(&self.site.start_url), Vec::new()));
        loop {
            match crawl_step(&mut self.site, &mut state).await {
                Ok(Some((id, visit))) => {
                    if visit.document.is_some() {
                        ids.push(id);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.site.warnings.truncate(keep);
                    self.listing = Some((state, ids));
                    return Err(e);
                }
            }
        }
        self.site.warnings.truncate(keep);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn check_site(&mut self) -> Result<String> {
        self.site.ensure_robots().await?;
        let keep = self.site.warnings.len();
        let found = self.check_found().await;
        self.site.warnings.truncate(keep);
        found
    }

    async fn check_found(&mut self) -> Result<String> {
        let delay = self.site.delay();
        match self.site.config.mode {
            WebMode::Sitemap => {
                let pages = self.site.sitemap_urls().await?;
                Ok(format!(
                    "The sitemap {} lists {} pages this source may read; requests are {} ms apart.",
                    self.site.sitemap_url,
                    pages.len(),
                    delay.as_millis()
                ))
            }
            WebMode::Crawl => {
                let start = self.site.start_url.clone();
                if !self.site.robots_allow(&start) {
                    return Err(SourceError::Config {
                        message: format!(
                            "robots.txt disallows the start URL {start} for {}; pick another start URL.",
                            self.site.config.robots_agent()
                        ),
                    });
                }
                let visit = self.site.visit(&start, true).await?;
                if let Some(failure) = visit.failure {
                    return Err(SourceError::Config {
                        message: format!("the start URL {start} cannot be read: {failure}"),
                    });
                }
                match visit.final_url {
                    Some(_) => Ok(format!(
                        "The start URL {start} is a page with {} links on the site; requests are {} ms apart.",
                        visit.links.len(),
                        delay.as_millis()
                    )),
                    None => Err(SourceError::Config {
                        message: format!(
                            "the start URL {start} gives no page to crawl from ({}); fix start_url.",
                            visit.warnings.join(" ")
                        ),
                    }),
                }
            }
        }
    }
}

/// Fetches the next queued URL and queues its links. `None` when the crawl is over.
/// On an error the URL stays at the front of the queue for the retry.
async fn crawl_step(site: &mut Site, state: &mut CrawlState) -> Result<Option<(String, Visit)>> {
    let max_pages = site.config.max_pages;
    if state.fetched >= max_pages {
        if !state.stop_warned && !state.queue.is_empty() {
            state.stop_warned = true;
            site.warnings.push(format!(
                "The crawl stopped at max_pages ({max_pages}) fetches with {} pages still queued; raise max_pages to read more.",
                state.queue.len()
            ));
        }
        return Ok(None);
    }
    let Some((url, depth)) = state.queue.front().cloned() else {
        if state.dropped > 0 {
            site.warnings.push(format!(
                "{} links were not queued because the crawl queue was full ({MAX_QUEUE} or what max_pages leaves).",
                state.dropped
            ));
            state.dropped = 0;
        }
        return Ok(None);
    };
    let mut visit = site.visit(&url, depth == 0).await?;
    state.queue.pop_front();
    state.fetched += 1;
    if let Some(final_url) = &visit.final_url
        && *final_url != url
        && !state.seen.insert(fnv1a(final_url.as_str()))
    {
        // A redirect to a page queued or read on its own: that visit produces it.
        visit.document = None;
    }
    if depth < site.config.max_depth {
        for link in std::mem::take(&mut visit.links) {
            if !site.config.path_allowed(link.path()) {
                continue;
            }
            let room = (max_pages - state.fetched) as usize;
            if state.queue.len() >= room.min(MAX_QUEUE) {
                state.dropped += 1;
                continue;
            }
            if !state.seen.insert(fnv1a(link.as_str())) {
                continue;
            }
            if !site.robots_allow(&link) {
                visit.warnings.push(format!(
                    "robots.txt disallows {link} for {}; it is not fetched.",
                    site.config.robots_agent()
                ));
                continue;
            }
            state.queue.push_back((link, depth + 1));
        }
    }
    let id = visit.final_url.as_ref().unwrap_or(&url).to_string();
    Ok(Some((id, visit)))
}

/// FNV-1a: stable across processes and versions, unlike `std`'s hasher.
fn fnv1a(text: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn encode_seen(seen: &HashSet<u64>) -> String {
    let mut hashes: Vec<u64> = seen.iter().copied().collect();
    hashes.sort_unstable();
    let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.to_be_bytes()).collect();
    STANDARD.encode(bytes)
}

fn decode_seen(text: &str) -> Result<HashSet<u64>> {
    let bad = || SourceError::Config {
        message:
            "the stored crawl checkpoint is damaged (seen URLs); run a full sync to start over."
                .to_owned(),
    };
    let bytes = STANDARD.decode(text).map_err(|_| bad())?;
    if bytes.len() % 8 != 0 {
        return Err(bad());
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            u64::from_be_bytes(word)
        })
        .collect())
}

impl Source for WebSource {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>>> {
        Box::pin(self.next())
    }

    fn list_ids(&mut self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.list())
    }

    fn check(&mut self) -> BoxFuture<'_, Result<String>> {
        Box::pin(self.check_site())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn seen_hashes_round_trip() {
        let seen: HashSet<u64> = [1, u64::MAX, fnv1a("https://a.example/")].into();
        assert_eq!(decode_seen(&encode_seen(&seen)).unwrap(), seen);
        assert!(decode_seen("AAA=").is_err());
    }

    #[test]
    fn credentials_become_authorization_headers() {
        let basic = auth_header(Some(&json!({"username": "u", "password": "p"})))
            .unwrap()
            .unwrap();
        assert_eq!(basic.to_str().unwrap(), "Basic dTpw");
        assert!(basic.is_sensitive());
        let bearer = auth_header(Some(&json!({"token": "t"}))).unwrap().unwrap();
        assert_eq!(bearer.to_str().unwrap(), "Bearer t");
        assert!(auth_header(Some(&json!({"api_key": "k"}))).is_err());
        assert!(auth_header(None).unwrap().is_none());
    }

    #[test]
    fn checkpoints_are_tagged_by_mode() {
        let cp = Checkpoint::Crawl {
            queue: vec![Queued {
                url: "https://a.example/".into(),
                depth: 0,
            }],
            seen: String::new(),
            fetched: 0,
            done: 0,
        };
        let value = serde_json::to_value(&cp).unwrap();
        assert_eq!(value["mode"], "crawl");
        assert_eq!(serde_json::from_value::<Checkpoint>(value).unwrap(), cp);
    }
}
