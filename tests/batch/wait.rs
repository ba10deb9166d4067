//! BATCH_WAIT (SPEC §6): another process waits for a batch to end, then
//! prints its result row and ends as the batch did; 4 at its TIMEOUT.

use crate::world::{World, result_row};

/// A batch running in one process; BATCH_WAIT in another returns once it
/// ends, with its result row and exit code 0.
#[test]
fn batch_wait_returns_the_result_of_a_batch_another_process_runs() {
    let w = World::new(30);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let bid = w.last_bid();
    let out = w
        .test(&format!("BATCH_WAIT '{}'", &bid[..8]))
        .status(0)
        .run();
    assert_eq!(w.status(&bid), "DONE", "it returned before the end");
    let row = result_row(&out.stdout);
    assert_eq!(row["batch_id"], bid.as_str());
    assert_eq!(row["execution_succeeded"], 30);
    assert_eq!(row["total"], 30);
    child.wait_with_output().unwrap();
}

/// Its exit code is the batch's: 3 for DONE with failed entities (with
/// the warning that says which), 1 for FAILED (with the reason); a batch
/// that had ended already returns at once.
#[test]
fn batch_wait_ends_as_the_batch_did() {
    let w = World::new(4);
    w.test("BATCH Customer FABRIC_COMMAND=\"shell 'test ? -ne 2'\"")
        .status(3)
        .run();
    let bid = w.last_bid();
    w.test(&format!("BATCH_WAIT '{bid}'"))
        .status(3)
        .stderr_contains(format!(
            "warning: batch {} ended DONE with 1 of 4 entities FAILED",
            &bid[..8]
        ))
        .run();
    w.test("BATCH Customer FROM crm USING ('select nope from customer') FABRIC_COMMAND='echo ?'")
        .status(1)
        .run();
    let failed = w.last_bid();
    w.test(&format!("BATCH_WAIT '{failed}'"))
        .status(1)
        .stderr_contains(format!("error: batch {failed} ended FAILED: "))
        .run();
}

/// At its TIMEOUT, BATCH_WAIT gives up with exit code 4 and says where
/// the batch stands; the statements after it do not run; the batch goes
/// on.
#[test]
fn batch_wait_times_out_with_exit_code_4() {
    let w = World::new(400);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=1");
    w.wait_until_running();
    let bid = w.last_bid();
    w.test(&format!("BATCH_WAIT '{bid}' TIMEOUT='300ms'; BATCH_LIST"))
        .status(4)
        .stdout("")
        .stderr_contains(format!(
            "error: BATCH_WAIT timed out after 300ms: batch {bid} is IN_PROGRESS, "
        ))
        .stderr_contains("note: the 1 statement after it did not run")
        .run();
    assert_eq!(w.status(&bid), "IN_PROGRESS");
    w.run(&format!("BATCH_CANCEL '{bid}'"));
    child.wait_with_output().unwrap();
}

/// A paused batch keeps BATCH_WAIT waiting, and stderr says so; it
/// returns once the batch is resumed and ends.
#[test]
fn batch_wait_says_a_paused_batch_keeps_it_waiting() {
    let w = World::new(20);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=1");
    w.wait_until_running();
    let bid = w.last_bid();
    w.test(&format!("BATCH_PAUSE '{bid}'")).status(0).run();
    crate::world::eventually("the batch to be PAUSED", || w.status(&bid) == "PAUSED");
    // Paused, it tells no remaining time (nothing runs until resumed).
    let out = w.test(&format!("BATCH_SUMMARY '{bid}'")).status(0).run();
    let rows: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    let cluster = rows.iter().find(|r| r["level"] == "Cluster").unwrap();
    assert!(cluster["remaining_duration"].is_null(), "{cluster}");
    assert!(cluster["remaining"].as_i64().unwrap() > 0, "{cluster}");
    let log = w.path().join("wait.err");
    let mut waiter = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"))
        .args(w.args(&format!("BATCH_WAIT '{bid}'")))
        .current_dir(w.path())
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let note = format!("note: batch {bid} is PAUSED; BATCH_WAIT waits until it is resumed");
    crate::world::eventually("BATCH_WAIT to say the batch is paused", || {
        std::fs::read_to_string(&log).is_ok_and(|e| e.contains(&note))
    });
    assert_eq!(waiter.try_wait().unwrap(), None, "it returned while paused");
    w.test(&format!("BATCH_RESUME '{bid}'")).status(0).run();
    let status = waiter.wait().unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(w.status(&bid), "DONE");
    child.wait_with_output().unwrap();
}

/// NAME= waits for the runs of named series: in a store that has batches
/// but no series, it is an error at once, not a wait (the waiting itself:
/// tests/waitsy.rs).
#[test]
fn batch_wait_for_a_name_no_series_has_is_an_error_at_once() {
    let w = World::new(1);
    w.test("BATCH_WAIT NAME='etl.*'")
        .status(1)
        .stderr_contains(
            "error: no series matches NAME='etl.*': there is no series yet (WINDOW_OPEN or \
             WINDOW_SET makes one)\n",
        )
        .run();
}

/// A batch that no process runs any more (killed) keeps BATCH_WAIT
/// waiting, and stderr says what finishes it.
#[test]
fn batch_wait_says_what_finishes_a_batch_nobody_runs() {
    let w = World::new(300);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2");
    crate::world::kill_9_after(&w, child, 5);
    let bid = w.last_bid();
    w.test(&format!("BATCH_WAIT '{bid}' TIMEOUT='300ms'"))
        .status(4)
        .stderr_contains(format!(
            "note: no process runs batch {bid} (it was interrupted); it ends once \
             BATCH_RETRY '{bid}' finishes it"
        ))
        .run();
}
