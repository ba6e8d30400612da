//! Reads of the catalog read model: targets (configured destinations) and profiles
//! (connections).
//!
//! Tenant reads ([`tenant_reads`]) run inside [`crate::tenant::begin`], so row-level
//! security limits them to the caller's org, and they show live rows only. System reads
//! (the functions at the top level) are for the scheduler, worker and deliverer, which
//! act for every org: they run as the owning role and never return rows to a caller
//! without an authorization check. Deleted rows stay in the tables with status
//! `deleted`; the system reads say so rather than pretending a row never existed.

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::GenericClient;
use tributary_domain::profile::Schedule;
use uuid::Uuid;

/// `status` of a live target or profile.
pub const ACTIVE: &str = "active";
/// `status` of a deleted one.
pub const DELETED: &str = "deleted";

#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// A destination kind of `tributary_destinations::Destinations`.
    pub kind: String,
    pub config: serde_json::Value,
    pub credential_id: Option<Uuid>,
    /// [`ACTIVE`] or [`DELETED`].
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    pub aggregate_version: i64,
}

impl TargetRow {
    pub fn is_live(&self) -> bool {
        self.status == ACTIVE
    }
}

const TARGET_COLUMNS: &str = "id, org_id, name, kind, config, credential_id, status, \
                              created_by, created_at, updated_by, updated_at, aggregate_version";

fn target_row(r: &tokio_postgres::Row) -> TargetRow {
    TargetRow {
        id: r.get(0),
        org_id: r.get(1),
        name: r.get(2),
        kind: r.get(3),
        config: r.get(4),
        credential_id: r.get(5),
        status: r.get(6),
        created_by: r.get(7),
        created_at: r.get(8),
        updated_by: r.get(9),
        updated_at: r.get(10),
        aggregate_version: r.get(11),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// A connector kind of `tributary_connectors::source::Connectors`.
    pub source_kind: String,
    pub source_config: serde_json::Value,
    pub credential_id: Option<Uuid>,
    /// Target ids in the order they were given.
    pub targets: Vec<Uuid>,
    /// `None`: manual-only. Due times come from [`Schedule::next_due`].
    pub schedule: Option<Schedule>,
    pub prune_interval_secs: i64,
    pub paused: bool,
    pub paused_reason: Option<String>,
    /// [`ACTIVE`] or [`DELETED`].
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    pub aggregate_version: i64,
}

impl ProfileRow {
    pub fn is_live(&self) -> bool {
        self.status == ACTIVE
    }
}

const PROFILE_COLUMNS: &str = "id, org_id, name, source_kind, source_config, credential_id, \
                               targets, schedule, prune_interval_secs, paused, paused_reason, \
                               status, created_by, created_at, updated_by, updated_at, \
                               aggregate_version";

fn profile_row(r: &tokio_postgres::Row) -> ProfileRow {
    let schedule: Option<serde_json::Value> = r.get(7);
    ProfileRow {
        id: r.get(0),
        org_id: r.get(1),
        name: r.get(2),
        source_kind: r.get(3),
        source_config: r.get(4),
        credential_id: r.get(5),
        targets: r.get(6),
        // Written from the domain's own type by the projection, so it reads back.
        schedule: schedule.and_then(|s| serde_json::from_value(s).ok()),
        prune_interval_secs: r.get(8),
        paused: r.get(9),
        paused_reason: r.get(10),
        status: r.get(11),
        created_by: r.get(12),
        created_at: r.get(13),
        updated_by: r.get(14),
        updated_at: r.get(15),
        aggregate_version: r.get(16),
    }
}

/// Filters of the profile list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ProfileFilter {
    pub paused: Option<bool>,
    pub source_kind: Option<String>,
    /// Profiles that feed this target.
    pub target: Option<Uuid>,
}

pub mod tenant_reads {
    use super::*;

    /// The org's live targets, oldest first, after `after`; of one kind if given.
    pub async fn targets(
        client: &impl GenericClient,
        org: Uuid,
        kind: Option<&str>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<TargetRow>> {
        let (time, id) = after.unzip();
        let rows = client
            .query(
                &format!(
                    "SELECT {TARGET_COLUMNS} FROM targets WHERE org_id = $1 AND status = 'active' \
                     AND ($2::text IS NULL OR kind = $2) \
                     AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4)) \
                     ORDER BY created_at, id LIMIT $5"
                ),
                &[&org, &kind, &time, &id, &limit],
            )
            .await
            .map_err(pg("listing targets"))?;
        Ok(rows.iter().map(target_row).collect())
    }

    /// One live target of the org.
    pub async fn target(
        client: &impl GenericClient,
        org: Uuid,
        id: Uuid,
    ) -> Result<Option<TargetRow>> {
        let row = client
            .query_opt(
                &format!(
                    "SELECT {TARGET_COLUMNS} FROM targets WHERE org_id = $1 AND id = $2 \
                     AND status = 'active'"
                ),
                &[&org, &id],
            )
            .await
            .map_err(pg("reading a target"))?;
        Ok(row.as_ref().map(super::target_row))
    }

    /// The org's targets among `ids`, live or deleted (to say which of them are not usable).
    pub async fn targets_by_id(
        client: &impl GenericClient,
        org: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<TargetRow>> {
        let rows = client
            .query(
                &format!(
                    "SELECT {TARGET_COLUMNS} FROM targets WHERE org_id = $1 AND id = ANY($2) \
                     ORDER BY created_at, id"
                ),
                &[&org, &ids],
            )
            .await
            .map_err(pg("reading targets"))?;
        Ok(rows.iter().map(super::target_row).collect())
    }

    /// The org's live profiles, oldest first, after `after`, matching `filter`.
    pub async fn profiles(
        client: &impl GenericClient,
        org: Uuid,
        filter: &ProfileFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<ProfileRow>> {
        let (time, id) = after.unzip();
        let rows = client
            .query(
                &format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles WHERE org_id = $1 \
                     AND status = 'active' \
                     AND ($2::boolean IS NULL OR paused = $2) \
                     AND ($3::text IS NULL OR source_kind = $3) \
                     AND ($4::uuid IS NULL OR $4 = ANY(targets)) \
                     AND ($5::timestamptz IS NULL OR (created_at, id) > ($5, $6)) \
                     ORDER BY created_at, id LIMIT $7"
                ),
                &[
                    &org,
                    &filter.paused,
                    &filter.source_kind,
                    &filter.target,
                    &time,
                    &id,
                    &limit,
                ],
            )
            .await
            .map_err(pg("listing profiles"))?;
        Ok(rows.iter().map(super::profile_row).collect())
    }

    /// One live profile of the org.
    pub async fn profile(
        client: &impl GenericClient,
        org: Uuid,
        id: Uuid,
    ) -> Result<Option<ProfileRow>> {
        let row = client
            .query_opt(
                &format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles WHERE org_id = $1 AND id = $2 \
                     AND status = 'active'"
                ),
                &[&org, &id],
            )
            .await
            .map_err(pg("reading a profile"))?;
        Ok(row.as_ref().map(super::profile_row))
    }

    /// The org's live profiles that feed `target`: `(id, name)`, oldest first.
    pub async fn profiles_using_target(
        client: &impl GenericClient,
        org: Uuid,
        target: Uuid,
    ) -> Result<Vec<(Uuid, String)>> {
        let rows = client
            .query(
                "SELECT id, name FROM profiles WHERE org_id = $1 AND status = 'active' \
                 AND $2 = ANY(targets) ORDER BY created_at, id",
                &[&org, &target],
            )
            .await
            .map_err(pg("finding the profiles of a target"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// The aggregate versions the targets read model shows (system read, for waiters).
pub async fn target_versions(
    client: &impl GenericClient,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, i64)>> {
    let rows = client
        .query(
            "SELECT id, aggregate_version FROM targets WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg("reading target versions"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The aggregate versions the profiles read model shows (system read, for waiters).
pub async fn profile_versions(
    client: &impl GenericClient,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, i64)>> {
    let rows = client
        .query(
            "SELECT id, aggregate_version FROM profiles WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg("reading profile versions"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A target by id, live or deleted (system read, for the deliverer).
pub async fn target_by_id(client: &impl GenericClient, id: Uuid) -> Result<Option<TargetRow>> {
    let row = client
        .query_opt(
            &format!("SELECT {TARGET_COLUMNS} FROM targets WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(pg("reading a target"))?;
    Ok(row.as_ref().map(target_row))
}

/// A profile by id, live or deleted (system read, for the scheduler and the worker).
pub async fn profile_by_id(client: &impl GenericClient, id: Uuid) -> Result<Option<ProfileRow>> {
    let row = client
        .query_opt(
            &format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(pg("reading a profile"))?;
    Ok(row.as_ref().map(profile_row))
}

/// Every live, unpaused profile that has a schedule, of every org (system read, for
/// the scheduler: it computes each one's due time with [`Schedule::next_due`] from its
/// last run).
pub async fn scheduled_profiles(client: &impl GenericClient) -> Result<Vec<ProfileRow>> {
    let rows = client
        .query(
            &format!(
                "SELECT {PROFILE_COLUMNS} FROM profiles WHERE status = 'active' \
                 AND NOT paused AND schedule IS NOT NULL ORDER BY id"
            ),
            &[],
        )
        .await
        .map_err(pg("listing scheduled profiles"))?;
    Ok(rows.iter().map(profile_row).collect())
}

/// Every live profile of every org, paused and manual-only ones included (system read,
/// e.g. for pruning, which `prune_interval_secs` times independently of the schedule).
pub async fn live_profiles(client: &impl GenericClient) -> Result<Vec<ProfileRow>> {
    let rows = client
        .query(
            &format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE status = 'active' ORDER BY id"),
            &[],
        )
        .await
        .map_err(pg("listing profiles"))?;
    Ok(rows.iter().map(profile_row).collect())
}

/// The live targets a profile feeds, in the profile's order, with kind, config and
/// credential id (system read, for the worker and the deliverer). Targets deleted since
/// the profile named them, or of another org, are left out: a delivery to them must not
/// happen.
pub async fn targets_of(client: &impl GenericClient, profile: Uuid) -> Result<Vec<TargetRow>> {
    let columns: String = TARGET_COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .query(
            &format!(
                "SELECT {columns} FROM profiles p \
                 CROSS JOIN LATERAL unnest(p.targets) WITH ORDINALITY AS u(id, n) \
                 JOIN targets t ON t.id = u.id AND t.org_id = p.org_id \
                 WHERE p.id = $1 AND t.status = 'active' ORDER BY u.n"
            ),
            &[&profile],
        )
        .await
        .map_err(pg("reading a profile's targets"))?;
    Ok(rows.iter().map(target_row).collect())
}

/// What the sync runs read model shows of a profile's runs: for the scheduler, a hint to
/// skip requests that would change nothing. The sync aggregate decides; this may lag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunsSeen {
    /// The latest schedule slot a run was requested for.
    pub last_slot: Option<DateTime<Utc>>,
    /// A run not finished yet (queued, running or interrupted).
    pub active: Option<Uuid>,
}

/// For each of `profiles`, what the `sync_runs` read model shows of its runs (system
/// read, for the scheduler).
pub async fn runs_seen(
    client: &impl GenericClient,
    profiles: &[Uuid],
) -> Result<HashMap<Uuid, RunsSeen>> {
    let rows = client
        .query(
            "SELECT p.id,
                 (SELECT max(r.slot) FROM sync_runs r WHERE r.profile_id = p.id),
                 (SELECT r.id FROM sync_runs r WHERE r.profile_id = p.id
                      AND r.finished_at IS NULL ORDER BY r.requested_at DESC LIMIT 1)
             FROM unnest($1::uuid[]) AS p(id)",
            &[&profiles],
        )
        .await
        .map_err(pg("reading the runs of scheduled profiles"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                RunsSeen {
                    last_slot: r.get(1),
                    active: r.get(2),
                },
            )
        })
        .collect())
}
