//! Named series for ETL steps that run outside batchsh (SPEC §9), as
//! Batchy's endpoints: `WINDOW_SET`, `WINDOW_OPEN`, `WINDOW_CLOSE`,
//! `WINDOW_FAIL`, `WINDOW_STATUS`, each a `batchsh -c` call as a shell
//! script makes it. Time is a hidden clock (`BATCHSH_TEST_NOW_FILE`) and
//! the zone is Paris (`TZ`), so windows and truncation are exact.

use crate::common::Test;
use serde_json::{Value, json};
use std::path::PathBuf;

/// A home of its own, a clock, and Paris time (for the waiting on
/// series' runs too).
pub struct Shell {
    dir: tempfile::TempDir,
}

impl Shell {
    pub fn new(now: &str) -> Shell {
        let s = Shell {
            dir: tempfile::tempdir().unwrap(),
        };
        s.at(now);
        s
    }

    pub fn clock(&self) -> PathBuf {
        self.dir.path().join("now")
    }

    pub fn at(&self, now: &str) {
        std::fs::write(self.clock(), now).unwrap();
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `batchsh [flags] -c script`.
    pub fn test(&self, flags: &[&str], script: &str) -> Test {
        Test::new()
            .env("BATCHSH_TEST_NOW_FILE", self.clock().to_str().unwrap())
            .env("TZ", "Europe/Paris")
            .args(["--home", self.home().to_str().unwrap()])
            .args(flags.iter().copied())
            .args(["-c", script])
    }

    /// `batchsh [flags] -c script` as a process to start, with its
    /// streams piped.
    pub fn command(&self, flags: &[&str], script: &str) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"));
        c.env("BATCHSH_TEST_NOW_FILE", self.clock())
            .env("TZ", "Europe/Paris")
            .args(["--home", self.home().to_str().unwrap()])
            .args(flags)
            .args(["-c", script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    }

    /// Runs `script`, which must succeed; its stdout.
    #[track_caller]
    pub fn ok(&self, script: &str) -> String {
        self.test(&[], script).status(0).run().stdout
    }

    /// `script` with `-q --format json`, as a script reads Batchy's JSON,
    /// which must succeed; its document.
    #[track_caller]
    fn json(&self, script: &str) -> Value {
        let out = self
            .test(&["-q", "--format", "json"], script)
            .status(0)
            .run();
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// Every row of the series and their runs, to show nothing changed.
    fn stored(&self) -> Vec<String> {
        let Some(mut c) = crate::storedb::StoreDb::try_open(&self.home()) else {
            return vec![];
        };
        let mut rows = Vec::new();
        for sql in [
            "SELECT name || '|' || reprocess_hours || '|' || trunc_start || '|' || \
             coalesce(from_date, '-') || '|' || params || '|' || updated_at FROM series ORDER BY name",
            "SELECT series || '|' || run_no || '|' || status || '|' || from_date || '|' || \
             coalesce(end_time, '-') || '|' || coalesce(error, '-') FROM series_runs \
             ORDER BY series, run_no",
        ] {
            rows.extend(c.strings(sql, &[]));
        }
        rows
    }
}

/// The parameter file of a run of `wf1` (region EU, target dwh).
fn infa(batch_id: i64, from_date: &str, batch_start: &str) -> String {
    format!(
        "[Global]\n$$batch_id={batch_id}\n$$from_date={from_date}\n$$batch_start={batch_start}\n\
         $$region=EU\n$$target=dwh\n"
    )
}

/// Batchy's example flow: set a workflow's window and parameters, open a
/// run as an Informatica parameter file, fail it, get the same window
/// again, close that run, and get the next window: the closed run's start
/// (15:00 in Paris) minus REPROCESS_HOURS=2, truncated to midnight.
#[test]
fn batchy_example_flow_end_to_end() {
    let sh = Shell::new("2026-11-21T13:30:00Z"); // 14:30 in Paris
    assert_eq!(
        sh.ok(
            "WINDOW_SET 'wf1' FROM_DATE='2026-11-01' REPROCESS_HOURS=2 TRUNC_START=true \
             region='EU' target=dwh"
        ),
        "series wf1 set: its next run reads from 2026-11-01 00:00:00\n"
    );
    assert_eq!(
        sh.ok("WINDOW_OPEN 'wf1' FORMAT='infa'"),
        infa(1795267800, "2026-11-01 00:00:00", "2026-11-21 14:30:00")
    );
    assert_eq!(
        sh.ok("WINDOW_FAIL 'wf1' ERROR='the load timed out'"),
        "run 1795267800 of series wf1 ended FAILED\n"
    );
    sh.at("2026-11-21T14:00:00Z");
    // The failed run's window again.
    let again: Value = serde_json::from_str(&sh.ok("WINDOW_OPEN 'wf1' FORMAT='json'")).unwrap();
    assert_eq!(
        again,
        json!({"series": "wf1", "batch_id": 1795269600, "from_date": "2026-11-01 00:00:00",
               "batch_start": "2026-11-21 15:00:00", "region": "EU", "target": "dwh"})
    );
    sh.at("2026-11-21T16:00:00Z");
    assert_eq!(
        sh.ok("WINDOW_CLOSE 'wf1'"),
        "run 1795269600 of series wf1 ended DONE\n"
    );
    let status = sh.json("WINDOW_STATUS 'wf1'");
    assert_eq!(
        status,
        json!({"series": "wf1", "status": "DONE", "batch_id": 1795269600,
               "batch_start": "2026-11-21 15:00:00", "batch_end": "2026-11-21 17:00:00",
               "from_date": "2026-11-01 00:00:00", "error": null,
               "next_from_date": "2026-11-21 00:00:00", "reprocess_hours": 2,
               "trunc_start": true, "region": "EU", "target": "dwh"})
    );
    sh.at("2026-11-22T06:00:00Z");
    // As Batchy's open_batch/wf1/json.
    let next = sh.json("WINDOW_OPEN 'wf1'");
    assert_eq!(next["from_date"], "2026-11-21 00:00:00");
    assert_eq!(next["batch_id"], 1795327200);
    assert_eq!(next["batch_start"], "2026-11-22 07:00:00");
    // The run's parameters can be read again while it is open.
    assert_eq!(
        sh.ok("WINDOW_STATUS 'wf1' FORMAT='infa'"),
        infa(1795327200, "2026-11-21 00:00:00", "2026-11-22 07:00:00")
    );
    let runs = sh.stored();
    assert_eq!(
        runs[1..],
        [
            "wf1|1|FAILED|2026-11-01 00:00:00|2026-11-21T13:30:00.000Z|the load timed out",
            "wf1|2|DONE|2026-11-01 00:00:00|2026-11-21T16:00:00.000Z|-",
            "wf1|3|OPEN|2026-11-21 00:00:00|-|-",
        ]
    );
}

/// REPROCESS_HOURS counts back from the start of the last clean run; with
/// TRUNC_START the result is truncated to its local midnight, which may be
/// the day before. A series that WINDOW_OPEN meets first is made with
/// its defaults and starts at the epoch.
#[test]
fn the_next_window_follows_the_last_clean_run() {
    let sh = Shell::new("2026-11-22T00:30:00Z"); // 01:30 in Paris
    sh.ok("WINDOW_SET 'trunc' FROM_DATE='2026-11-01' REPROCESS_HOURS=2 TRUNC_START=true");
    sh.ok("WINDOW_SET 'plain' FROM_DATE='2026-11-01' REPROCESS_HOURS=2");
    let from = |s: &str| sh.json(&format!("WINDOW_OPEN '{s}'"))["from_date"].clone();
    assert_eq!(from("trunc"), "2026-11-01 00:00:00");
    assert_eq!(from("plain"), "2026-11-01 00:00:00");
    assert_eq!(from("fresh"), "1970-01-01 00:00:00");
    sh.ok("WINDOW_CLOSE 'trunc'; WINDOW_CLOSE 'plain'; WINDOW_CLOSE 'fresh'");
    sh.at("2026-11-22T08:00:00Z");
    assert_eq!(from("trunc"), "2026-11-21 00:00:00");
    assert_eq!(from("plain"), "2026-11-21 23:30:00");
    assert_eq!(from("fresh"), "2026-11-22 01:30:00");
    // WINDOW_SET's date wins over the rules, once.
    sh.ok("WINDOW_FAIL 'plain'; WINDOW_SET 'plain' FROM_DATE='2026-10-01 06:00:00'");
    assert_eq!(from("plain"), "2026-10-01 06:00:00");
    let all = sh.json("WINDOW_STATUS");
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["series"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fresh", "plain", "trunc"]);
    assert_eq!(all[1]["status"], "OPEN");
    assert_eq!(all[1]["next_from_date"], Value::Null);
}

/// A second run of a series while one is open is refused, naming the open
/// one, and nothing is written.
#[test]
fn a_second_open_run_is_refused_with_the_open_one() {
    let sh = Shell::new("2026-11-21T13:30:00Z");
    sh.ok("WINDOW_OPEN 'wf1'");
    let before = sh.stored();
    sh.at("2026-11-21T13:45:00Z");
    sh.test(&[], "WINDOW_OPEN 'wf1'")
        .status(1)
        .stdout("")
        .stderr_contains(
            "error: series wf1 has a run open already (batch_id 1795267800, opened \
             2026-11-21 14:30:00); end it first with WINDOW_CLOSE 'wf1' or WINDOW_FAIL 'wf1'
  --> line 1, column 13
   |
 1 | WINDOW_OPEN 'wf1'
   |             ^^^^^
",
        )
        .run();
    assert_eq!(sh.stored(), before);
}

/// Every refused statement says what and where, and stores nothing.
#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let sh = Shell::new("2026-11-21T13:30:00Z");
    sh.ok("WINDOW_SET 'wf1' FROM_DATE='2026-11-01' REPROCESS_HOURS=3 region='EU'");
    let before = sh.stored();
    assert_eq!(before.len(), 1);
    // (statement, what stderr says)
    let cases: &[(&str, &str)] = &[
        (
            "WINDOW_SET 'wf1' FROM_DATE='soon'",
            "invalid value for FROM_DATE",
        ),
        (
            "WINDOW_SET 'wf1' FROM_DATE='2026-11-01' REPROCESS_HOURS=-1",
            "expected a whole number of hours, 0 or more",
        ),
        (
            "WINDOW_SET 'wf1' FROM_DATE='2026-11-01' REPROCESS_HOURS='two'",
            "invalid value for REPROCESS_HOURS",
        ),
        (
            "WINDOW_SET 'wf1' FROM_DATE='2026-11-01' region='US' REGION='EU'",
            "parameter REGION is given twice",
        ),
        (
            "WINDOW_SET 'wf1' FROM_DATE='2026-11-01' batch_id='7'",
            "batch_id is a window variable",
        ),
        (
            "WINDOW_SET 'wf2' REPROCESS_HOURS=1",
            "WINDOW_SET needs FROM_DATE",
        ),
        (
            "WINDOW_CLOSE 'wf2'",
            "error: no series named 'wf2' (did you mean 'wf1'?)",
        ),
        (
            "WINDOW_FAIL 'wf2'",
            "error: no series named 'wf2' (did you mean 'wf1'?)",
        ),
        (
            "WINDOW_STATUS 'wf2'",
            "error: no series named 'wf2' (did you mean 'wf1'?)",
        ),
        (
            "WINDOW_CLOSE 'wf1'",
            "error: series wf1 has no open run to end (WINDOW_OPEN 'wf1' opens one)",
        ),
        (
            "WINDOW_FAIL 'wf1' ERROR='x'",
            "error: series wf1 has no open run to end",
        ),
        (
            "WINDOW_STATUS FORMAT='infa'",
            "FORMAT='infa' prints the parameters of one series",
        ),
        ("WINDOW_OPEN 'wf1' region='EU'", "unknown option region"),
    ];
    for (script, says) in cases {
        sh.test(&[], script)
            .status(1)
            .stdout("")
            .stderr_contains(says)
            .run();
        assert_eq!(sh.stored(), before, "{script}");
    }
    // The caret is under the culprit.
    sh.test(&[], "WINDOW_SET 'wf1' FROM_DATE='2026-11-01' REPROCESS_HOURS=-1")
        .status(1)
        .stderr_contains(
            "
   |
 1 | WINDOW_SET 'wf1' FROM_DATE='2026-11-01' REPROCESS_HOURS=-1
   |                                                         ^^ expected a whole number of hours, 0 or more
",
        )
        .run();
}

/// Eight processes open a run of one series at once: one opens it, the
/// others are refused naming it, and one run is stored.
#[test]
fn concurrent_opens_of_one_series_open_one_run() {
    let sh = Shell::new("2026-11-21T13:30:00Z");
    sh.ok("WINDOW_SET 'wf1' FROM_DATE='2026-11-01'");
    let children: Vec<std::process::Child> = (0..8)
        .map(|_| sh.command(&["-q"], "WINDOW_OPEN 'wf1'").spawn().unwrap())
        .collect();
    let outs: Vec<std::process::Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let opened = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(opened, 1);
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("series wf1 has a run open already (batch_id 1795267800"),
            "{err}"
        );
    }
    assert_eq!(sh.stored()[1..], ["wf1|1|OPEN|2026-11-01 00:00:00|-|-"]);
}

/// REPROCESS_HOURS are elapsed hours across the spring change: a run that
/// started at 03:30 in Paris on the night the clocks went from 02:00 to
/// 03:00, with REPROCESS_HOURS=2, is followed by a window from 00:30.
#[test]
fn reprocess_hours_across_a_dst_change_are_elapsed_hours() {
    let sh = Shell::new("2026-03-29T01:30:00Z"); // 03:30 CEST
    sh.ok("WINDOW_SET 'spring' FROM_DATE='2026-03-01' REPROCESS_HOURS=2");
    sh.ok("WINDOW_OPEN 'spring'; WINDOW_CLOSE 'spring'");
    sh.at("2026-03-30T01:30:00Z");
    assert_eq!(
        sh.json("WINDOW_OPEN 'spring'")["from_date"],
        "2026-03-29 00:30:00"
    );
}
