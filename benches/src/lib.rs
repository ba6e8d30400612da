//! Shared pieces of the benchmarks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The size of a run: `BENCH_N` overrides the default.
pub fn size(default: usize) -> usize {
    knob("BENCH_N", default)
}

/// A setting of a run from the environment, e.g. `BENCH_CONCURRENCY`.
pub fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `q`-quantile (0..=1) of sorted durations, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// The last line every benchmark prints.
pub fn result_line(name: &str, ours: f64, baseline: f64, unit: &str) -> String {
    format!(
        "RESULT {name} ours={ours:.1} baseline={baseline:.1} ratio={:.3} {unit}",
        ours / baseline.max(f64::MIN_POSITIVE)
    )
}

/// A field of `/proc/<pid>/status` given in kB, e.g. `VmRSS` (resident now) or
/// `VmHWM` (peak resident); `None` once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_kib(&status, field)
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// KiB to MiB, for printing.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples a process's resident memory (`VmRSS`) every `every` on a thread of its own
/// and keeps the largest value, so a peak between two looks at `VmHWM` is not missed
/// and the bench can print the current value as it goes.
pub struct RssSampler {
    max_kib: Arc<AtomicU64>,
    last_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let (max_kib, last_kib, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let thread = {
            let (max_kib, last_kib, stop) = (max_kib.clone(), last_kib.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match proc_status_kib(pid, "VmRSS") {
                        Some(kib) => {
                            last_kib.store(kib, Ordering::Relaxed);
                            max_kib.fetch_max(kib, Ordering::Relaxed);
                        }
                        None => break,
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Self {
            max_kib,
            last_kib,
            stop,
            thread: Some(thread),
        }
    }

    /// The resident memory at the last sample, in KiB.
    pub fn last_kib(&self) -> u64 {
        self.last_kib.load(Ordering::Relaxed)
    }

    /// Stops sampling; the largest `VmRSS` seen, in KiB.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.max_kib.load(Ordering::Relaxed)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a child process to listen on.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_from_the_sorted_list() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&d, 0.5), 51.0);
        assert_eq!(quantile_ms(&d, 0.99), 99.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\ttributary\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(204_800));
        assert_eq!(status_kib(status, "VmRSS"), Some(102_400));
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert_eq!(mib(2048), 2.0);
        let own = proc_status_kib(std::process::id(), "VmHWM").unwrap();
        assert!(own > 0);
    }

    #[test]
    fn the_result_line_has_the_agreed_shape() {
        assert_eq!(
            result_line("x", 50.0, 100.0, "ops/s"),
            "RESULT x ours=50.0 baseline=100.0 ratio=0.500 ops/s"
        );
    }
}
