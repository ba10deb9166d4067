//! SIGTERM: what `timeout`, `kill` and service managers send to stop a
//! process. While a synchronous batch runs, a SIGTERM stops it cleanly: no
//! entity starts any more, the entities running finish and their outcomes
//! are committed, the ones claimed and not started go back to waiting, and
//! the batch is left unfinished with no owner, so that `BATCH_RETRY`
//! finishes it (no COMPLETED entity runs again, nothing is lost). batchsh
//! then exits with 143 (128 + SIGTERM). A SIGTERM that comes while no
//! batch runs, or a second one more than [`SAME_STOP`] after the first,
//! ends batchsh at once with 143, as the signal's default action would
//! (the store is as safe as after a kill -9), and kills the entity
//! commands still running ([`crate::command::kill_running`]).
//!
//! Unlike Ctrl-C, which the user types to give up on a batch (it ends
//! CANCELLED, SPEC §6), SIGTERM comes from outside: a time limit, a
//! shutdown. The batch is interrupted, not cancelled.
//!
//! The signals are taken by a thread (signal-hook's iterator), not in a
//! signal handler, so that deciding what a SIGTERM means can look at the
//! clock: GNU `timeout` sends SIGTERM twice at once (to its child, then to
//! its process group), and that is one stop, not two.

use signal_hook::consts::SIGTERM;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// The exit code after a SIGTERM.
pub const EXIT_CODE: i32 = 128 + SIGTERM;

/// SIGTERMs this close to the first are the same stop.
const SAME_STOP: Duration = Duration::from_secs(2);

/// A SIGTERM came.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// When the first SIGTERM came.
static FIRST: Mutex<Option<Instant>> = Mutex::new(None);
/// The id of the batch that runs now: while there is one, a SIGTERM stops
/// it instead of ending the process, and a stop at once names it.
static RUNNING_BID: Mutex<Option<String>> = Mutex::new(None);

fn running_bid() -> std::sync::MutexGuard<'static, Option<String>> {
    RUNNING_BID.lock().unwrap_or_else(|e| e.into_inner())
}

/// The batch whose `ON_DONE` hook runs now, and how the batch ended.
static HOOK: Mutex<Option<(String, String)>> = Mutex::new(None);

fn hook() -> std::sync::MutexGuard<'static, Option<(String, String)>> {
    HOOK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends batchsh at once with `code`, for the reason `why` (a second
/// Ctrl-C, a late SIGTERM): kills the entity commands (and hook) still
/// running, and says so, and what it leaves: a batch unfinished and how to
/// finish or end it, or a batch that had ended and whose hook was cut.
pub fn stop_now(code: i32, why: &str) -> ! {
    crate::command::kill_running();
    if let Some(bid) = running_bid().as_deref() {
        eprintln!(
            "batchsh: {why}, stopping at once: batch {bid} is left unfinished, as after a \
             crash; BATCH_RETRY '{bid}' finishes it, BATCH_CANCEL '{bid}' ends it"
        );
    } else if let Some((bid, status)) = hook().as_ref() {
        eprintln!(
            "batchsh: {why}, stopping at once: batch {bid} had ended {status}; its ON_DONE \
             hook was stopped"
        );
    } else {
        eprintln!("batchsh: {why}, stopping at once");
    }
    std::process::exit(code);
}

/// While it lives, a batch's `ON_DONE` hook runs: a stop at once says so.
pub struct HookRunning(());

impl HookRunning {
    pub fn start(bid: &str, status: &str) -> HookRunning {
        *hook() = Some((bid.to_string(), status.to_string()));
        HookRunning(())
    }
}

impl Drop for HookRunning {
    fn drop(&mut self) {
        *hook() = None;
    }
}

/// Installs the handler (once; later calls do nothing). Without it,
/// SIGTERM keeps its default action.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let taken = signal_hook::iterator::Signals::new([SIGTERM]).and_then(|mut signals| {
            std::thread::Builder::new()
                .name("sigterm".into())
                .spawn(move || {
                    for _ in signals.forever() {
                        on_sigterm(Instant::now());
                    }
                })
        });
        if let Err(e) = taken {
            eprintln!("warning: cannot handle SIGTERM ({e}); it will end batchsh at once");
        }
    });
}

/// What a SIGTERM that came at `now` does.
fn on_sigterm(now: Instant) {
    let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
    let first_at = *first.get_or_insert(now);
    REQUESTED.store(true, Ordering::SeqCst);
    let batch_runs = running_bid().is_some();
    if !batch_runs || now.duration_since(first_at) > SAME_STOP {
        stop_now(EXIT_CODE, "SIGTERM");
    }
}

/// Whether a SIGTERM came.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// While it lives, a SIGTERM interrupts the batch instead of ending the
/// process.
pub struct BatchRunning(());

impl BatchRunning {
    pub fn start(bid: &str) -> BatchRunning {
        *running_bid() = Some(bid.to_string());
        BatchRunning(())
    }
}

/// The batch has ended (its hook, `ON_DONE`, may still run): from now on a
/// SIGTERM ends the process at once.
pub fn batch_ended() {
    *running_bid() = None;
}

impl Drop for BatchRunning {
    fn drop(&mut self) {
        batch_ended();
    }
}
