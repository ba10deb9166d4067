//! The ids a batch has seen, so that a duplicate id is dropped before it is
//! stored (SPEC §4: "Duplicate ids in one batch are processed once").
//!
//! The store keeps no unique index on entity ids: it would cost every
//! entity a second write on the store's one writer thread. The id source's
//! own thread checks each id here instead.
//!
//! Most sources give their ids in order (a table read by its key): while
//! each id is greater than the one before it, by bytes or by length then
//! bytes (how integer ids sort), it is new without a look-up, and it is
//! only appended to a temporary file. The first id out of order moves the
//! ids of that file into a private temporary SQLite database, where this
//! and every later id is looked up. Both live in the first folder of
//! `SQLITE_TMPDIR`, `TMPDIR`, `/var/tmp`, `/usr/tmp`, `/tmp` and `.` that
//! can hold a file (SQLite's order) and are deleted when the run ends. The
//! database's page cache is bounded, so a source of 10,000,000 ids does not
//! grow the process. Nothing here needs to survive a crash: a run that
//! reads the source again (a retry of a batch whose ids were not all
//! stored) first fills the database with the ids the store holds for the
//! batch.

use crate::store::batches::BAD_ID_ROW;
use rusqlite::{Connection, OpenFlags};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Page cache of the temporary database, in KiB.
const CACHE_KIB: i64 = 16 * 1024;

pub struct Seen {
    conn: Connection,
    /// While the ids come in order: the ids so far, not yet in `conn`.
    run: Option<Run>,
}

/// Ids in strictly ascending order, by one order or both.
struct Run {
    /// The last id: every earlier one is smaller in each order still held.
    last: String,
    by_bytes: bool,
    by_length: bool,
    /// Each id of the run: its length (u32, little-endian), its bytes.
    file: BufWriter<std::fs::File>,
}

impl Run {
    fn new() -> Result<Run, String> {
        Ok(Run {
            last: String::new(),
            by_bytes: true,
            by_length: true,
            file: BufWriter::with_capacity(64 * 1024, temp_file(&temp_dirs())?),
        })
    }

    /// Takes `id` if it is greater than every id so far in an order still
    /// held (it is then new); false when no order holds any more.
    fn take(&mut self, id: &str) -> std::io::Result<bool> {
        let (a, b) = (id.as_bytes(), self.last.as_bytes());
        let by_bytes = self.by_bytes && a > b;
        let by_length = self.by_length && (a.len(), a) > (b.len(), b);
        if !(by_bytes || by_length) {
            return Ok(false);
        }
        self.by_bytes = by_bytes;
        self.by_length = by_length;
        let len = u32::try_from(a.len()).map_err(std::io::Error::other)?;
        self.file.write_all(&len.to_le_bytes())?;
        self.file.write_all(a)?;
        self.last.clear();
        self.last.push_str(id);
        Ok(true)
    }

    /// Reads the run's ids back, in order, into `conn`'s `seen` table.
    fn into_table(self, conn: &Connection) -> Result<(), String> {
        let io = |e: std::io::Error| temp_error(&e);
        let mut file = self.file.into_inner().map_err(|e| io(e.into_error()))?;
        std::io::Seek::rewind(&mut file).map_err(io)?;
        let mut r = BufReader::with_capacity(64 * 1024, file);
        let mut insert = conn
            .prepare("INSERT INTO seen (id) VALUES (?1)")
            .map_err(|e| temp_error(&e))?;
        let mut len = [0u8; 4];
        let mut id = Vec::new();
        loop {
            match r.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(io(e)),
            }
            id.resize(u32::from_le_bytes(len) as usize, 0);
            r.read_exact(&mut id).map_err(io)?;
            let text = std::str::from_utf8(&id).map_err(|e| io(std::io::Error::other(e)))?;
            insert.execute([text]).map_err(|e| temp_error(&e))?;
        }
    }
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
        let mut filled = false;
        if let Some((path, bid)) = store {
            filled = fill(&conn, path, bid).map_err(|e| {
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
        // Ids already stored may come again in any order: they are looked
        // up from the first id on.
        let run = match filled {
            true => None,
            false => Some(Run::new()?),
        };
        Ok(Seen { conn, run })
    }

    /// Whether `id` is seen for the first time (and now remembered).
    pub fn first(&mut self, id: &str) -> Result<bool, String> {
        if let Some(run) = &mut self.run {
            if run.take(id).map_err(|e| temp_error(&e))? {
                return Ok(true);
            }
            // Out of order: from now on every id is looked up.
            self.run.take().expect("a run").into_table(&self.conn)?;
        }
        self.remember("INSERT OR IGNORE INTO seen (id) VALUES (?1)", &[id])
    }

    /// Whether the bad id (NULL, empty, not UTF-8, too long) stored under
    /// `stand_in` with `error` is seen for the first time. Bad ids have a
    /// space of their own: the text `NULL` is a good id, not the NULL one.
    pub fn first_bad(&mut self, stand_in: &str, error: &str) -> Result<bool, String> {
        self.remember(
            "INSERT OR IGNORE INTO seen_bad (key) VALUES (?1 || char(10) || ?2)",
            &[stand_in, error],
        )
    }

    /// Runs an `INSERT OR IGNORE`: whether it inserted.
    fn remember(&mut self, sql: &str, values: &[&str]) -> Result<bool, String> {
        let n = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(values)))
            .map_err(|e| temp_error(&e))?;
        Ok(n == 1)
    }
}

/// The folders SQLite tries for its temporary files, in its order: the
/// run's file goes in the first one where a file can be made, as SQLite's
/// own would.
fn temp_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["SQLITE_TMPDIR", "TMPDIR"]
        .iter()
        .filter_map(std::env::var_os)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    dirs.extend(["/var/tmp", "/usr/tmp", "/tmp", "."].map(PathBuf::from));
    dirs
}

/// A new temporary file (deleted when closed) in the first of `dirs` that
/// takes one; the error names every folder tried.
fn temp_file(dirs: &[PathBuf]) -> Result<std::fs::File, String> {
    let mut tried = Vec::new();
    for dir in dirs {
        match tempfile::tempfile_in(dir) {
            Ok(f) => return Ok(f),
            Err(e) => tried.push(format!("{}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot create a temporary file to keep the ids seen so far ({}); set SQLITE_TMPDIR \
         to a folder batchsh can write to",
        tried.join("; ")
    ))
}

/// The message for a failure of the temporary files themselves.
pub fn temp_error(e: &dyn std::fmt::Display) -> String {
    format!(
        "cannot keep the ids seen so far in a temporary file ({e}); check the free space of \
         the temporary folder (SQLITE_TMPDIR or TMPDIR)"
    )
}

/// The store at `path` as an SQLite URI that opens it read-only: the
/// absolute path's bytes, all but letters, digits, `-._~` and `/`
/// percent-encoded (so any file name works, `%`, `?`, `#` and bytes that are
/// not UTF-8 included), after `file://` and an empty authority (so a path
/// that starts with `//` is not read as one).
fn read_only_uri(path: &Path) -> std::io::Result<String> {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
    use std::os::unix::ffi::OsStrExt;
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    let path = std::path::absolute(path)?;
    let encoded = percent_encode(path.as_os_str().as_bytes(), KEEP);
    Ok(format!("file://{encoded}?mode=ro"))
}

/// Fills `seen` with the ids stored for batch `bid` in the store at `path`,
/// opened read-only beside the executor's own connection: whether it found
/// any good id.
fn fill(conn: &Connection, path: &Path, bid: &str) -> rusqlite::Result<bool> {
    let uri = read_only_uri(path).map_err(|_| rusqlite::Error::InvalidPath(path.to_path_buf()))?;
    conn.busy_timeout(crate::store::busy_timeout())?;
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
        .and_then(|good| {
            conn.execute(
                &format!(
                    "INSERT OR IGNORE INTO seen_bad (key)
                     SELECT entity_id || char(10) || error FROM store.batch_entities
                     WHERE batch = (SELECT batch_no FROM store.batches WHERE bid = ?1)
                         AND status <> 'COMPLETED' AND {BAD_ID_ROW}"
                ),
                [bid],
            )
            .map(|_| good > 0)
        });
    conn.execute_batch("DETACH DATABASE store")?;
    filled
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
    fn ids_in_order_need_no_look_up_and_are_kept_for_when_the_order_breaks() {
        // Integer ids ascend by length then bytes ("9" < "10"), not by bytes.
        let mut s = Seen::new(None).unwrap();
        for id in ["7", "9", "10", "11", "100"] {
            assert!(s.first(id).unwrap(), "{id}");
        }
        assert!(s.run.as_ref().is_some_and(|r| r.by_length && !r.by_bytes));
        // "10" again breaks both orders: the ids of the run are looked up.
        assert!(!s.first("10").unwrap());
        assert!(s.run.is_none());
        for id in ["7", "9", "11", "100"] {
            assert!(!s.first(id).unwrap(), "{id}");
        }
        assert!(s.first("8").unwrap());
        assert!(!s.first("8").unwrap());

        // Text keys ascend by bytes ("ab" < "b"), not by length.
        let mut s = Seen::new(None).unwrap();
        for id in ["a", "ab", "b", "ba", "c"] {
            assert!(s.first(id).unwrap(), "{id}");
        }
        assert!(s.run.as_ref().is_some_and(|r| r.by_bytes && !r.by_length));
        assert!(!s.first("ab").unwrap());
        assert!(s.first("aa").unwrap());
    }

    #[test]
    fn the_file_goes_in_the_first_folder_that_takes_it_and_the_error_names_all() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("missing");
        assert!(temp_file(&[missing.clone(), d.path().to_path_buf()]).is_ok());
        let also_missing = d.path().join("also missing");
        let e = temp_file(&[missing, also_missing]).unwrap_err();
        assert!(
            e.contains("/missing: ")
                && e.contains("/also missing: ")
                && e.contains("SQLITE_TMPDIR"),
            "{e}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Whatever the order (a sorted stretch first, as from a table read
        /// by its key, then anything), an id is first exactly once.
        #[test]
        fn an_id_is_first_exactly_once(
            mut sorted in proptest::collection::vec("[0-9a-c]{0,3}", 0..40),
            by_length: bool,
            rest in proptest::collection::vec("[0-9a-c]{0,3}", 0..40),
        ) {
            if by_length {
                sorted.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
            } else {
                sorted.sort();
            }
            let mut s = Seen::new(None).unwrap();
            let mut model = std::collections::HashSet::new();
            for id in sorted.iter().chain(&rest) {
                proptest::prop_assert_eq!(s.first(id).unwrap(), model.insert(id.clone()), "{}", id);
            }
        }
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
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        starts_from_the_store_at(&d.path().join("store.db"));
        // Any path the store itself can have: URI characters, bytes that
        // are not UTF-8, a leading `//`.
        for folder in [OsStr::new("a ?#%&= b"), OsStr::from_bytes(b"h\xffq")] {
            let dir = d.path().join(folder);
            std::fs::create_dir(&dir).unwrap();
            starts_from_the_store_at(&dir.join("store.db"));
        }
        let mut slashes = std::ffi::OsString::from("/");
        slashes.push(d.path().join("slashes"));
        let slashes = std::path::PathBuf::from(slashes);
        assert!(slashes.as_os_str().as_bytes().starts_with(b"//"));
        std::fs::create_dir(&slashes).unwrap();
        starts_from_the_store_at(&slashes.join("store.db"));
    }

    fn starts_from_the_store_at(path: &Path) {
        use crate::store::Store;
        use crate::store::batches::{NewId, StepInput};
        let path = path.to_path_buf();
        let store = Store::open(&path).unwrap();
        store.test_batch("b1");
        store.test_batch("b2");
        // b1: "1" stored WAITING, "2" claimed as it arrived (a claim row
        // only), a NULL id (FAILED); b2: "3".
        let mut seq = 0;
        store
            .step(
                crate::store::batches::test_run("b1"),
                &mut seq,
                &StepInput {
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
                crate::store::batches::test_run("b2"),
                &mut seq2,
                &StepInput {
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
