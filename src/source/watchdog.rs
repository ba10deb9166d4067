//! `ENTITY_TIMEOUT` for work done inside SQLite (the `sql` command,
//! `sync_instance`, `delete_instance`): a watchdog thread interrupts the
//! connections (`sqlite3_interrupt`) when the limit passes, and the
//! statement running on them fails.

use rusqlite::InterruptHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How often the watchdog interrupts again once the limit has passed.
const AGAIN: Duration = Duration::from_millis(5);

/// Runs `work`; if it takes longer than `limit`, sets `timed_out` and
/// interrupts every connection of `handles`, again every [`AGAIN`] until
/// `work` returns: an interrupt that comes while no statement runs (the
/// work is between two of them) is dropped by SQLite, so one would not
/// do. The watchdog is joined before this returns, so it never interrupts
/// a later statement on the same connections (a connection goes back to
/// its pool only after).
pub fn within<T>(
    handles: Vec<InterruptHandle>,
    limit: Duration,
    timed_out: &AtomicBool,
    work: impl FnOnce() -> T,
) -> T {
    let (done, wait) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut next = limit;
            while let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(next) {
                timed_out.store(true, Ordering::SeqCst);
                for h in &handles {
                    h.interrupt();
                }
                next = AGAIN;
            }
        });
        let out = work();
        drop(done);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn a_limit_that_passes_between_statements_stops_the_next_one() {
        let conn = Connection::open_in_memory().unwrap();
        let timed_out = AtomicBool::new(false);
        let limit = Duration::from_millis(50);
        let r = within(vec![conn.get_interrupt_handle()], limit, &timed_out, || {
            // No statement runs when the limit passes; the next one counts
            // to 10^9 (tens of seconds) unless interrupted.
            std::thread::sleep(limit * 4);
            conn.query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                 WHERE x < 1000000000) SELECT count(*) FROM c",
                [],
                |r| r.get::<_, i64>(0),
            )
        });
        assert!(timed_out.load(Ordering::SeqCst));
        let e = r.unwrap_err();
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted),
            "{e}"
        );
        // Nothing is left over for the connection's next user.
        assert_eq!(
            conn.query_row("SELECT 2", [], |r| r.get::<_, i64>(0))
                .unwrap(),
            2
        );
    }

    #[test]
    fn work_within_the_limit_is_left_alone() {
        let conn = Connection::open_in_memory().unwrap();
        let timed_out = AtomicBool::new(false);
        let r = within(
            vec![conn.get_interrupt_handle()],
            Duration::from_secs(60),
            &timed_out,
            || conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)),
        );
        assert_eq!(r.unwrap(), 1);
        assert!(!timed_out.load(Ordering::SeqCst));
    }
}
