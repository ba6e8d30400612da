//! The pure model behind the synthetic source: which ids live in a generation, which
//! version of each, which versions fail, and the text of each version.
//!
//! Each decision is a hash of `(seed, id index, generation, purpose)` rather than a draw
//! from a running random stream, so any document of any generation can be computed alone,
//! in any order: that is what makes resume and `expected` exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sha2::{Digest, Sha256};
use tributary_domain::document::{Document, MetadataValue};

use super::config::SyntheticConfig;

const SOURCE: &str = "synthetic";

/// Purposes mixed into hashes so the decisions are independent of each other.
const CHANGE: u64 = 0x6368_616e_6765;
const FAIL: u64 = 0x6661_696c;
const TEXT: u64 = 0x7465_7874;

/// What a destination must hold for one generation, and what the source reports as
/// failed instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Live documents that are produced: id → [`content_hash`] of their text.
    pub documents: BTreeMap<String, String>,
    /// Live documents whose current version is reported as a per-document failure.
    pub failed: BTreeSet<String>,
}

/// The SHA-256 (lower-case hex) of a document's text, as [`Expected`] holds it: compare it
/// with `content_hash(&document.joined_text())`.
pub fn content_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Everything a run of `generation` produces, as a full run does.
pub fn expected(config: &SyntheticConfig, generation: u64) -> Expected {
    let model = Model::new(config);
    let mut out = Expected::default();
    for index in 0..model.slots(generation) {
        if let Some(version) = model.version_at(index, generation) {
            let id = doc_id(index);
            if model.fails(index, version) {
                out.failed.insert(id);
            } else {
                out.documents
                    .insert(id, content_hash(&model.text(index, version)));
            }
        }
    }
    out
}

/// The document `id` as it is in `generation`, or `None` if it does not live then. Failing
/// versions are returned too: they exist, the source only refuses to produce them.
pub fn document(config: &SyntheticConfig, generation: u64, id: &str) -> Option<Document> {
    let index = parse_id(id)?;
    let model = Model::new(config);
    let version = model.version_at(index, generation)?;
    Some(model.document(index, version))
}

/// `doc-000123`: six digits at least, so ids of small sets sort like their numbers.
pub(crate) fn doc_id(index: u64) -> String {
    format!("doc-{index:06}")
}

fn parse_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("doc-")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: u64 = digits.parse().ok()?;
    (doc_id(index) == id).then_some(index)
}

/// What one slot (id index) means for a run that goes from `base` to `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    Nothing,
    Produce { version: u64 },
    Fail { version: u64 },
    Delete,
}

#[derive(Debug, Clone)]
pub(crate) struct Model {
    seed: u64,
    count: u64,
    size_bytes: usize,
    created_per_generation: u64,
    update_below: u64,
    delete_below: u64,
    fail_below: u64,
}

impl Model {
    pub(crate) fn new(config: &SyntheticConfig) -> Self {
        // Rates become thresholds on a 64-bit hash so each decision is one compare.
        let threshold = |rate: f64| -> u64 {
            if rate >= 1.0 {
                u64::MAX
            } else if rate <= 0.0 {
                0
            } else {
                (rate * 18_446_744_073_709_551_616.0) as u64
            }
        };
        let delete_below = threshold(config.delete_rate);
        Self {
            seed: config.seed,
            count: config.count,
            size_bytes: usize::try_from(config.size_bytes).unwrap_or(usize::MAX),
            created_per_generation: (config.count as f64 * config.create_rate).round() as u64,
            delete_below,
            update_below: delete_below.saturating_add(threshold(config.update_rate)),
            fail_below: threshold(config.failure_rate),
        }
    }

    /// Ids `0..slots(g)` have existed at some point up to generation `g`.
    pub(crate) fn slots(&self, generation: u64) -> u64 {
        self.count
            .saturating_add(generation.saturating_mul(self.created_per_generation))
    }

    fn born(&self, index: u64) -> u64 {
        if index < self.count {
            0
        } else {
            (index - self.count)
                .checked_div(self.created_per_generation)
                .map_or(u64::MAX, |g| g + 1)
        }
    }

    /// The version (generation of its last change) of `index` in `generation`, or `None`
    /// when it does not exist yet or was deleted. Costs one hash per generation lived.
    pub(crate) fn version_at(&self, index: u64, generation: u64) -> Option<u64> {
        let born = self.born(index);
        if born > generation {
            return None;
        }
        let mut version = born;
        if self.update_below == 0 {
            return Some(version);
        }
        for g in born + 1..=generation {
            let draw = mix(self.seed, index, g, CHANGE);
            if draw < self.delete_below {
                return None;
            }
            if draw < self.update_below {
                version = g;
            }
        }
        Some(version)
    }

    pub(crate) fn fails(&self, index: u64, version: u64) -> bool {
        self.fail_below != 0 && mix(self.seed, index, version, FAIL) < self.fail_below
    }

    /// What a run of `generation` does with `index`: everything live for a full run
    /// (`base == None`), only what changed since `base` for an incremental one.
    pub(crate) fn item(&self, index: u64, base: Option<u64>, generation: u64) -> Item {
        let now = self.version_at(index, generation);
        let before = base.and_then(|b| self.version_at(index, b));
        match (before, now) {
            (Some(_), None) => Item::Delete,
            (None, None) => Item::Nothing,
            (Some(old), Some(new)) if old == new => Item::Nothing,
            (_, Some(version)) if self.fails(index, version) => Item::Fail { version },
            (_, Some(version)) => Item::Produce { version },
        }
    }

    pub(crate) fn document(&self, index: u64, version: u64) -> Document {
        let id = doc_id(index);
        let title = format!("Synthetic {id}, version {version}");
        let text = self.text(index, version);
        let mut doc = Document::text(SOURCE, id, title, text);
        doc.metadata.insert(
            "version".to_owned(),
            MetadataValue::One(version.to_string()),
        );
        doc.created_at = Some(day(self.born(index)));
        doc.updated_at = Some(day(version));
        doc
    }

    /// Exactly `size_bytes` of ASCII: a header naming the version, then sentences picked
    /// from a shared corpus. Copying whole sentences keeps this near memcpy speed.
    pub(crate) fn text(&self, index: u64, version: u64) -> String {
        let corpus = &*CORPUS;
        let mut text = String::with_capacity(self.size_bytes + MAX_SENTENCE + 2);
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "Synthetic document doc-{index:06}, version {version}, seed {}.\n\n",
            self.seed
        );
        let mut rng = mix(self.seed, index, version, TEXT);
        let mut in_paragraph = 0;
        while text.len() < self.size_bytes {
            rng = splitmix(rng);
            // One draw picks the sentence (low bits) and the paragraph length (high bits).
            let (start, end) = corpus.sentences[(rng as usize) % corpus.sentences.len()];
            text.push_str(&corpus.text[start..end]);
            in_paragraph += 1;
            if in_paragraph >= 3 + (rng >> 61) {
                text.push_str("\n\n");
                in_paragraph = 0;
            } else {
                text.push(' ');
            }
        }
        text.truncate(self.size_bytes);
        text
    }
}

/// Days after 2024-01-01: timestamps that are the same on every run.
fn day(generation: u64) -> DateTime<Utc> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single();
    let days = i64::try_from(generation.min(100_000)).unwrap_or(100_000);
    start.map_or(DateTime::UNIX_EPOCH, |s| s + Duration::days(days))
}

const fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) const fn mix(seed: u64, index: u64, generation: u64, purpose: u64) -> u64 {
    splitmix(splitmix(splitmix(seed ^ purpose) ^ index) ^ generation)
}

const MAX_SENTENCE: usize = 200;

struct Corpus {
    text: String,
    sentences: Vec<(usize, usize)>,
}

/// 1,024 sentences made once from a fixed stream, shared by every seed: the seed only
/// changes which sentences a document picks.
static CORPUS: LazyLock<Corpus> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "river",
        "source",
        "index",
        "document",
        "stream",
        "batch",
        "signal",
        "archive",
        "harbor",
        "ledger",
        "meadow",
        "lantern",
        "compass",
        "orbit",
        "granite",
        "willow",
        "cipher",
        "vector",
        "summit",
        "canyon",
        "delta",
        "ember",
        "falcon",
        "glacier",
        "horizon",
        "island",
        "jasmine",
        "kernel",
        "lattice",
        "mosaic",
        "nebula",
        "oracle",
        "prairie",
        "quartz",
        "raven",
        "saffron",
        "tundra",
        "umbra",
        "velvet",
        "wharf",
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "with",
        "from",
        "under",
        "over",
        "beside",
        "quietly",
        "swiftly",
        "carefully",
        "often",
        "rarely",
        "always",
        "never",
        "again",
        "builds",
        "carries",
        "holds",
        "moves",
        "reads",
        "writes",
        "finds",
        "keeps",
        "shows",
        "turns",
        "joins",
        "splits",
        "counts",
        "names",
        "tells",
        "waits",
        "bright",
        "silent",
        "ancient",
        "narrow",
        "distant",
        "golden",
        "hollow",
        "steady",
    ];
    let mut text = String::new();
    let mut sentences = Vec::with_capacity(1024);
    let mut rng = 0x7472_6962_7574_6172_u64;
    for _ in 0..1024 {
        let start = text.len();
        rng = splitmix(rng);
        let words = 6 + (rng % 14) as usize;
        for w in 0..words {
            rng = splitmix(rng);
            let word = WORDS[(rng as usize) % WORDS.len()];
            if w == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.push(first.to_ascii_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push('.');
        debug_assert!(text.len() - start <= MAX_SENTENCE);
        sentences.push((start, text.len()));
    }
    Corpus { text, sentences }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(doc_id(123), "doc-000123");
        assert_eq!(doc_id(1_234_567), "doc-1234567");
        assert_eq!(parse_id("doc-000123"), Some(123));
        assert_eq!(parse_id("doc-1234567"), Some(1_234_567));
        assert_eq!(parse_id("doc-123"), None);
        assert_eq!(parse_id("doc-0001234"), None);
    }

    #[test]
    fn text_has_the_exact_size_and_depends_on_seed_id_and_version() {
        let mut config = SyntheticConfig::new(10);
        config.size_bytes = 5000;
        let model = Model::new(&config);
        let a = model.text(3, 0);
        assert_eq!(a.len(), 5000);
        assert!(a.is_ascii());
        assert_eq!(a, model.text(3, 0));
        assert_ne!(a, model.text(4, 0));
        assert_ne!(a, model.text(3, 1));
        config.seed = 1;
        assert_ne!(a, Model::new(&config).text(3, 0));
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let mut config = SyntheticConfig::new(20_000);
        config.update_rate = 0.2;
        config.delete_rate = 0.05;
        config.failure_rate = 0.01;
        let model = Model::new(&config);
        let (mut updated, mut deleted, mut failed) = (0, 0, 0);
        for index in 0..20_000 {
            match model.item(index, Some(0), 1) {
                Item::Produce { .. } => updated += 1,
                Item::Fail { .. } => {
                    updated += 1;
                    failed += 1;
                }
                Item::Delete => deleted += 1,
                Item::Nothing => {}
            }
        }
        assert!((3600..4400).contains(&updated), "{updated}");
        assert!((800..1200).contains(&deleted), "{deleted}");
        assert!((10..80).contains(&failed), "{failed}");
    }

    #[test]
    fn created_ids_follow_the_previous_generation() {
        let mut config = SyntheticConfig::new(100);
        config.create_rate = 0.1;
        let model = Model::new(&config);
        assert_eq!(model.slots(0), 100);
        assert_eq!(model.slots(2), 120);
        assert_eq!(model.version_at(105, 0), None);
        assert_eq!(model.version_at(105, 1), Some(1));
        assert_eq!(model.version_at(115, 2), Some(2));
        assert_eq!(model.item(115, Some(1), 2), Item::Produce { version: 2 });
    }
}
