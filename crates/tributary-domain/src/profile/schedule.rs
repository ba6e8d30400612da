//! When a profile runs: every `interval_secs`, or at the times a five-field cron pattern
//! names (in UTC), plus a per-profile jitter. Pure, so the scheduler and the tests compute
//! the same due times.

use crate::aggregate::{Rejection, RejectionCode};
use crate::ids::ProfileId;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The shortest interval between scheduled runs.
pub const MIN_INTERVAL_SECS: u64 = 60;
/// The longest interval (and prune interval): a year.
pub const MAX_INTERVAL_SECS: u64 = 365 * 24 * 3600;
pub const MAX_JITTER_SECS: u32 = 3600;
pub const MAX_CRON_CHARS: usize = 200;

/// Exactly one of `interval_secs` and `cron` is set (checked by [`Schedule::validate`]
/// and by the schemas).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// Five fields: minute, hour, day of month, month, day of week; evaluated in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default)]
    pub jitter_secs: u32,
    /// What the scheduled runs fetch: what changed since the last run (the default), or
    /// everything (a periodic full refresh).
    #[serde(default, skip_serializing_if = "ScheduledMode::is_incremental")]
    pub mode: ScheduledMode,
}

/// The mode of a profile's scheduled runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledMode {
    #[default]
    Incremental,
    Full,
}

impl ScheduledMode {
    pub fn is_incremental(&self) -> bool {
        *self == Self::Incremental
    }

    /// The run mode a scheduled run of this profile asks for.
    pub fn run_mode(self) -> crate::sync::Mode {
        match self {
            Self::Incremental => crate::sync::Mode::Incremental,
            Self::Full => crate::sync::Mode::Full,
        }
    }
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::Invalid, reason)
}

/// Parses a five-field cron pattern. Seconds, years and `@hourly`-style nicknames are
/// refused: one well-known form keeps patterns readable for every consumer of the log.
pub fn parse_cron(pattern: &str) -> Result<croner::Cron, Rejection> {
    let fields = pattern.split_whitespace().count();
    if pattern.len() > MAX_CRON_CHARS || fields != 5 || pattern.contains('@') {
        return Err(invalid(format!(
            "cron {pattern:?} must have five fields (minute hour day-of-month month \
             day-of-week), e.g. \"*/30 * * * *\""
        )));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| {
            invalid(format!(
                "cron {pattern:?} is not a valid pattern ({e}); e.g. \"0 */6 * * *\" runs \
                 every six hours"
            ))
        })
}

impl Schedule {
    pub fn every(interval_secs: u64) -> Self {
        Self {
            interval_secs: Some(interval_secs),
            cron: None,
            jitter_secs: 0,
            mode: ScheduledMode::Incremental,
        }
    }

    pub fn cron(pattern: impl Into<String>) -> Self {
        Self {
            interval_secs: None,
            cron: Some(pattern.into()),
            jitter_secs: 0,
            mode: ScheduledMode::Incremental,
        }
    }

    pub fn validate(&self) -> Result<(), Rejection> {
        match (&self.interval_secs, &self.cron) {
            (Some(secs), None) => {
                if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(secs) {
                    return Err(invalid(format!(
                        "schedule.interval_secs must be between {MIN_INTERVAL_SECS} and \
                         {MAX_INTERVAL_SECS}, not {secs}"
                    )));
                }
            }
            (None, Some(pattern)) => {
                parse_cron(pattern)?;
            }
            _ => {
                return Err(invalid(
                    "a schedule has exactly one of interval_secs and cron; use null for a \
                     profile that runs only when asked",
                ));
            }
        }
        if self.jitter_secs > MAX_JITTER_SECS {
            return Err(invalid(format!(
                "schedule.jitter_secs must be between 0 and {MAX_JITTER_SECS}, not {}",
                self.jitter_secs
            )));
        }
        Ok(())
    }

    /// The first due time strictly after `after`, without jitter: `after` plus the
    /// interval, or the pattern's next time. `None` for a schedule that does not
    /// validate or a pattern that never matches again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match (&self.interval_secs, &self.cron) {
            (Some(secs), None) => {
                let secs = i64::try_from(*secs).ok()?;
                after.checked_add_signed(Duration::try_seconds(secs)?)
            }
            (None, Some(pattern)) => parse_cron(pattern)
                .ok()?
                .find_next_occurrence(&after, false)
                .ok(),
            _ => None,
        }
    }

    /// The profile's own offset within `[0, jitter_secs]`: derived from its id, so it is
    /// the same at every run and in every scheduler process, and profiles sharing a
    /// pattern spread out instead of starting together.
    pub fn jitter_for(&self, profile: ProfileId) -> Duration {
        let span = u128::from(self.jitter_secs) + 1;
        let offset = profile.0.as_u128() % span;
        Duration::seconds(i64::try_from(offset).unwrap_or(0))
    }

    /// [`Self::next_after`] plus the profile's jitter: when the scheduler should start
    /// the next run of `profile` whose last due time was `after`.
    pub fn next_due(&self, profile: ProfileId, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after(after)
            .map(|due| due + self.jitter_for(profile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn intervals_and_patterns_give_the_next_time() {
        let t = at("2030-01-01T10:07:00Z");
        assert_eq!(
            Schedule::every(600).next_after(t),
            Some(at("2030-01-01T10:17:00Z"))
        );
        assert_eq!(
            Schedule::cron("*/30 * * * *").next_after(t),
            Some(at("2030-01-01T10:30:00Z"))
        );
        // Strictly after: a due time is never handed out twice.
        assert_eq!(
            Schedule::cron("0 11 * * *").next_after(at("2030-01-01T11:00:00Z")),
            Some(at("2030-01-02T11:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_a_reason() {
        assert!(Schedule::every(59).validate().is_err());
        assert!(Schedule::every(60).validate().is_ok());
        for bad in [
            "* * * * * *",
            "@hourly",
            "61 * * * *",
            "* * *",
            "0 0 32 * *",
        ] {
            let err = Schedule::cron(bad).validate().unwrap_err();
            assert!(err.reason.contains("cron"), "{bad}: {err}");
        }
        assert!(Schedule::cron("0 9 * * MON-FRI").validate().is_ok());
        let both = Schedule {
            interval_secs: Some(60),
            cron: Some("* * * * *".into()),
            jitter_secs: 0,
            mode: Default::default(),
        };
        assert!(both.validate().is_err());
        let jittery = Schedule {
            jitter_secs: 3601,
            ..Schedule::every(60)
        };
        assert!(jittery.validate().is_err());
    }

    #[test]
    fn jitter_is_stable_per_profile_and_bounded() {
        let schedule = Schedule {
            jitter_secs: 300,
            ..Schedule::cron("0 * * * *")
        };
        let profile = ProfileId::new();
        let t = at("2030-01-01T10:07:00Z");
        let first = schedule.next_due(profile, t).unwrap();
        assert_eq!(schedule.next_due(profile, t), Some(first));
        let offset = first - at("2030-01-01T11:00:00Z");
        assert!(offset >= Duration::zero() && offset <= Duration::seconds(300));
        assert_eq!(
            Schedule::every(60).jitter_for(profile),
            Duration::zero(),
            "no jitter asked, none given"
        );
    }
}
