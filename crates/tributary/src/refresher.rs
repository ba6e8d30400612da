//! The refresher: renews OAuth tokens before they expire (and at least daily), so
//! connectors never find an expired token.
//!
//! **One refresher per credential.** Any number of refresher processes may run; each
//! takes a Postgres advisory lock on the credential (`pg_try_advisory_lock`, held on a
//! connection of its own for the whole renewal) and skips credentials another holds.
//! Single-use refresh tokens are therefore spent by exactly one process at a time.
//!
//! **Rotated tokens are stored atomically**: the new access and refresh tokens travel in
//! one `credential.store_tokens` command (one event), carrying the secret version they
//! were renewed from; the credential aggregate refuses it if anything changed meanwhile,
//! so a late or duplicate renewal can never overwrite newer tokens. A provider that
//! returns no new refresh token keeps the old one (its ciphertext is carried over).
//!
//! Transient errors (5xx, 429 with `Retry-After`, timeouts) are retried with backoff by
//! `tributary_oauth::refresh_with_retry`, then on the next tick. `invalid_grant` marks the
//! credential `needs_reauthorization` (`credential.reauthorization_required`, an event a
//! notifier can act on); it is not retried.

use anyhow::Context;
use chrono::Utc;
use rdkafka::producer::FutureProducer;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tributary_domain::credential::{self, Credential};
use tributary_domain::{Aggregate, OrgId};
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_oauth::{Providers, RefreshPolicy, TokenSet};
use tributary_store::Db;
use tributary_store::credentials::{self as store, CredentialRow};
use tributary_store::vault::Vault;
use tributary_vault::KeyScope;

const SOURCE: &str = "/tributary/refresher";
const ACTOR: &str = "system:refresher";

pub struct Refresher {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub db: Db,
    pub vault: Vault,
    pub providers: Providers,
    pub http: reqwest::Client,
    pub policy: RefreshPolicy,
    pub tick: Duration,
}

/// What one renewal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    Refreshed,
    NeedsReauthorization,
    /// Another process holds the credential, or nothing is due.
    Skipped,
}

impl Refresher {
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let producer: FutureProducer = match self.kafka.producer().create() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "the refresher could not create a Kafka producer");
                return;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.round(&producer).await {
                tracing::warn!(error = %format!("{e:#}"), "a refresh round failed; trying again next tick");
            }
            let mut slept = Duration::ZERO;
            while slept < self.tick && !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                slept += Duration::from_millis(200);
            }
        }
    }

    async fn round(&self, producer: &FutureProducer) -> anyhow::Result<()> {
        let candidates = {
            let client = self.db.get().await?;
            store::oauth_credentials(&**client).await?
        };
        let now = Utc::now();
        for row in candidates {
            let expires_at = row.config["expires_at"]
                .as_str()
                .and_then(|s| s.parse().ok());
            if !self.policy.is_due(expires_at, row.updated_at, now) {
                continue;
            }
            match self.renew(producer, &row).await {
                Ok(outcome) => tracing::debug!(credential = %row.id, ?outcome, "refresh"),
                Err(e) => tracing::warn!(
                    credential = %row.id,
                    error = %format!("{e:#}"),
                    "refreshing an OAuth credential failed; trying again next tick"
                ),
            }
        }
        Ok(())
    }

    async fn renew(
        &self,
        producer: &FutureProducer,
        row: &CredentialRow,
    ) -> anyhow::Result<Renewal> {
        // The lock lives on this connection; it is released below, or when the
        // connection closes if the process dies.
        let lock = self.db.get().await?;
        let key = format!("tributary.refresh.{}", row.id);
        let locked: bool = lock
            .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
            .await?
            .get(0);
        if !locked {
            return Ok(Renewal::Skipped);
        }
        let result = self.renew_locked(producer, row).await;
        lock.execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key])
            .await?;
        result
    }

    async fn renew_locked(
        &self,
        producer: &FutureProducer,
        row: &CredentialRow,
    ) -> anyhow::Result<Renewal> {
        // Read again under the lock: another process may have renewed it just now.
        let current = {
            let client = self.db.get().await?;
            store::versions(&**client, &[row.id]).await?
        };
        if current.first().map(|(_, v)| *v) != Some(row.aggregate_version) {
            return Ok(Renewal::Skipped);
        }
        let provider_name = row.config["provider"].as_str().unwrap_or_default();
        let provider = self.providers.get(provider_name).with_context(|| {
            format!(
                "credential {} uses OAuth provider {provider_name:?}, which is not configured",
                row.id
            )
        })?;
        let secrets = {
            let client = self.db.get().await?;
            store::secrets_of(&**client, row.id, row.version).await?
        };
        let Some(refresh) = secrets.iter().find(|s| s.field == "refresh_token") else {
            return Ok(Renewal::Skipped);
        };
        let scope = KeyScope::Org(row.org_id);
        let record = row.id.to_string();
        let refresh_token = self
            .vault
            .open(scope, &record, "refresh_token", &refresh.sealed)
            .await?;
        let refresh_token = String::from_utf8(refresh_token.to_vec())
            .context("the stored refresh token is not text")?;
        let renewed =
            tributary_oauth::refresh_with_retry(&self.http, provider, &refresh_token, &self.policy)
                .await;
        let org = OrgId(row.org_id);
        match renewed {
            Ok(tokens) => {
                let data = self.stored(row, &tokens, refresh).await?;
                self.submit(producer, row, org, credential::STORE_TOKENS, &data)
                    .await?;
                tracing::info!(credential = %row.id, provider = provider_name, "OAuth tokens renewed");
                Ok(Renewal::Refreshed)
            }
            Err(e) if e.needs_reauthorization() => {
                let data = serde_json::json!({
                    "credential_id": row.id, "org_id": row.org_id,
                    "expected_version": row.version,
                    "reason": e.to_string().chars().take(1000).collect::<String>(),
                    "actor": ACTOR, "at": Utc::now(),
                });
                self.submit(
                    producer,
                    row,
                    org,
                    credential::REQUIRE_REAUTHORIZATION,
                    &data,
                )
                .await?;
                tracing::warn!(credential = %row.id, provider = provider_name, error = %e,
                    "the provider refused the refresh token: the credential needs re-authorization");
                Ok(Renewal::NeedsReauthorization)
            }
            Err(e) => Err(anyhow::Error::new(e).context("renewing the tokens")),
        }
    }

    /// The `store_tokens` command for renewed tokens.
    async fn stored(
        &self,
        row: &CredentialRow,
        tokens: &TokenSet,
        old_refresh: &store::SecretRow,
    ) -> anyhow::Result<serde_json::Value> {
        let record = row.id.to_string();
        let mut plain: Vec<(&str, &[u8])> = vec![("access_token", tokens.access_token.as_bytes())];
        if let Some(refresh) = &tokens.refresh_token {
            plain.push(("refresh_token", refresh.as_bytes()));
        }
        let sealed = self
            .vault
            .seal(KeyScope::Org(row.org_id), &record, &plain, ACTOR)
            .await?;
        let mut secrets: BTreeMap<String, credential::SealedField> = plain
            .iter()
            .zip(sealed)
            .map(|((field, value), sealed)| {
                let text = String::from_utf8_lossy(value);
                (
                    (*field).to_owned(),
                    credential::SealedField {
                        sealed,
                        mask: tributary_vault::mask(&text),
                    },
                )
            })
            .collect();
        // No new refresh token: the old one stays valid (and keeps its ciphertext).
        secrets
            .entry("refresh_token".to_owned())
            .or_insert_with(|| credential::SealedField {
                sealed: old_refresh.sealed.clone(),
                mask: old_refresh.mask.clone(),
            });
        let mut config = serde_json::json!({});
        if let Some(at) = tokens.expires_at {
            config["expires_at"] = serde_json::json!(at);
        }
        if !tokens.scopes.is_empty() {
            config["scopes"] = serde_json::json!(tokens.scopes);
        }
        Ok(serde_json::json!({
            "credential_id": row.id, "org_id": row.org_id, "expected_version": row.version,
            "secrets": secrets, "config": config, "actor": ACTOR, "at": Utc::now(),
        }))
    }

    /// Produces a command for the credential and waits for its outcome, so the lock is
    /// held until the renewal is recorded.
    async fn submit(
        &self,
        producer: &FutureProducer,
        row: &CredentialRow,
        org: OrgId,
        ty: &str,
        data: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let key = row.id.to_string();
        let id = crate::produce::command(
            producer,
            &self.topics,
            SOURCE,
            (Credential::KIND, &key),
            ty,
            org,
            data,
        )
        .await?;
        match crate::produce::outcome(&self.db, id, Duration::from_secs(30)).await? {
            Some(outcome) if outcome.status == "accepted" => {
                // Hold the lock until the read model shows it too: the next round must
                // not start from the spent refresh token.
                let version = outcome.aggregate_version.unwrap_or(0);
                for _ in 0..100 {
                    let client = self.db.get().await?;
                    let shown = store::versions(&**client, &[row.id]).await?;
                    if shown.first().is_some_and(|(_, v)| *v >= version) {
                        break;
                    }
                    drop(client);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(())
            }
            Some(outcome) => anyhow::bail!(
                "{ty} for credential {} was rejected: {}",
                row.id,
                outcome.reason.unwrap_or_default()
            ),
            None => anyhow::bail!("{ty} for credential {} has no outcome after 30 s", row.id),
        }
    }
}
