//! The `security_events` read model: who did what to accounts, memberships, keys and
//! sessions, per org, from the events that record it — plus failed logins, which the
//! API writes to the security topic. Hashes never reach it.

use crate::error::{Result, pg};
use chrono::Utc;
use tokio_postgres::Transaction;
use tributary_domain::security::LOGIN_FAILED;
use tributary_log::Envelope;
use uuid::Uuid;

/// Event types that belong in the security log.
const KEPT: &[&str] = &[
    "tributary.org.created.v1",
    "tributary.org.deleted.v1",
    "tributary.org.member_added.v1",
    "tributary.org.member_role_changed.v1",
    "tributary.org.member_deactivated.v1",
    "tributary.org.member_reactivated.v1",
    "tributary.org.member_removed.v1",
    "tributary.org.invitation_created.v1",
    "tributary.org.invitation_accepted.v1",
    "tributary.org.invitation_revoked.v1",
    "tributary.org.allowed_domains_set.v1",
    "tributary.org.api_key_created.v1",
    "tributary.org.api_key_revoked.v1",
    "tributary.user.registered.v1",
    "tributary.session.started.v1",
    "tributary.session.revoked.v1",
    "tributary.session.ended.v1",
    LOGIN_FAILED,
    tributary_domain::security::OAUTH_FAILED,
];

/// The short name shown in the log: `member_role_changed` for
/// `tributary.org.member_role_changed.v1`, prefixed by the aggregate.
pub(super) fn short(ty: &str) -> String {
    ty.trim_start_matches("tributary.")
        .trim_end_matches(".v1")
        .to_owned()
}

/// The event's data without anything hashed (password, token, key secrets).
fn redacted(data: &[u8]) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.retain(|k, _| !k.ends_with("_hash"));
    }
    value
}

fn subject_of(detail: &serde_json::Value) -> Option<String> {
    ["user_id", "key_id", "invitation_id", "session_id", "org_id"]
        .iter()
        .find_map(|k| detail.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
}

pub(super) async fn apply(
    tx: &Transaction<'_>,
    table: &str,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let mut applied = 0;
    for (_, env) in batch {
        if !KEPT.contains(&env.ty.as_str()) {
            continue;
        }
        let Ok(id) = env.id.parse::<Uuid>() else {
            continue;
        };
        let detail = redacted(&env.data);
        let actor = detail
            .get("actor")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let subject = subject_of(&detail);
        let at = env.time.unwrap_or_else(Utc::now);
        let ty = short(&env.ty);
        match env.org_id {
            Some(org) => {
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (id, org_id, type, actor, subject, at, detail)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"
                    ),
                    &[&id, &org.0, &ty, &actor, &subject, &at, &detail],
                )
                .await
                .map_err(pg("writing a security event"))?;
            }
            // A failed login names an account, not an org: it goes to every org the
            // account is a member of (none, for an unknown email).
            None => {
                let Some(user) = detail
                    .get("user_id")
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<Uuid>().ok())
                else {
                    continue;
                };
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (id, org_id, type, actor, subject, at, detail)
                         SELECT md5($1 || m.org_id::text)::uuid, m.org_id, $2, NULL, $3, $4, $5
                         FROM members m WHERE m.user_id = $6
                         ON CONFLICT (id) DO NOTHING"
                    ),
                    &[&id.to_string(), &ty, &subject, &at, &detail, &user],
                )
                .await
                .map_err(pg("writing a security event"))?;
            }
        }
        applied += 1;
    }
    Ok(applied)
}
