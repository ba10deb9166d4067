//! Jobs and schedules (SPEC §8) with real processes: `batchsh tick` and
//! workers firing jobs once per due time, catch-up, no overlap, a tick
//! killed mid-run, and the statements that make and change jobs. Time is
//! a hidden clock (`BATCHSH_TEST_NOW_FILE`): no test waits for a schedule.

use crate::common::Test;
use crate::world::{World, eventually, signal_pid};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Child;

/// The hidden clock of a world: every batchsh of the test reads "now"
/// from its file.
pub(crate) struct Clock {
    pub(crate) file: PathBuf,
}

/// The knobs of every process of these tests: the clock, and no worker
/// started in the background (the tests start their own).
pub(crate) fn knobs(clock: &Clock) -> Vec<(&'static str, String)> {
    vec![
        ("BATCHSH_TEST_NOW_FILE", clock.file.display().to_string()),
        ("BATCHSH_TEST_NO_BACKGROUND_WORKER", "1".into()),
        ("TZ", "UTC".into()),
        ("BATCHSH_TEST_DEAD_AFTER_MS", "1500".into()),
    ]
}

impl Clock {
    pub(crate) fn new(w: &World, now: &str) -> Clock {
        let c = Clock {
            file: w.path().join("now"),
        };
        c.set(now);
        c
    }

    pub(crate) fn set(&self, now: &str) {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, now).unwrap();
        std::fs::rename(tmp, &self.file).unwrap();
    }

    /// `script` on the world's store at this clock's time.
    pub(crate) fn test(&self, w: &World, script: &str) -> Test {
        knobs(self)
            .into_iter()
            .fold(w.test(script), |t, (k, v)| t.env(k, &v))
    }

    /// `batchsh tick`, started.
    pub(crate) fn tick(&self, w: &World) -> Child {
        self.spawn(w, &["tick"])
    }

    /// `batchsh worker` (no `--until-idle`) as node `node`.
    pub(crate) fn worker(&self, w: &World, node: &str) -> Child {
        self.spawn(w, &["--node", node, "worker", "--workers", "2"])
    }

    pub(crate) fn spawn(&self, w: &World, args: &[&str]) -> Child {
        let knobs = knobs(self);
        let env: Vec<(&str, &str)> = knobs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::workers::worker_with(w, args, &env)
    }
}

/// Waits for a tick; gives its exit code and stderr.
pub(crate) fn finish(c: Child) -> (Option<i32>, String) {
    let out = c.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A tick that must exit 0 with nothing on stderr.
#[track_caller]
pub(crate) fn tick_ok(clock: &Clock, w: &World) {
    let (code, err) = finish(clock.tick(w));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(said(&err), "", "a tick that went well prints nothing");
}

/// Stderr without the warnings of the test knobs.
fn said(err: &str) -> String {
    err.lines()
        .filter(|l| !l.starts_with("warning: BATCHSH_TEST_"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn json(out: &crate::common::Output) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap()
}

/// The runs of job `name`, newest first (`JOB_HISTORY`).
pub(crate) fn runs(clock: &Clock, w: &World, name: &str) -> Vec<Value> {
    let out = clock
        .test(w, &format!("JOB_HISTORY '{name}' LIMIT=-1"))
        .status(0)
        .run();
    json(&out).as_array().unwrap().clone()
}

/// The job `name` as JOBSTATUS shows it.
pub(crate) fn job(clock: &Clock, w: &World, name: &str) -> Value {
    let out = clock.test(w, "JOBSTATUS").status(0).run();
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no job {name}"))
}

pub(crate) fn job_count(w: &World) -> i64 {
    w.store().i64("SELECT count(*) FROM jobs", &[])
}

#[test]
fn a_process_job_runs_once_with_its_args_and_its_output_is_kept() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T10:00:00Z");
    clock
        .test(
            &w,
            r#"STARTJOB PROCESS NAME='hello' COMMAND='/bin/echo' ARGS='{"0":"hi","1":"there"}'"#,
        )
        .status(0)
        .stdout_contains("job PROCESS hello started: it runs now")
        .run();
    tick_ok(&clock, &w);
    // Nothing is due any more: a second tick runs nothing.
    tick_ok(&clock, &w);
    let r = runs(&clock, &w, "hello");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["status"], "PROCESSED");
    assert_eq!(r[0]["output"], "hi there\n");
    assert_eq!(r[0]["due_time"], "2026-12-07T10:00:00Z");
    assert_eq!(job(&clock, &w, "hello")["status"], "PROCESSED");
}

#[test]
fn a_process_job_whose_program_is_missing_fails_with_the_reason() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T10:00:00Z");
    clock
        .test(
            &w,
            "STARTJOB PROCESS NAME='ghost' COMMAND='/no/such/program'",
        )
        .status(0)
        .run();
    let (code, err) = finish(clock.tick(&w));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("job PROCESS ghost")
            && err.contains("cannot start the program /no/such/program"),
        "{err}"
    );
    let r = runs(&clock, &w, "ghost");
    assert_eq!(r[0]["status"], "FAILED");
    assert!(
        r[0]["error"].as_str().unwrap().contains("No such file"),
        "{r:?}"
    );
    let j = job(&clock, &w, "ghost");
    assert_eq!(j["status"], "FAILED");
    assert!(
        j["notes"].as_str().unwrap().contains("the last run FAILED"),
        "{j}"
    );
}

#[test]
fn a_process_job_is_killed_at_its_timeout_and_its_exit_code_is_kept() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T10:00:00Z");
    clock
        .test(
            &w,
            r#"STARTJOB PROCESS NAME='slow' COMMAND='sleep' ARGS='{"0":"30"}' TIMEOUT='300ms';
               STARTJOB PROCESS NAME='three' COMMAND='sh' ARGS='{"0":"-c","1":"echo out; echo err >&2; exit 3"}'"#,
        )
        .status(0)
        .run();
    let started = std::time::Instant::now();
    let (code, err) = finish(clock.tick(&w));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(code, Some(1), "{err}");
    let slow = &runs(&clock, &w, "slow")[0];
    assert_eq!(slow["status"], "FAILED");
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .contains("killed at its TIMEOUT"),
        "{slow}"
    );
    let three = &runs(&clock, &w, "three")[0];
    assert_eq!(three["status"], "FAILED");
    assert_eq!(three["output"], "out\n");
    assert!(
        three["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 3; stderr: err"),
        "{three}"
    );
    let exit: i64 = w.store().i64(
        "SELECT exit_code FROM job_runs JOIN jobs USING (job_no) WHERE name = 'three'",
        &[],
    );
    assert_eq!(exit, 3);
}

#[test]
fn a_run_missed_for_three_days_fires_once_and_says_it_was_late() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-01T10:00:30Z");
    clock
        .test(&w, "SCHEDULE hourly CRON '0 * * * *' DO BATCH_LIST")
        .status(0)
        .stdout_contains("its first run is at 2026-12-01 11:00:00")
        .run();
    // Nothing ran for three days.
    clock.set("2026-12-04T11:00:05Z");
    tick_ok(&clock, &w);
    tick_ok(&clock, &w);
    let r = runs(&clock, &w, "hourly");
    assert_eq!(r.len(), 1, "one run, not one per missed hour: {r:?}");
    assert_eq!(r[0]["status"], "PROCESSED");
    // The latest due time that came stands for the 72 before it.
    assert_eq!(r[0]["due_time"], "2026-12-04T11:00:00Z");
    let j = job(&clock, &w, "hourly");
    let notes = j["notes"].as_str().unwrap();
    assert!(notes.contains("started 5 s late"), "{notes}");
    assert!(notes.contains("72 earlier due times"), "{notes}");
    assert_eq!(j["next_run"], "2026-12-04T12:00:00Z");
    assert_eq!(j["status"], "SCHEDULED");
}

#[test]
fn eight_ticks_and_two_workers_fire_one_run_per_due_time_every_round() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T00:00:30Z");
    clock
        .test(
            &w,
            "STARTJOB PROCESS NAME='every_minute' COMMAND='true' EXEC_INTERVAL='* * * * *'",
        )
        .status(0)
        .run();
    let workers = [clock.worker(&w, "w1"), clock.worker(&w, "w2")];
    const ROUNDS: usize = 50;
    for round in 1..=ROUNDS {
        // The clock moves to just after the next due time; 8 ticks start
        // at once, and both workers look at the same moment.
        let due = format!("2026-12-07T{:02}:{:02}:00Z", round / 60, round % 60);
        clock.set(&format!(
            "2026-12-07T{:02}:{:02}:00.5Z",
            round / 60,
            round % 60
        ));
        let ticks: Vec<Child> = (0..8).map(|_| clock.tick(&w)).collect();
        for t in ticks {
            let (code, err) = finish(t);
            assert_eq!(code, Some(0), "{err}");
            assert!(!err.contains("locked"), "{err}");
        }
        eventually(&format!("the run due at {due} to end"), || {
            w.store().i64(
                "SELECT count(*) FROM job_runs WHERE due = ?1 AND status = 'PROCESSED'",
                &[&due.replace("Z", ".000Z")],
            ) == 1
        });
        let runs: i64 = w.store().i64("SELECT count(*) FROM job_runs", &[]);
        assert_eq!(runs as usize, round, "round {round}: one run per due time");
    }
    for c in workers {
        signal_pid(i64::from(c.id()), "-TERM");
        let (code, err) = finish(c);
        assert_eq!(code, Some(0), "{err}");
        assert!(!err.contains("locked"), "{err}");
    }
    let distinct: i64 = w
        .store()
        .i64("SELECT count(DISTINCT due) FROM job_runs", &[]);
    assert_eq!(distinct as usize, ROUNDS);
}

#[test]
fn an_interval_job_that_runs_longer_than_its_interval_never_overlaps() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T10:00:00Z");
    // Each run takes 600 ms of real time; the interval is 1 s of the
    // test's clock, which moves 10 s at every look below.
    let script = w.path().join("run.sh");
    std::fs::write(
        &script,
        "mkdir lock 2>/dev/null || echo overlap >> overlaps\nsleep 0.6\nrmdir lock\necho run >> runs\n",
    )
    .unwrap();
    clock
        .test(
            &w,
            &format!(
                "STARTJOB PROCESS NAME='long' COMMAND='sh' ARGS='{{\"0\":\"{}\"}}' EXEC_INTERVAL='00:00:01'",
                script.display()
            ),
        )
        .status(0)
        .run();
    let worker = clock.worker(&w, "w1");
    for k in 1..=12 {
        clock.set(&format!(
            "2026-12-07T10:{:02}:{:02}Z",
            k * 10 / 60,
            k * 10 % 60
        ));
        let ticks: Vec<Child> = (0..2).map(|_| clock.tick(&w)).collect();
        for t in ticks {
            let (code, err) = finish(t);
            assert_eq!(code, Some(0), "{err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    signal_pid(i64::from(worker.id()), "-TERM");
    let (code, err) = finish(worker);
    assert_eq!(code, Some(0), "{err}");
    assert!(!w.path().join("overlaps").exists(), "two runs overlapped");
    // Runs one after another: each starts after the one before ended
    // (the store's times, to the millisecond).
    let spans: Vec<(String, String)> = w
        .store()
        .rows(
            "SELECT start_time, end_time FROM job_runs ORDER BY due",
            &[],
        )
        .iter()
        .map(|r| {
            (
                r["start_time"].as_str().unwrap().to_string(),
                r["end_time"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(spans.len() >= 3, "{spans:?}");
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "{pair:?}");
    }
}

#[test]
fn a_tick_killed_mid_run_leaves_a_failed_run_and_the_next_due_time_runs() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T10:00:30Z");
    clock
        .test(
            &w,
            r#"STARTJOB PROCESS NAME='nap' COMMAND='sleep' ARGS='{"0":"30"}' EXEC_INTERVAL='*/5 * * * *'"#,
        )
        .status(0)
        .run();
    clock.set("2026-12-07T10:05:01Z");
    let tick = clock.tick(&w);
    eventually("the run to start", || {
        job(&clock, &w, "nap")["status"] == "IN_PROCESS"
    });
    signal_pid(i64::from(tick.id()), "-KILL");
    let _ = finish(tick);
    // The next tick, at the same time, takes the dead tick's run back (it
    // is not run again for its due time) and fires nothing.
    let (code, err) = finish(clock.tick(&w));
    assert_eq!(code, Some(0), "{err}");
    let r = runs(&clock, &w, "nap");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["status"], "FAILED");
    assert!(
        r[0]["error"]
            .as_str()
            .unwrap()
            .contains("ended before the run did"),
        "{r:?}"
    );
    assert_eq!(job(&clock, &w, "nap")["next_run"], "2026-12-07T10:10:00Z");
    // The next due time runs as usual (a short run this time).
    clock
        .test(
            &w,
            "UPDATEJOB PROCESS NAME='nap' EXEC_INTERVAL='*/5 * * * *'",
        )
        .status(0)
        .run();
    w.store().execute(
        "UPDATE jobs SET args = '{\"0\":\"0\"}' WHERE name = 'nap'",
        &[],
    );
    clock.set("2026-12-07T10:10:01Z");
    tick_ok(&clock, &w);
    let r = runs(&clock, &w, "nap");
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["status"], "PROCESSED");
    assert_eq!(r[0]["due_time"], "2026-12-07T10:10:00Z");
}

#[test]
fn a_statement_job_queues_its_batch_and_its_run_follows_the_batch() {
    let w = World::new(20);
    let clock = Clock::new(&w, "2026-12-07T10:00:00Z");
    clock
        .test(
            &w,
            "STARTJOB STATEMENT NAME='sync' COMMAND=$$ BATCH Customer FABRIC_COMMAND=\"echo ?\" $$",
        )
        .status(0)
        .run();
    let worker = clock.worker(&w, "w1");
    eventually("the run to end", || {
        runs(&clock, &w, "sync")
            .first()
            .is_some_and(|r| r["status"] == "PROCESSED")
    });
    signal_pid(i64::from(worker.id()), "-TERM");
    let _ = finish(worker);
    let r = &runs(&clock, &w, "sync")[0];
    let bid = r["output"].as_str().unwrap();
    assert_eq!(w.status(bid), "DONE");
    assert_eq!(w.counter(bid, "total"), 20);
}

#[test]
fn stop_resume_restart_and_update_change_a_job_as_asked() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T10:00:30Z");
    clock
        .test(&w, "SCHEDULE nightly CRON '0 2 * * *' DO BATCH_LIST")
        .status(0)
        .run();
    clock
        .test(&w, "RESUMEJOB STATEMENT NAME='nightly' UID=''")
        .status(1)
        .stderr_contains("is SCHEDULED, not stopped")
        .run();
    clock
        .test(&w, "STOPJOB STATEMENT NAME='nightly'")
        .status(0)
        .stdout_contains("stopped")
        .run();
    assert_eq!(job(&clock, &w, "nightly")["status"], "TERMINATED");
    // A stopped job is not fired.
    clock.set("2026-12-08T02:00:01Z");
    tick_ok(&clock, &w);
    assert!(runs(&clock, &w, "nightly").is_empty());
    clock
        .test(&w, "RESUMEJOB STATEMENT NAME='nightly' UID=''")
        .status(0)
        .run();
    assert_eq!(
        job(&clock, &w, "nightly")["next_run"],
        "2026-12-09T02:00:00Z"
    );
    clock
        .test(&w, "RESTARTJOB STATEMENT NAME='nightly'")
        .status(0)
        .stdout_contains("it runs now")
        .run();
    tick_ok(&clock, &w);
    assert_eq!(runs(&clock, &w, "nightly").len(), 1);
    // Again, at the same moment: a run of its own (a millisecond later),
    // not one refused for a due time that ran.
    clock
        .test(&w, "RESTARTJOB STATEMENT NAME='nightly'")
        .status(0)
        .run();
    tick_ok(&clock, &w);
    assert_eq!(runs(&clock, &w, "nightly").len(), 2);
    assert_eq!(job(&clock, &w, "nightly")["status"], "SCHEDULED");
    clock
        .test(
            &w,
            "UPDATEJOB STATEMENT NAME='nightly' EXEC_INTERVAL='0 3 * * *' AFFINITY='w9'",
        )
        .status(0)
        .run();
    let j = job(&clock, &w, "nightly");
    assert_eq!(j["next_run"], "2026-12-08T03:00:00Z");
    assert_eq!(j["affinity"], "w9");
    // SHOW SCHEDULES shows it; DROP SCHEDULE removes it with its runs.
    let out = clock.test(&w, "SHOW SCHEDULES").status(0).run();
    assert_eq!(json(&out)[0]["schedule"], "0 3 * * *");
    clock.test(&w, "DROP SCHEDULE nightly").status(0).run();
    assert_eq!(job_count(&w), 0);
}

#[test]
fn refused_job_statements_store_nothing() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T10:00:30Z");
    let refused = |script: &str, message: &str| {
        clock
            .test(&w, script)
            .status(1)
            .stderr_contains(message)
            .run();
        assert_eq!(job_count(&w), 0, "{script}");
    };
    refused("SCHEDULE s CRON '61 * * * *' DO BATCH_LIST", "minute");
    refused("SCHEDULE s CRON '30 2 30 2 *' DO BATCH_LIST", "never");
    refused(
        "SCHEDULE s AT '2026-12-01 02:00:00' DO BATCH_LIST",
        "in the past",
    );
    refused("SCHEDULE s EVERY '00:00:00' DO BATCH_LIST", "EVERY");
    // A local time the clocks skip (Berlin, spring 2027).
    clock
        .test(&w, "SCHEDULE s AT '2027-03-28 02:30:00' DO BATCH_LIST")
        .env("TZ", "Europe/Berlin")
        .status(1)
        .stderr_contains("does not exist: that night the clocks go forward")
        .run();
    assert_eq!(job_count(&w), 0);
    refused(
        "STARTJOB STATEMENT NAME='x' COMMAND=$$ BATCH Nobody FABRIC_COMMAND=\"echo ?\" $$",
        "no LU named Nobody",
    );
    refused(
        "STARTJOB PROCESS NAME='x' COMMAND='/bin/true' ARGS='[1,2]'",
        "ARGS",
    );
    refused(
        "STOPJOB STATEMENT NAME='nightlee'",
        "no STATEMENT job named nightlee",
    );
    refused(
        "RESUMEJOB PROCESS NAME='x' UID='u1'",
        "no PROCESS job named x",
    );
    refused("SCHEDULE s EVERY '1m' DO SET FORMAT json", "session");
    // A name that exists is refused, and the first job stays as it was.
    clock
        .test(&w, "SCHEDULE nightly CRON '0 2 * * *' DO BATCH_LIST")
        .status(0)
        .run();
    clock
        .test(&w, "SCHEDULE nightly CRON '0 5 * * *' DO BATCH_LIST")
        .status(1)
        .stderr_contains("exists already")
        .run();
    clock
        .test(&w, "STOPJOB STATEMENT NAME='nightlee'")
        .status(1)
        .stderr_contains("did you mean nightly?")
        .run();
    assert_eq!(
        job(&clock, &w, "nightly")["next_run"],
        "2026-12-08T02:00:00Z"
    );
}

/// The example of `examples/`: schedules.bsh makes a nightly sync and a
/// weekly purge; at 02:00 a tick fires the sync, whose batch a worker runs.
#[test]
fn the_schedules_example_syncs_every_night() {
    let w = World::new(1);
    let clock = Clock::new(&w, "2026-12-07T12:00:00Z");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/schedules.bsh");
    let out = knobs(&clock)
        .into_iter()
        .fold(
            Test::new()
                .current_dir(w.path())
                .args(["--home", w.home().to_str().unwrap(), "--format", "json"])
                .arg(script.to_str().unwrap()),
            |t, (k, v)| t.env(k, &v),
        )
        .status(0)
        .run();
    assert!(
        out.stdout.contains("\"next_run\":\"2026-12-08T02:00:00Z\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"next_run\":\"2026-12-13T03:00:00Z\""),
        "{}",
        out.stdout
    );
    clock.set("2026-12-08T02:00:10Z");
    let worker = clock.worker(&w, "w1");
    eventually("the nightly sync to end", || {
        runs(&clock, &w, "nightly_sync")
            .first()
            .is_some_and(|r| r["status"] == "PROCESSED")
    });
    signal_pid(i64::from(worker.id()), "-TERM");
    let _ = finish(worker);
    let bid = runs(&clock, &w, "nightly_sync")[0]["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.status(&bid), "DONE");
    assert_eq!(
        job(&clock, &w, "nightly_sync")["next_run"],
        "2026-12-09T02:00:00Z"
    );
    // The purge waits for Sunday.
    assert!(runs(&clock, &w, "weekly_purge").is_empty());
}

/// BATCH_PURGE as a scheduled job: its run's output is what it deleted.
#[test]
fn a_scheduled_purge_deletes_old_batches() {
    let w = World::new(3);
    let clock = Clock::new(&w, "2026-12-07T10:00:00Z");
    clock
        .test(&w, "BATCH Customer FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let bid = w.last_bid();
    clock
        .test(
            &w,
            "SCHEDULE purge EVERY '1.00:00:00' DO BATCH_PURGE OLDER_THAN='0s'",
        )
        .status(0)
        .run();
    tick_ok(&clock, &w);
    let r = &runs(&clock, &w, "purge")[0];
    assert_eq!(r["status"], "PROCESSED");
    let output: Value = serde_json::from_str(r["output"].as_str().unwrap()).unwrap();
    assert_eq!(output[0]["id"], bid.as_str());
    assert_eq!(w.batch_count(), 0);
    assert_eq!(job(&clock, &w, "purge")["next_run"], "2026-12-08T10:00:00Z");
}

/// A worker that drains (SIGTERM) while a STATEMENT run waits for its
/// batch leaves the run: the batch goes on in another worker, and the run
/// ends with it, PROCESSED, not FAILED; the job is not due meanwhile.
#[test]
fn a_drained_worker_leaves_its_statement_run_to_end_with_its_batch() {
    let w = World::new(40);
    let clock = Clock::new(&w, "2026-12-07T10:00:00Z");
    clock
        .test(
            &w,
            "STARTJOB STATEMENT NAME='sync' COMMAND=$$ BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2 $$",
        )
        .status(0)
        .run();
    let first = clock.worker(&w, "w1");
    eventually("the batch to be under way", || {
        runs(&clock, &w, "sync")
            .first()
            .is_some_and(|r| r["output"].is_string())
    });
    signal_pid(i64::from(first.id()), "-TERM");
    let (code, err) = finish(first);
    assert_eq!(code, Some(0), "{err}");
    let run = &runs(&clock, &w, "sync")[0];
    assert_eq!(run["status"], "IN_PROCESS", "{run}");
    let bid = run["output"].as_str().unwrap().to_string();
    // Another worker finishes the batch, and the run with it.
    let second = clock.worker(&w, "w2");
    eventually("the run to end with its batch", || {
        runs(&clock, &w, "sync")[0]["status"] != "IN_PROCESS"
    });
    signal_pid(i64::from(second.id()), "-TERM");
    let _ = finish(second);
    let r = runs(&clock, &w, "sync");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["status"], "PROCESSED", "{r:?}");
    assert_eq!(w.status(&bid), "DONE");
}
