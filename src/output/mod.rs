//! The output layer: records (tables, key/value lists, messages) -> the text
//! printed on stdout, as a table, JSON or CSV (SPEC §10).
//!
//! Everything that prints results goes through [`render`]: one table builder
//! (`table.rs`), one colour gate ([`color_allowed`]), and a JSON and a CSV twin
//! for every table, so a script never has to scrape the human format.
//!
//! How each [`Cell`] prints, by format:
//!
//! | cell       | table                              | json                          | csv             |
//! |------------|------------------------------------|-------------------------------|-----------------|
//! | `Null`     | empty                              | `null`                        | empty           |
//! | `Text`     | as is                              | string                        | as is           |
//! | `Int`      | as is, right-aligned               | number                        | as is           |
//! | `Float`    | at most 2 decimals, right-aligned  | number, full precision        | as in json      |
//! | `Bool`     | `true` / `false`                   | `true` / `false`              | `true`/`false`  |
//! | `Time`     | local `YYYY-MM-DD HH:MM:SS`        | RFC 3339 UTC, whole seconds   | as in json      |
//! | `Duration` | `HH:MM:SS` (hours may pass 24)     | integer milliseconds          | as in json      |
//! | `Json`     | compact JSON text                  | the value itself              | compact JSON    |
//!
//! Decisions the spec leaves open, kept here so the docs can quote them:
//!
//! - A duration in JSON and CSV is a whole number of **milliseconds**, under
//!   the column's plain key (`duration`, `remaining_duration`): integers
//!   survive every JSON parser exactly, and milliseconds match the
//!   `process_time_ms` columns. In a table it is truncated to whole seconds.
//! - Times in JSON and CSV are truncated to whole seconds
//!   (`2026-11-22T15:54:00Z`), the same precision the table shows.
//! - A float that is NaN or infinite is `null` in JSON and empty in CSV.
//! - JSON objects keep the column order (written by hand, as serde_json's
//!   map sorts keys). A `Json` cell's own objects come out with sorted keys.
//!   Two columns whose keys collide get `_2`, `_3`, ... so no value is lost.
//! - `%` in a column name reads as `pct`: `% Completed` -> `pct_completed`
//!   (the spec's name) and `Completion %` -> `completion_pct`.
//! - CSV is for programs, so its header holds the JSON keys (`entity_id`,
//!   `pct_completed`), not the display names, and a key/value list is
//!   `key,value` with JSON keys in the first column: the same names a script
//!   uses with `--format json`.
//! - A [`Output::Message`] prints as is in a table; in JSON it is
//!   `{"message":"..."}`; in CSV it is the header `message` and one record
//!   of one field (quoted only when it holds a comma, a quote or a line
//!   break), as SPEC §10 has every CSV document start with its header.
//! - An empty message prints nothing in table and CSV form.
//! - An [`Output::Raw`] prints the text of its records as it is in the
//!   table format (nothing escaped, no table; see [`Raw::text`]), and its
//!   records as a table's in JSON and CSV.
//! - A row shorter than the header is padded with `Null`; cells past the
//!   header are dropped, so every format shows the same columns.
//! - Colour (when allowed): header bold; in a `Status` column (or a
//!   `Status` key) final good states green, failures red, stopped or paused
//!   states yellow, running states cyan.

pub mod columns;
mod csv;
mod format;
mod json;
mod keys;
pub mod pager;
pub mod progress;
mod table;
pub mod terminal;
#[cfg(test)]
mod tests;

pub use format::{format_duration, format_float, format_time_in, format_timing, rfc3339};
pub use keys::json_key;

use crate::ast::{Expanded, OutputFormat};
use chrono::{DateTime, Local, TimeZone, Utc};
use std::ffi::OsStr;
use std::fmt::Display;

/// One value of a record.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    Duration(std::time::Duration),
    Json(serde_json::Value),
}

/// Rows under named columns. Column names are the spec's display names
/// (`Entity ID`, `% Completed`); JSON keys derive from them ([`json_key`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Key/value rows, such as `BATCH_INFO` prints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyValues {
    pub rows: Vec<(String, Cell)>,
}

/// What one statement gives to print.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Table(Table),
    KeyValues(KeyValues),
    /// A plain line such as `interface crm created`.
    Message(String),
    /// Text that prints as it is in the table format, and as its records
    /// in JSON and CSV: `BATCH_OUTPUT`'s entity outputs, which a pipeline
    /// reads raw and a program reads entity by entity.
    Raw(Raw),
}

/// What [`Output::Raw`] holds: records, one of whose columns is the text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Raw {
    pub records: Table,
    /// The column whose text cells the table format prints.
    pub text_column: usize,
}

impl Raw {
    /// What the table format prints: each record's text as it is, with a
    /// newline after a text that does not end with one (so the last line
    /// of one record never runs into the first of the next); a record
    /// with no text (`Null`, or empty) prints nothing.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for row in &self.records.rows {
            if let Some(Cell::Text(s)) = row.get(self.text_column)
                && !s.is_empty()
            {
                out.push_str(s);
                if !s.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// How to print: the session's format, whether colour is allowed (decided
/// once, by [`color_allowed`]), and the width to fit tables to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub format: OutputFormat,
    pub color: bool,
    /// `None`: no width limit (stdout is a file or a pipe, say).
    pub width: Option<u16>,
    /// When a table prints as one key/value block per row.
    pub expanded: Expanded,
}

impl Table {
    pub fn new<I, S>(columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push_row(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// The rows cut or padded (with `Null`) to the header's length, so that
    /// every format shows the same columns.
    fn normalized_rows(&self) -> impl Iterator<Item = impl Iterator<Item = &Cell>> {
        let n = self.columns.len();
        self.rows
            .iter()
            .map(move |r| r.iter().chain(std::iter::repeat(&Cell::Null)).take(n))
    }
}

impl KeyValues {
    pub fn new() -> Self {
        KeyValues::default()
    }

    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Cell>) {
        self.rows.push((key.into(), value.into()));
    }
}

impl From<Table> for Output {
    fn from(t: Table) -> Self {
        Output::Table(t)
    }
}

impl From<KeyValues> for Output {
    fn from(kv: KeyValues) -> Self {
        Output::KeyValues(kv)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Int(n)
    }
}

impl From<i32> for Cell {
    fn from(n: i32) -> Self {
        Cell::Int(n.into())
    }
}

impl From<u32> for Cell {
    fn from(n: u32) -> Self {
        Cell::Int(n.into())
    }
}

/// Saturates: a count past `i64::MAX` is not a real case, and a wrong huge
/// number is better than a panic while printing.
impl From<u64> for Cell {
    fn from(n: u64) -> Self {
        Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Cell {
    fn from(n: usize) -> Self {
        Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        Cell::Float(x)
    }
}

impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Bool(b)
    }
}

impl From<DateTime<Utc>> for Cell {
    fn from(t: DateTime<Utc>) -> Self {
        Cell::Time(t)
    }
}

impl From<std::time::Duration> for Cell {
    fn from(d: std::time::Duration) -> Self {
        Cell::Duration(d)
    }
}

impl From<serde_json::Value> for Cell {
    fn from(v: serde_json::Value) -> Self {
        Cell::Json(v)
    }
}

/// A missing value is `Null`, so optional columns need no `match` at the caller.
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

/// The whole text to print on stdout for `out`: ends in `'\n'`, or is empty.
/// Table times are in the local time zone.
pub fn render(out: &Output, style: &Style) -> String {
    render_in(out, style, &Local)
}

/// [`render`] with table times shown in `tz`, for output that must not
/// depend on the machine's zone (tests, reproducible logs).
pub fn render_in<Tz>(out: &Output, style: &Style, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    match style.format {
        OutputFormat::Table => table::render(out, style, tz),
        OutputFormat::Json => json::render(out),
        OutputFormat::Csv => csv::render(out),
    }
}

/// The one colour gate: colour only on a terminal, and never when `NO_COLOR`
/// is set to a non-empty value (the no-color.org convention: an empty
/// `NO_COLOR=` is how a user unsets it in some shells and tools).
pub fn color_allowed(stdout_is_terminal: bool) -> bool {
    color_allowed_with(stdout_is_terminal, std::env::var_os("NO_COLOR").as_deref())
}

/// [`color_allowed`] with the environment passed in, so it can be tested
/// without touching the process's environment.
pub fn color_allowed_with(stdout_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The width to fit tables to ([`Style::width`]): `COLUMNS` when it is set
/// to a positive number (as psql, so a script or a test can fix it), else
/// the terminal's width when stdout is a terminal, else none: a table
/// printed to a file or a pipe is not fitted to anything.
pub fn output_width(stdout_is_terminal: bool) -> Option<u16> {
    width_from(
        std::env::var("COLUMNS").ok().as_deref(),
        stdout_is_terminal
            .then(terminal::stdout_size)
            .flatten()
            .map(|(w, _)| w),
    )
}

/// [`output_width`] with `COLUMNS` and the terminal's width passed in.
pub fn width_from(columns: Option<&str>, terminal: Option<u16>) -> Option<u16> {
    columns
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c > 0)
        .or(terminal.filter(|&w| w > 0))
}
