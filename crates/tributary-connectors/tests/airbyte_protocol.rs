//! The airbyte source against a fake Airbyte source (`tests/fixtures/airbyte/fake_source.py`,
//! run with `python3`): messages, batching at STATE boundaries, checkpoints and resumes,
//! CONTROL messages, errors of every kind, and secrets kept out of all of them.

mod airbyte {
    use std::path::PathBuf;
    use std::time::Duration;

    use chrono::Utc;
    use serde_json::{Value, json};
    use tributary_connectors::source::airbyte::{AirbyteConfig, AirbyteConnector};
    use tributary_connectors::source::{
        Batch, BuildContext, Connectors, Mode, Source, SourceError, Start,
    };

    const FAKE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/airbyte/fake_source.py"
    );
    const KEY: &str = "s3cret-key-123456";

    /// A scratch directory per test, with the fake source's journal in it.
    struct Fixture {
        dir: PathBuf,
    }

    impl Fixture {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join("tributary-airbyte-tests")
                .join(format!("{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("work")).unwrap();
            Self { dir }
        }

        fn work_dir(&self) -> PathBuf {
            self.dir.join("work")
        }

        fn journal_path(&self) -> PathBuf {
            self.dir.join("journal.jsonl")
        }

        /// A profile config running the fake source on stream `items`.
        fn config(&self, scenario: &str, extra: Value) -> Value {
            let mut source_config = json!({
                "scenario": scenario,
                "journal": self.journal_path(),
            });
            for (k, v) in extra.as_object().unwrap() {
                source_config[k] = v.clone();
            }
            json!({
                "command": ["python3", FAKE],
                "config": source_config,
                "streams": [{ "name": "items" }],
                "timeout_secs": 60,
            })
        }

        fn source(&self, config: Value, start: Start) -> Box<dyn Source> {
            let connectors = Connectors::builtin();
            let kind = connectors.get("airbyte").unwrap();
            kind.build(BuildContext {
                config,
                credential: Some(json!({ "api_key": KEY })),
                start,
                http: reqwest::Client::new(),
                work_dir: self.work_dir(),
            })
            .unwrap()
        }

        /// What each invocation of the fake source saw.
        fn journal(&self) -> Vec<Value> {
            std::fs::read_to_string(self.journal_path())
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }

        fn reads(&self) -> Vec<Value> {
            self.journal()
                .into_iter()
                .filter(|j| j["command"] == "read")
                .collect()
        }

        fn leftover_files(&self) -> Vec<PathBuf> {
            std::fs::read_dir(self.work_dir())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn start(mode: Mode, checkpoint: Option<Value>, resuming: bool) -> Start {
        Start {
            mode,
            checkpoint,
            resuming,
            now: Utc::now(),
        }
    }

    fn fresh() -> Start {
        start(Mode::Full, None, false)
    }

    async fn drain(source: &mut dyn Source) -> Result<Vec<Batch>, SourceError> {
        let mut batches = Vec::new();
        while let Some(batch) = source.next_batch().await? {
            batches.push(batch);
        }
        Ok(batches)
    }

    fn ids(batch: &Batch) -> Vec<&str> {
        batch.documents.iter().map(|d| d.id.as_str()).collect()
    }

    /// The items cursor in a checkpoint, if it has an items state.
    fn cursor(checkpoint: &Value) -> Option<u64> {
        checkpoint["states"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stream"]["stream_descriptor"]["name"] == "items")
            .map(|s| s["stream"]["stream_state"]["cursor"].as_u64().unwrap())
    }

    fn assert_no_secret(text: &str) {
        assert!(!text.contains(KEY), "a secret leaked: {text}");
    }

    #[tokio::test]
    async fn records_become_documents_and_each_state_ends_a_batch() {
        let f = Fixture::new("basic");
        let mut source = f.source(f.config("basic", json!({})), fresh());
        let batches = drain(source.as_mut()).await.unwrap();
        let shape: Vec<(Vec<&str>, Option<u64>, u64)> = batches
            .iter()
            .map(|b| (ids(b), cursor(&b.checkpoint), b.progress.done))
            .collect();
        assert_eq!(
            shape,
            [
                (vec!["items/1", "items/2"], Some(2), 2),
                (vec!["items/3", "items/4"], Some(4), 4),
                (vec!["items/5"], Some(5), 5),
            ]
        );
        assert_eq!(
            batches[0].checkpoint,
            json!({
                "v": 1,
                "states": [{ "type": "STREAM", "stream": { "stream_descriptor": { "name": "items" }, "stream_state": { "cursor": 2 } } }],
                "records": 2
            })
        );
        assert!(batches.iter().all(|b| b.progress.total == Some(5)));
        // LOG messages go to the log, not to the run's warnings.
        assert!(
            batches
                .iter()
                .all(|b| b.warnings.is_empty() && b.failures.is_empty())
        );
        let doc = &batches[0].documents[0];
        assert_eq!(doc.title.as_deref(), Some("Item 1"));
        assert_eq!(doc.source, "airbyte");
        assert!(doc.sections[0].text.contains("body: Body of item 1"));
        assert_eq!(
            doc.updated_at.unwrap().to_rfc3339(),
            "2024-01-01T00:00:01+00:00"
        );

        // The credential was merged into a config file only this user could read, and
        // every file was removed afterwards.
        let reads = f.reads();
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0]["config"]["api_key"], KEY);
        assert_eq!(reads[0]["config_mode"], "0o600");
        assert_eq!(reads[0]["state"], Value::Null);
        assert_eq!(
            reads[0]["catalog"]["streams"][0]["sync_mode"],
            "incremental"
        );
        assert_eq!(f.leftover_files(), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn a_batch_cut_by_size_keeps_the_last_state_seen() {
        let f = Fixture::new("batch-size");
        let mut config = f.config("basic", json!({ "count": 3 }));
        config["batch_size"] = json!(1);
        let mut source = f.source(config, fresh());
        let batches = drain(source.as_mut()).await.unwrap();
        let shape: Vec<(Vec<&str>, Option<u64>)> = batches
            .iter()
            .map(|b| (ids(b), cursor(&b.checkpoint)))
            .collect();
        // A checkpoint never claims more than the last STATE: record 3 is committed with
        // the state of record 2 and would be read again after a crash.
        assert_eq!(
            shape,
            [
                (vec!["items/1"], None),
                (vec!["items/2"], None),
                (vec![], Some(2)),
                (vec!["items/3"], Some(2)),
                (vec![], Some(3)),
            ]
        );
    }

    #[tokio::test]
    async fn resumes_and_incremental_runs_pass_the_last_states() {
        let f = Fixture::new("resume");
        let mut source = f.source(f.config("basic", json!({})), fresh());
        let batches = drain(source.as_mut()).await.unwrap();
        drop(source);

        // A crash after the second batch: the resume starts after its state.
        let second = batches[1].checkpoint.clone();
        let mut source = f.source(
            f.config("basic", json!({})),
            start(Mode::Full, Some(second), true),
        );
        let resumed = drain(source.as_mut()).await.unwrap();
        assert_eq!(resumed.len(), 1);
        assert_eq!(ids(&resumed[0]), ["items/5"]);
        assert_eq!(resumed[0].progress.done, 5);
        assert_eq!(
            f.reads()[1]["state"],
            json!([{ "type": "STREAM", "stream": { "stream_descriptor": { "name": "items" }, "stream_state": { "cursor": 4 } } }])
        );

        // The next incremental run reads only what came after the last run's state.
        let last = batches[2].checkpoint.clone();
        let config = f.config("basic", json!({ "count": 7 }));
        let mut source = f.source(
            config.clone(),
            start(Mode::Incremental, Some(last.clone()), false),
        );
        let incremental = drain(source.as_mut()).await.unwrap();
        let all: Vec<&str> = incremental.iter().flat_map(ids).collect();
        assert_eq!(all, ["items/6", "items/7"]);
        assert_eq!(
            incremental.last().unwrap().progress.done,
            2,
            "a new run counts from zero"
        );
        assert_eq!(
            f.reads()[2]["state"][0]["stream"]["stream_state"]["cursor"],
            5
        );

        // A full run ignores the last run's checkpoint.
        let mut source = f.source(config, start(Mode::Full, Some(last), false));
        let full = drain(source.as_mut()).await.unwrap();
        assert_eq!(full.iter().map(|b| b.documents.len()).sum::<usize>(), 7);
        assert_eq!(f.reads()[3]["state"], Value::Null);
    }

    #[tokio::test]
    async fn control_messages_update_the_credential_at_once() {
        let f = Fixture::new("control");
        let mut source = f.source(f.config("control", json!({})), fresh());
        let batches = drain(source.as_mut()).await.unwrap();
        assert_eq!(ids(&batches[0]), ["items/1"]);
        assert_eq!(batches[0].credential_update, None);
        // The CONTROL message ends a batch of its own, before the checkpoint moves on.
        assert_eq!(ids(&batches[1]), Vec::<&str>::new());
        assert_eq!(
            batches[1].credential_update,
            Some(json!({ "api_key": "rotated-key-987654" }))
        );
        assert_eq!(cursor(&batches[1].checkpoint), Some(1));
        assert_eq!(ids(&batches[2]), ["items/2"]);
        assert_eq!(cursor(&batches[2].checkpoint), Some(2));
        let warnings = batches[2].warnings.join("\n");
        assert!(
            warnings.contains("stream items did not complete"),
            "{warnings}"
        );
        // The new token is as secret as the old one.
        assert!(warnings.contains("oops [redacted]"), "{warnings}");
        assert!(!warnings.contains("rotated-key-987654"), "{warnings}");
    }

    #[tokio::test]
    async fn trace_errors_map_to_source_errors() {
        let f = Fixture::new("trace");
        for (scenario, retriable) in [
            ("trace_config", false),
            ("trace_transient", true),
            ("trace_system", false),
        ] {
            let mut source = f.source(f.config(scenario, json!({})), fresh());
            let first = source.next_batch().await.unwrap().unwrap();
            assert_eq!(ids(&first), ["items/1"]);
            let err = source.next_batch().await.unwrap_err();
            match (scenario, &err) {
                ("trace_config", SourceError::Config { .. })
                | ("trace_transient", SourceError::Transient { .. })
                | ("trace_system", SourceError::Failed { .. }) => {}
                _ => panic!("{scenario} gave {err:?}"),
            }
            assert_eq!(err.is_retriable(), retriable);
            let text = err.to_string();
            assert!(
                text.contains("the API said no to key [redacted] (internal detail)"),
                "{text}"
            );
            assert_no_secret(&text);
            // Calling again retries from the last batch returned, i.e. its state.
            let before = f.reads().len();
            let _ = source.next_batch().await;
            let reads = f.reads();
            assert_eq!(reads.len(), before + 1);
            assert_eq!(
                reads[before]["state"][0]["stream"]["stream_state"]["cursor"],
                1
            );
        }
    }

    #[tokio::test]
    async fn a_crash_fails_with_the_end_of_stderr_without_secrets() {
        let f = Fixture::new("crash");
        let mut source = f.source(f.config("crash", json!({})), fresh());
        let err = drain(source.as_mut()).await.unwrap_err();
        let SourceError::Failed { message } = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("exited with status 3"), "{message}");
        assert!(
            message.contains("ValueError: bad key [redacted]"),
            "{message}"
        );
        assert_no_secret(message);
    }

    #[tokio::test]
    async fn huge_lines_are_read_whole() {
        let f = Fixture::new("huge");
        let mut source = f.source(f.config("huge", json!({})), fresh());
        let batches = drain(source.as_mut()).await.unwrap();
        assert_eq!(ids(&batches[0]), ["items/1", "items/2"]);
        assert!(batches[0].documents[0].text_len() > 8 * 1024 * 1024);
    }

    #[tokio::test]
    async fn stray_output_becomes_warnings() {
        let f = Fixture::new("garbage");
        let mut source = f.source(f.config("garbage", json!({})), fresh());
        let batches = drain(source.as_mut()).await.unwrap();
        let warnings = batches[0].warnings.join("\n");
        assert!(
            warnings.contains("hello from a stray print()"),
            "{warnings}"
        );
        assert!(warnings.contains("{not json"), "{warnings}");
        assert_eq!(batches.iter().map(|b| b.documents.len()).sum::<usize>(), 5);
    }

    #[tokio::test]
    async fn unmappable_records_are_failures_and_cdc_deletions_are_deletions() {
        let f = Fixture::new("bad-records");
        let mut config = f.config("bad_records", json!({}));
        config["mapping"] = json!({ "items": { "updated_at": "/updated_at" } });
        let mut source = f.source(config, fresh());
        let batches = drain(source.as_mut()).await.unwrap();
        assert_eq!(batches.len(), 1);
        let failures: Vec<&str> = batches[0].failures.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(failures, ["items", "items/2"]);
        assert!(batches[0].failures[0].message.contains("/id"));
        assert!(batches[0].failures[1].message.contains("/updated_at"));
        assert_eq!(batches[0].deleted, ["items/3"]);
        assert!(batches[0].documents.is_empty());
    }

    #[tokio::test]
    async fn check_spec_and_discover() {
        let f = Fixture::new("check");
        let mut source = f.source(f.config("basic", json!({})), fresh());
        let ok = source.check().await.unwrap();
        assert_eq!(
            ok,
            "the Airbyte source accepted the config; 3 stream(s) available, syncing items (incremental)"
        );

        let mut source = f.source(f.config("check_auth_fail", json!({})), fresh());
        let err = source.check().await.unwrap_err();
        assert!(matches!(err, SourceError::Auth { .. }), "{err:?}");
        assert!(
            err.to_string().contains("the key [redacted] was refused"),
            "{err}"
        );
        assert_no_secret(&err.to_string());

        let mut source = f.source(f.config("check_config_fail", json!({})), fresh());
        let err = source.check().await.unwrap_err();
        assert!(matches!(err, SourceError::Config { .. }), "{err:?}");

        let config = AirbyteConfig::from_value(f.config("basic", json!({}))).unwrap();
        let mut conn = AirbyteConnector::new(config, None, f.work_dir()).unwrap();
        let spec = conn.spec().await.unwrap();
        assert_eq!(spec["properties"]["api_key"]["airbyte_secret"], true);
        let streams = conn.discover().await.unwrap();
        let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["items", "notes", "events"]);
        assert!(streams[0].source_defined_cursor);
    }

    #[tokio::test]
    async fn slow_commands_time_out() {
        let f = Fixture::new("slow");
        let mut config = f.config("discover_slow", json!({}));
        config["timeout_secs"] = json!(1);
        let mut source = f.source(config, fresh());
        let err = source.next_batch().await.unwrap_err();
        assert!(matches!(err, SourceError::Transient { .. }), "{err:?}");
        assert!(err.to_string().contains("within 1s"), "{err}");
    }

    #[tokio::test]
    async fn list_ids_reads_every_stream_in_full() {
        let f = Fixture::new("list-ids");
        let mut config = f.config("basic", json!({ "count": 3 }));
        config["streams"] = json!([{ "name": "items" }, { "name": "notes" }]);
        let mut source = f.source(config, fresh());
        let ids = source.list_ids().await.unwrap();
        assert_eq!(ids, ["items/1", "items/2", "items/3", "notes/a", "notes/b"]);
        let read = &f.reads()[0];
        assert_eq!(read["catalog"]["streams"][0]["sync_mode"], "full_refresh");
        assert_eq!(read["state"], Value::Null);

        let mut config = f.config("basic", json!({}));
        config["streams"] = json!([{ "name": "events" }]);
        let mut source = f.source(config, fresh());
        assert!(matches!(
            source.list_ids().await,
            Err(SourceError::Unsupported { .. })
        ));
    }

    #[tokio::test]
    async fn dropping_the_source_kills_the_process_and_removes_its_files() {
        let f = Fixture::new("hang");
        let mut config = f.config("hang", json!({}));
        config["batch_size"] = json!(1);
        let mut source = f.source(config, fresh());
        let first = source.next_batch().await.unwrap().unwrap();
        assert_eq!(ids(&first), ["items/1"]);
        let pid = f.reads()[0]["pid"].as_u64().unwrap();
        assert!(
            !f.leftover_files().is_empty(),
            "the files live while the read runs"
        );
        drop(source);
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let mut gone = false;
        for _ in 0..100 {
            let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            // Killed and reaped, or killed and waiting to be reaped.
            if stat.is_empty() || stat.contains(") Z") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "process {pid} still runs");
        assert_eq!(f.leftover_files(), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn config_mistakes_are_config_errors() {
        let f = Fixture::new("mistakes");
        let mut config = f.config("basic", json!({}));
        config["command"] = json!("/nonexistent/source-nothing");
        let mut source = f.source(config, fresh());
        let err = source.next_batch().await.unwrap_err();
        assert!(matches!(err, SourceError::Config { .. }), "{err:?}");
        assert!(err.to_string().contains("scripts/airbyte-venv"), "{err}");

        let mut config = f.config("basic", json!({}));
        config["mapping"] = json!({ "itmes": { "title": "/title" } });
        let mut source = f.source(config, fresh());
        let err = source.next_batch().await.unwrap_err();
        assert!(err.to_string().contains("names stream itmes"), "{err}");

        let mut config = f.config("basic", json!({}));
        config["streams"] = json!([{ "name": "nope" }]);
        let mut source = f.source(config, fresh());
        let err = source.check().await.unwrap_err();
        assert!(
            err.to_string().contains("it has items, notes, events"),
            "{err}"
        );
    }
}
