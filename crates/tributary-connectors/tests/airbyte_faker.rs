//! The airbyte source against the real `airbyte-source-faker` from PyPI, installed by
//! `scripts/airbyte-venv` (a minute or two the first time, instant afterwards). The test
//! fails, never skips, when the install fails: it is the proof that real Airbyte sources
//! work.
//!
//! What faker does with state (airbyte-source-faker 7.2.1, `source_faker/streams.py`):
//! `users` sends a STATE every `records_per_slice` records, holding `seed`, `updated_at`
//! and `loop_offset`. Given any state with `updated_at`, it sends no records when
//! `always_updated` is false, and all `count` records again (ids 1..count, with a new
//! `updated_at`) when it is true; it never resumes from `loop_offset`.

mod airbyte {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::process::Stdio;
    use std::sync::OnceLock;
    use std::time::Instant;

    use chrono::Utc;
    use serde_json::{Value, json};
    use tributary_connectors::source::airbyte::{AirbyteConfig, AirbyteConnector};
    use tributary_connectors::source::{Batch, BuildContext, Connectors, Mode, Source, Start};

    /// Installs faker once per test binary and returns its executable.
    fn faker() -> PathBuf {
        static EXE: OnceLock<PathBuf> = OnceLock::new();
        EXE.get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/airbyte-venv");
            let started = Instant::now();
            let out = std::process::Command::new(&script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "scripts/airbyte-venv failed ({}); its output is above",
                out.status
            );
            eprintln!("scripts/airbyte-venv took {:?}", started.elapsed());
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
    }

    struct Fixture {
        dir: PathBuf,
    }

    impl Fixture {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join("tributary-airbyte-tests")
                .join(format!("faker-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self { dir }
        }

        fn source(&self, config: Value, mode: Mode, checkpoint: Option<Value>) -> Box<dyn Source> {
            let connectors = Connectors::builtin();
            let kind = connectors.get("airbyte").unwrap();
            kind.build(BuildContext {
                config,
                credential: None,
                start: Start {
                    mode,
                    checkpoint,
                    resuming: false,
                    now: Utc::now(),
                },
                http: reqwest::Client::new(),
                work_dir: self.dir.clone(),
            })
            .unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// 200 users, the same ones on every run: a fixed seed and one worker process
    /// (with several, which worker makes which user varies between runs).
    fn config(always_updated: bool) -> Value {
        json!({
            "command": faker(),
            "config": {
                "count": 200,
                "seed": 42,
                "parallelism": 1,
                "records_per_slice": 50,
                "always_updated": always_updated
            },
            "streams": [{ "name": "users" }],
            "mapping": {
                "users": {
                    "title": "{/name} ({/email})",
                    "text": ["/name", "/email", "/occupation", "/nationality", "/address/city"],
                    "updated_at": "/updated_at",
                    "metadata": ["/nationality"]
                }
            },
            "timeout_secs": 120
        })
    }

    async fn drain(source: &mut dyn Source) -> Vec<Batch> {
        let mut batches = Vec::new();
        while let Some(batch) = source.next_batch().await.unwrap() {
            batches.push(batch);
        }
        batches
    }

    /// `(id, title, text)` of every document, in order.
    fn documents(batches: &[Batch]) -> Vec<(String, String, String)> {
        batches
            .iter()
            .flat_map(|b| &b.documents)
            .map(|d| {
                (
                    d.id.clone(),
                    d.title.clone().unwrap_or_default(),
                    d.sections[0].text.clone(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn faker_spec_check_and_discover() {
        let f = Fixture::new("spec");
        let profile = AirbyteConfig::from_value(config(false)).unwrap();
        let mut conn = AirbyteConnector::new(profile, None, f.dir.clone()).unwrap();
        let spec = conn.spec().await.unwrap();
        assert_eq!(spec["properties"]["count"]["type"], "integer");
        let streams = conn.discover().await.unwrap();
        let names: BTreeSet<&str> = streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, BTreeSet::from(["products", "purchases", "users"]));

        let mut source = f.source(config(false), Mode::Full, None);
        let checked = source.check().await.unwrap();
        assert!(checked.contains("syncing users (incremental)"), "{checked}");
    }

    #[tokio::test]
    async fn faker_reads_users_deterministically_and_incrementally() {
        let f = Fixture::new("read");
        let started = Instant::now();
        let mut source = f.source(config(false), Mode::Full, None);
        let first = drain(source.as_mut()).await;
        eprintln!(
            "a full read of 200 faker users took {:?}",
            started.elapsed()
        );
        let docs = documents(&first);
        assert_eq!(docs.len(), 200);
        let ids: BTreeSet<&str> = docs.iter().map(|(id, _, _)| id.as_str()).collect();
        let expected: BTreeSet<String> = (1..=200).map(|i| format!("users/{i}")).collect();
        assert_eq!(ids, expected.iter().map(String::as_str).collect());
        // Batches end at faker's STATE messages, and no checkpoint claims more users
        // than the batches up to it delivered.
        assert!(
            first.len() > 1,
            "one batch only: faker sent no STATE in between"
        );
        let mut delivered = 0;
        for batch in &first {
            delivered += batch.documents.len() as u64;
            let offset = batch.checkpoint["states"][0]["stream"]["stream_state"]["loop_offset"]
                .as_u64()
                .unwrap();
            assert!(
                offset <= delivered,
                "state at {offset} after {delivered} users"
            );
        }
        let last = first.last().unwrap();
        assert_eq!(last.progress.done, 200);
        assert_eq!(last.progress.total, Some(200));
        let state = &last.checkpoint["states"][0];
        assert_eq!(state["stream"]["stream_descriptor"]["name"], "users");
        assert_eq!(state["stream"]["stream_state"]["loop_offset"], 200);
        let doc = &first[0].documents[0];
        assert!(doc.updated_at.is_some());
        assert!(doc.metadata.contains_key("nationality"));
        assert!(
            doc.sections[0].text.starts_with("name: "),
            "{}",
            doc.sections[0].text
        );

        // The same seed gives the same documents.
        let mut source = f.source(config(false), Mode::Full, None);
        let second = drain(source.as_mut()).await;
        assert_eq!(documents(&second), docs);

        // Incremental from the checkpoint: with always_updated false faker sends no
        // records, only its state again, which stays the checkpoint.
        let checkpoint = last.checkpoint.clone();
        let mut source = f.source(config(false), Mode::Incremental, Some(checkpoint.clone()));
        let incremental = drain(source.as_mut()).await;
        assert_eq!(documents(&incremental).len(), 0);
        assert_eq!(
            incremental.last().unwrap().checkpoint["states"],
            checkpoint["states"]
        );

        // With always_updated true it sends every user again, as updated.
        let mut source = f.source(config(true), Mode::Incremental, Some(checkpoint));
        let again = documents(&drain(source.as_mut()).await);
        assert_eq!(again.len(), 200);
        let again_ids: BTreeSet<&str> = again.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(again_ids, ids);
    }
}
