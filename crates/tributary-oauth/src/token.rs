//! The tokens a provider issued, as the rest of Tributary stores them.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use oauth2::TokenResponse;
use oauth2::basic::BasicTokenResponse;

/// Tokens from a code exchange or a refresh.
///
/// `Debug` shows whether tokens are present, never their values. There is deliberately no
/// `Serialize`: store the fields in the credential vault, encrypted, not as this struct's JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    /// The refresh token, when the provider sent one.
    ///
    /// After a **refresh**, `None` means the provider did not rotate the refresh token: keep
    /// using the previous one ([`TokenSet::refresh_token_or`]). `Some` replaces it; with
    /// rotating providers the previous one is already dead.
    pub refresh_token: Option<String>,
    /// When the access token expires; `None` when the provider did not say (for example
    /// GitHub OAuth-app tokens, which do not expire).
    pub expires_at: Option<DateTime<Utc>>,
    /// The granted scopes. Providers may grant fewer than requested.
    ///
    /// After a **code exchange**, when the provider does not list them, these are the
    /// requested scopes (RFC 6749 §5.1: omitted means "as requested"). After a **refresh**,
    /// empty means the provider did not list them: the scopes are unchanged.
    pub scopes: Vec<String>,
    /// Usually `bearer` (Slack says `bot` or `user`).
    pub token_type: String,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl TokenSet {
    /// The refresh token to store after a refresh: the new one if the provider rotated it,
    /// otherwise `previous`.
    pub fn refresh_token_or<'a>(&'a self, previous: &'a str) -> &'a str {
        self.refresh_token.as_deref().unwrap_or(previous)
    }

    /// `expires_at` is computed from `requested_at` (taken before the request was sent), so it
    /// errs on the early side.
    pub(crate) fn from_response(
        response: &BasicTokenResponse,
        requested_at: DateTime<Utc>,
        fallback_scopes: &[String],
    ) -> Self {
        let expires_at = response.expires_in().and_then(|d| {
            TimeDelta::from_std(d)
                .ok()
                .and_then(|d| requested_at.checked_add_signed(d))
        });
        // Slack and GitHub separate scopes with commas inside the one `scope` string.
        let mut scopes: Vec<String> = response
            .scopes()
            .into_iter()
            .flatten()
            .flat_map(|scope| {
                scope
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        if response.scopes().is_none() {
            scopes = fallback_scopes.to_vec();
        }
        let mut seen = std::collections::HashSet::new();
        scopes.retain(|scope| seen.insert(scope.clone()));
        Self {
            access_token: response.access_token().secret().clone(),
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .filter(|t| !t.is_empty()),
            expires_at,
            scopes,
            token_type: response.token_type().as_ref().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> BasicTokenResponse {
        serde_json::from_str(json).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn converts_a_standard_response() {
        let r = parse(
            r#"{"access_token":"at-123456","token_type":"Bearer","expires_in":3600,
                "refresh_token":"rt-123456","scope":"read write"}"#,
        );
        let t = TokenSet::from_response(&r, t0(), &[]);
        assert_eq!(t.access_token, "at-123456");
        assert_eq!(t.refresh_token.as_deref(), Some("rt-123456"));
        assert_eq!(t.expires_at, Some(t0() + TimeDelta::hours(1)));
        assert_eq!(t.scopes, ["read", "write"]);
        assert_eq!(t.token_type, "bearer");
    }

    #[test]
    fn comma_scopes_and_missing_fields() {
        let r = parse(r#"{"access_token":"x","token_type":"bot","scope":"chat:write,users:read"}"#);
        let t = TokenSet::from_response(&r, t0(), &["ignored".to_owned()]);
        assert_eq!(t.scopes, ["chat:write", "users:read"]);
        assert_eq!(t.expires_at, None);
        assert_eq!(t.refresh_token, None);
        assert_eq!(t.token_type, "bot");

        let r = parse(r#"{"access_token":"x","token_type":"bearer"}"#);
        let t = TokenSet::from_response(&r, t0(), &["repo".to_owned()]);
        assert_eq!(t.scopes, ["repo"]);
    }

    #[test]
    fn keeps_the_previous_refresh_token_when_not_rotated() {
        let r = parse(r#"{"access_token":"x","token_type":"bearer"}"#);
        let t = TokenSet::from_response(&r, t0(), &[]);
        assert_eq!(t.refresh_token_or("old-refresh"), "old-refresh");
        let r = parse(r#"{"access_token":"x","token_type":"bearer","refresh_token":"new"}"#);
        let t = TokenSet::from_response(&r, t0(), &[]);
        assert_eq!(t.refresh_token_or("old-refresh"), "new");
    }

    #[test]
    fn debug_shows_no_tokens() {
        let r = parse(
            r#"{"access_token":"at-very-secret","token_type":"bearer","refresh_token":"rt-very-secret"}"#,
        );
        let debug = format!("{:?}", TokenSet::from_response(&r, t0(), &[]));
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
