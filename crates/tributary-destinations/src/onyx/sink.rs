use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tributary_domain::document::Document;

use super::OnyxConfig;
use super::document::{IngestionRequest, onyx_id};
use crate::credential::{secret_field, sensitive_header};
use crate::http::{capitalized, join, remote_name, send_error, status_error};
use crate::{Delivery, Op, Result, Scope, Sink, SinkError};

pub(crate) struct OnyxSink {
    http: reqwest::Client,
    ingestion_url: String,
    remote: String,
    auth: Option<HeaderValue>,
    config: OnyxConfig,
    timeout: Duration,
}

#[derive(Deserialize)]
struct IngestionResponse {
    document_id: String,
}

impl OnyxSink {
    pub(crate) fn new(
        config: OnyxConfig,
        credential: Option<&Value>,
        http: reqwest::Client,
    ) -> Result<Self> {
        let base = config.base_url()?;
        let auth = match credential {
            None => None,
            Some(credential) => {
                let key = secret_field(Some(credential), &["token"]).ok_or_else(|| {
                    SinkError::permanent(
                        "The onyx target's credential has no token; attach a bearer_token \
                         credential holding an Onyx API key (it starts with on_).",
                    )
                })?;
                Some(sensitive_header(
                    "onyx",
                    format!("Bearer {}", key.expose()),
                )?)
            }
        };
        Ok(Self {
            http,
            ingestion_url: join(&base, "/onyx-api/ingestion"),
            remote: remote_name("Onyx", &base),
            auth,
            timeout: config.timeout(),
            config,
        })
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let request = self.http.request(method, url).timeout(self.timeout);
        match &self.auth {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    async fn deliver_one(&self, scope: &Scope, delivery: &Delivery) -> Result<()> {
        match &delivery.op {
            Op::Upsert(doc) => self.upsert(scope, &delivery.doc_id, doc).await,
            Op::Delete => self.delete(&onyx_id(scope, &delivery.doc_id)).await,
        }
    }

    async fn upsert(&self, scope: &Scope, doc_id: &str, doc: &Document) -> Result<()> {
        let body = IngestionRequest::new(scope, doc_id, doc, self.config.cc_pair_id);
        let response = self
            .request(Method::POST, &self.ingestion_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| send_error(&self.remote, self.timeout, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.refused(status, response.headers()));
        }
        // The document is in; the answer only tells whether Onyx kept our id. If it did
        // not, deletes would miss the document, which is worth a warning, not a retry.
        if let Ok(answer) = response.json::<IngestionResponse>().await {
            let expected = onyx_id(scope, doc_id);
            if answer.document_id != expected {
                tracing::warn!(
                    expected,
                    stored = answer.document_id,
                    "Onyx stored the document under another id; deletes will not find it"
                );
            }
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let response = self
            .request(Method::DELETE, &format!("{}/{id}", self.ingestion_url))
            .send()
            .await
            .map_err(|e| send_error(&self.remote, self.timeout, &e))?;
        let status = response.status();
        // 404: already gone, which is what a delete wants.
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.refused(status, response.headers()))
        }
    }

    /// Onyx's own meanings of 400, 401/403 and 422, then the common mapping.
    fn refused(&self, status: StatusCode, headers: &HeaderMap) -> SinkError {
        let remote = capitalized(&self.remote);
        let code = status.as_u16();
        let error = match code {
            401 | 403 => SinkError::permanent(format!(
                "{remote} refused the API key ({code}); attach a credential holding a valid \
                 Onyx API key (it starts with on_) with admin rights, then redeliver the dead \
                 letters."
            )),
            400 => SinkError::permanent(format!(
                "{remote} rejected the request (400 Bad Request), which it does when the \
                 connector pair does not exist; check the target's cc_pair_id, then redeliver \
                 the dead letters."
            )),
            422 => SinkError::permanent(format!(
                "{remote} refused the document as invalid (422 Unprocessable Entity); this \
                 Onyx version may expect another document shape. Report it with the Onyx \
                 version."
            )),
            _ => return status_error(&self.remote, status, headers),
        };
        error.with_status(code)
    }
}

impl Sink for OnyxSink {
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
            let response = self
                .request(Method::GET, &self.ingestion_url)
                .send()
                .await
                .map_err(|e| send_error(&self.remote, self.timeout, &e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(self.refused(status, response.headers()));
            }
            let remote = capitalized(&self.remote);
            Ok(match response.json::<Vec<Value>>().await {
                Ok(listed) => format!(
                    "{remote} accepted the API key; {} documents were pushed through its \
                     ingestion API so far.",
                    listed.len()
                ),
                Err(_) => format!("{remote} accepted the API key."),
            })
        }
        .boxed()
    }
}
