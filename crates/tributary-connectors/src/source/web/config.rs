//! The web source's config: which site, how to find its pages, how politely.

use serde::{Deserialize, Serialize};

/// How the web source finds pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebMode {
    /// The URLs listed in the site's sitemap (sitemap index files are followed).
    Sitemap,
    /// Breadth-first through links from the start URL, within its origin.
    #[default]
    Crawl,
}

/// A web site, read through its sitemap or by following links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Where a crawl starts; its origin (scheme, host, port) bounds every fetch.
    pub start_url: String,
    #[serde(default)]
    pub mode: WebMode,
    /// The sitemap (or sitemap index) to read; `<origin>/sitemap.xml` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sitemap_url: Option<String>,
    /// Page fetches per run, redirects, failures and skipped content types included.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// How many links away from the start URL a crawl goes (the start URL is 0).
    #[serde(default = "default_max_depth")]
    pub max_depth: u32,
    /// Milliseconds between two requests to the site; a larger robots.txt `Crawl-delay`
    /// wins.
    #[serde(default = "default_politeness_delay_ms")]
    pub politeness_delay_ms: u64,
    /// Only URLs whose path starts with one of these are fetched (all when empty).
    #[serde(default)]
    pub include_paths: Vec<String>,
    /// URLs whose path starts with one of these are never fetched.
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    /// Sent with every request; its first word (before `/`) is the robots.txt agent.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Page fetches per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
}

pub(crate) const fn default_max_pages() -> u32 {
    1000
}

pub(crate) const fn default_max_depth() -> u32 {
    5
}

pub(crate) const fn default_politeness_delay_ms() -> u64 {
    500
}

pub(crate) const fn default_batch_size() -> u32 {
    10
}

pub(crate) fn default_user_agent() -> String {
    "TributaryBot/0.1 (+https://github.com/tributary)".to_owned()
}

impl WebConfig {
    /// `start_url` in `mode`, every other field at its default.
    pub fn new(start_url: impl Into<String>, mode: WebMode) -> Self {
        Self {
            start_url: start_url.into(),
            mode,
            sitemap_url: None,
            max_pages: default_max_pages(),
            max_depth: default_max_depth(),
            politeness_delay_ms: default_politeness_delay_ms(),
            include_paths: Vec::new(),
            exclude_paths: Vec::new(),
            user_agent: default_user_agent(),
            batch_size: default_batch_size(),
        }
    }

    /// The token robots.txt groups are matched against: `TributaryBot` for
    /// `TributaryBot/0.1 (+https://...)`.
    pub(crate) fn robots_agent(&self) -> &str {
        self.user_agent
            .split(|c: char| c == '/' || c.is_whitespace())
            .next()
            .filter(|token| !token.is_empty())
            .unwrap_or("*")
    }

    /// Whether the include and exclude prefixes let `path` through.
    pub(crate) fn path_allowed(&self, path: &str) -> bool {
        (self.include_paths.is_empty() || self.include_paths.iter().any(|p| path.starts_with(p)))
            && !self.exclude_paths.iter().any(|p| path.starts_with(p))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_an_example_and_fills_defaults() {
        let config: WebConfig = serde_json::from_value(json!({
            "start_url": "https://docs.example.com/guide/",
            "mode": "sitemap",
            "exclude_paths": ["/guide/old/"]
        }))
        .unwrap();
        assert_eq!(config.mode, WebMode::Sitemap);
        assert_eq!(config.max_pages, 1000);
        assert_eq!(config.max_depth, 5);
        assert_eq!(config.politeness_delay_ms, 500);
        assert_eq!(config.batch_size, 10);
        assert_eq!(config.robots_agent(), "TributaryBot");
        assert!(config.path_allowed("/guide/intro"));
        assert!(!config.path_allowed("/guide/old/x"));
    }

    #[test]
    fn generates_an_example_that_parses_back() {
        let mut config = WebConfig::new("https://example.com/", WebMode::Crawl);
        config.include_paths = vec!["/docs".into()];
        let value = serde_json::to_value(&config).unwrap();
        assert_eq!(value["mode"], "crawl");
        assert!(value.get("sitemap_url").is_none());
        assert_eq!(serde_json::from_value::<WebConfig>(value).unwrap(), config);
        assert!(!config.path_allowed("/blog"));
        assert!(
            serde_json::from_value::<WebConfig>(json!({"start_url": "https://x", "depth": 1}))
                .is_err()
        );
    }
}
