//! Listing the files a filesystem config selects, sorted by id so runs are repeatable.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::config::FilesystemConfig;
use crate::source::{Result, SourceError};

/// One selected file, as the listing saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The path relative to the root, with `/`: the document id.
    pub(crate) id: String,
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    pub(crate) modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) entries: Vec<Entry>,
    pub(crate) warnings: Vec<String>,
}

/// The include and exclude globs, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    include: GlobSet,
    exclude: GlobSet,
}

impl Matcher {
    pub(crate) fn new(config: &FilesystemConfig) -> Result<Self> {
        Ok(Self {
            include: glob_set("include", &config.include)?,
            exclude: glob_set("exclude", &config.exclude)?,
        })
    }

    pub(crate) fn is_match(&self, id: &str) -> bool {
        self.include.is_match(id) && !self.exclude.is_match(id)
    }
}

fn glob_set(field: &str, patterns: &[String]) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| SourceError::Config {
                message: format!(
                    "the {field} pattern {pattern:?} is not a valid glob ({e}); fix or remove it."
                ),
            })?;
        set.add(glob);
    }
    set.build().map_err(|e| SourceError::Config {
        message: format!("the {field} patterns cannot be compiled ({e}); simplify them."),
    })
}

/// Checks that `root` is an absolute path to a readable directory.
pub(crate) fn check_root(root: &Path) -> Result<()> {
    let config = |message: String| Err(SourceError::Config { message });
    if !root.is_absolute() {
        return config(format!(
            "root {} is not an absolute path; give the full path of the directory.",
            root.display()
        ));
    }
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => config(format!(
            "root {} is a file, not a directory; point root at the directory that holds the documents.",
            root.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => config(format!(
            "root directory {} does not exist; create it, mount it, or fix root.",
            root.display()
        )),
        Err(e) => config(format!(
            "root directory {} cannot be read ({e}); let the Tributary worker read it.",
            root.display()
        )),
    }
}

/// Walks the tree under the root. Blocking: run it off the async threads.
pub(crate) fn list(config: &FilesystemConfig, matcher: &Matcher) -> Result<Listing> {
    check_root(&config.root)?;
    let mut listing = Listing::default();
    let mut symlinks = 0usize;
    let walk = WalkDir::new(&config.root)
        .follow_links(config.follow_symlinks)
        .min_depth(1);
    for item in walk {
        let entry = match item {
            Ok(entry) => entry,
            Err(e) => {
                let at = e
                    .path()
                    .and_then(|p| p.strip_prefix(&config.root).ok())
                    .map_or_else(String::new, |p| format!(" at {}", p.display()));
                listing.warnings.push(format!(
                    "Skipped part of the tree{at}: {e}. Fix its permissions or exclude it."
                ));
                continue;
            }
        };
        if entry.path_is_symlink() && !config.follow_symlinks {
            symlinks += 1;
            continue;
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(id) = relative_id(&config.root, entry.path()) else {
            listing.warnings.push(format!(
                "Skipped a file whose name is not UTF-8 under {}; rename it to index it.",
                entry
                    .path()
                    .parent()
                    .and_then(|p| p.strip_prefix(&config.root).ok())
                    .map_or_else(|| ".".to_owned(), |p| p.display().to_string())
            ));
            continue;
        };
        if !matcher.is_match(&id) {
            continue;
        }
        let (size, modified) = match entry.metadata() {
            Ok(meta) => (meta.len(), meta.modified().ok().map(DateTime::<Utc>::from)),
            Err(e) => {
                listing
                    .warnings
                    .push(format!("Skipped {id}: its metadata cannot be read ({e})."));
                continue;
            }
        };
        listing.entries.push(Entry {
            id,
            path: entry.into_path(),
            size,
            modified,
        });
    }
    if symlinks > 0 {
        listing.warnings.push(format!(
            "Skipped {symlinks} symbolic link(s); set follow_symlinks to index what they point to."
        ));
    }
    // Plain string order (not the walk's per-directory order) so `after` in the
    // checkpoint is a simple comparison.
    listing.entries.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(listing)
}

fn relative_id(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let mut id = String::new();
    for part in relative.components() {
        if !id.is_empty() {
            id.push('/');
        }
        id.push_str(part.as_os_str().to_str()?);
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_globs_match_at_any_depth_and_exclude_wins() {
        let mut config = FilesystemConfig::new("/srv");
        config.exclude = vec!["drafts/**".into(), "**/*.min.html".into()];
        let matcher = Matcher::new(&config).unwrap();
        assert!(matcher.is_match("a.md"));
        assert!(matcher.is_match("x/y/z.htm"));
        assert!(!matcher.is_match("a.pdf"));
        assert!(!matcher.is_match("drafts/a.md"));
        assert!(matcher.is_match("notes/drafts/a.md"));
        assert!(!matcher.is_match("x/page.min.html"));
    }

    #[test]
    fn a_bad_glob_is_a_config_error() {
        let mut config = FilesystemConfig::new("/srv");
        config.include = vec!["docs/[".into()];
        let err = Matcher::new(&config).unwrap_err();
        assert!(matches!(err, SourceError::Config { .. }), "{err}");
        assert!(err.to_string().contains("docs/["), "{err}");
    }

    #[test]
    fn root_must_be_an_absolute_existing_directory() {
        assert!(check_root(Path::new("relative/dir")).is_err());
        let err = check_root(Path::new("/definitely/not/here/tributary")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
