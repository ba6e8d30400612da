//! The `identity` read models: users (and, apart, their password hashes), memberships,
//! invitations, API keys, refresh-token sessions and allowed email domains.
//!
//! These events are few (people, not documents), so each is applied with its own
//! statement, in order, inside the batch's transaction.

use super::{Table, decode_error};
use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;
use tributary_domain::org::OrgEvent;
use tributary_domain::session::SessionEvent;
use tributary_domain::user::UserEvent;
use tributary_log::Envelope;
use uuid::Uuid;

/// Members first: the users policy reads it, and tables drop in reverse order.
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "members",
        policy: Some("org_id = tributary_current_org() OR user_id = tributary_current_user()"),
        ddl: include_str!("../../sql/identity/members.sql"),
    },
    Table {
        name: "users",
        policy: Some(
            "id = tributary_current_user() OR id IN \
             (SELECT user_id FROM members_v{v} WHERE org_id = tributary_current_org())",
        ),
        ddl: include_str!("../../sql/identity/users.sql"),
    },
    Table {
        name: "logins",
        policy: None,
        ddl: include_str!("../../sql/identity/logins.sql"),
    },
    Table {
        name: "invitations",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/identity/invitations.sql"),
    },
    Table {
        name: "api_keys",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/identity/api_keys.sql"),
    },
    Table {
        name: "sessions",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/identity/sessions.sql"),
    },
    Table {
        name: "session_tokens",
        policy: None,
        ddl: include_str!("../../sql/identity/session_tokens.sql"),
    },
    Table {
        name: "org_versions",
        policy: None,
        ddl: include_str!("../../sql/identity/org_versions.sql"),
    },
    Table {
        name: "org_domains",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/identity/org_domains.sql"),
    },
];

pub(super) async fn apply(
    tx: &Transaction<'_>,
    version: i32,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let t = |name: &str| format!("{name}_v{version}");
    let mut applied = 0;
    for (_, env) in batch {
        let at = env.time.unwrap_or_else(Utc::now);
        let done = if env.ty.starts_with("tributary.org.") {
            if let (Some(org), Some(version)) = (
                env.subject.as_deref().and_then(|s| s.parse::<Uuid>().ok()),
                env.agg_version,
            ) {
                let sql = format!(
                    "INSERT INTO {} (org_id, version) VALUES ($1, $2)
                     ON CONFLICT (org_id) DO UPDATE SET version = greatest({0}.version, excluded.version)",
                    t("org_versions")
                );
                exec(tx, &sql, &[&org, &(version as i64)]).await?;
            }
            match OrgEvent::decode(&env.ty, &env.data) {
                Ok(event) => org_event(tx, &t, event, at).await?,
                // Org events the identity model does not keep (created, renamed, ...)
                // decode fine; an undecodable one is a bug worth stopping for.
                Err(e) => return Err(decode_error(env, e)),
            }
        } else if env.ty.starts_with("tributary.user.") {
            let event = UserEvent::decode(&env.ty, &env.data).map_err(|e| decode_error(env, e))?;
            user_event(tx, &t, event, at).await?
        } else if env.ty.starts_with("tributary.session.") {
            let event =
                SessionEvent::decode(&env.ty, &env.data).map_err(|e| decode_error(env, e))?;
            session_event(tx, &t, event, at).await?
        } else {
            false
        };
        applied += u64::from(done);
    }
    Ok(applied)
}

async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<()> {
    tx.execute(sql, params)
        .await
        .map_err(pg("writing the identity read model"))?;
    Ok(())
}

async fn org_event(
    tx: &Transaction<'_>,
    t: &impl Fn(&str) -> String,
    event: OrgEvent,
    at: DateTime<Utc>,
) -> Result<bool> {
    match event {
        OrgEvent::MemberAdded(e) => {
            let sql = format!(
                "INSERT INTO {} (org_id, user_id, email_index, role, active, via, joined_at, updated_at)
                 VALUES ($1, $2, $3, $4, true, $5, $6, $6)
                 ON CONFLICT (org_id, user_id) DO UPDATE
                 SET email_index = excluded.email_index, role = excluded.role, active = true,
                     via = excluded.via, updated_at = excluded.updated_at",
                t("members")
            );
            let via = serde_json::to_value(e.via)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let params: [&(dyn ToSql + Sync); 6] = [
                &e.org_id.0,
                &e.user_id.0,
                &e.email_index,
                &e.role.as_str(),
                &via,
                &at,
            ];
            exec(tx, &sql, &params).await?;
        }
        OrgEvent::MemberRoleChanged(e) => {
            let sql = format!(
                "UPDATE {} SET role = $3, updated_at = $4 WHERE org_id = $1 AND user_id = $2",
                t("members")
            );
            exec(tx, &sql, &[&e.org_id.0, &e.user_id.0, &e.to.as_str(), &at]).await?;
        }
        OrgEvent::MemberDeactivated(e) => {
            set_active(tx, t, e.org_id.0, e.user_id.0, false, at).await?
        }
        OrgEvent::MemberReactivated(e) => {
            set_active(tx, t, e.org_id.0, e.user_id.0, true, at).await?
        }
        OrgEvent::MemberRemoved(e) => {
            let sql = format!(
                "DELETE FROM {} WHERE org_id = $1 AND user_id = $2",
                t("members")
            );
            exec(tx, &sql, &[&e.org_id.0, &e.user_id.0]).await?;
        }
        OrgEvent::InvitationCreated(e) => {
            let sql = format!(
                "INSERT INTO {} (id, org_id, email_index, email, role, status, expires_at, created_at, created_by, updated_at)
                 VALUES ($1, $2, $3, $8, $4, 'pending', $5, $6, $7, $6)
                 ON CONFLICT (id) DO NOTHING",
                t("invitations")
            );
            let params: [&(dyn ToSql + Sync); 8] = [
                &e.invitation_id.0,
                &e.org_id.0,
                &e.email_index,
                &e.role.as_str(),
                &e.expires_at,
                &at,
                &e.actor,
                &e.email,
            ];
            exec(tx, &sql, &params).await?;
        }
        OrgEvent::InvitationAccepted(e) => {
            let sql = format!(
                "UPDATE {} SET status = 'accepted', accepted_by = $2, updated_at = $3 WHERE id = $1",
                t("invitations")
            );
            exec(tx, &sql, &[&e.invitation_id.0, &e.user_id.0, &at]).await?;
        }
        OrgEvent::InvitationRevoked(e) => {
            let sql = format!(
                "UPDATE {} SET status = 'revoked', updated_at = $2 WHERE id = $1",
                t("invitations")
            );
            exec(tx, &sql, &[&e.invitation_id.0, &at]).await?;
        }
        OrgEvent::AllowedDomainsSet(e) => {
            let table = t("org_domains");
            exec(
                tx,
                &format!("DELETE FROM {table} WHERE org_id = $1"),
                &[&e.org_id.0],
            )
            .await?;
            let sql = format!(
                "INSERT INTO {table} (org_id, domain) SELECT $1, d FROM unnest($2::text[]) AS d"
            );
            exec(tx, &sql, &[&e.org_id.0, &e.domains]).await?;
        }
        OrgEvent::ApiKeyCreated(e) => {
            let sql = format!(
                "INSERT INTO {} (id, org_id, name, role, prefix, secret_hash, expires_at, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO NOTHING",
                t("api_keys")
            );
            let params: [&(dyn ToSql + Sync); 9] = [
                &e.key_id.0,
                &e.org_id.0,
                &e.name,
                &e.role.as_str(),
                &e.prefix,
                &e.secret_hash,
                &e.expires_at,
                &at,
                &e.actor,
            ];
            exec(tx, &sql, &params).await?;
        }
        OrgEvent::ApiKeyRevoked(e) => {
            let sql = format!(
                "UPDATE {} SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
                t("api_keys")
            );
            exec(tx, &sql, &[&e.key_id.0, &at]).await?;
        }
        OrgEvent::Deleted(e) => {
            // A deleted org's people lose access; its keys and sessions stop working.
            for (table, column) in [
                ("members", "org_id"),
                ("invitations", "org_id"),
                ("api_keys", "org_id"),
                ("org_domains", "org_id"),
            ] {
                let sql = format!("DELETE FROM {} WHERE {column} = $1", t(table));
                exec(tx, &sql, &[&e.org_id.0]).await?;
            }
            let sql = format!(
                "UPDATE {} SET status = 'ended', updated_at = $2 WHERE org_id = $1",
                t("sessions")
            );
            exec(tx, &sql, &[&e.org_id.0, &at]).await?;
        }
        OrgEvent::Created(_) | OrgEvent::Renamed(_) => return Ok(false),
    }
    Ok(true)
}

async fn set_active(
    tx: &Transaction<'_>,
    t: &impl Fn(&str) -> String,
    org: Uuid,
    user: Uuid,
    active: bool,
    at: DateTime<Utc>,
) -> Result<()> {
    let sql = format!(
        "UPDATE {} SET active = $3, updated_at = $4 WHERE org_id = $1 AND user_id = $2",
        t("members")
    );
    exec(tx, &sql, &[&org, &user, &active, &at]).await
}

async fn user_event(
    tx: &Transaction<'_>,
    t: &impl Fn(&str) -> String,
    event: UserEvent,
    at: DateTime<Utc>,
) -> Result<bool> {
    match event {
        UserEvent::Registered(e) => {
            let sql = format!(
                "INSERT INTO {} (id, email_index, email, name, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (id) DO NOTHING",
                t("users")
            );
            let params: [&(dyn ToSql + Sync); 5] =
                [&e.user_id.0, &e.email_index, &e.email, &e.name, &at];
            exec(tx, &sql, &params).await?;
            let sql = format!(
                "INSERT INTO {} (email_index, user_id, password_hash) VALUES ($1, $2, $3)
                 ON CONFLICT (email_index) DO UPDATE SET user_id = excluded.user_id, password_hash = excluded.password_hash",
                t("logins")
            );
            exec(tx, &sql, &[&e.email_index, &e.user_id.0, &e.password_hash]).await?;
        }
        UserEvent::Forgotten(e) => {
            // The sealed values go too: the key that opens them is being shredded, and a
            // read model should not keep what the log can no longer give.
            let sql = format!(
                "UPDATE {} SET email = NULL, name = NULL, forgotten_at = $2, updated_at = $2
                 WHERE id = $1",
                t("users")
            );
            exec(tx, &sql, &[&e.user_id.0, &at]).await?;
            let sql = format!(
                "DELETE FROM {} WHERE email_index = $1 AND user_id = $2",
                t("logins")
            );
            exec(tx, &sql, &[&e.email_index, &e.user_id.0]).await?;
            let sql = format!(
                "UPDATE {} SET status = 'ended', updated_at = $2 WHERE user_id = $1 AND status = 'active'",
                t("sessions")
            );
            exec(tx, &sql, &[&e.user_id.0, &at]).await?;
        }
        UserEvent::Renamed(e) => {
            let sql = format!(
                "UPDATE {} SET name = $2, updated_at = $3 WHERE id = $1",
                t("users")
            );
            exec(tx, &sql, &[&e.user_id.0, &e.name, &at]).await?;
        }
    }
    Ok(true)
}

async fn session_event(
    tx: &Transaction<'_>,
    t: &impl Fn(&str) -> String,
    event: SessionEvent,
    at: DateTime<Utc>,
) -> Result<bool> {
    let table = t("sessions");
    match event {
        SessionEvent::Started(e) => {
            let sql = format!(
                "INSERT INTO {table} (id, user_id, org_id, role, token_hash, status, expires_at, started_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $7)
                 ON CONFLICT (id) DO NOTHING"
            );
            let params: [&(dyn ToSql + Sync); 7] = [
                &e.session_id.0,
                &e.user_id.0,
                &e.org_id.0,
                &e.role.as_str(),
                &e.token_hash,
                &e.expires_at,
                &at,
            ];
            exec(tx, &sql, &params).await?;
            remember_token(tx, t, &e.token_hash, e.session_id.0).await?;
        }
        SessionEvent::Refreshed(e) => {
            remember_token(tx, t, &e.next_hash, e.session_id.0).await?;
            let sql = format!(
                "UPDATE {table} SET token_hash = $2, org_id = $3, role = $4, expires_at = $5, updated_at = $6
                 WHERE id = $1"
            );
            let params: [&(dyn ToSql + Sync); 6] = [
                &e.session_id.0,
                &e.next_hash,
                &e.org_id.0,
                &e.role.as_str(),
                &e.expires_at,
                &at,
            ];
            exec(tx, &sql, &params).await?;
        }
        SessionEvent::Revoked(e) => {
            let sql =
                format!("UPDATE {table} SET status = 'revoked', updated_at = $2 WHERE id = $1");
            exec(tx, &sql, &[&e.session_id.0, &at]).await?;
        }
        SessionEvent::Ended(e) => {
            let sql = format!("UPDATE {table} SET status = 'ended', updated_at = $2 WHERE id = $1");
            exec(tx, &sql, &[&e.session_id.0, &at]).await?;
        }
    }
    Ok(true)
}

async fn remember_token(
    tx: &Transaction<'_>,
    t: &impl Fn(&str) -> String,
    hash: &str,
    session: Uuid,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (token_hash, session_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        t("session_tokens")
    );
    exec(tx, &sql, &[&hash, &session]).await
}
