//! What is refused or told before a batch runs: options, EXPLAIN, workers,
//! duplicates of an active batch, unknown bids, a retry whose LU is gone.

use crate::world::World;
use serde_json::Value;

#[test]
fn series_settings_without_a_name_are_refused_and_nothing_is_stored() {
    let w = World::new(3);
    w.test("BATCH Customer FABRIC_COMMAND='echo ?' WITH REPROCESS_HOURS=2")
        .status(1)
        .stderr_contains("REPROCESS_HOURS is a setting of a named series: add NAME='...'")
        .run();
    assert_eq!(w.batch_count(), 0);
    // ASYNC='false' is fine.
    w.test("BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC='false'")
        .status(0)
        .run();
}

#[test]
fn explain_counts_and_runs_nothing() {
    let w = World::new(12);
    let out = w
        .test("EXPLAIN BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_RETRIES=2")
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["entities_now"], 12);
    assert_eq!(v["option_max_retries"], "2");
    assert_eq!(v["option_retry_delay"], "'1s' (default)");
    assert_eq!(w.batch_count(), 0);
}

/// More workers than a batch runs on one node (1024): EXPLAIN and the run
/// say how many run, instead of capping them without a word.
#[test]
fn more_workers_than_the_node_has_are_named_with_how_many_run() {
    let w = World::new(3);
    let many = "MAX_WORKERS_PER_NODE=100000";
    let out = w
        .test(&format!(
            "EXPLAIN BATCH Customer FABRIC_COMMAND='echo ?' WITH {many}"
        ))
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let shown = v["option_max_workers_per_node"].as_str().unwrap();
    assert!(
        shown == "100000 (1024 run: the most a batch runs on one node)",
        "{shown}"
    );
    w.test(&format!(
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH {many}"
    ))
    .status(0)
    .stderr_starts_with(
        "note: MAX_WORKERS_PER_NODE=100000 is more than the 1024 workers a batch runs on one node; 1024 run",
    )
    .run();
    // Within the node's count: nothing to say.
    w.test(
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=1 ALLOW_MULTIPLE=true",
    )
    .status(0)
    .stderr("")
    .run();
}

#[test]
fn a_second_identical_batch_is_refused_while_one_is_active() {
    let w = World::new(20);
    let mut child =
        w.spawn("BATCH Customer FABRIC_COMMAND='sleep 200 ?' WITH MAX_WORKERS_PER_NODE=1");
    w.wait_until_running();
    let bid = w.last_bid();
    let again = "BATCH Customer FABRIC_COMMAND='sleep 200 ?' WITH MAX_WORKERS_PER_NODE=1";
    w.test(again)
        .status(1)
        .stderr_contains(format!(
            "batch {bid} with the same command is still running on node "
        ))
        .stderr_contains(format!(
            "wait for it, cancel it (BATCH_CANCEL '{bid}'), or add WITH ALLOW_MULTIPLE=true"
        ))
        .run();
    // After a kill -9 no process runs it: the way on is BATCH_RETRY, and
    // the message says so rather than "wait for it".
    child.kill().unwrap();
    child.wait().unwrap();
    w.test(again)
        .status(1)
        .stderr_contains(format!(
            "batch {bid} with the same command was interrupted (IN_PROGRESS, and no process runs it); \
             finish it (BATCH_RETRY '{bid}', or this statement WITH RESUME=true), cancel it (BATCH_CANCEL '{bid}'), or add WITH ALLOW_MULTIPLE=true"
        ))
        .run();
    // Neither refusal stored a batch.
    assert_eq!(w.batch_count(), 1);
}

/// A retry re-plans the batch from its stored statement; when what it
/// names is gone, the error says so about the batch, quoting that
/// statement, and points at the retry, not into text the user never typed.
#[test]
fn a_retry_whose_lu_was_dropped_says_so_about_the_batch() {
    let w = World::new(3);
    w.test("BATCH Customer FABRIC_COMMAND=\"shell 'exit 1 # ?'\"")
        .status(3)
        .run();
    let bid = w.last_bid();
    w.test("DROP LU Customer").status(0).run();
    let out = w.test(&format!("BATCH_RETRY '{bid}'")).status(1).run();
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
fn unknown_and_ambiguous_bids_are_clear_errors() {
    let w = World::new(0);
    w.test("BATCH_INFO 'nosuchbatch'")
        .status(1)
        .stderr_starts_with("error: no batch with id 'nosuchbatch'")
        .run();
    // A store with no batch: nothing to take the newest of.
    w.test("BATCH_SUMMARY")
        .status(1)
        .stderr_starts_with("error: the store has no batch yet: a BATCH statement makes one")
        .run();
    w.test("BATCH_PAUSE")
        .status(1)
        .stderr_starts_with("error: no batch in this session yet")
        .run();
    w.test("BATCH_INFO 'abc'")
        .stderr_contains("at least 6 characters")
        .run();
    // A typo in a bid, or in its first characters: the batch meant.
    w.test("BATCH Customer.(1) FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let bid = w.last_bid();
    let typo = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[3] = if c[3] == 'x' { 'y' } else { 'x' };
        c.into_iter().collect::<String>()
    };
    for given in [typo(&bid), typo(&bid[..8])] {
        w.test(&format!("BATCH_INFO '{given}'"))
            .status(1)
            .stderr_starts_with(format!(
                "error: no batch with id '{given}' (did you mean '{bid}'?)"
            ))
            .run();
    }
    let out = w.run("BATCH_INFO 'ZZZZZZZZ'");
    assert!(
        out.stderr
            .starts_with("error: no batch with id 'ZZZZZZZZ'\n"),
        "what was typed, and no suggestion: {}",
        out.stderr
    );
    // A bid reads the same in capitals.
    w.test(&format!("BATCH_INFO '{}'", bid[..8].to_uppercase()))
        .status(0)
        .run();
}

/// SPEC §6: in a new session (a new `-c`), a monitoring statement without
/// a bid is about the newest batch of the store, and stderr says which; a
/// control statement still needs its bid; a plain `BATCH_LIST` with no
/// active batch says that `STATUS='ALL'` lists the others.
#[test]
fn a_new_session_monitors_the_newest_batch_and_says_which() {
    let w = World::new(2);
    w.test("BATCH Customer FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    w.test("BATCH Customer FABRIC_COMMAND='sleep 1 ?'")
        .status(0)
        .run();
    let newest = w.last_bid();
    let note = format!("the newest batch, {} (DONE, created ", &newest[..8]);
    for stmt in [
        "BATCH_INFO",
        "BATCH_SUMMARY",
        "BATCH_DETAILS",
        "BATCH_HISTORY",
        "BATCH_WAIT",
    ] {
        w.test(stmt)
            .status(0)
            .stderr_starts_with(format!(
                "note: no batch in this session yet; {stmt} is about"
            ))
            .stderr_contains(&note)
            .run();
    }
    let info = w.test("BATCH_INFO").status(0).run();
    assert!(info.stdout.contains(&newest), "{}", info.stdout);
    assert!(info.stdout.contains("sleep 1"), "{}", info.stdout);
    // Not a guess a control statement acts on.
    w.test("BATCH_RETRY")
        .status(1)
        .stderr_starts_with("error: no batch in this session yet")
        .run();
    w.test("BATCH_LIST")
        .status(0)
        .stdout("[]\n")
        .stderr("note: no batch is active; BATCH_LIST STATUS='ALL' lists the others\n")
        .run();
    // --quiet: the data only.
    crate::common::Test::new()
        .current_dir(w.path())
        .arg("--quiet")
        .args(w.args("BATCH_SUMMARY; BATCH_LIST"))
        .status(0)
        .stderr("")
        .run();
}
