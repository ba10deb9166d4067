//! The batch writes on PostgreSQL: steps, claims, releases, takeovers,
//! and several nodes stepping one batch at once.

use super::*;
use crate::store::Upgrades;
use crate::store::postgres::testing::{TestStore, fresh};

/// The run of batch `bid` that [`store`] starts (execution `e1` on node
/// `n1`, worker `w1`).
fn test_run(bid: &str) -> RunRef<'_> {
    RunRef {
        bid,
        execution_id: "e1",
        node: "n1",
        worker: "w1",
    }
}

fn exec(s: &PgStore, sql: &str) {
    s.client()
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Creates batch `bid` of LU `lu` running `fabric_command`, as a run
/// starting from node `n1` would, not yet owned.
fn new_batch(s: &PgStore, bid: &str, lu: &str, fabric_command: &str) {
    s.create_batch(
        &NewBatch {
            bid,
            command: "BATCH x",
            lu,
            fabric_command,
            source: &serde_json::json!({}),
            arguments: &serde_json::json!({}),
            execution_id: "e1",
            node: "n1",
            estimated_total: None,
            max_workers: None,
            queued: false,
            placement: &crate::batch::Placement::default(),
            open: false,
            workdir: None,
            lines: None,
            series: None,
        },
        false,
    )
    .unwrap();
    exec(
        s,
        &format!("UPDATE batches SET owner_node = NULL, owner_pid = NULL WHERE bid = '{bid}'"),
    );
}

/// A fresh store with batch `b1` of LU `L`, owned by [`test_run`].
fn store(test: &str) -> Option<TestStore> {
    let s = fresh(test)?;
    exec(
        &s,
        "INSERT INTO lus (name, interface, root_sql, created_at)
         VALUES ('L', 'i', 'select 1', '2026-01-01T00:00:00.000Z')",
    );
    new_batch(&s, "b1", "L", "echo ?");
    s.take_ownership(test_run("b1"), "dc").unwrap();
    Some(s)
}

/// One step of batch `b1` by [`test_run`].
fn step(s: &PgStore, seq: &mut i64, mut input: StepInput) -> StepResult {
    s.step(test_run("b1"), seq, &mut input)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ids(range: std::ops::Range<i64>) -> Vec<NewId> {
    range.map(|k| NewId::Ok(k.to_string())).collect()
}

fn done(c: &Claimed, ms: i64, state: OutcomeState) -> Outcome {
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

fn count(s: &PgStore, sql: &str) -> i64 {
    s.client()
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

fn ok() -> OutcomeState {
    OutcomeState::Completed {
        added: false,
        updated: false,
        unchanged: false,
    }
}

fn failed(error: impl Into<String>) -> OutcomeState {
    OutcomeState::Failed {
        error: error.into(),
    }
}

fn adds_up(c: &Counters) {
    assert_eq!(
        c.total,
        c.waiting + c.in_process + c.completed + c.failed + c.cancelled,
        "{c:?}"
    );
}

/// The batch's entities as its rows and claims show them, in order:
/// (id, status, attempts, node).
fn entities(s: &PgStore) -> Vec<(String, String, i64, Option<String>)> {
    s.client()
        .query(
            "SELECT entity_id, status, attempts, node FROM (
                 SELECT seq, entity_id, status, attempts, node FROM batch_entities
                 UNION ALL
                 SELECT seq, entity_id, 'IN_PROCESS', 1, node FROM batch_claimed) AS e
             ORDER BY seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

fn node_states(s: &PgStore) -> Vec<(String, String)> {
    s.client()
        .query(
            "SELECT worker_id, status FROM nodes ORDER BY worker_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn new_ids_are_stored_claimed_as_room_allows_and_waiting_rows_go_first() {
    let Some(s) = store("new_ids_are_stored_claimed_as_room_allows_and_waiting_rows_go_first")
    else {
        return;
    };
    let mut seq = 0;
    // Room for 3 of 5 new ids: 3 stored claimed, 2 WAITING.
    let r = step(
        &s,
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
    assert!(r.claimed.iter().all(|c| c.claim == Some(1)));
    assert_eq!(count(&s, "SELECT count(*) FROM batch_entities"), 2);
    assert_eq!(
        count(&s, "SELECT count(*) FROM batch_claimed WHERE node = 'n1'"),
        3
    );
    assert_eq!(s.max_seq("b1").unwrap(), 5);
    let r = step(
        &s,
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
    // The step's changes went to the worker's own row, not the batch's.
    assert_eq!(count(&s, "SELECT total FROM batches"), 0);
    assert_eq!(
        count(&s, "SELECT total FROM batch_counts WHERE worker = 'w1'"),
        7
    );
    assert_eq!(s.counters("b1").unwrap(), r.counters);
}

#[test]
fn outcome_rows_of_every_kind_are_written_whole() {
    let Some(s) = store("outcome_rows_of_every_kind_are_written_whole") else {
        return;
    };
    let mut seq = 0;
    let n = 101;
    // Half claimed as they arrive, half from their WAITING rows.
    let r1 = step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..n + 1),
            claim: 50,
            ..StepInput::default()
        },
    );
    let r2 = step(
        &s,
        &mut seq,
        StepInput {
            claim: n as usize,
            ..StepInput::default()
        },
    );
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
        &s,
        &mut seq,
        StepInput {
            outcomes,
            ..StepInput::default()
        },
    );
    adds_up(&r.counters);
    assert_eq!(r.counters.in_process, 0);
    let rows: Vec<Vec<Option<String>>> = s
        .client()
        .query(
            "SELECT seq::text AS k, entity_id, status, attempts::text, node,
                 start_time_ms::text, end_time_ms::text, process_time_ms::text, result, error,
                 retry_at_ms::text, worker
             FROM batch_entities ORDER BY seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (0..12).map(|i| r.get(i)).collect())
        .collect();
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
        assert_eq!(row, &expected, "entity {k}");
    }
}

#[test]
fn claimed_entities_show_in_process_and_get_their_row_with_their_outcome() {
    let Some(s) = store("claimed_entities_show_in_process_and_get_their_row_with_their_outcome")
    else {
        return;
    };
    let mut seq = 0;
    let r = step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..4),
            claim: 3,
            ..StepInput::default()
        },
    );
    let shown: Vec<(String, String, i64)> = entities(&s)
        .into_iter()
        .map(|(id, status, attempts, _)| (id, status, attempts))
        .collect();
    let expect = |id: &str, status: &str| (id.to_string(), status.to_string(), 1);
    assert_eq!(
        shown,
        [
            expect("1", "IN_PROCESS"),
            expect("2", "IN_PROCESS"),
            expect("3", "IN_PROCESS")
        ]
    );
    let r = step(
        &s,
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
    let shown: Vec<(String, String, Option<String>)> = entities(&s)
        .into_iter()
        .map(|(id, status, _, node)| (id, status, node))
        .collect();
    let expect = |id: &str, status: &str| (id.to_string(), status.to_string(), Some("n1".into()));
    assert_eq!(
        shown,
        [
            expect("1", "COMPLETED"),
            expect("2", "IN_PROCESS"),
            expect("3", "FAILED")
        ]
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE status = 'FAILED' AND error = 'boom'"
        ),
        1
    );
    assert_eq!(count(&s, "SELECT open FROM batch_claims"), 1);
}

#[test]
fn a_dead_runs_claims_wait_again_on_retry_and_finished_ones_keep_their_row() {
    let Some(s) = store("a_dead_runs_claims_wait_again_on_retry_and_finished_ones_keep_their_row")
    else {
        return;
    };
    let mut seq = 0;
    let r = step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..6),
            claim: 4,
            ..StepInput::default()
        },
    );
    step(
        &s,
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
    adds_up(&c);
    assert_eq!(
        (c.total, c.completed, c.waiting, c.in_process),
        (5, 1, 4, 0)
    );
    assert_eq!(count(&s, "SELECT count(*) FROM batch_claims"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM batch_counts"), 0);
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
    assert_eq!(seq, before, "a step that wrote nothing uses no number");
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

#[test]
fn cancelling_a_dead_run_cancels_its_claimed_entities() {
    let Some(s) = store("cancelling_a_dead_run_cancels_its_claimed_entities") else {
        return;
    };
    let mut seq = 0;
    step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..4),
            claim: 2,
            ..StepInput::default()
        },
    );
    let seen = s.batch_state("b1").unwrap();
    assert!(s.cancel_unowned("b1", &seen, "n2").unwrap());
    assert!(!s.cancel_unowned("b1", &seen, "n2").unwrap());
    assert!(!s.pause_unowned("b1", &seen, "n2").unwrap());
    assert_eq!(s.batch_state("b1").unwrap().status, BatchStatus::Cancelled);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE status = 'CANCELLED'"
        ),
        3
    );
    assert_eq!(count(&s, "SELECT count(*) FROM batch_claims"), 0);
    assert_eq!(s.counters("b1").unwrap().cancelled, 3);
    // A step after the end claims nothing, and says the batch ended.
    let r = s
        .step(
            RunRef {
                execution_id: &s.batch_state("b1").unwrap().execution_id,
                ..test_run("b1")
            },
            &mut seq,
            &mut StepInput {
                claim: 5,
                helper: true,
                ..StepInput::default()
            },
        )
        .unwrap();
    assert!(r.claimed.is_empty());
    assert_eq!(r.status, BatchStatus::Cancelled);
}

#[test]
fn released_entities_wait_again_as_if_never_claimed() {
    let Some(s) = store("released_entities_wait_again_as_if_never_claimed") else {
        return;
    };
    let mut seq = 0;
    let r = step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..7),
            claim: 4,
            ..StepInput::default()
        },
    );
    // Two more from their WAITING rows.
    let r2 = step(
        &s,
        &mut seq,
        StepInput {
            claim: 2,
            ..StepInput::default()
        },
    );
    let mut release = r.claimed[2..].to_vec();
    release.extend(r2.claimed.iter().cloned());
    let r = step(
        &s,
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
            &s,
            "SELECT sum(attempts)::bigint FROM batch_entities WHERE status = 'WAITING'"
        ),
        0
    );
    // Claimed again, they count their first attempt.
    let r = step(
        &s,
        &mut seq,
        StepInput {
            claim: 5,
            ..StepInput::default()
        },
    );
    assert_eq!(r.claimed.len(), 4);
    assert!(r.claimed.iter().all(|c| c.attempts == 1));
}

#[test]
fn retries_wait_for_their_time_and_outcomes_keep_their_times() {
    let Some(s) = store("retries_wait_for_their_time_and_outcomes_keep_their_times") else {
        return;
    };
    let mut seq = 0;
    let r = step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..3),
            claim: 2,
            ..StepInput::default()
        },
    );
    let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let r = step(
        &s,
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
    let row = s
        .client()
        .query_one(
            "SELECT start_time_ms, end_time_ms, retry_at_ms FROM batch_entities WHERE seq = 1",
            &[],
        )
        .unwrap();
    let (start, end, retry_at): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(start, 1_700_000_000_000);
    assert_eq!(end, 1_700_000_000_007);
    assert_eq!(retry_at, later);
}

#[test]
fn slowest_kept_in_memory_matches_the_rows() {
    let Some(s) = store("slowest_kept_in_memory_matches_the_rows") else {
        return;
    };
    let mut seq = 0;
    let mut slowest = Slowest::default();
    let r = step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..41),
            claim: 40,
            ..StepInput::default()
        },
    );
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
        &s,
        &mut seq,
        StepInput {
            outcomes,
            ..StepInput::default()
        },
    );
    assert_eq!(slowest.to_json(), s.slowest("b1").unwrap());
}

/// A node row of another host (so its heartbeat decides whether it is
/// alive), beaten now on the database's clock.
fn node_elsewhere(s: &PgStore, worker: &str) {
    exec(
        s,
        &format!(
            "INSERT INTO nodes (worker_id, node, dc, host, pid, kind, status, workers,
                 started_at, heartbeat_at)
             VALUES ('{worker}', '{worker}', 'dc', 'elsewhere', 7, 'worker', 'RUNNING', 2,
                 batchsh_now(), batchsh_now())"
        ),
    );
}

#[test]
fn only_the_claims_of_dead_nodes_wait_again() {
    let Some(s) = store("only_the_claims_of_dead_nodes_wait_again") else {
        return;
    };
    node_elsewhere(&s, "w2");
    node_elsewhere(&s, "w3");
    let as_node = |worker| RunRef {
        worker,
        ..test_run("b1")
    };
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
    let held = |w: &str| {
        count(
            &s,
            &format!(
                "SELECT (SELECT count(*) FROM batch_entities
                         WHERE status = 'IN_PROCESS' AND worker = '{w}')
                      + (SELECT count(*) FROM batch_claimed WHERE worker = '{w}')"
            ),
        )
    };
    assert_eq!((held("w2"), held("w3")), (4, 4));
    // w3 stops beating.
    exec(
        &s,
        "UPDATE nodes SET heartbeat_at = '2026-01-01T00:00:00.000Z' WHERE worker_id = 'w3'",
    );
    let c = s.requeue_orphans(test_run("b1")).unwrap();
    adds_up(&c);
    assert_eq!((held("w2"), held("w3")), (4, 0));
    assert_eq!((c.in_process, c.waiting), (4, 9));
    assert_eq!(
        node_states(&s),
        [
            ("w2".to_string(), "RUNNING".to_string()),
            ("w3".to_string(), "DEAD".to_string())
        ]
    );
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

#[test]
fn a_takeover_declares_dead_only_the_owning_runs_node() {
    let Some(s) = store("a_takeover_declares_dead_only_the_owning_runs_node") else {
        return;
    };
    new_batch(&s, "b2", "L", "echo ?");
    exec(
        &s,
        "UPDATE batches SET command = 'BATCH y' WHERE bid = 'b2'",
    );
    let b2 = RunRef {
        worker: "w2",
        ..test_run("b2")
    };
    s.take_ownership(b2, "dc").unwrap();
    for w in ["w1", "w2"] {
        exec(
            &s,
            &format!(
                "INSERT INTO nodes (worker_id, node, dc, host, pid, kind, status, workers,
                     started_at, heartbeat_at)
                 VALUES ('{w}', 'n1', 'dc', 'h', 7, 'synchronous', 'RUNNING', 2,
                     batchsh_now(), batchsh_now())"
            ),
        );
    }
    let seen = s.batch_state("b1").unwrap();
    assert_eq!(seen.owner_worker.as_deref(), Some("w1"));
    s.prepare_retry("b1", false, &seen, "n9", "e9")
        .unwrap()
        .unwrap();
    assert_eq!(
        node_states(&s),
        [
            ("w1".to_string(), "DEAD".to_string()),
            ("w2".to_string(), "RUNNING".to_string())
        ]
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

#[test]
fn a_finished_row_names_no_worker() {
    let Some(s) = store("a_finished_row_names_no_worker") else {
        return;
    };
    let mut seq = 0;
    step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..3),
            ..StepInput::default()
        },
    );
    let r = step(
        &s,
        &mut seq,
        StepInput {
            claim: 2,
            ..StepInput::default()
        },
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE worker = 'w1'"
        ),
        2
    );
    let outcomes = r.claimed.iter().map(|c| done(c, 3, ok())).collect();
    step(
        &s,
        &mut seq,
        StepInput {
            outcomes,
            ..StepInput::default()
        },
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE worker IS NOT NULL"
        ),
        0
    );
}

#[test]
fn a_batch_whose_lu_was_dropped_before_its_run_took_it_ends_failed() {
    let Some(s) = fresh("a_batch_whose_lu_was_dropped_before_its_run_took_it_ends_failed") else {
        return;
    };
    exec(
        &s,
        "INSERT INTO lus (name, interface, root_sql, created_at)
         VALUES ('Customer', 'crm', 'select 1', '2026-01-01T00:00:00.000Z')",
    );
    new_batch(&s, "b1", "Customer", "sync_instance copy.?");
    let e = s.take_ownership(test_run("b1"), "dc").unwrap_err();
    assert!(
        matches!(e, StoreError::LuDropped { ref lu, .. } if lu == "copy"),
        "{e}"
    );
    let state = s.batch_state("b1").unwrap();
    assert_eq!(
        (state.status, state.owner_node),
        (BatchStatus::Failed, None)
    );
    // Its LUs there: the run takes it (names ignore case).
    new_batch(&s, "b2", "Customer", "sync_instance CUSTOMER.?");
    s.take_ownership(test_run("b2"), "dc").unwrap();
    assert_eq!(
        s.batch_state("b2").unwrap().owner_worker.as_deref(),
        Some("w1")
    );
}

#[test]
fn a_twin_is_refused_and_its_bid_given() {
    let Some(s) = store("a_twin_is_refused_and_its_bid_given") else {
        return;
    };
    let twin = NewBatch {
        bid: "b2",
        command: "BATCH x",
        lu: "L",
        fabric_command: "echo ?",
        source: &serde_json::json!({}),
        arguments: &serde_json::json!({}),
        execution_id: "e2",
        node: "n1",
        estimated_total: None,
        max_workers: None,
        queued: true,
        placement: &crate::batch::Placement::default(),
        open: false,
        workdir: Some("/tmp"),
        lines: Some(&[b"a\n".to_vec(), b"b\n".to_vec()]),
        series: None,
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
            &s,
            "SELECT count(*) FROM jobs WHERE uid = 'b2' AND status = 'WAITING'"
        ),
        1
    );
    // Its number follows every number rows are stored under.
    assert_eq!(
        count(&s, "SELECT batch_no FROM batches WHERE bid = 'b2'"),
        2
    );
    // A retry of b2 is refused beside the active b1.
    let seen = s.batch_state("b2").unwrap();
    let e = s.prepare_retry("b2", false, &seen, "n1", "e3").unwrap_err();
    assert!(
        matches!(e, StoreError::TwinActive { ref other, .. } if other == "b1"),
        "{e}"
    );
}

#[test]
fn a_batch_of_a_series_with_a_run_open_is_not_created() {
    let Some(s) = store("a_batch_of_a_series_with_a_run_open_is_not_created") else {
        return;
    };
    let new = |bid: &'static str, run: &crate::store::series::BatchRun| {
        s.create_batch(
            &NewBatch {
                bid,
                command: bid,
                lu: "L",
                fabric_command: "echo ?",
                source: &serde_json::json!({}),
                arguments: &serde_json::json!({}),
                execution_id: "e1",
                node: "n1",
                estimated_total: None,
                max_workers: None,
                queued: false,
                placement: &crate::batch::Placement::default(),
                open: false,
                workdir: None,
                lines: None,
                series: Some(run),
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
        count(&s, "SELECT reprocess_hours FROM series WHERE name = 'WF1'"),
        2
    );
    // Its batch ended, its run did too (the trigger): the next opens.
    exec(&s, "UPDATE batches SET status = 'DONE' WHERE bid = 's1'");
    assert_eq!(new("s3", &run(3)).unwrap(), None);
    assert_eq!(
        count(
            &s,
            "SELECT max(run_no) FROM series_runs WHERE status = 'OPEN'"
        ),
        2
    );
}

#[test]
fn stored_ids_give_good_and_bad_ids_and_stop_when_asked() {
    let Some(s) = store("stored_ids_give_good_and_bad_ids_and_stop_when_asked") else {
        return;
    };
    let mut seq = 0;
    let mut new_ids = ids(1..5);
    new_ids.push(NewId::Bad("<null>".into(), "a NULL id".into()));
    step(
        &s,
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

#[test]
fn a_failed_run_waits_its_entities_again_and_controls_reach_the_step() {
    let Some(s) = store("a_failed_run_waits_its_entities_again_and_controls_reach_the_step") else {
        return;
    };
    let mut seq = 0;
    step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..5),
            claim: 2,
            ..StepInput::default()
        },
    );
    s.request("b1", Some(Request::Pause)).unwrap();
    s.set_max_workers("b1", 3, "n1").unwrap();
    let r = step(&s, &mut seq, StepInput::default());
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
            &s,
            "SELECT count(*) FROM batch_events WHERE note = 'BATCH_EDIT MAX_WORKERS_PER_NODE=3'"
        ),
        1
    );
}

/// Runs `work` on a thread per node, each with a connection of its own,
/// as a node of run `e1` of batch `b1`.
fn on_nodes<T: Send + 'static>(
    s: &TestStore,
    nodes: &[(&'static str, &'static str)],
    work: fn(PgStore, RunRef<'static>) -> T,
) -> Vec<std::thread::JoinHandle<T>> {
    nodes
        .iter()
        .map(|&(node, worker)| {
            let url = s.url.clone();
            std::thread::spawn(move || {
                let store = PgStore::open(&url, Upgrades::Silent).unwrap();
                let run = RunRef {
                    bid: "b1",
                    execution_id: "e1",
                    node,
                    worker,
                };
                work(store, run)
            })
        })
        .collect()
}

/// Three nodes, each with a connection of its own, step one batch of
/// 3,000 ids to its end: the owner feeds the ids and processes some, two
/// helpers claim the others; every entity is COMPLETED exactly once and
/// the counters add up, in the workers' rows, not the batch's.
#[test]
fn three_nodes_step_one_batch_to_its_end_each_entity_once() {
    let Some(s) = store("three_nodes_step_one_batch_to_its_end_each_entity_once") else {
        return;
    };
    const IDS: i64 = 3000;
    let started = std::time::Instant::now();
    let nodes = on_nodes(
        &s,
        &[("n1", "w1"), ("n2", "w2"), ("n3", "w3")],
        |store, run| {
            let owner = run.worker == "w1";
            if !owner {
                store.join_batch(run, "dc").unwrap();
            }
            let (mut seq, mut fed, mut steps) = (0, 0, 0);
            let mut held: Vec<Claimed> = Vec::new();
            let mut finished = Vec::new();
            loop {
                let new_ids = if owner && fed < IDS {
                    let to = (fed + 300).min(IDS);
                    let new = ids(fed + 1..to + 1);
                    fed = to;
                    new
                } else {
                    Vec::new()
                };
                let outcomes: Vec<Outcome> = held.drain(..).map(|c| done(&c, 1, ok())).collect();
                finished.extend(outcomes.iter().map(|o| o.seq));
                let mut input = StepInput {
                    new_ids,
                    ids_complete: owner && fed == IDS,
                    outcomes,
                    claim: 50,
                    helper: !owner,
                    ..StepInput::default()
                };
                let r = store.step(run, &mut seq, &mut input).unwrap();
                steps += 1;
                adds_up(&r.counters);
                held = r.claimed;
                if held.is_empty() && r.ids_complete && r.counters.completed == IDS {
                    return (finished, steps);
                }
            }
        },
    );
    let mut all = Vec::new();
    let mut steps = 0;
    for n in nodes {
        let (finished, k) = n.join().unwrap();
        assert!(!finished.is_empty(), "every node processed entities");
        all.extend(finished);
        steps += k;
    }
    let took = started.elapsed();
    eprintln!(
        "3 nodes: {IDS} entities in {} steps, {took:?} ({:.0} entities/s, {:.0} steps/s)",
        steps,
        IDS as f64 / took.as_secs_f64(),
        steps as f64 / took.as_secs_f64()
    );
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no entity was finished twice");
    assert_eq!(all, (1..=IDS).collect::<Vec<_>>());
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE status = 'COMPLETED' AND attempts = 1"
        ),
        IDS
    );
    assert_eq!(count(&s, "SELECT count(*) FROM batch_claims"), 0);
    let c = s.counters("b1").unwrap();
    assert_eq!(
        (c.total, c.completed, c.waiting, c.in_process),
        (IDS, IDS, 0, 0)
    );
    assert_eq!(count(&s, "SELECT completed FROM batches"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM batch_counts"), 3);
    assert_eq!(
        count(&s, "SELECT sum(completed)::bigint FROM batch_nodes"),
        IDS
    );
}

/// A retry takes a batch over while two nodes step it: their steps, in
/// flight or to come, write nothing more; the counters the retry recounts
/// match the rows; the new run finishes every entity, each once.
#[test]
fn a_takeover_while_nodes_step_fences_them_and_the_counters_hold() {
    let Some(s) = store("a_takeover_while_nodes_step_fences_them_and_the_counters_hold") else {
        return;
    };
    const IDS: i64 = 2000;
    let mut seq = 0;
    step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..IDS + 1),
            ids_complete: true,
            ..StepInput::default()
        },
    );
    let helpers = on_nodes(&s, &[("n2", "w2"), ("n3", "w3")], |store, run| {
        store.join_batch(run, "dc").unwrap();
        let mut held: Vec<Claimed> = Vec::new();
        let mut seq = 0;
        loop {
            let mut input = StepInput {
                outcomes: held.iter().map(|c| done(c, 1, ok())).collect(),
                claim: 10,
                helper: true,
                ..StepInput::default()
            };
            match store.step(run, &mut seq, &mut input) {
                Ok(r) if r.claimed.is_empty() && r.counters.waiting == 0 => return None,
                Ok(r) => held = r.claimed,
                Err(e) => return Some(e),
            }
        }
    });
    // Some finished, and most not yet: the batch is taken over.
    while s.counters("b1").unwrap().completed < 100 {
        std::thread::yield_now();
    }
    let seen = s.batch_state("b1").unwrap();
    let c = s
        .prepare_retry("b1", false, &seen, "n9", "e9")
        .unwrap()
        .unwrap();
    adds_up(&c);
    assert_eq!((c.total, c.in_process), (IDS, 0));
    for h in helpers {
        if let Some(e) = h.join().unwrap() {
            assert!(matches!(e, StoreError::TakenOver { .. }), "{e}");
        }
    }
    assert_eq!(s.counters("b1").unwrap(), c, "nothing was written after");
    let completed = count(
        &s,
        "SELECT count(*) FROM batch_entities WHERE status = 'COMPLETED'",
    );
    assert_eq!(c.completed, completed);
    let run = RunRef {
        bid: "b1",
        execution_id: "e9",
        node: "n9",
        worker: "w9",
    };
    let mut held: Vec<Claimed> = Vec::new();
    loop {
        let mut input = StepInput {
            outcomes: held.iter().map(|c| done(c, 1, ok())).collect(),
            claim: 500,
            ..StepInput::default()
        };
        let r = s.step(run, &mut seq, &mut input).unwrap();
        held = r.claimed;
        if held.is_empty() {
            assert_eq!(
                (
                    r.counters.completed,
                    r.counters.waiting,
                    r.counters.in_process
                ),
                (IDS, 0, 0)
            );
            break;
        }
    }
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE status = 'COMPLETED'"
        ),
        IDS
    );
}

#[test]
fn a_run_taken_over_or_left_writes_nothing_more() {
    let Some(s) = store("a_run_taken_over_or_left_writes_nothing_more") else {
        return;
    };
    s.set_run_status(test_run("b1"), BatchStatus::InProgress, None)
        .unwrap();
    s.leave_unfinished(test_run("b1"), "stopped by SIGTERM")
        .unwrap();
    let state = s.batch_state("b1").unwrap();
    assert_eq!(
        (state.status, state.owner_node.as_deref()),
        (BatchStatus::InProgress, None)
    );
    assert!(!state.owner_alive());
    let c = s
        .prepare_retry("b1", false, &state, "n2", "e2")
        .unwrap()
        .unwrap();
    let e = s
        .set_run_status(test_run("b1"), BatchStatus::Done, None)
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::TakenOver { node: Some(n), .. } if n == "n2"),
        "{e}"
    );
    assert_ne!(s.batch_state("b1").unwrap().status, BatchStatus::Done);
    assert_eq!(s.counters("b1").unwrap(), c);
}

#[test]
fn a_second_node_joins_and_counts_its_own() {
    let Some(s) = store("a_second_node_joins_and_counts_its_own") else {
        return;
    };
    let other = RunRef {
        node: "n2",
        worker: "w2",
        ..test_run("b1")
    };
    s.join_batch(other, "dc2").unwrap();
    let mut seq = 0;
    let r = step(
        &s,
        &mut seq,
        StepInput {
            new_ids: ids(1..4),
            ids_complete: true,
            ..StepInput::default()
        },
    );
    assert!(r.ids_complete);
    let beat = s.batch_state("b1").unwrap().heartbeat_at;
    // The owner's beat is due: a helper's step leaves it as it is.
    exec(
        &s,
        "UPDATE batches SET heartbeat_at = '2026-01-01T00:00:00.000Z'",
    );
    let r = s
        .step(
            other,
            &mut seq,
            &mut StepInput {
                claim: 2,
                helper: true,
                ..StepInput::default()
            },
        )
        .unwrap();
    assert_eq!(
        s.batch_state("b1").unwrap().heartbeat_at.as_deref(),
        Some("2026-01-01T00:00:00.000Z"),
        "a helper beats its node's heartbeat, not the batch's"
    );
    let outcomes = r.claimed.iter().map(|c| done(c, 1, ok())).collect();
    let r = s
        .step(
            other,
            &mut seq,
            &mut StepInput {
                outcomes,
                ..StepInput::default()
            },
        )
        .unwrap();
    assert_eq!((r.counters.completed, r.counters.waiting), (2, 1));
    // The owner's step beats the batch's heartbeat, which was due.
    step(&s, &mut seq, StepInput::default());
    let now = s.batch_state("b1").unwrap().heartbeat_at;
    assert!(now >= beat, "{now:?} {beat:?}");
    // Each node keeps its own counters.
    let rows: Vec<(String, String, i64)> = s
        .client()
        .query(
            "SELECT node, dc, completed FROM batch_nodes ORDER BY node",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            ("n1".into(), "dc".into(), 0),
            ("n2".into(), "dc2".into(), 2)
        ]
    );
}
