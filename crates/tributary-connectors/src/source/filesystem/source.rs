//! The filesystem source: list once per run, then read the selected files in id order.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tributary_domain::document::{Document, DocumentFailure, MetadataValue};

use super::config::FilesystemConfig;
use super::listing::{self, Entry, Listing, Matcher};
use crate::source::html;
use crate::source::{Batch, BuildContext, Mode, Progress, Result, Source, SourceError, Start};

const SOURCE: &str = "filesystem";

/// Batches stop growing at this much text.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Files changed this long before the last run's newest one are read again: mtimes can be
/// as coarse as 2 s (FAT, some network filesystems).
const OVERLAP: Duration = Duration::seconds(2);

/// `since`: this run reads only files modified at or after it (`None`: all). `max_mtime`:
/// the newest mtime the listing saw, capped at the run's start, from which the next
/// incremental run derives its `since`. `after`: the id of the last file handled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Checkpoint {
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) max_mtime: Option<DateTime<Utc>>,
    pub(crate) after: Option<String>,
    pub(crate) done: u64,
}

pub(crate) struct FilesystemSource {
    config: Arc<FilesystemConfig>,
    matcher: Arc<Matcher>,
    now: DateTime<Utc>,
    /// Whether the run resumes, in which case `max_mtime` must not move: files changed
    /// since the crash but sorted before `after` are left for the next run to find.
    resuming: bool,
    checkpoint: Checkpoint,
    queue: Option<VecDeque<Entry>>,
    total: u64,
    warnings: Vec<String>,
    finished: bool,
}

pub(crate) fn build(ctx: BuildContext) -> Result<Box<dyn Source>> {
    let config: FilesystemConfig =
        serde_json::from_value(ctx.config).map_err(|e| SourceError::Config {
            message: format!(
                "the filesystem config does not parse ({e}); fix the profile's config."
            ),
        })?;
    Ok(Box::new(FilesystemSource::new(config, &ctx.start)?))
}

impl FilesystemSource {
    pub(crate) fn new(config: FilesystemConfig, start: &Start) -> Result<Self> {
        let matcher = Matcher::new(&config)?;
        if config.batch_size == 0 {
            return Err(SourceError::Config {
                message: "batch_size is 0; set it to 1 or more.".to_owned(),
            });
        }
        let previous = start
            .checkpoint
            .as_ref()
            .map(|value| {
                serde_json::from_value::<Checkpoint>(value.clone()).map_err(|e| {
                    SourceError::Config {
                        message: format!(
                            "the stored checkpoint is not one the filesystem source wrote ({e}); run a full sync to start over."
                        ),
                    }
                })
            })
            .transpose()?;
        let checkpoint = match previous {
            Some(cp) if start.resuming => cp,
            Some(cp) if start.mode == Mode::Incremental => Checkpoint {
                since: cp.max_mtime.map(|m| m - OVERLAP),
                max_mtime: cp.max_mtime,
                after: None,
                done: 0,
            },
            _ => Checkpoint::default(),
        };
        Ok(Self {
            config: Arc::new(config),
            matcher: Arc::new(matcher),
            now: start.now,
            resuming: start.resuming && start.checkpoint.is_some(),
            checkpoint,
            queue: None,
            total: 0,
            warnings: Vec::new(),
            finished: false,
        })
    }

    async fn listing(&self) -> Result<Listing> {
        let config = Arc::clone(&self.config);
        let matcher = Arc::clone(&self.matcher);
        tokio::task::spawn_blocking(move || listing::list(&config, &matcher))
            .await
            .map_err(|e| SourceError::Transient {
                message: format!("listing the directory stopped unexpectedly ({e})"),
            })?
    }

    async fn start(&mut self) -> Result<()> {
        let listing = self.listing().await?;
        self.warnings.extend(listing.warnings);
        if !self.resuming {
            let newest = listing.entries.iter().filter_map(|e| e.modified).max();
            // Capped at the run's start so a file dated in the future cannot hide the
            // changes made before that date.
            let newest = newest.map(|m| m.min(self.now));
            self.checkpoint.max_mtime = self.checkpoint.max_mtime.max(newest);
        }
        let since = self.checkpoint.since;
        let after = self.checkpoint.after.clone();
        let queue: VecDeque<Entry> = listing
            .entries
            .into_iter()
            .filter(|e| after.as_ref().is_none_or(|a| e.id > *a))
            .filter(|e| match (since, e.modified) {
                (Some(since), Some(modified)) => modified >= since,
                _ => true,
            })
            .collect();
        self.total = self.checkpoint.done + queue.len() as u64;
        self.queue = Some(queue);
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Batch>> {
        if self.finished {
            return Ok(None);
        }
        if self.queue.is_none() {
            self.start().await?;
        }
        let mut batch = Batch {
            warnings: std::mem::take(&mut self.warnings),
            ..Batch::default()
        };
        let max_files = self.config.batch_size as usize;
        let mut bytes = 0;
        let mut handled = 0;
        while handled < max_files && bytes < MAX_BATCH_BYTES {
            let Some(entry) = self.queue.as_mut().and_then(VecDeque::pop_front) else {
                break;
            };
            handled += 1;
            match read(&entry, self.config.max_file_bytes).await {
                Read::Document(doc) => {
                    bytes += doc.text_len();
                    batch.documents.push(*doc);
                }
                Read::Failure(message) => batch.failures.push(DocumentFailure {
                    id: entry.id.clone(),
                    link: None,
                    message,
                }),
                Read::Gone => batch.warnings.push(format!(
                    "{} disappeared during the run; the next prune removes it downstream.",
                    entry.id
                )),
            }
            self.checkpoint.done += 1;
            self.checkpoint.after = Some(entry.id);
        }
        self.finished = self.queue.as_ref().is_none_or(VecDeque::is_empty);
        batch.checkpoint = serde_json::json!(self.checkpoint);
        batch.progress = Progress {
            done: self.checkpoint.done,
            total: Some(self.total),
        };
        Ok(Some(batch))
    }
}

enum Read {
    Document(Box<Document>),
    Failure(String),
    Gone,
}

async fn read(entry: &Entry, max_bytes: u64) -> Read {
    if entry.size > max_bytes {
        return Read::Failure(too_big(entry.size, max_bytes));
    }
    let bytes = match tokio::fs::read(&entry.path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Read::Gone,
        Err(e) => {
            return Read::Failure(format!(
                "The file cannot be read ({e}); let the Tributary worker read it or exclude it."
            ));
        }
    };
    // The file may have grown since it was listed.
    if bytes.len() as u64 > max_bytes {
        return Read::Failure(too_big(bytes.len() as u64, max_bytes));
    }
    match to_document(entry, bytes) {
        Ok(doc) => Read::Document(Box::new(doc)),
        Err(message) => Read::Failure(message),
    }
}

fn too_big(size: u64, max: u64) -> String {
    format!(
        "The file is {size} bytes, over the max_file_bytes limit of {max}; raise the limit or exclude the file."
    )
}

/// Text files must be UTF-8: a lossy decode of another encoding would index mojibake
/// without anyone noticing, whereas a failure names the file to convert.
pub(crate) fn to_document(entry: &Entry, bytes: Vec<u8>) -> Result<Document, String> {
    let mut text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "The file is not UTF-8 text (invalid byte at offset {}); convert it to UTF-8 or exclude it.",
            e.utf8_error().valid_up_to()
        )
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    let name = entry.id.rsplit('/').next().unwrap_or(&entry.id);
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let (title, text) = match extension.as_str() {
        "html" | "htm" | "xhtml" => {
            let page = html::parse(&text);
            (page.title, page.text)
        }
        "md" | "markdown" | "mdx" => (markdown_title(&text), text),
        _ => (None, text),
    };
    let mut doc = Document::text(
        SOURCE,
        entry.id.clone(),
        title.unwrap_or_else(|| name.to_owned()),
        text,
    );
    doc.updated_at = entry.modified;
    if !extension.is_empty() {
        doc.metadata
            .insert("extension".to_owned(), MetadataValue::One(extension));
    }
    Ok(doc)
}

/// The first `# ` heading outside fenced code blocks.
fn markdown_title(text: &str) -> Option<String> {
    let mut fenced = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if !fenced && let Some(title) = line.strip_prefix("# ") {
            let title = title.trim().trim_end_matches('#').trim();
            if !title.is_empty() {
                return Some(title.to_owned());
            }
        }
    }
    None
}

impl Source for FilesystemSource {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>>> {
        Box::pin(self.next())
    }

    fn list_ids(&mut self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let listing = self.listing().await?;
            Ok(listing.entries.into_iter().map(|e| e.id).collect())
        })
    }

    fn check(&mut self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let listing = self.listing().await?;
            let bytes: u64 = listing.entries.iter().map(|e| e.size).sum();
            let too_big = listing
                .entries
                .iter()
                .filter(|e| e.size > self.config.max_file_bytes)
                .count();
            let mut found = format!(
                "{} files ({bytes} bytes) under {} match the include patterns",
                listing.entries.len(),
                self.config.root.display()
            );
            if too_big > 0 {
                found.push_str(&format!(
                    "; {too_big} of them are over max_file_bytes and will be reported as failures"
                ));
            }
            found.push('.');
            Ok(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.to_owned(),
            path: PathBuf::from("/x").join(id),
            size: 0,
            modified: None,
        }
    }

    #[test]
    fn markdown_title_is_the_first_h1_outside_code() {
        let text = "intro\n```\n# not a title\n```\n## Sub\n# Real title #\n# Second";
        assert_eq!(markdown_title(text).as_deref(), Some("Real title"));
        assert_eq!(markdown_title("no heading"), None);
    }

    #[test]
    fn documents_take_their_title_from_content_or_name() {
        let doc =
            to_document(&entry("a/readme.md"), b"\xef\xbb\xbf# Hello\nbody".to_vec()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("Hello"));
        assert_eq!(doc.sections[0].text, "# Hello\nbody");
        let doc = to_document(&entry("notes.txt"), b"# not markdown".to_vec()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("notes.txt"));
        let doc = to_document(
            &entry("p.HTML"),
            b"<title>Page</title><p>Hi <b>there</b></p>".to_vec(),
        )
        .unwrap();
        assert_eq!(doc.title.as_deref(), Some("Page"));
        assert_eq!(doc.sections[0].text, "Hi there");
        assert_eq!(doc.metadata["extension"], MetadataValue::One("html".into()));
    }

    #[test]
    fn non_utf8_text_is_a_failure_naming_the_offset() {
        let message = to_document(&entry("latin1.txt"), b"caf\xe9".to_vec()).unwrap_err();
        assert!(message.contains("offset 3"), "{message}");
        assert!(message.contains("convert it to UTF-8"), "{message}");
    }
}
