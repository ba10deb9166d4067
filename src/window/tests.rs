use super::*;
use chrono_tz::Tz;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn settings(reprocess_hours: i64, trunc_start: bool) -> Settings {
    Settings {
        reprocess_hours,
        trunc_start,
    }
}

#[test]
fn the_rules_of_the_next_window() {
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let clean = Last::Clean {
        start: utc("2026-11-21T13:30:00Z"), // 14:30 in Paris
    };
    let repeat = Last::Repeat {
        from_date: "2026-11-20 00:00:00".into(),
    };
    // (what WINDOW_SET gave, the last run, REPROCESS_HOURS, TRUNC_START, expected)
    let cases: &[(Option<&str>, &Last, i64, bool, &str)] = &[
        (None, &Last::Nothing, 0, false, "1970-01-01 00:00:00"),
        (None, &Last::Nothing, 5, true, "1970-01-01 00:00:00"),
        (
            Some("2026-01-01 00:00:00"),
            &Last::Nothing,
            0,
            false,
            "2026-01-01 00:00:00",
        ),
        (None, &clean, 0, false, "2026-11-21 14:30:00"),
        (None, &clean, 2, false, "2026-11-21 12:30:00"),
        (None, &clean, 2, true, "2026-11-21 00:00:00"),
        (None, &clean, 15, true, "2026-11-20 00:00:00"),
        (None, &clean, 0, true, "2026-11-21 00:00:00"),
        (None, &repeat, 2, true, "2026-11-20 00:00:00"),
        (
            Some("2026-05-01 06:00:00"),
            &clean,
            2,
            true,
            "2026-05-01 06:00:00",
        ),
        (
            Some("2026-05-01 06:00:00"),
            &repeat,
            0,
            false,
            "2026-05-01 06:00:00",
        ),
    ];
    for (set, last, hours, trunc, want) in cases {
        assert_eq!(
            next_from_date(*set, last, settings(*hours, *trunc), &paris),
            *want,
            "{set:?} {last:?} {hours} {trunc}"
        );
    }
}

#[test]
fn reprocess_hours_are_elapsed_hours_across_a_dst_change() {
    // 2026-03-29 03:30 CEST in Berlin, an hour and a half after the clocks
    // went from 02:00 to 03:00: two hours earlier is 00:30 CET.
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let last = Last::Clean {
        start: utc("2026-03-29T01:30:00Z"),
    };
    assert_eq!(
        next_from_date(None, &last, settings(2, false), &berlin),
        "2026-03-29 00:30:00"
    );
    assert_eq!(
        next_from_date(None, &last, settings(2, true), &berlin),
        "2026-03-29 00:00:00"
    );
}

#[test]
fn a_skipped_midnight_is_still_the_day_s_midnight_as_text() {
    // São Paulo, 2018-11-04: the clocks went from 00:00 to 01:00, so
    // 00:00:00 never happened that day; the window starts at that text,
    // before every time of the day.
    let sao_paulo: Tz = "America/Sao_Paulo".parse().unwrap();
    assert!(
        sao_paulo
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2018, 11, 4)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
            )
            .single()
            .is_none()
    );
    let last = Last::Clean {
        start: utc("2018-11-04T13:00:00Z"), // 11:00 local
    };
    assert_eq!(
        next_from_date(None, &last, settings(1, true), &sao_paulo),
        "2018-11-04 00:00:00"
    );
}

#[test]
fn an_ambiguous_midnight_is_the_earlier_one() {
    // Havana, 2023-11-05: the clocks went from 01:00 back to 00:00, so the
    // day's midnight came twice; the text covers both.
    let havana: Tz = "America/Havana".parse().unwrap();
    let midnight = NaiveDate::from_ymd_opt(2023, 11, 5)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    assert!(matches!(
        havana.from_local_datetime(&midnight),
        chrono::LocalResult::Ambiguous(..)
    ));
    let last = Last::Clean {
        start: utc("2023-11-05T15:00:00Z"), // 10:00 local
    };
    assert_eq!(
        next_from_date(None, &last, settings(0, true), &havana),
        "2023-11-05 00:00:00"
    );
}

#[test]
fn from_dates_as_written() {
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let now = utc("2026-11-21T13:30:00Z");
    let cases: &[(&str, Option<&str>)] = &[
        ("2026-01-01", Some("2026-01-01 00:00:00")),
        ("2026-01-01 06:15:00", Some("2026-01-01 06:15:00")),
        ("2026-01-01T05:15:00Z", Some("2026-01-01 06:15:00")),
        ("today", Some("2026-11-21 00:00:00")),
        ("YESTERDAY", Some("2026-11-20 00:00:00")),
        ("now", Some("2026-11-21 14:30:00")),
        ("2026-13-01", None),
        ("soon", None),
        ("", None),
    ];
    for (written, want) in cases {
        assert_eq!(
            parse_from_date(written, now, &paris).as_deref(),
            *want,
            "{written}"
        );
    }
}

#[test]
fn a_start_as_local_text() {
    let paris: Tz = "Europe/Paris".parse().unwrap();
    assert_eq!(
        local_text(utc("2026-11-21T13:30:05Z"), &paris),
        "2026-11-21 14:30:05"
    );
}
