//! The worker's watch on its store file (SPEC §7, §13). SQLite goes on
//! reading and writing a file that was deleted (its folder removed) or
//! replaced, through the handle it holds open, so a worker would go on
//! taking jobs and committing outcomes where no process will ever read
//! them, unnoticed. At every heartbeat the guard checks that the store's
//! path still names the file opened (same device and inode, see
//! [`Store::still_there`]); when it does not, the worker says why in its
//! log and on stderr, and exits at once, committing nothing more.
//!
//! A PostgreSQL store whose database is gone (dropped, renamed) is the
//! same: the worker says so and exits at once, its entity commands killed.
//!
//! Under the tests' store server ([`crate::knobs::store_server`]) a
//! home's store is a database named after the home, standing for
//! `<home>/store.db`: there, a home deleted (or made again: the same
//! path, another folder) is its store deleted, and the worker exits as it
//! would on SQLite, so that no worker of a finished test serves on.

use super::log::Log;
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};

/// The worker's home, and the folder it was when the worker started
/// (device and inode), for the check under the tests' store server.
pub(super) struct Home {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl Home {
    pub(super) fn new(path: &Path) -> Home {
        Home {
            path: path.to_path_buf(),
            id: folder_id(path),
        }
    }

    /// Whether the home is still the folder it was.
    fn still_there(&self) -> bool {
        self.id.is_some() && folder_id(&self.path) == self.id
    }
}

fn folder_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Checks, from the heartbeat thread, that `store` is still the file (or
/// the database) the worker opened, and, under the tests' store server,
/// that `home` is still its folder; exits the process with code 1 when
/// it is not.
pub(super) fn check(store: &dyn Store, home: &Home, log: &Log) {
    if crate::knobs::store_server().is_some() && !home.still_there() {
        stop(
            log,
            &format!(
                "the home {} was deleted while this worker served it, and with it the store \
                 that BATCHSH_TEST_STORE_SERVER keeps for it: the worker stops, committing \
                 nothing more",
                home.path.display()
            ),
        );
    }
    let e = match store.still_there() {
        Ok(()) => return,
        // A server that does not answer for now (it restarts) is waited
        // for, by the worker's turns and its batches alike: the store is
        // not gone.
        Err(e) if e.unreachable() => return,
        Err(e) => e,
    };
    let why = match e {
        StoreError::Vanished { path, replaced } => {
            let (what, next) = if replaced {
                (
                    "was replaced by another file",
                    "start the worker again to serve the store that is there now",
                )
            } else {
                (
                    "was deleted (the file, or its folder)",
                    "restore the store (or give the worker another one with --store), then \
                     start the worker again",
                )
            };
            format!(
                "the store {} {what} while this worker served it: SQLite would go on writing \
                 into the old file, which no process reads; the worker stops, committing \
                 nothing more; {next}",
                path.display()
            )
        }
        // Its database is gone: nothing more can be recorded.
        e @ StoreError::Connect(crate::pg::PgError::NoDatabase { .. }) => {
            format!("{e}; the worker stops at once, committing nothing more")
        }
        other => format!("the store cannot be checked: {other}; the worker stops"),
    };
    stop(log, &why);
}

/// Says `why` in the log and on stderr, and exits 1; the entity commands
/// still running die with it (nothing would record their outcomes).
fn stop(log: &Log, why: &str) -> ! {
    log.line(&format!("error: {why}"));
    eprintln!("batchsh worker: {why}");
    crate::command::kill_running();
    std::process::exit(crate::exit::FAILED);
}
