//! A web site, read through its sitemap or by crawling links from a start URL.
//!
//! Every request stays on the start URL's origin (scheme, host and port: `www.` is another
//! site), waits `politeness_delay_ms` (or robots.txt's larger `Crawl-delay`, up to 60 s)
//! after the previous one, and honours robots.txt for the user agent's first word (else
//! `*`). Pages marked `noindex` are not produced; `nofollow` pages' links are not
//! followed. Only HTML is read: other content types are skipped with a warning. Bodies are
//! read as UTF-8 (other charsets lossily). Document ids are normalized URLs (no fragment,
//! no empty query), after same-origin redirects.
//!
//! HTTP: 429, and 503 with `Retry-After`, are [`SourceError::RateLimited`]; other 5xx and
//! network failures are [`SourceError::Transient`]; 401/403 on the start URL or the
//! sitemap are [`SourceError::Auth`]; any other 4xx fails that page only. A retry after an
//! error goes on with the page that failed, keeping the pages fetched before it.
//!
//! # Sitemap mode
//!
//! Reads `sitemap_url` (default `<origin>/sitemap.xml`), following sitemap index files up
//! to three levels, and fetches the listed pages in URL order. The checkpoint keeps the
//! newest `<lastmod>` seen; the next incremental run fetches only pages whose `lastmod` is
//! at or after it, or that have none. `Progress::total` is the number of pages to fetch.
//! `list_ids` reads the sitemaps again (no page is fetched).
//!
//! # Crawl mode
//!
//! Breadth-first from `start_url`, up to `max_depth` links away and `max_pages` fetches.
//! The checkpoint holds the queue (at most 5,000 URLs) and hashes of the URLs already seen,
//! so a resumed crawl goes on where it stopped. A crawl cannot know what changed without
//! fetching, so incremental runs crawl fully. `list_ids` must crawl too: it fetches every
//! page again, as slowly as a run does.
//!
//! [`SourceError::RateLimited`]: crate::source::SourceError::RateLimited
//! [`SourceError::Transient`]: crate::source::SourceError::Transient
//! [`SourceError::Auth`]: crate::source::SourceError::Auth

mod config;
mod http;
mod site;
mod sitemap;
mod source;

pub use config::{WebConfig, WebMode};

use super::{Capabilities, ConnectorKind, bundled_schema};

pub(crate) fn kind() -> ConnectorKind {
    super::kind(
        "web",
        "Web site",
        "Pages of one web site, from its sitemap or by following links, politely and within robots.txt.",
        Capabilities {
            incremental: true,
            checkpoint: true,
            prune: true,
            permissions: false,
            estimate: true,
        },
        &["basic_auth", "bearer_token"],
        bundled_schema(include_str!("../../../../../schemas/connectors/web.json")),
        source::build,
    )
}
