use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Result, SinkError};

/// Where a CSV target writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The file to append to. A relative path resolves under the server's data directory.
    pub path: PathBuf,
}

impl CsvConfig {
    /// Refuses `..`, so a relative path cannot climb out of the data directory.
    pub(crate) fn check_path(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(SinkError::permanent(
                "The csv target's path is empty; set it to a file name such as exports/docs.csv.",
            ));
        }
        if self.path.components().any(|c| c == Component::ParentDir) {
            return Err(SinkError::permanent(
                "The csv target's path contains \"..\"; give a path inside the data directory \
                 or an absolute path without \"..\".",
            ));
        }
        Ok(())
    }

    pub(crate) fn resolve(&self, data_dir: &Path) -> PathBuf {
        if self.path.is_absolute() {
            self.path.clone()
        } else {
            data_dir.join(&self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_an_example() {
        let config: CsvConfig =
            serde_json::from_value(json!({ "path": "exports/docs.csv" })).unwrap();
        assert_eq!(config.path, PathBuf::from("exports/docs.csv"));
        assert!(serde_json::from_value::<CsvConfig>(json!({ "path": "a", "x": 1 })).is_err());
    }

    #[test]
    fn generates_one_and_resolves_relative_paths_under_the_data_dir() {
        let config = CsvConfig {
            path: "out/a.csv".into(),
        };
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            json!({ "path": "out/a.csv" })
        );
        assert_eq!(
            config.resolve(Path::new("/data")),
            PathBuf::from("/data/out/a.csv")
        );
        let absolute = CsvConfig {
            path: "/tmp/a.csv".into(),
        };
        assert_eq!(
            absolute.resolve(Path::new("/data")),
            PathBuf::from("/tmp/a.csv")
        );
    }

    #[test]
    fn refuses_paths_that_climb_or_are_empty() {
        let climbing = CsvConfig {
            path: "../etc/x.csv".into(),
        };
        assert!(climbing.check_path().is_err());
        let empty = CsvConfig { path: "".into() };
        assert!(empty.check_path().is_err());
    }
}
