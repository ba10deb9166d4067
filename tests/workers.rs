//! Background workers (SPEC §7): asynchronous batches, several workers on
//! one batch, a dead worker's batch taken over, the drain on SIGTERM. Real
//! processes on one store.

use crate::world::{World, eventually, signal_pid};
use serde_json::Value;
use std::process::{Child, Command, Stdio};

/// `batchsh worker --until-idle` on the world's store, as node `node`.
pub(crate) fn worker(w: &World, node: &str, env: &[(&str, &str)]) -> Child {
    worker_with(
        w,
        &["--node", node, "worker", "--workers", "4", "--until-idle"],
        env,
    )
}

/// `batchsh worker` on the world's store, with `args` (global flags,
/// then `worker` and its own).
pub(crate) fn worker_with(w: &World, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_batchsh"))
        .args(["--home", w.home().to_str().unwrap()])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(w.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Stops a worker that runs without `--until-idle` (SIGTERM: it drains),
/// which must exit 0.
#[track_caller]
pub(crate) fn stop(c: Child) {
    signal_pid(i64::from(c.id()), "-TERM");
    exits_0(c);
}

/// Waits for a worker, which must exit 0.
#[track_caller]
pub(crate) fn exits_0(c: Child) {
    let out = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// Every log of the store's home: each worker's own, and the output of
/// those started in the background.
pub(crate) fn logs(w: &World) -> String {
    std::fs::read_dir(w.home().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The nodes of the store, as SHOW NODES gives them.
pub(crate) fn nodes(w: &World) -> Vec<Value> {
    w.nodes()
}

/// Queues `statement` (an ASYNC batch) and gives its bid and notes.
pub(crate) fn queue(w: &World, statement: &str) -> (String, String) {
    let out = w.test(statement).status(0).run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    (
        v[0]["batch_id"].as_str().unwrap().to_string(),
        v[0]["notes"].as_str().unwrap().to_string(),
    )
}

/// Waits until every worker of the store has stopped (they run
/// `--until-idle`): no background process outlives the test.
pub(crate) fn all_workers_stopped(w: &World) {
    eventually("every worker to stop", || {
        nodes(w)
            .iter()
            .filter(|n| n["kind"] == "worker")
            .all(|n| n["status"] != "alive" && n["status"] != "stopping")
    });
}

/// An ASYNC batch returns at once with `Batch id | Notes`; with no worker
/// running, one is started in the background and runs the batch;
/// BATCH_WAIT then gives its result.
#[test]
fn an_async_batch_is_queued_and_a_background_worker_runs_it() {
    let w = World::new(300);
    let (bid, notes) = queue(&w, "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true");
    assert!(
        notes.contains("a background worker (pid ") && notes.contains("was started"),
        "{notes}"
    );
    let out = w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    assert!(
        out.stdout.contains("\"execution_succeeded\":300"),
        "{}",
        out.stdout
    );
    all_workers_stopped(&w);
    let workers: Vec<Value> = nodes(&w)
        .into_iter()
        .filter(|n| n["kind"] == "worker")
        .collect();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0]["status"], "stopped");
    let log = logs(&w);
    assert!(log.contains(&format!("job taken: batch {bid}")), "{log}");
}

/// Four workers on one store run one batch together: every entity
/// COMPLETED exactly once (one attempt), several nodes did work, and the
/// node rows of BATCH_SUMMARY add up to the cluster row.
#[test]
fn several_workers_process_one_batch_each_entity_once() {
    let n = 3000;
    let w = World::new(n);
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 2 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=4",
    );
    let more: Vec<Child> = ["w2", "w3", "w4"]
        .iter()
        .map(|node| worker(&w, node, &[]))
        .collect();
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    for c in more {
        exits_0(c);
    }
    all_workers_stopped(&w);
    assert_eq!(
        w.query_i64(
            "SELECT count(*) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)
                 AND status = 'COMPLETED' AND attempts = 1",
            &bid
        ),
        n
    );
    let out = w.test(&format!("BATCH_SUMMARY '{bid}'")).status(0).run();
    let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    let succeeded = |level: &'static str| -> Vec<i64> {
        rows.iter()
            .filter(|r| r["level"] == level)
            .map(|r| r["succeeded"].as_i64().unwrap())
            .collect()
    };
    let per_node = succeeded("Node");
    let cluster = succeeded("Cluster")[0];
    assert_eq!(per_node.iter().sum::<i64>(), cluster, "{rows:?}");
    assert_eq!(cluster, n);
    assert!(per_node.iter().filter(|&&k| k > 0).count() >= 2, "{rows:?}");
}

/// kill -9 of the worker that owns a batch: another worker takes it over
/// and finishes it; no entity COMPLETED before the kill runs again, none
/// is lost.
#[test]
fn a_dead_workers_batch_is_taken_over_by_another() {
    let n = 600;
    let w = World::new(n);
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.01'\" \
         WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
    );
    let helper = worker(&w, "w2", &[]);
    let owner_pid = eventually_owner_pid(&w, &bid);
    eventually("some entities to complete", || {
        w.counter(&bid, "completed") >= 50
    });
    signal_pid(owner_pid, "-9");
    let before = crate::world::completed_ids(&w, &bid);
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    exits_0(helper);
    crate::world::assert_none_lost_none_rerun(&w, n as usize, &before);
    let dead: Vec<Value> = nodes(&w)
        .into_iter()
        .filter(|n| n["pid"] == owner_pid)
        .collect();
    assert!(dead.iter().all(|n| n["status"] == "dead"), "{dead:?}");
}

/// The pid of the process that owns the batch, once one does.
pub(crate) fn eventually_owner_pid(w: &World, bid: &str) -> i64 {
    let mut pid = 0;
    eventually("a worker to own the batch", || {
        pid = w.query_i64(
            "SELECT coalesce(owner_pid, 0) FROM batches WHERE bid = ?1",
            bid,
        );
        pid != 0 && w.status(bid) == "IN_PROGRESS"
    });
    pid
}

/// SIGTERM drains a worker: it exits 0 at once, its node stopped; the
/// batch it ran is left for another worker, which finishes it.
#[test]
fn sigterm_drains_a_worker_and_another_finishes_its_batch() {
    let n = 400;
    let w = World::new(n);
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
    );
    let owner_pid = eventually_owner_pid(&w, &bid);
    let helper = worker(&w, "w2", &[]);
    signal_pid(owner_pid, "-TERM");
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    exits_0(helper);
    let drained: Vec<Value> = nodes(&w)
        .into_iter()
        .filter(|n| n["pid"] == owner_pid)
        .collect();
    assert!(
        !drained.is_empty() && drained.iter().all(|n| n["status"] == "stopped"),
        "{drained:?}"
    );
    assert_eq!(w.counter(&bid, "completed"), n);
}

/// Two statements queue asynchronous batches at the same moment on a store
/// that no worker serves: one background worker is started, not two, and
/// it runs both batches.
#[test]
fn two_statements_at_once_start_one_worker() {
    for round in 0..3 {
        let w = World::new(50);
        let gate = w.path().join("gate");
        let gate_env = gate.to_str().unwrap().to_string();
        let statements: Vec<Child> = (0..2)
            .map(|k| {
                w.spawn_with(
                    &format!(
                        "BATCH Customer FABRIC_COMMAND=\"shell 'echo {k} ?'\" WITH ASYNC=true"
                    ),
                    &[],
                    &[("BATCHSH_TEST_GATE", &gate_env)],
                )
            })
            .collect();
        eventually("both statements at the gate", || {
            std::fs::read_dir(w.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("gate.ready.")
                })
                .count()
                == 2
        });
        std::fs::write(&gate, b"").unwrap();
        let bids: Vec<String> = statements
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                assert_eq!(out.status.code(), Some(0), "round {round}");
                let v: Value =
                    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
                v[0]["batch_id"].as_str().unwrap().to_string()
            })
            .collect();
        for bid in &bids {
            w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
        }
        all_workers_stopped(&w);
        let workers = nodes(&w)
            .into_iter()
            .filter(|n| n["kind"] == "worker")
            .count();
        assert_eq!(workers, 1, "round {round}: one background worker");
    }
}

/// A worker stopped (SIGSTOP) past the dead time while another takes its
/// batch over: woken up, it writes nothing more and exits; the batch ends
/// DONE with every entity COMPLETED, none lost.
#[test]
fn a_stalled_worker_taken_over_writes_nothing_more() {
    let n = 300;
    let w = World::new(n);
    let knobs = [("BATCHSH_TEST_DEAD_AFTER_MS", "1000")];
    let out = w
        .test(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? $PPID >> ran.txt; sleep 0.02'\" \
             WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
        )
        .env(knobs[0].0, knobs[0].1)
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let bid = v[0]["batch_id"].as_str().unwrap().to_string();
    let owner = eventually_owner_pid(&w, &bid);
    eventually("some entities to complete", || {
        w.counter(&bid, "completed") >= 20
    });
    let kill = |sig: &str| signal_pid(owner, sig);
    let taken = || {
        w.query_i64(
            "SELECT coalesce(owner_pid, 0) FROM batches WHERE bid = ?1",
            &bid,
        ) != owner
    };
    // A process stopped inside a commit keeps the store's write lock, and
    // SQLite lets no other process take it: every writer waits until it
    // goes on (docs/workers.md). Such a moment is let go and another taken.
    kill("-STOP");
    let mut completed_at_stall = crate::world::completed_ids(&w, &bid);
    let helper = worker(&w, "w2", &knobs);
    for attempt in 1.. {
        let t = std::time::Instant::now();
        while !taken() && t.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if taken() {
            break;
        }
        assert!(attempt < 3, "the other worker never took the batch over");
        kill("-CONT");
        std::thread::sleep(std::time::Duration::from_millis(200));
        kill("-STOP");
        completed_at_stall = crate::world::completed_ids(&w, &bid);
    }
    kill("-CONT");
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    exits_0(helper);
    eventually("the stalled worker to exit", || {
        !std::path::Path::new(&format!("/proc/{owner}")).exists()
            || std::fs::read_to_string(format!("/proc/{owner}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
    });
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    for k in 1..=n {
        assert!(
            ran.lines()
                .any(|l| l.split(' ').next() == Some(&k.to_string())),
            "entity {k} never ran"
        );
    }
    assert_eq!(w.counter(&bid, "completed"), n);
    for id in &completed_at_stall {
        let runs = ran
            .lines()
            .filter(|l| l.split(' ').next() == Some(id.as_str()))
            .count();
        assert_eq!(
            runs, 1,
            "entity {id} was COMPLETED at the stall and ran again"
        );
    }
    let stalled: Vec<Value> = nodes(&w)
        .into_iter()
        .filter(|n| n["pid"] == owner)
        .collect();
    assert!(stalled.iter().all(|n| n["status"] == "dead"), "{stalled:?}");
}

/// kill -9 of the worker that owns a batch while it still reads the ids
/// (a large source): another worker takes it over, reads the source again
/// skipping the ids stored, and finishes: every id once, none lost, no
/// COMPLETED entity run again. (The command writes to a ledger table in
/// SQLite: fast, so the batch is large.)
#[test]
fn a_worker_killed_while_it_reads_the_ids_is_taken_over() {
    let n = 20_000;
    let w = World::new(n);
    // The ledger is a database of its own: the source is read meanwhile.
    let ledger = rusqlite::Connection::open(w.path().join("ledger.db")).unwrap();
    ledger
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE ledger (id TEXT)")
        .unwrap();
    w.test("CREATE INTERFACE ledger TYPE SQLITE PATH 'ledger.db'")
        .status(0)
        .run();
    // Four writers on the ledger in two processes: on a loaded machine
    // one may wait out the interface's busy timeout ("database is
    // locked"); such an entity wrote nothing and is retried. The test is
    // about the takeover, not the ledger's locks.
    // The background worker that owns it stops reading the source after
    // 2,000 ids, as a slow source would: the kill comes while it reads,
    // however fast the machine and the store.
    let out = w
        .test(
            "BATCH Customer FABRIC_COMMAND=\"sql ledger 'insert into ledger values (?)'\" \
             WITH ASYNC=true MAX_WORKERS_PER_NODE=2 MAX_RETRIES=3",
        )
        .env("BATCHSH_TEST_IDS_HOLD_AFTER", "2000")
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let bid = v[0]["batch_id"].as_str().unwrap().to_string();
    let owner = eventually_owner_pid(&w, &bid);
    eventually("the owner to store some ids", || {
        w.counter(&bid, "total") > 0
    });
    signal_pid(owner, "-9");
    assert_eq!(
        w.query_i64("SELECT ids_complete FROM batches WHERE bid = ?1", &bid),
        0,
        "the source was read to its end, though its reader was held"
    );
    let before = crate::world::completed_ids(&w, &bid);
    let helper = worker(&w, "w2", &[]);
    let waited = w.run(&format!("BATCH_WAIT '{bid}'"));
    let failed = w.run(&format!("BATCH_DETAILS '{bid}' STATUS='FAILED'"));
    assert_eq!(waited.code, 0, "{}\n{}", waited.stderr, failed.stdout);
    exits_0(helper);
    assert_eq!(w.counter(&bid, "total"), n, "every id stored once");
    let count = |sql: &str| -> i64 { ledger.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(DISTINCT id) FROM ledger"),
        n,
        "none lost"
    );
    let again: i64 = before
        .iter()
        .map(|id| {
            ledger
                .query_row("SELECT count(*) - 1 FROM ledger WHERE id = ?1", [id], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap()
        })
        .sum();
    assert_eq!(again, 0, "entities COMPLETED before the kill ran again");
}

/// A synchronous batch and two workers' asynchronous batches at once on
/// one store: no "database is locked" reaches a user, every batch ends
/// DONE.
#[test]
fn a_synchronous_batch_beside_two_workers_batches() {
    let w = World::new(2000);
    let (a, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 1 ?' WITH ASYNC=true ALLOW_MULTIPLE=true",
    );
    let (b, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true ALLOW_MULTIPLE=true",
    );
    let second = worker(&w, "w2", &[]);
    let sync = w
        .test("BATCH Customer FABRIC_COMMAND='echo ?' WITH ALLOW_MULTIPLE=true")
        .status(0)
        .run();
    assert!(!sync.stderr.contains("locked"), "{}", sync.stderr);
    for bid in [&a, &b] {
        let out = w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
        assert!(!out.stderr.contains("locked"), "{}", out.stderr);
        assert_eq!(w.status(bid), "DONE");
    }
    exits_0(second);
    all_workers_stopped(&w);
    let logs = logs(&w);
    assert!(!logs.contains("error"), "{logs}");
}

/// A worker on a store written by a newer batchsh is refused (exit 1) and
/// leaves the store untouched.
#[test]
fn a_worker_refuses_a_store_from_a_newer_batchsh() {
    if !crate::pg::sqlite_file_test("a_worker_refuses_a_store_from_a_newer_batchsh") {
        return;
    }
    let w = World::new(1);
    let path = w.home().join("store.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_batchsh"))
        .args([
            "--home",
            w.home().to_str().unwrap(),
            "worker",
            "--until-idle",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("written by a newer batchsh"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the store was changed"
    );
}

/// Two workers under one node name both run, side by side: their worker
/// ids tell them apart (SHOW NODES lists both).
#[test]
fn two_workers_under_one_node_name_are_told_apart() {
    let w = World::new(2000);
    let (bid, _) = queue(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 5 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
    );
    let a = worker(&w, "same", &[]);
    let b = worker(&w, "same", &[]);
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    exits_0(a);
    exits_0(b);
    let same: Vec<Value> = nodes(&w)
        .into_iter()
        .filter(|n| n["node"] == "same")
        .collect();
    assert_eq!(same.len(), 2, "{same:?}");
    assert_ne!(same[0]["worker_id"], same[1]["worker_id"]);
}

/// BATCH_WAIT on a bid that is no batch's says so, with the usual
/// suggestion of a batch one typo away.
#[test]
fn batch_wait_on_an_unknown_bid_suggests_the_near_one() {
    let w = World::new(3);
    w.test("BATCH Customer FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let bid = w.last_bid();
    let typo = format!("{}x", &bid[..bid.len() - 1]);
    w.test(&format!("BATCH_WAIT '{typo}'"))
        .status(1)
        .stderr_contains(format!("no batch with id '{typo}' (did you mean '{bid}'?)"))
        .run();
}

/// The hidden knob that leaves an asynchronous batch queued, with no
/// background worker started for it: the test changes the world under
/// the queued batch, then starts its own worker.
const NO_BACKGROUND_WORKER: (&str, &str) = ("BATCHSH_TEST_NO_BACKGROUND_WORKER", "1");

/// Queues `statement` with no worker started for it: its bid.
fn queue_unserved(w: &World, statement: &str) -> String {
    let out = w
        .test(statement)
        .env(NO_BACKGROUND_WORKER.0, NO_BACKGROUND_WORKER.1)
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let bid = v[0]["batch_id"].as_str().unwrap().to_string();
    assert_eq!(w.status(&bid), "WAITING_FOR_JOB");
    bid
}

/// A CSV interface `ids` on `ids.csv`, and a batch over it queued with no
/// worker started: its bid.
fn queue_over_a_csv_file(w: &World) -> String {
    std::fs::write(w.path().join("ids.csv"), "id\n1\n2\n3\n").unwrap();
    w.test("CREATE INTERFACE ids TYPE CSV PATH 'ids.csv' WITH HEADER=true")
        .status(0)
        .run();
    queue_unserved(
        w,
        "BATCH Customer FROM ids USING ('select id from ids') FABRIC_COMMAND='echo ?' \
         WITH ASYNC=true",
    )
}

/// Waits for a worker (bounded: one that never stops fails the test),
/// which must exit with `code`: its stderr.
#[track_caller]
fn exits_within(c: Child, code: i32, limit: std::time::Duration) -> String {
    let out = crate::world::wait_or_kill(c, limit);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    err
}

#[track_caller]
fn exits_0_within(c: Child, limit: std::time::Duration) {
    exits_within(c, 0, limit);
}

/// A CSV file and an SQLite file that batches queued on were deleted
/// before a worker took their jobs: each batch ends FAILED with an error
/// that names its interface and the missing file (BATCH_INFO, BATCH_LIST),
/// BATCH_WAIT exits 1 with it, the worker logs it and goes on to the next
/// batch, which ends DONE.
#[test]
fn a_queued_batch_whose_interface_file_vanished_ends_failed_and_the_worker_goes_on() {
    let w = World::new(5);
    let from_csv = queue_over_a_csv_file(&w);
    let from_sqlite = queue_unserved(&w, "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true");
    let after = queue_unserved(
        &w,
        "BATCH Customer ('7', '8') FABRIC_COMMAND='echo ?' WITH ASYNC=true",
    );
    let csv = w.path().join("ids.csv");
    let db = w.path().join("crm.db");
    std::fs::remove_file(&csv).unwrap();
    std::fs::remove_file(&db).unwrap();
    exits_0_within(worker(&w, "w1", &[]), std::time::Duration::from_secs(60));
    let log = logs(&w);
    for (bid, interface, file) in [(&from_csv, "ids", &csv), (&from_sqlite, "crm", &db)] {
        let says = format!("interface {interface}: {} does not exist", file.display());
        assert_eq!(w.status(bid), "FAILED");
        w.test(&format!("BATCH_WAIT '{bid}'"))
            .status(1)
            .stderr_contains(format!("error: batch {bid} ended FAILED: {says}"))
            .stderr_contains(format!("CREATE OR REPLACE INTERFACE {interface}"))
            .run();
        let info = w.test(&format!("BATCH_INFO '{bid}'")).status(0).run();
        assert!(info.stdout.contains(&says), "{}", info.stdout);
        let list = w.test("BATCH_LIST STATUS='FAILED'").status(0).run();
        let rows: Vec<Value> = serde_json::from_str(list.stdout.trim()).unwrap();
        let row = rows.iter().find(|r| r["id"] == bid.as_str()).unwrap();
        assert!(row["error"].as_str().unwrap().starts_with(&says), "{row}");
        assert!(
            log.contains(&format!("batch left: {bid} (FAILED: {says}")),
            "{log}"
        );
    }
    assert_eq!(w.status(&after), "DONE", "the worker did not go on: {log}");
}

/// An interface dropped while a batch over it waited for its job: the
/// worker cannot plan the batch, which ends FAILED saying why (it is not
/// left NEW for workers to take over again and again); the worker goes
/// on, and `--until-idle` ends.
#[test]
fn a_queued_batch_whose_interface_was_dropped_ends_failed_not_taken_over_forever() {
    let w = World::new(5);
    let bid = queue_over_a_csv_file(&w);
    w.test("DROP INTERFACE ids").status(0).run();
    exits_0_within(worker(&w, "w1", &[]), std::time::Duration::from_secs(60));
    assert_eq!(w.status(&bid), "FAILED");
    let error = w.error(&bid);
    assert!(
        error.contains("no interface named ids") && error.contains(&format!("BATCH_RETRY '{bid}'")),
        "{error}"
    );
    w.test(&format!("BATCH_WAIT '{bid}'"))
        .status(1)
        .stderr_contains("no interface named ids")
        .run();
    let log = logs(&w);
    assert!(!log.contains("takeover"), "{log}");
    assert!(log.contains(&format!("batch {bid} ended FAILED")), "{log}");
}

#[track_caller]
fn exits_1_within(c: Child, limit: std::time::Duration) -> String {
    exits_within(c, 1, limit)
}

/// A worker on a store in a folder of its own (not its home, where its
/// log is), with its home and `--store`, not `--until-idle`.
fn worker_on(w: &World, store: &std::path::Path) -> Child {
    let store = store.to_str().unwrap();
    worker_with(w, &["--store", store, "worker", "--workers", "2"], &[])
}

/// Runs `script` on the store at `store` (not the world's), queuing
/// asynchronous batches with no worker started; it must succeed.
fn on_store(w: &World, store: &std::path::Path, script: &str) -> crate::common::Output {
    crate::common::Test::new()
        .current_dir(w.path())
        .args(["--store", store.to_str().unwrap()])
        .args(w.args(script))
        .env(NO_BACKGROUND_WORKER.0, NO_BACKGROUND_WORKER.1)
        .status(0)
        .run()
}

/// The world's catalog on a store of its own at `store`, with `statement`
/// queued on it for a worker (none started): its bid.
fn queue_on(w: &World, store: &std::path::Path, statement: &str) -> String {
    on_store(w, store, crate::common::CRM_CUSTOMER_LU);
    let out = on_store(w, store, statement);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    v[0]["batch_id"].as_str().unwrap().to_string()
}

/// Whether `sql` (one row, one boolean) holds in the store at `store`,
/// read without writing to it; false while it cannot be read.
fn read_store(store: &std::path::Path, sql: &str) -> bool {
    rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row(sql, [], |r| r.get::<_, bool>(0)))
        .unwrap_or(false)
}

/// The store's folder removed (`rm -rf`) under a worker that runs a long
/// batch: SQLite would go on writing into the deleted file; the worker
/// notices at its next heartbeat, says so in its log (in its home, which
/// survives) and on stderr, and exits 1.
#[test]
fn a_worker_whose_store_folder_is_removed_stops_with_exit_1() {
    if !crate::pg::sqlite_file_test("a_worker_whose_store_folder_is_removed_stops_with_exit_1") {
        return;
    }
    let w = World::new(100);
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store.db");
    let bid = queue_on(
        &w,
        &store,
        "BATCH Customer FABRIC_COMMAND='sleep 1000 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
    );
    let child = worker_on(&w, &store);
    eventually("the worker to run the batch", || {
        let sql = format!("SELECT status = 'IN_PROGRESS' FROM batches WHERE bid = '{bid}'");
        read_store(&store, &sql)
    });
    std::fs::remove_dir_all(folder.path()).unwrap();
    let err = exits_1_within(child, std::time::Duration::from_secs(30));
    let says = format!(
        "the store {} was deleted (the file, or its folder) while this worker served it",
        store.display()
    );
    assert!(err.contains(&says), "{err}");
    assert!(err.contains("committing nothing more"), "{err}");
    let log = logs(&w);
    assert!(log.contains(&format!("error: {says}")), "{log}");
}

/// With every store in PostgreSQL (the second pass of `.ci/run`), a
/// home's store is a database named after the home: its home removed
/// under a worker that runs a long batch is its store removed, and the
/// worker exits 1 saying so, as on SQLite, rather than serve the
/// database of a test that is over.
#[test]
fn a_worker_whose_home_is_removed_stops_with_exit_1_when_the_store_stands_for_it() {
    if !crate::pg::stores_on_postgres() {
        eprintln!(
            "a_worker_whose_home_is_removed_stops_with_exit_1_when_the_store_stands_for_it: \
             skipped (only with BATCHSH_TEST_STORE_SERVER: the SQLite store is in the home)"
        );
        return;
    }
    let w = World::new(100);
    let bid = queue_unserved(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 1000 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
    );
    let child = worker(&w, "w1", &[]);
    eventually("the worker to run the batch", || {
        w.status(&bid) == "IN_PROGRESS"
    });
    std::fs::remove_dir_all(w.home()).unwrap();
    let err = exits_1_within(child, std::time::Duration::from_secs(30));
    assert!(
        err.contains(&format!(
            "the home {} was deleted while this worker served it",
            w.home().display()
        )) && err.contains("committing nothing more"),
        "{err}"
    );
}

/// The store file replaced by another (a restore copied over it) under
/// an idle worker: it exits 1 saying so, rather than serving the old file.
#[test]
fn a_worker_whose_store_file_is_replaced_stops_with_exit_1() {
    if !crate::pg::sqlite_file_test("a_worker_whose_store_file_is_replaced_stops_with_exit_1") {
        return;
    }
    let w = World::new(1);
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store.db");
    on_store(&w, &store, crate::common::CRM_CUSTOMER_LU);
    let child = worker_on(&w, &store);
    eventually("the worker to register", || {
        read_store(&store, "SELECT count(*) > 0 FROM nodes")
    });
    let copy = folder.path().join("copy.db");
    std::fs::copy(&store, &copy).unwrap();
    std::fs::rename(&copy, &store).unwrap();
    let err = exits_1_within(child, std::time::Duration::from_secs(30));
    assert!(
        err.contains(&format!(
            "the store {} was replaced by another file while this worker served it",
            store.display()
        )),
        "{err}"
    );
}

/// A worker whose store fails under its own turns (here the jobs table is
/// renamed away: it cannot look for due jobs, while its batch's writes
/// still work) stops: its batch drains first, as on SIGTERM (the entities
/// in flight finish and are recorded, those claimed and not started go
/// back), so nothing is left in process and the batch is not FAILED; it
/// exits 1 saying why; another worker finishes the batch, each entity run
/// once.
#[test]
fn a_worker_whose_store_fails_drains_its_batches_before_it_exits_1() {
    let n = 200;
    let w = World::new(n);
    let bid = queue_unserved(
        &w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.2'\" \
         WITH ASYNC=true MAX_WORKERS_PER_NODE=4",
    );
    let first = worker(&w, "w1", &[]);
    eventually("some entities to complete", || {
        w.counter(&bid, "completed") >= 8
    });
    w.store()
        .execute("ALTER TABLE jobs RENAME TO jobs_away", &[]);
    let err = exits_1_within(first, std::time::Duration::from_secs(30));
    assert!(
        err.contains("jobs") && err.contains("its batches drained first"),
        "{err}"
    );
    let ran = || -> Vec<String> {
        let text = std::fs::read_to_string(w.path().join("ran.txt")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    };
    assert_eq!(w.status(&bid), "IN_PROGRESS", "{}", w.error(&bid));
    assert_eq!(w.counter(&bid, "in_process"), 0, "claims left in process");
    assert_eq!(
        ran().len() as i64,
        w.counter(&bid, "completed"),
        "an entity ran and was not recorded"
    );
    // Its history says why it stopped: not a signal, nobody sent one. (On
    // PostgreSQL the batch's own last write fails too: a trigger of the
    // batch row updates its job's row, in the table renamed away.)
    let history = w.run(&format!("BATCH_HISTORY '{bid}'")).stdout;
    assert!(!history.contains("SIGTERM"), "{history}");
    assert!(
        crate::pg::stores_on_postgres()
            || history
                .contains("stopped with its worker, whose store failed; BATCH_RETRY finishes it"),
        "{history}"
    );
    w.store()
        .execute("ALTER TABLE jobs_away RENAME TO jobs", &[]);
    exits_0_within(worker(&w, "w2", &[]), std::time::Duration::from_secs(60));
    assert_eq!(w.status(&bid), "DONE");
    assert_eq!(w.counter(&bid, "completed"), n);
    let mut ids = ran();
    let runs = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (ids.len(), runs),
        (n as usize, n as usize),
        "run twice, or never"
    );
}

/// A helper whose batch's owner died, and whose batch was taken over
/// while it was stopped, says so from its own point of view: the node
/// that took the batch over judged the owner dead, not this process.
#[test]
fn a_helper_taken_over_says_which_node_was_judged_dead() {
    let w = World::new(400);
    let bid = queue_unserved(
        &w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.05; echo ?'\" WITH ASYNC=true \
         MAX_WORKERS_PER_NODE=2",
    );
    let owner = worker(&w, "w1", &[]);
    let owner_pid = eventually_owner_pid(&w, &bid);
    let helper = worker(&w, "w2", &[]);
    eventually("the helper to run entities", || {
        w.store().i64(
            "SELECT count(*) FROM batch_entities WHERE node = 'w2' AND status = 'COMPLETED'",
            &[],
        ) > 0
    });
    let helper_pid = i64::from(helper.id());
    signal_pid(helper_pid, "-STOP");
    signal_pid(owner_pid, "-9");
    let _ = crate::world::wait_or_kill(owner, std::time::Duration::from_secs(10));
    // The owner's node is not this host's name: its heartbeat's age
    // tells the retry that it is dead (a second, here).
    eventually("the retry to take the batch over", || {
        let out = w
            .test(&format!("BATCH_RETRY '{bid}'"))
            .env("BATCHSH_TEST_DEAD_AFTER_MS", "1000")
            .run();
        assert!(
            out.code == 0 || out.stderr.contains("it is running on node w1"),
            "{}",
            out.stderr
        );
        out.code == 0
    });
    signal_pid(helper_pid, "-CONT");
    exits_0_within(helper, std::time::Duration::from_secs(30));
    let log = logs(&w);
    let left = log
        .lines()
        .find(|l| l.contains(&format!("batch left: {bid} (taken over")))
        .unwrap_or_else(|| panic!("no takeover in the helper's log: {log}"));
    assert!(
        left.contains("which judged its owner, node w1, dead; this node stopped helping with it")
            && !left.contains("judged this process dead"),
        "{left}"
    );
}

/// A helper killed while plenty of the batch still waits: its claims go
/// back to WAITING as soon as it is found dead, at the owner's next look
/// (within a second), not once nothing else waits; the batch ends DONE.
/// Asserted on the store: when the dead node holds nothing any more, most
/// of the batch is still WAITING.
#[test]
fn a_dead_helpers_claims_go_back_at_once_not_at_the_end() {
    let n = 600;
    let w = World::new(n);
    let knob = [("BATCHSH_TEST_DEAD_AFTER_MS", "1000")];
    let bid = queue_unserved(
        &w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.1; echo ?'\" WITH ASYNC=true \
         MAX_WORKERS_PER_NODE=2",
    );
    let owner = worker(&w, "w1", &knob);
    eventually_owner_pid(&w, &bid);
    let helpers: Vec<Child> = ["w2", "w3"].iter().map(|n| worker(&w, n, &knob)).collect();
    let worker_of = |node: &str| -> String {
        let mut id = String::new();
        eventually("the helper's node", || {
            let ids = w.store().strings(
                "SELECT worker_id FROM nodes WHERE node = ?1 AND status = 'RUNNING'",
                &[&node],
            );
            id = ids.into_iter().next().unwrap_or_default();
            !id.is_empty()
        });
        id
    };
    let held = |worker: &str| -> i64 {
        w.store().i64(
            "SELECT (SELECT count(*) FROM batch_entities WHERE worker = ?1
                         AND status = 'IN_PROCESS')
                  + (SELECT count(*) FROM batch_claimed WHERE worker = ?1)",
            &[&worker],
        )
    };
    let w2 = worker_of("w2");
    eventually("the helper to hold claims", || held(&w2) > 0);
    let mut helpers = helpers.into_iter();
    let mut killed = helpers.next().unwrap();
    signal_pid(i64::from(killed.id()), "-9");
    killed.wait().unwrap();
    let mut waiting_then = 0;
    eventually("the dead helper's claims to go back", || {
        waiting_then = w.counter(&bid, "waiting");
        held(&w2) == 0
    });
    assert!(
        waiting_then > n / 3,
        "the dead helper's claims went back only with {waiting_then} of {n} left waiting"
    );
    w.assert_counters_add_up(&bid);
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    assert_eq!(w.counter(&bid, "completed"), n);
    w.assert_counters_add_up(&bid);
    for c in helpers.chain([owner]) {
        exits_0(c);
    }
}

/// BATCH_IN_PROCESS lists the entities a node on another host holds
/// until they are taken over: the host killed and silent past the
/// dead-after time, but not yet judged dead by another node, still holds
/// them (its node shown); once a worker takes the batch over (declaring
/// it dead, its claims back to WAITING), they are no longer listed.
#[test]
fn batch_in_process_lists_a_killed_hosts_entities_until_they_are_taken_over() {
    let w = World::new(40);
    let knob = [("BATCHSH_TEST_DEAD_AFTER_MS", "1000")];
    let bid = queue_unserved(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 2000 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2",
    );
    let mut first = worker(&w, "w1", &knob);
    let listed = || -> Vec<Value> {
        let out = w
            .test(&format!("BATCH_IN_PROCESS '{bid}'"))
            .env(knob[0].0, knob[0].1)
            .status(0)
            .run();
        let rows: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        rows.as_array().unwrap().clone()
    };
    eventually("entities in process", || !listed().is_empty());
    signal_pid(i64::from(first.id()), "-9");
    first.wait().unwrap();
    // As if w1 ran on another host that died long ago: its pid tells
    // nothing here, and its heartbeats are past the dead-after time.
    let long_ago = "2026-01-01T00:00:00.000Z";
    let mut store = w.store();
    store.execute(
        "UPDATE nodes SET host = 'elsewhere', heartbeat_at = ?1 WHERE node = 'w1'",
        &[&long_ago],
    );
    store.execute(
        "UPDATE batches SET heartbeat_at = ?1 WHERE bid = ?2",
        &[&long_ago, &bid],
    );
    let held = w.counter(&bid, "in_process");
    assert!(held > 0);
    let rows = listed();
    assert_eq!(rows.len() as i64, held, "{rows:?}");
    assert!(rows.iter().all(|r| r["node_id"] == "w1"), "{rows:?}");
    let second = worker(&w, "w2", &knob);
    eventually("the takeover", || {
        listed().iter().all(|r| r["node_id"] != "w1")
    });
    assert!(
        nodes(&w)
            .iter()
            .any(|n| n["node"] == "w1" && n["status"] == "dead"),
        "{:?}",
        nodes(&w)
    );
    w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
    exits_0(second);
}
