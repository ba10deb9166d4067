//! `BATCH_WAIT NAME='etl.*'` (SPEC §9, as Waitsy): waiting until the
//! latest run of every series matching a glob, started since SINCE (local
//! midnight by default), succeeded. The runs are made with `WINDOW_OPEN` /
//! `WINDOW_CLOSE` / `WINDOW_FAIL` as a shell script makes them; time is a
//! hidden clock and the zone is Paris, so "today" is exact.

use crate::windows::Shell;
use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// A `BATCH_WAIT` started in the background, its stderr read line by line.
struct Waiting {
    child: Child,
    lines: Receiver<String>,
}

impl Waiting {
    fn start(sh: &Shell, script: &str) -> Waiting {
        let mut child = sh.command(&[], script).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Waiting { child, lines }
    }

    /// The next line that says what it waits for (a bound on a stuck
    /// program, not a timing the test depends on).
    #[track_caller]
    fn next_waiting_line(&self) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("a line on stderr");
            if line.starts_with("waiting for: ") {
                return line;
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Its exit code and stdout, once it ended (within a minute).
    fn end(mut self) -> (i32, String) {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stdout = String::new();
                self.child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut stdout)
                    .unwrap();
                return (status.code().unwrap(), stdout);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("BATCH_WAIT did not end");
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two series: etl.load ran yesterday only, etl.extract runs today.
/// BATCH_WAIT waits through etl.extract's success (yesterday's etl.load
/// does not count) and returns once etl.load succeeded today as well,
/// having said on stderr, at each change, which series it waited for.
#[test]
fn waits_for_todays_second_success_and_not_for_yesterdays() {
    let sh = Shell::new("2026-12-06T21:00:00Z"); // 22:00 in Paris, Dec 6
    sh.ok("WINDOW_OPEN 'etl.load'; WINDOW_CLOSE 'etl.load'");
    sh.at("2026-12-07T07:00:00Z"); // 08:00, Dec 7
    sh.ok("WINDOW_OPEN 'etl.extract'");
    let mut w = Waiting::start(&sh, "BATCH_WAIT NAME='etl.*' TIMEOUT='2m'");
    assert_eq!(
        w.next_waiting_line(),
        "waiting for: etl.extract (OPEN since 2026-12-07 08:00:00), \
         etl.load (no run since 2026-12-07 00:00:00)"
    );
    sh.at("2026-12-07T07:30:00Z");
    sh.ok("WINDOW_CLOSE 'etl.extract'");
    assert_eq!(
        w.next_waiting_line(),
        "waiting for: etl.load (no run since 2026-12-07 00:00:00)"
    );
    sh.at("2026-12-07T08:00:00Z");
    sh.ok("WINDOW_OPEN 'etl.load'");
    assert_eq!(
        w.next_waiting_line(),
        "waiting for: etl.load (OPEN since 2026-12-07 09:00:00)"
    );
    assert!(w.running(), "it waits while etl.load runs");
    sh.at("2026-12-07T08:45:00Z");
    sh.ok("WINDOW_CLOSE 'etl.load'");
    let (code, stdout) = w.end();
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "\
| Series      | Status | Batch ID   | Start               | End                 | Bid |
|-------------|--------|------------|---------------------|---------------------|-----|
| etl.extract | DONE   | 1796626800 | 2026-12-07 08:00:00 | 2026-12-07 08:30:00 |     |
| etl.load    | DONE   | 1796630400 | 2026-12-07 09:00:00 | 2026-12-07 09:45:00 |     |
"
    );
}

/// A run that succeeded at 23:59 does not count one minute after
/// midnight: "today" is the local midnight of the (hidden) clock. Since
/// yesterday it counts, and a run after midnight counts today.
#[test]
fn a_success_at_2359_does_not_count_at_0001() {
    let sh = Shell::new("2026-12-06T22:59:00Z"); // 23:59 in Paris, Dec 6
    sh.ok("WINDOW_OPEN 'etl.load'; WINDOW_CLOSE 'etl.load'");
    // At 23:59 it is today's success.
    sh.test(&["-q"], "BATCH_WAIT NAME='etl.load'")
        .status(0)
        .run();
    sh.at("2026-12-06T23:01:00Z"); // 00:01, Dec 7
    sh.test(&[], "BATCH_WAIT NAME='etl.load' TIMEOUT='1s'")
        .status(4)
        .stdout("")
        .stderr_contains("waiting for: etl.load (no run since 2026-12-07 00:00:00)\n")
        .stderr_contains(
            "error: BATCH_WAIT timed out after 1s: still waiting for etl.load (no run since \
             2026-12-07 00:00:00)\n",
        )
        .run();
    sh.test(&["-q"], "BATCH_WAIT NAME='etl.load' SINCE='yesterday'")
        .status(0)
        .stdout_contains("| etl.load | DONE   | 1796597940 | 2026-12-06 23:59:00 |")
        .run();
    sh.ok("WINDOW_OPEN 'etl.load'; WINDOW_CLOSE 'etl.load'");
    sh.test(&["-q"], "BATCH_WAIT NAME='etl.load'")
        .status(0)
        .stdout_contains("| etl.load | DONE   | 1796598060 | 2026-12-07 00:01:00 |")
        .run();
}

/// A failed latest run keeps BATCH_WAIT waiting (a new run may still
/// succeed) until its TIMEOUT, exit 4, naming what it still waits for;
/// with FAIL_FAST=true it exits 3 at once, naming the failed series.
#[test]
fn a_failed_run_waits_until_the_timeout_or_fails_fast() {
    let sh = Shell::new("2026-12-07T07:00:00Z");
    sh.ok("WINDOW_OPEN 'etl.extract'; WINDOW_CLOSE 'etl.extract'; \
         WINDOW_OPEN 'etl.load'; WINDOW_FAIL 'etl.load' ERROR='disk full'");
    sh.test(&[], "BATCH_WAIT NAME='ETL.*' TIMEOUT='1s'")
        .status(4)
        .stdout("")
        .stderr_contains(
            "error: BATCH_WAIT timed out after 1s: still waiting for etl.load (FAILED at \
             2026-12-07 08:00:00)\n",
        )
        .stderr_lacks("etl.extract")
        .run();
    sh.test(&[], "BATCH_WAIT NAME='etl.*' FAIL_FAST=true")
        .status(3)
        .stdout(
            "\
| Series      | Status | Batch ID   | Start               | End                 | Bid |
|-------------|--------|------------|---------------------|---------------------|-----|
| etl.extract | DONE   | 1796626800 | 2026-12-07 08:00:00 | 2026-12-07 08:00:00 |     |
| etl.load    | FAILED | 1796626800 | 2026-12-07 08:00:00 | 2026-12-07 08:00:00 |     |
",
        )
        .stderr_contains(
            "error: a series BATCH_WAIT waits for failed (FAIL_FAST): etl.load (FAILED at \
             2026-12-07 08:00:00)\n",
        )
        .run();
    // In JSON, times are RFC 3339 UTC, as everywhere.
    let run = |series: &str, status: &str| {
        serde_json::json!({"series": series, "status": status, "batch_id": 1796626800_i64,
            "start": "2026-12-07T07:00:00Z", "end": "2026-12-07T07:00:00Z", "bid": null})
    };
    sh.test(
        &["-q", "--format", "json"],
        "BATCH_WAIT NAME='etl.*' FAIL_FAST=true",
    )
    .status(3)
    .stdout_json(serde_json::json!([
        run("etl.extract", "DONE"),
        run("etl.load", "FAILED")
    ]))
    .run();
    // The retry succeeds: the waiting ends, also with FAIL_FAST.
    sh.ok("WINDOW_OPEN 'etl.load'; WINDOW_CLOSE 'etl.load'");
    sh.test(&["-q"], "BATCH_WAIT NAME='etl.*' FAIL_FAST=true")
        .status(0)
        .run();
}

/// A glob that matches no series is an error at once, with the closest
/// name or the names there are; a SINCE that is no time, or SINCE with a
/// batch id, is refused where it is written.
#[test]
fn refused_waits_say_what_would_be_right() {
    let sh = Shell::new("2026-12-07T07:00:00Z");
    sh.test(&[], "BATCH_WAIT NAME='etl.*'")
        .status(1)
        .stderr_contains(
            "error: no series matches NAME='etl.*': there is no series yet (WINDOW_OPEN or \
             WINDOW_SET makes one)\n",
        )
        .run();
    sh.ok("WINDOW_SET 'etl.load' FROM_DATE='today'; WINDOW_SET 'crm' FROM_DATE='today'");
    sh.test(&[], "BATCH_WAIT NAME='etl.lod'")
        .status(1)
        .stdout("")
        .stderr_contains(
            "error: no series matches NAME='etl.lod' (did you mean 'etl.load'?)
  --> line 1, column 12
   |
 1 | BATCH_WAIT NAME='etl.lod'
   |            ^^^^^^^^^^^^^^
",
        )
        .run();
    sh.test(&[], "BATCH_WAIT NAME='dwh.*'")
        .status(1)
        .stderr_contains("error: no series matches NAME='dwh.*'; the series are crm, etl.load\n")
        .run();
    sh.test(&[], "BATCH_WAIT NAME='etl.*' SINCE='last week'")
        .status(1)
        .stderr_contains(
            "error: invalid value for SINCE: 'last week'
  --> line 1, column 31
   |
 1 | BATCH_WAIT NAME='etl.*' SINCE='last week'
   |                               ^^^^^^^^^^^ expected a time such as 'today', '2026-01-31' or '2026-01-31 02:00:00'
",
        )
        .run();
    sh.test(&[], "BATCH_WAIT 'c0ffee42' FAIL_FAST=true")
        .status(1)
        .stderr_contains(
            "error: FAIL_FAST goes with NAME='pattern' (the runs of named series); BATCH_WAIT \
             'bid' waits for one batch\n",
        )
        .run();
}
