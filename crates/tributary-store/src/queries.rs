//! Reads the API serves, over the views of the active projection versions.

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct OrgRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl From<Row> for OrgRow {
    fn from(r: Row) -> Self {
        Self {
            id: r.get("id"),
            slug: r.get("slug"),
            name: r.get("name"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
            deleted_at: r.get("deleted_at"),
            version: r.get("version"),
        }
    }
}

/// An org, including a deleted one (callers decide what a tombstone means).
pub async fn org(client: &impl GenericClient, id: Uuid) -> Result<Option<OrgRow>> {
    let row = client
        .query_opt(
            "SELECT id, slug, name, created_at, updated_at, deleted_at, version FROM orgs WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(pg("reading an org"))?;
    Ok(row.map(OrgRow::from))
}

/// Orgs by id, deleted ones included (for requests waiting on several at once).
pub async fn orgs_by_id(client: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<OrgRow>> {
    let rows = client
        .query(
            "SELECT id, slug, name, created_at, updated_at, deleted_at, version FROM orgs WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg("reading orgs"))?;
    Ok(rows.into_iter().map(OrgRow::from).collect())
}

/// Live orgs among `ids`, in creation order, after the keyset cursor `(created_at, id)`.
pub async fn orgs(
    client: &impl GenericClient,
    ids: &[Uuid],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<OrgRow>> {
    let (time, id) = after.unzip();
    let rows = client
        .query(
            "SELECT id, slug, name, created_at, updated_at, deleted_at, version FROM orgs
             WHERE deleted_at IS NULL AND id = ANY($1)
               AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
             ORDER BY created_at, id LIMIT $4",
            &[&ids, &time, &id, &limit],
        )
        .await
        .map_err(pg("listing orgs"))?;
    Ok(rows.into_iter().map(OrgRow::from).collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandRow {
    pub id: Uuid,
    pub command_type: String,
    pub aggregate: Option<String>,
    pub aggregate_id: Option<String>,
    pub org_id: Option<Uuid>,
    pub status: String,
    pub code: Option<String>,
    pub reason: Option<String>,
    pub aggregate_version: Option<i64>,
    pub events: Option<i32>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

const COMMAND_COLUMNS: &str =
    "id, command_type, aggregate, aggregate_id, org_id, status, code, reason,
     aggregate_version, events, submitted_at, completed_at";

impl From<Row> for CommandRow {
    fn from(r: Row) -> Self {
        Self {
            id: r.get("id"),
            command_type: r.get("command_type"),
            aggregate: r.get("aggregate"),
            aggregate_id: r.get("aggregate_id"),
            org_id: r.get("org_id"),
            status: r.get("status"),
            code: r.get("code"),
            reason: r.get("reason"),
            aggregate_version: r.get("aggregate_version"),
            events: r.get("events"),
            submitted_at: r.get("submitted_at"),
            completed_at: r.get("completed_at"),
        }
    }
}

pub async fn command(client: &impl GenericClient, id: Uuid) -> Result<Option<CommandRow>> {
    let row = client
        .query_opt(
            &format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(pg("reading a command"))?;
    Ok(row.map(CommandRow::from))
}

/// Commands by id (for requests waiting on several at once).
pub async fn commands(client: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<CommandRow>> {
    let rows = client
        .query(
            &format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE id = ANY($1)"),
            &[&ids],
        )
        .await
        .map_err(pg("reading commands"))?;
    Ok(rows.into_iter().map(CommandRow::from).collect())
}
