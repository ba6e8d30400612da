//! The synthetic source through the connector registry: runs produce exactly what
//! `expected` says, generation after generation, resumed or not, with faults injected.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tributary_connectors::source::synthetic::{self, SyntheticConfig, content_hash};
use tributary_connectors::source::{
    Batch, BuildContext, Connectors, Mode, Source, SourceError, Start,
};
use tributary_domain::document::{Document, MetadataValue};

fn build(
    config: &SyntheticConfig,
    mode: Mode,
    checkpoint: Option<Value>,
    resuming: bool,
) -> Box<dyn Source> {
    let connectors = Connectors::builtin();
    let kind = connectors
        .get("synthetic")
        .expect("synthetic is registered");
    kind.build(BuildContext {
        config: serde_json::to_value(config).unwrap(),
        credential: None,
        start: Start {
            mode,
            checkpoint,
            resuming,
            now: Utc::now(),
        },
        http: reqwest::Client::new(),
        work_dir: std::env::temp_dir(),
    })
    .unwrap()
}

/// Every batch of a run, failing the test on any error.
async fn drain(source: &mut dyn Source) -> Vec<Batch> {
    let mut batches = Vec::new();
    while let Some(batch) = source.next_batch().await.unwrap() {
        batches.push(batch);
    }
    batches
}

fn hashes(docs: &[Document]) -> BTreeMap<String, String> {
    docs.iter()
        .map(|d| (d.id.clone(), content_hash(&d.joined_text())))
        .collect()
}

fn documents(batches: &[Batch]) -> Vec<Document> {
    batches.iter().flat_map(|b| b.documents.clone()).collect()
}

/// What a destination holds after applying `batches`: upserts, deletions, and failed
/// documents left as they were.
fn apply(destination: &mut BTreeMap<String, String>, batches: &[Batch]) {
    for batch in batches {
        for doc in &batch.documents {
            destination.insert(doc.id.clone(), content_hash(&doc.joined_text()));
        }
        for id in &batch.deleted {
            destination.remove(id);
        }
    }
}

fn config() -> SyntheticConfig {
    let mut config = SyntheticConfig::new(3000);
    config.seed = 7;
    config.size_bytes = 300;
    config.batch_size = 250;
    config.update_rate = 0.1;
    config.delete_rate = 0.05;
    config.create_rate = 0.02;
    config.failure_rate = 0.01;
    config
}

#[tokio::test]
async fn same_seed_same_documents_other_seed_other_text() {
    let config = config();
    let a = documents(&drain(&mut *build(&config, Mode::Full, None, false)).await);
    let b = documents(&drain(&mut *build(&config, Mode::Full, None, false)).await);
    assert_eq!(a, b);
    assert!(a.len() > 2900, "{}", a.len());
    assert_eq!(a[0].id, "doc-000000");
    assert!(
        a.iter()
            .all(|d| d.text_len() == 300 && d.source == "synthetic")
    );

    let mut other = config.clone();
    other.seed = 8;
    let c = documents(&drain(&mut *build(&other, Mode::Full, None, false)).await);
    let first_c = c.iter().find(|d| d.id == a[0].id).unwrap();
    assert_ne!(a[0].sections[0].text, first_c.sections[0].text);
}

#[tokio::test]
async fn full_then_incremental_runs_match_expected_generation_by_generation() {
    let config = config();
    let mut destination = BTreeMap::new();

    let batches = drain(&mut *build(&config, Mode::Full, None, false)).await;
    apply(&mut destination, &batches);
    let expected = synthetic::expected(&config, 0);
    assert_eq!(destination, expected.documents);
    let failed: BTreeSet<String> = batches
        .iter()
        .flat_map(|b| b.failures.iter().map(|f| f.id.clone()))
        .collect();
    assert_eq!(failed, expected.failed);
    assert!(
        !failed.is_empty(),
        "a 1% failure rate over 3000 documents fails some"
    );
    let last = batches.last().unwrap();
    assert_eq!(last.checkpoint["generation"], 0);
    assert_eq!(last.progress.total, Some(last.progress.done));

    let mut checkpoint = last.checkpoint.clone();
    for generation in 1..=3u64 {
        let before = destination.clone();
        let batches = drain(&mut *build(
            &config,
            Mode::Incremental,
            Some(checkpoint),
            false,
        ))
        .await;
        apply(&mut destination, &batches);
        let expected = synthetic::expected(&config, generation);

        // Failed versions are not produced: the destination keeps what it had.
        let mut want = expected.documents.clone();
        for id in &expected.failed {
            if let Some(old) = before.get(id) {
                want.insert(id.clone(), old.clone());
            }
        }
        assert_eq!(destination, want, "generation {generation}");

        let produced = documents(&batches);
        let deleted: Vec<&String> = batches.iter().flat_map(|b| &b.deleted).collect();
        assert!(
            !deleted.is_empty(),
            "generation {generation} deletes documents"
        );
        let previous = synthetic::expected(&config, generation - 1);
        for id in deleted {
            assert!(
                previous.documents.contains_key(id) || previous.failed.contains(id),
                "{id} was not live in generation {}",
                generation - 1
            );
            assert!(!expected.documents.contains_key(id) && !expected.failed.contains(id));
        }
        assert!(produced.len() < 700, "only changes: {}", produced.len());
        assert!(
            produced
                .iter()
                .all(|d| d.metadata["version"] == MetadataValue::One(generation.to_string())),
            "an incremental run yields only documents changed in generation {generation}"
        );
        let created = produced
            .iter()
            .filter(|d| !before.contains_key(&d.id))
            .count();
        assert!(created >= 50, "create_rate adds ids: {created}");

        checkpoint = batches.last().unwrap().checkpoint.clone();
        assert_eq!(checkpoint["generation"], generation);
    }
}

#[tokio::test]
async fn a_full_run_after_a_checkpoint_yields_the_next_generation_whole() {
    let config = config();
    let first = drain(&mut *build(&config, Mode::Full, None, false)).await;
    let checkpoint = first.last().unwrap().checkpoint.clone();
    let second = drain(&mut *build(&config, Mode::Full, Some(checkpoint), false)).await;
    assert_eq!(
        hashes(&documents(&second)),
        synthetic::expected(&config, 1).documents
    );
    assert!(second.iter().all(|b| b.deleted.is_empty()));
}

#[tokio::test]
async fn a_pinned_generation_is_produced_and_listed() {
    let mut config = config();
    config.generation = Some(2);
    let mut source = build(&config, Mode::Full, None, false);
    let expected = synthetic::expected(&config, 2);
    let listed: BTreeSet<String> = source.list_ids().await.unwrap().into_iter().collect();
    let live: BTreeSet<String> = expected
        .documents
        .keys()
        .chain(&expected.failed)
        .cloned()
        .collect();
    assert_eq!(listed, live);
    let check = source.check().await.unwrap();
    assert!(
        check.contains(&format!("{} documents", live.len())),
        "{check}"
    );
    assert!(check.contains("generation 2"), "{check}");

    let produced = hashes(&documents(&drain(&mut *source).await));
    assert_eq!(produced, expected.documents);
    let doc = synthetic::document(&config, 2, "doc-000042").unwrap();
    assert_eq!(
        produced.get("doc-000042"),
        Some(&content_hash(&doc.joined_text()))
    );
}

#[tokio::test]
async fn a_resumed_run_yields_exactly_the_rest() {
    let config = config();
    let full = drain(&mut *build(&config, Mode::Full, None, false)).await;
    assert!(full.len() > 5);

    let mut source = build(&config, Mode::Full, None, false);
    let mut first = Vec::new();
    for _ in 0..4 {
        first.push(source.next_batch().await.unwrap().unwrap());
    }
    drop(source);
    let checkpoint = first.last().unwrap().checkpoint.clone();
    let rest = drain(&mut *build(&config, Mode::Full, Some(checkpoint), true)).await;

    let mut resumed = documents(&first);
    resumed.extend(documents(&rest));
    assert_eq!(resumed, documents(&full), "no document lost or repeated");
    assert_eq!(rest.last().unwrap().progress, full.last().unwrap().progress);

    // Resuming from the final checkpoint: the run is over.
    let last = full.last().unwrap().checkpoint.clone();
    assert!(
        build(&config, Mode::Full, Some(last), true)
            .next_batch()
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_incremental_run_without_changes_still_hands_back_its_checkpoint() {
    let mut config = SyntheticConfig::new(10);
    config.generation = Some(0);
    let first = drain(&mut *build(&config, Mode::Full, None, false)).await;
    let checkpoint = first.last().unwrap().checkpoint.clone();
    let second = drain(&mut *build(
        &config,
        Mode::Incremental,
        Some(checkpoint),
        false,
    ))
    .await;
    assert_eq!(second.len(), 1);
    assert!(second[0].documents.is_empty() && second[0].deleted.is_empty());
    assert_eq!(second[0].checkpoint["generation"], 0);
    assert_eq!(second[0].progress.total, Some(0));
}

#[tokio::test]
async fn injected_faults_fire_once_per_nth_batch_and_lose_nothing() {
    let mut config = config();
    config.failure_rate = 0.0;
    let clean = documents(&drain(&mut *build(&config, Mode::Full, None, false)).await);

    config.rate_limit_every = Some(2);
    config.rate_limit_retry_after_ms = 250;
    config.transient_error_every = Some(3);
    let mut source = build(&config, Mode::Full, None, false);
    let (mut rate_limited, mut transient, mut docs) = (0, 0, Vec::new());
    loop {
        match source.next_batch().await {
            Ok(Some(batch)) => docs.extend(batch.documents),
            Ok(None) => break,
            Err(e @ SourceError::RateLimited { .. }) => {
                assert_eq!(e.retry_after(), Some(Duration::from_millis(250)));
                rate_limited += 1;
            }
            Err(e @ SourceError::Transient { .. }) => {
                assert!(e.is_retriable());
                transient += 1;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let batches = clean.len().div_ceil(250);
    assert_eq!(rate_limited, batches / 2);
    assert_eq!(transient, batches / 3);
    assert_eq!(docs, clean);
}

#[tokio::test]
async fn twenty_megabyte_documents_arrive_intact_one_per_batch() {
    let mut config = SyntheticConfig::new(2);
    config.size_bytes = 20 * 1024 * 1024;
    config.seed = 3;
    let batches = drain(&mut *build(&config, Mode::Full, None, false)).await;
    assert_eq!(
        batches.len(),
        2,
        "a 16 MiB batch limit puts each in its own batch"
    );
    let docs = documents(&batches);
    assert!(docs.iter().all(|d| d.text_len() == 20 * 1024 * 1024));
    assert_eq!(hashes(&docs), synthetic::expected(&config, 0).documents);
}

#[tokio::test]
async fn bad_configs_and_checkpoints_are_config_errors() {
    let connectors = Connectors::builtin();
    let kind = connectors.get("synthetic").unwrap();
    let ctx = |config: Value, checkpoint: Option<Value>| BuildContext {
        config,
        credential: None,
        start: Start {
            mode: Mode::Incremental,
            checkpoint,
            resuming: false,
            now: Utc::now(),
        },
        http: reqwest::Client::new(),
        work_dir: std::env::temp_dir(),
    };
    let err = kind
        .build(ctx(
            json!({"count": 1, "update_rate": 0.8, "delete_rate": 0.5}),
            None,
        ))
        .err()
        .unwrap();
    assert!(matches!(err, SourceError::Config { .. }), "{err}");
    let err = kind
        .build(ctx(json!({"count": 1}), Some(json!({"cursor": "x"}))))
        .err()
        .unwrap();
    assert!(err.to_string().contains("run a full sync"), "{err}");
}
