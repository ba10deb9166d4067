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

use super::batches::StoredId;
use rusqlite::{Connection, OpenFlags};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

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
    /// An empty set; [`Seen::stored`] fills it with the ids a batch stored
    /// before. The error says what failed, for the batch's `error`.
    pub fn new() -> Result<Seen, String> {
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
                 CREATE TABLE seen_bad (key TEXT PRIMARY KEY) WITHOUT ROWID;
                 BEGIN;"
            ))?;
            Ok(c)
        })
        .map_err(|e| temp_error(&e))?;
        Ok(Seen {
            conn,
            run: Some(Run::new()?),
        })
    }

    /// Takes note of an id the batch has stored already (a retry reads the
    /// source again): it is not first when the source gives it. Called
    /// before the source's first id.
    pub fn stored(&mut self, id: StoredId<'_>) -> Result<(), String> {
        match id {
            StoredId::Good(id) => {
                // Stored ids come in no useful order: no sorted run.
                self.run = None;
                self.remember("INSERT OR IGNORE INTO seen (id) VALUES (?1)", &[id])
            }
            StoredId::Bad { stand_in, error } => self.remember(
                "INSERT OR IGNORE INTO seen_bad (key) VALUES (?1 || char(10) || ?2)",
                &[stand_in, error],
            ),
        }
        .map(drop)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_first_once_and_case_and_spaces_count() {
        let mut s = Seen::new().unwrap();
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
        let mut s = Seen::new().unwrap();
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
        let mut s = Seen::new().unwrap();
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
            let mut s = Seen::new().unwrap();
            let mut model = std::collections::HashSet::new();
            for id in sorted.iter().chain(&rest) {
                proptest::prop_assert_eq!(s.first(id).unwrap(), model.insert(id.clone()), "{}", id);
            }
        }
    }
}
