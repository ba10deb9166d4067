//! The window rules of a named series (SPEC §9), pure: where the next run
//! of a series starts reading (`from_date`), given how its last run ended.
//!
//! A `from_date` is a local wall-clock time written as text
//! (`2026-11-21 00:00:00`), as Batchy hands it out: the ETL step compares
//! it with its own local timestamps. It is computed once, when a run opens,
//! and stored with the run; a failed run's next run gets the same text
//! again, so nothing a failed run should have read is skipped.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// How `from_date` and the run's start are written.
pub use crate::ast::TIMESTAMP_FORMAT as TIME_FORMAT;

/// The first run's `from_date` when `WINDOW_SET` gave none.
pub const EPOCH_START: &str = "1970-01-01 00:00:00";

/// A series' settings that shape its windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `REPROCESS_HOURS`: how far before the last clean run's start the
    /// next window begins (elapsed hours, not wall-clock ones).
    pub reprocess_hours: i64,
    /// `TRUNC_START`: the next window begins at local midnight.
    pub trunc_start: bool,
}

/// What the series' latest ended run says about the next window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Last {
    /// No run has ended yet.
    Nothing,
    /// It ended DONE with no failure: the next window follows it.
    Clean { start: DateTime<Utc> },
    /// It failed, was cancelled, or ended DONE with failures: the next
    /// window is its window again.
    Repeat { from_date: String },
}

/// The next run's `from_date`: the one `WINDOW_SET` gave (`set`), if any,
/// else as the last run calls for, in the time zone `tz`.
pub fn next_from_date<Tz: TimeZone>(
    set: Option<&str>,
    last: &Last,
    settings: Settings,
    tz: &Tz,
) -> String {
    if let Some(s) = set {
        return s.to_string();
    }
    match last {
        Last::Nothing => EPOCH_START.to_string(),
        Last::Repeat { from_date } => from_date.clone(),
        Last::Clean { start } => {
            let from = *start - chrono::Duration::hours(settings.reprocess_hours.max(0));
            let local = from.with_timezone(tz).naive_local();
            let local = if settings.trunc_start {
                // Midnight as wall-clock text, never turned back into an
                // instant: on a day whose midnight was skipped (a DST
                // change at 00:00) it names a time that did not occur,
                // earlier than the day's first one; on a day whose
                // midnight came twice it is the earlier. Either way no row
                // stamped that day is left out.
                local.date().and_hms_opt(0, 0, 0).unwrap_or(local)
            } else {
                local
            };
            local.format(TIME_FORMAT).to_string()
        }
    }
}

/// A time as written in `WINDOW_SET FROM_DATE=` (`'2026-01-01'`,
/// `'2026-01-01 06:00:00'`, RFC 3339, `'today'`, `'yesterday'`, `'now'`),
/// as the local wall-clock text of a `from_date`; `None` when it is no time.
pub fn parse_from_date<Tz: TimeZone>(s: &str, now: DateTime<Utc>, tz: &Tz) -> Option<String> {
    let t = s.trim();
    let today = now.with_timezone(tz).date_naive();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    let local: NaiveDateTime = if t.eq_ignore_ascii_case("now") {
        now.with_timezone(tz).naive_local()
    } else if t.eq_ignore_ascii_case("today") {
        midnight(today)?
    } else if t.eq_ignore_ascii_case("yesterday") {
        midnight(today.pred_opt()?)?
    } else if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        midnight(d)?
    } else if let Some(ts) = crate::ast::parse_timestamp(t) {
        ts
    } else {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()?
            .with_timezone(tz)
            .naive_local()
    };
    Some(local.format(TIME_FORMAT).to_string())
}

/// An instant as local wall-clock text, as `batch_start` is handed out.
pub fn local_text<Tz: TimeZone>(t: DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz)
        .naive_local()
        .format(TIME_FORMAT)
        .to_string()
}

#[cfg(test)]
mod tests;
