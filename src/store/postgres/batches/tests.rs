//! The batch writes on PostgreSQL: steps, claims, releases, takeovers,
//! and several nodes stepping one batch at once.

use super::*;
use crate::store::Upgrades;
use crate::store::postgres::testing::{TestStore, fresh};

use crate::store::contract::batches::{adds_up, batch_b1, done, ids, ok, step};

fn count(s: &PgStore, sql: &str) -> i64 {
    crate::store::contract::count(s, sql)
}

/// A fresh store with batch `b1` of LU `L`, owned by [`test_run`].
fn store(test: &str) -> Option<TestStore> {
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
