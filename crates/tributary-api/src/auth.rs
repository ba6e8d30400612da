//! The authentication seam. Today every caller is anonymous; the identity issue
//! replaces `authenticate` with token and API-key checks and gives `Caller` a user, an
//! org and a role. Handlers already take a `Caller`, so none of them changes.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::convert::Infallible;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
}

/// Middleware: establishes who is calling and stores it for the handlers.
pub async fn authenticate(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(Caller::Anonymous);
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Anonymous))
    }
}
