//! Live checks of credentials against their sources. A check never fails: every outcome,
//! including a network error, is a [`CheckResult`] that can be recorded in an event.

mod atlassian;
mod generic;
mod github;
mod google;
mod http;
mod notion;
mod slack;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::CredentialKind;

/// How a credential check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The source accepted the credential (or, for kinds checked offline, it is
    /// well-formed; the message says which).
    Ok,
    /// The source rejected the credential: wrong, expired or revoked.
    Unauthorized,
    /// The source accepted the credential but refused access.
    Forbidden,
    /// The source could not be reached or did not answer properly.
    Unreachable,
    /// The source is rate limiting; check again later.
    RateLimited,
    /// The credential or its settings are malformed; the source was not (usefully) asked.
    Invalid,
    /// There is nothing to check against, e.g. no check URL is configured.
    NotChecked,
}

impl CheckStatus {
    /// The status as written in events, e.g. `rate_limited`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Unreachable => "unreachable",
            Self::RateLimited => "rate_limited",
            Self::Invalid => "invalid",
            Self::NotChecked => "not_checked",
        }
    }
}

/// The result of a credential check, safe to record in an event (no secrets in
/// `message` or `identity`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckResult {
    /// Whether the credential can be used: `status == ok`.
    pub ok: bool,
    pub status: CheckStatus,
    /// What happened and what to do next, for a person.
    pub message: String,
    /// Who the credential authenticates as, e.g. the GitHub login, the Slack team or the
    /// Notion bot name.
    pub identity: Option<String>,
}

impl CheckResult {
    pub(crate) fn new(status: CheckStatus, message: impl Into<String>) -> Self {
        Self {
            ok: status == CheckStatus::Ok,
            status,
            message: message.into(),
            identity: None,
        }
    }

    pub(crate) fn with_identity(mut self, identity: Option<String>) -> Self {
        self.identity = identity;
        self
    }
}

/// Runs the kind's check against its source. `config` holds the non-secret fields,
/// `secrets` the decrypted secret fields (as from [`CredentialKind::split`]). Each request
/// times out after 10 s.
pub async fn check(
    http: &reqwest::Client,
    kind: &CredentialKind,
    config: &Map<String, Value>,
    secrets: &BTreeMap<String, String>,
) -> CheckResult {
    let cx = Inputs {
        http,
        kind,
        config,
        secrets,
    };
    let result = match kind.name {
        "github_token" => github::check(&cx).await,
        "slack_bot_token" => slack::check(&cx).await,
        "notion_token" => notion::check(&cx).await,
        "atlassian_api_token" => atlassian::check(&cx).await,
        "google_service_account" => google::check(&cx),
        "basic_auth" => generic::check_basic(&cx).await,
        "bearer_token" => generic::check_bearer(&cx).await,
        "oauth2" => generic::check_oauth2(&cx).await,
        other => CheckResult::new(
            CheckStatus::NotChecked,
            format!("Tributary has no check for credential kind {other}"),
        ),
    };
    scrub(result, secrets)
}

/// What a check works from.
pub(crate) struct Inputs<'a> {
    http: &'a reqwest::Client,
    kind: &'a CredentialKind,
    config: &'a Map<String, Value>,
    secrets: &'a BTreeMap<String, String>,
}

impl Inputs<'_> {
    /// A non-secret string field, or the schema's default for it; blank counts as absent.
    fn setting(&self, field: &str) -> Option<&str> {
        self.config
            .get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .or_else(|| self.kind.default_str(field))
    }

    /// A required non-secret string field.
    fn required_setting(&self, field: &str) -> Result<&str, CheckResult> {
        self.setting(field).ok_or_else(|| self.missing(field))
    }

    /// A secret field; blank counts as absent.
    fn secret(&self, field: &str) -> Option<&str> {
        self.secrets
            .get(field)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    fn required_secret(&self, field: &str) -> Result<&str, CheckResult> {
        self.secret(field).ok_or_else(|| self.missing(field))
    }

    fn missing(&self, field: &str) -> CheckResult {
        let title = self
            .kind
            .schema
            .pointer(&format!("/properties/{field}/title"))
            .and_then(Value::as_str)
            .unwrap_or(field);
        CheckResult::new(
            CheckStatus::Invalid,
            format!(
                "the credential has no {} ({field}): edit it, fill it in and check again",
                title.to_lowercase()
            ),
        )
    }
}

/// Below this length a "secret" is also an ordinary substring of words, and is no secret.
const MIN_SCRUBBED_LEN: usize = 4;

/// Belt and braces: no message is built from a secret, but a remote server's text (an
/// error message, a login) could echo one back.
fn scrub(mut result: CheckResult, secrets: &BTreeMap<String, String>) -> CheckResult {
    for secret in secrets.values() {
        for candidate in [secret.as_str(), secret.trim()] {
            if candidate.len() < MIN_SCRUBBED_LEN {
                continue;
            }
            if result.message.contains(candidate) {
                result.message = result.message.replace(candidate, "[redacted]");
            }
            if let Some(identity) = &mut result.identity
                && identity.contains(candidate)
            {
                *identity = identity.replace(candidate, "[redacted]");
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_echoed_secrets() {
        let secrets = BTreeMap::from([("token".to_owned(), "s3cr3t-value".to_owned())]);
        let result = CheckResult::new(CheckStatus::Invalid, "server said: bad s3cr3t-value")
            .with_identity(Some("s3cr3t-value".to_owned()));
        let result = scrub(result, &secrets);
        assert_eq!(result.message, "server said: bad [redacted]");
        assert_eq!(result.identity.as_deref(), Some("[redacted]"));
    }

    #[test]
    fn status_serializes_as_written_in_events() {
        for status in [
            CheckStatus::Ok,
            CheckStatus::Unauthorized,
            CheckStatus::Forbidden,
            CheckStatus::Unreachable,
            CheckStatus::RateLimited,
            CheckStatus::Invalid,
            CheckStatus::NotChecked,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                Value::String(status.as_str().to_owned())
            );
        }
    }
}
