//! The HTTP API end to end: gateway → Kafka → processor → projection → read model.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tributary::Roles;
use tributary_testkit::{Http, TestEnv};

async fn create(http: &Http, slug: &str, name: &str) -> reqwest::Response {
    http.client
        .post(http.url("/api/v1/orgs"))
        .header("prefer", "wait=20")
        .json(&json!({ "slug": slug, "name": name }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_lifecycle_with_read_your_writes() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "owner@example.com", "home").await?;

    let created = create(&http, "acme", "Acme").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str()?.to_owned();
    let org: Value = created.json().await?;
    assert_eq!(org["slug"], "acme");
    // Created, and its creator added as admin: two events.
    assert_eq!(org["version"], 2);
    assert_eq!(
        location,
        format!("/api/v1/orgs/{}", org["id"].as_str().unwrap())
    );

    // Read-your-writes: the org is there at once.
    let got: Value = http
        .client
        .get(http.url(&location))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(got["name"], "Acme");

    let taken = create(&http, "acme", "Another").await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert_eq!(taken.headers()["content-type"], "application/problem+json");
    let problem: Value = taken.json().await?;
    assert!(
        problem["detail"].as_str().unwrap().contains("taken"),
        "{problem}"
    );

    let renamed = http
        .client
        .patch(http.url(&location))
        .header("prefer", "wait=20")
        .json(&json!({ "name": "Acme Inc" }))
        .send()
        .await?;
    assert_eq!(renamed.status(), StatusCode::OK);
    let renamed: Value = renamed.json().await?;
    assert_eq!(renamed["name"], "Acme Inc");
    assert_eq!(renamed["version"], 3);

    let deleted = http
        .client
        .delete(http.url(&location))
        .header("prefer", "wait=20")
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        http.client.get(http.url(&location)).send().await?.status(),
        StatusCode::NOT_FOUND
    );

    // Deleting again: the processor answers not found.
    let again = http
        .client
        .delete(http.url(&location))
        .header("prefer", "wait=20")
        .send()
        .await?;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // The slug was released with the delete.
    assert_eq!(
        create(&http, "acme", "Acme Again").await.status(),
        StatusCode::CREATED
    );
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_422_before_anything_is_sent() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "owner@example.com", "home").await?;
    for (slug, name) in [("Not A Slug", "x"), ("ok-slug", "   "), ("-bad", "x")] {
        let response = create(&http, slug, name).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{slug:?} {name:?}"
        );
        let problem: Value = response.json().await?;
        assert_eq!(problem["status"], 422);
    }
    let unknown_field = http
        .client
        .post(http.url("/api/v1/orgs"))
        .json(&json!({ "slug": "a", "name": "A", "colour": "red" }))
        .send()
        .await?;
    assert!(unknown_field.status().is_client_error());
    let missing = http
        .client
        .get(http.url(&format!("/api/v1/orgs/{}", uuid::Uuid::now_v7())))
        .send()
        .await?;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let garbage = http
        .client
        .get(http.url("/api/v1/orgs/not-a-uuid"))
        .send()
        .await?;
    assert_eq!(garbage.status(), StatusCode::NOT_FOUND);
    let bad_limit = http
        .client
        .get(http.url("/api/v1/orgs?limit=0"))
        .send()
        .await?;
    assert_eq!(bad_limit.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_commands_can_be_followed_and_orgs_paged() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "owner@example.com", "home").await?;
    let mut locations = Vec::new();
    for i in 0..5 {
        let response = http
            .client
            .post(http.url("/api/v1/orgs"))
            .json(&json!({ "slug": format!("org-{i}"), "name": format!("Org {i}") }))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        locations.push(response.headers()["location"].to_str()?.to_owned());
    }
    for location in &locations {
        let status = env
            .eventually(20, "the command outcome", || async {
                let response = http.client.get(http.url(location)).send().await?;
                if response.status() != StatusCode::OK {
                    return Ok(None);
                }
                let body: Value = response.json().await?;
                Ok((body["status"] != "pending").then_some(body))
            })
            .await?;
        assert_eq!(status["status"], "accepted", "{status}");
        assert_eq!(status["aggregate"], "org");
    }
    // Memberships are another read model: page through until all six are listed.
    let mut seen: Vec<String> = env
        .eventually(20, "all orgs listed", || async {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let url = match &cursor {
                    Some(c) => format!("/api/v1/orgs?limit=2&cursor={c}"),
                    None => "/api/v1/orgs?limit=2".to_owned(),
                };
                let page: Value = http.client.get(http.url(&url)).send().await?.json().await?;
                for item in page["items"].as_array().into_iter().flatten() {
                    seen.push(item["slug"].as_str().unwrap_or_default().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            Ok((seen.len() >= 6).then_some(seen))
        })
        .await?;
    seen.sort();
    // The caller's own orgs: the one it signed up with and the five it created.
    assert_eq!(seen, ["home", "org-0", "org-1", "org-2", "org-3", "org-4"]);

    let doc: Value = http
        .client
        .get(http.url("/api/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in ["/orgs", "/orgs/{id}", "/commands/{id}"] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        http.client.get(http.url("/healthz")).send().await?.status(),
        StatusCode::OK
    );
    let ready = env
        .eventually(20, "readiness", || async {
            let r = http.client.get(http.url("/readyz")).send().await?;
            Ok((r.status() == StatusCode::OK).then_some(()))
        })
        .await;
    assert!(ready.is_ok(), "{ready:?}");
    app.shutdown().await;
    Ok(())
}

/// Waiting requests are woken by the projector's notice, not by a poll: the notice
/// arrives with the batch that made the org visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_batches_are_announced_to_listeners() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (http, _) = Http::signed_up(&app, "owner@example.com", "home").await?;
    let mut notices = tributary_store::notify::listen(env.settings.database_url.clone());
    let within = std::time::Duration::from_secs(10);
    // The first change says the listener has subscribed.
    tokio::time::timeout(within, notices.changed()).await??;
    notices.borrow_and_update();

    let org = tokio::spawn(async move { create(&http, "noticed", "Noticed").await.status() });
    // Nothing else moves the counter while the connection holds: a change is a notice.
    tokio::time::timeout(within, notices.changed())
        .await
        .map_err(|_| anyhow::anyhow!("no projection notice within {within:?}"))??;
    assert_eq!(org.await?, StatusCode::CREATED);
    Ok(())
}

/// Another org's id answers exactly like an unknown one; anonymous callers get 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orgs_are_private_to_their_members() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (owner, home) = Http::signed_up(&app, "owner@example.com", "home").await?;
    let (stranger, _) = Http::signed_up(&app, "stranger@example.com", "elsewhere").await?;
    let home = home["org_id"].as_str().unwrap().to_owned();
    let unknown = uuid::Uuid::now_v7().to_string();

    let own = owner
        .client
        .get(owner.url(&format!("/api/v1/orgs/{home}")))
        .send()
        .await?;
    assert_eq!(own.status(), StatusCode::OK);
    for id in [&home, &unknown] {
        let path = format!("/api/v1/orgs/{id}");
        let get = stranger.client.get(stranger.url(&path)).send().await?;
        let patch = stranger
            .client
            .patch(stranger.url(&path))
            .header("prefer", "wait=5")
            .json(&json!({ "name": "Taken over" }))
            .send()
            .await?;
        let delete = stranger.client.delete(stranger.url(&path)).send().await?;
        for response in [get, patch, delete] {
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
            let problem: Value = response.json().await?;
            assert_eq!(problem["type"], "https://tributary.dev/problems/not_found");
        }
    }
    let listed: Value = stranger
        .client
        .get(stranger.url("/api/v1/orgs"))
        .send()
        .await?
        .json()
        .await?;
    let slugs: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["elsewhere"]);
    let anonymous = Http::new(&app);
    let response = anonymous
        .client
        .get(anonymous.url(&format!("/api/v1/orgs/{home}")))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    // The owner's org is untouched.
    let own: Value = owner
        .client
        .get(owner.url(&format!("/api/v1/orgs/{home}")))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(own["name"], "Org home");
    app.shutdown().await;
    Ok(())
}
