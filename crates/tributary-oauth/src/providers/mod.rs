//! The OAuth providers this server can connect to: built-in templates for well-known services,
//! and the configuration that makes them (or custom providers) usable.
//!
//! A built-in provider is only usable once it is configured with a client id and secret;
//! [`Providers::from_config`] reads that configuration.

mod builtin;
mod config;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

pub use builtin::{BUILTIN_PROVIDERS, builtin};
pub use config::{ConfigError, example_config};

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStyle {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    ClientSecretPost,
    /// HTTP Basic authentication with the url-encoded id and secret.
    BasicAuth,
}

/// How scopes are joined in the authorize request. RFC 6749 says spaces; Slack wants commas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeSeparator {
    #[default]
    Space,
    Comma,
}

impl ScopeSeparator {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Space => " ",
            Self::Comma => ",",
        }
    }

    /// Joins scopes for the `scope` parameter.
    pub fn join(self, scopes: &[String]) -> String {
        scopes.join(self.as_str())
    }
}

/// Query parameters that the flow sets itself and that configuration may not override.
pub(crate) const RESERVED_AUTHORIZE_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Everything needed to run the authorization-code and refresh grants against one provider.
///
/// Build it with [`Providers::from_config`] or [`builtin`]; both validate it. If you build one
/// by hand, the flow functions call [`ProviderConfig::validate`] again before any request.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The name used in configuration, routes and the signed state (`github`, `acme-sso`).
    pub name: String,
    pub authorize_url: Url,
    pub token_url: Url,
    /// Scopes requested on authorization. Empty means no `scope` parameter.
    pub scopes: Vec<String>,
    pub scope_separator: ScopeSeparator,
    /// Whether to use PKCE (S256) — only where the provider supports it.
    pub pkce: bool,
    pub client_id: String,
    /// Never shown by `Debug`, never put into an error.
    pub client_secret: Option<String>,
    /// Added to the authorize URL, e.g. `access_type=offline` for Google.
    pub extra_authorize_params: Vec<(String, String)>,
    pub auth_style: AuthStyle,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("authorize_url", &self.authorize_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("scopes", &self.scopes)
            .field("scope_separator", &self.scope_separator)
            .field("pkce", &self.pkce)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("extra_authorize_params", &self.extra_authorize_params)
            .field("auth_style", &self.auth_style)
            .finish()
    }
}

impl ProviderConfig {
    /// Checks what a request relies on: a usable name, a client id, https endpoints (plain
    /// http only on loopback, for tests), no overriding of flow parameters, and PKCE for a
    /// client without a secret.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let provider = || self.name.clone();
        if !is_valid_name(&self.name) {
            return Err(ConfigError::InvalidName {
                name: self.name.clone(),
            });
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::MissingField {
                provider: provider(),
                field: "client_id",
            });
        }
        if self.client_secret.as_deref().is_some_and(|s| s.is_empty()) {
            return Err(ConfigError::MissingField {
                provider: provider(),
                field: "client_secret",
            });
        }
        check_endpoint(&self.name, "authorize_url", &self.authorize_url)?;
        check_endpoint(&self.name, "token_url", &self.token_url)?;
        if let Some((param, _)) = self
            .extra_authorize_params
            .iter()
            .find(|(k, _)| RESERVED_AUTHORIZE_PARAMS.contains(&k.as_str()))
        {
            return Err(ConfigError::ReservedParam {
                provider: provider(),
                param: param.clone(),
            });
        }
        if self.client_secret.is_none() && !self.pkce {
            return Err(ConfigError::PublicClientWithoutPkce {
                provider: provider(),
            });
        }
        Ok(())
    }
}

/// Names appear in routes and in the state: lowercase letters, digits, `-` and `_`.
fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether a URL points at this machine, where plain http is acceptable (tests).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn check_endpoint(provider: &str, field: &'static str, url: &Url) -> Result<(), ConfigError> {
    let secure = match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    };
    if !secure {
        return Err(ConfigError::InsecureUrl {
            provider: provider.to_owned(),
            field,
            url: url.as_str().to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(ConfigError::InvalidUrl {
            provider: provider.to_owned(),
            field,
            reason: "it must not contain credentials or a #fragment".to_owned(),
        });
    }
    Ok(())
}

/// The configured, usable providers, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Providers {
    by_name: BTreeMap<String, ProviderConfig>,
}

impl Providers {
    /// Parses the providers configuration: a JSON object from provider name to settings.
    ///
    /// ```json
    /// {
    ///   "github": { "client_id": "Iv1.abc", "client_secret": "..." },
    ///   "google": { "client_id": "...", "client_secret": "...", "scopes": ["openid"] },
    ///   "acme":   { "client_id": "...", "client_secret": "...",
    ///               "authorize_url": "https://sso.acme.test/authorize",
    ///               "token_url": "https://sso.acme.test/token", "pkce": true }
    /// }
    /// ```
    ///
    /// A built-in name ([`BUILTIN_PROVIDERS`]) starts from the template and every field given
    /// replaces the template's value. Any other name is a custom provider, which must give
    /// `authorize_url` and `token_url`. Fields: `client_id` (required), `client_secret`
    /// (required for built-ins), `authorize_url`, `token_url`, `scopes`, `scope_separator`
    /// (`"space"`/`"comma"`), `pkce`, `extra_authorize_params` (object of strings),
    /// `auth_style` (`"client_secret_post"`/`"basic_auth"`).
    pub fn from_config(json: &str) -> Result<Self, ConfigError> {
        config::parse(json)
    }

    /// Builds the set from already-built configurations, validating each.
    pub fn from_configs(
        configs: impl IntoIterator<Item = ProviderConfig>,
    ) -> Result<Self, ConfigError> {
        let mut by_name = BTreeMap::new();
        for provider in configs {
            provider.validate()?;
            if by_name.contains_key(&provider.name) {
                return Err(ConfigError::Duplicate {
                    provider: provider.name,
                });
            }
            by_name.insert(provider.name.clone(), provider);
        }
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&ProviderConfig> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.by_name.values()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProviderConfig {
        builtin("github", "client-1", "super-secret-value").expect("github is built in")
    }

    #[test]
    fn debug_hides_the_client_secret() {
        let debug = format!("{:?}", sample());
        assert!(!debug.contains("super-secret-value"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(debug.contains("client-1"), "{debug}");
    }

    #[test]
    fn http_is_only_allowed_on_loopback() {
        let mut p = sample();
        for ok in [
            "http://127.0.0.1:8080/token",
            "http://localhost/token",
            "http://[::1]:9/t",
        ] {
            p.token_url = Url::parse(ok).unwrap();
            p.validate().unwrap();
        }
        for bad in ["http://example.com/token", "ftp://127.0.0.1/token"] {
            p.token_url = Url::parse(bad).unwrap();
            assert!(matches!(
                p.validate(),
                Err(ConfigError::InsecureUrl {
                    field: "token_url",
                    ..
                })
            ));
        }
    }

    #[test]
    fn flow_parameters_cannot_be_overridden() {
        let mut p = sample();
        p.extra_authorize_params
            .push(("state".to_owned(), "x".to_owned()));
        assert!(matches!(
            p.validate(),
            Err(ConfigError::ReservedParam { .. })
        ));
    }

    #[test]
    fn public_clients_need_pkce() {
        let mut p = sample();
        p.client_secret = None;
        p.pkce = false;
        assert!(matches!(
            p.validate(),
            Err(ConfigError::PublicClientWithoutPkce { .. })
        ));
        p.pkce = true;
        p.validate().unwrap();
    }

    #[test]
    fn names_are_restricted() {
        assert!(is_valid_name("acme-sso_2"));
        assert!(!is_valid_name("Acme"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn scopes_join_with_the_provider_separator() {
        let scopes = vec!["a:read".to_owned(), "b:write".to_owned()];
        assert_eq!(ScopeSeparator::Space.join(&scopes), "a:read b:write");
        assert_eq!(ScopeSeparator::Comma.join(&scopes), "a:read,b:write");
    }
}
