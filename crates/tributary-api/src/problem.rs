//! API errors as RFC 9457 `application/problem+json`. 5xx bodies carry no internals;
//! the cause is logged here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The command this problem answers, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// Every field that is wrong, each with its JSON pointer, so all can be fixed at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

/// One violation of a JSON Schema: where (a JSON pointer into the request) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// E.g. `/config/path`; `/` for the whole value.
    pub pointer: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Invalid { detail: String },
    /// Invalid, with every offending field listed (422, `invalid`).
    #[error("{detail}")]
    InvalidFields {
        detail: String,
        errors: Vec<FieldProblem>,
    },
    #[error("{what} was not found")]
    NotFound { what: String },
    #[error("{detail}")]
    Rejected {
        status: StatusCode,
        code: String,
        detail: String,
        command_id: String,
    },
    /// No credential, or one that is not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Signed in, but the role does not allow it (403).
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed attempts; try again after the delay (429).
    #[error("too many failed attempts; try again in {} seconds", .0.as_secs().max(1))]
    Throttled(std::time::Duration),
    #[error("the command log is unavailable: {0}")]
    Kafka(String),
    #[error("the read model is unavailable: {0}")]
    Store(#[from] tributary_store::Error),
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } | Self::InvalidFields { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Rejected { status, .. } => *status,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Kafka(_) | Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::Invalid { .. } | Self::InvalidFields { .. } => "invalid",
            Self::NotFound { .. } => "not_found",
            Self::Rejected { code, .. } => code,
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::Throttled(_) => "throttled",
            Self::Kafka(_) | Self::Store(_) => "unavailable",
        }
    }
}

/// The HTTP status for a rejection code from the processor.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "slug_taken" | "email_taken" | "conflict" | "last_admin" => StatusCode::CONFLICT,
        "not_found" => StatusCode::NOT_FOUND,
        "not_allowed" => StatusCode::FORBIDDEN,
        "invitation_invalid" => StatusCode::GONE,
        "session_invalid" => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let detail = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "the service is temporarily unavailable; retry with backoff".to_owned()
        } else {
            self.to_string()
        };
        let problem = Problem {
            kind: format!("https://tributary.dev/problems/{}", self.code()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail,
            command_id: match &self {
                Self::Rejected { command_id, .. } if !command_id.is_empty() => {
                    Some(command_id.clone())
                }
                _ => None,
            },
            errors: match &self {
                Self::InvalidFields { errors, .. } => errors.clone(),
                _ => Vec::new(),
            },
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tributary\""),
            );
        }
        if let Self::Throttled(wait) = &self
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
