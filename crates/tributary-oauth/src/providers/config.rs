//! Reading the providers configuration (a JSON object of provider name to settings).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::builtin::{BUILTIN_PROVIDERS, template};
use super::{AuthStyle, ProviderConfig, Providers, ScopeSeparator};

/// Why the providers configuration was refused. Each message names the provider and the field
/// and says what to change; none contains the client secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the OAuth providers configuration is not valid JSON ({reason} at line {line}, column \
         {column}); it must be an object like {{\"github\": {{\"client_id\": \"...\", \
         \"client_secret\": \"...\"}}}}"
    )]
    InvalidJson {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error(
        "the OAuth providers configuration must be a JSON object from provider name to \
         settings, like {{\"github\": {{\"client_id\": \"...\", \"client_secret\": \"...\"}}}}"
    )]
    NotAnObject,
    #[error(
        "OAuth provider `{provider}`: {reason}; fix this provider's entry in the configuration"
    )]
    InvalidEntry { provider: String, reason: String },
    #[error(
        "OAuth provider `{provider}`: `{field}` is missing or empty; copy it from the app \
         registered in the provider's developer console"
    )]
    MissingField {
        provider: String,
        field: &'static str,
    },
    #[error(
        "OAuth provider `{provider}` is not built in (built-ins: {}), so it must set \
         `{field}`; check the name for a typo, or give both `authorize_url` and `token_url`",
        BUILTIN_PROVIDERS.join(", ")
    )]
    CustomWithoutEndpoint {
        provider: String,
        field: &'static str,
    },
    #[error(
        "OAuth provider name `{name}` is not allowed; use 1 to 64 lowercase letters, digits, \
         `-` or `_`"
    )]
    InvalidName { name: String },
    #[error(
        "OAuth provider `{provider}`: `{field}` is `{url}`, which is not https; OAuth \
         endpoints must use https (plain http is accepted only for localhost/127.0.0.1)"
    )]
    InsecureUrl {
        provider: String,
        field: &'static str,
        url: String,
    },
    #[error("OAuth provider `{provider}`: `{field}` is not a usable URL: {reason}")]
    InvalidUrl {
        provider: String,
        field: &'static str,
        reason: String,
    },
    #[error(
        "OAuth provider `{provider}`: `extra_authorize_params` may not set `{param}`, which \
         the flow sets itself; remove it (use `scopes` for scopes)"
    )]
    ReservedParam { provider: String, param: String },
    #[error(
        "OAuth provider `{provider}` has no `client_secret` and PKCE is off; a client without \
         a secret must set `\"pkce\": true` (or add the secret)"
    )]
    PublicClientWithoutPkce { provider: String },
    #[error("OAuth provider `{provider}` is configured twice; keep one entry")]
    Duplicate { provider: String },
}

/// One provider's entry as written in the configuration. Every field is optional here so
/// that a missing one produces an error naming the provider and the field.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorize_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope_separator: Option<ScopeSeparator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pkce: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extra_authorize_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth_style: Option<AuthStyle>,
}

pub(super) fn parse(json: &str) -> Result<Providers, ConfigError> {
    // Parse in two steps so that an error in one entry names its provider.
    let root: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ConfigError::InvalidJson {
            line: e.line(),
            column: e.column(),
            reason: syntax_reason(&e),
        })?;
    let serde_json::Value::Object(entries) = root else {
        return Err(ConfigError::NotAnObject);
    };
    let configs = entries
        .into_iter()
        .map(|(name, value)| resolve(name, value))
        .collect::<Result<Vec<_>, _>>()?;
    Providers::from_configs(configs)
}

/// serde_json's syntax messages never quote the input; keep only their category and text.
fn syntax_reason(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input".to_owned(),
        _ => {
            // The message ends with " at line L column C", which the variant already has.
            let message = e.to_string();
            match message.rfind(" at line ") {
                Some(at) => message[..at].to_owned(),
                None => message,
            }
        }
    }
}

fn resolve(name: String, value: serde_json::Value) -> Result<ProviderConfig, ConfigError> {
    if !super::is_valid_name(&name) {
        return Err(ConfigError::InvalidName { name });
    }
    let secret = value
        .get("client_secret")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let entry: ProviderEntry = serde_json::from_value(value).map_err(|e| {
        // A type error can quote the offending value; make sure that is never the secret.
        let mut reason = e.to_string();
        if let Some(secret) = secret.as_deref().filter(|s| !s.is_empty()) {
            reason = reason.replace(secret, "[redacted]");
        }
        ConfigError::InvalidEntry {
            provider: name.clone(),
            reason,
        }
    })?;

    let client_id = entry
        .client_id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| ConfigError::MissingField {
            provider: name.clone(),
            field: "client_id",
        })?;

    let mut config = match template(&name) {
        Some(t) => {
            let secret = entry
                .client_secret
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ConfigError::MissingField {
                    provider: name.clone(),
                    field: "client_secret",
                })?;
            t.into_config(&name, client_id, Some(secret))
        }
        None => {
            let endpoint = |value: &Option<String>, field| {
                value
                    .as_deref()
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| ConfigError::CustomWithoutEndpoint {
                        provider: name.clone(),
                        field,
                    })
                    .and_then(|v| parse_url(&name, field, v))
            };
            ProviderConfig {
                name: name.clone(),
                authorize_url: endpoint(&entry.authorize_url, "authorize_url")?,
                token_url: endpoint(&entry.token_url, "token_url")?,
                scopes: Vec::new(),
                scope_separator: ScopeSeparator::default(),
                pkce: false,
                client_id,
                client_secret: entry.client_secret.clone(),
                extra_authorize_params: Vec::new(),
                auth_style: AuthStyle::default(),
            }
        }
    };

    // Overrides: a field that is given replaces the template's value entirely.
    if let Some(url) = &entry.authorize_url {
        config.authorize_url = parse_url(&name, "authorize_url", url)?;
    }
    if let Some(url) = &entry.token_url {
        config.token_url = parse_url(&name, "token_url", url)?;
    }
    if let Some(scopes) = entry.scopes {
        config.scopes = scopes;
    }
    if let Some(separator) = entry.scope_separator {
        config.scope_separator = separator;
    }
    if let Some(pkce) = entry.pkce {
        config.pkce = pkce;
    }
    if let Some(params) = entry.extra_authorize_params {
        config.extra_authorize_params = params.into_iter().collect();
    }
    if let Some(style) = entry.auth_style {
        config.auth_style = style;
    }
    config.validate()?;
    Ok(config)
}

fn parse_url(provider: &str, field: &'static str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value.trim()).map_err(|e| ConfigError::InvalidUrl {
        provider: provider.to_owned(),
        field,
        reason: e.to_string(),
    })
}

/// An example configuration with every built-in provider and one custom provider, with
/// placeholder credentials. It parses with [`Providers::from_config`].
pub fn example_config() -> String {
    let mut root = BTreeMap::new();
    for name in BUILTIN_PROVIDERS {
        root.insert(
            name.to_owned(),
            ProviderEntry {
                client_id: Some(format!("<{name} client id>")),
                client_secret: Some(format!("<{name} client secret>")),
                ..ProviderEntry::default()
            },
        );
    }
    root.insert(
        "acme-sso".to_owned(),
        ProviderEntry {
            client_id: Some("<acme client id>".to_owned()),
            client_secret: Some("<acme client secret>".to_owned()),
            authorize_url: Some("https://sso.acme.example/oauth2/authorize".to_owned()),
            token_url: Some("https://sso.acme.example/oauth2/token".to_owned()),
            scopes: Some(vec!["read".to_owned(), "offline_access".to_owned()]),
            pkce: Some(true),
            auth_style: Some(AuthStyle::BasicAuth),
            ..ProviderEntry::default()
        },
    );
    serde_json::to_string_pretty(&root).expect("the example configuration serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_example() {
        let providers = Providers::from_config(
            r#"{
                "github": { "client_id": "gh-id", "client_secret": "gh-secret" },
                "google": { "client_id": "g-id", "client_secret": "g-secret",
                            "scopes": ["openid", "https://www.googleapis.com/auth/drive.readonly"] },
                "acme": { "client_id": "a-id",
                          "authorize_url": "https://sso.acme.test/authorize",
                          "token_url": "https://sso.acme.test/token",
                          "pkce": true,
                          "scopes": ["read"],
                          "extra_authorize_params": { "audience": "api" },
                          "auth_style": "basic_auth" }
            }"#,
        )
        .unwrap();
        assert_eq!(
            providers.names().collect::<Vec<_>>(),
            ["acme", "github", "google"]
        );

        let github = providers.get("github").unwrap();
        assert_eq!(
            github.token_url.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        assert_eq!(github.scopes, ["repo", "read:org", "read:user"]);
        assert_eq!(github.client_secret.as_deref(), Some("gh-secret"));

        let google = providers.get("google").unwrap();
        assert_eq!(google.scopes.len(), 2, "given scopes replace the defaults");
        assert!(google.pkce, "not overridden, so the template's value stays");
        assert_eq!(google.extra_authorize_params.len(), 2);

        let acme = providers.get("acme").unwrap();
        assert_eq!(acme.client_secret, None);
        assert!(acme.pkce);
        assert_eq!(acme.auth_style, AuthStyle::BasicAuth);
        assert_eq!(
            acme.extra_authorize_params,
            [("audience".to_owned(), "api".to_owned())]
        );
    }

    #[test]
    fn generates_an_example_that_parses() {
        let example = example_config();
        let providers = Providers::from_config(&example).unwrap();
        assert_eq!(providers.len(), BUILTIN_PROVIDERS.len() + 1);
        assert!(providers.get("acme-sso").unwrap().pkce);
    }

    #[test]
    fn builtins_need_a_client_id_and_secret() {
        let err = Providers::from_config(r#"{"slack": {"client_id": "x"}}"#).unwrap_err();
        assert_eq!(
            err,
            ConfigError::MissingField {
                provider: "slack".to_owned(),
                field: "client_secret"
            }
        );
        assert!(err.to_string().contains("`slack`"), "{err}");
        let err = Providers::from_config(r#"{"slack": {"client_secret": "x"}}"#).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::MissingField {
                field: "client_id",
                ..
            }
        ));
    }

    #[test]
    fn custom_providers_need_both_endpoints() {
        let err = Providers::from_config(
            r#"{"gihtub": {"client_id": "x", "client_secret": "y",
                           "authorize_url": "https://example.com/a"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::CustomWithoutEndpoint {
                provider: "gihtub".to_owned(),
                field: "token_url"
            }
        );
        assert!(err.to_string().contains("typo"), "{err}");
    }

    #[test]
    fn http_endpoints_are_refused() {
        let err = Providers::from_config(
            r#"{"github": {"client_id": "x", "client_secret": "y",
                           "token_url": "http://github.com/login/oauth/access_token"}}"#,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InsecureUrl {
                field: "token_url",
                ..
            }
        ));
        assert!(err.to_string().contains("https"), "{err}");
        Providers::from_config(
            r#"{"test": {"client_id": "x", "client_secret": "y",
                         "authorize_url": "http://127.0.0.1:1234/authorize",
                         "token_url": "http://localhost:1234/token"}}"#,
        )
        .unwrap();
    }

    #[test]
    fn entry_errors_name_the_provider_and_hide_the_secret() {
        let err = Providers::from_config(
            r#"{"github": {"client_id": "x", "client_secret": "hunter2-secret",
                           "pkce": "hunter2-secret"}}"#,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ConfigError::InvalidEntry { .. }), "{message}");
        assert!(message.contains("`github`"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");

        let err =
            Providers::from_config(r#"{"github": {"client_id": "x", "secret": "y"}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `secret`"), "{err}");
    }

    #[test]
    fn malformed_documents_are_refused_clearly() {
        assert!(matches!(
            Providers::from_config("[1]"),
            Err(ConfigError::NotAnObject)
        ));
        assert!(matches!(
            Providers::from_config("{\"github\": "),
            Err(ConfigError::InvalidJson { .. })
        ));
        assert!(matches!(
            Providers::from_config(r#"{"Bad Name": {"client_id": "x"}}"#),
            Err(ConfigError::InvalidName { .. })
        ));
    }
}
