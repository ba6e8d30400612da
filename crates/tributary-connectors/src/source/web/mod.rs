//! Placeholder: the web source is being written.

use super::{BuildContext, Capabilities, ConnectorKind, Result, Source, SourceError};

pub(crate) fn kind() -> ConnectorKind {
    super::kind(
        "web",
        "web",
        "Not built yet.",
        Capabilities {
            incremental: false,
            checkpoint: false,
            prune: false,
            permissions: false,
            estimate: false,
        },
        &[],
        serde_json::json!({ "type": "object" }),
        build,
    )
}

fn build(_ctx: BuildContext) -> Result<Box<dyn Source>> {
    Err(SourceError::Unsupported {
        kind: "web",
        what: "run yet",
    })
}
