//! CSV dump: one file per target, one row per document event, for debugging and demos.

mod config;
mod sink;

pub use config::CsvConfig;
pub use sink::COLUMNS;

use crate::{BuildContext, Capabilities, DestinationKind, Result, Sink};

pub(crate) fn kind() -> DestinationKind {
    DestinationKind {
        name: "csv",
        title: "CSV file",
        description: "Appends one row per document event (upsert or delete) to a CSV file on \
                      the Tributary server, for debugging and demos.",
        capabilities: Capabilities {
            permissions: false,
            batches: true,
            deletes: true,
        },
        credential_kinds: &[],
        warnings: &[
            "The file is written on the Tributary server's own disk, under its data directory \
             unless the path is absolute.",
            "Rows are appended, never replaced: a redelivered batch appears twice, and a \
             deleted document keeps its earlier rows.",
        ],
        schema: crate::builtin_schema("csv", SCHEMA),
        validate,
        build,
    }
}

const SCHEMA: &str = include_str!("../../../../schemas/destinations/csv.json");

fn validate(config: &serde_json::Value) -> Result<()> {
    let config: CsvConfig = crate::parse_config("csv", config)?;
    config.check_path()
}

fn build(ctx: BuildContext) -> Result<Box<dyn Sink>> {
    let config: CsvConfig = crate::parse_config("csv", &ctx.config)?;
    config.check_path()?;
    Ok(Box::new(sink::CsvSink::new(config.resolve(&ctx.data_dir))))
}

#[cfg(test)]
mod tests;
