//! Two processes on one store: identical batches started at one moment, a
//! run that stalls (SIGSTOP, a store locked by another process) and is
//! taken over, a store locked for longer than the busy timeout, a store
//! deleted under a run. Real processes throughout; the hidden timing knobs
//! (`BATCHSH_TEST_DEAD_AFTER_MS`, `BATCHSH_TEST_BUSY_TIMEOUT_MS`,
//! `BATCHSH_TEST_GATE`) make the limits short, so no test waits on the
//! clock for longer than its scenario needs.

use crate::world::{World, completed_ids, eventually, signal, wait_or_kill};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Output};
use std::time::Duration;

/// A run's owner counts as dead after this long without a heartbeat, in
/// these tests (10 s otherwise).
const DEAD_AFTER_MS: &str = "1000";

/// A command that records each run of an entity in `ran.txt`: the id, the
/// batchsh process that started it, and when (nanoseconds since 1970).
const RECORDING: &str = "shell 'echo ? $PPID $(date +%s%N) >> ran.txt; sleep 0.05'";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// How many times each id ran, from `ran.txt`.
fn runs(w: &World) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    let text = std::fs::read_to_string(w.path().join("ran.txt")).unwrap_or_default();
    for line in text.lines() {
        let id = line.split_whitespace().next().unwrap_or_default();
        *runs.entry(id.to_string()).or_default() += 1;
    }
    runs
}

/// Now, in nanoseconds since 1970, as `date +%s%N` gives it.
fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The entities process `pid` started after `after_ns`, from `ran.txt`.
fn started_after(w: &World, pid: u32, after_ns: u128) -> Vec<String> {
    let text = std::fs::read_to_string(w.path().join("ran.txt")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (id, by, at) = (f.next()?, f.next()?, f.next()?);
            (by == pid.to_string() && at.parse::<u128>().ok()? > after_ns).then(|| id.to_string())
        })
        .collect()
}

/// What a run that stalled started once it woke up at `woke`: at most the
/// one entity each of its 2 workers had just let through its last check of
/// the run's hold when the stall came (a check, then the start: a stall can
/// fall between the two), each among those `in_flight` at the stall, which
/// may run twice anyway. Entities it had claimed and not reached, it did
/// not start.
#[track_caller]
fn assert_started_only_at_the_stall(
    w: &World,
    pid: u32,
    woke: u128,
    in_flight: &HashSet<String>,
    what: &str,
) {
    let late = started_after(w, pid, woke);
    assert!(
        late.len() <= 2 && late.iter().all(|id| in_flight.contains(id)),
        "{what}: the old owner started {late:?} after it woke up (in flight at the stall: {in_flight:?})"
    );
}

/// The entities that are IN_PROCESS in the store now: claimed by the run
/// and not finished there (rows, and ids claimed as they arrived).
fn in_process(w: &World, bid: &str) -> HashSet<String> {
    w.store()
        .strings(
            "SELECT entity_id FROM batch_entities
             WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'IN_PROCESS'
             UNION SELECT entity_id FROM batch_claimed
             WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
            &[&bid],
        )
        .into_iter()
        .collect()
}

/// Seconds since the batch's last heartbeat, on the store's clock.
fn heartbeat_age(w: &World, bid: &str) -> f64 {
    let mut c = w.store();
    let sql = if c.is_postgres() {
        "SELECT extract(epoch FROM clock_timestamp() - heartbeat_at::timestamptz)::float8 AS age
         FROM batches WHERE bid = ?1"
    } else {
        "SELECT (julianday('now') - julianday(heartbeat_at)) * 86400 AS age FROM batches WHERE bid = ?1"
    };
    c.row(sql, &[&bid])["age"].as_f64().unwrap()
}

fn completed(w: &World, bid: &str) -> i64 {
    w.counter(bid, "completed")
}

/// Every one of the `n` entities is COMPLETED, once in the store, and ran
/// at least once; the ones that ran more than once are among `in_flight`,
/// those that were in flight when the run stalled (at-least-once for
/// those alone).
fn assert_all_completed_none_rerun_but(
    w: &World,
    bid: &str,
    n: usize,
    in_flight: &HashSet<String>,
) {
    assert_eq!(w.status(bid), "DONE");
    w.assert_counters_add_up(bid);
    let done = completed_ids(w, bid);
    assert_eq!(done.len(), n, "not every entity is COMPLETED");
    let unique: HashSet<&String> = done.iter().collect();
    assert_eq!(unique.len(), n, "an entity is COMPLETED twice");
    let runs = runs(w);
    for k in 1..=n {
        assert!(runs.contains_key(&k.to_string()), "entity {k} never ran");
    }
    for (id, count) in &runs {
        assert!(
            *count == 1 || in_flight.contains(id),
            "entity {id} ran {count} times but was not in flight at the stall ({in_flight:?})"
        );
    }
}

/// Stops `child` with SIGSTOP at a moment it holds no lock on the store
/// (stopped inside a transaction, it would keep every other process out).
fn stop_between_writes(w: &World, child: &Child) {
    loop {
        signal(child, "-STOP");
        if w.store().holds_no_lock() {
            return;
        }
        signal(child, "-CONT");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A start line for one process (`BATCHSH_TEST_GATE`).
struct Gate {
    dir: tempfile::TempDir,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> String {
        self.dir.path().join("gate").to_str().unwrap().to_string()
    }

    /// Waits until the process stands at the gate.
    fn wait_ready(&self) {
        eventually("the process to reach the gate", || {
            std::fs::read_dir(self.dir.path()).unwrap().count() == 1
        });
    }

    fn open(&self) {
        std::fs::write(self.path(), "").unwrap();
    }
}

/// A BATCH_RETRY of `bid` that has read the batch and judged its owner
/// dead, held at its gate just before it takes the batch over.
fn gated_retry(w: &World, bid: &str) -> (Child, Gate) {
    let gate = Gate::new();
    let retry = w.spawn_with(
        &format!("BATCH_RETRY '{bid}'"),
        &[],
        &[
            ("BATCHSH_TEST_DEAD_AFTER_MS", DEAD_AFTER_MS),
            ("BATCHSH_TEST_GATE", &gate.path()),
        ],
    );
    gate.wait_ready();
    (retry, gate)
}

/// SPEC §4 ALLOW_MULTIPLE=false: identical BATCH statements released at
/// one moment (two cron lines, a retrying wrapper): exactly one runs, the
/// others are refused with its id, and no entity runs twice. The check for
/// an active twin and the creation of the batch are one transaction.
#[test]
fn identical_batches_started_at_one_moment_run_once() {
    let w = World::new(2);
    let gates = tempfile::tempdir().unwrap();
    for round in 0..30 {
        let processes = 2 + round % 3;
        let gate = gates.path().join(format!("gate{round}"));
        let gate_text = gate.to_str().unwrap().to_string();
        let ran = format!("ran{round}.txt");
        let script = format!(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> {ran}; sleep 0.2'\" WITH MAX_WORKERS_PER_NODE=1"
        );
        let children: Vec<Child> = (0..processes)
            .map(|_| w.spawn_with(&script, &[], &[("BATCHSH_TEST_GATE", &gate_text)]))
            .collect();
        eventually("every process to reach the gate", || {
            std::fs::read_dir(gates.path())
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy()
                        .starts_with(&format!("gate{round}.ready."))
                })
                .count()
                == processes
        });
        std::fs::write(&gate, "").unwrap();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners: Vec<&Output> = outs.iter().filter(|o| o.status.code() == Some(0)).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one runs");
        let bid =
            crate::world::result_row(&String::from_utf8_lossy(&winners[0].stdout))["batch_id"]
                .as_str()
                .unwrap()
                .to_string();
        for o in outs.iter().filter(|o| o.status.code() != Some(0)) {
            let err = stderr(o);
            assert_eq!(o.status.code(), Some(1), "round {round}: {err}");
            assert!(
                err.contains(&format!(
                    "batch {bid} with the same command is still running"
                )),
                "round {round}: {err}"
            );
        }
        let ran = std::fs::read_to_string(w.path().join(&ran)).unwrap();
        let mut lines: Vec<&str> = ran.lines().collect();
        lines.sort();
        assert_eq!(lines, ["1", "2"], "round {round}: every entity once");
    }
    assert_eq!(w.batch_count(), 30);
}

/// A world whose batch of `n` recording entities runs under the node name
/// `stalled-node`, which is not the host name: other processes judge it by
/// its heartbeat alone. Returns once 10 entities are COMPLETED.
fn owner_under_another_node_name(n: usize) -> (World, Child, String) {
    let w = World::new(n as i64);
    let owner = w.spawn_with(
        &format!("BATCH Customer FABRIC_COMMAND=\"{RECORDING}\" WITH MAX_WORKERS_PER_NODE=2"),
        &["--node", "stalled-node"],
        &[("BATCHSH_TEST_DEAD_AFTER_MS", DEAD_AFTER_MS)],
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || completed(&w, &bid) >= 10);
    (w, owner, bid)
}

/// A run whose node name is not the host name (`--node`, containers that
/// share a store) is judged by its heartbeat alone. Stopped (SIGSTOP:
/// Ctrl-Z, a paused VM) for longer than the dead-after limit, it is taken
/// over by a BATCH_RETRY from another process; when it wakes up, the step
/// it had pending, with its outcomes and new claims, writes nothing: the
/// new owner finishes the batch DONE with every entity COMPLETED, and only
/// the entities in flight at the stall ran twice.
#[test]
fn a_stalled_run_that_was_taken_over_loses_nothing() {
    std::thread::scope(|s| {
        for round in 0..5 {
            s.spawn(move || stalled_then_taken_over(round));
        }
    });
}

fn stalled_then_taken_over(round: usize) {
    let n = 60;
    let (w, owner, bid) = owner_under_another_node_name(n);
    let knobs = [("BATCHSH_TEST_DEAD_AFTER_MS", DEAD_AFTER_MS)];
    stop_between_writes(&w, &owner);
    let in_flight = in_process(&w, &bid);
    let at_stall = completed(&w, &bid);
    eventually("the stalled owner to count as dead", || {
        heartbeat_age(&w, &bid) > 1.2
    });
    let retry = w.spawn_with(&format!("BATCH_RETRY '{bid}'"), &[], &knobs);
    eventually("the new owner to make progress", || {
        completed(&w, &bid) >= at_stall + 5
    });
    let (owner_pid, woke) = (owner.id(), now_ns());
    signal(&owner, "-CONT");
    let (owner, retry) = (
        owner.wait_with_output().unwrap(),
        retry.wait_with_output().unwrap(),
    );
    assert_eq!(
        retry.status.code(),
        Some(0),
        "round {round}: {}",
        stderr(&retry)
    );
    assert_eq!(
        owner.status.code(),
        Some(1),
        "round {round}: {}",
        stderr(&owner)
    );
    assert!(
        stderr(&owner).contains(&format!("batch {bid} was taken over by node")),
        "round {round}: {}",
        stderr(&owner)
    );
    // Woken up, the old owner started nothing: what it had claimed is the
    // new owner's, who may have completed it meanwhile.
    assert_started_only_at_the_stall(&w, owner_pid, woke, &in_flight, &format!("round {round}"));
    assert_all_completed_none_rerun_but(&w, &bid, n, &in_flight);
}

/// The same with the stall caused by another process holding the store
/// (a backup, `sqlite3 store.db 'BEGIN EXCLUSIVE'`) past the dead-after
/// limit, while a BATCH_RETRY waits for the store too. When the lock goes,
/// either the owner writes first (its heartbeat comes back: the retry is
/// refused and says the batch is running) or the retry takes the batch
/// over (the owner's pending step writes nothing). Either way the batch
/// ends DONE, every entity COMPLETED, none run twice but those in flight.
#[test]
fn a_run_stalled_by_a_locked_store_and_taken_over_loses_nothing() {
    if !crate::pg::sqlite_file_test("a_run_stalled_by_a_locked_store_and_taken_over_loses_nothing")
    {
        return;
    }
    std::thread::scope(|s| {
        for round in 0..5 {
            s.spawn(move || locked_then_taken_over(round));
        }
    });
}

fn locked_then_taken_over(round: usize) {
    let n = 60;
    let (w, owner, bid) = owner_under_another_node_name(n);
    let holder = w.sqlite();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let in_flight = in_process(&w, &bid);
    eventually("the owner to count as dead", || {
        heartbeat_age(&w, &bid) > 1.2
    });
    // The retry reads the batch (readers are not locked out) and judges
    // its owner dead; let go, it waits for the store, as the owner does.
    let (retry, gate) = gated_retry(&w, &bid);
    gate.open();
    std::thread::sleep(Duration::from_millis(50));
    let (owner_pid, released) = (owner.id(), now_ns());
    holder.execute_batch("COMMIT").unwrap();
    let (owner, retry) = (
        owner.wait_with_output().unwrap(),
        retry.wait_with_output().unwrap(),
    );
    let (oc, rc) = (owner.status.code(), retry.status.code());
    if oc == Some(0) {
        assert_eq!(rc, Some(1), "round {round}: {}", stderr(&retry));
        assert!(
            stderr(&retry).contains("it is running on node stalled-node"),
            "round {round}: {}",
            stderr(&retry)
        );
        assert!(
            !stderr(&retry).contains("took it over"),
            "{}",
            stderr(&retry)
        );
    } else {
        assert_eq!(rc, Some(0), "round {round}: {}", stderr(&retry));
        assert_eq!(oc, Some(1), "round {round}: {}", stderr(&owner));
        assert!(
            stderr(&owner).contains(&format!("batch {bid} was taken over by node")),
            "round {round}: {}",
            stderr(&owner)
        );
        // Its hold on the batch unconfirmed for the length of the lock, the
        // old owner started nothing once the store was free.
        assert_eq!(
            started_after(&w, owner_pid, released),
            Vec::<String>::new(),
            "round {round}"
        );
    }
    assert_all_completed_none_rerun_but(&w, &bid, n, &in_flight);
}

/// A retry that judged the owner dead, and finds when it writes that the
/// owner's heartbeat came back (it had stalled, not died), says the batch
/// is running, not that someone took it over.
#[test]
fn a_retry_that_loses_to_an_owner_that_woke_up_says_the_batch_runs() {
    let n = 80;
    let w = World::new(n as i64);
    let knobs = [("BATCHSH_TEST_DEAD_AFTER_MS", DEAD_AFTER_MS)];
    let owner = w.spawn_with(
        &format!("BATCH Customer FABRIC_COMMAND=\"{RECORDING}\" WITH MAX_WORKERS_PER_NODE=2"),
        &["--node", "stalled-node"],
        &knobs,
    );
    w.wait_until_running();
    let bid = w.last_bid();
    stop_between_writes(&w, &owner);
    eventually("the stalled owner to count as dead", || {
        heartbeat_age(&w, &bid) > 1.2
    });
    let (retry, gate) = gated_retry(&w, &bid);
    // The owner wakes up and writes its heartbeat before the retry writes.
    signal(&owner, "-CONT");
    eventually("the owner's heartbeat", || heartbeat_age(&w, &bid) < 0.9);
    gate.open();
    let retry = retry.wait_with_output().unwrap();
    let err = stderr(&retry);
    assert_eq!(retry.status.code(), Some(1), "{err}");
    assert!(
        err.contains("it is running on node stalled-node") && err.contains("heartbeat came back"),
        "{err}"
    );
    assert!(!err.contains("took it over"), "{err}");
    let owner = owner.wait_with_output().unwrap();
    assert_eq!(owner.status.code(), Some(0), "{}", stderr(&owner));
    assert_all_completed_none_rerun_but(&w, &bid, n, &HashSet::new());
}

/// A stalled run that another process cancelled or paused, as a batch
/// nobody runs, writes nothing when it wakes up: a cancelled batch stays
/// CANCELLED (it does not end DONE, its ON_DONE does not run), a paused one
/// stays PAUSED until resumed, and no entity completes meanwhile.
#[test]
fn a_stalled_run_that_was_cancelled_or_paused_writes_nothing_when_it_wakes() {
    for verb in ["BATCH_CANCEL", "BATCH_PAUSE"] {
        let n = 60;
        let (w, owner, bid) = owner_under_another_node_name(n);
        stop_between_writes(&w, &owner);
        let in_flight = in_process(&w, &bid);
        eventually("the stalled owner to count as dead", || {
            heartbeat_age(&w, &bid) > 1.2
        });
        let out = w
            .spawn_with(
                &format!("{verb} '{bid}'"),
                &[],
                &[("BATCHSH_TEST_DEAD_AFTER_MS", DEAD_AFTER_MS)],
            )
            .wait_with_output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{verb}: {}", stderr(&out));
        let status = w.status(&bid);
        let done = completed(&w, &bid);
        let (owner_pid, woke) = (owner.id(), now_ns());
        signal(&owner, "-CONT");
        let owner = owner.wait_with_output().unwrap();
        assert_eq!(owner.status.code(), Some(1), "{verb}: {}", stderr(&owner));
        assert!(
            stderr(&owner).contains(&format!(
                "batch {bid} was taken over by another process (the batch is {status} now)"
            )),
            "{verb}: {}",
            stderr(&owner)
        );
        assert_eq!(w.status(&bid), status, "{verb}");
        assert_started_only_at_the_stall(&w, owner_pid, woke, &in_flight, verb);
        assert_eq!(
            completed(&w, &bid),
            done,
            "{verb}: an entity completed after it"
        );
        w.assert_counters_add_up(&bid);
        if verb == "BATCH_PAUSE" {
            // Nobody runs it: resuming runs it here, to its end.
            w.test(&format!("BATCH_RESUME '{bid}'")).status(0).run();
            assert_eq!(w.status(&bid), "DONE");
            assert_eq!(completed_ids(&w, &bid).len(), n);
        }
    }
}

/// A run started with SIGHUP ignored (`nohup`) outlives its terminal: a
/// SIGHUP does not stop it.
#[test]
fn a_run_under_nohup_ignores_sighup() {
    let n = 40;
    let w = World::new(n as i64);
    let child = std::process::Command::new("nohup")
        .arg(env!("CARGO_BIN_EXE_batchsh"))
        .args(w.args(&format!(
            "BATCH Customer FABRIC_COMMAND=\"{RECORDING}\" WITH MAX_WORKERS_PER_NODE=2"
        )))
        .current_dir(w.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || completed(&w, &bid) >= 5);
    signal(&child, "-HUP");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_all_completed_none_rerun_but(&w, &bid, n, &HashSet::new());
}

/// A store held by another process for longer than the busy timeout (a
/// backup, a long VACUUM) does not fail the batch that runs: the run keeps
/// its outcomes and waits, says so on stderr, and ends DONE, with no
/// entity run twice.
#[test]
fn a_store_locked_longer_than_the_busy_timeout_does_not_fail_the_batch() {
    if !crate::pg::sqlite_file_test(
        "a_store_locked_longer_than_the_busy_timeout_does_not_fail_the_batch",
    ) {
        return;
    }
    let n = 80;
    let w = World::new(n as i64);
    let child = w.spawn_with(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" WITH MAX_WORKERS_PER_NODE=2",
        &[],
        &[("BATCHSH_TEST_BUSY_TIMEOUT_MS", "300")],
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || completed(&w, &bid) >= 10);
    let holder = w.sqlite();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // Five times the run's busy timeout.
    std::thread::sleep(Duration::from_millis(1500));
    holder.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("is locked by another process"), "{err}");
    assert!(err.contains("free again"), "{err}");
    assert_eq!(w.status(&bid), "DONE");
    w.assert_counters_add_up(&bid);
    assert_eq!(completed_ids(&w, &bid).len(), n);
    let runs = runs(&w);
    assert_eq!(runs.len(), n, "an entity never ran");
    assert!(
        runs.values().all(|&c| c == 1),
        "an entity ran twice: {runs:?}"
    );
}

/// A statement that cannot get the store within the busy timeout says
/// which store, how long it waited and what to do, and changes nothing.
#[test]
fn a_statement_that_cannot_get_the_store_says_which_and_what_to_do() {
    if !crate::pg::sqlite_file_test(
        "a_statement_that_cannot_get_the_store_says_which_and_what_to_do",
    ) {
        return;
    }
    let w = World::new(3);
    let holder = w.sqlite();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let out = w
        .spawn_with(
            "CREATE INTERFACE other TYPE SQLITE PATH 'crm.db'",
            &[],
            &[("BATCHSH_TEST_BUSY_TIMEOUT_MS", "300")],
        )
        .wait_with_output()
        .unwrap();
    holder.execute_batch("COMMIT").unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let store = w.home().join("store.db");
    assert!(
        err.contains(&format!(
            "the store {} is locked by another process (waited 300 ms for it)",
            store.display()
        )) && err.contains("run this again once that process is done"),
        "{err}"
    );
    let n: i64 = w
        .sqlite()
        .query_row(
            "SELECT count(*) FROM interfaces WHERE name = 'other'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

/// A batch never ends while entities are IN_PROCESS: claims that no live
/// run holds (here, one written by hand as a run that stalled would leave
/// it) wait again and run before the batch ends DONE.
#[test]
fn a_batch_never_ends_with_entities_in_process() {
    let n = 40;
    let w = World::new(n as i64);
    let child = w.spawn(&format!(
        "BATCH Customer FABRIC_COMMAND=\"{RECORDING}\" WITH MAX_WORKERS_PER_NODE=1"
    ));
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("entities stored WAITING", || {
        w.query_i64(
            "SELECT count(*) FROM batch_entities
             WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'WAITING'",
            &bid,
        ) > 2
    });
    // The counters change by the ghost's claim alone (in PostgreSQL,
    // batches' own row adds to the workers' changes).
    let mut c = w.store();
    c.begin();
    let taken = c.execute(
        "UPDATE batch_entities SET status = 'IN_PROCESS', node = 'ghost', attempts = 1
         WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'WAITING' AND seq = (
             SELECT max(seq) FROM batch_entities
             WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'WAITING')",
        &[&bid],
    );
    assert_eq!(taken, 1, "no entity waited to be taken by the ghost");
    c.execute(
        "UPDATE batches SET waiting = waiting - 1, in_process = in_process + 1 WHERE bid = ?1",
        &[&bid],
    );
    c.commit();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_all_completed_none_rerun_but(&w, &bid, n, &HashSet::new());
}

/// BATCH_RETRY of a finished batch also runs the IN_PROCESS entities that
/// no live run holds (a batch that an earlier batchsh ended with such
/// claims), not only the FAILED ones.
#[test]
fn retrying_a_finished_batch_runs_its_orphaned_claims() {
    let n = 10;
    let w = World::new(n as i64);
    w.test(&format!("BATCH Customer FABRIC_COMMAND=\"{RECORDING}\""))
        .status(0)
        .run();
    let bid = w.last_bid();
    // Counters changed by two (in PostgreSQL, batches' own row adds to
    // the workers' changes).
    let mut c = w.store();
    c.begin();
    c.execute(
        "UPDATE batch_entities SET status = 'IN_PROCESS', node = 'ghost'
         WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id IN ('3', '7')",
        &[&bid],
    );
    c.execute(
        "UPDATE batches SET completed = completed - 2, in_process = in_process + 2 WHERE bid = ?1",
        &[&bid],
    );
    c.commit();
    std::fs::remove_file(w.path().join("ran.txt")).unwrap();
    w.retry_to_done(&bid);
    assert_eq!(completed_ids(&w, &bid).len(), n);
    let mut again: Vec<String> = runs(&w).into_keys().collect();
    again.sort();
    assert_eq!(again, ["3", "7"]);
}

/// The store file deleted under a running batch (with its folder), or its
/// write-ahead log alone (which holds what was committed since the last
/// checkpoint): the run ends with an error and exit 1, not exit 0 with its
/// record gone.
#[test]
fn a_store_deleted_under_a_run_fails_it() {
    if !crate::pg::sqlite_file_test("a_store_deleted_under_a_run_fails_it") {
        return;
    }
    let w = World::new(20);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.1; echo ?'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    w.wait_until_running();
    std::fs::remove_dir_all(w.home()).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("was deleted while this batch ran") && err.contains("record went with it"),
        "{err}"
    );

    let w = World::new(20);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.1; echo ?'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    w.wait_until_running();
    let wal = w.home().join("store.db-wal");
    std::fs::remove_file(&wal).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} was deleted while this batch ran",
            wal.display()
        )),
        "{err}"
    );
}

/// A stop signal while the run waits for a locked store stops it at once
/// (nothing can be committed meanwhile), however long the busy timeout:
/// the batch is left as after a crash, for BATCH_RETRY.
#[test]
fn a_stop_signal_during_a_lock_wait_stops_the_run() {
    if !crate::pg::sqlite_file_test("a_stop_signal_during_a_lock_wait_stops_the_run") {
        return;
    }
    let n = 40;
    let w = World::new(n as i64);
    let child = w.spawn_with(
        &format!("BATCH Customer FABRIC_COMMAND=\"{RECORDING}\" WITH MAX_WORKERS_PER_NODE=2"),
        &[],
        // Longer than the test waits: only the signal can end the wait.
        &[("BATCHSH_TEST_BUSY_TIMEOUT_MS", "600000")],
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || completed(&w, &bid) >= 5);
    let holder = w.sqlite();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-TERM");
    // The lock is held until batchsh has exited.
    let out = wait_or_kill(child, Duration::from_secs(20));
    holder.execute_batch("COMMIT").unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains(&format!("BATCH_RETRY '{bid}' finishes it")),
        "{err}"
    );
    w.retry_to_done(&bid);
    assert_eq!(completed_ids(&w, &bid).len(), n);
}

/// A retry of a cancelled batch is refused while an identical batch is
/// active, as a second identical BATCH would be: the two would run the
/// same entities side by side.
#[test]
fn a_retry_is_refused_beside_an_active_batch_with_its_command() {
    let w = World::new(30);
    let statement =
        "BATCH Customer FABRIC_COMMAND=\"shell 'sleep 0.1; echo ?'\" WITH MAX_WORKERS_PER_NODE=1";
    let first = w.spawn(statement);
    w.wait_until_running();
    let first_bid = w.last_bid();
    w.test(&format!("BATCH_CANCEL '{first_bid}'"))
        .status(0)
        .run();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let second = w.spawn(statement);
    eventually("the second batch to run", || {
        w.last_bid() != first_bid && w.status(&w.last_bid()) == "IN_PROGRESS"
    });
    let second_bid = w.last_bid();
    w.test(&format!("BATCH_RETRY '{first_bid}' ALLOW_CANCELLED=true"))
        .status(1)
        .stderr_contains(format!(
            "batch {second_bid} with the same command is active"
        ))
        .run();
    assert_eq!(
        w.status(&first_bid),
        "CANCELLED",
        "the refused retry changed nothing"
    );
    w.test(&format!("BATCH_CANCEL '{second_bid}'"))
        .status(0)
        .run();
    second.wait_with_output().unwrap();
    w.test(&format!("BATCH_RETRY '{first_bid}' ALLOW_CANCELLED=true"))
        .status(0)
        .run();
    assert_eq!(w.status(&first_bid), "DONE");
}

/// A Ctrl-C that comes while the batch is being created (here, held at
/// the start gate before its first write) cancels it as soon as it runs:
/// it is not lost for having come before the run.
#[test]
fn a_ctrl_c_before_the_run_starts_cancels_the_batch() {
    let w = World::new(20);
    let gate = Gate::new();
    let child = w.spawn_with(
        &format!("BATCH Customer FABRIC_COMMAND=\"{RECORDING}\" WITH MAX_WORKERS_PER_NODE=1"),
        &[],
        &[("BATCHSH_TEST_GATE", &gate.path())],
    );
    gate.wait_ready();
    signal(&child, "-INT");
    gate.open();
    let out = wait_or_kill(child, Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let bid = w.last_bid();
    assert!(
        err.contains(&format!("batch {bid} ended CANCELLED")),
        "{err}"
    );
    assert_eq!(w.status(&bid), "CANCELLED");
    assert!(runs(&w).is_empty(), "the batch ran on: {:?}", runs(&w));
}

/// A fast batch killed with kill -9 in the middle of its steps (on
/// PostgreSQL each step writes its outcomes in two transactions, on two
/// connections, which the kill may fall between): BATCH_RETRY finishes
/// it with every entity COMPLETED, one row each, and the entities
/// COMPLETED before the kill keep their row as it was (their times): none
/// ran again.
#[test]
fn a_fast_batch_killed_mid_step_loses_nothing_and_reruns_nothing_completed() {
    const N: i64 = 600_000;
    let w = World::new(N);
    let child = w.spawn("BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2");
    crate::world::kill_9_after(&w, child, 100_000);
    let bid = w.last_bid();
    let rows = |status: &str| {
        w.store().strings(
            &format!(
                "SELECT entity_id || ' ' || start_time_ms || ' ' || end_time_ms
                 FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)
                     AND status = '{status}'"
            ),
            &[&bid],
        )
    };
    let before = rows("COMPLETED");
    assert!(
        before.len() >= 100_000 && (before.len() as i64) < N,
        "{} COMPLETED at the kill",
        before.len()
    );
    w.retry_to_done(&bid);
    let after: HashSet<String> = rows("COMPLETED").into_iter().collect();
    assert_eq!(after.len() as i64, N);
    let ids: HashSet<&str> = after.iter().filter_map(|r| r.split(' ').next()).collect();
    assert_eq!(ids.len() as i64, N, "an entity with two rows");
    for row in &before {
        assert!(
            after.contains(row),
            "{row}: COMPLETED before the kill, then changed"
        );
    }
    assert_eq!(w.counter(&bid, "completed"), N);
}
