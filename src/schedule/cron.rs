//! Cron expressions: the two dialects, errors that name the field, and the
//! slots of an expression on the wall clock. The `croner` crate reads and
//! evaluates the expressions; this module chooses its settings, explains
//! what it refuses, and counts slots without walking them one by one.
//!
//! Slots here are local times (`NaiveDateTime`): croner evaluates the
//! expression on a clock without daylight saving, and [`super::local`]
//! says when each local time runs. croner's own daylight-saving rules
//! (fixed times once, but a pattern with `*`, a list or a step fired twice
//! in the repeated hour and skipped in the gap) are thus not used: every
//! local time of an expression runs once (docs/jobs.md, "Schedules").

use super::ScheduleError;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Which cron a text is written for, told by its number of fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// 5 fields, `minute hour day-of-month month day-of-week`; weekdays
    /// 0-7, 0 and 7 being Sunday.
    Crontab,
    /// 6 or 7 fields, `second minute hour day-of-month month day-of-week
    /// [year]`; weekdays 1-7, 1 being Sunday; `0/15` steps.
    Quartz,
}

/// A field of a cron expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

const CRONTAB: [Field; 5] = [
    Field::Minute,
    Field::Hour,
    Field::DayOfMonth,
    Field::Month,
    Field::DayOfWeek,
];
const QUARTZ: [Field; 7] = [
    Field::Second,
    Field::Minute,
    Field::Hour,
    Field::DayOfMonth,
    Field::Month,
    Field::DayOfWeek,
    Field::Year,
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
            Field::Year => "year",
        }
    }

    /// The numbers the field takes. croner reads years 1-5000; batchsh
    /// keeps Quartz's 1970-2099.
    fn range(self, dialect: Dialect) -> (u64, u64) {
        match (self, dialect) {
            (Field::Second | Field::Minute, _) => (0, 59),
            (Field::Hour, _) => (0, 23),
            (Field::DayOfMonth, _) => (1, 31),
            (Field::Month, _) => (1, 12),
            (Field::DayOfWeek, Dialect::Crontab) => (0, 7),
            (Field::DayOfWeek, Dialect::Quartz) => (1, 7),
            (Field::Year, _) => (1970, 2099),
        }
    }

    /// What the field takes, as the error messages say it.
    pub fn rule(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Field::Second, _) => "seconds run 0-59",
            (Field::Minute, _) => "minutes run 0-59",
            (Field::Hour, _) => "hours run 0-23",
            (Field::DayOfMonth, _) => {
                "days of the month run 1-31, or L (the last day), 15W (the weekday nearest \
                 the 15th), LW (the last weekday) or ?"
            }
            (Field::Month, _) => "months run 1-12 or JAN-DEC",
            (Field::DayOfWeek, Dialect::Crontab) => {
                "days of the week run 0-7 or SUN-SAT, 0 and 7 being Sunday, with 5L (the \
                 last Friday of the month), 5#2 (the second Friday) or ?"
            }
            (Field::DayOfWeek, Dialect::Quartz) => {
                "in a 6- or 7-field (Quartz) expression days of the week run 1-7 or SUN-SAT, \
                 1 being Sunday, with 6L (the last Friday of the month), 6#2 (the second \
                 Friday) or ?"
            }
            (Field::Year, _) => "years run 1970-2099",
        }
    }

    /// The words the field takes besides numbers.
    fn words(self) -> &'static [&'static str] {
        match self {
            Field::DayOfMonth => &["L", "W", "LW"],
            Field::Month => &MONTHS,
            Field::DayOfWeek => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "L"],
            _ => &[],
        }
    }
}

/// What is wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A number outside the field's range.
    OutOfRange(String),
    /// A word the field does not take (`JAN` as a minute).
    Word(String),
    /// `#n` with n outside 1-5.
    Nth(String),
    /// `L` alone as a day of the week: croner reads it as no day at all
    /// (Quartz reads it as Saturday); refused rather than guessed.
    LoneL,
    /// croner refused the text; its reason.
    Malformed(String),
}

impl Fault {
    /// The sentence after "the minute field of '...'": what was found, then
    /// what would be right.
    pub fn describe(&self, field: Field, dialect: Dialect, part: &str) -> String {
        let rule = field.rule(dialect);
        let found = |x: &str| {
            if x == part {
                format!("is {x}")
            } else {
                format!("has {x} (in {part})")
            }
        };
        match self {
            Fault::OutOfRange(n) => format!("{}: {rule}", found(n)),
            Fault::Word(w) => format!("{}, which is no {}: {rule}", found(w), field.name()),
            Fault::Nth(n) => format!(
                "{}: the n of D#n counts that weekday in the month, 1-5 (or L for the last)",
                found(&format!("#{n}"))
            ),
            Fault::LoneL => {
                let (last_friday, saturday) = match dialect {
                    Dialect::Crontab => ("5L", "6"),
                    Dialect::Quartz => ("6L", "7"),
                };
                format!(
                    "is L, which names no weekday: write {last_friday} for the last Friday of \
                     the month, or {saturday} or SAT for Saturdays"
                )
            }
            Fault::Malformed(why) => format!("is {part}: {why}; {rule}"),
        }
    }
}

/// A compiled cron expression.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    text: String,
    dialect: Dialect,
    /// Boxed: croner's pattern is a few hundred bytes of bit fields.
    cron: Box<Cron>,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

fn parser(dialect: Dialect) -> CronParser {
    match dialect {
        Dialect::Crontab => CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build(),
        Dialect::Quartz => CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Optional)
            .alternative_weekdays(true)
            .sloppy_ranges(true)
            .build(),
    }
}

impl CronSchedule {
    /// Reads `text`, refusing a field croner refuses (the error names it),
    /// and an expression that never fires.
    pub fn compile(text: &str) -> Result<CronSchedule, ScheduleError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (dialect, names): (Dialect, &[Field]) = match fields.len() {
            5 => (Dialect::Crontab, &CRONTAB),
            6 | 7 => (Dialect::Quartz, &QUARTZ),
            count => {
                return Err(ScheduleError::CronShape {
                    expr: text.to_string(),
                    count,
                });
            }
        };
        let text = fields.join(" ");
        let field_error = |field: Field, part: &str, fault: Fault| ScheduleError::CronField {
            expr: text.clone(),
            field,
            dialect,
            part: part.to_string(),
            fault,
        };
        for (&f, &field) in fields.iter().zip(names) {
            for part in f.split(',') {
                if let Some(fault) = check_part(field, dialect, part) {
                    return Err(field_error(field, part, fault));
                }
            }
        }
        let p = parser(dialect);
        let cron = match p.parse(&text) {
            Ok(c) => c,
            Err(e) => {
                return Err(match blame(&p, &fields, names) {
                    Some((field, part, why)) => field_error(field, &part, Fault::Malformed(why)),
                    None => ScheduleError::CronRefused {
                        expr: text.clone(),
                        why: reason(&e),
                    },
                });
            }
        };
        let schedule = CronSchedule {
            text,
            dialect,
            cron: Box::new(cron),
        };
        schedule.check_fires()?;
        Ok(schedule)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Refuses an expression no date fits. A day the months never have
    /// (`30 2 30 2 *`) is told as such; anything else croner finds empty
    /// in its search (up to the year 5000) as "no date".
    fn check_fires(&self) -> Result<(), ScheduleError> {
        let never = |why: String| ScheduleError::NeverFires {
            expr: self.text.clone(),
            why,
        };
        if let Some(why) = missing_day(&self.cron) {
            return Err(never(why));
        }
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)
            .unwrap_or_default()
            .and_time(NaiveTime::MIN);
        if self.next(epoch, &mut 0).is_none() {
            return Err(never(
                "no date fits its day, month and year fields together".to_string(),
            ));
        }
        Ok(())
    }

    /// The first slot at or after `from`. Counts one step.
    pub fn next(&self, from: NaiveDateTime, steps: &mut u64) -> Option<NaiveDateTime> {
        *steps += 1;
        self.cron.find_next_occurrence(&from, true).ok()
    }

    /// The last slot before `before`. Counts one step.
    pub fn previous(&self, before: NaiveDateTime, steps: &mut u64) -> Option<NaiveDateTime> {
        *steps += 1;
        self.cron.find_previous_occurrence(&before, false).ok()
    }

    /// How many slots lie in `[from, to)`, in a step per day that has
    /// any: croner finds the first slot of each such day, and the day's
    /// slots are the product of its second, minute and hour values (those
    /// fields do not depend on the date).
    pub fn count(&self, from: NaiveDateTime, to: NaiveDateTime, steps: &mut u64) -> u64 {
        let p = &self.cron.pattern;
        let day = TimeOfDay {
            hours: p.hours.values(),
            minutes: p.minutes.values(),
            seconds: p.seconds.values(),
        };
        let mut n = 0;
        let mut cursor = from;
        while let Some(slot) = self.next(cursor, steps).filter(|s| *s < to) {
            let Some(next_day) = slot.date().succ_opt().map(|d| d.and_time(NaiveTime::MIN)) else {
                break;
            };
            let end = if to < next_day {
                day.before(to.time())
            } else {
                day.all()
            };
            n += end - day.before(slot.time());
            cursor = next_day;
        }
        n
    }
}

/// The time fields of an expression, to count a day's slots.
struct TimeOfDay {
    hours: Vec<u16>,
    minutes: Vec<u16>,
    seconds: Vec<u16>,
}

impl TimeOfDay {
    fn all(&self) -> u64 {
        (self.hours.len() * self.minutes.len() * self.seconds.len()) as u64
    }

    /// How many of the day's slots come before `t`.
    fn before(&self, t: NaiveTime) -> u64 {
        let below = |values: &[u16], x: u32| values.iter().filter(|&&v| u32::from(v) < x).count();
        let has = |values: &[u16], x: u32| values.iter().any(|&v| u32::from(v) == x);
        let (m, s) = (self.minutes.len(), self.seconds.len());
        let mut n = below(&self.hours, t.hour()) * m * s;
        if has(&self.hours, t.hour()) {
            n += below(&self.minutes, t.minute()) * s;
            if has(&self.minutes, t.minute()) {
                n += below(&self.seconds, t.second());
            }
        }
        n as u64
    }
}

/// Checks the numbers and words of one comma-separated part of a field
/// before croner reads it, so that an error can say which value is wrong
/// (croner says "Number out of bounds."), and so that a name in the wrong
/// field is refused (croner replaces `JAN` and `MON` wherever they stand).
fn check_part(field: Field, dialect: Dialect, part: &str) -> Option<Fault> {
    let upper = part.to_ascii_uppercase();
    if field == Field::DayOfWeek && upper == "L" {
        return Some(Fault::LoneL);
    }
    // `value/step` and `value#nth`: the step and the nth are no values.
    let value = upper.split('/').next().unwrap_or_default();
    let (value, nth) = match value.split_once('#') {
        Some((v, n)) => (v, Some(n)),
        None => (value, None),
    };
    if let Some(n) = nth.filter(|n| *n != "L")
        && !matches!(n.parse::<u8>(), Ok(1..=5))
    {
        return Some(Fault::Nth(n.to_string()));
    }
    let (lo, hi) = field.range(dialect);
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        let len = if c.is_ascii_digit() {
            rest.find(|c: char| !c.is_ascii_digit())
        } else if c.is_ascii_alphabetic() {
            rest.find(|c: char| !c.is_ascii_alphabetic())
        } else {
            Some(c.len_utf8())
        }
        .unwrap_or(rest.len());
        let token = &rest[..len];
        if c.is_ascii_digit() && !token.parse::<u64>().is_ok_and(|n| (lo..=hi).contains(&n)) {
            return Some(Fault::OutOfRange(token.to_string()));
        }
        if c.is_ascii_alphabetic() && !field.words().contains(&token) {
            return Some(Fault::Word(token.to_string()));
        }
        rest = &rest[len..];
    }
    None
}

/// The field (and the part of it) that croner refuses, found by reading
/// each field alone among `*`: croner's own errors do not say where.
fn blame(p: &CronParser, fields: &[&str], names: &[Field]) -> Option<(Field, String, String)> {
    let alone = |k: usize, text: &str| {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if j == k { text } else { "*" })
            .collect();
        p.parse(&probe.join(" ")).err()
    };
    for (k, (&f, &field)) in fields.iter().zip(names).enumerate() {
        let Some(e) = alone(k, f) else { continue };
        for part in f.split(',') {
            if let Some(e) = alone(k, part) {
                return Some((field, part.to_string(), reason(&e)));
            }
        }
        return Some((field, f.to_string(), reason(&e)));
    }
    None
}

/// croner's reason, without its prefix and final period, lowercased to
/// sit inside a sentence.
fn reason(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    let text = match e {
        CronError::ComponentError(m) | CronError::InvalidPattern(m) => m.clone(),
        CronError::IllegalCharacters(m) => m.replace("CronPattern contains", "it contains"),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "February has no 30th" when the days of the month are plain numbers,
/// the day of the week is free, and none of the months has any of them.
fn missing_day(cron: &Cron) -> Option<String> {
    let p = &cron.pattern;
    if p.is_dom_wildcard() || !p.is_dow_wildcard() || p.days.has_modifiers() {
        return None;
    }
    let days = p.days.values();
    let months = p.months.values();
    let longest = |m: u16| match m {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let first = *days.first()?;
    if months.iter().any(|&m| longest(m) >= first) {
        return None;
    }
    let names: Vec<&str> = months
        .iter()
        .map(|&m| MONTH_NAMES[usize::from(m) - 1])
        .collect();
    let days: Vec<String> = days.iter().map(|&d| ordinal(d)).collect();
    let (months, verb) = match names.split_last() {
        Some((last, [])) => (last.to_string(), "has"),
        Some((last, init)) => (format!("{} and {last}", init.join(", ")), "have"),
        None => return None,
    };
    Some(format!("{months} {verb} no {}", days.join(" or ")))
}

fn ordinal(n: u16) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
