//! `BATCH_PURGE` (SPEC §6): which batches it deletes and keeps, what it
//! prints, a batch running beside it, and the rows a purge killed half
//! way leaves for the next.

use crate::world::{World, eventually};
use serde_json::Value;
use std::time::Duration;

/// An end long past any OLDER_THAN the tests give.
const LONG_AGO: &str = "2020-01-01T00:00:00.000Z";

/// Runs `statement` (a BATCH over the world's customers) to its end; its
/// bid.
fn batch(w: &World, statement: &str, exit: i32) -> String {
    w.test(statement).status(exit).run();
    w.last_bid()
}

/// A batch of the world's customers that ends FAILED; its bid.
fn failed_batch(w: &World) -> String {
    let bid = batch(
        w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'exit 1 # ?'\" WITH MAX_FAILURES=1 MAX_WORKERS_PER_NODE=1",
        1,
    );
    assert_eq!(w.status(&bid), "FAILED");
    bid
}

/// Makes batch `bid` look as if it ended long ago.
fn age(w: &World, bid: &str) {
    w.sqlite()
        .execute(
            "UPDATE batches SET end_time = ?2 WHERE bid = ?1",
            [bid, LONG_AGO],
        )
        .unwrap();
}

/// Every row the store keeps for batch `bid` or its number, by table; a
/// purged batch has none left anywhere.
fn rows_of(w: &World, bid: &str, no: i64) -> Vec<(&'static str, i64)> {
    let c = w.sqlite();
    let (bid, no) = (rusqlite::types::Value::from(bid.to_string()), no.into());
    [
        ("batches", "bid", &bid),
        ("batch_events", "bid", &bid),
        ("batch_nodes", "bid", &bid),
        ("batch_progress", "bid", &bid),
        ("batch_lines", "bid", &bid),
        ("batch_workers", "batch", &bid),
        ("jobs", "uid", &bid),
        ("batch_entities", "batch", &no),
        ("batch_claims", "batch", &no),
        ("batch_appends", "batch", &no),
    ]
    .into_iter()
    .map(|(table, column, key)| {
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} = ?1");
        (table, c.query_row(&sql, [key], |r| r.get(0)).unwrap())
    })
    .collect()
}

fn batch_no(w: &World, bid: &str) -> i64 {
    w.query_i64("SELECT batch_no FROM batches WHERE bid = ?1", bid)
}

/// The bids a `--format json` BATCH_PURGE printed, in its order.
fn purged(stdout: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_none_left(w: &World, bid: &str, no: i64) {
    let left: Vec<_> = rows_of(w, bid, no)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(left.is_empty(), "rows left of purged batch {bid}: {left:?}");
}

#[test]
fn an_old_done_batch_goes_and_a_newer_one_and_a_failed_one_stay() {
    let w = World::new(20);
    let old = batch(&w, "BATCH Customer FABRIC_COMMAND='echo ?'", 0);
    let failed = failed_batch(&w);
    let newer = batch(&w, "BATCH Customer.(1, 2, 3) FABRIC_COMMAND='echo ?'", 0);
    age(&w, &old);
    age(&w, &failed);
    let no = batch_no(&w, &old);
    assert!(
        rows_of(&w, &old, no)
            .iter()
            .any(|(t, n)| *t == "batch_entities" && *n == 20)
    );
    let out = w.test("BATCH_PURGE").status(0).run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{
            "id": old,
            "command": "BATCH Customer FABRIC_COMMAND='echo ?'",
            "status": "DONE",
            "end_date": "2020-01-01T00:00:00Z",
            "entities": 20
        }])
    );
    assert_none_left(&w, &old, no);
    assert_eq!(w.status(&failed), "FAILED");
    assert_eq!(w.status(&newer), "DONE");
    assert_eq!(w.batch_count(), 2);
    // Gone from every listing and monitoring statement.
    w.test("BATCH_LIST STATUS='ALL'")
        .status(0)
        .stdout_lacks(&old)
        .run();
    w.test(&format!("BATCH_INFO '{old}'"))
        .status(1)
        .stderr_contains(format!("no batch with id '{old}'"))
        .run();
    // Nothing more to delete: the table format says so, with the cutoff.
    let again = formatted(&w, "table", "BATCH_PURGE").status(0).run();
    assert!(
        again
            .stdout
            .starts_with("nothing to delete: no batch DONE ended before "),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("(OLDER_THAN='30d')"),
        "{}",
        again.stdout
    );
    // The JSON and CSV twins: an empty table.
    w.test("BATCH_PURGE").status(0).stdout("[]\n").run();
    formatted(&w, "csv", "BATCH_PURGE")
        .status(0)
        .stdout("id,command,status,end_date,entities\n")
        .run();
}

/// A run of `script` on the world's store in `format` (the world's own
/// runs print JSON).
fn formatted(w: &World, format: &str, script: &str) -> crate::common::Test {
    crate::common::Test::new().current_dir(w.path()).args([
        "--home",
        w.home().to_str().unwrap(),
        "--format",
        format,
        "-c",
        script,
    ])
}

#[test]
fn a_status_list_purges_each_status_named_and_no_other() {
    let w = World::new(5);
    let done = batch(&w, "BATCH Customer FABRIC_COMMAND='echo ?'", 0);
    let failed = failed_batch(&w);
    let cancelled = batch(&w, "BATCH Customer.(1, 2) FABRIC_COMMAND='echo ?'", 0);
    w.sqlite()
        .execute(
            "UPDATE batches SET status = 'CANCELLED' WHERE bid = ?1",
            [&cancelled],
        )
        .unwrap();
    for bid in [&done, &failed, &cancelled] {
        age(&w, bid);
    }
    let out = w
        .test("BATCH_PURGE OLDER_THAN='1d' STATUS='failed, done'")
        .status(0)
        .run();
    let mut got = purged(&out.stdout);
    got.sort();
    let mut want = vec![done.clone(), failed.clone()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(w.status(&cancelled), "CANCELLED");
    assert_eq!(w.batch_count(), 1);
}

/// Whatever its times say and whatever STATUS asks, a batch that has not
/// ended (waiting for a worker, running, paused, left unfinished) stays.
#[test]
fn an_unfinished_batch_is_never_purged() {
    let w = World::new(5);
    let out = w
        .test("BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true")
        .env("BATCHSH_TEST_NO_BACKGROUND_WORKER", "1")
        .status(0)
        .run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let queued = v[0]["batch_id"].as_str().unwrap().to_string();
    assert_eq!(w.status(&queued), "WAITING_FOR_JOB");
    w.sqlite()
        .execute(
            "UPDATE batches SET creation_time = ?2, start_time = ?2, end_time = ?2
             WHERE bid = ?1",
            [&queued, LONG_AGO],
        )
        .unwrap();
    let out = w
        .test("BATCH_PURGE OLDER_THAN='0s' STATUS='DONE,FAILED,CANCELLED'")
        .status(0)
        .run();
    assert_eq!(purged(&out.stdout), Vec::<String>::new());
    assert_eq!(w.status(&queued), "WAITING_FOR_JOB");
    let no = batch_no(&w, &queued);
    assert!(rows_of(&w, &queued, no).contains(&("jobs", 1)));
}

/// A bad OLDER_THAN (or STATUS) is refused before anything is deleted.
#[test]
fn a_bad_older_than_is_refused_and_nothing_is_deleted() {
    let w = World::new(3);
    let bid = batch(&w, "BATCH Customer FABRIC_COMMAND='echo ?'", 0);
    age(&w, &bid);
    for (statement, says) in [
        (
            "BATCH_PURGE OLDER_THAN='30 days'",
            "error: invalid value for OLDER_THAN: '30 days'",
        ),
        (
            "BATCH_PURGE OLDER_THAN='-1d'",
            "error: invalid value for OLDER_THAN: '-1d'",
        ),
        (
            "BATCH_PURGE OLDER_THAN='300000000d'",
            "error: OLDER_THAN='300000000d' reaches back before the year 1; no batch ended that long ago",
        ),
        (
            "BATCH_PURGE STATUS='IN_PROGRESS'",
            "error: invalid value for STATUS: 'IN_PROGRESS'",
        ),
    ] {
        w.test(statement)
            .status(1)
            .stdout("")
            .stderr_starts_with(says)
            .run();
        assert_eq!(w.status(&bid), "DONE", "{statement}");
    }
    assert_eq!(batch_no(&w, &bid), 1);
    assert_eq!(
        w.query_i64(
            "SELECT count(*) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
            &bid
        ),
        3
    );
}

/// Inserts `n` entity rows for a finished batch made by copying batch
/// `template`'s row under the id `bid`, ended long ago: a large old batch
/// without running one.
fn large_old_batch(w: &World, template: &str, bid: &str, n: i64) -> i64 {
    let c = w.sqlite();
    let no: i64 = c
        .query_row("SELECT max(batch_no) + 1 FROM batches", [], |r| r.get(0))
        .unwrap();
    c.execute_batch(&format!(
        "CREATE TEMP TABLE tpl AS SELECT * FROM batches WHERE bid = '{template}';
         UPDATE tpl SET bid = '{bid}', batch_no = {no}, total = {n}, completed = {n},
             end_time = '{LONG_AGO}';
         INSERT INTO batches SELECT * FROM tpl;
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n})
         INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, end_time_ms)
             SELECT {no}, x, x, 'COMPLETED', 1, x FROM c;"
    ))
    .unwrap();
    no
}

/// A batch running on the same store while a purge deletes a large old
/// batch goes on and ends as it would alone.
#[test]
fn a_batch_running_beside_a_purge_finishes_fine() {
    let w = World::new(400);
    let template = batch(&w, "BATCH Customer.(1) FABRIC_COMMAND='echo ?'", 0);
    let no = large_old_batch(&w, &template, "old-large", 100_000);
    let side = w.spawn("BATCH Customer FABRIC_COMMAND='sleep 5 ?' WITH MAX_WORKERS_PER_NODE=4");
    w.wait_until_running();
    let out = w.test("BATCH_PURGE").status(0).run();
    assert_eq!(purged(&out.stdout), ["old-large"]);
    let side = crate::world::wait_or_kill(side, Duration::from_secs(60));
    assert_eq!(
        side.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&side.stderr)
    );
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "DONE");
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        400
    );
    w.assert_counters_add_up(&bid);
    assert_none_left(&w, "old-large", no);
}

/// A purge killed (kill -9) after it deleted a batch's row and before all
/// its entity rows: the rows stay under a number no batch has, a new batch
/// does not take that number, and the next purge deletes them.
#[test]
fn rows_an_interrupted_purge_left_go_with_the_next_purge() {
    let w = World::new(3);
    let template = batch(&w, "BATCH Customer.(1) FABRIC_COMMAND='echo ?'", 0);
    let no = large_old_batch(&w, &template, "old-large", 300_000);
    let rows = |no: i64| -> i64 {
        w.sqlite()
            .query_row(
                "SELECT count(*) FROM batch_entities WHERE batch = ?1",
                [no],
                |r| r.get(0),
            )
            .unwrap()
    };
    let mut purge = w.spawn("BATCH_PURGE");
    eventually("the purge to delete the batch's row", || {
        w.sqlite()
            .query_row(
                "SELECT count(*) FROM batches WHERE bid = 'old-large'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 0
    });
    purge.kill().unwrap(); // SIGKILL
    purge.wait().unwrap();
    let left = rows(no);
    assert!(left > 0, "the purge had deleted every row before the kill");
    // Out of every listing already; its number is not given again.
    w.test("BATCH_LIST STATUS='ALL'")
        .status(0)
        .stdout_lacks("old-large")
        .run();
    let newer = batch(&w, "BATCH Customer FABRIC_COMMAND='echo ?'", 0);
    assert!(batch_no(&w, &newer) > no);
    assert_eq!(
        w.query_i64("SELECT total FROM batches WHERE bid = ?1", &newer),
        3
    );
    assert_eq!(rows(no), left);
    // The next purge deletes them, and says so.
    w.test("BATCH_PURGE")
        .status(0)
        .stdout("[]\n")
        .stderr_contains(format!(
            "note: deleted {left} rows left by an interrupted BATCH_PURGE"
        ))
        .run();
    assert_eq!(rows(no), 0);
    assert_none_left(&w, "old-large", no);
    w.assert_counters_add_up(&newer);
}

/// The batch of a named series' last successful run stays (its next
/// window counts from it); an older successful run, and a later failed
/// one, go.
#[test]
fn the_last_successful_run_of_a_named_series_is_kept() {
    let w = World::new(3);
    let named = "BATCH Customer FABRIC_COMMAND='echo ?' WITH NAME='nightly'";
    let first = batch(&w, named, 0);
    let second = batch(&w, named, 0);
    let failed = batch(
        &w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'exit 1 # ?'\" WITH NAME='nightly'",
        3,
    );
    for bid in [&first, &second, &failed] {
        age(&w, bid);
    }
    let out = w
        .test("BATCH_PURGE OLDER_THAN='1d' STATUS='DONE,FAILED'")
        .status(0)
        .run();
    let mut gone = purged(&out.stdout);
    gone.sort();
    let mut expected = vec![first.clone(), failed.clone()];
    expected.sort();
    assert_eq!(gone, expected);
    assert_eq!(w.status(&second), "DONE");
}
