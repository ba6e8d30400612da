//! The security log: failed logins written to the security topic, and
//! `GET /api/v1/orgs/{id}/security-events` for admins to page through the org's log.

use crate::auth::{AdminRole, InOrg};
use crate::paging::Keyset;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureRecord;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;
use tokio_postgres::GenericClient;
use tributary_domain::security::LOGIN_FAILED;
use tributary_log::Envelope;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Records a failed or throttled sign-in. Never the password; a failure to record is
/// logged and does not change the answer to the client.
pub async fn login_failed(
    state: &AppState,
    email_index: &str,
    user: Option<Uuid>,
    addr: Option<IpAddr>,
    throttled: bool,
) {
    let mut data = serde_json::json!({ "email_index": email_index, "throttled": throttled });
    if let Some(user) = user {
        data["user_id"] = serde_json::json!(user);
    }
    if let Some(addr) = addr {
        data["addr"] = serde_json::json!(addr.to_string());
    }
    let key = user
        .map(|u| u.to_string())
        .unwrap_or_else(|| email_index.to_owned());
    record(state, LOGIN_FAILED, &key, None, &data).await;
}

/// Writes a security event that is no aggregate's decision to the security topic. A
/// failure to record is logged and does not change the answer to the client.
pub async fn record(
    state: &AppState,
    ty: &'static str,
    key: &str,
    org: Option<Uuid>,
    data: &serde_json::Value,
) {
    let mut env = match Envelope::json(crate::gateway::SOURCE, ty, data) {
        Ok(env) => env,
        Err(e) => {
            tracing::warn!(error = %e, "could not encode a security event");
            return;
        }
    };
    env.org_id = org.map(tributary_domain::OrgId);
    let topic = state.topics.security();
    let record = FutureRecord::to(&topic)
        .key(key)
        .payload(&env.data)
        .headers(env.encode_headers());
    if let Err((e, _)) = state.producer.send(record, Duration::from_secs(5)).await {
        tracing::warn!(error = %e, event = ty, "could not record a security event on the security topic");
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SecurityParams {
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEvent {
    pub id: Uuid,
    /// e.g. `org.member_role_changed`, `session.revoked`, `security.login_failed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `user:<id>` or `key:<id>`, when someone acted.
    pub actor: Option<String>,
    /// The user, key, invitation or session concerned.
    pub subject: Option<String>,
    pub at: DateTime<Utc>,
    /// The event's data, without any hash.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityPage {
    pub items: Vec<SecurityEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

async fn page(
    client: &impl GenericClient,
    org: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> tributary_store::Result<Vec<SecurityEvent>> {
    let (time, id) = after.unzip();
    let rows = client
        .query(
            "SELECT id, type, actor, subject, at, detail FROM security_events
             WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (at, id) > ($2, $3))
             ORDER BY at, id LIMIT $4",
            &[&org, &time, &id, &limit],
        )
        .await
        .map_err(|source| tributary_store::Error::Postgres {
            action: "reading the security log",
            source,
        })?;
    Ok(rows
        .iter()
        .map(|r| SecurityEvent {
            id: r.get(0),
            kind: r.get(1),
            actor: r.get(2),
            subject: r.get(3),
            at: r.get(4),
            detail: r.get(5),
        })
        .collect())
}

/// The org's security log, oldest first, in pages (admins).
#[utoipa::path(get, path = "/orgs/{id}/security-events", tag = "members",
    params(("id" = Uuid, Path), SecurityParams),
    responses((status = 200, body = SecurityPage), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn list(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    Query(params): Query<SecurityParams>,
) -> ApiResult<Json<SecurityPage>> {
    let member = caller.member();
    let keyset = Keyset::parse(params.limit, params.cursor.as_deref())?;
    let mut items = state
        .read_as(&member, async |tx| {
            page(tx, member.org, keyset.after, keyset.fetch()).await
        })
        .await?;
    let next_cursor = keyset.finish(&mut items, |e| (e.at, e.id));
    Ok(Json(SecurityPage { items, next_cursor }))
}
