//! `/api/v1/profiles`: an org's connections — a source, the credential it signs in with,
//! the targets it feeds, and when it runs.

use super::{
    CHECK_TIMEOUT, CheckOut, Entity, OwnProfile, bad_field, check_credential, check_schema,
    open_for_check, present, send, unknown_kind, validate_name,
};
use crate::auth::{AnyRole, Authorized, CuratorRole, Member};
use crate::orgs::accepted;
use crate::paging::Keyset;
use crate::problem::{ApiError, ApiResult, FieldProblem, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tributary_connectors::source::{BuildContext, ConnectorKind, Mode, Start};
use tributary_domain::profile::{self as domain, Schedule, ScheduledMode};
use tributary_store::catalog::{ProfileFilter, ProfileRow, tenant_reads};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// What a profile reads.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    /// A connector kind from `GET /connectors`, e.g. `filesystem`.
    pub kind: String,
    /// Valid against the kind's schema.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// When a profile runs: exactly one of `interval_secs` (at least 60) and `cron` (five
/// fields, UTC), and up to `jitter_secs` (0 to 3600) added to each due time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// E.g. `0 */6 * * *` (every six hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default)]
    pub jitter_secs: u32,
    /// `incremental` (the default): what changed since the last run; `full`: everything,
    /// a periodic full refresh.
    #[serde(default)]
    #[schema(value_type = String)]
    pub mode: ScheduledMode,
}

impl ScheduleBody {
    fn into_domain(self) -> ApiResult<Schedule> {
        let schedule = Schedule {
            interval_secs: self.interval_secs,
            cron: self.cron,
            jitter_secs: self.jitter_secs,
            mode: self.mode,
        };
        schedule
            .validate()
            .map_err(|r| bad_field("/schedule", r.reason))?;
        Ok(schedule)
    }
}

impl From<Schedule> for ScheduleBody {
    fn from(s: Schedule) -> Self {
        Self {
            interval_secs: s.interval_secs,
            cron: s.cron,
            jitter_secs: s.jitter_secs,
            mode: s.mode,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileOut {
    pub id: Uuid,
    pub name: String,
    pub source: SourceBody,
    pub credential_id: Option<Uuid>,
    pub targets: Vec<Uuid>,
    /// Absent: runs only when asked.
    pub schedule: Option<ScheduleBody>,
    /// 0: never pruned on a schedule.
    pub prune_interval_secs: i64,
    pub paused: bool,
    pub paused_reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change.
    pub version: i64,
}

impl From<ProfileRow> for ProfileOut {
    fn from(r: ProfileRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            source: SourceBody {
                kind: r.source_kind,
                config: r.source_config,
            },
            credential_id: r.credential_id,
            targets: r.targets,
            schedule: r.schedule.map(ScheduleBody::from),
            prune_interval_secs: r.prune_interval_secs,
            paused: r.paused,
            paused_reason: r.paused_reason,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_by: r.updated_by,
            updated_at: r.updated_at,
            version: r.aggregate_version,
        }
    }
}

async fn read_one(state: &AppState, member: &Member, id: Uuid) -> ApiResult<ProfileRow> {
    let org = member.org;
    state
        .read_as(member, async |tx| tenant_reads::profile(tx, org, id).await)
        .await?
        .ok_or_else(|| Entity::Profile.not_found(id))
}

async fn answer(
    state: &AppState,
    member: &Member,
    id: Uuid,
    status: StatusCode,
) -> ApiResult<Response> {
    let row = read_one(state, member, id).await?;
    Ok((status, Json(ProfileOut::from(row))).into_response())
}

fn kind_of<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a ConnectorKind> {
    state.connectors.get(name).ok_or_else(|| {
        unknown_kind(
            "/source/kind",
            "connector",
            name,
            state.connectors.iter().map(|k| k.name),
        )
    })
}

fn check_prune(secs: Option<u64>) -> ApiResult<()> {
    match secs {
        Some(secs) if !domain::prune_interval_ok(secs) => Err(bad_field(
            "/prune_interval_secs",
            format!(
                "prune_interval_secs must be 0 (never) or between {} and {}, not {secs}",
                domain::MIN_PRUNE_INTERVAL_SECS,
                domain::MAX_INTERVAL_SECS,
            ),
        )),
        _ => Ok(()),
    }
}

fn credential_of(kind: &ConnectorKind) -> String {
    format!("the {} source", kind.name)
}

/// 1 to 20 distinct targets, each a live target of the caller's org.
async fn check_targets(state: &AppState, member: &Member, targets: &[Uuid]) -> ApiResult<()> {
    if targets.is_empty() || targets.len() > domain::MAX_TARGETS {
        return Err(bad_field(
            "/targets",
            format!(
                "a profile feeds 1 to {} targets, not {}",
                domain::MAX_TARGETS,
                targets.len()
            ),
        ));
    }
    if targets.iter().collect::<BTreeSet<_>>().len() != targets.len() {
        return Err(bad_field("/targets", "list each target once"));
    }
    let org = member.org;
    let found = state
        .read_as(member, async |tx| {
            tenant_reads::targets_by_id(tx, org, targets).await
        })
        .await?;
    let errors: Vec<FieldProblem> = targets
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let message = match found.iter().find(|t| t.id == *id) {
                Some(t) if t.is_live() => return None,
                Some(_) => format!("target {id} was deleted; pick another from GET /targets"),
                // Another org's target reads exactly like one that does not exist.
                None => format!(
                    "target {id} is not a target of this org; create it (POST /targets) or \
                     pick one from GET /targets"
                ),
            };
            Some(FieldProblem {
                pointer: format!("/targets/{i}"),
                message,
            })
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
    Err(ApiError::InvalidFields {
        detail: listed.join("; "),
        errors,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfile {
    pub name: String,
    pub source: SourceBody,
    /// A credential of this org, of a kind the connector accepts.
    pub credential_id: Option<Uuid>,
    /// 1 to 20 distinct targets of this org.
    pub targets: Vec<Uuid>,
    /// Absent or null: runs only when asked.
    pub schedule: Option<ScheduleBody>,
    /// How often deletions at the source are looked for, in seconds: 0 (never; a prune
    /// can still be asked for), or at least 3600; default 604800 (7 days).
    pub prune_interval_secs: Option<u64>,
}

/// Create a profile (curators and admins).
#[utoipa::path(post, path = "/profiles", tag = "profiles", request_body = NewProfile,
    responses((status = 201, body = ProfileOut), (status = 202, description = "Accepted; still being applied"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn create_profile(
    State(state): State<AppState>,
    caller: Authorized<CuratorRole>,
    headers: HeaderMap,
    Json(body): Json<NewProfile>,
) -> ApiResult<Response> {
    let member = caller.member();
    let kind = kind_of(&state, &body.source.kind)?;
    let name = validate_name(&body.name)?;
    check_schema(
        kind.name,
        &kind.schema,
        &body.source.config,
        "/source/config",
    )?;
    check_access(&state, kind, &body.source.config)?;
    let schedule = body.schedule.map(ScheduleBody::into_domain).transpose()?;
    check_prune(body.prune_interval_secs)?;
    check_targets(&state, &member, &body.targets).await?;
    check_credential(
        &state,
        &member,
        body.credential_id,
        &credential_of(kind),
        kind.credential_kinds,
    )
    .await?;
    let mut data = serde_json::json!({
        "name": name,
        "source": { "kind": kind.name, "config": body.source.config },
        "credential_id": body.credential_id,
        "targets": body.targets,
        "schedule": schedule,
    });
    if let Some(secs) = body.prune_interval_secs {
        data["prune_interval_secs"] = serde_json::json!(secs);
    }
    let id = Uuid::now_v7();
    match send(
        &state,
        &member,
        &headers,
        Entity::Profile,
        id,
        domain::CREATE,
        data,
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => answer(&state, &member, id, StatusCode::CREATED).await,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only paused (`true`) or running (`false`) profiles.
    pub paused: Option<bool>,
    /// Only profiles of this connector kind.
    pub source_kind: Option<String>,
    /// Only profiles that feed this target.
    pub target: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfilePage {
    pub items: Vec<ProfileOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The org's profiles, oldest first (any member).
#[utoipa::path(get, path = "/profiles", tag = "profiles", params(ListParams),
    responses((status = 200, body = ProfilePage)),
    security(("bearer" = ["member"])))]
pub async fn list_profiles(
    State(state): State<AppState>,
    caller: Authorized<AnyRole>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<ProfilePage>> {
    let member = caller.member();
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    let org = member.org;
    let filter = ProfileFilter {
        paused: params.paused,
        source_kind: params.source_kind,
        target: params.target,
    };
    let mut rows = state
        .read_as(&member, async |tx| {
            tenant_reads::profiles(tx, org, &filter, keyset.after, keyset.fetch()).await
        })
        .await?;
    let next_cursor = keyset.finish(&mut rows, |r| (r.created_at, r.id));
    Ok(Json(ProfilePage {
        items: rows.into_iter().map(ProfileOut::from).collect(),
        next_cursor,
    }))
}

/// One profile (any member).
#[utoipa::path(get, path = "/profiles/{id}", tag = "profiles", params(("id" = Uuid, Path)),
    responses((status = 200, body = ProfileOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["member"])))]
pub async fn get_profile(
    State(state): State<AppState>,
    profile: OwnProfile<AnyRole>,
) -> ApiResult<Response> {
    answer(&state, &profile.member, profile.id, StatusCode::OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    /// The same kind with a new config (replaced as a whole); the kind cannot change.
    pub source: Option<SourceBody>,
    /// Another credential; `null` detaches it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub credential_id: Option<Option<Uuid>>,
    pub targets: Option<Vec<Uuid>>,
    /// A new schedule; `null`: runs only when asked.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ScheduleBody>)]
    pub schedule: Option<Option<ScheduleBody>>,
    pub prune_interval_secs: Option<u64>,
}

impl ProfilePatch {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.source.is_none()
            && self.credential_id.is_none()
            && self.targets.is_none()
            && self.schedule.is_none()
            && self.prune_interval_secs.is_none()
    }
}

/// Change a profile (curators and admins); fields left out stay.
#[utoipa::path(patch, path = "/profiles/{id}", tag = "profiles", request_body = ProfilePatch,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ProfileOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn update_profile(
    State(state): State<AppState>,
    profile: OwnProfile<CuratorRole>,
    headers: HeaderMap,
    Json(body): Json<ProfilePatch>,
) -> ApiResult<Response> {
    let (member, id) = (profile.member, profile.id);
    if body.is_empty() {
        return answer(&state, &member, id, StatusCode::OK).await;
    }
    let row = read_one(&state, &member, id).await?;
    let mut data = serde_json::json!({});
    if let Some(name) = &body.name {
        data["name"] = serde_json::json!(validate_name(name)?);
    }
    if body.source.is_some() || matches!(body.credential_id, Some(Some(_))) {
        let kind = state.connectors.get(&row.source_kind).ok_or_else(|| {
            bad_field(
                "/source/kind",
                format!(
                    "this build of Tributary no longer knows the {} connector; only the name, \
                     targets and schedule can change, or delete the profile",
                    row.source_kind
                ),
            )
        })?;
        if let Some(source) = &body.source {
            if source.kind != row.source_kind {
                return Err(bad_field(
                    "/source/kind",
                    format!(
                        "the source kind of this profile is {} and cannot change; create a new \
                         profile for {}",
                        row.source_kind, source.kind
                    ),
                ));
            }
            check_schema(kind.name, &kind.schema, &source.config, "/source/config")?;
            check_access(&state, kind, &source.config)?;
            data["source"] = serde_json::json!({ "kind": kind.name, "config": source.config });
        }
        if let Some(Some(credential)) = body.credential_id {
            check_credential(
                &state,
                &member,
                Some(credential),
                &credential_of(kind),
                kind.credential_kinds,
            )
            .await?;
        }
    }
    if let Some(credential) = body.credential_id {
        data["credential_id"] = serde_json::json!(credential);
    }
    if let Some(targets) = &body.targets {
        check_targets(&state, &member, targets).await?;
        data["targets"] = serde_json::json!(targets);
    }
    if let Some(schedule) = body.schedule {
        let schedule = schedule.map(ScheduleBody::into_domain).transpose()?;
        data["schedule"] = serde_json::json!(schedule);
    }
    if let Some(secs) = body.prune_interval_secs {
        check_prune(Some(secs))?;
        data["prune_interval_secs"] = serde_json::json!(secs);
    }
    match send(
        &state,
        &member,
        &headers,
        Entity::Profile,
        id,
        domain::UPDATE,
        data,
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => answer(&state, &member, id, StatusCode::OK).await,
    }
}

/// Delete a profile (curators and admins).
#[utoipa::path(delete, path = "/profiles/{id}", tag = "profiles", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn delete_profile(
    State(state): State<AppState>,
    profile: OwnProfile<CuratorRole>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (member, id) = (profile.member, profile.id);
    match send(
        &state,
        &member,
        &headers,
        Entity::Profile,
        id,
        domain::DELETE,
        serde_json::json!({}),
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why, for the people reading the profile (at most 500 characters).
    pub reason: Option<String>,
}

/// Pause a profile: no scheduled runs until it is resumed (curators and admins).
/// Pausing a paused profile changes nothing.
#[utoipa::path(post, path = "/profiles/{id}/pause", tag = "profiles", request_body = Option<PauseRequest>,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ProfileOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn pause_profile(
    State(state): State<AppState>,
    profile: OwnProfile<CuratorRole>,
    headers: HeaderMap,
    body: Option<Json<PauseRequest>>,
) -> ApiResult<Response> {
    let (member, id) = (profile.member, profile.id);
    let reason = body.and_then(|b| b.0.reason);
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > domain::MAX_REASON_CHARS)
    {
        return Err(bad_field(
            "/reason",
            format!(
                "a reason has at most {} characters",
                domain::MAX_REASON_CHARS
            ),
        ));
    }
    let mut data = serde_json::json!({});
    if let Some(reason) = reason {
        data["reason"] = serde_json::json!(reason);
    }
    match send(
        &state,
        &member,
        &headers,
        Entity::Profile,
        id,
        domain::PAUSE,
        data,
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => answer(&state, &member, id, StatusCode::OK).await,
    }
}

/// Resume a paused profile (curators and admins). Resuming a running profile changes
/// nothing.
#[utoipa::path(post, path = "/profiles/{id}/resume", tag = "profiles", params(("id" = Uuid, Path)),
    responses((status = 200, body = ProfileOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn resume_profile(
    State(state): State<AppState>,
    profile: OwnProfile<CuratorRole>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (member, id) = (profile.member, profile.id);
    match send(
        &state,
        &member,
        &headers,
        Entity::Profile,
        id,
        domain::RESUME,
        serde_json::json!({}),
    )
    .await?
    {
        Err(command) => Ok(accepted(command)),
        Ok(()) => answer(&state, &member, id, StatusCode::OK).await,
    }
}

/// Try a profile's source: build it with its config and decrypted credential and run
/// the connector's own check (curators and admins). No document is read into the log
/// and nothing is recorded; the answer never holds a secret.
#[utoipa::path(post, path = "/profiles/{id}/check", tag = "profiles", params(("id" = Uuid, Path)),
    responses((status = 200, body = CheckOut), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["curator"])))]
pub async fn check_profile(
    State(state): State<AppState>,
    profile: OwnProfile<CuratorRole>,
) -> ApiResult<Json<CheckOut>> {
    let (member, id) = (profile.member, profile.id);
    let row = read_one(&state, &member, id).await?;
    let Some(kind) = state.connectors.get(&row.source_kind) else {
        return Ok(Json(CheckOut::failed(format!(
            "this build of Tributary does not know the {} connector",
            row.source_kind
        ))));
    };
    let credential = match open_for_check(&state, &member, row.credential_id).await? {
        Ok(credential) => credential,
        Err(answer) => return Ok(Json(answer)),
    };
    // A scratch directory of its own (Airbyte writes its config and catalog there),
    // removed afterwards whatever the check did.
    let work_dir = std::env::temp_dir().join(format!("tributary-check-{}", Uuid::now_v7()));
    if let Err(e) = tokio::fs::create_dir_all(&work_dir).await {
        tracing::error!(error = %e, dir = %work_dir.display(), "creating a check's work directory failed");
        return Ok(Json(CheckOut::failed(
            "the server could not create a scratch directory for the check; make sure its \
             temporary directory is writable and try again",
        )));
    }
    if let Err(e) = state.connectors.permit(kind.name, &row.source_config) {
        return Ok(Json(CheckOut::failed(e.to_string())));
    }
    let ctx = BuildContext {
        config: row.source_config,
        credential,
        start: Start {
            mode: Mode::Full,
            checkpoint: None,
            resuming: false,
            now: Utc::now(),
        },
        http: state.http.clone(),
        work_dir: work_dir.clone(),
    };
    let answer = match kind.build(ctx) {
        Err(e) => CheckOut::failed(e.to_string()),
        Ok(mut source) => match tokio::time::timeout(CHECK_TIMEOUT, source.check()).await {
            Ok(Ok(message)) => CheckOut { ok: true, message },
            Ok(Err(e)) => CheckOut::failed(e.to_string()),
            Err(_) => CheckOut::failed(format!(
                "the {} source did not answer within {} seconds; check that it is reachable \
                 and try again",
                kind.name,
                CHECK_TIMEOUT.as_secs()
            )),
        },
    };
    let _ = tokio::fs::remove_dir_all(&work_dir).await;
    Ok(Json(answer))
}

/// Refuses a source config that reaches further on the server than its operator allows
/// (`TRIBUTARY_FILESYSTEM_ROOTS`, `TRIBUTARY_AIRBYTE_COMMANDS`).
fn check_access(
    state: &AppState,
    kind: &ConnectorKind,
    config: &serde_json::Value,
) -> ApiResult<()> {
    state
        .connectors
        .permit(kind.name, config)
        .map_err(|e| bad_field("/source/config", e.to_string()))
}
