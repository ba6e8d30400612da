use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tributary_domain::document::{Document, MetadataValue};
use uuid::Uuid;

use super::{COLUMNS, kind};
use crate::{BuildContext, Delivery, Scope, Sink};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tributary-csv-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sink(data_dir: &TempDir, path: &str) -> Box<dyn Sink> {
    kind()
        .build(BuildContext {
            config: json!({ "path": path }),
            credential: None,
            http: reqwest::Client::new(),
            data_dir: data_dir.0.clone(),
        })
        .unwrap()
}

fn scope() -> Scope {
    Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())
}

fn records(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = ::csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[tokio::test]
async fn quotes_commas_quotes_and_line_breaks_per_rfc_4180() {
    let dir = TempDir::new();
    let sink = sink(&dir, "nested/dir/docs.csv");
    let mut doc = Document::text(
        "web",
        "page,1",
        "He said \"hi\", then left",
        "line one\nline two, with a comma",
    );
    doc.metadata.insert(
        "tags".into(),
        MetadataValue::Many(vec!["a".into(), "b\"c".into()]),
    );
    let scope = scope();

    let results = sink.deliver(&scope, &[Delivery::upsert(doc)]).await;
    assert_eq!(results, vec![Ok(())]);

    let path = dir.0.join("nested/dir/docs.csv");
    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(raw.starts_with("time,op,profile_id,doc_id,title,source,updated_at,text,metadata\r\n"));
    assert!(raw.contains(",\"page,1\","));
    assert!(raw.contains(",\"He said \"\"hi\"\", then left\","));
    assert!(raw.contains("\"line one\nline two, with a comma\""));
    assert!(raw.ends_with("\r\n"));

    let (header, rows) = records(&path);
    assert_eq!(header, COLUMNS);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row[1], "upsert");
    assert_eq!(row[2], scope.profile_id.to_string());
    assert_eq!(row[3], "page,1");
    assert_eq!(row[4], "He said \"hi\", then left");
    assert_eq!(row[5], "web");
    assert_eq!(row[7], "line one\nline two, with a comma");
    let metadata: serde_json::Value = serde_json::from_str(&row[8]).unwrap();
    assert_eq!(metadata, json!({ "tags": ["a", "b\"c"] }));
}

#[tokio::test]
async fn writes_the_header_once_across_sinks_and_batches_and_records_deletes() {
    let dir = TempDir::new();
    let scope = scope();
    let first = sink(&dir, "docs.csv");
    let second = sink(&dir, "./docs.csv");

    first
        .deliver(
            &scope,
            &[Delivery::upsert(Document::text("web", "a", "A", "x"))],
        )
        .await;
    second
        .deliver(
            &scope,
            &[
                Delivery::upsert(Document::text("web", "b", "B", "y")),
                Delivery::delete("a"),
            ],
        )
        .await;

    let path = dir.0.join("docs.csv");
    let raw = std::fs::read_to_string(&path).unwrap();
    assert_eq!(raw.matches("time,op,profile_id").count(), 1);
    let (_, rows) = records(&path);
    let ops: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[1].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(ops, vec![("upsert", "a"), ("upsert", "b"), ("delete", "a")]);
    assert_eq!(rows[2][4..], ["", "", "", "", ""]);
}

#[tokio::test]
async fn concurrent_sinks_on_one_file_do_not_interleave_rows() {
    let dir = TempDir::new();
    let sinks: Vec<Arc<dyn Sink>> = (0..4)
        .map(|_| Arc::from(sink(&dir, "shared.csv")))
        .collect();
    let scope = Arc::new(scope());
    let mut tasks = Vec::new();
    for (s, sink) in sinks.iter().enumerate() {
        for b in 0..25 {
            let sink = sink.clone();
            let scope = scope.clone();
            tasks.push(tokio::spawn(async move {
                let batch: Vec<Delivery> = (0..5)
                    .map(|d| {
                        let id = format!("{s}-{b}-{d}");
                        // Long text with separators: a torn row would not parse back.
                        let text = format!("{id}, \"quoted\"\n{}", "z".repeat(4000));
                        Delivery::upsert(Document::text("web", id.clone(), id, text))
                    })
                    .collect();
                sink.deliver(&scope, &batch).await
            }));
        }
    }
    for task in tasks {
        assert!(task.await.unwrap().iter().all(Result::is_ok));
    }

    let (_, rows) = records(&dir.0.join("shared.csv"));
    assert_eq!(rows.len(), 4 * 25 * 5);
    for row in &rows {
        assert_eq!(row.len(), COLUMNS.len());
        assert!(row[7].starts_with(&format!("{}, \"quoted\"\n", row[3])));
    }
}

#[tokio::test]
async fn check_creates_the_file_and_validation_refuses_climbing_paths() {
    let dir = TempDir::new();
    let message = sink(&dir, "checked/out.csv").check().await.unwrap();
    assert!(message.contains("out.csv"));
    assert!(dir.0.join("checked/out.csv").exists());

    let error = kind()
        .validate_config(&json!({ "path": "../../etc/cron.d/x" }))
        .unwrap_err();
    assert!(!error.is_retriable());
    assert!(
        kind()
            .validate_config(&json!({ "path": "a.csv", "extra": 1 }))
            .is_err()
    );
}

#[tokio::test]
async fn an_unwritable_path_is_a_permanent_error() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("taken.csv")).unwrap();
    let results = sink(&dir, "taken.csv")
        .deliver(&scope(), &[Delivery::delete("a"), Delivery::delete("b")])
        .await;
    assert_eq!(results.len(), 2);
    for result in results {
        let error = result.unwrap_err();
        assert!(!error.is_retriable(), "{error}");
    }
}
