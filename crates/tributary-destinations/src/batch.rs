//! Delivering a batch one document at a time, for destinations without a batch API.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;

use futures::StreamExt;

use crate::{Delivery, Result, SinkError};

/// Runs `one` for every delivery and answers the results in batch order.
///
/// Different documents go out `concurrency` at a time, because one request per document
/// is slow against an API that indexes in the request. Deliveries of the same document
/// stay in batch order, one after the other: an upsert followed by a delete must not race
/// and leave the document behind.
pub(crate) async fn per_document<'a, F, Fut>(
    batch: &'a [Delivery],
    concurrency: usize,
    one: F,
) -> Vec<Result<()>>
where
    F: Fn(&'a Delivery) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for (i, delivery) in batch.iter().enumerate() {
        match group_of.entry(delivery.doc_id.as_str()) {
            Entry::Occupied(group) => groups[*group.get()].push(i),
            Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push(vec![i]);
            }
        }
    }

    let one = &one;
    let mut outcomes = futures::stream::iter(groups)
        .map(|group| async move {
            let mut out = Vec::with_capacity(group.len());
            for i in group {
                out.push((i, one(&batch[i]).await));
            }
            out
        })
        .buffer_unordered(concurrency.max(1));

    let mut results: Vec<Option<Result<()>>> = vec![None; batch.len()];
    while let Some(out) = outcomes.next().await {
        for (i, result) in out {
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                Err(SinkError::transient(
                    "Tributary lost track of this delivery inside its batch; it will retry it.",
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn answers_in_order_and_keeps_one_documents_deliveries_sequential() {
        let batch = vec![
            Delivery::delete("a"),
            Delivery::delete("b"),
            Delivery::delete("a"),
            Delivery::delete("c"),
            Delivery::delete("a"),
        ];
        let seen = Mutex::new(Vec::new());
        let results = per_document(&batch, 3, |d| {
            let seen = &seen;
            let index = batch.iter().position(|x| std::ptr::eq(x, d)).unwrap_or(0);
            async move {
                // The first "a" is the slowest: a racing second "a" would overtake it.
                if index == 0 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                seen.lock().unwrap().push(index);
                if d.doc_id == "c" {
                    Err(SinkError::permanent("c is refused."))
                } else {
                    Ok(())
                }
            }
        })
        .await;

        assert_eq!(results.len(), 5);
        assert!(results[3].is_err());
        assert!(
            results
                .iter()
                .enumerate()
                .all(|(i, r)| (i == 3) == r.is_err())
        );
        let seen = seen.into_inner().unwrap();
        let a_order: Vec<usize> = seen
            .iter()
            .copied()
            .filter(|i| [0, 2, 4].contains(i))
            .collect();
        assert_eq!(a_order, vec![0, 2, 4]);
    }
}
