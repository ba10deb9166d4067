//! How a single value reads as text: times, durations and floats, shared by
//! the three formats so that a value never prints two ways in one format.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use std::fmt::Display;
use std::time::Duration;

/// A time as the table shows it: `YYYY-MM-DD HH:MM:SS` in `tz` (the local
/// zone when printing; a fixed one in tests).
pub fn format_time_in<Tz>(t: &DateTime<Utc>, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    t.with_timezone(tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time as JSON and CSV carry it: RFC 3339 in UTC, whole seconds, `Z`.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `HH:MM:SS`, hours not wrapped at 24 (`27:03:09`): a batch that ran for a
/// day and a bit should say so, not look like a three-hour run. Fractions of
/// a second are dropped, as a clock does.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Milliseconds, saturating: JSON and CSV carry durations as integers.
pub(super) fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// At most two decimals, trailing zeros dropped (`12.5`, `100`, `0.33`):
/// rates and percentages read better without noise digits.
pub fn format_float(x: f64) -> String {
    let mut s = format!("{x:.2}");
    if s.contains('.') {
        let kept = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(kept);
    }
    // -0.001 rounds to "-0", which reads as a sign error.
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// A statement's time as `SET TIMING on` prints it, as psql's `\timing`
/// does: milliseconds with 3 decimals, and from a second on the same as a
/// clock (`Time: 75012.345 ms (01:15.012)`; hours and days when there are).
pub fn format_timing(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        return format!("Time: {ms:.3} ms");
    }
    let total = d.as_secs();
    let secs = d.as_secs_f64() - (total - total % 60) as f64;
    let (mins, hours, days) = (total / 60 % 60, total / 3600 % 24, total / 86_400);
    let clock = if total < 3600 {
        format!("{mins:02}:{secs:06.3}")
    } else if total < 86_400 {
        format!("{hours:02}:{mins:02}:{secs:06.3}")
    } else {
        format!("{days} d {hours:02}:{mins:02}:{secs:06.3}")
    };
    format!("Time: {ms:.3} ms ({clock})")
}
