//! Topic names for a prefix, and the admin commands that create and describe them.

use crate::error::{Result, kafka};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;
use tributary_domain::AGGREGATES;

const WEEK_MS: &str = "604800000";
const MONTH_MS: &str = "2592000000";
/// The largest document record: 64 MiB. Bigger documents fail as that one document.
pub const DOCUMENT_MAX_BYTES: usize = 64 * 1024 * 1024;
const DOCUMENT_MAX_BYTES_TEXT: &str = "67108864";
/// How many delay topics sit between the documents topic and the dead-letter topic
/// (`<prefix>.documents.retry.1` to `.retry.3`); the deliverer's configuration says how
/// long each one holds a record.
pub const RETRY_LEVELS: u8 = 3;

/// The topic names of one Tributary installation, all under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

/// What a topic is for; decides its retention and cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRole {
    /// Commands: kept 30 days, long enough to audit and replay recent input.
    Commands,
    /// Events: the source of truth, kept forever, never compacted.
    Events,
    /// Latest snapshot per aggregate: compacted.
    State,
    /// Outcomes by command id: compacted, and dropped after a week, which is the window
    /// in which a repeated command id is recognised.
    CommandResults,
    /// Records that need a human: kept until redriven.
    DeadLetters,
    /// Document changes between workers and deliverers: a week, so a stopped deliverer
    /// can catch up; large records allowed, so a document of tens of megabytes passes.
    Documents,
    /// The latest change of each document, without its content (key `<profile>/<doc
    /// id>`, CloudEvents headers, an empty value for an upsert and a tombstone for a
    /// deletion): compacted, so what was delivered is known for as long as the
    /// installation lives, not only for the documents topic's week.
    Index,
    /// Document records waiting for their next delivery attempt after a transient
    /// failure: like documents (a week is far longer than any delay, so a stopped
    /// deliverer loses nothing), large records allowed.
    Delay,
}

impl TopicRole {
    pub fn configs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Commands => &[("cleanup.policy", "delete"), ("retention.ms", MONTH_MS)],
            Self::Events | Self::DeadLetters => &[
                ("cleanup.policy", "delete"),
                ("retention.ms", "-1"),
                ("retention.bytes", "-1"),
            ],
            Self::State => &[
                ("cleanup.policy", "compact"),
                ("min.cleanable.dirty.ratio", "0.1"),
            ],
            Self::CommandResults => &[
                ("cleanup.policy", "compact,delete"),
                ("retention.ms", WEEK_MS),
            ],
            Self::Index => &[
                ("cleanup.policy", "compact"),
                ("min.cleanable.dirty.ratio", "0.5"),
            ],
            Self::Documents | Self::Delay => &[
                ("cleanup.policy", "delete"),
                ("retention.ms", WEEK_MS),
                ("max.message.bytes", DOCUMENT_MAX_BYTES_TEXT),
            ],
        }
    }
}

impl Topics {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn commands(&self, aggregate: &str) -> String {
        format!("{}.{aggregate}.commands", self.prefix)
    }

    pub fn events(&self, aggregate: &str) -> String {
        format!("{}.{aggregate}.events", self.prefix)
    }

    pub fn state(&self, aggregate: &str) -> String {
        format!("{}.{aggregate}.state", self.prefix)
    }

    pub fn command_results(&self) -> String {
        format!("{}.command-results", self.prefix)
    }

    pub fn dead_letters(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    /// Security events that are no aggregate's state change (failed logins): written by
    /// the API, kept forever like events.
    pub fn security(&self) -> String {
        format!("{}.security.events", self.prefix)
    }

    /// Key events (data keys created, KEK re-wraps, shredding), relayed from the vault's
    /// outbox; kept forever like events.
    pub fn vault(&self) -> String {
        format!("{}.vault.events", self.prefix)
    }

    /// Document changes written by workers, read by deliverers.
    pub fn documents(&self) -> String {
        format!("{}.documents", self.prefix)
    }

    /// One small record per document change, written with it in the same transaction:
    /// the source of the `documents` read model (pruning), see [`TopicRole::Index`].
    pub fn documents_index(&self) -> String {
        format!("{}.documents.index", self.prefix)
    }

    /// Document deliveries that need a human (permanent errors, retries exhausted).
    pub fn documents_dead_letters(&self) -> String {
        format!("{}.documents.dead-letters", self.prefix)
    }

    /// Delay topic `level` (1 to [`RETRY_LEVELS`]): document records, each narrowed to
    /// the one target that failed, waiting until their `retry_not_before` time.
    pub fn documents_retry(&self, level: u8) -> String {
        format!("{}.documents.retry.{level}", self.prefix)
    }

    /// What happened to document dead letters (recorded, redriven), as CloudEvents: the
    /// source of the `dead_letters` read model. Kept forever like events; the dead
    /// letters themselves stay in [`Self::documents_dead_letters`].
    pub fn dead_letter_events(&self) -> String {
        format!("{}.dead-letter.events", self.prefix)
    }

    /// The aggregate whose command topic this is, if it is one.
    pub fn aggregate_of_commands<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic
            .strip_prefix(&self.prefix)?
            .strip_prefix('.')?
            .strip_suffix(".commands")
    }

    /// Every topic of the installation with its role.
    pub fn all(&self) -> Vec<(String, TopicRole)> {
        let mut topics = Vec::new();
        for aggregate in AGGREGATES {
            topics.push((self.commands(aggregate), TopicRole::Commands));
            topics.push((self.events(aggregate), TopicRole::Events));
            topics.push((self.state(aggregate), TopicRole::State));
        }
        topics.push((self.command_results(), TopicRole::CommandResults));
        topics.push((self.dead_letters(), TopicRole::DeadLetters));
        topics.push((self.security(), TopicRole::Events));
        topics.push((self.vault(), TopicRole::Events));
        topics.push((self.documents(), TopicRole::Documents));
        topics.push((self.documents_index(), TopicRole::Index));
        for level in 1..=RETRY_LEVELS {
            topics.push((self.documents_retry(level), TopicRole::Delay));
        }
        topics.push((self.documents_dead_letters(), TopicRole::DeadLetters));
        topics.push((self.dead_letter_events(), TopicRole::Events));
        topics
    }
}

/// Creates, lists and describes the installation's topics.
pub struct TopicAdmin {
    admin: AdminClient<DefaultClientContext>,
    topics: Topics,
}

/// What `topics create` did with one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    AlreadyExisted,
}

#[derive(Debug, Clone)]
pub struct TopicDescription {
    pub name: String,
    pub partitions: usize,
    pub configs: Vec<(String, String)>,
}

impl TopicAdmin {
    pub fn new(config: &ClientConfig, topics: Topics) -> Result<Self> {
        let admin = config
            .create()
            .map_err(kafka("creating the admin client"))?;
        Ok(Self { admin, topics })
    }

    fn options() -> AdminOptions {
        AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
    }

    /// Creates every topic that is missing; all commands, events and state topics get
    /// the same partition count, so one aggregate id lands on the same partition number
    /// everywhere (co-partitioning).
    pub async fn create(
        &self,
        partitions: i32,
        replication: i32,
    ) -> Result<Vec<(String, Created)>> {
        let all = self.topics.all();
        let new: Vec<NewTopic<'_>> = all
            .iter()
            .map(|(name, role)| {
                role.configs().iter().fold(
                    NewTopic::new(name, partitions, TopicReplication::Fixed(replication)),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let results = self
            .admin
            .create_topics(&new, &Self::options())
            .await
            .map_err(kafka("creating topics"))?;
        results
            .into_iter()
            .map(|r| match r {
                Ok(name) => Ok((name, Created::Created)),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    Ok((name, Created::AlreadyExisted))
                }
                Err((topic, code)) => Err(crate::Error::TopicCreate {
                    topic,
                    reason: code.to_string(),
                }),
            })
            .collect()
    }

    /// Deletes every topic of the installation (tests and `topics delete`).
    pub async fn delete(&self) -> Result<()> {
        let names: Vec<String> = self.topics.all().into_iter().map(|(n, _)| n).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.admin
            .delete_topics(&refs, &Self::options())
            .await
            .map_err(kafka("deleting topics"))?;
        Ok(())
    }

    /// The installation's topics that exist, with their partition counts.
    pub fn list(&self) -> Result<Vec<(String, usize)>> {
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))
            .map_err(kafka("fetching metadata"))?;
        let prefix = format!("{}.", self.topics.prefix());
        let mut topics: Vec<(String, usize)> = metadata
            .topics()
            .iter()
            .filter(|t| t.name().starts_with(&prefix))
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect();
        topics.sort();
        Ok(topics)
    }

    pub async fn describe(&self) -> Result<Vec<TopicDescription>> {
        let listed = self.list()?;
        let specifiers: Vec<ResourceSpecifier<'_>> = listed
            .iter()
            .map(|(name, _)| ResourceSpecifier::Topic(name))
            .collect();
        let configs = self
            .admin
            .describe_configs(&specifiers, &Self::options())
            .await
            .map_err(kafka("describing topic configs"))?;
        let interesting = [
            "cleanup.policy",
            "retention.ms",
            "retention.bytes",
            "min.insync.replicas",
        ];
        Ok(listed
            .into_iter()
            .zip(configs)
            .map(|((name, partitions), config)| TopicDescription {
                name,
                partitions,
                configs: config
                    .map(|c| {
                        c.entries
                            .into_iter()
                            .filter(|e| interesting.contains(&e.name.as_str()))
                            .map(|e| (e.name, e.value.unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let topics = Topics::new("t1");
        assert_eq!(topics.commands("org"), "t1.org.commands");
        assert_eq!(topics.aggregate_of_commands("t1.org.commands"), Some("org"));
        assert_eq!(topics.aggregate_of_commands("t2.org.commands"), None);
        assert_eq!(topics.aggregate_of_commands("t1.org.events"), None);
    }

    #[test]
    fn delay_topics_sit_between_documents_and_dead_letters() {
        let topics = Topics::new("t1");
        let all = topics.all();
        for level in 1..=RETRY_LEVELS {
            let name = format!("t1.documents.retry.{level}");
            assert_eq!(topics.documents_retry(level), name);
            assert!(all.contains(&(name, TopicRole::Delay)));
        }
        // A delayed record is a whole document: the delay topics take what the
        // documents topic takes, and keep it longer than any delay.
        assert_eq!(TopicRole::Delay.configs(), TopicRole::Documents.configs());
        assert!(
            TopicRole::Delay
                .configs()
                .contains(&("max.message.bytes", DOCUMENT_MAX_BYTES_TEXT))
        );
        assert!(all.contains(&("t1.dead-letter.events".to_owned(), TopicRole::Events)));
        assert!(all.contains(&(
            "t1.documents.dead-letters".to_owned(),
            TopicRole::DeadLetters
        )));
    }

    #[test]
    fn events_are_kept_forever_and_never_compacted() {
        let configs = TopicRole::Events.configs();
        assert!(configs.contains(&("retention.ms", "-1")));
        assert!(configs.contains(&("cleanup.policy", "delete")));
        assert!(
            TopicRole::State
                .configs()
                .contains(&("cleanup.policy", "compact"))
        );
    }
}
