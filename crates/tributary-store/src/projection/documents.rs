//! The `documents` read model: every document a profile's runs wrote, and whether its
//! last change was a deletion. Pruning compares the live ones with the source's id
//! listing (ADR 0017).
//!
//! It reads `<prefix>.documents.index`, where the worker writes, in the transaction of
//! each document record, an entry without the content: CloudEvents headers only, whose
//! `ce_type` says upsert or delete, `ce_subject` is the record key `<profile>/<doc id>`,
//! `ce_orgid` the org and `ce_correlationid` the run. The index is compacted, so a
//! rebuild finds every document still live however old its record, which the documents
//! topic (a week) could not promise; and the projection never reads a document's bytes.
//!
//! Records of a zombie's batch that the sync aggregate never recorded are indexed too.
//! That is harmless: at worst a prune deletes, again, a document no target holds, and
//! sinks delete idempotently. System-only: tenants read no row.

use super::{Table, decode_error};
use crate::error::{Result, pg};
use std::collections::HashMap;
use tokio_postgres::Transaction;
use tributary_domain::document::{DELETED, UPSERTED};
use tributary_log::Envelope;
use uuid::Uuid;

pub(super) const TABLES: &[Table] = &[Table {
    name: "documents",
    policy: None,
    ddl: include_str!("../../sql/documents/documents.sql"),
}];

pub(super) async fn apply(
    tx: &Transaction<'_>,
    table: &str,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    // One row per document: a batch may hold several records of one document (one
    // partition, in order), and a statement may change a row only once.
    let mut rows: HashMap<(Uuid, &str), Row> = HashMap::new();
    let mut order = Vec::new();
    for (_, env) in batch {
        let deleted = match env.ty.as_str() {
            UPSERTED => false,
            DELETED => true,
            // Nothing else is written to the index.
            _ => continue,
        };
        // A record this projection cannot place is skipped, not retried forever: it
        // costs at most a document a prune does not know of.
        let place = env
            .subject
            .as_deref()
            .and_then(|k| k.split_once('/'))
            .and_then(|(p, d)| Some((p.parse::<Uuid>().ok()?, d)))
            .zip(env.org_id);
        let Some(((profile, doc_id), org)) = place else {
            let e = decode_error(
                env,
                "a document record needs ce_subject <profile>/<doc id> and ce_orgid",
            );
            tracing::warn!(error = %e, "skipping a document record");
            continue;
        };
        let row = Row {
            org: org.0,
            deleted,
            run: env.correlation_id.as_deref().and_then(|r| r.parse().ok()),
            at: env.time.unwrap_or_else(chrono::Utc::now),
        };
        if rows.insert((profile, doc_id), row).is_none() {
            order.push((profile, doc_id));
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    // Typed arrays, one per column: no JSON to build here or to parse in PostgreSQL.
    let n = order.len();
    let (mut profiles, mut docs, mut orgs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut deleted, mut runs, mut times) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for key in order {
        let Some(row) = rows.remove(&key) else {
            continue;
        };
        profiles.push(key.0);
        docs.push(key.1);
        orgs.push(row.org);
        deleted.push(row.deleted);
        runs.push(row.run);
        times.push(row.at);
    }
    let sql = format!(
        "INSERT INTO {table} (profile_id, doc_id, org_id, deleted, run_id, updated_at)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::boolean[], $5::uuid[],
             $6::timestamptz[])
         ON CONFLICT (profile_id, doc_id) DO UPDATE SET org_id = excluded.org_id,
             deleted = excluded.deleted, run_id = excluded.run_id,
             updated_at = excluded.updated_at"
    );
    tx.execute(&sql, &[&profiles, &docs, &orgs, &deleted, &runs, &times])
        .await
        .map_err(pg("writing the documents read model"))
}

/// The columns of one document's row besides its key.
struct Row {
    org: Uuid,
    deleted: bool,
    run: Option<Uuid>,
    at: chrono::DateTime<chrono::Utc>,
}
