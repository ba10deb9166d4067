//! The batch writes on PostgreSQL: steps, claims, releases, takeovers,
//! and several nodes stepping one batch at once.

use super::*;
use crate::store::Upgrades;
use crate::store::postgres::testing::{TestStore, fresh};

use crate::store::contract::ContractStore;
use crate::store::contract::batches::{adds_up, batch_b1, done, ids, ok, step, test_run};

fn exec(s: &PgStore, sql: &str) {
    s.execute(sql);
}

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
        &*s,
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
        &*s,
        &mut seq,
        StepInput {
            new_ids: ids(1..5),
            claim: 2,
            ..StepInput::default()
        },
    );
    s.request("b1", Some(Request::Pause)).unwrap();
    s.set_max_workers("b1", 3, "n1").unwrap();
    let r = step(&*s, &mut seq, StepInput::default());
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
