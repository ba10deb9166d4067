//! Timings that tests shorten through hidden environment variables, so
//! that a stalled node, a takeover or a locked store is tested in a second
//! rather than in the tens of seconds the real limits take, and moments
//! that tests hold still (a start line, a batch left queued). They are not
//! part of the interface (no flag, no documentation for users); each is
//! read once (but the clock, below), and a value that is not a whole
//! number of milliseconds is ignored.
//!
//! - `BATCHSH_TEST_DEAD_AFTER_MS`: [`dead_after`];
//! - `BATCHSH_TEST_BUSY_TIMEOUT_MS`: [`busy_timeout`];
//! - `BATCHSH_TEST_GATE`: [`gate`];
//! - `BATCHSH_TEST_IDS_HOLD_AFTER`: [`ids_hold_after`];
//! - `BATCHSH_TEST_NO_BACKGROUND_WORKER`: [`no_background_worker`];
//! - `BATCHSH_TEST_NO_WAKE_SIGNAL`: [`no_wake_signal`];
//! - `BATCHSH_TEST_BID`: [`first_bid`];
//! - `BATCHSH_TEST_PIPE_WINDOW`: [`pipe_window`];
//! - `BATCHSH_TEST_NOW_FILE`: [`now`], the clock schedules read; the file
//!   is read again at every call, so that a test moves time forward under
//!   a running worker;
//! - `BATCHSH_TEST_STORE_SERVER`: [`store_server`], which runs the
//!   integration tests on PostgreSQL stores.

use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::{Once, OnceLock};
use std::time::Duration;

fn millis(cell: &OnceLock<Option<Duration>>, var: &str) -> Option<Duration> {
    *cell.get_or_init(|| {
        let v = std::env::var(var).ok()?;
        warn(var);
        v.trim().parse::<u64>().ok().map(Duration::from_millis)
    })
}

/// A knob set outside a test changes how batchsh judges other processes
/// (or whether it starts a worker): say so, so that a stray variable in an
/// environment is noticed.
fn warn(var: &str) {
    eprintln!("warning: {var} is set: a setting meant for batchsh's own tests is in force");
}

/// How long a batch's owner may go without a heartbeat before it counts
/// as dead (SPEC §7: 10 seconds).
pub fn dead_after() -> Duration {
    static CELL: OnceLock<Option<Duration>> = OnceLock::new();
    millis(&CELL, "BATCHSH_TEST_DEAD_AFTER_MS").unwrap_or(Duration::from_secs(10))
}

/// How long one statement waits for another process's lock on the store
/// before SQLite gives up (30 seconds).
pub fn busy_timeout() -> Duration {
    static CELL: OnceLock<Option<Duration>> = OnceLock::new();
    millis(&CELL, "BATCHSH_TEST_BUSY_TIMEOUT_MS").unwrap_or(Duration::from_secs(30))
}

/// A start line for tests of processes that must meet at one moment: with
/// `BATCHSH_TEST_GATE=PATH`, the process says it is ready (it creates
/// `PATH.ready.<pid>`) and waits until `PATH` exists. Without it, nothing.
pub fn gate() {
    let Some(path) = std::env::var_os("BATCHSH_TEST_GATE") else {
        return;
    };
    warn("BATCHSH_TEST_GATE");
    let gate = std::path::PathBuf::from(path);
    let mut ready = gate.clone().into_os_string();
    ready.push(format!(".ready.{}", std::process::id()));
    let _ = std::fs::write(ready, b"");
    // Bounded, so that a test that forgets to open the gate fails instead
    // of hanging.
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !gate.exists() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// With `BATCHSH_TEST_IDS_HOLD_AFTER=N`, a run's source reader stops for a
/// minute after handing on its first N new ids, as a large source that is
/// slow to read would: a test kills or stops the run's process while it
/// still reads the source, whatever the machine's speed. Without it, none.
pub fn ids_hold_after() -> Option<usize> {
    static CELL: OnceLock<Option<usize>> = OnceLock::new();
    *CELL.get_or_init(|| {
        let v = std::env::var("BATCHSH_TEST_IDS_HOLD_AFTER").ok()?;
        warn("BATCHSH_TEST_IDS_HOLD_AFTER");
        v.trim().parse().ok()
    })
}

/// With `BATCHSH_TEST_NO_BACKGROUND_WORKER` set, an asynchronous batch that
/// no live worker serves stays queued (`WAITING_FOR_JOB`) instead of
/// starting a background worker: a test changes the world under the queued
/// batch, then starts its own worker.
pub fn no_background_worker() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    flag(&CELL, "BATCHSH_TEST_NO_BACKGROUND_WORKER")
}

/// Whether the knob `var` is set (to anything), said once.
fn flag(cell: &OnceLock<bool>, var: &str) -> bool {
    *cell.get_or_init(|| {
        let set = std::env::var_os(var).is_some();
        if set {
            warn(var);
        }
        set
    })
}

/// With `BATCHSH_TEST_NO_WAKE_SIGNAL` set, statements and workers wake no
/// worker with SIGUSR1 ([`crate::background::wake`]), as if every worker
/// were on another host: a test sees what the store's notices alone do.
pub fn no_wake_signal() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    flag(&CELL, "BATCHSH_TEST_NO_WAKE_SIGNAL")
}

/// The id of the first batch this process creates, for fixtures that need
/// a known one (HELP's examples name `c0ffee42-...`): with
/// `BATCHSH_TEST_BID=<id>`, that id; later batches get new ones.
pub fn first_bid() -> Option<String> {
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let bid = std::env::var("BATCHSH_TEST_BID").ok()?;
    if TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    warn("BATCHSH_TEST_BID");
    Some(bid)
}

/// With `BATCHSH_TEST_PIPE_WINDOW=N`, a `pipe` writes at most `N` ids
/// ahead of the answers it reads (1: one at a time), instead of
/// [`crate::command::pipe::WINDOW`]: for its benchmark, which measures
/// what writing ahead is worth.
pub fn pipe_window() -> Option<usize> {
    static CELL: OnceLock<Option<usize>> = OnceLock::new();
    *CELL.get_or_init(|| {
        let v = std::env::var("BATCHSH_TEST_PIPE_WINDOW").ok()?;
        warn("BATCHSH_TEST_PIPE_WINDOW");
        v.trim().parse::<usize>().ok().filter(|&n| n > 0)
    })
}

/// With `BATCHSH_TEST_STORE_SERVER=URL` (a PostgreSQL server, as a URL to
/// a database on it), a process given no `--store` keeps its store in a
/// database of that server named after its home, created when missing,
/// instead of `<home>/store.db`: every process of one test (they share a
/// home) meets in one database, so the integration tests run unchanged on
/// PostgreSQL. It says nothing on stderr (the tests compare stderr), and
/// is read by `--store`'s default alone.
pub fn store_server() -> Option<String> {
    std::env::var("BATCHSH_TEST_STORE_SERVER")
        .ok()
        .filter(|v| !v.is_empty())
}

/// The time, for schedules: with `BATCHSH_TEST_NOW_FILE=PATH`, the RFC 3339
/// time written in that file, read at every call (a test writes a later
/// time and a long-running worker sees it); while the file is missing or
/// holds no such time, the real clock. Without it, the real clock.
pub fn now() -> DateTime<Utc> {
    let Some(path) = std::env::var_os("BATCHSH_TEST_NOW_FILE") else {
        return Utc::now();
    };
    static WARNED: Once = Once::new();
    WARNED.call_once(|| warn("BATCHSH_TEST_NOW_FILE"));
    now_from(Path::new(&path))
}

fn now_from(path: &Path) -> DateTime<Utc> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_clock_follows_its_file_and_falls_back_to_the_real_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("now");
        let real = |t: DateTime<Utc>| (t - Utc::now()).num_seconds().abs() < 60;
        assert!(real(now_from(&file)), "no file: the real clock");
        std::fs::write(&file, "2027-03-28T01:30:00+01:00\n").expect("write");
        assert_eq!(now_from(&file).to_rfc3339(), "2027-03-28T00:30:00+00:00");
        // Read again at every call: a later time is seen at once.
        std::fs::write(&file, "2027-03-31T00:00:00Z").expect("write");
        assert_eq!(now_from(&file).to_rfc3339(), "2027-03-31T00:00:00+00:00");
        std::fs::write(&file, "next tuesday").expect("write");
        assert!(real(now_from(&file)), "garbled: the real clock");
    }
}
