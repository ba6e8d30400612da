//! Tenant-scoped reads: a transaction in which row-level security shows one org's rows.

use crate::error::{Result, pg};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

/// Whose data a transaction may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub org: Uuid,
    /// The user acting, if a person (an API key has none).
    pub user: Option<Uuid>,
}

/// Starts a read transaction as `tributary_app` with `app.current_org` (and
/// `app.current_user`) set for this transaction only: a pooled connection never
/// carries one caller's scope into the next.
pub async fn begin(client: &mut Client, scope: Scope) -> Result<Transaction<'_>> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(pg("starting a tenant transaction"))?;
    let user = scope.user.map(|u| u.to_string()).unwrap_or_default();
    tx.execute(
        "SELECT set_config('role', 'tributary_app', true),
                set_config('app.current_org', $1, true),
                set_config('app.current_user', $2, true)",
        &[&scope.org.to_string(), &user],
    )
    .await
    .map_err(pg("entering the tenant scope"))?;
    Ok(tx)
}
