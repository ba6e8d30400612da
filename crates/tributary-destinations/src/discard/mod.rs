//! Discard: accepts every delivery and keeps nothing, so benchmarks measure Tributary
//! itself and dry runs exercise a profile without touching a real destination.

mod config;
mod sink;

pub use config::DiscardConfig;
pub use sink::{DiscardCounts, DiscardSink};

use crate::{BuildContext, Capabilities, DestinationKind, Result, Sink};

pub(crate) fn kind() -> DestinationKind {
    DestinationKind {
        name: "discard",
        title: "Discard",
        description: "Accepts every document and drops it, counting upserts and deletes; for \
                      benchmarks and dry runs.",
        capabilities: Capabilities {
            permissions: false,
            batches: true,
            deletes: true,
        },
        credential_kinds: &[],
        warnings: &["Documents delivered here are dropped: nothing can be searched."],
        schema: crate::builtin_schema("discard", SCHEMA),
        validate,
        build,
    }
}

const SCHEMA: &str = include_str!("../../../../schemas/destinations/discard.json");

fn validate(config: &serde_json::Value) -> Result<()> {
    crate::parse_config::<DiscardConfig>("discard", config).map(drop)
}

fn build(ctx: BuildContext) -> Result<Box<dyn Sink>> {
    crate::parse_config::<DiscardConfig>("discard", &ctx.config)?;
    Ok(Box::new(DiscardSink::new()))
}
