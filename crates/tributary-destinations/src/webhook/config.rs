use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::Result;

/// Where a webhook target POSTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver's URL (http or https).
    pub url: String,
    /// How long one POST may take before it counts as failed and is retried.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

const fn default_timeout_secs() -> u64 {
    30
}

impl WebhookConfig {
    pub(crate) fn url(&self) -> Result<Url> {
        crate::http::base_url("webhook", "url", &self.url)
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
    fn parses_an_example_with_defaults() {
        let config: WebhookConfig =
            serde_json::from_value(json!({ "url": "https://hooks.example.com/tributary" }))
                .unwrap();
        assert_eq!(config.timeout_secs, 30);
        assert!(config.url().is_ok());
        assert!(
            serde_json::from_value::<WebhookConfig>(json!({ "url": "x", "secret": "s" })).is_err()
        );
    }

    #[test]
    fn generates_one() {
        let config = WebhookConfig {
            url: "http://127.0.0.1:9000/hook".into(),
            timeout_secs: 5,
        };
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            json!({ "url": "http://127.0.0.1:9000/hook", "timeout_secs": 5 })
        );
    }
}
