//! Runs a planned batch in this process (a synchronous BATCH, or a retry).
//!
//! Three parties meet in a [`Hub`] (one mutex, three condition variables):
//!
//! - a producer thread streams ids from the source into the hub, and waits
//!   when [`ID_BUFFER`] ids are there already (so 10M ids are never held in
//!   memory);
//! - worker threads (the run's own rayon pool, one long-lived loop per
//!   worker) take claimed entities from the hub's queue, several at a time
//!   when entities are fast, run them, and put their outcomes back;
//! - this thread is the only writer to the store. It loops: wait until a
//!   write is worth its cost, take the new ids and the outcomes, write them
//!   and claim the next entities in one transaction ([`BatchStore::step`](crate::store::BatchStore::step)), put
//!   the claimed ones in the queue. Each turn of the loop is the same
//!   phases of a [`Run`] (`writer.rs`); what they decide (when a step is
//!   worth it, how many to claim, whether the run ends) are pure functions
//!   with table tests (`decide.rs`, `pacing.rs`).
//!
//! Writes are grouped: outcomes wait at most [`FLUSH_EVERY`] (or until
//! [`FLUSH_AT`] of them are there) before they are committed, and claims
//! refill the pipeline when half of it is done; its depth is about
//! [`QUEUE_MS`] of work (see [`pipeline_depth`]): fast commands (echo) get
//! large transactions, slow ones (a 20 s script) two entities per worker.
//! New ids are stored claimed when there is room for them: together, in
//! the step's claim row, so a fast batch writes each entity's own row once,
//! with its outcome (the SQLite store's layout: `store/sqlite/batches.rs`). The producer drops
//! duplicate ids before they reach the hub ([`crate::store::seen`]).
//! An entity is committed (claimed) before a worker can take it; entities
//! claimed but not started when the batch is paused or stopped are taken
//! back from the queue and released (WAITING again) in the next step.

use super::error::{ExecError, Result};
mod decide;
mod end;
mod hook;
mod hub;
mod pacing;
mod patience;
mod producer;
mod worker;
mod writer;

use decide::*;
use end::{finish, taken_over};
use hook::on_done;
use hub::*;
use pacing::*;
use patience::*;
use producer::*;
use worker::*;
use writer::*;

use super::plan::{EntitySource, FailureLimit, Plan};
use crate::batch::{BatchStatus, Counters, Event, Events, RunEnd, StopSignal, StopToken};
use crate::command;
use crate::source;
use crate::store::batches::{
    Claimed, Control, NewId, Outcome, OutcomeState, RunRef, Slowest, StepInput, StepResult,
};
use crate::store::nodes::{LiveHere, NodeInfo, NodeKind, NodeState};
use crate::store::seen::Seen;
use crate::store::{Listening, Notice, Store, StoreError};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The parts a process plays for a batch it joins (SPEC §7). A
/// synchronous `BATCH` creates its batch, then joins it with all three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    /// Reads the source and stores the ids (the batch's source not read
    /// to its end yet).
    pub feed: bool,
    /// Claims entities and runs them on its workers.
    pub process: bool,
    /// Owns the batch: decides its status and its end, takes back claims
    /// nobody holds, records `extra_stats`, runs `ON_DONE`.
    pub coordinate: bool,
}

impl Roles {
    /// What a synchronous batch does in its statement's process.
    pub const ALL: Roles = Roles {
        feed: true,
        process: true,
        coordinate: true,
    };
    /// A node that helps run a batch another process owns.
    pub const PROCESS: Roles = Roles {
        feed: false,
        process: true,
        coordinate: false,
    };
}

/// What the run needs from its surroundings.
pub struct Env<'a> {
    pub store: &'a dyn Store,
    pub home: &'a Path,
    pub node: &'a str,
    pub dc: &'a str,
    /// Where the run's events go (the progress bar, its warnings).
    pub events: &'a dyn Events,
    /// How the run is asked to stop from outside (Ctrl-C, a stop signal).
    pub stop: &'a Arc<StopToken>,
    /// The node the run joins as: a worker's own (registered by it), or
    /// `None` for a synchronous run, which registers a node of its own.
    pub worker: Option<&'a str>,
    /// The entity slots the run shares with the other batches of its
    /// process (a worker's `--workers`), or `None`: its own threads only.
    pub permits: Option<&'a Arc<crate::exec::Permits>>,
}

/// A run of a batch that has ended, and how.
#[derive(Debug)]
pub struct Finished {
    pub bid: String,
    pub execution_id: String,
    pub end: RunEnd,
    pub duration: Duration,
}

/// Why a run stops before its batch is done.
#[derive(Clone, Debug, PartialEq)]
enum Stop {
    /// The batch ends with this final status (FAILED: and why).
    End(BatchStatus, Option<String>),
    /// A stop signal: the batch is left unfinished, for `BATCH_RETRY`.
    Signal(StopSignal),
}

/// Joins the batch `bid` as a node with `roles`, and plays them until the
/// batch reaches a final status (coordinating) or nothing is left for this
/// node (processing only). `need_ids`: the source has not been read to its
/// end yet (a new batch, or a retry of one interrupted while its ids were
/// generated); only a feeding node reads it. `execution_id` is the batch's
/// current one (its fencing token: see [`crate::store::batches`]).
pub fn join(
    env: &Env,
    plan: &Plan,
    bid: &str,
    execution_id: &str,
    roles: Roles,
    need_ids: bool,
) -> Result<Finished> {
    let store = env.store;
    // This run joins the batch as a node of its own (SPEC §7: a
    // synchronous batch records its node like any worker).
    // A worker joins under its own node; a synchronous run is a node of
    // its own, registered here for the run.
    let own_node = env.worker.is_none();
    let worker = env
        .worker
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let me = RunRef {
        bid,
        execution_id,
        node: env.node,
        worker: &worker,
    };
    let started = Instant::now();
    let tuning = store.begin_run()?;
    let live = if own_node {
        let node = node_info(env, &worker, plan.workers);
        patiently(env, bid, || store.register_node(&node))?;
        Some(LiveHere::new(&worker))
    } else {
        None
    };
    let _sigterm = crate::terminate::BatchRunning::start(bid);
    // A helper taken over was not judged dead itself: its batch's owner
    // was. Which owner, it knows from when it joined.
    let helped = if roles.coordinate {
        None
    } else {
        Some(store.batch_state(bid).ok().and_then(|s| s.owner_node))
    };
    let r = match run_tuned(env, plan, me, roles, need_ids && roles.feed) {
        Ok(fin) => Ok(fin),
        Err(Halt::TakenOver(e)) => Ok(taken_over(store, me, &e, helped, started)),
        // Whether its last commit was kept cannot be known: the run
        // writes nothing more (no FAILED: the batch did not fail, its
        // store did), and its claims are taken over once its node is
        // found dead, as after a crash.
        Err(Halt::Lost(e)) => Err(e.into()),
        Err(Halt::Failed(e)) if !roles.coordinate => {
            // The batch is its coordinator's to fail: this node gives its
            // claims back and leaves.
            let _ = store.requeue_orphans(me);
            let _ = store.end_node(me);
            Err(e)
        }
        Err(Halt::Failed(e)) => {
            // The run cannot go on (a full disk, the store deleted): the
            // batch is FAILED with the reason if that can still be
            // recorded (SPEC §7). If not, it stays as its last commit left
            // it, as after a crash. Either way BATCH_RETRY finishes it, and
            // nothing committed is lost.
            let why = e.to_string();
            let record = || store.fail_run(me, &why);
            match record() {
                Ok(()) | Err(StoreError::TakenOver { .. }) => {}
                Err(_) => {
                    // The write-ahead log may be what cannot grow (a file
                    // size limit): moved into the store file, it starts
                    // again from its beginning, where this small write fits.
                    let _ = store.compact();
                    if record().is_err() {
                        // Neither has room (the store file is full too): say
                        // so, since the stored status does not.
                        env.events.event(Event::NotMarkedFailed { bid });
                    }
                }
            }
            Err(e)
        }
    };
    // Best effort: a row left RUNNING by a process that is gone counts as
    // dead anyway.
    if let Some(live) = live {
        drop(live);
        let _ = store.set_node_state(&worker, NodeState::Stopped);
    }
    drop(tuning);
    r
}

/// The node a synchronous run registers as: worker `worker` of this
/// process, running `workers` entity threads.
fn node_info<'a>(env: &'a Env, worker: &'a str, workers: usize) -> NodeInfo<'a> {
    NodeInfo {
        worker_id: worker,
        node: env.node,
        dc: env.dc,
        kind: NodeKind::Synchronous,
        workers,
        addrs: &[],
    }
}

/// Why a run stopped before its end.
enum Halt {
    /// Another run owns the batch now: this one was judged dead (it had
    /// stalled) and taken over. It stops at once, writing nothing more.
    TakenOver(StoreError),
    /// The run cannot go on.
    Failed(ExecError),
    /// The store's answer to a commit was lost with its connection
    /// ([`StoreError::FateUnknown`]): the run stops at once, writing
    /// nothing more, as if it had crashed.
    Lost(StoreError),
}

impl From<ExecError> for Halt {
    fn from(e: ExecError) -> Halt {
        Halt::Failed(e)
    }
}

fn halt(e: StoreError) -> Halt {
    match e {
        StoreError::TakenOver { .. } => Halt::TakenOver(e),
        StoreError::FateUnknown { .. } => Halt::Lost(e),
        e => Halt::Failed(e.into()),
    }
}

/// Checks a table of rows, each an input and the output `f` must give for
/// it, naming the input of a row that fails.
#[cfg(test)]
#[track_caller]
fn assert_table<I, O>(table: &[(I, O)], f: impl Fn(I) -> O)
where
    I: Copy + std::fmt::Debug,
    O: PartialEq + std::fmt::Debug,
{
    for (input, want) in table {
        assert_eq!(&f(*input), want, "{input:?}");
    }
}

/// What a run works with from its start to its end: its surroundings, its
/// plan, who it is (every write carries it: the fencing token), and when
/// it started.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    env: &'a Env<'a>,
    plan: &'a Plan,
    me: RunRef<'a>,
    roles: Roles,
    started: Instant,
}

impl Ctx<'_> {
    /// One of the run's writes (or reads), waiting out a locked store
    /// ([`patiently`]); an error halts the run.
    fn patiently<T>(
        &self,
        mut write: impl FnMut(&dyn Store) -> crate::store::Result<T>,
    ) -> std::result::Result<T, Halt> {
        let store = self.env.store;
        patiently(self.env, self.me.bid, || write(store)).map_err(halt)
    }
}

/// The run's other parties and where they meet: the hub, the producer
/// (while the source is to be read), the workers and what they share.
/// Dropping this stops them, however the run ends (an error included):
/// workers start nothing more, and the hub closes, so the worker loops and
/// the producer leave.
struct Parties {
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    /// The worker threads: a rayon pool for the workers the run starts
    /// with, and one more for each raise beyond them (BATCH_EDIT).
    pools: Mutex<Vec<rayon::ThreadPool>>,
    /// Worker loops started so far (worker `k` for each `k` below it).
    started: AtomicUsize,
    _producer: Option<std::thread::JoinHandle<()>>,
}

impl Parties {
    /// Starts the producer when `need_ids`, and the workers. `ids_stored`:
    /// an earlier run of the batch stored ids; `failed_before`: FAILED
    /// entities before this run.
    fn start(
        ctx: Ctx,
        need_ids: bool,
        ids_stored: bool,
        failed_before: i64,
    ) -> std::result::Result<Parties, Halt> {
        let Ctx { env, plan, me, .. } = ctx;
        let workdir = ctx
            .patiently(|store| store.workdir(me.bid))?
            .map(std::path::PathBuf::from);
        // A named batch's window: its run's, kept in the store, so that a
        // retry or a worker that takes the batch runs the same window.
        let window = match &plan.series {
            Some(_) => ctx.patiently(|store| crate::store::series::batch_window(store, me.bid))?,
            None => Vec::new(),
        };
        // A node that does not feed sees the source open until the store
        // says every id is stored.
        let feed = if need_ids || !ctx.roles.feed {
            Feed::Open
        } else {
            Feed::Ended
        };
        let mut parties = Parties {
            hub: Arc::new(Hub::new(
                plan.workers,
                feed,
                id_room(
                    env.store.step_entities(),
                    plan.asynchronous && env.store.keeps_chunks(),
                ),
            )),
            shared: Arc::new(Shared::new(
                plan,
                env,
                me.bid,
                failed_before,
                workdir,
                window.clone(),
            )),
            pools: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            _producer: None,
        };
        // Feeding: the producer reads the source.
        if need_ids {
            // Ids stored by an earlier run of the batch are not stored again,
            // and an open batch's appends are read after the source: the
            // producer reads both through a store handle of its own.
            let stored = if ids_stored || plan.open {
                env.store
                    .reopen()
                    .map(|store| {
                        Some(Stored {
                            store,
                            bid: me.bid.to_string(),
                            ids_stored,
                        })
                    })
                    .map_err(|e| e.to_string())
            } else {
                Ok(None)
            };
            // A stored batch's lines (FROM STDIN / FROM FILE) come from the
            // store, as a query's ids would come from its source again.
            let lines = match &plan.source {
                crate::plan::EntitySource::Lines { ids: None, .. } => env
                    .store
                    .batch_lines(me.bid)
                    .map_err(halt)?
                    .map(|text| Arc::new(crate::source::lines::from_stored(&text))),
                _ => None,
            };
            let hub = Arc::clone(&parties.hub);
            parties._producer = Some(spawn_producer(plan, env.home, stored, lines, hub, window));
        }
        // Processing: a thread for each worker the batch runs now;
        // BATCH_EDIT may add more ([`Parties::workers_up_to`]).
        if ctx.roles.process {
            parties.workers_up_to(plan.workers)?;
        }
        Ok(parties)
    }

    /// Makes sure `n` worker loops run (more only: a lower count leaves
    /// the extra loops idle, `k >= allowed`, so a later raise finds them).
    fn workers_up_to(&self, n: usize) -> std::result::Result<(), ExecError> {
        let from = self.started.load(Ordering::SeqCst);
        if n <= from {
            return Ok(());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n - from)
            .thread_name(move |k| format!("batchsh-worker-{}", from + k))
            .build()
            .map_err(|e| {
                ExecError::run(format!("cannot start {} worker threads: {e}", n - from))
            })?;
        for k in from..n {
            let hub = Arc::clone(&self.hub);
            let shared = Arc::clone(&self.shared);
            pool.spawn(move || worker(k, &hub, &shared));
        }
        self.started.store(n, Ordering::SeqCst);
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pool);
        Ok(())
    }

    /// The run is over: the hub closes, so the workers and the producer
    /// leave, and the workers' `pipe` processes end (their stdin closed;
    /// those not gone after the grace are killed), before the batch's end
    /// is written and its `ON_DONE` runs.
    fn close(&self) {
        self.hub.close();
        self.shared
            .pipes
            .end_all(command::pipe::END_GRACE + PIPE_END_SLACK);
    }
}

/// How much longer than a pipe's own grace the run waits for its workers
/// to end their pipe processes before it kills them.
const PIPE_END_SLACK: Duration = Duration::from_millis(500);

impl Drop for Parties {
    fn drop(&mut self) {
        self.shared.halt.store(true, Ordering::SeqCst);
        self.close();
    }
}

/// The run, once its batch is its own: the parties start, then the writer
/// turns through its phases ([`Run`]) until the verdict ends it.
fn run_tuned(
    env: &Env,
    plan: &Plan,
    me: RunRef,
    roles: Roles,
    need_ids: bool,
) -> std::result::Result<Finished, Halt> {
    let ctx = Ctx {
        env,
        plan,
        me,
        roles,
        started: Instant::now(),
    };
    let status = if need_ids {
        BatchStatus::GenerateIidList
    } else {
        BatchStatus::InProgress
    };
    if roles.coordinate {
        ctx.patiently(|store| store.take_ownership(me, env.dc))?;
        ctx.patiently(|store| store.set_run_status(me, status, None))?;
    } else {
        ctx.patiently(|store| store.join_batch(me, env.dc))?;
    }
    let next_seq = ctx.patiently(|store| store.max_seq(me.bid))?;
    let finished_before = ctx.patiently(|store| store.finished_counts(me.bid))?;
    let parties = Parties::start(ctx, need_ids, next_seq > 0, finished_before.1)?;
    let fresh = finished_before == (0, 0);
    // Several nodes run an asynchronous batch: its owner hears when the
    // others leave it, a helper when the owner stores ids.
    let others = plan
        .asynchronous
        .then(|| Listening::new(env.store, Notice::Batch));
    let hears_others = others.as_ref().is_some_and(|l| l.told);
    let mut run = Run::new(ctx, &parties, status, next_seq, fresh, hears_others);
    loop {
        run.heed_stop_token();
        let turn = run.turn();
        let hub = run.wait_for_step(&turn);
        let input = run.take_input(hub, &turn);
        let step = run.step(input)?;
        run.apply(&step.control)?;
        run.check_failures();
        run.hand_out(step.claimed)?;
        run.report()?;
        // Coordinating: the run decides its end (and ON_DONE follows).
        let mut verdict = run.verdict();
        if verdict == Verdict::RequeueOrphans {
            run.requeue_orphans()?;
            // The counters read with it may show the other nodes' last
            // entities done by now: the end is decided at once, not at
            // the next step (up to CONTROL_POLL later).
            verdict = match run.verdict() {
                Verdict::RequeueOrphans => Verdict::GoOn,
                v => v,
            };
        }
        match verdict {
            Verdict::GoOn | Verdict::RequeueOrphans => {}
            Verdict::End(how, leftovers) => return run.end(how, leftovers),
            Verdict::Leave => return run.leave(),
        }
    }
}
