//! Shared pieces of the benchmarks.

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
    fn the_result_line_has_the_agreed_shape() {
        assert_eq!(
            result_line("x", 50.0, 100.0, "ops/s"),
            "RESULT x ours=50.0 baseline=100.0 ratio=0.500 ops/s"
        );
    }
}
