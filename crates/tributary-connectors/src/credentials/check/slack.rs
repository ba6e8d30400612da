//! Slack: `POST {base_url}/api/auth.test` with the token as a Bearer token. Slack answers
//! HTTP 200 with `{"ok": false, "error": ...}` for a bad token; only rate limiting is
//! an HTTP status (429 with `Retry-After`).

use reqwest::header::CONTENT_TYPE;

use super::http::{
    code_field, endpoint, rate_limited, read_json, retry_after, send, text_field, transport_error,
    unexpected,
};
use super::{CheckResult, CheckStatus, Inputs};

pub(super) async fn check(cx: &Inputs<'_>) -> CheckResult {
    match run(cx).await {
        Ok(result) | Err(result) => result,
    }
}

async fn run(cx: &Inputs<'_>) -> Result<CheckResult, CheckResult> {
    let token = cx.required_secret("token")?;
    let base = cx.required_setting("base_url")?;
    let url = endpoint(base, "/api/auth.test", "base URL")?;
    let request = cx
        .http
        .post(url.clone())
        .bearer_auth(token)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    let response = send(request)
        .await
        .map_err(|e| transport_error("Slack", &url, &e))?;
    let status = response.status();
    if status.as_u16() == 429 {
        return Ok(rate_limited("Slack", retry_after(response.headers())));
    }
    if !status.is_success() {
        return Ok(unexpected("Slack", &url, status));
    }
    let Some(body) = read_json(response).await else {
        return Ok(CheckResult::new(
            CheckStatus::Invalid,
            format!("{url} answered but not like the Slack API: check the base URL"),
        ));
    };
    if body.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
        let team = text_field(&body, "/team");
        let user = text_field(&body, "/user").unwrap_or_else(|| "the token's user".to_owned());
        let message = match &team {
            Some(team) => format!("authenticated as {user} in Slack workspace {team}"),
            None => format!("authenticated as {user}"),
        };
        return Ok(CheckResult::new(CheckStatus::Ok, message).with_identity(team));
    }
    let code = code_field(&body, "/error").unwrap_or_else(|| "unknown_error".to_owned());
    Ok(refusal(&code))
}

fn refusal(code: &str) -> CheckResult {
    let (status, next) = match code {
        "invalid_auth" => (
            CheckStatus::Unauthorized,
            "Slack does not recognise the token: copy the bot token (xoxb-…) from the app's \
             OAuth & Permissions page again and rotate the credential",
        ),
        "not_authed" => (
            CheckStatus::Unauthorized,
            "Slack received no token: enter the token and check again",
        ),
        "token_revoked" => (
            CheckStatus::Unauthorized,
            "the token was revoked, e.g. the app was uninstalled: reinstall the Slack app to \
             the workspace and rotate the credential with the new token",
        ),
        "token_expired" => (
            CheckStatus::Unauthorized,
            "the token expired (token rotation is on for this app): reinstall the app to get a \
             new token and rotate the credential",
        ),
        "account_inactive" => (
            CheckStatus::Unauthorized,
            "the token belongs to a deactivated user or a removed app: reinstall the Slack app \
             (or use a token of an active user) and rotate the credential",
        ),
        "ratelimited" => return rate_limited("Slack", None),
        "team_access_not_granted" | "ekm_access_denied" | "access_denied" => (
            CheckStatus::Forbidden,
            "the token is valid but Slack refused access to the workspace: ask a workspace \
             admin to grant the app access, then check again",
        ),
        _ => (
            CheckStatus::Invalid,
            "Slack refused the token: see Slack's documentation of this error for auth.test, \
             fix the token and check again",
        ),
    };
    CheckResult::new(status, format!("{next} (Slack error {code})"))
}
