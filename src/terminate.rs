//! SIGTERM: what `timeout`, `kill` and service managers send to stop a
//! process. While a synchronous batch runs, the first SIGTERM stops it
//! cleanly: no entity starts any more, the entities running finish and
//! their outcomes are committed, the ones claimed and not started go back
//! to waiting, and the batch is left unfinished with no owner, so that
//! `BATCH_RETRY` finishes it (nothing runs twice, nothing is lost). batchsh
//! then exits with 143 (128 + SIGTERM). A second SIGTERM, or one that
//! comes while no batch runs, ends batchsh at once with 143, as the
//! signal's default action would (the store is as safe as after a
//! kill -9).
//!
//! Unlike Ctrl-C, which the user types to give up on a batch (it ends
//! CANCELLED, SPEC §6), SIGTERM comes from outside: a time limit, a
//! shutdown. The batch is interrupted, not cancelled.

use signal_hook::consts::SIGTERM;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code after a SIGTERM.
pub const EXIT_CODE: i32 = 128 + SIGTERM;

/// A SIGTERM came.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// A SIGTERM ends the process at once: true unless a batch runs, and
/// again after the first SIGTERM.
static AT_ONCE: AtomicBool = AtomicBool::new(true);

/// Installs the handler (once; later calls do nothing). Without it,
/// SIGTERM keeps its default action.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // The order matters: the exit is judged before the first signal
        // arms it.
        let installed =
            signal_hook::flag::register_conditional_shutdown(SIGTERM, EXIT_CODE, &AT_ONCE)
                .and_then(|_| signal_hook::flag::register(SIGTERM, &AT_ONCE))
                .and_then(|_| signal_hook::flag::register(SIGTERM, &REQUESTED));
        if let Err(e) = installed {
            eprintln!("warning: cannot handle SIGTERM ({e}); it will end batchsh at once");
        }
    });
}

/// Whether a SIGTERM came.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// While it lives, a first SIGTERM interrupts the batch instead of
/// ending the process.
pub struct BatchRunning(());

impl BatchRunning {
    pub fn start() -> BatchRunning {
        if !requested() {
            AT_ONCE.store(false, Ordering::SeqCst);
        }
        BatchRunning(())
    }
}

impl Drop for BatchRunning {
    fn drop(&mut self) {
        AT_ONCE.store(true, Ordering::SeqCst);
    }
}
