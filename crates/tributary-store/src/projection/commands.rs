//! The `commands` read model: every command seen on a command topic (pending) and its
//! outcome from the command-results topic. The first outcome wins.

use super::decode_error;
use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::Transaction;
use tributary_domain::CommandOutcome;
use tributary_domain::outcome::OUTCOME_TYPE;
use tributary_log::Envelope;
use uuid::Uuid;

#[derive(Default)]
struct Submitted {
    ids: Vec<Uuid>,
    types: Vec<String>,
    aggregates: Vec<Option<String>>,
    aggregate_ids: Vec<Option<String>>,
    orgs: Vec<Option<Uuid>>,
    times: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct Completed {
    ids: Vec<Uuid>,
    types: Vec<String>,
    aggregates: Vec<String>,
    aggregate_ids: Vec<Option<String>>,
    orgs: Vec<Option<Uuid>>,
    statuses: Vec<&'static str>,
    codes: Vec<Option<&'static str>>,
    reasons: Vec<Option<String>>,
    versions: Vec<Option<i64>>,
    events: Vec<i32>,
    times: Vec<DateTime<Utc>>,
}

pub(super) async fn apply(
    tx: &Transaction<'_>,
    table: &str,
    batch: &[(&str, &Envelope)],
) -> Result<u64> {
    let mut submitted = Submitted::default();
    let mut seen_submitted: HashMap<Uuid, ()> = HashMap::new();
    let mut completed = Completed::default();
    let mut seen_completed: HashMap<Uuid, ()> = HashMap::new();
    for (topic, env) in batch {
        let time = env.time.unwrap_or_else(Utc::now);
        if topic.ends_with(".commands") {
            // Commands without a UUID id are answered with a positional id; the outcome
            // row is enough for them.
            let Ok(id) = env.id.parse::<Uuid>() else {
                continue;
            };
            if seen_submitted.insert(id, ()).is_some() {
                continue;
            }
            let aggregate = topic.rsplit('.').nth(1).map(str::to_owned);
            submitted.ids.push(id);
            submitted.types.push(env.ty.clone());
            submitted.aggregates.push(aggregate);
            submitted.aggregate_ids.push(env.subject.clone());
            submitted.orgs.push(env.org_id.map(|o| o.0));
            submitted.times.push(time);
        } else if env.ty == OUTCOME_TYPE {
            let outcome: CommandOutcome =
                serde_json::from_slice(&env.data).map_err(|e| decode_error(env, e))?;
            let id = outcome.command_id.0;
            if seen_completed.insert(id, ()).is_some() {
                continue;
            }
            completed.ids.push(id);
            completed.types.push(outcome.command_type);
            completed.aggregates.push(outcome.aggregate);
            completed.aggregate_ids.push(outcome.aggregate_id);
            completed.orgs.push(env.org_id.map(|o| o.0));
            completed.statuses.push(outcome.status.as_str());
            completed.codes.push(outcome.code.map(|c| c.as_str()));
            completed.reasons.push(outcome.reason);
            completed
                .versions
                .push(outcome.aggregate_version.map(|v| v as i64));
            completed.events.push(outcome.events as i32);
            completed.times.push(time);
        }
    }
    let applied = (submitted.ids.len() + completed.ids.len()) as u64;
    if !submitted.ids.is_empty() {
        let sql = include_str!("../../sql/commands.submitted.sql").replace("{table}", table);
        let s = &submitted;
        tx.execute(
            &sql,
            &[
                &s.ids,
                &s.types,
                &s.aggregates,
                &s.aggregate_ids,
                &s.orgs,
                &s.times,
            ],
        )
        .await
        .map_err(pg("recording submitted commands"))?;
    }
    if !completed.ids.is_empty() {
        let sql = include_str!("../../sql/commands.completed.sql").replace("{table}", table);
        let c = &completed;
        tx.execute(
            &sql,
            &[
                &c.ids,
                &c.types,
                &c.aggregates,
                &c.aggregate_ids,
                &c.orgs,
                &c.statuses,
                &c.codes,
                &c.reasons,
                &c.versions,
                &c.events,
                &c.times,
            ],
        )
        .await
        .map_err(pg("recording command outcomes"))?;
    }
    Ok(applied)
}
