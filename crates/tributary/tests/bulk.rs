//! Bulk member operations end to end: a JSON and a CSV upload, per-row results, and the
//! upload-level refusals (role, content type, size).

use reqwest::StatusCode;
use serde_json::{Value, json};
use tributary::Roles;
use tributary_testkit::{Http, TestEnv};

async fn upload(http: &Http, path: &str, content_type: &str, body: String) -> (StatusCode, Value) {
    let response = http
        .client
        .post(http.url(path))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn row(answer: &Value, n: usize) -> &Value {
    &answer["results"][n - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_invite_change_and_deactivate_many_members_at_once() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (owner, session) = Http::signed_up(&app, "owner@example.com", "bulk").await?;
    let org = session["org_id"].as_str().unwrap().to_owned();
    let bulk = format!("/api/v1/orgs/{org}/members/bulk");

    // JSON: two invitations, and a row that is not an operation.
    let operations = json!({ "operations": [
        { "action": "invite", "email": "Bob@Example.com" },
        { "action": "invite", "email": "carol@example.com", "role": "admin", "expires_in_hours": 24 },
        { "action": "promote", "email": "dan@example.com" },
    ]});
    let (status, answer) = upload(&owner, &bulk, "application/json", operations.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["done"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{answer}"
    );
    for n in [1, 2] {
        assert_eq!(row(&answer, n)["status"], "done", "{answer}");
        assert!(
            row(&answer, n)["invitation"]["token"].is_string(),
            "{answer}"
        );
    }
    assert_eq!(row(&answer, 1)["email"], "bob@example.com");
    assert_eq!(row(&answer, 1)["invitation"]["role"], "member");
    assert_eq!(row(&answer, 3)["code"], "invalid");
    assert!(
        row(&answer, 3)["reason"]
            .as_str()
            .unwrap()
            .contains("row 3, action"),
        "{answer}"
    );

    // Bob signs up with his invitation.
    let invitation = &row(&answer, 1)["invitation"];
    let anonymous = Http::new(&app);
    let response = anonymous
        .client
        .post(anonymous.url("/api/v1/auth/signup"))
        .json(&json!({
            "email": "bob@example.com", "password": "bob has a long passphrase 7", "name": "Bob",
            "invitation": { "id": invitation["id"], "token": invitation["token"] },
        }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let bob_session: Value = response.json().await?;
    let bob = anonymous.with_token(bob_session["access_token"].as_str().unwrap())?;
    let bob_id = bob_session["user_id"].as_str().unwrap();

    // CSV: a role change, an unknown member, a bad address, and the last admin.
    let csv = "action,email,role\n\
               change_role,bob@example.com,curator\n\
               deactivate,nobody@example.com,\n\
               change_role,not-an-email,member\n\
               change_role,owner@example.com,member\n";
    let (status, answer) = upload(&owner, &bulk, "text/csv; charset=utf-8", csv.into()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let statuses: Vec<_> = (1..=4)
        .map(|n| {
            (
                row(&answer, n)["status"].clone(),
                row(&answer, n)["code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (json!("done"), Value::Null),
            (json!("rejected"), json!("not_found")),
            (json!("rejected"), json!("invalid")),
            (json!("rejected"), json!("last_admin")),
        ],
        "{answer}"
    );
    assert_eq!(row(&answer, 1)["user_id"], bob_id);
    assert!(
        row(&answer, 3)["reason"]
            .as_str()
            .unwrap()
            .contains("row 3, email"),
        "{answer}"
    );
    assert_eq!(
        (
            answer["done"].as_u64(),
            answer["rejected"].as_u64(),
            answer["pending"].as_u64()
        ),
        (Some(1), Some(3), Some(0))
    );
    let members: Value = owner
        .client
        .get(owner.url(&format!("/api/v1/orgs/{org}/members")))
        .send()
        .await?
        .json()
        .await?;
    let roles: Vec<_> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("owner@example.com", "admin"),
            ("bob@example.com", "curator")
        ]
    );

    // Upload-level refusals.
    let (status, _) = upload(&bob, &bulk, "text/csv", csv.into()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a curator may not administer"
    );
    let (status, problem) = upload(&owner, &bulk, "text/plain", csv.into()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("text/csv"),
        "{problem}"
    );
    let (status, problem) = upload(&owner, &bulk, "text/csv", "action,email,team\n".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("team"),
        "{problem}"
    );
    let too_many: Vec<_> = (0..1001)
        .map(|i| json!({ "action": "invite", "email": format!("p{i}@example.com") }))
        .collect();
    let (status, problem) = upload(
        &owner,
        &bulk,
        "application/json",
        json!({ "operations": too_many }).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("1000"),
        "{problem}"
    );
    app.shutdown().await;
    Ok(())
}
