//! Driving a source through a run: pull a batch, write it with its checkpoint, repeat
//! until the source is done, the run is canceled, or the source fails for good.
//!
//! A rate limit pauses only this run, for as long as the source asked. Transient source
//! errors are retried with exponential backoff; if they persist the run is handed back
//! (interrupted) rather than failed, so it resumes later from its checkpoint without a
//! person restarting it.

use super::credential::CredentialUpdates;
use super::write::{RunWriter, Written};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;
use tributary_connectors::source::{Batch, Source, SourceError};

/// How a drive ended.
#[derive(Debug)]
pub enum Ended {
    /// The source is exhausted and its last batch written (`source_done`).
    SourceDone { batches: u64, written: Written },
    /// `should_stop` said so (the run was canceled or the worker is shutting down).
    Stopped,
    /// The source refused for good (config, credential, unsupported): fail the run.
    Failed(SourceError),
    /// Transient errors did not stop: hand the run back to be resumed later.
    GaveUp(String),
}

/// Pulls and writes batches `start_seq + 1, …`. `should_stop` is asked before each pull
/// and while the source asks to wait.
pub async fn drive(
    source: &mut dyn Source,
    writer: &RunWriter,
    start_seq: u64,
    should_stop: impl FnMut() -> bool + Send,
) -> Ended {
    drive_with(source, writer, start_seq, should_stop, None).await
}

/// [`drive`], storing the credential values the source hands back in `updates` before
/// the batch that follows them is written.
pub async fn drive_with(
    source: &mut dyn Source,
    writer: &RunWriter,
    start_seq: u64,
    mut should_stop: impl FnMut() -> bool + Send,
    updates: Option<&dyn CredentialUpdates>,
) -> Ended {
    let mut seq = start_seq;
    let mut total = Written::default();
    let mut last_checkpoint = serde_json::Value::Null;
    let mut last_progress = Default::default();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(8)
        .with_jitter();
    loop {
        if should_stop() {
            return Ended::Stopped;
        }
        let mut delays = backoff.build();
        let batch = loop {
            match source.next_batch().await {
                Ok(batch) => break batch,
                Err(SourceError::RateLimited {
                    retry_after,
                    message,
                }) => {
                    tracing::info!(?retry_after, %message, "the source is rate limiting this run; waiting");
                    tokio::time::sleep(retry_after).await;
                    if should_stop() {
                        return Ended::Stopped;
                    }
                }
                Err(e) if e.is_retriable() => match delays.next() {
                    Some(delay) => {
                        tracing::warn!(error = %e, ?delay, "the source failed for now; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Ended::GaveUp(e.to_string()),
                },
                Err(e) => return Ended::Failed(e),
            }
        };
        let (mut batch, done) = match batch {
            Some(batch) => {
                last_checkpoint = batch.checkpoint.clone();
                last_progress = batch.progress;
                (batch, false)
            }
            // The closing batch keeps where the run got to.
            None => (
                Batch {
                    checkpoint: last_checkpoint.clone(),
                    progress: last_progress,
                    ..Batch::default()
                },
                true,
            ),
        };
        if let Some(value) = batch.credential_update.take() {
            match updates {
                Some(updates) => {
                    if let Err(why) = updates.store(value).await {
                        tracing::error!(%why, "the source changed its credential, but the change \
                            could not be stored; if the old value no longer works, the next run \
                            fails to authenticate: enter the new value in the credential");
                    }
                }
                None => tracing::warn!(
                    "the source changed its credential, but the profile has none to keep it in"
                ),
            }
        }
        seq += 1;
        let written = match write_retrying(writer, seq, &batch, done).await {
            Ok(written) => written,
            Err(ended) => return ended,
        };
        total.documents += written.documents;
        total.deletions += written.deletions;
        total.failed += written.failed;
        if done {
            return Ended::SourceDone {
                batches: seq - start_seq,
                written: total,
            };
        }
    }
}

/// Writes batch `seq`, retrying a failed transaction three times with a growing pause;
/// then hands the run back (`GaveUp`) to resume from its last committed checkpoint.
pub(super) async fn write_retrying(
    writer: &RunWriter,
    seq: u64,
    batch: &Batch,
    done: bool,
) -> Result<Written, Ended> {
    let mut attempts = 0;
    loop {
        match tokio::task::block_in_place(|| writer.write(seq, batch, done)) {
            Ok(written) => return Ok(written),
            Err(e) if attempts < 3 => {
                attempts += 1;
                tracing::warn!(error = %e, seq, "writing a batch failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 * attempts)).await;
            }
            Err(e) => {
                return Err(Ended::GaveUp(format!(
                    "batch {seq} could not be written to Kafka ({e}); the run resumes from its \
                     last checkpoint"
                )));
            }
        }
    }
}
