//! Placeholder: the onyx destination is being written.

use super::{BuildContext, Capabilities, DestinationKind, Result, Sink, SinkError};

pub(crate) fn kind() -> DestinationKind {
    super::kind(
        "onyx",
        "onyx",
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
    Err(SinkError::permanent(
        "the onyx destination is not built yet",
    ))
}
