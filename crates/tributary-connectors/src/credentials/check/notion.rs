//! Notion: `GET {base_url}/v1/users/me` with the token as a Bearer token and the
//! `Notion-Version` header. Errors are `{"object": "error", "status", "code", "message"}`.

use super::http::{
    code_field, endpoint, rate_limited, read_json, retry_after, send, text_field, transport_error,
    unexpected,
};
use super::{CheckResult, CheckStatus, Inputs};

const NOTION_VERSION: &str = "2022-06-28";

pub(super) async fn check(cx: &Inputs<'_>) -> CheckResult {
    match run(cx).await {
        Ok(result) | Err(result) => result,
    }
}

async fn run(cx: &Inputs<'_>) -> Result<CheckResult, CheckResult> {
    let token = cx.required_secret("token")?;
    let base = cx.required_setting("base_url")?;
    let url = endpoint(base, "/v1/users/me", "base URL")?;
    let request = cx
        .http
        .get(url.clone())
        .bearer_auth(token)
        .header("Notion-Version", NOTION_VERSION);
    let response = send(request)
        .await
        .map_err(|e| transport_error("Notion", &url, &e))?;
    let status = response.status();
    if status.as_u16() == 429 {
        return Ok(rate_limited("Notion", retry_after(response.headers())));
    }
    if status.is_server_error() {
        return Ok(unexpected("Notion", &url, status));
    }
    let body = read_json(response).await;
    let Some(body) = body.filter(|b| b.get("object").is_some()) else {
        return Ok(CheckResult::new(
            CheckStatus::Invalid,
            format!("{url} answered {status} but not like the Notion API: check the base URL"),
        ));
    };
    let code = code_field(&body, "/code").unwrap_or_else(|| status.as_u16().to_string());
    let result = match status.as_u16() {
        200..=299 => {
            let name = text_field(&body, "/name").or_else(|| text_field(&body, "/id"));
            let workspace = text_field(&body, "/bot/workspace_name")
                .map(|w| format!(" in workspace {w}"))
                .unwrap_or_default();
            let who = name.as_deref().unwrap_or("an unnamed integration");
            CheckResult::new(
                CheckStatus::Ok,
                format!("authenticated as Notion integration {who}{workspace}"),
            )
            .with_identity(name)
        }
        401 => CheckResult::new(
            CheckStatus::Unauthorized,
            format!(
                "the integration secret was rejected by Notion ({code}): copy it again from \
                 https://www.notion.so/my-integrations, or create a new one, and rotate the \
                 credential"
            ),
        ),
        403 => CheckResult::new(
            CheckStatus::Forbidden,
            format!(
                "Notion accepted the secret but refused to read the integration's user ({code}): \
                 check the integration's capabilities at https://www.notion.so/my-integrations, \
                 then check again"
            ),
        ),
        _ => CheckResult::new(
            CheckStatus::Invalid,
            format!(
                "Notion refused the request with {status} ({code}): check the base URL and the \
                 secret, then check again"
            ),
        ),
    };
    Ok(result)
}
