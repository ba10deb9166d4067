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
//!   the claimed ones in the queue.
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

use decide::*;
use end::{finish, taken_over};
use hook::on_done;
use hub::*;
use pacing::*;
use patience::*;
use producer::*;
use worker::*;

use super::plan::{EntitySource, FailureLimit, Plan};
use crate::batch::{BatchStatus, Event, Events, RunEnd, StopSignal, StopToken};
use crate::command;
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
    /// Where the run's events go (the progress bar, its warnings).
    pub events: &'a dyn Events,
    /// How the run is asked to stop from outside (Ctrl-C, a stop signal).
    pub stop: &'a Arc<StopToken>,
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

/// How often the run samples its progress (for BATCH_SUMMARY's pace).
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Entities written between two nudges of the checkpointer (a fast batch
/// writes this many in a few milliseconds; a slow one leaves its
/// checkpoints to the writer's automatic ones).
const CHECKPOINT_AFTER: usize = 4096;

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
                        env.events.event(Event::NotMarkedFailed { bid });
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

    let feed = if need_ids { Feed::Open } else { Feed::Ended };
    let hub = Arc::new(Hub::new(plan.workers, feed));
    let _close = CloseOnDrop(Arc::clone(&hub));
    let mut next_seq = patiently(env, bid, || store.max_seq(bid)).map_err(halt)?;
    // Ids stored by an earlier run of the batch are not stored again.
    let producer = need_ids.then(|| {
        // Ids stored by an earlier run of the batch are not stored again:
        // the producer reads them through a store handle of its own.
        let stored = if next_seq > 0 {
            store
                .reopen()
                .map(|store| {
                    Some(Stored {
                        store,
                        bid: bid.to_string(),
                    })
                })
                .map_err(|e| e.to_string())
        } else {
            Ok(None)
        };
        spawn_producer(plan, env.home, stored, Arc::clone(&hub))
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
        if env.stop.cancelled() {
            stop.get_or_insert(Stop::End(BatchStatus::Cancelled, None));
        }
        if let Some(signal) = env.stop.signalled() {
            stop.get_or_insert(Stop::Signal(signal));
        }
        if stop.is_some() {
            // What workers have taken and not started goes back.
            shared.halt.store(true, Ordering::SeqCst);
        }
        let can_claim = may_claim(stop.is_some(), paused, plan.generate_first, ids_open);
        let depth = pipeline_depth(workers, avg_entity_ms);
        // The mean entity time is known (a guess before that).
        let known = seen >= 64 || started.elapsed() >= IDS_HOLD;

        // Wait until a step is worth it, then take what is to be written.
        let mut st = hub.lock();
        loop {
            let now = Instant::now();
            let signs = Signs {
                can_claim,
                depth,
                known,
                in_flight,
                release: release.len(),
                claim_in: (waiting > 0).then(|| claim_after.saturating_duration_since(now)),
                outcomes: st.outcomes.len(),
                outcomes_age: st.outcomes_since.map(|t| now - t),
                failed_pending: st.failed_pending,
                ids: st.ids.len(),
                ids_age: st.ids_since().map(|t| now - t),
                ids_open,
                feed_over: st.feed != Feed::Open,
                since_write: now - last_write,
                stopping: stop.is_some(),
                queued: st.queue.len(),
                stop_asked: env.stop.cancelled()
                    || (stop.is_none() && env.stop.signalled().is_some()),
            };
            if worth_a_step(&signs) {
                break;
            }
            let nap = nap(&signs);
            st.wake_outcomes = nap.wake_outcomes;
            st.wake_ids = nap.wake_ids;
            st.writer_waits = true;
            st = hub
                .writer
                .wait_timeout(st, nap.at_most)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            st.writer_waits = false;
        }
        let outcomes = std::mem::take(&mut st.outcomes);
        st.outcomes_since = None;
        st.failed_pending = 0;
        let busy = std::mem::take(&mut st.busy);
        seen += outcomes.len();
        avg_entity_ms = running_mean(avg_entity_ms, busy, outcomes.len());
        if stop.is_some() || paused {
            // Claimed but not started: nobody may start them now.
            release.extend(st.queue.drain(..));
        }
        // In flight after this step's outcomes and releases are written:
        // claims fill up to the depth.
        let kept = in_flight.saturating_sub(outcomes.len() + release.len());
        let depth = pipeline_depth(workers, avg_entity_ms);
        let claim = claim_size(can_claim, depth, kept, plan.chunk_size);
        // New ids: as many as can be claimed at once (stored WAITING and
        // claimed later, a row costs a second write), unless they press:
        // nothing claims now, or see [`ids_press`].
        let now = Instant::now();
        let ids_age = st.ids_since().map(|t| now - t);
        let press = !can_claim || ids_press(st.ids.len(), ids_age, can_claim, depth, known);
        let claimable_waiting = if waiting > 0 && now >= claim_after {
            waiting as usize
        } else {
            0
        };
        let n_ids = ids_to_store(st.ids.len(), claim, claimable_waiting, press);
        let new_ids = st.take_ids(n_ids);
        if n_ids > 0 && st.producer_waits {
            st.producer_waits = false;
            hub.producer.notify_one();
        }
        let mut ids_done = false;
        if st.ids.is_empty() && ids_open {
            match &st.feed {
                Feed::Open => {}
                Feed::Ended => ids_done = true,
                Feed::Failed(why) => {
                    ids_done = true;
                    stop.get_or_insert(Stop::End(BatchStatus::Failed, Some(why.clone())));
                }
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
                let kept = in_flight - release.len();
                let depth = pipeline_depth(n, avg_entity_ms);
                let keep = st.queue.len() - surplus(kept, depth, st.queue.len());
                release.extend(st.queue.drain(keep..));
                drop(st);
                hub.workers.notify_all();
            }
        }
        match heed(step.control.requested, paused, stop.is_some()) {
            Heed::Nothing => {}
            Heed::Cancel => {
                stop.get_or_insert(Stop::End(BatchStatus::Cancelled, None));
            }
            Heed::Pause => paused = true,
            Heed::Resume => {
                paused = false;
                status = BatchStatus::InProgress;
                patiently(env, bid, || store.set_run_status(me, status, None)).map_err(halt)?;
            }
        }
        if let (Some(limit), None) = (plan.max_failures, &stop)
            && limit.passed(
                counters.failed,
                failures_total(counters.total, ids_unstored, ids_open, plan.estimated_total),
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
        env.events.event(Event::Progress {
            counters: &counters,
            generating: ids_open,
        });
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

        match verdict(in_flight, release.len(), stop.as_ref(), ids_open, &counters) {
            Verdict::GoOn => {}
            Verdict::RequeueOrphans => {
                counters = patiently(env, bid, || store.requeue_orphans(me)).map_err(halt)?;
                waiting = counters.waiting;
            }
            Verdict::End(end, leftovers) => {
                match leftovers {
                    Leftovers::Nothing => {}
                    Leftovers::Cancel { orphans } => {
                        patiently(env, bid, || store.cancel_waiting(me, orphans)).map_err(halt)?;
                    }
                    Leftovers::Requeue => {
                        patiently(env, bid, || store.requeue_orphans(me)).map_err(halt)?;
                    }
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
                return finish(env, plan, me, end, started, &slowest);
            }
        }
    }
}
