//! CSV: a header row, then one record per row. CSV is for programs, so it
//! speaks as JSON does: the header holds the JSON keys (`entity_id`, not
//! `Entity ID`), times are RFC 3339 UTC, durations milliseconds; a missing
//! value is an empty field.

use super::format::{duration_millis, rfc3339};
use super::keys::unique_keys;
use super::{Cell, Output};

pub(super) fn render(out: &Output) -> String {
    match out {
        Output::Table(t) => table(t),
        Output::Raw(r) => table(&r.records),
        Output::KeyValues(kv) => {
            let keys = unique_keys(kv.rows.iter().map(|(k, _)| k.as_str()));
            records(
                std::iter::once(vec!["key".to_string(), "value".to_string()]).chain(
                    keys.into_iter()
                        .zip(&kv.rows)
                        .map(|(k, (_, v))| vec![k, field(v)]),
                ),
            )
        }
        Output::Message(m) if m.is_empty() => String::new(),
        // A header, then one field, so a CSV reader sees the whole message
        // even when it holds a comma, under the key JSON gives it.
        Output::Message(m) => records([vec!["message".to_string()], vec![m.clone()]]),
    }
}

fn table(t: &super::Table) -> String {
    if t.columns.is_empty() {
        return String::new();
    }
    records(
        std::iter::once(unique_keys(t.columns.iter().map(String::as_str)))
            .chain(t.normalized_rows().map(|row| row.map(field).collect())),
    )
}

fn field(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Text(s) => s.clone(),
        Cell::Int(n) => n.to_string(),
        // The JSON number text, so CSV and JSON agree (`3.0`, not `3`).
        Cell::Float(x) => {
            serde_json::Number::from_f64(*x).map_or_else(String::new, |n| n.to_string())
        }
        Cell::Bool(b) => b.to_string(),
        Cell::Time(t) => rfc3339(t),
        Cell::Duration(d) => duration_millis(*d).to_string(),
        Cell::Json(v) => v.to_string(),
    }
}

fn records(rows: impl IntoIterator<Item = Vec<String>>) -> String {
    // `::csv` is the crate; this module shares its name.
    let mut w = ::csv::WriterBuilder::new().from_writer(Vec::new());
    for row in rows {
        // Writing to a Vec cannot fail, and every record has the header's
        // length (rows are normalized), so there is no error to report.
        w.write_record(&row).expect("csv record into memory");
    }
    let bytes = w.into_inner().expect("csv flush into memory");
    // All fields came from Strings, so the bytes are UTF-8.
    String::from_utf8_lossy(&bytes).into_owned()
}
