//! `batchsh tick` (SPEC §1, §8): fire the jobs that are due now, run them,
//! exit. Meant for a crontab line, `* * * * * batchsh tick`, where no
//! worker runs. A tick with nothing due only reads the store. One that
//! fires something registers as a node of kind `tick` for as long as its
//! runs last, with a heartbeat, so that a tick killed mid-run is seen
//! dead and its runs marked `FAILED` by the next worker or tick.
//!
//! It prints nothing when every run it fired went well (cron mails what a
//! job prints); a run that failed is one line on stderr, and exit code 1.

use super::run::{Host, Outcome, run};
use super::{Fired, Firer, fire_due};
use crate::batch::NodeIdent;
use crate::store::nodes::{LiveHere, NodeInfo, NodeKind, NodeState};
use crate::store::{Store, StoreError, Upgrades};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs one tick; gives its exit code.
pub fn tick(host: &Host) -> Result<i32, StoreError> {
    // No store yet: no job either, and nothing to make.
    if !crate::store::exists(&host.store_path) {
        return Ok(crate::exit::OK);
    }
    let store = crate::store::open(&host.store_path, Upgrades::Silent)?;
    let now = crate::knobs::now();
    // The runs of processes that died are ended first (that writes only
    // when there is one); then, with nothing due here, nothing to write.
    super::recover_dead(&*store, now)?;
    let due = store.due_jobs(&super::stamp(now))?;
    if due.is_empty() {
        return Ok(crate::exit::OK);
    }
    let ident = NodeIdent {
        node: host.node.clone(),
        dc: host.dc.clone(),
        addrs: NodeIdent::host_addrs(),
    };
    if !due.iter().any(|j| super::may_fire(j, &ident)) {
        return Ok(crate::exit::OK);
    }
    let node = NodeInfo {
        worker_id: &host.worker_id,
        node: &host.node,
        dc: &host.dc,
        kind: NodeKind::Tick,
        workers: host.workers,
        addrs: &ident.addrs,
    };
    store.register_node(&node)?;
    let _live = LiveHere::new(&host.worker_id);
    let done = Arc::new(AtomicBool::new(false));
    let beats = heartbeat(&*store, &host.worker_id, Arc::clone(&done))?;
    let firer = Firer {
        store: &*store,
        worker_id: &host.worker_id,
        ident: &ident,
    };
    let result = fire_due(&firer, now).and_then(|fired| run_all(&*store, host, fired));
    done.store(true, Ordering::SeqCst);
    let _ = beats.join();
    let _ = store.set_node_state(&host.worker_id, NodeState::Stopped);
    let failed = result?;
    for (fired, outcome) in &failed {
        let due = chrono::DateTime::parse_from_rfc3339(&fired.due).map_or_else(
            |_| fired.due.clone(),
            |t| crate::output::format_time_in(&t.with_timezone(&chrono::Utc), &chrono::Local),
        );
        eprintln!(
            "batchsh tick: job {} {} (due {due}) FAILED: {} (JOB_HISTORY '{}' shows the run)",
            fired.job.job_type.keyword(),
            fired.job.name,
            super::run::first_line(outcome.error.as_deref().unwrap_or("?")),
            fired.job.name
        );
    }
    Ok(if failed.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::FAILED
    })
}

/// Runs every fired job, each on a thread with a store handle of its own
/// (all at once: a long run must not hold back another job's time);
/// gives those that failed.
fn run_all(
    store: &dyn Store,
    host: &Host,
    fired: Vec<Fired>,
) -> Result<Vec<(Fired, Outcome)>, StoreError> {
    let mut threads = Vec::new();
    for f in fired {
        let store = store.reopen()?;
        let host = host.clone();
        threads.push(std::thread::spawn(move || {
            let outcome = run(&*store, &host, &f);
            (f, outcome)
        }));
    }
    Ok(threads
        .into_iter()
        .filter_map(|t| t.join().ok())
        .filter(|(_, o)| !o.ok && !o.left)
        .collect())
}

/// The heartbeat of a tick whose runs go on. Declared dead (it stalled
/// past the limit), it writes nothing more: it exits at once.
fn heartbeat(
    store: &dyn Store,
    worker_id: &str,
    done: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    crate::background::heartbeat::start(
        store,
        worker_id,
        done,
        |_| {},
        || eprintln!("batchsh tick: declared dead by another node (it stalled): exits"),
    )
}
