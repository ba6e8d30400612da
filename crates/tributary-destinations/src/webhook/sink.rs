use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::WebhookConfig;
use super::payload::OutgoingBatch;
use crate::credential::{Secret, secret_field};
use crate::http::{remote_name, send_error, status_error};
use crate::{Delivery, Result, Scope, Sink, SinkError};

pub const SIGNATURE_HEADER: &str = "X-Tributary-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Tributary-Timestamp";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Tributary-Signature` value for a body sent at `timestamp` (Unix seconds):
/// `sha256=` and the hex HMAC-SHA256 of `"<timestamp>.<body>"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Whether `signature` (the header's value) signs this body and timestamp. The comparison
/// takes constant time. Receivers should also refuse timestamps far from their clock.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(tag) = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

pub(crate) struct WebhookSink {
    http: reqwest::Client,
    url: Url,
    remote: String,
    secret: Secret,
    timeout: Duration,
}

impl WebhookSink {
    pub(crate) fn new(
        config: &WebhookConfig,
        credential: Option<&Value>,
        http: reqwest::Client,
    ) -> Result<Self> {
        let url = config.url()?;
        let secret = secret_field(credential, super::SECRET_FIELDS).ok_or_else(|| {
            SinkError::permanent(
                "The webhook target needs a signing secret: attach a bearer_token credential \
                 whose token is the secret shared with the receiver.",
            )
        })?;
        Ok(Self {
            http,
            remote: remote_name("the webhook receiver", &url),
            url,
            secret,
            timeout: config.timeout(),
        })
    }

    async fn post(&self, body: Vec<u8>, idempotency_key: &str) -> Result<()> {
        let timestamp = Utc::now().timestamp();
        let signature = sign(self.secret.expose().as_bytes(), timestamp, &body);
        let response = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(IDEMPOTENCY_HEADER, idempotency_key)
            .body(body)
            .send()
            .await
            .map_err(|e| send_error(&self.remote, self.timeout, &e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error(&self.remote, status, response.headers()))
        }
    }
}

fn encode(batch: &OutgoingBatch<'_>) -> Result<Vec<u8>> {
    serde_json::to_vec(batch).map_err(|_| {
        SinkError::permanent("Tributary could not encode the batch as JSON; report this as a bug.")
    })
}

impl Sink for WebhookSink {
    fn deliver<'a>(
        &'a self,
        scope: &'a Scope,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Vec<Result<()>>> {
        async move {
            if batch.is_empty() {
                return Vec::new();
            }
            let result = match encode(&OutgoingBatch::new(scope, batch)) {
                // The body names the target and lists every operation, and encodes the same
                // way each time, so its hash is a key that a retried batch repeats.
                Ok(body) => {
                    let key = hex::encode(Sha256::digest(&body));
                    self.post(body, &key).await
                }
                Err(error) => Err(error),
            };
            vec![result; batch.len()]
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<String>> {
        async move {
            let body = encode(&OutgoingBatch::empty())?;
            // A fresh key per check, so a receiver that de-duplicates still answers it.
            let key = format!("check-{}", uuid::Uuid::new_v4());
            self.post(body, &key).await?;
            Ok(format!(
                "{} accepted a signed batch without operations.",
                crate::http::capitalized(&self.remote)
            ))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_timestamp() {
        let signature = sign(b"s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(signature.starts_with("sha256="));
        assert_eq!(signature.len(), "sha256=".len() + 64);
        assert!(verify(b"s3cret", 1_700_000_000, b"{\"a\":1}", &signature));
        assert!(!verify(b"other", 1_700_000_000, b"{\"a\":1}", &signature));
        assert!(!verify(b"s3cret", 1_700_000_001, b"{\"a\":1}", &signature));
        assert!(!verify(b"s3cret", 1_700_000_000, b"{\"a\":2}", &signature));
        assert!(!verify(b"s3cret", 1_700_000_000, b"{\"a\":1}", "sha256=zz"));
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: Python's hmac.new(b"key", b"1.x", sha256).hexdigest().
        assert_eq!(
            sign(b"key", 1, b"x"),
            "sha256=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec"
        );
    }
}
