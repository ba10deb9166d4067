//! Synchronous BATCH through the real binary: sources, commands, outcomes,
//! retries, failure limits, exit codes, control from another process, and
//! crash safety with a real kill -9.

use crate::common::Test;
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
        let out = w.run(crate::common::CRM_CUSTOMER_LU);
        assert_eq!(out.code, 0, "{}", out.stderr);
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
    fn refused(&self, script: &str, message: &str) -> crate::common::Output {
        let out = self.run(script);
        assert_eq!(out.code, 1, "{script}: {}", out.stderr);
        assert!(
            out.stderr.starts_with(&format!("error: {message}")),
            "{script}: {}",
            out.stderr
        );
        out
    }

    /// `out` is a run whose last batch ended FAILED (exit 1) with an error
    /// that holds `why`.
    #[track_caller]
    fn assert_last_failed(&self, out: &crate::common::Output, why: &str) {
        assert_eq!(out.code, 1, "{}", out.stderr);
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

    /// The store, read directly: what a crash left behind.
    pub(crate) fn store(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.home().join("store.db")).unwrap();
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        c
    }

    /// How many batches the store holds.
    pub(crate) fn batch_count(&self) -> i64 {
        self.store()
            .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
            .unwrap()
    }

    pub(crate) fn query_i64(&self, sql: &str, bid: &str) -> i64 {
        self.store().query_row(sql, [bid], |r| r.get(0)).unwrap()
    }

    pub(crate) fn status(&self, bid: &str) -> String {
        self.store()
            .query_row("SELECT status FROM batches WHERE bid = ?1", [bid], |r| {
                r.get(0)
            })
            .unwrap()
    }

    /// The batch's recorded error.
    pub(crate) fn error(&self, bid: &str) -> String {
        self.store()
            .query_row("SELECT error FROM batches WHERE bid = ?1", [bid], |r| {
                r.get(0)
            })
            .unwrap()
    }

    pub(crate) fn last_bid(&self) -> String {
        self.store()
            .query_row(
                "SELECT bid FROM batches ORDER BY creation_time DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// `BATCH_RETRY` finishes the batch: exit 0, DONE, counters that add up.
    pub(crate) fn retry_to_done(&self, bid: &str) {
        let out = self.run(&format!("BATCH_RETRY '{bid}'"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(self.status(bid), "DONE");
        self.assert_counters_add_up(bid);
    }

    /// total = waiting + in process + completed + failed + cancelled, and
    /// the counters match the entity rows (with the entities claimed as
    /// they arrived that have no row yet, `batch_claimed`: IN_PROCESS).
    pub(crate) fn assert_counters_add_up(&self, bid: &str) {
        let c = self.store();
        let (total, sum): (i64, i64) = c
            .query_row(
                "SELECT total, waiting + in_process + completed + failed + cancelled FROM batches WHERE bid = ?1",
                [bid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(total, sum, "counters do not add up");
        let rows: i64 = c
            .query_row(
                "SELECT (SELECT count(*) FROM batch_entities WHERE batch = b.batch_no)
                      + (SELECT count(*) FROM batch_claimed WHERE batch = b.batch_no)
                 FROM batches AS b WHERE bid = ?1",
                [bid],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(total, rows, "total differs from the entity rows");
        for status in ["WAITING", "IN_PROCESS", "COMPLETED", "FAILED", "CANCELLED"] {
            let col = status.to_ascii_lowercase();
            let (counter, actual): (i64, i64) = c
                .query_row(
                    &format!(
                        "SELECT {col}, (SELECT count(*) FROM batch_entities WHERE batch = b.batch_no AND status = '{status}')
                             + CASE '{status}' WHEN 'IN_PROCESS'
                                 THEN (SELECT count(*) FROM batch_claimed WHERE batch = b.batch_no) ELSE 0 END
                         FROM batches AS b WHERE bid = ?1"
                    ),
                    [bid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(counter, actual, "{status} counter");
        }
    }
}

pub(crate) fn result_row(stdout: &str) -> Value {
    let line = stdout.lines().last().expect("a result line");
    let v: Value = serde_json::from_str(line).unwrap();
    v[0].clone()
}

#[test]
fn echo_over_listed_ids() {
    let w = World::new(0);
    let out = w.run("BATCH Customer.('1', '2', '2', 3) FABRIC_COMMAND='echo ?'");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = result_row(&out.stdout);
    // Duplicates are processed once.
    assert_eq!(r["total"], 3);
    assert_eq!(r["execution_succeeded"], 3);
    assert_eq!(r["execution_failed"], 0);
    let bid = r["batch_id"].as_str().unwrap().to_string();
    assert_eq!(w.status(&bid), "DONE");
    let res: String = w
        .store()
        .query_row(
            "SELECT result FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '3'",
            [&bid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(res, r#"{"echo":"3"}"#);
    w.assert_counters_add_up(&bid);
}

#[test]
fn root_query_group_and_using_sources() {
    let w = World::new(50);
    let out = w.run("BATCH Customer FABRIC_COMMAND='echo ?'");
    assert_eq!(result_row(&out.stdout)["total"], 50, "{}", out.stderr);
    let out = w.run(
        "CREATE INSTANCE GROUP Customer.small USING ('select id from customer where id <= 5');
         BATCH Customer.small FABRIC_COMMAND='echo ?'",
    );
    assert_eq!(result_row(&out.stdout)["total"], 5, "{}", out.stderr);
    let out = w.run(
        "BATCH Customer FROM crm USING ('select id from customer where id > ? and id <= ?')
             FABRIC_COMMAND='echo ?' WITH BIND_PARAMS='10,14'",
    );
    assert_eq!(result_row(&out.stdout)["total"], 4, "{}", out.stderr);
    let out = w.run(
        "BATCH Customer FROM crm USING ('select id from customer where id = 0') FABRIC_COMMAND='echo ?'",
    );
    // An empty entity set is not an error.
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(result_row(&out.stdout)["total"], 0);
}

#[test]
fn failed_entities_make_exit_code_3_and_keep_their_error() {
    let w = World::new(10);
    // Ids ending in 3, 6 or 9 fail.
    let out = w.run("BATCH Customer FABRIC_COMMAND=\"shell 'case ? in *[369]) exit 1;; esac'\"");
    assert_eq!(out.code, 3, "{}", out.stderr);
    let r = result_row(&out.stdout);
    assert_eq!(r["execution_failed"], 3);
    assert_eq!(r["execution_succeeded"], 7);
    let bid = r["batch_id"].as_str().unwrap();
    assert_eq!(w.status(bid), "DONE");
    let err: String = w
        .store()
        .query_row(
            "SELECT error FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '3'",
            [bid],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.starts_with("exit code 1"), "{err}");
    w.assert_counters_add_up(bid);
}

#[test]
fn retries_run_a_failed_entity_again_until_it_succeeds() {
    let w = World::new(0);
    // Fails on the first attempt of each id, succeeds on the second.
    let out = w.run(
        "BATCH Customer.('a', 'b') FABRIC_COMMAND=\"shell 'f=tries-?; if [ -e $f ]; then exit 0; fi; touch $f; exit 1'\"
         WITH MAX_RETRIES=2 RETRY_DELAY='10ms'",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bid = result_row(&out.stdout)["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let attempts = w.query_i64(
        "SELECT sum(attempts) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
        &bid,
    );
    assert_eq!(attempts, 4);
    w.assert_counters_add_up(&bid);
}

#[test]
fn max_failures_stops_the_batch_as_failed() {
    let w = World::new(200);
    let out = w.run("BATCH Customer FABRIC_COMMAND=\"shell 'exit 1 # ?'\" WITH MAX_FAILURES=5 MAX_WORKERS_PER_NODE=1");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    // The 6th failure stops it; the one worker may have started a 7th.
    let failed = w.query_i64("SELECT failed FROM batches WHERE bid = ?1", &bid);
    assert!((6..=7).contains(&failed), "failed = {failed}");
    let error = w.error(&bid);
    assert!(error.contains("MAX_FAILURES=5"), "{error}");
    w.assert_counters_add_up(&bid);
    assert!(
        out.stderr
            .contains("ended FAILED: more entities failed than MAX_FAILURES=5"),
        "{}",
        out.stderr
    );
}

/// A share is of the batch's entities as far as they are known, not of
/// the few stored when the first entities fail: with a third of 300
/// failing, 10% stops the batch at its 31st failure (plus the failures of
/// entities the two workers started before the writer saw it), not at its
/// first, nor at its 100th.
#[test]
fn max_failures_as_a_share_stops_at_that_share_of_the_batch() {
    let w = World::new(300);
    let out = w.run(
        "BATCH Customer FABRIC_COMMAND=\"shell 'test $(expr ? % 3) -ne 0'\"
         WITH MAX_FAILURES='10%' MAX_WORKERS_PER_NODE=2",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    let failed = w.query_i64("SELECT failed FROM batches WHERE bid = ?1", &bid);
    assert!((31..=45).contains(&failed), "failed = {failed}");
    assert!(w.error(&bid).contains("MAX_FAILURES=10%"));
    w.assert_counters_add_up(&bid);
}

#[test]
fn a_failing_source_query_fails_the_batch_with_the_database_message() {
    let w = World::new(3);
    let out =
        w.run("BATCH Customer FROM crm USING ('select id from nowhere') FABRIC_COMMAND='echo ?'");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    let error = w.error(&bid);
    assert!(error.contains("no such table: nowhere"), "{error}");
    // It started (to read its ids) and ended: both times are recorded.
    assert_eq!(
        w.query_i64(
            "SELECT start_time IS NOT NULL AND end_time >= start_time FROM batches WHERE bid = ?1",
            &bid
        ),
        1
    );
    // The run says why, not only the stored row.
    assert!(
        out.stderr
            .contains(&format!("error: batch {bid} ended FAILED: ")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("no such table: nowhere"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_batch_that_ends_failed_stops_the_script_unless_keep_going() {
    let w = World::new(3);
    let script = "BATCH Customer FROM crm USING ('select id from nowhere') FABRIC_COMMAND='echo ?';
                  BATCH Customer FABRIC_COMMAND='echo ?'; BATCH_LIST STATUS='ALL'";
    let out = w.run(script);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // The failed batch's row, and nothing after it.
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("note: the 2 statements after it did not run (--keep-going runs them)"),
        "{}",
        out.stderr
    );
    assert_eq!(w.batch_count(), 1);
    let out = Test::new()
        .current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "--format", "json"])
        .args(["--keep-going", "-c", script])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    assert_eq!(w.batch_count(), 3);
    // Still a failed statement when a retry in the same run finishes the
    // batch: the first run of this one stops at its failure (it creates
    // the flag), the retry passes.
    let out = Test::new()
        .current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "--keep-going", "-c"])
        .arg(
            "BATCH Customer.(1) FABRIC_COMMAND=\"shell 'test -e flag || { touch flag; exit 1; }; echo ?'\" \
             WITH MAX_FAILURES=0; BATCH_RETRY",
        )
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("ended FAILED"), "{}", out.stderr);
    assert_eq!(w.status(&w.last_bid()), "DONE");
}

/// A window variable in an `exec` argument has a value only in a named
/// batch, which needs the worker: refused before anything is stored (it
/// would fail every entity); `:bid` works.
#[test]
fn window_variables_in_exec_are_refused_until_named_batches_exist() {
    let w = World::new(2);
    let out = w.run("BATCH Customer FABRIC_COMMAND=\"exec 'echo' ? :from_date\"");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "error: :from_date is a window variable, set only for a named batch (WITH NAME='...'), \
             which needs the worker, not available yet; :bid (the batch's id) is the named parameter a batch has now"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(w.batch_count(), 0);
    let out = w.run("BATCH Customer FABRIC_COMMAND=\"exec 'echo' ? :bid\"");
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Any failing statement, not only a batch that ends FAILED, stops the
/// rest of a script and says how many did not run, after its error.
#[test]
fn a_failing_statement_says_how_many_after_it_did_not_run() {
    let w = World::new(3);
    let out = w.run("GET Customer.999; SHOW LUS; SHOW INTERFACES");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout, "", "{}", out.stdout);
    let error = out.stderr.find("error: ").expect(&out.stderr);
    let note = out
        .stderr
        .find("note: the 2 statements after it did not run (--keep-going runs them)")
        .expect(&out.stderr);
    assert!(error < note, "{}", out.stderr);
    // The last statement failing leaves nothing to say.
    let out = w.run("SHOW LUS; GET Customer.999");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);
}

#[test]
fn bad_ids_fail_alone_and_the_batch_goes_on() {
    let w = World::new(0);
    let long = "x".repeat(1025);
    let out = w.run(&format!(
        "BATCH Customer.('ok', '', '{long}') FABRIC_COMMAND='echo ?'"
    ));
    assert_eq!(out.code, 3, "{}", out.stderr);
    let r = result_row(&out.stdout);
    assert_eq!(r["execution_succeeded"], 1);
    assert_eq!(r["execution_failed"], 2);
    let bid = r["batch_id"].as_str().unwrap();
    w.assert_counters_add_up(bid);
    // Exit code 3 is explained on stderr (what a cron job mails).
    assert_eq!(
        out.stderr,
        format!(
            "warning: batch {bid} ended DONE with 2 of 3 entities FAILED; \
             BATCH_DETAILS '{bid}' STATUS='FAILED' lists them, BATCH_RETRY '{bid}' runs them again \
             (not those whose id is empty, not UTF-8 or too long)\n"
        )
    );
}

/// A bad id is told apart from a good id with the text of its stand-in
/// (`NULL`), duplicates of it count once, and BATCH_RETRY leaves it FAILED
/// instead of giving its stand-in to the command.
#[test]
fn bad_ids_are_not_good_ids_and_stay_failed_on_retry() {
    let w = World::new(0);
    let out = w.run(
        "BATCH Customer FROM crm USING ('select column1 from (values (NULL), (''NULL''), (NULL), (''''), (''ok''), (''''))')
             FABRIC_COMMAND='echo ?'",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 4);
    assert_eq!(r["execution_succeeded"], 2);
    assert_eq!(r["execution_failed"], 2);
    let bid = r["batch_id"].as_str().unwrap().to_string();
    let details = |w: &World| -> Vec<(String, String, Option<String>)> {
        let c = w.store();
        let mut st = c
            .prepare(
                "SELECT entity_id, status, coalesce(error, result) FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) ORDER BY seq",
            )
            .unwrap();
        st.query_map([&bid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let want = [
        ("NULL", "FAILED", "the id is NULL"),
        ("NULL", "COMPLETED", r#"{"echo":"NULL"}"#),
        ("", "FAILED", "the id is empty"),
        ("ok", "COMPLETED", r#"{"echo":"ok"}"#),
    ];
    let want: Vec<(String, String, Option<String>)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), Some(c.to_string())))
        .collect();
    assert_eq!(details(&w), want);

    let out = w.run(&format!("BATCH_RETRY '{bid}'"));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(details(&w), want, "the retry ran a bad id's stand-in");
    w.assert_counters_add_up(&bid);
}

/// Ids that are not UTF-8 are told apart by all their bytes, not by the 64
/// their error message shows: two that differ only past the 64th byte are
/// two failed entities, and a repeat of one of them counts once.
#[test]
fn ids_that_are_not_utf8_stay_apart_whatever_their_length() {
    let w = World::new(0);
    let head = "ff".repeat(69);
    let out = w.run(&format!(
        "BATCH Customer FROM crm USING ('select column1 from (values (x''{head}01''), (x''{head}02''), (x''{head}01''), (''ok''))')
             FABRIC_COMMAND='echo ?'"
    ));
    assert_eq!(out.code, 3, "{}", out.stderr);
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 3);
    assert_eq!(r["execution_succeeded"], 1);
    assert_eq!(r["execution_failed"], 2);
    let bid = r["batch_id"].as_str().unwrap();
    let c = w.store();
    let ids: Vec<String> = c
        .prepare(
            "SELECT entity_id FROM batch_entities WHERE status = 'FAILED'
             AND batch = (SELECT batch_no FROM batches WHERE bid = ?1) ORDER BY seq",
        )
        .unwrap()
        .query_map([bid], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, [format!("x'{head}01'"), format!("x'{head}02'")]);
    w.assert_counters_add_up(bid);
}

#[test]
fn hostile_ids_are_harmless_in_shell_commands() {
    let w = World::new(0);
    // One write per entity: workers append at once, and two writes (the id,
    // then the newline) could interleave.
    let out = w.run(
        "BATCH Customer.('1; touch pwned', '$(touch pwned2)', '`touch pwned3`')
             FABRIC_COMMAND=\"shell 'printf ''%s\\n'' ? >> seen.txt'\"",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!w.path().join(f).exists(), "{f} was created");
    }
    let seen = std::fs::read_to_string(w.path().join("seen.txt")).unwrap();
    let mut lines: Vec<&str> = seen.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec!["$(touch pwned2)", "1; touch pwned", "`touch pwned3`"]
    );
}

#[test]
fn a_placeholder_in_shell_arithmetic_is_refused_before_anything_runs() {
    // bash (sh on some systems) evaluates a variable's value inside $(( ))
    // and runs the command substitution in an id such as a[$(touch x)].
    let w = World::new(0);
    for cmd in [
        "echo $((? + 1))",
        "(( ? > 1 )) && echo big",
        // Inside FABRIC_COMMAND="...", a " is written "".
        "echo \"\"$((? + 1))\"\"",
        "echo $[? + 1]",
    ] {
        let out = w.run(&format!(
            "BATCH Customer.('a[$(touch pwned)]') FABRIC_COMMAND=\"shell '{cmd}'\""
        ));
        assert_eq!(out.code, 1, "{cmd}: {}", out.stderr);
        assert!(
            out.stderr.contains("a ? inside shell arithmetic"),
            "{}",
            out.stderr
        );
        assert!(!w.path().join("pwned").exists());
    }
    assert_eq!(w.batch_count(), 0, "a parse error stores nothing");
}

#[test]
fn options_that_need_the_worker_are_refused_and_nothing_is_stored() {
    let w = World::new(3);
    for opt in ["ASYNC=true", "AFFINITY='n1'", "NAME='x'", "OPEN=true"] {
        let out = w.run(&format!(
            "BATCH Customer FABRIC_COMMAND='echo ?' WITH {opt}"
        ));
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("needs the worker, not available yet"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(w.batch_count(), 0);
    // ASYNC='false' is fine.
    assert_eq!(
        w.run("BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC='false'")
            .code,
        0
    );
}

#[test]
fn explain_counts_and_runs_nothing() {
    let w = World::new(12);
    let out = w.run("EXPLAIN BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_RETRIES=2");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["entities_now"], 12);
    assert_eq!(v["option_max_retries"], "2");
    assert_eq!(v["option_retry_delay"], "'1s' (default)");
    assert_eq!(w.batch_count(), 0);
}

/// More workers than the node has: EXPLAIN and the run say how many run
/// (the node's count), instead of capping them without a word.
#[test]
fn more_workers_than_the_node_has_are_named_with_how_many_run() {
    let w = World::new(3);
    let many = "MAX_WORKERS_PER_NODE=100000";
    let out = w.run(&format!(
        "EXPLAIN BATCH Customer FABRIC_COMMAND='echo ?' WITH {many}"
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let shown = v["option_max_workers_per_node"].as_str().unwrap();
    assert!(
        shown.starts_with("100000 (") && shown.ends_with(" run: the node's worker count)"),
        "{shown}"
    );
    let out = w.run(&format!(
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH {many}"
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("note: MAX_WORKERS_PER_NODE=100000 is more than this node's "),
        "{}",
        out.stderr
    );
    // Within the node's count: nothing to say.
    let out = w.run(
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=1 ALLOW_MULTIPLE=true",
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
}

#[test]
fn on_done_runs_with_the_outcome_in_its_environment() {
    let w = World::new(4);
    let out = w.run(
        "BATCH Customer FABRIC_COMMAND='echo ?'
         WITH ON_DONE='echo $STATUS $TOTAL $SUCCEEDED $FAILED > done.txt'",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(w.path().join("done.txt")).unwrap(),
        "DONE 4 4 0\n"
    );
    // What the hook prints goes to stderr, so stdout stays one JSON
    // document per statement; a hook that fails is reported, and the
    // batch's outcome stands.
    let out =
        w.run("BATCH Customer FABRIC_COMMAND='echo ?' WITH ON_DONE='echo hook says hi; exit 7'");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let row = result_row(&out.stdout);
    assert_eq!(row["total"], 4);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stderr.contains("hook says hi"), "{}", out.stderr);
    assert!(
        out.stderr.contains("ON_DONE of batch") && out.stderr.contains("exit status: 7"),
        "{}",
        out.stderr
    );
}

impl World {
    /// Waits until a batch of this world is IN_PROGRESS.
    pub(crate) fn wait_until_running(&self) {
        eventually("the batch to start", || {
            self.home().join("store.db").exists()
                && self
                    .store()
                    .query_row(
                        "SELECT count(*) FROM batches WHERE status = 'IN_PROGRESS'",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
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

#[test]
fn pause_resume_and_cancel_from_another_process() {
    let w = World::new(400);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let bid = w.last_bid();
    let out = w.run(&format!("BATCH_PAUSE '{}'", &bid[..8]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    eventually("PAUSED", || w.status(&bid) == "PAUSED");
    // Paused: no new entity starts.
    let done_at_pause = w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid);
    std::thread::sleep(Duration::from_millis(300));
    let later = w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid);
    assert!(
        later - done_at_pause <= 4,
        "entities kept starting while paused"
    );
    assert!(
        w.run(&format!("BATCH_PAUSE '{bid}'"))
            .stderr
            .contains("paused already")
    );
    // The same BATCH again is refused, pointing at the resume it waits for.
    let out = w.run("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "batch {bid} with the same command is paused on node "
        )) && out
            .stderr
            .contains(&format!("resume it (BATCH_RESUME '{bid}')")),
        "{}",
        out.stderr
    );
    assert_eq!(w.run(&format!("BATCH_RESUME '{bid}'")).code, 0);
    eventually("IN_PROGRESS again", || w.status(&bid) == "IN_PROGRESS");
    assert_eq!(w.run(&format!("BATCH_CANCEL '{bid}'")).code, 0);
    let out = child.wait_with_output().unwrap();
    // The cancelled batch's own process exits 3 and prints its row.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(w.status(&bid), "CANCELLED");
    w.assert_counters_add_up(&bid);
    let cancelled = w.query_i64("SELECT cancelled FROM batches WHERE bid = ?1", &bid);
    assert!(cancelled > 0);
    // Refusals with a reason.
    let out = w.run(&format!("BATCH_RESUME '{bid}'"));
    assert!(
        out.stderr.contains("it is CANCELLED, not PAUSED"),
        "{}",
        out.stderr
    );
    let out = w.run(&format!("BATCH_RETRY '{bid}'"));
    assert!(
        out.stderr.contains("ALLOW_CANCELLED=true"),
        "{}",
        out.stderr
    );
    let out = w.run(&format!("BATCH_RETRY '{bid}' ALLOW_CANCELLED=true"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(w.status(&bid), "DONE");
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        400
    );
}

#[test]
fn slow_commands_show_the_whole_total_soon_after_the_ids_are_read() {
    // 300 ids of 50 ms at 2 workers: a run of about 7.5 s. The source
    // gives every id at once; they must be stored (the total known, the
    // completion share true) within about a second, not as they are
    // claimed, a few ahead of the workers.
    let w = World::new(300);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 50 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("the total of 300", || {
        w.query_i64("SELECT total FROM batches WHERE bid = ?1", &bid) == 300
    });
    let completed = w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid);
    assert!(
        completed < 150,
        "the total showed only when {completed} of 300 were done"
    );
    let list: Value = serde_json::from_str(&w.run("BATCH_LIST").stdout).unwrap();
    let pct = list[0]["completion_pct"].as_f64().unwrap();
    assert!(pct < 60.0, "BATCH_LIST says {pct}% done");
    assert_eq!(w.run(&format!("BATCH_CANCEL '{bid}'")).code, 0);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    w.assert_counters_add_up(&bid);
}

#[test]
fn an_lu_whose_data_a_running_batch_uses_cannot_be_dropped() {
    let w = World::new(200);
    // The batch's target is Customer, its command writes LU Copy, whose
    // query takes a few milliseconds (the run lasts a few seconds).
    let out = w.run(
        "CREATE LU Copy FROM crm ROOT ('select id from customer') \
         TABLE customer ('select * from customer where id = ? and (with recursive \
         c(x) as (select 1 union all select x + 1 from c where x < 300000) \
         select count(*) from c) > 0')",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut child = w.spawn(
        "BATCH Customer FABRIC_COMMAND='sync_instance Copy.?' \
         WITH MAX_WORKERS_PER_NODE=1 ENTITY_TIMEOUT='1m'",
    );
    w.wait_until_running();
    let bid = w.last_bid();
    for lu in ["Copy", "customer"] {
        let out = w.run(&format!("DROP LU {lu}"));
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("is in use by batch {bid}"))
                && out.stderr.contains(&format!("BATCH_CANCEL '{bid}'")),
            "{}",
            out.stderr
        );
    }
    assert_eq!(w.status(&bid), "IN_PROGRESS", "the batch was still running");
    // Killed, the batch holds nothing: the LU can go.
    child.kill().unwrap();
    child.wait().unwrap();
    let out = w.run("DROP LU Copy");
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Waits until the running batch has `n` COMPLETED entities, then kills
/// its process with SIGKILL: what a crash leaves.
fn kill_9_after(w: &World, mut child: Child, n: i64) {
    eventually("some entities to complete", || {
        w.path().join("home/store.db").exists()
            && w.store()
                .query_row("SELECT coalesce(max(completed), 0) FROM batches", [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap_or(0)
                >= n
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// The ids of the batch's COMPLETED entities.
pub(crate) fn completed_ids(w: &World, bid: &str) -> Vec<String> {
    let c = w.store();
    let mut st = c
        .prepare("SELECT entity_id FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'COMPLETED'")
        .unwrap();
    st.query_map([bid], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Checks, from the ids the command appended to ran.txt, that each of
/// 1..=n ran, and that none of `completed_before` ran twice.
fn assert_none_lost_none_rerun(w: &World, n: usize, completed_before: &[String]) {
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

/// SPEC §7: after kill -9, BATCH_RETRY finishes the batch; no entity that
/// was COMPLETED before the kill runs again; no entity is lost.
#[test]
fn kill_9_then_retry_loses_nothing_and_reruns_no_completed_entity() {
    let w = World::new(300);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.01'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    kill_9_after(&w, child, 40);
    let bid = w.last_bid();
    let completed_before = completed_ids(&w, &bid);
    assert!(!completed_before.is_empty());
    assert_ne!(w.status(&bid), "DONE");

    w.retry_to_done(&bid);
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        300
    );
    assert_none_lost_none_rerun(&w, 300, &completed_before);
}

/// After a kill -9 in a `sync_instance` batch some instances are written
/// to the LU store while their outcomes are not committed yet; the retry
/// runs those entities again (at-least-once) and finds their data already
/// there. They still count as Added: every instance of a batch into an
/// empty LU store is Added once, crash or not.
#[test]
fn a_sync_killed_mid_batch_still_counts_every_instance_added_once() {
    const N: i64 = 20_000;
    for attempt in 1..=3 {
        let w = World::new(N);
        let child = w.spawn(
            "BATCH Customer FABRIC_COMMAND='sync_instance Customer.?' WITH MAX_WORKERS_PER_NODE=2",
        );
        kill_9_after(&w, child, 2_000);
        let bid = w.last_bid();
        assert_ne!(w.status(&bid), "DONE");
        // The instances the killed run wrote whose entities are not
        // COMPLETED: what this test is about.
        let completed: std::collections::HashSet<String> =
            completed_ids(&w, &bid).into_iter().collect();
        // The LU store was empty: every instance in it is this batch's.
        let lu = rusqlite::Connection::open(w.home().join("lu/Customer.db")).unwrap();
        let written: Vec<String> = lu
            .prepare("SELECT id FROM __instances")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let in_flight = written.iter().filter(|id| !completed.contains(*id)).count();
        if in_flight == 0 {
            assert!(
                attempt < 3,
                "no kill caught a written, uncommitted instance"
            );
            continue;
        }
        w.retry_to_done(&bid);
        w.assert_counters_add_up(&bid);
        let count =
            |col: &str| w.query_i64(&format!("SELECT {col} FROM batches WHERE bid = ?1"), &bid);
        assert_eq!(
            (
                count("completed"),
                count("added"),
                count("updated"),
                count("unchanged")
            ),
            (N, N, 0, 0),
            "{in_flight} instances were written before the kill and not COMPLETED"
        );
        return;
    }
}

/// BATCH_IN_PROCESS lists the entities a live process works on, in the
/// spec's columns; after that process is killed, its claimed entities keep
/// their IN_PROCESS status until a retry, but are no longer listed.
#[test]
fn batch_in_process_lists_only_the_entities_of_a_live_process() {
    let w = World::new(20);
    let mut child =
        w.spawn("BATCH Customer FABRIC_COMMAND='sleep 500 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let bid = w.last_bid();
    let listed = || -> Vec<Value> {
        let out = w.run("BATCH_IN_PROCESS");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let rows: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["batch_id"] == bid.as_str())
            .cloned()
            .collect()
    };
    eventually("entities in process", || !listed().is_empty());
    let row = &listed()[0];
    for key in [
        "node_id",
        "batch_id",
        "entity_id",
        "lu",
        "time_at_work_ms",
        "execution_id",
        "command",
    ] {
        assert!(row.get(key).is_some(), "no {key} in {row}");
    }
    assert_eq!(row["lu"], "Customer");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) > 0);
    assert_eq!(
        listed(),
        Vec::<Value>::new(),
        "a dead process's entities are listed"
    );
    w.retry_to_done(&bid);
}

/// A batch paused and then killed: nobody runs it, and the pause asked of
/// the dead process must not pause the run that takes it over. Resuming
/// it runs it here to the end; so does retrying it.
#[test]
fn a_paused_batch_whose_process_died_is_resumed_or_retried_here() {
    for control in ["BATCH_RESUME", "BATCH_RETRY"] {
        let w = World::new(100);
        let child = w.spawn(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" WITH MAX_WORKERS_PER_NODE=2",
        );
        w.wait_until_running();
        let bid = w.last_bid();
        assert_eq!(w.run(&format!("BATCH_PAUSE '{bid}'")).code, 0);
        eventually("PAUSED", || w.status(&bid) == "PAUSED");
        kill_9_after(&w, child, 0);
        let completed_before = completed_ids(&w, &bid);
        let out = w.run(&format!("{control} '{bid}'"));
        assert_eq!(out.code, 0, "{control}: {}", out.stderr);
        assert_eq!(w.status(&bid), "DONE", "{control}");
        assert_eq!(
            w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
            100
        );
        w.assert_counters_add_up(&bid);
        assert_none_lost_none_rerun(&w, 100, &completed_before);
    }
}

/// After a crash (or a reboot) the dead owner's pid may belong to another
/// process by the time the batch is retried. A process that started after
/// the owner's last heartbeat is not the owner: the retry goes ahead.
#[test]
fn a_dead_owners_pid_reused_by_another_process_does_not_block_the_retry() {
    let w = World::new(200);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.01'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    kill_9_after(&w, child, 20);
    let bid = w.last_bid();
    let completed_before = completed_ids(&w, &bid);
    // The pid now runs something else, started a minute after the last
    // heartbeat of the crashed owner.
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    w.store()
        .execute(
            "UPDATE batches SET owner_pid = ?2,
                 heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds')
             WHERE bid = ?1",
            rusqlite::params![bid, other.id()],
        )
        .unwrap();
    w.retry_to_done(&bid);
    other.kill().unwrap();
    other.wait().unwrap();
    assert_none_lost_none_rerun(&w, 200, &completed_before);
}

/// Should another process ever judge a live run dead and take its batch
/// over, the run sees a foreign owner at its next step and stops at once,
/// writing nothing more (no end, no owner cleared): one runner per batch.
#[test]
fn a_run_whose_batch_was_taken_over_stops_at_once() {
    let w = World::new(100);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.05'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || {
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid) >= 5
    });
    // What a takeover writes: another node is the owner now.
    w.store()
        .execute(
            "UPDATE batches SET owner_node = 'other-node', owner_pid = 4242,
                 execution_id = 'the-other-run' WHERE bid = ?1",
            [&bid],
        )
        .unwrap();
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "it did not stop at once"
    );
    assert!(
        stderr.contains("was taken over by node other-node (pid 4242)"),
        "{stderr}"
    );
    let (status, node): (String, Option<String>) = w
        .store()
        .query_row(
            "SELECT status, owner_node FROM batches WHERE bid = ?1",
            [&bid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), node.as_deref()),
        ("IN_PROGRESS", Some("other-node"))
    );
    assert!(w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid) < 100);
    // The "other node" never heartbeats: once it is judged dead, a retry
    // finishes the batch.
    w.store()
        .execute(
            "UPDATE batches SET heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds')
             WHERE bid = ?1",
            [&bid],
        )
        .unwrap();
    w.retry_to_done(&bid);
}

/// Retries of one batch started at the same moment: one runs it, the
/// others are refused, and ON_DONE runs once, with counters that add up.
#[test]
fn retries_started_at_once_run_the_batch_once() {
    let w = World::new(200);
    let out = w.run(
        "BATCH Customer FABRIC_COMMAND=\"shell 'test -f go && echo ? >> ran.txt && sleep 0.02'\"
         WITH MAX_WORKERS_PER_NODE=2 ON_DONE='echo $TOTAL $SUCCEEDED $FAILED >> done.txt'",
    );
    assert_eq!(out.code, 3, "every entity fails first: {}", out.stderr);
    let bid = w.last_bid();
    std::fs::write(w.path().join("go"), "").unwrap();
    std::fs::remove_file(w.path().join("done.txt")).unwrap();
    let retries: Vec<Child> = (0..6)
        .map(|_| w.spawn(&format!("BATCH_RETRY '{bid}'")))
        .collect();
    let outs: Vec<_> = retries
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ran = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    assert_eq!(ran, 1, "exactly one retry runs the batch");
    for o in outs.iter().filter(|o| o.status.code() != Some(0)) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("it is running on node") || err.contains("meanwhile"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(w.path().join("done.txt")).unwrap(),
        "200 200 0\n"
    );
    assert_none_lost_none_rerun(&w, 200, &[]);
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 200, "an entity ran twice");
    w.assert_counters_add_up(&bid);
}

/// Duplicate ids are dropped before they are stored, also when a retry
/// reads the source again after a kill -9 during id generation: the ids
/// stored by the killed run count as seen, so none is stored twice, none
/// is lost, and no COMPLETED one runs again.
#[test]
fn kill_9_during_id_generation_then_retry_stores_no_duplicate() {
    let w = World::new(0);
    // 3,000,000 rows, 1,000 distinct ids: the source is still being read
    // (ids_complete = 0) long after every distinct id is stored.
    let using = "with recursive c(x) as (select 0 union all select x + 1 from c where x < 2999999) \
                 select x % 1000 + 1 from c";
    let child = w.spawn(&format!(
        "BATCH Customer FROM crm USING ('{using}')
             FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.01'\" WITH MAX_WORKERS_PER_NODE=2"
    ));
    kill_9_after(&w, child, 40);
    let bid = w.last_bid();
    assert_eq!(
        w.query_i64("SELECT ids_complete FROM batches WHERE bid = ?1", &bid),
        0,
        "the source was read to its end before the kill: the test shows nothing"
    );
    let completed_before = completed_ids(&w, &bid);
    assert!(!completed_before.is_empty());

    w.retry_to_done(&bid);
    assert_eq!(
        w.query_i64("SELECT total FROM batches WHERE bid = ?1", &bid),
        1000
    );
    assert_eq!(
        w.query_i64(
            "SELECT count(DISTINCT entity_id) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
            &bid
        ),
        1000
    );
    assert_none_lost_none_rerun(&w, 1000, &completed_before);
}

#[test]
fn duplicate_ids_from_a_query_are_processed_once() {
    let w = World::new(50);
    let out = w.run(
        "BATCH Customer FROM crm USING ('select id from customer union all select id from customer
             union all select cast(id as text) from customer where id <= 10')
             FABRIC_COMMAND='echo ?'",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 50);
    assert_eq!(r["execution_succeeded"], 50);
    let bid = r["batch_id"].as_str().unwrap().to_string();
    assert_eq!(
        w.query_i64(
            "SELECT count(DISTINCT entity_id) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
            &bid
        ),
        50
    );
    w.assert_counters_add_up(&bid);
}

/// SQLite skips a temporary folder it cannot use; so does the duplicate
/// check's own file, and duplicates are still dropped.
#[test]
fn a_missing_sqlite_tmpdir_does_not_stop_the_duplicate_check() {
    let w = World::new(20);
    let out = Test::new()
        .current_dir(w.path())
        .env("SQLITE_TMPDIR", "/nonexistent/batchsh-tmp")
        .args([
            "--home",
            w.home().to_str().unwrap(),
            "--format",
            "json",
            "-c",
            "BATCH Customer FROM crm USING ('select id from customer
                 union all select id from customer where id <= 5')
                 FABRIC_COMMAND='echo ?'",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = result_row(&out.stdout);
    assert_eq!(
        (r["total"].as_i64(), r["execution_succeeded"].as_i64()),
        (Some(20), Some(20))
    );
}

#[test]
fn a_second_identical_batch_is_refused_while_one_is_active() {
    let w = World::new(20);
    let mut child =
        w.spawn("BATCH Customer FABRIC_COMMAND='sleep 200 ?' WITH MAX_WORKERS_PER_NODE=1");
    w.wait_until_running();
    let bid = w.last_bid();
    let again = "BATCH Customer FABRIC_COMMAND='sleep 200 ?' WITH MAX_WORKERS_PER_NODE=1";
    let out = w.run(again);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "batch {bid} with the same command is still running on node "
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "wait for it, cancel it (BATCH_CANCEL '{bid}'), or add WITH ALLOW_MULTIPLE=true"
        )),
        "{}",
        out.stderr
    );
    // After a kill -9 no process runs it: the way on is BATCH_RETRY, and
    // the message says so rather than "wait for it".
    child.kill().unwrap();
    child.wait().unwrap();
    let out = w.run(again);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "batch {bid} with the same command was interrupted (IN_PROGRESS, and no process runs it); \
             finish it (BATCH_RETRY '{bid}'), cancel it (BATCH_CANCEL '{bid}'), or add WITH ALLOW_MULTIPLE=true"
        )),
        "{}",
        out.stderr
    );
    // Neither refusal stored a batch.
    assert_eq!(w.batch_count(), 1);
}

/// SPEC §1, §12: Ctrl-C during a synchronous batch in -c mode cancels it
/// gracefully (entities in flight finish), prints its row, exits 130.
#[test]
fn ctrl_c_cancels_gracefully_and_exits_130() {
    let w = World::new(200);
    // The statement after the batch must not run: Ctrl-C stops the script.
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND='sleep 50 ?' WITH MAX_WORKERS_PER_NODE=2;
         BATCH Customer.('after') FABRIC_COMMAND='echo ?';",
    );
    w.wait_until_running();
    eventually("a few entities to complete", || {
        w.query_i64(
            "SELECT completed FROM batches WHERE bid = ?1",
            &w.last_bid(),
        ) >= 2
    });
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "CANCELLED");
    // The summary row was printed, and it says what was done.
    let row = result_row(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(row["batch_id"], bid.as_str());
    let completed = w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid);
    assert!(completed >= 2);
    assert_eq!(row["execution_succeeded"], completed);
    w.assert_counters_add_up(&bid);
    assert_eq!(w.batch_count(), 1, "the script went on after Ctrl-C");
    // Stderr says what the exit code means, and what did not run.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: batch {bid} ended CANCELLED, {completed} of 200 entities done; \
             BATCH_RETRY '{bid}' ALLOW_CANCELLED=true finishes it"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: the 1 statement after it did not run\n"),
        "{stderr}"
    );
}

/// Sends `signal` (a `kill` option: `-TERM`, `-INT`) to a child.
pub(crate) fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM (`timeout`, a shutdown) stops the batch cleanly and leaves it
/// unfinished, not cancelled: the running entities finish and are
/// committed, none is claimed, the batch has no owner, the script stops,
/// and batchsh exits 143. A plain BATCH_RETRY then finishes it, and no
/// entity ran twice: none was lost in flight, unlike after a kill -9.
#[test]
fn sigterm_leaves_the_batch_unfinished_for_retry_and_exits_143() {
    a_stop_signal_leaves_the_batch_unfinished("-TERM", "SIGTERM", 143);
}

/// SIGHUP (the terminal or SSH session of the run was closed) does what
/// SIGTERM does, and batchsh exits 129.
#[test]
fn sighup_leaves_the_batch_unfinished_for_retry_and_exits_129() {
    a_stop_signal_leaves_the_batch_unfinished("-HUP", "SIGHUP", 129);
}

fn a_stop_signal_leaves_the_batch_unfinished(sig: &str, name: &str, code: i32) {
    let w = World::new(200);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" WITH MAX_WORKERS_PER_NODE=2;
         BATCH Customer.('after') FABRIC_COMMAND='echo ?';",
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || {
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid) >= 20
    });
    signal(&child, sig);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("batchsh: {name}: batch {bid} stopped unfinished"))
            && stderr.contains(&format!("BATCH_RETRY '{bid}' finishes it")),
        "{stderr}"
    );
    let note: String = w
        .store()
        .query_row(
            "SELECT note FROM batch_events WHERE bid = ?1 AND note LIKE 'stopped by%'",
            [&bid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(note, format!("stopped by {name}; BATCH_RETRY finishes it"));
    assert_eq!(w.status(&bid), "IN_PROGRESS");
    let (in_process, owner): (i64, Option<i64>) = w
        .store()
        .query_row(
            "SELECT in_process, owner_pid FROM batches WHERE bid = ?1",
            [&bid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((in_process, owner), (0, None));
    w.assert_counters_add_up(&bid);
    let completed = w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid);
    assert!(completed < 200, "the batch was not stopped");
    assert_eq!(w.batch_count(), 1, "the script went on after {name}");
    w.retry_to_done(&bid);
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 200, "an entity ran twice or never");
    assert_none_lost_none_rerun(&w, 200, &[]);
}

/// The terminal of an interactive run closed (an SSH session that
/// dropped): the kernel hangs the terminal up and sends SIGHUP. Writing to
/// that terminal now fails; batchsh still stops cleanly, as for SIGTERM:
/// exit 129, the batch unfinished with no owner and nothing in process,
/// and a retry runs every entity once.
#[test]
fn a_closed_terminal_stops_the_batch_cleanly() {
    use nix::fcntl::OFlag;
    let w = World::new(200);
    // Close-on-exec, so that no child (of this test or of another one
    // running beside it) holds the terminal open when the test closes it.
    let master =
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    let slave_path = nix::pty::ptsname_r(&master).unwrap();
    let slave = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&slave_path)
                .unwrap(),
        )
    };
    // `setsid -c`: batchsh leads a session of its own, with the terminal
    // as its controlling terminal, as a login shell's child would.
    // (`-w`: setsid waits for batchsh, should it have to fork to start
    // the session, and exits with its code.)
    let mut child = Command::new("setsid")
        .args(["-w", "-c"])
        .arg(env!("CARGO_BIN_EXE_batchsh"))
        .args(w.args(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" WITH MAX_WORKERS_PER_NODE=2",
        ))
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .stdin(slave())
        .stdout(slave())
        .stderr(slave())
        .spawn()
        .unwrap();
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || {
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid) >= 20
    });
    // The terminal goes away.
    drop(master);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "batchsh did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(129));
    let (in_process, owner): (i64, Option<i64>) = w
        .store()
        .query_row(
            "SELECT in_process, owner_pid FROM batches WHERE bid = ?1",
            [&bid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((in_process, owner), (0, None));
    assert_eq!(w.status(&bid), "IN_PROGRESS");
    w.retry_to_done(&bid);
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 200, "an entity ran twice or never");
}

/// `timeout`, as in a crontab line: it sends SIGTERM to batchsh and then
/// to its own process group, two signals at once, which are one stop. The
/// entities running finish (they are in process groups of their own, so
/// the group signal does not cut them short), and a retry finishes the
/// batch with every entity run once.
#[test]
fn timeout_stops_the_batch_cleanly() {
    let w = World::new(300);
    let out = Command::new("timeout")
        .current_dir(w.path())
        .args(["1.5", env!("CARGO_BIN_EXE_batchsh")])
        .args(["--home", w.home().to_str().unwrap(), "--format", "json", "-c"])
        .arg(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.05; echo ? >> done.txt'\" \
             WITH MAX_WORKERS_PER_NODE=2",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(124),
        "timeout did not fire: {stderr}"
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    let bid = w.last_bid();
    let (in_process, failed, owner): (i64, i64, Option<i64>) = w
        .store()
        .query_row(
            "SELECT in_process, failed, owner_pid FROM batches WHERE bid = ?1",
            [&bid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((in_process, failed, owner), (0, 0, None));
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    let done = std::fs::read_to_string(w.path().join("done.txt")).unwrap();
    assert_eq!(
        ran.lines().count(),
        done.lines().count(),
        "an entity was cut short"
    );
    w.retry_to_done(&bid);
    assert_none_lost_none_rerun(&w, 300, &[]);
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 300, "an entity ran twice");
}

/// A second SIGTERM well after the first does not wait for the running
/// entities: batchsh kills their commands and ends at once with 143, and
/// the batch is left as after a crash. No command outlives it (to run on
/// beside the retry of its entity).
#[test]
fn a_second_sigterm_ends_batchsh_at_once() {
    let w = World::new(10);
    // Slow until the file `fast` exists (the retry's entities are quick).
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo $$ >> pids.txt; test -f fast || sleep 60 # ?'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("commands at work", || {
        std::fs::read_to_string(w.path().join("pids.txt")).is_ok_and(|p| p.lines().count() >= 2)
    });
    let t = Instant::now();
    signal(&child, "-TERM");
    // Not within the 2 s that make one stop of `timeout`'s two signals.
    std::thread::sleep(Duration::from_millis(2500));
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "it waited for the entities"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "batchsh: SIGTERM, stopping at once: batch {bid} is left unfinished, as after a crash; \
             BATCH_RETRY '{bid}' finishes it, BATCH_CANCEL '{bid}' ends it"
        )),
        "{stderr}"
    );
    // The shells it started are gone (a zombie left to a parent that does
    // not reap counts as gone).
    let pids = std::fs::read_to_string(w.path().join("pids.txt")).unwrap();
    let gone = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    };
    let killed_by = Instant::now() + Duration::from_secs(3);
    while !pids.lines().all(gone) {
        assert!(Instant::now() < killed_by, "a command outlived batchsh");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(w.path().join("fast"), "").unwrap();
    w.retry_to_done(&bid);
}

/// A SIGTERM while a batch's ON_DONE hook runs ends batchsh at once (the
/// batch is over), kills the hook, and says the batch had ended.
#[test]
fn a_sigterm_during_on_done_stops_the_hook_and_says_the_batch_ended() {
    let w = World::new(3);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ON_DONE='echo $$ > hook.pid; exec sleep 60'",
    );
    let pid_file = w.path().join("hook.pid");
    eventually("the hook to run", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    let bid = w.last_bid();
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "batchsh: SIGTERM, stopping at once: batch {bid} had ended DONE; its ON_DONE hook was stopped"
        )),
        "{stderr}"
    );
    assert_eq!(w.status(&bid), "DONE");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let gone = || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    };
    eventually("the hook to be gone", gone);
}

/// A retry re-plans the batch from its stored statement; when what it
/// names is gone, the error says so about the batch, quoting that
/// statement, and points at the retry, not into text the user never typed.
#[test]
fn a_retry_whose_lu_was_dropped_says_so_about_the_batch() {
    let w = World::new(3);
    let out = w.run("BATCH Customer FABRIC_COMMAND=\"shell 'exit 1 # ?'\"");
    assert_eq!(out.code, 3, "{}", out.stderr);
    let bid = w.last_bid();
    assert_eq!(w.run("DROP LU Customer").code, 0);
    let out = w.run(&format!("BATCH_RETRY '{bid}'"));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "error: batch {bid} cannot run again: no LU named Customer"
        )) && out
            .stderr
            .contains("(its statement: BATCH Customer FABRIC_COMMAND="),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(" 1 | BATCH_RETRY '{bid}'")),
        "{}",
        out.stderr
    );
    assert_eq!(w.status(&bid), "DONE", "the failed retry changed the batch");
}

#[test]
fn a_hanging_command_is_killed_by_entity_timeout() {
    let w = World::new(0);
    let out = w.run("BATCH Customer.('1', '2') FABRIC_COMMAND=\"shell 'sleep 30; echo ?'\" WITH ENTITY_TIMEOUT='200ms'");
    assert_eq!(out.code, 3, "{}", out.stderr);
    let bid = result_row(&out.stdout)["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let err: String = w
        .store()
        .query_row(
            "SELECT error FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '1'",
            [&bid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(err, "timed out after 200ms");
}

#[test]
fn entity_timeout_stops_a_slow_sync_instance() {
    // Customer 1's table query counts to 10^9 (tens of seconds); the
    // others' are quick.
    let w = World::new(3);
    let slow = "(with recursive c(x) as (select 1 union all select x + 1 from c \
                where x < 1000000000) select count(*) from c)";
    let out = w.run(&format!(
        "CREATE LU Slow FROM crm ROOT ('select id from customer') \
         TABLE customer ('select * from customer where id = ? and (id <> 1 or {slow} > 0)')"
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let t = Instant::now();
    let out = w.run("BATCH Slow FABRIC_COMMAND='sync_instance Slow.?' WITH ENTITY_TIMEOUT='300ms'");
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let row = result_row(&out.stdout);
    assert_eq!(
        (&row["execution_failed"], &row["added"]),
        (&1.into(), &2.into())
    );
    let bid = row["batch_id"].as_str().unwrap();
    let err: String = w
        .store()
        .query_row(
            "SELECT error FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '1'",
            [bid],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.starts_with("timed out after 300ms"), "{err}");
    let out = w.run("GET Slow.1");
    assert_ne!(out.code, 0, "the instance that timed out was not stored");
}

#[test]
fn a_source_file_that_vanished_fails_the_batch_clearly() {
    let w = World::new(5);
    std::fs::remove_file(w.path().join("crm.db")).unwrap();
    let out = w.run("BATCH Customer FABRIC_COMMAND='echo ?'");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    let error = w.error(&bid);
    assert!(
        error.contains("crm.db") && error.contains("does not exist"),
        "{error}"
    );
}

#[test]
fn unknown_and_ambiguous_bids_are_clear_errors() {
    let w = World::new(0);
    let out = w.run("BATCH_INFO 'nosuchbatch'");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: no batch with id 'nosuchbatch'"),
        "{}",
        out.stderr
    );
    let out = w.run("BATCH_SUMMARY");
    assert!(
        out.stderr
            .starts_with("error: no batch in this session yet"),
        "{}",
        out.stderr
    );
    let out = w.run("BATCH_INFO 'abc'");
    assert!(
        out.stderr.contains("at least 6 characters"),
        "{}",
        out.stderr
    );
    // A typo in a bid, or in its first characters: the batch meant.
    let out = w.run("BATCH Customer.(1) FABRIC_COMMAND='echo ?'");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bid = w.last_bid();
    let typo = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[3] = if c[3] == 'x' { 'y' } else { 'x' };
        c.into_iter().collect::<String>()
    };
    for given in [typo(&bid), typo(&bid[..8])] {
        let out = w.run(&format!("BATCH_INFO '{given}'"));
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.starts_with(&format!(
                "error: no batch with id '{given}' (did you mean '{bid}'?)"
            )),
            "{}",
            out.stderr
        );
    }
    let out = w.run("BATCH_INFO 'ZZZZZZZZ'");
    assert!(
        out.stderr
            .starts_with("error: no batch with id 'ZZZZZZZZ'\n"),
        "what was typed, and no suggestion: {}",
        out.stderr
    );
    // A bid reads the same in capitals.
    let out = w.run(&format!("BATCH_INFO '{}'", bid[..8].to_uppercase()));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// SPEC §11: a store locked by another process is waited for, not
/// reported as corrupt.
#[test]
fn a_locked_store_is_waited_for() {
    let w = World::new(3);
    let holder = w.store();
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE batches SET error = error;")
        .unwrap();
    let child = w.spawn("CREATE INTERFACE other TYPE SQLITE PATH 'crm.db'");
    std::thread::sleep(Duration::from_millis(700));
    holder.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("interface other created"));
}

#[test]
fn batch_edit_lowers_the_workers_of_a_running_batch() {
    let w = World::new(60);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 300 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("both workers busy", || {
        w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) > 2
    });
    let out = w.run(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=1"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // One worker keeps at most two entities claimed (one running, one next).
    eventually("the pipeline to shrink", || {
        w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) <= 2
    });
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(200));
        assert!(w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) <= 2);
    }
    assert_eq!(w.run(&format!("BATCH_CANCEL '{bid}'")).code, 0);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    let out = w.run(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=2"));
    assert!(
        out.stderr.contains("it has ended (CANCELLED)"),
        "{}",
        out.stderr
    );
    // The edit is in the batch's history; BATCH_INFO shows the option given.
    let out = w.run(&format!("BATCH_HISTORY '{bid}'; BATCH_INFO '{bid}'"));
    assert!(
        out.stdout
            .contains("\"note\":\"BATCH_EDIT MAX_WORKERS_PER_NODE=1\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"option_max_workers_per_node\":2"),
        "{}",
        out.stdout
    );
}

#[test]
fn batch_edit_raises_the_workers_up_to_the_nodes_count() {
    // The node's count is the number of cores (2 on CI).
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        return;
    }
    let w = World::new(60);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 300 ?' WITH MAX_WORKERS_PER_NODE=1");
    w.wait_until_running();
    let bid = w.last_bid();
    // One worker keeps at most two entities claimed (one running, one next).
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        assert!(w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) <= 2);
    }
    let out = w.run(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=2"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    eventually("a second worker's claims", || {
        w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) > 2
    });
    assert_eq!(w.run(&format!("BATCH_CANCEL '{bid}'")).code, 0);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    w.assert_counters_add_up(&bid);
}

#[test]
fn sql_commands_write_to_their_interface_per_entity() {
    let w = World::new(30);
    let out = w.run(
        "BATCH Customer FABRIC_COMMAND=\"sql crm 'update customer set name = ''seen'' where id = ?'\"",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(result_row(&out.stdout)["execution_succeeded"], 30);
    let c = rusqlite::Connection::open(w.path().join("crm.db")).unwrap();
    let seen: i64 = c
        .query_row(
            "SELECT count(*) FROM customer WHERE name = 'seen'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seen, 30);
    let res: String = w
        .store()
        .query_row(
            "SELECT result FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '7'",
            [w.last_bid()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(res, r#"{"rows":1}"#);
}

/// Runs as root? (Root writes read-only files, so the read-only tests
/// then run batchsh as the unprivileged user `nobody`.)
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs `script` on the world's store as a user who cannot write what the
/// permissions forbid: this user, or `nobody` when this user is root (the
/// binary is copied where `nobody` can run it).
fn run_unprivileged(w: &World, script: &str) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mut bin = PathBuf::from(env!("CARGO_BIN_EXE_batchsh"));
    let mut cmd;
    if running_as_root() {
        let copy = w.path().join("bin/batchsh");
        if !copy.exists() {
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(&bin, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(
                copy.parent().unwrap(),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        bin = copy;
        cmd = Command::new(&bin);
        cmd.uid(65534).gid(65534);
    } else {
        cmd = Command::new(&bin);
    }
    cmd.current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "-c", script])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// SPEC §11, §13: a store that cannot be written (the file, or its folder
/// where SQLite keeps the -wal and -shm files) is a clear error, for reads
/// and batches alike, and the store is left byte for byte as it was.
#[test]
fn a_read_only_store_is_a_clear_error_and_is_left_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(5);
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    let store = w.home().join("store.db");
    let before = std::fs::read(&store).unwrap();
    mode(w.path(), 0o755).unwrap();
    // The file read-only; then the file writable but its folder not.
    for (file_mode, dir_mode) in [(0o444, 0o755), (0o666, 0o555)] {
        mode(&store, file_mode).unwrap();
        mode(&w.home(), dir_mode).unwrap();
        for script in [
            "BATCH_LIST",
            "BATCH Customer FABRIC_COMMAND='echo ?'",
            "CREATE INTERFACE other TYPE SQLITE PATH 'crm.db'",
        ] {
            let out = run_unprivileged(&w, script);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{script}: {stderr}");
            assert!(
                stderr.contains("cannot write to the store")
                    && stderr.contains("store.db-wal")
                    && stderr.contains("--store"),
                "{script}: {stderr}"
            );
            assert!(!stderr.contains("not a batchsh store"), "{stderr}");
        }
        assert_eq!(std::fs::read(&store).unwrap(), before, "the store changed");
        assert!(!w.home().join("store.db-wal").exists());
    }
    mode(&w.home(), 0o755).unwrap();
    mode(&store, 0o644).unwrap();
    let out = w.run("SHOW INTERFACES");
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// A disk that fills up mid-batch (simulated by a file size limit, which
/// makes the store's writes fail as a full disk does): the batch stops
/// with a clear error and is FAILED with it, nothing committed is lost,
/// and BATCH_RETRY finishes it without running a COMPLETED entity again.
#[test]
fn a_full_disk_fails_the_batch_clearly_and_retry_finishes_it() {
    const N: i64 = 100_000;
    let w = World::new(N);
    let out = Command::new("sh")
        .current_dir(w.path())
        .args([
            "-c",
            // 2048 blocks of 512 bytes: 1 MiB for each file, the store
            // and its write-ahead log, well short of what this batch needs
            // (about 7.5 MB; with 4 MiB each, the two together could hold
            // it). Ignoring SIGXFSZ makes the write fail with EFBIG
            // instead of killing the process.
            "trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_batchsh"),
            "--home",
            w.home().to_str().unwrap(),
            "-c",
            "BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writing the store failed") && stderr.contains("BATCH_RETRY"),
        "{stderr}"
    );
    let bid = w.last_bid();
    // FAILED with the reason; or, when the store file is full too (which
    // one fills first is a race with the checkpointer), left IN_PROGRESS
    // as after a crash, and stderr says that it could not be marked.
    if w.status(&bid) == "FAILED" {
        let error = w.error(&bid);
        assert!(error.contains("writing the store failed"), "{error}");
    } else {
        assert_eq!(w.status(&bid), "IN_PROGRESS");
        assert!(
            stderr.contains(&format!("batch {bid} could not be marked FAILED")),
            "{stderr}"
        );
    }
    w.assert_counters_add_up(&bid);
    let done_before = |c: &rusqlite::Connection| -> Vec<(String, i64, i64)> {
        let mut st = c
            .prepare(
                "SELECT entity_id, end_time_ms, attempts FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'COMPLETED' ORDER BY seq",
            )
            .unwrap();
        st.query_map([&bid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = done_before(&w.store());
    assert!(
        (before.len() as i64) < N,
        "the batch finished under the limit"
    );

    w.retry_to_done(&bid);
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        N
    );
    // Every entity COMPLETED before the failure kept its row: same end
    // time, same attempt: it did not run again.
    let after: std::collections::HashMap<String, (i64, i64)> = done_before(&w.store())
        .into_iter()
        .map(|(id, end, attempts)| (id, (end, attempts)))
        .collect();
    for (id, end, attempts) in &before {
        assert_eq!(after.get(id), Some(&(*end, *attempts)), "entity {id}");
    }
}

/// The README's first command: the quickstart runs on a fresh home from
/// the repository's root, exits 0, and shows what its comments promise.
/// Twice: it is meant to run again and again.
#[test]
fn the_quickstart_runs_and_shows_what_it_says() {
    let home = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for run in 1..=2 {
        let out = Test::new()
            .current_dir(root)
            .args(["--home", home.path().to_str().unwrap(), "--format", "json"])
            .arg("examples/quickstart.bsh")
            .run();
        assert_eq!(out.code, 0, "run {run}: {}", out.stderr);
        let rows: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v[0].get("execution_succeeded").is_some())
            .map(|v| v[0].clone())
            .collect();
        let counts = |r: &Value| {
            ["total", "execution_failed", "added", "updated", "unchanged"]
                .map(|k| r[k].as_i64().unwrap())
        };
        // v1 synced (all Added the first time), v2 (20 moved tier), the
        // broken source, its retry, the gold group through `shell`.
        let first = if run == 1 {
            [300, 0, 300, 0, 0]
        } else {
            [300, 0, 0, 20, 280]
        };
        assert_eq!(counts(&rows[0]), first, "run {run}");
        assert_eq!(counts(&rows[1]), [300, 0, 0, 20, 280], "run {run}");
        assert_eq!(counts(&rows[2]), [5, 5, 0, 0, 0], "run {run}");
        assert_eq!(counts(&rows[3])[..2], [5, 0], "run {run}");
        assert_eq!(rows[3]["batch_id"], rows[2]["batch_id"]);
        assert_eq!(counts(&rows[4])[..2], [127, 0], "run {run}");
        // The failed batch is explained on stderr, and it is the only thing there.
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.starts_with("warning: batch "), "{}", out.stderr);
    }
}

/// A source query that writes, holds two statements, or whose `?` count
/// differs from BIND_PARAMS is a validation error: refused with a caret
/// under the SQL, before anything is stored or run (SPEC §11).
#[test]
fn a_using_query_that_cannot_be_a_source_query_stores_no_batch() {
    let w = World::new(3);
    let out =
        w.run("BATCH Customer FROM crm USING ('delete from customer') FABRIC_COMMAND='echo ?'");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "error: the query would change data; a source query must only read (query: delete from customer)
  --> line 1, column 32
   |
 1 | BATCH Customer FROM crm USING ('delete from customer') FABRIC_COMMAND='echo ?'
   |                                ^^^^^^^^^^^^^^^^^^^^^^
"
    );
    for (using, options, why) in [
        (
            "select id from customer; delete from customer",
            "",
            "the text holds more than one statement",
        ),
        (
            "delete from customer returning id",
            "",
            "the query would change data",
        ),
        (
            "select id from customer where id > ?",
            "",
            "the query has 1 ? placeholder and 0 values were given for it",
        ),
        (
            "select id from customer where id > ?",
            "WITH BIND_PARAMS='1,2'",
            "the query has 1 ? placeholder and 2 values were given for it",
        ),
        (
            "select id from customer where id > ?",
            "WITH BIND_PARAMS_JSON='[1, 2]'",
            "the query has 1 ? placeholder and 2 values were given for it",
        ),
        // Values with nothing to bind them to are a mistake too.
        (
            "select id from customer",
            "WITH BIND_PARAMS='1'",
            "the query has no ? placeholder and 1 value was given",
        ),
    ] {
        let batch =
            format!("BATCH Customer FROM crm USING ('{using}') FABRIC_COMMAND='echo ?' {options}");
        for statement in [batch.clone(), format!("EXPLAIN {batch}")] {
            let out = w.refused(&statement, why);
            // The caret is under the SQL text.
            let column = statement.find(&format!("'{using}'")).unwrap() + 1;
            assert!(
                out.stderr
                    .contains(&format!("--> line 1, column {column}\n")),
                "{statement}: {}",
                out.stderr
            );
            assert!(out.stdout.is_empty(), "{statement}: {}", out.stdout);
        }
    }
    assert_eq!(w.batch_count(), 0);
    let rows: i64 = rusqlite::Connection::open(w.path().join("crm.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM customer", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3, "the source keeps its rows");
    // The same on a CSV interface, whose tables are checked empty.
    std::fs::write(w.path().join("ids.csv"), "id\n1\n2\n").unwrap();
    w.refused(
        "CREATE INTERFACE ids TYPE CSV PATH 'ids.csv';
         BATCH Customer FROM ids USING ('select id from ids where id = ?') FABRIC_COMMAND='echo ?'",
        "the query has 1 ? placeholder and 0 values",
    );
    assert_eq!(w.batch_count(), 0);
    // The matching count runs.
    let out = w.run(
        "BATCH Customer FROM crm USING ('select id from customer where id > ?') \
         FABRIC_COMMAND='echo ?' WITH BIND_PARAMS='1'",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(w.batch_count(), 1);
}

/// The ROOT query and a group's query are checked the same way when a
/// batch uses them; the error names the query, whose text is not in the
/// statement.
#[test]
fn a_root_or_group_query_that_writes_stores_no_batch() {
    let w = World::new(3);
    // CREATE LU refuses a ROOT query that writes: one written into the
    // store by hand (or by an older batchsh) reaches the BATCH check.
    w.store()
        .execute(
            "UPDATE lus SET root_sql = 'delete from customer returning id'",
            [],
        )
        .unwrap();
    let out = w.refused(
        "BATCH Customer FABRIC_COMMAND='echo ?'",
        "the ROOT query of LU Customer: the query would change data; a source query must \
         only read",
    );
    assert!(
        out.stderr.contains("--> line 1, column 7\n"),
        "{}",
        out.stderr
    );
    w.refused(
        "CREATE INSTANCE GROUP Customer.low USING ('select id from customer where id < ?');
         BATCH Customer.low FABRIC_COMMAND='echo ?'",
        "the instance group Customer.low: the query has 1 ? placeholder and 0 values",
    );
    assert_eq!(w.batch_count(), 0);
}

/// A CSV source whose file gained an unclosed quote after CREATE INTERFACE
/// is refused when the batch reads it, naming the file and the line, instead
/// of giving the rest of the file as one id.
#[test]
fn a_csv_source_with_an_unclosed_quote_fails_the_batch_naming_the_line() {
    let w = World::new(0);
    let ids = w.path().join("ids.csv");
    std::fs::write(&ids, "id\n1\n2\n3\n").unwrap();
    let out = w.run("CREATE INTERFACE ids TYPE CSV PATH 'ids.csv'");
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::fs::write(&ids, "id,note\n1,\"unterminated\n2,b\n3,c\n").unwrap();
    let out = w.run("BATCH Customer FROM ids USING ('select id from ids') FABRIC_COMMAND='echo ?'");
    let why = format!(
        "{} line 2: a quoted field opens here and is never closed",
        ids.display()
    );
    w.assert_last_failed(&out, &why);
}

/// A source path that became a FIFO fails the batch at once with what it
/// is: opening it would wait for a writer forever.
#[test]
fn a_source_that_is_a_fifo_fails_the_batch_instead_of_hanging() {
    let w = World::new(3);
    let db = w.path().join("crm.db");
    std::fs::remove_file(&db).unwrap();
    crate::common::mkfifo(&db);
    let out = w
        .test("BATCH Customer FABRIC_COMMAND='echo ?'")
        .timeout(Duration::from_secs(10))
        .run();
    let why = format!(
        "{} is a FIFO (named pipe), not a file; give the path of an SQLite database file",
        db.display()
    );
    w.assert_last_failed(&out, &why);
}
