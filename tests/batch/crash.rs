//! Crash safety with a real kill -9: what a retry finds and finishes, and
//! that no entity is lost or run again.

use crate::world::{World, assert_none_lost_none_rerun, completed_ids, eventually, kill_9_after};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

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
        w.test(&format!("BATCH_PAUSE '{bid}'")).status(0).run();
        eventually("PAUSED", || w.status(&bid) == "PAUSED");
        kill_9_after(&w, child, 0);
        let completed_before = completed_ids(&w, &bid);
        w.test(&format!("{control} '{bid}'")).status(0).run();
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
    w.sqlite()
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
    w.sqlite()
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
        .sqlite()
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
    w.sqlite()
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
    w.test(
        "BATCH Customer FABRIC_COMMAND=\"shell 'test -f go && echo ? >> ran.txt && sleep 0.02'\"
         WITH MAX_WORKERS_PER_NODE=2 ON_DONE='echo $TOTAL $SUCCEEDED $FAILED >> done.txt'",
    )
    .status(3)
    .run();
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

/// Every run registers as a node (SPEC §7: a synchronous batch records its
/// node like any worker), and its claims name it. After a kill -9 the
/// killed run's node still says RUNNING and holds its claims; the
/// BATCH_RETRY that takes the batch over finds it dead, marks it DEAD, runs
/// its claims again, and its own node ends STOPPED.
#[test]
fn a_killed_runs_node_is_found_dead_and_its_claims_run_again() {
    let w = World::new(200);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    let pid = i64::from(child.id());
    kill_9_after(&w, child, 20);
    let bid = w.last_bid();
    let nodes = |sql: &str| -> Vec<(String, String, i64)> {
        let c = w.sqlite();
        let mut st = c.prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = nodes("SELECT worker_id, status, pid FROM nodes");
    assert_eq!(before.len(), 1, "{before:?}");
    let (killed, status, node_pid) = &before[0];
    assert_eq!((status.as_str(), *node_pid), ("RUNNING", pid));
    let held: i64 = w
        .sqlite()
        .query_row(
            "SELECT (SELECT count(*) FROM batch_entities WHERE status = 'IN_PROCESS' AND worker = ?1)
                  + (SELECT count(*) FROM batch_claimed WHERE worker = ?1)",
            [killed],
            |r| r.get(0),
        )
        .unwrap();
    assert!(held > 0, "the killed run held no claim");
    let completed_before = completed_ids(&w, &bid);

    w.retry_to_done(&bid);
    let after = nodes("SELECT worker_id, status, pid FROM nodes ORDER BY started_at");
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        (after[0].0.as_str(), after[0].1.as_str()),
        (killed.as_str(), "DEAD")
    );
    assert_eq!(after[1].1, "STOPPED");
    assert_ne!(after[1].2, pid);
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        200
    );
    assert_none_lost_none_rerun(&w, 200, &completed_before);
}

/// The rows a JSON statement printed.
fn json_rows(out: &crate::common::Output) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(out.stdout.trim())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// SPEC §4 RESUME, §6 INTERRUPTED: after a kill -9, the batch shows
/// INTERRUPTED in BATCH_LIST, BATCH_SUMMARY and BATCH_INFO (its stored
/// status is unchanged, its duration stops growing), and
/// STATUS='INTERRUPTED' finds it; the same statement, as a cron line runs
/// it again, continues it (same bid) instead of being refused, and runs
/// no completed entity again; once it is done, the statement starts a new
/// batch.
#[test]
fn resume_true_continues_an_interrupted_twin_shown_interrupted_meanwhile() {
    let w = World::new(300);
    let batch = "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.01'\" \
                 WITH MAX_WORKERS_PER_NODE=2 RESUME=true";
    kill_9_after(&w, w.spawn(batch), 40);
    let bid = w.last_bid();
    let completed_before = completed_ids(&w, &bid);
    let stored = w.status(&bid);
    assert!(["IN_PROGRESS", "GENERATE_IID_LIST"].contains(&stored.as_str()));

    let list = json_rows(&w.test("BATCH_LIST").status(0).run());
    assert_eq!(list.len(), 1);
    assert_eq!(
        (&list[0]["id"], &list[0]["status"]),
        (&bid.clone().into(), &"INTERRUPTED".into())
    );
    let interrupted = json_rows(&w.test("BATCH_LIST STATUS='INTERRUPTED'").status(0).run());
    assert_eq!(interrupted.len(), 1);
    let running = json_rows(
        &w.test(&format!("BATCH_LIST STATUS='{stored}'"))
            .status(0)
            .run(),
    );
    assert!(running.is_empty(), "{running:?}");
    let summary = |w: &World| json_rows(&w.test(&format!("BATCH_SUMMARY '{bid}'")).status(0).run());
    let first = summary(&w);
    std::thread::sleep(Duration::from_millis(1_100));
    let second = summary(&w);
    let cluster = |rows: &[serde_json::Value]| rows.last().unwrap().clone();
    assert_eq!(cluster(&first)["status"], "INTERRUPTED");
    assert_eq!(
        cluster(&first)["remaining_duration"],
        serde_json::Value::Null
    );
    assert_eq!(cluster(&first)["duration"], cluster(&second)["duration"]);
    w.test(&format!("BATCH_INFO '{bid}'"))
        .status(0)
        .stdout_contains("\"status\":\"INTERRUPTED\"")
        .run();
    assert_eq!(w.status(&bid), stored, "the stored status is unchanged");

    w.test(batch)
        .status(0)
        .stderr_starts_with(format!(
            "note: RESUME=true continues batch {} (interrupted, same command)\n",
            &bid[..8]
        ))
        .run();
    assert_eq!(w.batch_count(), 1);
    assert_eq!(w.status(&bid), "DONE");
    assert_none_lost_none_rerun(&w, 300, &completed_before);
    // Nothing is left to resume: the cron line's next run is a new batch.
    w.test(batch).status(0).stderr("").run();
    assert_eq!(w.batch_count(), 2);
}

/// Without RESUME, the same statement after a kill -9 is refused; with
/// `--format json` the error is also one JSON object on stderr, naming
/// the batch (SPEC §10), after the text.
#[test]
fn a_refused_twin_is_a_json_error_object_naming_the_batch() {
    let w = World::new(300);
    let batch = "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.01; test -n ?'\" WITH MAX_WORKERS_PER_NODE=2";
    kill_9_after(&w, w.spawn(batch), 20);
    let bid = w.last_bid();
    let out = w
        .test(batch)
        .status(1)
        .stderr_starts_with("error: batch ")
        .run();
    let last = out.stderr.lines().last().unwrap();
    let error: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(error["bid"], bid.as_str());
    assert!(
        error["error"].as_str().unwrap().contains("was interrupted"),
        "{error}"
    );
    // An error about no batch has a null bid.
    let out = w.test("BATCH_INFO 'nosuchbatch'").status(1).run();
    let error: serde_json::Value =
        serde_json::from_str(out.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(
        error,
        serde_json::json!({"error": "no batch with id 'nosuchbatch'", "bid": null})
    );
}
