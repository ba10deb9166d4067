//! `sync_instance` in three steps: [`fetch`] the instance's rows from the
//! source, [`plan`] the difference with what the store holds, [`apply`] it.
//!
//! Matching rows, per table:
//!
//! 1. a fetched row equal in every column to a stored row is that row,
//!    unchanged (duplicates are matched one for one, so the result does
//!    not depend on the order either side returns rows in);
//! 2. a fetched row left over takes the first stored row left over with
//!    the same KEY values, and updates it;
//! 3. fetched rows still left over are inserted, stored rows still left
//!    over are deleted.
//!
//! A KEY that is not unique therefore still syncs exactly; it only makes
//! the store's row ids less stable.

use super::schema::{self, IID, ROWID, ident, same_name};
use super::value::Atom;
use super::{LuError, SyncOutcome};
use crate::source::InstanceRows;
use crate::store::{LuDef, LuTableDef};
use rusqlite::{Connection, params_from_iter};
use std::collections::{HashMap, VecDeque};
use std::iter::once;

/// One LU table's rows for one instance, as the source gives them.
pub struct Fetched<'a> {
    table: &'a LuTableDef,
    columns: Vec<String>,
    /// Positions of the KEY columns in `columns`.
    key: Vec<usize>,
    rows: Vec<Vec<Atom>>,
}

/// Runs every table query of the LU with the id bound, and checks what
/// comes back can be stored: some columns, none named twice, none the
/// store's own, and the KEY columns among them.
///
/// Every positional `?` of a query is the id (a query may need it twice,
/// `where a = ? or b = ?`, or not at all, for a table every instance
/// shares); a named parameter has no value and is an error. `limit`
/// (`ENTITY_TIMEOUT`) caps each query on a PostgreSQL source, which reads
/// every table from one snapshot.
pub fn fetch<'a>(
    lu: &'a LuDef,
    source: &mut dyn InstanceRows,
    id: &str,
    limit: Option<std::time::Duration>,
) -> Result<Vec<Fetched<'a>>, LuError> {
    let sqls: Vec<&str> = lu.tables.iter().map(|t| t.sql.as_str()).collect();
    let results = source
        .instance(&sqls, id, limit)
        .map_err(|(k, source)| LuError::Source {
            lu: lu.name.clone(),
            id: id.to_string(),
            table: lu.tables.get(k).map(|t| t.name.clone()).unwrap_or_default(),
            source: Box::new(source),
        })?;
    lu.tables
        .iter()
        .zip(results)
        .map(|(table, (columns, rows))| {
            let key = check_columns(lu, table, &columns)?;
            let rows = rows
                .into_iter()
                .map(|r| r.into_iter().map(Atom::from).collect())
                .collect();
            Ok(Fetched {
                table,
                columns,
                key,
                rows,
            })
        })
        .collect()
}

fn check_columns(
    lu: &LuDef,
    table: &LuTableDef,
    columns: &[String],
) -> Result<Vec<usize>, LuError> {
    let err_table = || (lu.name.clone(), table.name.clone());
    if columns.is_empty() {
        let (lu, table) = err_table();
        return Err(LuError::NoColumns { lu, table });
    }
    for (k, c) in columns.iter().enumerate() {
        if schema::reserved_column(c) {
            let (lu, table) = err_table();
            return Err(LuError::ReservedColumn {
                lu,
                table,
                column: c.clone(),
            });
        }
        if columns[..k].iter().any(|d| same_name(c, d)) {
            let (lu, table) = err_table();
            return Err(LuError::DuplicateColumn {
                lu,
                table,
                column: c.clone(),
            });
        }
    }
    if table.key.is_empty() {
        return Ok(vec![0]);
    }
    table
        .key
        .iter()
        .map(|k| {
            columns.iter().position(|c| same_name(c, k)).ok_or_else(|| {
                let (lu, table) = err_table();
                LuError::KeyColumn {
                    lu,
                    table,
                    column: k.clone(),
                    columns: columns.to_vec(),
                }
            })
        })
        .collect()
}

/// What one sync does to one LU table.
pub struct TablePlan<'f> {
    fetched: &'f Fetched<'f>,
    /// The table's columns in the file; `None`: the table does not exist.
    existing: Option<Vec<String>>,
    /// The table's columns after the write: `existing`, then the fetched
    /// columns it lacks. Rows below are laid out in this order.
    columns: Vec<String>,
    stored_rows: usize,
    inserts: Vec<Vec<Atom>>,
    updates: Vec<(i64, Vec<Atom>)>,
    deletes: Vec<i64>,
}

impl TablePlan<'_> {
    fn changed(&self) -> bool {
        !(self.inserts.is_empty() && self.updates.is_empty() && self.deletes.is_empty())
    }
}

pub struct Plan<'f> {
    pub outcome: SyncOutcome,
    tables: Vec<TablePlan<'f>>,
}

/// Compares the fetched rows with the stored ones, reading only.
///
/// - `Added`: no marker and no row in any of the LU's tables;
/// - `Updated`: a row to insert, update or delete, or rows without a
///   marker (a store edited by hand: the marker is written back);
/// - `Unchanged`: otherwise. A column the query returns that the table
///   lacks reads as NULL: it changes nothing until a value needs it.
pub fn plan<'f>(
    conn: &Connection,
    id: &str,
    fetched: &'f [Fetched<'f>],
) -> rusqlite::Result<Plan<'f>> {
    let tables = fetched
        .iter()
        .map(|f| plan_table(conn, id, f))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let marked = schema::marked(conn, id)?;
    let had_rows = tables.iter().any(|t| t.stored_rows > 0);
    let outcome = if !marked && !had_rows {
        SyncOutcome::Added
    } else if !marked || tables.iter().any(TablePlan::changed) {
        SyncOutcome::Updated
    } else {
        SyncOutcome::Unchanged
    };
    Ok(Plan { outcome, tables })
}

fn plan_table<'f>(
    conn: &Connection,
    id: &str,
    f: &'f Fetched<'f>,
) -> rusqlite::Result<TablePlan<'f>> {
    let existing = schema::columns(conn, &f.table.name)?;
    let mut columns = existing.clone().unwrap_or_default();
    // Where each fetched column goes in `columns`.
    let at: Vec<usize> = f
        .columns
        .iter()
        .map(|c| match columns.iter().position(|u| same_name(u, c)) {
            Some(p) => p,
            None => {
                columns.push(c.clone());
                columns.len() - 1
            }
        })
        .collect();
    let width = columns.len();
    let key: Vec<usize> = f.key.iter().map(|&k| at[k]).collect();
    let key_of = |row: &[Atom]| -> Vec<Atom> { key.iter().map(|&k| row[k].clone()).collect() };

    let fetched: Vec<Vec<Atom>> = f
        .rows
        .iter()
        .map(|r| {
            let mut row = vec![Atom::Null; width];
            for (value, &to) in r.iter().zip(&at) {
                row[to] = value.clone();
            }
            row
        })
        .collect();
    let stored: Vec<(i64, Vec<Atom>)> = match &existing {
        None => Vec::new(),
        Some(cols) => read_rows(conn, &f.table.name, cols, id)?
            .into_iter()
            .map(|(rowid, mut row)| {
                row.resize(width, Atom::Null);
                (rowid, row)
            })
            .collect(),
    };

    // 1. Equal rows. Pushed in reverse so that `pop` takes the first.
    let mut taken = vec![false; stored.len()];
    let mut by_row: HashMap<&[Atom], Vec<usize>> = HashMap::new();
    for (i, (_, row)) in stored.iter().enumerate().rev() {
        by_row.entry(row.as_slice()).or_default().push(i);
    }
    let mut left = Vec::new();
    for (j, row) in fetched.iter().enumerate() {
        match by_row.get_mut(row.as_slice()).and_then(Vec::pop) {
            Some(i) => taken[i] = true,
            None => left.push(j),
        }
    }
    // 2. Same key: an update. 3. The rest: inserts and deletes.
    let mut by_key: HashMap<Vec<Atom>, VecDeque<usize>> = HashMap::new();
    for (i, (_, row)) in stored.iter().enumerate() {
        if !taken[i] {
            by_key.entry(key_of(row)).or_default().push_back(i);
        }
    }
    let (mut inserts, mut updates) = (Vec::new(), Vec::new());
    for j in left {
        let row = &fetched[j];
        match by_key.get_mut(&key_of(row)).and_then(VecDeque::pop_front) {
            Some(i) => {
                taken[i] = true;
                updates.push((stored[i].0, row.clone()));
            }
            None => inserts.push(row.clone()),
        }
    }
    let deletes = stored
        .iter()
        .zip(&taken)
        .filter(|(_, t)| !**t)
        .map(|((rowid, _), _)| *rowid)
        .collect();

    Ok(TablePlan {
        fetched: f,
        existing,
        columns,
        stored_rows: stored.len(),
        inserts,
        updates,
        deletes,
    })
}

/// The instance's rows of one table, in store order, over `columns`.
pub fn read_rows(
    conn: &Connection,
    table: &str,
    columns: &[String],
    id: &str,
) -> rusqlite::Result<Vec<(i64, Vec<Atom>)>> {
    let mut sql = format!("SELECT {}", ident(ROWID));
    for c in columns {
        sql.push_str(", ");
        sql.push_str(&ident(c));
    }
    sql.push_str(&format!(
        " FROM {} WHERE {} = ?1 ORDER BY {}",
        ident(table),
        ident(IID),
        ident(ROWID)
    ));
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query([id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let rowid: i64 = r.get(0)?;
        let values = (1..=columns.len())
            .map(|i| r.get_ref(i).map(Atom::from_ref))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push((rowid, values));
    }
    Ok(out)
}

/// Writes a plan that is not `Unchanged`: every table of the LU is created
/// or widened to the columns its query now returns (the schema catches up
/// whenever an instance is written), then the rows, then the marker.
/// Writes `plan` for instance `id`. `by`: the batch entity that writes it
/// (batch, seq) and what it reports (Added, Updated), kept in the marker.
pub fn apply(
    conn: &Connection,
    id: &str,
    plan: &Plan<'_>,
    now: &str,
    by: Option<(&str, i64, &str)>,
) -> rusqlite::Result<()> {
    for t in &plan.tables {
        let table = &t.fetched.table.name;
        schema::ensure_table(conn, table, t.existing.as_deref(), &t.columns)?;
        if !t.deletes.is_empty() {
            let mut st = conn.prepare(&format!(
                "DELETE FROM {} WHERE {} = ?1",
                ident(table),
                ident(ROWID)
            ))?;
            for rowid in &t.deletes {
                st.execute([rowid])?;
            }
        }
        if !t.updates.is_empty() {
            let set: Vec<String> = t
                .columns
                .iter()
                .enumerate()
                .map(|(k, c)| format!("{} = ?{}", ident(c), k + 1))
                .collect();
            let mut st = conn.prepare(&format!(
                "UPDATE {} SET {} WHERE {} = ?{}",
                ident(table),
                set.join(", "),
                ident(ROWID),
                t.columns.len() + 1
            ))?;
            for (rowid, row) in &t.updates {
                st.execute(params_from_iter(row.iter().chain(once(&Atom::Int(*rowid)))))?;
            }
        }
        if !t.inserts.is_empty() {
            let names: Vec<String> = once(IID)
                .chain(t.columns.iter().map(String::as_str))
                .map(ident)
                .collect();
            let marks: Vec<String> = (1..=names.len()).map(|k| format!("?{k}")).collect();
            let mut st = conn.prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                ident(table),
                names.join(", "),
                marks.join(", ")
            ))?;
            let iid = Atom::Text(id.to_string());
            for row in &t.inserts {
                st.execute(params_from_iter(once(&iid).chain(row)))?;
            }
        }
    }
    conn.prepare_cached(
        "INSERT INTO __instances (id, added_at, changed_at, batch, seq, outcome)
             VALUES (?1, ?2, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET changed_at = excluded.changed_at,
             batch = excluded.batch, seq = excluded.seq, outcome = excluded.outcome",
    )?
    .execute(rusqlite::params![
        id,
        now,
        by.map(|b| b.0),
        by.map(|b| b.1),
        by.map(|b| b.2)
    ])?;
    Ok(())
}
