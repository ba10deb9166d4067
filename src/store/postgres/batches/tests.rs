//! The batch writes on PostgreSQL: steps, claims, releases, takeovers,
//! and several nodes stepping one batch at once.

use super::*;
use crate::store::Upgrades;
use crate::store::postgres::testing::{TestStore, fresh};

use crate::batch::EntityStatus;
use crate::store::contract::batches::{adds_up, batch_b1, done, ids, ok, step, test_run};
use crate::store::{DetailsQuery, EntityRow, ReadStore};

fn count(s: &PgStore, sql: &str) -> i64 {
    crate::store::contract::count(s, sql)
}

/// A fresh store with batch `b1` of LU `L`, owned by [`test_run`].
pub(super) fn store(test: &str) -> Option<TestStore> {
    let s = fresh(test)?;
    batch_b1(&*s);
    Some(s)
}

/// A step adds its changes to its worker's own row of `batch_counts`, not
/// to the batch's; a retry folds those rows into the batch's again.
#[test]
fn a_step_counts_on_its_workers_own_row_and_a_retry_folds_them() {
    let Some(s) = store("a_step_counts_on_its_workers_own_row_and_a_retry_folds_them") else {
        return;
    };
    let mut seq = 0;
    let r = step(
        &*s,
        &mut seq,
        StepInput {
            new_ids: ids(1..8),
            claim: 3,
            ..StepInput::default()
        },
    );
    assert_eq!(count(&s, "SELECT total FROM batches"), 0);
    assert_eq!(
        count(&s, "SELECT total FROM batch_counts WHERE worker = 'w1'"),
        7
    );
    assert_eq!(s.counters("b1").unwrap(), r.counters);
    let seen = s.batch_state("b1").unwrap();
    let c = s
        .prepare_retry("b1", false, &seen, "n2", "e2")
        .unwrap()
        .unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM batch_counts"), 0);
    assert_eq!(count(&s, "SELECT total FROM batches"), 7);
    assert_eq!(s.counters("b1").unwrap(), c);
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
    three_nodes_step_to_the_end("three_nodes_step_one_batch_to_its_end_each_entity_once", 0);
}

/// The same, with the ids the owner does not claim stored ahead in
/// chunks of 100, which each node claims whole.
#[test]
fn three_nodes_claiming_chunks_whole_finish_each_entity_once() {
    three_nodes_step_to_the_end(
        "three_nodes_claiming_chunks_whole_finish_each_entity_once",
        100,
    );
}

fn three_nodes_step_to_the_end(test: &str, chunk: usize) {
    let Some(s) = store(test) else {
        return;
    };
    const IDS: i64 = 3000;
    let started = std::time::Instant::now();
    let work = if chunk == 0 { feed::<0> } else { feed::<100> };
    let nodes = on_nodes(&s, &[("n1", "w1"), ("n2", "w2"), ("n3", "w3")], work);
    /// A node's steps to the batch's end: the owner (`w1`) feeds the ids,
    /// 300 a step, storing those it does not claim in chunks of `CHUNK`.
    fn feed<const CHUNK: usize>(store: PgStore, run: RunRef<'static>) -> (Vec<i64>, usize) {
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
                chunk: CHUNK,
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
    }
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
    assert_eq!(count(&s, "SELECT count(*) FROM batch_chunks"), 0);
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
        &*s,
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

/// Ids stored ahead in chunks are WAITING entities to every reader, with
/// no row of their own: counted, listed, read back, numbered; a bad id
/// among them keeps its FAILED row and its number. The next node that
/// claims takes a chunk whole, whatever it asked for; a recount counts
/// what is in chunks and claim rows; a cancel makes the rest CANCELLED.
#[test]
fn ids_stored_ahead_in_chunks_wait_for_any_node_to_claim_one_whole() {
    let Some(s) = store("ids_stored_ahead_in_chunks_wait_for_any_node_to_claim_one_whole") else {
        return;
    };
    let mut new_ids = ids(1..11);
    new_ids[5] = NewId::Bad("x y".into(), "a bad id".into());
    let mut seq = 0;
    let r = step(
        &*s,
        &mut seq,
        StepInput {
            new_ids,
            claim: 2,
            chunk: 3,
            ..StepInput::default()
        },
    );
    let seqs = |c: &[Claimed]| c.iter().map(|c| c.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&r.claimed), [1, 2], "claimed as they arrived");
    let c = r.counters;
    assert_eq!((c.total, c.in_process, c.waiting, c.failed), (10, 2, 7, 1));
    // 3, 4, 5 | 7 (6 is the bad id's), 8, 9 | 10
    let chunks: Vec<(i64, i64, String)> = s
        .client()
        .query(
            "SELECT first_seq, open, ids FROM batch_chunks ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        chunks,
        [
            (3, 3, r#"["3","4","5"]"#.to_string()),
            (7, 3, r#"["7","8","9"]"#.to_string()),
            (10, 1, r#"["10"]"#.to_string()),
        ]
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE status = 'WAITING'"
        ),
        0,
        "no WAITING row"
    );
    let waiting = s
        .entity_rows(
            "b1",
            &DetailsQuery {
                statuses: Some(vec![EntityStatus::Waiting]),
                ..DetailsQuery::default()
            },
        )
        .unwrap();
    let listed: Vec<(i64, &str)> = waiting
        .iter()
        .map(|e| (e.seq, e.entity_id.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (3, "3"),
            (4, "4"),
            (5, "5"),
            (7, "7"),
            (8, "8"),
            (9, "9"),
            (10, "10")
        ]
    );
    let all = s.entity_rows("b1", &DetailsQuery::default()).unwrap();
    assert_eq!(seqs_of(&all), (1..=10).collect::<Vec<_>>());
    assert_eq!(s.max_seq("b1").unwrap(), 10);
    let mut stored = Vec::new();
    s.stored_ids("b1", &mut |id| {
        if let StoredId::Good(t) = id {
            stored.push(t.to_string());
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    stored.sort_by_key(|t| t.parse::<i64>().unwrap());
    assert_eq!(stored, ["1", "2", "3", "4", "5", "7", "8", "9", "10"]);

    // A helper asks for one, and gets the first chunk whole.
    let helper = RunRef {
        bid: "b1",
        execution_id: "e1",
        node: "n2",
        worker: "w2",
    };
    s.join_batch(helper, "dc").unwrap();
    let mut hseq = 0;
    let mut input = StepInput {
        claim: 1,
        helper: true,
        ..StepInput::default()
    };
    let h = s.step(helper, &mut hseq, &mut input).unwrap();
    assert_eq!(seqs(&h.claimed), [3, 4, 5]);
    assert!(h.claimed.iter().all(|c| c.claim == Some(3)));
    assert_eq!((h.counters.in_process, h.counters.waiting), (5, 4));
    // Its outcomes are written as those of ids claimed as they arrived.
    let mut input = StepInput {
        outcomes: h.claimed.iter().map(|c| done(c, 1, ok())).collect(),
        helper: true,
        ..StepInput::default()
    };
    let h = s.step(helper, &mut hseq, &mut input).unwrap();
    assert_eq!((h.counters.completed, h.counters.in_process), (3, 2));
    assert_eq!(count(&s, "SELECT count(*) FROM batch_chunks"), 2);

    // A recount (a retry's) finds what chunks and claim rows hold.
    let before = s.counters("b1").unwrap();
    let no = count(&s, "SELECT batch_no FROM batches WHERE bid = 'b1'");
    let recounted = s.tx(|tx| super::rows::recount(&s, tx, no)).unwrap();
    assert_eq!(recounted, before);
    assert_eq!(s.counters("b1").unwrap(), before);

    // A cancel: the chunks' entities become CANCELLED rows.
    s.cancel_waiting(test_run("b1"), false).unwrap();
    let c = s.counters("b1").unwrap();
    adds_up(&c);
    assert_eq!((c.cancelled, c.waiting, c.in_process), (4, 0, 2));
    assert_eq!(count(&s, "SELECT count(*) FROM batch_chunks"), 0);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM batch_entities WHERE status = 'CANCELLED' AND seq IN (7, 8, 9, 10)"
        ),
        4
    );
}

fn seqs_of(rows: &[EntityRow]) -> Vec<i64> {
    rows.iter().map(|e| e.seq).collect()
}

/// Waits until a session of the test's database waits for a lock.
fn until_a_session_waits_for_a_lock(s: &TestStore) {
    for _ in 0..2000 {
        let waiting = count(
            s,
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        if waiting > 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("no session waited for a lock within 10 s");
}

/// What a step in flight holds the batch row with (its fence's lock) lets
/// a request through, and the owner's look for dead nodes, but not a
/// takeover, which waits for the step and then fences it out.
#[test]
fn a_step_in_flight_holds_off_a_takeover_and_nothing_else() {
    let Some(s) = store("a_step_in_flight_holds_off_a_takeover_and_nothing_else") else {
        return;
    };
    let mut seq = 0;
    step(
        &*s,
        &mut seq,
        StepInput {
            new_ids: ids(1..10),
            claim: 3,
            ..StepInput::default()
        },
    );
    let holder = PgStore::open(&s.url, Upgrades::Silent).unwrap();
    let mut in_flight = holder.client();
    let mut tx = in_flight.transaction().unwrap();
    // The fence of a step of a helper's, w2.
    tx.query(super::rows::FENCE_SHARE, &[&"b1", &"w2", &1000i64])
        .unwrap();
    // Each of these would wait for the step if the step held the row
    // against them.
    let url = s.url.clone();
    let (done, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let other = PgStore::open(&url, Upgrades::Silent).unwrap();
        other.request("b1", Some(Request::Pause)).unwrap();
        other.set_max_workers("b1", 3, "n1").unwrap();
        let dead = other.requeue_dead(test_run("b1")).unwrap();
        done.send(dead).unwrap();
    });
    let dead = told
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a request, MAX_WORKERS and the look for dead nodes did not wait for the step");
    assert_eq!(dead, None);
    let url = s.url.clone();
    let seen = s.batch_state("b1").unwrap();
    let takeover = std::thread::spawn(move || {
        let other = PgStore::open(&url, Upgrades::Silent).unwrap();
        other.prepare_retry("b1", false, &seen, "n9", "e9").unwrap()
    });
    until_a_session_waits_for_a_lock(&s);
    assert!(!takeover.is_finished(), "the takeover waits for the step");
    tx.commit().unwrap();
    let c = takeover.join().unwrap().expect("taken over");
    adds_up(&c);
    let mut input = StepInput {
        claim: 1,
        ..StepInput::default()
    };
    let e = s.step(test_run("b1"), &mut seq, &mut input).unwrap_err();
    assert!(matches!(e, StoreError::TakenOver { .. }), "{e}");
}
