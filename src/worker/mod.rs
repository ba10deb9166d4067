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
//! It serves several batches at once, each on a thread of its own with
//! `min(MAX_WORKERS_PER_NODE, --workers)` entity threads; all of them
//! together run at most `--workers` entities at a time (their slots are
//! [`Permits`]). Which batches it may own or process is their placement
//! (`JOB_AFFINITY`, `AFFINITY`, `@DC`, `MAX_NODES`: [`crate::batch::placement`]).
//! An open batch (`OPEN=true`) keeps the worker that owns it, and those
//! that help it, until `BATCH_WAITOFF` closes it and it ends.

mod guard;
mod log;
mod unplanned;

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

use crate::background::wake;
use crate::batch::{BatchStatus, NodeIdent, RunEnd, StopToken};
use crate::exec::Permits;
use crate::exec::run::{Env, Roles, join};
use crate::store::batches::BatchState;
use crate::store::nodes::{LiveHere, NodeInfo, NodeKind, NodeRecord, NodeState};
use crate::store::queue::AsyncBatch;
use crate::store::{Store, Upgrades};
use log::Log;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a worker is started with.
#[derive(Clone)]
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

/// Who a worker is: its worker id (new at each start), and its node, DC
/// and host addresses, which affinity matches.
#[derive(Clone)]
struct Me {
    worker_id: String,
    ident: NodeIdent,
}

/// How often an idle worker looks for work.
fn idle_poll() -> Duration {
    crate::knobs::dead_after() / 20
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
    // Before it registers: a statement that sees it alive may wake it.
    let wake = wake::Wake::install().map_err(|source| WorkerError::Io {
        what: "cannot handle SIGUSR1 (how statements wake a worker)".into(),
        source,
    })?;
    wake.listen(store.reopen()?)
        .map_err(|source| WorkerError::Io {
            what: "cannot start the thread that hears the store's notices".into(),
            source,
        })?;
    let me = Me {
        worker_id: worker_id.clone(),
        ident: NodeIdent {
            node: cfg.node.clone(),
            dc: cfg.dc.clone(),
            addrs: NodeIdent::host_addrs(),
        },
    };
    let node = NodeInfo {
        worker_id: &worker_id,
        node: &cfg.node,
        dc: &cfg.dc,
        kind: NodeKind::Worker,
        workers: cfg.workers,
        addrs: &me.ident.addrs,
    };
    store.register_node(&node)?;
    let _live = LiveHere::new(&worker_id);
    log.line(&format!(
        "start: node {} dc {} workers {} pid {} store {}",
        cfg.node,
        cfg.dc,
        cfg.workers,
        std::process::id(),
        crate::store::shown(&cfg.store_path)
    ));
    let done = Arc::new(AtomicBool::new(false));
    let beats = heartbeat(&*store, &worker_id, &cfg.home, &log, Arc::clone(&done))?;
    let permits = Arc::new(Permits::new(cfg.workers));
    let at = At {
        cfg,
        store: &*store,
        me: &me,
        log: &log,
        permits: &permits,
    };
    let result = serve(&at, &wake);
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
            say(format!(
                "{e}; the worker stopped, its batches drained first (their entities in \
                 flight finished, the rest are left for another worker)"
            ));
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
    home: &std::path::Path,
    log: &Log,
    done: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, WorkerError> {
    let (log, said) = (log.clone(), log.clone());
    let home = guard::Home::new(home);
    Ok(crate::background::heartbeat::start(
        store,
        worker_id,
        done,
        move |store| guard::check(store, &home, &log),
        move || {
            said.line("declared dead by another node (it stalled): exits, writing nothing more")
        },
    )?)
}

/// The batches a worker serves now, each on a thread of its own.
#[derive(Default)]
struct Serving {
    running: HashMap<String, std::thread::JoinHandle<Result<bool, WorkerError>>>,
    /// Batches it helped and left with nothing to claim, with when it may
    /// look at them again.
    resting: HashMap<String, Instant>,
    /// A store handle opened while idle, for the next batch's thread: a
    /// batch starts without waiting for a new connection (PostgreSQL's
    /// takes a server process of its own).
    spare: Option<Box<dyn crate::store::Store + Send>>,
}

impl Serving {
    /// The batches it serves, or rests from: not looked at for new work.
    fn busy(&self) -> HashSet<String> {
        self.running
            .keys()
            .chain(self.resting.keys())
            .cloned()
            .collect()
    }

    /// Starts serving one piece of work on a thread of its own, with a
    /// store handle of its own.
    fn start(&mut self, at: &At, work: Work) -> Result<(), WorkerError> {
        let bid = work.bid().to_string();
        let store = match self.spare.take() {
            Some(store) => store,
            None => at.store.reopen()?,
        };
        let (cfg, me, log, permits) = (
            at.cfg.clone(),
            at.me.clone(),
            at.log.clone(),
            Arc::clone(at.permits),
        );
        let thread = std::thread::Builder::new()
            .name(format!("batch-{}", crate::batch::short_id(&bid)))
            .spawn(move || {
                let at = At {
                    cfg: &cfg,
                    store: &*store,
                    me: &me,
                    log: &log,
                    permits: &permits,
                };
                run_batch(&at, work)
            })
            .map_err(|source| WorkerError::Io {
                what: "cannot start a thread for a batch".into(),
                source,
            })?;
        self.running.insert(bid, thread);
        Ok(())
    }

    /// Collects the batches whose thread ended, and ends the rests that
    /// are over. Gives the error of a batch thread that stopped because
    /// the store failed under it (see [`store_failed`]): the worker stops
    /// too, its other batches drained.
    fn reap(&mut self, log: &Log) -> Option<WorkerError> {
        let mut failed = None;
        let now = Instant::now();
        self.resting.retain(|_, until| *until > now);
        let ended: Vec<String> = self
            .running
            .iter()
            .filter(|(_, t)| t.is_finished())
            .map(|(bid, _)| bid.clone())
            .collect();
        for bid in ended {
            let Some(thread) = self.running.remove(&bid) else {
                continue;
            };
            let rest = match thread.join() {
                Ok(Ok(left_idle)) => left_idle,
                // The batch could not be run here (its statement no
                // longer plans, a store error): said in the log; the
                // worker goes on, and looks at it again a little later.
                Ok(Err(e)) => {
                    log.line(&format!("error: batch {bid}: {e}"));
                    if store_failed(&e) {
                        failed.get_or_insert(e);
                    }
                    true
                }
                Err(_) => {
                    log.line(&format!("error: batch {bid}: its thread panicked"));
                    true
                }
            };
            if rest {
                self.resting.insert(bid, now + idle_poll());
            }
        }
        failed
    }

    /// Waits for every batch thread to end (after a stop, they drain).
    fn wait_all(&mut self, log: &Log) {
        while !self.running.is_empty() {
            let _ = self.reap(log);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a batch thread's error is its store's rather than its batch's:
/// the store cannot be used any more (damaged, read-only, newer), or the
/// fate of a commit was lost with its connection. (A store file deleted
/// or replaced is the guard's: it exits at once, committing nothing more
/// into a file nobody reads, see [`guard`]. A server that does not answer
/// for now is waited for: the batch is looked at again later.) The worker's
/// node would otherwise stay alive, holding the batch and its claims that
/// no thread serves any more: it stops instead, so that another worker
/// takes them over.
fn store_failed(e: &WorkerError) -> bool {
    use crate::store::StoreError as S;
    let store = match e {
        WorkerError::Store(e) => e,
        WorkerError::Exec(e) => match &*e.kind {
            crate::exec::ExecErrorKind::Store(e) => e,
            _ => return false,
        },
        _ => return false,
    };
    matches!(
        store,
        S::FateUnknown { .. }
            | S::ReadOnly { .. }
            | S::Damaged { .. }
            | S::Newer { .. }
            | S::NotAStore { .. }
    )
}

/// What a worker's batch threads share: its settings, its store, who it
/// is, its log and its entity slots.
struct At<'a> {
    cfg: &'a Config,
    store: &'a dyn Store,
    me: &'a Me,
    log: &'a Log,
    permits: &'a Arc<Permits>,
}

/// The worker's turns, until a stop (or idle with `until_idle`): why it
/// stopped. Each batch it serves runs on a thread of its own; its
/// `--workers` slots are shared among them. A store that cannot be
/// reached for now (a PostgreSQL server that restarts) is waited for, as
/// its batch threads wait for it. Any other store error stops the worker:
/// its batches drain first, as on SIGTERM (their entities in flight finish
/// and are recorded, the claimed ones not started go back, each batch is
/// left for another worker), so that nothing is half-written and its node
/// holds nothing when it exits, non-zero, saying why.
fn serve(at: &At, wake: &wake::Wake) -> Result<String, WorkerError> {
    let mut serving = Serving::default();
    let mut jobs = JobRuns::default();
    let mut unreachable: Option<Instant> = None;
    let r = loop {
        match turn(at, wake, &mut serving, &mut jobs) {
            Ok(None) => {
                if let Some(since) = unreachable.take() {
                    let text = format!(
                        "the store answers again after {} s",
                        since.elapsed().as_secs()
                    );
                    at.log.line(&text);
                }
            }
            Ok(Some(why)) => break Ok(why),
            Err(WorkerError::Store(e)) if e.unreachable() => {
                if unreachable.is_none() {
                    let text = format!(
                        "the store cannot be reached ({e}); this worker waits for it, trying \
                         again every second"
                    );
                    at.log.line(&format!("error: {text}"));
                    eprintln!("batchsh worker: {text}");
                }
                unreachable.get_or_insert_with(Instant::now);
                wake.sleep(Duration::from_secs(1));
            }
            Err(e) => break Err(e),
        }
    };
    if r.is_err() {
        at.log
            .line("error: the store failed under this worker: its batches drain, then it stops");
        crate::terminate::drain_runs();
        serving.wait_all(at.log);
        jobs.wait_all();
    }
    r
}

/// One of the worker's turns (see [`serve`]): why it stops, if it does.
fn turn(
    at: &At,
    wake: &wake::Wake,
    serving: &mut Serving,
    jobs: &mut JobRuns,
) -> Result<Option<String>, WorkerError> {
    if let Some(e) = serving.reap(at.log) {
        return Err(e);
    }
    jobs.reap();
    if crate::terminate::requested() {
        serving.wait_all(at.log);
        jobs.wait_all();
        return Ok(Some("asked to stop (drained)".into()));
    }
    jobs.fire(at)?;
    let mut work = next_work(at, &serving.busy())?;
    if work.is_none()
        && at.cfg.until_idle
        && serving.running.is_empty()
        && jobs.running.is_empty()
        && idle(at)?
    {
        // Idle. Stopping first, then a last look: a statement that
        // queued a batch just now either saw this worker running
        // (and the batch is found here) or saw it stopping, and
        // started another one.
        at.store
            .set_node_state(&at.me.worker_id, NodeState::Stopping)?;
        work = next_work(at, &HashSet::new())?;
        if work.is_none() {
            return Ok(Some("idle (--until-idle)".into()));
        }
        at.store
            .set_node_state(&at.me.worker_id, NodeState::Running)?;
    }
    match work {
        // Look for more at once: a worker serves every batch it may.
        Some(work) => {
            let job = matches!(work, Work::Job(_));
            serving.start(at, work)?;
            if job {
                // The other workers of this host may help at once (the
                // batch's own thread goes first).
                wake::nudge_workers(at.store, Some(&at.me.worker_id));
            }
        }
        None => {
            if serving.spare.is_none() {
                serving.spare = Some(at.store.reopen()?);
            }
            wake.sleep(idle_poll());
        }
    }
    Ok(None)
}

/// How often a worker looks for due jobs (SPEC §8: a due job starts
/// within 2 seconds of its time).
fn job_look_every() -> Duration {
    Duration::from_millis(500).min(idle_poll())
}

/// The job runs a worker fired, each on a thread of its own
/// ([`crate::jobs`]).
#[derive(Default)]
struct JobRuns {
    running: Vec<std::thread::JoinHandle<()>>,
    looked: Option<Instant>,
}

impl JobRuns {
    /// Fires the jobs that are due, if it is time to look again.
    fn fire(&mut self, at: &At) -> Result<(), WorkerError> {
        if self.looked.is_some_and(|t| t.elapsed() < job_look_every()) {
            return Ok(());
        }
        self.looked = Some(Instant::now());
        let firer = crate::jobs::Firer {
            store: at.store,
            worker_id: &at.me.worker_id,
            ident: &at.me.ident,
        };
        for fired in crate::jobs::fire_due(&firer, crate::knobs::now())? {
            let store = at.store.reopen()?;
            let log = at.log.clone();
            let host = crate::jobs::run::Host {
                home: at.cfg.home.clone(),
                store_path: at.cfg.store_path.clone(),
                node: at.cfg.node.clone(),
                dc: at.cfg.dc.clone(),
                workers: at.cfg.workers,
                worker_id: at.me.worker_id.clone(),
            };
            let what = format!(
                "job {} {} (due {})",
                fired.job.job_type.keyword(),
                fired.job.name,
                fired.due
            );
            log.line(&format!("job fired: {what}"));
            let thread = std::thread::Builder::new()
                .name(format!("job-{}", fired.job.job_no))
                .spawn(move || {
                    let outcome = crate::jobs::run::run(&*store, &host, &fired);
                    match outcome.error.filter(|_| !outcome.ok) {
                        _ if outcome.left => log.line(&format!(
                            "job run left: {what}: this worker stops; the run ends with its batch"
                        )),
                        None => log.line(&format!("job run ended: {what}: PROCESSED")),
                        Some(e) => log.line(&format!("job run ended: {what}: FAILED: {e}")),
                    }
                })
                .map_err(|source| WorkerError::Io {
                    what: "cannot start a thread for a job".into(),
                    source,
                })?;
            self.running.push(thread);
        }
        Ok(())
    }

    fn reap(&mut self) {
        self.running.retain(|t| !t.is_finished());
    }

    fn wait_all(&mut self) {
        for t in self.running.drain(..) {
            let _ = t.join();
        }
    }
}

/// What a worker does next.
enum Work {
    /// The job of a batch that waited for one: own it (read its source,
    /// decide its end), and process it where its affinity allows.
    Job(AsyncBatch),
    /// A batch another live worker owns: help process it.
    Help(AsyncBatch),
    /// A batch whose owner is dead: take it over, then run it.
    TakeOver(AsyncBatch, BatchState),
}

impl Work {
    fn bid(&self) -> &str {
        match self {
            Work::Job(b) | Work::Help(b) | Work::TakeOver(b, _) => &b.bid,
        }
    }
}

/// The next work for this worker, if any, among the batches not in
/// `busy`: a job it may own, a batch it may help with (and `MAX_NODES`
/// lets it), a batch whose owner died that it may take over.
fn next_work(at: &At, busy: &HashSet<String>) -> Result<Option<Work>, WorkerError> {
    let me = &at.me.ident;
    let free = |bid: &String| !busy.contains(bid);
    for b in at.store.waiting_jobs()? {
        if !free(&b.bid) || !b.placement.may_own(me) {
            continue;
        }
        let execution_id = uuid::Uuid::new_v4().to_string();
        let processes = b.placement.may_process(me);
        let (node, worker) = (&at.cfg.node, &at.me.worker_id);
        if let Some(b) = at
            .store
            .take_job(&b.bid, node, worker, &execution_id, processes)?
        {
            return Ok(Some(Work::Job(b)));
        }
    }
    for (b, state) in at.store.async_batches()? {
        if !free(&b.bid) {
            continue;
        }
        if NodeRecord::owner_alive(at.store, &state)? {
            if b.status != BatchStatus::Paused
                && b.placement.may_process(me)
                && at
                    .store
                    .enter_batch(&b.bid, &at.me.worker_id, b.placement.max_nodes, false)?
            {
                return Ok(Some(Work::Help(b)));
            }
        } else if b.placement.may_own(me) {
            return Ok(Some(Work::TakeOver(b, state)));
        }
    }
    Ok(None)
}

/// Whether nothing is left for this worker: no batch under way that it
/// may process or take over, no job it may own, and no job it may process
/// that a live worker will take.
fn idle(at: &At) -> Result<bool, WorkerError> {
    let me = &at.me.ident;
    let mut owns = false;
    for b in at.store.waiting_jobs()? {
        let p = &b.placement;
        owns |= p.may_own(me)
            || (p.may_process(me)
                && crate::store::nodes::worker_alive(at.store, |n| p.may_own(n))?);
    }
    let serves = at
        .store
        .async_batches()?
        .iter()
        .any(|(b, _)| b.placement.may_process(me) || b.placement.may_own(me));
    Ok(!owns && !serves)
}

/// Runs one piece of work; true when it was a helper that left with
/// nothing done (there was nothing for it to claim). The worker takes part
/// in the batch from its start to its end (`MAX_NODES` counts it).
fn run_batch(at: &At, work: Work) -> Result<bool, WorkerError> {
    let bid = work.bid().to_string();
    let r = serve_batch(at, work);
    let _ = at.store.leave_batch(&bid, &at.me.worker_id);
    r
}

fn serve_batch(at: &At, work: Work) -> Result<bool, WorkerError> {
    let (cfg, store, log) = (at.cfg, at.store, at.log);
    let me = &at.me.ident;
    // The owner reads the source and decides the end; it processes
    // entities too where AFFINITY lets it.
    let owner = |b: &AsyncBatch| Roles {
        feed: true,
        coordinate: true,
        process: b.placement.may_process(me),
    };
    let (b, roles, execution_id) = match work {
        Work::Job(b) => {
            log.line(&format!("job taken: batch {}", b.bid));
            let (roles, e) = (owner(&b), b.execution_id.clone());
            (b, roles, e)
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
            let roles = owner(&b);
            if roles.process {
                // A new owner that processes takes part whatever
                // MAX_NODES says (taking a job entered it already).
                store.enter_batch(&b.bid, &at.me.worker_id, None, true)?;
            }
            (b, roles, e)
        }
    };
    let run = crate::store::batches::RunRef {
        bid: &b.bid,
        execution_id: &execution_id,
        node: &cfg.node,
        worker: &at.me.worker_id,
    };
    let plan =
        plan_of(store, &b, cfg.workers).map_err(|e| unplanned::fail(store, run, roles, e))?;
    let stop = Arc::new(StopToken::default());
    let _watch = crate::terminate::watch(Arc::clone(&stop));
    let env = Env {
        store,
        home: &cfg.home,
        node: &cfg.node,
        dc: &cfg.dc,
        events: log,
        stop: &stop,
        worker: Some(&at.me.worker_id),
        permits: Some(at.permits),
    };
    if roles == Roles::PROCESS {
        log.line(&format!("batch joined: {}", b.bid));
    }
    let fin = join(&env, &plan, &b.bid, &execution_id, roles, !b.ids_complete)?;
    log.batch_left(&b.bid, &fin.end);
    Ok(matches!(fin.end, RunEnd::Left { .. }))
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
