//! Tributary's log: the CloudEvents envelope on Kafka, topic names and admin, client
//! settings, and the transactional command processor.

pub mod client;
pub mod consume;
pub mod dead_letter;
pub mod envelope;
pub mod error;
pub mod processor;
pub mod reader;
pub mod topics;

pub use envelope::Envelope;
pub use error::{Error, Result};
pub use topics::Topics;
