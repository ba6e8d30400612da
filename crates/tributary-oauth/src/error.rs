//! What can go wrong when talking to a provider, classified by what the caller should do next.
//!
//! No variant ever carries a token, an authorization code or the client secret. Provider
//! descriptions are shortened and scrubbed of every secret value that was sent in the request
//! before they are stored here.

use std::time::Duration;

/// `Result` with [`OAuthError`] as the default error.
pub type Result<T, E = OAuthError> = std::result::Result<T, E>;

/// A failed OAuth request. Each variant answers "retry, reconnect, or fix the configuration?".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The provider rejected the authorization code or refresh token (`invalid_grant` and the
    /// providers' own spellings of it): the credential can no longer be used as it is.
    #[error(
        "{provider} rejected the grant ({code}{}): the credential is no longer valid; \
         ask an admin to reconnect the credential",
        describe(description.as_deref())
    )]
    InvalidGrant {
        provider: String,
        code: String,
        description: Option<String>,
    },

    /// The user (or an admin policy at the provider) refused the authorization.
    #[error(
        "access was denied at {provider}{}: start the connection again and approve the \
         requested access, or ask the provider's admin to allow this app",
        describe(description.as_deref())
    )]
    AccessDenied {
        provider: String,
        description: Option<String>,
    },

    /// The provider could not answer now (5xx, 429, `temporarily_unavailable`, a timeout or a
    /// connection failure). Safe to retry, after `retry_after` when the provider gave one.
    #[error(
        "{provider} is temporarily unavailable: {message}; retry later{}",
        retry_hint(*retry_after)
    )]
    Transient {
        provider: String,
        retry_after: Option<Duration>,
        message: String,
    },

    /// Any other OAuth error response (RFC 6749 §5.2) that is neither of the above.
    #[error(
        "{provider} returned the OAuth error `{code}`{}; the request was not retried — \
         if it persists, check the provider's status page and this provider's configuration",
        describe(description.as_deref())
    )]
    Provider {
        provider: String,
        code: String,
        description: Option<String>,
    },

    /// Our side is set up wrong: bad endpoints, wrong client id or secret, a redirect URI the
    /// provider does not know. Reconnecting will not help; an admin must fix the configuration.
    #[error(
        "OAuth provider `{provider}` is misconfigured: {detail}; an admin must fix the \
         provider's OAuth settings (client id, client secret, redirect URI, endpoints)"
    )]
    Misconfigured { provider: String, detail: String },

    /// The provider answered something that is not an OAuth response at all (not JSON, a
    /// token response without `access_token`, an unexpected status).
    #[error(
        "{provider} returned an unexpected response: {detail}; the request was not retried — \
         check the provider's status page and the configured token URL"
    )]
    InvalidResponse { provider: String, detail: String },
}

impl OAuthError {
    /// Whether trying the same request again later may succeed.
    pub const fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// Whether the credential must be re-authorized by a person before it can be used again.
    pub const fn needs_reauthorization(&self) -> bool {
        matches!(self, Self::InvalidGrant { .. } | Self::AccessDenied { .. })
    }

    /// How long the provider asked us to wait, for [`OAuthError::Transient`].
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The provider name this error is about.
    pub fn provider(&self) -> &str {
        match self {
            Self::InvalidGrant { provider, .. }
            | Self::AccessDenied { provider, .. }
            | Self::Transient { provider, .. }
            | Self::Provider { provider, .. }
            | Self::Misconfigured { provider, .. }
            | Self::InvalidResponse { provider, .. } => provider,
        }
    }
}

fn describe(description: Option<&str>) -> String {
    description.map(|d| format!(": {d}")).unwrap_or_default()
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (the provider asked to wait {}s)", d.as_secs()))
        .unwrap_or_default()
}

/// What a provider's OAuth error code means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    InvalidGrant,
    AccessDenied,
    Transient,
    Misconfigured,
    Other,
}

/// Classifies an OAuth error code, including the non-standard codes of the built-in providers.
pub(crate) fn classify_code(code: &str) -> ErrorClass {
    match code {
        // RFC 6749, plus GitHub (bad_*), Slack (invalid_code, ...) and Microsoft's
        // interaction_required family: all mean a person must authorize again.
        "invalid_grant"
        | "bad_verification_code"
        | "bad_refresh_token"
        | "invalid_code"
        | "code_already_used"
        | "code_expired"
        | "invalid_refresh_token"
        | "token_expired"
        | "token_revoked"
        | "invalid_token"
        | "interaction_required"
        | "consent_required"
        | "login_required" => ErrorClass::InvalidGrant,
        "access_denied" => ErrorClass::AccessDenied,
        "temporarily_unavailable" | "server_error" | "ratelimited" | "rate_limited" => {
            ErrorClass::Transient
        }
        "invalid_client"
        | "unauthorized_client"
        | "unsupported_grant_type"
        | "invalid_scope"
        | "unsupported_response_type"
        | "incorrect_client_credentials"
        | "redirect_uri_mismatch"
        | "bad_client_secret"
        | "invalid_client_id"
        | "bad_redirect_uri"
        | "invalid_grant_type"
        | "invalid_team_for_non_distributed_app" => ErrorClass::Misconfigured,
        _ => ErrorClass::Other,
    }
}

/// Builds an [`OAuthError`] from an OAuth error code and optional description.
pub(crate) fn from_error_code(
    provider: &str,
    code: &str,
    description: Option<String>,
    retry_after: Option<Duration>,
) -> OAuthError {
    let provider = provider.to_owned();
    let code_owned = code.to_owned();
    match classify_code(code) {
        ErrorClass::InvalidGrant => OAuthError::InvalidGrant {
            provider,
            code: code_owned,
            description,
        },
        ErrorClass::AccessDenied => OAuthError::AccessDenied {
            provider,
            description,
        },
        ErrorClass::Transient => OAuthError::Transient {
            provider,
            retry_after,
            message: match description {
                Some(d) => format!("the provider answered `{code}`: {d}"),
                None => format!("the provider answered `{code}`"),
            },
        },
        ErrorClass::Misconfigured => OAuthError::Misconfigured {
            provider,
            detail: match description {
                Some(d) => format!("the provider answered `{code}`: {d}"),
                None => format!("the provider answered `{code}`"),
            },
        },
        ErrorClass::Other => OAuthError::Provider {
            provider,
            code: code_owned,
            description,
        },
    }
}

/// Longest provider description kept in an error, in characters.
const MAX_DESCRIPTION_CHARS: usize = 300;
/// Secrets shorter than this are not scrubbed: replacing "a" everywhere would mangle text,
/// and no real token or secret is that short.
const MIN_SCRUB_LEN: usize = 6;

/// Scrubs the values sent in a request (client secret, code, tokens, PKCE verifier) out of
/// text that came back from the provider, so that an echoing provider cannot leak them into
/// logs through an error message.
#[derive(Default)]
pub(crate) struct Redactor<'a> {
    secrets: Vec<&'a str>,
}

impl<'a> Redactor<'a> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with(mut self, secret: Option<&'a str>) -> Self {
        if let Some(secret) = secret.filter(|s| s.len() >= MIN_SCRUB_LEN) {
            self.secrets.push(secret);
        }
        self
    }

    /// Shortens `text`, drops control characters and replaces every known secret.
    pub(crate) fn clean(&self, text: &str) -> String {
        let mut out: String = text.chars().filter(|c| !c.is_control()).collect();
        for secret in &self.secrets {
            if out.contains(secret) {
                out = out.replace(secret, "[redacted]");
            }
        }
        if out.chars().count() > MAX_DESCRIPTION_CHARS {
            out = out.chars().take(MAX_DESCRIPTION_CHARS).collect();
            out.push('…');
        }
        out
    }

    pub(crate) fn clean_opt(&self, text: Option<&str>) -> Option<String> {
        text.map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| self.clean(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_by_what_to_do_next() {
        assert_eq!(classify_code("invalid_grant"), ErrorClass::InvalidGrant);
        assert_eq!(classify_code("bad_refresh_token"), ErrorClass::InvalidGrant);
        assert_eq!(classify_code("invalid_code"), ErrorClass::InvalidGrant);
        assert_eq!(classify_code("access_denied"), ErrorClass::AccessDenied);
        assert_eq!(
            classify_code("temporarily_unavailable"),
            ErrorClass::Transient
        );
        assert_eq!(classify_code("invalid_client"), ErrorClass::Misconfigured);
        assert_eq!(classify_code("invalid_request"), ErrorClass::Other);
    }

    #[test]
    fn redactor_scrubs_secrets_and_shortens() {
        let r = Redactor::new().with(Some("s3cr3t-value")).with(Some("abc"));
        assert_eq!(
            r.clean("bad client s3cr3t-value\n given"),
            "bad client [redacted] given"
        );
        let long = "x".repeat(1000);
        assert_eq!(r.clean(&long).chars().count(), MAX_DESCRIPTION_CHARS + 1);
        assert_eq!(r.clean_opt(Some("   ")), None);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = from_error_code("github", "bad_refresh_token", None, None);
        assert!(e.needs_reauthorization());
        assert!(e.to_string().contains("reconnect the credential"), "{e}");
        let e = from_error_code("slack", "ratelimited", None, Some(Duration::from_secs(3)));
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(e.to_string().contains("wait 3s"), "{e}");
    }
}
