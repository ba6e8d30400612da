use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Failures a fake injects in front of its handlers.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Chance (0 to 1) that a request answers 500.
    pub error_500: f64,
    /// Chance (0 to 1) that a request answers 429 with `Retry-After`.
    pub rate_limit_429: f64,
    /// The `Retry-After` of injected 429s, in whole seconds.
    pub retry_after_secs: u64,
    /// Added before every request is answered, faulted or not.
    pub latency: Option<Duration>,
    /// Seeds the draws, so a run with the same requests in the same order fails the same
    /// ones. Setting faults restarts the sequence.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_500: 0.0,
            rate_limit_429: 0.0,
            retry_after_secs: 1,
            latency: None,
            seed: 0x5eed,
        }
    }
}

impl Faults {
    /// No faults: every request reaches the handler.
    pub fn none() -> Self {
        Self::default()
    }
}

enum Injected {
    ServerError,
    RateLimited(u64),
}

struct Dice {
    faults: Faults,
    /// SplitMix64 state: tiny, fast, and good enough to spread faults evenly.
    state: u64,
}

impl Dice {
    fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The fault dice and the count of answers by status, shared by a fake's routes.
pub(crate) struct Injector {
    dice: Mutex<Dice>,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the others.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Injector {
    pub(crate) fn new(faults: Faults) -> Arc<Self> {
        Arc::new(Self {
            dice: Mutex::new(Dice {
                state: faults.seed,
                faults,
            }),
            statuses: Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) fn set(&self, faults: Faults) {
        *lock(&self.dice) = Dice {
            state: faults.seed,
            faults,
        };
    }

    pub(crate) fn status_counts(&self) -> BTreeMap<u16, u64> {
        lock(&self.statuses).clone()
    }

    pub(crate) fn request_count(&self) -> u64 {
        lock(&self.statuses).values().sum()
    }

    fn roll(&self) -> (Option<Duration>, Option<Injected>) {
        let mut dice = lock(&self.dice);
        let faults = dice.faults.clone();
        if faults.error_500 <= 0.0 && faults.rate_limit_429 <= 0.0 {
            return (faults.latency, None);
        }
        let draw = dice.next_unit();
        let injected = if draw < faults.error_500 {
            Some(Injected::ServerError)
        } else if draw < faults.error_500 + faults.rate_limit_429 {
            Some(Injected::RateLimited(faults.retry_after_secs))
        } else {
            None
        };
        (faults.latency, injected)
    }

    fn record(&self, status: StatusCode) {
        *lock(&self.statuses).entry(status.as_u16()).or_default() += 1;
    }
}

/// Answers a faulted request before the handler sees it, and counts every answer.
pub(crate) async fn inject(
    State(injector): State<Arc<Injector>>,
    request: Request,
    next: Next,
) -> Response {
    let (latency, injected) = injector.roll();
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let response = match injected {
        Some(Injected::ServerError) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "detail": "Injected fault: internal server error." })),
        )
            .into_response(),
        Some(Injected::RateLimited(seconds)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, seconds.to_string())],
            axum::Json(json!({ "detail": "Injected fault: rate limit exceeded." })),
        )
            .into_response(),
        None => next.run(request).await,
    };
    injector.record(response.status());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(faults: Faults, n: usize) -> Vec<bool> {
        let injector = Injector::new(faults);
        (0..n).map(|_| injector.roll().1.is_some()).collect()
    }

    #[test]
    fn draws_are_seeded_and_match_the_probability() {
        let faults = Faults {
            error_500: 0.2,
            ..Faults::default()
        };
        let first = draws(faults.clone(), 10_000);
        assert_eq!(first, draws(faults.clone(), 10_000));
        let failed = first.iter().filter(|f| **f).count();
        assert!((1_800..2_200).contains(&failed), "{failed}");
        let other_seed = Faults { seed: 1, ..faults };
        assert_ne!(first, draws(other_seed, 10_000));
        assert!(draws(Faults::none(), 100).iter().all(|f| !f));
    }
}
