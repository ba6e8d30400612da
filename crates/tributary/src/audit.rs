//! `tributary audit`: answers the audit questions (who created, tested, rotated,
//! revealed, deleted which credential; which keys were rotated or shredded) by replaying
//! the log alone — no read model involved, so it also checks the read model.

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;
use tributary_log::client::KafkaSettings;
use tributary_log::{Envelope, Topics};
use tributary_store::projection::{AuditRecord, audit_entry};
use uuid::Uuid;

/// What to look for; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub org: Uuid,
    pub credential: Option<Uuid>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Query {
    fn matches(&self, e: &AuditRecord) -> bool {
        // Installation-wide key events (KEK rotations) concern every org.
        e.org_id.is_none_or(|o| o == self.org)
            && self.credential.is_none_or(|c| e.credential_id == Some(c))
            && self
                .actor
                .as_deref()
                .is_none_or(|a| e.actor.as_deref() == Some(a))
            && self.action.as_deref().is_none_or(|a| e.action == a)
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at < u)
    }
}

/// Replays the credential and vault topics from the beginning; entries oldest first.
pub fn replay(
    kafka: &KafkaSettings,
    topics: &Topics,
    query: &Query,
) -> anyhow::Result<Vec<AuditRecord>> {
    let consumer: BaseConsumer = kafka.reader().create().context("creating a reader")?;
    let mut found = Vec::new();
    for topic in [topics.events("credential"), topics.vault()] {
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .with_context(|| format!("reading the partitions of {topic}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        tributary_log::reader::read_to_end(&kafka.reader(), &topic, &partitions, |message| {
            let Ok(env) =
                Envelope::decode(message.headers(), message.payload().unwrap_or_default())
            else {
                return;
            };
            if let Some(entry) = audit_entry(&env)
                && query.matches(&entry)
            {
                found.push(entry);
            }
        })
        .with_context(|| format!("replaying {topic}"))?;
    }
    found.sort_by_key(|e| (e.at, e.id));
    Ok(found)
}
