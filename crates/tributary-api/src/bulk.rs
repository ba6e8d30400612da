//! `POST /api/v1/orgs/{id}/members/bulk`: invite, change the role of, deactivate or
//! reactivate many people from one JSON or CSV upload.
//!
//! Every row is checked before anything is sent, and a row that fails the check is
//! answered without a command. Each valid row is then exactly one command to the org
//! aggregate, so a row is applied whole or not at all. Rows naming the same person run
//! in upload order (a deactivation and a reactivation of one member must not swap);
//! the others run [`PARALLEL`] at a time.

use crate::auth::{AdminRole, InOrg, Member};
use crate::members::{self, InvitationCreated};
use crate::people;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use tributary_domain::{CommandId, Role, normalize_email, org};
use tributary_store::accounts::tenant_reads;
use utoipa::ToSchema;
use uuid::Uuid;

/// The most operations one upload may carry.
pub const MAX_ROWS: usize = 1000;
/// Commands in flight at once for one upload.
const PARALLEL: usize = 16;
/// The columns a CSV upload may have; `role` may be left out.
const CSV_COLUMNS: [&str; 3] = ["action", "email", "role"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Invite,
    ChangeRole,
    Deactivate,
    Reactivate,
}

impl BulkAction {
    const ALL: [Self; 4] = [
        Self::Invite,
        Self::ChangeRole,
        Self::Deactivate,
        Self::Reactivate,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::ChangeRole => "change_role",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
        }
    }
}

/// One operation of a JSON upload (documentation; rows are read field by field so that
/// a bad row is answered on its own, not by refusing the whole upload).
#[derive(Debug, ToSchema)]
pub struct BulkOperation {
    pub action: BulkAction,
    /// Who: an email address (for `invite`, always), or else `user_id`.
    pub email: Option<String>,
    pub user_id: Option<Uuid>,
    /// `admin`, `curator` or `member`: the new role for `change_role`, the invited
    /// role for `invite` (default `member`); not given for the others.
    pub role: Option<String>,
    /// `invite` only: 1 to 720, default 168 (a week).
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// At most 1000.
    #[schema(value_type = Vec<BulkOperation>)]
    pub operations: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    /// Applied and visible.
    Done,
    /// Not applied; `code` and `reason` say why.
    Rejected,
    /// Sent, still in progress after the longest wait; follow `command_id`.
    Pending,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRowResult {
    /// 1 for the first operation (the line after the header in a CSV upload).
    pub row: usize,
    /// As uploaded.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    pub status: BulkStatus,
    /// Why a row was rejected: `invalid` (the row itself), `not_found`, `conflict`,
    /// `last_admin`, `unavailable` (safe to retry), ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A sent invitation; its token is shown here once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation: Option<InvitationCreated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResults {
    /// One per operation, in upload order.
    pub results: Vec<BulkRowResult>,
    pub done: usize,
    pub rejected: usize,
    pub pending: usize,
}

/// Invite, change the role of, deactivate or reactivate many people at once.
///
/// JSON: `{"operations": [...]}`. CSV: a header row of `action,email,role` (`role`
/// may be left out), then one operation per line. Each row is answered on its own.
#[utoipa::path(post, path = "/orgs/{id}/members/bulk", tag = "members",
    params(("id" = Uuid, Path)),
    request_body(description = "At most 1000 operations", content(
        (BulkRequest = "application/json"),
        (String = "text/csv", example = "action,email,role\ninvite,ann@example.com,curator\ndeactivate,bob@example.com,\n"))),
    responses((status = 200, body = BulkResults),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor CSV", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unreadable, or more than 1000 operations", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn bulk_members(
    State(state): State<AppState>,
    caller: InOrg<AdminRole>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<BulkResults>> {
    let member = caller.member();
    let rows = parse(&headers, &body)?;
    if rows.len() > MAX_ROWS {
        return Err(invalid(format!(
            "an upload carries at most {MAX_ROWS} operations, this one has {}; split it",
            rows.len()
        )));
    }
    let members = state
        .read_as(&member, async |tx| {
            tenant_reads::members(tx, member.org).await
        })
        .await?;
    let known = directory(&state, &rows, members).await?;
    let (mut results, chains) = plan_all(rows, &known);
    // One correlation id ties every command of the upload together.
    let mut correlated = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&crate::gateway::correlation(&headers)) {
        correlated.insert("x-request-id", value);
    }
    let ran: Vec<Vec<(usize, Ran)>> = futures::stream::iter(chains.chains)
        .map(|chain| {
            let (state, correlated) = (&state, &correlated);
            async move {
                let mut ran = Vec::with_capacity(chain.len());
                for task in chain {
                    ran.push((task.index, run(state, member, correlated, task).await));
                }
                ran
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for (index, ran) in ran.into_iter().flatten() {
        let result = &mut results[index];
        result.invitation = ran.invitation;
        match ran.outcome {
            Ok(Ok(())) => result.status = BulkStatus::Done,
            Ok(Err(id)) => {
                result.status = BulkStatus::Pending;
                result.command_id = Some(id.0);
            }
            Err(rejection) => {
                result.code = Some(rejection.code);
                result.reason = Some(rejection.reason);
                result.command_id = rejection.command_id;
            }
        }
    }
    let count = |status| results.iter().filter(|r| r.status == status).count();
    let (done, rejected, pending) = (
        count(BulkStatus::Done),
        count(BulkStatus::Rejected),
        count(BulkStatus::Pending),
    );
    tracing::info!(org = %member.org, done, rejected, pending, "bulk member operations");
    Ok(Json(BulkResults {
        results,
        done,
        rejected,
        pending,
    }))
}

fn invalid(detail: String) -> ApiError {
    ApiError::Invalid { detail }
}

/// One row as uploaded, every field still text.
#[derive(Debug, Default)]
struct RawRow {
    action: Option<String>,
    email: Option<String>,
    user_id: Option<String>,
    role: Option<String>,
    expires_in_hours: Option<String>,
    /// What makes the row unreadable as a whole (an unknown field, a surplus cell).
    problem: Option<String>,
}

impl RawRow {
    fn field(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "action" => &mut self.action,
            "email" => &mut self.email,
            "user_id" => &mut self.user_id,
            "role" => &mut self.role,
            "expires_in_hours" => &mut self.expires_in_hours,
            _ => return None,
        })
    }
}

fn parse(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<RawRow>> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => json_rows(body),
        Some("text/csv") => csv_rows(body),
        other => Err(ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type".into(),
            detail: format!(
                "send the operations as application/json or text/csv, not {}",
                other.unwrap_or("a body without Content-Type")
            ),
            command_id: String::new(),
        }),
    }
}

fn json_rows(body: &[u8]) -> ApiResult<Vec<RawRow>> {
    let request: BulkRequest = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the body is not {{\"operations\": [...]}}: {e}")))?;
    Ok(request.operations.into_iter().map(json_row).collect())
}

fn json_row(operation: serde_json::Value) -> RawRow {
    use serde_json::Value;
    let mut raw = RawRow::default();
    let Value::Object(fields) = operation else {
        raw.problem = Some(format!("an operation is a JSON object, not {operation}"));
        return raw;
    };
    for (name, value) in fields {
        let Some(slot) = raw.field(&name) else {
            raw.problem.get_or_insert(format!(
                "{name:?} is not a field of an operation; use action, email, user_id, role \
                 or expires_in_hours"
            ));
            continue;
        };
        match value {
            Value::Null => {}
            Value::String(text) => *slot = Some(text),
            Value::Number(n) => *slot = Some(n.to_string()),
            other => {
                raw.problem
                    .get_or_insert(format!("{name} must be text or a number, not {other}"));
            }
        }
    }
    raw
}

fn csv_rows(body: &[u8]) -> ApiResult<Vec<RawRow>> {
    // Spreadsheets often start UTF-8 exports with a byte-order mark.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| invalid(format!("the CSV header row cannot be read: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let unknown: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| !CSV_COLUMNS.contains(c))
        .collect();
    if !unknown.is_empty() {
        return Err(invalid(format!(
            "the CSV has columns this upload does not take: {}; use action, email and role",
            unknown.join(", ")
        )));
    }
    if let Some(twice) = columns
        .iter()
        .enumerate()
        .find_map(|(i, c)| columns[..i].contains(c).then_some(c))
    {
        return Err(invalid(format!("the CSV has the column {twice} twice")));
    }
    for needed in ["action", "email"] {
        if !columns.iter().any(|c| c == needed) {
            return Err(invalid(format!(
                "the CSV header must name the column {needed}: action,email,role"
            )));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| invalid(format!("the CSV cannot be read: {e}")))?;
        let mut raw = RawRow::default();
        if record.len() > columns.len() {
            raw.problem = Some(format!(
                "{} cells, but the header names {} columns",
                record.len(),
                columns.len()
            ));
        }
        for (cell, column) in record.iter().zip(&columns) {
            if let Some(slot) = raw.field(column)
                && !cell.is_empty()
            {
                *slot = Some(cell.to_owned());
            }
        }
        rows.push(raw);
    }
    Ok(rows)
}

/// The members the rows name, by email and by user id. Addresses are sealed in the
/// read model, so rows are matched by blind index, and only the addresses of members
/// named by user id are opened (to show them in the results).
async fn directory(
    state: &AppState,
    rows: &[RawRow],
    members: Vec<tenant_reads::MemberView>,
) -> ApiResult<Directory> {
    let by_index: HashMap<&str, Uuid> = members
        .iter()
        .map(|m| (m.email_index.as_str(), m.user_id))
        .collect();
    let mut by_email = HashMap::new();
    let mut named = std::collections::HashSet::new();
    for raw in rows {
        if let Some(email) = raw.email.as_deref().and_then(|e| normalize_email(e).ok()) {
            let index = people::email_index(state, &email).await?;
            if let Some(user) = by_index.get(index.as_str()) {
                by_email.insert(email, *user);
            }
        }
        if let Some(user) = raw.user_id.as_deref().and_then(|u| u.parse::<Uuid>().ok()) {
            named.insert(user);
        }
    }
    let mut by_user = HashMap::new();
    for m in members.iter().filter(|m| named.contains(&m.user_id)) {
        if let Some(email) =
            people::open_user(state, m.user_id, "email", m.email.as_deref()).await?
        {
            by_user.insert(m.user_id, email);
        }
    }
    Ok(Directory { by_email, by_user })
}

/// Members of the org by email and by user id.
struct Directory {
    by_email: HashMap<String, Uuid>,
    by_user: HashMap<Uuid, String>,
}

/// A row ready to send: one command.
struct Task {
    index: usize,
    ty: &'static str,
    data: serde_json::Value,
    invitation: Option<InvitationCreated>,
}

/// Who a row is about: rows sharing a key run one after the other, in upload order.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Key {
    User(Uuid),
    Email(String),
}

#[derive(Default)]
struct Chains {
    chains: Vec<Vec<Task>>,
    by_key: HashMap<Key, usize>,
}

impl Chains {
    fn add(&mut self, keys: Vec<Key>, task: Task) {
        let chain = match keys.iter().find_map(|k| self.by_key.get(k)) {
            Some(&chain) => chain,
            None => {
                self.chains.push(Vec::new());
                self.chains.len() - 1
            }
        };
        for key in keys {
            self.by_key.insert(key, chain);
        }
        self.chains[chain].push(task);
    }
}

/// Checks every row before anything is sent: a row that fails is answered now.
fn plan_all(rows: Vec<RawRow>, known: &Directory) -> (Vec<BulkRowResult>, Chains) {
    let mut results = Vec::with_capacity(rows.len());
    let mut chains = Chains::default();
    for (index, raw) in rows.into_iter().enumerate() {
        let mut result = BulkRowResult {
            row: index + 1,
            action: raw.action.clone().unwrap_or_default(),
            email: raw.email.clone(),
            user_id: None,
            status: BulkStatus::Rejected,
            code: None,
            reason: None,
            invitation: None,
            command_id: None,
        };
        match plan(index, &raw, known, &mut result) {
            Ok(task) => {
                let keys = result
                    .user_id
                    .map(Key::User)
                    .into_iter()
                    .chain(result.email.clone().map(Key::Email))
                    .collect();
                chains.add(keys, task);
            }
            Err((code, reason)) => {
                result.code = Some(code.into());
                result.reason = Some(reason);
            }
        }
        results.push(result);
    }
    (results, chains)
}

type Refusal = (&'static str, String);

/// Checks one row and turns it into its command, filling in whom it names. `Err` is
/// the row's rejection `(code, reason)`.
fn plan(
    index: usize,
    raw: &RawRow,
    known: &Directory,
    result: &mut BulkRowResult,
) -> Result<Task, Refusal> {
    let row = index + 1;
    let wrong = |field: &str, detail: String| ("invalid", format!("row {row}, {field}: {detail}"));
    if let Some(problem) = &raw.problem {
        return Err(("invalid", format!("row {row}: {problem}")));
    }
    let actions = "use invite, change_role, deactivate or reactivate";
    let action = match raw.action.as_deref() {
        None => return Err(wrong("action", format!("missing; {actions}"))),
        Some(a) => BulkAction::ALL
            .into_iter()
            .find(|k| k.as_str() == a)
            .ok_or_else(|| wrong("action", format!("{a:?} is not an action; {actions}")))?,
    };
    let email = raw
        .email
        .as_deref()
        .map(normalize_email)
        .transpose()
        .map_err(|e| wrong("email", e))?;
    let user = raw
        .user_id
        .as_deref()
        .map(|u| {
            u.parse::<Uuid>()
                .map_err(|_| wrong("user_id", format!("{u:?} is not a user id (a UUID)")))
        })
        .transpose()?;
    let role = raw
        .role
        .as_deref()
        .map(|r| r.parse::<Role>().map_err(|e| wrong("role", e.to_string())))
        .transpose()?;
    if email.is_some() {
        result.email.clone_from(&email);
    }
    let ty = match (action, role) {
        (BulkAction::Invite, _) => {
            let Some(email) = email else {
                return Err(wrong(
                    "email",
                    "missing; an invitation goes to an email address".into(),
                ));
            };
            if user.is_some() {
                return Err(wrong(
                    "user_id",
                    "an invitation names only the email".into(),
                ));
            }
            let hours = raw
                .expires_in_hours
                .as_deref()
                .map(|h| {
                    h.parse::<u32>()
                        .map_err(|_| format!("{h:?} is not a whole number of hours"))
                })
                .transpose()
                .and_then(members::invitation_hours)
                .map_err(|e| wrong("expires_in_hours", e))?;
            let (data, created) =
                members::new_invitation(email, role.unwrap_or(Role::Member), hours);
            return Ok(Task {
                index,
                ty: org::INVITE,
                data,
                invitation: Some(created),
            });
        }
        (BulkAction::ChangeRole, None) => {
            return Err(wrong(
                "role",
                "missing; change_role needs the new role: admin, curator or member".into(),
            ));
        }
        (BulkAction::ChangeRole, Some(_)) => org::CHANGE_ROLE,
        (_, Some(_)) => {
            return Err(wrong(
                "role",
                format!("{} takes no role; leave it empty", action.as_str()),
            ));
        }
        (BulkAction::Deactivate, None) => org::DEACTIVATE_MEMBER,
        (BulkAction::Reactivate, None) => org::REACTIVATE_MEMBER,
    };
    if raw.expires_in_hours.is_some() {
        return Err(wrong(
            "expires_in_hours",
            format!("only an invitation expires, not {}", action.as_str()),
        ));
    }
    let user = match (email, user) {
        (Some(_), Some(_)) => {
            return Err((
                "invalid",
                format!("row {row}: name the member by email or by user_id, not both"),
            ));
        }
        (None, None) => return Err(wrong("email", "missing; whom is this for?".into())),
        (None, Some(user)) => user,
        (Some(email), None) => *known.by_email.get(&email).ok_or_else(|| {
            (
                "not_found",
                format!("row {row}: {email} is not a member of this organization"),
            )
        })?,
    };
    result.user_id = Some(user);
    if result.email.is_none() {
        result.email = known.by_user.get(&user).cloned();
    }
    let mut data = serde_json::json!({ "user_id": user });
    if let Some(role) = role {
        data["role"] = serde_json::json!(role);
    }
    Ok(Task {
        index,
        ty,
        data,
        invitation: None,
    })
}

struct RowRejection {
    code: String,
    reason: String,
    command_id: Option<Uuid>,
}

struct Ran {
    outcome: Result<Result<(), CommandId>, RowRejection>,
    invitation: Option<InvitationCreated>,
}

async fn run(state: &AppState, member: Member, headers: &HeaderMap, mut task: Task) -> Ran {
    let sealed = match &task.invitation {
        Some(invitation) => {
            members::seal_invitation(state, &member, &mut task.data, invitation).await
        }
        None => Ok(()),
    };
    let sent = match sealed {
        Ok(()) => members::change(state, member, headers, task.ty, task.data).await,
        Err(e) => Err(e),
    };
    let outcome = match sent {
        Ok(outcome) => Ok(outcome),
        Err(ApiError::Rejected {
            code,
            detail,
            command_id,
            ..
        }) => Err(RowRejection {
            code,
            reason: detail,
            command_id: command_id.parse().ok(),
        }),
        Err(error) => {
            tracing::error!(%error, row = task.index + 1, "a bulk member operation failed");
            Err(RowRejection {
                code: "unavailable".into(),
                reason: "the service was unavailable; the row may not have been applied, \
                         and sending it again is safe"
                    .into(),
                command_id: None,
            })
        }
    };
    // A rejected invitation does not exist: its token would be useless.
    let invitation = task.invitation.filter(|_| outcome.is_ok());
    Ran {
        outcome,
        invitation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(members: &[(&str, Uuid)]) -> Directory {
        Directory {
            by_email: members.iter().map(|(e, u)| ((*e).to_owned(), *u)).collect(),
            by_user: members.iter().map(|(e, u)| (*u, (*e).to_owned())).collect(),
        }
    }

    fn csv(text: &str) -> ApiResult<Vec<RawRow>> {
        csv_rows(text.as_bytes())
    }

    #[test]
    fn csv_takes_any_column_order_a_bom_blank_lines_and_no_role_column() {
        let rows =
            csv("\u{feff}email,action\n\na@example.com , deactivate\n\nb@example.com,reactivate\n")
                .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].email.as_deref(), Some("a@example.com"));
        assert_eq!(rows[0].action.as_deref(), Some("deactivate"));
        assert_eq!(rows[1].role, None);
    }

    #[test]
    fn csv_names_unknown_and_missing_columns_and_surplus_cells() {
        let e = csv("action,email,role,team,site\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("team, site"), "{e}");
        let e = csv("action,role\n").unwrap_err().to_string();
        assert!(e.contains("email"), "{e}");
        let rows = csv("action,email\ndeactivate,a@example.com,extra\n").unwrap();
        assert_eq!(
            rows[0].problem.as_deref(),
            Some("3 cells, but the header names 2 columns")
        );
    }

    fn planned(raw: serde_json::Value, known: &Directory) -> (BulkRowResult, Chains) {
        let (mut results, chains) = plan_all(vec![json_row(raw)], known);
        (results.remove(0), chains)
    }

    #[test]
    fn each_bad_field_is_named_with_its_row() {
        let known = directory(&[]);
        for (raw, field) in [
            (
                serde_json::json!({ "action": "invite", "email": "nope" }),
                "email",
            ),
            (
                serde_json::json!({ "action": "invite", "email": "a@b.co", "role": "boss" }),
                "role",
            ),
            (
                serde_json::json!({ "action": "invite", "email": "a@b.co", "expires_in_hours": 0 }),
                "expires_in_hours",
            ),
            (
                serde_json::json!({ "action": "change_role", "user_id": Uuid::nil() }),
                "role",
            ),
            (
                serde_json::json!({ "action": "deactivate", "user_id": Uuid::nil(), "role": "admin" }),
                "role",
            ),
            (
                serde_json::json!({ "action": "reactivate", "user_id": "x" }),
                "user_id",
            ),
            (serde_json::json!({ "email": "a@b.co" }), "action"),
        ] {
            let (result, chains) = planned(raw.clone(), &known);
            assert_eq!(result.code.as_deref(), Some("invalid"), "{raw}");
            let reason = result.reason.unwrap();
            assert!(
                reason.starts_with(&format!("row 1, {field}:")),
                "{raw}: {reason}"
            );
            assert!(chains.chains.is_empty());
        }
        let (result, _) = planned(
            serde_json::json!({ "action": "invite", "email": "a@b.co", "team": 1 }),
            &known,
        );
        assert!(result.reason.unwrap().contains("\"team\" is not a field"));
    }

    #[test]
    fn an_unknown_email_is_not_found_and_sends_nothing() {
        let (result, chains) = planned(
            serde_json::json!({ "action": "deactivate", "email": "Gone@Example.com" }),
            &directory(&[]),
        );
        assert_eq!(result.code.as_deref(), Some("not_found"));
        assert_eq!(result.email.as_deref(), Some("gone@example.com"));
        assert!(chains.chains.is_empty());
    }

    #[test]
    fn rows_about_one_member_share_a_chain_in_upload_order() {
        let ann = Uuid::now_v7();
        let known = directory(&[("ann@example.com", ann)]);
        let rows = [
            serde_json::json!({ "action": "deactivate", "email": "ann@example.com" }),
            serde_json::json!({ "action": "invite", "email": "bob@example.com" }),
            serde_json::json!({ "action": "reactivate", "user_id": ann }),
        ];
        let (results, chains) = plan_all(rows.into_iter().map(json_row).collect(), &known);
        assert_eq!(results[2].email.as_deref(), Some("ann@example.com"));
        let order: Vec<Vec<usize>> = chains
            .chains
            .iter()
            .map(|c| c.iter().map(|t| t.index).collect())
            .collect();
        assert_eq!(order, [vec![0, 2], vec![1]]);
        assert_eq!(chains.chains[0][1].ty, org::REACTIVATE_MEMBER);
    }

    #[test]
    fn the_openapi_document_takes_json_and_csv() {
        let (_, doc) = crate::v1();
        let doc = serde_json::to_value(&doc).unwrap();
        let post = &doc["paths"]["/orgs/{id}/members/bulk"]["post"];
        let content = &post["requestBody"]["content"];
        assert!(content["application/json"].is_object(), "{post}");
        assert!(content["text/csv"].is_object(), "{post}");
        assert_eq!(post["tags"], serde_json::json!(["members"]));
        let schemas = &doc["components"]["schemas"];
        for schema in [
            "BulkOperation",
            "BulkAction",
            "BulkResults",
            "BulkRowResult",
        ] {
            assert!(
                schemas[schema].is_object(),
                "{schema} is not in the document"
            );
        }
    }
}
