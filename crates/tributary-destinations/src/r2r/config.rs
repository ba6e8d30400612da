use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;
use uuid::Uuid;

use crate::Result;

/// An R2R target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct R2rConfig {
    /// R2R's API root; `/v3/documents` is appended.
    pub base_url: String,
    /// How the credential's token is sent. R2R answers 400 to a request carrying both.
    #[serde(default)]
    pub auth: R2rAuth,
    /// Collections each document is added to when created; empty means R2R's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection_ids: Vec<Uuid>,
    #[serde(default)]
    pub ingestion_mode: IngestionMode,
    /// Passed to R2R as is; meaningful with `ingestion_mode: custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_config: Option<Map<String, Value>>,
    /// Unset leaves R2R's default (on): ingestion then finishes after R2R answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_with_orchestration: Option<bool>,
    /// How long one request may take; without orchestration R2R ingests inside the
    /// request, so this is generous.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Documents sent at the same time.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

const fn default_timeout_secs() -> u64 {
    120
}

const fn default_concurrency() -> usize {
    4
}

/// Which header carries the credential's token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum R2rAuth {
    /// `Authorization: Bearer <token>`: a login token or an API key `key_id.raw_key`.
    #[default]
    Bearer,
    /// `X-API-Key: <key_id.raw_key>`.
    ApiKey,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IngestionMode {
    HiRes,
    Ocr,
    /// Cheapest: the text is already extracted, so R2R only chunks and embeds it.
    #[default]
    Fast,
    Custom,
}

impl IngestionMode {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::HiRes => "hi-res",
            Self::Ocr => "ocr",
            Self::Fast => "fast",
            Self::Custom => "custom",
        }
    }
}

impl R2rConfig {
    /// A config with every default, for tests and generated examples.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            auth: R2rAuth::default(),
            collection_ids: Vec::new(),
            ingestion_mode: IngestionMode::default(),
            ingestion_config: None,
            run_with_orchestration: None,
            timeout_secs: default_timeout_secs(),
            concurrency: default_concurrency(),
        }
    }

    pub(crate) fn base_url(&self) -> Result<Url> {
        crate::http::base_url("r2r", "base_url", &self.base_url)
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
        let config: R2rConfig = serde_json::from_value(json!({
            "base_url": "https://r2r.example.com",
            "auth": "api_key",
            "collection_ids": ["0f6c2d1e-8f1e-4c53-9d4a-2b1f0a4c9e11"],
            "ingestion_mode": "hi-res"
        }))
        .unwrap();
        assert_eq!(config.auth, R2rAuth::ApiKey);
        assert_eq!(config.ingestion_mode, IngestionMode::HiRes);
        assert_eq!(config.timeout_secs, 120);
        assert_eq!(config.concurrency, 4);
        assert!(
            serde_json::from_value::<R2rConfig>(json!({ "base_url": "x", "api_key": "k" }))
                .is_err()
        );
    }

    #[test]
    fn generates_one() {
        let config = R2rConfig::new("http://localhost:7272");
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            json!({
                "base_url": "http://localhost:7272",
                "auth": "bearer",
                "ingestion_mode": "fast",
                "timeout_secs": 120,
                "concurrency": 4
            })
        );
        assert_eq!(IngestionMode::HiRes.as_str(), "hi-res");
    }
}
