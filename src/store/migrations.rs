//! The store's schema, as an ordered list of migrations. The version lives
//! in `PRAGMA user_version`; opening a store applies the missing migrations
//! in one transaction, so a store is never left half upgraded. Migrations
//! are append-only: a released one is never edited, a change is a new one.

use super::APPLICATION_ID;
use rusqlite::Connection;

/// Migration N (1-based) takes a store from version N-1 to N.
const MIGRATIONS: &[&str] = &[
    // 1: the catalog (SPEC §3). Names compare without regard to case.
    "CREATE TABLE interfaces (
        name        TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
        kind        TEXT NOT NULL CHECK (kind IN ('SQLITE', 'CSV', 'POSTGRES')),
        location    TEXT NOT NULL,           -- absolute path, or URL
        options     TEXT NOT NULL DEFAULT '{}', -- JSON: {\"HEADER\": true, \"DELIMITER\": \",\"}
        created_at  TEXT NOT NULL            -- RFC 3339 UTC
    );
    CREATE TABLE lus (
        name        TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
        interface   TEXT NOT NULL COLLATE NOCASE,
        root_sql    TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE lu_tables (
        lu          TEXT NOT NULL COLLATE NOCASE REFERENCES lus (name) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        name        TEXT NOT NULL COLLATE NOCASE,
        key_columns TEXT NOT NULL,           -- JSON array; [] means the first column
        sql         TEXT NOT NULL,
        PRIMARY KEY (lu, name)
    );
    CREATE TABLE instance_groups (
        lu          TEXT NOT NULL COLLATE NOCASE REFERENCES lus (name) ON DELETE CASCADE,
        name        TEXT NOT NULL COLLATE NOCASE,
        interface   TEXT COLLATE NOCASE,     -- NULL: the LU's interface
        sql         TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (lu, name)
    );",
];

/// The newest schema version this binary knows.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the store to [`latest`]. The caller has checked it is not newer.
pub fn apply(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= latest() {
        return Ok(());
    }
    // IMMEDIATE: two processes opening a new store at once must not both
    // migrate; the second waits (busy timeout), then finds it done.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            conn.execute_batch(sql)?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", n + 1))?;
        }
        conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
