//! Control of an asynchronous batch that several workers serve (SPEC §6,
//! §7): BATCH_PAUSE, BATCH_EDIT, BATCH_RESUME, BATCH_CANCEL and
//! BATCH_RETRY reach every worker, and every worker heeds them within a
//! second; a retried asynchronous batch is queued again for the workers.
//! Also the largest run of many workers: 10,000 entities on four.

use crate::workers::{nodes, queue, stop, worker_with};
use crate::world::{World, eventually};
use serde_json::Value;
use std::process::Child;

/// `batchsh worker --workers K` as node `node`, serving until stopped;
/// alive when this returns.
fn serving(w: &World, node: &str, k: &str) -> Child {
    let c = worker_with(w, &["--node", node, "worker", "--workers", k], &[]);
    eventually(&format!("worker {node} to be alive"), || {
        nodes(w)
            .iter()
            .any(|n| n["node"] == node && n["status"] == "alive")
    });
    c
}

/// Milliseconds since the Unix epoch, as the store writes entity times.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The `(node, start, end)` of the batch's entities that ran, from the
/// store.
fn runs(w: &World, bid: &str) -> Vec<(String, i64, i64)> {
    w.store()
        .rows(
            "SELECT node, start_time_ms, end_time_ms FROM batch_entities
             WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)
                 AND start_time_ms IS NOT NULL AND end_time_ms IS NOT NULL",
            &[&bid],
        )
        .iter()
        .map(|r| {
            let node = r["node"].as_str().unwrap().to_string();
            (
                node,
                r["start_time_ms"].as_i64().unwrap(),
                r["end_time_ms"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The most entities one node ran at once among `runs` that started
/// after `since`.
fn most_at_once(runs: &[(String, i64, i64)], since: i64) -> usize {
    let mut most = 0;
    for (node, s, _) in runs.iter().filter(|r| r.1 >= since) {
        let overlapping = runs
            .iter()
            .filter(|(n, s2, e2)| n == node && s2 <= s && e2 > s)
            .count();
        most = most.max(overlapping);
    }
    most
}

fn completed(w: &World, bid: &str) -> i64 {
    w.counter(bid, "completed")
}

/// Pause, edit, resume, cancel and retry an asynchronous batch that two
/// workers serve: each is heeded by both within a second.
#[test]
fn control_reaches_every_worker_of_an_async_batch() {
    let w = World::new(400);
    let a = serving(&w, "a", "4");
    let b = serving(&w, "b", "4");
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 60 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=4",
    );
    eventually("both workers to run entities", || {
        let r = runs(&w, &bid);
        r.iter().any(|(n, ..)| n == "a") && r.iter().any(|(n, ..)| n == "b")
    });
    // SHOW NODES: each serves the one batch (the owner and the helper).
    let serving_one = nodes(&w).iter().all(|n| n["batches"] == 1);
    assert!(serving_one, "{:?}", nodes(&w));

    // Pause: no entity starts more than a second after it, on any node.
    let paused_at = now_ms();
    w.test(&format!("BATCH_PAUSE '{bid}'")).status(0).run();
    eventually("the batch to be paused", || w.status(&bid) == "PAUSED");
    eventually("no entity in process", || {
        nodes(&w).iter().all(|n| n["in_process"] == 0)
    });
    let late: Vec<_> = runs(&w, &bid)
        .into_iter()
        .filter(|r| r.1 > paused_at + 1000)
        .collect();
    assert!(late.is_empty(), "started after the pause: {late:?}");
    let done = completed(&w, &bid);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(completed(&w, &bid), done, "nothing runs while paused");

    // Edit while paused, then resume: each node runs one at a time.
    w.test(&format!("BATCH_EDIT '{bid}' MAX_WORKERS_PER_NODE=1"))
        .status(0)
        .run();
    let resumed_at = now_ms();
    w.test(&format!("BATCH_RESUME '{bid}'")).status(0).run();
    eventually("both workers to run again", || {
        let r: Vec<_> = runs(&w, &bid)
            .into_iter()
            .filter(|r| r.1 > resumed_at)
            .collect();
        r.iter().filter(|(n, ..)| n == "a").count() >= 3
            && r.iter().filter(|(n, ..)| n == "b").count() >= 3
    });
    assert_eq!(most_at_once(&runs(&w, &bid), resumed_at), 1);

    // Cancel: it ends CANCELLED, and nothing starts a second after it.
    let cancelled_at = now_ms();
    w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
    eventually("the batch to be cancelled", || {
        w.status(&bid) == "CANCELLED"
    });
    let late: Vec<_> = runs(&w, &bid)
        .into_iter()
        .filter(|r| r.1 > cancelled_at + 1000)
        .collect();
    assert!(late.is_empty(), "started after the cancel: {late:?}");
    assert!(completed(&w, &bid) < 400);

    // Retry: queued again for the workers (it stays asynchronous), and
    // they finish it.
    let out = w
        .test(&format!("BATCH_RETRY '{bid}' ALLOW_CANCELLED=true"))
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v[0]["batch_id"], bid.as_str(), "{v}");
    assert!(v[0]["notes"].as_str().unwrap().starts_with("queued"), "{v}");
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    assert_eq!(w.status(&bid), "DONE");
    assert_eq!(completed(&w, &bid), 400);
    stop(a);
    stop(b);
}

/// Four workers, 10,000 `echo ?` entities: every entity COMPLETED exactly
/// once (one attempt), and the node rows of BATCH_SUMMARY add up to the
/// cluster row.
#[test]
fn four_workers_run_ten_thousand_entities_each_once() {
    let n = 10_000;
    let w = World::new(n);
    let workers: Vec<Child> = ["w1", "w2", "w3", "w4"]
        .iter()
        .map(|node| serving(&w, node, "2"))
        .collect();
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
    );
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    for c in workers {
        stop(c);
    }
    assert_eq!(
        w.query_i64(
            "SELECT count(*) FROM batch_entities
             WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)
                 AND status = 'COMPLETED' AND attempts = 1",
            &bid
        ),
        n
    );
    let out = w.test(&format!("BATCH_SUMMARY '{bid}'")).status(0).run();
    let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    let sum = |level: &str, key: &str| -> i64 {
        rows.iter()
            .filter(|r| r["level"] == level)
            .map(|r| r[key].as_i64().unwrap())
            .sum()
    };
    for key in ["succeeded", "failed"] {
        assert_eq!(sum("Node", key), sum("Cluster", key), "{key}: {rows:?}");
    }
    assert_eq!(sum("Cluster", "succeeded"), n);
    assert_eq!(sum("DC", "succeeded"), n);
}

/// Another program reading the store while a worker runs batches (the
/// `sqlite3` shell, a monitoring script) does not take it from the
/// worker: each connection it opens and closes finds the worker's locks
/// in place, so it cannot delete the write-ahead log under the worker,
/// and every batch ends DONE with all it recorded.
#[test]
fn another_program_reading_the_store_beside_a_worker_loses_nothing() {
    if !crate::pg::sqlite_file_test(
        "another_program_reading_the_store_beside_a_worker_loses_nothing",
    ) {
        return;
    }
    let w = World::new(300);
    let x = serving(&w, "x", "2");
    let cmd = "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.01; echo ? >> ledger'\" \
               WITH ASYNC=true ALLOW_MULTIPLE=true";
    let (b1, _) = queue(&w, cmd);
    let (b2, _) = queue(&w, cmd);
    eventually("both batches to run", || {
        [&b1, &b2].iter().all(|bid| completed(&w, bid) > 0)
    });
    // The worker holds its lock on the store file (SQLite's, which keeps
    // a closing program from deleting the write-ahead log under it).
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(w.home().join("store.db")).unwrap().ino();
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    let held = locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let at = if f.get(1) == Some(&"->") { 1 } else { 0 };
        f.get(4 + at) == Some(&x.id().to_string().as_str())
            && f.get(5 + at)
                .is_some_and(|dev_ino| dev_ino.ends_with(&format!(":{inode}")))
    });
    assert!(held, "the worker holds no lock on the store:\n{locks}");
    let mut reads = 0;
    while [&b1, &b2]
        .iter()
        .any(|bid| !["DONE", "FAILED"].contains(&w.status(bid).as_str()))
    {
        // Opened, read and closed, as `sqlite3 store.db 'select ...'` does.
        let c = w.sqlite();
        let _: i64 = c
            .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
            .unwrap();
        drop(c);
        reads += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop(x);
    assert!(reads > 5, "the batches ran while the store was read");
    for bid in [&b1, &b2] {
        assert_eq!(w.status(bid), "DONE", "{}", w.error(bid));
        assert_eq!(completed(&w, bid), 300);
    }
    let ledger = std::fs::read_to_string(w.path().join("ledger")).unwrap();
    assert_eq!(ledger.lines().count(), 600);
}

/// A retry right after a cancel, while a helper's entity is still in
/// flight: the retry's new execution fences that helper's outcome out, so
/// the retry takes its claim back (the entity runs again, never having
/// completed) instead of waiting for a write that can no longer come.
#[test]
fn a_retry_while_a_helpers_entity_is_in_flight_takes_its_claim_back() {
    let w = World::new(50);
    let b = serving(&w, "b", "1");
    // Node a's entities wait for the file `go`; node b's take 0.2 s.
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'if [ $NODE = a ]; then while [ ! -e go ]; do sleep 0.05; done; else sleep 0.2; fi; : ?'\" WITH ASYNC=true MAX_WORKERS_PER_NODE=1",
    );
    eventually("b to own the batch", || {
        w.status(&bid) == "IN_PROGRESS"
            && w.query_i64(
                "SELECT count(*) FROM batches WHERE bid = ?1 AND owner_node = 'b'",
                &bid,
            ) == 1
    });
    let a = serving(&w, "a", "1");
    eventually("a to hold an entity", || {
        nodes(&w)
            .iter()
            .any(|n| n["node"] == "a" && n["in_process"].as_i64() >= Some(1))
    });
    w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
    eventually("the batch to be cancelled", || {
        w.status(&bid) == "CANCELLED"
    });
    w.test(&format!("BATCH_RETRY '{bid}' ALLOW_CANCELLED=true"))
        .status(0)
        .run();
    std::fs::write(w.path().join("go"), "").unwrap();
    w.test(&format!("BATCH_WAIT '{bid}' TIMEOUT='60s'"))
        .status(0)
        .run();
    assert_eq!(w.status(&bid), "DONE");
    assert_eq!(completed(&w, &bid), 50);
    w.assert_counters_add_up(&bid);
    stop(a);
    stop(b);
}
