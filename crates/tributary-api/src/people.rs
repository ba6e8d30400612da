//! Personal data at the gateway: addresses become blind indexes before they key a
//! command, and addresses, names and password hashes are sealed under the person's own
//! key (an invitee's address under the org's) before a command is produced. Answers open
//! them again; a value whose key was shredded shows as `None` ("forgotten"), never as an
//! error.

use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;
use tributary_store::vault::VaultFailure;
use tributary_vault::KeyScope;
use uuid::Uuid;

pub(crate) fn vault_error(e: VaultFailure) -> ApiError {
    if e.is_shredded() {
        return ApiError::Rejected {
            status: axum::http::StatusCode::GONE,
            code: "shredded".into(),
            detail: e.to_string(),
            command_id: String::new(),
        };
    }
    tracing::error!(error = %e, "the vault failed");
    ApiError::Kafka(format!(
        "the vault could not complete the operation ({e}); try again, and if it persists check \
         TRIBUTARY_KEK and the key store"
    ))
}

/// The blind index of a normalized address.
pub(crate) async fn email_index(state: &AppState, normalized: &str) -> ApiResult<String> {
    state
        .vault
        .email_index(normalized)
        .await
        .map_err(vault_error)
}

/// A new user's address, name and password hash, sealed under the user's own key.
pub(crate) struct SealedProfile {
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) password_hash: String,
}

pub(crate) async fn seal_profile(
    state: &AppState,
    user: Uuid,
    email: &str,
    name: &str,
    password_hash: &str,
) -> ApiResult<SealedProfile> {
    let mut sealed = state
        .vault
        .seal(
            KeyScope::User(user),
            &user.to_string(),
            &[
                ("email", email.as_bytes()),
                ("name", name.as_bytes()),
                ("password_hash", password_hash.as_bytes()),
            ],
            &format!("user:{user}"),
        )
        .await
        .map_err(vault_error)?
        .into_iter();
    let mut next = || sealed.next().unwrap_or_default();
    Ok(SealedProfile {
        email: next(),
        name: next(),
        password_hash: next(),
    })
}

/// An invitee's address, sealed under the org's key (the invitee is no user yet).
pub(crate) async fn seal_invitee(
    state: &AppState,
    org: Uuid,
    invitation: Uuid,
    email: &str,
    actor: &str,
) -> ApiResult<String> {
    let sealed = state
        .vault
        .seal(
            KeyScope::Org(org),
            &invitation.to_string(),
            &[("email", email.as_bytes())],
            actor,
        )
        .await
        .map_err(vault_error)?;
    Ok(sealed.into_iter().next().unwrap_or_default())
}

/// Opens one sealed field; `None` when there is none or its key was shredded (the
/// person was forgotten, the org deleted). Other failures are errors.
pub(crate) async fn open(
    state: &AppState,
    scope: KeyScope,
    record: Uuid,
    field: &str,
    sealed: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    match state
        .vault
        .open(scope, &record.to_string(), field, sealed)
        .await
    {
        Ok(plain) => Ok(Some(String::from_utf8_lossy(&plain).into_owned())),
        Err(e) if e.is_shredded() => Ok(None),
        Err(e) => Err(vault_error(e)),
    }
}

/// A user's own sealed field (`email`, `name`, `password_hash`).
pub(crate) async fn open_user(
    state: &AppState,
    user: Uuid,
    field: &str,
    sealed: Option<&str>,
) -> ApiResult<Option<String>> {
    open(state, KeyScope::User(user), user, field, sealed).await
}

/// Whether `password` is the user's own: the sealed hash is opened and checked off the
/// async threads. A forgotten user has no password left.
pub(crate) async fn confirm_password(
    state: &AppState,
    user: Uuid,
    password: tributary_vault::Secret,
) -> ApiResult<bool> {
    let sealed = {
        let client = state.db.get().await.map_err(tributary_store::Error::from)?;
        tributary_store::credentials::password_hash(&**client, user).await?
    };
    let Some(hash) = open_user(state, user, "password_hash", sealed.as_deref()).await? else {
        return Ok(false);
    };
    Ok(tokio::task::spawn_blocking(move || {
        tributary_auth::password::verify(password.expose(), &hash)
    })
    .await
    .unwrap_or(false))
}
