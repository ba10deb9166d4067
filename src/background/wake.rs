//! Waking an idle worker at once, rather than at its next look for work
//! (every 500 ms): a statement that queues an asynchronous batch, and a
//! worker that takes a job, send SIGUSR1 to the live workers of this host,
//! which look for work then. A worker handles SIGUSR1 (this module) before
//! it registers, so that a registered live worker is never ended by it;
//! the sender checks that the pid is a `batchsh worker` still (its command
//! line), as pids are reused. On a store that tells (PostgreSQL's
//! LISTEN/NOTIFY, [`Notice::Work`]), the same transactions wake the
//! workers of every host: a thread of the worker's hears the store's
//! notices and wakes it as a signal does. Elsewhere, workers on other
//! hosts find the work at their next look.

use crate::store::nodes::NodeStore;
use crate::store::{Notice, Store};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Where a worker waits between its looks for work.
#[derive(Default)]
pub struct Wake {
    nudged: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    /// Handles SIGUSR1 from now on: each one wakes the waiter.
    pub fn install() -> std::io::Result<Arc<Wake>> {
        let wake = Arc::new(Wake::default());
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])?;
        let w = Arc::clone(&wake);
        std::thread::Builder::new()
            .name("wake".into())
            .spawn(move || {
                for _ in signals.forever() {
                    w.nudge();
                }
            })?;
        Ok(wake)
    }

    /// Wakes the waiter also when the store says there is work (a batch
    /// queued, a job taken, on any host), heard on `store`, a handle of
    /// its own, from a thread of its own. Nothing on a store that cannot
    /// tell. Called before the worker registers, as [`Wake::install`].
    pub fn listen(self: &Arc<Self>, store: Box<dyn Store + Send>) -> std::io::Result<()> {
        if !store.listen(Notice::Work) {
            return Ok(());
        }
        let w = Arc::clone(self);
        std::thread::Builder::new()
            .name("notices".into())
            .spawn(move || {
                loop {
                    if !store.await_notice(Duration::from_secs(60)).is_empty() {
                        w.nudge();
                    }
                }
            })?;
        Ok(())
    }

    pub fn nudge(&self) {
        *self.nudged.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Waits `d`, or less when nudged (since the last wait).
    pub fn sleep(&self, d: Duration) {
        let nudged = self.nudged.lock().unwrap_or_else(|e| e.into_inner());
        let (mut nudged, _) = self
            .cv
            .wait_timeout_while(nudged, d, |n| !*n)
            .unwrap_or_else(|e| e.into_inner());
        *nudged = false;
    }
}

/// Wakes the live workers of this host (but `except`, a worker id), so
/// that they look for work now. Best effort: a worker that is not woken
/// looks within 500 ms anyway.
pub fn nudge_workers(store: &dyn NodeStore, except: Option<&str>) {
    if crate::knobs::no_wake_signal() {
        return;
    }
    let Ok(nodes) = store.nodes() else {
        return;
    };
    let host = crate::owner::hostname();
    for n in nodes {
        let here = n.host == host && Some(n.worker_id.as_str()) != except;
        if here
            && n.takes_work()
            && let Some(pid) = worker_pid(n.pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::USR1);
        }
    }
}

/// `pid` if it is a `batchsh worker` process now (its command line says
/// so), not another that took its number.
fn worker_pid(pid: i64) -> Option<rustix::process::Pid> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|&b| b == 0);
    let exe = args.next()?;
    let ours = exe.ends_with(b"batchsh") && args.any(|a| a == b"worker");
    ours.then(|| rustix::process::Pid::from_raw(i32::try_from(pid).ok()?))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_batchsh_worker_is_woken() {
        let mut other = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert_eq!(
            worker_pid(i64::from(other.id())),
            None,
            "sleep is not a worker"
        );
        assert_eq!(
            worker_pid(i64::from(std::process::id())),
            None,
            "nor is a test"
        );
        assert_eq!(
            worker_pid(i64::from(i32::MAX)),
            None,
            "nor a pid that is gone"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[test]
    fn a_nudge_ends_the_wait_and_is_used_once() {
        let wake = Arc::new(Wake::default());
        let w = Arc::clone(&wake);
        let t = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            w.sleep(Duration::from_secs(30));
            t0.elapsed()
        });
        // Before or during the wait: either way it ends.
        wake.nudge();
        assert!(t.join().unwrap() < Duration::from_secs(30));
        let t0 = std::time::Instant::now();
        wake.sleep(Duration::from_millis(100));
        assert!(
            t0.elapsed() >= Duration::from_millis(100),
            "the nudge was used"
        );
    }
}
