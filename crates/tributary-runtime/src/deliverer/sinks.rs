//! Delivering to one target: its sink, built with its decrypted credential and kept a
//! while, and the in-place retries of transient failures.

use super::record::Item;
use super::{Deliverer, MAX_INLINE_WAIT};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_destinations::{Delivery, Op, Scope, Sink, SinkError};
use tributary_domain::document::DocumentRecord;
use uuid::Uuid;

/// A target's sink; `Err` when the target cannot be used (with the class that says
/// whether that may pass: a database outage does, a deleted target does not).
pub(super) type Built = Result<Arc<dyn Sink>, SinkError>;

/// A built sink and when it was built.
pub(super) type Kept = (Instant, Arc<dyn Sink>);

/// How long a built sink is kept: a changed config or a rotated credential is picked
/// up within this time.
const KEEP: Duration = Duration::from_secs(60);

impl Deliverer {
    /// Delivers the records `indexes` of `items` to `target`, retrying transient
    /// failures in place; one result (and the number of attempts) per record.
    pub(super) async fn deliver(
        &self,
        target: Uuid,
        items: &[Item<'_>],
        indexes: &[usize],
    ) -> Vec<(Result<(), SinkError>, u32)> {
        let sink = match self.sink(target).await {
            Ok(sink) => sink,
            Err(why) => return indexes.iter().map(|_| (Err(why.clone()), 1)).collect(),
        };
        let mut results: Vec<(Result<(), SinkError>, u32)> = indexes
            .iter()
            .map(|_| (Err(SinkError::transient("not tried yet")), 0))
            .collect();
        let mut pending: Vec<usize> = (0..indexes.len()).collect();
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(self.config.retries)
            .with_jitter()
            .build();
        loop {
            // Deliveries of one scope go together; records of several runs may mix.
            let mut next = Vec::new();
            let mut wait = Duration::ZERO;
            let mut by_scope: BTreeMap<(Uuid, Uuid), Vec<usize>> = BTreeMap::new();
            for &p in &pending {
                let item = &items[indexes[p]];
                by_scope
                    .entry((item.org, item.profile))
                    .or_default()
                    .push(p);
            }
            for ((org, profile), positions) in by_scope {
                let scope = Scope::new(org, profile, target);
                let batch: Vec<Delivery> = positions
                    .iter()
                    .map(|&p| match &items[indexes[p]].record {
                        DocumentRecord::Upsert { document } => Delivery {
                            doc_id: document.id.clone(),
                            op: Op::Upsert(document.clone()),
                        },
                        DocumentRecord::Delete { doc_id } => Delivery {
                            doc_id: doc_id.clone(),
                            op: Op::Delete,
                        },
                    })
                    .collect();
                let answers = sink.deliver(&scope, &batch).await;
                for (&p, answer) in positions.iter().zip(answers) {
                    results[p].1 += 1;
                    if let Err(e) = &answer
                        && e.is_retriable()
                    {
                        wait = wait.max(e.retry_after.unwrap_or_default());
                        next.push(p);
                    }
                    results[p].0 = answer;
                }
            }
            if next.is_empty() {
                return results;
            }
            let Some(delay) = delays.next() else {
                return results;
            };
            // A longer wait would hold every other record of the batch: those records
            // go to a delay topic (or, past the last one, become dead letters).
            if wait > MAX_INLINE_WAIT {
                return results;
            }
            tokio::time::sleep(delay.max(wait)).await;
            pending = next;
        }
    }

    /// The target's sink, built with its decrypted credential; rebuilt after
    /// [`KEEP`], so a changed config or rotated credential is picked up. A target that
    /// could not be built is tried again at the next batch, so a fixed target (and a
    /// redrive after the fix) works at once.
    async fn sink(&self, target: Uuid) -> Built {
        let cached = self
            .sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&target)
            .filter(|(at, _)| at.elapsed() < KEEP)
            .map(|(_, sink)| sink.clone());
        if let Some(sink) = cached {
            return Ok(sink);
        }
        let sink = self.build(target).await?;
        self.sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(target, (Instant::now(), sink.clone()));
        Ok(sink)
    }

    async fn build(&self, target: Uuid) -> Built {
        let client = self.config.db.get().await.map_err(|e| {
            SinkError::transient(format!(
                "the deliverer could not reach Postgres ({e}); it will retry"
            ))
        })?;
        let row = tributary_store::catalog::target_by_id(&**client, target)
            .await
            .map_err(|e| SinkError::transient(format!("reading target {target} failed ({e})")))?
            .filter(|t| t.is_live())
            .ok_or_else(|| {
                SinkError::permanent(format!(
                    "target {target} does not exist or was deleted; nothing was delivered to it"
                ))
            })?;
        let kind = self.destinations.get(&row.kind).ok_or_else(|| {
            SinkError::permanent(format!(
                "target {target} has kind {:?}, which this build does not know",
                row.kind
            ))
        })?;
        let credential = match row.credential_id {
            None => None,
            Some(id) => Some(
                tributary_store::credentials::open_value(&**client, &self.config.vault, row.org_id, id)
                    .await
                    .map_err(|e| SinkError::permanent(format!("the credential of target {target} could not be opened: {e}")))?
                    .ok_or_else(|| SinkError::permanent(format!("the credential of target {target} was deleted; give the target a live credential")))?
                    .value,
            ),
        };
        let sink = kind
            .build(tributary_destinations::BuildContext {
                config: row.config,
                credential,
                http: self.config.http.clone(),
                data_dir: self.config.data_dir.clone(),
            })
            .map_err(|e| {
                SinkError::permanent(format!("target {target} could not be set up: {e}"))
            })?;
        Ok(Arc::from(sink))
    }
}
