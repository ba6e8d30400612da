//! Driving a source through a run: pull a batch, write it with its checkpoint, repeat
//! until the source is done, the run is canceled, or the source fails for good.
//!
//! Batches that a source hands over quickly share a Kafka transaction, up to 5,000
//! documents, 8 MiB of text or half a second; each keeps its own `record_batch` and
//! checkpoint. A slow pull, a wait on the source, a stop or the end commits what is
//! open first, so no transaction is held across a wait.
//!
//! A rate limit pauses only this run, for as long as the source asked. Transient source
//! errors are retried with exponential backoff; if they persist the run is handed back
//! (interrupted) rather than failed, so it resumes later from its checkpoint without a
//! person restarting it.

use super::credential::CredentialUpdates;
use super::write::{RunWriter, Written};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::{Duration, Instant};
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

/// A transaction may gather several source batches while the source answers quickly:
/// committing is the slow part of a write (every record acknowledged, then the commit
/// round trip and its markers), so a fast source loses most of its time waiting for it.
/// It is committed once it holds this many documents or bytes, is this old, or the next
/// pull may be slow.
const TXN_DOCUMENTS: usize = 5_000;
const TXN_BYTES: usize = 8 << 20;
const TXN_AGE: Duration = Duration::from_millis(500);
/// A pull that took longer than this says the next may too: commit rather than hold the
/// transaction open through it.
const QUICK_PULL: Duration = Duration::from_millis(50);

/// The batches in the open transaction, kept until it commits so that a failed commit
/// can write them again.
struct Open {
    batches: Vec<(u64, Batch, bool)>,
    written: Written,
    documents: usize,
    bytes: usize,
    since: Instant,
}

impl Open {
    fn new() -> Self {
        Self {
            batches: Vec::new(),
            written: Written::default(),
            documents: 0,
            bytes: 0,
            since: Instant::now(),
        }
    }

    fn is_full(&self) -> bool {
        self.documents >= TXN_DOCUMENTS
            || self.bytes >= TXN_BYTES
            || self.since.elapsed() >= TXN_AGE
    }
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
    let mut open: Option<Open> = None;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(8)
        .with_jitter();
    // Whatever way the drive ends, the batches already written are committed first: a
    // stop keeps the progress made, and waiting on the source never holds a transaction.
    macro_rules! settle {
        () => {
            if let Err(ended) = commit_open(writer, &mut open, &mut total).await {
                return ended;
            }
        };
    }
    loop {
        if should_stop() {
            settle!();
            return Ended::Stopped;
        }
        let mut delays = backoff.build();
        let pulled = Instant::now();
        let batch = loop {
            match source.next_batch().await {
                Ok(batch) => break batch,
                Err(SourceError::RateLimited {
                    retry_after,
                    message,
                }) => {
                    settle!();
                    tracing::info!(?retry_after, %message, "the source is rate limiting this run; waiting");
                    tokio::time::sleep(retry_after).await;
                    if should_stop() {
                        return Ended::Stopped;
                    }
                }
                Err(e) if e.is_retriable() => match delays.next() {
                    Some(delay) => {
                        settle!();
                        tracing::warn!(error = %e, ?delay, "the source failed for now; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => {
                        settle!();
                        return Ended::GaveUp(e.to_string());
                    }
                },
                Err(e) => {
                    settle!();
                    return Ended::Failed(e);
                }
            }
        };
        let quick = pulled.elapsed() <= QUICK_PULL;
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
        if let Err(ended) = put_open(writer, &mut open, &mut total, seq, batch, done).await {
            return ended;
        }
        let full = open.as_ref().is_some_and(Open::is_full);
        if done || full || !quick {
            settle!();
        }
        if done {
            return Ended::SourceDone {
                batches: seq - start_seq,
                written: total,
            };
        }
    }
}

/// Puts batch `seq` in the open transaction (opening one if none is). A failure aborts
/// the transaction and writes its batches again in a new one, committed at once (see
/// [`rewrite`]), whose counts go to `total`.
async fn put_open(
    writer: &RunWriter,
    open: &mut Option<Open>,
    total: &mut Written,
    seq: u64,
    batch: Batch,
    done: bool,
) -> Result<(), Ended> {
    let fresh = open.is_none();
    let txn = open.get_or_insert_with(Open::new);
    let result = tokio::task::block_in_place(|| {
        if fresh {
            writer.begin()?;
        }
        writer.put(seq, &batch, done)
    });
    txn.documents += batch.documents.len();
    txn.bytes += batch.documents.iter().map(|d| d.text_len()).sum::<usize>();
    txn.batches.push((seq, batch, done));
    match result {
        Ok(written) => {
            add(&mut txn.written, written);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, seq, "writing a batch failed; writing the transaction again");
            tokio::task::block_in_place(|| writer.abort());
            let batches = std::mem::take(&mut txn.batches);
            *open = None;
            add(total, rewrite(writer, &batches).await?);
            Ok(())
        }
    }
}

/// Commits the open transaction, if any, and adds what it wrote to `total`. A failed
/// commit is aborted and its batches written again (see [`rewrite`]).
async fn commit_open(
    writer: &RunWriter,
    open: &mut Option<Open>,
    total: &mut Written,
) -> Result<(), Ended> {
    let Some(txn) = open.take() else {
        return Ok(());
    };
    match tokio::task::block_in_place(|| writer.commit()) {
        Ok(()) => add(total, txn.written),
        Err(e) => {
            tracing::warn!(error = %e, "committing batches failed; writing them again");
            tokio::task::block_in_place(|| writer.abort());
            add(total, rewrite(writer, &txn.batches).await?);
        }
    }
    Ok(())
}

fn add(total: &mut Written, more: Written) {
    total.documents += more.documents;
    total.deletions += more.deletions;
    total.failed += more.failed;
}

/// Writes `batches` again in a transaction of their own and commits it, three times with
/// a growing pause; then hands the run back (`GaveUp`) to resume from its last committed
/// checkpoint.
async fn rewrite(writer: &RunWriter, batches: &[(u64, Batch, bool)]) -> Result<Written, Ended> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(500 * attempts)).await;
        let result = tokio::task::block_in_place(|| {
            writer.begin()?;
            let mut written = Written::default();
            for (seq, batch, done) in batches {
                add(&mut written, writer.put(*seq, batch, *done)?);
            }
            writer.commit().map(|()| written)
        });
        match result {
            Ok(written) => return Ok(written),
            Err(e) => {
                tokio::task::block_in_place(|| writer.abort());
                if attempts >= 3 {
                    let first = batches.first().map_or(0, |b| b.0);
                    return Err(Ended::GaveUp(format!(
                        "batch {first} could not be written to Kafka ({e}); the run resumes \
                         from its last checkpoint"
                    )));
                }
                tracing::warn!(error = %e, attempts, "writing the batches again failed; retrying");
            }
        }
    }
}

/// Writes batch `seq` in a transaction of its own; a failure is retried as [`rewrite`]
/// does.
pub(super) async fn write_retrying(
    writer: &RunWriter,
    seq: u64,
    batch: Batch,
    done: bool,
) -> Result<Written, Ended> {
    match tokio::task::block_in_place(|| writer.write(seq, &batch, done)) {
        Ok(written) => Ok(written),
        Err(e) => {
            tracing::warn!(error = %e, seq, "writing a batch failed; retrying");
            rewrite(writer, &[(seq, batch, done)]).await
        }
    }
}
