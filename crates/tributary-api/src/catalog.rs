//! The catalog: which connector and destination kinds exist (`/connectors`,
//! `/destinations`), and each org's targets (configured destinations, `/targets`) and
//! profiles (connections, `/profiles`).
//!
//! The target and profile aggregates check structure only. Everything that needs the
//! registries or the read models is checked here, before a command is sent: the kind
//! exists, the config fits the kind's JSON Schema (every violation answered with its
//! JSON pointer) and, for destinations, `validate_config`; the credential is a live one
//! of the caller's org and of a kind the component accepts; every target of a profile is
//! a live target of the caller's org (ADR 0012). Members read; curators and admins
//! change and check. An id of another org answers 404 before the body is read.

pub mod discovery;
pub mod profiles;
pub mod targets;

use crate::auth::{Authorized, Caller, Member, MinRole};
use crate::gateway::{self, Command};
use crate::problem::{ApiError, ApiResult, FieldProblem};
use crate::state::AppState;
use crate::waiters::{Awaiting, Waiters};
use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;
use tokio_postgres::GenericClient;
use tributary_domain::{CommandId, OrgId};
use tributary_store::catalog::{self as store, tenant_reads};
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest a `check` waits for a source or a destination to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// What a check found. `message` says what was found or what to fix; it never holds a
/// secret (sources and sinks keep credentials out of their messages).
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckOut {
    pub ok: bool,
    pub message: String,
}

impl CheckOut {
    fn failed(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
        }
    }
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        detail: detail.into(),
    }
}

/// A 422 naming one field.
fn bad_field(pointer: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::InvalidFields {
        detail: format!("{pointer}: {message}"),
        errors: vec![FieldProblem {
            pointer: pointer.to_owned(),
            message,
        }],
    }
}

/// For partial updates: a field left out stays (`None`), `null` clears it (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    <Option<T> as Deserialize>::deserialize(deserializer).map(Some)
}

fn validate_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(bad_field(
            "/name",
            "a name has 1 to 200 characters and no control characters",
        ));
    }
    Ok(name.to_owned())
}

/// `what` (e.g. "destination") is not a known kind: the answer, about the field at
/// `pointer`, lists the known ones.
fn unknown_kind<'a>(
    pointer: &str,
    what: &str,
    name: &str,
    known: impl Iterator<Item = &'a str>,
) -> ApiError {
    let known: Vec<&str> = known.collect();
    bad_field(
        pointer,
        format!(
            "unknown {what} kind {name:?}; known kinds: {}",
            known.join(", ")
        ),
    )
}

/// Checks `value` (at `at` in the request, e.g. `/config`) against a kind's JSON
/// Schema and lists every violation with its pointer. Config values are not secrets
/// (those live in credentials), so the validator's messages may quote them.
fn check_schema(
    kind: &str,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) -> ApiResult<()> {
    if !value.is_object() {
        return Err(bad_field(at, "the config must be a JSON object"));
    }
    // Compiled per request: kinds' schemas are small, and a cache would need
    // invalidation for nothing measurable.
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| {
            bad(format!(
                "the schema of kind {kind} does not compile ({e}); this build of Tributary is \
                 broken, report it"
            ))
        })?;
    let errors: Vec<FieldProblem> = validator
        .iter_errors(value)
        .map(|e| FieldProblem {
            pointer: format!("{at}{}", e.instance_path),
            message: e.to_string(),
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.pointer, e.message))
        .collect();
    Err(ApiError::InvalidFields {
        detail: format!(
            "the config does not fit the {kind} schema; fix every field listed: {}",
            listed.join("; ")
        ),
        errors,
    })
}

/// The credential a component is to use must be a live credential of the caller's org
/// and of a kind the component accepts.
async fn check_credential(
    state: &AppState,
    member: &Member,
    credential: Option<Uuid>,
    component: &str,
    accepted: &[&str],
) -> ApiResult<()> {
    let Some(id) = credential else {
        return Ok(());
    };
    if accepted.is_empty() {
        return Err(bad_field(
            "/credential_id",
            format!("{component} takes no credential; leave credential_id out"),
        ));
    }
    let org = member.org;
    let row = state
        .read_as(member, async |tx| {
            tributary_store::credentials::tenant_reads::get(tx, org, id).await
        })
        .await?;
    let Some(row) = row else {
        return Err(bad_field(
            "/credential_id",
            format!(
                "credential {id} is not a credential of this org (or was deleted); pick one \
                 from GET /credentials"
            ),
        ));
    };
    if !accepted.contains(&row.kind.as_str()) {
        return Err(bad_field(
            "/credential_id",
            format!(
                "credential {id} is a {} credential; {component} accepts {}",
                row.kind,
                accepted.join(", ")
            ),
        ));
    }
    Ok(())
}

/// What a path's `{id}` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Target,
    Profile,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Self::Target => "target",
            Self::Profile => "profile",
        }
    }

    fn awaiting(self, waiters: &Waiters) -> &Awaiting<i64> {
        match self {
            Self::Target => &waiters.targets,
            Self::Profile => &waiters.profiles,
        }
    }

    async fn versions(
        self,
        client: &impl GenericClient,
        id: Uuid,
    ) -> tributary_store::Result<Vec<(Uuid, i64)>> {
        match self {
            Self::Target => store::target_versions(client, &[id]).await,
            Self::Profile => store::profile_versions(client, &[id]).await,
        }
    }

    fn not_found(self, id: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound {
            what: format!("{} {id}", self.name()),
        }
    }

    /// Whether the member's org has a live one with this id (a tenant read).
    async fn exists(self, state: &AppState, member: &Member, id: Uuid) -> ApiResult<bool> {
        let org = member.org;
        state
            .read_as(member, async |tx| {
                Ok(match self {
                    Self::Target => tenant_reads::target(tx, org, id).await?.is_some(),
                    Self::Profile => tenant_reads::profile(tx, org, id).await?.is_some(),
                })
            })
            .await
    }
}

/// Role first, then 404 for an id that is not a live one of the caller's org — before
/// any body is read, so another org's id answers exactly like one that does not exist.
async fn own<R: MinRole>(
    parts: &mut Parts,
    state: &AppState,
    entity: Entity,
) -> ApiResult<(Member, Uuid)> {
    let member = Authorized::<R>::from_request_parts(parts, state)
        .await?
        .member();
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| entity.not_found("(no id)"))?;
    let raw = params.get("id").map(String::as_str).unwrap_or_default();
    let id: Uuid = raw.parse().map_err(|_| entity.not_found(raw))?;
    if !entity.exists(state, &member, id).await? {
        return Err(entity.not_found(id));
    }
    Ok((member, id))
}

/// A live target of the caller's org, named by the path's `{id}`.
pub struct OwnTarget<R: MinRole> {
    pub member: Member,
    pub id: Uuid,
    _role: PhantomData<R>,
}

impl<R: MinRole> FromRequestParts<AppState> for OwnTarget<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (member, id) = own::<R>(parts, state, Entity::Target).await?;
        Ok(Self {
            member,
            id,
            _role: PhantomData,
        })
    }
}

/// A live profile of the caller's org, named by the path's `{id}`.
pub struct OwnProfile<R: MinRole> {
    pub member: Member,
    pub id: Uuid,
    _role: PhantomData<R>,
}

impl<R: MinRole> FromRequestParts<AppState> for OwnProfile<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (member, id) = own::<R>(parts, state, Entity::Profile).await?;
        Ok(Self {
            member,
            id,
            _role: PhantomData,
        })
    }
}

/// Sends a target or profile command and waits until the catalog read model shows it.
/// `Ok(Err(id))`: still in progress after the longest wait (answer 202).
async fn send(
    state: &AppState,
    member: &Member,
    headers: &HeaderMap,
    entity: Entity,
    id: Uuid,
    ty: &'static str,
    mut data: serde_json::Value,
) -> ApiResult<Result<(), CommandId>> {
    data[format!("{}_id", entity.name())] = serde_json::json!(id);
    data["org_id"] = serde_json::json!(member.org);
    data["actor"] = serde_json::json!(member.actor.tag());
    data["at"] = serde_json::json!(Utc::now());
    let key = id.to_string();
    let command = Command {
        aggregate: entity.name(),
        key: &key,
        ty,
        org_id: Some(OrgId(member.org)),
        data,
    };
    let caller = Caller::Member(*member);
    let (command_id, version, left) =
        match gateway::send_accepted(state, &caller, command, headers).await? {
            gateway::Sent::Accepted { id, version, left } => (id, version, left),
            gateway::Sent::Pending(id) => return Ok(Err(id)),
        };
    let caught_up = move |v: &i64| *v >= version;
    let rx = entity.awaiting(&state.waiters).register(id, caught_up);
    let now = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        entity
            .versions(&**client, id)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .find(caught_up)
    };
    Ok(match Waiters::wait(rx, now, left).await {
        Some(_) => Ok(()),
        None => Err(command_id),
    })
}

/// Opens the credential a component uses, for a check. `Err(answer)`: the check cannot
/// run, and the answer says why.
async fn open_for_check(
    state: &AppState,
    member: &Member,
    credential: Option<Uuid>,
) -> ApiResult<Result<Option<serde_json::Value>, CheckOut>> {
    let Some(id) = credential else {
        return Ok(Ok(None));
    };
    match crate::credentials::open_full(state, member, id).await {
        Ok(Some(open)) => Ok(Ok(Some(open.value))),
        Ok(None) => Ok(Err(CheckOut::failed(format!(
            "credential {id} was deleted; attach another credential and check again"
        )))),
        Err(ApiError::Rejected { detail, .. }) => Ok(Err(CheckOut::failed(detail))),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_violations_are_listed_with_pointers_under_their_field() {
        let schema = json!({
            "type": "object", "additionalProperties": false, "required": ["path"],
            "properties": { "path": { "type": "string" }, "n": { "type": "integer", "minimum": 1 } },
        });
        let err = check_schema("csv", &schema, &json!({ "n": 0, "x": 1 }), "/config").unwrap_err();
        let ApiError::InvalidFields { errors, detail } = err else {
            panic!("{err}")
        };
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/config/n"), "{pointers:?}");
        assert!(pointers.contains(&"/config"), "{pointers:?}");
        assert!(detail.contains("csv"), "{detail}");
        assert!(check_schema("csv", &schema, &json!({ "path": "a" }), "/config").is_ok());
        let not_object = check_schema("csv", &schema, &json!([1]), "/config").unwrap_err();
        assert!(
            not_object.to_string().contains("JSON object"),
            "{not_object}"
        );
    }

    #[test]
    fn a_field_left_out_differs_from_null() {
        #[derive(Deserialize)]
        struct Patch {
            #[serde(default, deserialize_with = "present")]
            credential_id: Option<Option<Uuid>>,
        }
        let left_out: Patch = serde_json::from_value(json!({})).unwrap();
        assert_eq!(left_out.credential_id, None);
        let cleared: Patch = serde_json::from_value(json!({ "credential_id": null })).unwrap();
        assert_eq!(cleared.credential_id, Some(None));
    }
}
