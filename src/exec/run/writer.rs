//! The writer: the one thread of a run that writes to the store, and its
//! state ([`Run`]). Each turn of its loop goes through the same phases, in
//! order: heed the stop token, wait until a step is worth it, take the
//! step's input from the hub, write it, apply the requests it read, check
//! MAX_FAILURES, hand out the entities it claimed, report; then the
//! verdict says whether the run ends. The decisions themselves are pure
//! functions ([`super::decide`], [`super::pacing`]).

use super::*;

/// Entities written between two nudges of the checkpointer (a fast batch
/// writes this many in a few milliseconds; a slow one leaves its
/// checkpoints to the writer's automatic ones).
const CHECKPOINT_AFTER: usize = 4096;
/// How often the run samples its progress (for BATCH_SUMMARY's pace).
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// What holds for one turn of the loop, from the wait to the step: fixed
/// when the turn begins.
pub(super) struct Turn {
    /// The step may claim entities.
    can_claim: bool,
    /// The mean entity time is known (a guess before that).
    known: bool,
    /// Entities to keep in flight, as the turn begins.
    depth: usize,
    /// How long ids wait in the hub to be claimed as they are stored.
    hold: Duration,
}

/// The writer's state, from one turn of its loop to the next.
pub(super) struct Run<'a> {
    ctx: Ctx<'a>,
    parties: &'a Parties,
    hub: &'a Hub,
    shared: &'a Shared,
    status: BatchStatus,
    /// The batch's next entity number (the store advances it).
    next_seq: i64,
    /// Entities claimed and not yet written back (queued, running, or with
    /// their outcome in the hub).
    in_flight: usize,
    /// Claimed entities that nobody may start now (paused, stopping, fewer
    /// workers): released in the next step.
    release: Vec<Claimed>,
    /// Workers allowed to take entities (BATCH_EDIT changes it).
    workers: usize,
    /// The most entities in flight, and stored at one step: the store's
    /// [`step_entities`](crate::store::Store::step_entities).
    step_max: usize,
    /// Running mean of an entity's time, which sizes the queue; starts
    /// slow, so a batch of long commands never claims far ahead.
    avg_entity_ms: f64,
    /// Outcomes taken so far, and their commands' time together (s).
    seen: usize,
    busy_seen: f64,
    last_write: Instant,
    /// Entities written since the checkpointer was last nudged.
    written: usize,
    last_sample: Instant,
    last_store_check: Instant,
    /// Why the run stops, once it does.
    stop: Option<Stop>,
    paused: bool,
    /// The source is still giving ids (some may wait in the hub).
    ids_open: bool,
    /// The source was read, and the ids appended to the open batch are
    /// read now ([`Feed::Appending`]).
    appending: bool,
    /// Ids read and not stored yet, as of the last step: part of the
    /// total for MAX_FAILURES.
    unstored: i64,
    /// Stored WAITING entities, as of the last step; and until when not to
    /// look for them again, when the last claim found fewer than it asked
    /// for (they wait for their retry time).
    waiting: i64,
    claim_after: Instant,
    /// The batch's counters, as of the last step.
    counters: Counters,
    /// No entity had finished before this run: it sees every outcome, and
    /// keeps the slowest itself instead of reading every row at the end.
    fresh: bool,
    slowest: Slowest,
    /// The store tells this run when another node leaves the batch, or
    /// its owner stores ids ([`crate::store::Notice::Batch`]): an owner
    /// waiting for the other nodes' last entities ends the batch at once,
    /// and an idle helper claims the ids at once.
    hears_others: bool,
}

impl<'a> Run<'a> {
    /// The writer of a run whose `parties` have started. `fresh`: no entity
    /// of the batch had finished before. `hears_others`: the store tells
    /// what the other nodes do.
    pub(super) fn new(
        ctx: Ctx<'a>,
        parties: &'a Parties,
        status: BatchStatus,
        next_seq: i64,
        fresh: bool,
        hears_others: bool,
    ) -> Run<'a> {
        let now = Instant::now();
        Run {
            ctx,
            parties,
            hub: &parties.hub,
            shared: &parties.shared,
            status,
            next_seq,
            in_flight: 0,
            release: Vec::new(),
            workers: ctx.plan.workers,
            step_max: ctx.env.store.step_entities(),
            avg_entity_ms: 1000.0,
            seen: 0,
            busy_seen: 0.0,
            // The first turn reads the requests at once.
            last_write: now - CONTROL_POLL,
            written: 0,
            last_sample: now,
            last_store_check: now,
            stop: None,
            paused: false,
            ids_open: true,
            appending: false,
            unstored: 0,
            waiting: 0,
            claim_after: now,
            counters: Counters::default(),
            fresh,
            slowest: Slowest::default(),
            hears_others,
        }
    }

    /// Ctrl-C cancels the run, a stop signal interrupts it; once it stops,
    /// what workers have taken and not started goes back.
    pub(super) fn heed_stop_token(&mut self) {
        let token = self.ctx.env.stop;
        if token.cancelled() {
            self.stop
                .get_or_insert(Stop::End(BatchStatus::Cancelled, None));
        }
        if let Some(signal) = token.signalled() {
            self.stop.get_or_insert(Stop::Signal(signal));
        }
        if self.stop.is_some() {
            self.shared.halt.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the run looks at the store again soon (every
    /// [`HELPER_LOOK`]) though it knows of nothing to claim: it helps with a
    /// batch whose source another node reads (the ids it stores are to be
    /// claimed), or it owns a batch whose last entities other nodes run
    /// (their end is the batch's).
    fn looks_soon(&self) -> bool {
        let helps = self.ctx.roles.process && !self.ctx.roles.feed && self.ids_open;
        self.waiting == 0 && (helps || self.others_finish())
    }

    /// Whether the run, its owner, only waits for the last entities of the
    /// other nodes: nothing is left here, nothing waits, and they hold
    /// entities.
    fn others_finish(&self) -> bool {
        self.ctx.roles.coordinate
            && !self.ids_open
            && self.in_flight == 0
            && self.waiting == 0
            && self.counters.in_process > 0
    }

    /// Whether the run only waits for what other nodes do: its owner for
    /// their last entities ([`Run::others_finish`]), or a helper with
    /// nothing in hand for ids that the owner has not stored yet.
    fn waits_for_others(&self) -> bool {
        let idle_helper = !self.ctx.roles.feed
            && !self.ctx.roles.coordinate
            && self.ids_open
            && self.in_flight == 0
            && self.waiting == 0;
        idle_helper || self.others_finish()
    }

    /// What holds for this turn. Whether it may claim is decided here.
    pub(super) fn turn(&self) -> Turn {
        let plan = self.ctx.plan;
        let known = self.seen >= 64 || self.ctx.started.elapsed() >= IDS_HOLD;
        let depth = pipeline_depth(self.workers, self.avg_entity_ms, self.step_max);
        Turn {
            can_claim: self.ctx.roles.process
                && may_claim(
                    self.stop.is_some(),
                    self.paused,
                    plan.generate_first,
                    self.ids_open,
                ),
            known,
            hold: id_hold(
                plan.asynchronous,
                self.seen > 0,
                pipeline_depth(
                    self.workers,
                    self.busy_seen * 1000.0 / self.seen.max(1) as f64,
                    self.step_max,
                ),
            ),
            depth,
        }
    }

    /// What the writer sees now, for [`worth_a_step`] and [`nap`].
    fn signs(&self, st: &HubState, turn: &Turn, now: Instant) -> Signs {
        let token = self.ctx.env.stop;
        Signs {
            can_claim: turn.can_claim,
            depth: turn.depth,
            known: turn.known,
            hold: turn.hold,
            in_flight: self.in_flight,
            release: self.release.len(),
            claim_in: (self.waiting > 0 || self.looks_soon())
                .then(|| self.claim_after.saturating_duration_since(now)),
            outcomes: st.outcomes.len(),
            outcomes_age: st.outcomes_since.map(|t| now - t),
            failed_pending: st.failed_pending,
            ids: st.ids.len(),
            ids_age: st.ids_since().map(|t| now - t),
            ids_open: self.ids_open,
            feed_over: matches!(st.feed, Feed::Ended | Feed::Failed(_)),
            since_write: now - self.last_write,
            stopping: self.stop.is_some(),
            queued: st.queue.len(),
            stop_asked: token.cancelled() || (self.stop.is_none() && token.signalled().is_some()),
        }
    }

    /// Waits until a step is worth it, and returns the hub, locked, for
    /// [`Run::take_input`].
    pub(super) fn wait_for_step(&self, turn: &Turn) -> MutexGuard<'a, HubState> {
        let hub = self.hub;
        let mut st = hub.lock();
        loop {
            let signs = self.signs(&st, turn, Instant::now());
            if worth_a_step(&signs) {
                return st;
            }
            let nap = nap(&signs);
            if self.hears_others && self.waits_for_others() {
                // Nothing comes to the hub now; the store tells when one
                // of the other nodes leaves the batch (its last entities
                // written), or the owner stores ids: a step then, not at
                // the next look.
                drop(st);
                let bid = self.ctx.me.bid;
                let store = self.ctx.env.store;
                let told = store.await_notice(nap.at_most).iter().any(|b| b == bid);
                st = hub.lock();
                if told {
                    return st;
                }
                continue;
            }
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
    }

    /// Takes what the step writes from the hub: the outcomes, the entities
    /// nobody may start now, the new ids it stores; and how many it claims.
    /// The source's end is noticed here (a failed source stops the run).
    pub(super) fn take_input(
        &mut self,
        mut st: MutexGuard<'a, HubState>,
        turn: &Turn,
    ) -> StepInput {
        let outcomes = std::mem::take(&mut st.outcomes);
        st.outcomes_since = None;
        st.failed_pending = 0;
        let busy = std::mem::take(&mut st.busy);
        self.seen += outcomes.len();
        self.busy_seen += busy;
        self.avg_entity_ms = running_mean(self.avg_entity_ms, busy, outcomes.len());
        if self.stop.is_some() || self.paused {
            // Claimed but not started: nobody may start them now.
            self.release.extend(st.queue.drain(..));
        }
        // In flight after this step's outcomes and releases are written:
        // claims fill up to the depth.
        let kept = self
            .in_flight
            .saturating_sub(outcomes.len() + self.release.len());
        let depth = pipeline_depth(self.workers, self.avg_entity_ms, self.step_max);
        let claim = claim_size(turn.can_claim, depth, kept, self.ctx.plan.chunk_size);
        let now = Instant::now();
        let ids_age = st.ids_since().map(|t| now - t);
        let press =
            !turn.can_claim || ids_press(st.ids.len(), ids_age, turn.hold, depth, turn.known);
        let claimable_waiting = if self.waiting > 0 && now >= self.claim_after {
            self.waiting as usize
        } else {
            0
        };
        let shared = self.ctx.plan.asynchronous && self.ctx.env.store.keeps_chunks();
        let chunk = chunk_size(shared, turn.can_claim, depth, IDS_BATCH);
        let ahead = if self.ctx.roles.feed {
            chunks_ahead(chunk, self.waiting)
        } else {
            0
        };
        let n_ids = ids_to_store(
            st.ids.len(),
            claim,
            claimable_waiting,
            press,
            self.step_max,
            ahead,
        );
        let new_ids = st.take_ids(n_ids);
        if n_ids > 0 && st.producer_waits {
            st.producer_waits = false;
            self.hub.producer.notify_one();
        }
        // An open batch whose source is read waits for appends IN_PROGRESS,
        // even with nothing to claim.
        self.appending = st.feed == Feed::Appending;
        if self.ids_open && st.ids.is_empty() {
            // The source's last ids go in this step.
            match &st.feed {
                Feed::Open | Feed::Appending => {}
                Feed::Ended => self.ids_open = false,
                Feed::Failed(why) => {
                    self.ids_open = false;
                    let failed = Stop::End(BatchStatus::Failed, Some(why.clone()));
                    self.stop.get_or_insert(failed);
                }
            }
        }
        self.unstored = st.ids.len() as i64;
        drop(st);
        let stopping = self.stop.is_some();
        StepInput {
            new_ids,
            // Only the feeding node knows the source is read to its end.
            ids_complete: self.ctx.roles.feed && !self.ids_open && !stopping,
            outcomes,
            release: std::mem::take(&mut self.release),
            claim: if stopping { 0 } else { claim },
            helper: !self.ctx.roles.coordinate,
            chunk,
        }
    }

    /// Writes the step ([`BatchStore::step`](crate::store::BatchStore::step)):
    /// new ids, outcomes and releases in, claims out, in one transaction.
    pub(super) fn step(&mut self, mut input: StepInput) -> std::result::Result<StepResult, Halt> {
        if self.fresh {
            for o in &input.outcomes {
                self.slowest.offer(o);
            }
        }
        let done_now = input.outcomes.len() + input.release.len();
        // More ids stored than claimed: some wait for the other nodes.
        let for_others = self.ctx.plan.asynchronous && input.new_ids.len() > input.claim;
        if !input.outcomes.is_empty()
            && let Some(lu) = &self.shared.command_lu
        {
            // The LU data these entities wrote is on disk before their
            // outcomes are (power loss: SPEC §7).
            crate::lu::flush_log(self.ctx.env.home, &lu.name).map_err(ExecError::from)?;
        }
        let me = self.ctx.me;
        let next_seq = &mut self.next_seq;
        let step = self
            .ctx
            .patiently(|store| store.step(me, next_seq, &mut input))?;
        self.shared.committed();
        if for_others {
            // Idle helpers claim them at once, not at their next look.
            self.ctx.env.store.notify(Notice::Batch, me.bid);
        }
        drop(input);
        self.last_write = Instant::now();
        self.written += done_now;
        if self.written >= CHECKPOINT_AFTER {
            self.written = 0;
            self.ctx.env.store.nudge();
        }
        self.in_flight -= done_now;
        if !self.ctx.roles.feed {
            // Another node reads the source: the store says when it is read.
            self.ids_open = !step.ids_complete;
        }
        if !self.ctx.roles.coordinate && step.status.is_final() {
            // Its owner ended the batch: this node stops, and leaves once
            // what it holds is written back.
            self.stop.get_or_insert(Stop::End(step.status, None));
            self.shared.halt.store(true, Ordering::SeqCst);
        }
        self.counters = step.counters;
        self.waiting = step.counters.waiting;
        if step.retry_pending {
            self.claim_after = self.last_write + FLUSH_EVERY;
        }
        if self.looks_soon() {
            // Not only at the next control poll.
            self.claim_after = self.last_write + HELPER_LOOK;
        }
        Ok(step)
    }

    /// Applies what other processes asked at this step: BATCH_EDIT's
    /// workers, a pause, its end, a cancel.
    pub(super) fn apply(&mut self, control: &Control) -> std::result::Result<(), Halt> {
        if let Some(n) = control.max_workers {
            self.set_workers((n.max(1) as usize).min(self.ctx.plan.node_workers))?;
        }
        match heed(control.requested, self.paused, self.stop.is_some()) {
            Heed::Nothing => {}
            Heed::Cancel => {
                self.stop
                    .get_or_insert(Stop::End(BatchStatus::Cancelled, None));
            }
            // PAUSED is stored once the queue is taken back (`hand_out`).
            Heed::Pause => self.paused = true,
            Heed::Resume => {
                self.paused = false;
                self.set_status(BatchStatus::InProgress)?;
            }
        }
        Ok(())
    }

    fn set_workers(&mut self, n: usize) -> std::result::Result<(), Halt> {
        if n == self.workers {
            return Ok(());
        }
        if self.ctx.roles.process {
            self.parties.workers_up_to(n)?;
        }
        self.workers = n;
        // The node's row says how many it runs now (SHOW NODES).
        let node = node_info(self.ctx.env, self.ctx.me.worker, n);
        self.ctx.patiently(|store| store.register_node(&node))?;
        let mut st = self.hub.lock();
        st.allowed = n;
        // Fewer workers: what they cannot start soon goes back.
        let kept = self.in_flight - self.release.len();
        let keep = st.queue.len()
            - surplus(
                kept,
                pipeline_depth(n, self.avg_entity_ms, self.step_max),
                st.queue.len(),
            );
        self.release.extend(st.queue.drain(keep..));
        drop(st);
        self.hub.workers.notify_all();
        Ok(())
    }

    /// MAX_FAILURES passed: the run stops, FAILED.
    pub(super) fn check_failures(&mut self) {
        let plan = self.ctx.plan;
        let (Some(limit), None) = (plan.max_failures, &self.stop) else {
            return;
        };
        let c = &self.counters;
        let total = failures_total(c.total, self.unstored, self.ids_open, plan.estimated_total);
        if limit.passed(c.failed, total) {
            // No count here: the entities in flight finish and may add to
            // it; the batch's row has the final one.
            self.stop = Some(Stop::End(
                BatchStatus::Failed,
                Some(format!(
                    "more entities failed than MAX_FAILURES={limit} allows; the batch stopped"
                )),
            ));
        }
    }

    /// Puts the step's `claimed` entities in the workers' queue, or, when
    /// nobody may start them (paused, stopping), back for the next step.
    pub(super) fn hand_out(&mut self, claimed: Vec<Claimed>) -> std::result::Result<(), Halt> {
        // In progress once entities run: claimed here, or (an owner whose
        // AFFINITY leaves the processing to other nodes) finished there,
        // or every id stored (an open batch: its source read, it waits
        // for appends).
        let running = !claimed.is_empty()
            || self.appending
            || (self.ctx.roles.coordinate && (!self.ids_open || self.counters.finished() > 0));
        if running && self.status == BatchStatus::GenerateIidList {
            self.set_status(BatchStatus::InProgress)?;
        }
        let hub = self.hub;
        let mut st = hub.lock();
        self.in_flight += claimed.len();
        if self.stop.is_some() || self.paused {
            // Claimed but not started: released in the next step.
            self.release.extend(st.queue.drain(..));
            self.release.extend(claimed);
        } else if !claimed.is_empty() {
            st.queue.extend(claimed);
        }
        st.take = take_size(self.avg_entity_ms, self.step_max);
        if st.idle_workers > 0 && !st.queue.is_empty() {
            hub.workers.notify_all();
        }
        drop(st);
        if self.paused && self.status != BatchStatus::Paused {
            // After the take-back: once PAUSED shows, no entity starts.
            self.set_status(BatchStatus::Paused)?;
        }
        Ok(())
    }

    /// The progress event, a sample of the pace now and then, and a look
    /// that the store is still there; the owner takes back the claims of
    /// nodes that died, a helper leaves when the owner did.
    pub(super) fn report(&mut self) -> std::result::Result<(), Halt> {
        self.ctx.env.events.event(Event::Progress {
            bid: self.ctx.me.bid,
            counters: &self.counters,
            generating: self.ids_open,
            paused: self.status == BatchStatus::Paused,
        });
        let me = self.ctx.me;
        if self.last_sample.elapsed() >= SAMPLE_EVERY {
            self.last_sample = Instant::now();
            let done = self.counters.finished();
            self.ctx
                .patiently(|store| store.sample_progress(me, done))?;
        }
        if self.last_store_check.elapsed() >= CONTROL_POLL {
            // A store deleted under the run takes its record with it: the
            // run must not end as if the record were safe.
            self.last_store_check = Instant::now();
            self.ctx.patiently(|store| store.still_there())?;
            if self.ctx.roles.coordinate && self.counters.in_process > self.in_flight as i64 {
                // Other nodes hold claims: those of a node that died go
                // back now, not once nothing else waits (SPEC §7).
                if let Some(c) = self.ctx.patiently(|store| store.requeue_dead(me))? {
                    self.counters = c;
                    self.waiting = c.waiting;
                }
            }
            if !self.ctx.roles.coordinate && self.stop.is_none() {
                // A helper whose owner died leaves, so that a node can
                // take the batch over (its feeding and its end were the
                // owner's). The stop's content means nothing to a helper:
                // it leaves whatever it is.
                let state = self.ctx.patiently(|store| store.batch_state(me.bid))?;
                let alive = self.ctx.patiently(|store| {
                    crate::store::nodes::NodeRecord::owner_alive(store, &state)
                })?;
                if !alive {
                    self.stop = Some(Stop::Signal(crate::batch::StopSignal::Term));
                    self.shared.halt.store(true, Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }

    /// Whether the run ends: see [`verdict`].
    pub(super) fn verdict(&self) -> Verdict {
        verdict(
            self.ctx.roles.coordinate,
            self.in_flight,
            self.release.len(),
            self.stop.as_ref(),
            self.ids_open,
            &self.counters,
        )
    }

    /// Claims that no live run holds wait again, and this run takes them.
    pub(super) fn requeue_orphans(&mut self) -> std::result::Result<(), Halt> {
        let me = self.ctx.me;
        self.counters = self.ctx.patiently(|store| store.requeue_orphans(me))?;
        self.waiting = self.counters.waiting;
        Ok(())
    }

    /// A node that does not coordinate leaves the batch (see
    /// [`Verdict::Leave`]): its per-node row ends; the batch goes on.
    pub(super) fn leave(self) -> std::result::Result<Finished, Halt> {
        let ctx = self.ctx;
        let me = ctx.me;
        self.parties.close();
        ctx.env.events.event(Event::ProgressDone);
        ctx.patiently(|store| store.end_node(me))?;
        Ok(Finished {
            bid: me.bid.to_string(),
            execution_id: me.execution_id.to_string(),
            end: RunEnd::Left {
                counters: self.counters,
            },
            duration: ctx.started.elapsed(),
        })
    }

    /// Ends the run `how` the verdict said, with the entities it leaves.
    pub(super) fn end(
        self,
        how: Stop,
        leftovers: Leftovers,
    ) -> std::result::Result<Finished, Halt> {
        let ctx = self.ctx;
        let me = ctx.me;
        match leftovers {
            Leftovers::Nothing => {}
            Leftovers::Cancel { orphans } => {
                ctx.patiently(|store| store.cancel_waiting(me, orphans))?;
            }
            Leftovers::Requeue => {
                ctx.patiently(|store| store.requeue_orphans(me))?;
            }
        }
        // A producer still reading a cancelled or failed batch's source
        // stops at its next id, the hub being closed; the workers' pipe
        // processes end.
        self.parties.close();
        let slowest = if self.fresh {
            self.slowest.to_json()
        } else {
            ctx.patiently(|store| store.slowest(me.bid))?
        };
        finish(ctx, how, &slowest)
    }

    /// The batch's status, which its coordinator alone writes.
    fn set_status(&mut self, status: BatchStatus) -> std::result::Result<(), Halt> {
        self.status = status;
        if !self.ctx.roles.coordinate {
            return Ok(());
        }
        let me = self.ctx.me;
        self.ctx
            .patiently(|store| store.set_run_status(me, status, None))
    }
}
