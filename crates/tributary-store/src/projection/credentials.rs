//! The `credentials` and `credential_secrets` read models, and the `audit_events` log of
//! who did what to credentials and keys.
//!
//! Neither ever holds plaintext: secret fields are kept as the vault's ciphertext with
//! their masks. When an org's keys were destroyed (crypto-shredding), its secrets are
//! marked `shredded`, in the live model and in any later rebuild, instead of failing.

use super::Table;
use crate::error::{Result, pg};
use chrono::Utc;
use std::collections::HashSet;
use tokio_postgres::Transaction;
use tributary_domain::credential::{CredentialEvent, SealedFields};
use tributary_domain::vault;
use tributary_log::Envelope;
use uuid::Uuid;

pub(super) const TABLES: &[Table] = &[
    Table {
        name: "credentials",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/credentials.table.sql"),
    },
    Table {
        name: "credential_secrets",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/credential_secrets.table.sql"),
    },
];

pub(super) const AUDIT_TABLES: &[Table] = &[Table {
    name: "audit_events",
    policy: Some("org_id = tributary_current_org() OR org_id IS NULL"),
    ddl: include_str!("../../sql/audit_events.table.sql"),
}];

/// The data-key version of a sealed value (`tv1.<version>.…`); 0 when unreadable.
fn key_version(sealed: &str) -> i32 {
    sealed
        .split('.')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn shredded_orgs(tx: &Transaction<'_>, orgs: &[Uuid]) -> Result<HashSet<Uuid>> {
    if orgs.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = tx
        .query(
            "SELECT scope_id FROM vault_shredded WHERE scope = 'org' AND scope_id = ANY($1)",
            &[&orgs],
        )
        .await
        .map_err(pg("reading shredded orgs"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

struct Writer<'a> {
    tx: &'a Transaction<'a>,
    credentials: String,
    secrets: String,
    shredded: HashSet<Uuid>,
}

impl Writer<'_> {
    async fn put_secrets(
        &self,
        org: Uuid,
        credential: Uuid,
        version: u32,
        secrets: &SealedFields,
    ) -> Result<()> {
        let shredded = self.shredded.contains(&org);
        for (field, value) in secrets {
            self.tx
                .execute(
                    &format!(
                        "INSERT INTO {} (org_id, credential_id, secret_version, field, sealed, \
                         mask, key_version, shredded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (credential_id, secret_version, field) DO UPDATE SET \
                         sealed = EXCLUDED.sealed, mask = EXCLUDED.mask, \
                         key_version = EXCLUDED.key_version, shredded = EXCLUDED.shredded",
                        self.secrets
                    ),
                    &[
                        &org,
                        &credential,
                        &(version as i32),
                        field,
                        &value.sealed,
                        &value.mask,
                        &key_version(&value.sealed),
                        &shredded,
                    ],
                )
                .await
                .map_err(pg("writing a credential secret"))?;
        }
        Ok(())
    }

    /// Drops every secret row of a credential except the versions kept.
    async fn keep_versions(&self, credential: Uuid, keep: &[i32]) -> Result<()> {
        self.tx
            .execute(
                &format!(
                    "DELETE FROM {} WHERE credential_id = $1 AND NOT (secret_version = ANY($2))",
                    self.secrets
                ),
                &[&credential, &keep],
            )
            .await
            .map_err(pg("dropping old credential secrets"))?;
        Ok(())
    }

    async fn set(
        &self,
        credential: Uuid,
        assignments: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        self.tx
            .execute(
                &format!(
                    "UPDATE {} SET {assignments}, updated_at = ($2::jsonb ->> 'at')::timestamptz \
                     WHERE id = $1",
                    self.credentials
                ),
                &[&credential, value],
            )
            .await
            .map_err(pg("updating a credential"))?;
        Ok(())
    }

    async fn apply(&self, event: &CredentialEvent) -> Result<()> {
        use CredentialEvent as E;
        let id = event.credential_id().0;
        let org = event.org_id().0;
        let data = serde_json::to_value(event).unwrap_or_default();
        match event {
            E::Created(e) => {
                self.tx
                    .execute(
                        &format!(
                            "INSERT INTO {} (id, org_id, kind, name, config, version, status, \
                             created_by, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $8) \
                             ON CONFLICT (id) DO NOTHING",
                            self.credentials
                        ),
                        &[
                            &id,
                            &org,
                            &e.kind,
                            &e.name,
                            &serde_json::Value::Object(e.config.clone()),
                            &(e.version as i32),
                            &e.actor,
                            &e.at,
                        ],
                    )
                    .await
                    .map_err(pg("writing a credential"))?;
                self.put_secrets(org, id, e.version, &e.secrets).await?;
            }
            E::Updated(_) => {
                self.set(
                    id,
                    "name = $2::jsonb ->> 'name', config = $2::jsonb -> 'config'",
                    &data,
                )
                .await?;
            }
            E::RotationStarted(e) => {
                self.set(
                    id,
                    "pending_version = ($2::jsonb ->> 'version')::int",
                    &data,
                )
                .await?;
                let current = self.current_version(id).await?;
                self.keep_versions(id, &[current]).await?;
                self.put_secrets(org, id, e.version, &e.secrets).await?;
            }
            E::Rotated(e) => {
                self.set(
                    id,
                    "version = ($2::jsonb ->> 'version')::int, pending_version = NULL",
                    &data,
                )
                .await?;
                self.keep_versions(id, &[e.version as i32]).await?;
            }
            E::RotationCanceled(_) => {
                self.set(id, "pending_version = NULL", &data).await?;
                let current = self.current_version(id).await?;
                self.keep_versions(id, &[current]).await?;
            }
            E::Tested(_) => {
                self.set(
                    id,
                    "last_test = $2::jsonb - 'credential_id' - 'org_id'",
                    &data,
                )
                .await?;
            }
            E::Revealed(_) => {}
            E::Reencrypted(e) => {
                for (field, sealed) in &e.secrets {
                    self.tx
                        .execute(
                            &format!(
                                "UPDATE {} SET sealed = $4, key_version = $5 \
                                 WHERE credential_id = $1 AND secret_version = $2 AND field = $3",
                                self.secrets
                            ),
                            &[
                                &id,
                                &(e.version as i32),
                                field,
                                sealed,
                                &key_version(sealed),
                            ],
                        )
                        .await
                        .map_err(pg("re-encrypting a credential secret"))?;
                }
            }
            E::TokensStored(e) => {
                self.set(
                    id,
                    "version = ($2::jsonb ->> 'version')::int, pending_version = NULL, \
                     config = $2::jsonb -> 'config', status = 'active'",
                    &data,
                )
                .await?;
                self.keep_versions(id, &[]).await?;
                self.put_secrets(org, id, e.version, &e.secrets).await?;
            }
            E::ReauthorizationRequired(_) => {
                self.set(id, "status = 'needs_reauthorization'", &data)
                    .await?;
            }
            E::Deleted(_) => {
                // The row stays (as `deleted`) so a waiter can see the deletion applied.
                self.set(id, "status = 'deleted', pending_version = NULL", &data)
                    .await?;
                self.keep_versions(id, &[]).await?;
            }
        }
        Ok(())
    }

    async fn current_version(&self, credential: Uuid) -> Result<i32> {
        let row = self
            .tx
            .query_opt(
                &format!("SELECT version FROM {} WHERE id = $1", self.credentials),
                &[&credential],
            )
            .await
            .map_err(pg("reading a credential"))?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    async fn shred_org(&self, org: Uuid) -> Result<()> {
        self.tx
            .execute(
                &format!(
                    "UPDATE {} SET shredded = true WHERE org_id = $1",
                    self.secrets
                ),
                &[&org],
            )
            .await
            .map_err(pg("marking secrets as shredded"))?;
        Ok(())
    }
}

fn scope_org(data: &serde_json::Value) -> Option<Uuid> {
    (data.get("scope")?.as_str()? == "org")
        .then(|| data.get("scope_id")?.as_str()?.parse().ok())
        .flatten()
}

pub(super) async fn apply(
    tx: &Transaction<'_>,
    version: i32,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let orgs: Vec<Uuid> = batch
        .iter()
        .filter_map(|(_, env)| env.org_id.map(|o| o.0))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let writer = Writer {
        tx,
        credentials: TABLES[0].versioned(version),
        secrets: TABLES[1].versioned(version),
        shredded: shredded_orgs(tx, &orgs).await?,
    };
    let mut applied = 0;
    for (_, env) in batch {
        if env.ty == vault::SHREDDED {
            let data: serde_json::Value = serde_json::from_slice(&env.data).unwrap_or_default();
            if let Some(org) = scope_org(&data) {
                writer.shred_org(org).await?;
                applied += 1;
            }
            continue;
        }
        if !env.ty.starts_with("tributary.credential.") {
            continue;
        }
        let event =
            CredentialEvent::decode(&env.ty, &env.data).map_err(|e| crate::Error::Decode {
                event_id: env.id.clone(),
                ty: env.ty.clone(),
                reason: e.to_string(),
            })?;
        writer.apply(&event).await?;
        if let Some(version) = env.agg_version {
            tx.execute(
                &format!(
                    "UPDATE {} SET aggregate_version = GREATEST(aggregate_version, $2) WHERE id = $1",
                    writer.credentials
                ),
                &[&event.credential_id().0, &(version as i64)],
            )
            .await
            .map_err(pg("recording a credential's version"))?;
        }
        applied += 1;
    }
    Ok(applied)
}

/// What the audit keeps of an event: everything but ciphertext; secret fields appear by
/// name (with their masks).
fn audit_detail(data: &[u8]) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    if let Some(map) = value.as_object_mut()
        && let Some(secrets) = map.remove("secrets")
        && let Some(secrets) = secrets.as_object()
    {
        let fields: serde_json::Map<String, serde_json::Value> = secrets
            .iter()
            .map(|(field, v)| {
                let mask = v.get("mask").cloned().unwrap_or(serde_json::Value::Null);
                (field.clone(), mask)
            })
            .collect();
        map.insert("fields".into(), serde_json::Value::Object(fields));
    }
    value
}

/// One audit entry, as the audit read model and `tributary audit` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: Uuid,
    pub org_id: Option<Uuid>,
    pub action: String,
    pub actor: Option<String>,
    pub credential_id: Option<Uuid>,
    pub at: chrono::DateTime<Utc>,
    pub detail: serde_json::Value,
}

/// The audit entry of an event, if it is one the audit keeps (credential and key
/// events). The same function serves the read model and the replay of the log.
pub fn audit_entry(env: &Envelope) -> Option<AuditRecord> {
    let keep =
        env.ty.starts_with("tributary.credential.") || env.ty.starts_with("tributary.vault.");
    if !keep {
        return None;
    }
    let id = env.id.parse::<Uuid>().ok()?;
    let detail = audit_detail(&env.data);
    let actor = detail
        .get("actor")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let credential_id = detail
        .get("credential_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok());
    let at = detail
        .get("at")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<chrono::DateTime<Utc>>().ok())
        .or(env.time)
        .unwrap_or_else(Utc::now);
    Some(AuditRecord {
        id,
        org_id: env.org_id.map(|o| o.0),
        // `credential.created`, `vault.shredded`, …
        action: super::security::short(&env.ty),
        actor,
        credential_id,
        at,
        detail,
    })
}

pub(super) async fn apply_audit(
    tx: &Transaction<'_>,
    table: &str,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let mut applied = 0;
    for (_, env) in batch {
        let Some(e) = audit_entry(env) else {
            continue;
        };
        tx.execute(
            &format!(
                "INSERT INTO {table} (id, org_id, action, actor, credential_id, at, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"
            ),
            &[
                &e.id,
                &e.org_id,
                &e.action,
                &e.actor,
                &e.credential_id,
                &e.at,
                &e.detail,
            ],
        )
        .await
        .map_err(pg("writing an audit event"))?;
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_detail_keeps_field_names_and_masks_but_no_ciphertext() {
        let data = serde_json::json!({
            "credential_id": Uuid::nil(), "secrets": { "token": { "sealed": "tv1.1.abc", "mask": "••••wxyz" } },
        });
        let detail = audit_detail(&serde_json::to_vec(&data).unwrap());
        assert_eq!(detail["fields"]["token"], "••••wxyz");
        assert!(!detail.to_string().contains("tv1.1.abc"));
    }

    #[test]
    fn key_versions_come_from_the_sealed_value() {
        assert_eq!(key_version("tv1.7.abc"), 7);
        assert_eq!(key_version("garbage"), 0);
    }
}
