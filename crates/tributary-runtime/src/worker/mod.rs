//! The worker: runs a profile's source for a sync run it claimed, writing document
//! batches and their checkpoints to Kafka. See `write` (one transaction per batch,
//! fenced per run) and `drive` (rate limits, retries, cancellation).

mod drive;
mod write;

pub use drive::{Ended, drive};
pub use write::{RunRef, RunWriter, Written};
