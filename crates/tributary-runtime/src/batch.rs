//! One projection batch: rows and offsets in one Postgres transaction.

use std::collections::HashMap;
use tributary_log::Envelope;
use tributary_store::projection::{Offsets, Projection};
use tributary_store::{Db, Registry, Result};

/// Records decoded from Kafka, with where they came from.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<(String, Envelope)>,
    /// Next offset to read, per partition, after this batch.
    pub next: Offsets,
    /// First offset of this batch, per partition (to rewind).
    pub first: HashMap<(String, i32), i64>,
    /// Records that could not be decoded and were skipped.
    pub skipped: u64,
}

impl Batch {
    pub fn push(&mut self, topic: &str, partition: i32, offset: i64, env: Option<Envelope>) {
        let key = (topic.to_owned(), partition);
        self.first.entry(key.clone()).or_insert(offset);
        self.next.insert(key, offset + 1);
        match env {
            Some(env) => self.records.push((topic.to_owned(), env)),
            None => self.skipped += 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    pub fn len(&self) -> usize {
        self.records.len() + self.skipped as usize
    }
}

/// What applying a batch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Done(u64),
    /// A rebuild swapped versions: the batch was not applied.
    VersionChanged(i32),
}

/// Applies `batch` to `version`. With `live`, the projection's registry row is locked
/// for share and the batch is refused if another version became active meanwhile.
pub async fn apply(
    db: &Db,
    projection: Projection,
    version: i32,
    live: bool,
    batch: &Batch,
) -> Result<Applied> {
    let mut client = db.get().await?;
    let tx = client
        .transaction()
        .await
        .map_err(|source| tributary_store::Error::Postgres {
            action: "starting a projection batch",
            source,
        })?;
    if live {
        let active = Registry::lock_shared(&tx, projection).await?;
        if active != version {
            return Ok(Applied::VersionChanged(active));
        }
    }
    let refs: Vec<(&str, &Envelope)> = batch.records.iter().map(|(t, e)| (t.as_str(), e)).collect();
    let applied = projection.apply(&tx, version, &refs).await?;
    Registry::save_offsets(&tx, projection, version, &batch.next).await?;
    if live {
        tributary_store::notify::announce(&*tx, projection).await?;
    }
    tx.commit()
        .await
        .map_err(|source| tributary_store::Error::Postgres {
            action: "committing a projection batch",
            source,
        })?;
    Ok(Applied::Done(applied))
}
