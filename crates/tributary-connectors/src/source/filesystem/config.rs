//! The filesystem source's config: which directory, which files in it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A local directory tree of Markdown, text and HTML files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemConfig {
    /// The absolute path of the directory to index; document ids are relative to it.
    pub root: PathBuf,
    /// Globs over paths relative to `root` (with `/`) that select files. `*` stays within
    /// one directory, `**/` spans any number of them, including none.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Globs that drop files the include globs selected.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Bigger files are reported as per-document failures instead of being read.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Whether to follow symbolic links to files and directories (loops are detected).
    #[serde(default)]
    pub follow_symlinks: bool,
    /// Files per batch. A batch also ends once it holds 16 MiB of text.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
}

pub(crate) fn default_include() -> Vec<String> {
    ["**/*.md", "**/*.txt", "**/*.html", "**/*.htm"]
        .map(String::from)
        .to_vec()
}

pub(crate) const fn default_max_file_bytes() -> u64 {
    20 * 1024 * 1024
}

pub(crate) const fn default_batch_size() -> u32 {
    100
}

impl FilesystemConfig {
    /// `root` with every other field at its default.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            include: default_include(),
            exclude: Vec::new(),
            max_file_bytes: default_max_file_bytes(),
            follow_symlinks: false,
            batch_size: default_batch_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_an_example_and_fills_defaults() {
        let config: FilesystemConfig = serde_json::from_value(json!({
            "root": "/srv/docs",
            "exclude": ["drafts/**"]
        }))
        .unwrap();
        assert_eq!(config.root, PathBuf::from("/srv/docs"));
        assert_eq!(
            config.include,
            ["**/*.md", "**/*.txt", "**/*.html", "**/*.htm"]
        );
        assert_eq!(config.exclude, ["drafts/**"]);
        assert_eq!(config.max_file_bytes, 20 * 1024 * 1024);
        assert!(!config.follow_symlinks);
        assert_eq!(config.batch_size, 100);
    }

    #[test]
    fn generates_an_example_that_parses_back() {
        let config = FilesystemConfig::new("/srv/docs");
        let value = serde_json::to_value(&config).unwrap();
        assert_eq!(value["root"], "/srv/docs");
        assert_eq!(
            serde_json::from_value::<FilesystemConfig>(value).unwrap(),
            config
        );
        assert!(
            serde_json::from_value::<FilesystemConfig>(json!({"root": "/x", "globs": []})).is_err()
        );
    }
}
