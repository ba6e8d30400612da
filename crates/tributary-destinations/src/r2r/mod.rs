//! R2R v3 documents API.
//!
//! R2R has no update: posting an id that exists answers 409. Ids are therefore
//! deterministic (`Scope::document_uuid`), an upsert tries a create first, and on 409
//! deletes the old version and creates again. Deletes treat 404 as done, so every
//! operation can be repeated safely.

mod config;
mod sink;

pub use config::{IngestionMode, R2rAuth, R2rConfig};

use crate::{BuildContext, Capabilities, DestinationKind, Result, Sink};

pub(crate) fn kind() -> DestinationKind {
    DestinationKind {
        name: "r2r",
        title: "R2R",
        description: "Creates one R2R document per source document through the v3 documents \
                      API (raw text plus metadata); R2R chunks and embeds it.",
        capabilities: Capabilities {
            permissions: false,
            batches: false,
            deletes: true,
        },
        credential_kinds: &["bearer_token"],
        warnings: &[
            "R2R cannot update a document in place: a changed document is deleted and ingested \
             again, so it is briefly missing from search.",
            "Per-document access lists are not sent: R2R scopes access by user and collection, \
             so choose collection_ids for the audience.",
        ],
        schema: crate::builtin_schema("r2r", SCHEMA),
        validate,
        build,
    }
}

const SCHEMA: &str = include_str!("../../../../schemas/destinations/r2r.json");

fn validate(config: &serde_json::Value) -> Result<()> {
    let config: R2rConfig = crate::parse_config("r2r", config)?;
    config.base_url().map(drop)
}

fn build(ctx: BuildContext) -> Result<Box<dyn Sink>> {
    let config: R2rConfig = crate::parse_config("r2r", &ctx.config)?;
    Ok(Box::new(sink::R2rSink::new(
        config,
        ctx.credential.as_ref(),
        ctx.http,
    )?))
}

#[cfg(all(test, feature = "fake"))]
mod tests;
