//! Local times and the instants they run at. A schedule is read on the wall
//! clock of a time zone; this module is the one place that turns a wall
//! clock time into a UTC instant and back, with one rule for daylight
//! saving: a local time runs at the first instant whose clock shows it or a
//! later time. So a time the clocks skip (the spring-forward gap) runs at
//! the first instant after the gap, and a time the clocks show twice (the
//! fall-back overlap) runs at the earlier of the two.
//!
//! Everything here works in whole seconds, as cron does.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};

/// The instant the local time `wall` runs at: the first instant whose clock
/// shows `wall` or a later time.
pub(super) fn instant<Tz: TimeZone>(wall: NaiveDateTime, tz: &Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => gap_end(wall, tz),
    }
}

/// What the clock of `tz` shows at `t`.
pub(super) fn wall<Tz: TimeZone>(t: DateTime<Utc>, tz: &Tz) -> NaiveDateTime {
    t.with_timezone(tz).naive_local()
}

/// The local times the clocks skip: from the first of them up to (not
/// including) the first time after the gap.
pub(super) struct Gap {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

/// The gap `wall` falls in, if the clocks of `tz` skip it.
pub(super) fn gap<Tz: TimeZone>(wall: NaiveDateTime, tz: &Tz) -> Option<Gap> {
    if !matches!(tz.from_local_datetime(&wall), LocalResult::None) {
        return None;
    }
    let at = gap_end(wall, tz);
    Some(Gap {
        from: self::wall(at - TimeDelta::seconds(1), tz) + TimeDelta::seconds(1),
        to: self::wall(at, tz),
    })
}

/// The first instant whose clock shows `wall` or later, for a `wall` in a
/// gap. chrono does not say where a time zone's transitions lie, so this
/// bisects the seconds around `wall`: within a day either side of it the
/// clock only moves forward across a gap, and an offset from UTC is less
/// than a day, so `wall` read as UTC less a day shows an earlier time and
/// `wall` read as UTC plus a day a later one. About 18 steps.
fn gap_end<Tz: TimeZone>(wall: NaiveDateTime, tz: &Tz) -> DateTime<Utc> {
    let shows = |secs: i64| -> NaiveDateTime {
        let utc = DateTime::from_timestamp(secs, 0)
            .unwrap_or_default()
            .naive_utc();
        let offset = tz.offset_from_utc_datetime(&utc).fix();
        utc + TimeDelta::seconds(i64::from(offset.local_minus_utc()))
    };
    let mid = wall.and_utc().timestamp();
    let (mut before, mut after) = (mid - 86_400, mid + 86_400);
    while after - before > 1 {
        let m = before + (after - before) / 2;
        if shows(m) >= wall {
            after = m;
        } else {
            before = m;
        }
    }
    DateTime::from_timestamp(after, 0).unwrap_or_default()
}

/// The earliest whole-second local time that runs at `t` or later: every
/// local time from it on runs at `t` or later, every one before it ran
/// earlier.
///
/// Mostly this is what the clock shows at `t`. It is earlier when the time
/// before that lies in a gap (those times run at `t` too) and later when `t`
/// is in the second pass of an overlap (those times ran in the first pass).
pub(super) fn first_local_from<Tz: TimeZone>(t: DateTime<Utc>, tz: &Tz) -> NaiveDateTime {
    let t = ceil_second(t);
    let one = TimeDelta::seconds(1);
    let shown = wall(t, tz);
    let runs_from = |w: NaiveDateTime| instant(w, tz) >= t;
    if runs_from(shown) && !runs_from(shown - one) {
        return shown;
    }
    // Times run in the order of the clock (never earlier for a later
    // time), so bisect; offsets differ by less than a day.
    let (mut before, mut from) = (shown - TimeDelta::days(1), shown + TimeDelta::days(1));
    while from - before > one {
        let m = before + TimeDelta::seconds((from - before).num_seconds() / 2);
        if runs_from(m) {
            from = m;
        } else {
            before = m;
        }
    }
    from
}

/// The earliest whole-second local time that runs strictly after `t`.
pub(super) fn first_local_after<Tz: TimeZone>(t: DateTime<Utc>, tz: &Tz) -> NaiveDateTime {
    first_local_from(floor_second(t) + TimeDelta::seconds(1), tz)
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let f = floor_second(t);
    if f == t { f } else { f + TimeDelta::seconds(1) }
}
