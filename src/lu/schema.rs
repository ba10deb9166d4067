//! The LU store's file and its schema: opening and checking the file, the
//! `__instances` marker table, and the per-LU-table tables, created and
//! widened as syncs reveal their columns.
//!
//! Every table and column name here comes from a user (an LU definition or
//! the columns a source query returns), so every one goes through [`ident`];
//! values are always bound.

use super::LuError;
use crate::store::LuDef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `PRAGMA application_id` of an LU store: "BSHL".
pub const APPLICATION_ID: i32 = 0x4253_484C;

/// `PRAGMA user_version` of the layout this file describes. Version 1 did
/// not record the writing batch entity; version 2 (a development build)
/// recorded it in a table `__last_write`. Opening either brings it to this
/// one.
pub const VERSION: i64 = 3;

/// How long a statement waits for another connection's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The instance id column of every LU table.
pub const IID: &str = "__iid";
/// The explicit rowid of every LU table: a column named `rowid` in the
/// source would hide SQLite's implicit one.
pub const ROWID: &str = "__rowid";

/// Created with the file. `WITHOUT ROWID`: the table is its id index, so a
/// presence check is one lookup and `FROM FABRIC` one ordered scan.
///
/// `batch`, `seq` and `outcome` say which batch entity wrote the instance
/// last and what it reported (Added, Updated), in the write's own
/// transaction (NULL for a write made outside a batch): an entity run again
/// after a crash reports what its first run did (see [`super::Entity`]).
const MARKER_DDL: &str = "CREATE TABLE IF NOT EXISTS __instances (
    id         TEXT NOT NULL PRIMARY KEY,
    added_at   TEXT NOT NULL,   -- RFC 3339 UTC: the sync that added the instance
    changed_at TEXT NOT NULL,   -- the last sync that wrote (Unchanged writes nothing)
    batch      TEXT,            -- the batch whose entity wrote it last
    seq        INTEGER,         -- that entity's sequence number
    outcome    TEXT             -- what that entity reported: Added or Updated
) WITHOUT ROWID";

/// The instances deleted by a batch entity, and which: written in the
/// delete's transaction, so that an entity run again after a crash
/// (at-least-once, SPEC §7) reports the delete its first run made (see
/// [`super::Entity`]). One row per instance deleted this way.
const DELETED_DDL: &str = "CREATE TABLE IF NOT EXISTS __deleted (
    id    TEXT NOT NULL PRIMARY KEY,  -- the instance
    batch TEXT NOT NULL,              -- the batch whose entity deleted it last
    seq   INTEGER NOT NULL            -- that entity's sequence number
) WITHOUT ROWID";

/// The marker columns version 3 added to `__instances`: which batch
/// entity last wrote an instance. A version 2 file (development builds)
/// may have them already, or keep the record in a table `__last_write`
/// instead, which the upgrade drops: those records only matter for an
/// entity run again after a crash, and a lost one makes that entity report
/// what it finds (Unchanged), as version 1 did.
const MARKER_COLUMNS: [(&str, &str); 3] =
    [("batch", "TEXT"), ("seq", "INTEGER"), ("outcome", "TEXT")];

/// Brings a version 1 or 2 file to version 3, whichever of its layouts.
fn upgrade_to_3(conn: &Connection) -> rusqlite::Result<()> {
    for (column, kind) in MARKER_COLUMNS {
        let has: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('__instances') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )?;
        if !has {
            conn.execute_batch(&format!(
                "ALTER TABLE __instances ADD COLUMN {column} {kind}"
            ))?;
        }
    }
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS __last_write; {DELETED_DDL}; PRAGMA user_version = {VERSION};"
    ))
}

/// An SQL identifier, quoted: `a"b` is `"a""b"`.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// SQLite folds identifiers by ASCII case only.
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `<home>/lu/<LU>.db`.
pub fn path(home: &Path, lu: &str) -> Result<PathBuf, LuError> {
    let plain = !lu.is_empty() && lu.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain {
        return Err(LuError::BadLuName { lu: lu.to_string() });
    }
    Ok(home.join("lu").join(format!("{lu}.db")))
}

/// Checks the names of an LU's tables: none may be one the store keeps for
/// itself (`__` prefix, SQLite's `sqlite_`), and no two may be one SQLite
/// table (names ignore case). CREATE LU can call this to refuse early; every
/// LU store operation calls it too.
pub fn check_table_names(lu: &LuDef) -> Result<(), LuError> {
    for (k, t) in lu.tables.iter().enumerate() {
        let lower = t.name.to_ascii_lowercase();
        if lower.starts_with("__") || lower.starts_with("sqlite_") {
            return Err(LuError::ReservedTable {
                lu: lu.name.clone(),
                table: t.name.clone(),
            });
        }
        if lu.tables[..k].iter().any(|u| same_name(&u.name, &t.name)) {
            return Err(LuError::DuplicateTable {
                lu: lu.name.clone(),
                table: t.name.clone(),
            });
        }
    }
    Ok(())
}

/// A column name no query may return.
pub fn reserved_column(name: &str) -> bool {
    same_name(name, IID) || same_name(name, ROWID)
}

/// Opens (creating) the file and brings it to the current layout. A file
/// that exists and is not an LU store, or is newer, is left untouched.
pub fn open(path: &Path, lu: &str) -> Result<Connection, LuError> {
    let sql_err = |source| LuError::Sqlite {
        lu: lu.to_string(),
        path: path.to_path_buf(),
        source,
    };
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        inspect(path, lu)?;
    }
    let conn = connect(path).map_err(sql_err)?;
    wal(&conn).map_err(sql_err)?;
    init(&conn, path, lu)?;
    Ok(conn)
}

/// A further connection to a file [`open`] has prepared.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Each LU table has its own read statement: room for an LU of many
    // tables, so that a sync does not prepare them again every time.
    conn.set_prepared_statement_cache_capacity(64);
    // NORMAL in WAL mode is durable across a process crash; against a
    // power cut, the executor syncs the log before it commits the outcomes
    // of the entities written ([`crate::lu::flush_log`]), once per group
    // of outcomes instead of once per entity.
    conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    Ok(conn)
}

/// WAL lets `GET` and `FROM FABRIC` read while a batch syncs. The mode is
/// kept in the file, so only the first open switches it; switching needs
/// the file to itself and SQLite may report busy without waiting, so a
/// second process opening a new file at the same moment retries.
fn wal(conn: &Connection) -> rusqlite::Result<()> {
    let started = Instant::now();
    loop {
        let mode: rusqlite::Result<String> =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates the marker table and stamps the file, once.
fn init(conn: &Connection, path: &Path, lu: &str) -> Result<(), LuError> {
    let sql_err = |source| LuError::Sqlite {
        lu: lu.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if version == VERSION {
        return Ok(());
    }
    // IMMEDIATE: two workers opening a new file at once must not both
    // initialise it; the second waits, then sees the version and stops.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 0 {
            conn.execute_batch(&format!(
                "{MARKER_DDL}; {DELETED_DDL}; PRAGMA application_id = {APPLICATION_ID}; \
                 PRAGMA user_version = {VERSION};"
            ))?;
        } else if version < VERSION {
            upgrade_to_3(conn)?;
        }
        conn.execute_batch("COMMIT")
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result.map_err(sql_err)
}

/// Looks at an existing file through a read-only connection first: it must
/// be an LU store (or an empty database) no newer than this binary.
fn inspect(path: &Path, lu: &str) -> Result<(), LuError> {
    let not_ours = |reason: String| LuError::NotAnLuStore {
        lu: lu.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_ours(e.to_string()))?;
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    // One statement, one snapshot: read one by one, the stamp could be
    // seen before another process's first open commits it and the tables
    // after, which looks like another application's database.
    let (app_id, version, objects): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id),
                    (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_master)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| not_ours(e.to_string()))?;
    if app_id != i64::from(APPLICATION_ID) {
        if app_id == 0 && objects == 0 {
            return Ok(());
        }
        return Err(not_ours(format!(
            "it is an SQLite database of another application (application_id {app_id}, \
             {objects} schema objects)"
        )));
    }
    if version > VERSION {
        return Err(LuError::Newer {
            path: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    Ok(())
}

/// The user columns of an LU table in the file, in their order (without
/// `__rowid` and `__iid`); `None` when the table does not exist yet.
pub fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Option<Vec<String>>> {
    let mut st = conn.prepare_cached("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let all = st
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    if all.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        all.into_iter().filter(|c| !reserved_column(c)).collect(),
    ))
}

/// Creates an LU table with `columns`, or adds to an existing one the
/// columns it lacks. Columns have no declared type: no affinity, so a value
/// reads back exactly as it was written, and comparing needs no conversion.
pub fn ensure_table(
    conn: &Connection,
    table: &str,
    existing: Option<&[String]>,
    columns: &[String],
) -> rusqlite::Result<()> {
    match existing {
        None => {
            let mut ddl = format!(
                "CREATE TABLE {} ({} INTEGER PRIMARY KEY, {} TEXT NOT NULL",
                ident(table),
                ident(ROWID),
                ident(IID)
            );
            for c in columns {
                ddl.push_str(", ");
                ddl.push_str(&ident(c));
            }
            ddl.push_str(");");
            // Index names share the table namespace; `__` is reserved for
            // the store, so this cannot meet an LU table.
            ddl.push_str(&format!(
                "CREATE INDEX {} ON {} ({});",
                ident(&format!("__iid_{table}")),
                ident(table),
                ident(IID)
            ));
            conn.execute_batch(&ddl)
        }
        Some(have) => {
            for c in columns {
                if !have.iter().any(|h| same_name(h, c)) {
                    conn.execute_batch(&format!(
                        "ALTER TABLE {} ADD COLUMN {}",
                        ident(table),
                        ident(c)
                    ))?;
                }
            }
            Ok(())
        }
    }
}

/// Every LU table in the file, whether or not the LU still defines it: the
/// tables with an `__iid` column.
pub fn all_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT m.name FROM sqlite_master m
         WHERE m.type = 'table' AND m.name NOT LIKE '\\_\\_%' ESCAPE '\\'
           AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.name = '__iid')
         ORDER BY m.name",
    )?;
    st.query_map([], |r| r.get(0))?.collect()
}

/// What entity `seq` of batch `batch` reported for instance `id` (Added,
/// Updated), if it was the last to write it.
pub fn synced_by(
    conn: &Connection,
    id: &str,
    batch: &str,
    seq: i64,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT outcome FROM __instances WHERE id = ?1 AND batch = ?2 AND seq = ?3",
    )?
    .query_row(rusqlite::params![id, batch, seq], |r| r.get(0))
    .optional()
}

/// Whether entity `seq` of batch `batch` deleted instance `id` last.
pub fn deleted_by(conn: &Connection, id: &str, batch: &str, seq: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM __deleted WHERE id = ?1 AND batch = ?2 AND seq = ?3")?
        .query_row(rusqlite::params![id, batch, seq], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}

/// Records that entity `seq` of batch `batch` deleted instance `id`.
pub fn record_delete(conn: &Connection, id: &str, batch: &str, seq: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO __deleted (id, batch, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET batch = excluded.batch, seq = excluded.seq",
    )?
    .execute(rusqlite::params![id, batch, seq])?;
    Ok(())
}

/// Whether the marker says the instance is in the store.
pub fn marked(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM __instances WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}
