//! Onyx ingestion API: one request per document, indexed inside the request.
//!
//! Onyx accepts `external_access` on these documents but does not store it: who can read
//! them is the connector pair's access type. The kind warns about it and reports
//! `permissions: false` rather than pretend source ACLs were applied.

mod config;
mod document;
mod sink;

pub use config::OnyxConfig;

#[cfg(feature = "fake")]
pub(crate) use document::ONYX_SOURCES;

use crate::{BuildContext, Capabilities, DestinationKind, Result, Sink};

pub(crate) fn kind() -> DestinationKind {
    DestinationKind {
        name: "onyx",
        title: "Onyx",
        description: "Pushes each document to Onyx through its ingestion API, where it is \
                      indexed in the request.",
        capabilities: Capabilities {
            permissions: false,
            batches: false,
            deletes: true,
        },
        credential_kinds: &["bearer_token"],
        warnings: &[
            "Onyx ignores per-document access lists sent through its ingestion API: who can \
             read these documents is set by the access type of the connector pair \
             (cc_pair_id). Leaving cc_pair_id unset uses pair 1, which is public.",
            "Onyx indexes each document inside the request, so delivery is slow and large \
             documents are slower; keep concurrency low and the timeout generous.",
            "Onyx deletes only documents that were pushed through its ingestion API.",
        ],
        schema: crate::builtin_schema("onyx", SCHEMA),
        validate,
        build,
    }
}

const SCHEMA: &str = include_str!("../../../../schemas/destinations/onyx.json");

fn validate(config: &serde_json::Value) -> Result<()> {
    let config: OnyxConfig = crate::parse_config("onyx", config)?;
    config.base_url().map(drop)
}

fn build(ctx: BuildContext) -> Result<Box<dyn Sink>> {
    let config: OnyxConfig = crate::parse_config("onyx", &ctx.config)?;
    Ok(Box::new(sink::OnyxSink::new(
        config,
        ctx.credential.as_ref(),
        ctx.http,
    )?))
}

#[cfg(all(test, feature = "fake"))]
mod tests;
