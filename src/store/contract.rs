//! The contract every store backend keeps, as tests that take any
//! [`Store`] (or a [`ContractStore`], where a test sets up or reads rows
//! by plain SQL): the two tests at the bottom run every one of them on
//! SQLite and on PostgreSQL. Their parts by trait are the submodules
//! ([`batches`], [`catalog`], [`series`]); the tests that stay beside a
//! store check what only it has (SQLite's files and upgrades, PostgreSQL's
//! races between connections and its per-worker counters).

use super::Store;
use super::batches::{NewBatch, NewId, Purgeable, RunRef, StepInput, StoredId};
use super::nodes::{NodeInfo, NodeKind, NodeState};
use super::{GroupDef, InterfaceDef, LuDef, StoreError, now};
use crate::batch::{BatchStatus, EntityStatus};
use crate::catalog::InterfaceKind;

pub mod batches;
use batches::{ids, test_run as run};
pub mod catalog;
pub mod series;

/// A store as the contract tests see it: its traits, and plain SQL on its
/// own connection for the rows a test sets up or checks that no trait
/// method reaches. The SQL is written once, in what SQLite and PostgreSQL
/// both take.
pub trait ContractStore: Store {
    /// Runs `sql`, one statement or several; the store's error as text
    /// if it fails.
    fn try_execute(&self, sql: &str) -> Result<(), String>;
    /// Runs `sql`, one statement or several; panics if it fails.
    fn execute(&self, sql: &str) {
        self.try_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    /// The rows of `sql`, every value as text (NULL as `None`).
    fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>>;
}

/// The number in the first column of the one row of `sql`.
pub fn count(s: &dyn ContractStore, sql: &str) -> i64 {
    let rows = s.rows(sql);
    let value = rows.first().and_then(|r| r.first().cloned().flatten());
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: not one number: {rows:?}"))
}

/// Runs every contract test on stores that `fresh` makes, each new and
/// empty.
pub fn all(fresh: &dyn Fn() -> Box<dyn ContractStore>) {
    batches::all(fresh);
    catalog::all(fresh);
    series::all(fresh);
    a_catalog_keeps_its_definitions(&*fresh());
    a_step_stores_claims_and_outcomes_with_counters_that_add_up(&*fresh());
    a_run_taken_over_writes_nothing(&*fresh());
    a_twin_is_refused_with_the_active_batch(&*fresh());
    stored_ids_are_the_batchs_own(&*fresh());
    a_run_left_unfinished_has_no_owner(&*fresh());
    a_node_registers_beats_and_stops(&*fresh());
    a_node_taken_over_is_dead_and_its_claims_wait_again(&*fresh());
    a_second_node_joins_and_counts_its_own(&*fresh());
    an_open_batch_takes_appends_until_it_is_closed(&*fresh());
    a_finished_batch_is_purged_and_its_rows_follow_a_chunk_at_a_time(&*fresh());
}

fn catalog(s: &dyn Store) {
    s.create_interface(
        &InterfaceDef {
            name: "crm".into(),
            kind: InterfaceKind::Sqlite,
            location: "/data/crm.db".into(),
            header: true,
            delimiter: ',',
            types: true,
            created_at: now(),
        },
        false,
    )
    .unwrap();
    s.create_lu(
        &LuDef {
            name: "Customer".into(),
            interface: "crm".into(),
            root_sql: "select id from customer".into(),
            tables: Vec::new(),
            created_at: now(),
        },
        false,
    )
    .unwrap();
}

fn new_batch(s: &dyn Store, bid: &str, command: &str, twin_check: bool) -> Option<String> {
    new_batch_open(s, bid, command, twin_check, false)
}

fn new_batch_open(
    s: &dyn Store,
    bid: &str,
    command: &str,
    twin_check: bool,
    open: bool,
) -> Option<String> {
    new_batch_as(s, bid, command, twin_check, open, false)
}

/// A new batch; `queued`: an asynchronous one, with its job.
fn new_batch_as(
    s: &dyn Store,
    bid: &str,
    command: &str,
    twin_check: bool,
    open: bool,
    queued: bool,
) -> Option<String> {
    s.create_batch(
        &NewBatch {
            command,
            queued,
            open,
            workdir: Some("/work/exports"),
            ..batches::batch_of(bid, "Customer", "echo ?")
        },
        twin_check,
    )
    .unwrap()
}

fn a_catalog_keeps_its_definitions(s: &dyn Store) {
    catalog(s);
    assert_eq!(s.interface("CRM").unwrap().location, "/data/crm.db");
    assert_eq!(s.lu("customer").unwrap().interface, "crm");
    s.create_group(
        &GroupDef {
            lu: "Customer".into(),
            name: "vip".into(),
            interface: None,
            sql: "select 1".into(),
            created_at: now(),
        },
        false,
    )
    .unwrap();
    assert_eq!(s.groups(Some("Customer")).unwrap().len(), 1);
    let e = s.lu("Custmer").unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("did you mean Customer?"), "{e}");
}

fn a_step_stores_claims_and_outcomes_with_counters_that_add_up(s: &dyn Store) {
    catalog(s);
    assert_eq!(new_batch(s, "b1", "BATCH a", true), None);
    s.take_ownership(run("b1"), "dc").unwrap();
    let mut seq = 0;
    let r = s
        .step(
            run("b1"),
            &mut seq,
            &mut StepInput {
                new_ids: ids(1..6),
                claim: 3,
                ..StepInput::default()
            },
        )
        .unwrap();
    assert_eq!(r.claimed.len(), 3);
    let c = r.counters;
    assert_eq!((c.total, c.in_process, c.waiting), (5, 3, 2));
    let outcomes = r
        .claimed
        .iter()
        .map(|c| batches::done(c, 1, batches::ok()))
        .collect();
    let r = s
        .step(
            run("b1"),
            &mut seq,
            &mut StepInput {
                outcomes,
                claim: 10,
                ..StepInput::default()
            },
        )
        .unwrap();
    let c = r.counters;
    assert_eq!((c.completed, c.in_process, c.waiting), (3, 2, 0));
    batches::adds_up(&c);
    let rows = s
        .entity_rows("b1", &super::DetailsQuery::default())
        .unwrap();
    let done = rows
        .iter()
        .filter(|r| r.status == EntityStatus::Completed)
        .count();
    assert_eq!(done, 3);
    assert_eq!(s.counters("b1").unwrap(), c);
}

fn a_run_taken_over_writes_nothing(s: &dyn Store) {
    catalog(s);
    new_batch(s, "b1", "BATCH a", true);
    s.take_ownership(run("b1"), "dc").unwrap();
    let mut seq = 0;
    s.step(
        run("b1"),
        &mut seq,
        &mut StepInput {
            new_ids: ids(1..4),
            claim: 2,
            ..StepInput::default()
        },
    )
    .unwrap();
    // Another process judges the run dead and takes the batch over.
    let seen = s.batch_state("b1").unwrap();
    assert!(
        s.prepare_retry("b1", false, &seen, "n2", "e2")
            .unwrap()
            .is_some()
    );
    let before = s.counters("b1").unwrap();
    let e = s
        .step(
            run("b1"),
            &mut seq,
            &mut StepInput {
                new_ids: ids(4..6),
                claim: 5,
                ..StepInput::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::TakenOver { .. }), "{e}");
    assert_eq!(s.counters("b1").unwrap(), before);
    let e = s
        .set_run_status(run("b1"), BatchStatus::Done, None)
        .unwrap_err();
    assert!(matches!(e, StoreError::TakenOver { .. }), "{e}");
    assert_ne!(s.batch_state("b1").unwrap().status, BatchStatus::Done);
}

fn a_twin_is_refused_with_the_active_batch(s: &dyn Store) {
    catalog(s);
    assert_eq!(new_batch(s, "b1", "BATCH same", true), None);
    assert_eq!(
        new_batch(s, "b2", "BATCH same", true).as_deref(),
        Some("b1")
    );
    // ALLOW_MULTIPLE: no check.
    assert_eq!(new_batch(s, "b3", "BATCH same", false), None);
    assert!(
        s.batch_state("b2").is_err(),
        "a refused twin stores nothing"
    );
    // Each batch keeps the working directory it was created in (SPEC §5).
    assert_eq!(s.workdir("b1").unwrap().as_deref(), Some("/work/exports"));
}

fn stored_ids_are_the_batchs_own(s: &dyn Store) {
    catalog(s);
    for bid in ["b1", "b2"] {
        new_batch(s, bid, bid, true);
        s.take_ownership(run(bid), "dc").unwrap();
    }
    let mut seq = 0;
    // "1" stored WAITING, "2" claimed as it arrived, a NULL id (FAILED).
    s.step(
        run("b1"),
        &mut seq,
        &mut StepInput {
            new_ids: vec![
                NewId::Ok("2".into()),
                NewId::Ok("1".into()),
                NewId::Bad("NULL".into(), "the id is NULL".into()),
            ],
            claim: 1,
            ..StepInput::default()
        },
    )
    .unwrap();
    let mut seq2 = 0;
    s.step(
        run("b2"),
        &mut seq2,
        &mut StepInput {
            new_ids: ids(3..4),
            ..StepInput::default()
        },
    )
    .unwrap();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    s.stored_ids("b1", &mut |id| {
        match id {
            StoredId::Good(id) => good.push(id.to_string()),
            StoredId::Bad { stand_in, error } => {
                bad.push((stand_in.to_string(), error.to_string()))
            }
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    good.sort();
    assert_eq!(good, ["1", "2"]);
    assert_eq!(bad, [("NULL".to_string(), "the id is NULL".to_string())]);
}

fn a_run_left_unfinished_has_no_owner(s: &dyn ContractStore) {
    catalog(s);
    new_batch(s, "b1", "BATCH a", true);
    s.take_ownership(run("b1"), "dc").unwrap();
    s.set_run_status(run("b1"), BatchStatus::InProgress, None)
        .unwrap();
    s.leave_unfinished(run("b1"), "stopped by SIGTERM").unwrap();
    let state = s.batch_state("b1").unwrap();
    assert_eq!(state.status, BatchStatus::InProgress);
    assert_eq!(state.owner_node, None);
    assert!(!state.owner_alive());
    // Retried elsewhere, the run that left it writes nothing more.
    let c = s
        .prepare_retry("b1", false, &state, "n2", "e2")
        .unwrap()
        .unwrap();
    let e = s
        .set_run_status(run("b1"), BatchStatus::Done, None)
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::TakenOver { node: Some(n), .. } if n == "n2"),
        "{e}"
    );
    assert_ne!(s.batch_state("b1").unwrap().status, BatchStatus::Done);
    assert_eq!(s.counters("b1").unwrap(), c);
}

fn node(worker_id: &str) -> NodeInfo<'_> {
    NodeInfo {
        worker_id,
        node: "n1",
        dc: "dc",
        kind: NodeKind::Synchronous,
        workers: 4,
        addrs: &[],
    }
}

fn a_node_registers_beats_and_stops(s: &dyn Store) {
    s.register_node(&node("w1")).unwrap();
    let nodes = s.nodes().unwrap();
    assert_eq!(nodes.len(), 1);
    let n = &nodes[0];
    assert_eq!(
        (n.worker_id.as_str(), n.node.as_str(), n.dc.as_str()),
        ("w1", "n1", "dc")
    );
    assert_eq!(
        (n.kind, n.state, n.workers),
        (NodeKind::Synchronous, NodeState::Running, 4)
    );
    assert_eq!(n.pid, i64::from(std::process::id()));
    assert_eq!(n.host, crate::owner::hostname());
    s.beat("w1").unwrap();
    assert!(s.nodes().unwrap()[0].heartbeat_at >= n.heartbeat_at);
    s.set_node_state("w1", NodeState::Stopped).unwrap();
    let n = &s.nodes().unwrap()[0];
    assert_eq!(n.state, NodeState::Stopped);
    assert!(!n.alive(), "a stopped node is not alive");
    // Registering again runs it again.
    s.register_node(&node("w1")).unwrap();
    assert_eq!(s.nodes().unwrap()[0].state, NodeState::Running);
}

fn a_node_taken_over_is_dead_and_its_claims_wait_again(s: &dyn Store) {
    catalog(s);
    new_batch(s, "b1", "BATCH a", true);
    s.register_node(&node("w1")).unwrap();
    s.take_ownership(run("b1"), "dc").unwrap();
    let mut seq = 0;
    // Two claimed as they arrive, one WAITING row then claimed.
    s.step(
        run("b1"),
        &mut seq,
        &mut StepInput {
            new_ids: ids(1..4),
            claim: 2,
            ..StepInput::default()
        },
    )
    .unwrap();
    let r = s
        .step(
            run("b1"),
            &mut seq,
            &mut StepInput {
                claim: 1,
                ..StepInput::default()
            },
        )
        .unwrap();
    assert_eq!(r.counters.in_process, 3);
    // Another process judges the run's process dead and takes over: the
    // run's node is dead from then on, and its three claims wait again.
    let seen = s.batch_state("b1").unwrap();
    let c = s
        .prepare_retry("b1", false, &seen, "n2", "e2")
        .unwrap()
        .unwrap();
    assert_eq!((c.waiting, c.in_process), (3, 0));
    assert_eq!(s.nodes().unwrap()[0].state, NodeState::Dead);
    // Registering again does not bring a dead node back.
    s.register_node(&node("w1")).unwrap();
    assert_eq!(s.nodes().unwrap()[0].state, NodeState::Dead);
    // Even under the new execution, the dead node writes nothing.
    let dead_run = RunRef {
        execution_id: "e2",
        ..run("b1")
    };
    let e = s
        .step(
            dead_run,
            &mut seq,
            &mut StepInput {
                claim: 3,
                ..StepInput::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::TakenOver { .. }), "{e}");
    assert_eq!(s.counters("b1").unwrap(), c);
}

fn a_second_node_joins_and_counts_its_own(s: &dyn ContractStore) {
    catalog(s);
    new_batch(s, "b1", "BATCH a", true);
    s.take_ownership(run("b1"), "dc").unwrap();
    let other = RunRef {
        node: "n2",
        worker: "w2",
        ..run("b1")
    };
    s.join_batch(other, "dc2").unwrap();
    assert_eq!(
        s.batch_state("b1").unwrap().owner_node.as_deref(),
        Some("n1")
    );
    // The owner stores the ids; the joined node claims and finishes two.
    let mut seq = 0;
    let r = s
        .step(
            run("b1"),
            &mut seq,
            &mut StepInput {
                new_ids: ids(1..4),
                ids_complete: true,
                ..StepInput::default()
            },
        )
        .unwrap();
    assert!(r.ids_complete);
    let beat = s.batch_state("b1").unwrap().heartbeat_at;
    // The owner's beat is due: a helper's step leaves it as it is.
    let due = "2026-01-01T00:00:00.000Z";
    s.execute(&format!("UPDATE batches SET heartbeat_at = '{due}'"));
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
        Some(due),
        "a helper beats its node's heartbeat, not the batch's (its owner's)"
    );
    let outcomes = r
        .claimed
        .iter()
        .map(|c| batches::done(c, 1, batches::ok()))
        .collect();
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
    s.step(run("b1"), &mut seq, &mut StepInput::default())
        .unwrap();
    let now = s.batch_state("b1").unwrap().heartbeat_at;
    assert!(now >= beat, "{now:?} {beat:?}");
    // The owner ends the batch: the helper's next step claims nothing,
    // and tells it the batch's end.
    s.set_run_status(run("b1"), BatchStatus::Failed, Some("stopped"))
        .unwrap();
    let r = batches::helper_step(s, other, &mut seq);
    assert!(r.claimed.is_empty());
    assert_eq!((r.status, r.counters.waiting), (BatchStatus::Failed, 1));
    // Each node keeps its own counters.
    let mut rows: Vec<(String, String, i64)> = s
        .batch_node_rows("b1")
        .unwrap()
        .into_iter()
        .map(|n| (n.node, n.dc, n.completed))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("n1".into(), "dc".into(), 0),
            ("n2".into(), "dc2".into(), 2)
        ]
    );
}

#[test]
fn the_sqlite_store_keeps_the_contract() {
    let dirs = std::cell::RefCell::new(Vec::new());
    all(&|| -> Box<dyn ContractStore> {
        let d = tempfile::tempdir().unwrap();
        let s = super::sqlite::SqliteStore::open(&d.path().join("store.db")).unwrap();
        dirs.borrow_mut().push(d);
        Box::new(s)
    });
}

/// BATCH_APPEND records ids in order for an open batch only; the feeding
/// run reads them past a place, with whether the batch is open, and
/// BATCH_WAITOFF closes it; every refusal records nothing.
fn an_open_batch_takes_appends_until_it_is_closed(s: &dyn Store) {
    use super::appends::{Appended, NotOpen};
    catalog(s);
    new_batch_open(s, "b1", "BATCH a", false, true);
    new_batch(s, "b2", "BATCH b", false);
    let ids = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(s.append_ids("b1", &ids(&["1", "2"]), "n1").unwrap(), 2);
    assert_eq!(s.append_ids("b1", &ids(&["2", "3"]), "n2").unwrap(), 2);
    let all = s.appended_since("b1", 0, 100).unwrap();
    assert!(all.open);
    let texts: Vec<&str> = all.ids.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(texts, ["1", "2", "2", "3"], "in the order of appending");
    // Past a place, at most a limit.
    let second = all.ids[1].0;
    let next = s.appended_since("b1", second, 1).unwrap();
    assert_eq!(next.ids, vec![all.ids[2].clone()]);
    let refusal = |e: StoreError| match e {
        StoreError::NotOpen { why, .. } => why,
        other => panic!("not a refusal: {other}"),
    };
    assert_eq!(
        refusal(s.append_ids("b2", &ids(&["9"]), "n1").unwrap_err()),
        NotOpen::NotOpen
    );
    assert_eq!(
        refusal(s.close_batch("b2", "n1").unwrap_err()),
        NotOpen::NotOpen
    );
    s.close_batch("b1", "n1").unwrap();
    assert_eq!(
        refusal(s.close_batch("b1", "n1").unwrap_err()),
        NotOpen::Closed
    );
    assert_eq!(
        refusal(s.append_ids("b1", &ids(&["9"]), "n1").unwrap_err()),
        NotOpen::Closed
    );
    let after = s.appended_since("b1", 0, 100).unwrap();
    assert_eq!(
        after,
        Appended {
            ids: all.ids.clone(),
            open: false
        },
        "nothing recorded by a refusal"
    );
    assert!(s.appended_since("b2", 0, 100).unwrap().ids.is_empty());
    let notes: Vec<String> = s
        .event_rows("b1")
        .unwrap()
        .into_iter()
        .filter_map(|e| e.note)
        .collect();
    assert_eq!(
        notes,
        [
            "BATCH_APPEND: 2 ids",
            "BATCH_APPEND: 2 ids",
            "BATCH_WAITOFF: closed to appends"
        ]
    );
    assert!(matches!(
        s.append_ids("nope", &ids(&["1"]), "n1"),
        Err(StoreError::NotFound { .. })
    ));
    // A final batch takes none, open or not.
    new_batch_open(s, "b3", "BATCH c", false, true);
    s.set_run_status(run("b3"), BatchStatus::Cancelled, None)
        .unwrap();
    assert_eq!(
        refusal(s.append_ids("b3", &ids(&["1"]), "n1").unwrap_err()),
        NotOpen::Ended(BatchStatus::Cancelled)
    );
}

/// BATCH_PURGE's store half: only finished batches of the asked statuses
/// that ended before the cutoff are found; a batch goes with everything
/// but its rows at once, only as it was seen; its entity rows and appended
/// ids then go in chunks, and a new batch never takes their number.
fn a_finished_batch_is_purged_and_its_rows_follow_a_chunk_at_a_time(s: &dyn Store) {
    catalog(s);
    let later = "9999-12-31T23:59:59.999Z";
    let stored = |bid: &str, n: i64| {
        s.take_ownership(run(bid), "dc").unwrap();
        let mut seq = 0;
        s.step(
            run(bid),
            &mut seq,
            &mut StepInput {
                new_ids: ids(1..n + 1),
                ..StepInput::default()
            },
        )
        .unwrap();
    };
    // b1: DONE, 5 entity rows and 2 appended ids; b2: running; b3: FAILED.
    new_batch_open(s, "b1", "BATCH a", false, true);
    stored("b1", 5);
    s.append_ids("b1", &["x".into(), "y".into()], "n1").unwrap();
    s.set_run_status(run("b1"), BatchStatus::Done, None)
        .unwrap();
    new_batch(s, "b2", "BATCH b", false);
    stored("b2", 3);
    s.set_run_status(run("b2"), BatchStatus::InProgress, None)
        .unwrap();
    // An asynchronous batch, with its job.
    new_batch_as(s, "b3", "BATCH c", false, false, true);
    s.set_run_status(run("b3"), BatchStatus::Failed, Some("no"))
        .unwrap();
    assert!(s.batch_job("b3").unwrap().is_some());
    let bids = |found: Vec<Purgeable>| found.into_iter().map(|p| p.bid).collect::<Vec<_>>();
    assert_eq!(
        bids(s.purgeable(later, &[BatchStatus::Done]).unwrap()),
        ["b1"]
    );
    assert_eq!(
        bids(s.purgeable(later, BatchStatus::ALL).unwrap()),
        ["b1", "b3"],
        "never an unfinished batch, whatever is asked"
    );
    assert!(
        s.purgeable("2000-01-01T00:00:00.000Z", BatchStatus::FINAL)
            .unwrap()
            .is_empty(),
        "none ended before the cutoff"
    );
    let b1 = s.purgeable(later, &[BatchStatus::Done]).unwrap().remove(0);
    assert_eq!((b1.status, b1.entities), (BatchStatus::Done, 5));
    // Seen otherwise (a retry gave it a new execution since): kept.
    let stale = Purgeable {
        execution_id: "e0".into(),
        ..b1.clone()
    };
    assert!(!s.purge_batch(&stale).unwrap());
    assert!(s.batch_state("b1").is_ok());
    assert!(s.purge_batch(&b1).unwrap());
    assert!(s.batch_state("b1").is_err(), "the batch row is gone");
    assert!(!s.purge_batch(&b1).unwrap(), "gone already");
    let listed = s
        .list_batches(&super::ListQuery {
            status: super::StatusFilter::All,
            created_from: None,
            created_before: None,
            command: None,
            limit: None,
        })
        .unwrap();
    assert_eq!(listed.len(), 2, "out of every listing at once");
    // Its rows are orphans now, and no new batch takes their number.
    assert_eq!(s.orphan_batch_nos().unwrap(), [b1.batch_no]);
    new_batch(s, "b4", "BATCH d", false);
    s.set_run_status(run("b4"), BatchStatus::Done, None)
        .unwrap();
    let b4 = s.purgeable(later, &[BatchStatus::Done]).unwrap().remove(0);
    assert_eq!(b4.bid, "b4");
    assert!(b4.batch_no > b1.batch_no, "{b4:?}");
    // A chunk at a time: entity rows, then appended ids.
    let chunks: Vec<usize> =
        std::iter::from_fn(|| Some(s.purge_rows(b1.batch_no, 3).unwrap()).filter(|&n| n > 0))
            .collect();
    assert_eq!(chunks, [3, 3, 1]);
    assert!(s.orphan_batch_nos().unwrap().is_empty());
    // An asynchronous batch's job goes with it.
    let b3 = s
        .purgeable(later, &[BatchStatus::Failed])
        .unwrap()
        .remove(0);
    assert!(s.purge_batch(&b3).unwrap());
    assert!(s.batch_job("b3").unwrap().is_none());
    // A live batch's rows are never taken for orphans: of every number
    // up to the newest, purge_rows deletes nothing.
    let b2 = s.batch_state("b2").unwrap();
    for no in 1..=b4.batch_no {
        assert_eq!(s.purge_rows(no, 100).unwrap(), 0, "batch number {no}");
    }
    assert_eq!(s.batch_state("b2").unwrap().status, b2.status);
    assert_eq!(s.counters("b2").unwrap().total, 3);
    let rows = s
        .entity_rows("b2", &super::DetailsQuery::default())
        .unwrap();
    assert_eq!(rows.len(), 3, "the running batch keeps its rows");
}

#[test]
fn the_postgres_store_keeps_the_contract() {
    let made = std::cell::RefCell::new(Vec::new());
    let fresh = || -> Box<dyn ContractStore> {
        let t = super::postgres::testing::fresh("the_postgres_store_keeps_the_contract")
            .expect("checked below");
        let store = super::postgres::PgStore::open(&t.url, super::Upgrades::Silent).unwrap();
        made.borrow_mut().push(t);
        Box::new(store)
    };
    if super::postgres::testing::fresh("the_postgres_store_keeps_the_contract").is_none() {
        return;
    }
    all(&fresh);
}
