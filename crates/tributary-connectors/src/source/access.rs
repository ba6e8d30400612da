//! What the operator lets profiles reach on the machine that runs them.
//!
//! Two kinds touch the worker's own machine: `filesystem` reads any directory the worker
//! can, and `airbyte` runs a program. A curator of any org configures profiles, so
//! without limits a curator could read the server's files or run any program on it.
//! The operator names what is allowed (`TRIBUTARY_FILESYSTEM_ROOTS`,
//! `TRIBUTARY_AIRBYTE_COMMANDS`); nothing is allowed until they do, and `*` allows
//! anything (one trusted team on its own machine).
//!
//! The API checks a profile's config when it is created, changed or checked, and the
//! worker again before every run, since commands may reach Kafka without the API.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::SourceError;
use super::airbyte::{AirbyteConfig, Command};
use super::filesystem::FilesystemConfig;

/// A list the operator sets: nothing, some entries, or anything (`*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Allowed<T> {
    #[default]
    Nothing,
    Only(Vec<T>),
    Anything,
}

impl<T> Allowed<T> {
    /// Parses a comma-separated setting: empty allows nothing, `*` anything.
    fn parse(text: &str, entry: impl Fn(&str) -> T) -> Self {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.contains(&"*") {
            Self::Anything
        } else if entries.is_empty() {
            Self::Nothing
        } else {
            Self::Only(entries.into_iter().map(entry).collect())
        }
    }
}

/// The operator's limits on `filesystem` and `airbyte` profiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAccess {
    /// Directories whose trees `filesystem` profiles may read.
    pub filesystem_roots: Allowed<PathBuf>,
    /// Commands `airbyte` profiles may run: an exact command line (program, then the
    /// arguments before the Airbyte command, separated by spaces), or a directory ending
    /// in `/` whose programs may run without arguments (a virtual environment's `bin/`).
    pub airbyte_commands: Allowed<String>,
}

/// Environment variables that make an allowed program run other code.
const CODE_ENV: &[&str] = &[
    "LD_",
    "DYLD_",
    "PYTHON",
    "PATH",
    "NODE_OPTIONS",
    "BASH_ENV",
    "ENV",
    "PERL5",
    "RUBYOPT",
    "JAVA_TOOL_OPTIONS",
];

impl LocalAccess {
    /// Everything allowed: for tests and a single trusted team.
    pub fn anything() -> Self {
        Self {
            filesystem_roots: Allowed::Anything,
            airbyte_commands: Allowed::Anything,
        }
    }

    /// From the two settings' texts (comma-separated; `*` for anything).
    pub fn from_settings(filesystem_roots: &str, airbyte_commands: &str) -> Self {
        Self {
            filesystem_roots: Allowed::parse(filesystem_roots, |root| {
                let root = PathBuf::from(root);
                // Compare like with like: the config's root is resolved the same way.
                std::fs::canonicalize(&root).unwrap_or_else(|_| normalize(&root))
            }),
            airbyte_commands: Allowed::parse(airbyte_commands, str::to_owned),
        }
    }

    /// Whether a profile of `kind` with `config` (already valid against the kind's schema)
    /// stays within the limits; a config error saying what to change if not.
    pub fn permit(&self, kind: &str, config: &Value) -> Result<(), SourceError> {
        match kind {
            "filesystem" => self.permit_filesystem(config),
            "airbyte" => self.permit_airbyte(config),
            _ => Ok(()),
        }
    }

    fn permit_filesystem(&self, config: &Value) -> Result<(), SourceError> {
        let roots = match &self.filesystem_roots {
            Allowed::Anything => return Ok(()),
            Allowed::Nothing => {
                return Err(refused(
                    "this server allows no filesystem profiles; its operator can allow \
                     directories with TRIBUTARY_FILESYSTEM_ROOTS (comma-separated paths)",
                ));
            }
            Allowed::Only(roots) => roots,
        };
        let config: FilesystemConfig = serde_json::from_value(config.clone())
            .map_err(|e| refused(&format!("the filesystem config is not valid ({e})")))?;
        if config.follow_symlinks {
            return Err(refused(
                "`follow_symlinks` is not allowed on this server: a link could lead out of \
                 the directories its operator allows; set it to false",
            ));
        }
        let root = std::fs::canonicalize(&config.root).unwrap_or_else(|_| normalize(&config.root));
        if roots.iter().any(|allowed| root.starts_with(allowed)) {
            return Ok(());
        }
        Err(refused(&format!(
            "`root` {} is outside the directories this server allows ({}); choose a \
             directory under one of them, or ask the operator to add it to \
             TRIBUTARY_FILESYSTEM_ROOTS",
            config.root.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    fn permit_airbyte(&self, config: &Value) -> Result<(), SourceError> {
        let allowed = match &self.airbyte_commands {
            Allowed::Anything => return Ok(()),
            Allowed::Nothing => {
                return Err(refused(
                    "this server allows no airbyte profiles; its operator can allow Airbyte \
                     sources with TRIBUTARY_AIRBYTE_COMMANDS (comma-separated commands, or \
                     directories ending in /)",
                ));
            }
            Allowed::Only(allowed) => allowed,
        };
        let config = AirbyteConfig::from_value(config.clone())?;
        if let Some(name) = config.env.keys().find(|name| {
            CODE_ENV
                .iter()
                .any(|bad| name.to_ascii_uppercase().starts_with(bad))
        }) {
            return Err(refused(&format!(
                "`env.{name}` is not allowed on this server: it could make the source run \
                 other code; remove it"
            )));
        }
        let line = match &config.command {
            Command::Program(program) => program.clone(),
            Command::Argv(argv) => argv.join(" "),
        };
        let program = match &config.command {
            Command::Program(program) => Some(normalize(Path::new(program))),
            Command::Argv(_) => None,
        };
        let permitted = allowed.iter().any(|entry| {
            *entry == line
                || entry.ends_with('/')
                    && program.as_ref().is_some_and(|p| {
                        p.starts_with(normalize(Path::new(entry))) && p.is_absolute()
                    })
        });
        if permitted {
            return Ok(());
        }
        Err(refused(&format!(
            "`command` {line:?} is not one this server allows ({}); use one of them, or ask \
             the operator to add it to TRIBUTARY_AIRBYTE_COMMANDS",
            allowed.join(", ")
        )))
    }
}

fn refused(message: &str) -> SourceError {
    SourceError::Config {
        message: message.to_owned(),
    }
}

/// `path` without `.` and with `..` applied, without touching the disk (for paths that
/// do not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(result: Result<(), SourceError>) -> String {
        match result {
            Err(SourceError::Config { message }) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_allowed_until_the_operator_says_so_and_star_allows_anything() {
        let none = LocalAccess::from_settings("", " ");
        let fs = json!({ "root": "/srv/docs" });
        let ab = json!({ "command": "/opt/faker/bin/source-faker" });
        assert!(message(none.permit("filesystem", &fs)).contains("TRIBUTARY_FILESYSTEM_ROOTS"));
        assert!(message(none.permit("airbyte", &ab)).contains("TRIBUTARY_AIRBYTE_COMMANDS"));
        assert!(none.permit("synthetic", &json!({ "count": 1 })).is_ok());
        assert!(none.permit("web", &json!({ "url": "https://x" })).is_ok());

        let all = LocalAccess::from_settings("*", "/x, *");
        assert_eq!(all, LocalAccess::anything());
        assert!(all.permit("filesystem", &fs).is_ok());
        assert!(
            all.permit(
                "airbyte",
                &json!({ "command": ["sh", "-c", "x"], "env": { "LD_PRELOAD": "y" } })
            )
            .is_ok()
        );
    }

    #[test]
    fn filesystem_roots_must_lie_under_an_allowed_directory() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(allowed.join("team")).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        let access = LocalAccess::from_settings(&format!("{},/nonexistent", allowed.display()), "");
        let root = |p: PathBuf| json!({ "root": p });
        assert!(access.permit("filesystem", &root(allowed.clone())).is_ok());
        assert!(
            access
                .permit("filesystem", &root(allowed.join("team")))
                .is_ok()
        );
        // Not yet created: judged by its path.
        assert!(
            access
                .permit("filesystem", &root(allowed.join("later")))
                .is_ok()
        );
        let outside = message(access.permit("filesystem", &root(dir.path().join("other"))));
        assert!(outside.contains("outside the directories"), "{outside}");
        // `..` cannot climb out, and neither can a link.
        let climb = allowed.join("team/../../other");
        assert!(access.permit("filesystem", &root(climb)).is_err());
        std::os::unix::fs::symlink(dir.path().join("other"), allowed.join("link")).unwrap();
        assert!(
            access
                .permit("filesystem", &root(allowed.join("link")))
                .is_err()
        );
        let follow = json!({ "root": allowed, "follow_symlinks": true });
        assert!(message(access.permit("filesystem", &follow)).contains("follow_symlinks"));
    }

    #[test]
    fn airbyte_commands_must_be_listed_exactly_or_live_in_an_allowed_directory() {
        let access = LocalAccess::from_settings(
            "",
            "/opt/venvs/faker/bin/source-faker, python3 /opt/sources/main.py, /opt/airbyte/",
        );
        let command = |c: Value| json!({ "command": c });
        for ok in [
            json!("/opt/venvs/faker/bin/source-faker"),
            json!(["python3", "/opt/sources/main.py"]),
            json!("/opt/airbyte/source-github/bin/source-github"),
        ] {
            assert!(
                access.permit("airbyte", &command(ok.clone())).is_ok(),
                "{ok}"
            );
        }
        for refused in [
            json!("/usr/bin/python3"),
            json!(["python3", "-c", "import os"]),
            json!(["/opt/airbyte/x", "--extra"]),
            json!("/opt/airbyte/../../bin/sh"),
            json!("opt/airbyte/relative"),
        ] {
            let why = message(access.permit("airbyte", &command(refused.clone())));
            assert!(
                why.contains("TRIBUTARY_AIRBYTE_COMMANDS"),
                "{refused}: {why}"
            );
        }
        let preload = json!({
            "command": "/opt/venvs/faker/bin/source-faker",
            "env": { "ld_preload": "/tmp/evil.so" }
        });
        assert!(message(access.permit("airbyte", &preload)).contains("env.ld_preload"));
        let fine_env = json!({
            "command": "/opt/venvs/faker/bin/source-faker",
            "env": { "FAKER_SEED": "1" }
        });
        assert!(access.permit("airbyte", &fine_env).is_ok());
    }
}
