//! Accounts end to end: sign up, sign in, refresh with rotation and reuse detection,
//! switch org, sign out — through the API, the processor and the read models.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tributary::Roles;
use tributary_testkit::{Http, TestEnv};

const PASSWORD: &str = "correct horse battery staple 42";

async fn post(http: &Http, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = http.client.post(http.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get(http: &Http, path: &str, token: &str) -> (StatusCode, Value) {
    let response = http
        .client
        .get(http.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn signup(http: &Http, email: &str, slug: &str) -> (StatusCode, Value) {
    post(
        http,
        "/api/v1/auth/signup",
        json!({ "email": email, "password": PASSWORD, "name": "Ada Lovelace", "org": { "slug": slug, "name": "Analytical" } }),
        None,
    )
    .await
}

fn token<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_in_refresh_and_sign_out() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let http = Http::new(&app);

    let (status, session) = signup(&http, "Ada@Example.com ", "analytical").await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["role"], "admin");
    let org = session["org_id"].as_str().unwrap().to_owned();
    let (status, me) = get(&http, "/api/v1/auth/me", token(&session, "access_token")).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["org_id"], org.as_str());
    assert_eq!(me["role"], "admin");
    assert_eq!(me["memberships"][0]["slug"], "analytical");

    // The same email again (any spelling) is taken; a taken slug is refused and frees
    // the email it had claimed.
    let (status, body) = signup(&http, "ada@example.com", "other").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "https://tributary.dev/problems/email_taken");
    let (status, body) = signup(&http, "grace@example.com", "analytical").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "https://tributary.dev/problems/slug_taken");
    let (status, body) = signup(&http, "grace@example.com", "grace-co").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the released email can sign up: {body}"
    );

    // Weak passwords never reach the log.
    let (status, body) = post(
        &http,
        "/api/v1/auth/signup",
        json!({ "email": "bob@example.com", "password": "password1234", "name": "Bob", "org": { "slug": "bob", "name": "Bob" } }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Wrong password and unknown email: the same answer.
    let login = |email: &str, password: &str| json!({ "email": email, "password": password });
    let (wrong_status, wrong) = post(
        &http,
        "/api/v1/auth/login",
        login("ada@example.com", "not the password at all"),
        None,
    )
    .await;
    let (unknown_status, unknown) = post(
        &http,
        "/api/v1/auth/login",
        login("nobody@example.com", PASSWORD),
        None,
    )
    .await;
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["detail"], unknown["detail"]);

    // Growing delays after repeated failures, per account: 429 with Retry-After.
    let mut throttled = None;
    for _ in 0..8 {
        let response = http
            .client
            .post(http.url("/api/v1/auth/login"))
            .json(&login("grace@example.com", "wrong wrong wrong wrong"))
            .send()
            .await?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = response.headers().get("retry-after").cloned();
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let wait: u64 = throttled
        .expect("repeated failures were never throttled")
        .to_str()?
        .parse()?;
    // The client address is throttled too (every test request comes from 127.0.0.1):
    // wait the delay out before signing in.
    tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 200)).await;

    let (status, signed_in) = post(
        &http,
        "/api/v1/auth/login",
        login("ADA@example.com", PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let first = token(&signed_in, "refresh_token").to_owned();

    // Rotation: the new refresh token works, the old one is now a theft signal.
    let (status, rotated) = post(
        &http,
        "/api/v1/auth/refresh",
        json!({ "refresh_token": first }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = token(&rotated, "refresh_token").to_owned();
    assert_ne!(first, second);
    let (status, _) = get(&http, "/api/v1/auth/me", token(&rotated, "access_token")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, reuse) = post(
        &http,
        "/api/v1/auth/refresh",
        json!({ "refresh_token": first }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reuse}");
    let (status, _) = post(
        &http,
        "/api/v1/auth/refresh",
        json!({ "refresh_token": second }),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "reuse revokes the whole family"
    );

    // Sign out ends the session.
    let (_, fresh) = post(
        &http,
        "/api/v1/auth/login",
        login("ada@example.com", PASSWORD),
        None,
    )
    .await;
    let refresh = token(&fresh, "refresh_token").to_owned();
    let response = http
        .client
        .post(http.url("/api/v1/auth/logout"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = post(
        &http,
        "/api/v1/auth/refresh",
        json!({ "refresh_token": refresh }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // No plaintext password or token on any topic.
    for topic in [
        env.topics().commands("email"),
        env.topics().commands("user"),
        env.topics().commands("session"),
        env.topics().events("user"),
        env.topics().events("session"),
        env.topics().command_results(),
        env.topics().dead_letters(),
    ] {
        for record in env.read_all(&topic)? {
            let text = String::from_utf8_lossy(record.payload.as_deref().unwrap_or_default());
            assert!(!text.contains(PASSWORD), "a password on {topic}");
            assert!(
                !text.contains(&first) && !text.contains(&second),
                "a refresh token on {topic}"
            );
        }
    }
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_tampered_tokens_are_refused() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let http = Http::new(&app);
    let (status, session) = signup(&http, "eve@example.com", "eve").await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let access = token(&session, "access_token");
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    // Flip one character of the payload.
    let mut payload: Vec<u8> = parts[1].bytes().collect();
    payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(payload)?;
    let tampered = parts.join(".");
    let none = format!("{}.{}.", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", parts[1]);
    for bad in [
        tampered.as_str(),
        none.as_str(),
        "garbage",
        "trk_aaaaaaaaaa_nope",
    ] {
        let (status, body) = get(&http, "/api/v1/auth/me", bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}: {body}");
    }
    let response = http.client.get(http.url("/api/v1/auth/me")).send().await?;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "no credentials"
    );
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_switches_between_their_orgs() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, session) = Http::signed_up(&app, "multi@example.com", "first").await?;
    let first = session["org_id"].as_str().unwrap().to_owned();
    let created = http
        .client
        .post(http.url("/api/v1/orgs"))
        .header("prefer", "wait=20")
        .json(&json!({ "slug": "second", "name": "Second" }))
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    let second: Value = created.json().await?;
    let second = second["id"].as_str().unwrap().to_owned();
    let refresh = token(&session, "refresh_token");
    let (status, switched) = post(
        &http,
        "/api/v1/auth/switch-org",
        json!({ "refresh_token": refresh, "org_id": second }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{switched}");
    assert_eq!(switched["org_id"], second.as_str());
    assert_eq!(switched["role"], "admin");
    let (_, me) = get(&http, "/api/v1/auth/me", token(&switched, "access_token")).await;
    assert_eq!(me["org_id"], second.as_str());
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);
    // Not a member of some other org: as if it did not exist.
    let (status, _) = post(
        &http,
        "/api/v1/auth/switch-org",
        json!({ "refresh_token": token(&switched, "refresh_token"), "org_id": uuid::Uuid::now_v7() }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Back to the first.
    let (status, back) = post(
        &http,
        "/api/v1/auth/switch-org",
        json!({ "refresh_token": token(&switched, "refresh_token"), "org_id": first }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["org_id"], first.as_str());
    app.shutdown().await;
    Ok(())
}
