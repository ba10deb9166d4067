//! JSON: one document per output, on one line. Objects are written by hand
//! so their keys keep the column order (serde_json's map would sort them).

use super::format::{duration_millis, rfc3339};
use super::keys::unique_keys;
use super::{Cell, Output};
use serde_json::Value;

pub(super) fn render(out: &Output) -> String {
    let mut s = match out {
        Output::Table(t) => array(t),
        Output::Raw(r) => array(&r.records),
        Output::KeyValues(kv) => {
            let keys = unique_keys(kv.rows.iter().map(|(k, _)| k.as_str()));
            object(
                keys.iter()
                    .map(String::as_str)
                    .zip(kv.rows.iter().map(|(_, v)| v)),
            )
        }
        Output::Message(m) => object([("message", &Cell::Text(m.clone()))]),
    };
    s.push('\n');
    s
}

/// A table as an array of objects.
fn array(t: &super::Table) -> String {
    let keys = unique_keys(t.columns.iter().map(String::as_str));
    let objects: Vec<String> = t
        .normalized_rows()
        .map(|row| object(keys.iter().map(String::as_str).zip(row)))
        .collect();
    format!("[{}]", objects.join(","))
}

fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a Cell)>) -> String {
    let fields: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k), value(v)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The cell as a JSON value.
pub(super) fn value(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Text(s) => Value::from(s.as_str()),
        Cell::Int(n) => Value::from(*n),
        // NaN and infinities have no JSON form; null says "no value" honestly.
        Cell::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Time(t) => Value::from(rfc3339(t)),
        Cell::Duration(d) => Value::from(duration_millis(*d)),
        Cell::Json(v) => v.clone(),
    }
}
