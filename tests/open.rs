//! Open batches (SPEC §4 OPEN, §6 BATCH_APPEND, BATCH_WAITOFF): appends
//! from other processes, duplicates processed once, the batch IN_PROGRESS
//! while open, its end after BATCH_WAITOFF, every refusal with its reason,
//! and a kill -9 of the worker that owns an open batch.

use crate::workers::{all_workers_stopped, eventually_owner_pid, exits_0, queue, worker};
use crate::world::{World, eventually, signal_pid};
use serde_json::Value;
use std::process::Child;

/// A command that writes each id it runs to the ledger `ran.txt`.
const LEDGER: &str = "FABRIC_COMMAND=\"shell 'echo ? >> ran.txt'\"";

/// How many times each id ran, by the ledger.
fn runs(w: &World) -> std::collections::BTreeMap<String, usize> {
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap_or_default();
    let mut runs = std::collections::BTreeMap::new();
    for id in ran.lines() {
        *runs.entry(id.to_string()).or_default() += 1;
    }
    runs
}

/// Waits for a batchsh process, which must exit 0.
#[track_caller]
fn succeeds(c: Child) -> String {
    let out = c.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn counter(w: &World, bid: &str, column: &str) -> i64 {
    w.query_i64(&format!("SELECT {column} FROM batches WHERE bid = ?1"), bid)
}

/// BATCH_INFO's value for `key`.
fn info(w: &World, bid: &str, key: &str) -> Value {
    let out = w.test(&format!("BATCH_INFO '{bid}'")).status(0).run();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    v[key].clone()
}

/// An open batch with a worker: two other processes append at once (an
/// id list, and FROM iface USING), duplicates of stored ids and of each
/// other are processed once, the batch stays IN_PROGRESS with every
/// entity done while it is open (and `worker --until-idle` stays), and
/// BATCH_WAITOFF ends it DONE with the right total, each id run once.
#[test]
fn an_open_batch_takes_appends_from_other_processes_until_waitoff() {
    let w = World::new(8);
    let (bid, _) = queue(
        &w,
        &format!("BATCH Customer.('1', '2', '3') {LEDGER} WITH OPEN=true"),
    );
    let helper = worker(&w, "w2", &[]);
    eventually("the source's ids to run", || {
        counter(&w, &bid, "completed") == 3
    });
    let appends = [
        w.spawn(&format!("BATCH_APPEND '{bid}' ('3', '4', '5', '5')")),
        w.spawn(&format!(
            "BATCH_APPEND '{}' FROM crm USING ('select id from customer where id >= 4')",
            &bid[..8]
        )),
    ];
    let said: Vec<String> = appends.into_iter().map(succeeds).collect();
    let appended: Vec<Value> = said
        .iter()
        .map(|s| serde_json::from_str::<Value>(s.trim()).unwrap()[0].clone())
        .collect();
    assert_eq!(appended[0]["batch_id"], bid.as_str());
    assert_eq!(appended[0]["appended"], 4, "{said:?}");
    assert_eq!(appended[1]["appended"], 5, "{said:?}");
    eventually("the appended ids to run", || {
        counter(&w, &bid, "completed") == 8
    });
    // Every entity done, and the batch open: it waits for more.
    assert_eq!(w.status(&bid), "IN_PROGRESS");
    assert_eq!(info(&w, &bid, "open"), "open");
    assert_eq!(counter(&w, &bid, "ids_complete"), 0);
    let mut helper = helper;
    assert!(
        helper.try_wait().unwrap().is_none(),
        "worker --until-idle exited while the batch was open"
    );
    w.test(&format!("BATCH_WAITOFF '{bid}'"))
        .status(0)
        .stdout_contains("closed: it takes no more appends")
        .run();
    let out = w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    let row = crate::world::result_row(&out.stdout);
    assert_eq!(
        (row["total"].as_i64(), row["execution_succeeded"].as_i64()),
        (Some(8), Some(8))
    );
    assert_eq!(info(&w, &bid, "open"), "closed");
    exits_0(helper);
    all_workers_stopped(&w);
    let runs = runs(&w);
    let want: std::collections::BTreeMap<String, usize> =
        (1..=8).map(|k| (k.to_string(), 1)).collect();
    assert_eq!(runs, want, "each id ran exactly once");
    w.assert_counters_add_up(&bid);
}

/// Every refusal says why, and records nothing: a batch not OPEN, one
/// closed by BATCH_WAITOFF, one finished; a bad id in the list or a row of
/// the query without one; an unknown bid (with the near one), an ambiguous
/// prefix; ASYNC=false beside OPEN=true.
#[test]
fn appends_and_waitoffs_are_refused_with_the_reason() {
    let w = World::new(3);
    let appends = || {
        w.sqlite()
            .query_row("SELECT count(*) FROM batch_appends", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
    };
    // Finished, and not OPEN.
    w.test("BATCH Customer FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let done = w.last_bid();
    w.refused(
        &format!("BATCH_APPEND '{done}' ('9')"),
        &format!("cannot append to batch {done}: it has ended (DONE)"),
    );
    w.refused(
        &format!("BATCH_WAITOFF '{done}'"),
        &format!("cannot close batch {done}: it has ended (DONE)"),
    );
    // Not OPEN, and running: its entities wait for the file `go`. The
    // one worker runs it; the open batch after it waits for its job.
    let gated = "FABRIC_COMMAND=\"shell 'until [ -e go ]; do sleep 0.05; done; echo ?'\"";
    let (running, _) = queue(&w, &format!("BATCH Customer {gated} WITH ASYNC=true"));
    w.refused(
        &format!("BATCH_APPEND '{running}' ('9')"),
        &format!(
            "cannot append to batch {running}: it is not an OPEN batch (it was created \
             without WITH OPEN=true)"
        ),
    );
    let (open, _) = queue(&w, &format!("BATCH Customer.('1') {gated} WITH OPEN=true"));
    w.test(&format!("BATCH_APPEND '{open}' ('2')"))
        .status(0)
        .run();
    // Bad input: nothing appended, the batch still open.
    w.test(&format!("BATCH_APPEND '{open}' ('3', '')"))
        .status(1)
        .stderr_starts_with("error: the id is empty: an entity id is 1 to 1,024 bytes of text\n")
        .run();
    w.test(&format!(
        "BATCH_APPEND '{open}' FROM crm USING ('select null union all select 1')"
    ))
    .status(1)
    .stderr_starts_with(
        "error: row 1 of the query gives no usable entity id (the id is NULL); nothing was \
         appended",
    )
    .run();
    w.test(&format!(
        "BATCH_APPEND '{open}' FROM crn USING ('select 1')"
    ))
    .status(1)
    .stderr_starts_with("error: no interface named crn (did you mean crm?)")
    .run();
    assert_eq!(appends(), 1, "a refused append recorded ids");
    w.test(&format!("BATCH_WAITOFF '{open}'")).status(0).run();
    w.refused(
        &format!("BATCH_APPEND '{open}' ('4')"),
        &format!("cannot append to batch {open}: BATCH_WAITOFF has closed it"),
    );
    w.refused(
        &format!("BATCH_WAITOFF '{open}'"),
        &format!("cannot close batch {open}: BATCH_WAITOFF has closed it"),
    );
    assert_eq!(appends(), 1, "a refused append recorded ids");
    std::fs::write(w.path().join("go"), b"").unwrap();
    w.test(&format!("BATCH_WAIT '{running}'")).status(0).run();
    let out = w.test(&format!("BATCH_WAIT '{open}'")).status(0).run();
    assert_eq!(crate::world::result_row(&out.stdout)["total"], 2);
    all_workers_stopped(&w);
    // An unknown bid: the near one; an ambiguous prefix: the matches.
    let typo = format!("{}x", &open[..open.len() - 1]);
    for statement in [
        format!("BATCH_APPEND '{typo}' ('1')"),
        format!("BATCH_WAITOFF '{typo}'"),
    ] {
        w.refused(
            &statement,
            &format!("no batch with id '{typo}' (did you mean '{open}'?)"),
        );
    }
    w.sqlite()
        .execute_batch(
            "PRAGMA foreign_keys = OFF; UPDATE batches SET bid = 'abcdef' || substr(bid, 7)",
        )
        .unwrap();
    for statement in ["BATCH_APPEND 'abcdef' ('1')", "BATCH_WAITOFF 'abcdef'"] {
        w.refused(
            statement,
            "batch id prefix abcdef is ambiguous: it matches abcdef",
        );
    }
    // OPEN=true runs in a worker: ASYNC=false beside it is refused.
    let before = w.batch_count();
    w.refused(
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ASYNC=false OPEN=true",
        "OPEN=true runs the batch asynchronously",
    );
    assert_eq!(w.batch_count(), before);
}

/// kill -9 of the worker that owns an open batch mid-way: another worker
/// takes it over, reads the source and the appends again (the ids stored
/// are dropped as seen), takes more appends, and ends DONE after
/// BATCH_WAITOFF: nothing appended is lost, no entity COMPLETED before the
/// kill runs again.
#[test]
fn an_open_batch_whose_worker_is_killed_is_taken_over_nothing_lost() {
    let n = 300;
    let w = World::new(n);
    let (bid, _) = queue(
        &w,
        "BATCH Customer FROM crm USING ('select id from customer where id <= 100') \
         FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.01'\" \
         WITH OPEN=true MAX_WORKERS_PER_NODE=2",
    );
    let append = |from: i64, to: i64| {
        let ids: Vec<String> = (from..=to).map(|k| format!("'{k}'")).collect();
        w.test(&format!("BATCH_APPEND '{bid}' ({})", ids.join(", ")))
            .status(0)
            .run();
    };
    append(101, 200);
    let helper = worker(&w, "w2", &[]);
    let owner = eventually_owner_pid(&w, &bid);
    eventually("some entities to complete", || {
        counter(&w, &bid, "completed") >= 50
    });
    signal_pid(owner, "-9");
    let before = crate::world::completed_ids(&w, &bid);
    eventually("the other worker to take the batch over", || {
        let now = w.query_i64(
            "SELECT coalesce(owner_pid, 0) FROM batches WHERE bid = ?1",
            &bid,
        );
        now != 0 && now != owner
    });
    append(150, n);
    w.test(&format!("BATCH_WAITOFF '{bid}'")).status(0).run();
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    exits_0(helper);
    assert_eq!(counter(&w, &bid, "total"), n, "every id stored once");
    assert_eq!(counter(&w, &bid, "completed"), n);
    crate::world::assert_none_lost_none_rerun(&w, n as usize, &before);
    w.assert_counters_add_up(&bid);
}
