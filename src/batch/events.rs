//! What a run tells the world as it goes. The engine prints nothing: it
//! reports through an [`Events`] sink. The command line draws the progress
//! bar and writes warnings on stderr (`crate::output::progress`); a
//! background worker will write them to its log.

use super::{BatchStatus, Counters};
use std::path::Path;
use std::time::Duration;

/// One thing a run has to say.
#[derive(Debug)]
pub enum Event<'a> {
    /// The batch's counters after a step; `generating`: its ids are still
    /// being read (the total is not known yet); `paused`: nothing runs
    /// until BATCH_RESUME.
    Progress {
        bid: &'a str,
        counters: &'a Counters,
        generating: bool,
        paused: bool,
    },
    /// The run is ending: no more progress comes.
    ProgressDone,
    /// Another process has held the store for `waited`; the run keeps what
    /// it has done and waits (said once, then now and then).
    StoreLocked {
        bid: &'a str,
        path: &'a Path,
        waited: Duration,
    },
    /// The store is free again after `waited`.
    StoreFree { bid: &'a str, waited: Duration },
    /// The store's server has not answered for `waited` (`why`: the last
    /// error); the run keeps what it has done and tries again (said once,
    /// then now and then).
    StoreUnreachable {
        bid: &'a str,
        why: String,
        waited: Duration,
    },
    /// The store's server answers again after `waited`.
    StoreBack { bid: &'a str, waited: Duration },
    /// The `ON_DONE` hook ended badly or could not start.
    HookFailed {
        bid: &'a str,
        status: BatchStatus,
        why: String,
    },
    /// The run could not record that its batch FAILED (the store cannot
    /// be written): the batch stays as its last commit left it.
    NotMarkedFailed { bid: &'a str },
}

/// Where a run's events go.
pub trait Events {
    fn event(&self, e: Event<'_>);

    /// Where the lines of the entities' processes go as they are written
    /// (`SHOW_OUTPUT=true`), if this sink shows them: worker threads call
    /// it, so it is a sink of its own, not an [`Event`].
    fn lines(&self) -> Option<LineSink> {
        None
    }
}

/// Which output stream of an entity's process a line comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Told each line an entity's process writes, as it comes: the entity id,
/// the stream, and the line without its newline (a line longer than
/// [`LineSink::LONGEST`] bytes comes in pieces of that size).
#[derive(Clone)]
pub struct LineSink(pub std::sync::Arc<TellLine>);

/// What a [`LineSink`] calls: entity id, stream, line.
pub type TellLine = dyn Fn(&str, Stream, &str) + Send + Sync;

impl LineSink {
    /// The longest piece of a line told at once: a process that writes
    /// without newlines is shown as it goes, and held in bounded memory.
    pub const LONGEST: usize = 64 * 1024;

    pub fn line(&self, entity_id: &str, stream: Stream, line: &str) {
        (self.0)(entity_id, stream, line)
    }
}

impl std::fmt::Debug for LineSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineSink")
    }
}
