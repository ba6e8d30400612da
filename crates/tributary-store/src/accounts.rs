//! System lookups for authentication: they run before the caller's org is known (by
//! email, key prefix, token hash), as the owning role, and return only what the API
//! needs to decide. Tenant reads go through [`crate::tenant`].

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use tributary_domain::Role;
use uuid::Uuid;

fn role(s: &str) -> Role {
    // The projection only ever stores roles the domain produced.
    s.parse().unwrap_or(Role::Member)
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub secret_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn api_key_by_prefix(
    client: &impl GenericClient,
    prefix: &str,
) -> Result<Option<ApiKeyRow>> {
    let row = client
        .query_opt(
            "SELECT id, org_id, role, secret_hash, expires_at, revoked_at FROM api_keys WHERE prefix = $1",
            &[&prefix],
        )
        .await
        .map_err(pg("looking up an API key"))?;
    Ok(row.map(|r| ApiKeyRow {
        id: r.get(0),
        org_id: r.get(1),
        role: role(r.get(2)),
        secret_hash: r.get(3),
        expires_at: r.get(4),
        revoked_at: r.get(5),
    }))
}

/// Records that a key was used, at most once a minute per key.
pub async fn touch_api_key(client: &impl GenericClient, key: Uuid, org: Uuid) -> Result<()> {
    client
        .execute(
            "INSERT INTO api_key_usage (key_id, org_id, last_used_at) VALUES ($1, $2, now())
             ON CONFLICT (key_id) DO UPDATE SET last_used_at = excluded.last_used_at
             WHERE api_key_usage.last_used_at < now() - interval '1 minute'",
            &[&key, &org],
        )
        .await
        .map_err(pg("recording API key use"))?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub role: Role,
    pub active: bool,
}

pub async fn membership(
    client: &impl GenericClient,
    org: Uuid,
    user: Uuid,
) -> Result<Option<Membership>> {
    let row = client
        .query_opt(
            "SELECT role, active FROM members WHERE org_id = $1 AND user_id = $2",
            &[&org, &user],
        )
        .await
        .map_err(pg("reading a membership"))?;
    Ok(row.map(|r| Membership {
        role: role(r.get(0)),
        active: r.get(1),
    }))
}

#[derive(Debug, Clone, PartialEq)]
pub struct MembershipRow {
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub slug: Option<String>,
    pub org_name: Option<String>,
    pub role: Role,
    pub active: bool,
    pub joined_at: DateTime<Utc>,
}

/// A user's memberships, oldest first, with the org's slug and name.
pub async fn memberships_of(
    client: &impl GenericClient,
    users: &[Uuid],
) -> Result<Vec<MembershipRow>> {
    let rows = client
        .query(
            "SELECT m.org_id, m.user_id, o.slug, o.name, m.role, m.active, m.joined_at
             FROM members m LEFT JOIN orgs o ON o.id = m.org_id
             WHERE m.user_id = ANY($1) ORDER BY m.joined_at, m.org_id",
            &[&users],
        )
        .await
        .map_err(pg("reading memberships"))?;
    Ok(rows
        .iter()
        .map(|r| MembershipRow {
            org_id: r.get(0),
            user_id: r.get(1),
            slug: r.get(2),
            org_name: r.get(3),
            role: role(r.get(4)),
            active: r.get(5),
            joined_at: r.get(6),
        })
        .collect())
}

/// The orgs (slug, or id when the slug is unknown) where this user is the only active
/// admin: they cannot leave, or be forgotten, until someone else is admin.
pub async fn orgs_where_last_admin(client: &impl GenericClient, user: Uuid) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT coalesce(o.slug, m.org_id::text) FROM members m
             LEFT JOIN orgs o ON o.id = m.org_id
             WHERE m.user_id = $1 AND m.active AND m.role = 'admin'
               AND (SELECT count(*) FROM members x
                    WHERE x.org_id = m.org_id AND x.active AND x.role = 'admin') = 1
             ORDER BY 1",
            &[&user],
        )
        .await
        .map_err(pg("looking for orgs a user is the last admin of"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[derive(Debug, Clone)]
pub struct Login {
    pub user_id: Uuid,
    /// Sealed under the user's key: open it with the vault to check a password.
    pub password_hash: String,
}

/// The login of the address whose blind index is `email_index`.
pub async fn login(client: &impl GenericClient, email_index: &str) -> Result<Option<Login>> {
    let row = client
        .query_opt(
            "SELECT user_id, password_hash FROM logins WHERE email_index = $1",
            &[&email_index],
        )
        .await
        .map_err(pg("looking up a login"))?;
    Ok(row.map(|r| Login {
        user_id: r.get(0),
        password_hash: r.get(1),
    }))
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub token_hash: String,
    pub status: String,
    pub expires_at: DateTime<Utc>,
}

const SESSION_COLUMNS: &str =
    "s.id, s.user_id, s.org_id, s.role, s.token_hash, s.status, s.expires_at";

fn session_row(r: &tokio_postgres::Row) -> SessionRow {
    SessionRow {
        id: r.get(0),
        user_id: r.get(1),
        org_id: r.get(2),
        role: role(r.get(3)),
        token_hash: r.get(4),
        status: r.get(5),
        expires_at: r.get(6),
    }
}

/// The session a refresh token belongs to, whether the token is current or used.
pub async fn session_by_token(
    client: &impl GenericClient,
    token_hash: &str,
) -> Result<Option<SessionRow>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM session_tokens t JOIN sessions s ON s.id = t.session_id
                 WHERE t.token_hash = $1"
            ),
            &[&token_hash],
        )
        .await
        .map_err(pg("looking up a refresh token"))?;
    Ok(row.as_ref().map(session_row))
}

pub async fn sessions(client: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<SessionRow>> {
    let rows = client
        .query(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ANY($1)"),
            &[&ids],
        )
        .await
        .map_err(pg("reading sessions"))?;
    Ok(rows.iter().map(session_row).collect())
}

/// The one org that lets people with this email domain join, if exactly one does.
pub async fn org_for_domain(client: &impl GenericClient, domain: &str) -> Result<Option<Uuid>> {
    let rows = client
        .query(
            "SELECT org_id FROM org_domains WHERE domain = $1 LIMIT 2",
            &[&domain],
        )
        .await
        .map_err(pg("looking up an email domain"))?;
    Ok(match rows.as_slice() {
        [one] => Some(one.get(0)),
        _ => None,
    })
}

/// The org of an invitation (the token itself is checked by the org aggregate).
pub async fn invitation_org(client: &impl GenericClient, invitation: Uuid) -> Result<Option<Uuid>> {
    let row = client
        .query_opt(
            "SELECT org_id FROM invitations WHERE id = $1",
            &[&invitation],
        )
        .await
        .map_err(pg("looking up an invitation"))?;
    Ok(row.map(|r| r.get(0)))
}

/// The blind index of a live (not forgotten) user's address.
pub async fn user_email_index(client: &impl GenericClient, user: Uuid) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT email_index FROM users WHERE id = $1 AND forgotten_at IS NULL",
            &[&user],
        )
        .await
        .map_err(pg("reading a user"))?;
    Ok(row.map(|r| r.get(0)))
}

/// How far the identity read model has applied each of these orgs' events.
pub async fn org_versions(client: &impl GenericClient, orgs: &[Uuid]) -> Result<Vec<(Uuid, i64)>> {
    let rows = client
        .query(
            "SELECT org_id, version FROM org_versions WHERE org_id = ANY($1)",
            &[&orgs],
        )
        .await
        .map_err(pg("reading identity versions"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Tenant reads for the org administration pages. Run them inside
/// [`crate::tenant::begin`]: row-level security limits them to the caller's org.
pub mod tenant_reads {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    pub struct MemberView {
        pub user_id: Uuid,
        pub email_index: String,
        /// Sealed under the user's key; `None` before the user is registered in the read
        /// model, or once the user was forgotten.
        pub email: Option<String>,
        /// Sealed under the user's key, like `email`.
        pub name: Option<String>,
        pub role: Role,
        pub active: bool,
        pub via: String,
        pub joined_at: DateTime<Utc>,
    }

    pub async fn members(client: &impl GenericClient, org: Uuid) -> Result<Vec<MemberView>> {
        let rows = client
            .query(
                "SELECT m.user_id, m.email_index, u.email, u.name, m.role, m.active, m.via, m.joined_at
                 FROM members m LEFT JOIN users u ON u.id = m.user_id
                 WHERE m.org_id = $1 ORDER BY m.joined_at, m.user_id",
                &[&org],
            )
            .await
            .map_err(pg("listing members"))?;
        Ok(rows
            .iter()
            .map(|r| MemberView {
                user_id: r.get(0),
                email_index: r.get(1),
                email: r.get(2),
                name: r.get(3),
                role: role(r.get(4)),
                active: r.get(5),
                via: r.get(6),
                joined_at: r.get(7),
            })
            .collect())
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct InvitationView {
        pub id: Uuid,
        /// Sealed under the org's key.
        pub email: String,
        pub role: Role,
        pub status: String,
        pub expires_at: DateTime<Utc>,
        pub created_at: DateTime<Utc>,
    }

    pub async fn invitations(
        client: &impl GenericClient,
        org: Uuid,
    ) -> Result<Vec<InvitationView>> {
        let rows = client
            .query(
                "SELECT id, email, role, status, expires_at, created_at FROM invitations
                 WHERE org_id = $1 ORDER BY created_at, id",
                &[&org],
            )
            .await
            .map_err(pg("listing invitations"))?;
        Ok(rows
            .iter()
            .map(|r| InvitationView {
                id: r.get(0),
                email: r.get(1),
                role: role(r.get(2)),
                status: r.get(3),
                expires_at: r.get(4),
                created_at: r.get(5),
            })
            .collect())
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct ApiKeyView {
        pub id: Uuid,
        pub name: String,
        pub role: Role,
        pub prefix: String,
        pub expires_at: Option<DateTime<Utc>>,
        pub revoked_at: Option<DateTime<Utc>>,
        pub created_at: DateTime<Utc>,
        pub last_used_at: Option<DateTime<Utc>>,
    }

    pub async fn api_keys(client: &impl GenericClient, org: Uuid) -> Result<Vec<ApiKeyView>> {
        let rows = client
            .query(
                "SELECT k.id, k.name, k.role, k.prefix, k.expires_at, k.revoked_at, k.created_at, u.last_used_at
                 FROM api_keys k LEFT JOIN api_key_usage u ON u.key_id = k.id
                 WHERE k.org_id = $1 ORDER BY k.created_at, k.id",
                &[&org],
            )
            .await
            .map_err(pg("listing API keys"))?;
        Ok(rows
            .iter()
            .map(|r| ApiKeyView {
                id: r.get(0),
                name: r.get(1),
                role: role(r.get(2)),
                prefix: r.get(3),
                expires_at: r.get(4),
                revoked_at: r.get(5),
                created_at: r.get(6),
                last_used_at: r.get(7),
            })
            .collect())
    }
}
