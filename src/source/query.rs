//! Queries on an interface's connection: bind values (`BIND_PARAMS`, the
//! entity id, window variables), stream entity ids, read small results.

use super::{IdError, SourceError, check_id};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, Statement, ToSql};
use std::ops::ControlFlow;

/// A value bound to a `?` or a named parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Float(f64),
    Null,
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Int(i) => ValueRef::Integer(*i),
            Param::Float(f) => ValueRef::Real(*f),
            Param::Null => ValueRef::Null,
        }))
    }
}

/// `BIND_PARAMS`: the text split on the separator, every piece a string as
/// given (not trimmed: `'a, b'` gives `a` and ` b`).
///
/// An empty text gives no values, so that `BIND_PARAMS=''` means "none"
/// rather than one empty string. An empty separator does not split.
pub fn bind_params(text: &str, separator: &str) -> Vec<Param> {
    if text.is_empty() {
        Vec::new()
    } else if separator.is_empty() {
        vec![Param::Text(text.to_string())]
    } else {
        text.split(separator)
            .map(|s| Param::Text(s.to_string()))
            .collect()
    }
}

/// `BIND_PARAMS_JSON`: a JSON array of strings, numbers, booleans and nulls.
///
/// An integer that fits `i64` binds as an integer, any other number as a
/// float; `true`/`false` bind as 1/0, as SQLite has no boolean type.
pub fn bind_params_json(v: &serde_json::Value) -> Result<Vec<Param>, SourceError> {
    use serde_json::Value as J;
    let J::Array(items) = v else {
        return Err(SourceError::BindJson {
            found: format!("found {}", json_kind(v)),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            J::String(s) => Ok(Param::Text(s.clone())),
            J::Number(n) => Ok(match n.as_i64() {
                Some(i) => Param::Int(i),
                None => Param::Float(n.as_f64().unwrap_or(f64::NAN)),
            }),
            J::Bool(b) => Ok(Param::Int(i64::from(*b))),
            J::Null => Ok(Param::Null),
            J::Array(_) | J::Object(_) => Err(SourceError::BindJson {
                found: format!("element {} is {}", i + 1, json_kind(item)),
            }),
        })
        .collect()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}

/// Binds a prepared statement's parameters.
///
/// Positional parameters (`?`, `?NNN`) take `params` in the order SQLite
/// numbers them; their count must match. A named parameter (`:x`, `@x`,
/// `$x`) takes the value of `named` whose name (with or without its `:`)
/// equals `x`, ignoring ASCII case; `named` values the SQL does not use are
/// not bound, and a name the SQL uses that `named` lacks is an error rather
/// than a silent NULL. `sql` is only for error messages.
pub fn bind(
    stmt: &mut Statement<'_>,
    sql: &str,
    params: &[Param],
    named: &[(&str, Param)],
) -> Result<(), SourceError> {
    let bind_error = |e: rusqlite::Error| SourceError::query(sql, e.to_string());
    let mut positional = Vec::new();
    for index in 1..=stmt.parameter_count() {
        let name = match stmt.parameter_name(index) {
            Some(n) if !n.starts_with('?') => n.to_string(),
            // `?`, `?NNN`, and the gaps a `?NNN` leaves below itself.
            _ => {
                positional.push(index);
                continue;
            }
        };
        // Past the `:`, `@` or `$` that SQLite keeps in the name.
        let bare = &name[1..];
        let value = named
            .iter()
            .find(|(k, _)| k.strip_prefix(':').unwrap_or(k).eq_ignore_ascii_case(bare))
            .map(|(_, v)| v)
            .ok_or_else(|| SourceError::UnboundName {
                name: name.clone(),
                available: named
                    .iter()
                    .map(|(k, _)| k.strip_prefix(':').unwrap_or(k).to_string())
                    .collect(),
            })?;
        stmt.raw_bind_parameter(index, value).map_err(bind_error)?;
    }
    if positional.len() != params.len() {
        return Err(SourceError::ParamCount {
            expected: positional.len(),
            given: params.len(),
        });
    }
    for (index, value) in positional.into_iter().zip(params) {
        stmt.raw_bind_parameter(index, value).map_err(bind_error)?;
    }
    Ok(())
}

/// How many values the query's positional parameters take. A query that
/// does not prepare counts one: running it then reports the real error.
pub(super) fn positional_count(conn: &Connection, sql: &str) -> usize {
    let Ok(stmt) = conn.prepare_cached(sql) else {
        return 1;
    };
    (1..=stmt.parameter_count())
        .filter(|&i| stmt.parameter_name(i).is_none_or(|n| n.starts_with('?')))
        .count()
}

/// How many columns the query returns, without running it (for "the query
/// must return one column only").
pub fn column_count(conn: &Connection, sql: &str) -> Result<usize, SourceError> {
    Ok(prepare_query(conn, sql)?.column_count())
}

/// Checks a source query without running it: one statement, that only
/// reads (an LU's ROOT and TABLE queries, whose `?` the run binds).
pub fn check_read_query(conn: &Connection, sql: &str) -> Result<(), SourceError> {
    prepare_query(conn, sql).map(drop)
}

/// Checks an id query as [`for_each_id`] would run it with `params` and
/// the `named` values, without running it: one statement, that only
/// reads, returns a column, has one `?` per value, and no name without a
/// value.
pub fn check_id_query(
    conn: &Connection,
    sql: &str,
    params: &[Param],
    named: &[(&str, Param)],
) -> Result<(), SourceError> {
    prepare_id_query(conn, sql, params, named).map(drop)
}

/// Prepares an id query and binds its values: everything [`for_each_id`]
/// does before the first row.
fn prepare_id_query<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Param],
    named: &[(&str, Param)],
) -> Result<Statement<'c>, SourceError> {
    let mut stmt = prepare_query(conn, sql)?;
    if stmt.column_count() == 0 {
        return Err(SourceError::NoColumns {
            sql: sql.to_string(),
        });
    }
    bind(&mut stmt, sql, params, named)?;
    Ok(stmt)
}

/// Runs an id query and hands the first column of each row to `f`, one row
/// at a time: ids are streamed, never collected, so a query of ten million
/// ids holds one in memory. `f` returns `Break` to stop early (a cancelled
/// batch).
///
/// TEXT is the id as is, INTEGER its decimal, REAL Rust's shortest display
/// (`1.5`, and `42` for 42.0), a BLOB its text when that is UTF-8. A row
/// whose value is NULL, not UTF-8, empty or too long reaches `f` as an
/// [`IdError`]: that entity fails, the batch goes on.
///
/// Returns the number of rows handed to `f`.
pub fn for_each_id(
    conn: &Connection,
    sql: &str,
    params: &[Param],
    named: &[(&str, Param)],
    mut f: impl FnMut(Result<String, IdError>) -> ControlFlow<()>,
) -> Result<u64, SourceError> {
    let mut stmt = prepare_id_query(conn, sql, params, named)?;
    let mut rows = stmt.raw_query();
    let mut count = 0;
    while let Some(row) = rows.next().map_err(|e| query_error(conn, sql, e))? {
        count += 1;
        let value = row.get_ref(0).map_err(|e| query_error(conn, sql, e))?;
        if f(entity_id(value)).is_break() {
            break;
        }
    }
    Ok(count)
}

/// Runs a query and returns its column names and all its rows: for results
/// that are small by nature (one LU instance's rows of one table).
pub fn query_rows(
    conn: &Connection,
    sql: &str,
    params: &[Param],
) -> Result<(Vec<String>, Vec<Vec<Value>>), SourceError> {
    let mut stmt = prepare_query(conn, sql)?;
    bind(&mut stmt, sql, params, &[])?;
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let width = names.len();
    let mut out = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(|e| query_error(conn, sql, e))? {
        let values = (0..width)
            .map(|i| row.get_ref(i).map(owned_value))
            .collect::<rusqlite::Result<Vec<Value>>>()
            .map_err(|e| query_error(conn, sql, e))?;
        out.push(values);
    }
    Ok((names, out))
}

/// Prepares a source query, refusing one that writes: ids and LU rows are
/// read from a source, and a `delete ... returning id` in a USING clause is
/// far more likely a mistake than a plan.
fn prepare_query<'c>(conn: &'c Connection, sql: &str) -> Result<Statement<'c>, SourceError> {
    let stmt = conn.prepare(sql).map_err(|e| query_error(conn, sql, e))?;
    if !stmt.readonly() {
        return Err(SourceError::NotReadOnly {
            sql: sql.to_string(),
        });
    }
    Ok(stmt)
}

/// A cell as an owned value. TEXT that is not UTF-8 (SQLite does not
/// enforce it) becomes a BLOB of the same bytes: kept exactly rather than
/// failing the whole instance or being silently altered.
fn owned_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => Value::Text(s.to_string()),
            Err(_) => Value::Blob(bytes.to_vec()),
        },
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

pub(super) fn entity_id(value: ValueRef<'_>) -> Result<String, IdError> {
    match value {
        ValueRef::Null => Err(IdError::Null),
        ValueRef::Integer(i) => Ok(i.to_string()),
        ValueRef::Real(f) => Ok(f.to_string()),
        // SQLite does not enforce UTF-8 in TEXT either.
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => check_id(s).map(|()| s.to_string()),
            Err(_) => Err(IdError::NotUtf8(bytes.to_vec())),
        },
    }
}

/// The database's message, plus the tables there are when it is "no such
/// table" (a CSV interface's tables are named by files the user may not
/// have in mind).
fn query_error(conn: &Connection, sql: &str, e: rusqlite::Error) -> SourceError {
    if let rusqlite::Error::MultipleStatement = e {
        return SourceError::MultipleStatements {
            sql: sql.to_string(),
        };
    }
    let mut message = e.to_string();
    if message.starts_with("no such table") {
        message.push_str(&table_hint(conn));
    }
    SourceError::query(sql, message)
}

fn table_hint(conn: &Connection) -> String {
    const SHOWN: usize = 20;
    let names = conn
        .prepare(
            "select name from sqlite_master where type in ('table', 'view') \
             and name not like 'sqlite\\_%' escape '\\' order by name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .take(SHOWN + 1)
                .collect::<rusqlite::Result<Vec<String>>>()
        });
    match names {
        Err(_) => String::new(),
        Ok(names) if names.is_empty() => "; the database has no tables".to_string(),
        Ok(names) if names.len() > SHOWN => {
            format!("; tables include {}, ...", names[..SHOWN].join(", "))
        }
        Ok(names) => format!("; the tables are {}", names.join(", ")),
    }
}
