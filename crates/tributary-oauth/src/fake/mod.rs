//! An OAuth 2.0 provider for tests, on `127.0.0.1:0` (feature `fake`).
//!
//! It follows RFC 6749 (and RFC 7636 for PKCE) closely enough to catch client mistakes:
//!
//! - `GET /authorize` approves at once: it redirects to `redirect_uri` with `code` and `state`
//!   (or `error=access_denied` after [`FakeProvider::deny_authorization`]). Codes are single-use
//!   and expire after 60 s.
//! - `POST /token` authenticates the client (Basic or body), then handles
//!   `authorization_code` (checks `redirect_uri` and the PKCE verifier against the S256
//!   challenge) and `refresh_token` (single-use, rotating refresh tokens). Errors are
//!   `400 {"error":..., "error_description":...}`, `401` for `invalid_client`.
//! - `GET /userinfo` accepts only unexpired access tokens (`401` otherwise).
//!
//! Failures can be injected for the next token calls ([`Fault`]), token calls are counted, and
//! its clock can be moved forward ([`FakeProvider::advance_clock`]) to expire codes and tokens
//! without sleeping.

mod server;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

use crate::flow::CallbackParams;
use crate::providers::{AuthStyle, ProviderConfig, ScopeSeparator};

/// How the fake provider behaves from the start.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of issued access tokens, in seconds (`expires_in`).
    pub expires_in: u64,
    /// Refuse authorization requests without a PKCE challenge.
    pub require_pkce: bool,
    /// Issue a new refresh token on every refresh (and invalidate the old one). When off,
    /// refresh answers carry no `refresh_token` and the old one stays valid.
    pub rotate_refresh_tokens: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            client_id: "fake-client-id".to_owned(),
            client_secret: "fake-client-secret".to_owned(),
            expires_in: 3600,
            require_pkce: false,
            rotate_refresh_tokens: true,
        }
    }
}

/// A failure for the next call to `/token`, before it is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `503 Service Unavailable` with an HTML body.
    Unavailable,
    /// `429 Too Many Requests` with `Retry-After` in whole seconds.
    RateLimited { retry_after: Duration },
    /// `400 {"error":"invalid_grant"}` whatever the request.
    InvalidGrant,
    /// `200` with this JSON body, like Slack's `{"ok":false,...}` or GitHub's errors.
    Status200Body(serde_json::Value),
    /// Wait this long, then handle the request normally (for client timeouts).
    Delay(Duration),
}

/// A running fake provider. Dropping it stops the server.
pub struct FakeProvider {
    base_url: Url,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

pub(crate) struct Shared {
    config: FakeConfig,
    state: Mutex<server::State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, server::State> {
        // A panicking test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeProvider {
    /// Starts a provider with [`FakeConfig::default`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(FakeConfig::default()).await
    }

    pub async fn start_with(config: FakeConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(server::State::new(config.expires_in)),
            config,
        });
        let router = server::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "fake OAuth provider stopped");
            }
        });
        let base_url =
            Url::parse(&format!("http://{addr}/")).expect("a socket address is a valid host");
        Ok(Self {
            base_url,
            shared,
            server,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    fn endpoint(&self, path: &str) -> Url {
        self.base_url.join(path).expect("fixed paths join")
    }

    pub fn authorize_url(&self) -> Url {
        self.endpoint("authorize")
    }

    pub fn token_url(&self) -> Url {
        self.endpoint("token")
    }

    pub fn userinfo_url(&self) -> Url {
        self.endpoint("userinfo")
    }

    pub fn config(&self) -> &FakeConfig {
        &self.shared.config
    }

    /// A provider configuration pointing at this fake, with its credentials, PKCE on and
    /// scopes `read` and `write`.
    pub fn provider_config(&self, name: &str) -> ProviderConfig {
        ProviderConfig {
            name: name.to_owned(),
            authorize_url: self.authorize_url(),
            token_url: self.token_url(),
            scopes: vec!["read".to_owned(), "write".to_owned()],
            scope_separator: ScopeSeparator::Space,
            pkce: true,
            client_id: self.shared.config.client_id.clone(),
            client_secret: Some(self.shared.config.client_secret.clone()),
            extra_authorize_params: Vec::new(),
            auth_style: AuthStyle::ClientSecretPost,
        }
    }

    /// From now on, `/authorize` redirects with `error=access_denied` (or approves again).
    pub fn deny_authorization(&self, deny: bool) {
        self.shared.lock().deny = deny;
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_expires_in(&self, seconds: u64) {
        self.shared.lock().expires_in = seconds;
    }

    /// The next `times` calls to `/token` fail with `fault` (after faults already queued).
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut state = self.shared.lock();
        state.faults.extend(std::iter::repeat_n(fault, times));
    }

    /// The next `times` token calls answer `503`.
    pub fn fail_next_with_unavailable(&self, times: usize) {
        self.inject(Fault::Unavailable, times);
    }

    /// The next `times` token calls answer `429` with `Retry-After`.
    pub fn fail_next_with_rate_limit(&self, times: usize, retry_after: Duration) {
        self.inject(Fault::RateLimited { retry_after }, times);
    }

    /// The next `times` token calls answer `invalid_grant`.
    pub fn fail_next_with_invalid_grant(&self, times: usize) {
        self.inject(Fault::InvalidGrant, times);
    }

    /// Faults queued and not yet served.
    pub fn pending_faults(&self) -> VecDeque<Fault> {
        self.shared.lock().faults.clone()
    }

    /// Calls to `/token` so far, failed ones included.
    pub fn token_calls(&self) -> usize {
        self.shared.lock().token_calls
    }

    /// Calls to `/authorize` so far.
    pub fn authorize_calls(&self) -> usize {
        self.shared.lock().authorize_calls
    }

    /// Moves the provider's clock forward: codes and tokens expire as if time had passed.
    pub fn advance_clock(&self, by: Duration) {
        let mut state = self.shared.lock();
        state.clock_offset += chrono::TimeDelta::from_std(by).expect("test durations fit");
    }

    /// A valid refresh token issued directly, as if a code flow had happened, granting
    /// `read write`. For tests that start from a stored credential.
    pub fn issue_refresh_token(&self) -> String {
        self.shared
            .lock()
            .new_refresh_token("read write".to_owned())
    }

    /// Follows `authorize_url` like a browser whose user approves, and returns the parameters
    /// of the redirect back to the client (all `None` when the fake refused to redirect, as it
    /// does for an unknown `client_id` or a missing `redirect_uri`).
    pub async fn approve(&self, authorize_url: &Url) -> reqwest::Result<CallbackParams> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let response = client.get(authorize_url.clone()).send().await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v).ok());
        Ok(location
            .map(|url| CallbackParams::from_url(&url))
            .unwrap_or_default())
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}
