//! `ENTITY_TIMEOUT` for work done inside SQLite (the `sql` command,
//! `sync_instance`, `delete_instance`): a watchdog thread interrupts the
//! connections (`sqlite3_interrupt`) when the limit passes, and the
//! statement running on them fails.

use rusqlite::InterruptHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `work`; if it takes longer than `limit`, interrupts every
/// connection of `handles` and sets `timed_out`. The watchdog is joined
/// before this returns, so it never interrupts a later statement on the
/// same connections (a connection goes back to its pool only after).
pub fn within<T>(
    handles: Vec<InterruptHandle>,
    limit: Duration,
    timed_out: &AtomicBool,
    work: impl FnOnce() -> T,
) -> T {
    let (done, wait) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                timed_out.store(true, Ordering::SeqCst);
                for h in &handles {
                    h.interrupt();
                }
            }
        });
        let out = work();
        drop(done);
        out
    })
}
