//! The SQLite store: one file (`<home>/store.db`) in WAL mode.
//!
//! Opening is careful about what it opens. A file that is not a batchsh
//! store, one written by a newer batchsh, or a damaged one, is refused with
//! a clear message and left exactly as it was: it is first looked at
//! through a read-only connection, and only a store we understand is opened
//! for writing and migrated. Damage found later, in the rows a statement
//! reads, is said the same way (see `sqlite_error`). Several processes
//! share one store: WAL mode, and a busy timeout so that a writer waits for
//! another instead of failing.

mod appends;
mod batches;
mod catalog;
mod jobs;
mod migrations;
mod nodes;
mod queue;
mod reads;
mod rows;
mod series;
mod status_sql;
mod step;
#[cfg(test)]
mod testing;

use super::{Result, RunTuning, Store, StoreError, Upgrades, busy_timeout};
use rusqlite::{Connection, OpenFlags};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Page cache of the store connection during a run, in KiB.
const RUN_CACHE_KIB: i64 = 32 * 1024;

/// WAL pages between two automatic checkpoints during a run (16 MB).
const RUN_CHECKPOINT_PAGES: i64 = 4000;

/// How long one of a run's statements waits for another process's lock
/// before the run looks at its stop signals and tries again.
const RUN_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// The write-ahead log beside the store file at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let [wal, _] = wal_files(path);
    wal
}

/// The store files this process has connections to, by device and inode,
/// each with how many. While one is open, the file is read by SQLite
/// alone: POSIX locks belong to the process, and closing any descriptor of
/// the file (the checks of a first open read it directly) drops every lock
/// SQLite holds on it for the process's connections. Another program's
/// connection, closing, could then take the file for itself and delete the
/// write-ahead log under them, and what they commit afterwards would be
/// lost.
static OPEN_HERE: std::sync::Mutex<Vec<((u64, u64), usize)>> = std::sync::Mutex::new(Vec::new());

fn open_here() -> std::sync::MutexGuard<'static, Vec<((u64, u64), usize)>> {
    OPEN_HERE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this process has a connection to the file `id` now.
fn is_open_here(id: Option<(u64, u64)>) -> bool {
    id.is_some_and(|id| open_here().iter().any(|(f, _)| *f == id))
}

/// Counts a connection to the file `id` (see [`OPEN_HERE`]).
fn opened_here(id: Option<(u64, u64)>) {
    let Some(id) = id else { return };
    let mut open = open_here();
    match open.iter_mut().find(|(f, _)| *f == id) {
        Some((_, n)) => *n += 1,
        None => open.push((id, 1)),
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let Some(id) = self.file_id else { return };
        let mut open = open_here();
        if let Some(k) = open.iter().position(|(f, _)| *f == id) {
            open[k].1 -= 1;
            if open[k].1 == 0 {
                open.swap_remove(k);
            }
        }
    }
}

/// `PRAGMA application_id` of a batchsh store: "BSHS".
pub const APPLICATION_ID: i32 = 0x4253_4853;

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// The store file's device and inode as opened: see
    /// [`Store::still_there`].
    file_id: Option<(u64, u64)>,
    /// While a run goes on: the thread that checkpoints beside it.
    checkpointer: RefCell<Option<Checkpointer>>,
    /// While a run goes on: the write-ahead log's device and inode. The
    /// log holds what was committed since the last checkpoint: deleted, it
    /// takes that with it, and the next process to open the store starts
    /// from the file alone.
    wal_id: RefCell<Option<(u64, u64)>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, refusing files that
    /// are not batchsh stores or are newer than this binary; an upgrade is
    /// told to no one.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(path, Upgrades::Silent)
    }

    /// [`SqliteStore::open`], telling `upgrades` of an upgrade before it runs.
    pub fn open_with(path: &Path, upgrades: Upgrades<'_>) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        if path.exists() && !is_open_here(file_id(path)) {
            // Opened for writing first: SQLite would quietly fall back to
            // read-only, and fail later, in the middle of a statement.
            if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
                return Err(StoreError::ReadOnly {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
            inspect(path)?;
        }
        let conn = Connection::open(path).map_err(|e| sqlite_error(path, e))?;
        let store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            file_id: file_id(path),
            checkpointer: RefCell::new(None),
            wal_id: RefCell::new(None),
        };
        opened_here(store.file_id);
        store.configure()?;
        migrations::apply(&store.conn, upgrades).map_err(|e| store.err(e))?;
        Ok(store)
    }

    /// Per-connection settings: set on every open, never in migrations.
    fn configure(&self) -> Result<()> {
        self.conn
            .busy_timeout(busy_timeout())
            .map_err(|e| self.err(e))?;
        // A step of the executor keeps up to 17 statements prepared (see
        // `batches::step_in`); the default cache holds 16.
        self.conn.set_prepared_statement_cache_capacity(32);
        // WAL lets readers (BATCH_LIST in a REPL) run beside a writer (a
        // batch); FULL sync makes each commit durable across a power loss
        // as well as a process crash, the promise of SPEC §7 (the executor
        // commits outcomes in groups, so it costs one fsync per group);
        // foreign keys keep LU tables with their LU.
        //
        // Switching a new file to WAL needs a lock that SQLite may refuse
        // at once (SQLITE_BUSY without calling the busy handler) while
        // another process opens the same new store: retry within the same
        // budget as the busy timeout.
        let started = std::time::Instant::now();
        loop {
            match self.conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            ) {
                Ok(()) => return Ok(()),
                Err(e) if is_busy(&e) && started.elapsed() < busy_timeout() => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> StoreError {
        sqlite_error(&self.path, source)
    }
}

impl Store for SqliteStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn still_there(&self) -> Result<()> {
        let now = file_id(&self.path);
        if self.file_id.is_some() && now != self.file_id {
            return Err(StoreError::Vanished {
                path: self.path.clone(),
                replaced: now.is_some(),
            });
        }
        let wal = wal_path(&self.path);
        let wal_id = *self.wal_id.borrow();
        if let Some(id) = wal_id
            && file_id(&wal) != Some(id)
        {
            return Err(StoreError::Vanished {
                replaced: wal.exists(),
                path: wal,
            });
        }
        Ok(())
    }

    /// A larger page cache (the entity indexes stay in memory), fewer and
    /// larger WAL checkpoints, and a thread that checkpoints beside the
    /// writer.
    fn begin_run(&self) -> Result<RunTuning<'_>> {
        self.conn()
            .execute_batch(&format!(
                "PRAGMA cache_size = -{RUN_CACHE_KIB}; PRAGMA wal_autocheckpoint = {RUN_CHECKPOINT_PAGES};"
            ))
            .map_err(|e| self.err(e))?;
        // The run waits out a locked store itself, a second at a time, so
        // that a stop signal is heard while it waits.
        let _ = self
            .conn()
            .busy_timeout(busy_timeout().min(RUN_BUSY_TIMEOUT));
        *self.checkpointer.borrow_mut() = Some(self.checkpointer());
        *self.wal_id.borrow_mut() = file_id(&wal_path(&self.path));
        Ok(RunTuning::new(self))
    }

    fn end_run(&self) {
        self.checkpointer.borrow_mut().take();
        self.wal_id.borrow_mut().take();
        let _ = self.conn().busy_timeout(busy_timeout());
        let _ = self
            .conn()
            .execute_batch("PRAGMA cache_size = -2000; PRAGMA wal_autocheckpoint = 1000;");
    }

    fn nudge(&self) {
        if let Some(c) = self.checkpointer.borrow().as_ref() {
            c.nudge();
        }
    }

    /// Another connection to the store this process has open, checked
    /// and migrated already: opened by SQLite alone (see [`OPEN_HERE`]).
    fn reopen(&self) -> Result<Box<dyn Store + Send>> {
        let conn = Connection::open(&self.path).map_err(|e| sqlite_error(&self.path, e))?;
        let store = SqliteStore {
            conn,
            path: self.path.clone(),
            file_id: self.file_id,
            checkpointer: RefCell::new(None),
            wal_id: RefCell::new(None),
        };
        opened_here(store.file_id);
        store.configure()?;
        Ok(Box::new(store))
    }

    /// Copies the write-ahead log into the store file and empties it.
    fn compact(&self) -> Result<()> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }
}

/// A thread with a connection of its own that copies the write-ahead log
/// into the store file (a PASSIVE checkpoint) each time it is nudged, while
/// the writer goes on writing. The writer's own automatic checkpoint then
/// finds most of the log copied already: it only copies the rest, and the
/// log starts again from its beginning at the next write. Nudges that come
/// while a checkpoint runs are merged into one.
///
/// Nothing depends on it: if its connection cannot be opened or a
/// checkpoint fails, the writer's automatic checkpoints do all the work.
pub struct Checkpointer {
    nudge: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Asks for a checkpoint soon, without waiting for it.
    pub fn nudge(&self) {
        if let Some(tx) = &self.nudge {
            let _ = tx.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudge = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SqliteStore {
    /// Starts a [`Checkpointer`] on this store.
    fn checkpointer(&self) -> Checkpointer {
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .and_then(|c| c.busy_timeout(busy_timeout()).map(|()| c));
        let Ok(conn) = conn else {
            return Checkpointer {
                nudge: None,
                thread: None,
            };
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("batchsh-checkpoint".into())
            .spawn(move || {
                for () in rx {
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok();
        Checkpointer {
            nudge: thread.is_some().then_some(tx),
            thread,
        }
    }
}

/// A failed SQLite call on the store; one that means the file or its
/// folder cannot be written says so, and one that means the file is
/// damaged says that.
fn sqlite_error(path: &Path, source: rusqlite::Error) -> StoreError {
    // Only SQLITE_BUSY is another process's lock, which waiting ends;
    // SQLITE_LOCKED is a conflict within this connection.
    if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
        StoreError::Locked {
            path: path.to_path_buf(),
            waited: busy_timeout(),
        }
    } else if is_read_only(&source) {
        StoreError::ReadOnly {
            path: path.to_path_buf(),
            reason: source.to_string(),
        }
    } else if let Some(reason) = damage(&source) {
        StoreError::Damaged {
            path: path.to_path_buf(),
            reason,
        }
    } else {
        StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A file's device and inode, if it exists.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A SQLite error that means the file or its folder cannot be written.
fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    )
}

/// What is wrong with the file, if the error means it is damaged: SQLite
/// found its pages malformed, or a text column holds bytes that are not
/// UTF-8, which batchsh never writes (a bad entity id is stored as a hex
/// literal), so garbage over a row's bytes is the likely cause.
fn damage(e: &rusqlite::Error) -> Option<String> {
    use rusqlite::Error as E;
    match e {
        E::Utf8Error(..) => Some(format!("a text value is not UTF-8: {e}")),
        E::FromSqlConversionFailure(_, rusqlite::types::Type::Text, source)
            if source.is::<std::str::Utf8Error>() =>
        {
            Some(format!("a text value is not UTF-8: {e}"))
        }
        _ => matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
        .then(|| e.to_string()),
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// Looks at an existing file through a read-only connection: is it a
/// batchsh store (or an empty file / empty database we may initialise), and
/// not newer than this binary?
fn inspect(path: &Path) -> Result<()> {
    let not_a_store = |reason: String| StoreError::NotAStore {
        path: path.to_path_buf(),
        reason,
    };
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(());
    }
    // A file without SQLite's header is someone else's. One with it that
    // SQLite cannot read is a damaged database (ours, by its
    // application_id, or another program's), which needs repair, not
    // another name: `sqlite_error` says so.
    if !starts_with_sqlite_header(path).map_err(|e| not_a_store(e.to_string()))? {
        return Err(not_a_store("it is not an SQLite database".into()));
    }
    // A store in WAL mode cannot be read without its -shm file, which a
    // folder we may not write to keeps us from creating: that is a
    // permission problem, not a foreign file (`sqlite_error` says so).
    let beside = wal_files(path);
    let had_wal_files = beside.iter().any(|f| f.exists());
    let (app_id, version, tables) = read_identity(path).map_err(|e| {
        let e = sqlite_error(path, e);
        // Reading a file in WAL mode creates an empty log and its index
        // beside it, even read-only. A damaged file is left as it was
        // found; no other process can be using files we just created
        // for a file that no process can read.
        let log_empty = std::fs::metadata(&beside[0]).is_ok_and(|m| m.len() == 0);
        if matches!(e, StoreError::Damaged { .. }) && !had_wal_files && log_empty {
            for f in &beside {
                let _ = std::fs::remove_file(f);
            }
        }
        e
    })?;
    if app_id != i64::from(APPLICATION_ID) {
        if app_id == 0 && tables == 0 && version == 0 {
            // An empty SQLite database: ours to initialise.
            return Ok(());
        }
        return Err(not_a_store(format!(
            "it is an SQLite database of another application (application_id {app_id}, \
             user_version {version}, {tables} schema objects)"
        )));
    }
    let supported = migrations::latest();
    if version > supported {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found: version,
            supported,
        });
    }
    Ok(())
}

/// A file's application_id, user_version and number of schema objects,
/// read through a read-only connection that is closed on return, in one
/// statement: one snapshot, so that a store another process is creating
/// is seen before or after its first migration commits, never half way
/// (its tables without its stamp, which looks like another program's).
fn read_identity(path: &Path) -> rusqlite::Result<(i64, i64, i64)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout())?;
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id),
                (SELECT user_version FROM pragma_user_version),
                (SELECT count(*) FROM sqlite_master)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// The log and its index that SQLite keeps beside a file in WAL mode.
fn wal_files(path: &Path) -> [PathBuf; 2] {
    ["-wal", "-shm"].map(|suffix| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    })
}

fn starts_with_sqlite_header(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0; SQLITE_HEADER.len()];
    let mut file = std::fs::File::open(path)?;
    match file.read_exact(&mut head) {
        Ok(()) => Ok(head == SQLITE_HEADER),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// For the tests of the layers above: fixtures written and read as plain
/// SQL on the store's own connection.
#[cfg(test)]
impl SqliteStore {
    pub(crate) fn test_execute(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> rusqlite::Result<usize> {
        self.conn.execute(sql, params)
    }

    pub(crate) fn test_execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }

    /// The rows of a query of two columns, text and integer.
    pub(crate) fn test_pairs(&self, sql: &str) -> Vec<(String, i64)> {
        let mut st = self.conn.prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }
}

#[cfg(test)]
mod tests;
