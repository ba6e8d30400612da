//! The Airbyte source as a child process: its scratch files, its environment, stdout read
//! line by line and stderr kept (its end only) for the error when it fails.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout};
use tokio::task::JoinHandle;

use super::config::Command;
use crate::source::{Result, SourceError};

/// A message line this long is refused rather than buffered: it would be a broken source,
/// not a record. Lines of many megabytes (a record with an attachment) are fine.
const MAX_LINE: usize = 256 * 1024 * 1024;
/// How much of the end of stderr is kept for error messages.
const STDERR_TAIL: usize = 64 * 1024;
/// The environment a source inherits from Tributary; nothing else, since the server's
/// environment holds its own secrets (database URLs, key-encryption keys).
const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

/// Files written for one command (config, catalog, state), removed when dropped: after
/// the process ended, or with it when the source is dropped mid-run.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
    paths: Vec<PathBuf>,
}

impl Scratch {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            paths: Vec::new(),
        }
    }

    /// Writes `value` to a new file readable only by this user (it may hold secrets).
    pub(crate) async fn write(&mut self, name: &str, value: &Value) -> Result<PathBuf> {
        let fail = |e: std::io::Error, what: &str| SourceError::Failed {
            message: format!(
                "could not {what} in the work directory {} ({e}); check that it is writable",
                self.dir.display()
            ),
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| fail(e, "create it"))?;
        let seq = SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("airbyte-{}-{seq}-{name}.json", std::process::id()));
        let bytes = serde_json::to_vec(value).map_err(|e| SourceError::Failed {
            message: format!("could not write the Airbyte {name} file ({e})"),
        })?;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options
            .open(&path)
            .await
            .map_err(|e| fail(e, "create a file"))?;
        self.paths.push(path.clone());
        file.write_all(&bytes)
            .await
            .map_err(|e| fail(e, "write a file"))?;
        file.flush().await.map_err(|e| fail(e, "write a file"))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for path in &self.paths {
            // Best effort: a leftover file is in the run's own work directory.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A running Airbyte command. Dropping it kills the process and removes its files.
#[derive(Debug)]
pub(crate) struct Process {
    child: Child,
    stdout: BufReader<ChildStdout>,
    line: Vec<u8>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    _scratch: Scratch,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exit {
    pub(crate) success: bool,
    /// E.g. `exited with status 1`.
    pub(crate) description: String,
    /// The end of stderr, lossily decoded, not yet redacted.
    pub(crate) stderr: String,
}

pub(crate) fn spawn(
    command: &Command,
    env: &BTreeMap<String, String>,
    work_dir: &Path,
    args: Vec<OsString>,
    scratch: Scratch,
) -> Result<Process> {
    let Some((program, leading)) = command.split() else {
        return Err(SourceError::Config {
            message: "`command` is empty; set it to the Airbyte source's executable".to_owned(),
        });
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(leading)
        .args(args)
        .env_clear()
        .envs(
            INHERITED_ENV
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
        )
        .envs(env)
        .current_dir(work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            SourceError::Config {
                message: format!(
                    "could not start the Airbyte source {program} ({e}); check `command` (install the source, e.g. with scripts/airbyte-venv, and give the full path of its executable)"
                ),
            }
        }
        _ => SourceError::Failed {
            message: format!("could not start the Airbyte source {program} ({e})"),
        },
    })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(SourceError::Failed {
            message: "the Airbyte source started without its output pipes".to_owned(),
        });
    };
    let stderr = tokio::spawn(async move {
        let mut stderr = stderr;
        let mut tail = Vec::new();
        let mut chunk = vec![0_u8; 8192];
        loop {
            match stderr.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.extend_from_slice(&chunk[..n]);
                    if tail.len() > 2 * STDERR_TAIL {
                        tail.drain(..tail.len() - STDERR_TAIL);
                    }
                }
            }
        }
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
        tail
    });
    Ok(Process {
        child,
        // Records can be megabytes long; the buffer only sizes the reads, lines grow
        // in `line` as needed.
        stdout: BufReader::with_capacity(256 * 1024, stdout),
        line: Vec::new(),
        stderr: Some(stderr),
        _scratch: scratch,
    })
}

impl Process {
    /// The next stdout line without its line ending, or `None` at the end of output.
    /// Cancel-safe: a partly read line stays in `self.line`.
    pub(crate) async fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let available = self
                .stdout
                .fill_buf()
                .await
                .map_err(|e| SourceError::Failed {
                    message: format!("could not read the Airbyte source's output ({e})"),
                })?;
            if available.is_empty() {
                if self.line.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.line)));
            }
            let (used, complete) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&available[..i]);
                    (i + 1, true)
                }
                None => {
                    self.line.extend_from_slice(available);
                    (available.len(), false)
                }
            };
            self.stdout.consume(used);
            if self.line.len() > MAX_LINE {
                return Err(SourceError::Failed {
                    message: format!(
                        "the Airbyte source wrote a line longer than {} MiB, which is not a message Tributary can take; check the source",
                        MAX_LINE / 1024 / 1024
                    ),
                });
            }
            if complete {
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                return Ok(Some(std::mem::take(&mut self.line)));
            }
        }
    }

    /// Waits for the process to end and collects the end of its stderr.
    pub(crate) async fn finish(mut self) -> Exit {
        let status = self.child.wait().await;
        let stderr = match self.stderr.take() {
            // A grandchild may hold stderr open; its end is not worth waiting long for.
            Some(task) => match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(tail)) => String::from_utf8_lossy(&tail).into_owned(),
                _ => String::new(),
            },
            None => String::new(),
        };
        match status {
            Ok(status) => Exit {
                success: status.success(),
                description: describe(status),
                stderr,
            },
            Err(e) => Exit {
                success: false,
                description: format!("could not be waited for ({e})"),
                stderr,
            },
        }
    }
}

fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    format!("ended ({status})")
}
