//! Schedules as tables, in UTC, Europe/Berlin and America/New_York. Times
//! are written as local time with its offset, so a row shows both what the
//! clock says and which instant it is.
//!
//! The daylight-saving days of 2027: Berlin springs forward on 28 March
//! (02:00 CET -> 03:00 CEST) and falls back on 31 October (03:00 CEST ->
//! 02:00 CET, 02:00-02:59 twice); New York springs forward on 14 March
//! (02:00 EST -> 03:00 EDT) and falls back on 7 November (02:00 EDT ->
//! 01:00 EST, 01:00-01:59 twice).

use super::*;
use crate::ast::Duration;
use chrono::TimeDelta;
use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;
use chrono_tz::{Tz, UTC};

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect(s)
}

/// `"2027-03-28 03:00:00 +02:00"` -> the instant.
fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %:z")
        .expect(s)
        .with_timezone(&Utc)
}

/// An instant as the clock of `tz` shows it, with its offset.
fn show(t: DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

fn cron(expr: &str) -> Schedule {
    compile(&ScheduleSpec::Cron(expr.to_string())).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn cron_error(expr: &str) -> String {
    match compile(&ScheduleSpec::Cron(expr.to_string())) {
        Ok(_) => panic!("{expr} compiled"),
        Err(e) => e.to_string(),
    }
}

/// The first `n` due times of a job created at `now`, each run taken to
/// end when it starts.
fn due_times(s: &Schedule, tz: &Tz, now: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut due = s.first(instant(now), tz).expect("a first due time");
    for _ in 0..n {
        out.push(show(due, tz));
        match s.after(due, due, tz) {
            Some(next) => due = next,
            None => break,
        }
    }
    out
}

/// One row: the zone, the expression, when the job is created, and its
/// first due times.
type Row = (
    &'static Tz,
    &'static str,
    &'static str,
    &'static [&'static str],
);

fn check(rows: &[Row]) {
    let mut failures = Vec::new();
    for &(tz, expr, now, want) in rows {
        let got = due_times(&cron(expr), tz, now, want.len());
        if got != want {
            failures.push(format!(
                "{tz} '{expr}' from {now}:\n  got  {got:?}\n  want {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cron_due_times_in_three_zones() {
    check(&[
        (
            &UTC,
            "0 2 * * *",
            "2027-01-10 01:59:59 +00:00",
            &[
                "2027-01-10 02:00:00 +00:00",
                "2027-01-11 02:00:00 +00:00",
                "2027-01-12 02:00:00 +00:00",
            ],
        ),
        // Strictly after: created on a slot, the job waits for the next.
        (
            &UTC,
            "0 2 * * *",
            "2027-01-10 02:00:00 +00:00",
            &["2027-01-11 02:00:00 +00:00"],
        ),
        (
            &UTC,
            "*/15 9-10 * * 1-5",
            "2027-01-08 10:50:00 +00:00",
            &["2027-01-11 09:00:00 +00:00", "2027-01-11 09:15:00 +00:00"],
        ),
        (
            &Berlin,
            "0 2 * * *",
            "2027-01-10 01:59:59 +01:00",
            &["2027-01-10 02:00:00 +01:00", "2027-01-11 02:00:00 +01:00"],
        ),
        (
            &Berlin,
            "0 9 * * MON",
            "2027-06-01 12:00:00 +02:00",
            &["2027-06-07 09:00:00 +02:00", "2027-06-14 09:00:00 +02:00"],
        ),
        (
            &New_York,
            "0 2 * * *",
            "2027-01-10 01:59:59 -05:00",
            &["2027-01-10 02:00:00 -05:00", "2027-01-11 02:00:00 -05:00"],
        ),
        (
            &New_York,
            "30 17 1 * *",
            "2027-07-04 00:00:00 -04:00",
            &["2027-08-01 17:30:00 -04:00", "2027-09-01 17:30:00 -04:00"],
        ),
        // Sunday is 0 and 7 in a crontab, 1 (or SUN) in Quartz.
        (
            &UTC,
            "0 12 * * 0",
            "2027-01-01 00:00:00 +00:00",
            &["2027-01-03 12:00:00 +00:00"],
        ),
        (
            &UTC,
            "0 12 * * 7",
            "2027-01-01 00:00:00 +00:00",
            &["2027-01-03 12:00:00 +00:00"],
        ),
        (
            &UTC,
            "0 0 12 ? * 1",
            "2027-01-01 00:00:00 +00:00",
            &["2027-01-03 12:00:00 +00:00"],
        ),
        (
            &UTC,
            "0 0 12 ? * SUN",
            "2027-01-01 00:00:00 +00:00",
            &["2027-01-03 12:00:00 +00:00"],
        ),
    ]);
}

/// Quartz's `L`, `W`, `#`, `?`, seconds and years, and the crontab
/// spellings of the same. January 2027 starts on a Friday.
#[test]
fn quartz_forms() {
    check(&[
        // L: the last day of the month.
        (
            &Berlin,
            "0 0 12 L * ?",
            "2027-01-15 00:00:00 +01:00",
            &[
                "2027-01-31 12:00:00 +01:00",
                "2027-02-28 12:00:00 +01:00",
                "2027-03-31 12:00:00 +02:00",
            ],
        ),
        // LW: the last weekday (31 January and 28 February are Sundays).
        (
            &Berlin,
            "0 0 12 LW * ?",
            "2027-01-15 00:00:00 +01:00",
            &[
                "2027-01-29 12:00:00 +01:00",
                "2027-02-26 12:00:00 +01:00",
                "2027-03-31 12:00:00 +02:00",
            ],
        ),
        // 15W: the weekday nearest the 15th (15 May 2027 is a Saturday,
        // 15 August a Sunday).
        (
            &New_York,
            "0 0 12 15W * ?",
            "2027-05-01 00:00:00 -04:00",
            &[
                "2027-05-14 12:00:00 -04:00",
                "2027-06-15 12:00:00 -04:00",
                "2027-07-15 12:00:00 -04:00",
                "2027-08-16 12:00:00 -04:00",
            ],
        ),
        // 2#1: the first Monday (Quartz: 2 is Monday).
        (
            &New_York,
            "0 0 9 ? * 2#1",
            "2027-01-01 00:00:00 -05:00",
            &[
                "2027-01-04 09:00:00 -05:00",
                "2027-02-01 09:00:00 -05:00",
                "2027-03-01 09:00:00 -05:00",
            ],
        ),
        (
            &New_York,
            "0 9 * * 1#1",
            "2027-01-01 00:00:00 -05:00",
            &["2027-01-04 09:00:00 -05:00", "2027-02-01 09:00:00 -05:00"],
        ),
        // 6L: the last Friday (Quartz: 6 is Friday); 5L in a crontab.
        (
            &Berlin,
            "0 0 9 ? * 6L",
            "2027-01-01 00:00:00 +01:00",
            &[
                "2027-01-29 09:00:00 +01:00",
                "2027-02-26 09:00:00 +01:00",
                "2027-03-26 09:00:00 +01:00",
            ],
        ),
        (
            &Berlin,
            "0 9 * * 5L",
            "2027-01-01 00:00:00 +01:00",
            &["2027-01-29 09:00:00 +01:00", "2027-02-26 09:00:00 +01:00"],
        ),
        (
            &UTC,
            "0 0 9 ? * MON-FRI",
            "2027-01-01 10:00:00 +00:00",
            &["2027-01-04 09:00:00 +00:00", "2027-01-05 09:00:00 +00:00"],
        ),
        // Seconds, and Quartz's 0/20 step.
        (
            &UTC,
            "*/20 * * * * ?",
            "2027-01-01 10:00:05 +00:00",
            &[
                "2027-01-01 10:00:20 +00:00",
                "2027-01-01 10:00:40 +00:00",
                "2027-01-01 10:01:00 +00:00",
            ],
        ),
        (
            &UTC,
            "0/20 * * * * ?",
            "2027-01-01 10:00:05 +00:00",
            &["2027-01-01 10:00:20 +00:00"],
        ),
        // A year: once, then no more.
        (
            &New_York,
            "0 0 0 1 1 ? 2028",
            "2027-06-01 00:00:00 -04:00",
            &["2028-01-01 00:00:00 -05:00"],
        ),
        (
            &UTC,
            "0 30 6 1 1,7 ? 2027-2028",
            "2027-03-01 00:00:00 +00:00",
            &[
                "2027-07-01 06:30:00 +00:00",
                "2028-01-01 06:30:00 +00:00",
                "2028-07-01 06:30:00 +00:00",
            ],
        ),
    ]);
    let s = cron("0 0 0 1 1 ? 2028");
    let last = instant("2028-01-01 00:00:00 -05:00");
    assert_eq!(s.after(last, last, &New_York), None, "no year after 2028");
}

/// Spring forward: a local time the clocks skip runs once, just after the
/// gap, whatever the expression (croner itself skips the 02:30 of
/// `30 1,2 * * *`).
#[test]
fn spring_forward_2027() {
    check(&[
        (
            &Berlin,
            "30 2 * * *",
            "2027-03-27 12:00:00 +01:00",
            &["2027-03-28 03:00:00 +02:00", "2027-03-29 02:30:00 +02:00"],
        ),
        (
            &New_York,
            "30 2 * * *",
            "2027-03-13 12:00:00 -05:00",
            &["2027-03-14 03:00:00 -04:00", "2027-03-15 02:30:00 -04:00"],
        ),
        (
            &Berlin,
            "30 1,2 * * *",
            "2027-03-28 00:00:00 +01:00",
            &[
                "2027-03-28 01:30:00 +01:00",
                "2027-03-28 03:00:00 +02:00",
                "2027-03-29 01:30:00 +02:00",
            ],
        ),
        // 02:00, 02:30 and 03:00 all run at 03:00, once.
        (
            &Berlin,
            "*/30 * * * *",
            "2027-03-28 01:00:00 +01:00",
            &[
                "2027-03-28 01:30:00 +01:00",
                "2027-03-28 03:00:00 +02:00",
                "2027-03-28 03:30:00 +02:00",
            ],
        ),
        (
            &New_York,
            "0 * * * *",
            "2027-03-14 00:30:00 -05:00",
            &[
                "2027-03-14 01:00:00 -05:00",
                "2027-03-14 03:00:00 -04:00",
                "2027-03-14 04:00:00 -04:00",
            ],
        ),
        // Quartz, with seconds: 02:30:15 runs at 03:00:00.
        (
            &New_York,
            "15 30 2 * * ?",
            "2027-03-14 00:00:00 -05:00",
            &["2027-03-14 03:00:00 -04:00", "2027-03-15 02:30:15 -04:00"],
        ),
        // Created in the gap's place: 01:59:59 CET is the last second
        // before it; the 02:30 slot is still ahead.
        (
            &Berlin,
            "30 2 * * *",
            "2027-03-28 01:59:59 +01:00",
            &["2027-03-28 03:00:00 +02:00"],
        ),
        // Created just after the gap, the day's 02:30 has run.
        (
            &Berlin,
            "30 2 * * *",
            "2027-03-28 03:00:00 +02:00",
            &["2027-03-29 02:30:00 +02:00"],
        ),
    ]);
}

/// Fall back: a local time the clocks show twice runs once, the first
/// time; a pattern with `*` or a step too (croner would run it twice).
#[test]
fn fall_back_2027() {
    check(&[
        (
            &Berlin,
            "30 2 * * *",
            "2027-10-30 12:00:00 +02:00",
            &["2027-10-31 02:30:00 +02:00", "2027-11-01 02:30:00 +01:00"],
        ),
        (
            &New_York,
            "30 1 * * *",
            "2027-11-06 12:00:00 -04:00",
            &["2027-11-07 01:30:00 -04:00", "2027-11-08 01:30:00 -05:00"],
        ),
        (
            &Berlin,
            "*/30 * * * *",
            "2027-10-31 01:00:00 +02:00",
            &[
                "2027-10-31 01:30:00 +02:00",
                "2027-10-31 02:00:00 +02:00",
                "2027-10-31 02:30:00 +02:00",
                "2027-10-31 03:00:00 +01:00",
            ],
        ),
        (
            &New_York,
            "0 * * * *",
            "2027-11-07 00:30:00 -04:00",
            &["2027-11-07 01:00:00 -04:00", "2027-11-07 02:00:00 -05:00"],
        ),
        // Created during the second pass: its times ran in the first, so
        // the next is the first after the overlap.
        (
            &Berlin,
            "*/30 * * * *",
            "2027-10-31 02:10:00 +01:00",
            &["2027-10-31 03:00:00 +01:00"],
        ),
        (
            &New_York,
            "45 1 * * *",
            "2027-11-07 01:30:00 -05:00",
            &["2027-11-08 01:45:00 -05:00"],
        ),
        // Created during the first pass, the rest of it is ahead.
        (
            &New_York,
            "45 1 * * *",
            "2027-11-07 01:30:00 -04:00",
            &["2027-11-07 01:45:00 -04:00"],
        ),
    ]);
}

#[test]
fn once_runs_at_its_local_time() {
    let at = |s: &str| Schedule::Once(local(s));
    let now = instant("2027-01-01 00:00:00 +00:00");
    for (tz, time, due) in [
        (&UTC, "2027-03-28 02:30:00", "2027-03-28 02:30:00 +00:00"),
        (&Berlin, "2027-06-01 08:00:00", "2027-06-01 08:00:00 +02:00"),
        (
            &New_York,
            "2027-06-01 08:00:00",
            "2027-06-01 08:00:00 -04:00",
        ),
        // Shown twice: the earlier instant.
        (&Berlin, "2027-10-31 02:30:00", "2027-10-31 02:30:00 +02:00"),
        (
            &New_York,
            "2027-11-07 01:30:00",
            "2027-11-07 01:30:00 -04:00",
        ),
        // Now is not past.
        (&UTC, "2027-01-01 00:00:00", "2027-01-01 00:00:00 +00:00"),
    ] {
        let s = at(time);
        let first = s.first(now, tz).expect(time);
        assert_eq!(show(first, tz), due, "{tz} {time}");
        assert_eq!(s.after(first, first, tz), None, "once is once");
        assert_eq!(
            s.catch_up(first, first + TimeDelta::days(3), tz),
            (first, 0)
        );
    }
}

#[test]
fn once_refuses_the_past_and_a_gap() {
    let now = instant("2027-05-01 10:00:00 +02:00");
    let past = Schedule::Once(local("2027-05-01 09:59:59"));
    let e = past.first(now, &Berlin).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the time 2027-05-01 09:59:59 is in the past (it is 2027-05-01 10:00:00 now): give a \
         later time, or leave EXEC_INTERVAL out to run the job now"
    );
    // The same local time is still ahead in New York.
    assert!(past.first(now, &New_York).is_ok());

    let now = instant("2027-01-01 00:00:00 +00:00");
    for (tz, time, message) in [
        (
            &Berlin,
            "2027-03-28 02:30:00",
            "the local time 2027-03-28 02:30:00 does not exist: that night the clocks go forward \
             from 02:00:00 to 03:00:00; give 2027-03-28 03:00:00 (the first time after the gap) \
             or another time",
        ),
        (
            &New_York,
            "2027-03-14 02:00:00",
            "the local time 2027-03-14 02:00:00 does not exist: that night the clocks go forward \
             from 02:00:00 to 03:00:00; give 2027-03-14 03:00:00 (the first time after the gap) \
             or another time",
        ),
        (
            &New_York,
            "2027-03-14 02:59:59",
            "the local time 2027-03-14 02:59:59 does not exist: that night the clocks go forward \
             from 02:00:00 to 03:00:00; give 2027-03-14 03:00:00 (the first time after the gap) \
             or another time",
        ),
    ] {
        let e = Schedule::Once(local(time)).first(now, tz).unwrap_err();
        assert_eq!(e.to_string(), message, "{tz}");
    }
    // Either side of the gap is fine.
    for time in ["2027-03-28 01:59:59", "2027-03-28 03:00:00"] {
        assert!(Schedule::Once(local(time)).first(now, &Berlin).is_ok());
    }
    // UTC has no gap.
    assert!(
        Schedule::Once(local("2027-03-28 02:30:00"))
            .first(now, &UTC)
            .is_ok()
    );
}

#[test]
fn every_runs_at_once_then_after_each_end() {
    let s = compile(&ScheduleSpec::Every(Duration(15 * 60_000))).expect("15m");
    assert_eq!(s, Schedule::Every(std::time::Duration::from_secs(900)));
    for tz in [&UTC, &Berlin, &New_York] {
        let now = instant("2027-03-28 01:50:00 +01:00");
        assert_eq!(s.first(now, tz), Ok(now));
        // Counted from the end of the run, in real time: across Berlin's
        // gap, 01:50 + 40 minutes of run + 15 minutes is 03:45 CEST.
        let ended = now + TimeDelta::minutes(40);
        let next = s.after(now, ended, tz).expect("next");
        assert_eq!(next, ended + TimeDelta::minutes(15));
        assert_eq!(s.catch_up(now, now + TimeDelta::days(3), tz), (now, 0));
    }
    let next = s
        .after(
            instant("2027-03-28 01:50:00 +01:00"),
            instant("2027-03-28 01:50:00 +01:00") + TimeDelta::minutes(40),
            &Berlin,
        )
        .expect("next");
    assert_eq!(show(next, &Berlin), "2027-03-28 03:45:00 +02:00");
}

#[test]
fn intervals_of_zero_or_centuries_are_refused() {
    assert_eq!(
        compile(&ScheduleSpec::Every(Duration(0))),
        Err(ScheduleError::ZeroInterval)
    );
    assert_eq!(
        ScheduleError::ZeroInterval.to_string(),
        "an interval of zero would run the job without a pause: give an interval greater than \
         zero, such as '00:15:00'"
    );
    let e = compile(&ScheduleSpec::Every(Duration(200 * 365 * 86_400_000))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "an interval of 73000d is longer than 100 years: give a shorter one, or AT a time for a \
         job that runs once"
    );
}

/// A cron job that nothing fired for three days fires once, for the latest
/// slot, and says how many it skipped: counted by hand, in a handful of
/// searches however many slots there are.
#[test]
fn catch_up_fires_once_for_the_latest_slot() {
    // (zone, expression, due, now, fires at, skipped, searches at most)
    type Late = (
        &'static Tz,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        u64,
        u64,
    );
    let rows: &[Late] = &[
        // Every minute for 3 days: the slots from the due one up to the
        // one that fires, 3 x 24 x 60.
        (
            &UTC,
            "* * * * *",
            "2027-01-10 12:00:00 +00:00",
            "2027-01-13 12:00:30 +00:00",
            "2027-01-13 12:00:00 +00:00",
            4320,
            6,
        ),
        // Every second for 3 days: 3 x 86,400.
        (
            &UTC,
            "* * * * * *",
            "2027-01-10 12:00:00 +00:00",
            "2027-01-13 12:00:00 +00:00",
            "2027-01-13 12:00:00 +00:00",
            259_200,
            6,
        ),
        // Daily at 02:00, due on the 10th, now the 13th at 10:00: the
        // 10th, 11th and 12th are skipped, the 13th fires.
        (
            &Berlin,
            "0 2 * * *",
            "2027-01-10 02:00:00 +01:00",
            "2027-01-13 10:00:00 +01:00",
            "2027-01-13 02:00:00 +01:00",
            3,
            6,
        ),
        // Weekdays at 09:00 and 17:00, due Friday 8 January at 17:00, now
        // Tuesday 12th at 12:00: Fri 17:00, Mon 09:00, Mon 17:00 skipped,
        // Tue 09:00 fires.
        (
            &New_York,
            "0 9,17 * * 1-5",
            "2027-01-08 17:00:00 -05:00",
            "2027-01-12 12:00:00 -05:00",
            "2027-01-12 09:00:00 -05:00",
            3,
            8,
        ),
        // Every minute across Berlin's fall-back night: local times, the
        // repeated hour once: 3 x 1440.
        (
            &Berlin,
            "* * * * *",
            "2027-10-30 12:00:00 +02:00",
            "2027-11-02 12:00:00 +01:00",
            "2027-11-02 12:00:00 +01:00",
            4320,
            6,
        ),
        // And across New York's spring-forward night: the 60 skipped
        // minutes ran at 03:00 and are counted as local times too.
        (
            &New_York,
            "* * * * *",
            "2027-03-13 12:00:00 -05:00",
            "2027-03-16 12:00:00 -04:00",
            "2027-03-16 12:00:00 -04:00",
            4320,
            6,
        ),
        // Late by less than a slot: fires its own due time, nothing skipped.
        (
            &UTC,
            "0 2 * * *",
            "2027-01-10 02:00:00 +00:00",
            "2027-01-10 09:00:00 +00:00",
            "2027-01-10 02:00:00 +00:00",
            0,
            2,
        ),
        // Ten years of a daily job: a search per day, no more.
        (
            &UTC,
            "0 2 * * *",
            "2017-01-10 02:00:00 +00:00",
            "2027-01-10 09:00:00 +00:00",
            "2027-01-10 02:00:00 +00:00",
            3652,
            3655,
        ),
    ];
    let mut failures = Vec::new();
    for &(tz, expr, due, now, fires, skipped, most) in rows {
        let (at, n, steps) = cron(expr).catch_up_counted(instant(due), instant(now), tz);
        if (show(at, tz).as_str(), n) != (fires, skipped) || steps > most {
            failures.push(format!(
                "{tz} '{expr}' due {due} now {now}: fires {} skipping {n} in {steps} searches; \
                 want {fires} skipping {skipped} in at most {most}",
                show(at, tz)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn catch_up_leaves_a_job_on_time_alone() {
    let s = cron("0 2 * * *");
    let due = instant("2027-01-10 02:00:00 +00:00");
    assert_eq!(s.catch_up(due, due, &UTC), (due, 0));
    assert_eq!(s.catch_up(due, due - TimeDelta::hours(1), &UTC), (due, 0));
    // A due time that is no slot (the schedule was changed) and has no
    // slot after it before now: fired as it is.
    let odd = instant("2027-01-10 03:00:00 +00:00");
    assert_eq!(s.catch_up(odd, odd + TimeDelta::hours(5), &UTC), (odd, 0));
}

/// After a catch-up, the next due time is the slot after the one fired.
#[test]
fn after_a_catch_up_the_next_slot_comes() {
    let s = cron("0 2 * * *");
    let (fired, _) = s.catch_up(
        instant("2027-01-10 02:00:00 +01:00"),
        instant("2027-01-13 10:00:00 +01:00"),
        &Berlin,
    );
    let next = s.after(fired, instant("2027-01-13 10:00:05 +01:00"), &Berlin);
    assert_eq!(
        next.map(|t| show(t, &Berlin)).as_deref(),
        Some("2027-01-14 02:00:00 +01:00")
    );
}

#[test]
fn cron_field_errors_name_the_field_and_its_range() {
    let rows: &[(&str, &str)] = &[
        (
            "61 * * * *",
            "the minute field of '61 * * * *' is 61: minutes run 0-59",
        ),
        (
            "0-61 * * * *",
            "the minute field of '0-61 * * * *' has 61 (in 0-61): minutes run 0-59",
        ),
        (
            "0 24 * * *",
            "the hour field of '0 24 * * *' is 24: hours run 0-23",
        ),
        (
            "0 0 32 * *",
            "the day-of-month field of '0 0 32 * *' is 32: days of the month run 1-31, or L (the \
             last day), 15W (the weekday nearest the 15th), LW (the last weekday) or ?",
        ),
        (
            "0 0 0 * *",
            "the day-of-month field of '0 0 0 * *' is 0: days of the month run 1-31, or L (the \
             last day), 15W (the weekday nearest the 15th), LW (the last weekday) or ?",
        ),
        (
            "0 0 1 13 *",
            "the month field of '0 0 1 13 *' is 13: months run 1-12 or JAN-DEC",
        ),
        (
            "0 0 * * 8",
            "the day-of-week field of '0 0 * * 8' is 8: days of the week run 0-7 or SUN-SAT, 0 \
             and 7 being Sunday, with 5L (the last Friday of the month), 5#2 (the second \
             Friday) or ?",
        ),
        (
            "JAN 0 * * *",
            "the minute field of 'JAN 0 * * *' is JAN, which is no minute: minutes run 0-59",
        ),
        (
            "0 0 * * JAN",
            "the day-of-week field of '0 0 * * JAN' is JAN, which is no day-of-week: days of \
             the week run 0-7 or SUN-SAT, 0 and 7 being Sunday, with 5L (the last Friday of the \
             month), 5#2 (the second Friday) or ?",
        ),
        (
            "0 0 * * 5#6",
            "the day-of-week field of '0 0 * * 5#6' has #6 (in 5#6): the n of D#n counts that \
             weekday in the month, 1-5 (or L for the last)",
        ),
        (
            "0 0 * * L",
            "the day-of-week field of '0 0 * * L' is L, which names no weekday: write 5L for \
             the last Friday of the month, or 6 or SAT for Saturdays",
        ),
        (
            "5/10 * * * *",
            "the minute field of '5/10 * * * *' is 5/10: invalid step syntax: single number \
             steps like \"5/10\" are not allowed. Use \"*/10\" for wildcard steps or \"X-Y/10\" \
             for range steps; minutes run 0-59",
        ),
        (
            "*/0 * * * *",
            "the minute field of '*/0 * * * *' is */0: step cannot be zero; minutes run 0-59",
        ),
        (
            "? * * * *",
            "the minute field of '? * * * *' is ?: it contains illegal character '?' in part \
             '?'; minutes run 0-59",
        ),
        (
            "0 0 1,5,L-3 * *",
            "the day-of-month field of '0 0 1,5,L-3 * *' is L-3: invalid start of range; days of \
             the month run 1-31, or L (the last day), 15W (the weekday nearest the 15th), LW \
             (the last weekday) or ?",
        ),
        // Quartz: seconds first, weekdays 1-7, a year last.
        (
            "60 0 0 * * ?",
            "the second field of '60 0 0 * * ?' is 60: seconds run 0-59",
        ),
        (
            "0 60 0 * * ?",
            "the minute field of '0 60 0 * * ?' is 60: minutes run 0-59",
        ),
        (
            "0 0 24 * * ?",
            "the hour field of '0 0 24 * * ?' is 24: hours run 0-23",
        ),
        (
            "0 0 0 32 * ?",
            "the day-of-month field of '0 0 0 32 * ?' is 32: days of the month run 1-31, or L \
             (the last day), 15W (the weekday nearest the 15th), LW (the last weekday) or ?",
        ),
        (
            "0 0 0 ? 0 *",
            "the month field of '0 0 0 ? 0 *' is 0: months run 1-12 or JAN-DEC",
        ),
        (
            "0 0 0 ? * 0",
            "the day-of-week field of '0 0 0 ? * 0' is 0: in a 6- or 7-field (Quartz) expression \
             days of the week run 1-7 or SUN-SAT, 1 being Sunday, with 6L (the last Friday of the \
             month), 6#2 (the second Friday) or ?",
        ),
        (
            "0 0 0 ? * L",
            "the day-of-week field of '0 0 0 ? * L' is L, which names no weekday: write 6L for \
             the last Friday of the month, or 7 or SAT for Saturdays",
        ),
        (
            "0 0 0 1 1 ? 1969",
            "the year field of '0 0 0 1 1 ? 1969' is 1969: years run 1970-2099",
        ),
        (
            "0 0 0 1 1 ? 2027-2100",
            "the year field of '0 0 0 1 1 ? 2027-2100' has 2100 (in 2027-2100): years run \
             1970-2099",
        ),
        (
            "0 0 0 1 1 ? */0",
            "the year field of '0 0 0 1 1 ? */0' is */0: step cannot be zero; years run 1970-2099",
        ),
        (
            "* * * *",
            "the cron expression '* * * *' has 4 fields: a crontab expression has 5 (minute hour \
             day-of-month month day-of-week), a Quartz expression 6 or 7 (second minute hour \
             day-of-month month day-of-week [year])",
        ),
        (
            "0 0 0 1 1 ? 2027 1",
            "the cron expression '0 0 0 1 1 ? 2027 1' has 8 fields: a crontab expression has 5 \
             (minute hour day-of-month month day-of-week), a Quartz expression 6 or 7 (second \
             minute hour day-of-month month day-of-week [year])",
        ),
    ];
    let mut failures = Vec::new();
    for &(expr, want) in rows {
        let got = cron_error(expr);
        if got != want {
            failures.push(format!("'{expr}':\n  got  {got}\n  want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_expression_that_never_fires_is_refused() {
    for (expr, want) in [
        (
            "30 2 30 2 *",
            "the cron expression '30 2 30 2 *' never fires: February has no 30th",
        ),
        (
            "0 0 31 4,6 *",
            "the cron expression '0 0 31 4,6 *' never fires: April and June have no 31st",
        ),
        (
            "0 0 31 FEB,APR,JUN *",
            "the cron expression '0 0 31 FEB,APR,JUN *' never fires: February, April and June \
             have no 31st",
        ),
        (
            "0 0 30,31 2 *",
            "the cron expression '0 0 30,31 2 *' never fires: February has no 30th or 31st",
        ),
        (
            "0 0 0 31 2 ?",
            "the cron expression '0 0 0 31 2 ?' never fires: February has no 31st",
        ),
        (
            "0 0 30W 2 *",
            "the cron expression '0 0 30W 2 *' never fires: no date fits its day, month and year \
             fields together",
        ),
    ] {
        assert_eq!(cron_error(expr), want);
    }
    // Days that some month has, or a weekday besides: these fire.
    for expr in [
        "0 0 29 2 *",
        "0 0 31 2,3 *",
        "0 0 30,31 FEB,APR,JUN *",
        "0 0 30 2 1",
        "0 0 31 * *",
        // Rare, far off: found all the same.
        "0 0 0 29 2 ? 2096",
        "59 59 23 31 12 ? 2099",
        "0 0 12 ? * 6L 2099",
    ] {
        cron(expr);
    }
}

#[test]
fn a_cron_expression_past_its_last_year_has_no_first_time() {
    let s = cron("0 0 0 1 1 ? 2020");
    let e = s
        .first(instant("2027-05-01 10:00:00 +02:00"), &Berlin)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the cron expression '0 0 0 1 1 ? 2020' has no time left after 2027-05-01 10:00:00 (its \
         last was 2020-01-01 00:00:00): give a later year"
    );
}

/// The local-time rule itself, around Berlin's 2027 transitions.
#[test]
fn local_times_and_their_instants() {
    let tz = &Berlin;
    for (wall, runs_at) in [
        ("2027-03-28 01:59:59", "2027-03-28 01:59:59 +01:00"),
        ("2027-03-28 02:00:00", "2027-03-28 03:00:00 +02:00"),
        ("2027-03-28 02:59:59", "2027-03-28 03:00:00 +02:00"),
        ("2027-03-28 03:00:00", "2027-03-28 03:00:00 +02:00"),
        ("2027-10-31 02:00:00", "2027-10-31 02:00:00 +02:00"),
        ("2027-10-31 02:59:59", "2027-10-31 02:59:59 +02:00"),
        ("2027-10-31 03:00:00", "2027-10-31 03:00:00 +01:00"),
    ] {
        assert_eq!(show(local::instant(local(wall), tz), tz), runs_at, "{wall}");
    }
    for (t, from) in [
        // Plain: what the clock shows.
        ("2027-06-01 12:00:00 +02:00", "2027-06-01 12:00:00"),
        // Just after the gap: the skipped times run then too.
        ("2027-03-28 03:00:00 +02:00", "2027-03-28 02:00:00"),
        // First pass of the overlap: what the clock shows.
        ("2027-10-31 02:30:00 +02:00", "2027-10-31 02:30:00"),
        // Second pass: the repeated times ran already.
        ("2027-10-31 02:30:00 +01:00", "2027-10-31 03:00:00"),
    ] {
        assert_eq!(local::first_local_from(instant(t), tz), local(from), "{t}");
    }
    // Sub-second instants round up to the next whole second.
    let t = instant("2027-06-01 12:00:00 +02:00") + TimeDelta::milliseconds(1);
    assert_eq!(local::first_local_from(t, tz), local("2027-06-01 12:00:01"));
    assert_eq!(
        local::first_local_after(instant("2027-06-01 12:00:00 +02:00"), tz),
        local("2027-06-01 12:00:01")
    );
}
