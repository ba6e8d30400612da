//! The synthetic source's config: how many documents, how big, how they change from one
//! generation to the next, and which faults to inject.

use serde::{Deserialize, Serialize};

use crate::source::SourceError;

/// The largest `size_bytes` accepted: big enough to test 20 MB documents end to end,
/// small enough that a typo cannot exhaust a worker's memory.
pub const MAX_SIZE_BYTES: u64 = 64 * 1024 * 1024;

/// A deterministic generator of documents for tests, demos and benchmarks.
///
/// Everything it produces is a pure function of the config and the generation (see
/// [`super::expected`]), so a test can compute what a destination must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Documents in generation 0 (ids `doc-000000` up to `count - 1`).
    pub count: u64,
    /// Bytes of text per document; every document has exactly this many (ASCII).
    #[serde(default = "default_size_bytes")]
    pub size_bytes: u64,
    /// Changes every document's text and which documents change, fail or go.
    #[serde(default)]
    pub seed: u64,
    /// Items (documents, deletions, failures) per batch. Batches also stop at 16 MiB of text.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Fraction of live documents whose text changes in each generation after 0.
    #[serde(default)]
    pub update_rate: f64,
    /// Fraction of live documents deleted in each generation after 0; a deleted id never
    /// comes back.
    #[serde(default)]
    pub delete_rate: f64,
    /// New documents in each generation after 0, as a fraction of `count` (rounded), with
    /// ids following the last one of the previous generation.
    #[serde(default)]
    pub create_rate: f64,
    /// Fraction of documents (per document version) reported as per-document failures
    /// instead of being produced.
    #[serde(default)]
    pub failure_rate: f64,
    /// Pins every run to this generation; without it each run advances one generation
    /// from the checkpoint it starts from (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Fail every Nth batch once with a rate limit, so callers can test their waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_every: Option<u64>,
    /// The `retry_after` of an injected rate limit, in milliseconds.
    #[serde(default = "default_rate_limit_retry_after_ms")]
    pub rate_limit_retry_after_ms: u64,
    /// Fail every Nth batch once with a transient error, so callers can test retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transient_error_every: Option<u64>,
}

pub(crate) const fn default_size_bytes() -> u64 {
    2048
}

pub(crate) const fn default_batch_size() -> u32 {
    500
}

pub(crate) const fn default_rate_limit_retry_after_ms() -> u64 {
    1000
}

impl SyntheticConfig {
    /// `count` documents with every other field at its default.
    pub const fn new(count: u64) -> Self {
        Self {
            count,
            size_bytes: default_size_bytes(),
            seed: 0,
            batch_size: default_batch_size(),
            update_rate: 0.0,
            delete_rate: 0.0,
            create_rate: 0.0,
            failure_rate: 0.0,
            generation: None,
            rate_limit_every: None,
            rate_limit_retry_after_ms: default_rate_limit_retry_after_ms(),
            transient_error_every: None,
        }
    }

    /// Checks what the schema checks, for configs built in code rather than validated JSON.
    pub fn validate(&self) -> Result<(), SourceError> {
        let config = |message: String| Err(SourceError::Config { message });
        for (name, rate) in [
            ("update_rate", self.update_rate),
            ("delete_rate", self.delete_rate),
            ("create_rate", self.create_rate),
            ("failure_rate", self.failure_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return config(format!(
                    "{name} is {rate}; set it to a fraction between 0 and 1."
                ));
            }
        }
        if self.update_rate + self.delete_rate > 1.0 {
            return config(format!(
                "update_rate ({}) plus delete_rate ({}) is over 1; lower one of them.",
                self.update_rate, self.delete_rate
            ));
        }
        if self.size_bytes > MAX_SIZE_BYTES {
            return config(format!(
                "size_bytes is {}, over the {MAX_SIZE_BYTES} limit; ask for smaller documents.",
                self.size_bytes
            ));
        }
        if self.batch_size == 0 {
            return config("batch_size is 0; set it to 1 or more.".to_owned());
        }
        if self.rate_limit_every == Some(0) || self.transient_error_every == Some(0) {
            return config(
                "rate_limit_every and transient_error_every must be 1 or more; leave them out to inject no faults."
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_an_example_and_fills_defaults() {
        let config: SyntheticConfig = serde_json::from_value(json!({
            "count": 10000,
            "seed": 42,
            "update_rate": 0.1,
            "delete_rate": 0.01,
            "failure_rate": 0.001,
            "rate_limit_every": 7
        }))
        .unwrap();
        assert_eq!(config.count, 10_000);
        assert_eq!(config.size_bytes, 2048);
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.rate_limit_every, Some(7));
        assert_eq!(config.rate_limit_retry_after_ms, 1000);
        assert_eq!(config.generation, None);
        config.validate().unwrap();
    }

    #[test]
    fn generates_an_example_that_parses_back() {
        let mut config = SyntheticConfig::new(5);
        config.generation = Some(3);
        let value = serde_json::to_value(&config).unwrap();
        assert_eq!(value["count"], 5);
        assert_eq!(value["generation"], 3);
        assert!(value.get("rate_limit_every").is_none());
        assert_eq!(
            serde_json::from_value::<SyntheticConfig>(value).unwrap(),
            config
        );
    }

    #[test]
    fn rejects_unknown_fields_and_bad_rates() {
        assert!(serde_json::from_value::<SyntheticConfig>(json!({"count": 1, "cnt": 2})).is_err());
        let mut config = SyntheticConfig::new(1);
        config.update_rate = 0.7;
        config.delete_rate = 0.6;
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("lower one of them"), "{err}");
        config.delete_rate = 1.5;
        assert!(config.validate().is_err());
    }
}
