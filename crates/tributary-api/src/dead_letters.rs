//! Document dead letters: list them with filters, read one, and redrive them (by id or
//! by filter) once the target is fixed.
//!
//! Listing reads the `dead_letters` read model; a redrive reads each letter's record
//! from the dead-letter topic and sends it back to the documents topic, for the letter's
//! target only, in one Kafka transaction with the `redriven` event that marks the letter
//! (see `tributary_log::dead_letter::redrive` and ADR 0015). The same redrive serves
//! `tributary dlq redrive`.

use crate::auth::{AnyRole, Authorized, CuratorRole};
use crate::paging::Keyset;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_log::dead_letter::{self as log, ToRedrive};
use tributary_store::Db;
use tributary_store::dead_letters::{self as store, CLASSES, LetterFilter, LetterRow, STATES};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The most letters one redrive request sends back; `more` says when others match.
pub const MAX_REDRIVE: usize = 500;
/// How long a redrive waits for the read model to show its letters as redriven, so the
/// next listing (and the next redrive) sees them so.
const SETTLE: Duration = Duration::from_secs(5);

/// Where a record lies in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceOut {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LetterOut {
    /// Stable: derived from the letter's place in the dead-letter topic.
    pub id: Uuid,
    pub org_id: Uuid,
    pub profile_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    /// The target that refused the document (none for a malformed record).
    pub target_id: Option<Uuid>,
    pub doc_id: Option<String>,
    /// `upsert` or `delete`.
    pub op: Option<String>,
    /// `permanent`, `transient`, `rate_limited` (retries and delays exhausted) or
    /// `malformed`.
    pub class: String,
    /// What failed and what to do, as the destination said it (never a secret).
    pub message: String,
    pub stage: String,
    /// Delivery attempts, in place and after each delay.
    pub attempts: i32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    /// `dead`, or `redriven` once sent back to the documents topic.
    pub state: String,
    pub redriven_at: Option<DateTime<Utc>>,
    pub redriven_by: Option<String>,
    /// The dead letter whose redrive failed again into this one.
    pub redrive_of: Option<Uuid>,
    /// The dead-letter record (the document, its headers and `dlq_*` context).
    pub letter: PlaceOut,
    /// The document record as first written.
    pub original: PlaceOut,
}

fn out(r: LetterRow) -> LetterOut {
    LetterOut {
        id: r.id,
        org_id: r.org_id,
        profile_id: r.profile_id,
        run_id: r.run_id,
        target_id: r.target_id,
        doc_id: r.doc_id,
        op: r.op,
        class: r.class,
        message: r.message,
        stage: r.stage,
        attempts: r.attempts,
        first_failure: r.first_failure,
        last_failure: r.last_failure,
        state: r.state,
        redriven_at: r.redriven_at,
        redriven_by: r.redriven_by,
        redrive_of: r.redrive_of,
        letter: PlaceOut {
            topic: r.letter_topic,
            partition: r.letter_partition,
            offset: r.letter_offset,
        },
        original: PlaceOut {
            topic: r.original_topic,
            partition: r.original_partition,
            offset: r.original_offset,
        },
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LetterListParams {
    pub target_id: Option<Uuid>,
    pub profile_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    /// `permanent`, `transient`, `rate_limited` or `malformed`.
    pub class: Option<String>,
    /// `dead` or `redriven`.
    pub state: Option<String>,
    /// Last failure at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Last failure before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LetterPage {
    pub items: Vec<LetterOut>,
    pub next_cursor: Option<String>,
}

fn check_class(class: Option<&str>) -> ApiResult<()> {
    match class {
        Some(c) if !CLASSES.contains(&c) => Err(ApiError::Invalid {
            detail: format!(
                "class {c:?} is not a dead-letter class; use one of {}",
                CLASSES.join(", ")
            ),
        }),
        _ => Ok(()),
    }
}

/// The org's dead letters, the latest failure first.
#[utoipa::path(get, path = "/dead-letters", tag = "sync", params(LetterListParams),
    responses((status = 200, body = LetterPage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["member"])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    params: Result<Query<LetterListParams>, QueryRejection>,
) -> ApiResult<Json<LetterPage>> {
    let member = caller.member();
    let Query(params) = params.map_err(|e| ApiError::Invalid {
        detail: format!(
            "{}; filters are target_id, profile_id, run_id (UUIDs), class, state, since and \
             until (RFC 3339), limit and cursor",
            e.body_text()
        ),
    })?;
    check_class(params.class.as_deref())?;
    if let Some(s) = params.state.as_deref()
        && !STATES.contains(&s)
    {
        return Err(ApiError::Invalid {
            detail: format!(
                "state {s:?} is not a dead-letter state; use one of {}",
                STATES.join(", ")
            ),
        });
    }
    if let (Some(since), Some(until)) = (params.since, params.until)
        && since >= until
    {
        return Err(ApiError::Invalid {
            detail: "since must be before until".into(),
        });
    }
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    let filter = LetterFilter {
        org_id: Some(member.org),
        target_id: params.target_id,
        profile_id: params.profile_id,
        run_id: params.run_id,
        class: params.class,
        state: params.state,
        since: params.since,
        until: params.until,
    };
    let mut rows = state
        .read_as(&member, async |tx| {
            store::list(tx, &filter, keyset.after, keyset.fetch()).await
        })
        .await?;
    let next_cursor = keyset.finish(&mut rows, |r| (r.last_failure, r.id));
    Ok(Json(LetterPage {
        items: rows.into_iter().map(out).collect(),
        next_cursor,
    }))
}

fn not_found(id: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound {
        what: format!("dead letter {id}"),
    }
}

/// One dead letter with its context.
#[utoipa::path(get, path = "/dead-letters/{id}", tag = "sync", params(("id" = Uuid, Path)),
    responses((status = 200, body = LetterOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["member"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    Path(id): Path<String>,
) -> ApiResult<Json<LetterOut>> {
    let member = caller.member();
    let id: Uuid = id.parse().map_err(|_| not_found(&id))?;
    let row = state
        .read_as(&member, async |tx| {
            store::get(tx, Some(member.org), id).await
        })
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(out(row)))
}

/// Which dead letters to redrive: `ids`, or a `filter` (not both).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// 1 to 500 dead-letter ids of your org.
    pub ids: Option<Vec<Uuid>>,
    pub filter: Option<RedriveFilter>,
}

/// Every dead letter (not yet redriven) that matches all the fields given; at least one.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveFilter {
    pub target_id: Option<Uuid>,
    pub profile_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    /// `permanent`, `transient` or `rate_limited`.
    pub class: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedOut {
    pub id: Uuid,
    /// Why it was not redriven.
    pub reason: String,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct RedriveOut {
    /// How many dead letters went back to the documents topic.
    pub redriven: usize,
    pub ids: Vec<Uuid>,
    /// Letters named that were not redriven (already redriven, malformed, gone).
    pub skipped: Vec<SkippedOut>,
    /// More letters match the filter than one request redrives: send it again.
    pub more: bool,
}

/// What to redrive, from a request body; every mistake is a sentence saying how to fix
/// it.
pub fn parse_request(body: &[u8]) -> ApiResult<RedriveRequest> {
    let request: RedriveRequest = serde_json::from_slice(body).map_err(|e| ApiError::Invalid {
        detail: format!(
            "the body is not a redrive request ({e}); send {{\"ids\": [...]}} or \
             {{\"filter\": {{\"target_id\", \"profile_id\", \"run_id\", \"class\"}}}}"
        ),
    })?;
    match (&request.ids, &request.filter) {
        (Some(_), Some(_)) => Err(ApiError::Invalid {
            detail: "send either ids or filter, not both".into(),
        }),
        (None, None) => Err(ApiError::Invalid {
            detail: "name what to redrive: {\"ids\": [...]} or {\"filter\": {...}}".into(),
        }),
        (Some(ids), None) if ids.is_empty() || ids.len() > MAX_REDRIVE => Err(ApiError::Invalid {
            detail: format!(
                "ids must hold 1 to {MAX_REDRIVE} dead-letter ids, not {}",
                ids.len()
            ),
        }),
        (None, Some(f))
            if f.target_id.is_none()
                && f.profile_id.is_none()
                && f.run_id.is_none()
                && f.class.is_none() =>
        {
            Err(ApiError::Invalid {
                detail: "the filter needs at least one of target_id, profile_id, run_id and \
                         class, so that a redrive never sends back everything by mistake"
                    .into(),
            })
        }
        (None, Some(f)) => {
            check_class(f.class.as_deref())?;
            Ok(request)
        }
        _ => Ok(request),
    }
}

/// The letters a request names: every id must be a letter of the org (404 otherwise,
/// like an id of another org); those that cannot be redriven are skipped with why.
pub fn pick(ids: &[Uuid], rows: Vec<LetterRow>) -> ApiResult<(Vec<LetterRow>, Vec<SkippedOut>)> {
    let mut by_id: BTreeMap<Uuid, LetterRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let mut chosen = Vec::new();
    let mut skipped = Vec::new();
    for id in ids {
        let Some(row) = by_id.remove(id) else {
            if chosen.iter().any(|r: &LetterRow| r.id == *id)
                || skipped.iter().any(|s: &SkippedOut| s.id == *id)
            {
                continue;
            }
            return Err(not_found(id));
        };
        if row.state != store::DEAD {
            skipped.push(SkippedOut {
                id: row.id,
                reason: format!(
                    "already redriven{}",
                    row.redriven_at
                        .map(|at| format!(" at {}", at.to_rfc3339()))
                        .unwrap_or_default()
                ),
            });
        } else if !row.redrivable() {
            skipped.push(SkippedOut {
                id: row.id,
                reason: "a malformed record names no target; it would fail the same way \
                         again (fix the producer that wrote it)"
                    .into(),
            });
        } else {
            chosen.push(row);
        }
    }
    Ok((chosen, skipped))
}

/// The Kafka settings the API's producer uses: its brokers as the cluster advertises
/// them (the addresses every client ends up talking to).
fn kafka_of(state: &AppState) -> ApiResult<KafkaSettings> {
    use rdkafka::producer::Producer;
    let documents = state.topics.documents();
    let metadata = state
        .producer
        .client()
        .fetch_metadata(Some(&documents), Duration::from_secs(10))
        .map_err(|e| ApiError::Kafka(format!("reading the cluster's brokers: {e}")))?;
    let brokers: Vec<String> = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    if brokers.is_empty() {
        return Err(ApiError::Kafka("the cluster named no brokers".into()));
    }
    Ok(KafkaSettings::new(brokers.join(",")))
}

/// Redrives `letters` (all redrivable) for `actor`: per org, one Kafka transaction
/// that re-produces each record and marks its letter; then waits (a few seconds at
/// most) until the read model shows them redriven. Returns the ids redriven and the
/// letters whose record was no longer in the dead-letter topic.
pub async fn redrive(
    kafka: &KafkaSettings,
    topics: &Topics,
    db: &Db,
    letters: &[LetterRow],
    actor: &str,
) -> ApiResult<(Vec<Uuid>, Vec<SkippedOut>)> {
    let mut by_org: BTreeMap<Uuid, Vec<ToRedrive>> = BTreeMap::new();
    for row in letters {
        let Some(target_id) = row.target_id else {
            continue;
        };
        by_org.entry(row.org_id).or_default().push(ToRedrive {
            id: row.id,
            target_id,
            partition: row.letter_partition,
            offset: row.letter_offset,
        });
    }
    let mut redriven = Vec::new();
    let mut skipped = Vec::new();
    for (org, batch) in by_org {
        let (kafka, topics, actor) = (kafka.clone(), topics.clone(), actor.to_owned());
        let done =
            tokio::task::spawn_blocking(move || log::redrive(&kafka, &topics, org, &batch, &actor))
                .await
                .map_err(|e| ApiError::Kafka(format!("the redrive stopped: {e}")))?
                .map_err(|e| ApiError::Kafka(e.to_string()))?;
        redriven.extend(done.redriven);
        skipped.extend(done.missing.into_iter().map(|id| SkippedOut {
            id,
            reason: "its record is no longer in the dead-letter topic".into(),
        }));
    }
    settle(db, &redriven).await;
    Ok((redriven, skipped))
}

/// Waits until the read model shows `ids` redriven, or [`SETTLE`] passed (the
/// projector is behind; the letters show redriven once it catches up).
async fn settle(db: &Db, ids: &[Uuid]) {
    let deadline = Instant::now() + SETTLE;
    while !ids.is_empty() && Instant::now() < deadline {
        let shown = match db.get().await {
            Ok(client) => store::by_ids(&**client, None, ids)
                .await
                .map(|rows| rows.iter().all(|r| r.state == store::REDRIVEN)),
            Err(e) => Err(e.into()),
        };
        if shown.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Send dead letters back to their target: `{"ids": [...]}` or
/// `{"filter": {"target_id", "profile_id", "run_id", "class"}}`. Each letter's original
/// record (narrowed to its target, marked as a redrive) goes back to the documents
/// topic and the letter becomes `redriven`; a redriven letter is skipped. At most 500
/// per request (`more` says when others match).
#[utoipa::path(post, path = "/dead-letters/redrive", tag = "sync", request_body = RedriveRequest,
    responses((status = 202, description = "Sent back; the deliverer takes them from here", body = RedriveOut),
        (status = 404, description = "An id is not a dead letter of your org", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn redrive_letters(
    State(state): State<AppState>,
    caller: Authorized<CuratorRole>,
    body: Bytes,
) -> ApiResult<Response> {
    let member = caller.member();
    let request = parse_request(&body)?;
    let (chosen, mut skipped, more) = match (request.ids, request.filter) {
        (Some(ids), _) => {
            let rows = state
                .read_as(&member, async |tx| {
                    store::by_ids(tx, Some(member.org), &ids).await
                })
                .await?;
            let (chosen, skipped) = pick(&ids, rows)?;
            (chosen, skipped, false)
        }
        (None, Some(f)) => {
            let filter = LetterFilter {
                org_id: Some(member.org),
                target_id: f.target_id,
                profile_id: f.profile_id,
                run_id: f.run_id,
                class: f.class,
                state: Some(store::DEAD.to_owned()),
                ..LetterFilter::default()
            };
            let mut rows = state
                .read_as(&member, async |tx| {
                    store::list(tx, &filter, None, MAX_REDRIVE as i64 + 1).await
                })
                .await?;
            let more = rows.len() > MAX_REDRIVE;
            rows.truncate(MAX_REDRIVE);
            rows.retain(LetterRow::redrivable);
            (rows, Vec::new(), more)
        }
        (None, None) => unreachable!("parse_request refuses a request naming nothing"),
    };
    let mut answer = RedriveOut {
        more,
        ..RedriveOut::default()
    };
    if !chosen.is_empty() {
        let kafka = kafka_of(&state)?;
        let (ids, missing) = redrive(
            &kafka,
            &state.topics,
            &state.db,
            &chosen,
            &member.actor.tag(),
        )
        .await?;
        answer.ids = ids;
        skipped.extend(missing);
    }
    answer.redriven = answer.ids.len();
    answer.skipped = skipped;
    metrics::counter!("tributary_dead_letters_redriven_total").increment(answer.redriven as u64);
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(body: &str) -> String {
        match parse_request(body.as_bytes()) {
            Err(ApiError::Invalid { detail }) => detail,
            other => panic!("{body}: expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_redrive_names_ids_or_a_filter_and_never_everything() {
        assert!(invalid("{}").contains("name what to redrive"));
        assert!(invalid("nope").contains("not a redrive request"));
        assert!(invalid(r#"{"ids": []}"#).contains("1 to 500"));
        assert!(invalid(r#"{"ids": ["x"]}"#).contains("not a redrive request"));
        assert!(invalid(r#"{"filter": {}}"#).contains("at least one"));
        assert!(invalid(r#"{"filter": {"class": "odd"}}"#).contains("not a dead-letter class"));
        assert!(invalid(r#"{"filter": {"targets": []}}"#).contains("unknown field"));
        let id = Uuid::now_v7();
        assert!(
            invalid(&format!(
                r#"{{"ids": ["{id}"], "filter": {{"run_id": "{id}"}}}}"#
            ))
            .contains("not both")
        );
        let ok =
            parse_request(format!(r#"{{"filter": {{"target_id": "{id}"}}}}"#).as_bytes()).unwrap();
        assert_eq!(ok.filter.unwrap().target_id, Some(id));
    }
}
