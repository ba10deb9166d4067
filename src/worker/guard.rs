//! The worker's watch on its store file (SPEC §7, §13). SQLite goes on
//! reading and writing a file that was deleted (its folder removed) or
//! replaced, through the handle it holds open, so a worker would go on
//! taking jobs and committing outcomes where no process will ever read
//! them, unnoticed. At every heartbeat the guard checks that the store's
//! path still names the file opened (same device and inode, see
//! [`Store::still_there`]); when it does not, the worker says why in its
//! log and on stderr, and exits at once, committing nothing more.

use super::log::Log;
use crate::store::{Store, StoreError};

/// Checks, from the heartbeat thread, that `store` is still the file the
/// worker opened; exits the process with code 1 when it is not.
pub(super) fn check(store: &dyn Store, log: &Log) {
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
        other => format!("the store cannot be checked: {other}; the worker stops"),
    };
    log.line(&format!("error: {why}"));
    eprintln!("batchsh worker: {why}");
    std::process::exit(crate::exit::FAILED);
}
