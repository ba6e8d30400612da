//! The `catalog` read model: `targets` and `profiles`, from the target and profile
//! aggregates' events.
//!
//! Every event carries the whole row it leaves behind (`updated` events carry every
//! field), so each one is a single statement. A row remembers the aggregate version it
//! shows and takes only newer events, so a batch read twice (a rebuild racing the live
//! projector, a redelivery) changes nothing. Deleted targets and profiles keep their
//! rows with status `deleted` (ADR 0012).

use super::{Table, decode_error};
use crate::error::{Result, pg};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;
use tributary_domain::profile::{self, ProfileEvent};
use tributary_domain::target::TargetEvent;
use tributary_log::Envelope;
use uuid::Uuid;

pub(super) const TABLES: &[Table] = &[
    Table {
        name: "targets",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/targets.table.sql"),
    },
    Table {
        name: "profiles",
        policy: Some("org_id = tributary_current_org()"),
        ddl: include_str!("../../sql/profiles.table.sql"),
    },
];

async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    tx.execute(sql, params)
        .await
        .map_err(pg("writing the catalog read model"))
}

/// `$v` in the statements below: the event's aggregate version, or NULL for a record
/// without one (applied unconditionally, as nothing better is known).
const NEWER: &str = "($2::bigint IS NULL OR aggregate_version < $2)";

async fn apply_target(
    tx: &Transaction<'_>,
    table: &str,
    event: &TargetEvent,
    version: Option<i64>,
) -> Result<u64> {
    let id: Uuid = event.target_id().0;
    match event {
        TargetEvent::Created(e) => {
            let config = serde_json::Value::Object(e.config.clone());
            let credential = e.credential_id.map(|c| c.0);
            let sql = format!(
                "INSERT INTO {table} (id, aggregate_version, org_id, name, kind, config, \
                 credential_id, status, created_by, created_at, updated_by, updated_at) \
                 VALUES ($1, COALESCE($2::bigint, 0), $3, $4, $5, $6, $7, 'active', $8, $9, $8, $9) \
                 ON CONFLICT (id) DO NOTHING"
            );
            exec(
                tx,
                &sql,
                &[
                    &id,
                    &version,
                    &e.org_id.0,
                    &e.name,
                    &e.kind,
                    &config,
                    &credential,
                    &e.actor,
                    &e.at,
                ],
            )
            .await
        }
        TargetEvent::Updated(e) => {
            let config = serde_json::Value::Object(e.config.clone());
            let credential = e.credential_id.map(|c| c.0);
            let sql = format!(
                "UPDATE {table} SET name = $3, config = $4, credential_id = $5, \
                 updated_by = $6, updated_at = $7, \
                 aggregate_version = COALESCE($2::bigint, aggregate_version) \
                 WHERE id = $1 AND {NEWER}"
            );
            exec(
                tx,
                &sql,
                &[
                    &id,
                    &version,
                    &e.name,
                    &config,
                    &credential,
                    &e.actor,
                    &e.at,
                ],
            )
            .await
        }
        TargetEvent::Deleted(e) => {
            let sql = format!(
                "UPDATE {table} SET status = 'deleted', updated_by = $3, updated_at = $4, \
                 aggregate_version = COALESCE($2::bigint, aggregate_version) \
                 WHERE id = $1 AND {NEWER}"
            );
            exec(tx, &sql, &[&id, &version, &e.actor, &e.at]).await
        }
    }
}

async fn apply_profile(
    tx: &Transaction<'_>,
    table: &str,
    event: &ProfileEvent,
    version: Option<i64>,
) -> Result<u64> {
    let id: Uuid = event.profile_id().0;
    let as_json = |value: &Option<profile::Schedule>| {
        value.as_ref().and_then(|s| serde_json::to_value(s).ok())
    };
    let prune = |secs: u64| i64::try_from(secs).unwrap_or(i64::MAX);
    match event {
        ProfileEvent::Created(e) => {
            let config = serde_json::Value::Object(e.source.config.clone());
            let credential = e.credential_id.map(|c| c.0);
            let targets: Vec<Uuid> = e.targets.iter().map(|t| t.0).collect();
            let schedule = as_json(&e.schedule);
            let sql = format!(
                "INSERT INTO {table} (id, aggregate_version, org_id, name, source_kind, \
                 source_config, credential_id, targets, schedule, prune_interval_secs, paused, \
                 status, created_by, created_at, updated_by, updated_at) \
                 VALUES ($1, COALESCE($2::bigint, 0), $3, $4, $5, $6, $7, $8, $9, $10, false, 'active', \
                 $11, $12, $11, $12) \
                 ON CONFLICT (id) DO NOTHING"
            );
            exec(
                tx,
                &sql,
                &[
                    &id,
                    &version,
                    &e.org_id.0,
                    &e.name,
                    &e.source.kind,
                    &config,
                    &credential,
                    &targets,
                    &schedule,
                    &prune(e.prune_interval_secs),
                    &e.actor,
                    &e.at,
                ],
            )
            .await
        }
        ProfileEvent::Updated(e) => {
            let config = serde_json::Value::Object(e.source.config.clone());
            let credential = e.credential_id.map(|c| c.0);
            let targets: Vec<Uuid> = e.targets.iter().map(|t| t.0).collect();
            let schedule = as_json(&e.schedule);
            let sql = format!(
                "UPDATE {table} SET name = $3, source_config = $4, credential_id = $5, \
                 targets = $6, schedule = $7, prune_interval_secs = $8, updated_by = $9, \
                 updated_at = $10, aggregate_version = COALESCE($2::bigint, aggregate_version) \
                 WHERE id = $1 AND {NEWER}"
            );
            exec(
                tx,
                &sql,
                &[
                    &id,
                    &version,
                    &e.name,
                    &config,
                    &credential,
                    &targets,
                    &schedule,
                    &prune(e.prune_interval_secs),
                    &e.actor,
                    &e.at,
                ],
            )
            .await
        }
        ProfileEvent::Paused(e) => {
            let sql = format!(
                "UPDATE {table} SET paused = true, paused_reason = $3, updated_by = $4, \
                 updated_at = $5, aggregate_version = COALESCE($2::bigint, aggregate_version) \
                 WHERE id = $1 AND {NEWER}"
            );
            exec(tx, &sql, &[&id, &version, &e.reason, &e.actor, &e.at]).await
        }
        ProfileEvent::Resumed(e) | ProfileEvent::Deleted(e) => {
            let change = if matches!(event, ProfileEvent::Resumed(_)) {
                "paused = false, paused_reason = NULL"
            } else {
                "status = 'deleted'"
            };
            let sql = format!(
                "UPDATE {table} SET {change}, updated_by = $3, updated_at = $4, \
                 aggregate_version = COALESCE($2::bigint, aggregate_version) \
                 WHERE id = $1 AND {NEWER}"
            );
            exec(tx, &sql, &[&id, &version, &e.actor, &e.at]).await
        }
    }
}

pub(super) async fn apply(
    tx: &Transaction<'_>,
    version: i32,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let targets = TABLES[0].versioned(version);
    let profiles = TABLES[1].versioned(version);
    let mut applied = 0;
    for (_, env) in batch {
        let aggregate_version = env.agg_version.and_then(|v| i64::try_from(v).ok());
        if env.ty.starts_with("tributary.target.") {
            let event =
                TargetEvent::decode(&env.ty, &env.data).map_err(|e| decode_error(env, e))?;
            apply_target(tx, &targets, &event, aggregate_version).await?;
            applied += 1;
        } else if env.ty.starts_with("tributary.profile.") {
            let event =
                ProfileEvent::decode(&env.ty, &env.data).map_err(|e| decode_error(env, e))?;
            apply_profile(tx, &profiles, &event, aggregate_version).await?;
            applied += 1;
        }
    }
    Ok(applied)
}
