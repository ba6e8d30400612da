//! Signed webhook: one JSON POST per batch, so receivers can verify where it came from and
//! drop a batch they have already seen.
//!
//! Each request carries:
//! - `X-Tributary-Timestamp`: Unix seconds when it was sent;
//! - `X-Tributary-Signature`: `sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">` keyed
//!   with the target's secret; signing the timestamp lets receivers refuse replays;
//! - `Idempotency-Key`: the SHA-256 of the body, which names the target and lists the
//!   batch's operations, so a retried batch carries the same key.
//!
//! The body is a [`WebhookBatch`]. A batch succeeds or fails as a whole.

mod config;
mod payload;
mod sink;

pub use config::WebhookConfig;
pub use payload::{WebhookBatch, WebhookOperation};
pub use sink::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify};

use crate::{BuildContext, Capabilities, DestinationKind, Result, Sink};

/// Credential fields that may hold the signing secret, in order of preference: a
/// dedicated `webhook_secret` kind's `secret`, else `bearer_token`'s `token`.
pub(crate) const SECRET_FIELDS: &[&str] = &["secret", "token"];

pub(crate) fn kind() -> DestinationKind {
    DestinationKind {
        name: "webhook",
        title: "Signed webhook",
        description: "POSTs each batch of upserts and deletes as JSON to a URL, signed with \
                      HMAC-SHA256 and carrying an idempotency key.",
        capabilities: Capabilities {
            permissions: false,
            batches: true,
            deletes: true,
        },
        credential_kinds: &["bearer_token"],
        warnings: &[
            "The credential's token is the signing secret: it is never sent, only used to \
             sign. Share it with the receiver so it can verify X-Tributary-Signature.",
            "A batch may arrive more than once; receivers should skip an Idempotency-Key they \
             have already processed.",
        ],
        schema: crate::builtin_schema("webhook", SCHEMA),
        validate,
        build,
    }
}

const SCHEMA: &str = include_str!("../../../../schemas/destinations/webhook.json");

fn validate(config: &serde_json::Value) -> Result<()> {
    let config: WebhookConfig = crate::parse_config("webhook", config)?;
    config.url().map(drop)
}

fn build(ctx: BuildContext) -> Result<Box<dyn Sink>> {
    let config: WebhookConfig = crate::parse_config("webhook", &ctx.config)?;
    Ok(Box::new(sink::WebhookSink::new(
        &config,
        ctx.credential.as_ref(),
        ctx.http,
    )?))
}

#[cfg(all(test, feature = "fake"))]
mod tests;
