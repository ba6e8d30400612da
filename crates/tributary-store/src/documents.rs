//! System reads for pruning (ADR 0017): the documents a profile's runs delivered and not
//! deleted since (the `documents` read model), and when each profile was last pruned
//! (`sync_runs`).

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// The ids of `profile`'s documents whose last record was an upsert.
pub async fn live_doc_ids(client: &impl GenericClient, profile: Uuid) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT doc_id FROM documents WHERE profile_id = $1 AND NOT deleted",
            &[&profile],
        )
        .await
        .map_err(pg("reading a profile's delivered documents"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// For each of `profiles` that has one, when its latest prune run (any state) was
/// requested.
pub async fn last_prunes(
    client: &impl GenericClient,
    profiles: &[Uuid],
) -> Result<HashMap<Uuid, DateTime<Utc>>> {
    let rows = client
        .query(
            "SELECT profile_id, max(requested_at) FROM sync_runs
             WHERE mode = 'prune' AND profile_id = ANY($1::uuid[])
             GROUP BY profile_id",
            &[&profiles],
        )
        .await
        .map_err(pg("reading when profiles were last pruned"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
