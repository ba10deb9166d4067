//! Control of a running batch from another process: pause, resume, cancel,
//! BATCH_EDIT, BATCH_IN_PROCESS, and what a running batch holds.

use crate::world::{World, eventually};
use serde_json::Value;
use std::time::Duration;

#[test]
fn pause_resume_and_cancel_from_another_process() {
    let w = World::new(400);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let bid = w.last_bid();
    w.test(&format!("BATCH_PAUSE '{}'", &bid[..8]))
        .status(0)
        .run();
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
    let out = w
        .test("BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2")
        .status(1)
        .run();
    assert!(
        out.stderr.contains(&format!(
            "batch {bid} with the same command is paused on node "
        )) && out
            .stderr
            .contains(&format!("resume it (BATCH_RESUME '{bid}')")),
        "{}",
        out.stderr
    );
    w.test(&format!("BATCH_RESUME '{bid}'")).status(0).run();
    eventually("IN_PROGRESS again", || w.status(&bid) == "IN_PROGRESS");
    w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
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
    w.test(&format!("BATCH_RESUME '{bid}'"))
        .stderr_contains("it is CANCELLED, not PAUSED")
        .run();
    w.test(&format!("BATCH_RETRY '{bid}'"))
        .stderr_contains("ALLOW_CANCELLED=true")
        .run();
    w.test(&format!("BATCH_RETRY '{bid}' ALLOW_CANCELLED=true"))
        .status(0)
        .run();
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
    w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    w.assert_counters_add_up(&bid);
}

#[test]
fn an_lu_whose_data_a_running_batch_uses_cannot_be_dropped() {
    let w = World::new(200);
    // The batch's target is Customer, its command writes LU Copy, whose
    // query takes a few milliseconds (the run lasts a few seconds).
    w.test(
        "CREATE LU Copy FROM crm ROOT ('select id from customer') \
         TABLE customer ('select * from customer where id = ? and (with recursive \
         c(x) as (select 1 union all select x + 1 from c where x < 300000) \
         select count(*) from c) > 0')",
    )
    .status(0)
    .run();
    let mut child = w.spawn(
        "BATCH Customer FABRIC_COMMAND='sync_instance Copy.?' \
         WITH MAX_WORKERS_PER_NODE=1 ENTITY_TIMEOUT='1m'",
    );
    w.wait_until_running();
    let bid = w.last_bid();
    for lu in ["Copy", "customer"] {
        let out = w.test(&format!("DROP LU {lu}")).status(1).run();
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
    w.test("DROP LU Copy").status(0).run();
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
        let out = w.test("BATCH_IN_PROCESS").status(0).run();
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

#[test]
fn batch_edit_lowers_the_workers_of_a_running_batch() {
    let w = World::new(60);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 300 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("both workers busy", || {
        w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) > 2
    });
    w.test(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=1"))
        .status(0)
        .run();
    // One worker keeps at most two entities claimed (one running, one next).
    eventually("the pipeline to shrink", || {
        w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) <= 2
    });
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(200));
        assert!(w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) <= 2);
    }
    w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    w.test(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=2"))
        .stderr_contains("it has ended (CANCELLED)")
        .run();
    // The edit is in the batch's history; BATCH_INFO shows the option given.
    w.test(&format!("BATCH_HISTORY '{bid}'; BATCH_INFO '{bid}'"))
        .stdout_contains("\"note\":\"BATCH_EDIT MAX_WORKERS_PER_NODE=1\"")
        .stdout_contains("\"option_max_workers_per_node\":2")
        .run();
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
    w.test(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=2"))
        .status(0)
        .run();
    eventually("a second worker's claims", || {
        w.query_i64("SELECT in_process FROM batches WHERE bid = ?1", &bid) > 2
    });
    w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    w.assert_counters_add_up(&bid);
}

/// A command that holds its entity until `n` entities run at once (or 20 s
/// pass), then appends how many it saw to seen.txt: with fewer workers
/// than `n`, no entity ever sees `n`.
fn barrier(n: usize) -> String {
    format!(
        "shell 'touch run/?; i=0; while [ $(ls run | wc -l) -lt {n} ] && [ $i -lt 400 ]; \
         do sleep 0.05; i=$((i+1)); done; ls run | wc -l >> seen.txt'"
    )
}

/// Every line of seen.txt: how many entities ran at once, as each saw it.
fn seen(w: &World) -> Vec<usize> {
    std::fs::read_to_string(w.path().join("seen.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// SPEC §4: a synchronous batch runs exactly MAX_WORKERS_PER_NODE workers,
/// more than the machine's cores when asked (per-entity commands are often
/// I/O-bound, as `parallel -j 50`).
#[test]
fn a_batch_runs_as_many_workers_as_it_asks_for_beyond_the_cores() {
    let w = World::new(50);
    std::fs::create_dir(w.path().join("run")).unwrap();
    w.test(&format!(
        "BATCH Customer FABRIC_COMMAND=\"{}\" WITH MAX_WORKERS_PER_NODE=50",
        barrier(50)
    ))
    .status(0)
    .run();
    assert_eq!(seen(&w), vec![50; 50], "all 50 ran at once");
}

/// BATCH_EDIT raises a running batch's workers beyond those it started
/// with: the new ones start at once.
#[test]
fn batch_edit_raises_the_workers_beyond_those_the_run_started_with() {
    let w = World::new(12);
    std::fs::create_dir(w.path().join("run")).unwrap();
    let child = w.spawn(&format!(
        "BATCH Customer FABRIC_COMMAND=\"{}\" WITH MAX_WORKERS_PER_NODE=2",
        barrier(12)
    ));
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("the first two entities to run", || {
        std::fs::read_dir(w.path().join("run")).map_or(0, |d| d.count()) == 2
    });
    let edit = w
        .test(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=12"))
        .status(0)
        .stdout_contains(format!("batch {bid}: MAX_WORKERS_PER_NODE=12"))
        .run();
    assert!(
        !edit.stdout.contains(" run: "),
        "no cap to tell: {}",
        edit.stdout
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen(&w), vec![12; 12], "all 12 ran at once after the edit");
}

/// SHOW NODES (SPEC §6): every process that ran a batch is a node of the
/// store; while it runs it is alive and shows its batch and the entities
/// it holds; after a kill -9 it is dead; a run that ended is stopped.
#[test]
fn show_nodes_tells_each_run_as_it_stands() {
    let w = World::new(200);
    let nodes = |w: &World| w.nodes();
    assert_eq!(nodes(&w), Vec::<Value>::new(), "no batch ran yet");
    w.test("BATCH Customer.('1', '2') FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let after = nodes(&w);
    assert_eq!(after.len(), 1, "{after:?}");
    let n = &after[0];
    assert_eq!(
        (&n["kind"], &n["status"], &n["batches"], &n["in_process"]),
        (
            &Value::from("synchronous"),
            &Value::from("stopped"),
            &Value::from(0),
            &Value::from(0)
        ),
        "{n}"
    );
    for key in [
        "node",
        "dc",
        "worker_id",
        "host",
        "pid",
        "workers",
        "heartbeat_age",
    ] {
        assert!(n.get(key).is_some(), "no {key}: {n}");
    }

    let mut child =
        w.spawn("BATCH Customer FABRIC_COMMAND='sleep 50 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let pid = Value::from(child.id());
    let running = |w: &World| -> Option<Value> { nodes(w).into_iter().find(|n| n["pid"] == pid) };
    eventually("the running node to hold entities", || {
        running(&w).is_some_and(|n| {
            n["status"] == "alive" && n["batches"] == 1 && n["in_process"].as_i64() > Some(0)
        })
    });
    assert_eq!(running(&w).unwrap()["workers"], 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(running(&w).unwrap()["status"], "dead");
}

/// `BATCH_IN_PROCESS 'bid'` (SPEC §6) lists that batch's entities only, a
/// bid prefix will do, and an unknown bid is refused with the reason;
/// without a bid, every batch's entities are listed.
#[test]
fn batch_in_process_with_a_bid_lists_that_batchs_entities() {
    let w = World::new(20);
    w.test("BATCH Customer FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let done = w.last_bid();
    let mut child =
        w.spawn("BATCH Customer FABRIC_COMMAND='sleep 500 ?' WITH MAX_WORKERS_PER_NODE=2");
    w.wait_until_running();
    let running = w.last_bid();
    let listed = |script: &str| -> Vec<Value> {
        let out = w.test(script).status(0).run();
        let rows: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        rows.as_array().unwrap().clone()
    };
    eventually("entities in process", || {
        !listed(&format!("BATCH_IN_PROCESS '{running}'")).is_empty()
    });
    let rows = listed(&format!(
        "BATCH_IN_PROCESS {} FILTER='sleep'",
        &running[..8]
    ));
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r["batch_id"] == running.as_str()),
        "{rows:?}"
    );
    assert_eq!(
        listed(&format!("BATCH_IN_PROCESS '{done}'")),
        Vec::<Value>::new()
    );
    assert!(!listed("BATCH_IN_PROCESS").is_empty());
    w.test("BATCH_IN_PROCESS 'zzzzzzzz'")
        .status(1)
        .stderr_contains("no batch with id 'zzzzzzzz'")
        .run();
    child.kill().unwrap();
    child.wait().unwrap();
}
