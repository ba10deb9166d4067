//! Times in monitoring: the bounds of `FROM_DATE` / `TO_DATE`, and times
//! as the store keeps them and as cells show them.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Inclusive lower bound: a day's first instant, or the instant.
    From,
    /// Exclusive upper bound: the next day's first instant, or just past
    /// the instant (the store keeps milliseconds).
    Until,
}

/// A time filter's text (`today`, `yesterday`, `now`, `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM:SS` local, RFC 3339) as a bound; `None` when the text
/// is not a time. Local days and times are read in `tz`.
pub fn time_bound<Tz: TimeZone>(
    text: &str,
    bound: Bound,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Option<DateTime<Utc>> {
    let t = text.trim();
    let today = now.with_timezone(tz).date_naive();
    let day = if t.eq_ignore_ascii_case("today") {
        Some(today)
    } else if t.eq_ignore_ascii_case("yesterday") {
        today.pred_opt()
    } else {
        NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()
    };
    if let Some(day) = day {
        let day = match bound {
            Bound::From => day,
            Bound::Until => day.succ_opt()?,
        };
        return local_instant(&day.and_hms_opt(0, 0, 0)?, tz);
    }
    let instant = if t.eq_ignore_ascii_case("now") {
        now
    } else if let Ok(local) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
        local_instant(&local, tz)?
    } else {
        DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc)
    };
    Some(match bound {
        Bound::From => instant,
        Bound::Until => instant
            .checked_add_signed(TimeDelta::milliseconds(1))
            .unwrap_or(instant),
    })
}

/// A local wall-clock time as an instant. In a DST fold the earlier one;
/// in a gap (the clock jumped over it, midnight included in some zones)
/// the first instant after the gap.
pub(super) fn local_instant<Tz: TimeZone>(local: &NaiveDateTime, tz: &Tz) -> Option<DateTime<Utc>> {
    (0..=4)
        .find_map(|h| {
            let shifted = local.checked_add_signed(TimeDelta::minutes(30 * h))?;
            tz.from_local_datetime(&shifted).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// An instant as the store writes times: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(super) fn store_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A date filter's bound as text to compare with stored times, which are
/// all within the years 0000 to 9999: a bound outside them is held to
/// their ends (`+10000-...` and `-0001-...` would sort wrongly as text).
pub(super) fn bound_time(t: &DateTime<Utc>) -> String {
    match t.year() {
        ..0 => "0000-01-01T00:00:00.000Z".to_string(),
        10000.. => "9999-12-31T23:59:59.999Z".to_string(),
        _ => store_time(t),
    }
}

/// A stored time in milliseconds since the epoch.
pub(super) fn millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

pub(super) fn utc_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Milliseconds from `start` to `end`, never negative (clocks of two
/// nodes may disagree); `None` without a start.
pub(super) fn span_ms(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some((end? - start?).max(0))
}

pub(super) fn ms_duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A stored time as a cell; text that is not a time is shown as it is.
pub(super) fn time_cell(s: Option<&str>) -> Cell {
    match s {
        None => Cell::Null,
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Cell::Time(t.with_timezone(&Utc)))
            .unwrap_or_else(|_| Cell::Text(s.to_string())),
    }
}
