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
//!   and claim the next entities in one transaction ([`Store::step`]), put
//!   the claimed ones in the queue.
//!
//! Writes are grouped: outcomes wait at most [`FLUSH_EVERY`] (or until
//! [`FLUSH_AT`] of them are there) before they are committed, and claims
//! refill the pipeline when half of it is done; its depth is about
//! [`QUEUE_MS`] of work (see [`pipeline_depth`]): fast commands (echo) get
//! large transactions, slow ones (a 20 s script) two entities per worker.
//! New ids are stored claimed when there is room for them: together, in
//! the step's claim row, so a fast batch writes each entity's own row once,
//! with its outcome (see [`crate::store::batches`]). The producer drops
//! duplicate ids before they reach the hub ([`super::seen`]).
//! An entity is committed (claimed) before a worker can take it; entities
//! claimed but not started when the batch is paused or stopped are taken
//! back from the queue and released (WAITING again) in the next step.

use super::error::{ExecError, Result};
use super::plan::{EntitySource, FailureLimit, Plan};
use crate::batch::{BatchStatus, Request, RunEnd, StopSignal};
use crate::command::{self, CommandError, Connections};
use crate::source;
use crate::store::batches::{Claimed, NewId, Outcome, OutcomeState, RunRef, Slowest, StepInput};
use crate::store::seen::Seen;
use crate::store::{Store, StoreError};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the run needs from its surroundings.
pub struct Env<'a> {
    pub store: &'a dyn Store,
    pub home: &'a Path,
    pub node: &'a str,
    pub dc: &'a str,
    /// Show a progress bar (the caller has checked stderr is a terminal).
    pub progress: bool,
    /// Set by Ctrl-C: cancel gracefully.
    pub interrupt: &'a AtomicBool,
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
#[derive(Clone, Debug)]
enum Stop {
    /// The batch ends with this final status (FAILED: and why).
    End(BatchStatus, Option<String>),
    /// A stop signal: the batch is left unfinished, for `BATCH_RETRY`.
    Signal(StopSignal),
}

/// Outcomes wait at most this long for their commit.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// ... or until this many are there.
const FLUSH_AT: usize = 1000;
/// How often an otherwise idle loop writes anyway: its heartbeat, and the
/// moment it reads requests from other processes (pause, cancel, edit),
/// which must take effect within a second.
const CONTROL_POLL: Duration = Duration::from_millis(500);
/// The longest the writer sleeps without looking at Ctrl-C.
const MAX_WAIT: Duration = Duration::from_millis(100);
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Ids read ahead of the store; the producer waits beyond this.
const ID_BUFFER: usize = 32 * 1024;
/// Entities written between two nudges of the checkpointer (a fast batch
/// writes this many in a few milliseconds; a slow one leaves its
/// checkpoints to the writer's automatic ones).
const CHECKPOINT_AFTER: usize = 4096;
/// New ids stored per step at most (the rest wait for the next one).
const IDS_PER_STEP: usize = 16 * 1024;
/// While nothing claims (GENERATE_ENTITIES_FIRST, paused), this many ids
/// in the hub make a step worth it (else they wait up to [`FLUSH_EVERY`]).
const IDS_BATCH: usize = 4096;
/// Otherwise ids wait in the hub until they can be claimed as they are
/// stored, or at most this long, or until half of [`ID_BUFFER`] is full.
/// (So a batch of slow commands stores its ids, and shows its total, within
/// about a second of reading them.)
const IDS_HOLD: Duration = Duration::from_secs(1);
/// The hub notes the arrival time of every this many ids (and of the first
/// one after it was empty): the age of its oldest id, to within a group.
const ARRIVAL_GROUP: u64 = 1024;
/// The pipeline holds about this much work per worker (by the running
/// mean of an entity's time) ...
const QUEUE_MS: f64 = 100.0;
/// ... and never more than this many entities.
const QUEUE_MAX: usize = 16 * 1024;
/// A worker takes about this much work from the queue at once.
const TAKE_MS: f64 = 2.0;

/// Where the producer, the workers and the writer meet.
struct Hub {
    state: Mutex<HubState>,
    /// The writer waits here for ids and outcomes.
    writer: Condvar,
    /// Workers wait here for entities.
    workers: Condvar,
    /// The producer waits here for room.
    producer: Condvar,
}

#[derive(Default)]
struct HubState {
    /// producer -> writer
    ids: Vec<NewId>,
    /// When the ids in `ids` arrived, by groups: (arrival of the group's
    /// first id, its number counted from the run's first id). The front
    /// group holds the oldest id still here.
    arrivals: VecDeque<(Instant, u64)>,
    /// Ids pushed into `ids`, and taken out of it, since the run began.
    pushed: u64,
    taken: u64,
    /// The source has ended: `Some(None)`, or failed: `Some(Some(error))`.
    ids_end: Option<Option<String>>,
    /// writer -> workers: claimed (committed IN_PROCESS), not started.
    queue: VecDeque<Claimed>,
    /// Most entities a worker takes at once.
    take: usize,
    /// Workers 0..allowed may take entities (MAX_WORKERS_PER_NODE edits).
    allowed: usize,
    /// workers -> writer
    outcomes: Vec<Outcome>,
    outcomes_since: Option<Instant>,
    /// Failed outcomes among them, counted when MAX_FAILURES is set: each
    /// calls for a step at once, so the limit stops the batch in time.
    failed_pending: usize,
    /// Time the outcomes' commands took, in seconds, for the running mean.
    busy: f64,
    /// Waiting, so a notify is due (notifying nobody still costs a
    /// system call; these flags save most of them).
    writer_waits: bool,
    /// While the writer waits: the number of outcomes, and of ids, that
    /// make a step worth it (so workers and producer wake it only then).
    wake_outcomes: usize,
    wake_ids: usize,
    producer_waits: bool,
    idle_workers: usize,
    /// The run is over: everybody leaves.
    closed: bool,
}

impl HubState {
    /// When the oldest id waiting here arrived (within a group of
    /// [`ARRIVAL_GROUP`] ids: no later than it did).
    fn ids_since(&self) -> Option<Instant> {
        if self.ids.is_empty() {
            None
        } else {
            self.arrivals.front().map(|&(t, _)| t)
        }
    }

    fn push_id(&mut self, id: NewId) {
        if self.ids.is_empty() || self.pushed.is_multiple_of(ARRIVAL_GROUP) {
            self.arrivals.push_back((Instant::now(), self.pushed));
        }
        self.ids.push(id);
        self.pushed += 1;
    }

    /// The first `n` ids, for a step to store.
    fn take_ids(&mut self, n: usize) -> Vec<NewId> {
        let ids = if n == self.ids.len() {
            std::mem::take(&mut self.ids)
        } else {
            self.ids.drain(..n).collect()
        };
        self.taken += n as u64;
        if self.ids.is_empty() {
            self.arrivals.clear();
        }
        while self
            .arrivals
            .get(1)
            .is_some_and(|&(_, first)| first <= self.taken)
        {
            self.arrivals.pop_front();
        }
        ids
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A poisoned lock means a worker panicked; the data is still sound
        // (every change is one push or drain).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_writer(&self, st: &mut HubState) {
        if st.writer_waits {
            st.writer_waits = false;
            self.writer.notify_one();
        }
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.queue.clear();
        drop(st);
        self.workers.notify_all();
        self.producer.notify_all();
        self.writer.notify_all();
    }
}

/// Stops the workers from starting anything more however the run ends (a
/// takeover, an error): what they were given and not started is dropped.
struct HaltOnDrop(Arc<Shared>);

impl Drop for HaltOnDrop {
    fn drop(&mut self) {
        self.0.halt.store(true, Ordering::SeqCst);
    }
}

/// Closes the hub however the run ends (an error included), so the worker
/// loops and the producer stop.
struct CloseOnDrop(Arc<Hub>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Runs the batch `bid` until it reaches a final status. `need_ids`: the
/// source has not been read to its end yet (a new batch, or a retry of one
/// interrupted while its ids were generated). `execution_id` is the run's,
/// already the batch's current one (its fencing token: see
/// [`crate::store::batches`]).
pub fn run(
    env: &Env,
    plan: &Plan,
    bid: &str,
    execution_id: &str,
    need_ids: bool,
) -> Result<Finished> {
    let store = env.store;
    let me = RunRef {
        bid,
        execution_id,
        node: env.node,
    };
    let started = Instant::now();
    let tuning = store.begin_run()?;
    let _sigterm = crate::terminate::BatchRunning::start(bid);
    let r = match run_tuned(env, plan, me, need_ids) {
        Ok(fin) => Ok(fin),
        Err(Halt::TakenOver(e)) => Ok(taken_over(store, me, &e, started)),
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
                        eprintln!(
                            "batchsh: batch {bid} could not be marked FAILED (the store cannot \
                             be written); it stays as its last commit left it, as after a crash"
                        );
                    }
                }
            }
            Err(e)
        }
    };
    drop(tuning);
    r
}

/// Why a run stopped before its end.
enum Halt {
    /// Another run owns the batch now: this one was judged dead (it had
    /// stalled) and taken over. It stops at once, writing nothing more.
    TakenOver(StoreError),
    /// The run cannot go on.
    Failed(ExecError),
}

impl From<ExecError> for Halt {
    fn from(e: ExecError) -> Halt {
        Halt::Failed(e)
    }
}

fn halt(e: StoreError) -> Halt {
    match e {
        StoreError::TakenOver { .. } => Halt::TakenOver(e),
        e => Halt::Failed(e.into()),
    }
}

/// How a run that was taken over ends: with the batch's counters as the
/// new owner keeps them, and why it stopped.
fn taken_over(store: &dyn Store, me: RunRef, e: &StoreError, started: Instant) -> Finished {
    Finished {
        bid: me.bid.to_string(),
        execution_id: me.execution_id.to_string(),
        end: RunEnd::TakenOver {
            why: e.to_string(),
            counters: store.counters(me.bid).unwrap_or_default(),
        },
        duration: started.elapsed(),
    }
}

/// Runs one of the run's writes (or reads), waiting out a store that
/// another process holds longer than the busy timeout (a backup, a long
/// VACUUM, a sqlite3 shell in a transaction): the run owns the batch and
/// holds outcomes that nobody else has, so it has nothing to give up (SPEC
/// §11). A write that failed changed nothing, so trying it again is safe.
/// Stderr says when the wait begins, every minute while it lasts, and when
/// it ends. Ctrl-C or SIGTERM during the wait stop batchsh at once, as a
/// second one would: nothing can be committed, so the batch is left as
/// after a crash, for `BATCH_RETRY`.
fn patiently<T>(
    env: &Env,
    bid: &str,
    mut write: impl FnMut() -> crate::store::Result<T>,
) -> crate::store::Result<T> {
    let started = Instant::now();
    let mut said_at: Option<Instant> = None;
    let mut pause = Duration::from_millis(10);
    loop {
        match write() {
            Err(StoreError::Locked { path, .. }) => {
                let first_note = said_at.is_none() && started.elapsed() >= lock_note_after();
                if first_note || said_at.is_some_and(|t| t.elapsed() >= LOCK_NOTE_EVERY) {
                    said_at = Some(Instant::now());
                    eprintln!(
                        "warning: the store {} is locked by another process (waited {} s so \
                         far); batch {bid} keeps what it has done and waits for it. End the \
                         process that holds it (a sqlite3 shell, a backup, a VACUUM), or stop \
                         this run (Ctrl-C, SIGTERM) and finish it later with BATCH_RETRY '{bid}'",
                        path.display(),
                        started.elapsed().as_secs()
                    );
                }
                if env.interrupt.load(Ordering::SeqCst) {
                    crate::terminate::stop_now(crate::exit::INTERRUPTED, "Ctrl-C");
                }
                if crate::terminate::requested() {
                    crate::terminate::stop_now(
                        crate::terminate::exit_code(),
                        crate::terminate::signal_name(),
                    );
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            r => {
                if said_at.is_some() {
                    eprintln!(
                        "batchsh: the store is free again after {} s; batch {bid} goes on",
                        started.elapsed().as_secs()
                    );
                }
                return r;
            }
        }
    }
}

/// How often a run that waits for a locked store says so again.
const LOCK_NOTE_EVERY: Duration = Duration::from_secs(60);

/// How long a run waits for a locked store before it says so: a short
/// lock (a backup of a small store) is not worth a warning in a cron mail.
fn lock_note_after() -> Duration {
    crate::store::busy_timeout().min(Duration::from_secs(5))
}

fn run_tuned(
    env: &Env,
    plan: &Plan,
    me: RunRef,
    need_ids: bool,
) -> std::result::Result<Finished, Halt> {
    let store = env.store;
    let bid = me.bid;
    let started = Instant::now();
    patiently(env, bid, || store.take_ownership(me, env.dc)).map_err(halt)?;
    let mut status = if need_ids {
        BatchStatus::GenerateIidList
    } else {
        BatchStatus::InProgress
    };
    patiently(env, bid, || store.set_run_status(me, status, None)).map_err(halt)?;

    let hub = Arc::new(Hub {
        state: Mutex::new(HubState {
            take: 1,
            allowed: plan.workers,
            ids_end: if need_ids { None } else { Some(None) },
            ..HubState::default()
        }),
        writer: Condvar::new(),
        workers: Condvar::new(),
        producer: Condvar::new(),
    });
    let _close = CloseOnDrop(Arc::clone(&hub));
    let mut next_seq = patiently(env, bid, || store.max_seq(bid)).map_err(halt)?;
    // Ids stored by an earlier run of the batch are not stored again.
    let producer = need_ids.then(|| {
        let seen = seen_so_far(store, bid, next_seq > 0);
        spawn_producer(plan, env.home, seen, Arc::clone(&hub))
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.node_workers)
        .thread_name(|k| format!("batchsh-worker-{k}"))
        .build()
        .map_err(|e| {
            ExecError::run(format!(
                "cannot start {} worker threads: {e}",
                plan.node_workers
            ))
        })?;
    let finished_before = patiently(env, bid, || store.finished_counts(bid)).map_err(halt)?;
    let shared = Arc::new(Shared::new(
        plan,
        env.home,
        bid,
        env.node,
        finished_before.1,
    ));
    // However the run ends, no worker starts anything more.
    let _halt = HaltOnDrop(Arc::clone(&shared));
    // A thread for every worker the node allows, of which the first
    // `allowed` take entities: BATCH_EDIT can raise the count up to it.
    for k in 0..plan.node_workers {
        let hub = Arc::clone(&hub);
        let shared = Arc::clone(&shared);
        pool.spawn(move || worker(k, &hub, &shared));
    }

    let bar = super::progress::Bar::new(env.progress, plan.estimated_total);
    // Entities claimed and not yet written back (queued, running, or with
    // their outcome in the hub).
    let mut in_flight = 0usize;
    let mut workers = plan.workers;
    let mut last_write = Instant::now() - CONTROL_POLL;
    // Entities written since the checkpointer was last nudged.
    let mut written = 0usize;
    let mut last_sample = Instant::now();
    let mut last_store_check = Instant::now();
    let mut stop: Option<Stop> = None;
    let mut paused = false;
    // The source is still giving ids (some may wait in the hub).
    let mut ids_open = true;
    // Stored WAITING entities, as of the last step; and until when not to
    // look for them again, when the last claim found fewer than it asked
    // for (they wait for their retry time).
    let mut waiting = 0i64;
    let mut claim_after = Instant::now();
    let mut release: Vec<Claimed> = Vec::new();
    // Running mean of an entity's time, which sizes the queue; starts
    // slow, so a batch of long commands never claims far ahead.
    let mut avg_entity_ms = 1000.0_f64;
    let mut seen = 0usize;
    // No entity had finished before this run: it sees every outcome, and
    // keeps the slowest itself instead of reading every row at the end.
    let fresh = finished_before == (0, 0);
    let mut slowest = Slowest::default();
    let mut counters;

    loop {
        if env.interrupt.load(Ordering::SeqCst) {
            stop.get_or_insert(Stop::End(BatchStatus::Cancelled, None));
        }
        if let Some(signal) = crate::terminate::signal() {
            stop.get_or_insert(Stop::Signal(signal));
        }
        if stop.is_some() {
            // What workers have taken and not started goes back.
            shared.halt.store(true, Ordering::SeqCst);
        }
        let can_claim = stop.is_none() && !paused && !(plan.generate_first && ids_open);
        let depth = pipeline_depth(workers, avg_entity_ms);
        // The mean entity time is known (a guess before that).
        let known = seen >= 64 || started.elapsed() >= IDS_HOLD;
        let final_step = stop.is_some() && in_flight == 0;

        // Wait until a step is worth it, then take what is to be written.
        let mut st = hub.lock();
        loop {
            let now = Instant::now();
            let claimable = waiting > 0 && now >= claim_after;
            // Entities queued or running (the rest of those in flight
            // have their outcome in the hub, or are to be released).
            let active = in_flight.saturating_sub(st.outcomes.len() + release.len());
            let refill = can_claim && active <= depth / 2 && (claimable || !st.ids.is_empty());
            let aged = |since: Option<Instant>| since.is_some_and(|t| now - t >= FLUSH_EVERY);
            let due = now - last_write >= CONTROL_POLL;
            let go = refill
                || st.outcomes.len() >= FLUSH_AT
                || (in_flight > 0 && st.outcomes.len() + release.len() >= in_flight)
                || aged(st.outcomes_since)
                || (!can_claim && (st.ids.len() >= IDS_BATCH || aged(st.ids_since())))
                || ids_press(&st, can_claim, depth, known, now)
                || (ids_open && st.ids_end.is_some() && st.ids.is_empty())
                || !release.is_empty()
                || final_step
                || due
                || st.failed_pending > 0
                // Entities a halted worker gave back, to be released.
                || (stop.is_some() && !st.queue.is_empty())
                || env.interrupt.load(Ordering::SeqCst)
                || (stop.is_none() && crate::terminate::requested());
            if go {
                break;
            }
            // Sleep until the next deadline at most.
            let mut wait = MAX_WAIT.min((last_write + CONTROL_POLL).saturating_duration_since(now));
            if let Some(since) = st.outcomes_since {
                wait = wait.min((since + FLUSH_EVERY).saturating_duration_since(now));
            }
            if let Some(since) = st.ids_since() {
                let hold = if can_claim { IDS_HOLD } else { FLUSH_EVERY };
                wait = wait.min((since + hold).saturating_duration_since(now));
            }
            if waiting > 0 && can_claim {
                wait = wait.min(claim_after.saturating_duration_since(now));
            }
            // What makes a step worth it before the next deadline: enough
            // outcomes to refill (or every entity in flight done), or ids
            // to store.
            let refill_possible = can_claim && (claimable || ids_open);
            let done_needed = (in_flight - release.len().min(in_flight))
                .saturating_sub(if refill_possible { depth / 2 } else { 0 });
            st.wake_outcomes = done_needed.clamp(1, FLUSH_AT);
            st.wake_ids = if !can_claim {
                IDS_BATCH
            } else if active <= depth / 2 {
                1
            } else if known && depth < IDS_BATCH {
                ID_BUFFER / 2
            } else {
                usize::MAX
            };
            st.writer_waits = true;
            st = hub
                .writer
                .wait_timeout(st, wait.max(Duration::from_millis(1)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            st.writer_waits = false;
        }
        let outcomes = std::mem::take(&mut st.outcomes);
        st.outcomes_since = None;
        st.failed_pending = 0;
        let busy = std::mem::take(&mut st.busy);
        seen += outcomes.len();
        if !outcomes.is_empty() {
            let n = outcomes.len().min(64) as i32;
            let mean = busy * 1000.0 / outcomes.len() as f64;
            let alpha = 1.0 - 0.5_f64.powi(n);
            avg_entity_ms = (1.0 - alpha) * avg_entity_ms + alpha * mean;
        }
        if stop.is_some() || paused {
            // Claimed but not started: nobody may start them now.
            release.extend(st.queue.drain(..));
        }
        // In flight after this step's outcomes and releases are written:
        // claims fill up to the depth.
        let kept = in_flight.saturating_sub(outcomes.len() + release.len());
        let depth = pipeline_depth(workers, avg_entity_ms);
        let claim = if can_claim {
            let room = depth.saturating_sub(kept);
            match plan.chunk_size {
                Some(c) if room > 0 => c.max(room),
                _ => room,
            }
        } else {
            0
        };
        // New ids: as many as can be claimed at once (stored WAITING and
        // claimed later, a row costs a second write), unless they press:
        // nothing claims now, or see [`ids_press`].
        let now = Instant::now();
        let press = !can_claim || ids_press(&st, can_claim, depth, known, now);
        let from_db = if waiting > 0 && now >= claim_after {
            (waiting as usize).min(claim)
        } else {
            0
        };
        let n_ids =
            st.ids
                .len()
                .min(IDS_PER_STEP)
                .min(if press { usize::MAX } else { claim - from_db });
        let new_ids = st.take_ids(n_ids);
        if n_ids > 0 && st.producer_waits {
            st.producer_waits = false;
            hub.producer.notify_one();
        }
        let mut ids_done = false;
        if st.ids.is_empty() && ids_open {
            match &st.ids_end {
                Some(None) => ids_done = true,
                Some(Some(msg)) => {
                    ids_done = true;
                    stop.get_or_insert(Stop::End(BatchStatus::Failed, Some(msg.clone())));
                }
                None => {}
            }
        }
        // Ids read and not stored yet: part of the total for MAX_FAILURES.
        let ids_unstored = st.ids.len() as i64;
        drop(st);
        let claim = if stop.is_some() { 0 } else { claim };

        if fresh {
            for o in &outcomes {
                slowest.offer(o);
            }
        }
        let ids_complete = ids_done || (!ids_open && stop.is_none());
        let done_now = outcomes.len() + release.len();
        if !outcomes.is_empty()
            && let Some(lu) = &shared.command_lu
        {
            // The LU data these entities wrote is on disk before their
            // outcomes are (power loss: SPEC §7).
            crate::lu::flush_log(env.home, &lu.name).map_err(ExecError::from)?;
        }
        let mut input = StepInput {
            new_ids,
            ids_complete: ids_complete && stop.is_none(),
            outcomes,
            release: std::mem::take(&mut release),
            claim,
        };
        let step =
            patiently(env, bid, || store.step(me, &mut next_seq, &mut input)).map_err(halt)?;
        shared.committed();
        drop(input);
        last_write = Instant::now();
        written += done_now;
        if written >= CHECKPOINT_AFTER {
            written = 0;
            store.nudge();
        }
        in_flight -= done_now;
        if ids_done {
            ids_open = false;
        }
        counters = step.counters;
        waiting = counters.waiting;
        if step.retry_pending {
            claim_after = last_write + FLUSH_EVERY;
        }
        if let Some(n) = step.control.max_workers {
            let n = (n.max(1) as usize).min(plan.node_workers);
            if n != workers {
                workers = n;
                let mut st = hub.lock();
                st.allowed = n;
                // Fewer workers: what they cannot start soon goes back.
                let surplus = (in_flight - release.len())
                    .saturating_sub(pipeline_depth(n, avg_entity_ms))
                    .min(st.queue.len());
                let keep = st.queue.len() - surplus;
                release.extend(st.queue.drain(keep..));
                drop(st);
                hub.workers.notify_all();
            }
        }
        match step.control.requested {
            Some(Request::Cancel) => {
                stop.get_or_insert(Stop::End(BatchStatus::Cancelled, None));
            }
            Some(Request::Pause) if !paused && stop.is_none() => {
                paused = true;
            }
            None if paused => {
                paused = false;
                status = BatchStatus::InProgress;
                patiently(env, bid, || store.set_run_status(me, status, None)).map_err(halt)?;
            }
            _ => {}
        }
        if let (Some(limit), None) = (plan.max_failures, &stop)
            && limit.passed(
                counters.failed,
                if ids_open {
                    (counters.total + ids_unstored).max(plan.estimated_total.unwrap_or(0))
                } else {
                    counters.total
                },
            )
        {
            // No count here: the entities in flight finish and may add to
            // it; the batch's row has the final one.
            stop = Some(Stop::End(
                BatchStatus::Failed,
                Some(format!(
                    "more entities failed than MAX_FAILURES={limit} allows; the batch stopped"
                )),
            ));
        }
        if !step.claimed.is_empty() && status == BatchStatus::GenerateIidList {
            status = BatchStatus::InProgress;
            patiently(env, bid, || store.set_run_status(me, status, None)).map_err(halt)?;
        }
        {
            let mut st = hub.lock();
            if stop.is_some() || paused {
                // Claimed but not started: released in the next step.
                release.extend(st.queue.drain(..));
                in_flight += step.claimed.len();
                release.extend(step.claimed);
            } else if !step.claimed.is_empty() {
                in_flight += step.claimed.len();
                st.queue.extend(step.claimed);
            }
            st.take = take_size(avg_entity_ms);
            if st.idle_workers > 0 && !st.queue.is_empty() {
                hub.workers.notify_all();
            }
        }
        if paused && status != BatchStatus::Paused {
            // After the take-back: once PAUSED shows, no entity starts.
            status = BatchStatus::Paused;
            patiently(env, bid, || store.set_run_status(me, status, None)).map_err(halt)?;
        }
        bar.update(&counters, ids_open);
        if last_sample.elapsed() >= SAMPLE_EVERY {
            last_sample = Instant::now();
            let done = counters.completed + counters.failed;
            patiently(env, bid, || store.sample_progress(me, done)).map_err(halt)?;
        }
        if last_store_check.elapsed() >= CONTROL_POLL {
            // A store deleted under the run takes its record with it: the
            // run must not end as if the record were safe.
            last_store_check = Instant::now();
            store.still_there().map_err(halt)?;
        }

        // Ended?
        if in_flight == 0 && release.is_empty() {
            if stop.is_none() && !ids_open && counters.waiting == 0 && counters.in_process > 0 {
                // Nothing in flight here, yet entities are IN_PROCESS: claims
                // that no live run holds. A batch never ends with entities
                // that never ran: they wait again, and this run takes them.
                counters = patiently(env, bid, || store.requeue_orphans(me)).map_err(halt)?;
                waiting = counters.waiting;
                continue;
            }
            let end = match stop.clone() {
                None if !ids_open && counters.waiting == 0 => {
                    Some(Stop::End(BatchStatus::Done, None))
                }
                end => end,
            };
            if let Some(end) = end {
                if matches!(end, Stop::End(BatchStatus::Cancelled, _)) {
                    let orphans = counters.in_process > 0;
                    patiently(env, bid, || store.cancel_waiting(me, orphans)).map_err(halt)?;
                } else if counters.in_process > 0 {
                    // FAILED or interrupted: claims nobody holds wait again.
                    patiently(env, bid, || store.requeue_orphans(me)).map_err(halt)?;
                }
                hub.close();
                // A producer still reading a cancelled or failed batch's
                // source stops at its next id, the hub being closed.
                drop(producer);
                let slowest = if fresh {
                    slowest.to_json()
                } else {
                    patiently(env, bid, || store.slowest(bid)).map_err(halt)?
                };
                return finish(env, plan, me, end, started, &bar, &slowest);
            }
        }
    }
}

/// One worker: takes entities from the queue (as many as `take`, and a
/// fair share of what is there), runs them, and hands their outcomes back
/// together.
fn worker(k: usize, hub: &Hub, shared: &Shared) {
    let mut batch: Vec<Claimed> = Vec::new();
    loop {
        {
            let mut st = hub.lock();
            while !st.closed
                && (k >= st.allowed
                    || st.queue.is_empty()
                    || shared.halt.load(Ordering::SeqCst)
                    || shared.lease_lapsed(Instant::now()))
            {
                // Only workers that may take entities count as idle: the
                // writer wakes them when it queues some. The others wait
                // for a BATCH_EDIT that allows them (or the end).
                let counted = k < st.allowed;
                st.idle_workers += usize::from(counted);
                st = hub.workers.wait(st).unwrap_or_else(|e| e.into_inner());
                st.idle_workers -= usize::from(counted);
            }
            if st.closed {
                return;
            }
            let share = st.queue.len().div_ceil(st.allowed.max(1));
            let n = st.take.min(share).max(1);
            batch.extend(st.queue.drain(..n));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut busy = Duration::ZERO;
        let mut failed = 0;
        let wall0 = chrono::Utc::now().timestamp_millis();
        let t0 = Instant::now();
        let mut taken = batch.drain(..);
        while let Some(c) = taken.next() {
            let s = Instant::now();
            if shared.halt.load(Ordering::SeqCst) || shared.lease_lapsed(s) {
                // The batch stops: what was not started goes back to the
                // queue, which the writer releases.
                let mut st = hub.lock();
                for c in std::iter::once(c).chain(taken.by_ref()).rev() {
                    st.queue.push_front(c);
                }
                hub.wake_writer(&mut st);
                break;
            }
            let result = shared.process(&c);
            let e = Instant::now();
            busy += e - s;
            let start_ms = wall0 + (s - t0).as_millis() as i64;
            let end_ms = wall0 + (e - t0).as_millis() as i64;
            let o = outcome(shared, c, start_ms, end_ms, e - s, result);
            if shared.count_failures && matches!(o.state, OutcomeState::Failed { .. }) {
                failed += 1;
                if shared.failure_budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
                    shared.halt.store(true, Ordering::SeqCst);
                }
            }
            outcomes.push(o);
            if failed > 0 {
                // MAX_FAILURES is set: a failure is handed in at once.
                hand_in(hub, &mut outcomes, &mut busy, &mut failed);
            }
        }
        drop(taken);
        hand_in(hub, &mut outcomes, &mut busy, &mut failed);
    }
}

/// Gives a worker's outcomes to the writer, and wakes it when they make
/// a step worth it (enough of them, or a failure that counts).
fn hand_in(hub: &Hub, outcomes: &mut Vec<Outcome>, busy: &mut Duration, failed: &mut usize) {
    if outcomes.is_empty() {
        return;
    }
    let mut st = hub.lock();
    if st.outcomes.is_empty() {
        st.outcomes_since = Some(Instant::now());
        st.outcomes = std::mem::take(outcomes);
    } else {
        st.outcomes.append(outcomes);
    }
    st.busy += std::mem::take(busy).as_secs_f64();
    st.failed_pending += std::mem::take(failed);
    if st.outcomes.len() >= st.wake_outcomes || st.failed_pending > 0 {
        hub.wake_writer(&mut st);
    }
}

/// Whether ids waiting in the hub are to be stored even if not all can be
/// claimed at once (the rest stored WAITING): they have waited long, or
/// the producer is about to wait while the queue is short (slow commands:
/// store the ids, the total shows). Not while the mean entity time is a
/// first guess, nor for fast commands, whose queue takes the ids as fast
/// as they are stored: a row stored WAITING costs a second write.
fn ids_press(st: &HubState, can_claim: bool, depth: usize, known: bool, now: Instant) -> bool {
    let hold = if can_claim { IDS_HOLD } else { FLUSH_EVERY };
    st.ids_since().is_some_and(|t| now - t >= hold)
        || (known && st.ids.len() >= ID_BUFFER / 2 && depth < IDS_BATCH)
}

/// How many entities to keep in flight (claimed: queued, running, or
/// finished and not yet written back): about [`QUEUE_MS`] of work per
/// worker, at least two per worker (one running, one next, so none idles
/// while a step commits), at most [`QUEUE_MAX`]. Fast commands (echo) get
/// long pipelines and few, large commits; slow ones (a 20 s script) stay
/// at two per worker, so a pause or a crash leaves little claimed work.
fn pipeline_depth(workers: usize, avg_entity_ms: f64) -> usize {
    let per_worker = (QUEUE_MS / avg_entity_ms.max(0.000_1)).ceil();
    let per_worker = if per_worker.is_finite() {
        (per_worker as usize).max(2)
    } else {
        QUEUE_MAX
    };
    workers
        .saturating_mul(per_worker)
        .clamp(workers * 2, QUEUE_MAX.max(workers * 2))
}

/// How many entities a worker takes at once: about [`TAKE_MS`] of work.
fn take_size(avg_entity_ms: f64) -> usize {
    let n = (TAKE_MS / avg_entity_ms.max(0.000_1)).ceil();
    if n.is_finite() {
        (n as usize).clamp(1, QUEUE_MAX)
    } else {
        QUEUE_MAX
    }
}

fn finish(
    env: &Env,
    plan: &Plan,
    me: RunRef,
    end: Stop,
    started: Instant,
    bar: &super::progress::Bar,
    slowest: &serde_json::Value,
) -> std::result::Result<Finished, Halt> {
    let store = env.store;
    let bid = me.bid;
    bar.finish();
    patiently(env, bid, || store.set_extra_stats(me, slowest)).map_err(halt)?;
    let mut seq = patiently(env, bid, || store.max_seq(bid)).map_err(halt)?;
    let done = patiently(env, bid, || {
        store.step(me, &mut seq, &mut StepInput::default())
    })
    .map_err(halt)?;
    let finished = done.counters.completed + done.counters.failed;
    patiently(env, bid, || store.sample_progress(me, finished)).map_err(halt)?;
    patiently(env, bid, || store.end_node(me)).map_err(halt)?;
    let c = done.counters;
    store.still_there().map_err(halt)?;
    let end = match end {
        Stop::Signal(signal) => {
            let note = format!("stopped by {}; BATCH_RETRY finishes it", signal.name());
            let note = note.as_str();
            patiently(env, bid, || store.leave_unfinished(me, note)).map_err(halt)?;
            RunEnd::Interrupted {
                signal,
                counters: c,
            }
        }
        Stop::End(status, error) => {
            let why = error.as_deref();
            patiently(env, bid, || store.set_run_status(me, status, why)).map_err(halt)?;
            if let Some(cmd) = &plan.on_done {
                // The batch is over: a SIGTERM need not wait for its hook
                // (it kills it, and says the batch had ended).
                crate::terminate::batch_ended();
                let _hook = crate::terminate::HookRunning::start(bid, status);
                on_done(cmd, bid, status, &c);
            }
            RunEnd::Ended {
                status,
                error,
                counters: c,
            }
        }
    };
    Ok(Finished {
        bid: bid.to_string(),
        execution_id: me.execution_id.to_string(),
        end,
        duration: started.elapsed(),
    })
}

/// The outcome of one entity, made on the worker (the writer only writes).
fn outcome(
    shared: &Shared,
    c: Claimed,
    start_ms: i64,
    end_ms: i64,
    elapsed: Duration,
    result: Result<Completed, (String, Option<serde_json::Value>)>,
) -> Outcome {
    let (result, state) = match result {
        Ok(done) => (
            Some(done.result),
            OutcomeState::Completed {
                added: done.added,
                updated: done.updated,
                unchanged: done.unchanged,
            },
        ),
        Err((error, result)) => {
            let result = result.map(|r| r.to_string());
            if c.attempts <= shared.max_retries {
                // RETRY_DELAY before the first retry, doubled on each further one.
                let factor = 1u32 << (c.attempts - 1).clamp(0, 20);
                let delay = shared.retry_delay.saturating_mul(factor);
                let at = end_ms.saturating_add(delay.as_millis().min(i64::MAX as u128) as i64);
                (
                    result,
                    OutcomeState::Retry {
                        error,
                        retry_at_ms: at,
                    },
                )
            } else {
                (result, OutcomeState::Failed { error })
            }
        }
    };
    Outcome {
        seq: c.seq,
        claim: c.claim,
        entity_id: c.entity_id,
        start_ms,
        end_ms,
        process_ms: elapsed.as_millis() as i64,
        result,
        state,
    }
}

/// A command's result: its JSON text, and the sync_instance flags.
struct Completed {
    result: String,
    added: bool,
    updated: bool,
    unchanged: bool,
}

impl Completed {
    fn from_json(v: serde_json::Value) -> Completed {
        let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_i64) == Some(1);
        Completed {
            added: flag("Added"),
            updated: flag("Updated"),
            unchanged: flag("Unchanged"),
            result: v.to_string(),
        }
    }
}

/// The set of ids seen so far: with `stored`, the ids an earlier run of
/// the batch stored (they are not stored again when the source is read
/// again).
fn seen_so_far(store: &dyn Store, bid: &str, stored: bool) -> Result<Seen, String> {
    let mut seen = Seen::new()?;
    if stored {
        let mut failed = None;
        store
            .stored_ids(bid, &mut |id| {
                if failed.is_none()
                    && let Err(e) = seen.stored(id)
                {
                    failed = Some(e);
                }
            })
            .map_err(|e| {
                format!(
                    "cannot read the ids already stored for the batch ({e}), to skip them as \
                     the source is read again"
                )
            })?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(seen)
}

/// Starts the thread that reads the source and hands each id, the first
/// time it comes (see [`crate::store::seen`]), to the writer; `seen` holds
/// the ids seen before, or why they could not be kept.
fn spawn_producer(
    plan: &Plan,
    home: &Path,
    seen: Result<Seen, String>,
    hub: Arc<Hub>,
) -> std::thread::JoinHandle<()> {
    let source = match &plan.source {
        EntitySource::Ids(ids) => Source::Ids(ids.clone()),
        EntitySource::Query {
            interface,
            sql,
            params,
            ..
        } => Source::Query(interface.clone(), sql.clone(), params.clone()),
        EntitySource::Fabric => Source::Fabric(home.to_path_buf(), plan.lu.clone()),
    };
    std::thread::Builder::new()
        .name("batchsh-ids".into())
        .spawn(move || {
            let seen = match seen {
                Ok(s) => s,
                Err(e) => {
                    let mut st = hub.lock();
                    st.ids_end = Some(Some(e));
                    hub.wake_writer(&mut st);
                    return;
                }
            };
            let mut feed = Feed {
                hub: &hub,
                seen,
                failed: None,
            };
            let mut send = |r: Result<String, source::IdError>| feed.push(r);
            let r: Result<(), String> = match source {
                Source::Ids(ids) => {
                    for id in ids {
                        if send(Ok(id)).is_break() {
                            break;
                        }
                    }
                    Ok(())
                }
                Source::Query(iface, sql, params) => source::connect(&iface)
                    .and_then(|conn| source::for_each_id(&conn, &sql, &params, &[], &mut send))
                    .map(|_| ())
                    .map_err(|e| {
                        format!("the source query failed on interface {}: {e}", iface.name)
                    }),
                Source::Fabric(home, lu) => crate::lu::LuStore::open(&home, &lu)
                    .and_then(|s| s.for_each_instance(|id| send(Ok(id))))
                    .map(|_| ())
                    .map_err(|e| format!("cannot read the LU store of {}: {e}", lu.name)),
            };
            let mut st = hub.lock();
            st.ids_end = Some(feed.failed.or(r.err()));
            hub.wake_writer(&mut st);
        })
        .expect("a thread for the id source")
}

/// The producer's side of the hub: checks each id, drops the ones seen
/// before, and hands each other one over at once (a source may pause for
/// long between two rows: an id held back would wait as long).
struct Feed<'a> {
    hub: &'a Hub,
    seen: Seen,
    /// The seen ids could not be kept: the batch cannot go on.
    failed: Option<String>,
}

impl Feed<'_> {
    fn push(&mut self, r: Result<String, source::IdError>) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        let id = match r.and_then(|id| source::check_id(&id).map(|()| id)) {
            Ok(id) => NewId::Ok(id),
            Err(e) => NewId::Bad(e.stand_in(), e.to_string()),
        };
        let first = match &id {
            NewId::Ok(text) => self.seen.first(text),
            NewId::Bad(stand_in, error) => self.seen.first_bad(stand_in, error),
        };
        match first {
            Ok(true) => {}
            Ok(false) => return Continue(()),
            Err(e) => {
                self.failed = Some(e);
                return Break(());
            }
        }
        let hub = self.hub;
        let mut st = hub.lock();
        while st.ids.len() >= ID_BUFFER && !st.closed {
            st.producer_waits = true;
            st = hub.producer.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.closed {
            return Break(());
        }
        st.push_id(id);
        if st.ids.len() >= st.wake_ids {
            hub.wake_writer(&mut st);
        }
        Continue(())
    }
}

enum Source {
    Ids(Vec<String>),
    Query(source::Interface, String, Vec<source::Param>),
    Fabric(std::path::PathBuf, crate::store::LuDef),
}

/// What every worker shares: the command, and a pool of the connections it
/// needs (each worker takes one, uses it, gives it back).
struct Shared {
    command: crate::ast::CommandKind,
    max_retries: i64,
    retry_delay: Duration,
    bid: String,
    lu: String,
    node: String,
    timeout: Option<Duration>,
    home: std::path::PathBuf,
    command_lu: Option<crate::store::LuDef>,
    command_lu_source: Option<source::Interface>,
    command_interface: Option<source::Interface>,
    lu_stores: Mutex<Vec<crate::lu::LuStore>>,
    sources: Mutex<Vec<rusqlite::Connection>>,
    /// `exec`'s program (or `sh`), found in `PATH` once for the run.
    program_path: Option<std::path::PathBuf>,
    /// MAX_FAILURES is set: workers count failures and hand them in at once.
    count_failures: bool,
    /// A MAX_FAILURES count less the failures stored before the run: the
    /// worker whose failure takes it below zero halts the others at once
    /// (the writer, which stops the batch, learns of it a commit later).
    failure_budget: AtomicI64,
    /// The batch stops: workers start nothing more.
    halt: AtomicBool,
    /// When the writer last committed a step, in milliseconds since
    /// `epoch`: see [`Shared::lease_lapsed`].
    last_commit_ms: AtomicI64,
    epoch: Instant,
    /// Half the dead-after time, in milliseconds.
    lease_ms: i64,
}

impl Shared {
    /// `failed_before`: the batch's FAILED entities before this run.
    fn new(plan: &Plan, home: &Path, bid: &str, node: &str, failed_before: i64) -> Shared {
        Shared {
            command: plan.command.clone(),
            max_retries: plan.max_retries,
            retry_delay: plan.retry_delay,
            bid: bid.to_string(),
            lu: plan.lu.name.clone(),
            node: node.to_string(),
            timeout: plan.entity_timeout,
            home: home.to_path_buf(),
            command_lu: plan.command_lu.clone(),
            command_lu_source: plan.command_lu_source.clone(),
            command_interface: plan.command_interface.clone(),
            lu_stores: Mutex::new(Vec::new()),
            sources: Mutex::new(Vec::new()),
            count_failures: plan.max_failures.is_some(),
            failure_budget: AtomicI64::new(match plan.max_failures {
                Some(FailureLimit::Count(n)) => n - failed_before,
                _ => i64::MAX,
            }),
            halt: AtomicBool::new(false),
            last_commit_ms: AtomicI64::new(0),
            epoch: Instant::now(),
            lease_ms: (crate::knobs::dead_after().as_millis() / 2) as i64,
            program_path: match &plan.command {
                crate::ast::CommandKind::Exec { program, .. } => command::resolve_program(program),
                crate::ast::CommandKind::Shell { .. } => command::resolve_program("sh"),
                _ => None,
            },
        }
    }

    /// The writer committed a step just now: the run still owns its batch.
    fn committed(&self) {
        let ms = self.epoch.elapsed().as_millis() as i64;
        self.last_commit_ms.store(ms, Ordering::SeqCst);
    }

    /// Whether the run's hold on its batch has gone unconfirmed for half
    /// the time after which other processes may judge it dead: the process
    /// stalled (SIGSTOP, a paused VM) or cannot write (a locked store). A
    /// worker then starts nothing until the writer's next step says the
    /// batch is still the run's: a run that was taken over while it
    /// stalled does not start, when it wakes up, entities the new owner
    /// may have completed meanwhile.
    fn lease_lapsed(&self, now: Instant) -> bool {
        let now = now.duration_since(self.epoch).as_millis() as i64;
        let limit = self.lease_ms;
        now - self.last_commit_ms.load(Ordering::SeqCst) > limit
    }

    fn process(&self, c: &Claimed) -> Result<Completed, (String, Option<serde_json::Value>)> {
        use crate::ast::CommandKind as K;
        match &self.command {
            // The same text as `command::run` gives ({"echo":"<id>"}),
            // without building a JSON value for it.
            K::Echo => Ok(Completed {
                result: format!(
                    "{{\"echo\":{}}}",
                    serde_json::to_string(&c.entity_id).unwrap_or_default()
                ),
                added: false,
                updated: false,
                unchanged: false,
            }),
            K::SyncInstance { .. } | K::DeleteInstance { .. } => {
                self.lu_command(c).map(Completed::from_json)
            }
            other => {
                let ctx = command::Context {
                    timeout: self.timeout,
                    ..command::Context::for_entity(&c.entity_id)
                };
                let ctx = command::Context {
                    bid: &self.bid,
                    lu: &self.lu,
                    node: &self.node,
                    program_path: self.program_path.as_deref(),
                    ..ctx
                };
                command::run(other, &ctx, self)
                    .map(Completed::from_json)
                    .map_err(|e| (e.to_string(), e.result()))
            }
        }
    }

    fn lu_command(
        &self,
        c: &Claimed,
    ) -> Result<serde_json::Value, (String, Option<serde_json::Value>)> {
        let fail = |m: String| (m, None);
        let lu = self
            .command_lu
            .as_ref()
            .ok_or_else(|| fail("no LU for the command".into()))?;
        let store = match self.lu_stores.lock().map(|mut v| v.pop()) {
            Ok(Some(s)) => s,
            _ => crate::lu::LuStore::open(&self.home, lu).map_err(|e| fail(e.to_string()))?,
        };
        let by = crate::lu::Entity {
            batch: &self.bid,
            seq: c.seq,
            again: c.attempts > 1,
        };
        let r = match &self.command {
            crate::ast::CommandKind::SyncInstance { .. } => {
                let iface = self
                    .command_lu_source
                    .as_ref()
                    .ok_or_else(|| fail(format!("LU {} has no interface", lu.name)))?;
                self.with_source(iface, |conn| {
                    store
                        .sync_within(lu, conn, &c.entity_id, Some(by), self.timeout)
                        .map(crate::lu::SyncOutcome::json)
                })
                .map_err(|e| fail(e.to_string()))?
            }
            _ => store
                .delete_within(lu, &c.entity_id, Some(by), self.timeout)
                .map(crate::lu::deleted_json),
        };
        if let Ok(mut v) = self.lu_stores.lock() {
            v.push(store);
        }
        r.map_err(|e| fail(e.to_string()))
    }
}

impl Connections for Shared {
    fn with_connection(
        &self,
        interface: &str,
        f: &mut dyn FnMut(&rusqlite::Connection) -> Result<usize, rusqlite::Error>,
    ) -> Result<usize, CommandError> {
        let iface = self
            .command_interface
            .as_ref()
            .ok_or_else(|| CommandError::Interface {
                interface: interface.to_string(),
                reason: "not resolved for this batch".into(),
            })?;
        self.with_source(iface, |conn| f(conn))
            .map_err(|e| CommandError::Interface {
                interface: interface.to_string(),
                reason: e.to_string(),
            })?
            .map_err(|e| CommandError::sql(interface, e))
    }
}

impl Shared {
    /// Runs `f` on a connection to the command's interface, taken from the
    /// run's pool (and given back), so an entity does not pay for opening
    /// the source (for a CSV interface, loading its files) every time. A
    /// batch's command uses one interface, so one pool serves it.
    fn with_source<T>(
        &self,
        iface: &source::Interface,
        f: impl FnOnce(&rusqlite::Connection) -> T,
    ) -> Result<T, source::SourceError> {
        let conn = match self.sources.lock().map(|mut v| v.pop()) {
            Ok(Some(c)) => c,
            _ => source::connect(iface)?,
        };
        let r = f(&conn);
        if let Ok(mut v) = self.sources.lock() {
            v.push(conn);
        }
        Ok(r)
    }
}

/// Runs the batch's `ON_DONE` hook to its end. Its output goes to stderr,
/// so stdout keeps only the data asked for (one JSON document per
/// statement); a hook that fails or cannot start is reported there too.
/// Either way the batch's outcome stands.
fn on_done(cmd: &str, bid: &str, status: BatchStatus, c: &crate::batch::Counters) {
    let mut hook = std::process::Command::new("sh");
    hook.arg("-c")
        .arg(cmd)
        .env("BID", bid)
        .env("STATUS", status.as_str())
        .env("TOTAL", c.total.to_string())
        .env("SUCCEEDED", c.completed.to_string())
        .env("FAILED", c.failed.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr());
    let ran = command::run_tracked(hook);
    match ran {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("warning: ON_DONE of batch {bid} ended with {s}; the batch is {status}"),
        Err(e) => {
            eprintln!("warning: ON_DONE of batch {bid} could not start: {e}; the batch is {status}")
        }
    }
}
