//! Org administration end to end: invitations, roles, the last admin, deactivation,
//! allowed domains and API keys.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tributary::Roles;
use tributary_testkit::{Http, TestEnv};

async fn send(
    http: &Http,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    http.send(method, path, body).await
}

async fn me(http: &Http) -> StatusCode {
    send(http, reqwest::Method::GET, "/api/v1/auth/me", None)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_members_invitations_domains_and_keys() -> anyhow::Result<()> {
    use reqwest::Method;
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (owner, session) = Http::signed_up(&app, "owner@example.com", "home").await?;
    let org = session["org_id"].as_str().unwrap().to_owned();
    let owner_id = session["user_id"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/orgs/{org}");

    // Invite Bob as a curator; he signs up with the invitation.
    let (status, invitation) = send(
        &owner,
        Method::POST,
        &format!("{base}/invitations"),
        Some(json!({ "email": "Bob@Example.com", "role": "curator" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let anonymous = Http::new(&app);
    let signup = json!({
        "email": "bob@example.com", "password": "bob has a long passphrase 7", "name": "Bob",
        "invitation": { "id": invitation["id"], "token": invitation["token"] },
    });
    let (status, bob_session) = send(
        &anonymous,
        Method::POST,
        "/api/v1/auth/signup",
        Some(signup.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bob_session}");
    assert_eq!(bob_session["org_id"], org.as_str());
    assert_eq!(bob_session["role"], "curator");
    let bob = anonymous.with_token(bob_session["access_token"].as_str().unwrap())?;
    let bob_id = bob_session["user_id"].as_str().unwrap().to_owned();
    // The invitation is used up.
    let mut again = signup.clone();
    again["email"] = json!("bob2@example.com");
    let (status, _) = send(&anonymous, Method::POST, "/api/v1/auth/signup", Some(again)).await;
    assert_eq!(status, StatusCode::GONE);

    let (status, members) = send(&owner, Method::GET, &format!("{base}/members"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");

    // A curator may not administer.
    let (status, _) = send(
        &bob,
        Method::POST,
        &format!("{base}/invitations"),
        Some(json!({ "email": "x@example.com" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The last active admin can be neither demoted, deactivated nor removed.
    let own = format!("{base}/members/{owner_id}");
    let (status, problem) = send(
        &owner,
        Method::PUT,
        &format!("{own}/role"),
        Some(json!({ "role": "member" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["type"], "https://tributary.dev/problems/last_admin");
    assert_eq!(
        send(&owner, Method::POST, &format!("{own}/deactivate"), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        send(&owner, Method::DELETE, &own, None).await.0,
        StatusCode::CONFLICT
    );

    // Deactivation takes effect on the next request; reactivation restores access.
    let bob_path = format!("{base}/members/{bob_id}");
    assert_eq!(me(&bob).await, StatusCode::OK);
    assert_eq!(
        send(
            &owner,
            Method::POST,
            &format!("{bob_path}/deactivate"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(me(&bob).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(
            &owner,
            Method::POST,
            &format!("{bob_path}/reactivate"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(me(&bob).await, StatusCode::OK);
    // Promoted to admin, Bob may administer; then the owner is no longer the last admin.
    assert_eq!(
        send(
            &owner,
            Method::PUT,
            &format!("{bob_path}/role"),
            Some(json!({ "role": "admin" }))
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = send(&bob, Method::GET, &format!("{base}/invitations"), None).await;
    assert_eq!(status, StatusCode::OK);

    // Allowed domains: a sign-up from that domain joins as a member.
    assert_eq!(
        send(
            &owner,
            Method::PUT,
            &format!("{base}/allowed-domains"),
            Some(json!({ "domains": ["Acme.Test"] }))
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (status, carol) = send(&anonymous, Method::POST, "/api/v1/auth/signup", Some(json!({ "email": "carol@acme.test", "password": "carol's own long passphrase", "name": "Carol" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{carol}");
    assert_eq!(carol["org_id"], org.as_str());
    assert_eq!(carol["role"], "member");
    let (status, _) = send(&anonymous, Method::POST, "/api/v1/auth/signup", Some(json!({ "email": "dan@elsewhere.test", "password": "dan's own long passphrase", "name": "Dan" }))).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no org admits that domain"
    );

    // API keys: the secret is shown once, works as a bearer token with its role, and
    // stops working when revoked.
    let (status, key) = send(
        &owner,
        Method::POST,
        &format!("{base}/api-keys"),
        Some(json!({ "name": "indexer", "role": "member" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let upstream = anonymous.with_token(key["token"].as_str().unwrap())?;
    let (status, who) = send(&upstream, Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(status, StatusCode::OK, "{who}");
    assert_eq!(who["api_key_id"], key["id"]);
    assert_eq!(who["role"], "member");
    assert_eq!(
        send(&upstream, Method::GET, &format!("{base}/members"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&upstream, Method::GET, &format!("{base}/api-keys"), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (_, keys) = send(&owner, Method::GET, &format!("{base}/api-keys"), None).await;
    let listed = &keys.as_array().unwrap()[0];
    assert_eq!(listed["prefix"], key["prefix"]);
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(listed.get("token").is_none() && listed.get("secret_hash").is_none());
    let key_path = format!("{base}/api-keys/{}", key["id"].as_str().unwrap());
    assert_eq!(
        send(&owner, Method::DELETE, &key_path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(me(&upstream).await, StatusCode::UNAUTHORIZED);

    // The security log: admin changes and a failed login, without any hash.
    let (status, _) = send(
        &anonymous,
        Method::POST,
        "/api/v1/auth/login",
        Some(json!({ "email": "bob@example.com", "password": "not bob's password at all" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wanted = [
        "org.member_added",
        "org.invitation_created",
        "org.invitation_accepted",
        "org.member_deactivated",
        "org.member_reactivated",
        "org.member_role_changed",
        "org.allowed_domains_set",
        "org.api_key_created",
        "org.api_key_revoked",
        "security.login_failed",
    ];
    let log = env
        .eventually(30, "the security log", || async {
            let (status, page) = send(
                &owner,
                Method::GET,
                &format!("{base}/security-events?limit=200"),
                None,
            )
            .await;
            anyhow::ensure!(status == StatusCode::OK, "{status} {page}");
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let types: Vec<String> = items
                .iter()
                .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
                .collect();
            Ok(wanted
                .iter()
                .all(|w| types.iter().any(|t| t == w))
                .then_some(items))
        })
        .await?;
    let text = serde_json::to_string(&log)?;
    assert!(!text.contains("_hash"), "a hash in the security log");
    let failed = log
        .iter()
        .find(|e| e["type"] == "security.login_failed")
        .unwrap();
    assert_eq!(failed["subject"], bob_id.as_str());
    let (_, carol_session) = send(
        &anonymous,
        Method::POST,
        "/api/v1/auth/login",
        Some(json!({ "email": "carol@acme.test", "password": "carol's own long passphrase" })),
    )
    .await;
    let carol = anonymous.with_token(carol_session["access_token"].as_str().unwrap())?;
    assert_eq!(
        send(
            &carol,
            Method::GET,
            &format!("{base}/security-events"),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Removed, Bob loses access.
    assert_eq!(
        send(&owner, Method::DELETE, &bob_path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(me(&bob).await, StatusCode::UNAUTHORIZED);
    // No secret in the clear on any topic: API key, invitation token, passwords.
    let secrets = [
        key["token"].as_str().unwrap().to_owned(),
        invitation["token"].as_str().unwrap().to_owned(),
        "bob has a long passphrase 7".to_owned(),
        "carol's own long passphrase".to_owned(),
    ];
    for (topic, _) in env.topics().all() {
        for record in env.read_all(&topic)? {
            let payload = String::from_utf8_lossy(record.payload.as_deref().unwrap_or_default());
            let headers = format!("{:?}", record.headers);
            for secret in &secrets {
                assert!(
                    !payload.contains(secret.as_str()) && !headers.contains(secret.as_str()),
                    "a secret on {topic}"
                );
            }
        }
    }
    app.shutdown().await;
    Ok(())
}
