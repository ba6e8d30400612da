use serde::{Deserialize, Serialize};
use tributary_domain::document::Document;
use uuid::Uuid;

use crate::{Delivery, Op, Scope};

/// The body of a webhook request, as a receiver reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBatch {
    pub org_id: Uuid,
    pub profile_id: Uuid,
    pub target_id: Uuid,
    /// In the order they happened; apply them in order.
    pub operations: Vec<WebhookOperation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[expect(
    clippy::large_enum_variant,
    reason = "batches are mostly upserts, so boxing would add an allocation per document and save nothing"
)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum WebhookOperation {
    /// The whole document: replace what the receiver has under `doc_id`.
    Upsert {
        doc_id: String,
        document: Document,
    },
    Delete {
        doc_id: String,
    },
}

/// The sending twin of [`WebhookBatch`]: it borrows, so a batch's documents are not copied
/// to be serialized. The tests check both encode alike.
#[derive(Serialize)]
pub(crate) struct OutgoingBatch<'a> {
    org_id: Uuid,
    profile_id: Uuid,
    target_id: Uuid,
    operations: Vec<OutgoingOperation<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OutgoingOperation<'a> {
    Upsert {
        doc_id: &'a str,
        document: &'a Document,
    },
    Delete {
        doc_id: &'a str,
    },
}

impl<'a> OutgoingBatch<'a> {
    pub(crate) fn new(scope: &Scope, batch: &'a [Delivery]) -> Self {
        Self {
            org_id: scope.org_id,
            profile_id: scope.profile_id,
            target_id: scope.target_id,
            operations: batch
                .iter()
                .map(|d| match &d.op {
                    Op::Upsert(document) => OutgoingOperation::Upsert {
                        doc_id: &d.doc_id,
                        document,
                    },
                    Op::Delete => OutgoingOperation::Delete { doc_id: &d.doc_id },
                })
                .collect(),
        }
    }

    /// A batch without operations, sent by `check` to try the URL and the secret.
    pub(crate) fn empty() -> Self {
        Self {
            org_id: Uuid::nil(),
            profile_id: Uuid::nil(),
            target_id: Uuid::nil(),
            operations: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outgoing_body_reads_back_as_a_webhook_batch() {
        let scope = Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let doc = Document::text("web", "a", "A", "hello");
        let batch = [Delivery::upsert(doc.clone()), Delivery::delete("b")];
        let body = serde_json::to_vec(&OutgoingBatch::new(&scope, &batch)).unwrap();
        let read: WebhookBatch = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            read,
            WebhookBatch {
                org_id: scope.org_id,
                profile_id: scope.profile_id,
                target_id: scope.target_id,
                operations: vec![
                    WebhookOperation::Upsert {
                        doc_id: "a".into(),
                        document: doc
                    },
                    WebhookOperation::Delete { doc_id: "b".into() },
                ],
            }
        );
    }
}
