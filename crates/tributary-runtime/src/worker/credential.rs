//! Keeping what a source hands back about its credential: an Airbyte source's CONTROL
//! message (a rotated refresh token, a new API key) is sealed and stored in the
//! profile's credential before the batch after it is written, so the checkpoint never
//! moves past a credential change that was lost.

use crate::produce;
use chrono::Utc;
use rdkafka::producer::FutureProducer;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tributary_connectors::credentials::Kinds;
use tributary_domain::credential;
use tributary_domain::{Aggregate, OrgId};
use tributary_log::Topics;
use tributary_store::Db;
use tributary_store::vault::Vault;
use tributary_vault::KeyScope;
use uuid::Uuid;

const SOURCE: &str = "tributary://worker";
const ACTOR: &str = "system:worker";

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a drive puts a credential value its source handed back.
pub trait CredentialUpdates: Send + Sync {
    /// Stores `value` (the credential's full value: config and secret fields) or says,
    /// in a sentence without the value, why it could not.
    fn store(&self, value: serde_json::Value) -> BoxFuture<'_, Result<(), String>>;
}

/// Stores updates in one credential through `credential.store_tokens`: the secrets
/// sealed under the org's key, the first update guarded by the secret version the run
/// opened (a person's rotation meanwhile wins, and the update is refused).
pub struct CredentialStore {
    pub producer: FutureProducer,
    pub topics: Topics,
    pub db: Db,
    pub vault: Vault,
    pub org: Uuid,
    pub credential: Uuid,
    pub kind: String,
    /// The secret version the next update expects; `None` after the first update (the
    /// run's own updates follow each other).
    pub expected_version: Mutex<Option<i32>>,
}

impl CredentialStore {
    async fn store_value(&self, value: serde_json::Value) -> Result<(), String> {
        let kinds = Kinds::builtin();
        let kind = kinds
            .get(&self.kind)
            .ok_or_else(|| format!("credential kind {:?} is unknown to this build", self.kind))?;
        let serde_json::Value::Object(value) = value else {
            return Err("the update is not a JSON object".to_owned());
        };
        let (config, secrets) = kind.split(value);
        if secrets.is_empty() && config.is_empty() {
            return Ok(());
        }
        let record = self.credential.to_string();
        let fields: Vec<(&str, &[u8])> = secrets
            .iter()
            .map(|(f, s)| (f.as_str(), s.as_bytes()))
            .collect();
        let sealed = self
            .vault
            .seal(KeyScope::Org(self.org), &record, &fields, ACTOR)
            .await
            .map_err(|e| format!("sealing the updated secrets failed: {e}"))?;
        let sealed: credential::SealedFields = secrets
            .iter()
            .zip(sealed)
            .map(|((field, secret), sealed)| {
                (
                    field.clone(),
                    credential::SealedField {
                        sealed,
                        mask: tributary_vault::mask(secret),
                    },
                )
            })
            .collect();
        let expected = *self
            .expected_version
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let data = serde_json::json!({
            "credential_id": self.credential, "org_id": self.org,
            "expected_version": expected, "secrets": sealed, "config": config,
            "actor": ACTOR, "at": Utc::now(),
        });
        let key = self.credential.to_string();
        let id = produce::command(
            &self.producer,
            &self.topics,
            SOURCE,
            (credential::Credential::KIND, &key),
            credential::STORE_TOKENS,
            OrgId(self.org),
            &data,
        )
        .await
        .map_err(|e| format!("sending the update failed: {e:#}"))?;
        match produce::outcome(&self.db, id, Duration::from_secs(30)).await {
            Ok(Some(outcome)) if outcome.status == "accepted" => {
                *self
                    .expected_version
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
                tracing::info!(credential = %self.credential, "stored the credential update the source handed back");
                Ok(())
            }
            Ok(Some(outcome)) => Err(format!(
                "the credential refused the update: {}",
                outcome.reason.unwrap_or_default()
            )),
            Ok(None) => Err("the update has no outcome after 30 s".to_owned()),
            Err(e) => Err(format!("waiting for the update's outcome failed: {e:#}")),
        }
    }
}

impl CredentialUpdates for CredentialStore {
    fn store(&self, value: serde_json::Value) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.store_value(value))
    }
}
