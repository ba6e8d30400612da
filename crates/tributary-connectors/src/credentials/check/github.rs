//! GitHub: `GET {base_url}/user` with the token as a Bearer token.

use reqwest::header::ACCEPT;

use super::http::{
    endpoint, epoch_to_rfc3339, header_int, rate_limited, rate_limited_because, read_json,
    retry_after, send, text_field, transport_error, unexpected,
};
use super::{CheckResult, CheckStatus, Inputs};

const API_VERSION: &str = "2022-11-28";

pub(super) async fn check(cx: &Inputs<'_>) -> CheckResult {
    match run(cx).await {
        Ok(result) | Err(result) => result,
    }
}

async fn run(cx: &Inputs<'_>) -> Result<CheckResult, CheckResult> {
    let token = cx.required_secret("token")?;
    let base = cx.required_setting("base_url")?;
    let url = endpoint(base, "/user", "base URL")?;
    let request = cx
        .http
        .get(url.clone())
        .bearer_auth(token)
        .header(ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", API_VERSION);
    let response = send(request)
        .await
        .map_err(|e| transport_error("GitHub", &url, &e))?;
    let status = response.status();
    let headers = response.headers().clone();

    let result = match status.as_u16() {
        200..=299 => {
            let body = read_json(response).await;
            let Some(login) = body.as_ref().and_then(|b| text_field(b, "/login")) else {
                return Ok(CheckResult::new(
                    CheckStatus::Invalid,
                    format!(
                        "{url} answered but not like the GitHub API (no user login): check the \
                         base URL (GitHub Enterprise Server uses https://<host>/api/v3)"
                    ),
                ));
            };
            // Classic tokens report their scopes; fine-grained tokens send no such header.
            let scopes = headers
                .get("X-OAuth-Scopes")
                .and_then(|v| v.to_str().ok())
                .map(|s| match s.trim() {
                    "" => "; the token has no scopes, so it can read public data only".to_owned(),
                    s => format!("; token scopes: {s}"),
                })
                .unwrap_or_default();
            CheckResult::new(
                CheckStatus::Ok,
                format!("authenticated as GitHub user {login}{scopes}"),
            )
            .with_identity(Some(login))
        }
        401 => CheckResult::new(
            CheckStatus::Unauthorized,
            "the token was rejected by GitHub (401 Bad credentials): it is wrong, expired or \
             revoked; create a new token and rotate the credential",
        ),
        403 | 429 => {
            if header_int(&headers, "X-RateLimit-Remaining") == Some(0) {
                let reset = header_int(&headers, "X-RateLimit-Reset").and_then(epoch_to_rfc3339);
                rate_limited_because(
                    "this token has used up its GitHub rate limit",
                    reset.map(|t| format!("after {t}, when the limit resets")),
                )
            } else if let Some(when) = retry_after(&headers) {
                rate_limited_because("GitHub's secondary rate limit was hit", Some(when))
            } else if status.as_u16() == 429 {
                rate_limited("GitHub", None)
            } else {
                let reason = read_json(response)
                    .await
                    .and_then(|b| text_field(&b, "/message"))
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                CheckResult::new(
                    CheckStatus::Forbidden,
                    format!(
                        "GitHub accepted the token but refused to read the user{reason}: use a \
                         personal access token, or one allowed by the organization's token \
                         policy, and rotate the credential"
                    ),
                )
            }
        }
        404 => CheckResult::new(
            CheckStatus::Invalid,
            format!(
                "there is no GitHub API at {url} (404): check the base URL (GitHub Enterprise \
                 Server uses https://<host>/api/v3)"
            ),
        ),
        _ => unexpected("GitHub", &url, status),
    };
    Ok(result)
}
