use std::time::Duration;

use chrono::SecondsFormat;
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::multipart::Form;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Map, Value};
use tributary_domain::document::{Document, MetadataValue};
use uuid::Uuid;

use super::{R2rAuth, R2rConfig};
use crate::credential::{secret_field, sensitive_header};
use crate::http::{capitalized, join, remote_name, send_error, status_error};
use crate::{Delivery, Op, Result, Scope, Sink, SinkError};

pub(crate) struct R2rSink {
    http: reqwest::Client,
    documents_url: String,
    remote: String,
    /// Exactly one auth header, or none for an R2R without auth.
    auth: Option<(HeaderName, HeaderValue)>,
    config: R2rConfig,
    timeout: Duration,
}

enum Created {
    Yes,
    AlreadyExists,
}

impl R2rSink {
    pub(crate) fn new(
        config: R2rConfig,
        credential: Option<&Value>,
        http: reqwest::Client,
    ) -> Result<Self> {
        let base = config.base_url()?;
        let auth = match credential {
            None => None,
            Some(credential) => {
                let token = secret_field(Some(credential), &["token"]).ok_or_else(|| {
                    SinkError::permanent(
                        "The r2r target's credential has no token; attach a bearer_token \
                         credential holding an R2R API key (key_id.raw_key) or access token.",
                    )
                })?;
                Some(match config.auth {
                    R2rAuth::Bearer => (
                        AUTHORIZATION,
                        sensitive_header("r2r", format!("Bearer {}", token.expose()))?,
                    ),
                    R2rAuth::ApiKey => (
                        HeaderName::from_static("x-api-key"),
                        sensitive_header("r2r", token.expose().to_owned())?,
                    ),
                })
            }
        };
        Ok(Self {
            http,
            documents_url: join(&base, "/v3/documents"),
            remote: remote_name("R2R", &base),
            auth,
            timeout: config.timeout(),
            config,
        })
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let request = self.http.request(method, url).timeout(self.timeout);
        match &self.auth {
            Some((name, value)) => request.header(name.clone(), value.clone()),
            None => request,
        }
    }

    fn document_url(&self, id: Uuid) -> String {
        format!("{}/{id}", self.documents_url)
    }

    async fn deliver_one(&self, scope: &Scope, delivery: &Delivery) -> Result<()> {
        let id = scope.document_uuid(&delivery.doc_id);
        match &delivery.op {
            Op::Upsert(doc) => self.upsert(id, &delivery.doc_id, doc).await,
            Op::Delete => self.delete(id).await,
        }
    }

    async fn upsert(&self, id: Uuid, doc_id: &str, doc: &Document) -> Result<()> {
        let text = doc.joined_text();
        if text.trim().is_empty() {
            return Err(SinkError::permanent(
                "The document has no text and R2R cannot ingest an empty document, so it was \
                 not delivered; give it text at the source or exclude it.",
            ));
        }
        let metadata = Value::Object(metadata(doc_id, doc)).to_string();
        if let Created::Yes = self.create(id, &text, &metadata).await? {
            return Ok(());
        }
        // An earlier version (or this same one, redelivered) holds the id.
        self.delete(id).await?;
        match self.create(id, &text, &metadata).await? {
            Created::Yes => Ok(()),
            Created::AlreadyExists => Err(SinkError::transient(format!(
                "{} still holds the previous version of this document after deleting it \
                 (409), probably because it is still being ingested; Tributary will retry.",
                capitalized(&self.remote)
            ))
            .with_status(409)),
        }
    }

    async fn create(&self, id: Uuid, text: &str, metadata: &str) -> Result<Created> {
        let mut form = Form::new()
            .text("raw_text", text.to_owned())
            .text("id", id.to_string())
            .text("metadata", metadata.to_owned())
            .text("ingestion_mode", self.config.ingestion_mode.as_str());
        if !self.config.collection_ids.is_empty() {
            form = form.text(
                "collection_ids",
                Value::from(
                    self.config
                        .collection_ids
                        .iter()
                        .map(|c| Value::String(c.to_string()))
                        .collect::<Vec<_>>(),
                )
                .to_string(),
            );
        }
        if let Some(config) = &self.config.ingestion_config {
            form = form.text(
                "ingestion_config",
                Value::Object(config.clone()).to_string(),
            );
        }
        if let Some(orchestrate) = self.config.run_with_orchestration {
            form = form.text("run_with_orchestration", orchestrate.to_string());
        }
        let response = self
            .request(Method::POST, &self.documents_url)
            .multipart(form)
            .send()
            .await
            .map_err(|e| send_error(&self.remote, self.timeout, &e))?;
        let status = response.status();
        if status.is_success() {
            Ok(Created::Yes)
        } else if status == StatusCode::CONFLICT {
            Ok(Created::AlreadyExists)
        } else {
            Err(self.refused(status, response.headers(), Some(text.len())))
        }
    }

    async fn delete(&self, id: Uuid) -> Result<()> {
        let response = self
            .request(Method::DELETE, &self.document_url(id))
            .send()
            .await
            .map_err(|e| send_error(&self.remote, self.timeout, &e))?;
        let status = response.status();
        // 404: already gone, which is what a delete wants.
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.refused(status, response.headers(), None))
        }
    }

    /// R2R's own meanings of 401, 403 and 413, then the common mapping.
    fn refused(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        text_len: Option<usize>,
    ) -> SinkError {
        let remote = capitalized(&self.remote);
        let code = status.as_u16();
        let error = match (code, text_len) {
            (401, _) => SinkError::permanent(format!(
                "{remote} refused the credential (401 Unauthorized); check the target's token \
                 and that its auth setting (bearer or api_key) suits it, then redeliver the dead \
                 letters."
            )),
            (403, Some(_)) => SinkError::permanent(format!(
                "{remote} refused the document with 403 Forbidden, which it answers when the \
                 user's document or chunk quota is reached; raise the quota or delete \
                 documents in R2R, then redeliver the dead letters."
            )),
            (413, Some(len)) => SinkError::permanent(format!(
                "The document's text is {len} bytes, more than {} accepts (413 Payload Too \
                 Large); raise R2R's upload limit or exclude the document at the source, then \
                 redeliver.",
                self.remote
            )),
            _ => return status_error(&self.remote, status, headers),
        };
        error.with_status(code)
    }
}

/// The document's own metadata, then Tributary's fields, which win on a clash so that
/// `doc_id` can always be trusted for filters (`DELETE /v3/documents/by-filter`).
fn metadata(doc_id: &str, doc: &Document) -> Map<String, Value> {
    let mut out: Map<String, Value> = doc
        .metadata
        .iter()
        .map(|(key, value)| {
            let value = match value {
                MetadataValue::One(s) => Value::String(s.clone()),
                MetadataValue::Many(list) => list.iter().cloned().map(Value::String).collect(),
            };
            (key.clone(), value)
        })
        .collect();
    let title = doc.title.as_deref().unwrap_or(&doc.semantic_identifier);
    out.insert("title".into(), title.into());
    out.insert("source".into(), doc.source.as_str().into());
    out.insert("doc_id".into(), doc_id.into());
    if let Some(updated_at) = doc.updated_at {
        out.insert(
            "updated_at".into(),
            updated_at.to_rfc3339_opts(SecondsFormat::Secs, true).into(),
        );
    }
    out
}

impl Sink for R2rSink {
    fn deliver<'a>(
        &'a self,
        scope: &'a Scope,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Vec<Result<()>>> {
        crate::batch::per_document(batch, self.config.concurrency, move |d| {
            self.deliver_one(scope, d)
        })
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<String>> {
        async move {
            // The nil id never exists: 404 proves R2R is there and took the credential.
            let response = self
                .request(Method::GET, &self.document_url(Uuid::nil()))
                .send()
                .await
                .map_err(|e| send_error(&self.remote, self.timeout, &e))?;
            let status = response.status();
            if status.is_success() || status == StatusCode::NOT_FOUND {
                Ok(format!(
                    "{} answered and accepted the credential.",
                    capitalized(&self.remote)
                ))
            } else {
                Err(self.refused(status, response.headers(), None))
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_carries_tributary_fields_over_the_documents_own() {
        let mut doc = Document::text("github", "issue/7", "Issue 7", "body");
        doc.metadata
            .insert("doc_id".into(), MetadataValue::One("spoofed".into()));
        doc.metadata.insert(
            "labels".into(),
            MetadataValue::Many(vec!["bug".into(), "p1".into()]),
        );
        let out = Value::Object(metadata("issue/7", &doc));
        assert_eq!(
            out,
            serde_json::json!({
                "doc_id": "issue/7",
                "labels": ["bug", "p1"],
                "source": "github",
                "title": "Issue 7"
            })
        );
    }
}
