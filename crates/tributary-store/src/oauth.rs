//! OAuth authorizations in flight (`oauth_flows`, migration V5): operational rows that
//! make each `state` single-use and say what its tokens are for.

use crate::error::{Result, pg};
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub nonce: Uuid,
    pub provider: String,
    pub org_id: Uuid,
    pub user_id: Uuid,
    /// The credential the tokens go to: a new one with this id, or the one reconnected.
    pub credential_id: Uuid,
    pub name: String,
    pub reconnect: bool,
    pub expires_at: DateTime<Utc>,
}

pub async fn start(client: &impl GenericClient, flow: &Flow) -> Result<()> {
    client
        .execute(
            "INSERT INTO oauth_flows (nonce, provider, org_id, user_id, credential_id, name, \
             reconnect, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &flow.nonce,
                &flow.provider,
                &flow.org_id,
                &flow.user_id,
                &flow.credential_id,
                &flow.name,
                &flow.reconnect,
                &flow.expires_at,
            ],
        )
        .await
        .map_err(pg("recording an OAuth authorization"))?;
    // Housekeeping: flows a day past their expiry are of no use to anyone.
    client
        .execute(
            "DELETE FROM oauth_flows WHERE expires_at < now() - interval '1 day'",
            &[],
        )
        .await
        .map_err(pg("pruning old OAuth authorizations"))?;
    Ok(())
}

/// Marks the flow used and returns it; `None` when it is unknown or was used before
/// (exactly one callback can win, however many race).
pub async fn take(client: &impl GenericClient, nonce: Uuid) -> Result<Option<Flow>> {
    let row = client
        .query_opt(
            "UPDATE oauth_flows SET used_at = now() WHERE nonce = $1 AND used_at IS NULL \
             RETURNING nonce, provider, org_id, user_id, credential_id, name, reconnect, expires_at",
            &[&nonce],
        )
        .await
        .map_err(pg("claiming an OAuth authorization"))?;
    Ok(row.map(|r| Flow {
        nonce: r.get(0),
        provider: r.get(1),
        org_id: r.get(2),
        user_id: r.get(3),
        credential_id: r.get(4),
        name: r.get(5),
        reconnect: r.get(6),
        expires_at: r.get(7),
    }))
}
