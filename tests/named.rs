//! Named batches (SPEC §9): `BATCH ... WITH NAME='...'` is a run of a
//! series, opened with the batch and ended with it, whoever ends it; one
//! run of a series is open at a time. Time is a hidden clock
//! (`BATCHSH_TEST_NOW_FILE`) and the zone is Paris (`TZ`), so windows are
//! exact.

use crate::common::Test;
use crate::storedb::StoreDb;
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

    fn db(&self) -> StoreDb {
        StoreDb::open(&self.home())
    }

    /// The runs of a series, oldest first.
    fn runs(&self, series: &str) -> Vec<Run> {
        self.db()
            .rows(
                "SELECT run_no, status, failed, from_date, bid FROM series_runs
                 WHERE series = ?1 ORDER BY run_no",
                &[&series],
            )
            .iter()
            .map(|r| Run {
                run_no: r["run_no"].as_i64().unwrap(),
                status: r["status"].as_str().unwrap().to_string(),
                failed: r["failed"].as_i64().unwrap(),
                from_date: r["from_date"].as_str().unwrap().to_string(),
                bid: r["bid"].as_str().map(str::to_string),
            })
            .collect()
    }

    /// Every row of the batches, series and runs, to show nothing changed.
    fn stored(&self) -> Vec<String> {
        let Some(mut c) = StoreDb::try_open(&self.home()) else {
            return vec![];
        };
        let mut rows = Vec::new();
        for sql in [
            "SELECT bid || '|' || status FROM batches ORDER BY bid",
            "SELECT name || '|' || reprocess_hours || '|' || trunc_start || '|' || \
             coalesce(from_date, '-') || '|' || updated_at FROM series ORDER BY name",
            "SELECT series || '|' || run_no || '|' || status || '|' || from_date || '|' || \
             coalesce(bid, '-') FROM series_runs ORDER BY series, run_no",
        ] {
            rows.extend(c.strings(sql, &[]));
        }
        rows
    }

    /// Starts `script` (a named batch) in the background, and waits until
    /// its run of the series is open and the batch is under way (past
    /// reading its ids: its status holds still while its entities wait).
    fn running(&self, script: &str) -> std::process::Child {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"))
            .current_dir(self.path())
            .env("BATCHSH_TEST_NOW_FILE", self.clock())
            .args(["--home", self.home().to_str().unwrap(), "-q", "-c", script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        crate::world::eventually("the batch's run to open", || {
            // Not opened before batchsh made it: opening would create it.
            StoreDb::try_open(&self.home()).and_then(|mut c| {
                c.try_i64(
                    "SELECT count(*) FROM series_runs AS r JOIN batches AS b \
                     ON b.bid = r.bid WHERE r.status = 'OPEN' AND b.status = 'IN_PROGRESS'",
                    &[],
                )
            }) == Some(1)
        });
        child
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
    let mut running = sh.running(
        "BATCH x.('1') FABRIC_COMMAND=\"shell 'while [ ! -e go ]; do sleep 0.05; done; : ?'\" \
         WITH NAME='orders_delta'",
    );
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
    assert!(sh.stored().is_empty());
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
    let run = w.store().row(
        "SELECT status, failed, bid FROM series_runs WHERE series = 'crm_delta'",
        &[],
    );
    assert_eq!(
        run,
        serde_json::json!({"status": "DONE", "failed": 0, "bid": bid})
    );
}

impl Shell {
    /// An SQLite file `src.db` with an `orders` table and its interface
    /// `src`.
    fn orders(&self) {
        let c = rusqlite::Connection::open(self.path().join("src.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL);
             CREATE TABLE seen (id TEXT, from_date TEXT, batch_id TEXT, batch_start TEXT,
                                batch_end TEXT, bid TEXT);",
        )
        .unwrap();
        self.test("CREATE INTERFACE src TYPE SQLITE PATH 'src.db'")
            .status(0)
            .run();
    }

    /// Adds an order updated at `at` (Paris wall-clock text).
    fn order(&self, id: i64, at: &str) {
        let c = rusqlite::Connection::open(self.path().join("src.db")).unwrap();
        c.execute(
            "INSERT INTO orders (id, updated_at) VALUES (?1, ?2)",
            rusqlite::params![id, at],
        )
        .unwrap();
    }
}

/// A named batch binds its window variables by name in its USING query
/// and in a `sql` command, and exports them to a `shell` command; the
/// values are the run's, in Paris time: the window from 1970 on the
/// first run, the start (14:30 in Paris) as BATCH_START and BATCH_END,
/// the start in epoch seconds as BATCH_ID, and the batch's id as BID.
/// EXPLAIN shows the next run's values and counts the source with them.
#[test]
fn window_variables_are_bound_by_name_and_exported() {
    let sh = Shell::new("2026-11-21T13:30:00Z");
    sh.orders();
    sh.order(1, "2026-11-20 10:00:00");
    sh.order(2, "2026-11-21 12:00:00");
    let bid = sh.batch(
        "BATCH o FROM src USING ('select id from orders where updated_at >= :from_date \
         and updated_at < :batch_end') \
         FABRIC_COMMAND=\"sql src 'insert into seen values (?, :from_date, :batch_id, \
         :batch_start, :batch_end, :bid)'\" WITH NAME='orders_delta' REPROCESS_HOURS=2",
        0,
    );
    let c = rusqlite::Connection::open(sh.path().join("src.db")).unwrap();
    let seen: Vec<String> = c
        .prepare("SELECT id || '|' || from_date || '|' || batch_id || '|' || batch_start || '|' || batch_end || '|' || bid FROM seen ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let row = |id: i64| {
        format!("{id}|1970-01-01 00:00:00|1795267800|2026-11-21 14:30:00|2026-11-21 14:30:00|{bid}")
    };
    assert_eq!(seen, [row(1), row(2)]);
    // The next run, at 16:00 in Paris, reads from 12:30 on.
    sh.at("2026-11-21T15:00:00Z");
    let out = sh
        .test(
            "EXPLAIN BATCH o FROM src USING ('select id from orders where updated_at >= :from_date') \
             FABRIC_COMMAND='echo ?' WITH NAME='orders_delta'",
        )
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["window_from_date"], "2026-11-21 12:30:00", "{v}");
    assert_eq!(v["window_batch_start"], "2026-11-21 16:00:00");
    assert_eq!(v["window_batch_id"], "1795273200");
    assert_eq!(v["entities_now"], 0);
    let second = sh.batch(
        "BATCH x.('a') FABRIC_COMMAND=\"shell 'echo $FROM_DATE/$BATCH_START/$BATCH_END/$BATCH_ID/$BID/?'\" \
         WITH NAME='orders_delta'",
        0,
    );
    let out = sh
        .test(&format!("BATCH_DETAILS '{second}'"))
        .status(0)
        .run();
    let details: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        details[0]["results"]["stdout"],
        format!(
            "2026-11-21 12:30:00/2026-11-21 16:00:00/2026-11-21 16:00:00/1795273200/{second}/a\n"
        )
    );
}

/// A window variable in a batch without NAME has no value: refused before
/// anything is stored, in an `exec` argument and in the USING query.
#[test]
fn window_variables_without_a_name_are_refused_before_anything_is_stored() {
    let sh = Shell::new("2026-11-21T13:30:00Z");
    sh.orders();
    sh.test("BATCH x.('1') FABRIC_COMMAND=\"exec 'echo' :from_date ?\"")
        .status(1)
        .stderr_contains(":from_date is a window variable, set only for a named batch")
        .run();
    sh.test("BATCH o FROM src USING ('select id from orders where updated_at >= :from_date') FABRIC_COMMAND='echo ?'")
        .status(1)
        .stderr_contains("the query uses :from_date, which has no value here")
        .run();
    assert!(sh.stored().is_empty(), "{:?}", sh.stored());
}

/// Issue 18's must-hold series: five runs of a nightly load over orders
/// stamped with `updated_at` (Paris time): DONE, DONE with a failure,
/// FAILED, its retry to DONE, then DONE with REPROCESS_HOURS=2 and
/// TRUNC_START. Each run's from_date is the one computed by hand, and
/// every order is loaded by some run: none is skipped across the windows.
#[test]
fn five_runs_of_a_series_skip_no_row() {
    let sh = Shell::new("2026-11-21T09:00:00Z"); // 10:00 in Paris
    sh.orders();
    let load = |extra: &str, code: i32| {
        sh.batch(
            &format!(
                "BATCH o FROM src USING ('select id from orders where updated_at >= :from_date') \
                 FABRIC_COMMAND=\"shell 'test ! -e fail_? && echo ? >> loaded.txt'\" \
                 WITH NAME='orders_delta' {extra}"
            ),
            code,
        )
    };
    // Run 1: the first, from 1970; clean.
    sh.order(1, "2026-11-20 08:00:00");
    sh.order(2, "2026-11-21 09:00:00");
    let r1 = load("", 0);
    // Run 2, a day later: from run 1's start; order 4 fails.
    sh.at("2026-11-22T09:00:00Z");
    sh.order(3, "2026-11-21 15:00:00");
    sh.order(4, "2026-11-22 09:30:00");
    std::fs::write(sh.path().join("fail_4"), "").unwrap();
    let r2 = load("", 3);
    // Run 3: the same window again; order 4 still fails, and the batch
    // stops FAILED at its first failure.
    sh.at("2026-11-23T09:00:00Z");
    sh.order(5, "2026-11-23 08:00:00");
    let r3 = load("MAX_FAILURES=0", 1);
    // Its retry, an hour later, ends clean: run 3 is DONE.
    std::fs::remove_file(sh.path().join("fail_4")).unwrap();
    sh.at("2026-11-23T10:00:00Z");
    sh.order(6, "2026-11-23 10:30:00");
    sh.test(&format!("BATCH_RETRY '{r3}'")).status(0).run();
    // Run 5 (the series' fourth run): from run 3's start (10:00) less two
    // hours, truncated to midnight.
    sh.at("2026-11-24T09:00:00Z");
    sh.order(7, "2026-11-24 09:00:00");
    let r5 = load("REPROCESS_HOURS=2 TRUNC_START=true", 0);
    assert_eq!(
        sh.runs("orders_delta"),
        [
            run(1, "DONE", 0, "1970-01-01 00:00:00", &r1),
            run(2, "DONE", 1, "2026-11-21 10:00:00", &r2),
            run(3, "DONE", 0, "2026-11-21 10:00:00", &r3),
            run(4, "DONE", 0, "2026-11-23 00:00:00", &r5),
        ]
    );
    let loaded = std::fs::read_to_string(sh.path().join("loaded.txt")).unwrap();
    let mut ids: Vec<i64> = loaded.lines().map(|l| l.parse().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (1..=7).collect::<Vec<_>>(), "{loaded}");
    assert_eq!(
        sh.status("orders_delta")["next_from_date"],
        "2026-11-24 00:00:00"
    );
}

/// The run of a named batch whose process was killed stays open: a new
/// batch of the series is refused; BATCH_RETRY finishes the batch and
/// ends the run DONE.
#[test]
fn a_named_batch_killed_and_retried_ends_its_run_done() {
    let w = crate::world::World::new(300);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.01; : ?'\" \
         WITH NAME='crm_delta' MAX_WORKERS_PER_NODE=2",
    );
    crate::world::kill_9_after(&w, child, 40);
    let bid = w.last_bid();
    let run = || {
        w.store().row(
            "SELECT status, failed FROM series_runs WHERE bid = ?1",
            &[&bid],
        )
    };
    assert_eq!(run(), serde_json::json!({"status": "OPEN", "failed": 0}));
    w.test("BATCH Customer FABRIC_COMMAND='echo ?' WITH NAME='crm_delta'")
        .status(1)
        .stderr_contains(format!("BATCH_RETRY '{bid}' if it was interrupted"))
        .run();
    w.retry_to_done(&bid);
    assert_eq!(run(), serde_json::json!({"status": "DONE", "failed": 0}));
}

/// A named batch cancelled while it runs ends its run CANCELLED, and the
/// series' next run gets the same window.
#[test]
fn a_cancelled_named_batch_ends_its_run_cancelled() {
    let sh = Shell::new("2026-11-21T14:00:00Z");
    let mut running = sh.running(
        "BATCH x.('1','2') FABRIC_COMMAND=\"shell 'while [ ! -e go ]; do sleep 0.05; done; : ?'\" \
         WITH NAME='orders_delta' MAX_WORKERS_PER_NODE=1",
    );
    let bid = sh.runs("orders_delta")[0].bid.clone().unwrap();
    sh.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
    std::fs::write(sh.path().join("go"), "").unwrap();
    running.wait().unwrap();
    assert_eq!(sh.runs("orders_delta")[0].status, "CANCELLED");
    sh.at("2026-11-21T15:00:00Z");
    let next = sh.batch(
        "BATCH x.('1') FABRIC_COMMAND='echo ?' WITH NAME='orders_delta'",
        0,
    );
    assert_eq!(
        sh.runs("orders_delta")[1],
        run(2, "DONE", 0, "1970-01-01 00:00:00", &next)
    );
}

/// A series' parameters (WINDOW_SET) reach a named batch's commands, in
/// the environment under their names in upper case; EXPLAIN shows them
/// with the window.
#[test]
fn series_parameters_reach_a_named_batchs_commands() {
    let sh = Shell::new("2026-11-21T13:30:00Z");
    sh.orders();
    sh.order(1, "2026-11-20 10:00:00");
    sh.test("WINDOW_SET 'orders_delta' FROM_DATE='2026-11-01' region='EU'")
        .status(0)
        .run();
    let script = "BATCH o FROM src USING ('select id from orders where updated_at >= :from_date') \
                  FABRIC_COMMAND=\"shell 'echo $REGION/$FROM_DATE/?'\" WITH NAME='orders_delta'";
    let out = sh.test(&format!("EXPLAIN {script}")).status(0).run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["window_region"], "EU", "{v}");
    assert_eq!(v["entities_now"], 1);
    let bid = sh.batch(script, 0);
    let out = sh.test(&format!("BATCH_DETAILS '{bid}'")).status(0).run();
    let details: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        details[0]["results"]["stdout"],
        "EU/2026-11-01 00:00:00/1\n"
    );
}
