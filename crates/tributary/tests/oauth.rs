//! OAuth end to end against a provider written for the tests (it checks the PKCE
//! verifier, issues expiring access tokens and single-use rotating refresh tokens):
//! start → provider → callback stores an encrypted `oauth2` credential; the refresher
//! renews before expiry through transient failures; `invalid_grant` marks the credential
//! for re-authorization; reused, tampered and denied authorizations answer clear problems
//! and are recorded; no token reaches a topic.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tributary::Roles;
use tributary_oauth::Url;
use tributary_oauth::fake::{FakeConfig, FakeProvider};
use tributary_testkit::{Http, TestEnv};

async fn send(
    http: &Http,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    http.send(method, path, body).await
}

/// `GET /oauth/acme/start…` as the admin: the provider URL it redirects to.
async fn start(admin: &Http, token: &str, query: &str) -> anyhow::Result<Url> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .get(admin.url(&format!("/api/v1/oauth/acme/start{query}")))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == StatusCode::FOUND,
        "start: {}",
        response.status()
    );
    let location = response.headers()["location"].to_str()?.to_owned();
    Ok(Url::parse(&location)?)
}

/// The provider's redirect back to Tributary, as the browser would follow it.
async fn callback(app: &Http, params: &tributary_oauth::CallbackParams) -> (StatusCode, Value) {
    let mut url = Url::parse(&app.url("/api/v1/oauth/acme/callback")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in [
            ("code", &params.code),
            ("state", &params.state),
            ("error", &params.error),
            ("error_description", &params.error_description),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    let response = reqwest::get(url).await.expect("callback");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn credential(admin: &Http, id: &str) -> Value {
    send(
        admin,
        Method::GET,
        &format!("/api/v1/credentials/{id}"),
        None,
    )
    .await
    .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_credentials_are_authorized_refreshed_and_flagged() -> anyhow::Result<()> {
    let fake = FakeProvider::start_with(FakeConfig {
        require_pkce: true,
        expires_in: 60,
        ..FakeConfig::default()
    })
    .await?;
    let mut env = TestEnv::new().await?;
    env.settings.oauth_providers = Some(
        json!({ "acme": {
            "client_id": fake.config().client_id, "client_secret": fake.config().client_secret,
            "authorize_url": fake.authorize_url().to_string(), "token_url": fake.token_url().to_string(),
            "scopes": ["read", "write"], "pkce": true,
        }})
        .to_string(),
    );
    let app = env.start(Roles::CONTROL).await?;
    let (admin, session) = Http::signed_up(&app, "admin@example.com", "oauth-org").await?;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let anonymous = Http::new(&app);

    let (status, providers) = send(&admin, Method::GET, "/api/v1/oauth/providers", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(providers[0]["name"], "acme");
    assert!(
        providers[0]["redirect_uri"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/oauth/acme/callback")
    );
    let (status, _) = send(&admin, Method::GET, "/api/v1/oauth/nope/start", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The authorization: the redirect carries a signed state and an S256 challenge.
    let authorize = start(&admin, &token, "?name=Acme%20workspace").await?;
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["state"].contains('.'), "signed state");
    let approved = fake.approve(&authorize).await?;
    assert!(approved.code.is_some(), "the fake approved");
    let (status, created) = callback(&anonymous, &approved).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["kind"], "oauth2");
    assert_eq!(created["name"], "Acme workspace");
    assert_eq!(created["config"]["provider"], "acme");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        created["secrets"]["access_token"]["mask"]
            .as_str()
            .unwrap()
            .starts_with('•')
    );
    assert!(created["secrets"].get("refresh_token").is_some());

    // The same state again: refused and recorded.
    let (status, problem) = callback(&anonymous, &approved).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("start it again"),
        "{problem}"
    );
    // A tampered state.
    let mut tampered = approved.clone();
    tampered.state = tampered.state.map(|s| format!("x{s}"));
    let (status, problem) = callback(&anonymous, &tampered).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    // The tokens expire in 60 s: the refresher renews them at once, through two 503s
    // (retried with backoff), with the rotated refresh token each time.
    let calls = fake.token_calls();
    fake.fail_next_with_unavailable(2);
    env.eventually(60, "two renewals", || async {
        let c = credential(&admin, &id).await;
        Ok((c["version"].as_i64().unwrap_or(0) >= 3).then_some(c))
    })
    .await?;
    assert!(
        fake.pending_faults().is_empty(),
        "the 503s were met and retried"
    );
    assert!(
        fake.token_calls() >= calls + 3,
        "{} token calls",
        fake.token_calls()
    );
    // Longer-lived tokens from now on: the renewals stop once one is stored.
    fake.set_expires_in(3600);
    let settled = env
        .eventually(60, "a long-lived token", || async {
            let c = credential(&admin, &id).await;
            let far = c["config"]["expires_at"]
                .as_str()
                .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .is_some_and(|at| at > chrono::Utc::now() + chrono::Duration::minutes(30));
            Ok(far.then_some(c))
        })
        .await?;
    assert_eq!(settled["status"], "active");

    // Re-authorize with short-lived tokens, then the provider refuses the refresh token:
    // the credential needs re-authorization, with an event for a notifier.
    fake.set_expires_in(60);
    let authorize = start(&admin, &token, &format!("?credential_id={id}")).await?;
    let (status, reconnected) = callback(&anonymous, &fake.approve(&authorize).await?).await;
    assert_eq!(status, StatusCode::CREATED, "{reconnected}");
    assert_eq!(reconnected["id"], id.as_str());
    fake.fail_next_with_invalid_grant(5);
    env.eventually(60, "needs re-authorization", || async {
        let c = credential(&admin, &id).await;
        Ok((c["status"] == "needs_reauthorization").then_some(()))
    })
    .await?;
    let (_, audit) = send(
        &admin,
        Method::GET,
        &format!("/api/v1/audit?credential={id}&action=credential.reauthorization_required"),
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit["items"][0]["actor"], "system:refresher");

    // A user who says no.
    fake.deny_authorization(true);
    let denied = fake.approve(&start(&admin, &token, "").await?).await?;
    assert_eq!(denied.error.as_deref(), Some("access_denied"));
    let (status, problem) = callback(&anonymous, &denied).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        problem["type"], "https://tributary.dev/problems/oauth_denied",
        "{problem}"
    );

    // Every failure is in the org's security log, without codes or tokens.
    let (_, me) = send(&admin, Method::GET, "/api/v1/auth/me", None).await;
    let org = me["org_id"].as_str().unwrap().to_owned();
    let reasons = env
        .eventually(30, "the oauth failures in the security log", || async {
            let (_, log) = send(
                &admin,
                Method::GET,
                &format!("/api/v1/orgs/{org}/security-events?limit=200"),
                None,
            )
            .await;
            let reasons: Vec<String> = log["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["type"] == "security.oauth_failed")
                .map(|e| {
                    e["detail"]["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
            Ok((reasons.len() >= 2).then_some(reasons))
        })
        .await?;
    assert!(reasons.contains(&"state_reused".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"access_denied".to_owned()), "{reasons:?}");

    // No token, code or client secret in any record of any topic.
    let (status, revealed) = send(
        &admin,
        Method::POST,
        &format!("/api/v1/credentials/{id}/reveal"),
        Some(json!({ "password": "a long test passphrase 123" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revealed}");
    let mut needles: Vec<String> = revealed["values"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    needles.push(fake.config().client_secret.clone());
    needles.push(approved.code.clone().unwrap());
    assert!(
        needles.iter().all(|n| n.len() >= 16),
        "{} needles",
        needles.len()
    );
    for topic in env.topics().all().into_iter().map(|(t, _)| t) {
        for record in env.read_all(&topic)? {
            let text = String::from_utf8_lossy(&record.payload.unwrap_or_default()).into_owned();
            for needle in &needles {
                assert!(!text.contains(needle.as_str()), "a secret in {topic}");
            }
        }
    }
    app.shutdown().await;
    Ok(())
}
