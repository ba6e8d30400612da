//! The key store: per-org (and per-user) versioned data keys, wrapped by the
//! key-encryption keys from configuration, in Postgres tables that are not derived from
//! the log (see migrations/V4__vault.sql). Sealing and opening go through here; the
//! cryptography itself is `tributary-vault`'s.
//!
//! Every key change (a new version, a re-wrap, a shredding) writes its event to
//! `vault_outbox` in the same transaction, and the keeper relays the outbox to the
//! vault topic: the log records every key change even if a process dies in between.
//!
//! Unwrapped data keys are not cached: a shredded key must stop working everywhere at
//! once, and an unwrap is one small query and one AES operation.

use crate::Db;
use crate::error::{Error, pg};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use std::sync::Arc;
use tributary_vault::{
    BlindIndex, DataKey, FieldRef, KekRing, KeyScope, MAX_KEY_AGE_DAYS, RETIRE_AFTER_ENCRYPTIONS,
    VaultError, WrappedKey,
};
use uuid::Uuid;
use zeroize::Zeroizing;

pub use tributary_domain::vault::{DATA_KEY_CREATED, KEK_ROTATED, SHREDDED};

#[derive(Debug, thiserror::Error)]
pub enum VaultFailure {
    #[error(transparent)]
    Crypto(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] Error),
    #[error(
        "the {kind} {id} was deleted and its keys destroyed (crypto-shredded); nothing can be \
         encrypted or decrypted for it any more"
    )]
    Shredded { kind: &'static str, id: Uuid },
}

impl VaultFailure {
    /// Whether the value is gone for good (as opposed to a failure worth retrying).
    pub fn is_shredded(&self) -> bool {
        matches!(
            self,
            Self::Shredded { .. } | Self::Crypto(VaultError::Shredded)
        )
    }
}

type Result<T, E = VaultFailure> = std::result::Result<T, E>;

/// Why a new data-key version started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NewKeyReason {
    FirstUse,
    Rotation,
    UsageLimit,
    Age,
}

/// One data-key version, for the encryption report.
#[derive(Debug, Clone, Serialize)]
pub struct KeyVersion {
    pub version: u32,
    pub kek_id: String,
    pub encryptions: i64,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Vault {
    db: Db,
    ring: Arc<KekRing>,
    /// The email blind-index key, once loaded. Cached, unlike data keys: it is never
    /// shredded, and every sign-in needs it.
    email_index: Arc<tokio::sync::OnceCell<Arc<BlindIndex>>>,
}

/// The `system` scope id of the email blind-index key.
pub const EMAIL_INDEX_SCOPE: Uuid = Uuid::from_u128(0x7472_6962_7574_6172_795f_656d_6169_6c31);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("primary_kek", &self.ring.primary_id())
            .finish_non_exhaustive()
    }
}

fn scope_parts(scope: KeyScope) -> (&'static str, Uuid) {
    (scope.kind(), scope.id())
}

fn scope_of(kind: &str, id: Uuid) -> KeyScope {
    match kind {
        "user" => KeyScope::User(id),
        "system" => KeyScope::System(id),
        _ => KeyScope::Org(id),
    }
}

/// The org an event about a scope belongs to (a user's keys belong to no org).
fn org_of(scope: KeyScope) -> Option<Uuid> {
    match scope {
        KeyScope::Org(id) => Some(id),
        KeyScope::User(_) | KeyScope::System(_) => None,
    }
}

async fn outbox(
    tx: &impl GenericClient,
    event_type: &str,
    org_id: Option<Uuid>,
    subject: &str,
    data: serde_json::Value,
) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO vault_outbox (event_id, event_type, org_id, subject, data) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&Uuid::now_v7(), &event_type, &org_id, &subject, &data],
    )
    .await
    .map_err(pg("recording a key event"))?;
    Ok(())
}

impl Vault {
    pub fn new(db: Db, ring: Arc<KekRing>) -> Self {
        Self {
            db,
            ring,
            email_index: Arc::default(),
        }
    }

    /// The blind index of a normalized email address (`ebi1_<hex>`): what reservations,
    /// memberships and sign-ins key on instead of the address. The key is made on first
    /// use and kept in the key store (version 1 of a `system` scope) for good.
    pub async fn email_index(&self, normalized_email: &str) -> Result<String> {
        let key = self
            .email_index
            .get_or_try_init(|| async {
                let scope = KeyScope::System(EMAIL_INDEX_SCOPE);
                let client = self.db.get().await.map_err(Error::from)?;
                self.start_version(&client, scope, None, NewKeyReason::FirstUse, "system:vault")
                    .await?;
                Ok::<_, VaultFailure>(Arc::new(BlindIndex::from_key(&self.key(scope, 1).await?)))
            })
            .await?;
        Ok(key.index(normalized_email))
    }

    pub fn ring(&self) -> &KekRing {
        &self.ring
    }

    async fn shredded(&self, client: &impl GenericClient, scope: KeyScope) -> Result<bool> {
        let (kind, id) = scope_parts(scope);
        let row = client
            .query_opt(
                "SELECT 1 FROM vault_shredded WHERE scope = $1 AND scope_id = $2",
                &[&kind, &id],
            )
            .await
            .map_err(pg("checking for a shredded scope"))?;
        Ok(row.is_some())
    }

    fn gone(scope: KeyScope) -> VaultFailure {
        let (kind, id) = scope_parts(scope);
        VaultFailure::Shredded { kind, id }
    }

    /// Seals the fields of one record (`record` and each field name are bound into the
    /// ciphertext) under the scope's current data key, starting a key or a new version
    /// when there is none, or the current one reached its usage or age limit.
    pub async fn seal(
        &self,
        scope: KeyScope,
        record: &str,
        fields: &[(&str, &[u8])],
        actor: &str,
    ) -> Result<Vec<String>> {
        let n = fields.len() as i64;
        let (kind, id) = scope_parts(scope);
        let mut client = self.db.get().await.map_err(Error::from)?;
        for _ in 0..3 {
            // Reserve `n` nonce counters on the newest usable version in one statement.
            let row = client
                .query_opt(
                    "UPDATE vault_data_keys k SET encryptions = k.encryptions + $3 \
                     WHERE (k.scope, k.scope_id, k.version) = ( \
                         SELECT scope, scope_id, version FROM vault_data_keys \
                         WHERE scope = $1 AND scope_id = $2 AND retired_at IS NULL \
                         ORDER BY version DESC LIMIT 1) \
                     AND k.encryptions + $3 <= $4 \
                     AND k.created_at > now() - make_interval(days => $5) \
                     RETURNING k.version, k.kek_id, k.wrapped, k.encryptions",
                    &[
                        &kind,
                        &id,
                        &n,
                        &(RETIRE_AFTER_ENCRYPTIONS as i64),
                        &(MAX_KEY_AGE_DAYS as i32),
                    ],
                )
                .await
                .map_err(pg("reserving encryptions on a data key"))?;
            if let Some(row) = row {
                let version: i32 = row.get(0);
                let version = version as u32;
                let key = self.unwrap_row(scope, version, row.get(1), row.get(2))?;
                let last: i64 = row.get(3);
                let first = (last - n + 1) as u64;
                return Ok(fields
                    .iter()
                    .enumerate()
                    .map(|(i, (field, plaintext))| {
                        let at = FieldRef {
                            scope,
                            record,
                            field,
                        };
                        tributary_vault::seal(&key, version, first + i as u64, &at, plaintext)
                    })
                    .collect());
            }
            // No usable version: start one (another process may race us; the primary
            // key settles it and we try again).
            let tx = client.transaction().await.map_err(pg("starting a key"))?;
            if self.shredded(&tx, scope).await? {
                return Err(Self::gone(scope));
            }
            let current = tx
                .query_opt(
                    "SELECT version, encryptions, created_at FROM vault_data_keys \
                     WHERE scope = $1 AND scope_id = $2 ORDER BY version DESC LIMIT 1 FOR UPDATE",
                    &[&kind, &id],
                )
                .await
                .map_err(pg("reading the newest data key"))?;
            let reason = match &current {
                None => NewKeyReason::FirstUse,
                Some(r) if r.get::<_, i64>(1) + n > RETIRE_AFTER_ENCRYPTIONS as i64 => {
                    NewKeyReason::UsageLimit
                }
                Some(_) => NewKeyReason::Age,
            };
            let previous = current.map(|r| r.get::<_, i32>(0) as u32);
            self.start_version(&tx, scope, previous, reason, actor)
                .await?;
            tx.commit().await.map_err(pg("starting a key"))?;
        }
        Err(VaultFailure::Store(Error::Migration(
            "could not reserve a data key after three attempts; try again".into(),
        )))
    }

    /// Creates version `previous + 1`, retiring `previous`, inside `tx`.
    async fn start_version(
        &self,
        tx: &impl GenericClient,
        scope: KeyScope,
        previous: Option<u32>,
        reason: NewKeyReason,
        actor: &str,
    ) -> Result<u32> {
        let (kind, id) = scope_parts(scope);
        let version = previous.unwrap_or(0) + 1;
        let wrapped = self.ring.wrap(&DataKey::generate(), scope, version);
        if let Some(previous) = previous {
            tx.execute(
                "UPDATE vault_data_keys SET retired_at = now() \
                 WHERE scope = $1 AND scope_id = $2 AND version = $3 AND retired_at IS NULL",
                &[&kind, &id, &(previous as i32)],
            )
            .await
            .map_err(pg("retiring a data key"))?;
        }
        let inserted = tx
            .execute(
                "INSERT INTO vault_data_keys (scope, scope_id, version, kek_id, wrapped) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &kind,
                    &id,
                    &(version as i32),
                    &wrapped.kek_id,
                    &wrapped.bytes,
                ],
            )
            .await
            .map_err(pg("storing a data key"))?;
        if inserted == 1 {
            outbox(
                tx,
                DATA_KEY_CREATED,
                org_of(scope),
                &format!("{kind}:{id}"),
                serde_json::json!({
                    "scope": kind, "scope_id": id, "version": version,
                    "previous_version": previous, "kek_id": wrapped.kek_id,
                    "reason": reason, "actor": actor, "at": Utc::now(),
                }),
            )
            .await?;
        }
        Ok(version)
    }

    fn unwrap_row(
        &self,
        scope: KeyScope,
        version: u32,
        kek_id: String,
        bytes: Vec<u8>,
    ) -> Result<DataKey> {
        Ok(self
            .ring
            .unwrap(&WrappedKey { kek_id, bytes }, scope, version)?)
    }

    /// The data key of one version; `Shredded` when it was destroyed.
    async fn key(&self, scope: KeyScope, version: u32) -> Result<DataKey> {
        let (kind, id) = scope_parts(scope);
        let client = self.db.get().await.map_err(Error::from)?;
        let row = client
            .query_opt(
                "SELECT kek_id, wrapped FROM vault_data_keys \
                 WHERE scope = $1 AND scope_id = $2 AND version = $3",
                &[&kind, &id, &(version as i32)],
            )
            .await
            .map_err(pg("reading a data key"))?;
        match row {
            Some(row) => self.unwrap_row(scope, version, row.get(0), row.get(1)),
            None if self.shredded(&client, scope).await? => Err(Self::gone(scope)),
            None => Err(VaultError::Malformed(format!(
                "no data key version {version} exists for this {kind}; the value was not \
                 sealed by this installation's vault"
            ))
            .into()),
        }
    }

    /// Opens one sealed field of a record.
    pub async fn open(
        &self,
        scope: KeyScope,
        record: &str,
        field: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let version = tributary_vault::sealed_version(sealed)?;
        let key = self.key(scope, version).await?;
        let at = FieldRef {
            scope,
            record,
            field,
        };
        Ok(tributary_vault::open(&key, &at, sealed)?)
    }

    /// Starts a new data-key version for new writes; the old one keeps decrypting until
    /// the keeper has moved every secret forward. Returns the new version.
    pub async fn rotate(&self, scope: KeyScope, actor: &str) -> Result<u32> {
        let (kind, id) = scope_parts(scope);
        let mut client = self.db.get().await.map_err(Error::from)?;
        let tx = client.transaction().await.map_err(pg("rotating a key"))?;
        if self.shredded(&tx, scope).await? {
            return Err(Self::gone(scope));
        }
        let previous = tx
            .query_opt(
                "SELECT version FROM vault_data_keys WHERE scope = $1 AND scope_id = $2 \
                 ORDER BY version DESC LIMIT 1 FOR UPDATE",
                &[&kind, &id],
            )
            .await
            .map_err(pg("reading the newest data key"))?
            .map(|r| r.get::<_, i32>(0) as u32);
        let reason = if previous.is_some() {
            NewKeyReason::Rotation
        } else {
            NewKeyReason::FirstUse
        };
        let version = self
            .start_version(&tx, scope, previous, reason, actor)
            .await?;
        tx.commit().await.map_err(pg("rotating a key"))?;
        Ok(version)
    }

    /// The newest version of a scope's data key (the one new writes use), if any.
    pub async fn current_version(&self, scope: KeyScope) -> Result<Option<u32>> {
        let (kind, id) = scope_parts(scope);
        let client = self.db.get().await.map_err(Error::from)?;
        Ok(client
            .query_opt(
                "SELECT max(version) FROM vault_data_keys WHERE scope = $1 AND scope_id = $2",
                &[&kind, &id],
            )
            .await
            .map_err(pg("reading the newest data key"))?
            .and_then(|r| r.get::<_, Option<i32>>(0))
            .map(|v| v as u32))
    }

    /// Re-wraps every data key not wrapped by the primary KEK (after a new KEK was put
    /// first in the configuration), in batches, each in its own transaction: data stays
    /// readable throughout, since old and new KEKs are both configured. Returns how many
    /// keys were re-wrapped; `progress` is called after each batch.
    pub async fn rotate_kek(&self, actor: &str, mut progress: impl FnMut(u64)) -> Result<u64> {
        let primary = self.ring.primary_id().to_owned();
        let mut done = 0u64;
        let mut from: Vec<String> = Vec::new();
        loop {
            let mut client = self.db.get().await.map_err(Error::from)?;
            let tx = client.transaction().await.map_err(pg("re-wrapping keys"))?;
            let rows = tx
                .query(
                    "SELECT scope, scope_id, version, kek_id, wrapped FROM vault_data_keys \
                     WHERE kek_id <> $1 ORDER BY scope, scope_id, version LIMIT 500 \
                     FOR UPDATE SKIP LOCKED",
                    &[&primary],
                )
                .await
                .map_err(pg("reading keys to re-wrap"))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let scope = scope_of(row.get(0), row.get(1));
                let version = row.get::<_, i32>(2) as u32;
                let kek: String = row.get(3);
                let key = self.unwrap_row(scope, version, kek.clone(), row.get(4))?;
                let wrapped = self.ring.wrap(&key, scope, version);
                tx.execute(
                    "UPDATE vault_data_keys SET kek_id = $4, wrapped = $5 \
                     WHERE scope = $1 AND scope_id = $2 AND version = $3",
                    &[
                        &scope.kind(),
                        &scope.id(),
                        &(version as i32),
                        &wrapped.kek_id,
                        &wrapped.bytes,
                    ],
                )
                .await
                .map_err(pg("storing a re-wrapped key"))?;
                if !from.contains(&kek) {
                    from.push(kek);
                }
            }
            done += rows.len() as u64;
            tx.commit().await.map_err(pg("re-wrapping keys"))?;
            progress(done);
        }
        let client = self.db.get().await.map_err(Error::from)?;
        outbox(
            &client,
            KEK_ROTATED,
            None,
            "kek",
            serde_json::json!({
                "to_kek_id": primary, "from_kek_ids": from, "rewrapped": done,
                "actor": actor, "at": Utc::now(),
            }),
        )
        .await?;
        Ok(done)
    }

    /// How many data keys each KEK still wraps (the old KEK can be dropped from the
    /// configuration once it wraps none).
    pub async fn keys_per_kek(&self) -> Result<Vec<(String, i64)>> {
        let client = self.db.get().await.map_err(Error::from)?;
        let rows = client
            .query(
                "SELECT kek_id, count(*) FROM vault_data_keys GROUP BY kek_id ORDER BY kek_id",
                &[],
            )
            .await
            .map_err(pg("counting keys per KEK"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Destroys every data key of a scope, for good. Idempotent; returns the versions
    /// destroyed by this call.
    pub async fn shred(&self, scope: KeyScope, reason: &str, actor: &str) -> Result<Vec<u32>> {
        let (kind, id) = scope_parts(scope);
        let mut client = self.db.get().await.map_err(Error::from)?;
        let tx = client.transaction().await.map_err(pg("shredding keys"))?;
        let rows = tx
            .query(
                "DELETE FROM vault_data_keys WHERE scope = $1 AND scope_id = $2 RETURNING version",
                &[&kind, &id],
            )
            .await
            .map_err(pg("destroying data keys"))?;
        let newly = tx
            .execute(
                "INSERT INTO vault_shredded (scope, scope_id, reason) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&kind, &id, &reason],
            )
            .await
            .map_err(pg("recording a shredding"))?;
        let mut versions: Vec<u32> = rows.iter().map(|r| r.get::<_, i32>(0) as u32).collect();
        versions.sort_unstable();
        if newly == 1 || !versions.is_empty() {
            outbox(
                &tx,
                SHREDDED,
                org_of(scope),
                &format!("{kind}:{id}"),
                serde_json::json!({
                    "scope": kind, "scope_id": id, "versions": versions, "reason": reason,
                    "actor": actor, "at": Utc::now(),
                }),
            )
            .await?;
        }
        tx.commit().await.map_err(pg("shredding keys"))?;
        Ok(versions)
    }

    pub async fn is_shredded(&self, scope: KeyScope) -> Result<bool> {
        let client = self.db.get().await.map_err(Error::from)?;
        self.shredded(&client, scope).await
    }

    /// The versions of a scope's data key, newest first.
    pub async fn versions(&self, scope: KeyScope) -> Result<Vec<KeyVersion>> {
        let (kind, id) = scope_parts(scope);
        let client = self.db.get().await.map_err(Error::from)?;
        let rows = client
            .query(
                "SELECT version, kek_id, encryptions, created_at, retired_at FROM vault_data_keys \
                 WHERE scope = $1 AND scope_id = $2 ORDER BY version DESC",
                &[&kind, &id],
            )
            .await
            .map_err(pg("listing data keys"))?;
        Ok(rows
            .iter()
            .map(|r| KeyVersion {
                version: r.get::<_, i32>(0) as u32,
                kek_id: r.get(1),
                encryptions: r.get(2),
                created_at: r.get(3),
                retired_at: r.get(4),
            })
            .collect())
    }
}

/// One event waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub seq: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub org_id: Option<Uuid>,
    pub subject: String,
    pub data: serde_json::Value,
}

/// The oldest events waiting in the outbox.
pub async fn outbox_pending(db: &Db, limit: i64) -> crate::Result<Vec<OutboxEvent>> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT seq, event_id, event_type, org_id, subject, data FROM vault_outbox \
             ORDER BY seq LIMIT $1",
            &[&limit],
        )
        .await
        .map_err(pg("reading the vault outbox"))?;
    Ok(rows
        .iter()
        .map(|r| OutboxEvent {
            seq: r.get(0),
            event_id: r.get(1),
            event_type: r.get(2),
            org_id: r.get(3),
            subject: r.get(4),
            data: r.get(5),
        })
        .collect())
}

/// Removes relayed events (up to and including `seq`).
pub async fn outbox_done(db: &Db, seq: i64) -> crate::Result<()> {
    let client = db.get().await?;
    client
        .execute("DELETE FROM vault_outbox WHERE seq <= $1", &[&seq])
        .await
        .map_err(pg("clearing the vault outbox"))?;
    Ok(())
}
