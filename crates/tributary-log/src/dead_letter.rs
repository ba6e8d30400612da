//! Dead-letter records: the original key, value and headers, plus `dlq_*` headers that
//! say where the record came from and why it could not be handled. Messages put here
//! must already be redacted by the caller.

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Why and where a record failed.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub attempts: u32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    /// A stable, machine-readable class (`malformed`, `invalid`, `http_4xx`, …).
    pub error_class: &'a str,
    /// A human sentence, never containing a secret.
    pub message: &'a str,
    /// Which stage failed (`processor`, `deliverer`, …).
    pub stage: &'a str,
    pub org_id: Option<String>,
    pub command_id: Option<String>,
}

pub const H_TOPIC: &str = "dlq_original_topic";
pub const H_PARTITION: &str = "dlq_original_partition";
pub const H_OFFSET: &str = "dlq_original_offset";
pub const H_ATTEMPTS: &str = "dlq_attempts";
pub const H_FIRST: &str = "dlq_first_failure";
pub const H_LAST: &str = "dlq_last_failure";
pub const H_CLASS: &str = "dlq_error_class";
pub const H_MESSAGE: &str = "dlq_error_message";
pub const H_STAGE: &str = "dlq_stage";
pub const H_ORG: &str = "dlq_org_id";
pub const H_COMMAND: &str = "dlq_command_id";

impl DeadLetter<'_> {
    /// The original headers followed by the dead-letter context.
    pub fn headers<H: Headers>(&self, original: Option<&H>) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = original {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let fields = [
            (H_TOPIC, Some(self.topic.to_owned())),
            (H_PARTITION, Some(self.partition.to_string())),
            (H_OFFSET, Some(self.offset.to_string())),
            (H_ATTEMPTS, Some(self.attempts.to_string())),
            (H_FIRST, Some(time(self.first_failure))),
            (H_LAST, Some(time(self.last_failure))),
            (H_CLASS, Some(self.error_class.to_owned())),
            (H_MESSAGE, Some(self.message.to_owned())),
            (H_STAGE, Some(self.stage.to_owned())),
            (H_ORG, self.org_id.clone()),
            (H_COMMAND, self.command_id.clone()),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
        }
        headers
    }
}
