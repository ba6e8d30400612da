//! The command gateway: produce a command, and — when the client asked with
//! `Prefer: wait=<seconds>` — wait for its outcome and for the read model to show it.

use crate::auth::Caller;
use crate::problem::{ApiError, ApiResult, status_for};
use crate::state::AppState;
use crate::waiters::Waiters;
use axum::http::HeaderMap;
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant};
use tributary_domain::{CommandId, OrgId};
use tributary_log::Envelope;
use tributary_store::queries::{self, CommandRow};

pub const SOURCE: &str = "/tributary/api";

/// A command ready to produce.
pub struct Command<'a> {
    pub aggregate: &'static str,
    pub key: &'a str,
    pub ty: &'static str,
    pub org_id: Option<OrgId>,
    pub data: serde_json::Value,
}

/// The `Prefer: wait=N` the client asked for, capped.
pub fn preferred_wait(headers: &HeaderMap, max: u64) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().strip_prefix("wait="))
        .filter_map(|s| s.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(max)))
        .next()
}

/// The correlation id of a request: the caller's `X-Request-Id`, or a new one.
pub fn correlation(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub async fn send(
    state: &AppState,
    caller: &Caller,
    command: Command<'_>,
    correlation: String,
) -> ApiResult<CommandId> {
    let id = CommandId::new();
    let data = serde_json::to_vec(&command.data).map_err(|e| ApiError::Invalid {
        detail: e.to_string(),
    })?;
    let mut env = Envelope::new(SOURCE, command.ty, data);
    env.id = id.to_string();
    env.subject = Some(command.key.to_owned());
    env.org_id = command.org_id;
    env.correlation_id = Some(correlation);
    let _ = caller;
    let topic = state.topics.commands(command.aggregate);
    let record = FutureRecord::to(&topic)
        .key(command.key)
        .payload(&env.data)
        .headers(env.encode_headers());
    state
        .producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| ApiError::Kafka(e.to_string()))?;
    metrics::counter!("tributary_api_commands_sent_total", "type" => command.ty).increment(1);
    Ok(id)
}

/// Waits for the command's outcome; `None` when the wait ran out first.
pub async fn outcome(
    state: &AppState,
    id: CommandId,
    wait: Duration,
) -> ApiResult<Option<CommandRow>> {
    let started = Instant::now();
    let done = |row: &CommandRow| row.status != "pending";
    let rx = state.waiters.commands.register(id.0, done);
    let now = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        queries::command(&**client, id.0).await?.filter(done)
    };
    let row = Waiters::wait(rx, now, wait).await;
    if row.is_some() {
        metrics::histogram!("tributary_command_latency_seconds").record(started.elapsed());
    }
    Ok(row)
}

/// Where a command stands after [`send_accepted`].
pub enum Sent {
    /// Accepted, writing the aggregate at `version`; `left` is what remains of the wait
    /// for the read model to show it.
    Accepted {
        id: CommandId,
        version: i64,
        left: Duration,
    },
    /// No outcome within the longest wait (answer 202 with the command's Location).
    Pending(CommandId),
}

/// Sends a command and waits, up to `TRIBUTARY_MAX_WAIT`, for it to be accepted; a
/// rejection is the error.
pub async fn send_accepted(
    state: &AppState,
    caller: &Caller,
    command: Command<'_>,
    headers: &HeaderMap,
) -> ApiResult<Sent> {
    let id = send(state, caller, command, correlation(headers)).await?;
    let wait = Duration::from_secs(state.max_wait_secs);
    let started = Instant::now();
    let Some(outcome) = self::outcome(state, id, wait).await? else {
        return Ok(Sent::Pending(id));
    };
    if outcome.status != "accepted" {
        return Err(rejected(&outcome));
    }
    Ok(Sent::Accepted {
        id,
        version: outcome.aggregate_version.unwrap_or(0),
        left: wait.saturating_sub(started.elapsed()),
    })
}

/// Turns a rejected outcome into its problem.
pub fn rejected(row: &CommandRow) -> ApiError {
    let code = row.code.clone().unwrap_or_else(|| "rejected".into());
    ApiError::Rejected {
        status: status_for(&code),
        detail: row
            .reason
            .clone()
            .unwrap_or_else(|| "the command was rejected".into()),
        code,
        command_id: row.id.to_string(),
    }
}

/// Waits until the org read model has caught up with `version` (read-your-writes).
pub async fn org_at(
    state: &AppState,
    id: uuid::Uuid,
    version: i64,
    wait: Duration,
) -> ApiResult<Option<queries::OrgRow>> {
    let caught_up = move |row: &queries::OrgRow| row.version >= version;
    let rx = state.waiters.orgs.register(id, caught_up);
    let now = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        queries::org(&**client, id).await?.filter(caught_up)
    };
    Ok(Waiters::wait(rx, now, wait).await)
}

/// Waits until the identity read model (members, invitations, keys) has applied the
/// org's events up to `version` (read-your-writes for membership changes).
pub async fn identity_at(
    state: &AppState,
    org: uuid::Uuid,
    version: i64,
    wait: Duration,
) -> ApiResult<bool> {
    let caught_up = move |v: &i64| *v >= version;
    let rx = state.waiters.identity.register(org, caught_up);
    let now = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        tributary_store::accounts::org_versions(&**client, &[org])
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .find(caught_up)
    };
    Ok(Waiters::wait(rx, now, wait).await.is_some())
}
