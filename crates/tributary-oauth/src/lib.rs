//! OAuth 2.0 client logic for connector credentials: which providers exist and how to talk to
//! them ([`providers`]), the `state` parameter that carries the flow through the browser
//! ([`state`]), the authorization-code and refresh grants ([`flow`]) and when and how to refresh
//! ([`mod@refresh`]). The HTTP routes and the event/credential storage live elsewhere; this crate
//! makes requests to providers and checks what comes back, nothing more.
//!
//! # Design
//!
//! **Signed state, no server-side session.** [`state::StateSigner::issue`] encodes the
//! [`state::StateClaims`] (provider, org, user, a fresh nonce, expiry, where to go afterwards)
//! as `base64url(json) "." base64url(HMAC-SHA256)`. [`state::StateSigner::verify`] checks the
//! signature (in constant time) before it parses anything, then the provider and the expiry
//! (10 minutes by default, [`state::DEFAULT_STATE_TTL`]). A valid signature only proves that we
//! issued the state, not that it is the first time we see it: the callback handler must record
//! `claims.nonce` (until `claims.expires_at`) and refuse a nonce it has seen. That is the one
//! piece of storage the flow needs.
//!
//! **PKCE without storage.** The state travels through the browser, so the PKCE verifier must
//! not be in it. Instead the verifier is derived: `base64url(HMAC-SHA256(key, "pkce" || nonce))`
//! (43 characters from the unreserved set, [`state::StateSigner::pkce_verifier_for`]). The
//! authorize request carries its S256 challenge; on the callback the verifier is derived again
//! from the verified nonce. Whoever intercepts the code and the state still lacks the key.
//!
//! **Requests through `oauth2`, answers classified here.** The `oauth2` crate builds the
//! requests (client authentication, PKCE, form encoding); a thin adapter around the shared
//! `reqwest` client sends them, asks for JSON, turns 5xx/429/timeouts into
//! [`OAuthError::Transient`] (keeping `Retry-After`), and rewrites provider quirks into RFC 6749
//! shape before `oauth2` parses them: Slack's `200 {"ok":false,"error":...}`, GitHub's
//! `200 {"error":...}` and form-encoded bodies, `expires_in` sent as a string.
//!
//! **Every error says what to do next.** [`OAuthError`] answers "retry, reconnect, or fix the
//! configuration?": [`OAuthError::InvalidGrant`] means the credential must be re-authorized,
//! [`OAuthError::Transient`] may be retried, [`OAuthError::Misconfigured`] needs an admin to fix
//! the provider settings. No error (nor any `Debug` output of [`ProviderConfig`] or
//! [`TokenSet`]) contains a token, an authorization code or the client secret: messages are
//! built from status codes and OAuth error codes, and provider descriptions are cut short and
//! scrubbed of every secret that was sent in the request.
//!
//! **Refresh policy.** [`refresh::needs_refresh`] says a token is due five minutes before it
//! expires; [`refresh::RefreshPolicy::is_due`] adds "at least daily" so rotating refresh tokens
//! never go stale. [`refresh::refresh_with_retry`] retries only transient failures, with
//! exponential backoff and jitter (via `backon`), waits at least as long as `Retry-After` asks,
//! and gives up after a bounded number of attempts; an invalid grant is never retried. A
//! provider that does not send a new refresh token leaves [`TokenSet::refresh_token`] `None`:
//! keep the previous one. The caller must refresh one credential at a time (under a lock),
//! because many providers rotate refresh tokens and accept each one once.
//!
//! With the `fake` feature, [`fake`] provides an in-process OAuth provider for tests.

pub mod error;
pub mod flow;
pub mod providers;
pub mod refresh;
pub mod state;
pub mod token;

mod http;

#[cfg(feature = "fake")]
pub mod fake;

pub use error::{OAuthError, Result};
pub use flow::{CallbackParams, authorize_url, exchange_code, refresh};
pub use http::http_client;
pub use providers::{AuthStyle, ConfigError, ProviderConfig, Providers, ScopeSeparator};
pub use refresh::{RefreshPolicy, needs_refresh, refresh_with_retry};
pub use state::{StateClaims, StateError, StateSigner};
pub use token::TokenSet;

/// The PKCE types from `oauth2`, so callers need no direct dependency on it.
pub use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
/// The URL type used in this crate's API.
pub use url::Url;
