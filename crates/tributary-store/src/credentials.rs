//! Reads of the credentials and audit read models. Tenant reads run inside
//! [`crate::tenant::begin`], so row-level security limits them to the caller's org.

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub kind: String,
    pub name: String,
    pub config: serde_json::Value,
    pub version: i32,
    pub pending_version: Option<i32>,
    pub status: String,
    pub last_test: Option<serde_json::Value>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub aggregate_version: i64,
}

const COLUMNS: &str = "id, org_id, kind, name, config, version, pending_version, status, \
                       last_test, created_by, created_at, updated_at, aggregate_version";

fn credential(r: &tokio_postgres::Row) -> CredentialRow {
    CredentialRow {
        id: r.get(0),
        org_id: r.get(1),
        kind: r.get(2),
        name: r.get(3),
        config: r.get(4),
        version: r.get(5),
        pending_version: r.get(6),
        status: r.get(7),
        last_test: r.get(8),
        created_by: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
        aggregate_version: r.get(12),
    }
}

#[derive(Debug, Clone)]
pub struct SecretRow {
    pub credential_id: Uuid,
    pub secret_version: i32,
    pub field: String,
    pub sealed: String,
    pub mask: String,
    pub key_version: i32,
    pub shredded: bool,
}

/// The aggregate versions the credentials read model shows (system read, for waiters).
pub async fn versions(client: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<(Uuid, i64)>> {
    let rows = client
        .query(
            "SELECT id, aggregate_version FROM credentials WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg("reading credential versions"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Secrets sealed under data-key versions older than `current`, for re-encryption
/// (system read, for the keeper).
pub async fn stale_secrets(
    client: &impl GenericClient,
    org: Uuid,
    current: i32,
    limit: i64,
) -> Result<Vec<SecretRow>> {
    let rows = client
        .query(
            "SELECT s.credential_id, s.secret_version, s.field, s.sealed, s.mask, s.key_version, \
                    s.shredded \
             FROM credential_secrets s JOIN credentials c ON c.id = s.credential_id \
             WHERE s.org_id = $1 AND s.key_version < $2 AND NOT s.shredded \
               AND c.status <> 'deleted' \
             ORDER BY s.credential_id, s.secret_version LIMIT $3",
            &[&org, &current, &limit],
        )
        .await
        .map_err(pg("finding secrets to re-encrypt"))?;
    Ok(rows.iter().map(secret).collect())
}

/// Orgs with secrets under a data-key version older than their newest (system read).
pub async fn orgs_with_stale_secrets(client: &impl GenericClient) -> Result<Vec<(Uuid, i32)>> {
    let rows = client
        .query(
            "SELECT s.org_id, k.current FROM credential_secrets s \
             JOIN (SELECT scope_id, max(version) AS current FROM vault_data_keys \
                   WHERE scope = 'org' GROUP BY scope_id) k ON k.scope_id = s.org_id \
             WHERE s.key_version < k.current AND NOT s.shredded \
             GROUP BY s.org_id, k.current",
            &[],
        )
        .await
        .map_err(pg("finding orgs to re-encrypt"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn secret(r: &tokio_postgres::Row) -> SecretRow {
    SecretRow {
        credential_id: r.get(0),
        secret_version: r.get(1),
        field: r.get(2),
        sealed: r.get(3),
        mask: r.get(4),
        key_version: r.get(5),
        shredded: r.get(6),
    }
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: Uuid,
    pub action: String,
    pub actor: Option<String>,
    pub credential_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub detail: serde_json::Value,
}

/// Filters of the audit log; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub credential: Option<Uuid>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

pub mod tenant_reads {
    use super::*;

    /// The org's live credentials, oldest first, after `after`.
    pub async fn list(
        client: &impl GenericClient,
        org: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<CredentialRow>> {
        let (time, id) = after.unzip();
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM credentials WHERE org_id = $1 AND status <> 'deleted' \
                     AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) \
                     ORDER BY created_at, id LIMIT $4"
                ),
                &[&org, &time, &id, &limit],
            )
            .await
            .map_err(pg("listing credentials"))?;
        Ok(rows.iter().map(credential).collect())
    }

    /// One live credential of the org.
    pub async fn get(
        client: &impl GenericClient,
        org: Uuid,
        id: Uuid,
    ) -> Result<Option<CredentialRow>> {
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM credentials WHERE org_id = $1 AND id = $2 \
                     AND status <> 'deleted'"
                ),
                &[&org, &id],
            )
            .await
            .map_err(pg("reading a credential"))?;
        Ok(row.as_ref().map(credential))
    }

    /// The secret fields (ciphertext and masks) of the given credentials.
    pub async fn secrets(
        client: &impl GenericClient,
        org: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<SecretRow>> {
        let rows = client
            .query(
                "SELECT credential_id, secret_version, field, sealed, mask, key_version, shredded \
                 FROM credential_secrets WHERE org_id = $1 AND credential_id = ANY($2) \
                 ORDER BY credential_id, secret_version, field",
                &[&org, &ids],
            )
            .await
            .map_err(pg("reading credential secrets"))?;
        Ok(rows.iter().map(secret).collect())
    }

    /// How many secret fields each data-key version of the org protects.
    pub async fn secrets_per_key(
        client: &impl GenericClient,
        org: Uuid,
    ) -> Result<Vec<(i32, i64)>> {
        let rows = client
            .query(
                "SELECT key_version, count(*) FROM credential_secrets \
                 WHERE org_id = $1 AND NOT shredded GROUP BY key_version ORDER BY key_version",
                &[&org],
            )
            .await
            .map_err(pg("counting secrets per key"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The org's audit log (and installation-wide key events), oldest first.
    pub async fn audit(
        client: &impl GenericClient,
        org: Uuid,
        filter: &AuditFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let (time, id) = after.unzip();
        let rows = client
            .query(
                "SELECT id, action, actor, credential_id, at, detail FROM audit_events \
                 WHERE (org_id = $1 OR org_id IS NULL) \
                   AND ($2::text IS NULL OR actor = $2) \
                   AND ($3::uuid IS NULL OR credential_id = $3) \
                   AND ($4::text IS NULL OR action = $4) \
                   AND ($5::timestamptz IS NULL OR at >= $5) \
                   AND ($6::timestamptz IS NULL OR at < $6) \
                   AND ($7::timestamptz IS NULL OR (at, id) > ($7, $8)) \
                 ORDER BY at, id LIMIT $9",
                &[
                    &org,
                    &filter.actor,
                    &filter.credential,
                    &filter.action,
                    &filter.since,
                    &filter.until,
                    &time,
                    &id,
                    &limit,
                ],
            )
            .await
            .map_err(pg("reading the audit log"))?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                action: r.get(1),
                actor: r.get(2),
                credential_id: r.get(3),
                at: r.get(4),
                detail: r.get(5),
            })
            .collect())
    }
}

/// The password hash of a user (system read, for re-confirming a password).
pub async fn password_hash(client: &impl GenericClient, user: Uuid) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT password_hash FROM logins WHERE user_id = $1",
            &[&user],
        )
        .await
        .map_err(pg("looking up a password"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Live OAuth credentials (system read, for the refresher).
pub async fn oauth_credentials(client: &impl GenericClient) -> Result<Vec<CredentialRow>> {
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM credentials WHERE kind = 'oauth2' AND status = 'active' \
                 ORDER BY id"
            ),
            &[],
        )
        .await
        .map_err(pg("listing OAuth credentials"))?;
    Ok(rows.iter().map(credential).collect())
}

/// The secret fields of one version of a credential (system read).
pub async fn secrets_of(
    client: &impl GenericClient,
    credential: Uuid,
    version: i32,
) -> Result<Vec<SecretRow>> {
    let rows = client
        .query(
            "SELECT credential_id, secret_version, field, sealed, mask, key_version, shredded \
             FROM credential_secrets WHERE credential_id = $1 AND secret_version = $2",
            &[&credential, &version],
        )
        .await
        .map_err(pg("reading credential secrets"))?;
    Ok(rows.iter().map(secret).collect())
}

/// A credential with the secrets of its version in use opened, ready to build a source
/// or a sink with. `Debug` never shows the value.
pub struct OpenCredential {
    pub id: Uuid,
    pub org_id: Uuid,
    pub kind: String,
    /// `active` or `needs_reauthorization`.
    pub status: String,
    /// The secret version that was opened.
    pub version: i32,
    /// The non-secret fields and the opened secret fields, in one object: the shape a
    /// connector's or destination's `BuildContext::credential` takes. Plaintext.
    pub value: serde_json::Value,
}

impl std::fmt::Debug for OpenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCredential")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("version", &self.version)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// Opens credential `id` of `org`: its config with the secret fields of the version in
/// use (system read plus the vault; for the API's checks, the worker and the
/// deliverer). `Ok(None)` when the org has no live credential of that id. The value
/// holds plaintext: keep it out of logs, errors and events, and drop it once the
/// component is built. A shredded org's credential fails with a "shredded" error.
pub async fn open_value(
    client: &impl GenericClient,
    vault: &crate::vault::Vault,
    org: Uuid,
    id: Uuid,
) -> std::result::Result<Option<OpenCredential>, crate::vault::VaultFailure> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM credentials WHERE id = $1 AND org_id = $2 \
                 AND status <> 'deleted'"
            ),
            &[&id, &org],
        )
        .await
        .map_err(pg("reading a credential"))?;
    let Some(row) = row.as_ref().map(credential) else {
        return Ok(None);
    };
    let mut value = row.config.as_object().cloned().unwrap_or_default();
    let record = id.to_string();
    for secret in secrets_of(client, id, row.version).await? {
        let plain = vault
            .open(
                tributary_vault::KeyScope::Org(org),
                &record,
                &secret.field,
                &secret.sealed,
            )
            .await?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| {
            tributary_vault::VaultError::Malformed(format!(
                "secret field {} of credential {id} is not text; enter it again",
                secret.field
            ))
        })?;
        value.insert(secret.field, serde_json::Value::String(text));
    }
    Ok(Some(OpenCredential {
        id,
        org_id: org,
        kind: row.kind,
        status: row.status,
        version: row.version,
        value: serde_json::Value::Object(value),
    }))
}
