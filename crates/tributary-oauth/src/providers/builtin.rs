//! Templates for well-known providers: their public endpoints, default scopes and whether
//! they support PKCE. The default scopes are a starting point; connectors that need more
//! override `scopes` in configuration.

use url::Url;

use super::{AuthStyle, ProviderConfig, ScopeSeparator};

/// Names that [`builtin`] and [`super::Providers::from_config`] know without endpoints.
pub const BUILTIN_PROVIDERS: [&str; 6] = [
    "atlassian",
    "github",
    "google",
    "microsoft",
    "notion",
    "slack",
];

pub(super) struct Template {
    pub(super) authorize_url: &'static str,
    pub(super) token_url: &'static str,
    pub(super) scopes: &'static [&'static str],
    pub(super) scope_separator: ScopeSeparator,
    pub(super) pkce: bool,
    pub(super) extra_authorize_params: &'static [(&'static str, &'static str)],
    pub(super) auth_style: AuthStyle,
}

pub(super) fn template(name: &str) -> Option<Template> {
    let t = match name {
        // PKCE since July 2025. OAuth-app tokens do not expire; GitHub-app user tokens do and
        // come with a refresh token.
        "github" => Template {
            authorize_url: "https://github.com/login/oauth/authorize",
            token_url: "https://github.com/login/oauth/access_token",
            scopes: &["repo", "read:org", "read:user"],
            scope_separator: ScopeSeparator::Space,
            pkce: true,
            extra_authorize_params: &[],
            auth_style: AuthStyle::ClientSecretPost,
        },
        // Without access_type=offline there is no refresh token, and without prompt=consent
        // Google sends one only on the very first authorization.
        "google" => Template {
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
            token_url: "https://oauth2.googleapis.com/token",
            scopes: &["openid", "email", "profile"],
            scope_separator: ScopeSeparator::Space,
            pkce: true,
            extra_authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
            auth_style: AuthStyle::ClientSecretPost,
        },
        // Slack wants comma-separated scopes and answers errors with HTTP 200 {"ok":false}.
        "slack" => Template {
            authorize_url: "https://slack.com/oauth/v2/authorize",
            token_url: "https://slack.com/api/oauth.v2.access",
            scopes: &["channels:read", "channels:history", "users:read"],
            scope_separator: ScopeSeparator::Comma,
            pkce: false,
            extra_authorize_params: &[],
            auth_style: AuthStyle::ClientSecretPost,
        },
        // offline_access is what yields a (rotating) refresh token.
        "atlassian" => Template {
            authorize_url: "https://auth.atlassian.com/authorize",
            token_url: "https://auth.atlassian.com/oauth/token",
            scopes: &[
                "offline_access",
                "read:me",
                "read:jira-work",
                "read:jira-user",
            ],
            scope_separator: ScopeSeparator::Space,
            pkce: false,
            extra_authorize_params: &[("audience", "api.atlassian.com"), ("prompt", "consent")],
            auth_style: AuthStyle::ClientSecretPost,
        },
        // Notion has no scopes (capabilities are set on the integration) and wants Basic auth.
        "notion" => Template {
            authorize_url: "https://api.notion.com/v1/oauth/authorize",
            token_url: "https://api.notion.com/v1/oauth/token",
            scopes: &[],
            scope_separator: ScopeSeparator::Space,
            pkce: false,
            extra_authorize_params: &[("owner", "user")],
            auth_style: AuthStyle::BasicAuth,
        },
        // The `common` tenant; a single-tenant app overrides both URLs with its tenant id.
        "microsoft" => Template {
            authorize_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            scopes: &["offline_access", "User.Read"],
            scope_separator: ScopeSeparator::Space,
            pkce: true,
            extra_authorize_params: &[],
            auth_style: AuthStyle::ClientSecretPost,
        },
        _ => return None,
    };
    Some(t)
}

impl Template {
    pub(super) fn into_config(
        self,
        name: &str,
        client_id: String,
        client_secret: Option<String>,
    ) -> ProviderConfig {
        ProviderConfig {
            name: name.to_owned(),
            authorize_url: parse_static(self.authorize_url),
            token_url: parse_static(self.token_url),
            scopes: self.scopes.iter().map(|s| (*s).to_owned()).collect(),
            scope_separator: self.scope_separator,
            pkce: self.pkce,
            client_id,
            client_secret,
            extra_authorize_params: self
                .extra_authorize_params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            auth_style: self.auth_style,
        }
    }
}

fn parse_static(url: &'static str) -> Url {
    Url::parse(url).expect("built-in endpoint URLs are valid")
}

/// The built-in provider `name` with its default settings and the given client credentials,
/// or `None` when `name` is not built in.
pub fn builtin(
    name: &str,
    client_id: impl Into<String>,
    client_secret: impl Into<String>,
) -> Option<ProviderConfig> {
    template(name).map(|t| t.into_config(name, client_id.into(), Some(client_secret.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_valid_with_credentials() {
        for name in BUILTIN_PROVIDERS {
            let p = builtin(name, "id", "secret").expect("listed names are built in");
            p.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.authorize_url.scheme(), "https");
        }
        assert!(builtin("acme", "id", "secret").is_none());
    }

    #[test]
    fn templates_carry_the_provider_quirks() {
        let google = builtin("google", "id", "s").unwrap();
        assert!(
            google
                .extra_authorize_params
                .contains(&("access_type".to_owned(), "offline".to_owned()))
        );
        let notion = builtin("notion", "id", "s").unwrap();
        assert_eq!(notion.auth_style, AuthStyle::BasicAuth);
        assert!(notion.scopes.is_empty());
        let slack = builtin("slack", "id", "s").unwrap();
        assert_eq!(slack.scope_separator, ScopeSeparator::Comma);
        let atlassian = builtin("atlassian", "id", "s").unwrap();
        assert!(atlassian.scopes.contains(&"offline_access".to_owned()));
        let microsoft = builtin("microsoft", "id", "s").unwrap();
        assert!(microsoft.pkce);
        assert_eq!(
            microsoft.token_url.as_str(),
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
    }
}
