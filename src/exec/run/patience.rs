//! A run's writes wait out a store that another process holds, or a
//! server that does not answer: the run owns its batch and holds outcomes
//! nobody else has.

use super::*;

/// Runs one of the run's writes (or reads), waiting out a store that
/// another process holds longer than the busy timeout (a backup, a long
/// VACUUM, a sqlite3 shell in a transaction), or a PostgreSQL server that
/// cannot be reached (down, restarting, the link cut:
/// [`StoreError::Unreachable`]): the run owns the batch and holds outcomes
/// that nobody else has, so it has nothing to give up (SPEC §11). A write
/// that failed so changed nothing, so trying it again is safe. Stderr says
/// when the wait begins, every minute while it lasts, and when it ends.
/// Ctrl-C or SIGTERM during the wait stop batchsh at once, as a second one
/// would: nothing can be committed, so the batch is left as after a crash,
/// for `BATCH_RETRY`.
pub(super) fn patiently<T>(
    env: &Env,
    bid: &str,
    mut write: impl FnMut() -> crate::store::Result<T>,
) -> crate::store::Result<T> {
    let started = Instant::now();
    let mut said_at: Option<Instant> = None;
    // Whether the wait was for a server that did not answer.
    let mut unreachable = false;
    let mut pause = Duration::from_millis(10);
    loop {
        let r = write();
        let again = |said_at: Option<Instant>, after: Duration| {
            let first_note = said_at.is_none() && started.elapsed() >= after;
            first_note || said_at.is_some_and(|t| t.elapsed() >= LOCK_NOTE_EVERY)
        };
        match &r {
            Err(StoreError::Locked { path, .. }) => {
                if again(said_at, lock_note_after()) {
                    said_at = Some(Instant::now());
                    env.events.event(Event::StoreLocked {
                        bid,
                        path,
                        waited: started.elapsed(),
                    });
                }
            }
            // The error came after the busy timeout's tries to connect:
            // said at once.
            Err(e) if e.unreachable() => {
                unreachable = true;
                if again(said_at, Duration::ZERO) {
                    said_at = Some(Instant::now());
                    env.events.event(Event::StoreUnreachable {
                        bid,
                        why: e.to_string(),
                        waited: started.elapsed(),
                    });
                }
            }
            _ => {
                if said_at.is_some() {
                    let waited = started.elapsed();
                    env.events.event(if unreachable {
                        Event::StoreBack { bid, waited }
                    } else {
                        Event::StoreFree { bid, waited }
                    });
                }
                return r;
            }
        }
        if env.stop.cancelled() {
            crate::terminate::stop_now(crate::exit::INTERRUPTED, "Ctrl-C");
        }
        if let Some(signal) = env.stop.signalled() {
            crate::terminate::stop_now(signal.exit_code(), signal.name());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// How often a run that waits for a locked store says so again.
pub(super) const LOCK_NOTE_EVERY: Duration = Duration::from_secs(60);

/// How long a run waits for a locked store before it says so: a short
/// lock (a backup of a small store) is not worth a warning in a cron mail.
pub(super) fn lock_note_after() -> Duration {
    crate::store::busy_timeout().min(Duration::from_secs(5))
}
