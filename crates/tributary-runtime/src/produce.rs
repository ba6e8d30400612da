//! Commands from Tributary's own background roles (keeper, refresher, worker, monitor,
//! scheduler): produced like an upstream system would, and their outcomes read from the
//! commands read model.

use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};
use tributary_domain::{CommandId, OrgId};
use tributary_log::{Envelope, Topics};
use tributary_store::Db;
use tributary_store::queries::{self, CommandRow};

/// Produces command `ty` for aggregate `aggregate` keyed by `key`.
pub async fn command(
    producer: &FutureProducer,
    topics: &Topics,
    source: &str,
    target: (&str, &str),
    ty: &str,
    org: impl Into<Option<OrgId>>,
    data: &serde_json::Value,
) -> anyhow::Result<CommandId> {
    let id = CommandId::new();
    command_with_id(producer, topics, source, target, ty, org, data, id).await
}

/// [`command`] with a given id: a command sent again under the same id (by a retry, or
/// by another process deciding the same thing) gets the first outcome and changes
/// nothing more.
#[allow(clippy::too_many_arguments)]
pub async fn command_with_id(
    producer: &FutureProducer,
    topics: &Topics,
    source: &str,
    (aggregate, key): (&str, &str),
    ty: &str,
    org: impl Into<Option<OrgId>>,
    data: &serde_json::Value,
    id: CommandId,
) -> anyhow::Result<CommandId> {
    let mut env = Envelope::new(source, ty, serde_json::to_vec(data)?);
    env.id = id.to_string();
    env.subject = Some(key.to_owned());
    env.org_id = org.into();
    let topic = topics.commands(aggregate);
    producer
        .send(
            FutureRecord::to(&topic)
                .key(key)
                .payload(&env.data)
                .headers(env.encode_headers()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("producing {ty}: {e}"))?;
    Ok(id)
}

/// The command's outcome once it is known, or `None` after `wait`.
pub async fn outcome(db: &Db, id: CommandId, wait: Duration) -> anyhow::Result<Option<CommandRow>> {
    let deadline = Instant::now() + wait;
    loop {
        let row = {
            let client = db.get().await?;
            queries::command(&**client, id.0).await?
        };
        if let Some(row) = row.filter(|r| r.status != "pending") {
            return Ok(Some(row));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
