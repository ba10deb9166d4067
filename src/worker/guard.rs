//! The worker's watch on its store file (SPEC §7, §13). SQLite goes on
//! reading and writing a file that was deleted (its folder removed) or
//! replaced, through the handle it holds open, so a worker would go on
//! taking jobs and committing outcomes where no process will ever read
//! them, unnoticed. At every heartbeat the guard checks that the store's
//! path still names the file opened (same device and inode, see
//! [`Store::still_there`]); when it does not, the worker says why in its
//! log and on stderr, and exits at once, committing nothing more.
//!
//! Under the tests' store server ([`crate::knobs::store_server`]) a
//! home's store is a database named after the home, standing for
//! `<home>/store.db`: there, a home deleted is its store deleted, and the
//! worker exits as it would on SQLite, so that no worker of a finished
//! test serves its database on.

use super::log::Log;
use crate::store::{Store, StoreError};
use std::path::Path;

/// Checks, from the heartbeat thread, that `store` is still the file the
/// worker opened (and, under the tests' store server, that `home` is
/// still there); exits the process with code 1 when it is not.
pub(super) fn check(store: &dyn Store, home: &Path, log: &Log) {
    if crate::knobs::store_server().is_some() && !home.exists() {
        stop(
            log,
            &format!(
                "the home {} was deleted while this worker served it, and with it the store \
                 that BATCHSH_TEST_STORE_SERVER keeps for it: the worker stops, committing \
                 nothing more",
                home.display()
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
        other => format!("the store cannot be checked: {other}; the worker stops"),
    };
    stop(log, &why);
}

/// Says `why` in the log and on stderr, and exits 1.
fn stop(log: &Log, why: &str) -> ! {
    log.line(&format!("error: {why}"));
    eprintln!("batchsh worker: {why}");
    std::process::exit(crate::exit::FAILED);
}
