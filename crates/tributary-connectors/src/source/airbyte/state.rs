//! The source's STATE messages, kept per stream (or global, or legacy) as the checkpoint,
//! and turned back into the `--state` file on the next read.
//!
//! Checkpoint format (version 1):
//!
//! ```json
//! { "v": 1,
//!   "states": [ { "type": "STREAM", "stream": { "stream_descriptor": { "name": "users" },
//!                                               "stream_state": { "updated_at": "…" } } } ],
//!   "records": 1200 }
//! ```
//!
//! `states` holds the last state message of each stream, the last GLOBAL one and the last
//! LEGACY one, as the source sent them minus their statistics; `records` is how many
//! records the run had produced when the checkpoint was taken.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::source::{Result, SourceError};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) v: u32,
    #[serde(default)]
    pub(crate) states: Vec<Value>,
    #[serde(default)]
    pub(crate) records: u64,
}

impl Checkpoint {
    pub(crate) fn to_value(&self) -> Value {
        json!({ "v": self.v, "states": self.states, "records": self.records })
    }

    pub(crate) fn from_value(value: &Value) -> Result<Self> {
        let checkpoint: Self =
            serde_json::from_value(value.clone()).map_err(|e| SourceError::Failed {
                message: format!(
                    "the airbyte checkpoint is not understood ({e}); start a full run to replace it"
                ),
            })?;
        if checkpoint.v != 1 {
            return Err(SourceError::Failed {
                message: format!(
                    "the airbyte checkpoint has version {}, which this build does not know; start a full run to replace it",
                    checkpoint.v
                ),
            });
        }
        Ok(checkpoint)
    }
}

/// Which state a message replaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Global,
    Legacy,
    Stream {
        namespace: Option<String>,
        name: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StateStore {
    states: BTreeMap<Key, Value>,
}

impl StateStore {
    pub(crate) fn from_states(states: &[Value]) -> Self {
        let mut store = Self::default();
        for s in states {
            store.apply(s.clone());
        }
        store
    }

    /// Records a state message; the last one per stream wins.
    pub(crate) fn apply(&mut self, mut state: Value) {
        if let Value::Object(fields) = &mut state {
            // Counts of this sync, meaningless when the state is read back later.
            fields.remove("sourceStats");
            fields.remove("destinationStats");
        }
        let key = match state.get("type").and_then(Value::as_str) {
            Some("GLOBAL") => Key::Global,
            Some("STREAM") => {
                let descriptor = state.pointer("/stream/stream_descriptor");
                Key::Stream {
                    name: descriptor
                        .and_then(|d| d.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    namespace: descriptor
                        .and_then(|d| d.get("namespace"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                }
            }
            // LEGACY, or a message from before state types existed.
            _ => Key::Legacy,
        };
        self.states.insert(key, state);
    }

    /// Forgets the state of the named streams (full-refresh streams start over each run).
    pub(crate) fn forget_streams(&mut self, streams: &[(Option<String>, String)]) {
        self.states.retain(|key, _| match key {
            Key::Stream { namespace, name } => {
                !streams.iter().any(|(ns, n)| ns == namespace && n == name)
            }
            Key::Global | Key::Legacy => true,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub(crate) fn to_vec(&self) -> Vec<Value> {
        self.states.values().cloned().collect()
    }

    /// The content of the `--state` file: a JSON array of state messages, or the bare
    /// legacy state object for sources that only ever sent one.
    pub(crate) fn state_file(&self) -> Value {
        if let [(Key::Legacy, legacy)] = self.states.iter().collect::<Vec<_>>().as_slice()
            && let Some(data) = legacy.get("data")
        {
            return data.clone();
        }
        Value::Array(
            self.states
                .iter()
                .filter(|(k, _)| **k != Key::Legacy)
                .map(|(_, v)| v.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_state(name: &str, cursor: u64) -> Value {
        json!({ "type": "STREAM", "stream": { "stream_descriptor": { "name": name }, "stream_state": { "c": cursor } }, "sourceStats": { "recordCount": 2.0 } })
    }

    #[test]
    fn keeps_the_last_state_per_stream_without_stats() {
        let mut store = StateStore::default();
        store.apply(stream_state("a", 1));
        store.apply(stream_state("b", 1));
        store.apply(stream_state("a", 2));
        let states = store.to_vec();
        assert_eq!(states.len(), 2);
        assert_eq!(states[0]["stream"]["stream_state"]["c"], 2);
        assert!(states[0].get("sourceStats").is_none());
        assert_eq!(store.state_file(), Value::Array(states.clone()));
        store.forget_streams(&[(None, "a".into())]);
        assert_eq!(store.to_vec(), [states[1].clone()]);
    }

    #[test]
    fn a_lone_legacy_state_is_written_bare() {
        let mut store = StateStore::default();
        store.apply(json!({ "type": "LEGACY", "data": { "cursor": 5 } }));
        assert_eq!(store.state_file(), json!({ "cursor": 5 }));
    }

    #[test]
    fn checkpoints_round_trip_and_reject_unknown_versions() {
        let c = Checkpoint {
            v: 1,
            states: vec![stream_state("a", 1)],
            records: 7,
        };
        assert_eq!(Checkpoint::from_value(&c.to_value()).unwrap(), c);
        assert!(Checkpoint::from_value(&json!({ "v": 2 })).is_err());
        assert!(Checkpoint::from_value(&json!("x")).is_err());
    }
}
