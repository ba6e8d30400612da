//! Atlassian Cloud: `GET {site_url}/rest/api/3/myself` with Basic `email:api_token`.
//! That is Jira's API; a site with Confluence only answers 404 there, so the check then
//! asks Confluence's `GET {site_url}/wiki/rest/api/user/current`.

use reqwest::header::ACCEPT;
use reqwest::{Response, Url};
use serde_json::Value;

use super::http::{
    endpoint, rate_limited, read_json, retry_after, send, text_field, transport_error, unexpected,
};
use super::{CheckResult, CheckStatus, Inputs};

const JIRA_MYSELF: &str = "/rest/api/3/myself";
const CONFLUENCE_CURRENT: &str = "/wiki/rest/api/user/current";

pub(super) async fn check(cx: &Inputs<'_>) -> CheckResult {
    match run(cx).await {
        Ok(result) | Err(result) => result,
    }
}

async fn run(cx: &Inputs<'_>) -> Result<CheckResult, CheckResult> {
    let site = cx.required_setting("site_url")?;
    let email = cx.required_setting("email")?;
    let api_token = cx.required_secret("api_token")?;
    let get = async |url: &Url| {
        let request = cx
            .http
            .get(url.clone())
            .basic_auth(email, Some(api_token))
            .header(ACCEPT, "application/json");
        send(request)
            .await
            .map_err(|e| transport_error("Atlassian", url, &e))
    };

    let jira = endpoint(site, JIRA_MYSELF, "site URL")?;
    let response = get(&jira).await?;
    if response.status().as_u16() != 404 {
        return Ok(read(response, &jira, site, email).await);
    }
    let confluence = endpoint(site, CONFLUENCE_CURRENT, "site URL")?;
    let response = get(&confluence).await?;
    if response.status().as_u16() == 404 {
        return Ok(CheckResult::new(
            CheckStatus::Invalid,
            format!(
                "neither Jira nor Confluence answers at {site} (404): check the site URL \
                 (https://<your-site>.atlassian.net)"
            ),
        ));
    }
    Ok(read(response, &confluence, site, email).await)
}

async fn read(response: Response, url: &Url, site: &str, email: &str) -> CheckResult {
    let status = response.status();
    let headers = response.headers().clone();
    let rejected = || {
        CheckResult::new(
            CheckStatus::Unauthorized,
            format!(
                "Atlassian rejected the email and API token for {site}: check that {email} is \
                 the account that created the token, or create a new token at \
                 https://id.atlassian.com/manage-profile/security/api-tokens and rotate the \
                 credential"
            ),
        )
    };
    match status.as_u16() {
        200..=299 => {
            let Some(body) = read_json(response).await else {
                return CheckResult::new(
                    CheckStatus::Invalid,
                    format!("{url} answered but not like Jira or Confluence: check the site URL"),
                );
            };
            // Confluence answers an unauthenticated request with its anonymous user.
            if body.get("type").and_then(Value::as_str) == Some("anonymous") {
                return rejected();
            }
            let identity = text_field(&body, "/displayName")
                .or_else(|| text_field(&body, "/emailAddress"))
                .or_else(|| text_field(&body, "/accountId"));
            let who = identity.as_deref().unwrap_or(email);
            CheckResult::new(CheckStatus::Ok, format!("authenticated as {who} on {site}"))
                .with_identity(identity)
        }
        401 => rejected(),
        403 => {
            let captcha = headers
                .get("X-Seraph-LoginReason")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("AUTHENTICATION_DENIED"));
            if captcha {
                CheckResult::new(
                    CheckStatus::Forbidden,
                    format!(
                        "Atlassian requires a CAPTCHA for {email} after failed logins: log in once \
                         at {site} in a browser, then check again"
                    ),
                )
            } else {
                CheckResult::new(
                    CheckStatus::Forbidden,
                    format!(
                        "the token is valid but {email} has no access to Jira or Confluence on \
                         {site}: grant the account product access, then check again"
                    ),
                )
            }
        }
        429 => rate_limited("Atlassian", retry_after(&headers)),
        _ => unexpected("Atlassian", url, status),
    }
}
