//! Named batches (SPEC §9): `BATCH ... WITH NAME='...'` is a run of a
//! series, opened with the batch and ended with it, whoever ends it; one
//! run of a series is open at a time. Time is a hidden clock
//! (`BATCHSH_TEST_NOW_FILE`) and the zone is Paris (`TZ`), so windows are
//! exact.

use crate::common::Test;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A home of its own, a working folder, a clock, and Paris time.
struct Shell {
    dir: tempfile::TempDir,
}

/// A run of a series as the store keeps it.
#[derive(Debug, PartialEq)]
struct Run {
    run_no: i64,
    status: String,
    failed: i64,
    from_date: String,
    bid: Option<String>,
}

impl Shell {
    fn new(now: &str) -> Shell {
        let s = Shell {
            dir: tempfile::tempdir().unwrap(),
        };
        s.at(now);
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn clock(&self) -> PathBuf {
        self.path().join("now")
    }

    fn at(&self, now: &str) {
        std::fs::write(self.clock(), now).unwrap();
    }

    fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// `batchsh -q --format json -c script`, in the working folder.
    fn test(&self, script: &str) -> Test {
        Test::new()
            .current_dir(self.path())
            .env("BATCHSH_TEST_NOW_FILE", self.clock().to_str().unwrap())
            .env("TZ", "Europe/Paris")
            .args(["--home", self.home().to_str().unwrap()])
            .args(["-q", "--format", "json", "-c", script])
    }

    /// Runs a BATCH that must exit `code`; its bid.
    #[track_caller]
    fn batch(&self, script: &str, code: i32) -> String {
        let out = self.test(script).status(code).run();
        let rows: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        rows[0]["batch_id"].as_str().unwrap().to_string()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.home().join("store.db")).unwrap()
    }

    /// The runs of a series, oldest first.
    fn runs(&self, series: &str) -> Vec<Run> {
        let c = self.db();
        let mut st = c
            .prepare(
                "SELECT run_no, status, failed, from_date, bid FROM series_runs
                 WHERE series = ?1 ORDER BY run_no",
            )
            .unwrap();
        st.query_map([series], |r| {
            Ok(Run {
                run_no: r.get(0)?,
                status: r.get(1)?,
                failed: r.get(2)?,
                from_date: r.get(3)?,
                bid: r.get(4)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// Every row of the batches, series and runs, to show nothing changed.
    fn stored(&self) -> Vec<String> {
        let c = self.db();
        let mut rows = Vec::new();
        for sql in [
            "SELECT bid || '|' || status FROM batches ORDER BY bid",
            "SELECT name || '|' || reprocess_hours || '|' || trunc_start || '|' || \
             ifnull(from_date, '-') || '|' || updated_at FROM series ORDER BY name",
            "SELECT series || '|' || run_no || '|' || status || '|' || from_date || '|' || \
             ifnull(bid, '-') FROM series_runs ORDER BY series, run_no",
        ] {
            let mut st = c.prepare(sql).unwrap();
            let got = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
            rows.extend(got.map(Result::unwrap));
        }
        rows
    }

    /// WINDOW_STATUS of a series, as JSON.
    fn status(&self, series: &str) -> Value {
        let out = self
            .test(&format!("WINDOW_STATUS '{series}'"))
            .status(0)
            .run();
        serde_json::from_str(out.stdout.trim()).unwrap()
    }
}

/// A shell command whose entity `?` fails while a file `fail_?` is in
/// the working folder.
const FAILS_WITH_FILE: &str = "FABRIC_COMMAND=\"shell 'test ! -e fail_?'\"";

fn run(run_no: i64, status: &str, failed: i64, from_date: &str, bid: &str) -> Run {
    Run {
        run_no,
        status: status.into(),
        failed,
        from_date: from_date.into(),
        bid: Some(bid.into()),
    }
}

/// A named batch makes its series (with the settings it gives) and is
/// its first run, from 1970; it ends DONE with its batch, and the next
/// window follows its start (15:00 in Paris) minus REPROCESS_HOURS=2.
/// The next batch changes TRUNC_START: its window is truncated to
/// midnight, and REPROCESS_HOURS stays as the first batch set it.
#[test]
fn a_named_batch_is_a_run_of_its_series_and_ends_with_it() {
    let sh = Shell::new("2026-11-21T14:00:00Z");
    let first = sh.batch(
        "BATCH x.('1','2') FABRIC_COMMAND='echo ?' WITH NAME='orders_delta' REPROCESS_HOURS=2",
        0,
    );
    assert_eq!(
        sh.runs("orders_delta"),
        [run(1, "DONE", 0, "1970-01-01 00:00:00", &first)]
    );
    let status = sh.status("orders_delta");
    assert_eq!(status["batch_id"], 1795269600);
    assert_eq!(status["next_from_date"], "2026-11-21 13:00:00");
    assert_eq!(status["reprocess_hours"], 2);
    sh.at("2026-11-22T05:00:00Z");
    let second = sh.batch(
        "BATCH x.('1') FABRIC_COMMAND='echo ?' WITH NAME='orders_delta' TRUNC_START=true",
        0,
    );
    assert_eq!(
        sh.runs("orders_delta")[1],
        run(2, "DONE", 0, "2026-11-21 00:00:00", &second)
    );
    let status = sh.status("orders_delta");
    assert_eq!(status["reprocess_hours"], 2);
    assert_eq!(status["trunc_start"], true);
    // 06:00 in Paris minus 2 hours, truncated.
    assert_eq!(status["next_from_date"], "2026-11-22 00:00:00");
}

/// A batch that ends DONE with a failed entity ends its run DONE with
/// that count, and the next run gets the same window; a FAILED batch
/// (MAX_FAILURES=0) ends its run FAILED, and its BATCH_RETRY, once it
/// ends clean, makes that same run DONE with no failure, over the same
/// window, after which the window moves on.
#[test]
fn failures_repeat_the_window_and_a_clean_retry_ends_the_same_run_done() {
    let sh = Shell::new("2026-11-21T14:00:00Z");
    let named = |extra: &str| {
        format!("BATCH x.('1','2') {FAILS_WITH_FILE} WITH NAME='orders_delta' {extra}")
    };
    std::fs::write(sh.path().join("fail_2"), "").unwrap();
    let first = sh.batch(&named(""), 3);
    assert_eq!(
        sh.runs("orders_delta"),
        [run(1, "DONE", 1, "1970-01-01 00:00:00", &first)]
    );
    assert_eq!(
        sh.status("orders_delta")["next_from_date"],
        "1970-01-01 00:00:00"
    );
    sh.at("2026-11-21T15:00:00Z");
    let second = sh.batch(&named("MAX_FAILURES=0"), 1);
    assert_eq!(
        sh.runs("orders_delta")[1],
        run(2, "FAILED", 1, "1970-01-01 00:00:00", &second)
    );
    std::fs::remove_file(sh.path().join("fail_2")).unwrap();
    sh.test(&format!("BATCH_RETRY '{second}'")).status(0).run();
    assert_eq!(
        sh.runs("orders_delta")[1],
        run(2, "DONE", 0, "1970-01-01 00:00:00", &second)
    );
    // The retried run's start, 16:00 in Paris.
    assert_eq!(
        sh.status("orders_delta")["next_from_date"],
        "2026-11-21 16:00:00"
    );
}

/// A named batch while a run of its series is open (a WINDOW_OPEN here)
/// is refused with that run, and stores nothing: no batch, no run, and
/// not the settings it gives the series either. WINDOW_CLOSE cannot end
/// a run that is a batch; once the open run ends, the batch runs.
#[test]
fn a_named_batch_while_a_run_is_open_is_refused_and_stores_nothing() {
    let sh = Shell::new("2026-11-21T14:00:00Z");
    sh.test("WINDOW_OPEN 'orders_delta'").status(0).run();
    let before = sh.stored();
    sh.test("BATCH x.('1') FABRIC_COMMAND='echo ?' WITH NAME='orders_delta' REPROCESS_HOURS=5")
        .status(1)
        .stderr_contains(
            "series orders_delta has a run open already (batch_id 1795269600, opened by \
             WINDOW_OPEN); runs of a series never overlap: end it with WINDOW_CLOSE \
             'orders_delta' or WINDOW_FAIL 'orders_delta' first",
        )
        .run();
    assert_eq!(sh.stored(), before);
    sh.test("WINDOW_CLOSE 'orders_delta'").status(0).run();
    sh.at("2026-11-21T15:00:00Z");
    let bid = sh.batch(
        "BATCH x.('1') FABRIC_COMMAND='echo ?' WITH NAME='orders_delta'",
        0,
    );
    assert_eq!(
        sh.runs("orders_delta")[1].bid.as_deref(),
        Some(bid.as_str())
    );
}

/// While a named batch runs, a second batch of its series is refused
/// naming it, and WINDOW_CLOSE of the series is refused too (the run ends
/// with its batch); nothing of either is stored.
#[test]
fn a_second_batch_of_a_series_while_one_runs_is_refused_naming_it() {
    let sh = Shell::new("2026-11-21T14:00:00Z");
    let mut running = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"))
        .current_dir(sh.path())
        .env("BATCHSH_TEST_NOW_FILE", sh.clock())
        .args(["--home", sh.home().to_str().unwrap(), "-q", "-c"])
        .arg(
            "BATCH x.('1') FABRIC_COMMAND=\"shell 'while [ ! -e go ]; do sleep 0.05; done; : ?'\" \
             WITH NAME='orders_delta'",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::world::eventually("the batch to run", || {
        let path = sh.home().join("store.db");
        path.exists()
            && rusqlite::Connection::open(path)
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM series_runs", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .is_ok_and(|n| n == 1)
    });
    let bid = sh.runs("orders_delta")[0].bid.clone().unwrap();
    let before = sh.stored();
    sh.test("BATCH x.('2') FABRIC_COMMAND='echo ?' WITH NAME='orders_delta'")
        .status(1)
        .stderr_contains(format!(
            "series orders_delta has a run open already (batch {bid}, batch_id 1795269600)"
        ))
        .run();
    sh.test("WINDOW_CLOSE 'orders_delta'")
        .status(1)
        .stderr_contains(format!(
            "the open run of series orders_delta is batch {bid}, which ends it as it ends"
        ))
        .run();
    assert_eq!(sh.stored(), before);
    std::fs::write(sh.path().join("go"), "").unwrap();
    assert_eq!(running.wait().unwrap().code(), Some(0));
    assert_eq!(sh.runs("orders_delta")[0].status, "DONE");
}

/// REPROCESS_HOURS and TRUNC_START without NAME would be ignored: they
/// are refused, as a REPROCESS_HOURS that is not a whole number of hours
/// or is negative, and a blank NAME; nothing is stored.
#[test]
fn series_settings_without_a_name_or_out_of_range_are_refused() {
    let sh = Shell::new("2026-11-21T14:00:00Z");
    for (options, message) in [
        (
            "TRUNC_START=true",
            "error: TRUNC_START is a setting of a named series: add NAME='...'",
        ),
        (
            "NAME='s' REPROCESS_HOURS=-1",
            "error: REPROCESS_HOURS must be a whole number of hours, 0 or more, not -1",
        ),
        (
            "NAME='s' REPROCESS_HOURS=1.5",
            "error: REPROCESS_HOURS must be a whole number of hours, 0 or more, not 1.5",
        ),
        ("NAME=' '", "error: NAME must name a series"),
    ] {
        sh.test(&format!(
            "BATCH x.('1') FABRIC_COMMAND='echo ?' WITH {options}"
        ))
        .status(1)
        .stderr_starts_with(message)
        .run();
    }
    assert!(!sh.home().join("store.db").exists() || sh.stored().is_empty());
}

/// An ASYNC named batch is a run from the moment it is queued; the
/// worker that runs it ends the run with it.
#[test]
fn an_async_named_batch_ends_its_run_in_the_worker() {
    let w = crate::world::World::new(20);
    let (bid, _) = crate::workers::queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true NAME='crm_delta'",
    );
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    crate::workers::all_workers_stopped(&w);
    let c = rusqlite::Connection::open(w.home().join("store.db")).unwrap();
    let (status, failed, run_bid): (String, i64, String) = c
        .query_row(
            "SELECT status, failed, bid FROM series_runs WHERE series = 'crm_delta'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), failed, run_bid), ("DONE", 0, bid));
}
