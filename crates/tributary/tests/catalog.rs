//! Targets and profiles end to end, through the API against the real Kafka and
//! Postgres: discovery of the kinds, create / read / list / update / delete of targets
//! and profiles, config schema violations (422 with pointers), unknown kinds, wrong
//! credential kinds, other orgs' ids (404) and targets (422), pause and resume, checks
//! of a CSV target and a filesystem profile, and a rebuild of the `catalog` projection
//! that gives the same rows.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tributary::Roles;
use tributary_log::client::KafkaSettings;
use tributary_store::Projection;
use tributary_testkit::{Http, TestEnv};

async fn call(http: &Http, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    http.send(method, &format!("/api/v1{path}"), body).await
}

/// The JSON pointers a 422 problem names.
fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_and_profiles_through_the_api() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let app = env.start(Roles::CONTROL).await?;
    let (admin, _) = Http::signed_up(&app, "admin@cat-a.example.com", "cat-a").await?;
    let (stranger, _) = Http::signed_up(&app, "admin@cat-b.example.com", "cat-b").await?;

    // Discovery: every kind with its schema, capabilities and credential kinds.
    let (status, connectors) = call(&admin, Method::GET, "/connectors", None).await;
    assert_eq!(status, StatusCode::OK, "{connectors}");
    let filesystem = connectors
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "filesystem")
        .expect("the filesystem connector");
    assert_eq!(filesystem["schema"]["required"], json!(["root"]));
    assert_eq!(filesystem["capabilities"]["prune"], true);
    assert_eq!(filesystem["credential_kinds"], json!([]));
    let (status, destinations) = call(&admin, Method::GET, "/destinations", None).await;
    assert_eq!(status, StatusCode::OK, "{destinations}");
    let onyx = destinations
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "onyx")
        .expect("the onyx destination");
    assert_eq!(onyx["credential_kinds"], json!(["bearer_token"]));
    assert!(!onyx["warnings"].as_array().unwrap().is_empty());
    assert!(onyx["schema"]["properties"]["base_url"].is_object());

    // A CSV target: create, read, list, rename.
    let (status, csv) = call(
        &admin,
        Method::POST,
        "/targets",
        Some(
            json!({ "name": " Exports ", "kind": "csv", "config": { "path": "exports/docs.csv" } }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{csv}");
    assert_eq!(csv["name"], "Exports");
    assert_eq!(csv["kind"], "csv");
    assert_eq!(csv["credential_id"], Value::Null);
    let csv_id = id(&csv);
    let (status, got) = call(&admin, Method::GET, &format!("/targets/{csv_id}"), None).await;
    assert_eq!(
        (status, &got["config"]),
        (StatusCode::OK, &json!({ "path": "exports/docs.csv" }))
    );
    let (status, renamed) = call(
        &admin,
        Method::PATCH,
        &format!("/targets/{csv_id}"),
        Some(json!({ "name": "CSV exports" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "CSV exports");
    assert!(renamed["version"].as_i64() > csv["version"].as_i64());

    // Schema violations: every field named by its pointer.
    let (status, problem) = call(
        &admin,
        Method::POST,
        "/targets",
        Some(json!({ "name": "bad", "kind": "csv", "config": { "path": 5, "colour": "red" } })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let at = pointers(&problem);
    assert!(at.contains(&"/config/path".to_owned()), "{problem}");
    assert!(at.contains(&"/config".to_owned()), "{problem}");
    let (status, problem) = call(
        &admin,
        Method::PATCH,
        &format!("/targets/{csv_id}"),
        Some(json!({ "config": { "path": "../../etc/passwd" } })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), ["/config/path"], "{problem}");
    // An unknown kind names the known ones.
    let (status, problem) = call(
        &admin,
        Method::POST,
        "/targets",
        Some(json!({ "name": "x", "kind": "elasticsearch", "config": {} })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("csv") && detail.contains("onyx"),
        "{detail}"
    );

    // Credentials: the kind must be one the destination accepts.
    let (status, github) = call(
        &admin,
        Method::POST,
        "/credentials",
        Some(json!({ "kind": "github_token", "name": "gh", "values": { "token": "ghp_catalogcatalogcatalog" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{github}");
    let (status, bearer) = call(
        &admin,
        Method::POST,
        "/credentials",
        Some(json!({ "kind": "bearer_token", "name": "onyx", "values": { "token": "onyx-token-catalog-0123456789" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bearer}");
    let onyx_target = |credential: &Value| {
        json!({ "name": "Onyx", "kind": "onyx", "config": { "base_url": "http://127.0.0.1:9" },
                "credential_id": credential["id"] })
    };
    let (status, problem) =
        call(&admin, Method::POST, "/targets", Some(onyx_target(&github))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), ["/credential_id"]);
    assert!(
        problem["detail"].as_str().unwrap().contains("bearer_token"),
        "{problem}"
    );
    let (status, problem) = call(
        &admin,
        Method::POST,
        "/targets",
        Some(json!({ "name": "x", "kind": "csv", "config": { "path": "x.csv" }, "credential_id": bearer["id"] })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("takes no credential"),
        "{problem}"
    );
    // Another org's credential reads like one that does not exist.
    let (_, foreign_credential) = call(
        &stranger,
        Method::POST,
        "/credentials",
        Some(json!({ "kind": "bearer_token", "name": "theirs", "values": { "token": "their-token-0123456789abc" } })),
    )
    .await;
    let (status, problem) = call(
        &admin,
        Method::POST,
        "/targets",
        Some(onyx_target(&foreign_credential)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a credential of this org")
    );
    let (status, onyx) = call(&admin, Method::POST, "/targets", Some(onyx_target(&bearer))).await;
    assert_eq!(status, StatusCode::CREATED, "{onyx}");
    assert_eq!(onyx["credential_id"], bearer["id"]);
    // Detaching the credential with null.
    let (status, detached) = call(
        &admin,
        Method::PATCH,
        &format!("/targets/{}", id(&onyx)),
        Some(json!({ "credential_id": null })),
    )
    .await;
    assert_eq!(
        (status, &detached["credential_id"]),
        (StatusCode::OK, &Value::Null)
    );

    // Another org's target is not found, whatever is asked of it.
    for (method, path) in [
        (Method::GET, format!("/targets/{csv_id}")),
        (Method::PATCH, format!("/targets/{csv_id}")),
        (Method::DELETE, format!("/targets/{csv_id}")),
        (Method::POST, format!("/targets/{csv_id}/check")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({ "name": "mine" }));
        let (status, problem) = call(&stranger, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
    }
    let (_, theirs) = call(&stranger, Method::GET, "/targets", None).await;
    assert_eq!(theirs["items"], json!([]));
    let (status, page) = call(&admin, Method::GET, "/targets?kind=csv", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");

    // The CSV target's check writes under the data directory.
    let (status, checked) = call(
        &admin,
        Method::POST,
        &format!("/targets/{csv_id}/check"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["ok"], true, "{checked}");
    assert!(env.settings.data_dir.join("exports/docs.csv").exists());
    // A destination that cannot be reached answers ok: false with a reason.
    let (status, checked) = call(
        &admin,
        Method::POST,
        &format!("/targets/{}/check", id(&onyx)),
        None,
    )
    .await;
    assert_eq!(
        (status, &checked["ok"]),
        (StatusCode::OK, &json!(false)),
        "{checked}"
    );
    assert!(!checked["message"].as_str().unwrap().is_empty());

    // A filesystem profile over a directory of this test.
    let docs = env.settings.data_dir.join("docs");
    std::fs::create_dir_all(&docs)?;
    std::fs::write(docs.join("a.md"), "# A\n\nalpha")?;
    std::fs::write(docs.join("b.txt"), "beta")?;
    let (_, their_target) = call(
        &stranger,
        Method::POST,
        "/targets",
        Some(json!({ "name": "theirs", "kind": "discard" })),
    )
    .await;
    let profile_body = |targets: Value| {
        json!({
            "name": "Docs",
            "source": { "kind": "filesystem", "config": { "root": docs.to_string_lossy() } },
            "targets": targets,
            "schedule": { "interval_secs": 3600, "jitter_secs": 30 },
        })
    };
    // A target of another org is refused like one that does not exist.
    let (status, problem) = call(
        &admin,
        Method::POST,
        "/profiles",
        Some(profile_body(json!([csv_id, their_target["id"]]))),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), ["/targets/1"], "{problem}");
    // Config, schedule and source kind are checked before anything is sent.
    let mut bad = profile_body(json!([csv_id]));
    bad["source"]["config"] = json!({ "root": "relative/path", "max_file_bytes": 0 });
    let (status, problem) = call(&admin, Method::POST, "/profiles", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let at = pointers(&problem);
    assert!(
        at.contains(&"/source/config/root".to_owned())
            && at.contains(&"/source/config/max_file_bytes".to_owned()),
        "{problem}"
    );
    let mut bad = profile_body(json!([csv_id]));
    bad["schedule"] = json!({ "cron": "61 * * * *" });
    let (status, problem) = call(&admin, Method::POST, "/profiles", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), ["/schedule"], "{problem}");
    let mut bad = profile_body(json!([csv_id]));
    bad["source"]["kind"] = json!("gopher");
    let (status, problem) = call(&admin, Method::POST, "/profiles", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), ["/source/kind"], "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("filesystem"));
    let mut bad = profile_body(json!([csv_id]));
    bad["credential_id"] = bearer["id"].clone();
    let (status, problem) = call(&admin, Method::POST, "/profiles", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), ["/credential_id"], "{problem}");

    let (status, profile) = call(
        &admin,
        Method::POST,
        "/profiles",
        Some(profile_body(json!([csv_id]))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    let profile_id = id(&profile);
    assert_eq!(
        profile["schedule"],
        json!({ "interval_secs": 3600, "jitter_secs": 30, "mode": "incremental" }),
        "the default mode is shown"
    );
    assert_eq!(profile["prune_interval_secs"], 7 * 24 * 3600);
    assert_eq!(profile["paused"], false);
    assert_eq!(profile["targets"], json!([csv_id]));
    let (status, checked) = call(
        &admin,
        Method::POST,
        &format!("/profiles/{profile_id}/check"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["ok"], true, "{checked}");
    assert!(
        checked["message"].as_str().unwrap().starts_with("2 files"),
        "{checked}"
    );
    for (method, path) in [
        (Method::GET, format!("/profiles/{profile_id}")),
        (Method::POST, format!("/profiles/{profile_id}/pause")),
        (Method::POST, format!("/profiles/{profile_id}/check")),
        (Method::DELETE, format!("/profiles/{profile_id}")),
    ] {
        let (status, problem) = call(&stranger, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
    }

    // Pause and resume, each idempotent; lists filter on them.
    for _ in 0..2 {
        let (status, paused) = call(
            &admin,
            Method::POST,
            &format!("/profiles/{profile_id}/pause"),
            Some(json!({ "reason": "moving the share" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{paused}");
        assert_eq!(paused["paused"], true);
        assert_eq!(paused["paused_reason"], "moving the share");
    }
    let (_, page) = call(
        &admin,
        Method::GET,
        "/profiles?paused=true&source_kind=filesystem",
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let (_, page) = call(&admin, Method::GET, "/profiles?paused=false", None).await;
    assert_eq!(page["items"], json!([]), "{page}");
    for _ in 0..2 {
        let (status, resumed) = call(
            &admin,
            Method::POST,
            &format!("/profiles/{profile_id}/resume"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{resumed}");
        assert_eq!(resumed["paused"], false);
    }

    // Updates: a cron schedule, more targets; the source kind stays.
    let (status, updated) = call(
        &admin,
        Method::PATCH,
        &format!("/profiles/{profile_id}"),
        Some(json!({ "schedule": { "cron": "0 */6 * * *" }, "targets": [csv_id, id(&onyx)] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["schedule"],
        json!({ "cron": "0 */6 * * *", "jitter_secs": 0, "mode": "incremental" })
    );
    assert_eq!(updated["targets"], json!([csv_id, id(&onyx)]));
    let (status, problem) = call(
        &admin,
        Method::PATCH,
        &format!("/profiles/{profile_id}"),
        Some(json!({ "source": { "kind": "synthetic", "config": { "count": 1 } } })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, manual) = call(
        &admin,
        Method::PATCH,
        &format!("/profiles/{profile_id}"),
        Some(json!({ "schedule": null })),
    )
    .await;
    assert_eq!(
        (status, &manual["schedule"]),
        (StatusCode::OK, &Value::Null)
    );

    // A profile whose directory is gone: the check says so.
    let (_, gone) = call(
        &admin,
        Method::POST,
        "/profiles",
        Some(json!({ "name": "Gone", "targets": [csv_id],
                     "source": { "kind": "filesystem", "config": { "root": "/nonexistent/tributary-catalog" } } })),
    )
    .await;
    let (status, checked) = call(
        &admin,
        Method::POST,
        &format!("/profiles/{}/check", id(&gone)),
        None,
    )
    .await;
    assert_eq!(
        (status, &checked["ok"]),
        (StatusCode::OK, &json!(false)),
        "{checked}"
    );
    assert!(
        checked["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/tributary-catalog"),
        "{checked}"
    );

    // A target still fed by a profile is not deleted.
    let (status, problem) = call(&admin, Method::DELETE, &format!("/targets/{csv_id}"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("Docs"),
        "{problem}"
    );
    for profile in [&profile_id, &id(&gone)] {
        let (status, body) = call(
            &admin,
            Method::DELETE,
            &format!("/profiles/{profile}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, _) = call(
        &admin,
        Method::GET,
        &format!("/profiles/{profile_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(&admin, Method::DELETE, &format!("/targets/{csv_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = call(&admin, Method::GET, &format!("/targets/{csv_id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The system reads the scheduler and the worker use.
    let db = tributary_store::connect(&env.settings.database_url, 2)?;
    {
        let client = db.get().await?;
        let row = tributary_store::catalog::profile_by_id(&**client, profile_id.parse()?)
            .await?
            .expect("a deleted profile keeps its row");
        assert!(!row.is_live());
        assert!(
            tributary_store::catalog::scheduled_profiles(&**client)
                .await?
                .is_empty()
        );
    }

    // A rebuild from the log gives the same rows.
    let snapshot = async || -> anyhow::Result<(Value, Value)> {
        let client = env.pg().await?;
        let one = |table: &str| {
            format!("SELECT coalesce(json_agg(t ORDER BY t.id), '[]') FROM {table} t")
        };
        let targets = client.query_one(&one("targets"), &[]).await?.get(0);
        let profiles = client.query_one(&one("profiles"), &[]).await?.get(0);
        Ok((targets, profiles))
    };
    let before = snapshot().await?;
    assert_eq!(
        before.0.as_array().map(Vec::len),
        Some(3),
        "two of ours, one of theirs"
    );
    let (kafka, topics) = (
        KafkaSettings::new(&env.settings.kafka_brokers),
        env.topics(),
    );
    let handle = tokio::runtime::Handle::current();
    let rebuild_db = db.clone();
    tokio::task::spawn_blocking(move || {
        tributary_runtime::rebuild(
            Projection::Catalog,
            &kafka,
            &topics,
            &rebuild_db,
            &handle,
            500,
        )
    })
    .await??;
    let client = env.pg().await?;
    let version: i32 = client
        .query_one(
            "SELECT active_version FROM projections WHERE name = 'catalog'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(version, 2, "the rebuild swapped in a new version");
    assert_eq!(snapshot().await?, before);

    // The API still reads after the swap.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, page) = call(&admin, Method::GET, "/targets", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    app.shutdown().await;
    Ok(())
}
