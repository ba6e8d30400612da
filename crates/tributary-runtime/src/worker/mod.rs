//! The worker: claims waiting sync runs and runs each one's source, writing document
//! batches and their checkpoints to Kafka. See `pool` (claims, limits, heartbeats),
//! `write` (one transaction per batch, fenced per run) and `drive` (rate limits,
//! retries, cancellation).

mod credential;
mod drive;
mod pool;
mod write;

pub use credential::{BoxFuture, CredentialStore, CredentialUpdates};
pub use drive::{Ended, drive, drive_with};
pub use pool::{Limits, MAX_ATTEMPTS, Worker, WorkerConfig};
pub use write::{RunRef, RunWriter, Written};
