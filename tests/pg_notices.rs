//! The PostgreSQL store's notices (LISTEN/NOTIFY, SPEC §7): a statement
//! that queues an asynchronous batch, and a worker that takes its job,
//! wake the idle workers of every host at once, not at their next look for
//! work. Real processes on a real server (`BATCHSH_TEST_POSTGRES`, see
//! `pg.rs`), with knobs that make a worker look for work only every two
//! minutes and send no wake-up signal (SIGUSR1) to the workers of this
//! host: what wakes them within the test's bounds is the store's notice.

use crate::common::{CRM_CUSTOMER_LU, customer_db};
use crate::pg;
use crate::world::eventually;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The knobs of every process: an idle worker looks for work every two
/// minutes (a twentieth of the time a node may go without a heartbeat),
/// no worker is started in the background, and no worker is woken by a
/// signal, as if each were on a host of its own.
const KNOBS: [(&str, &str); 3] = [
    ("BATCHSH_TEST_DEAD_AFTER_MS", "2400000"),
    ("BATCHSH_TEST_NO_BACKGROUND_WORKER", "1"),
    ("BATCHSH_TEST_NO_WAKE_SIGNAL", "1"),
];

/// batchsh on `dir`'s home and the store at `url`, in `dir`.
fn batchsh(dir: &Path, url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_batchsh"));
    c.args(["--home", dir.join("home").to_str().unwrap()])
        .args(["--store", url])
        .envs(KNOBS)
        .env_remove("BATCHSH_STORE")
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `script`, which must end with exit 0, and gives its JSON output.
#[track_caller]
fn json(dir: &Path, url: &str, script: &str) -> Value {
    let out = batchsh(dir, url)
        .args(["--format", "json", "-c", script])
        .output()
        .unwrap();
    pg::json_output(script, &out)
}

/// Queues `batch` and gives its id.
fn queue(dir: &Path, url: &str, batch: &str) -> String {
    let v = json(dir, url, batch);
    v[0]["batch_id"].as_str().unwrap().to_string()
}

/// The batch ends DONE (exit 0), every entity a success, within the
/// test's bound (far below the two minutes of a worker's look for work).
#[track_caller]
fn done(dir: &Path, url: &str, bid: &str) {
    let v = json(dir, url, &format!("BATCH_WAIT '{bid}' TIMEOUT='25s'"));
    assert_eq!(v[0]["execution_succeeded"], 6, "{v}");
}

/// Two idle workers, each as on a host of its own: a queued batch wakes
/// both (one takes its job), and the job taken wakes the other, which
/// claims entities beside its owner while they still run. Each entity
/// waits for a file, so the batch lasts until the test says.
#[test]
fn idle_workers_hear_of_a_queued_batch_and_of_its_job_taken_at_once() {
    let Some(db) = pg::database("idle_workers_hear_of_a_queued_batch") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (dir, url) = (dir.path(), db.url.as_str());
    customer_db(&dir.join("crm.db"), 6);
    json(dir, url, CRM_CUSTOMER_LU);
    let workers: Vec<Child> = ["w1", "w2"]
        .iter()
        .map(|node| {
            batchsh(dir, url)
                .args(["--node", node, "worker", "--workers", "1"])
                .spawn()
                .unwrap()
        })
        .collect();
    eventually("two live workers", || {
        let nodes = json(dir, url, "SHOW NODES");
        let alive = |n: &&Value| n["status"] == "alive";
        nodes
            .as_array()
            .is_some_and(|a| a.iter().filter(alive).count() == 2)
    });
    // A first batch: whatever woke them, both workers have looked for
    // work since, and sleep now until their next look, minutes away.
    let first = queue(
        dir,
        url,
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true",
    );
    done(dir, url, &first);
    let bid = queue(
        dir,
        url,
        "BATCH Customer FABRIC_COMMAND=\"shell 'while [ ! -f go ]; do sleep 0.01; done; echo ?'\" \
         WITH ASYNC=true MAX_WORKERS_PER_NODE=1",
    );
    let mut client = db.client();
    eventually("both workers to claim entities of the batch", || {
        let nodes: i64 = client
            .query_one(
                "WITH b AS (SELECT batch_no FROM batches WHERE bid = $1)
                 SELECT count(DISTINCT node) FROM (
                     SELECT node FROM batch_claimed WHERE batch = (SELECT batch_no FROM b)
                     UNION ALL
                     SELECT node FROM batch_entities
                     WHERE batch = (SELECT batch_no FROM b) AND status = 'IN_PROCESS'
                 ) AS claims",
                &[&bid],
            )
            .unwrap()
            .get(0);
        nodes == 2
    });
    std::fs::write(dir.join("go"), b"").unwrap();
    done(dir, url, &bid);
    // A drain would wait for the workers' next look: they are killed.
    for mut w in workers {
        let _ = w.kill();
        let _ = w.wait();
    }
}
