//! Aggregate state held by the processor for its assigned partitions, with a staging
//! area so a batch's changes become visible only once its transaction commits.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tributary_domain::OrgId;
use tributary_domain::aggregate::{Aggregate, FollowUp, Rejection, RejectionCode};

/// The erased twin of [`Aggregate`], so one processor serves every aggregate kind.
pub trait Handler: Send {
    fn kind(&self) -> &'static str;
    fn accepts(&self, command_type: &str) -> bool;
    /// Loads one snapshot record from the state topic; `None` is a tombstone.
    fn load_snapshot(
        &mut self,
        partition: i32,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), String>;
    fn drop_partition(&mut self, partition: i32);
    /// Decides a command read from `partition` under record key `key`.
    fn handle(
        &mut self,
        partition: i32,
        key: &[u8],
        command_type: &str,
        data: serde_json::Value,
    ) -> Handled;
    fn commit(&mut self);
    fn abort(&mut self);
    /// How many aggregates are in memory.
    fn loaded(&self) -> usize;
}

/// What a handler decided, in the shape the processor writes to Kafka.
#[derive(Debug)]
pub enum Handled {
    Decided {
        aggregate_id: String,
        org_id: Option<OrgId>,
        /// `(type, data, version after this event)`.
        events: Vec<(&'static str, Vec<u8>, u64)>,
        version: u64,
        snapshot: Option<Vec<u8>>,
        follow_ups: Vec<FollowUp>,
        completes: bool,
    },
    Rejected {
        aggregate_id: Option<String>,
        org_id: Option<OrgId>,
        rejection: Rejection,
    },
}

#[derive(Serialize, Deserialize)]
struct Snapshot<S> {
    aggregate: String,
    id: String,
    version: u64,
    state: S,
}

type Versioned<S> = (u64, S);

pub struct AggregateStore<A: Aggregate> {
    committed: HashMap<i32, HashMap<String, Versioned<A::State>>>,
    staged: HashMap<(i32, String), Versioned<A::State>>,
}

impl<A: Aggregate> Default for AggregateStore<A> {
    fn default() -> Self {
        Self {
            committed: HashMap::new(),
            staged: HashMap::new(),
        }
    }
}

impl<A: Aggregate> AggregateStore<A> {
    fn current(&self, partition: i32, id: &str) -> Option<&Versioned<A::State>> {
        self.staged
            .get(&(partition, id.to_owned()))
            .or_else(|| self.committed.get(&partition)?.get(id))
    }
}

impl<A> Handler for AggregateStore<A>
where
    A: Aggregate + Send + 'static,
{
    fn kind(&self) -> &'static str {
        A::KIND
    }

    fn accepts(&self, command_type: &str) -> bool {
        A::COMMAND_TYPES.contains(&command_type)
    }

    fn load_snapshot(
        &mut self,
        partition: i32,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), String> {
        let states = self.committed.entry(partition).or_default();
        match value {
            None => {
                states.remove(key);
            }
            Some(bytes) => {
                let snapshot: Snapshot<A::State> = serde_json::from_slice(bytes)
                    .map_err(|e| format!("snapshot of {} {key} is unreadable: {e}", A::KIND))?;
                states.insert(key.to_owned(), (snapshot.version, snapshot.state));
            }
        }
        Ok(())
    }

    fn drop_partition(&mut self, partition: i32) {
        self.committed.remove(&partition);
        self.staged.retain(|(p, _), _| *p != partition);
    }

    fn handle(
        &mut self,
        partition: i32,
        key: &[u8],
        command_type: &str,
        data: serde_json::Value,
    ) -> Handled {
        let command = match A::parse_command(command_type, data) {
            Ok(c) => c,
            Err(rejection) => {
                return Handled::Rejected {
                    aggregate_id: None,
                    org_id: None,
                    rejection,
                };
            }
        };
        let id = A::target(&command);
        let org_id = A::org_of(&command);
        // One partition decides each aggregate, and the key picks the partition: a
        // command under another key may sit beside none of its aggregate's history.
        if key != id.as_bytes() {
            return Handled::Rejected {
                aggregate_id: Some(id.clone()),
                org_id,
                rejection: Rejection::new(
                    RejectionCode::Invalid,
                    format!(
                        "the record key {:?} is not the {} id {id:?}; produce commands keyed by the aggregate id",
                        String::from_utf8_lossy(key),
                        A::KIND
                    ),
                ),
            };
        }
        let current = self.current(partition, &id);
        let version = current.map_or(0, |(v, _)| *v);
        let decision = match A::decide(current.map(|(_, s)| s), &command) {
            Ok(d) => d,
            Err(rejection) => {
                return Handled::Rejected {
                    aggregate_id: Some(id),
                    org_id,
                    rejection,
                };
            }
        };
        let mut state = current.map(|(_, s)| s.clone());
        let mut next = version;
        let mut events = Vec::with_capacity(decision.events.len());
        for event in &decision.events {
            let data = match serde_json::to_vec(event) {
                Ok(d) => d,
                Err(e) => {
                    return Handled::Rejected {
                        aggregate_id: Some(id),
                        org_id,
                        rejection: Rejection::new(
                            RejectionCode::Invalid,
                            format!("the resulting event could not be encoded: {e}"),
                        ),
                    };
                }
            };
            next += 1;
            events.push((A::event_type(event), data, next));
            state = Some(A::evolve(state, event));
        }
        let snapshot = match state.filter(|_| next > version) {
            Some(state) => {
                let bytes = serde_json::to_vec(&Snapshot {
                    aggregate: A::KIND.to_owned(),
                    id: id.clone(),
                    version: next,
                    state: &state,
                })
                .ok();
                self.staged.insert((partition, id.clone()), (next, state));
                bytes
            }
            None => None,
        };
        Handled::Decided {
            aggregate_id: id,
            org_id,
            events,
            version: next,
            snapshot,
            follow_ups: decision.follow_ups,
            completes: decision.completes,
        }
    }

    fn commit(&mut self) {
        for ((partition, id), state) in self.staged.drain() {
            self.committed
                .entry(partition)
                .or_default()
                .insert(id, state);
        }
    }

    fn abort(&mut self) {
        self.staged.clear();
    }

    fn loaded(&self) -> usize {
        self.committed.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_domain::org::{self, Org};

    fn rename(id: OrgId, name: &str) -> serde_json::Value {
        serde_json::json!({ "org_id": id, "name": name })
    }

    #[test]
    fn staged_changes_are_visible_in_the_batch_and_dropped_on_abort() {
        let mut store = AggregateStore::<Org>::default();
        let id = OrgId::new();
        let register = serde_json::json!({ "org_id": id, "slug": "acme", "name": "Acme" });
        let Handled::Decided {
            version, snapshot, ..
        } = store.handle(
            0,
            id.to_string().as_bytes(),
            org::REGISTER,
            register.clone(),
        )
        else {
            panic!("register was rejected")
        };
        assert_eq!(version, 1);
        assert!(snapshot.is_some());
        let Handled::Decided { version, .. } = store.handle(
            0,
            id.to_string().as_bytes(),
            org::RENAME,
            rename(id, "Acme 2"),
        ) else {
            panic!("rename was rejected")
        };
        assert_eq!(version, 2);
        store.abort();
        assert!(matches!(
            store.handle(
                0,
                id.to_string().as_bytes(),
                org::RENAME,
                rename(id, "Acme 3")
            ),
            Handled::Rejected { .. }
        ));
    }

    #[test]
    fn snapshots_restore_state_and_version() {
        let mut store = AggregateStore::<Org>::default();
        let id = OrgId::new();
        let register = serde_json::json!({ "org_id": id, "slug": "acme", "name": "Acme" });
        let Handled::Decided {
            snapshot: Some(bytes),
            ..
        } = store.handle(3, id.to_string().as_bytes(), org::REGISTER, register)
        else {
            panic!("register was rejected")
        };
        let mut restored = AggregateStore::<Org>::default();
        restored
            .load_snapshot(3, &id.to_string(), Some(&bytes))
            .unwrap();
        let Handled::Decided { version, .. } =
            restored.handle(3, id.to_string().as_bytes(), org::RENAME, rename(id, "New"))
        else {
            panic!("rename after restore was rejected")
        };
        assert_eq!(version, 2);
        restored.drop_partition(3);
        assert_eq!(restored.loaded(), 0);
    }

    #[test]
    fn a_command_under_another_key_is_refused_before_it_is_decided() {
        let mut store = AggregateStore::<Org>::default();
        let id = OrgId::new();
        let register = serde_json::json!({ "org_id": id, "slug": "acme", "name": "Acme" });
        let Handled::Rejected { rejection, .. } = store.handle(0, b"acme", org::REGISTER, register)
        else {
            panic!("a mis-keyed command was decided")
        };
        assert_eq!(rejection.code, RejectionCode::Invalid);
        assert!(rejection.reason.contains("key"), "{}", rejection.reason);
        assert_eq!(store.loaded(), 0);
    }
}
