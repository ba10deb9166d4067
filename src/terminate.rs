//! SIGTERM: what `timeout`, `kill` and service managers send to stop a
//! process; and SIGHUP, which comes when the terminal or SSH session of an
//! interactive run is closed, the commonest way such a run dies. Both are
//! handled alike (the exit code says which came: 143 or 129), and SIGTERM
//! stands for both below. While a synchronous batch runs, a SIGTERM stops it cleanly: no
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
//!
//! After a SIGHUP the terminal is usually gone: writing to it fails, and a
//! failed write to stderr would end batchsh in the middle of committing
//! what its batch did. A stdout or stderr on a terminal that hung up is
//! therefore pointed at `/dev/null` first; one redirected to a file (as
//! under `nohup`) keeps the message that says how to finish the batch.

use crate::batch::{StopSignal, StopToken};
use signal_hook::consts::{SIGHUP, SIGTERM};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// The first stop signal that came (SIGTERM or SIGHUP), 0 before.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The stop signal that came, if one did.
pub fn signal() -> Option<StopSignal> {
    if !requested() {
        return None;
    }
    Some(match SIGNAL.load(Ordering::SeqCst) {
        SIGHUP => StopSignal::Hup,
        _ => StopSignal::Term,
    })
}

/// The exit code after a stop signal: 128 + its number (143 for SIGTERM,
/// 129 for SIGHUP).
pub fn exit_code() -> i32 {
    signal().unwrap_or(StopSignal::Term).exit_code()
}

/// The name of the stop signal that came (`SIGTERM` before any).
pub fn signal_name() -> &'static str {
    signal().unwrap_or(StopSignal::Term).name()
}

/// SIGTERMs this close to the first are the same stop.
const SAME_STOP: Duration = Duration::from_secs(2);

/// A SIGTERM came.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// When the first SIGTERM came.
static FIRST: Mutex<Option<Instant>> = Mutex::new(None);
/// The id of the batch that runs now: while there is one, a SIGTERM stops
/// it (through its run's token) instead of ending the process, and a stop
/// at once names it.
static RUNNING_BID: Mutex<Option<String>> = Mutex::new(None);

fn running_bid() -> std::sync::MutexGuard<'static, Option<String>> {
    RUNNING_BID.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stop tokens of the runs under way: the statement that runs now
/// (from before its batch is created, so that a Ctrl-C or a signal that
/// comes meanwhile is not lost), or each batch a worker serves: see
/// [`watch`].
static TOKENS: Mutex<Vec<Arc<StopToken>>> = Mutex::new(Vec::new());

fn tokens() -> std::sync::MutexGuard<'static, Vec<Arc<StopToken>>> {
    TOKENS.lock().unwrap_or_else(|e| e.into_inner())
}

/// While the guard lives, Ctrl-C ([`cancel_running`]) and stop signals
/// reach `token`. A stop signal that came before is passed on at once
/// (a worker starting a batch while it drains).
pub fn watch(t: Arc<StopToken>) -> Watch {
    if let Some(s) = signal() {
        t.signal(s);
    }
    tokens().push(Arc::clone(&t));
    Watch(t)
}

/// See [`watch`].
pub struct Watch(Arc<StopToken>);

impl Drop for Watch {
    fn drop(&mut self) {
        tokens().retain(|t| !Arc::ptr_eq(t, &self.0));
    }
}

/// Asks the runs under way, if any, to stop as a SIGTERM would (their
/// in-flight entities finish, the rest go back, their batches are left
/// unfinished), without a signal: a worker whose store failed under it
/// drains its batches before it exits.
pub fn drain_runs() {
    for t in tokens().iter() {
        t.signal(StopSignal::Drain);
    }
}

/// Asks the runs under way, if any, to cancel their batch (a first
/// Ctrl-C).
pub fn cancel_running() {
    for t in tokens().iter() {
        t.cancel();
    }
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
    STOPPING_NOW.store(true, Ordering::SeqCst);
    // What is left is read before the commands are killed: the hook's end
    // lets the main thread move on (and forget it).
    let message = if let Some(bid) = running_bid().clone() {
        format!(
            "batchsh: {why}, stopping at once: batch {bid} is left unfinished, as after a \
             crash; BATCH_RETRY '{bid}' finishes it, BATCH_CANCEL '{bid}' ends it"
        )
    } else if let Some((bid, status)) = hook().as_ref() {
        format!(
            "batchsh: {why}, stopping at once: batch {bid} had ended {status}; its ON_DONE \
             hook was stopped"
        )
    } else {
        format!("batchsh: {why}, stopping at once")
    };
    crate::command::kill_running();
    eprintln!("{message}");
    std::process::exit(code);
}

/// A stop at once is under way: it ends the process, with its own code.
static STOPPING_NOW: AtomicBool = AtomicBool::new(false);

/// The process's end with `code`, unless a stop at once is under way on
/// another thread ([`stop_now`]): that one ends the process, with its
/// code, and this thread waits for it (a hook it killed let this thread
/// reach its end first).
pub fn exit(code: i32) -> ! {
    if STOPPING_NOW.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    std::process::exit(code)
}

/// While it lives, a batch's `ON_DONE` hook runs: a stop at once says so.
pub struct HookRunning(());

impl HookRunning {
    pub fn start(bid: &str, status: crate::batch::BatchStatus) -> HookRunning {
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
        // A SIGHUP that the process was started ignoring (`nohup`, `trap ''
        // HUP`) stays ignored: the user asked for the run to outlive the
        // terminal.
        let signals = if ignored_at_start(SIGHUP) {
            signal_hook::iterator::Signals::new([SIGTERM])
        } else {
            signal_hook::iterator::Signals::new([SIGTERM, SIGHUP])
        };
        let taken = signals.and_then(|mut signals| {
            std::thread::Builder::new()
                .name("sigterm".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        on_sigterm(signal, Instant::now());
                    }
                })
        });
        if let Err(e) = taken {
            eprintln!(
                "warning: cannot handle SIGTERM and SIGHUP ({e}); they will end batchsh at once"
            );
        }
    });
}

/// A worker drains on a stop signal (SPEC §7): the first one stops its
/// batch cleanly and lets it exit by itself, even while no batch runs.
static DRAIN: AtomicBool = AtomicBool::new(false);

/// The process drains on a stop signal instead of ending at once when no
/// batch runs (`batchsh worker`).
pub fn drain_on_stop() {
    DRAIN.store(true, Ordering::SeqCst);
}

/// Ctrl-C in a worker: a stop, as SIGTERM.
pub fn stop_requested() {
    on_sigterm(SIGTERM, Instant::now());
}

/// Whether `signal` is ignored by this process, as its parent left it
/// (the `SigIgn` mask of `/proc/self/status`; without it, not ignored).
fn ignored_at_start(signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// What a stop signal (SIGTERM, SIGHUP) that came at `now` does.
fn on_sigterm(signal: i32, now: Instant) {
    if signal == SIGHUP {
        quiet_hung_up_terminal();
    }
    let _ = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
    let first_at = *first.get_or_insert(now);
    REQUESTED.store(true, Ordering::SeqCst);
    // What is still written is written, but a store server that does not
    // answer is no longer waited for.
    crate::store::stop_waiting();
    for t in tokens().iter() {
        t.signal(if signal == SIGHUP {
            StopSignal::Hup
        } else {
            StopSignal::Term
        });
    }
    let batch_runs = running_bid().is_some() || DRAIN.load(Ordering::SeqCst);
    if !batch_runs || now.duration_since(first_at) > SAME_STOP {
        stop_now(exit_code(), signal_name());
    }
}

/// Points stdout and stderr at `/dev/null` where they are a terminal that
/// hung up (see the module doc). A hung-up terminal no longer answers
/// `isatty`, so poll alone tells: it reports a hang-up at once (as it does
/// for a pipe whose reader is gone, where nobody reads either).
fn quiet_hung_up_terminal() {
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    if hung_up(&std::io::stderr()) {
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    if hung_up(&std::io::stdout()) {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// Whether `fd` is hung up: poll says so at once.
fn hung_up(fd: &impl std::os::fd::AsFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(fd, PollFlags::OUT)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut fds, Some(&now)).is_ok()
        && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR)
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
