//! Placeholder: the r2r destination is being written.

use super::{BuildContext, Capabilities, DestinationKind, Result, Sink, SinkError};

pub(crate) fn kind() -> DestinationKind {
    super::kind(
        "r2r",
        "r2r",
        "Not built yet.",
        Capabilities {
            permissions: false,
            batches: false,
            deletes: false,
        },
        &[],
        &[],
        serde_json::json!({ "type": "object" }),
        build,
    )
}

fn build(_ctx: BuildContext) -> Result<Box<dyn Sink>> {
    Err(SinkError::permanent("the r2r destination is not built yet"))
}
