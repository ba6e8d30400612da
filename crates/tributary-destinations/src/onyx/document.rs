//! Our `Document` as Onyx's `DocumentBase`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tributary_domain::document::{Document, MetadataValue, Owner};

use crate::Scope;

/// Onyx's `DocumentSource` names. A source whose name Onyx knows keeps it, so Onyx's
/// source filters and icons work; any other becomes `ingestion_api`.
pub(crate) const ONYX_SOURCES: &[&str] = &[
    "ingestion_api",
    "airtable",
    "asana",
    "axero",
    "bitbucket",
    "bookstack",
    "clickup",
    "confluence",
    "discord",
    "discourse",
    "document360",
    "dropbox",
    "egnyte",
    "file",
    "fireflies",
    "freshdesk",
    "github",
    "gitlab",
    "gmail",
    "gong",
    "google_cloud_storage",
    "google_drive",
    "google_sites",
    "guru",
    "highspot",
    "hubspot",
    "imap",
    "jira",
    "linear",
    "loopio",
    "mediawiki",
    "notion",
    "oci_storage",
    "productboard",
    "r2",
    "requesttracker",
    "s3",
    "salesforce",
    "sharepoint",
    "slab",
    "slack",
    "teams",
    "web",
    "wikipedia",
    "xenforo",
    "zendesk",
    "zulip",
];

pub(crate) fn onyx_source(source: &str) -> &'static str {
    ONYX_SOURCES
        .iter()
        .find(|known| **known == source)
        .copied()
        .unwrap_or("ingestion_api")
}

/// The Onyx id of a source document: our deterministic UUID. It is URL-safe as it is, so
/// Onyx keeps it unchanged and `DELETE /onyx-api/ingestion/{id}` finds it; and it differs
/// per profile, so two profiles indexing the same source do not overwrite each other.
pub(crate) fn onyx_id(scope: &Scope, doc_id: &str) -> String {
    scope.document_uuid(doc_id).to_string()
}

#[derive(Serialize)]
pub(crate) struct IngestionRequest<'a> {
    document: DocumentBase<'a>,
    /// Sent as null when unset: Onyx then uses pair 1.
    cc_pair_id: Option<i64>,
}

#[derive(Serialize)]
struct DocumentBase<'a> {
    id: String,
    sections: Vec<TextSection<'a>>,
    source: &'static str,
    semantic_identifier: &'a str,
    metadata: &'a BTreeMap<String, MetadataValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    doc_updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    doc_created_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    primary_owners: Vec<ExpertInfo<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secondary_owners: Vec<ExpertInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    /// Onyx accepts and drops it (see the module docs); sent so that an Onyx that starts
    /// honouring it gets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    external_access: Option<ExternalAccess<'a>>,
}

#[derive(Serialize)]
struct TextSection<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heading: Option<&'a str>,
}

#[derive(Serialize)]
struct ExpertInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Serialize)]
struct ExternalAccess<'a> {
    external_user_emails: &'a [String],
    external_user_group_ids: &'a [String],
    is_public: bool,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn owners(owners: &[Owner]) -> Vec<ExpertInfo<'_>> {
    owners
        .iter()
        .map(|o| ExpertInfo {
            display_name: o.display_name.as_deref(),
            email: o.email.as_deref(),
        })
        .collect()
}

impl<'a> IngestionRequest<'a> {
    pub(crate) fn new(
        scope: &Scope,
        doc_id: &'a str,
        doc: &'a Document,
        cc_pair_id: Option<i64>,
    ) -> Self {
        // Onyx requires a display name; an empty one would show as a blank result.
        let semantic_identifier = if doc.semantic_identifier.trim().is_empty() {
            doc.title.as_deref().unwrap_or(doc_id)
        } else {
            &doc.semantic_identifier
        };
        Self {
            document: DocumentBase {
                id: onyx_id(scope, doc_id),
                sections: doc
                    .sections
                    .iter()
                    .map(|s| TextSection {
                        text: &s.text,
                        link: s.link.as_deref(),
                        heading: s.heading.as_deref(),
                    })
                    .collect(),
                source: onyx_source(&doc.source),
                semantic_identifier,
                metadata: &doc.metadata,
                doc_updated_at: doc.updated_at.map(iso),
                doc_created_at: doc.created_at.map(iso),
                primary_owners: owners(&doc.primary_owners),
                secondary_owners: owners(&doc.secondary_owners),
                title: doc.title.as_deref(),
                external_access: doc.access.as_ref().map(|a| ExternalAccess {
                    external_user_emails: &a.user_emails,
                    external_user_group_ids: &a.group_ids,
                    is_public: a.public,
                }),
            },
            cc_pair_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;
    use tributary_domain::document::{Access, Section};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn maps_every_field_onyx_takes() {
        let scope = Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut doc = Document::text("github", "issue/7", "Issue 7", "first");
        doc.sections.push(Section {
            text: "second".into(),
            link: Some("https://github.com/o/r/issues/7#c1".into()),
            heading: Some("Comment".into()),
        });
        doc.metadata
            .insert("state".into(), MetadataValue::One("open".into()));
        doc.updated_at = Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap());
        doc.primary_owners.push(Owner {
            display_name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
        });
        doc.access = Some(Access {
            public: false,
            user_emails: vec!["ada@example.com".into()],
            group_ids: vec![],
        });

        let body =
            serde_json::to_value(IngestionRequest::new(&scope, "issue/7", &doc, Some(4))).unwrap();
        assert_eq!(
            body,
            json!({
                "document": {
                    "id": scope.document_uuid("issue/7").to_string(),
                    "sections": [
                        { "text": "first" },
                        { "text": "second", "link": "https://github.com/o/r/issues/7#c1", "heading": "Comment" }
                    ],
                    "source": "github",
                    "semantic_identifier": "Issue 7",
                    "metadata": { "state": "open" },
                    "doc_updated_at": "2024-05-01T12:00:00Z",
                    "primary_owners": [{ "display_name": "Ada", "email": "ada@example.com" }],
                    "title": "Issue 7",
                    "external_access": {
                        "external_user_emails": ["ada@example.com"],
                        "external_user_group_ids": [],
                        "is_public": false
                    }
                },
                "cc_pair_id": 4
            })
        );
    }

    #[test]
    fn unknown_sources_become_ingestion_api_and_ids_are_stable_and_url_safe() {
        assert_eq!(onyx_source("web"), "web");
        assert_eq!(onyx_source("filesystem"), "ingestion_api");
        let scope = Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let id = onyx_id(&scope, "a b/c?d");
        assert_eq!(id, onyx_id(&scope, "a b/c?d"));
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let other = Scope::new(scope.org_id, Uuid::new_v4(), scope.target_id);
        assert_ne!(id, onyx_id(&other, "a b/c?d"));
    }

    #[test]
    fn a_blank_semantic_identifier_falls_back_to_the_title_or_id() {
        let scope = Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut doc = Document::text("web", "u", "T", "x");
        doc.semantic_identifier = " ".into();
        let body = serde_json::to_value(IngestionRequest::new(&scope, "u", &doc, None)).unwrap();
        assert_eq!(body["document"]["semantic_identifier"], "T");
        assert_eq!(body["cc_pair_id"], serde_json::Value::Null);
    }
}
