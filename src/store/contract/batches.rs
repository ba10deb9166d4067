//! The contract of the batch writes: steps, claims, releases, takeovers,
//! as one run or several nodes make them, on any store.

use super::{ContractStore, count};
use crate::batch::{BatchStatus, Counters, EntityStatus, Request};
use crate::store::batches::*;
use crate::store::nodes::NodeState;
use crate::store::{DetailsQuery, StoreError, now};
use std::sync::LazyLock;

/// Runs the batch-write tests on stores that `fresh` makes, each new and
/// empty.
pub fn all(fresh: &dyn Fn() -> Box<dyn ContractStore>) {
    let with_b1 = || {
        let s = fresh();
        batch_b1(&*s);
        s
    };
    new_ids_are_stored_claimed_as_room_allows_and_waiting_rows_go_first(&*with_b1());
    // Every outcome claimed as its id arrived (rows written in groups and
    // one by one), then half of them from their WAITING rows.
    outcome_rows_of_every_kind_are_written_whole(&*with_b1(), 101);
    outcome_rows_of_every_kind_are_written_whole(&*with_b1(), 50);
    claimed_entities_show_in_process_and_get_their_row_with_their_outcome(&*with_b1());
    a_dead_runs_claims_wait_again_on_retry_and_finished_ones_keep_their_row(&*with_b1());
    cancelling_a_dead_run_cancels_its_claimed_entities(&*with_b1());
    released_entities_wait_again_as_if_never_claimed(&*with_b1());
    retries_wait_for_their_time_and_outcomes_keep_their_times(&*with_b1());
    slowest_kept_in_memory_matches_the_rows(&*with_b1());
    only_the_claims_of_dead_nodes_wait_again(&*with_b1());
    a_dead_nodes_claims_go_back_while_the_owner_holds_its_own(&*with_b1());
    a_takeover_declares_dead_only_the_owning_runs_node(&*with_b1());
    a_finished_row_names_no_worker(&*with_b1());
    a_twin_is_refused_and_its_bid_given(&*with_b1());
    a_batch_of_a_series_with_a_run_open_is_not_created(&*with_b1());
    stored_ids_give_good_and_bad_ids_and_stop_when_asked(&*with_b1());
    a_failed_run_waits_its_entities_again_and_controls_reach_the_step(&*with_b1());
}

/// The run of batch `bid` that [`batch_b1`] starts (execution `e1` on
/// node `n1`, worker `w1`).
pub fn test_run(bid: &str) -> RunRef<'_> {
    RunRef {
        bid,
        execution_id: "e1",
        node: "n1",
        worker: "w1",
    }
}

/// Batch `bid` of LU `lu` running `fabric_command` (command `BATCH x`),
/// as a run of execution `e1` starting from node `n1` would ask for it.
pub fn batch_of<'a>(bid: &'a str, lu: &'a str, fabric_command: &'a str) -> NewBatch<'a> {
    static EMPTY: LazyLock<serde_json::Value> = LazyLock::new(|| serde_json::json!({}));
    static ANYWHERE: LazyLock<crate::batch::Placement> = LazyLock::new(Default::default);
    NewBatch {
        bid,
        command: "BATCH x",
        lu,
        fabric_command,
        source: &EMPTY,
        arguments: &EMPTY,
        execution_id: "e1",
        node: "n1",
        estimated_total: None,
        max_workers: None,
        queued: false,
        placement: &ANYWHERE,
        open: false,
        workdir: None,
        lines: None,
        series: None,
    }
}

/// Creates batch `bid` of LU `lu` running `fabric_command`, as a run
/// starting from node `n1` would, not yet owned.
pub fn new_batch(s: &dyn ContractStore, bid: &str, lu: &str, fabric_command: &str) {
    s.create_batch(&batch_of(bid, lu, fabric_command), false)
        .unwrap();
    // Not yet owned: as if its process had not taken it yet.
    s.execute(&format!(
        "UPDATE batches SET owner_node = NULL, owner_pid = NULL WHERE bid = '{bid}'"
    ));
}

/// Batch `b1` of LU `L` (made here), owned by [`test_run`].
pub fn batch_b1(s: &dyn ContractStore) {
    s.execute(
        "INSERT INTO lus (name, interface, root_sql, created_at)
         VALUES ('L', 'i', 'select 1', '2026-01-01T00:00:00.000Z')",
    );
    new_batch(s, "b1", "L", "echo ?");
    s.take_ownership(test_run("b1"), "dc").unwrap();
}

/// One step of batch `b1` by [`test_run`].
pub fn step(s: &dyn ContractStore, seq: &mut i64, mut input: StepInput) -> StepResult {
    s.step(test_run("b1"), seq, &mut input)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn ids(range: std::ops::Range<i64>) -> Vec<NewId> {
    range.map(|k| NewId::Ok(k.to_string())).collect()
}

/// A step of `run` as a helper node makes it: it claims up to 5.
pub fn helper_step(s: &dyn ContractStore, run: RunRef, seq: &mut i64) -> StepResult {
    let mut input = StepInput {
        claim: 5,
        helper: true,
        ..StepInput::default()
    };
    s.step(run, seq, &mut input)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The outcome of claimed entity `c`, after `ms` milliseconds.
pub fn done(c: &Claimed, ms: i64, state: OutcomeState) -> Outcome {
    Outcome {
        seq: c.seq,
        entity_id: c.entity_id.clone(),
        start_ms: 1_700_000_000_000,
        end_ms: 1_700_000_000_000 + ms,
        process_ms: ms,
        result: Some(format!("{{\"echo\":\"{}\"}}", c.entity_id)),
        state,
        claim: c.claim,
    }
}

pub fn ok() -> OutcomeState {
    OutcomeState::Completed {
        added: false,
        updated: false,
        unchanged: false,
    }
}

pub fn failed(error: impl Into<String>) -> OutcomeState {
    OutcomeState::Failed {
        error: error.into(),
    }
}

pub fn adds_up(c: &Counters) {
    assert_eq!(
        c.total,
        c.waiting + c.in_process + c.completed + c.failed + c.cancelled,
        "{c:?}"
    );
}

/// The state of node `worker` as the store lists it.
fn node_state(s: &dyn ContractStore, worker: &str) -> NodeState {
    s.nodes()
        .unwrap()
        .into_iter()
        .find(|n| n.worker_id == worker)
        .unwrap_or_else(|| panic!("no node {worker}"))
        .state
}

fn new_ids_are_stored_claimed_as_room_allows_and_waiting_rows_go_first(s: &dyn ContractStore) {
    let mut seq = 0;
    // Room for 3 of 5 new ids: 3 stored claimed, 2 WAITING.
    let r = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..6),
            claim: 3,
            ..StepInput::default()
        },
    );
    let got: Vec<&str> = r.claimed.iter().map(|c| c.entity_id.as_str()).collect();
    assert_eq!(got, ["1", "2", "3"]);
    assert!(r.claimed.iter().all(|c| c.attempts == 1));
    assert_eq!((r.counters.in_process, r.counters.waiting), (3, 2));
    adds_up(&r.counters);
    // The claimed ones are stored in one claim row, the others as rows.
    assert!(r.claimed.iter().all(|c| c.claim == Some(1)));
    assert_eq!(count(s, "SELECT count(*) FROM batch_entities"), 2);
    assert_eq!(
        count(s, "SELECT count(*) FROM batch_claimed WHERE node = 'n1'"),
        3
    );
    assert_eq!(s.max_seq("b1").unwrap(), 5);
    // Next claim: the 2 WAITING rows before 2 new ids.
    let r = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(6..8),
            claim: 10,
            ..StepInput::default()
        },
    );
    let got: Vec<&str> = r.claimed.iter().map(|c| c.entity_id.as_str()).collect();
    assert_eq!(got, ["4", "5", "6", "7"]);
    assert_eq!(r.counters.total, 7);
    assert!(!r.retry_pending);
    adds_up(&r.counters);
    assert_eq!(s.counters("b1").unwrap(), r.counters);
}

/// `n` entities, the first `arriving` claimed as their ids arrive and the
/// others from their WAITING rows; their outcomes, runs of COMPLETED rows
/// and of others, given out of order, are written whole. (101 rows on
/// SQLite: three full groups of its multi-row inserts and a leftover.)
fn outcome_rows_of_every_kind_are_written_whole(s: &dyn ContractStore, arriving: usize) {
    let mut seq = 0;
    let n = 101;
    let r1 = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..n + 1),
            claim: arriving,
            ..StepInput::default()
        },
    );
    let r2 = step(
        s,
        &mut seq,
        StepInput {
            claim: n as usize,
            ..StepInput::default()
        },
    );
    assert_eq!(r1.claimed.len(), arriving);
    assert_eq!(r1.claimed.len() + r2.claimed.len(), n as usize);
    let kind = |k: i64| match k {
        k if k % 40 == 7 => 2,
        k if k <= 40 || k > 80 => 0,
        _ => 1,
    };
    let outcomes: Vec<Outcome> = r1
        .claimed
        .iter()
        .chain(&r2.claimed)
        .rev()
        .map(|c| {
            let k: i64 = c.entity_id.parse().unwrap();
            let state = match kind(k) {
                0 => ok(),
                1 => failed(format!("boom {k}")),
                _ => OutcomeState::Retry {
                    error: format!("again {k}"),
                    retry_at_ms: 1_800_000_000_000 + k,
                },
            };
            done(c, k, state)
        })
        .collect();
    let r = step(
        s,
        &mut seq,
        StepInput {
            outcomes,
            ..StepInput::default()
        },
    );
    adds_up(&r.counters);
    assert_eq!(r.counters.in_process, 0);
    let rows = s.rows(
        "SELECT seq, entity_id, status, attempts, node, start_time_ms, end_time_ms,
             process_time_ms, result, error, retry_at_ms, worker
         FROM batch_entities ORDER BY seq",
    );
    assert_eq!(rows.len() as i64, n);
    for (k, row) in (1..).zip(&rows) {
        let text = |t: &str| Some(t.to_string());
        let (status, error, retry_at) = match kind(k) {
            0 => ("COMPLETED", None, None),
            1 => ("FAILED", text(&format!("boom {k}")), None),
            _ => (
                "WAITING",
                text(&format!("again {k}")),
                text(&(1_800_000_000_000 + k).to_string()),
            ),
        };
        let expected: Vec<Option<String>> = vec![
            text(&k.to_string()),
            text(&k.to_string()),
            text(status),
            text("1"),
            text("n1"),
            text("1700000000000"),
            text(&(1_700_000_000_000 + k).to_string()),
            text(&k.to_string()),
            text(&format!("{{\"echo\":\"{k}\"}}")),
            error,
            retry_at,
            None,
        ];
        assert_eq!(
            row, &expected,
            "entity {k}, {arriving} claimed as they arrived"
        );
    }
}

fn claimed_entities_show_in_process_and_get_their_row_with_their_outcome(s: &dyn ContractStore) {
    let mut seq = 0;
    let r = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..4),
            claim: 3,
            ..StepInput::default()
        },
    );
    let rows = s.entity_rows("b1", &DetailsQuery::default()).unwrap();
    let shown: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| (r.entity_id.as_str(), r.status.as_str(), r.attempts))
        .collect();
    assert_eq!(
        shown,
        [
            ("1", "IN_PROCESS", 1),
            ("2", "IN_PROCESS", 1),
            ("3", "IN_PROCESS", 1)
        ]
    );
    assert_eq!(s.in_process_rows().unwrap().len(), 3);
    // Two outcomes: their rows; the third stays claimed.
    let r = step(
        s,
        &mut seq,
        StepInput {
            outcomes: vec![
                done(&r.claimed[0], 5, ok()),
                done(&r.claimed[2], 9, failed("boom")),
            ],
            ..StepInput::default()
        },
    );
    adds_up(&r.counters);
    assert_eq!(
        (
            r.counters.completed,
            r.counters.failed,
            r.counters.in_process
        ),
        (1, 1, 1)
    );
    let rows = s.entity_rows("b1", &DetailsQuery::default()).unwrap();
    let shown: Vec<(&str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.entity_id.as_str(), r.status.as_str(), r.node.as_deref()))
        .collect();
    assert_eq!(
        shown,
        [
            ("1", "COMPLETED", Some("n1")),
            ("2", "IN_PROCESS", Some("n1")),
            ("3", "FAILED", Some("n1"))
        ]
    );
    let failed = s
        .entity_rows(
            "b1",
            &DetailsQuery {
                statuses: Some(vec![EntityStatus::Failed]),
                ..DetailsQuery::default()
            },
        )
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error.as_deref(), Some("boom"));
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM batch_entities WHERE status = 'FAILED' AND error = 'boom'"
        ),
        1
    );
    assert_eq!(count(s, "SELECT open FROM batch_claims"), 1);
}

fn a_dead_runs_claims_wait_again_on_retry_and_finished_ones_keep_their_row(s: &dyn ContractStore) {
    let mut seq = 0;
    let r = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..6),
            claim: 4,
            ..StepInput::default()
        },
    );
    step(
        s,
        &mut seq,
        StepInput {
            outcomes: vec![
                done(&r.claimed[0], 5, ok()),
                done(&r.claimed[1], 5, failed("boom")),
            ],
            ..StepInput::default()
        },
    );
    // The process dies here: "3" and "4" are claimed, without a row.
    let seen = s.batch_state("b1").unwrap();
    s.request("b1", Some(Request::Pause)).unwrap();
    // The request changed no owner: the retry takes the batch over.
    let c = s
        .prepare_retry("b1", false, &seen, "n2", "e2")
        .unwrap()
        .unwrap();
    let now = s.batch_state("b1").unwrap();
    assert_eq!(now.owner_node.as_deref(), Some("n2"));
    assert_eq!(now.owner_pid, Some(i64::from(std::process::id())));
    assert_eq!(
        now.requested, None,
        "a pause asked of the dead owner is dropped"
    );
    // A second retry that saw the same dead owner is too late.
    assert!(
        s.prepare_retry("b1", false, &seen, "n3", "e3")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.batch_state("b1").unwrap().owner_node.as_deref(),
        Some("n2")
    );
    adds_up(&c);
    assert_eq!(
        (c.total, c.completed, c.waiting, c.in_process),
        (5, 1, 4, 0)
    );
    assert_eq!(count(s, "SELECT count(*) FROM batch_claims"), 0);
    assert_eq!(s.max_seq("b1").unwrap(), 5);
    // The run taken over writes nothing more: its step rolls back.
    let before = seq;
    let e = s
        .step(
            test_run("b1"),
            &mut seq,
            &mut StepInput {
                new_ids: ids(6..8),
                claim: 10,
                ..StepInput::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::TakenOver { node: Some(n), .. } if n == "n2"),
        "{e}"
    );
    assert_eq!(
        seq, before,
        "a step that wrote nothing uses no sequence number"
    );
    assert_eq!(s.max_seq("b1").unwrap(), 5);
    assert_eq!(s.counters("b1").unwrap(), c);
    let new_run = RunRef {
        bid: "b1",
        execution_id: "e2",
        node: "n2",
        worker: "w2",
    };
    let r = s
        .step(
            new_run,
            &mut seq,
            &mut StepInput {
                claim: 10,
                ..StepInput::default()
            },
        )
        .unwrap();
    let again: Vec<(&str, i64)> = r
        .claimed
        .iter()
        .map(|c| (c.entity_id.as_str(), c.attempts))
        .collect();
    // The in-flight ones run again (at-least-once), as their 2nd attempt.
    assert_eq!(again, [("2", 2), ("3", 2), ("4", 2), ("5", 1)]);
    assert!(r.claimed.iter().all(|c| c.claim.is_none()));
}

fn cancelling_a_dead_run_cancels_its_claimed_entities(s: &dyn ContractStore) {
    let mut seq = 0;
    step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..4),
            claim: 2,
            ..StepInput::default()
        },
    );
    let seen = s.batch_state("b1").unwrap();
    assert!(s.cancel_unowned("b1", &seen, "n2").unwrap());
    // Cancelled: a second cancel that saw it before is refused.
    assert!(!s.cancel_unowned("b1", &seen, "n2").unwrap());
    assert!(!s.pause_unowned("b1", &seen, "n2").unwrap());
    assert_eq!(s.batch_state("b1").unwrap().status, BatchStatus::Cancelled);
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM batch_entities WHERE status = 'CANCELLED'"
        ),
        3
    );
    assert_eq!(count(s, "SELECT count(*) FROM batch_claims"), 0);
    assert_eq!(
        count(s, "SELECT cancelled FROM batches WHERE bid = 'b1'"),
        3
    );
    assert_eq!(s.counters("b1").unwrap().cancelled, 3);
    // A step after the end claims nothing, and says the batch ended.
    let execution_id = s.batch_state("b1").unwrap().execution_id;
    let run = RunRef {
        execution_id: &execution_id,
        ..test_run("b1")
    };
    let r = helper_step(s, run, &mut seq);
    assert!(r.claimed.is_empty());
    assert_eq!(r.status, BatchStatus::Cancelled);
}

fn released_entities_wait_again_as_if_never_claimed(s: &dyn ContractStore) {
    let mut seq = 0;
    let r = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..7),
            claim: 4,
            ..StepInput::default()
        },
    );
    // Two more from their WAITING rows.
    let r2 = step(
        s,
        &mut seq,
        StepInput {
            claim: 2,
            ..StepInput::default()
        },
    );
    let mut release = r.claimed[2..].to_vec();
    release.extend(r2.claimed.iter().cloned());
    let r = step(
        s,
        &mut seq,
        StepInput {
            outcomes: vec![done(&r.claimed[0], 5, ok())],
            release,
            ..StepInput::default()
        },
    );
    assert_eq!(
        (
            r.counters.completed,
            r.counters.in_process,
            r.counters.waiting
        ),
        (1, 1, 4)
    );
    adds_up(&r.counters);
    assert_eq!(
        count(
            s,
            "SELECT sum(attempts) FROM batch_entities WHERE status = 'WAITING'"
        ),
        0
    );
    // Claimed again, they count their first attempt.
    let r = step(
        s,
        &mut seq,
        StepInput {
            claim: 5,
            ..StepInput::default()
        },
    );
    assert_eq!(r.claimed.len(), 4);
    assert!(r.claimed.iter().all(|c| c.attempts == 1));
}

fn retries_wait_for_their_time_and_outcomes_keep_their_times(s: &dyn ContractStore) {
    let mut seq = 0;
    let r = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..3),
            claim: 2,
            ..StepInput::default()
        },
    );
    let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let r = step(
        s,
        &mut seq,
        StepInput {
            outcomes: vec![
                done(
                    &r.claimed[0],
                    7,
                    OutcomeState::Retry {
                        error: "boom".into(),
                        retry_at_ms: later,
                    },
                ),
                done(&r.claimed[1], 9, failed("bad")),
            ],
            claim: 5,
            ..StepInput::default()
        },
    );
    assert!(r.claimed.is_empty());
    assert!(r.retry_pending);
    assert_eq!((r.counters.waiting, r.counters.failed), (1, 1));
    adds_up(&r.counters);
    let rows =
        s.rows("SELECT start_time_ms, end_time_ms, retry_at_ms FROM batch_entities WHERE seq = 1");
    let times: Vec<i64> = rows[0]
        .iter()
        .map(|v| v.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times, [1_700_000_000_000, 1_700_000_000_007, later]);
}

fn slowest_kept_in_memory_matches_the_rows(s: &dyn ContractStore) {
    let mut seq = 0;
    let mut slowest = Slowest::default();
    let r = step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..41),
            claim: 40,
            ..StepInput::default()
        },
    );
    // Ties on the time, failures, and retries (not final) mixed.
    let outcomes: Vec<Outcome> = r
        .claimed
        .iter()
        .map(|c| {
            let ms = (c.seq * 7919) % 13;
            let state = match c.seq % 5 {
                0 => failed("x"),
                1 => OutcomeState::Retry {
                    error: "x".into(),
                    retry_at_ms: 0,
                },
                _ => ok(),
            };
            done(c, ms, state)
        })
        .collect();
    for o in &outcomes {
        slowest.offer(o);
    }
    step(
        s,
        &mut seq,
        StepInput {
            outcomes,
            ..StepInput::default()
        },
    );
    assert_eq!(slowest.to_json(), s.slowest("b1").unwrap());
    assert_eq!(
        slowest.to_json()["slowestProcessed"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
}

/// A node row of another host (so its heartbeat decides whether it is
/// alive), beaten now.
pub fn node_elsewhere(s: &dyn ContractStore, worker: &str) {
    let beat = now();
    s.execute(&format!(
        "INSERT INTO nodes (worker_id, node, dc, host, pid, kind, status, workers,
             started_at, heartbeat_at)
         VALUES ('{worker}', '{worker}', 'dc', 'elsewhere', 7, 'worker', 'RUNNING', 2,
             '{beat}', '{beat}')"
    ));
}

/// How many entities of the store node `worker` holds: IN_PROCESS rows
/// and claims.
fn held_by(s: &dyn ContractStore, worker: &str) -> i64 {
    count(
        s,
        &format!(
            "SELECT (SELECT count(*) FROM batch_entities
                     WHERE status = 'IN_PROCESS' AND worker = '{worker}')
                  + (SELECT count(*) FROM batch_claimed WHERE worker = '{worker}')"
        ),
    )
}

/// The run of b1 as node `worker` (its execution, another node).
fn as_node(worker: &str) -> RunRef<'_> {
    RunRef {
        worker,
        ..test_run("b1")
    }
}

fn only_the_claims_of_dead_nodes_wait_again(s: &dyn ContractStore) {
    // Three nodes process b1 under its one execution: this run (w1), a
    // live node elsewhere (w2) and one whose heartbeat stopped (w3).
    node_elsewhere(s, "w2");
    node_elsewhere(s, "w3");
    let mut seq = 0;
    s.step(
        as_node("w1"),
        &mut seq,
        &mut StepInput {
            new_ids: ids(1..10),
            ..StepInput::default()
        },
    )
    .unwrap();
    let mut claims = std::collections::HashMap::new();
    for (worker, arriving) in [("w2", 10..12), ("w3", 12..14)] {
        // Each claims two WAITING rows, and two ids as they arrive.
        let r = s
            .step(
                as_node(worker),
                &mut seq,
                &mut StepInput {
                    new_ids: ids(arriving),
                    claim: 4,
                    ..StepInput::default()
                },
            )
            .unwrap();
        assert_eq!(r.claimed.len(), 4);
        claims.insert(worker, r.claimed);
    }
    let held = |w: &str| held_by(s, w);
    assert_eq!((held("w2"), held("w3")), (4, 4));
    // w3 stops beating (its steps beat its heartbeat).
    s.execute("UPDATE nodes SET heartbeat_at = '2026-01-01T00:00:00.000Z' WHERE worker_id = 'w3'");
    let c = s.requeue_orphans(test_run("b1")).unwrap();
    adds_up(&c);
    assert_eq!((held("w2"), held("w3")), (4, 0));
    assert_eq!((c.in_process, c.waiting), (4, 9));
    assert_eq!(
        (node_state(s, "w2"), node_state(s, "w3")),
        (NodeState::Running, NodeState::Dead)
    );
    // The live node records its outcomes; the dead one writes nothing.
    let outcomes =
        |w: &str| -> Vec<Outcome> { claims[w].iter().map(|c| done(c, 5, ok())).collect() };
    let r = s
        .step(
            as_node("w2"),
            &mut seq,
            &mut StepInput {
                outcomes: outcomes("w2"),
                ..StepInput::default()
            },
        )
        .unwrap();
    assert_eq!((r.counters.completed, r.counters.in_process), (4, 0));
    let e = s
        .step(
            as_node("w3"),
            &mut seq,
            &mut StepInput {
                outcomes: outcomes("w3"),
                ..StepInput::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::TakenOver { .. }), "{e}");
    assert_eq!(s.counters("b1").unwrap().completed, 4);
}

/// [`BatchStore::requeue_dead`](crate::store::BatchStore::requeue_dead):
/// the owner, with claims of its own in flight, takes back those of a
/// node that died (declared dead in passing), and no others; with no dead
/// node left, it changes nothing.
fn a_dead_nodes_claims_go_back_while_the_owner_holds_its_own(s: &dyn ContractStore) {
    node_elsewhere(s, "w2");
    node_elsewhere(s, "w3");
    let mut seq = 0;
    for (worker, claim) in [("w1", 3), ("w2", 2), ("w3", 2)] {
        let input = &mut StepInput {
            new_ids: if worker == "w1" { ids(1..10) } else { vec![] },
            claim,
            ..StepInput::default()
        };
        assert_eq!(
            s.step(as_node(worker), &mut seq, input)
                .unwrap()
                .claimed
                .len(),
            claim
        );
    }
    let held = |w: &str| held_by(s, w);
    assert_eq!(s.requeue_dead(test_run("b1")).unwrap(), None, "nobody died");
    s.execute("UPDATE nodes SET heartbeat_at = '2026-01-01T00:00:00.000Z' WHERE worker_id = 'w3'");
    let c = s
        .requeue_dead(test_run("b1"))
        .unwrap()
        .expect("w3's claims went back");
    adds_up(&c);
    assert_eq!((held("w1"), held("w2"), held("w3")), (3, 2, 0));
    assert_eq!((c.in_process, c.waiting), (5, 4));
    assert_eq!(node_state(s, "w3"), NodeState::Dead);
    assert_eq!(s.requeue_dead(test_run("b1")).unwrap(), None);
}

/// A takeover declares dead the node of the run that owned the batch, and
/// no other: the same process may run another batch meanwhile (a REPL
/// under `--node`), under a node of its own, which goes on writing.
fn a_takeover_declares_dead_only_the_owning_runs_node(s: &dyn ContractStore) {
    new_batch(s, "b2", "L", "echo ?");
    s.execute("UPDATE batches SET command = 'BATCH y' WHERE bid = 'b2'");
    let b2 = RunRef {
        worker: "w2",
        ..test_run("b2")
    };
    s.take_ownership(b2, "dc").unwrap();
    let beat = now();
    for w in ["w1", "w2"] {
        s.execute(&format!(
            "INSERT INTO nodes (worker_id, node, dc, host, pid, kind, status, workers,
                 started_at, heartbeat_at)
             VALUES ('{w}', 'n1', 'dc', 'h', 7, 'synchronous', 'RUNNING', 2, '{beat}', '{beat}')"
        ));
    }
    let seen = s.batch_state("b1").unwrap();
    assert_eq!(seen.owner_worker.as_deref(), Some("w1"));
    s.prepare_retry("b1", false, &seen, "n9", "e9")
        .unwrap()
        .unwrap();
    assert_eq!(
        (node_state(s, "w1"), node_state(s, "w2")),
        (NodeState::Dead, NodeState::Running)
    );
    let mut seq = 0;
    s.step(
        b2,
        &mut seq,
        &mut StepInput {
            new_ids: ids(1..3),
            claim: 1,
            ..StepInput::default()
        },
    )
    .unwrap();
}

/// A row claimed from WAITING names its node while IN_PROCESS, and no
/// more once its outcome is written.
fn a_finished_row_names_no_worker(s: &dyn ContractStore) {
    let mut seq = 0;
    step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..3),
            ..StepInput::default()
        },
    );
    let r = step(
        s,
        &mut seq,
        StepInput {
            claim: 2,
            ..StepInput::default()
        },
    );
    assert_eq!(
        count(s, "SELECT count(*) FROM batch_entities WHERE worker = 'w1'"),
        2
    );
    let outcomes = r.claimed.iter().map(|c| done(c, 3, ok())).collect();
    step(
        s,
        &mut seq,
        StepInput {
            outcomes,
            ..StepInput::default()
        },
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM batch_entities WHERE worker IS NOT NULL"
        ),
        0
    );
}

fn a_twin_is_refused_and_its_bid_given(s: &dyn ContractStore) {
    let lines = [b"a\n".to_vec(), b"b\n".to_vec()];
    let twin = NewBatch {
        execution_id: "e2",
        queued: true,
        workdir: Some("/tmp"),
        lines: Some(&lines),
        ..batch_of("b2", "L", "echo ?")
    };
    assert_eq!(s.create_batch(&twin, true).unwrap().as_deref(), Some("b1"));
    assert_eq!(s.active_twin("BATCH x").unwrap().as_deref(), Some("b1"));
    // Allowed beside it: created, queued for a worker, with its lines.
    assert_eq!(s.create_batch(&twin, false).unwrap(), None);
    let state = s.batch_state("b2").unwrap();
    assert_eq!(
        (state.status, state.owner_node),
        (BatchStatus::WaitingForJob, None)
    );
    assert_eq!(s.batch_lines("b2").unwrap().unwrap(), b"a\nb\n");
    assert_eq!(s.batch_lines("b1").unwrap(), None);
    assert_eq!(s.workdir("b2").unwrap().as_deref(), Some("/tmp"));
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM jobs WHERE uid = 'b2' AND status = 'WAITING'"
        ),
        1
    );
    // Its number follows every number rows are stored under.
    assert_eq!(count(s, "SELECT batch_no FROM batches WHERE bid = 'b2'"), 2);
    // A retry of b2 is refused beside the active b1.
    let seen = s.batch_state("b2").unwrap();
    let e = s.prepare_retry("b2", false, &seen, "n1", "e3").unwrap_err();
    assert!(
        matches!(e, StoreError::TwinActive { ref other, .. } if other == "b1"),
        "{e}"
    );
}

fn a_batch_of_a_series_with_a_run_open_is_not_created(s: &dyn ContractStore) {
    let new = |bid: &'static str, run: &crate::store::series::BatchRun| {
        s.create_batch(
            &NewBatch {
                command: bid,
                series: Some(run),
                ..batch_of(bid, "L", "echo ?")
            },
            true,
        )
    };
    let run = |batch_id| crate::store::series::BatchRun {
        series: "wf1",
        reprocess_hours: Some(2),
        trunc_start: None,
        start: "2026-11-21T13:30:00.000Z",
        batch_id,
    };
    assert_eq!(new("s1", &run(1)).unwrap(), None);
    let e = new("s2", &run(2)).unwrap_err();
    assert!(
        matches!(&e, StoreError::SeriesRunOpen { series, batch_id: 1, bid: Some(b) }
            if series == "wf1" && b == "s1"),
        "{e}"
    );
    assert!(s.batch_state("s2").is_err(), "nothing of it is stored");
    assert_eq!(
        count(s, "SELECT reprocess_hours FROM series WHERE name = 'WF1'"),
        2
    );
    // Its batch ended, its run did too (the trigger): the next opens.
    s.execute("UPDATE batches SET status = 'DONE' WHERE bid = 's1'");
    assert_eq!(new("s3", &run(3)).unwrap(), None);
    assert_eq!(
        count(
            s,
            "SELECT max(run_no) FROM series_runs WHERE status = 'OPEN'"
        ),
        2
    );
}

fn stored_ids_give_good_and_bad_ids_and_stop_when_asked(s: &dyn ContractStore) {
    let mut seq = 0;
    let mut new_ids = ids(1..5);
    new_ids.push(NewId::Bad("<null>".into(), "a NULL id".into()));
    step(
        s,
        &mut seq,
        StepInput {
            new_ids,
            claim: 2,
            ..StepInput::default()
        },
    );
    let mut good = Vec::new();
    let mut bad = Vec::new();
    s.stored_ids("b1", &mut |id| {
        match id {
            StoredId::Good(t) => good.push(t.to_string()),
            StoredId::Bad { stand_in, error } => bad.push((stand_in.into(), error.to_string())),
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    good.sort();
    assert_eq!(good, ["1", "2", "3", "4"]);
    assert_eq!(bad, [("<null>".to_string(), "a NULL id".to_string())]);
    let mut seen = 0;
    s.stored_ids("b1", &mut |_| {
        seen += 1;
        std::ops::ControlFlow::Break(())
    })
    .unwrap();
    assert_eq!(seen, 1);
    let c = s.counters("b1").unwrap();
    assert_eq!((c.total, c.failed, c.in_process, c.waiting), (5, 1, 2, 2));
}

fn a_failed_run_waits_its_entities_again_and_controls_reach_the_step(s: &dyn ContractStore) {
    let mut seq = 0;
    step(
        s,
        &mut seq,
        StepInput {
            new_ids: ids(1..5),
            claim: 2,
            ..StepInput::default()
        },
    );
    s.request("b1", Some(Request::Pause)).unwrap();
    s.set_max_workers("b1", 3, "n1").unwrap();
    let r = step(s, &mut seq, StepInput::default());
    assert_eq!(
        r.control,
        Control {
            requested: Some(Request::Pause),
            max_workers: Some(3)
        }
    );
    s.sample_progress(test_run("b1"), 0).unwrap();
    s.set_extra_stats(test_run("b1"), &serde_json::json!({"a": 1}))
        .unwrap();
    s.set_run_status(test_run("b1"), BatchStatus::InProgress, None)
        .unwrap();
    s.fail_run(test_run("b1"), "boom").unwrap();
    let c = s.counters("b1").unwrap();
    assert_eq!((c.waiting, c.in_process, c.total), (4, 0, 4));
    let state = s.batch_state("b1").unwrap();
    assert_eq!(
        (state.status, state.owner_node),
        (BatchStatus::Failed, None)
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM batch_events WHERE note = 'BATCH_EDIT MAX_WORKERS_PER_NODE=3'"
        ),
        1
    );
}
