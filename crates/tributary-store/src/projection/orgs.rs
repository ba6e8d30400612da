//! The `orgs` read model. A batch is folded in memory first (an org created and renamed
//! in one batch becomes one row), then written with two set-based statements; the
//! version guard makes a replayed batch harmless.

use super::decode_error;
use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::Transaction;
use tributary_domain::org::{CREATED, DELETED, OrgEvent, RENAMED};
use tributary_log::Envelope;
use uuid::Uuid;

#[derive(Debug)]
struct Full {
    slug: String,
    name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    version: i64,
}

#[derive(Debug)]
struct Patch {
    name: Option<String>,
    deleted_at: Option<DateTime<Utc>>,
    /// `None` for a version-only change (an org event this model does not show).
    updated_at: Option<DateTime<Utc>>,
    version: i64,
}

#[derive(Debug)]
enum Change {
    Full(Full),
    Patch(Patch),
}

pub(super) async fn apply(
    tx: &Transaction<'_>,
    table: &str,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let mut order: Vec<Uuid> = Vec::new();
    let mut changes: HashMap<Uuid, Change> = HashMap::new();
    let mut applied = 0;
    for (_, env) in batch {
        if ![CREATED, RENAMED, DELETED].contains(&env.ty.as_str()) {
            // Members, invitations, keys: the identity model shows them. The org's
            // version still moves, so a wait for the org at that version ends.
            let id = env.subject.as_deref().and_then(|s| s.parse::<Uuid>().ok());
            if let (Some(id), Some(version)) = (id, env.agg_version) {
                let version = version as i64;
                match changes.get_mut(&id) {
                    Some(Change::Full(f)) => f.version = f.version.max(version),
                    Some(Change::Patch(p)) => p.version = p.version.max(version),
                    None => {
                        order.push(id);
                        let bump = Patch {
                            name: None,
                            deleted_at: None,
                            updated_at: None,
                            version,
                        };
                        changes.insert(id, Change::Patch(bump));
                    }
                }
            }
            continue;
        }
        let event = OrgEvent::decode(&env.ty, &env.data).map_err(|e| decode_error(env, e))?;
        let time = env.time.unwrap_or_else(Utc::now);
        let version = env.agg_version.unwrap_or(0) as i64;
        let id = event.org_id().0;
        applied += 1;
        let slot = changes.get_mut(&id);
        match (event, slot) {
            (OrgEvent::Created(e), _) => {
                if !changes.contains_key(&id) {
                    order.push(id);
                }
                changes.insert(
                    id,
                    Change::Full(Full {
                        slug: e.slug,
                        name: e.name,
                        created_at: time,
                        updated_at: time,
                        deleted_at: None,
                        version,
                    }),
                );
            }
            (OrgEvent::Renamed(e), Some(Change::Full(f))) => {
                f.name = e.name;
                f.updated_at = time;
                f.version = version;
            }
            (OrgEvent::Renamed(e), Some(Change::Patch(p))) => {
                p.name = Some(e.name);
                p.updated_at = Some(time);
                p.version = version;
            }
            (OrgEvent::Deleted(_), Some(Change::Full(f))) => {
                f.deleted_at = Some(time);
                f.updated_at = time;
                f.version = version;
            }
            (OrgEvent::Deleted(_), Some(Change::Patch(p))) => {
                p.deleted_at = Some(time);
                p.updated_at = Some(time);
                p.version = version;
            }
            (event, None) => {
                order.push(id);
                let (name, deleted_at) = match event {
                    OrgEvent::Renamed(e) => (Some(e.name), None),
                    _ => (None, Some(time)),
                };
                changes.insert(
                    id,
                    Change::Patch(Patch {
                        name,
                        deleted_at,
                        updated_at: Some(time),
                        version,
                    }),
                );
            }
            // Member, invitation and key events are filtered out above.
            (_, Some(_)) => {}
        }
    }
    let mut full = FullColumns::default();
    let mut patch = PatchColumns::default();
    for id in order {
        match changes.remove(&id) {
            Some(Change::Full(f)) => full.push(id, f),
            Some(Change::Patch(p)) => patch.push(id, p),
            None => {}
        }
    }
    if !full.ids.is_empty() {
        let sql = include_str!("../../sql/orgs.upsert.sql").replace("{table}", table);
        tx.execute(
            &sql,
            &[
                &full.ids,
                &full.slugs,
                &full.names,
                &full.created,
                &full.updated,
                &full.deleted,
                &full.versions,
            ],
        )
        .await
        .map_err(pg("writing orgs"))?;
    }
    if !patch.ids.is_empty() {
        let sql = include_str!("../../sql/orgs.patch.sql").replace("{table}", table);
        tx.execute(
            &sql,
            &[
                &patch.ids,
                &patch.names,
                &patch.deleted,
                &patch.updated,
                &patch.versions,
            ],
        )
        .await
        .map_err(pg("updating orgs"))?;
    }
    Ok(applied)
}

#[derive(Default)]
struct FullColumns {
    ids: Vec<Uuid>,
    slugs: Vec<String>,
    names: Vec<String>,
    created: Vec<DateTime<Utc>>,
    updated: Vec<DateTime<Utc>>,
    deleted: Vec<Option<DateTime<Utc>>>,
    versions: Vec<i64>,
}

impl FullColumns {
    fn push(&mut self, id: Uuid, f: Full) {
        self.ids.push(id);
        self.slugs.push(f.slug);
        self.names.push(f.name);
        self.created.push(f.created_at);
        self.updated.push(f.updated_at);
        self.deleted.push(f.deleted_at);
        self.versions.push(f.version);
    }
}

#[derive(Default)]
struct PatchColumns {
    ids: Vec<Uuid>,
    names: Vec<Option<String>>,
    deleted: Vec<Option<DateTime<Utc>>>,
    updated: Vec<Option<DateTime<Utc>>>,
    versions: Vec<i64>,
}

impl PatchColumns {
    fn push(&mut self, id: Uuid, p: Patch) {
        self.ids.push(id);
        self.names.push(p.name);
        self.deleted.push(p.deleted_at);
        self.updated.push(p.updated_at);
        self.versions.push(p.version);
    }
}
