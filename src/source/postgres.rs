//! `POSTGRES` interfaces: a database named by a URL, reached through
//! [`crate::pg`]. Queries are written as on any interface (`?` and the
//! window names, rewritten by [`super::placeholders`]); values are bound
//! in PostgreSQL's text form, so that the server reads `'42'` as whatever
//! type the query gives the parameter, as it reads a literal.
//!
//! A source query runs in a read-only transaction: one that would write
//! is refused by the server. Ids are streamed through a portal (a
//! server-side cursor), [`FETCH`] rows at a time, so a query of millions
//! of ids holds a page of them in memory, never the whole result.

use super::pgvalue::{self, Cell};
use super::placeholders::{self, Slot, Translated};
use super::query::entity_id;
use super::{IdError, Interface, Param, SourceError};
use postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};
use rusqlite::types::Value;
use std::error::Error;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// How many rows one round trip of an id query brings.
pub const FETCH: i32 = 1000;

/// An open connection to a `POSTGRES` interface.
pub struct PgConn {
    client: postgres::Client,
    /// The server's `statement_timeout` for this connection (from the
    /// URL's `options`, the role or the database), in milliseconds; 0 for
    /// none.
    timeout_ms: i64,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgConn")
    }
}

/// Connects to the interface's database: the URL read, the server
/// reached, the user let in, the database there.
pub fn connect(iface: &Interface) -> Result<PgConn, SourceError> {
    let fail = |source| SourceError::Postgres {
        interface: iface.name.clone(),
        source,
    };
    let mut client = crate::pg::Target::parse(&iface.location)
        .map_err(fail)?
        .connect()
        .map_err(fail)?;
    let timeout_ms = client
        .query_one(
            "select setting::bigint from pg_settings where name = 'statement_timeout'",
            &[],
        )
        .and_then(|r| r.try_get::<_, i64>(0))
        .unwrap_or(0);
    Ok(PgConn { client, timeout_ms })
}

impl PgConn {
    /// Whether the connection is gone (the server restarted, the network
    /// dropped): a pool throws such a connection away.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// A transaction in which the server refuses any write: a source
    /// query only reads, however it is written.
    fn read_only(&mut self) -> Result<postgres::Transaction<'_>, postgres::Error> {
        self.client.build_transaction().read_only(true).start()
    }

    /// See [`super::Conn::for_each_id`].
    pub fn for_each_id(
        &mut self,
        sql: &str,
        params: &[Param],
        named: &[(&str, Param)],
        mut f: impl FnMut(Result<String, IdError>) -> ControlFlow<()>,
    ) -> Result<u64, SourceError> {
        let (tr, values) = bound(sql, params, named)?;
        refuse_writes(sql)?;
        let timeout_ms = self.timeout_ms;
        let err = |e: postgres::Error| query_error(sql, timeout_ms, None, &e);
        let (stmt, names) =
            prepare_readable(&mut self.client, &tr.sql, tr.slots.len()).map_err(err)?;
        if names.is_empty() {
            return Err(SourceError::NoColumns {
                sql: sql.to_string(),
            });
        }
        let mut tx = self.read_only().map_err(err)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let portal = tx.bind(&stmt, &refs).map_err(err)?;
        let mut count = 0;
        loop {
            let rows = tx.query_portal(&portal, FETCH).map_err(err)?;
            for row in &rows {
                count += 1;
                let Cell(v) = row.try_get(0).map_err(err)?;
                if f(entity_id((&v).into())).is_break() {
                    return Ok(count);
                }
            }
            if rows.len() < FETCH as usize {
                break;
            }
        }
        tx.commit().map_err(err)?;
        Ok(count)
    }

    /// See [`super::InstanceRows::instance`]: the queries run in one
    /// read-only `REPEATABLE READ` transaction, so that an instance's
    /// tables are read from one snapshot of the database; every `?` is
    /// `id`; `limit` (`ENTITY_TIMEOUT`) is each query's statement timeout.
    pub fn instance(
        &mut self,
        sqls: &[&str],
        id: &str,
        limit: Option<Duration>,
    ) -> Result<Vec<super::Rows>, (usize, SourceError)> {
        let timeout_ms = self.timeout_ms;
        let start = Instant::now();
        let err = |k: usize, e: postgres::Error| {
            let sql = sqls.get(k).copied().unwrap_or_default();
            (
                k,
                query_error(sql, timeout_ms, limit.map(|l| (l, start)), &e),
            )
        };
        let mut prepared = Vec::with_capacity(sqls.len());
        for (k, sql) in sqls.iter().enumerate() {
            let params = instance_query(sql).map_err(|e| (k, e))?;
            let (stmt, names) = prepare_readable(&mut self.client, &params.sql, params.slots.len())
                .map_err(|e| err(k, e))?;
            let values = vec![Param::Text(id.to_string()); params.slots.len()];
            prepared.push((stmt, names, values));
        }
        let mut tx = self
            .client
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .map_err(|e| err(0, e))?;
        if let Some(limit) = limit {
            set_timeout(&mut tx, timeout_ms, limit).map_err(|e| err(0, e))?;
        }
        let mut out = Vec::with_capacity(prepared.len());
        for (k, (stmt, names, values)) in prepared.into_iter().enumerate() {
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
            let rows = tx
                .query(&stmt, &refs)
                .map_err(|e| err(k, e))?
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<_, Cell>(i).map(|c| c.0))
                        .collect::<Result<Vec<Value>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(k, e))?;
            out.push((names, rows));
        }
        tx.commit()
            .map_err(|e| err(sqls.len().saturating_sub(1), e))?;
        Ok(out)
    }

    /// How many columns `sql` returns, from the server's description of
    /// it (nothing runs). The window names are known, without values.
    pub fn column_count(&mut self, sql: &str) -> Result<usize, SourceError> {
        let tr = translate(sql, &[])?;
        refuse_writes(sql)?;
        let timeout_ms = self.timeout_ms;
        let stmt = prepare(&mut self.client, &tr.sql, tr.slots.len())
            .map_err(|e| query_error(sql, timeout_ms, None, &e))?;
        Ok(stmt.columns().len())
    }

    /// Runs one statement of a per-entity `sql` command (`values` for its
    /// `$n`, in order) in a transaction of its own, and gives the rows it
    /// changed or returned. `limit` (`ENTITY_TIMEOUT`) lowers the
    /// statement's timeout; a statement stopped by it is
    /// [`SourceError::TimedOut`].
    pub fn execute(
        &mut self,
        sql: &str,
        values: &[Param],
        limit: Option<Duration>,
    ) -> Result<u64, SourceError> {
        let timeout_ms = self.timeout_ms;
        let start = Instant::now();
        let err = |e: postgres::Error| query_error(sql, timeout_ms, limit.map(|l| (l, start)), &e);
        let stmt = prepare(&mut self.client, sql, values.len()).map_err(err)?;
        let mut tx = self.client.transaction().map_err(err)?;
        if let Some(limit) = limit {
            set_timeout(&mut tx, timeout_ms, limit).map_err(err)?;
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let n = if stmt.columns().is_empty() {
            tx.execute(&stmt, &refs).map_err(err)?
        } else {
            tx.query(&stmt, &refs).map_err(err)?.len() as u64
        };
        tx.commit().map_err(err)?;
        Ok(n)
    }

    /// Every table and view outside the system schemas, with its columns
    /// (for `DESCRIBE INTERFACE`); a table outside `public` is named with
    /// its schema.
    pub fn describe(&mut self) -> Result<Vec<super::Column>, SourceError> {
        let rows = self
            .client
            .query(
                "select case when table_schema = 'public' then table_name \
                        else table_schema || '.' || table_name end, \
                    column_name, upper(data_type) \
                 from information_schema.columns \
                 where table_schema not in ('pg_catalog', 'information_schema') \
                 order by 1, ordinal_position",
                &[],
            )
            .map_err(|e| SourceError::query("DESCRIBE INTERFACE", crate::pg::db_message(&e)))?;
        Ok(rows
            .iter()
            .map(|r| super::Column {
                table: r.get(0),
                name: r.get(1),
                ty: r.get(2),
            })
            .collect())
    }
}

/// An LU table query rewritten: its `?` are the instance id, and a named
/// parameter has no value.
fn instance_query(sql: &str) -> Result<Translated, SourceError> {
    let tr = translate(sql, &[])?;
    if let Some(Slot::Named(name)) = tr.slots.iter().find(|s| matches!(s, Slot::Named(_))) {
        return Err(SourceError::UnboundName {
            name: format!(":{name}"),
            available: Vec::new(),
        });
    }
    refuse_writes(sql)?;
    Ok(tr)
}

/// Checks an id query's text as far as it can be without the server:
/// no `$n` of its own, one value per `?`, and a value for every window
/// name it uses (`named`).
pub fn check_text(sql: &str, params: &[Param], named: &[(&str, Param)]) -> Result<(), SourceError> {
    bound(sql, params, named).map(drop)?;
    refuse_writes(sql)
}

/// `sql` rewritten for PostgreSQL: a `:name` is a parameter when it is a
/// window name or one of `named`.
/// A text of two statements is refused, as PostgreSQL would refuse it
/// (one statement is prepared at a time), but before anything is stored.
pub fn translate(sql: &str, named: &[(&str, Param)]) -> Result<Translated, SourceError> {
    let tr = placeholders::translate(sql, |n| {
        crate::ast::NAMED_PARAMS
            .iter()
            .copied()
            .chain(named.iter().map(|(k, _)| k.strip_prefix(':').unwrap_or(k)))
            .any(|k| k.eq_ignore_ascii_case(n))
    })?;
    if tr.more_than_one {
        return Err(SourceError::MultipleStatements {
            sql: super::error::clip_sql(sql),
        });
    }
    Ok(tr)
}

/// The rewritten text and the value of each of its `$n`.
fn bound(
    sql: &str,
    params: &[Param],
    named: &[(&str, Param)],
) -> Result<(Translated, Vec<Param>), SourceError> {
    let tr = translate(sql, named)?;
    if tr.positional() != params.len() {
        return Err(SourceError::ParamCount {
            expected: tr.positional(),
            given: params.len(),
        });
    }
    let values = tr
        .slots
        .iter()
        .map(|slot| match slot {
            Slot::Positional(i) => Ok(params[*i].clone()),
            Slot::Named(name) => named
                .iter()
                .find(|(k, _)| k.strip_prefix(':').unwrap_or(k).eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| SourceError::UnboundName {
                    name: format!(":{name}"),
                    available: named
                        .iter()
                        .map(|(k, _)| k.strip_prefix(':').unwrap_or(k).to_string())
                        .collect(),
                }),
        })
        .collect::<Result<Vec<Param>, SourceError>>()?;
    Ok((tr, values))
}

/// Refuses a source query that plainly writes, before it is sent: the
/// read-only transaction it runs in would refuse it too, but only once the
/// batch runs. (A write hidden in a `WITH` or a function is refused then.)
fn refuse_writes(sql: &str) -> Result<(), SourceError> {
    let first = first_word(sql).to_ascii_lowercase();
    if matches!(
        first.as_str(),
        "insert" | "update" | "delete" | "merge" | "truncate" | "copy"
    ) {
        return Err(SourceError::NotReadOnly {
            sql: sql.to_string(),
        });
    }
    Ok(())
}

/// The first word of `sql`, past blanks, comments and opening brackets.
fn first_word(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        let t = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(r) = t.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(r) = t.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r);
        } else {
            let end = t
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(t.len());
            return &t[..end];
        }
    }
}

/// Prepares `tr_sql` (the rewritten `sql`) and returns it with its
/// column names. When a column's type is not one [`Cell`] decodes (an
/// array, an interval, a geometric type...), the query is prepared again
/// inside `select ... from (query) as q(...)` that casts such columns to
/// text: the value arrives as PostgreSQL prints it (`{a,b}`, `1 day`).
fn prepare_readable(
    tx: &mut impl postgres::GenericClient,
    tr_sql: &str,
    params: usize,
) -> Result<(postgres::Statement, Vec<String>), postgres::Error> {
    let stmt = prepare(tx, tr_sql, params)?;
    let names: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    if stmt.columns().iter().all(|c| pgvalue::readable(c.type_())) {
        return Ok((stmt, names));
    }
    let mut select = Vec::new();
    let mut aliases = Vec::new();
    for (i, c) in stmt.columns().iter().enumerate() {
        aliases.push(format!("c{i}"));
        select.push(if pgvalue::readable(c.type_()) {
            format!("q.c{i}")
        } else {
            format!("q.c{i}::text")
        });
    }
    let inner = tr_sql.trim_end();
    let inner = inner.strip_suffix(';').unwrap_or(inner);
    let wrapped = format!(
        "select {} from (\n{inner}\n) as q({})",
        select.join(", "),
        aliases.join(", ")
    );
    Ok((prepare(tx, &wrapped, params)?, names))
}

/// Prepares `sql`, whose `params` parameters take their types from where
/// they stand (`id = $1`: an integer). Where nothing gives one a type
/// (`$1 is not null`), PostgreSQL cannot prepare the statement; it is
/// then prepared again with every parameter `text`, as an untyped
/// literal would be read. Called outside a transaction: the failed first
/// attempt would abort one.
fn prepare(
    tx: &mut impl postgres::GenericClient,
    sql: &str,
    params: usize,
) -> Result<postgres::Statement, postgres::Error> {
    match tx.prepare(sql) {
        Err(e) if e.code().map(|c| c.code()) == Some("42P18") => {
            tx.prepare_typed(sql, &vec![Type::TEXT; params])
        }
        r => r,
    }
}

/// Lowers the transaction's statement timeout to what is left of `limit`
/// (never raising one the connection has).
fn set_timeout(
    tx: &mut postgres::Transaction<'_>,
    timeout_ms: i64,
    limit: Duration,
) -> Result<(), postgres::Error> {
    let mut ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX).max(1);
    if timeout_ms > 0 {
        ms = ms.min(timeout_ms);
    }
    tx.execute(
        "select set_config('statement_timeout', $1, true)",
        &[&ms.to_string()],
    )
    .map(drop)
}

/// The error of a query, in the terms of the source layer: a write, two
/// statements, the statement timeout; else the server's message.
/// `limit`: the `ENTITY_TIMEOUT` the query ran under, and when it began.
fn query_error(
    sql: &str,
    timeout_ms: i64,
    limit: Option<(Duration, Instant)>,
    e: &postgres::Error,
) -> SourceError {
    let code = e.code().map(|c| c.code());
    let message = crate::pg::db_message(e);
    match code {
        Some("25006") => SourceError::NotReadOnly {
            sql: sql.to_string(),
        },
        Some("42601") if message.contains("multiple commands") => SourceError::MultipleStatements {
            sql: sql.to_string(),
        },
        Some("57014") => match limit {
            Some((limit, start)) if start.elapsed() >= limit => SourceError::TimedOut { limit },
            _ if message.contains("statement timeout") => SourceError::TooSlow {
                sql: super::error::clip_sql(sql),
                ms: timeout_ms,
            },
            _ => SourceError::query(sql, message),
        },
        _ => SourceError::query(sql, message),
    }
}

/// A value bound in PostgreSQL's text form: the server parses it as the
/// type the query gives its parameter (`where id = ?` on an integer
/// column reads `'42'` as 42), as it would a quoted literal.
impl ToSql for Param {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Text(s) => out.extend_from_slice(s.as_bytes()),
            Param::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Param::Float(f) => out.extend_from_slice(f.to_string().as_bytes()),
            Param::Null => return Ok(IsNull::Yes),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_writes_are_told_by_their_first_word() {
        for sql in [
            "delete from t returning id",
            "  (INSERT into t values (1) returning id)",
            "-- note\n update t set a = 1 returning id",
            "/* x */ merge into t using s on true when matched then delete",
        ] {
            assert!(
                matches!(refuse_writes(sql), Err(SourceError::NotReadOnly { .. })),
                "{sql}"
            );
        }
        for sql in [
            "select 1",
            "with d as (select 1) select * from d",
            "values (1)",
        ] {
            assert!(refuse_writes(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn values_follow_their_placeholders() {
        let named = [(":from_date", Param::Text("2026-01-01".into()))];
        let (tr, values) = bound(
            "select id from t where a = ? and d >= :from_date and b = ? or d < :FROM_DATE",
            &[Param::Int(1), Param::Text("x".into())],
            &named,
        )
        .unwrap();
        assert_eq!(
            tr.sql,
            "select id from t where a = $1 and d >= $2 and b = $3 or d < $2"
        );
        assert_eq!(
            values,
            vec![
                Param::Int(1),
                Param::Text("2026-01-01".into()),
                Param::Text("x".into())
            ]
        );
    }

    #[test]
    fn a_missing_value_is_named() {
        let e = check_text("select id from t where a = ?", &[], &[]).unwrap_err();
        assert!(
            matches!(
                e,
                SourceError::ParamCount {
                    expected: 1,
                    given: 0
                }
            ),
            "{e}"
        );
        let e = check_text("select id from t where d > :batch_start", &[], &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the query uses :batch_start, which has no value here; no named values are bound \
             here (window variables are set only for a named batch, WITH NAME='...')"
        );
        let e = check_text("select id from t where a = $1", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("write ? for a value"), "{e}");
    }
}
