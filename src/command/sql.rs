//! `sql <iface> 'statement with ?'`: one SQL statement on an interface, the
//! entity id and the window variables bound, never pasted into the text.
//!
//! Binding: every positional parameter (`?`, and `?NNN`) gets the entity id;
//! every named one (`:from_date`, `@from_date`, `$from_date`) gets the
//! window value of that name ([`Context::param`]). Only the parameters the
//! statement uses are looked up, so a statement without `:from_date` runs in
//! a batch without a window.
//!
//! `{"rows":N}` is the number of rows changed; for a statement that returns
//! rows (a `SELECT`, `... RETURNING`) it is the number of rows returned, so
//! `sql crm 'select 1 from customer where id = ?'` can check existence.
//!
//! `ENTITY_TIMEOUT` interrupts the statement (`sqlite3_interrupt`) from a
//! watchdog thread.
//!
//! On a `POSTGRES` interface the statement is PostgreSQL's SQL, with `?`
//! and the window names written as everywhere else (rewritten as `$n`
//! outside quotes and comments: [`crate::source::placeholders`]); it runs
//! in a transaction of its own, committed when it succeeds, and
//! `ENTITY_TIMEOUT` becomes that transaction's `statement_timeout`, so the
//! server stops the statement itself.

use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, Statement};
use serde_json::{Value, json};

use super::{CommandError, Connections, Context};

pub fn run(
    interface: &str,
    sql: &str,
    ctx: &Context,
    conns: &dyn Connections,
) -> Result<Value, CommandError> {
    let rows = conns.execute(interface, sql, ctx)?;
    Ok(json!({ "rows": rows }))
}

/// `sql` on a SQLite connection (a `SQLITE` or `CSV` interface): the
/// statement prepared, its parameters bound as the module doc says, run
/// under `ENTITY_TIMEOUT`; the rows it changed or returned.
pub fn on_sqlite(
    conn: &Connection,
    interface: &str,
    sql: &str,
    ctx: &Context,
) -> Result<usize, CommandError> {
    // The closure can only return a database error; a failure of ours (a
    // missing window value) is kept here and wins over the error it caused.
    let mut ours: Option<CommandError> = None;
    let timed_out = AtomicBool::new(false);
    let mut f = || -> Result<usize, rusqlite::Error> {
        let mut stmt = conn.prepare(sql)?;
        if let Err(e) = bind(&mut stmt, ctx) {
            return Err(match e {
                Bind::Db(e) => e,
                Bind::Ours(e) => {
                    ours = Some(e);
                    rusqlite::Error::InvalidQuery
                }
            });
        }
        match ctx.timeout {
            None => execute(&mut stmt),
            Some(limit) => crate::source::watchdog::within(
                vec![conn.get_interrupt_handle()],
                limit,
                &timed_out,
                || execute(&mut stmt),
            ),
        }
    };
    let r = f();
    if let Some(e) = ours {
        return Err(e);
    }
    match (r, ctx.timeout) {
        (Ok(rows), _) => Ok(rows),
        (Err(_), Some(limit)) if timed_out.load(Ordering::SeqCst) => {
            Err(CommandError::Timeout(limit))
        }
        (Err(e), _) => Err(CommandError::sql(interface, e)),
    }
}

/// `sql` on a `POSTGRES` interface (see the module doc): the statement
/// rewritten for PostgreSQL, its values bound, run under `ENTITY_TIMEOUT`.
pub fn on_postgres(
    conn: &mut crate::source::postgres::PgConn,
    interface: &str,
    sql: &str,
    ctx: &Context,
) -> Result<usize, CommandError> {
    use crate::source::{Param, SourceError, placeholders::Slot};
    let fail = |source| CommandError::Postgres {
        interface: interface.to_string(),
        source,
    };
    let named: Vec<(&str, Param)> = ctx
        .window
        .iter()
        .map(|(k, _)| (k.as_str(), Param::Null))
        .collect();
    let tr = crate::source::postgres::translate(sql, &named).map_err(fail)?;
    let values = tr
        .slots
        .iter()
        .map(|slot| match slot {
            Slot::Positional(_) => Ok(Param::Text(ctx.entity_id.to_string())),
            Slot::Named(n) => ctx.param(n).map(|v| Param::Text(v.to_string())),
        })
        .collect::<Result<Vec<Param>, CommandError>>()?;
    match conn.execute(&tr.sql, &values, ctx.timeout) {
        Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Err(SourceError::TimedOut { limit }) => Err(CommandError::Timeout(limit)),
        Err(e) => Err(fail(e)),
    }
}

enum Bind {
    Ours(CommandError),
    Db(rusqlite::Error),
}

fn bind(stmt: &mut Statement, ctx: &Context) -> Result<(), Bind> {
    for i in 1..=stmt.parameter_count() {
        // `?NNN` has a name too; only `:`, `@` and `$` names are window ones.
        let value = match stmt.parameter_name(i) {
            Some(n) if !n.starts_with('?') => ctx.param(&n[1..]).map_err(Bind::Ours)?,
            _ => ctx.entity_id,
        };
        stmt.raw_bind_parameter(i, value).map_err(Bind::Db)?;
    }
    Ok(())
}

fn execute(stmt: &mut Statement) -> Result<usize, rusqlite::Error> {
    if stmt.column_count() == 0 {
        return stmt.raw_execute();
    }
    let mut rows = stmt.raw_query();
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}
