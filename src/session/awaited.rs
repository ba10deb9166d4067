//! What `BATCH_WAIT NAME='etl.*'` waits for (SPEC §9, as Waitsy), pure:
//! which series a glob names, when SINCE is, and how the latest run of a
//! series stands against it. Only a run started since SINCE that ended
//! DONE with no failed entity is a success: yesterday's success does not
//! count, and a failed run may still be followed by one that succeeds.

use crate::store::series::{SeriesRunRow, SeriesRunStatus};
use chrono::{DateTime, TimeZone, Utc};

/// A glob over series names (`*` any text, `?` one character, anything
/// else itself), case-insensitive as series names are.
pub struct Glob(regex::Regex);

impl Glob {
    pub fn new(glob: &str) -> Glob {
        let mut re = String::from("(?i)^");
        let mut buf = [0u8; 4];
        for c in glob.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut buf))),
            }
        }
        re.push('$');
        // Every character but the two wildcards is escaped: the pattern is
        // always a valid regex.
        Glob(regex::Regex::new(&re).unwrap_or_else(|_| unreachable!("an escaped glob: {re}")))
    }

    pub fn matches(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

/// SINCE (`today`, `yesterday`, `now`, a date, a local time or RFC 3339)
/// as an instant, at the moment `now` in zone `tz`; `None` if it is no
/// time. A local midnight that a DST change skips or repeats is its
/// earliest instant.
pub fn since<Tz: TimeZone>(text: &str, now: DateTime<Utc>, tz: &Tz) -> Option<DateTime<Utc>> {
    let local = crate::window::parse_from_date(text, now, tz)?;
    let naive = chrono::NaiveDateTime::parse_from_str(&local, crate::window::TIME_FORMAT).ok()?;
    let t = match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t,
        chrono::LocalResult::Ambiguous(a, _) => a,
        // In a gap (the clocks jumped over it): the first time after it.
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()?,
    };
    Some(t.with_timezone(&Utc))
}

/// How a series stands for `BATCH_WAIT NAME=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No run started since SINCE.
    NoRun,
    /// Its latest run, started since SINCE, is still open.
    Running { start: DateTime<Utc> },
    /// Its latest run, started since SINCE, failed, was cancelled or
    /// ended DONE with failed entities.
    Failed {
        status: SeriesRunStatus,
        failed: i64,
        end: Option<DateTime<Utc>>,
    },
    /// Its latest run, started since SINCE, ended DONE with no failure.
    Succeeded,
}

fn instant(stamp: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// How the series whose latest run is `latest` stands since `since`.
pub fn standing(latest: Option<&SeriesRunRow>, since: DateTime<Utc>) -> Standing {
    let Some(run) = latest else {
        return Standing::NoRun;
    };
    let Some(start) = instant(&run.start_time).filter(|s| *s >= since) else {
        return Standing::NoRun;
    };
    match run.status {
        SeriesRunStatus::Open => Standing::Running { start },
        SeriesRunStatus::Done if run.failed == 0 => Standing::Succeeded,
        status => Standing::Failed {
            status,
            failed: run.failed,
            end: run.end_time.as_deref().and_then(instant),
        },
    }
}

impl Standing {
    /// Why it is still awaited, with times as `local` writes them
    /// (`None` once it succeeded): "no run since 2026-12-07 00:00:00",
    /// "OPEN since ...", "FAILED at ...", "DONE with 3 failed at ...".
    pub fn why(&self, since: &str, local: impl Fn(DateTime<Utc>) -> String) -> Option<String> {
        let at = |end: &Option<DateTime<Utc>>| end.map(|t| format!(" at {}", local(t)));
        Some(match self {
            Standing::Succeeded => return None,
            Standing::NoRun => format!("no run since {since}"),
            Standing::Running { start } => format!("OPEN since {}", local(*start)),
            Standing::Failed {
                status: SeriesRunStatus::Done,
                failed,
                end,
            } => format!("DONE with {failed} failed{}", at(end).unwrap_or_default()),
            Standing::Failed { status, end, .. } => {
                format!("{status}{}", at(end).unwrap_or_default())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;

    fn run(start: &str, status: SeriesRunStatus, failed: i64) -> SeriesRunRow {
        SeriesRunRow {
            series: "etl.load".into(),
            run_no: 1,
            batch_id: 0,
            start_time: start.into(),
            end_time: Some("2026-12-07T05:00:00Z".into()),
            status,
            failed,
            from_date: crate::window::EPOCH_START.into(),
            error: None,
            bid: None,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        instant(s).unwrap()
    }

    #[test]
    fn a_glob_matches_whole_names_and_nothing_else_is_a_wildcard() {
        let g = Glob::new("etl.*");
        assert!(g.matches("etl.load"));
        assert!(g.matches("ETL.Extract"));
        assert!(g.matches("etl."));
        assert!(!g.matches("etl_load"), "the dot is a dot");
        assert!(!g.matches("pre.etl.load"), "anchored");
        let g = Glob::new("wf?");
        assert!(g.matches("wf1") && !g.matches("wf10"));
        let g = Glob::new("a+(b)[c]");
        assert!(g.matches("a+(b)[c]") && !g.matches("aab"));
    }

    #[test]
    fn since_is_local_midnight_for_today_and_yesterday() {
        let now = utc("2026-12-07T08:00:00Z"); // 09:00 in Paris
        let at = |s| since(s, now, &Paris).unwrap().to_rfc3339();
        assert_eq!(at("today"), "2026-12-06T23:00:00+00:00");
        assert_eq!(at("yesterday"), "2026-12-05T23:00:00+00:00");
        assert_eq!(at("now"), "2026-12-07T08:00:00+00:00");
        assert_eq!(at("2026-12-01"), "2026-11-30T23:00:00+00:00");
        assert_eq!(at("2026-12-01 06:30:00"), "2026-12-01T05:30:00+00:00");
        assert_eq!(at("2026-12-01T06:30:00Z"), "2026-12-01T06:30:00+00:00");
        assert_eq!(since("tomorrowish", now, &Paris), None);
    }

    #[test]
    fn only_a_clean_run_started_since_counts() {
        let since = utc("2026-12-06T23:00:00Z");
        assert_eq!(standing(None, since), Standing::NoRun);
        // Yesterday's success does not count.
        let late = run("2026-12-06T22:59:00Z", SeriesRunStatus::Done, 0);
        assert_eq!(standing(Some(&late), since), Standing::NoRun);
        let today = "2026-12-06T23:01:00Z";
        let ok = run(today, SeriesRunStatus::Done, 0);
        assert_eq!(standing(Some(&ok), since), Standing::Succeeded);
        let open = run(today, SeriesRunStatus::Open, 0);
        assert_eq!(
            standing(Some(&open), since),
            Standing::Running { start: utc(today) }
        );
        for (status, failed) in [
            (SeriesRunStatus::Done, 3),
            (SeriesRunStatus::Failed, 0),
            (SeriesRunStatus::Cancelled, 0),
        ] {
            assert_eq!(
                standing(Some(&run(today, status, failed)), since),
                Standing::Failed {
                    status,
                    failed,
                    end: Some(utc("2026-12-07T05:00:00Z"))
                }
            );
        }
    }

    #[test]
    fn why_names_the_state_and_its_time() {
        let local = |t: DateTime<Utc>| crate::window::local_text(t, &Paris);
        let end = Some(utc("2026-12-07T05:00:00Z"));
        let why = |s: Standing| s.why("2026-12-07 00:00:00", local);
        assert_eq!(
            why(Standing::NoRun).unwrap(),
            "no run since 2026-12-07 00:00:00"
        );
        assert_eq!(
            why(Standing::Failed {
                status: SeriesRunStatus::Failed,
                failed: 0,
                end
            })
            .unwrap(),
            "FAILED at 2026-12-07 06:00:00"
        );
        assert_eq!(
            why(Standing::Failed {
                status: SeriesRunStatus::Done,
                failed: 2,
                end
            })
            .unwrap(),
            "DONE with 2 failed at 2026-12-07 06:00:00"
        );
        assert_eq!(why(Standing::Succeeded), None);
    }
}
