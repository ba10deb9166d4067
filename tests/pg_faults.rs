//! The PostgreSQL store when the network or the server fails under a
//! worker (SPEC §7, "A shared store for several machines"): its connection
//! dropped by the server mid-batch, the server restarted mid-batch, a host
//! that does not answer. Real processes on a real server; the hidden
//! timing knobs make a node dead after a second, so a takeover, when one
//! is needed, takes a second or two. The tests that need a server run when
//! `BATCHSH_TEST_POSTGRES` names one (see `pg.rs`); the restart test
//! starts a server of its own through `.ci/pg-cluster`, so as not to
//! restart the one the other tests share.

use crate::common::{CRM_CUSTOMER_LU, customer_db};
use crate::pg;
use crate::world::{eventually, wait_or_kill};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The knobs of every process of these tests: a node without a heartbeat
/// for a second is dead; an asynchronous batch waits for the tests' own
/// workers rather than starting one in the background.
const KNOBS: [(&str, &str); 2] = [
    ("BATCHSH_TEST_DEAD_AFTER_MS", "1000"),
    ("BATCHSH_TEST_NO_BACKGROUND_WORKER", "1"),
];

/// Entities of each batch, and what each one does: append its id to
/// `ran.txt` (an id found twice there ran twice), then take a little
/// time, so that the batch outlives the fault.
const N: usize = 600;
const BATCH: &str = "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" \
                     WITH ASYNC=true";

/// Entity threads of each worker.
const WORKERS: usize = 4;

/// A working folder with an SQLite source (`crm.db`, customers 1..=N),
/// a home, and a store on PostgreSQL at `url`.
struct Rig {
    dir: tempfile::TempDir,
    url: String,
}

impl Rig {
    fn new(url: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        customer_db(&dir.path().join("crm.db"), N as i64);
        let rig = Rig {
            dir,
            url: url.to_string(),
        };
        rig.json(CRM_CUSTOMER_LU);
        rig
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// batchsh on this rig's home and store, in its folder.
    fn batchsh(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_batchsh"));
        c.args(["--home", self.path().join("home").to_str().unwrap()])
            .args(["--store", &self.url])
            .envs(KNOBS)
            .env_remove("BATCHSH_STORE")
            .env("NO_COLOR", "1")
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `script`, which must succeed, and gives its JSON output.
    #[track_caller]
    fn json(&self, script: &str) -> Value {
        let out = self
            .batchsh()
            .args(["--format", "json", "-c", script])
            .output()
            .unwrap();
        pg::json_output(script, &out)
    }

    /// Queues the batch; no worker runs it yet.
    fn queue(&self) -> String {
        let v = self.json(BATCH);
        v[0]["batch_id"].as_str().unwrap().to_string()
    }

    /// `batchsh worker --until-idle` as node `node`.
    fn worker(&self, node: &str) -> Child {
        self.batchsh()
            .args(["--node", node, "worker", "--workers"])
            .arg(WORKERS.to_string())
            .arg("--until-idle")
            .spawn()
            .unwrap()
    }

    /// How many times each id ran, from `ran.txt`.
    fn runs(&self) -> HashMap<String, usize> {
        let text = std::fs::read_to_string(self.path().join("ran.txt")).unwrap_or_default();
        let mut runs = HashMap::new();
        for id in text.lines() {
            *runs.entry(id.to_string()).or_default() += 1;
        }
        runs
    }

    /// Waits until `n` entities have run.
    fn wait_ran(&self, n: usize) {
        eventually("entities to run", || {
            self.runs().values().sum::<usize>() >= n
        });
    }

    /// The batch ended DONE; BATCH_DETAILS has one COMPLETED row per
    /// customer; BATCH_SUMMARY counts N succeeded, nothing failed or left,
    /// and its node rows add up to N (an outcome committed twice would
    /// count twice); every id ran, and those that ran twice had all run
    /// once by the end of the fault, `by_then` (at-least-once holds for
    /// what was in flight, or ran and was not committed yet, then alone).
    #[track_caller]
    fn assert_done_each_once(&self, bid: &str, by_then: &HashMap<String, usize>) {
        let info = self.json(&format!("BATCH_INFO '{bid}'"));
        assert_eq!(info["status"], "DONE", "{info}");
        let details = self.json(&format!("BATCH_DETAILS '{bid}' LIMIT=-1"));
        let rows = details.as_array().unwrap();
        let mut seen = HashMap::<&str, usize>::new();
        for r in rows {
            assert_eq!(r["status"], "COMPLETED", "{r}");
            *seen.entry(r["entity_id"].as_str().unwrap()).or_default() += 1;
        }
        assert_eq!(rows.len(), N, "one row per entity");
        assert_eq!(seen.len(), N, "no entity recorded twice");
        let summary = self.json(&format!("BATCH_SUMMARY '{bid}'"));
        let levels = |level: &str| -> Vec<Value> {
            let rows = summary.as_array().unwrap().iter();
            rows.filter(|r| r["level"] == level).cloned().collect()
        };
        let cluster = &levels("Cluster")[0];
        for (counter, want) in [
            ("total", N),
            ("succeeded", N),
            ("failed", 0),
            ("remaining", 0),
        ] {
            assert_eq!(cluster[counter], want, "{counter}: {cluster}");
        }
        let by_nodes: u64 = levels("Node")
            .iter()
            .map(|r| r["succeeded"].as_u64().unwrap())
            .sum();
        assert_eq!(by_nodes, N as u64, "the nodes' counters: {summary}");
        let runs = self.runs();
        let never: Vec<usize> = (1..=N)
            .filter(|k| !runs.contains_key(&k.to_string()))
            .collect();
        assert!(never.is_empty(), "never ran: {never:?}");
        let late: Vec<&String> = runs
            .iter()
            .filter(|(id, n)| **n > 1 && !by_then.contains_key(*id))
            .map(|(id, _)| id)
            .collect();
        assert!(
            late.is_empty(),
            "ran twice, though first run after the fault: {late:?}"
        );
    }
}

/// The server ends every session of batchsh's on the test's database (an
/// administrator's `pg_terminate_backend`): how many.
fn drop_connections(client: &mut postgres::Client) -> usize {
    client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'batchsh' AND datname = current_database()
                 AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .len()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `who` stopped (exit 1) saying `err`, which must be about its lost
/// connection, not another reason.
#[track_caller]
fn assert_stopped_for_a_lost_connection(who: &str, err: &str) {
    assert!(
        [
            "terminating connection",
            "connection closed",
            "error communicating"
        ]
        .iter()
        .any(|lost| err.contains(lost)),
        "{who} stopped for another reason: {err}"
    );
}

/// Waits for `worker`, which was serving the batch when its connections
/// were lost. It either opened new ones and finished the batch (exit 0),
/// or, when the loss hit a statement in flight (the server's answer
/// lost with it), stopped with exit 1 and an error that says so; then a
/// second worker takes the batch over once the first counts as dead (a
/// second, here) and finishes it. Says which on stderr. Gives the ids
/// that had run by the end of the fault (`at_fault`, or when the first
/// worker stopped): only those may run twice.
#[track_caller]
fn finish(
    rig: &Rig,
    worker: Child,
    at_fault: HashMap<String, usize>,
    test: &str,
) -> HashMap<String, usize> {
    let out = wait_or_kill(worker, Duration::from_secs(30));
    let err = stderr(&out);
    match out.status.code() {
        Some(0) => {
            eprintln!("{test}: the worker connected again and finished the batch");
            at_fault
        }
        Some(1) => {
            assert_stopped_for_a_lost_connection("the worker", &err);
            eprintln!("{test}: the worker stopped ({err}); another takes over");
            let stopped = rig.runs();
            let out = wait_or_kill(rig.worker("w2"), Duration::from_secs(30));
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            stopped
        }
        other => panic!("the worker exited {other:?}: {err}"),
    }
}

/// The server drops every connection of batchsh's in the middle of a
/// batch (an administrator's `pg_terminate_backend`): the worker opens
/// new ones and finishes the batch (or, see [`finish`], stops and is
/// taken over); every entity is COMPLETED once, the counters add up, and
/// only entities that had run by the drop may have run twice.
#[test]
fn a_workers_connections_dropped_mid_batch_are_replaced_and_the_batch_ends_done() {
    let Some(db) = pg::database("a_workers_connections_dropped_mid_batch") else {
        return;
    };
    let rig = Rig::new(&db.url);
    let bid = rig.queue();
    let worker = rig.worker("w1");
    rig.wait_ran(N / 5);
    let dropped = drop_connections(&mut db.client());
    assert!(dropped >= 2, "the worker had {dropped} connections");
    let by_then = finish(
        &rig,
        worker,
        rig.runs(),
        "a_workers_connections_dropped_mid_batch",
    );
    rig.assert_done_each_once(&bid, &by_then);
}

/// The server drops every connection of a fast synchronous batch again
/// and again while it runs, its steps copying their outcomes on two
/// connections at once (the second one's part committed first): the run
/// opens new ones and ends DONE, or stops when a drop hit a commit whose
/// fate it could not learn, and BATCH_RETRY ends it DONE. Either way each
/// customer has one COMPLETED row, and the counters say so.
#[test]
fn a_fast_batchs_connections_dropped_mid_step_again_and_again_lose_nothing() {
    let Some(db) = pg::database("a_fast_batchs_connections_dropped_mid_step") else {
        return;
    };
    const M: i64 = 400_000;
    let dir = tempfile::tempdir().unwrap();
    customer_db(&dir.path().join("crm.db"), M);
    let rig = Rig {
        dir,
        url: db.url.clone(),
    };
    rig.json(CRM_CUSTOMER_LU);
    let mut run = rig
        .batchsh()
        .args(["--format", "json", "-c"])
        .arg("BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2")
        .spawn()
        .unwrap();
    let mut client = db.client();
    let completed = |client: &mut postgres::Client| -> i64 {
        client
            .query_one("SELECT count(*) FROM batch_entities", &[])
            .map(|r| r.get(0))
            .unwrap_or(0)
    };
    eventually("the first outcomes", || completed(&mut client) > 0);
    let mut drops = 0;
    while run.try_wait().unwrap().is_none() && drops < 20 {
        if drop_connections(&mut client) > 0 {
            drops += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let at_end = completed(&mut client);
    let out = wait_or_kill(run, Duration::from_secs(60));
    eprintln!("{drops} drops; {at_end} rows when they stopped");
    assert!(
        drops >= 2,
        "the run ended before its connections were dropped twice"
    );
    let bid = rig.json("BATCH_LIST STATUS='ALL'")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    match out.status.code() {
        Some(0) => eprintln!("the run connected again and finished"),
        Some(1) => {
            let err = stderr(&out);
            assert_stopped_for_a_lost_connection("the run", &err);
            eprintln!("the run stopped ({err}); BATCH_RETRY finishes the batch");
            rig.json(&format!("BATCH_RETRY '{bid}'"));
        }
        other => panic!("the run exited {other:?}: {}", stderr(&out)),
    }
    let info = rig.json(&format!("BATCH_INFO '{bid}'"));
    assert_eq!(info["status"], "DONE", "{info}");
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT entity_id),
                    count(*) FILTER (WHERE status = 'COMPLETED')
             FROM batch_entities",
            &[],
        )
        .unwrap();
    let (rows, ids, done): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((rows, ids, done), (M, M, M));
    let summary = rig.json(&format!("BATCH_SUMMARY '{bid}'"));
    let cluster = summary
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["level"] == "Cluster")
        .unwrap();
    assert_eq!(cluster["succeeded"], M, "{cluster}");
    assert_eq!(cluster["remaining"], 0, "{cluster}");
}

/// A server of this test's own, in a temporary folder, through
/// `.ci/pg-cluster` (which needs to run as root or as the server's
/// user); stopped when dropped.
struct Server {
    dir: tempfile::TempDir,
    url: String,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = pg_cluster("start", dir.path());
        Server { dir, url }
    }

    fn stop(&self) {
        pg_cluster("stop", self.dir.path());
    }

    fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Starts the stopped server again, at the same address.
    fn start_again(&self) {
        let url = pg_cluster("start", self.dir.path());
        assert_eq!(url, self.url, "the server came back elsewhere");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        pg_cluster("stop", self.dir.path());
    }
}

/// `.ci/pg-cluster CMD DIR`, which must succeed: what it prints (the URL
/// of the server's `postgres` database, for `start`).
fn pg_cluster(cmd: &str, dir: &Path) -> String {
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), ".ci", "pg-cluster"]
        .iter()
        .collect();
    let out = Command::new(script)
        .args([cmd, dir.to_str().unwrap()])
        .env_remove("PG_PORT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg-cluster {cmd} {}: {}",
        dir.display(),
        stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the tests have PostgreSQL (`BATCHSH_TEST_POSTGRES`); when
/// not, says so ([`pg::skipped`]).
fn have_postgres(test: &str) -> bool {
    if std::env::var(pg::VAR).is_ok_and(|v| !v.is_empty()) {
        return true;
    }
    pg::skipped(test);
    false
}

/// PostgreSQL restarts in the middle of a batch (`pg_ctl stop -m fast`,
/// then start): every connection is lost and, for a second or so, none
/// can be made. The worker waits for the server, connects again and
/// finishes the batch (or stops and is taken over, see [`finish`]); the
/// end state is as after any fault.
#[test]
fn postgresql_restarted_mid_batch_the_worker_reconnects_and_the_batch_ends_done() {
    if !have_postgres("postgresql_restarted_mid_batch") {
        return;
    }
    let (server, rig) = own_server();
    let bid = rig.queue();
    let worker = rig.worker("w1");
    rig.wait_ran(N / 5);
    server.restart();
    let by_then = finish(&rig, worker, rig.runs(), "postgresql_restarted_mid_batch");
    rig.assert_done_each_once(&bid, &by_then);
}

/// A store on a host that drops every packet (no answer, no refusal):
/// the connect timeout of the URL bounds the wait, exit 1 with what to
/// check, nothing created. The host is an address of a network namespace
/// of the test's own, whose neighbour table sends its packets nowhere;
/// without the right to make one (not root), the test says so and skips.
#[test]
fn an_unreachable_host_is_an_error_within_the_connect_timeout() {
    let home = tempfile::tempdir().unwrap();
    let url = "postgres://u@10.99.0.2:5432/batchsh?connect_timeout=2";
    // In a network of its own: a link whose far end answers nothing, and
    // the far host's hardware address written down so that not even ARP
    // is asked.
    let net = "ip link add bsh0 type veth peer name bsh1 \
               && ip addr add 10.99.0.1/24 dev bsh0 && ip link set bsh0 up && ip link set bsh1 up \
               && ip neigh add 10.99.0.2 lladdr 02:00:00:00:00:01 dev bsh0";
    let probe = Command::new("unshare")
        .args(["--net", "sh", "-c", net])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "an_unreachable_host_is_an_error_within_the_connect_timeout: skipped \
             (no network namespace of its own: unshare --net needs root)"
        );
        return;
    }
    let started = Instant::now();
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c"])
        .arg(format!("{net} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_batchsh"))
        .args(["--home", home.path().to_str().unwrap(), "--store", url])
        .args(["-c", "SHOW LUS"])
        .env_remove("BATCHSH_STORE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: cannot connect to postgres://u@10.99.0.2:5432/batchsh")
            && err.contains("10.99.0.2:5432 did not answer within 2 s"),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "it took {took:?}"
    );
    let created: Vec<_> = std::fs::read_dir(home.path()).unwrap().collect();
    assert!(created.is_empty(), "created in the home: {created:?}");
}

/// A server of this test's own with a `batchsh` database, and a rig on
/// it, for the tests that stop the server.
fn own_server() -> (Server, Rig) {
    let server = Server::start();
    let url = batchsh::pg::with_database(&server.url, "batchsh");
    postgres::Client::connect(&server.url, postgres::NoTls)
        .unwrap()
        .batch_execute("CREATE DATABASE batchsh")
        .unwrap();
    let rig = Rig::new(&url);
    (server, rig)
}

/// Stops `server` until a process that lost its connections has given up
/// on connecting again several times over (the busy timeout, half a
/// second here), then starts it again; gives the ids that had run by
/// then.
fn down_past_the_window(rig: &Rig, server: &Server) -> HashMap<String, usize> {
    rig.wait_ran(N / 5);
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    let at_fault = rig.runs();
    server.start_again();
    at_fault
}

/// The window in which a lost connection is replaced, shortened.
const WINDOW: (&str, &str) = ("BATCHSH_TEST_BUSY_TIMEOUT_MS", "500");

/// Waits for `run`, which ran the batch while the server was down past
/// the window: it waited for the server and finished the batch (exit 0),
/// or, when the loss hit a commit in flight (whether it was kept cannot
/// be known), it stopped, writing nothing more (exit 1, saying so), and
/// `take_over` finishes the batch. Never the batch FAILED: no such status
/// in its history. Gives the ids that may have run twice's bound, as
/// [`finish`] does.
#[track_caller]
fn finish_after_outage(
    rig: &Rig,
    bid: &str,
    run: Child,
    at_fault: HashMap<String, usize>,
    take_over: impl FnOnce() -> Output,
) -> HashMap<String, usize> {
    let out = wait_or_kill(run, Duration::from_secs(60));
    let err = stderr(&out);
    let by_then = match out.status.code() {
        Some(0) => {
            assert!(
                err.contains("cannot be reached"),
                "the run did not wait for the server: {err}"
            );
            at_fault
        }
        Some(1) => {
            assert!(
                err.contains("whether the transaction was kept cannot be learnt"),
                "the run stopped for another reason than a commit's fate: {err}"
            );
            let stopped = rig.runs();
            let out = take_over();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            stopped
        }
        other => panic!("the run exited {other:?}: {err}"),
    };
    let history = rig.json(&format!("BATCH_HISTORY '{bid}'"));
    let failed: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "FAILED")
        .collect();
    assert!(failed.is_empty(), "the batch was FAILED: {failed:?}");
    by_then
}

/// PostgreSQL stays down longer than the window in which a lost
/// connection is replaced, under a worker: the worker and its batch wait
/// for the server (its heartbeat's look at the store too), and the batch
/// ends DONE, never FAILED, each entity COMPLETED once but those in
/// flight.
#[test]
fn postgresql_down_longer_than_the_reconnect_window_is_waited_for_by_a_worker() {
    if !have_postgres("postgresql_down_longer_than_the_reconnect_window_worker") {
        return;
    }
    let (server, rig) = own_server();
    let bid = rig.queue();
    let worker = rig
        .batchsh()
        .env(WINDOW.0, WINDOW.1)
        .args(["--node", "w1", "worker", "--workers"])
        .arg(WORKERS.to_string())
        .arg("--until-idle")
        .spawn()
        .unwrap();
    let at_fault = down_past_the_window(&rig, &server);
    let by_then = finish_after_outage(&rig, &bid, worker, at_fault, || {
        wait_or_kill(rig.worker("w2"), Duration::from_secs(30))
    });
    rig.assert_done_each_once(&bid, &by_then);
}

/// The same under a synchronous run, which owns its batch in the
/// statement's process: it waits for the server and finishes its batch,
/// or stops without marking it FAILED, for BATCH_RETRY.
#[test]
fn postgresql_down_longer_than_the_reconnect_window_is_waited_for_by_a_synchronous_run() {
    if !have_postgres("postgresql_down_longer_than_the_reconnect_window_synchronous") {
        return;
    }
    let (server, rig) = own_server();
    let run = rig
        .batchsh()
        .env(WINDOW.0, WINDOW.1)
        .args([
            "--format",
            "json",
            "-c",
            &BATCH.replace(" WITH ASYNC=true", ""),
        ])
        .spawn()
        .unwrap();
    let at_fault = down_past_the_window(&rig, &server);
    let bid = rig.json("BATCH_LIST STATUS='ALL'")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_then = finish_after_outage(&rig, &bid, run, at_fault, || {
        rig.batchsh()
            .args(["-c", &format!("BATCH_RETRY '{bid}'")])
            .output()
            .unwrap()
    });
    rig.assert_done_each_once(&bid, &by_then);
}

/// A stop signal (SIGTERM) to a worker whose server went down: the
/// worker stops within seconds, not waiting for the server to answer
/// again for the rest of the window in which a lost connection is
/// replaced (two minutes here), leaving
/// its batch to be taken over; once the server is back, another worker
/// finishes it, each entity COMPLETED once but those in flight.
#[test]
fn a_stop_signal_while_the_server_is_down_stops_the_worker_without_waiting_for_it() {
    if !have_postgres("a_stop_signal_while_the_server_is_down") {
        return;
    }
    let (server, rig) = own_server();
    let bid = rig.queue();
    // A window of two minutes in which a lost connection is tried again,
    // the stop far inside it.
    let worker = rig
        .batchsh()
        .env("BATCHSH_TEST_BUSY_TIMEOUT_MS", "120000")
        .args(["--node", "w1", "worker", "--workers"])
        .arg(WORKERS.to_string())
        .arg("--until-idle")
        .spawn()
        .unwrap();
    rig.wait_ran(N / 5);
    server.stop();
    // Its steps and its heartbeat find their connections lost and try
    // new ones: the stop comes while they do.
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Instant::now();
    let term = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let (out, err) = stops_soon(worker, signalled);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    let by_then = rig.runs();
    server.start_again();
    let out = wait_or_kill(rig.worker("w2"), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    rig.assert_done_each_once(&bid, &by_then);
}

/// The store's database dropped under a worker (`DROP DATABASE ... WITH
/// (FORCE)`): waiting does not bring it back, so the worker does not
/// wait for it as for a server that restarts; it stops (exit 1) within
/// moments, saying that the database was dropped.
#[test]
fn a_store_database_dropped_under_a_worker_stops_it_saying_so() {
    let Some(db) = pg::database("a_store_database_dropped_under_a_worker") else {
        return;
    };
    let rig = Rig::new(&db.url);
    rig.queue();
    let worker = rig.worker("w1");
    rig.wait_ran(N / 5);
    let dropped = Instant::now();
    db.drop_now();
    let (out, err) = stops_soon(worker, dropped);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "database \"{}\" does not exist any more: it was dropped or renamed while this \
             process used it; restore it, or give batchsh another store with --store",
            db.name()
        )),
        "{err}"
    );
}

/// Waits for `worker`, which must stop within 10 s of `since` (well
/// within the 30 s, or more, in which a lost connection is tried again):
/// its output and stderr.
#[track_caller]
fn stops_soon(worker: Child, since: Instant) -> (Output, String) {
    let out = wait_or_kill(worker, Duration::from_secs(90));
    let took = since.elapsed();
    let err = stderr(&out);
    assert!(
        took < Duration::from_secs(10),
        "the worker took {took:?} to stop: {err}"
    );
    (out, err)
}
