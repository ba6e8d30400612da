use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use chrono::{SecondsFormat, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::{Delivery, Op, Result, Scope, Sink, SinkError};

/// The header row, in column order.
pub const COLUMNS: [&str; 9] = [
    "time",
    "op",
    "profile_id",
    "doc_id",
    "title",
    "source",
    "updated_at",
    "text",
    "metadata",
];

pub(crate) struct CsvSink {
    path: PathBuf,
}

impl CsvSink {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl Sink for CsvSink {
    fn deliver<'a>(
        &'a self,
        scope: &'a Scope,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Vec<Result<()>>> {
        async move {
            if batch.is_empty() {
                return Vec::new();
            }
            let result = match render_rows(scope, batch) {
                Ok(rows) => {
                    let path = self.path.clone();
                    tokio::task::spawn_blocking(move || append(&path, &rows))
                        .await
                        .unwrap_or_else(|_| {
                            Err(SinkError::transient(
                                "Writing the CSV file was interrupted; Tributary will retry the \
                                 batch.",
                            ))
                        })
                }
                Err(error) => Err(error),
            };
            // One write holds the whole batch, so it succeeds or fails as one.
            vec![result; batch.len()]
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<String>> {
        async move {
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || {
                append(&path, &[])?;
                Ok(format!("Tributary can append to {}.", path.display()))
            })
            .await
            .unwrap_or_else(|_| {
                Err(SinkError::transient(
                    "Checking the CSV file was interrupted; try the check again.",
                ))
            })
        }
        .boxed()
    }
}

fn writer() -> ::csv::Writer<Vec<u8>> {
    // RFC 4180: CRLF line ends, fields quoted only when they hold a comma, a quote or a
    // line break.
    ::csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

fn finish(writer: ::csv::Writer<Vec<u8>>) -> Result<Vec<u8>> {
    writer.into_inner().map_err(|_| {
        SinkError::permanent("Tributary could not encode the batch as CSV; report this as a bug.")
    })
}

fn encode_error(_: ::csv::Error) -> SinkError {
    SinkError::permanent("Tributary could not encode the batch as CSV; report this as a bug.")
}

fn header() -> Result<Vec<u8>> {
    let mut w = writer();
    w.write_record(COLUMNS).map_err(encode_error)?;
    finish(w)
}

/// All rows of a batch, encoded up front so that the file sees one write.
fn render_rows(scope: &Scope, batch: &[Delivery]) -> Result<Vec<u8>> {
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let profile_id = scope.profile_id.to_string();
    let mut w = writer();
    for delivery in batch {
        match &delivery.op {
            Op::Upsert(doc) => {
                let metadata = serde_json::to_string(&doc.metadata).map_err(|_| {
                    SinkError::permanent(format!(
                        "The metadata of document {} could not be encoded as JSON; report this \
                         as a bug.",
                        delivery.doc_id
                    ))
                })?;
                let updated_at = doc
                    .updated_at
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_default();
                let title = doc.title.as_deref().unwrap_or(&doc.semantic_identifier);
                w.write_record([
                    time.as_str(),
                    "upsert",
                    &profile_id,
                    &delivery.doc_id,
                    title,
                    &doc.source,
                    &updated_at,
                    &doc.joined_text(),
                    &metadata,
                ])
                .map_err(encode_error)?;
            }
            Op::Delete => {
                w.write_record([
                    time.as_str(),
                    "delete",
                    &profile_id,
                    &delivery.doc_id,
                    "",
                    "",
                    "",
                    "",
                    "",
                ])
                .map_err(encode_error)?;
            }
        }
    }
    finish(w)
}

/// One lock per file for the whole process: sinks of different targets (or a sink and
/// its own retry) may share a file, and rows must not interleave.
static FILE_LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock_for(path: &Path) -> Arc<Mutex<()>> {
    let mut locks = FILE_LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    locks.entry(path.to_path_buf()).or_default().clone()
}

/// Appends `rows`, with the header first when the file is new or empty.
fn append(path: &Path, rows: &[u8]) -> Result<()> {
    let io = |e: io::Error| io_error(path, &e);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(SinkError::permanent(format!(
            "The CSV path {} names no file; set the target's path to a file name.",
            path.display()
        )));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    fs::create_dir_all(parent).map_err(io)?;
    // Two spellings of one file (a symlinked directory, "./") must share a lock.
    let key = fs::canonicalize(parent).map_err(io)?.join(name);
    let lock = lock_for(&key);
    let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);

    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&key)
        .map_err(io)?;
    let is_empty = file.metadata().map_err(io)?.len() == 0;
    if rows.is_empty() {
        return Ok(());
    }
    let mut out = if is_empty { header()? } else { Vec::new() };
    out.extend_from_slice(rows);
    file.write_all(&out).map_err(io)?;
    file.flush().map_err(io)
}

fn io_error(path: &Path, error: &io::Error) -> SinkError {
    use io::ErrorKind::*;
    let path = path.display();
    match error.kind() {
        PermissionDenied | ReadOnlyFilesystem => SinkError::permanent(format!(
            "Tributary may not write the CSV file {path} ({error}); give the server write \
             access to it or change the target's path."
        )),
        IsADirectory | NotADirectory | InvalidFilename => SinkError::permanent(format!(
            "The CSV path {path} cannot be a file ({error}); change the target's path."
        )),
        _ => SinkError::transient(format!(
            "Tributary could not append to the CSV file {path} ({error}); it will retry. If \
             this keeps happening, check the disk."
        )),
    }
}
