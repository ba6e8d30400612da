//! Keeps a blocking role running: restarts it with exponential backoff when it fails,
//! so one bad moment (a broker restart, a fenced producer) never needs a human.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs `run` on the current thread until `stop` is set, restarting it after errors.
pub fn supervise<E: std::fmt::Display>(
    name: &str,
    stop: &Arc<AtomicBool>,
    mut run: impl FnMut() -> Result<(), E>,
) {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build();
    while !stop.load(Ordering::Relaxed) {
        match run() {
            Ok(()) => return,
            Err(e) => {
                let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                tracing::error!(role = name, error = %e, retry_in = ?delay, "role failed; restarting");
                metrics::counter!("tributary_role_restarts_total", "role" => name.to_owned())
                    .increment(1);
                sleep_unless_stopped(stop, delay);
            }
        }
    }
}

pub fn sleep_unless_stopped(stop: &AtomicBool, delay: Duration) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < delay && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}
