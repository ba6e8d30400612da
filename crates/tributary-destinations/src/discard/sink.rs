use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::{Delivery, Op, Result, Scope, Sink};

/// How many deliveries a discard sink has dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscardCounts {
    pub upserts: u64,
    pub deletes: u64,
    /// Bytes of document text dropped, to compare throughput with a real destination.
    pub text_bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    upserts: AtomicU64,
    deletes: AtomicU64,
    text_bytes: AtomicU64,
}

/// Drops everything it is given. Clones share their counts, so a benchmark can keep one
/// and hand the other to the deliverer.
#[derive(Debug, Clone, Default)]
pub struct DiscardSink {
    counters: Arc<Counters>,
}

impl DiscardSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counts(&self) -> DiscardCounts {
        DiscardCounts {
            upserts: self.counters.upserts.load(Ordering::Relaxed),
            deletes: self.counters.deletes.load(Ordering::Relaxed),
            text_bytes: self.counters.text_bytes.load(Ordering::Relaxed),
        }
    }
}

impl Sink for DiscardSink {
    fn deliver<'a>(
        &'a self,
        _scope: &'a Scope,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Vec<Result<()>>> {
        let (mut upserts, mut deletes, mut bytes) = (0, 0, 0);
        for delivery in batch {
            match &delivery.op {
                Op::Upsert(doc) => {
                    upserts += 1;
                    bytes += doc.text_len() as u64;
                }
                Op::Delete => deletes += 1,
            }
        }
        self.counters.upserts.fetch_add(upserts, Ordering::Relaxed);
        self.counters.deletes.fetch_add(deletes, Ordering::Relaxed);
        self.counters.text_bytes.fetch_add(bytes, Ordering::Relaxed);
        futures::future::ready(vec![Ok(()); batch.len()]).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<String>> {
        let counts = self.counts();
        futures::future::ready(Ok(format!(
            "Discard accepts everything; it has dropped {} upserts and {} deletes so far.",
            counts.upserts, counts.deletes
        )))
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use tributary_domain::document::Document;
    use uuid::Uuid;

    use super::*;

    #[tokio::test]
    async fn accepts_everything_and_counts_it() {
        let sink = DiscardSink::new();
        let handle = sink.clone();
        let scope = Scope::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let batch = [
            Delivery::upsert(Document::text("web", "a", "A", "hello")),
            Delivery::delete("b"),
        ];
        assert_eq!(sink.deliver(&scope, &batch).await, vec![Ok(()), Ok(())]);
        assert_eq!(
            handle.counts(),
            DiscardCounts {
                upserts: 1,
                deletes: 1,
                text_bytes: 5
            }
        );
        assert!(sink.check().await.unwrap().contains("1 upserts"));
    }
}
