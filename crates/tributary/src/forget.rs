//! `tributary users forget <id>`: an operator forgets a user (a data-subject request
//! that reaches the operator rather than the app). The same steps as the API's
//! `POST /auth/forget-me`: leave every org, `user.forget`, shred the user's key.

use crate::produce;
use anyhow::{Context, bail};
use rdkafka::producer::FutureProducer;
use std::time::Duration;
use tributary_domain::{OrgId, RejectionCode, org, user};
use tributary_log::Topics;
use tributary_store::Db;
use tributary_store::accounts;
use tributary_store::vault::Vault;
use tributary_vault::KeyScope;
use uuid::Uuid;

const SOURCE: &str = "tributary://cli";
const ACTOR: &str = "system:cli";
const WAIT: Duration = Duration::from_secs(30);

/// Forgets `user_id`; `progress` hears each step. Refuses, changing nothing, when the
/// user is the last admin of an org.
pub async fn forget_user(
    db: &Db,
    vault: &Vault,
    producer: &FutureProducer,
    topics: &Topics,
    user_id: Uuid,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<()> {
    let (last_admin, memberships, known) = {
        let client = db.get().await?;
        (
            accounts::orgs_where_last_admin(&**client, user_id).await?,
            accounts::memberships_of(&**client, &[user_id]).await?,
            accounts::user_email_index(&**client, user_id).await?,
        )
    };
    if !last_admin.is_empty() {
        bail!(
            "user {user_id} is the last admin of {}; make someone else admin there (or delete \
             the org) first",
            last_admin.join(", ")
        );
    }
    if known.is_none() && memberships.is_empty() {
        bail!("user {user_id} is not known here, or was already forgotten");
    }
    for m in memberships {
        let key = m.org_id.to_string();
        let data = serde_json::json!({ "org_id": m.org_id, "user_id": user_id });
        let id = produce::command(
            producer,
            topics,
            SOURCE,
            ("org", &key),
            org::REMOVE_MEMBER,
            OrgId(m.org_id),
            &data,
        )
        .await?;
        let row = produce::outcome(db, id, WAIT).await?.with_context(|| {
            format!("no answer from the processor within {WAIT:?}; is it running?")
        })?;
        let slug = m.slug.unwrap_or(key);
        match (row.status.as_str(), row.code.as_deref()) {
            ("accepted", _) => progress(&format!("left {slug}")),
            (_, Some(code)) if code == RejectionCode::NotFound.as_str() => {}
            _ => bail!(
                "could not remove the user from {slug}: {}",
                row.reason.unwrap_or_default()
            ),
        }
    }
    let key = user_id.to_string();
    let data = serde_json::json!({ "user_id": user_id, "actor": ACTOR });
    let id = produce::command(
        producer,
        topics,
        SOURCE,
        ("user", &key),
        user::FORGET,
        None,
        &data,
    )
    .await?;
    let row = produce::outcome(db, id, WAIT)
        .await?
        .with_context(|| format!("no answer from the processor within {WAIT:?}; is it running?"))?;
    if row.status != "accepted" {
        bail!(
            "the user was not forgotten: {}",
            row.reason.unwrap_or_default()
        );
    }
    progress("recorded user.forgotten and released the address");
    let versions = vault
        .shred(KeyScope::User(user_id), "user forgotten", ACTOR)
        .await?;
    progress(&format!("destroyed {} key version(s)", versions.len()));
    Ok(())
}
