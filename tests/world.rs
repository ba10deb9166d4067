//! A working folder with a source and a store, shared by the runs of one
//! batch test, and the helpers of the batch tests: reading the store,
//! waiting for a state, killing and signalling a background batchsh.

use crate::common::Test;
use crate::storedb::StoreDb;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A working folder with an SQLite source `crm.db` (customers 1..=n) and a
/// store, shared by the runs of one test.
pub(crate) struct World {
    dir: tempfile::TempDir,
}

impl World {
    pub(crate) fn new(n: i64) -> World {
        let dir = tempfile::tempdir().unwrap();
        crate::common::customer_db(&dir.path().join("crm.db"), n);
        let w = World { dir };
        w.test(crate::common::CRM_CUSTOMER_LU).status(0).run();
        w
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub(crate) fn run(&self, script: &str) -> crate::common::Output {
        self.test(script).run()
    }

    /// A run of `script`, to set more on before it runs.
    pub(crate) fn test(&self, script: &str) -> Test {
        Test::new().current_dir(self.path()).args(self.args(script))
    }

    /// batchsh's arguments to run `script` on this world's store.
    pub(crate) fn args(&self, script: &str) -> [String; 6] {
        let home = self.home().to_str().unwrap().to_string();
        ["--home", &home, "--format", "json", "-c", script].map(String::from)
    }

    /// Runs `script`, which must fail: exit 1 and stderr starting with
    /// `error: {message}`.
    #[track_caller]
    pub(crate) fn refused(&self, script: &str, message: &str) -> crate::common::Output {
        self.test(script)
            .status(1)
            .stderr_starts_with(format!("error: {message}"))
            .run()
    }

    /// Runs `t`, whose last batch must end FAILED (exit 1) with an error
    /// that holds `why`.
    #[track_caller]
    pub(crate) fn assert_last_failed(&self, t: Test, why: &str) {
        t.status(1).run();
        let bid = self.last_bid();
        assert_eq!(self.status(&bid), "FAILED");
        let error = self.error(&bid);
        assert!(error.contains(why), "{error}");
    }

    /// Starts batchsh in the background (for kill and control tests).
    pub(crate) fn spawn(&self, script: &str) -> Child {
        self.spawn_with(script, &[], &[])
    }

    /// [`World::spawn`] with more flags before `-c` (`--node`), and
    /// environment variables (the hidden timing knobs).
    pub(crate) fn spawn_with(&self, script: &str, flags: &[&str], env: &[(&str, &str)]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_batchsh"))
            .args(flags)
            .envs(env.iter().copied())
            .current_dir(self.path())
            .args(self.args(script))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The nodes of the store, as `SHOW NODES` gives them.
    pub(crate) fn nodes(&self) -> Vec<Value> {
        let out = self.test("SHOW NODES").status(0).run();
        serde_json::from_str::<Value>(out.stdout.trim())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The store, read directly: what a crash left behind.
    pub(crate) fn store(&self) -> StoreDb {
        StoreDb::open(&self.home())
    }

    /// The SQLite store file itself, for the tests of that file (see
    /// `crate::pg::sqlite_file_test`).
    pub(crate) fn sqlite(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.home().join("store.db")).unwrap();
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        c
    }

    /// How many batches the store holds.
    pub(crate) fn batch_count(&self) -> i64 {
        self.store().i64("SELECT count(*) FROM batches", &[])
    }

    pub(crate) fn query_i64(&self, sql: &str, bid: &str) -> i64 {
        self.store().i64(sql, &[&bid])
    }

    /// The batch's counter `column` (`completed`, `total`...), as the
    /// store adds it up.
    pub(crate) fn counter(&self, bid: &str, column: &str) -> i64 {
        let mut c = self.store();
        let sql = format!("SELECT {column} FROM {} WHERE bid = ?1", c.totals());
        c.i64(&sql, &[&bid])
    }

    pub(crate) fn status(&self, bid: &str) -> String {
        self.store()
            .string("SELECT status FROM batches WHERE bid = ?1", &[&bid])
    }

    /// The batch's recorded error.
    pub(crate) fn error(&self, bid: &str) -> String {
        self.store()
            .string("SELECT error FROM batches WHERE bid = ?1", &[&bid])
    }

    pub(crate) fn last_bid(&self) -> String {
        self.store().string(
            "SELECT bid FROM batches ORDER BY creation_time DESC LIMIT 1",
            &[],
        )
    }

    /// A stop signal left the batch unfinished: still IN_PROGRESS, owned
    /// by no process, nothing in process.
    pub(crate) fn assert_left_unfinished(&self, bid: &str) {
        assert_eq!(self.status(bid), "IN_PROGRESS");
        let owner = self
            .store()
            .rows("SELECT owner_pid FROM batches WHERE bid = ?1", &[&bid])[0]["owner_pid"]
            .clone();
        assert_eq!((self.counter(bid, "in_process"), owner), (0, Value::Null));
    }

    /// `BATCH_RETRY` finishes the batch: exit 0, DONE, counters that add up.
    pub(crate) fn retry_to_done(&self, bid: &str) {
        self.test(&format!("BATCH_RETRY '{bid}'")).status(0).run();
        assert_eq!(self.status(bid), "DONE");
        self.assert_counters_add_up(bid);
    }

    /// total = waiting + in process + completed + failed + cancelled, and
    /// the counters match the entity rows (with the entities claimed as
    /// they arrived that have no row yet, `batch_claimed`: IN_PROCESS).
    pub(crate) fn assert_counters_add_up(&self, bid: &str) {
        let mut c = self.store();
        let totals = c.totals();
        let row = c.row(
            &format!(
                "SELECT x.total AS total,
                        x.waiting + x.in_process + x.completed + x.failed + x.cancelled AS sum,
                        (SELECT count(*) FROM batch_entities WHERE batch = b.batch_no)
                      + (SELECT count(*) FROM batch_claimed WHERE batch = b.batch_no) AS rows
                 FROM {totals} AS x JOIN batches AS b ON b.bid = x.bid WHERE b.bid = ?1"
            ),
            &[&bid],
        );
        let (total, sum, rows) = (&row["total"], &row["sum"], &row["rows"]);
        assert_eq!(total, sum, "counters do not add up");
        assert_eq!(total, rows, "total differs from the entity rows");
        for status in ["WAITING", "IN_PROCESS", "COMPLETED", "FAILED", "CANCELLED"] {
            let col = status.to_ascii_lowercase();
            let row = c.row(
                &format!(
                    "SELECT x.{col} AS counter,
                            (SELECT count(*) FROM batch_entities WHERE batch = b.batch_no AND status = '{status}')
                          + CASE '{status}' WHEN 'IN_PROCESS'
                              THEN (SELECT count(*) FROM batch_claimed WHERE batch = b.batch_no) ELSE 0 END
                            AS actual
                     FROM {totals} AS x JOIN batches AS b ON b.bid = x.bid WHERE b.bid = ?1"
                ),
                &[&bid],
            );
            assert_eq!(row["counter"], row["actual"], "{status} counter");
        }
    }
}

pub(crate) fn result_row(stdout: &str) -> Value {
    let line = stdout.lines().last().expect("a result line");
    let v: Value = serde_json::from_str(line).unwrap();
    v[0].clone()
}

impl World {
    /// Waits until a batch of this world is IN_PROGRESS.
    pub(crate) fn wait_until_running(&self) {
        eventually("the batch to start", || {
            StoreDb::try_open(&self.home())
                .and_then(|mut c| {
                    c.try_i64(
                        "SELECT count(*) FROM batches WHERE status = 'IN_PROGRESS'",
                        &[],
                    )
                })
                .unwrap_or(0)
                == 1
        });
    }
}

/// Polls until `f` is true (a few seconds at most).
pub(crate) fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the running batch has `n` COMPLETED entities, then kills
/// its process with SIGKILL: what a crash leaves.
pub(crate) fn kill_9_after(w: &World, mut child: Child, n: i64) {
    eventually("some entities to complete", || {
        StoreDb::try_open(&w.home())
            .and_then(|mut c| {
                let sql = format!("SELECT coalesce(max(completed), 0) FROM {}", c.totals());
                c.try_i64(&sql, &[])
            })
            .unwrap_or(0)
            >= n
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// The ids of the batch's COMPLETED entities.
pub(crate) fn completed_ids(w: &World, bid: &str) -> Vec<String> {
    w.store().strings(
        "SELECT entity_id FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'COMPLETED'",
        &[&bid],
    )
}

/// Checks, from the ids the command appended to ran.txt, that each of
/// 1..=n ran, and that none of `completed_before` ran twice.
pub(crate) fn assert_none_lost_none_rerun(w: &World, n: usize, completed_before: &[String]) {
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    let mut runs = std::collections::HashMap::<&str, usize>::new();
    for id in ran.lines() {
        *runs.entry(id).or_default() += 1;
    }
    for k in 1..=n {
        assert!(
            runs.contains_key(k.to_string().as_str()),
            "entity {k} never ran: lost"
        );
    }
    for id in completed_before {
        assert_eq!(
            runs[id.as_str()],
            1,
            "entity {id} was COMPLETED before the kill and ran again"
        );
    }
}

/// Sends `signal` (a `kill` option: `-TERM`, `-INT`) to a child.
pub(crate) fn signal(child: &Child, signal: &str) {
    signal_pid(i64::from(child.id()), signal);
}

/// Sends `signal` to process `pid` (one this test did not start itself: a
/// background worker).
pub(crate) fn signal_pid(pid: i64, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child`; one still running after `limit` is killed and the
/// test fails, instead of hanging.
pub(crate) fn wait_or_kill(
    mut child: std::process::Child,
    limit: Duration,
) -> std::process::Output {
    let until = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("batchsh did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
