//! The keeper: the vault's background work.
//!
//! - relays the vault's outbox (key created, re-wrapped, shredded) to
//!   `<prefix>.vault.events`, in order, deleting each event only once Kafka has it;
//! - shreds an org's data keys when the org is deleted (`org.deleted` on the org event
//!   topic), and a user's key when the user is forgotten (`user.forgotten`), reading both
//!   topics in a consumer group of its own and committing offsets after the shredding,
//!   which is idempotent;
//! - re-encrypts secrets still sealed under a retired data-key version, by producing a
//!   `credential.reencrypt` command per secret version, so the move forward is itself a
//!   new event and the old ciphertext stays only in history.
//!
//! Several keepers may run: the consumer group splits the org topic, the outbox relay
//! deletes by sequence (a duplicate relay writes the same event id twice, which the
//! audit projection stores once), and a re-encryption sent twice is answered by the
//! credential aggregate either way.

use anyhow::Context;
use chrono::Utc;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tributary_domain::credential::{self, Credential};
use tributary_domain::{Aggregate, OrgId, org, user};
use tributary_log::client::KafkaSettings;
use tributary_log::{Envelope, Topics};
use tributary_store::Db;
use tributary_store::vault::{self, Vault};
use tributary_vault::KeyScope;
use uuid::Uuid;

const SOURCE: &str = "/tributary/keeper";
const ACTOR: &str = "system:keeper";
/// How often the outbox and the re-encryption backlog are looked at.
const TICK: Duration = Duration::from_millis(300);
/// How often secrets under retired data keys are looked for.
const REENCRYPT_EVERY: Duration = Duration::from_secs(2);
/// A re-encryption is sent again only if the read model still shows the old key after this.
const RESEND_AFTER: Duration = Duration::from_secs(30);

pub struct Keeper {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub db: Db,
    pub vault: Vault,
}

impl Keeper {
    /// Runs until `stop` is set; each part retries on its own after a failure.
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let producer: FutureProducer = match self.kafka.producer().create() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "the keeper could not create a Kafka producer");
                return;
            }
        };
        let shredder = {
            let keeper = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move { keeper.shred_deleted_orgs(&stop).await })
        };
        let mut sent: HashMap<(Uuid, i32, i32), Instant> = HashMap::new();
        let mut scanned: Option<Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.relay(&producer).await {
                tracing::warn!(error = %format!("{e:#}"), "relaying key events failed; retrying");
            }
            // The backlog scan reads the whole secrets table: less often than the relay.
            if scanned.is_none_or(|at| at.elapsed() >= REENCRYPT_EVERY) {
                scanned = Some(Instant::now());
                if let Err(e) = self.reencrypt(&producer, &mut sent).await {
                    tracing::warn!(error = %format!("{e:#}"), "re-encrypting secrets failed; retrying");
                }
            }
            tokio::time::sleep(TICK).await;
        }
        let _ = shredder.await;
    }

    async fn relay(&self, producer: &FutureProducer) -> anyhow::Result<()> {
        loop {
            let pending = vault::outbox_pending(&self.db, 100).await?;
            let Some(last) = pending.last().map(|e| e.seq) else {
                return Ok(());
            };
            let topic = self.topics.vault();
            for event in &pending {
                let mut env = Envelope::new(
                    SOURCE,
                    event.event_type.clone(),
                    serde_json::to_vec(&event.data)?,
                );
                env.id = event.event_id.to_string();
                env.subject = Some(event.subject.clone());
                env.org_id = event.org_id.map(OrgId);
                env.time = Some(Utc::now());
                let record = FutureRecord::to(&topic)
                    .key(&event.subject)
                    .payload(&env.data)
                    .headers(env.encode_headers());
                producer
                    .send(record, Duration::from_secs(10))
                    .await
                    .map_err(|(e, _)| anyhow::anyhow!("producing a key event: {e}"))?;
            }
            vault::outbox_done(&self.db, last).await?;
        }
    }

    async fn shred_deleted_orgs(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.shred_loop(stop).await {
                tracing::warn!(error = %format!("{e:#}"), "the shredder failed; restarting in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    async fn shred_loop(&self, stop: &AtomicBool) -> anyhow::Result<()> {
        let group = format!("{}.keeper", self.topics.prefix());
        let consumer: StreamConsumer = self
            .kafka
            .consumer(&group)
            .set("enable.partition.eof", "false")
            .create()
            .context("creating the keeper's consumer")?;
        consumer.subscribe(&[
            &self.topics.events(org::Org::KIND),
            &self.topics.events(user::User::KIND),
        ])?;
        while !stop.load(Ordering::SeqCst) {
            let message =
                match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
                    Err(_) => continue,
                    Ok(message) => message?,
                };
            let env =
                match Envelope::decode(message.headers(), message.payload().unwrap_or_default()) {
                    Ok(env) => env,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping an event that does not decode");
                        consumer.commit_message(&message, CommitMode::Async)?;
                        continue;
                    }
                };
            if env.ty == org::DELETED
                && let Some(org_id) = env.org_id
            {
                let versions = self
                    .vault
                    .shred(KeyScope::Org(org_id.0), "org deleted", ACTOR)
                    .await?;
                tracing::info!(org = %org_id, ?versions, "org deleted: its data keys were destroyed");
            }
            if env.ty == user::FORGOTTEN
                && let Some(user_id) = env.subject.as_deref().and_then(|s| s.parse().ok())
            {
                let versions = self
                    .vault
                    .shred(KeyScope::User(user_id), "user forgotten", ACTOR)
                    .await?;
                tracing::info!(user = %user_id, ?versions, "user forgotten: their key was destroyed");
            }
            consumer.commit_message(&message, CommitMode::Async)?;
        }
        Ok(())
    }

    async fn reencrypt(
        &self,
        producer: &FutureProducer,
        sent: &mut HashMap<(Uuid, i32, i32), Instant>,
    ) -> anyhow::Result<()> {
        sent.retain(|_, at| at.elapsed() < RESEND_AFTER);
        let orgs = {
            let client = self.db.get().await?;
            tributary_store::credentials::orgs_with_stale_secrets(&**client).await?
        };
        for (org_id, current) in orgs {
            let stale = {
                let client = self.db.get().await?;
                tributary_store::credentials::stale_secrets(&**client, org_id, current, 500).await?
            };
            let mut per_version: BTreeMap<(Uuid, i32), Vec<_>> = BTreeMap::new();
            for s in stale {
                per_version
                    .entry((s.credential_id, s.secret_version))
                    .or_default()
                    .push(s);
            }
            for ((credential_id, secret_version), secrets) in per_version {
                if sent.contains_key(&(credential_id, secret_version, current)) {
                    continue;
                }
                let record = credential_id.to_string();
                let scope = KeyScope::Org(org_id);
                let mut fields = Vec::new();
                for s in &secrets {
                    let plain = self.vault.open(scope, &record, &s.field, &s.sealed).await?;
                    fields.push((s.field.clone(), plain));
                }
                let refs: Vec<(&str, &[u8])> = fields
                    .iter()
                    .map(|(f, p)| (f.as_str(), p.as_slice()))
                    .collect();
                let sealed = self.vault.seal(scope, &record, &refs, ACTOR).await?;
                let moved: BTreeMap<String, String> =
                    fields.iter().map(|(f, _)| f.clone()).zip(sealed).collect();
                drop(fields);
                let data = serde_json::json!({
                    "credential_id": credential_id, "org_id": org_id,
                    "version": secret_version, "secrets": moved,
                    "actor": ACTOR, "at": Utc::now(),
                });
                crate::produce::command(
                    producer,
                    &self.topics,
                    SOURCE,
                    (Credential::KIND, &record),
                    credential::REENCRYPT,
                    OrgId(org_id),
                    &data,
                )
                .await?;
                sent.insert((credential_id, secret_version, current), Instant::now());
                tracing::info!(credential = %credential_id, secret_version, to_key = current, "re-encrypting a credential");
            }
        }
        Ok(())
    }
}
