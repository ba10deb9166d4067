//! `batchsh worker` (SPEC §1, §7): a long-running process that runs
//! asynchronous batches (`ASYNC=true`). It registers as a node of its own
//! (kind `worker`, a new worker id per start), beats its heartbeat from a
//! thread of its own, and turns: take the job of a batch that waits for
//! one and run it with every role; else help a batch another worker owns
//! (process only); else take over a batch whose owner died; else, idle,
//! wait (or, `--until-idle`, exit). Each event goes to its log,
//! `<home>/logs/`. A stop signal or Ctrl-C drains it: the batch it runs is
//! left for another worker (its claims go back), its node ends STOPPED,
//! exit 0.
//!
//! This first version serves one batch at a time, with
//! `min(MAX_WORKERS_PER_NODE, --workers)` threads (an open batch,
//! `OPEN=true`, keeps the worker that owns it, and those that help it,
//! until `BATCH_WAITOFF` closes it and it ends); affinity, `@DC` and
//! `MAX_NODES` are not built yet.

mod log;
pub mod spawn;

/// What stops a worker, or one batch of it.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Cannot(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
}

use crate::batch::{RunEnd, StopToken};
use crate::exec::run::{Env, Roles, join};
use crate::store::batches::BatchState;
use crate::store::nodes::{LiveHere, NodeInfo, NodeKind, NodeState};
use crate::store::queue::AsyncBatch;
use crate::store::{Store, Upgrades};
use log::Log;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a worker is started with.
pub struct Config {
    pub home: PathBuf,
    pub store_path: PathBuf,
    pub node: String,
    pub dc: String,
    /// Entity threads (`--workers`).
    pub workers: usize,
    /// `--until-idle`: exit once no work is left.
    pub until_idle: bool,
}

/// How often an idle worker looks for work.
fn idle_poll() -> Duration {
    crate::knobs::dead_after() / 20
}

/// How often the worker beats its heartbeat: every 2 s, or more often
/// when tests shorten the time after which a node is dead.
fn beat_every() -> Duration {
    Duration::from_secs(2).min(crate::knobs::dead_after() / 4)
}

/// Runs the worker until it is stopped (or idle, with `until_idle`).
/// Gives its exit code: 0 after a drain or once idle; 1 when the store
/// cannot be used, or it found itself declared dead.
pub fn run(cfg: &Config) -> Result<i32, WorkerError> {
    crate::terminate::install();
    crate::terminate::drain_on_stop();
    let _ = ctrlc::set_handler(crate::terminate::stop_requested);
    let worker_id = uuid::Uuid::new_v4().to_string();
    let log = Log::open(&cfg.home, &cfg.node, &worker_id)?;
    let say = |text: String| eprintln!("batchsh worker: {text}");
    let store = crate::store::open(
        &cfg.store_path,
        Upgrades::Told(&|u| log.line(&u.to_string())),
    )
    .inspect_err(|e| log.line(&format!("error: {e}")))?;
    let node = NodeInfo {
        worker_id: &worker_id,
        node: &cfg.node,
        dc: &cfg.dc,
        kind: NodeKind::Worker,
        workers: cfg.workers,
    };
    store.register_node(&node)?;
    let _live = LiveHere::new(&worker_id);
    log.line(&format!(
        "start: node {} dc {} workers {} pid {} store {}",
        cfg.node,
        cfg.dc,
        cfg.workers,
        std::process::id(),
        cfg.store_path.display()
    ));
    let done = Arc::new(AtomicBool::new(false));
    let beats = heartbeat(&*store, &worker_id, &log, Arc::clone(&done))?;
    let result = serve(cfg, &*store, &worker_id, &log);
    done.store(true, Ordering::SeqCst);
    let _ = beats.join();
    let _ = store.set_node_state(&worker_id, NodeState::Stopped);
    match result {
        Ok(why) => {
            log.line(&format!("stop: {why}"));
            Ok(0)
        }
        Err(e) => {
            log.line(&format!("error: {e}"));
            say(format!("{e}"));
            Ok(1)
        }
    }
}

/// The heartbeat thread, on a store handle of its own. A worker that finds
/// its node declared dead (it stalled, and another took its work) writes
/// nothing more and exits 1.
fn heartbeat(
    store: &dyn Store,
    worker_id: &str,
    log: &Log,
    done: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, WorkerError> {
    let store = store.reopen()?;
    let (worker_id, log) = (worker_id.to_string(), log.clone());
    Ok(std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            let _ = store.beat(&worker_id);
            let dead = store.nodes().is_ok_and(|nodes| {
                nodes
                    .iter()
                    .any(|n| n.worker_id == worker_id && n.state == NodeState::Dead)
            });
            if dead {
                log.line("declared dead by another node (it stalled): exits, writing nothing more");
                std::process::exit(crate::exit::FAILED);
            }
            let until = std::time::Instant::now() + beat_every();
            while std::time::Instant::now() < until && !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }))
}

/// What a worker does next.
enum Work {
    /// The job of a batch that waited for one: run it with every role.
    Job(AsyncBatch),
    /// A batch another live worker owns: help process it.
    Help(AsyncBatch),
    /// A batch whose owner is dead: take it over, then run it.
    TakeOver(AsyncBatch, BatchState),
}

/// The worker's turns, until a stop (or idle with `until_idle`): why it
/// stopped.
fn serve(
    cfg: &Config,
    store: &dyn Store,
    worker_id: &str,
    log: &Log,
) -> Result<String, WorkerError> {
    loop {
        if crate::terminate::requested() {
            return Ok("asked to stop (drained)".into());
        }
        let mut work = next_work(cfg, store)?;
        if work.is_none() && cfg.until_idle && store.async_batches()?.is_empty() {
            // Idle. Stopping first, then a last look: a statement that
            // queued a batch just now either saw this worker running
            // (and the batch is found here) or saw it stopping, and
            // started another one.
            store.set_node_state(worker_id, NodeState::Stopping)?;
            work = next_work(cfg, store)?;
            if work.is_none() {
                return Ok("idle (--until-idle)".into());
            }
            store.set_node_state(worker_id, NodeState::Running)?;
        }
        let Some(work) = work else {
            std::thread::sleep(idle_poll());
            continue;
        };
        let helped = matches!(work, Work::Help(_));
        match run_batch(cfg, store, worker_id, log, work) {
            Ok(left_idle) if helped && left_idle => std::thread::sleep(idle_poll()),
            Ok(_) => {}
            // The batch could not be run here (its statement no longer
            // plans, a store error): said in the log; the worker goes on.
            Err(e) => {
                log.line(&format!("error: {e}"));
                std::thread::sleep(idle_poll());
            }
        }
    }
}

/// The next work for this worker, if any.
fn next_work(cfg: &Config, store: &dyn Store) -> Result<Option<Work>, WorkerError> {
    let execution_id = uuid::Uuid::new_v4().to_string();
    if let Some(b) = store.take_job(&cfg.node, &execution_id)? {
        return Ok(Some(Work::Job(b)));
    }
    for (b, state) in store.async_batches()? {
        if crate::store::nodes::NodeRecord::owner_alive(store, &state)? {
            if b.status != crate::batch::BatchStatus::Paused {
                return Ok(Some(Work::Help(b)));
            }
        } else {
            return Ok(Some(Work::TakeOver(b, state)));
        }
    }
    Ok(None)
}

/// Runs one piece of work; true when it was a helper that left with
/// nothing done (there was nothing for it to claim).
fn run_batch(
    cfg: &Config,
    store: &dyn Store,
    worker_id: &str,
    log: &Log,
    work: Work,
) -> Result<bool, WorkerError> {
    let (b, roles, execution_id) = match work {
        Work::Job(b) => {
            log.line(&format!("job taken: batch {}", b.bid));
            let e = b.execution_id.clone();
            (b, Roles::ALL, e)
        }
        Work::Help(b) => {
            let e = b.execution_id.clone();
            (b, Roles::PROCESS, e)
        }
        Work::TakeOver(b, state) => {
            let e = uuid::Uuid::new_v4().to_string();
            if store
                .prepare_retry(&b.bid, false, &state, &cfg.node, &e)?
                .is_none()
            {
                // Another worker took it over first.
                return Ok(false);
            }
            log.line(&format!(
                "takeover: batch {} (its owner {} is dead)",
                b.bid,
                state.owner_node.as_deref().unwrap_or("?")
            ));
            (b, Roles::ALL, e)
        }
    };
    let plan = plan_of(store, &b, cfg.workers)?;
    let stop = Arc::new(StopToken::default());
    let _watch = crate::terminate::watch(Arc::clone(&stop));
    let env = Env {
        store,
        home: &cfg.home,
        node: &cfg.node,
        dc: &cfg.dc,
        events: log,
        stop: &stop,
        worker: Some(worker_id),
    };
    if roles == Roles::PROCESS {
        log.line(&format!("batch joined: {}", b.bid));
    }
    let fin = join(&env, &plan, &b.bid, &execution_id, roles, !b.ids_complete)?;
    let c = fin.end.counters();
    let idle = matches!(fin.end, RunEnd::Left { .. });
    log.line(&format!(
        "batch left: {} ({:?}; {} of {} done)",
        b.bid,
        match &fin.end {
            RunEnd::Ended { status, .. } => status.to_string(),
            RunEnd::Left { .. } => "helped".into(),
            RunEnd::Interrupted { .. } => "left unfinished by a stop".into(),
            RunEnd::TakenOver { why, .. } => format!("taken over: {why}"),
        },
        c.finished(),
        c.total
    ));
    Ok(idle)
}

/// The plan of an asynchronous batch, from its stored statement, for this
/// worker's threads.
fn plan_of(
    store: &dyn Store,
    b: &AsyncBatch,
    workers: usize,
) -> Result<crate::plan::Plan, WorkerError> {
    let mut plan = crate::analyze::stored_batch(store, &b.bid, &b.command, workers)
        .map_err(WorkerError::Cannot)?;
    // The worker's threads bound what any of its batches runs.
    plan.workers = plan.workers.min(workers.max(1));
    plan.node_workers = workers.max(1);
    Ok(plan)
}
