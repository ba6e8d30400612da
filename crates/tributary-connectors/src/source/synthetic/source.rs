//! The synthetic source: walks the model's id slots in order, batch by batch.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_domain::document::DocumentFailure;

use super::config::SyntheticConfig;
use super::model::{Item, Model, doc_id};
use crate::source::{Batch, BuildContext, Mode, Progress, Result, Source, SourceError, Start};

/// Batches stop growing at this much text, so 20 MB documents do not pile up in memory.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// The checkpoint: which generation the run produces, which one it diffs against (none
/// for a full run), the next id slot to look at, and items produced so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Checkpoint {
    pub(crate) generation: u64,
    pub(crate) base: Option<u64>,
    pub(crate) position: u64,
    pub(crate) done: u64,
}

pub(crate) struct SyntheticSource {
    config: SyntheticConfig,
    model: Model,
    generation: u64,
    base: Option<u64>,
    position: u64,
    end: u64,
    done: u64,
    total: Option<u64>,
    /// Set once the batch holding the final checkpoint is returned.
    finished: bool,
    batches: u64,
    rate_limited_batch: u64,
    failed_batch: u64,
}

pub(crate) fn build(ctx: BuildContext) -> Result<Box<dyn Source>> {
    let config: SyntheticConfig =
        serde_json::from_value(ctx.config).map_err(|e| SourceError::Config {
            message: format!(
                "the synthetic config does not parse ({e}); fix the profile's config."
            ),
        })?;
    Ok(Box::new(SyntheticSource::new(config, &ctx.start)?))
}

impl SyntheticSource {
    pub(crate) fn new(config: SyntheticConfig, start: &Start) -> Result<Self> {
        config.validate()?;
        let previous = start
            .checkpoint
            .as_ref()
            .map(|value| {
                serde_json::from_value::<Checkpoint>(value.clone()).map_err(|e| {
                    SourceError::Config {
                        message: format!(
                            "the stored checkpoint is not one the synthetic source wrote ({e}); run a full sync to start over."
                        ),
                    }
                })
            })
            .transpose()?;
        let pinned = config.generation;
        let plan = match (previous, start.resuming, start.mode) {
            (Some(cp), true, _) => cp,
            (Some(cp), false, mode) => Checkpoint {
                generation: pinned.unwrap_or(cp.generation.saturating_add(1)),
                base: (mode == Mode::Incremental).then_some(cp.generation),
                position: 0,
                done: 0,
            },
            (None, _, _) => Checkpoint {
                generation: pinned.unwrap_or(0),
                base: None,
                position: 0,
                done: 0,
            },
        };
        let model = Model::new(&config);
        let end = model
            .slots(plan.generation)
            .max(plan.base.map_or(0, |b| model.slots(b)));
        Ok(Self {
            config,
            model,
            generation: plan.generation,
            base: plan.base,
            position: plan.position,
            end,
            done: plan.done,
            total: None,
            // A resumed run whose last checkpoint was final has nothing left to give.
            finished: start.resuming && plan.position >= end,
            batches: 0,
            rate_limited_batch: 0,
            failed_batch: 0,
        })
    }

    fn checkpoint(&self) -> Value {
        serde_json::json!(Checkpoint {
            generation: self.generation,
            base: self.base,
            position: self.position,
            done: self.done,
        })
    }

    fn total(&mut self) -> u64 {
        if let Some(total) = self.total {
            return total;
        }
        let remaining = (self.position..self.end)
            .filter(|&i| self.model.item(i, self.base, self.generation) != Item::Nothing)
            .count() as u64;
        let total = self.done + remaining;
        self.total = Some(total);
        total
    }

    /// Injected faults fire once for each Nth batch; the retry of that batch succeeds.
    fn injected_fault(&mut self) -> Option<SourceError> {
        let next = self.batches + 1;
        if let Some(every) = self.config.rate_limit_every
            && next.is_multiple_of(every)
            && self.rate_limited_batch != next
        {
            self.rate_limited_batch = next;
            return Some(SourceError::RateLimited {
                retry_after: Duration::from_millis(self.config.rate_limit_retry_after_ms),
                message: format!("injected by rate_limit_every = {every}"),
            });
        }
        if let Some(every) = self.config.transient_error_every
            && next.is_multiple_of(every)
            && self.failed_batch != next
        {
            self.failed_batch = next;
            return Some(SourceError::Transient {
                message: format!("injected by transient_error_every = {every}"),
            });
        }
        None
    }

    pub(crate) fn next(&mut self) -> Result<Option<Batch>> {
        if self.finished {
            return Ok(None);
        }
        if let Some(fault) = self.injected_fault() {
            return Err(fault);
        }
        let total = self.total();
        let mut batch = Batch::default();
        let max_items = self.config.batch_size as usize;
        let mut items = 0;
        let mut bytes = 0;
        while self.position < self.end && items < max_items && bytes < MAX_BATCH_BYTES {
            let index = self.position;
            self.position += 1;
            match self.model.item(index, self.base, self.generation) {
                Item::Nothing => continue,
                Item::Produce { version } => {
                    let doc = self.model.document(index, version);
                    bytes += doc.text_len();
                    batch.documents.push(doc);
                }
                Item::Fail { version } => batch.failures.push(DocumentFailure {
                    id: doc_id(index),
                    link: None,
                    message: format!(
                        "Version {version} of this document was made to fail by failure_rate {}; nothing is broken, this tests failure reporting.",
                        self.config.failure_rate
                    ),
                }),
                Item::Delete => batch.deleted.push(doc_id(index)),
            }
            items += 1;
        }
        self.done += items as u64;
        self.batches += 1;
        self.finished = self.position >= self.end;
        batch.checkpoint = self.checkpoint();
        batch.progress = Progress {
            done: self.done,
            total: Some(total),
        };
        Ok(Some(batch))
    }

    pub(crate) fn live_ids(&self) -> Vec<String> {
        (0..self.model.slots(self.generation))
            .filter(|&i| self.model.version_at(i, self.generation).is_some())
            .map(doc_id)
            .collect()
    }
}

impl Source for SyntheticSource {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>>> {
        Box::pin(async move { self.next() })
    }

    fn list_ids(&mut self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move { Ok(self.live_ids()) })
    }

    fn check(&mut self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let live = self.live_ids().len();
            Ok(format!(
                "The synthetic source holds {live} documents of {} bytes in generation {} (seed {}).",
                self.config.size_bytes, self.generation, self.config.seed
            ))
        })
    }
}
