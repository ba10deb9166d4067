//! The table builder: every table and key/value list a human reads goes
//! through [`new_table`], so they all look alike and obey one colour gate.
//!
//! A table is laid out by rules on its columns, never by statement, so a
//! column added to a table fits without a change here ([`Kind`]):
//! generated ids show their first 8 characters, free text is cut with `…`
//! to fit the width, a path is cut from its left (its end names the file),
//! and everything else stays whole: notes too, which a table that cannot
//! hold them prints as records, wrapped. JSON and CSV keep every value
//! whole; only this human form shortens.

use super::format::{format_duration, format_float, format_time_in};
use super::{Cell, Output, Style, Table};
use crate::ast::Expanded;
use chrono::TimeZone;
use comfy_table as ct;
use std::fmt::Display;
use unicode_width::UnicodeWidthStr;

/// ASCII_MARKDOWN: plain ASCII survives any terminal, pager, log file or
/// mail without mojibake; no top or bottom rule, so a table costs only one
/// line more than its rows; every row is one line a `grep` can find; and
/// pasted into an issue or a doc it renders as a Markdown table.
const PRESET: ct::TableStyle = ct::presets::ASCII_MARKDOWN;

/// The expanded form's style: `key | value`, psql's `\x` look.
const EXPANDED_PRESET: ct::TableStyle =
    ct::TableStyle::new().content_lines(ct::ContentLineStyle::none().junction('|'));

/// The columns whose values are generated ids (a batch's, an execution's,
/// a worker's): a table shows their first 8 characters, a prefix every
/// statement that takes a bid accepts (SPEC §6, §10).
const SHORT_ID_COLUMNS: &[&str] = &["id", "batch id", "bid", "execution id", "worker id"];

/// The columns of sentences written to be read whole (an async BATCH's
/// notes name the worker's log at their end): never cut.
const PROSE_COLUMNS: &[&str] = &["notes", "note", "message", "messages"];

/// The columns of file paths (and columns named `... path` / `... file`):
/// cut from the left, since a path's end names the file.
const PATH_COLUMNS: &[&str] = &["location", "path", "file", "log"];

/// The narrowest free text is cut to (unless its longest value is
/// narrower): 9 characters and the `…` still say what a command or an
/// error is about; narrower, the table does not fit ([`fit`]).
const FREE_FLOOR: usize = 10;

/// How a table shows a column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A generated id, by its first 8 characters ([`SHORT_ID_COLUMNS`]).
    ShortId,
    /// Never cut or wrapped: identifiers a user copies into the next
    /// statement (an entity id, a node, a name), numbers, times, durations.
    Whole,
    /// Free text (a command, an error, a result): one line, cut with `…`
    /// where the width asks for it.
    Free,
    /// Notes and messages ([`PROSE_COLUMNS`]): whole, as [`Kind::Whole`];
    /// in records (where a table too wide for them goes) wrapped to the
    /// width.
    Prose,
    /// A file path ([`PATH_COLUMNS`]): cut from its left with `…`
    /// (`…/data/ids.csv`) where the width asks for it.
    Path,
}

impl Kind {
    /// A column's kind, from its name and its values: a text or JSON
    /// column is free text unless its name says it holds identifiers.
    fn of<'a>(name: &str, mut cells: impl Iterator<Item = &'a Cell>) -> Kind {
        let lower = name.to_ascii_lowercase();
        if SHORT_ID_COLUMNS.contains(&lower.as_str()) {
            Kind::ShortId
        } else if lower.ends_with(" id")
            || ["uid", "name", "node", "host", "statement"].contains(&lower.as_str())
        {
            Kind::Whole
        } else if PROSE_COLUMNS.contains(&lower.as_str()) {
            Kind::Prose
        } else if PATH_COLUMNS.contains(&lower.as_str())
            || lower.ends_with(" path")
            || lower.ends_with(" file")
        {
            Kind::Path
        } else if cells.any(|c| matches!(c, Cell::Text(_) | Cell::Json(_))) {
            Kind::Free
        } else {
            Kind::Whole
        }
    }
}

pub(super) fn render<Tz>(out: &Output, style: &Style, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    match out {
        Output::Table(t) if t.columns.is_empty() => String::new(),
        Output::Table(t) => table(t, style, tz),
        Output::KeyValues(kv) => {
            let rows = kv.rows.iter().map(|(k, v)| {
                let is_status = k.eq_ignore_ascii_case("status");
                // Left-aligned, numbers too: a value column mixes kinds,
                // and one long value (extra_stats) would push every
                // number to its far right.
                let value = cell(text(v, tz), v, style.color && is_status)
                    .set_alignment(ct::CellAlignment::Left);
                vec![ct::Cell::new(k), value]
            });
            // Wrapped to the width: a key/value list is where a value is
            // read whole (BATCH_INFO's command, its extra_stats).
            let mut t = new_table(style);
            t.set_header(header(["Key", "Value"], style));
            t.add_rows(rows);
            if let Some(w) = style.width {
                t.set_content_arrangement(ct::ContentArrangement::Dynamic);
                t.set_width(w);
            }
            finish(&t)
        }
        Output::Message(m) if m.is_empty() || m.ends_with('\n') => m.clone(),
        Output::Message(m) => format!("{m}\n"),
        Output::Raw(r) => r.text(),
    }
}

/// A table with its columns' kinds and each value as the table shows it.
struct Shown<'a> {
    table: &'a Table,
    kinds: Vec<Kind>,
    /// `texts[row][column]`.
    texts: Vec<Vec<String>>,
    /// The widest value of each column (its header aside), measured once:
    /// a table may have 10,000 rows.
    data_widths: Vec<usize>,
}

impl<'a> Shown<'a> {
    fn new<Tz>(table: &'a Table, tz: &Tz) -> Shown<'a>
    where
        Tz: TimeZone,
        Tz::Offset: Display,
    {
        let kinds: Vec<Kind> = table
            .columns
            .iter()
            .enumerate()
            .map(|(k, name)| Kind::of(name, table.rows.iter().filter_map(|r| r.get(k))))
            .collect();
        let texts = table
            .normalized_rows()
            .map(|row| {
                row.zip(&kinds)
                    .map(|(c, kind)| match (kind, c) {
                        (Kind::ShortId, Cell::Text(s)) => visible(crate::batch::short_id(s)),
                        _ => text(c, tz),
                    })
                    .collect()
            })
            .collect::<Vec<Vec<String>>>();
        let mut data_widths = vec![0; table.columns.len()];
        for row in &texts {
            for (w, s) in data_widths.iter_mut().zip(row) {
                *w = (*w).max(s.width());
            }
        }
        Shown {
            table,
            kinds,
            texts,
            data_widths,
        }
    }

    /// The widest value of column `k` (its header aside).
    fn data_width(&self, k: usize) -> usize {
        self.data_widths[k]
    }

    /// The narrowest column `k` may get: its values whole (free text cut
    /// to [`FREE_FLOOR`]), its header wrapped at blanks.
    fn lower(&self, k: usize) -> usize {
        let word = self.table.columns[k]
            .split(' ')
            .map(UnicodeWidthStr::width)
            .max()
            .unwrap_or(0);
        let data = self.data_width(k);
        let data = match self.kinds[k] {
            Kind::Free | Kind::Path => data.min(FREE_FLOOR),
            Kind::ShortId | Kind::Whole | Kind::Prose => data,
        };
        data.max(word)
    }

    /// The widest column `k` needs: its values and its header whole.
    fn natural(&self, k: usize) -> usize {
        self.data_width(k).max(self.table.columns[k].width())
    }

    /// The width of the table with columns `widths`: ` | ` between and
    /// `| ` ... ` |` around them.
    fn total(widths: impl Iterator<Item = usize>) -> usize {
        widths.map(|w| w + 3).sum::<usize>() + 1
    }
}

/// How a table fits a width.
#[derive(Debug, PartialEq, Eq)]
enum Fit {
    /// Every value and header whole.
    Whole,
    /// Free text cut and headers wrapped, as comfy-table arranges them
    /// within the width.
    Arranged,
    /// Not even at the narrowest.
    Wider,
}

fn fit(shown: &Shown, width: u16) -> Fit {
    let n = shown.table.columns.len();
    let w = usize::from(width);
    if Shown::total((0..n).map(|k| shown.natural(k))) <= w {
        Fit::Whole
    } else if Shown::total((0..n).map(|k| shown.lower(k))) <= w {
        Fit::Arranged
    } else {
        Fit::Wider
    }
}

fn table<Tz>(t: &Table, style: &Style, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    let mut shown = Shown::new(t, tz);
    let fit = style.width.map(|w| fit(&shown, w));
    let expanded = !t.rows.is_empty()
        && match style.expanded {
            Expanded::On => true,
            Expanded::Off => false,
            Expanded::Auto => fit == Some(Fit::Wider),
        };
    if expanded {
        return records(shown, style);
    }
    let narrowest = Shown::total((0..t.columns.len()).map(|k| shown.lower(k)));
    let arrange_within = match (fit, style.width) {
        (Some(Fit::Arranged), Some(w)) => Some(w),
        // Wider than the width at the narrowest (SET EXPANDED off): as
        // narrow as the rules allow, so the terminal's wrapping does the
        // least harm.
        (Some(Fit::Wider), _) => Some(u16::try_from(narrowest).unwrap_or(u16::MAX)),
        _ => None,
    };
    let mut texts = std::mem::take(&mut shown.texts);
    let paths: Vec<usize> = (0..t.columns.len())
        .filter(|&k| shown.kinds[k] == Kind::Path)
        .collect();
    let mut path_widths = Vec::new();
    if let (false, Some(w)) = (paths.is_empty(), arrange_within) {
        // comfy-table cuts at the right only, and says not what width it
        // gives a column: arrange once to learn the paths' widths, cut
        // them from the left to those, and arrange again with them fixed.
        let probe = arranged(&shown, texts.clone(), style, Some(w), &[]);
        let widths = column_widths(&probe);
        for &k in &paths {
            let room = widths.get(k).map_or(FREE_FLOOR, |w| w.saturating_sub(2));
            for row in &mut texts {
                row[k] = cut_left(&row[k], room);
            }
            path_widths.push((k, room));
        }
    }
    finish(&arranged(
        &shown,
        texts,
        style,
        arrange_within,
        &path_widths,
    ))
}

/// The table of `texts` (one line per row), arranged `within` a width
/// when it is given, the columns of `fixed` `(column, width)` at their
/// width.
fn arranged(
    shown: &Shown,
    texts: Vec<Vec<String>>,
    style: &Style,
    within: Option<u16>,
    fixed_widths: &[(usize, usize)],
) -> ct::Table {
    let t = shown.table;
    let status = status_column(t);
    let mut ct_table = new_table(style);
    ct_table.set_header(header(t.columns.iter().map(String::as_str), style));
    for (texts, cells) in texts.into_iter().zip(t.normalized_rows()) {
        let mut row = ct::Row::from(
            texts
                .into_iter()
                .zip(cells)
                .enumerate()
                .map(|(k, (s, c))| cell(s, c, style.color && Some(k) == status)),
        );
        // One line per row: free text is cut with `…`, not wrapped.
        row.max_height(1);
        ct_table.add_row(row);
    }
    if let Some(w) = within {
        ct_table.set_content_arrangement(ct::ContentArrangement::Dynamic);
        ct_table.set_width(w);
        for k in 0..t.columns.len() {
            let lower = fixed(shown.lower(k), 2);
            let constraint = match (shown.kinds[k], fixed_widths.iter().find(|f| f.0 == k)) {
                (_, Some(&(_, w))) => ct::ColumnConstraint::Absolute(fixed(w, 2)),
                (Kind::Free | Kind::Path, None) => ct::ColumnConstraint::LowerBoundary(lower),
                (Kind::ShortId | Kind::Whole | Kind::Prose, None) => {
                    ct::ColumnConstraint::Boundaries {
                        lower,
                        upper: fixed(shown.natural(k), 2),
                    }
                }
            };
            if let Some(col) = ct_table.column_mut(k) {
                col.set_constraint(constraint);
            }
        }
    }
    ct_table
}

/// The widths comfy-table gave `t`'s columns, padding included, read from
/// the rule under the header (`|------|----|`).
fn column_widths(t: &ct::Table) -> Vec<usize> {
    t.lines()
        .find(|l| l.starts_with("|-"))
        .map(|rule| {
            rule.trim_matches('|')
                .split('|')
                .map(|c| c.chars().count())
                .collect()
        })
        .unwrap_or_default()
}

/// `s` cut from its left to `width` columns, `…` in front, at a `/` where
/// the kept end has one: `…/data/ids.csv`, the file's name whole.
fn cut_left(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if s.width() <= width {
        return s.to_string();
    }
    let room = width.saturating_sub(1);
    let (mut start, mut used) = (s.len(), 0);
    for (i, ch) in s.char_indices().rev() {
        used += ch.width().unwrap_or(0);
        if used > room {
            break;
        }
        start = i;
    }
    let tail = &s[start..];
    let tail = match tail.find('/') {
        Some(i) if i > 0 => &tail[i..],
        _ => tail,
    };
    format!("…{tail}")
}

/// A constraint's width for `w` characters of content and a padding of
/// `padding` (comfy-table's widths count the padding).
fn fixed(w: usize, padding: usize) -> ct::Width {
    ct::Width::Fixed(u16::try_from(w + padding).unwrap_or(u16::MAX))
}

fn status_column(t: &Table) -> Option<usize> {
    t.columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case("status"))
}

/// The expanded form (SET EXPANDED, psql's `\x`): one block per row, a
/// `-[ RECORD n ]` line, then `column | value` lines. Free text is cut to
/// the width, paths from their left; ids keep their 8 characters; other
/// values are whole, wrapped to the width.
fn records(shown: Shown, style: &Style) -> String {
    let t = shown.table;
    let status = status_column(t);
    let key_width = t.columns.iter().map(|c| c.width()).max().unwrap_or(0);
    let label_width = format!("-[ RECORD {} ]", shown.texts.len()).width();
    // The value column's width: what the keys (or the labels) leave.
    let room = style.width.map(|w| {
        usize::from(w)
            .saturating_sub(key_width.max(label_width) + 3)
            .max(FREE_FLOOR)
    });
    let mut ct_table = new_table(style);
    ct_table.load_style(EXPANDED_PRESET);
    let mut labels = Vec::with_capacity(shown.texts.len());
    for (r, (texts, cells)) in shown.texts.into_iter().zip(t.normalized_rows()).enumerate() {
        let label = format!("-[ RECORD {} ]", r + 1);
        labels.push(label.clone());
        ct_table.add_row(vec![ct::Cell::new(label), ct::Cell::new("")]);
        for (k, (s, c)) in texts.into_iter().zip(cells).enumerate() {
            let s = match (shown.kinds[k], room) {
                (Kind::Path, Some(room)) => cut_left(&s, room),
                _ => s,
            };
            let mut row = ct::Row::from(vec![
                ct::Cell::new(&t.columns[k]),
                cell(s, c, style.color && Some(k) == status).set_alignment(ct::CellAlignment::Left),
            ]);
            if shown.kinds[k] == Kind::Free {
                row.max_height(1);
            }
            ct_table.add_row(row);
        }
    }
    if let Some(col) = ct_table.column_mut(0) {
        col.set_padding((0, 1));
    }
    if let Some(col) = ct_table.column_mut(1) {
        col.set_padding((1, 0));
        if let Some(room) = room {
            col.set_constraint(ct::ColumnConstraint::UpperBoundary(fixed(room, 1)));
        }
    }
    let mut labels = labels.into_iter().peekable();
    let mut out = String::new();
    for line in ct_table.lines() {
        // A record's first line: its label, then a rule to the table's
        // width with `+` where the column rule runs.
        if labels.peek().is_some_and(|l| line.starts_with(l.as_str())) {
            let label = labels.next().unwrap_or_default();
            let rest = &line[label.len()..];
            out.push_str(&label);
            out.extend(rest.chars().map(|ch| match ch {
                '|' => '+',
                _ => '-',
            }));
        } else {
            out.push_str(line.trim_end());
        }
        out.push('\n');
    }
    out
}

/// A comfy-table set up the one way every table is.
fn new_table(style: &Style) -> ct::Table {
    let mut t = ct::Table::new();
    // Width and colour come from `style` alone, never from comfy-table's own
    // look at stdout: rendering stays a pure function of its inputs, and
    // `color_allowed` stays the only colour gate.
    t.force_no_tty();
    if style.color {
        t.enforce_styling();
        // Colour the words, not the padding: a coloured block reads as a
        // highlight, which a status is not.
        t.style_text_only();
    }
    t.load_style(PRESET);
    t
}

fn header<'a>(names: impl IntoIterator<Item = &'a str>, style: &Style) -> Vec<ct::Cell> {
    names
        .into_iter()
        .map(|h| {
            let c = ct::Cell::new(h);
            if style.color {
                c.add_attribute(ct::Attribute::Bold)
            } else {
                c
            }
        })
        .collect()
}

fn finish(t: &ct::Table) -> String {
    let mut s = t.to_string();
    s.push('\n');
    s
}

/// A value as a table shows it, whole.
fn text<Tz>(c: &Cell, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    match c {
        Cell::Null => String::new(),
        Cell::Text(s) => visible(s),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => format_float(*x),
        Cell::Bool(b) => b.to_string(),
        Cell::Time(t) => format_time_in(t, tz),
        Cell::Duration(d) => format_duration(*d),
        Cell::Json(v) => v.to_string(),
    }
}

/// `text` in a comfy-table cell, aligned and coloured by what `c` is.
fn cell(text: String, c: &Cell, color_status: bool) -> ct::Cell {
    let colour = if color_status {
        status_color(&text)
    } else {
        None
    };
    let mut out = ct::Cell::new_owned(text);
    // Numbers line up by their last digit, as in a spreadsheet.
    if matches!(c, Cell::Int(_) | Cell::Float(_) | Cell::Duration(_)) {
        out = out.set_alignment(ct::CellAlignment::Right);
    }
    if let Some(color) = colour {
        out = out.fg(color);
    }
    out
}

/// Text as a table shows it: control characters (an id or an error may
/// hold any) are written as escapes, so that none reaches the terminal to
/// move the cursor, change colours or split a row over lines.
fn visible(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Colours for the batch, entity and job statuses (SPEC §7): done green,
/// failed red, stopped or paused yellow, running cyan; waiting ones plain.
fn status_color(status: &str) -> Option<ct::Color> {
    use crate::batch::Tone;
    Some(match Tone::of(status)? {
        Tone::Good => ct::Color::Green,
        Tone::Bad => ct::Color::Red,
        Tone::Held => ct::Color::Yellow,
        Tone::Active => ct::Color::Cyan,
    })
}
