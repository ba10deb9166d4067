//! Where asynchronous batches run (SPEC §4, §7): JOB_AFFINITY, AFFINITY,
//! `@DC` and MAX_NODES with real workers on one store; the Notes and
//! BATCH_INFO when nothing alive may take a batch; a synchronous batch
//! for another node; one worker serving several batches within its
//! `--workers`.

use crate::workers::{all_workers_stopped, exits_0, logs, nodes, queue, stop, worker_with};
use crate::world::{World, eventually};
use serde_json::Value;

/// BATCH_SUMMARY's rows of one level, as (name, succeeded).
fn summary(w: &World, bid: &str, level: &str) -> Vec<(String, i64)> {
    let out = w.test(&format!("BATCH_SUMMARY '{bid}'")).status(0).run();
    let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    rows.iter()
        .filter(|r| r["level"] == level)
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["succeeded"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// BATCH_INFO, as JSON.
fn info(w: &World, bid: &str) -> Value {
    let out = w.test(&format!("BATCH_INFO '{bid}'")).status(0).run();
    serde_json::from_str(out.stdout.trim()).unwrap()
}

/// Waits until a worker of node `node` is alive.
fn alive(w: &World, node: &str) {
    eventually(&format!("worker {node} to be alive"), || {
        nodes(w)
            .iter()
            .any(|n| n["node"] == node && n["status"] == "alive")
    });
}

/// The statement from Fabric's documentation (SPEC §4) runs as written:
/// queued, it waits for node 10.21.2.102 (the Notes and BATCH_INFO say so
/// and how to start it, and no worker is started here); a worker of
/// another node leaves it alone; one started as `--node 10.21.2.102`
/// syncs its 100 entities.
#[test]
fn the_fabric_statement_waits_for_its_job_affinity_and_runs_there() {
    let w = World::new(1);
    let c = rusqlite::Connection::open(w.path().join("ids.db")).unwrap();
    c.execute_batch(
        "CREATE TABLE ids (id TEXT); CREATE TABLE autodata (id TEXT, v TEXT);
         WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 150)
         INSERT INTO ids SELECT n FROM k;
         INSERT INTO autodata SELECT id, 'v' || id FROM ids;",
    )
    .unwrap();
    w.test(
        "CREATE INTERFACE idsFile TYPE SQLITE PATH 'ids.db';
         CREATE LU AUTODATA_DELTA FROM idsFile ROOT ('select id from ids')
             TABLE autodata ('select * from autodata where id = ?')",
    )
    .status(0)
    .run();
    let (bid, notes) = queue(
        &w,
        r#"BATCH AUTODATA_DELTA FROM idsFile USING ('select id from ids  limit 100') FABRIC_COMMAND="sync_instance AUTODATA_DELTA.?" with JOB_AFFINITY='10.21.2.102' ASYNC='true';"#,
    );
    assert!(
        notes.contains("node or DC '10.21.2.102'")
            && notes.contains("`batchsh worker --node 10.21.2.102`"),
        "{notes}"
    );
    assert!(nodes(&w).is_empty(), "no worker is started here");
    let i = info(&w, &bid);
    assert_eq!(i["status"], "WAITING_FOR_JOB");
    assert_eq!(i["job"], "BATCH_JOB_AUTODATA_DELTA (WAITING)");
    assert!(
        i["waiting"]
            .as_str()
            .unwrap()
            .contains("batchsh worker --node 10.21.2.102"),
        "{i}"
    );

    // A worker of another node: nothing for it, it is idle at once.
    exits_0(worker_with(
        &w,
        &["--node", "elsewhere", "worker", "--until-idle"],
        &[],
    ));
    assert_eq!(info(&w, &bid)["status"], "WAITING_FOR_JOB");

    exits_0(worker_with(
        &w,
        &["--node", "10.21.2.102", "worker", "--until-idle"],
        &[],
    ));
    let i = info(&w, &bid);
    assert_eq!(i["status"], "DONE", "{i}");
    assert!(
        i["job"]
            .as_str()
            .unwrap()
            .starts_with("BATCH_JOB_AUTODATA_DELTA (PROCESSED, owner node 10.21.2.102"),
        "{i}"
    );
    assert_eq!(summary(&w, &bid, "Node"), [("10.21.2.102".into(), 100)]);
    let out = w.test(&format!("BATCH_SUMMARY '{bid}'")).status(0).run();
    assert!(out.stdout.contains("\"added\":100"), "{}", out.stdout);
}

/// JOB_AFFINITY picks the owner, AFFINITY the nodes that process: with
/// workers a and b, a owns the job (reads the ids, ends the batch) and b
/// runs every entity.
#[test]
fn job_affinity_picks_the_owner_and_affinity_the_processors() {
    let w = World::new(60);
    let (bid, notes) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 20 ?' \
         WITH ASYNC=true JOB_AFFINITY='a' AFFINITY='b' MAX_WORKERS_PER_NODE=4",
    );
    assert!(notes.contains("node or DC 'a'"), "{notes}");
    // The owner first: a worker that may only process a waiting batch
    // stays (is not idle) while a live worker may take its job.
    let a = worker_with(&w, &["--node", "a", "worker", "--until-idle"], &[]);
    eventually("worker a to take the job", || {
        w.status(&bid) != "WAITING_FOR_JOB"
    });
    let b = worker_with(&w, &["--node", "b", "worker", "--until-idle"], &[]);
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    exits_0(a);
    exits_0(b);
    // The owner takes part (a row of its own) and processes nothing.
    assert_eq!(
        summary(&w, &bid, "Node"),
        [("a".into(), 0), ("b".into(), 60)]
    );
    let log = logs(&w);
    let owner = log
        .lines()
        .find(|l| l.contains(&format!("job taken: batch {bid}")))
        .unwrap();
    assert!(log.contains("node a ") && !owner.is_empty(), "{log}");
    let i = info(&w, &bid);
    assert!(i["job"].as_str().unwrap().contains("owner node a "), "{i}");
    let out = w
        .test(&format!("BATCH_DETAILS '{bid}' AFFINITY='b' LIMIT=-1"))
        .status(0)
        .run();
    let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(rows.len(), 60);
    let out = w
        .test(&format!("BATCH_DETAILS '{bid}' AFFINITY='a' LIMIT=-1"))
        .status(0)
        .run();
    let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    assert!(rows.is_empty(), "{rows:?}");
}

/// `Customer@DC2` runs on DC2's nodes only, and BATCH_SUMMARY's DC rows
/// say so.
#[test]
fn a_batch_for_a_dc_runs_on_that_dcs_nodes() {
    let w = World::new(80);
    let (bid, notes) = queue(
        &w,
        "BATCH Customer@DC2 FABRIC_COMMAND='sleep 10 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=4",
    );
    assert!(notes.contains("a node of DC 'DC2'"), "{notes}");
    assert!(notes.contains("batchsh worker --dc DC2"), "{notes}");
    let x = worker_with(
        &w,
        &["--node", "x", "--dc", "DC1", "worker", "--until-idle"],
        &[],
    );
    let y = worker_with(
        &w,
        &["--node", "y", "--dc", "DC2", "worker", "--until-idle"],
        &[],
    );
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    exits_0(x);
    exits_0(y);
    assert_eq!(summary(&w, &bid, "Node"), [("y".into(), 80)]);
    assert_eq!(summary(&w, &bid, "DC"), [("DC2".into(), 80)]);
}

/// MAX_NODES=2 with three live workers: at most two take part.
#[test]
fn max_nodes_caps_the_nodes_that_take_part() {
    let w = World::new(240);
    let workers: Vec<_> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| worker_with(&w, &["--node", n, "worker", "--workers", "2"], &[]))
        .collect();
    for n in ["n1", "n2", "n3"] {
        alive(&w, n);
    }
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 25 ?' WITH ASYNC=true MAX_NODES=2",
    );
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    for c in workers {
        stop(c);
    }
    let per_node = summary(&w, &bid, "Node");
    let working = per_node.iter().filter(|(_, k)| *k > 0).count();
    assert!(working <= 2, "{per_node:?}");
    assert_eq!(per_node.iter().map(|(_, k)| k).sum::<i64>(), 240);
}

/// A synchronous batch runs in its own process: one placed elsewhere is
/// refused before anything is stored, and runs as a node it names.
#[test]
fn a_synchronous_batch_placed_elsewhere_is_refused() {
    let w = World::new(5);
    let out = w
        .test("BATCH Customer FABRIC_COMMAND='echo ?' WITH AFFINITY='elsewhere'")
        .status(1)
        .run();
    assert!(
        out.stderr
            .contains("this batch is for node or DC 'elsewhere'")
            && out.stderr.contains("ASYNC=true"),
        "{}",
        out.stderr
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM batches WHERE ?1 = ?1", "x"),
        0
    );
    w.test("BATCH Customer FABRIC_COMMAND='echo ?' WITH AFFINITY='elsewhere'")
        .args(["--node", "elsewhere"])
        .status(0)
        .run();
}

/// One worker serves two batches at the same time, and never runs more
/// entities at once than its `--workers`, though each batch alone may
/// use them all (MAX_WORKERS_PER_NODE=3).
#[test]
fn one_worker_serves_several_batches_within_its_workers() {
    let w = World::new(12);
    let x = worker_with(&w, &["--node", "x", "worker", "--workers", "3"], &[]);
    alive(&w, "x");
    let cmd = |tag: &str| {
        format!(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo {tag} ? s $(date +%s%N) >> ledger; \
             sleep 0.2; echo {tag} ? e $(date +%s%N) >> ledger'\" \
             WITH ASYNC=true MAX_WORKERS_PER_NODE=3 ALLOW_MULTIPLE=true"
        )
    };
    let (b1, _) = queue(&w, &cmd("A"));
    let (b2, _) = queue(&w, &cmd("B"));
    for bid in [&b1, &b2] {
        w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    }
    stop(x);
    all_workers_stopped(&w);
    let ledger = std::fs::read_to_string(w.path().join("ledger")).unwrap();
    let mut events: Vec<(u128, i32, &str)> = ledger
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let at: u128 = f[3].parse().unwrap();
            // An end sorts before a start at the same instant.
            (at, if f[2] == "s" { 1 } else { -1 }, f[0])
        })
        .collect();
    assert_eq!(events.len(), 48, "{ledger}");
    events.sort();
    let (mut now, mut most, mut both) = (0, 0, false);
    let (mut a, mut b) = (0, 0);
    for (_, d, tag) in events {
        now += d;
        most = most.max(now);
        if tag == "A" {
            a += d;
        } else {
            b += d;
        }
        both |= a > 0 && b > 0;
    }
    assert!(most <= 3, "at most --workers at once, {most} ran");
    assert!(both, "the two batches ran at the same time:\n{ledger}");
}

/// MAX_NODES counts the nodes that process: an owner that AFFINITY
/// leaves out does not take the place of the node that may process.
#[test]
fn max_nodes_counts_the_nodes_that_process() {
    let w = World::new(30);
    let n1 = worker_with(&w, &["--node", "n1", "worker"], &[]);
    let n2 = worker_with(&w, &["--node", "n2", "worker"], &[]);
    alive(&w, "n1");
    alive(&w, "n2");
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='echo ?' \
         WITH ASYNC=true JOB_AFFINITY='n1' AFFINITY='n2' MAX_NODES=1",
    );
    w.test(&format!("BATCH_WAIT '{bid}' TIMEOUT='60s'"))
        .status(0)
        .run();
    stop(n1);
    stop(n2);
    let per_node = summary(&w, &bid, "Node");
    assert!(per_node.contains(&("n2".into(), 30)), "{per_node:?}");
}

/// BATCH_WAIT on a batch that waits for its job says what it waits for
/// (not that it was interrupted), and times out with exit 4; on a queued
/// batch that a live worker will take, it says nothing of the kind.
#[test]
fn batch_wait_says_what_a_queued_batch_waits_for() {
    let w = World::new(20);
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true JOB_AFFINITY='nowhere'",
    );
    let out = w
        .test(&format!("BATCH_WAIT '{bid}' TIMEOUT='1s'"))
        .status(4)
        .run();
    assert!(
        out.stderr
            .contains("waits for node or DC 'nowhere' to take its job")
            && out.stderr.contains("batchsh worker --node nowhere")
            && !out.stderr.contains("interrupted"),
        "{}",
        out.stderr
    );
    let x = worker_with(&w, &["--node", "x", "worker"], &[]);
    alive(&w, "x");
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 5 ?' WITH ASYNC=true",
    );
    let out = w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);
    stop(x);
}
