//! Login throttling: a few free attempts, then delays that double with each failure.
//!
//! Keys are chosen by the caller, typically one per account (`account:<email>`) against
//! guessing one password and one per client address (`addr:<ip>`) against spraying many
//! accounts. Delays rather than hard lockouts, so an attacker cannot lock a real user out for
//! long, while online guessing slows to a handful of tries an hour.
//!
//! State is in memory, per process: it resets on restart and is not shared between replicas,
//! which is acceptable for slowing attackers down. Time is passed in, so tests need no sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How forgiving the throttle is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before any delay.
    pub free_attempts: u32,
    /// The delay after the first failure beyond the free ones; it doubles with each further one.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// A key with no failure for this long starts over.
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
        }
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Failure counts and lockouts per key. Share one behind an `Arc`; it locks internally.
#[derive(Debug)]
pub struct Throttle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` while `key` is locked out; check before verifying a password.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.entries().get(key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt. The first `free_attempts` failures cost nothing; the n-th
    /// failure after them locks `key` for `base_delay * 2^(n-1)`, at most `max_delay`.
    pub fn fail(&self, key: &str, now: Instant) {
        let mut entries = self.entries();
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        // A key left alone long enough starts over even if `prune` has not run yet.
        if now.saturating_duration_since(entry.last_failure) >= self.policy.forget_after {
            entry.failures = 0;
            entry.locked_until = None;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if let Some(delay) = self.delay_after(entry.failures) {
            entry.locked_until = Some(now.checked_add(delay).unwrap_or(now));
        }
    }

    /// Forgets `key`'s failures after a successful login.
    pub fn succeed(&self, key: &str) {
        self.entries().remove(key);
    }

    /// Drops keys with no failure for `forget_after` and no lockout still running, so memory
    /// stays bounded; call it now and then.
    pub fn prune(&self, now: Instant) {
        let forget_after = self.policy.forget_after;
        self.entries().retain(|_, e| {
            let recent = now.saturating_duration_since(e.last_failure) < forget_after;
            let locked = e.locked_until.is_some_and(|until| until > now);
            recent || locked
        });
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    fn delay_after(&self, failures: u32) -> Option<Duration> {
        let beyond = failures.checked_sub(self.policy.free_attempts)?;
        if beyond == 0 {
            return None;
        }
        let factor = 1u32.checked_shl(beyond - 1).unwrap_or(u32::MAX);
        let delay = self
            .policy
            .base_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX);
        Some(delay.min(self.policy.max_delay))
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // The map holds plain counters that are never left half-updated; a panic elsewhere
        // while the lock was held does not make them wrong.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(ThrottlePolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "account:alice@example.com";
    const SECOND: Duration = Duration::from_secs(1);

    fn fail_times(throttle: &Throttle, key: &str, times: u32, now: Instant) {
        for _ in 0..times {
            throttle.fail(key, now);
        }
    }

    #[test]
    fn is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Throttle>();
    }

    #[test]
    fn the_free_attempts_cost_nothing() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(throttle.check(KEY, now), Ok(()));
            throttle.fail(KEY, now);
        }
        assert_eq!(throttle.check(KEY, now), Ok(()));
    }

    #[test]
    fn each_further_failure_doubles_the_delay() {
        let throttle = Throttle::default();
        let mut now = Instant::now();
        fail_times(&throttle, KEY, 5, now);
        for expected in [1, 2, 4, 8, 16] {
            throttle.fail(KEY, now);
            assert_eq!(throttle.check(KEY, now), Err(expected * SECOND));
            // Still locked just before the delay ends, free right at its end.
            let almost = now + expected * SECOND - Duration::from_millis(1);
            assert_eq!(throttle.check(KEY, almost), Err(Duration::from_millis(1)));
            now += expected * SECOND;
            assert_eq!(throttle.check(KEY, now), Ok(()));
        }
    }

    #[test]
    fn the_delay_is_capped() {
        let throttle = Throttle::default();
        let now = Instant::now();
        // 5 free, then 1 s, 2 s, ... 512 s for the tenth beyond them; the eleventh would be
        // 1024 s, past the 15 minute cap.
        fail_times(&throttle, KEY, 5 + 10, now);
        assert_eq!(throttle.check(KEY, now), Err(Duration::from_secs(512)));
        throttle.fail(KEY, now);
        assert_eq!(throttle.check(KEY, now), Err(Duration::from_secs(15 * 60)));
        fail_times(&throttle, KEY, 100, now);
        assert_eq!(throttle.check(KEY, now), Err(Duration::from_secs(15 * 60)));
    }

    #[test]
    fn keys_are_independent() {
        let throttle = Throttle::default();
        let now = Instant::now();
        fail_times(&throttle, KEY, 6, now);
        assert!(throttle.check(KEY, now).is_err());
        assert_eq!(throttle.check("account:bob@example.com", now), Ok(()));
        assert_eq!(throttle.check("addr:192.0.2.1", now), Ok(()));
    }

    #[test]
    fn success_resets_the_count() {
        let throttle = Throttle::default();
        let now = Instant::now();
        fail_times(&throttle, KEY, 7, now);
        assert!(throttle.check(KEY, now).is_err());
        throttle.succeed(KEY);
        assert_eq!(throttle.check(KEY, now), Ok(()));
        // The free attempts are back too.
        fail_times(&throttle, KEY, 5, now);
        assert_eq!(throttle.check(KEY, now), Ok(()));
        throttle.fail(KEY, now);
        assert_eq!(throttle.check(KEY, now), Err(SECOND));
    }

    #[test]
    fn prune_forgets_idle_keys_only() {
        let throttle = Throttle::default();
        let start = Instant::now();
        fail_times(&throttle, "addr:192.0.2.1", 3, start);
        let later = start + Duration::from_secs(30 * 60);
        fail_times(&throttle, KEY, 3, later);
        assert_eq!(throttle.len(), 2);

        throttle.prune(start + Duration::from_secs(59 * 60));
        assert_eq!(throttle.len(), 2);

        throttle.prune(start + Duration::from_secs(60 * 60));
        assert_eq!(throttle.len(), 1);
        // The remaining key kept its count: two more failures cost nothing, the third does.
        let now = start + Duration::from_secs(60 * 60);
        fail_times(&throttle, KEY, 2, now);
        assert_eq!(throttle.check(KEY, now), Ok(()));
        throttle.fail(KEY, now);
        assert_eq!(throttle.check(KEY, now), Err(SECOND));

        throttle.prune(now + Duration::from_secs(60 * 60));
        assert!(throttle.is_empty());
    }

    #[test]
    fn prune_keeps_keys_that_are_still_locked() {
        let policy = ThrottlePolicy {
            free_attempts: 0,
            base_delay: Duration::from_secs(3600),
            max_delay: Duration::from_secs(7200),
            forget_after: Duration::from_secs(60),
        };
        let throttle = Throttle::new(policy);
        let now = Instant::now();
        throttle.fail(KEY, now);
        throttle.prune(now + Duration::from_secs(120));
        assert_eq!(throttle.len(), 1);
        assert!(throttle.check(KEY, now + Duration::from_secs(120)).is_err());
    }

    #[test]
    fn an_old_count_is_forgotten_without_prune() {
        let throttle = Throttle::default();
        let now = Instant::now();
        fail_times(&throttle, KEY, 8, now);
        let much_later = now + Duration::from_secs(2 * 60 * 60);
        assert_eq!(throttle.check(KEY, much_later), Ok(()));
        throttle.fail(KEY, much_later);
        assert_eq!(throttle.check(KEY, much_later), Ok(()));
    }
}
