//! When a job runs (SPEC §8): a schedule compiled from the statement's
//! [`ScheduleSpec`], and its due times. Pure: the caller gives the time
//! (`knobs::now()`) and the time zone (`chrono::Local`), and keeps what a
//! run did.
//!
//! The rules, told to users in docs/jobs.md ("Schedules"):
//!
//! - Times are local. A local time runs at the first instant whose clock
//!   shows it or a later time (module `local`): a time in the spring-forward
//!   gap runs once, just after the gap; a time in the fall-back overlap
//!   runs once, at the earlier instant. This holds for every cron
//!   expression, `*/15` as much as `30 2`, so a cron job does not run
//!   twice in the repeated hour (an `EVERY` interval counts real time).
//! - `AT` a time in the past, or in a gap, is refused when the job is
//!   created; a time in an overlap is the earlier instant.
//! - `EVERY` runs at once, then an interval after the end of each run.
//! - A cron job's next due time is its next slot after the last due time,
//!   even when that is already past: a worker or tick that finds it due
//!   fires it once, for the latest slot passed ([`Schedule::catch_up`]),
//!   and says how many it skipped.

mod cron;
mod local;

#[cfg(test)]
mod tests;

pub use cron::{CronSchedule, Dialect, Fault, Field};

use crate::ast::ScheduleSpec;
use crate::syntax::values::TIMESTAMP_FORMAT;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// The longest interval taken: a longer one is most likely a typo, and
/// would run past the dates chrono counts.
const LONGEST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(100 * 366 * 86_400);

/// A compiled schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Once, at a local time.
    Once(NaiveDateTime),
    /// At once, then this long after the end of each run.
    Every(std::time::Duration),
    /// On the slots of a cron expression, local time.
    Cron(CronSchedule),
}

/// Why a schedule is refused. Each says what is wrong, in which text, and
/// what would be right; the caller points at the text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "the cron expression '{expr}' has {count} fields: a crontab expression has 5 \
         (minute hour day-of-month month day-of-week), a Quartz expression 6 or 7 \
         (second minute hour day-of-month month day-of-week [year])"
    )]
    CronShape { expr: String, count: usize },
    #[error("the {} field of '{expr}' {}", field.name(), fault.describe(*field, *dialect, part))]
    CronField {
        expr: String,
        field: Field,
        dialect: Dialect,
        /// The comma-separated part of the field at fault.
        part: String,
        fault: Fault,
    },
    /// croner refused the expression, but each field alone reads: not
    /// seen, kept so that such a case still says croner's reason.
    #[error(
        "the cron expression '{expr}' is refused: {why}; write 5 fields (crontab) or 6 to 7 \
         (Quartz), as docs/jobs.md shows"
    )]
    CronRefused { expr: String, why: String },
    #[error("the cron expression '{expr}' never fires: {why}")]
    NeverFires { expr: String, why: String },
    #[error(
        "an interval of zero would run the job without a pause: give an interval greater than \
         zero, such as '00:15:00'"
    )]
    ZeroInterval,
    #[error(
        "an interval of {} is longer than 100 years: give a shorter one, or AT a time for a job \
         that runs once", crate::ast::Duration(*millis)
    )]
    IntervalTooLong { millis: u64 },
    #[error(
        "the time {} is in the past (it is {} now): give a later time, or leave EXEC_INTERVAL \
         out to run the job now", at.format(TIMESTAMP_FORMAT), now.format(TIMESTAMP_FORMAT)
    )]
    Past {
        at: NaiveDateTime,
        now: NaiveDateTime,
    },
    #[error(
        "the local time {} does not exist: that night the clocks go forward from {} to {}; \
         give {} (the first time after the gap) or another time",
        at.format(TIMESTAMP_FORMAT), from.format("%H:%M:%S"), to.format("%H:%M:%S"),
        to.format(TIMESTAMP_FORMAT)
    )]
    Gap {
        at: NaiveDateTime,
        /// The first local time the clocks skip.
        from: NaiveDateTime,
        /// The first local time after the gap.
        to: NaiveDateTime,
    },
    #[error(
        "the cron expression '{expr}' has no time left after {}{}: give a later year",
        now.format(TIMESTAMP_FORMAT),
        last.map(|l| format!(" (its last was {})", l.format(TIMESTAMP_FORMAT))).unwrap_or_default()
    )]
    NoTimeLeft {
        expr: String,
        now: NaiveDateTime,
        last: Option<NaiveDateTime>,
    },
}

/// A schedule as the store keeps it (its text as written), compiled;
/// `None` for a job without one (it runs once). Text this batchsh cannot
/// read is an error for the job's notes.
pub fn stored(text: Option<&str>) -> Result<Option<Schedule>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let spec = crate::syntax::values::parse_schedule(text)
        .ok_or_else(|| format!("its schedule '{text}' cannot be read"))?;
    compile(&spec).map(Some).map_err(|e| e.to_string())
}

/// Reads a schedule: checks a cron expression's fields and that it fires
/// at all, and that an interval is neither zero nor absurdly long. Times
/// are checked against the clock by [`Schedule::first`].
pub fn compile(spec: &ScheduleSpec) -> Result<Schedule, ScheduleError> {
    match spec {
        ScheduleSpec::At(t) => Ok(Schedule::Once(*t)),
        ScheduleSpec::Every(d) => {
            let interval = std::time::Duration::from_millis(d.millis());
            if interval.is_zero() {
                Err(ScheduleError::ZeroInterval)
            } else if interval > LONGEST_INTERVAL {
                Err(ScheduleError::IntervalTooLong { millis: d.millis() })
            } else {
                Ok(Schedule::Every(interval))
            }
        }
        ScheduleSpec::Cron(text) => CronSchedule::compile(text).map(Schedule::Cron),
    }
}

impl Schedule {
    /// The first due time of a job created at `now`, times read on the
    /// clock of `tz`. `Once`: its local time (the earlier instant if the
    /// clocks show it twice), refused when past or skipped by the clocks.
    /// `Every`: `now`. `Cron`: the first slot strictly after `now`.
    pub fn first<Tz: TimeZone>(
        &self,
        now: DateTime<Utc>,
        tz: &Tz,
    ) -> Result<DateTime<Utc>, ScheduleError> {
        match self {
            Schedule::Once(at) => {
                if let Some(gap) = local::gap(*at, tz) {
                    return Err(ScheduleError::Gap {
                        at: *at,
                        from: gap.from,
                        to: gap.to,
                    });
                }
                let due = local::instant(*at, tz);
                if due < now {
                    return Err(ScheduleError::Past {
                        at: *at,
                        now: local::wall(now, tz),
                    });
                }
                Ok(due)
            }
            Schedule::Every(_) => Ok(now),
            Schedule::Cron(c) => {
                let mut steps = 0;
                let from = local::first_local_after(now, tz);
                match c.next(from, &mut steps) {
                    Some(slot) => Ok(local::instant(slot, tz)),
                    None => Err(ScheduleError::NoTimeLeft {
                        expr: c.text().to_string(),
                        now: local::wall(now, tz),
                        last: c.previous(from, &mut steps),
                    }),
                }
            }
        }
    }

    /// The due time after a run that was due at `due` and ended at
    /// `ended`: `Once`, none; `Every`, `ended` plus the interval; `Cron`,
    /// the first slot strictly after `due`, which may be past already (the
    /// caller fires it once, see [`Schedule::catch_up`]), or none when the
    /// expression's years are over.
    pub fn after<Tz: TimeZone>(
        &self,
        due: DateTime<Utc>,
        ended: DateTime<Utc>,
        tz: &Tz,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Once(_) => None,
            Schedule::Every(d) => ended.checked_add_signed(chrono::TimeDelta::from_std(*d).ok()?),
            Schedule::Cron(c) => {
                let slot = c.next(local::first_local_after(due, tz), &mut 0)?;
                Some(local::instant(slot, tz))
            }
        }
    }

    /// The due time to fire for a job due at `due` when it is `now`, and
    /// how many due times that skips. A cron job late by several slots
    /// fires once, for the latest slot at or before `now`; the skipped
    /// ones are its slots from `due` up to that one (local times, so two
    /// that a gap runs at one instant count as two). `Once`, `Every`, and
    /// a `due` not yet come: `(due, 0)`.
    pub fn catch_up<Tz: TimeZone>(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: &Tz,
    ) -> (DateTime<Utc>, u64) {
        let (at, skipped, _) = self.catch_up_counted(due, now, tz);
        (at, skipped)
    }

    /// [`Schedule::catch_up`], with the number of cron searches it made:
    /// two, plus one per day that has slots between `due` and `now`.
    fn catch_up_counted<Tz: TimeZone>(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: &Tz,
    ) -> (DateTime<Utc>, u64, u64) {
        let Schedule::Cron(c) = self else {
            return (due, 0, 0);
        };
        let mut steps = 0;
        if due >= now {
            return (due, 0, steps);
        }
        let Some(latest) = c.previous(local::first_local_after(now, tz), &mut steps) else {
            return (due, 0, steps);
        };
        let at = local::instant(latest, tz);
        if at <= due {
            return (due, 0, steps);
        }
        let skipped = c.count(local::first_local_from(due, tz), latest, &mut steps);
        (at, skipped, steps)
    }
}
