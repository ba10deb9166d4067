//! A test's direct look at the store of a home: the SQLite file
//! `<home>/store.db`, or, when the tests keep their stores in PostgreSQL
//! (`crate::pg::stores_on_postgres`), the home's database there. Tests
//! write their SQL once, with `?1` or `?` placeholders, in what both
//! dialects read alike; rows come back as JSON values.

use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// A value a statement binds: text or an integer, on either store.
pub(crate) trait Arg: rusqlite::ToSql + postgres::types::ToSql + Sync {}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Arg for T {}

/// An open connection to a home's store.
pub(crate) enum StoreDb {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl StoreDb {
    /// The store of `home`, which must exist.
    #[track_caller]
    pub(crate) fn open(home: &Path) -> StoreDb {
        Self::try_open(home).unwrap_or_else(|| panic!("no store in {}", home.display()))
    }

    /// The store of `home`, or `None` while batchsh has not made it yet:
    /// no file, or a database without batchsh's tables.
    pub(crate) fn try_open(home: &Path) -> Option<StoreDb> {
        if let Some(url) = crate::pg::store_url(home) {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).ok()?;
            let made = c
                .query_one("SELECT to_regclass('batchsh_meta') IS NOT NULL", &[])
                .ok()?
                .get::<_, bool>(0);
            return made.then_some(StoreDb::Postgres(c));
        }
        let path = home.join("store.db");
        if !path.exists() {
            return None;
        }
        let c = rusqlite::Connection::open(path).ok()?;
        c.busy_timeout(Duration::from_secs(30)).ok()?;
        Some(StoreDb::Sqlite(c))
    }

    /// Whether this is the PostgreSQL store.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, StoreDb::Postgres(_))
    }

    /// Where a batch's counters (total, waiting, in_process, completed,
    /// failed, cancelled, added, updated, unchanged) are read by `bid`:
    /// `batches` in SQLite; in PostgreSQL the `batch_totals` view, which
    /// adds each worker's changes to the batch's own row.
    pub(crate) fn totals(&self) -> &'static str {
        if self.is_postgres() {
            "batch_totals"
        } else {
            "batches"
        }
    }

    /// The rows of `sql`, each an object of its columns by name.
    #[track_caller]
    pub(crate) fn rows(&mut self, sql: &str, args: &[&dyn Arg]) -> Vec<Value> {
        self.try_rows(sql, args)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// [`StoreDb::rows`], or the store's error.
    pub(crate) fn try_rows(&mut self, sql: &str, args: &[&dyn Arg]) -> Result<Vec<Value>, String> {
        match self {
            StoreDb::Sqlite(c) => {
                let mut st = c.prepare(sql).map_err(|e| e.to_string())?;
                let names: Vec<String> = st.column_names().map(str::to_string).collect();
                let params =
                    rusqlite::params_from_iter(args.iter().map(|a| *a as &dyn rusqlite::ToSql));
                let mut rows = st.query(params).map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(|e| e.to_string())? {
                    let mut row = Map::new();
                    for (i, name) in names.iter().enumerate() {
                        row.insert(name.clone(), sqlite_value(r.get_ref(i).unwrap()));
                    }
                    out.push(Value::Object(row));
                }
                Ok(out)
            }
            StoreDb::Postgres(c) => {
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                    .iter()
                    .map(|a| *a as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let rows = c
                    .query(&dollars(sql), &params)
                    .map_err(|e| match e.as_db_error() {
                        Some(db) => db.message().to_string(),
                        None => e.to_string(),
                    })?;
                Ok(rows.iter().map(pg_row).collect())
            }
        }
    }

    /// The one row of `sql`.
    #[track_caller]
    pub(crate) fn row(&mut self, sql: &str, args: &[&dyn Arg]) -> Value {
        let mut rows = self.rows(sql, args);
        assert_eq!(rows.len(), 1, "{sql}: not one row: {rows:?}");
        rows.remove(0)
    }

    /// The first column of the one row of `sql`.
    #[track_caller]
    fn one(&mut self, sql: &str, args: &[&dyn Arg]) -> Value {
        let row = self.row(sql, args);
        row.as_object().unwrap().values().next().unwrap().clone()
    }

    /// The integer `sql` gives (one row, one column).
    #[track_caller]
    pub(crate) fn i64(&mut self, sql: &str, args: &[&dyn Arg]) -> i64 {
        let v = self.one(sql, args);
        v.as_i64()
            .unwrap_or_else(|| panic!("{sql}: {v} is not an integer"))
    }

    /// [`StoreDb::i64`], or `None` when the statement fails (a store that
    /// is not yet made, or has no such row yet): for a test that polls.
    pub(crate) fn try_i64(&mut self, sql: &str, args: &[&dyn Arg]) -> Option<i64> {
        let rows = self.try_rows(sql, args).ok()?;
        rows.first()?.as_object()?.values().next()?.as_i64()
    }

    /// The text or null `sql` gives (one row, one column).
    #[track_caller]
    pub(crate) fn opt_string(&mut self, sql: &str, args: &[&dyn Arg]) -> Option<String> {
        match self.one(sql, args) {
            Value::Null => None,
            Value::String(s) => Some(s),
            v => panic!("{sql}: {v} is not text"),
        }
    }

    /// The text `sql` gives (one row, one column, not null).
    #[track_caller]
    pub(crate) fn string(&mut self, sql: &str, args: &[&dyn Arg]) -> String {
        self.opt_string(sql, args)
            .unwrap_or_else(|| panic!("{sql}: null"))
    }

    /// The texts of the first column of `sql`'s rows.
    #[track_caller]
    pub(crate) fn strings(&mut self, sql: &str, args: &[&dyn Arg]) -> Vec<String> {
        self.rows(sql, args)
            .into_iter()
            .map(|r| match r.as_object().unwrap().values().next() {
                Some(Value::String(s)) => s.clone(),
                v => panic!("{sql}: {v:?} is not text"),
            })
            .collect()
    }

    /// Runs a statement that changes rows; how many it changed.
    #[track_caller]
    pub(crate) fn execute(&mut self, sql: &str, args: &[&dyn Arg]) -> u64 {
        match self {
            StoreDb::Sqlite(c) => {
                let params =
                    rusqlite::params_from_iter(args.iter().map(|a| *a as &dyn rusqlite::ToSql));
                c.execute(sql, params)
                    .unwrap_or_else(|e| panic!("{sql}: {e}")) as u64
            }
            StoreDb::Postgres(c) => {
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                    .iter()
                    .map(|a| *a as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                c.execute(&dollars(sql), &params)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }
}

impl StoreDb {
    /// Starts a transaction (SQLite's takes the write lock at once).
    pub(crate) fn begin(&mut self) {
        self.batch(if self.is_postgres() {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        });
    }

    pub(crate) fn commit(&mut self) {
        self.batch("COMMIT");
    }

    fn batch(&mut self, sql: &str) {
        match self {
            StoreDb::Sqlite(c) => c
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            StoreDb::Postgres(c) => c
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Whether no other process holds a lock on the store now: SQLite's
    /// write lock is free (taken and let go within 200 ms), or no other
    /// connection to the PostgreSQL database is inside a transaction.
    pub(crate) fn holds_no_lock(&mut self) -> bool {
        match self {
            StoreDb::Sqlite(c) => {
                c.busy_timeout(Duration::from_millis(200)).unwrap();
                c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok()
            }
            StoreDb::Postgres(_) => {
                self.i64(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()
                         AND xact_start IS NOT NULL",
                    &[],
                ) == 0
            }
        }
    }
}

/// SQLite's placeholders (`?1`, `?`) as PostgreSQL's (`$1`), outside
/// quoted text.
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut next = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    out
}

fn sqlite_value(v: rusqlite::types::ValueRef) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => f.into(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => b.to_vec().into(),
    }
}

/// A PostgreSQL row as JSON, its booleans as SQLite's 0 and 1.
fn pg_row(r: &postgres::Row) -> Value {
    use postgres::types::Type;
    let mut row = Map::new();
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        let v: Value = if *t == Type::INT8 {
            r.get::<_, Option<i64>>(i).into()
        } else if *t == Type::INT4 {
            r.get::<_, Option<i32>>(i).into()
        } else if *t == Type::INT2 {
            r.get::<_, Option<i16>>(i).into()
        } else if *t == Type::BOOL {
            r.get::<_, Option<bool>>(i).map(i64::from).into()
        } else if *t == Type::FLOAT8 {
            r.get::<_, Option<f64>>(i).into()
        } else if *t == Type::FLOAT4 {
            r.get::<_, Option<f32>>(i).into()
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(t) {
            r.get::<_, Option<String>>(i).into()
        } else if [Type::JSON, Type::JSONB].contains(t) {
            r.get::<_, Option<Value>>(i).unwrap_or(Value::Null)
        } else {
            panic!("column {} is {t}: cast it to bigint or text", col.name())
        };
        row.insert(col.name().to_string(), v);
    }
    Value::Object(row)
}

#[test]
fn placeholders_become_dollars_outside_quotes() {
    assert_eq!(
        dollars("SELECT a FROM t WHERE b = ?1 AND c = '?' AND d = ?2"),
        "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2"
    );
    assert_eq!(dollars("VALUES (?, ?)"), "VALUES ($1, $2)");
}
