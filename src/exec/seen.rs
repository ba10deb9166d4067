//! The ids a batch has seen, so that a duplicate id is dropped before it is
//! stored (SPEC §4: "Duplicate ids in one batch are processed once").
//!
//! The store keeps no unique index on entity ids: it would cost every
//! entity a second write on the store's one writer thread. The id source's
//! own thread checks each id here instead, in a private temporary SQLite
//! database (a file SQLite deletes when it is closed, in `SQLITE_TMPDIR` or
//! the system's temporary folder): its page cache is bounded, so a source of
//! 10,000,000 ids does not grow the process; and nothing in it needs to
//! survive a crash, because a run that reads the source again (a retry of a
//! batch whose ids were not all stored) first fills it with the ids the
//! store holds for the batch.

use crate::store::batches::BAD_ID_ROW;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Page cache of the temporary database, in KiB.
const CACHE_KIB: i64 = 16 * 1024;

pub struct Seen {
    conn: Connection,
}

impl Seen {
    /// An empty set, or, with `store` (the store's path and a batch id), one
    /// holding the ids already stored for that batch. The error says what
    /// failed, for the batch's `error`.
    pub fn new(store: Option<(&Path, &str)>) -> Result<Seen, String> {
        let conn = Connection::open_with_flags(
            "",
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .and_then(|c| {
            c.execute_batch(&format!(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -{CACHE_KIB};
                 CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID;
                 CREATE TABLE seen_bad (key TEXT PRIMARY KEY) WITHOUT ROWID;"
            ))?;
            Ok(c)
        })
        .map_err(|e| temp_error(&e))?;
        if let Some((path, bid)) = store {
            fill(&conn, path, bid).map_err(|e| {
                format!(
                    "cannot read the ids already stored for the batch from {} ({e}), to skip \
                     them as the source is read again",
                    path.display()
                )
            })?;
        }
        // One transaction for the whole run: nothing is ever committed to
        // a file that is thrown away.
        conn.execute_batch("BEGIN").map_err(|e| temp_error(&e))?;
        Ok(Seen { conn })
    }

    /// Whether `id` is seen for the first time (and now remembered).
    pub fn first(&mut self, id: &str) -> rusqlite::Result<bool> {
        self.remember("INSERT OR IGNORE INTO seen (id) VALUES (?1)", &[id])
    }

    /// Whether the bad id (NULL, empty, not UTF-8, too long) stored under
    /// `stand_in` with `error` is seen for the first time. Bad ids have a
    /// space of their own: the text `NULL` is a good id, not the NULL one.
    pub fn first_bad(&mut self, stand_in: &str, error: &str) -> rusqlite::Result<bool> {
        self.remember(
            "INSERT OR IGNORE INTO seen_bad (key) VALUES (?1 || char(10) || ?2)",
            &[stand_in, error],
        )
    }

    /// Runs an `INSERT OR IGNORE`: whether it inserted.
    fn remember(&mut self, sql: &str, values: &[&str]) -> rusqlite::Result<bool> {
        let n = self
            .conn
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(values))?;
        Ok(n == 1)
    }
}

/// The message for a failure of the temporary database itself.
pub fn temp_error(e: &rusqlite::Error) -> String {
    format!(
        "cannot keep the ids seen so far in a temporary file ({e}); check the free space of \
         the temporary folder (SQLITE_TMPDIR or TMPDIR)"
    )
}

/// Fills `seen` with the ids stored for batch `bid` in the store at `path`,
/// opened read-only beside the executor's own connection.
fn fill(conn: &Connection, path: &Path, bid: &str) -> rusqlite::Result<()> {
    let Some(path) = path.to_str() else {
        return Err(rusqlite::Error::InvalidPath(path.to_path_buf()));
    };
    // A URI, so the store is opened read-only; `%`, `?` and `#` in the
    // path are escaped, the rest of a path is a valid URI path.
    let uri = format!(
        "file:{}?mode=ro",
        path.replace('%', "%25")
            .replace('?', "%3f")
            .replace('#', "%23")
    );
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute("ATTACH DATABASE ?1 AS store", [uri])?;
    let filled = conn
        .execute(
            &format!(
                "INSERT OR IGNORE INTO seen (id)
                 SELECT entity_id FROM store.batch_entities
                 WHERE batch = (SELECT batch_no FROM store.batches WHERE bid = ?1)
                     AND NOT ({BAD_ID_ROW})
                 UNION ALL
                 SELECT entity_id FROM store.batch_claimed
                 WHERE batch = (SELECT batch_no FROM store.batches WHERE bid = ?1)"
            ),
            [bid],
        )
        .and_then(|_| {
            conn.execute(
                &format!(
                    "INSERT OR IGNORE INTO seen_bad (key)
                     SELECT entity_id || char(10) || error FROM store.batch_entities
                     WHERE batch = (SELECT batch_no FROM store.batches WHERE bid = ?1)
                         AND status <> 'COMPLETED' AND {BAD_ID_ROW}"
                ),
                [bid],
            )
        });
    conn.execute_batch("DETACH DATABASE store")?;
    filled.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_first_once_and_case_and_spaces_count() {
        let mut s = Seen::new(None).unwrap();
        assert!(s.first("1").unwrap());
        assert!(s.first("01").unwrap());
        assert!(s.first("a").unwrap());
        assert!(s.first("A").unwrap());
        assert!(s.first(" a").unwrap());
        assert!(!s.first("1").unwrap());
        assert!(!s.first("a").unwrap());
        assert!(s.first("é").unwrap());
        assert!(!s.first("é").unwrap());
    }

    #[test]
    fn a_store_that_cannot_be_read_is_named_and_not_created() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("gone?#%.db");
        let e = Seen::new(Some((&path, "b1"))).err().unwrap();
        assert!(
            e.starts_with("cannot read the ids already stored for the batch from")
                && e.contains("gone?#%.db"),
            "{e}"
        );
        assert!(!path.exists(), "opened read-only: nothing is created");
    }

    #[test]
    fn it_starts_from_the_ids_the_store_holds_for_the_batch() {
        use crate::store::Store;
        use crate::store::batches::{NewBatch, NewId, StepInput};
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("store.db");
        let store = Store::open(&path).unwrap();
        for bid in ["b1", "b2"] {
            store
                .create_batch(&NewBatch {
                    bid,
                    command: "BATCH E FABRIC_COMMAND='echo ?'",
                    lu: "E",
                    fabric_command: "echo ?",
                    source: &serde_json::json!({}),
                    arguments: &serde_json::json!({}),
                    execution_id: "x1",
                    node: "n1",
                    estimated_total: None,
                    max_workers: None,
                })
                .unwrap();
            store.take_ownership(bid, "n1", "DC").unwrap();
        }
        // b1: "1" stored WAITING, "2" claimed as it arrived (a claim row
        // only), a NULL id (FAILED); b2: "3".
        let mut seq = 0;
        store
            .step(
                "b1",
                "n1",
                &mut seq,
                StepInput {
                    new_ids: vec![
                        NewId::Ok("2".into()),
                        NewId::Ok("1".into()),
                        NewId::Bad("NULL".into(), "the id is NULL".into()),
                    ],
                    claim: 1,
                    ..StepInput::default()
                },
            )
            .unwrap();
        let mut seq2 = 0;
        store
            .step(
                "b2",
                "n1",
                &mut seq2,
                StepInput {
                    new_ids: vec![NewId::Ok("3".into())],
                    ..StepInput::default()
                },
            )
            .unwrap();
        let mut s = Seen::new(Some((&path, "b1"))).unwrap();
        assert!(!s.first("1").unwrap());
        assert!(!s.first("2").unwrap());
        // The NULL id is stored as "NULL": a bad id, not the good id "NULL".
        assert!(!s.first_bad("NULL", "the id is NULL").unwrap());
        assert!(s.first("NULL").unwrap());
        assert!(s.first_bad("", "the id is empty").unwrap());
        assert!(s.first("3").unwrap(), "b2's ids are not b1's");
        assert!(!s.first("3").unwrap());
    }
}
