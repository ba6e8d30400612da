//! The authorization matrices, generated from the OpenAPI document (the route table):
//! every operation that declares `bearer` security is called anonymously (401), by an
//! admin of another org (404 for anything that names an id; no foreign rows in lists),
//! and by each role of the org (403 below the role the operation declares, allowed at
//! or above it). A new endpoint is covered as soon as it is in the document.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use tributary::Roles;
use tributary_testkit::{Http, TestEnv};

const RANK: [&str; 3] = ["member", "curator", "admin"];

fn rank(role: &str) -> usize {
    RANK.iter().position(|r| *r == role).unwrap_or(0)
}

struct Operation {
    method: Method,
    path: String,
    /// `None`: any signed-in caller, not bound to an org.
    role: Option<String>,
}

/// Every operation of the document that needs a bearer token.
fn protected(doc: &Value) -> (Vec<Operation>, usize) {
    let mut ops = Vec::new();
    let mut public = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let Some(bearer) = op["security"]
                .as_array()
                .and_then(|s| s.iter().find_map(|r| r.get("bearer")))
            else {
                public += 1;
                continue;
            };
            let role = bearer
                .as_array()
                .and_then(|s| s.first())
                .and_then(|r| r.as_str())
                .map(str::to_owned);
            ops.push(Operation {
                method,
                path: path.clone(),
                role,
            });
        }
    }
    // Reads first, deletions last, and deleting the org very last: allowed calls run
    // for real.
    let order = |o: &Operation| match o.method {
        Method::GET => 0,
        Method::DELETE if o.path == "/orgs/{id}" => 3,
        Method::DELETE => 2,
        _ => 1,
    };
    ops.sort_by_key(order);
    (ops, public)
}

async fn call(http: &Http, op: &Operation, path: &str) -> (StatusCode, String) {
    let mut request = http
        .client
        .request(op.method.clone(), http.url(&format!("/api/v1{path}")));
    if matches!(op.method, Method::POST | Method::PUT | Method::PATCH) {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

fn fill(path: &str, ids: &HashMap<&str, String>) -> String {
    let mut out = path.to_owned();
    for (name, value) in ids {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    // The paths whose `{id}` is not an org.
    if path.starts_with("/commands/") {
        out = path.replace("{id}", &ids["command_id"]);
    }
    if path.starts_with("/credentials/") {
        out = path.replace("{id}", &ids["credential_id"]);
    }
    if path.starts_with("/targets/") {
        out = path.replace("{id}", &ids["target_id"]);
    }
    if path.starts_with("/profiles/") {
        out = path.replace("{id}", &ids["profile_id"]);
    }
    if path.starts_with("/sync-runs/") {
        out = path.replace("{id}", &ids["run_id"]);
    }
    if path.starts_with("/dead-letters/") {
        out = path.replace("{id}", &ids["letter_id"]);
    }
    out
}

async fn signup_with_invitation(
    app: &tributary::Running,
    admin: &Http,
    org: &str,
    email: &str,
    role: &str,
) -> anyhow::Result<(Http, String)> {
    let invited: Value = admin
        .client
        .post(admin.url(&format!("/api/v1/orgs/{org}/invitations")))
        .json(&json!({ "email": email, "role": role }))
        .send()
        .await?
        .json()
        .await?;
    let anonymous = Http::new(app);
    let session: Value = anonymous
        .client
        .post(anonymous.url("/api/v1/auth/signup"))
        .json(
            &json!({ "email": email, "password": "a long test passphrase 123", "name": role,
                       "invitation": { "id": invited["id"], "token": invited["token"] } }),
        )
        .send()
        .await?
        .json()
        .await?;
    let token = session["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{session}"))?;
    Ok((
        anonymous.with_token(token)?,
        session["user_id"].as_str().unwrap().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_operation_checks_tenant_and_role() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    // An OAuth provider for `/oauth/{provider}/start` (which only builds a redirect).
    env.settings.oauth_providers = Some(
        json!({ "acme": { "client_id": "matrix", "client_secret": "matrix-secret",
                          "authorize_url": "http://127.0.0.1:9/authorize",
                          "token_url": "http://127.0.0.1:9/token" } })
        .to_string(),
    );
    let app = env.start(Roles::CONTROL).await?;
    let (admin, a) = Http::signed_up(&app, "admin@a.example.com", "org-a").await?;
    let (stranger, _) = Http::signed_up(&app, "admin@b.example.com", "org-b").await?;
    let org = a["org_id"].as_str().unwrap().to_owned();
    let (curator, _) =
        signup_with_invitation(&app, &admin, &org, "curator@a.example.com", "curator").await?;
    let (member, _) =
        signup_with_invitation(&app, &admin, &org, "member@a.example.com", "member").await?;
    // Someone for the member operations to act on, so the role tokens stay valid.
    let (_, victim) =
        signup_with_invitation(&app, &admin, &org, "victim@a.example.com", "member").await?;
    let pending: Value = admin
        .client
        .post(admin.url(&format!("/api/v1/orgs/{org}/invitations")))
        .json(&json!({ "email": "later@a.example.com" }))
        .send()
        .await?
        .json()
        .await?;
    let key: Value = admin
        .client
        .post(admin.url(&format!("/api/v1/orgs/{org}/api-keys")))
        .json(&json!({ "name": "matrix", "role": "member" }))
        .send()
        .await?
        .json()
        .await?;
    let renamed: Value = admin
        .client
        .patch(admin.url(&format!("/api/v1/orgs/{org}")))
        .json(&json!({ "name": "Org A" }))
        .send()
        .await?
        .json()
        .await?;
    // A credential whose source is a closed port: its test answers "unreachable" at once.
    let credential: Value = admin
        .client
        .post(admin.url("/api/v1/credentials"))
        .json(&json!({ "kind": "github_token", "name": "matrix",
                       "values": { "token": "ghp_matrixmatrixmatrix", "base_url": "http://127.0.0.1:9" } }))
        .send()
        .await?
        .json()
        .await?;
    // A queued sync run of org A, requested as the scheduler would.
    let run_id = uuid::Uuid::now_v7().to_string();
    let profile_id = uuid::Uuid::now_v7().to_string();
    let mut request = tributary_log::Envelope::json(
        "/tests/matrix",
        tributary_domain::sync::REQUEST,
        &json!({
            "profile_id": profile_id, "org_id": org, "run_id": run_id, "mode": "full",
            "trigger": "schedule", "targets": [uuid::Uuid::now_v7()], "at": chrono::Utc::now(),
        }),
    )?;
    request.org_id = Some(tributary_domain::OrgId(org.parse()?));
    env.command("sync", &profile_id, &request).await?;
    env.eventually(20, "the run in the read model", || async {
        let (status, _) = admin
            .send(Method::GET, &format!("/api/v1/sync-runs/{run_id}"), None)
            .await;
        Ok((status == StatusCode::OK).then_some(()))
    })
    .await?;
    // A dead letter of org A, recorded as the deliverer records one.
    let dlq = env.topics().documents_dead_letters();
    let letter_id = tributary_log::dead_letter::letter_id(&dlq, 0, 0);
    let at = chrono::Utc::now();
    let letter = tributary_log::dead_letter::LetterRecorded {
        id: letter_id,
        org_id: org.parse()?,
        profile_id: None,
        run_id: None,
        target_id: None,
        doc_id: Some("matrix/doc".into()),
        op: Some("upsert".into()),
        class: "permanent".into(),
        message: "the target refused it".into(),
        stage: "deliverer".into(),
        attempts: 1,
        first_failure: at,
        last_failure: at,
        letter: tributary_log::dead_letter::Coordinates {
            topic: dlq.clone(),
            partition: 0,
            offset: 0,
        },
        original: tributary_log::dead_letter::Coordinates {
            topic: env.topics().documents(),
            partition: 0,
            offset: 0,
        },
        redrive_of: None,
    };
    let mut recorded = tributary_log::Envelope::json(
        "/tests/matrix",
        tributary_log::dead_letter::RECORDED,
        &letter,
    )?;
    recorded.org_id = Some(tributary_domain::OrgId(org.parse()?));
    env.produce(
        &env.topics().dead_letter_events(),
        &letter_id.to_string(),
        &recorded.data,
        Some(recorded.encode_headers()),
    )
    .await?;
    env.eventually(20, "the dead letter in the read model", || async {
        let (status, _) = admin
            .send(
                Method::GET,
                &format!("/api/v1/dead-letters/{letter_id}"),
                None,
            )
            .await;
        Ok((status == StatusCode::OK).then_some(()))
    })
    .await?;
    // A target and a profile whose checks answer at once (nothing to reach).
    let target: Value = admin
        .client
        .post(admin.url("/api/v1/targets"))
        .json(&json!({ "name": "matrix", "kind": "discard", "config": {} }))
        .send()
        .await?
        .json()
        .await?;
    let profile: Value = admin
        .client
        .post(admin.url("/api/v1/profiles"))
        .json(
            &json!({ "name": "matrix", "source": { "kind": "synthetic", "config": { "count": 1 } },
                       "targets": [target["id"]] }),
        )
        .send()
        .await?
        .json()
        .await?;
    let ids: HashMap<&str, String> = HashMap::from([
        (
            "target_id",
            target["id"].as_str().expect("a target").to_owned(),
        ),
        (
            "profile_id",
            profile["id"].as_str().expect("a profile").to_owned(),
        ),
        ("run_id", run_id.clone()),
        ("letter_id", letter_id.to_string()),
        ("provider", "acme".to_owned()),
        (
            "credential_id",
            credential["id"].as_str().unwrap().to_owned(),
        ),
        ("id", org.clone()),
        ("user_id", victim),
        ("invitation_id", pending["id"].as_str().unwrap().to_owned()),
        ("key_id", key["id"].as_str().unwrap().to_owned()),
        (
            "command_id",
            renamed["command_id"].as_str().unwrap().to_owned(),
        ),
    ]);

    let doc: Value = Http::new(&app)
        .client
        .get(Http::new(&app).url("/api/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let (ops, public) = protected(&doc);
    assert!(
        ops.len() >= 15,
        "only {} protected operations in the document",
        ops.len()
    );
    assert!(public >= 4, "sign-up, login, refresh, logout are public");
    let anonymous = Http::new(&app);
    let roles = [
        ("member", &member),
        ("curator", &curator),
        ("admin", &admin),
    ];

    // Denials first: nothing changes.
    for op in &ops {
        let path = fill(&op.path, &ids);
        let what = format!("{} {}", op.method, op.path);
        let (status, body) = call(&anonymous, op, &path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous {what}: {body}");
        if op.role.is_some() {
            let (status, body) = call(&stranger, op, &path).await;
            // `{provider}` names a configured provider, not a row of some org.
            if op.path.replace("{provider}", "").contains('{') {
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "another org's admin, {what}: {body}"
                );
            } else {
                assert!(!body.contains(&org), "another org's row in {what}: {body}");
            }
        }
        if let Some(required) = &op.role {
            for (role, http) in roles.iter().filter(|(r, _)| rank(r) < rank(required)) {
                let (status, body) = call(http, op, &path).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} {what}: {body}");
            }
        }
    }
    // Then the allowed calls, for real (body `{}`: a 422 about it still means the caller
    // got past authentication and authorization).
    for op in &ops {
        let path = fill(&op.path, &ids);
        let what = format!("{} {}", op.method, op.path);
        let mut allowed: Vec<_> = match &op.role {
            Some(required) => roles
                .iter()
                .filter(|(r, _)| rank(r) >= rank(required))
                .collect(),
            None => roles.iter().collect(),
        };
        // A deletion happens once: by the least role allowed to.
        if op.method == Method::DELETE {
            allowed.truncate(1);
        }
        for (role, http) in allowed {
            let (status, body) = call(http, op, &path).await;
            assert!(
                ![
                    StatusCode::UNAUTHORIZED,
                    StatusCode::FORBIDDEN,
                    StatusCode::NOT_FOUND
                ]
                .contains(&status),
                "{role} {what} was refused: {status} {body}"
            );
        }
    }
    app.shutdown().await;
    Ok(())
}
