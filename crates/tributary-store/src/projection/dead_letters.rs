//! The `dead_letters` read model: every document dead letter with its context and
//! whether it was redriven, from `<prefix>.dead-letter.events` — so listing never scans
//! Kafka, and a rebuild shows every letter in the state the log says.
//!
//! A letter's `redriven` event is keyed like its `recorded` event (by the letter id), so
//! it always comes later in the same partition: a batch inserts first, then marks.

use super::{Table, decode_error};
use crate::error::{Result, pg};
use serde_json::json;
use tokio_postgres::Transaction;
use tributary_log::Envelope;
use tributary_log::dead_letter::{LetterRecorded, LetterRedriven, RECORDED, REDRIVEN};

pub(super) const TABLES: &[Table] = &[Table {
    name: "dead_letters",
    policy: Some("org_id = tributary_current_org()"),
    ddl: include_str!("../../sql/dead_letters.table.sql"),
}];

pub(super) async fn apply(
    tx: &Transaction<'_>,
    table: &str,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let mut recorded = Vec::new();
    let mut redriven = Vec::new();
    for (_, env) in batch {
        match env.ty.as_str() {
            RECORDED => {
                let e: LetterRecorded =
                    serde_json::from_slice(&env.data).map_err(|e| decode_error(env, e))?;
                recorded.push(json!({
                    "id": e.id, "org_id": e.org_id, "profile_id": e.profile_id,
                    "run_id": e.run_id, "target_id": e.target_id, "doc_id": e.doc_id,
                    "op": e.op, "class": e.class, "message": e.message, "stage": e.stage,
                    "attempts": e.attempts, "first_failure": e.first_failure,
                    "last_failure": e.last_failure, "letter_topic": e.letter.topic,
                    "letter_partition": e.letter.partition, "letter_offset": e.letter.offset,
                    "original_topic": e.original.topic,
                    "original_partition": e.original.partition,
                    "original_offset": e.original.offset, "redrive_of": e.redrive_of,
                }));
            }
            REDRIVEN => {
                let e: LetterRedriven =
                    serde_json::from_slice(&env.data).map_err(|e| decode_error(env, e))?;
                redriven.push(json!({ "id": e.id, "at": e.at, "actor": e.actor }));
            }
            _ => {}
        }
    }
    let mut applied = 0;
    if !recorded.is_empty() {
        let sql = format!(
            "INSERT INTO {table} (id, org_id, profile_id, run_id, target_id, doc_id, op, class,
                 message, stage, attempts, first_failure, last_failure, letter_topic,
                 letter_partition, letter_offset, original_topic, original_partition,
                 original_offset, redrive_of, state)
             SELECT id, org_id, profile_id, run_id, target_id, doc_id, op, class, message,
                 stage, attempts, first_failure, last_failure, letter_topic, letter_partition,
                 letter_offset, original_topic, original_partition, original_offset,
                 redrive_of, 'dead'
             FROM jsonb_to_recordset($1) AS r(id uuid, org_id uuid, profile_id uuid,
                 run_id uuid, target_id uuid, doc_id text, op text, class text, message text,
                 stage text, attempts integer, first_failure timestamptz,
                 last_failure timestamptz, letter_topic text, letter_partition integer,
                 letter_offset bigint, original_topic text, original_partition integer,
                 original_offset bigint, redrive_of uuid)
             ON CONFLICT (id) DO NOTHING"
        );
        applied += tx
            .execute(&sql, &[&serde_json::Value::Array(recorded)])
            .await
            .map_err(pg("writing dead letters"))?;
    }
    if !redriven.is_empty() {
        // The first redrive marks a letter; a repeated one changes nothing.
        let sql = format!(
            "UPDATE {table} t SET state = 'redriven', redriven_at = r.at, redriven_by = r.actor
             FROM (SELECT DISTINCT ON (id) id, at, actor
                   FROM jsonb_to_recordset($1) AS x(id uuid, at timestamptz, actor text)
                   ORDER BY id, at) r
             WHERE t.id = r.id AND t.state = 'dead'"
        );
        applied += tx
            .execute(&sql, &[&serde_json::Value::Array(redriven)])
            .await
            .map_err(pg("marking dead letters redriven"))?;
    }
    Ok(applied)
}
