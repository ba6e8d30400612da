use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::Result;

/// An Onyx target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnyxConfig {
    /// Onyx's API root, behind its proxy: `https://<host>/api`.
    pub base_url: String,
    /// The connector pair the documents join; its access type decides who can read them.
    /// Unset sends null, which Onyx reads as pair 1 (public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc_pair_id: Option<i64>,
    /// Onyx indexes inside the request, so one request can take minutes.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Documents sent at the same time; each one keeps an Onyx indexing worker busy.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

const fn default_timeout_secs() -> u64 {
    300
}

const fn default_concurrency() -> usize {
    2
}

impl OnyxConfig {
    /// A config with every default, for tests and generated examples.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            cc_pair_id: None,
            timeout_secs: default_timeout_secs(),
            concurrency: default_concurrency(),
        }
    }

    pub(crate) fn base_url(&self) -> Result<Url> {
        crate::http::base_url("onyx", "base_url", &self.base_url)
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_an_example() {
        let config: OnyxConfig = serde_json::from_value(json!({
            "base_url": "https://onyx.example.com/api",
            "cc_pair_id": 3
        }))
        .unwrap();
        assert_eq!(config.cc_pair_id, Some(3));
        assert_eq!(config.timeout_secs, 300);
        assert_eq!(config.concurrency, 2);
        assert!(
            serde_json::from_value::<OnyxConfig>(json!({ "base_url": "x", "api_key": "k" }))
                .is_err()
        );
    }

    #[test]
    fn generates_one() {
        assert_eq!(
            serde_json::to_value(OnyxConfig::new("http://localhost:8080/api")).unwrap(),
            json!({
                "base_url": "http://localhost:8080/api",
                "timeout_secs": 300,
                "concurrency": 2
            })
        );
    }
}
