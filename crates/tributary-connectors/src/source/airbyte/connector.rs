//! One Airbyte source with its config and credential: the `spec`, `check` and `discover`
//! commands, and what every command shares (starting the process, logs, errors, config
//! updates, redaction).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::config::AirbyteConfig;
use super::credential;
use super::process::{self, Exit, Process, Scratch};
use super::protocol::{
    DiscoveredStream, FailureType, Line, LogLevel, Message, Trace, TraceError, parse_line,
};
use super::redact::{Redactor, clip};
use crate::source::{Result, SourceError};

/// Longest source message quoted in an error, a warning or a log line.
const MAX_QUOTE: usize = 4000;

/// An Airbyte source ready to run: its config merged with the credential, and the secrets
/// to keep out of everything it reports.
pub struct AirbyteConnector {
    config: AirbyteConfig,
    credential: Option<Value>,
    /// The config the source is given: `config.config` plus the credential, or what the
    /// source last sent in a CONTROL message.
    source_config: Value,
    redactor: Redactor,
    work_dir: PathBuf,
    credential_update: Option<Value>,
}

impl std::fmt::Debug for AirbyteConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AirbyteConnector")
            .field("command", &self.config.command)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

/// A command's process and what it reported besides its answer.
pub(crate) struct Session {
    pub(crate) process: Process,
    errors: Vec<TraceError>,
    last_error_log: Option<String>,
}

/// How a command ended, with the errors it reported on the way.
pub(crate) struct Finished {
    exit: Exit,
    errors: Vec<TraceError>,
    last_error_log: Option<String>,
}

impl Session {
    /// Waits for the process to end.
    pub(crate) async fn finish(self) -> Finished {
        Finished {
            exit: self.process.finish().await,
            errors: self.errors,
            last_error_log: self.last_error_log,
        }
    }
}

impl AirbyteConnector {
    /// `credential` is the profile's credential with its secrets decrypted; `work_dir`
    /// receives the config, catalog and state files (mode 0600) while a command runs.
    pub fn new(
        config: AirbyteConfig,
        credential: Option<Value>,
        work_dir: PathBuf,
    ) -> Result<Self> {
        config.validate()?;
        let source_config = credential::merge(
            &config.config,
            credential.as_ref(),
            config.credential_fields.as_ref(),
        )?;
        let mut redactor = Redactor::default();
        if let Some(c) = &credential {
            redactor.add_credential(c);
        }
        Ok(Self {
            config,
            credential,
            source_config,
            redactor,
            work_dir,
            credential_update: None,
        })
    }

    pub fn config(&self) -> &AirbyteConfig {
        &self.config
    }

    pub(crate) fn work_dir(&self) -> &std::path::Path {
        &self.work_dir
    }

    /// The credential the source handed back in a CONTROL message (a refreshed token),
    /// not yet taken: the full credential value, to store in place of the old one.
    pub fn take_credential_update(&mut self) -> Option<Value> {
        self.credential_update.take()
    }

    /// The source's `connectionSpecification`: the JSON Schema of its config.
    pub async fn spec(&mut self) -> Result<Value> {
        let (answer, _) = self.run_command("spec").await?;
        match answer {
            Some(Message::Spec(spec)) => Ok(spec),
            _ => Err(self.missing("spec", "SPEC")),
        }
    }

    /// Runs `check`: `Ok` with the source's message when it accepts the config and
    /// credential, [`SourceError::Auth`] when its message is about the credential,
    /// [`SourceError::Config`] otherwise.
    pub async fn check(&mut self) -> Result<String> {
        let (answer, _) = self.run_command("check").await?;
        match answer {
            Some(Message::ConnectionStatus {
                succeeded: true,
                message,
            }) => Ok(if message.is_empty() {
                "the Airbyte source accepted the config".to_owned()
            } else {
                format!(
                    "the Airbyte source accepted the config: {}",
                    self.quote(&message)
                )
            }),
            Some(Message::ConnectionStatus {
                succeeded: false,
                message,
            }) => {
                let message = if message.is_empty() {
                    "the Airbyte source's check failed without saying why".to_owned()
                } else {
                    self.quote(&message)
                };
                Err(if looks_like_auth(&message) {
                    SourceError::Auth {
                        message: format!("{message}; fix or re-authorize the credential"),
                    }
                } else {
                    SourceError::Config {
                        message: format!("{message}; fix the profile's `config`"),
                    }
                })
            }
            _ => Err(self.missing("check", "CONNECTION_STATUS")),
        }
    }

    /// The streams the source offers with this config.
    pub async fn discover(&mut self) -> Result<Vec<DiscoveredStream>> {
        let (answer, _) = self.run_command("discover").await?;
        match answer {
            Some(Message::Catalog(streams)) => Ok(streams),
            _ => Err(self.missing("discover", "CATALOG")),
        }
    }

    fn missing(&self, command: &str, message: &str) -> SourceError {
        SourceError::Failed {
            message: format!(
                "the Airbyte source's `{command}` ended without a {message} message; check that `command` runs an Airbyte source"
            ),
        }
    }

    /// Runs a short command under `timeout_secs` and returns its answer (the last SPEC,
    /// CATALOG or CONNECTION_STATUS message) and the process's exit.
    async fn run_command(&mut self, command: &'static str) -> Result<(Option<Message>, Exit)> {
        let mut scratch = Scratch::new(&self.work_dir);
        let mut args: Vec<OsString> = vec![command.into()];
        if command != "spec" {
            let path = scratch.write("config", &self.source_config).await?;
            args.extend(["--config".into(), path.into()]);
        }
        let mut session = self.spawn(args, scratch)?;
        let limit = Duration::from_secs(self.config.timeout_secs);
        let mut answer = None;
        let read = tokio::time::timeout(limit, async {
            while let Some(line) = session.process.next_line().await? {
                match parse_line(&line) {
                    Line::NotAMessage { reason } => {
                        tracing::debug!(
                            command,
                            "skipped a line of the Airbyte source's output: {reason}"
                        );
                    }
                    Line::Message(m) => match self.observe(&mut session, m) {
                        Some(Message::ConnectorConfig(c)) => {
                            if let Some(w) = self.apply_control(c) {
                                tracing::warn!(command, "{w}");
                            }
                        }
                        Some(
                            m @ (Message::Spec(_)
                            | Message::Catalog(_)
                            | Message::ConnectionStatus { .. }),
                        ) => {
                            answer = Some(m);
                        }
                        _ => {}
                    },
                }
            }
            Ok::<_, SourceError>(())
        })
        .await;
        match read {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(SourceError::Transient {
                    message: format!(
                        "the Airbyte source's `{command}` did not finish within {}s (it was stopped); raise `timeout_secs` if the source is slow, or check that it can reach its service",
                        limit.as_secs()
                    ),
                });
            }
        }
        let exit = self.outcome(command, session.finish().await)?;
        Ok((answer, exit))
    }

    /// Starts a command with the profile's command line and environment.
    pub(crate) fn spawn(&self, args: Vec<OsString>, scratch: Scratch) -> Result<Session> {
        let process = process::spawn(
            &self.config.command,
            &self.config.env,
            &self.work_dir,
            args,
            scratch,
        )?;
        Ok(Session {
            process,
            errors: Vec::new(),
            last_error_log: None,
        })
    }

    /// Writes the config file of a command into `scratch`.
    pub(crate) async fn write_config(&self, scratch: &mut Scratch) -> Result<PathBuf> {
        scratch.write("config", &self.source_config).await
    }

    /// Handles what any command may send (logs, errors, traces) and hands back the rest.
    pub(crate) fn observe(&self, session: &mut Session, message: Message) -> Option<Message> {
        match message {
            Message::Log { level, message } => {
                let text = self.quote(&message);
                if level == LogLevel::Error {
                    session.last_error_log = Some(text.clone());
                }
                log(level, &text);
                None
            }
            Message::Trace(Trace::Error(e)) => {
                tracing::warn!(
                    "the Airbyte source reported an error: {}",
                    self.quote(&e.message)
                );
                session.errors.push(e);
                None
            }
            Message::Trace(Trace::Other) | Message::Other => None,
            other => Some(other),
        }
    }

    /// Adopts a config the source rewrote (CONTROL `CONNECTOR_CONFIG`), and keeps the
    /// credential's part of it as the credential update. Returns a warning when part of
    /// the change cannot be kept.
    pub(crate) fn apply_control(&mut self, new_config: Value) -> Option<String> {
        if !new_config.is_object() {
            return Some("the Airbyte source sent an updated config that is not a JSON object; it was ignored".to_owned());
        }
        // New values in a rewritten config are mostly fresh tokens.
        add_changed_strings(&mut self.redactor, &self.source_config, &new_config, "");
        let old_config = std::mem::replace(&mut self.source_config, new_config);
        let Some(credential) = &self.credential else {
            return (old_config != self.source_config).then(|| {
                "the Airbyte source updated its config (e.g. a refreshed token), but the profile has no credential to keep it in, so the update lasts for this run only; keep the source's secrets in a credential".to_owned()
            });
        };
        let fields = self.config.credential_fields.as_ref();
        let updated = credential::project(credential, fields, &self.source_config);
        if updated != *credential {
            self.credential = Some(updated.clone());
            self.credential_update = Some(updated.clone());
        }
        let kept = credential::merge(&self.config.config, Some(&updated), fields).ok();
        let lost: Vec<&str> = match (&self.source_config, &kept) {
            (Value::Object(new), Some(Value::Object(kept))) => new
                .iter()
                .filter(|(k, v)| kept.get(*k) != Some(*v))
                .map(|(k, _)| k.as_str())
                .collect(),
            _ => Vec::new(),
        };
        (!lost.is_empty()).then(|| {
            format!(
                "the Airbyte source changed config fields that are not part of the credential ({}); they are used for this run only, so update the profile's `config` to keep them",
                lost.join(", ")
            )
        })
    }

    /// A source message fit for an error, a warning or a log: without secrets, clipped.
    pub(crate) fn quote(&self, text: &str) -> String {
        clip(&self.redactor.redact(text), MAX_QUOTE, false)
    }

    /// The exit of a command that succeeded: no error reported, exit status 0. Anything
    /// else is the error to return.
    pub(crate) fn outcome(&self, command: &str, finished: Finished) -> Result<Exit> {
        if finished.errors.is_empty() && finished.exit.success {
            Ok(finished.exit)
        } else {
            Err(self.failure(
                command,
                &finished.errors,
                finished.last_error_log.as_deref(),
                &finished.exit,
            ))
        }
    }

    /// The error for a command that reported errors or exited unsuccessfully.
    pub(crate) fn failure(
        &self,
        command: &str,
        errors: &[TraceError],
        last_error_log: Option<&str>,
        exit: &Exit,
    ) -> SourceError {
        if !errors.is_empty() {
            let mut messages: Vec<String> = Vec::new();
            for e in errors {
                let mut text = e.message.trim().to_owned();
                if let Some(internal) = e.internal_message.as_deref().map(str::trim)
                    && !internal.is_empty()
                    && !text.contains(internal)
                {
                    text = if text.is_empty() {
                        internal.to_owned()
                    } else {
                        format!("{text} ({internal})")
                    };
                }
                let text = self.quote(&text);
                if !messages.contains(&text) {
                    messages.push(text);
                }
            }
            let message = clip(
                &format!(
                    "the Airbyte source's `{command}` reported: {}",
                    messages.join("; ")
                ),
                MAX_QUOTE,
                false,
            );
            return if errors.iter().any(|e| e.failure_type == FailureType::Config) {
                SourceError::Config {
                    message: format!("{message}; fix the profile's config or credential"),
                }
            } else if errors
                .iter()
                .all(|e| e.failure_type == FailureType::Transient)
            {
                SourceError::Transient { message }
            } else {
                SourceError::Failed { message }
            };
        }
        let stderr = self.redactor.redact(exit.stderr.trim());
        let detail = if !stderr.is_empty() {
            format!(": {}", clip(&stderr, MAX_QUOTE, true))
        } else if let Some(log) = last_error_log {
            format!("; its last error log: {log}")
        } else {
            "; it wrote nothing on stderr".to_owned()
        };
        SourceError::Failed {
            message: format!(
                "the Airbyte source's `{command}` {}{detail}",
                exit.description
            ),
        }
    }
}

fn log(level: LogLevel, text: &str) {
    match level {
        LogLevel::Error => tracing::error!(target: "tributary::airbyte", "{text}"),
        LogLevel::Warn => tracing::warn!(target: "tributary::airbyte", "{text}"),
        LogLevel::Info => tracing::info!(target: "tributary::airbyte", "{text}"),
        LogLevel::Debug => tracing::debug!(target: "tributary::airbyte", "{text}"),
        LogLevel::Trace => tracing::trace!(target: "tributary::airbyte", "{text}"),
    }
}

/// Whether a failed check's message is about the credential rather than the config.
/// Sources only say so in words, so this reads them.
fn looks_like_auth(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "401",
        "403",
        "unauthori",
        "forbidden",
        "authenticat",
        "credential",
        "token",
        "password",
        "api key",
        "api_key",
        "apikey",
        "permission",
        "access denied",
        "invalid_grant",
        "invalid_client",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Adds to `redactor` every string of `new` that `old` does not have at the same place.
fn add_changed_strings(redactor: &mut Redactor, old: &Value, new: &Value, at: &str) {
    match new {
        Value::String(s) => {
            if old.pointer(at).and_then(Value::as_str) != Some(s.as_str()) {
                redactor.add(s);
            }
        }
        Value::Object(fields) => {
            for (k, v) in fields {
                let at = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                add_changed_strings(redactor, old, v, &at);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                add_changed_strings(redactor, old, v, &format!("{at}/{i}"));
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::airbyte::config::Command;
    use serde_json::json;

    fn connector(credential: Option<Value>) -> AirbyteConnector {
        let mut config = AirbyteConfig::new(Command::Program("/bin/true".into()));
        config.config = json!({ "start": "2024" }).as_object().unwrap().clone();
        AirbyteConnector::new(config, credential, std::env::temp_dir()).unwrap()
    }

    #[test]
    fn control_updates_the_credential_and_redacts_new_tokens() {
        let mut c = connector(Some(
            json!({ "access_token": "old-token-1", "provider": "x" }),
        ));
        let warning = c.apply_control(
            json!({ "start": "2024", "access_token": "new-token-2", "provider": "x" }),
        );
        assert_eq!(warning, None);
        assert_eq!(
            c.take_credential_update(),
            Some(json!({ "access_token": "new-token-2", "provider": "x" }))
        );
        assert_eq!(c.take_credential_update(), None);
        assert_eq!(
            c.quote("a new-token-2 b old-token-1"),
            "a [redacted] b [redacted]"
        );
        let warning = c
            .apply_control(
                json!({ "start": "2025", "access_token": "new-token-2", "provider": "x" }),
            )
            .unwrap();
        assert!(warning.contains("(start)"), "{warning}");
    }

    #[test]
    fn control_without_a_credential_warns() {
        let mut c = connector(None);
        assert!(
            c.apply_control(json!({ "start": "2024", "token": "t" }))
                .is_some()
        );
        assert_eq!(c.take_credential_update(), None);
    }

    #[test]
    fn failures_map_by_failure_type_and_hide_secrets() {
        let c = connector(Some(json!({ "api_key": "sekret-key" })));
        let exit = Exit {
            success: false,
            description: "exited with status 1".into(),
            stderr: "Traceback: key=sekret-key\n".into(),
        };
        let err = |types: &[FailureType]| {
            let errors: Vec<TraceError> = types
                .iter()
                .map(|t| TraceError {
                    failure_type: *t,
                    message: "bad sekret-key".into(),
                    internal_message: None,
                })
                .collect();
            c.failure("read", &errors, None, &exit)
        };
        assert!(matches!(
            err(&[FailureType::Config, FailureType::System]),
            SourceError::Config { .. }
        ));
        assert!(matches!(
            err(&[FailureType::Transient]),
            SourceError::Transient { .. }
        ));
        assert!(matches!(
            err(&[FailureType::Transient, FailureType::System]),
            SourceError::Failed { .. }
        ));
        let e = err(&[FailureType::System]).to_string();
        assert!(!e.contains("sekret-key") && e.contains("[redacted]"), "{e}");
        let e = c.failure("read", &[], None, &exit).to_string();
        assert_eq!(
            e,
            "the source failed: the Airbyte source's `read` exited with status 1: Traceback: key=[redacted]"
        );
    }

    #[test]
    fn auth_words() {
        assert!(looks_like_auth("HTTP 401 Unauthorized"));
        assert!(looks_like_auth("Invalid API key"));
        assert!(!looks_like_auth(
            "Config validation error: 'abc' is not of type 'integer'"
        ));
    }
}
