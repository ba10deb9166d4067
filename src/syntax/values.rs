//! Typed option values: durations, times, schedules, booleans, numbers.
//! Each function takes the decoded text of a value and says what it means,
//! or why it does not fit (the caller turns that into a diagnostic).

use crate::ast::{Duration, ScheduleSpec};
use chrono::NaiveDate;

pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    // Rust's parser accepts a leading '+'; the language does not.
    if t.starts_with('+') {
        return None;
    }
    t.parse().ok()
}

pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.bytes()
            .enumerate()
            .all(|(k, b)| b.is_ascii_digit() || b == b'.' || (k == 0 && b == b'-'));
    if !ok {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `N%` with 0 <= N <= 100.
pub fn parse_percent(s: &str) -> Option<f64> {
    let n = parse_number(s.trim().strip_suffix('%')?)?;
    (0.0..=100.0).contains(&n).then_some(n)
}

/// `500ms`, `30s`, `5m`, `2h`, `1d`, `HH:MM:SS`, `D.HH:MM:SS`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    if t.contains(':') {
        return parse_clock(t);
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = t[..digits].parse().ok()?;
    let unit: u64 = match &t[digits..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit).map(Duration)
}

/// `HH:MM:SS` or `D.HH:MM:SS`.
fn parse_clock(t: &str) -> Option<Duration> {
    let (days, clock) = match t.split_once('.') {
        Some((d, c)) => (d.parse::<u64>().ok()?, c),
        None => (0, t),
    };
    let mut parts = clock.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let all_digits =
        |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(h) && all_digits(m) && all_digits(s)) {
        return None;
    }
    let (h, m, s): (u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    if m >= 60 || s >= 60 || (days > 0 && h >= 24) {
        return None;
    }
    let secs = days
        .checked_mul(86_400)?
        .checked_add(h * 3600 + m * 60 + s)?;
    secs.checked_mul(1000).map(Duration)
}

impl Duration {
    pub fn millis(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Duration {
    /// The largest unit that divides the value exactly: `90s`, `2h`, `1500ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return write!(f, "0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

pub use crate::ast::{TIMESTAMP_FORMAT, parse_timestamp};

/// A point in time for filters (`FROM_DATE`, `SINCE`...). The text is kept
/// as written; this only checks it can be read.
pub fn is_time(s: &str) -> bool {
    let t = s.trim();
    ["today", "yesterday", "now"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
        || NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
        || parse_timestamp(t).is_some()
        || chrono::DateTime::parse_from_rfc3339(t).is_ok()
}

/// `EXEC_INTERVAL` and `SCHEDULE EVERY`: an interval (`HH:MM:SS`,
/// `D.HH:MM:SS`, or a duration such as `15m`), greater than zero.
pub fn parse_interval(s: &str) -> Option<Duration> {
    parse_duration(s).filter(|d| d.0 > 0)
}

/// Whether `s` is an interval of zero, which [`parse_interval`] refuses:
/// the error then says what is wrong with it.
pub fn is_zero_interval(s: &str) -> bool {
    parse_duration(s) == Some(Duration(0))
}

/// What a zero interval should have been, for the error.
pub const NONZERO_INTERVAL: &str = "an interval greater than zero, such as '00:15:00' or '15m'";

/// A 5-field crontab or a 6/7-field Quartz expression. This checks the shape
/// (field count and characters); the scheduler checks the values.
pub fn parse_cron(s: &str) -> Option<String> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    let ok = (5..=7).contains(&fields.len())
        && fields.iter().all(|f| {
            f.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'*' | b'/' | b',' | b'-' | b'?' | b'#')
            })
        });
    ok.then(|| fields.join(" "))
}

/// `EXEC_INTERVAL`: a timestamp (once), an interval, or a cron expression.
pub fn parse_schedule(s: &str) -> Option<ScheduleSpec> {
    if let Some(t) = parse_timestamp(s) {
        return Some(ScheduleSpec::At(t));
    }
    if let Some(d) = parse_interval(s) {
        return Some(ScheduleSpec::Every(d));
    }
    parse_cron(s).map(ScheduleSpec::Cron)
}

impl std::fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleSpec::At(t) => write!(f, "{}", t.format(TIMESTAMP_FORMAT)),
            ScheduleSpec::Every(d) if d.0.is_multiple_of(1000) => {
                let secs = d.0 / 1000;
                let (days, rest) = (secs / 86_400, secs % 86_400);
                let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
                if days > 0 {
                    write!(f, "{days}.{h:02}:{m:02}:{s:02}")
                } else {
                    write!(f, "{h:02}:{m:02}:{s:02}")
                }
            }
            ScheduleSpec::Every(d) => write!(f, "{d}"),
            ScheduleSpec::Cron(c) => write!(f, "{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration(500)));
        assert_eq!(parse_duration("30s"), Some(Duration(30_000)));
        assert_eq!(parse_duration("5m"), Some(Duration(300_000)));
        assert_eq!(parse_duration("2h"), Some(Duration(7_200_000)));
        assert_eq!(parse_duration("1d"), Some(Duration(86_400_000)));
        assert_eq!(parse_duration("00:15:00"), Some(Duration(900_000)));
        assert_eq!(parse_duration("1.02:00:00"), Some(Duration(93_600_000)));
        for bad in [
            "",
            "30",
            "s",
            "5 m",
            "1.5h",
            "00:60:00",
            "1:2:3:4",
            "99999999999999999d",
            "1.24:00:00",
            // Days * 86,400 fits in u64; adding the clock overflows.
            "213503982334601.07:00:17",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        assert_eq!(Duration(90_000).to_string(), "90s");
        assert_eq!(Duration(1500).to_string(), "1500ms");
        assert_eq!(Duration(7_200_000).to_string(), "2h");
        assert_eq!(Duration(0).to_string(), "0s");
    }

    #[test]
    fn schedules() {
        assert!(matches!(
            parse_schedule("2026-12-01 02:00:00"),
            Some(ScheduleSpec::At(_))
        ));
        assert_eq!(
            parse_schedule("00:15:00"),
            Some(ScheduleSpec::Every(Duration(900_000)))
        );
        assert_eq!(
            parse_schedule("0  2 * * *"),
            Some(ScheduleSpec::Cron("0 2 * * *".into()))
        );
        assert!(parse_schedule("0 0 12 ? * MON-FRI 2027").is_some());
        assert_eq!(parse_schedule("every day"), None);
        assert_eq!(parse_schedule("00:00:00"), None);
        assert_eq!(
            ScheduleSpec::Every(Duration(90_061_000)).to_string(),
            "1.01:01:01"
        );
    }

    #[test]
    fn times_and_numbers() {
        assert!(is_time("today"));
        assert!(is_time("2026-01-31"));
        assert!(is_time("2026-01-31 02:00:00"));
        assert!(is_time("2026-01-31T02:00:00Z"));
        assert!(!is_time("2026-13-01"));
        assert_eq!(parse_percent("5%"), Some(5.0));
        assert_eq!(parse_percent("101%"), None);
        assert_eq!(parse_int("+5"), None);
        assert_eq!(parse_number("1e3"), None);
        assert_eq!(parse_number("2.5"), Some(2.5));
    }
}
