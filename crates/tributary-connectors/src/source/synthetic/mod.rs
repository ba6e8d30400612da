//! A deterministic generator of documents, for tests, demos and benchmarks.
//!
//! # Generations
//!
//! The generator's world moves in generations. Generation 0 holds `count` documents,
//! `doc-000000` to `doc-<count-1>`, each at version 0. Each later generation `g`, for
//! every document still live: a `delete_rate` fraction is deleted (for good), an
//! `update_rate` fraction gets new text (version `g`), and `round(count * create_rate)`
//! new ids are appended. Which ones is a hash of `(seed, id, g)`, so the live ids of a
//! generation and every document's text are a pure function of the config and `g`:
//! [`expected`] computes them, and [`document`] builds any one of them.
//!
//! A `failure_rate` fraction of document versions are reported in [`Batch::failures`]
//! instead of being produced; the same version always fails, a later version may not.
//!
//! # Which generation a run produces
//!
//! The checkpoint is `{"generation": g, "base": b | null, "position": p, "done": n}`:
//! the run produces generation `g`, diffed against generation `b` (`null` for a full run),
//! and has looked at id slots before `p`.
//!
//! - A run without a checkpoint produces generation 0 (or the pinned `generation`).
//! - A run handed the checkpoint of a previous, completed run in generation `g` produces
//!   generation `g + 1` (or the pinned `generation`). An incremental run then yields only
//!   the documents created or changed since `g` and lists the deleted ids in
//!   [`Batch::deleted`]; a full run yields every live document.
//! - A resumed run (`Start::resuming`) keeps its checkpoint's generation and base and goes
//!   on from `position`; the documents it yields are exactly those it had not yet
//!   yielded.
//!
//! So the final checkpoint names the generation the run produced, and the next run is one
//! generation later. `Progress::total` is known from the first batch; every run returns at
//! least one batch, so even a run that found no change hands back its checkpoint.
//!
//! [`Batch::failures`]: crate::source::Batch::failures
//! [`Batch::deleted`]: crate::source::Batch::deleted

mod config;
mod model;
mod source;

pub use config::{MAX_SIZE_BYTES, SyntheticConfig};
pub use model::{Expected, content_hash, document, expected};

use super::{Capabilities, ConnectorKind, bundled_schema};

pub(crate) fn kind() -> ConnectorKind {
    super::kind(
        "synthetic",
        "Synthetic documents",
        "Generates documents from a seed, with updates, deletions, failures and injected faults, for tests, demos and benchmarks.",
        Capabilities {
            incremental: true,
            checkpoint: true,
            prune: true,
            permissions: false,
            estimate: true,
        },
        &[],
        bundled_schema(include_str!(
            "../../../../../schemas/connectors/synthetic.json"
        )),
        source::build,
    )
}
