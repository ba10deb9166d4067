//! The executor as nodes: two processes' parts played by two threads on
//! one store, each with its own store handle.

use super::run::{Env, Finished, Roles, join};
use crate::batch::{BatchStatus, Event, Events, RunEnd, StopToken};
use crate::store::nodes::NodeState;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    BatchStore, CatalogStore, InterfaceDef, LuDef, NodeStore, ReadStore, Store, now,
};
use std::path::Path;
use std::sync::Arc;

/// Events nobody watches.
struct Quiet;

impl Events for Quiet {
    fn event(&self, _: Event<'_>) {}
}

/// A store in `home` whose catalog has an LU `Customer` over a CSV file
/// of `n` ids.
fn catalog(home: &Path, n: usize) -> SqliteStore {
    let csv = home.join("customer.csv");
    let ids: String = (1..=n).map(|k| format!("{k}\n")).collect();
    std::fs::write(&csv, format!("id\n{ids}")).unwrap();
    let store = SqliteStore::open(&home.join("store.db")).unwrap();
    store
        .create_interface(
            &InterfaceDef {
                name: "crm".into(),
                kind: crate::ast::InterfaceKind::Csv,
                location: csv.to_string_lossy().into_owned(),
                header: true,
                delimiter: ',',
                types: true,
                created_at: now(),
            },
            false,
        )
        .unwrap();
    store
        .create_lu(
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
    store
}

fn env<'a>(
    store: &'a dyn Store,
    home: &'a Path,
    node: &'a str,
    stop: &'a Arc<StopToken>,
) -> Env<'a> {
    Env {
        store,
        home,
        node,
        dc: "dc",
        events: &Quiet,
        stop,
        worker: None,
        permits: None,
    }
}

/// The plan of `text` on the store of `home`.
fn plan_of(store: &SqliteStore, text: &str) -> (crate::plan::Plan, crate::ast::Span) {
    let stmt = crate::syntax::parse(text).unwrap().remove(0);
    let crate::ast::Statement::Batch(b) = &stmt.kind else {
        panic!("not a BATCH")
    };
    (
        crate::analyze::batch(store, b, stmt.span, 2).unwrap(),
        stmt.span,
    )
}

/// Creates the batch of `text`, then runs it as two nodes at once: an
/// owner with every role (node n1, stopped through `owner_stop`) and a
/// helper that only processes (node n2). Their ends, and the bid.
fn owner_and_helper(
    store: &SqliteStore,
    home: &Path,
    text: &str,
    owner_stop: &Arc<StopToken>,
) -> (Finished, Finished, String) {
    let (plan, span) = plan_of(store, text);
    let helper_stop = Arc::new(StopToken::default());
    let (bid, execution_id) =
        super::create(&env(store, home, "n1", owner_stop), &plan, span).unwrap();
    let node = |name: &'static str, stop: &Arc<StopToken>, roles: Roles| {
        let store = SqliteStore::open(&home.join("store.db")).unwrap();
        join(
            &env(&store, home, name, stop),
            &plan,
            &bid,
            &execution_id,
            roles,
            true,
        )
        .unwrap()
    };
    let (owner, helper) = std::thread::scope(|s| {
        let owner = s.spawn(|| node("n1", owner_stop, Roles::ALL));
        let helper = s.spawn(|| node("n2", &helper_stop, Roles::PROCESS));
        (owner.join().unwrap(), helper.join().unwrap())
    });
    (owner, helper, bid)
}

/// A synchronous batch's process creates the batch and plays every part;
/// a second node joins it to process only. Together they run every
/// entity once, each counts its own, the second leaves when nothing is
/// left for it, and the first ends the batch DONE.
#[test]
fn a_second_node_joins_a_batch_and_processes_part_of_it() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let n = 200;
    let store = catalog(home, n);
    let stop = Arc::new(StopToken::default());
    let (owner, helper, bid) = owner_and_helper(
        &store,
        home,
        "BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2",
        &stop,
    );
    assert!(
        matches!(
            owner.end,
            RunEnd::Ended {
                status: BatchStatus::Done,
                ..
            }
        ),
        "{:?}",
        owner.end
    );
    assert!(
        matches!(helper.end, RunEnd::Left { .. }),
        "{:?}",
        helper.end
    );
    let c = store.counters(&bid).unwrap();
    assert_eq!(
        (c.total, c.completed, c.in_process),
        (n as i64, n as i64, 0)
    );
    // Each node processed a part and counts it; the owner's row stays the
    // batch's owner until its end.
    let mut parts: Vec<(String, i64)> = store
        .batch_node_rows(&bid)
        .unwrap()
        .into_iter()
        .map(|r| (r.node, r.completed))
        .collect();
    parts.sort();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|(_, k)| *k > 0), "{parts:?}");
    assert_eq!(parts.iter().map(|(_, k)| k).sum::<i64>(), n as i64);
    // Both ran as nodes of their own, now stopped.
    let nodes = store.nodes().unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(
        nodes.iter().all(|n| n.state == NodeState::Stopped),
        "{nodes:?}"
    );
}

/// The owner ends the batch (here a Ctrl-C cancels it) while a helper
/// processes it: the helper learns of the end at its next step, claims
/// nothing more, writes back what it holds, and leaves. Nothing stays
/// IN_PROCESS, and the counters add up.
#[test]
fn a_helper_leaves_when_the_owner_ends_the_batch() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let store = catalog(home, 400);
    let stop = Arc::new(StopToken::default());
    let cancel = Arc::clone(&stop);
    let path = home.join("store.db");
    let watcher = std::thread::spawn(move || {
        // Once both nodes have completed entities, cancel the owner.
        let store = SqliteStore::open(&path).unwrap();
        loop {
            let bid: Option<String> = store
                .list_batches(&crate::store::ListQuery::default())
                .ok()
                .and_then(|rows| rows.into_iter().next())
                .map(|b| b.bid);
            let both = bid.is_some_and(|bid| {
                store
                    .batch_node_rows(&bid)
                    .is_ok_and(|rows| rows.len() == 2 && rows.iter().all(|r| r.completed > 0))
            });
            if both {
                cancel.cancel();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let (owner, helper, bid) = owner_and_helper(
        &store,
        home,
        "BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2",
        &stop,
    );
    watcher.join().unwrap();
    assert!(
        matches!(
            owner.end,
            RunEnd::Ended {
                status: BatchStatus::Cancelled,
                ..
            }
        ),
        "{:?}",
        owner.end
    );
    assert!(
        matches!(helper.end, RunEnd::Left { .. }),
        "{:?}",
        helper.end
    );
    let c = store.counters(&bid).unwrap();
    assert_eq!(c.in_process, 0, "{c:?}");
    assert!(c.cancelled > 0 && c.completed > 0, "{c:?}");
    assert_eq!(
        c.total,
        c.waiting + c.completed + c.failed + c.cancelled,
        "{c:?}"
    );
    assert_eq!(c.total, 400);
}
