//! A local directory tree: Markdown and text files as they are, HTML files as text.
//!
//! Document ids are paths relative to `root`, with `/`. Titles come from a Markdown
//! file's first `# ` heading, an HTML file's `<title>` (else its first `<h1>`), else the
//! file name; `updated_at` is the file's mtime.
//!
//! Files that are not UTF-8, bigger than `max_file_bytes` or unreadable are reported as
//! per-document failures; the run goes on.
//!
//! # Incremental runs and deletions
//!
//! The checkpoint is `{"since", "max_mtime", "after", "done"}`. A run records the newest
//! mtime its listing saw (capped at the run's start) as `max_mtime`; the next incremental
//! run reads the files modified at or after `max_mtime - 2 s`, so the newest files of the
//! last run are read again (mtimes can be that coarse). Files copied in with their old
//! mtime preserved (`cp -p`, `rsync -t`, archives) are not seen as changed: run a full
//! sync after such copies. Deleted files are found by pruning: `list_ids` lists every
//! matching file.
//!
//! A resumed run lists the tree again and goes on with the files whose id sorts after
//! `after`, the last file it handled.

mod config;
mod listing;
mod source;

pub use config::FilesystemConfig;

use super::{Capabilities, ConnectorKind, bundled_schema};

pub(crate) fn kind() -> ConnectorKind {
    super::kind(
        "filesystem",
        "Local files",
        "Markdown, text and HTML files in a directory tree on the worker's machine.",
        Capabilities {
            incremental: true,
            checkpoint: true,
            prune: true,
            permissions: false,
            estimate: true,
        },
        &[],
        bundled_schema(include_str!(
            "../../../../../schemas/connectors/filesystem.json"
        )),
        source::build,
    )
}
