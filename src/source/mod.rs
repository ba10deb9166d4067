//! Data sources: the interfaces a batch reads entity ids from, and the LU
//! syncs rows from (SPEC §3, §4).
//!
//! An interface is opened as a [`Conn`]:
//!
//! - `SQLITE`: the database file itself, opened read-write (per-entity `sql`
//!   commands write) but never created;
//! - `CSV`: an in-memory database with one TEXT table per `.csv` file, named
//!   by the file's stem, made read-only once loaded;
//! - `POSTGRES`: a connection to the database the URL names ([`crate::pg`]);
//!   queries are PostgreSQL's SQL, their `?` and window names rewritten as
//!   `$n` ([`placeholders`]), their values converted to SQLite's
//!   (`pgvalue`).
//!
//! [`check`] runs when an interface is created and again when a batch uses
//! it; [`open`] opens it; [`open_schema`] opens only what checking a query
//! needs ([`connect`] and [`schema`] are their SQLite halves). Queries go
//! through [`Conn::for_each_id`] (streams the first column as entity ids;
//! [`read_ids`] opens the interface too, for a batch's run),
//! [`InstanceRows`] (small results, for LU table sync) and
//! [`Conn::column_count`]. Values are always bound, never pasted into SQL.

mod csv;
mod error;
pub mod lines;
mod pgvalue;
pub mod placeholders;
mod pool;
pub mod postgres;
mod query;
mod sqlite;
pub mod watchdog;

#[cfg(test)]
mod tests;

pub use error::{IdError, MAX_ID_BYTES, SourceError, check_id};
pub use pool::Pool;
pub use query::{
    Param, bind, bind_params, bind_params_json, check_id_query, check_read_query, column_count,
    for_each_id, query_rows,
};

use crate::catalog::InterfaceKind;
use crate::store::InterfaceDef;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// How long a connection waits for another process's lock before it gives
/// up: a source that is being written to is waited for, not reported broken.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An interface as the catalog holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub kind: InterfaceKind,
    /// An absolute path (`SQLITE`, `CSV`) or a URL (`POSTGRES`).
    pub location: String,
    /// CSV only: the first line names the columns.
    pub header: bool,
    /// CSV only: the field separator.
    pub delimiter: u8,
    /// CSV only: column types inferred from the values (else all TEXT).
    pub types: bool,
}

impl Interface {
    /// An interface with the CSV options at their defaults (`HEADER=true`,
    /// `DELIMITER=','`).
    pub fn new(name: impl Into<String>, kind: InterfaceKind, location: impl Into<String>) -> Self {
        Interface {
            name: name.into(),
            kind,
            location: location.into(),
            header: true,
            delimiter: b',',
            types: true,
        }
    }

    fn path(&self) -> &Path {
        Path::new(&self.location)
    }

    fn not_sqlite(&self) -> SourceError {
        SourceError::NotSqliteKind {
            interface: self.name.clone(),
            kind: self.kind.keyword(),
        }
    }
}

/// The data-source view of a catalog entry. Defined here, beside what it
/// makes, so that the store need not know the sources.
impl InterfaceDef {
    pub fn source(&self) -> Interface {
        let mut i = Interface::new(self.name.clone(), self.kind, self.location.clone());
        i.header = self.header;
        i.delimiter = u8::try_from(self.delimiter).unwrap_or(b',');
        i.types = self.types;
        i
    }
}

/// What a path is when it is neither a regular file nor a folder (symlinks
/// followed), to refuse it before opening it: opening a FIFO for reading
/// waits for a writer, forever if none comes, and a socket or a device is
/// no data source either. `None` for a file or a folder.
fn special_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    Some(if t.is_file() || t.is_dir() {
        return None;
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "a special file"
    })
}

/// Resolves an interface's `PATH` against the working directory and removes
/// `.` and `..` lexically.
///
/// Lexically, not with `canonicalize`: the file need not exist yet when the
/// path is stored (the check reports that separately), and the stored path
/// should be the one the user wrote, not one with symlinks resolved. `~` is
/// not expanded: that is the shell's job.
pub fn resolve_path(path: impl AsRef<Path>, cwd: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in cwd.join(path).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                // Only reachable with a relative `cwd`: keep the `..`.
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// Checks that an interface can be read: at `CREATE INTERFACE`, and again
/// when a batch uses it, so that a file removed since is reported clearly.
///
/// - `SQLITE`: the path is a readable file and an SQLite database.
/// - `CSV`: the path is a `.csv` file, or a folder with at least one; every
///   file is read through with the interface's header and delimiter, so a
///   short row is reported now with its file and line, not mid-batch.
/// - `POSTGRES`: the URL is one, and connecting with it works (the server
///   answers, lets the user in, has the database).
///
/// [`open`] does all of this itself: calling `check` right before
/// `open` reads a CSV interface twice.
pub fn check(iface: &Interface) -> Result<(), SourceError> {
    match iface.kind {
        InterfaceKind::Sqlite => sqlite::open(iface, sqlite::Mode::ReadOnly).map(drop),
        InterfaceKind::Csv => csv::check(iface),
        InterfaceKind::Postgres => postgres::connect(iface).map(drop),
    }
}

/// An open interface: an SQLite connection (`SQLITE`, `CSV`) or a
/// PostgreSQL one (`POSTGRES`).
#[derive(Debug)]
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::PgConn>),
}

/// Opens an interface of any kind: [`connect`] for `SQLITE` and `CSV`, a
/// connection to its database for `POSTGRES`.
pub fn open(iface: &Interface) -> Result<Conn, SourceError> {
    match iface.kind {
        InterfaceKind::Postgres => postgres::connect(iface).map(|c| Conn::Postgres(Box::new(c))),
        _ => connect(iface).map(Conn::Sqlite),
    }
}

/// Opens an interface for checking queries: [`schema`] for `SQLITE` and
/// `CSV`, a connection for `POSTGRES` (the server describes a query
/// without running it).
pub fn open_schema(iface: &Interface) -> Result<Conn, SourceError> {
    match iface.kind {
        InterfaceKind::Postgres => open(iface),
        _ => schema(iface).map(Conn::Sqlite),
    }
}

impl Conn {
    /// Streams the first column of `sql` as entity ids to `f` (see
    /// [`for_each_id`]; on PostgreSQL, a page of [`postgres::FETCH`] rows
    /// at a time from a portal, in a read-only transaction).
    pub fn for_each_id(
        &mut self,
        sql: &str,
        params: &[Param],
        named: &[(&str, Param)],
        f: impl FnMut(Result<String, IdError>) -> std::ops::ControlFlow<()>,
    ) -> Result<u64, SourceError> {
        match self {
            Conn::Sqlite(c) => for_each_id(c, sql, params, named, f),
            Conn::Postgres(c) => c.for_each_id(sql, params, named, f),
        }
    }

    /// How many columns `sql` returns, without running it.
    pub fn column_count(&mut self, sql: &str) -> Result<usize, SourceError> {
        match self {
            Conn::Sqlite(c) => column_count(c, sql),
            Conn::Postgres(c) => c.column_count(sql),
        }
    }

    /// Checks a query an LU runs (its ROOT and TABLE queries), without
    /// running it: one statement, that only reads.
    pub fn check_read_query(&mut self, sql: &str) -> Result<(), SourceError> {
        match self {
            Conn::Sqlite(c) => check_read_query(c, sql),
            Conn::Postgres(c) => c.column_count(sql).map(drop),
        }
    }

    /// The SQLite connection, for what only SQLite has (interrupting a
    /// statement from another thread).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// Whether the connection can be used again (a PostgreSQL connection
    /// may have been lost).
    pub fn is_usable(&self) -> bool {
        match self {
            Conn::Sqlite(_) => true,
            Conn::Postgres(c) => !c.is_closed(),
        }
    }
}

/// One query's column names and rows.
pub type Rows = (Vec<String>, Vec<Vec<rusqlite::types::Value>>);

/// Where an LU's instance rows come from: an interface's connection
/// ([`Conn`]), or an SQLite connection as it is.
pub trait InstanceRows {
    /// The rows of each of an LU's table queries for instance `id`, in
    /// order: each query run with every positional `?` bound to `id` (a
    /// query may need it twice, or not at all); a named parameter has no
    /// value. The error comes with the position of the query it is
    /// about. On PostgreSQL the queries share one snapshot, and `limit`
    /// (`ENTITY_TIMEOUT`) caps each on the server; SQLite's caller
    /// interrupts the connection instead.
    fn instance(
        &mut self,
        sqls: &[&str],
        id: &str,
        limit: Option<Duration>,
    ) -> Result<Vec<Rows>, (usize, SourceError)>;

    /// The SQLite connection to interrupt when `ENTITY_TIMEOUT` passes;
    /// `None` for a PostgreSQL one, whose limit the server keeps.
    fn interrupt_handle(&self) -> Option<rusqlite::InterruptHandle>;
}

impl InstanceRows for &rusqlite::Connection {
    fn instance(
        &mut self,
        sqls: &[&str],
        id: &str,
        _: Option<Duration>,
    ) -> Result<Vec<Rows>, (usize, SourceError)> {
        sqls.iter()
            .enumerate()
            .map(|(k, sql)| {
                let params = vec![Param::Text(id.to_string()); query::positional_count(self, sql)];
                query_rows(self, sql, &params).map_err(|e| (k, e))
            })
            .collect()
    }

    fn interrupt_handle(&self) -> Option<rusqlite::InterruptHandle> {
        Some(self.get_interrupt_handle())
    }
}

impl InstanceRows for &mut Conn {
    fn instance(
        &mut self,
        sqls: &[&str],
        id: &str,
        limit: Option<Duration>,
    ) -> Result<Vec<Rows>, (usize, SourceError)> {
        match &mut **self {
            Conn::Sqlite(c) => (&*c).instance(sqls, id, limit),
            Conn::Postgres(c) => c.instance(sqls, id, limit),
        }
    }

    fn interrupt_handle(&self) -> Option<rusqlite::InterruptHandle> {
        self.sqlite()
            .map(rusqlite::Connection::get_interrupt_handle)
    }
}

/// Opens an `SQLITE` or `CSV` interface as an SQLite connection.
///
/// `SQLITE`: the file, read-write but never created, with a busy timeout of
/// [`BUSY_TIMEOUT`]. `CSV`: an in-memory database holding one table per
/// file, every column TEXT; it is read-only once loaded, so that an `sql`
/// command that writes to it fails instead of changing a copy that is thrown
/// away.
pub fn connect(iface: &Interface) -> Result<rusqlite::Connection, SourceError> {
    match iface.kind {
        InterfaceKind::Sqlite => sqlite::open(iface, sqlite::Mode::ReadWrite),
        InterfaceKind::Csv => csv::load(iface),
        InterfaceKind::Postgres => Err(iface.not_sqlite()),
    }
}

/// One column of an interface's table, for `DESCRIBE INTERFACE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub table: String,
    pub name: String,
    /// As declared (an SQLite file), or inferred (a CSV interface):
    /// upper case, `INTEGER`, `REAL`, `TEXT`...; empty when not declared.
    pub ty: String,
}

/// Every table (and view) of `iface` with its columns, in table order, as
/// a query on it sees them: a CSV interface is loaded, so its columns
/// have the types inferred from their values. A PostgreSQL database lists
/// its tables and views outside the system schemas.
pub fn describe(iface: &Interface) -> Result<Vec<Column>, SourceError> {
    let conn = match open(iface)? {
        Conn::Sqlite(c) => c,
        Conn::Postgres(mut c) => return c.describe(),
    };
    let read = || -> rusqlite::Result<Vec<Column>> {
        let mut tables = conn.prepare(
            "select name from sqlite_master where type in ('table', 'view') \
             and name not like 'sqlite\\_%' escape '\\' order by name",
        )?;
        let names: Vec<String> = tables
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut columns = Vec::new();
        for table in names {
            let mut info = conn.prepare("select name, type from pragma_table_info(?1)")?;
            let rows = info.query_map([&table], |r| {
                Ok(Column {
                    table: table.clone(),
                    name: r.get(0)?,
                    ty: r.get::<_, String>(1)?.to_uppercase(),
                })
            })?;
            for c in rows {
                columns.push(c?);
            }
        }
        Ok(columns)
    };
    read().map_err(|e| SourceError::query("DESCRIBE INTERFACE", e.to_string()))
}

/// Gives every id of `sql` on `iface` to `f` (see [`for_each_id`]), as a
/// batch reads its source, and the batch's error if it cannot: an
/// interface that cannot be opened names itself, and one whose file is
/// gone since it was created says how to go on; a query that fails is
/// named with its interface.
///
/// A `POSTGRES` interface is connected to here, once for the batch's
/// source, and its ids are streamed from a server-side cursor.
pub fn read_ids(
    iface: &Interface,
    sql: &str,
    params: &[Param],
    window: &[(String, String)],
    f: impl FnMut(Result<String, IdError>) -> std::ops::ControlFlow<()>,
) -> Result<u64, String> {
    let mut conn = open(iface).map_err(|e| match e {
        SourceError::NotFound { .. } => format!(
            "{e}; put the file back, or give the interface its new PATH with \
             CREATE OR REPLACE INTERFACE {}, then BATCH_RETRY the batch",
            iface.name
        ),
        SourceError::Postgres { .. } => format!(
            "{e}; correct the URL with CREATE OR REPLACE INTERFACE {} ... URL '...' \
             (or bring the server back), then BATCH_RETRY the batch",
            iface.name
        ),
        e => e.to_string(),
    })?;
    conn.for_each_id(sql, params, &window_params(window), f)
        .map_err(|e| format!("the source query failed on interface {}: {e}", iface.name))
}

/// The window variables of a named batch's run (`FROM_DATE`...) as the
/// named values of a query (`:from_date`...), bound as text.
pub fn window_params(window: &[(String, String)]) -> Vec<(&str, Param)> {
    window
        .iter()
        .map(|(k, v)| (k.as_str(), Param::Text(v.clone())))
        .collect()
}

/// Opens an interface for preparing queries, not for running them: to
/// check a query's text (one statement, read-only, its `?` count) before
/// anything is stored, at no cost that grows with the data.
///
/// `SQLITE`: the file, read-only (cheap: SQLite reads the schema only).
/// `CSV`: an in-memory database whose tables are created empty from each
/// file's header line (or first row). Preparing needs the schema alone, and
/// loading the rows here as well would make a batch on a large CSV read its
/// files twice: once here, once in the run that reads the ids, which
/// [`connect`]s and so finds any bad row further down.
pub fn schema(iface: &Interface) -> Result<rusqlite::Connection, SourceError> {
    match iface.kind {
        InterfaceKind::Sqlite => sqlite::open(iface, sqlite::Mode::ReadOnly),
        InterfaceKind::Csv => csv::schema(iface),
        InterfaceKind::Postgres => Err(iface.not_sqlite()),
    }
}
