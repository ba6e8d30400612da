//! When to refresh an access token, and refreshing with retries.
//!
//! Refresh early (five minutes before expiry) so that a sync never starts with a token about
//! to die, and at least daily so that providers which expire unused refresh tokens (or rotate
//! them) never see one go stale.
//!
//! The caller must refresh one credential at a time (a per-credential lock): with rotating
//! refresh tokens, two concurrent refreshes spend the same token and the loser gets
//! `invalid_grant`. For the same reason a retry after a timeout can end in
//! [`OAuthError::InvalidGrant`]: the provider may have rotated the token and the answer got
//! lost. That credential must then be re-authorized, which is what the error says.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, TimeDelta, Utc};

use crate::error::{OAuthError, Result};
use crate::flow;
use crate::providers::ProviderConfig;
use crate::token::TokenSet;

/// Refresh this long before the access token expires.
pub const DEFAULT_REFRESH_SKEW: Duration = Duration::from_secs(5 * 60);
/// Refresh at least this often, whatever the expiry.
pub const DEFAULT_MAX_TOKEN_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether a token expiring at `expires_at` should be refreshed at `now`: when it expires
/// within `skew` (or already has). `None` (no known expiry) never needs it on this count;
/// [`RefreshPolicy::is_due`] adds the daily refresh.
pub fn needs_refresh(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    skew: Duration,
) -> bool {
    let skew = TimeDelta::from_std(skew).unwrap_or(TimeDelta::MAX);
    match expires_at {
        Some(expires_at) => match expires_at.checked_sub_signed(skew) {
            Some(refresh_at) => now >= refresh_at,
            None => true,
        },
        None => false,
    }
}

/// When to refresh and how hard to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Refresh this long before expiry.
    pub skew: Duration,
    /// Refresh at least this often.
    pub max_age: Duration,
    /// Requests in total, the first included. At least 1.
    pub max_attempts: usize,
    /// First backoff delay; it doubles each retry, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the error is returned so that the
    /// caller can schedule the refresh later instead of holding a worker.
    pub max_retry_after: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RefreshPolicy {
    pub const fn new() -> Self {
        Self {
            skew: DEFAULT_REFRESH_SKEW,
            max_age: DEFAULT_MAX_TOKEN_AGE,
            max_attempts: 4,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// Whether to refresh now: the access token expires within `skew`, or the last refresh
    /// (or the authorization) was `max_age` ago or more.
    pub fn is_due(
        &self,
        expires_at: Option<DateTime<Utc>>,
        last_refreshed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        let max_age = TimeDelta::from_std(self.max_age).unwrap_or(TimeDelta::MAX);
        needs_refresh(expires_at, now, self.skew) || now - last_refreshed_at >= max_age
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1))
    }
}

/// [`flow::refresh`], retrying transient failures.
///
/// Only [`OAuthError::Transient`] is retried, with exponential backoff and jitter, waiting at
/// least the provider's `Retry-After`, for at most `policy.max_attempts` requests. Everything
/// else — above all [`OAuthError::InvalidGrant`] — is returned at once. A `None`
/// [`TokenSet::refresh_token`] in the result means "keep the old refresh token".
pub async fn refresh_with_retry(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    refresh_token: &str,
    policy: &RefreshPolicy,
) -> Result<TokenSet> {
    let attempt = || flow::refresh(http, provider, refresh_token);
    attempt
        .retry(policy.backoff())
        .when(OAuthError::is_transient)
        .adjust(|error: &OAuthError, backoff| {
            // `None` from the backoff means the attempts are used up.
            let backoff = backoff?;
            match error.retry_after() {
                Some(wait) if wait > policy.max_retry_after => None,
                Some(wait) => Some(backoff.max(wait)),
                None => Some(backoff),
            }
        })
        .notify(|error: &OAuthError, delay| {
            tracing::warn!(provider = %provider.name, delay_ms = delay.as_millis() as u64,
                error = %error, "token refresh failed transiently; retrying");
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn refreshes_within_the_window_before_expiry() {
        let skew = DEFAULT_REFRESH_SKEW;
        let expires = Some(t0() + TimeDelta::minutes(10));
        assert!(!needs_refresh(expires, t0(), skew));
        assert!(!needs_refresh(
            expires,
            t0() + TimeDelta::minutes(4) + TimeDelta::seconds(59),
            skew
        ));
        assert!(needs_refresh(expires, t0() + TimeDelta::minutes(5), skew));
        assert!(needs_refresh(expires, t0() + TimeDelta::hours(2), skew));
        assert!(!needs_refresh(None, t0(), skew));
        assert!(needs_refresh(expires, t0(), Duration::MAX));
    }

    #[test]
    fn refreshes_at_least_daily() {
        let policy = RefreshPolicy::new();
        let far = Some(t0() + TimeDelta::days(30));
        assert!(!policy.is_due(far, t0(), t0() + TimeDelta::hours(23)));
        assert!(policy.is_due(far, t0(), t0() + TimeDelta::hours(24)));
        assert!(policy.is_due(None, t0(), t0() + TimeDelta::days(2)));
        assert!(!policy.is_due(None, t0(), t0() + TimeDelta::hours(1)));
    }
}
