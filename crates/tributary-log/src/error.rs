use rdkafka::error::KafkaError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kafka error while {action}: {source}")]
    Kafka {
        action: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("the record is not a valid CloudEvent: {0}")]
    Envelope(#[from] crate::envelope::DecodeError),
    #[error("could not encode {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("topic {topic} could not be created: {reason}")]
    TopicCreate { topic: String, reason: String },
    #[error(
        "this processor was fenced by a newer instance with the same transactional id; \
         it stops so that only one writer remains"
    )]
    Fenced,
}

pub(crate) fn kafka(action: &'static str) -> impl FnOnce(KafkaError) -> Error {
    move |source| Error::Kafka { action, source }
}
