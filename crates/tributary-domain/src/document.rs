//! The document every source produces and every destination receives.
//!
//! The shape follows proven connector frameworks (Onyx's `Document`): an id stable at the
//! source, text sections with optional links and headings, a display identifier,
//! string-or-list metadata, timestamps, owners and an access list. Tributary does not
//! chunk or embed: sections are passed on as they are.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One document as a source saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Stable id at the source (a path, a URL, an issue number); unique within a profile.
    pub id: String,
    /// The text, in reading order.
    pub sections: Vec<Section>,
    /// The source kind that produced it (`filesystem`, `web`, `github`, ...).
    pub source: String,
    /// What a person would call it in a result list.
    pub semantic_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, MetadataValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_owners: Vec<Owner>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secondary_owners: Vec<Owner>,
    /// Who may read it at the source; `None` when the source does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

impl Document {
    /// A document with one text section and nothing else; sources fill in the rest.
    pub fn text(
        source: &str,
        id: impl Into<String>,
        title: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        let title = title.into();
        Self {
            id: id.into(),
            sections: vec![Section {
                text: text.into(),
                link: None,
                heading: None,
            }],
            source: source.to_owned(),
            semantic_identifier: title.clone(),
            title: Some(title),
            metadata: BTreeMap::new(),
            updated_at: None,
            created_at: None,
            primary_owners: Vec::new(),
            secondary_owners: Vec::new(),
            access: None,
        }
    }

    /// Bytes of text across all sections: what size limits and throughput count.
    pub fn text_len(&self) -> usize {
        self.sections.iter().map(|s| s.text.len()).sum()
    }

    /// All sections' text joined by blank lines, for destinations that take one body.
    pub fn joined_text(&self) -> String {
        let mut out = String::with_capacity(self.text_len() + 2 * self.sections.len());
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push_str("\n\n");
            }
            if let Some(heading) = &section.heading {
                out.push_str(heading);
                out.push_str("\n\n");
            }
            out.push_str(&section.text);
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
}

/// Metadata values are a string or a list of strings, as destinations accept them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetadataValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The access list at the source, for permission sync.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default)]
    pub public: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_ids: Vec<String>,
}

/// A document the source could not produce: named, with a reason, so the run shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentFailure {
    /// The document's id when known; otherwise the entity the failure concerns.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// A sentence without secrets.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_omits_empty_fields() {
        let doc = Document::text("filesystem", "docs/a.md", "a.md", "hello");
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "docs/a.md",
                "sections": [{ "text": "hello" }],
                "source": "filesystem",
                "semantic_identifier": "a.md",
                "title": "a.md"
            })
        );
        assert_eq!(serde_json::from_value::<Document>(json).unwrap(), doc);
    }

    #[test]
    fn metadata_is_a_string_or_a_list() {
        let doc: Document = serde_json::from_value(serde_json::json!({
            "id": "1", "sections": [], "source": "web", "semantic_identifier": "x",
            "metadata": { "tag": "a", "labels": ["b", "c"] }
        }))
        .unwrap();
        assert_eq!(doc.metadata["tag"], MetadataValue::One("a".into()));
        assert_eq!(
            doc.metadata["labels"],
            MetadataValue::Many(vec!["b".into(), "c".into()])
        );
    }

    #[test]
    fn joined_text_keeps_headings() {
        let mut doc = Document::text("web", "u", "t", "first");
        doc.sections.push(Section {
            text: "second".into(),
            link: None,
            heading: Some("H".into()),
        });
        assert_eq!(doc.joined_text(), "first\n\nH\n\nsecond");
        assert_eq!(doc.text_len(), 11);
    }
}

/// One document change on `<prefix>.documents`, as workers write it and deliverers read
/// it. The record key is [`record_key`], so every change of one document lands on one
/// partition, in order; the headers ([`headers`]) say which run, attempt and batch wrote
/// it and which targets it is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every record is an upsert; boxing would allocate for nothing"
)]
pub enum DocumentRecord {
    Upsert { document: Document },
    Delete { doc_id: String },
}

impl DocumentRecord {
    pub fn doc_id(&self) -> &str {
        match self {
            Self::Upsert { document } => &document.id,
            Self::Delete { doc_id } => doc_id,
        }
    }

    /// Parses a record's JSON. `op` is the record's [`headers::OP`] when it has one: it
    /// picks the variant up front, so the document is parsed once, where serde's tagged
    /// enum would first buffer the whole payload to find the tag. A payload whose `op`
    /// disagrees with the header is refused.
    pub fn from_json(bytes: &[u8], op: Option<&str>) -> serde_json::Result<Self> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum UpsertTag {
            Upsert,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Upsert {
            #[serde(rename = "op")]
            _op: UpsertTag,
            document: Document,
        }
        match op {
            Some("upsert") => serde_json::from_slice::<Upsert>(bytes).map(|u| Self::Upsert {
                document: u.document,
            }),
            _ => serde_json::from_slice(bytes),
        }
    }
}

/// A [`DocumentRecord`] to be written, borrowing its document: the same JSON without a
/// copy of the document.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DocumentRecordRef<'a> {
    Upsert { document: &'a Document },
    Delete { doc_id: &'a str },
}

/// `<profile id>/<document id>`: the key of a document's records.
pub fn record_key(profile: &crate::ProfileId, doc_id: &str) -> String {
    format!("{profile}/{doc_id}")
}

/// Header names of document records.
pub mod headers {
    pub const ORG: &str = "tributary-org";
    pub const PROFILE: &str = "tributary-profile";
    pub const RUN: &str = "tributary-run";
    pub const ATTEMPT: &str = "tributary-attempt";
    pub const SEQ: &str = "tributary-seq";
    /// Comma-separated target ids.
    pub const TARGETS: &str = "tributary-targets";
    /// `upsert` or `delete`, so readers that only index ids (the `documents` read model)
    /// need not parse a payload of up to 64 MiB. Records written before it existed lack
    /// it; their payload's `op` says the same.
    pub const OP: &str = "tributary-op";
}

/// The CloudEvents types document records carry (`ce_type`, next to [`headers`]), so the
/// projectors' CloudEvents decoder reads them: an upsert or a deletion of the document
/// named by the record key (`ce_subject`).
pub const UPSERTED: &str = "tributary.document.upserted.v1";
pub const DELETED: &str = "tributary.document.deleted.v1";

#[cfg(test)]
mod record_tests {
    use super::*;

    #[test]
    fn records_say_what_to_do_with_which_document() {
        let upsert = DocumentRecord::Upsert {
            document: Document::text("synthetic", "doc-1", "One", "text"),
        };
        let json = serde_json::to_value(&upsert).unwrap();
        assert_eq!(json["op"], "upsert");
        assert_eq!(json["document"]["id"], "doc-1");
        let delete: DocumentRecord =
            serde_json::from_value(serde_json::json!({ "op": "delete", "doc_id": "doc-2" }))
                .unwrap();
        assert_eq!(delete.doc_id(), "doc-2");
        assert_eq!(upsert.doc_id(), "doc-1");
        let profile = crate::ProfileId::new();
        assert_eq!(record_key(&profile, "a/b"), format!("{profile}/a/b"));
    }

    #[test]
    fn borrowed_records_write_the_same_json_and_the_op_header_reads_it_back() {
        let document = Document::text("synthetic", "doc-1", "One", "text");
        let owned = serde_json::to_vec(&DocumentRecord::Upsert {
            document: document.clone(),
        })
        .unwrap();
        let borrowed = serde_json::to_vec(&DocumentRecordRef::Upsert {
            document: &document,
        })
        .unwrap();
        assert_eq!(owned, borrowed);
        let delete = serde_json::to_vec(&DocumentRecordRef::Delete { doc_id: "doc-2" }).unwrap();
        assert_eq!(delete, br#"{"op":"delete","doc_id":"doc-2"}"#);

        let fast = DocumentRecord::from_json(&borrowed, Some("upsert")).unwrap();
        assert_eq!(fast, DocumentRecord::from_json(&borrowed, None).unwrap());
        assert_eq!(fast.doc_id(), "doc-1");
        assert_eq!(
            DocumentRecord::from_json(&delete, Some("delete"))
                .unwrap()
                .doc_id(),
            "doc-2"
        );
        // A header that disagrees with the payload, or a field the record does not
        // have, is an error, not a guess.
        assert!(DocumentRecord::from_json(&delete, Some("upsert")).is_err());
        let extra = br#"{"op":"upsert","document":{"id":"x","sections":[],"source":"s","semantic_identifier":"x"},"more":1}"#;
        assert!(DocumentRecord::from_json(extra, Some("upsert")).is_err());
        assert!(DocumentRecord::from_json(extra, None).is_err());
    }
}
