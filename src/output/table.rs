//! The table builder: every table and key/value list a human reads goes
//! through [`build`], so they all look alike and obey one colour gate.

use super::format::{format_duration, format_float, format_time_in};
use super::{Cell, Output, Style};
use chrono::TimeZone;
use comfy_table as ct;
use std::fmt::Display;

/// ASCII_MARKDOWN: plain ASCII survives any terminal, pager, log file or
/// mail without mojibake; no top or bottom rule, so a table costs only one
/// line more than its rows; every row is one line a `grep` can find; and
/// pasted into an issue or a doc it renders as a Markdown table.
const PRESET: ct::TableStyle = ct::presets::ASCII_MARKDOWN;

pub(super) fn render<Tz>(out: &Output, style: &Style, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    match out {
        Output::Table(t) if t.columns.is_empty() => String::new(),
        Output::Table(t) => {
            let status = t
                .columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case("status"));
            let rows = t.normalized_rows().map(|row| {
                row.enumerate()
                    .map(|(i, c)| cell(c, tz, style.color && Some(i) == status))
                    .collect()
            });
            build(t.columns.iter().map(String::as_str), rows, style)
        }
        Output::KeyValues(kv) => {
            let rows = kv.rows.iter().map(|(k, v)| {
                let is_status = k.eq_ignore_ascii_case("status");
                // Left-aligned, numbers too: a value column mixes kinds,
                // and one long value (extra_stats) would push every
                // number to its far right.
                let value =
                    cell(v, tz, style.color && is_status).set_alignment(ct::CellAlignment::Left);
                vec![ct::Cell::new(k), value]
            });
            build(["Key", "Value"], rows, style)
        }
        Output::Message(m) if m.is_empty() || m.ends_with('\n') => m.clone(),
        Output::Message(m) => format!("{m}\n"),
        Output::Raw(r) => r.text(),
    }
}

/// The narrowest a wrapped text column gets.
const MIN_WRAP_WIDTH: u16 = 20;

/// The one place a comfy-table is set up.
fn build<'a>(
    header: impl IntoIterator<Item = &'a str>,
    rows: impl IntoIterator<Item = Vec<ct::Cell>>,
    style: &Style,
) -> String {
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
    let header: Vec<&str> = header.into_iter().collect();
    t.set_header(header.iter().map(|h| {
        let c = ct::Cell::new(h);
        if style.color {
            c.add_attribute(ct::Attribute::Bold)
        } else {
            c
        }
    }));
    t.add_rows(rows);
    // Identifiers never wrap, whatever the width: a batch id split over two
    // lines cannot be copied into the next command. Text columns (Command,
    // Error) give up the room instead.
    // Sized to the terminal (SPEC §10) when the table fits with each text
    // column wrapped no narrower than MIN_WRAP_WIDTH and identifiers whole
    // (a batch id split over two lines cannot be copied). Otherwise nothing
    // wraps and a row stays one line, as psql does with wide results.
    let content = t.column_max_content_widths();
    let is_id = |h: &str| {
        let lower = h.to_ascii_lowercase();
        lower == "id" || lower.ends_with(" id")
    };
    let floor = |k: usize, h: &str| {
        let w = content.get(k).copied().unwrap_or(0);
        if is_id(h) { w } else { w.min(MIN_WRAP_WIDTH) }
    };
    let needed: u32 = header
        .iter()
        .enumerate()
        .map(|(k, h)| u32::from(floor(k, h)) + 3)
        .sum::<u32>()
        + 1;
    match style.width {
        Some(w) if needed <= u32::from(w) => {
            t.set_content_arrangement(ct::ContentArrangement::Dynamic);
            t.set_width(w);
            for (k, h) in header.iter().enumerate() {
                let wide = content.get(k).is_some_and(|c| *c > MIN_WRAP_WIDTH);
                if let Some(col) = t.column_mut(k) {
                    col.set_constraint(if is_id(h) || !wide {
                        ct::ColumnConstraint::ContentWidth
                    } else {
                        ct::ColumnConstraint::LowerBoundary(ct::Width::Fixed(MIN_WRAP_WIDTH))
                    });
                }
            }
        }
        _ => {
            t.set_content_arrangement(ct::ContentArrangement::Disabled);
        }
    }
    let mut s = t.to_string();
    s.push('\n');
    s
}

fn cell<Tz>(c: &Cell, tz: &Tz, color_status: bool) -> ct::Cell
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    let text = match c {
        Cell::Null => String::new(),
        Cell::Text(s) => visible(s),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => format_float(*x),
        Cell::Bool(b) => b.to_string(),
        Cell::Time(t) => format_time_in(t, tz),
        Cell::Duration(d) => format_duration(*d),
        Cell::Json(v) => v.to_string(),
    };
    let mut out = ct::Cell::new(&text);
    // Numbers line up by their last digit, as in a spreadsheet.
    if matches!(c, Cell::Int(_) | Cell::Float(_) | Cell::Duration(_)) {
        out = out.set_alignment(ct::CellAlignment::Right);
    }
    if color_status && let Some(color) = status_color(&text) {
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
