//! The filesystem source on a temporary tree: selection, conversion, failures,
//! incremental runs driven by mtimes, pruning lists and resume.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use filetime::FileTime;
use serde_json::Value;
use tributary_connectors::source::filesystem::FilesystemConfig;
use tributary_connectors::source::{
    Batch, BuildContext, Connectors, Mode, Source, SourceError, Start,
};
use tributary_domain::document::Document;

fn build(
    config: &FilesystemConfig,
    mode: Mode,
    checkpoint: Option<Value>,
    resuming: bool,
) -> Box<dyn Source> {
    build_at(config, mode, checkpoint, resuming, Utc::now())
}

fn build_at(
    config: &FilesystemConfig,
    mode: Mode,
    checkpoint: Option<Value>,
    resuming: bool,
    now: DateTime<Utc>,
) -> Box<dyn Source> {
    let connectors = Connectors::builtin();
    connectors
        .get("filesystem")
        .expect("filesystem is registered")
        .build(BuildContext {
            config: serde_json::to_value(config).unwrap(),
            credential: None,
            start: Start {
                mode,
                checkpoint,
                resuming,
                now,
            },
            http: reqwest::Client::new(),
            work_dir: std::env::temp_dir(),
        })
        .unwrap()
}

async fn drain(source: &mut dyn Source) -> Vec<Batch> {
    let mut batches = Vec::new();
    while let Some(batch) = source.next_batch().await.unwrap() {
        batches.push(batch);
    }
    batches
}

fn documents(batches: &[Batch]) -> Vec<Document> {
    batches.iter().flat_map(|b| b.documents.clone()).collect()
}

fn ids(batches: &[Batch]) -> Vec<String> {
    documents(batches).into_iter().map(|d| d.id).collect()
}

fn write(root: &Path, relative: &str, content: &[u8]) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn set_mtime(root: &Path, relative: &str, at: SystemTime) {
    filetime::set_file_mtime(root.join(relative), FileTime::from_system_time(at)).unwrap();
}

/// A tree with something of every kind the source must tell apart.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "docs/a.md", b"Intro line\n\n# Alpha\n\nAlpha body.\n");
    write(root, "docs/b.txt", b"Plain text body.\n");
    write(
        root,
        "site/page.html",
        b"<html><head><title>The Page</title><script>let hidden = 1;</script></head>\
          <body><h1>Welcome</h1><p>Some <em>HTML</em> text.</p></body></html>",
    );
    write(root, "nested/deep/c.md", b"No heading here.\n");
    write(root, "drafts/wip.md", b"# Draft\n");
    write(root, "image.png", b"\x89PNG\r\n");
    write(root, "big.md", &vec![b'x'; 5000]);
    write(root, "latin1.txt", b"caf\xe9\n");
    dir
}

fn config(root: &Path) -> FilesystemConfig {
    let mut config = FilesystemConfig::new(root);
    config.exclude = vec!["drafts/**".into()];
    config.max_file_bytes = 4096;
    config
}

const MATCHING: [&str; 6] = [
    "big.md",
    "docs/a.md",
    "docs/b.txt",
    "latin1.txt",
    "nested/deep/c.md",
    "site/page.html",
];

#[tokio::test]
async fn a_full_run_reads_selected_files_converts_html_and_reports_failures() {
    let dir = tree();
    let config = config(dir.path());
    let batches = drain(&mut *build(&config, Mode::Full, None, false)).await;

    assert_eq!(
        ids(&batches),
        [
            "docs/a.md",
            "docs/b.txt",
            "nested/deep/c.md",
            "site/page.html"
        ]
    );
    let docs = documents(&batches);
    let by_id = |id: &str| docs.iter().find(|d| d.id == id).unwrap();
    assert_eq!(by_id("docs/a.md").title.as_deref(), Some("Alpha"));
    assert_eq!(
        by_id("docs/a.md").sections[0].text,
        "Intro line\n\n# Alpha\n\nAlpha body.\n"
    );
    assert_eq!(by_id("docs/b.txt").title.as_deref(), Some("b.txt"));
    assert_eq!(by_id("nested/deep/c.md").title.as_deref(), Some("c.md"));
    let page = by_id("site/page.html");
    assert_eq!(page.title.as_deref(), Some("The Page"));
    assert_eq!(page.sections[0].text, "Welcome\n\nSome HTML text.");
    assert!(
        docs.iter()
            .all(|d| d.source == "filesystem" && d.updated_at.is_some())
    );

    let failures: Vec<_> = batches.iter().flat_map(|b| &b.failures).collect();
    let failed: BTreeSet<&str> = failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(failed, BTreeSet::from(["big.md", "latin1.txt"]));
    let big = failures.iter().find(|f| f.id == "big.md").unwrap();
    assert!(big.message.contains("max_file_bytes"), "{}", big.message);
    let latin1 = failures.iter().find(|f| f.id == "latin1.txt").unwrap();
    assert!(latin1.message.contains("not UTF-8"), "{}", latin1.message);

    let last = batches.last().unwrap();
    assert_eq!(last.progress.total, Some(6));
    assert_eq!(last.progress.done, 6);
}

#[tokio::test]
async fn list_ids_and_check_see_every_matching_file() {
    let dir = tree();
    let config = config(dir.path());
    let mut source = build(&config, Mode::Full, None, false);
    assert_eq!(source.list_ids().await.unwrap(), MATCHING);
    let check = source.check().await.unwrap();
    assert!(check.starts_with("6 files"), "{check}");
    assert!(
        check.contains("1 of them are over max_file_bytes"),
        "{check}"
    );

    let mut only_md = config.clone();
    only_md.include = vec!["**/*.md".into()];
    let mut source = build(&only_md, Mode::Full, None, false);
    assert_eq!(
        source.list_ids().await.unwrap(),
        ["big.md", "docs/a.md", "nested/deep/c.md"]
    );
}

#[tokio::test]
async fn an_incremental_run_reads_what_changed_since_the_last_run() {
    let dir = tree();
    let root = dir.path();
    let config = config(root);
    let now = SystemTime::now();
    for id in MATCHING {
        set_mtime(root, id, now - Duration::from_secs(7200));
    }
    set_mtime(root, "nested/deep/c.md", now - Duration::from_secs(3600));

    let full = drain(&mut *build(&config, Mode::Full, None, false)).await;
    let checkpoint = full.last().unwrap().checkpoint.clone();
    let newest = DateTime::<Utc>::from(now - Duration::from_secs(3600));
    assert_eq!(
        checkpoint["max_mtime"],
        serde_json::to_value(newest).unwrap()
    );

    write(root, "docs/a.md", b"# Alpha v2\n");
    set_mtime(root, "docs/a.md", now - Duration::from_secs(60));
    fs::remove_file(root.join("docs/b.txt")).unwrap();

    let mut source = build(&config, Mode::Incremental, Some(checkpoint), false);
    let batches = drain(&mut *source).await;
    // c.md is the newest file of the last run: read again, as the 2 s overlap wants.
    assert_eq!(ids(&batches), ["docs/a.md", "nested/deep/c.md"]);
    assert_eq!(documents(&batches)[0].title.as_deref(), Some("Alpha v2"));
    assert!(
        batches
            .iter()
            .all(|b| b.failures.is_empty() && b.deleted.is_empty())
    );
    let listed = source.list_ids().await.unwrap();
    assert!(
        !listed.contains(&"docs/b.txt".to_owned()),
        "pruning finds the deletion"
    );

    let next = batches.last().unwrap().checkpoint.clone();
    let again = drain(&mut *build(&config, Mode::Incremental, Some(next), false)).await;
    assert_eq!(
        ids(&again),
        ["docs/a.md"],
        "only the newest file is read again"
    );
}

#[tokio::test]
async fn a_file_dated_in_the_future_does_not_hide_later_changes() {
    let dir = tree();
    let root = dir.path();
    let config = config(root);
    let now = SystemTime::now();
    for id in MATCHING {
        set_mtime(root, id, now - Duration::from_secs(7200));
    }
    set_mtime(root, "docs/b.txt", now + Duration::from_secs(86_400));
    let run_start = DateTime::<Utc>::from(now - Duration::from_secs(600));
    let full = drain(&mut *build_at(&config, Mode::Full, None, false, run_start)).await;
    let checkpoint = full.last().unwrap().checkpoint.clone();
    assert_eq!(
        checkpoint["max_mtime"],
        serde_json::to_value(run_start).unwrap()
    );

    set_mtime(root, "docs/a.md", now);
    let batches = drain(&mut *build(
        &config,
        Mode::Incremental,
        Some(checkpoint),
        false,
    ))
    .await;
    assert_eq!(ids(&batches), ["docs/a.md", "docs/b.txt"]);
}

#[tokio::test]
async fn a_resumed_run_goes_on_after_the_last_committed_file() {
    let dir = tree();
    let mut config = config(dir.path());
    config.batch_size = 2;
    let full = drain(&mut *build(&config, Mode::Full, None, false)).await;
    assert_eq!(full.len(), 3);

    let mut source = build(&config, Mode::Full, None, false);
    let first = source.next_batch().await.unwrap().unwrap();
    assert_eq!(first.checkpoint["after"], "docs/a.md");
    drop(source);
    let rest = drain(&mut *build(
        &config,
        Mode::Full,
        Some(first.checkpoint.clone()),
        true,
    ))
    .await;

    let mut resumed = vec![first];
    resumed.extend(rest);
    assert_eq!(documents(&resumed), documents(&full));
    assert_eq!(
        resumed.last().unwrap().progress,
        full.last().unwrap().progress
    );
}

#[tokio::test]
async fn symlinks_are_skipped_unless_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "linked.md", b"# Linked\n");
    write(dir.path(), "own.md", b"# Own\n");
    std::os::unix::fs::symlink(outside.path().join("linked.md"), dir.path().join("link.md"))
        .unwrap();

    let mut config = FilesystemConfig::new(dir.path());
    let batches = drain(&mut *build(&config, Mode::Full, None, false)).await;
    assert_eq!(ids(&batches), ["own.md"]);
    assert!(
        batches[0]
            .warnings
            .iter()
            .any(|w| w.contains("follow_symlinks")),
        "{:?}",
        batches[0].warnings
    );

    config.follow_symlinks = true;
    let batches = drain(&mut *build(&config, Mode::Full, None, false)).await;
    assert_eq!(ids(&batches), ["link.md", "own.md"]);
}

#[tokio::test]
async fn a_missing_root_is_a_config_error_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = FilesystemConfig::new(dir.path().join("nope"));
    let mut source = build(&config, Mode::Full, None, false);
    let err = source.next_batch().await.unwrap_err();
    assert!(matches!(err, SourceError::Config { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(source.check().await.is_err());
}
