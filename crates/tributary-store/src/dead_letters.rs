//! Reads of the `dead_letters` read model. The API reads inside
//! [`crate::tenant::begin`] with the caller's org (row-level security limits it to that
//! org as well); the CLI reads as the owning role, across orgs unless it names one.

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

/// `state` of a letter nobody redrove yet.
pub const DEAD: &str = "dead";
/// `state` of a letter whose record went back to the documents topic.
pub const REDRIVEN: &str = "redriven";
/// The states a listing can filter by.
pub const STATES: [&str; 2] = [DEAD, REDRIVEN];
/// The error classes a dead letter can have.
pub const CLASSES: [&str; 4] = ["permanent", "transient", "rate_limited", "malformed"];

#[derive(Debug, Clone, PartialEq)]
pub struct LetterRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub profile_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub doc_id: Option<String>,
    pub op: Option<String>,
    pub class: String,
    pub message: String,
    pub stage: String,
    pub attempts: i32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    pub letter_topic: String,
    pub letter_partition: i32,
    pub letter_offset: i64,
    pub original_topic: String,
    pub original_partition: i32,
    pub original_offset: i64,
    pub redrive_of: Option<Uuid>,
    /// [`DEAD`] or [`REDRIVEN`].
    pub state: String,
    pub redriven_at: Option<DateTime<Utc>>,
    pub redriven_by: Option<String>,
}

impl LetterRow {
    /// Whether a redrive can send it back: not redriven yet, and for a known target (a
    /// malformed record names none, and would fail the same way again).
    pub fn redrivable(&self) -> bool {
        self.state == DEAD && self.target_id.is_some()
    }
}

const COLUMNS: &str = "id, org_id, profile_id, run_id, target_id, doc_id, op, class, message, \
     stage, attempts, first_failure, last_failure, letter_topic, letter_partition, \
     letter_offset, original_topic, original_partition, original_offset, redrive_of, state, \
     redriven_at, redriven_by";

fn letter(r: &Row) -> LetterRow {
    LetterRow {
        id: r.get(0),
        org_id: r.get(1),
        profile_id: r.get(2),
        run_id: r.get(3),
        target_id: r.get(4),
        doc_id: r.get(5),
        op: r.get(6),
        class: r.get(7),
        message: r.get(8),
        stage: r.get(9),
        attempts: r.get(10),
        first_failure: r.get(11),
        last_failure: r.get(12),
        letter_topic: r.get(13),
        letter_partition: r.get(14),
        letter_offset: r.get(15),
        original_topic: r.get(16),
        original_partition: r.get(17),
        original_offset: r.get(18),
        redrive_of: r.get(19),
        state: r.get(20),
        redriven_at: r.get(21),
        redriven_by: r.get(22),
    }
}

/// Filters of a listing; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LetterFilter {
    /// Only this org's letters; `None` (operators only) for every org.
    pub org_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub profile_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub class: Option<String>,
    pub state: Option<String>,
    /// Last failure at or after.
    pub since: Option<DateTime<Utc>>,
    /// Last failure before.
    pub until: Option<DateTime<Utc>>,
}

/// Letters matching `filter`, newest last failure first, after `before` (the last row
/// of the previous page).
pub async fn list(
    client: &impl GenericClient,
    filter: &LetterFilter,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<LetterRow>> {
    let (time, id) = before.unzip();
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM dead_letters \
                 WHERE ($1::uuid IS NULL OR org_id = $1) \
                 AND ($2::uuid IS NULL OR target_id = $2) \
                 AND ($3::uuid IS NULL OR profile_id = $3) \
                 AND ($4::uuid IS NULL OR run_id = $4) \
                 AND ($5::text IS NULL OR class = $5) \
                 AND ($6::text IS NULL OR state = $6) \
                 AND ($7::timestamptz IS NULL OR last_failure >= $7) \
                 AND ($8::timestamptz IS NULL OR last_failure < $8) \
                 AND ($9::timestamptz IS NULL OR (last_failure, id) < ($9, $10)) \
                 ORDER BY last_failure DESC, id DESC LIMIT $11"
            ),
            &[
                &filter.org_id,
                &filter.target_id,
                &filter.profile_id,
                &filter.run_id,
                &filter.class,
                &filter.state,
                &filter.since,
                &filter.until,
                &time,
                &id,
                &limit,
            ],
        )
        .await
        .map_err(pg("listing dead letters"))?;
    Ok(rows.iter().map(letter).collect())
}

/// The letters with these ids (of `org`, if given), in no particular order; ids that
/// match none are left out.
pub async fn by_ids(
    client: &impl GenericClient,
    org: Option<Uuid>,
    ids: &[Uuid],
) -> Result<Vec<LetterRow>> {
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM dead_letters \
                 WHERE id = ANY($1) AND ($2::uuid IS NULL OR org_id = $2)"
            ),
            &[&ids, &org],
        )
        .await
        .map_err(pg("reading dead letters"))?;
    Ok(rows.iter().map(letter).collect())
}

/// One letter (of `org`, if given).
pub async fn get(
    client: &impl GenericClient,
    org: Option<Uuid>,
    id: Uuid,
) -> Result<Option<LetterRow>> {
    Ok(by_ids(client, org, &[id]).await?.into_iter().next())
}
