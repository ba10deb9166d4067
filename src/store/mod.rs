//! The store: where batchsh records its catalog, its batches and their
//! entities (SPEC §13). The rest of batchsh reaches it only through the
//! traits here: [`BatchStore`] (what runs write, what control statements
//! ask), [`AppendStore`] (open batches), [`CatalogStore`] (interfaces, LUs,
//! groups), [`JobStore`] (jobs and their runs), [`SeriesStore`] (named series
//! and their windows) and [`ReadStore`] (what the monitoring statements read),
//! together [`Store`]. Every SQL
//! statement on the store lives below this folder; SQLite is one
//! implementation, in `sqlite/`, and a second backend implements the same
//! traits and passes the same contract tests (`contract.rs`).

pub mod appends;
pub mod batches;
pub mod catalog;
#[cfg(test)]
mod contract;
pub mod holders;
pub mod jobs;
pub mod nodes;
pub mod postgres;
pub mod queue;
pub mod reads;
pub mod row;
pub mod seen;
pub mod series;
pub mod sqlite;
pub mod step;

pub use appends::AppendStore;
pub use batches::BatchStore;
pub use catalog::{CatalogStore, GroupDef, InterfaceDef, LuDef, LuTableDef, now, stamp};
pub use jobs::JobStore;
pub use nodes::NodeStore;
pub use queue::QueueStore;
pub use reads::{
    BatchRow, DetailsQuery, EntityRow, EventRow, InProcessRow, ListQuery, NodeRow, PaceSamples,
    ReadStore, StatusFilter,
};
pub use series::SeriesStore;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use thiserror::Error;

/// How long a statement waits for another process's write lock (30 s),
/// and a PostgreSQL store for its server to answer again.
pub fn busy_timeout() -> Duration {
    crate::knobs::busy_timeout()
}

/// Set once the process was asked to stop ([`stop_waiting`]).
static STOP_WAITING: AtomicBool = AtomicBool::new(false);

/// How long a process that stops tries to connect again to a store
/// server that does not answer (see [`reconnect_window`]).
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The process was asked to stop (SIGTERM, SIGHUP): from now on a store
/// server that does not answer is tried for a few seconds
/// ([`reconnect_window`]), not for the whole [`busy_timeout`], so that
/// the stop takes moments, not half a minute. What can still be written
/// is written, a server's quick restart included: only the long wait goes.
pub fn stop_waiting() {
    STOP_WAITING.store(true, Ordering::SeqCst);
}

/// How long a lost connection to a store server is tried again: the
/// [`busy_timeout`], or 3 s at most once the process stops
/// ([`stop_waiting`]).
pub(crate) fn reconnect_window() -> Duration {
    if STOP_WAITING.load(Ordering::SeqCst) {
        busy_timeout().min(STOP_GRACE)
    } else {
        busy_timeout()
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{} is not a batchsh store ({reason}); it was left untouched; name another file with --store", path.display())]
    NotAStore { path: PathBuf, reason: String },
    /// A file with SQLite's header that SQLite cannot read, or a store
    /// whose rows turned out unreadable: not a file to name another in
    /// place of, but one to repair.
    #[error(
        "the store {p} is damaged ({reason}): restore a backup, or recover it with sqlite3's \
         .recover (sqlite3 {p} .recover | sqlite3 recovered.db) and name the result with --store",
        p = path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{} was written by a newer batchsh (store version {found}, this batchsh knows up to {supported}); \
         it was left untouched; upgrade batchsh", path.display()
    )]
    Newer {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot create the folder {} for the store: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write to the store {} ({reason}); batchsh records every statement's work there, \
         so it needs write access to the file and its folder (SQLite keeps {name}-wal and \
         {name}-shm beside it); fix the permissions, or name another store with --store",
        path.display(),
        name = path.file_name().unwrap_or_default().to_string_lossy()
    )]
    ReadOnly { path: PathBuf, reason: String },
    /// A retry would run a batch beside an active one with its command.
    #[error(
        "batch {other} with the same command is active; finish or cancel it before batch {bid} \
         runs again (BATCH_CANCEL '{other}'), or give the batch WITH ALLOW_MULTIPLE=true"
    )]
    TwinActive { bid: String, other: String },
    /// A batch of a named series while a run of it is open (SPEC §9: one
    /// open run per series).
    #[error(
        "series {series} has a run open already ({}); runs of a series never overlap: {}",
        match bid { Some(b) => format!("batch {b}, batch_id {batch_id}"), None => format!("batch_id {batch_id}, opened by WINDOW_OPEN") },
        match bid { Some(b) => format!("let it end (BATCH_WAIT '{b}'; BATCH_RETRY '{b}' if it was interrupted) or cancel it (BATCH_CANCEL '{b}'), then run this batch again"), None => format!("end it with WINDOW_CLOSE '{series}' or WINDOW_FAIL '{series}' first") },
    )]
    SeriesRunOpen {
        series: String,
        batch_id: i64,
        bid: Option<String>,
    },
    /// The store file was deleted or replaced under a running batch.
    #[error(
        "the store {} was {} while this batch ran: the batch's record went with it; \
         restore the store from a backup, or run the batch again",
        path.display(),
        if *replaced { "replaced by another file" } else { "deleted" }
    )]
    Vanished { path: PathBuf, replaced: bool },
    /// Another process held the store longer than the busy timeout.
    #[error(
        "the store {} is locked by another process (waited {} for it): a backup, a VACUUM or an \
         sqlite3 shell holding a transaction keeps it; run this again once that process is done",
        path.display(), waited_text(*waited)
    )]
    Locked { path: PathBuf, waited: Duration },
    /// A run's write found that its batch is another run's now: the run
    /// was judged dead (it stalled) and its batch taken over, or paused or
    /// cancelled as a batch nobody ran.
    #[error(
        "batch {bid} was taken over by {}, which judged this process dead; this process \
         stopped running it",
        match node {
            Some(node) => format!("node {node} (pid {})", pid.unwrap_or_default()),
            None => format!("another process (the batch is {status} now)"),
        }
    )]
    TakenOver {
        bid: String,
        node: Option<String>,
        pid: Option<i64>,
        status: String,
    },
    #[error("store {}: {source}{}", path.display(), write_hint(source))]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A statement on a PostgreSQL store failed.
    #[error("store {store}: {message}")]
    Postgres { store: String, message: String },
    /// The connection to a PostgreSQL store was lost and no new one could
    /// be made within the busy timeout (the server down, restarting, the
    /// link cut). Nothing of the statement was kept, so the same write may
    /// be tried again once the server answers ([`StoreError::unreachable`]).
    #[error(
        "store {store}: {message}; the server could not be reached again within {} (nothing \
         of the last write was kept)",
        waited_text(*waited)
    )]
    Unreachable {
        store: String,
        message: String,
        waited: Duration,
    },
    /// The connection to a PostgreSQL store was lost under a transaction
    /// again and again, each new one lost in turn before the commit (an
    /// administrator ending sessions, a flapping link): nothing of the
    /// statement was kept, and the same write may be tried again later.
    #[error(
        "store {store}: {message}; the connection was lost {times} times in a row, each new \
         one before the commit (nothing of the last write was kept)"
    )]
    LostAgain {
        store: String,
        message: String,
        times: usize,
    },
    /// The connection to a PostgreSQL store was lost during a commit, and
    /// whether the commit was kept cannot be learnt: the writer stops
    /// rather than guess (writing again might count twice).
    #[error(
        "store {store}: the connection was lost during a commit ({message}), and whether the \
         transaction was kept cannot be learnt: this process stops rather than guess"
    )]
    FateUnknown { store: String, message: String },
    /// A PostgreSQL store could not be reached or its URL read.
    #[error(transparent)]
    Connect(crate::pg::PgError),
    #[error("{kind} {name} exists already; use CREATE OR REPLACE {kind_upper} to replace it", kind_upper = kind.to_ascii_uppercase())]
    Exists { kind: &'static str, name: String },
    #[error("no {kind} named {name}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    NotFound {
        kind: &'static str,
        name: String,
        suggestion: Option<String>,
    },
    #[error("{kind} {name} is used by {user}; drop that first")]
    InUse {
        kind: &'static str,
        name: String,
        user: String,
    },
    /// `BATCH_APPEND` or `BATCH_WAITOFF` on a batch that takes no appends.
    #[error("cannot {verb} batch {bid}: {why}")]
    NotOpen {
        /// What was asked: "append to", "close".
        verb: &'static str,
        bid: String,
        why: appends::NotOpen,
    },
    /// `STARTJOB` or `SCHEDULE` with the type, name and UID of a job
    /// that exists.
    #[error(
        "job {label} exists already: UPDATEJOB changes it, RESTARTJOB runs it again, \
         DROP SCHEDULE {name} removes it (or give the new job another NAME or UID)"
    )]
    JobExists { label: String, name: String },
    #[error("no batch in this session yet; give a batch id (BATCH_LIST shows them)")]
    NoLastBatch,
    #[error("the store has no batch yet: a BATCH statement makes one")]
    NoBatchYet,
    #[error(
        "LU {lu} was dropped while batch {bid} was starting; the batch ended FAILED \
         (create the LU again, then BATCH_RETRY '{bid}')"
    )]
    LuDropped { lu: String, bid: String },
    #[error("no batch with id '{given}'{}", .suggestion.as_ref().map(|b| format!(" (did you mean '{b}'?)")).unwrap_or_default())]
    NoBatch {
        given: String,
        /// A recent bid one or two typos away.
        suggestion: Option<String>,
    },
    #[error("no batch with id '{0}', and a batch id prefix needs at least 6 characters")]
    BidPrefixTooShort(String),
    #[error("batch id prefix {prefix} is ambiguous: it matches {}{}; give more characters", matches.join(", "), if *more { ", ..." } else { "" })]
    AmbiguousBid {
        prefix: String,
        /// The first few matching bids, in order.
        matches: Vec<String>,
        /// More bids match than `matches` lists.
        more: bool,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// The store cannot be reached for now, and what was asked changed
    /// nothing: the same write can be tried again once it answers (a run
    /// waits for it, as for a locked store). A new connection that could
    /// not be made (a worker's store handle for a batch, while the server
    /// restarts) is one too, and so are connections lost one after the
    /// other.
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            StoreError::Unreachable { .. }
                | StoreError::LostAgain { .. }
                // Not a missing database (`PgError::NoDatabase`): waiting does
                // not mend it.
                | StoreError::Connect(crate::pg::PgError::Connect { .. })
        )
    }

    /// No batch `bid` in the store.
    pub fn no_batch(bid: &str) -> StoreError {
        StoreError::NotFound {
            kind: "batch",
            name: bid.to_string(),
            suggestion: None,
        }
    }
}

/// A schema upgrade about to run on a store that holds data. It can take
/// seconds, so the caller may say why it waits: its `Display` is that
/// notice. The store itself prints nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upgrade {
    pub from: i64,
    pub to: i64,
}

impl std::fmt::Display for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upgrading the store from version {} to {}; this runs once",
            self.from, self.to
        )
    }
}

/// Who hears of an [`Upgrade`] before it runs, if anyone. `--quiet` keeps
/// it silent: a cron job's stderr is mailed, and the spec has it print
/// nothing but errors and data.
#[derive(Clone, Copy)]
pub enum Upgrades<'a> {
    Told(&'a dyn Fn(Upgrade)),
    Silent,
}

/// What a process may ask the store to tell it of at once, rather than
/// find at its next look (PostgreSQL's LISTEN/NOTIFY: from any host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// An asynchronous batch was queued, or its job taken: idle workers
    /// look for work (a job to own, a batch to help with).
    Work,
    /// A batch's status changed, or a node left it: who waits for it
    /// (`BATCH_WAIT`, its owner waiting for the other nodes' last
    /// entities) looks again.
    Batch,
}

/// A batchsh store, whatever keeps it.
pub trait Store:
    AppendStore
    + BatchStore
    + CatalogStore
    + JobStore
    + NodeStore
    + QueueStore
    + ReadStore
    + SeriesStore
{
    /// Where the store is, for messages.
    fn path(&self) -> &Path;

    /// Whether the store is still the one opened: a store file (or its
    /// folder) deleted or replaced while a batch runs takes the batch's
    /// record with it. A run checks now and then, and at its end.
    fn still_there(&self) -> Result<()>;

    /// Settings for a long run of steps (a larger cache, fewer and larger
    /// log checkpoints): they last until the guard is dropped.
    fn begin_run(&self) -> Result<RunTuning<'_>>;

    /// The most entities a run of fast commands keeps in flight, and
    /// stores at one step: [`STEP_ENTITIES`], where a step costs about
    /// what its rows cost.
    fn step_entities(&self) -> usize {
        STEP_ENTITIES
    }

    /// Puts the settings of [`Store::begin_run`] back.
    fn end_run(&self);

    /// Asks for the store's log to be tidied soon (many writes went by),
    /// without waiting for it.
    fn nudge(&self);

    /// Makes room in the store's log, when a write failed for lack of it.
    fn compact(&self) -> Result<()>;

    /// A second handle on the same store, for another thread (a run's
    /// producer reads the ids the batch stored while the writer goes on).
    fn reopen(&self) -> Result<Box<dyn Store + Send>>;

    /// Asks the store to tell this handle of every `notice` from now on
    /// ([`Store::await_notice`]). False when it cannot (SQLite, whose
    /// processes are on one host and wake each other with signals): the
    /// caller looks at the store as often as it did without.
    fn listen(&self, _notice: Notice) -> bool {
        false
    }

    /// No more of `notice` (those that came and were not awaited are
    /// dropped).
    fn unlisten(&self, _notice: Notice) {}

    /// Sends `notice` about batch `bid` to those that listen, now (best
    /// effort: they look at their next turn anyway). Nothing on a store
    /// that cannot tell.
    fn notify(&self, _notice: Notice, _bid: &str) {}

    /// Waits at most `timeout` for notices asked for with
    /// [`Store::listen`]: the ids of the batches they are about (those that
    /// came together), or none at the timeout. A store that cannot tell
    /// sleeps `timeout`; so does one whose connection fails meanwhile (its
    /// caller's next statement finds out).
    fn await_notice(&self, timeout: Duration) -> Vec<String> {
        std::thread::sleep(timeout);
        Vec::new()
    }
}

/// While it lives, a store handle hears of a [`Notice`] (see
/// [`Store::listen`]).
pub struct Listening<'a> {
    store: &'a dyn Store,
    notice: Notice,
    /// The store tells: a wait may rely on [`Store::await_notice`].
    pub told: bool,
}

impl<'a> Listening<'a> {
    pub fn new(store: &'a dyn Store, notice: Notice) -> Listening<'a> {
        Listening {
            store,
            notice,
            told: store.listen(notice),
        }
    }
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        if self.told {
            self.store.unlisten(self.notice);
        }
    }
}

/// While it lives, a run's store settings are in force.
pub struct RunTuning<'a> {
    store: &'a dyn Store,
}

impl<'a> RunTuning<'a> {
    pub fn new(store: &'a dyn Store) -> RunTuning<'a> {
        RunTuning { store }
    }
}

impl Drop for RunTuning<'_> {
    fn drop(&mut self) {
        self.store.end_run();
    }
}

/// The most entities a run keeps in flight, and stores at one step, on a
/// store whose steps cost about what their rows cost (the SQLite store:
/// four times as many were tried there, and gained nothing).
pub const STEP_ENTITIES: usize = 16 * 1024;

/// Opens (creating if needed) the store at `path`, refusing one that is
/// not a batchsh store, is newer than this binary, or is damaged.
pub fn open(path: &Path, upgrades: Upgrades<'_>) -> Result<Box<dyn Store>> {
    if let Some(url) = path.to_str().filter(|p| crate::pg::is_url(p)) {
        return Ok(Box::new(postgres::PgStore::open(url, upgrades)?));
    }
    Ok(Box::new(sqlite::SqliteStore::open_with(path, upgrades)?))
}

/// Whether the store `path` names is a PostgreSQL database (a
/// `postgres://` URL) rather than an SQLite file.
pub fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(crate::pg::is_url)
}

/// The store `path` names, as messages show it: a URL without its
/// password.
pub fn shown(path: &Path) -> String {
    match path.to_str() {
        Some(url) if crate::pg::is_url(url) => crate::pg::redact(url),
        _ => path.display().to_string(),
    }
}

/// Whether there is a store at `path` to read: an SQLite file that
/// exists, or any PostgreSQL URL (the database says when it is opened).
pub fn exists(path: &Path) -> bool {
    is_url(path) || path.is_file()
}

/// A wait as a person reads it: `300 ms`, `30 s`.
fn waited_text(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// What a failed write means for the user, by SQLite's error code.
fn write_hint(e: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => {
            "; the disk holding the store is full: free space, then run BATCH_RETRY for an unfinished batch"
        }
        Some(C::SystemIoFailure) => {
            "; writing the store failed (a full disk, a file size limit or a failing device): \
             fix that, then run BATCH_RETRY for an unfinished batch"
        }
        _ => "",
    }
}

/// Where batchsh keeps its data: `--home`, else `$XDG_DATA_HOME/batchsh`,
/// else `~/.local/share/batchsh` (SPEC §1).
pub fn default_home() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("batchsh"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".local/share/batchsh"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_store_says_how_long_it_was_waited_for() {
        let e = |waited| StoreError::Unreachable {
            store: "postgres://h/db".into(),
            message: "connection closed".into(),
            waited,
        };
        assert_eq!(
            e(Duration::from_secs(30)).to_string(),
            "store postgres://h/db: connection closed; the server could not be reached again \
             within 30 s (nothing of the last write was kept)"
        );
        assert_eq!(
            e(STOP_GRACE).to_string(),
            "store postgres://h/db: connection closed; the server could not be reached again \
             within 3 s (nothing of the last write was kept)"
        );
    }
}
