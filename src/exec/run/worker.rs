//! A run's workers: each takes claimed entities from the hub, runs their
//! command, and hands the outcomes back; what they share (the command, the
//! connections they need) is [`Shared`].

use super::*;

/// One worker: takes entities from the queue (as many as `take`, and a
/// fair share of what is there), runs them, and hands their outcomes back
/// together. A `pipe` command's process is the worker's own, started when
/// it first needs it and ended when the worker leaves.
pub(super) fn worker(k: usize, hub: &Hub, shared: &Shared) {
    let mut pipe = shared.pipe();
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
        let mut tally = Tally::new();
        match pipe.as_mut() {
            Some(pipe) => run_piped(hub, shared, pipe, &mut batch, &mut tally),
            None => run_each(hub, shared, &mut batch, &mut tally),
        }
        tally.hand_in(hub);
    }
}

/// Runs the taken entities one by one.
fn run_each(hub: &Hub, shared: &Shared, batch: &mut Vec<Claimed>, tally: &mut Tally) {
    let mut taken = batch.drain(..);
    while let Some(c) = taken.next() {
        let slot = shared.slot();
        if shared.stops() {
            give_back(hub, std::iter::once(c).chain(taken.by_ref()));
            break;
        }
        let s = Instant::now();
        let result = shared.process(&c);
        drop(slot);
        tally.record(hub, shared, c, s, Instant::now(), result);
    }
}

/// Runs the taken entities through the worker's pipe, a window of them at
/// a time: their ids are written together, then their answers read.
fn run_piped(
    hub: &Hub,
    shared: &Shared,
    pipe: &mut command::Pipe,
    batch: &mut Vec<Claimed>,
    tally: &mut Tally,
) {
    let mut taken = batch.drain(..).peekable();
    while taken.peek().is_some() {
        let slot = shared.slot();
        if shared.stops() {
            give_back(hub, taken.by_ref());
            break;
        }
        let window: Vec<Claimed> = taken.by_ref().take(pipe.window()).collect();
        let ids: Vec<&str> = window.iter().map(|c| c.entity_id.as_str()).collect();
        let answers = pipe.ask(&ids);
        drop(slot);
        for (c, a) in window.into_iter().zip(answers) {
            let result = a
                .result
                .map(|reply| match reply {
                    command::pipe::Reply::Object(v) => Completed::from_json(v),
                    line => Completed::text(line.json_text()),
                })
                .map_err(|e| (e.to_string(), e.result()));
            tally.record(hub, shared, c, a.began, a.ended, result);
        }
    }
}

/// The batch stops: what a worker took and did not start goes back to the
/// queue, which the writer releases.
fn give_back(hub: &Hub, items: impl DoubleEndedIterator<Item = Claimed>) {
    let mut st = hub.lock();
    for c in items.rev() {
        st.queue.push_front(c);
    }
    hub.wake_writer(&mut st);
}

/// A worker's outcomes not handed in yet, and what they took.
struct Tally {
    outcomes: Vec<Outcome>,
    busy: Duration,
    failed: usize,
    /// The wall clock and the monotonic clock at one moment, to turn an
    /// entity's instants into times.
    wall0: i64,
    t0: Instant,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            outcomes: Vec::new(),
            busy: Duration::ZERO,
            failed: 0,
            wall0: chrono::Utc::now().timestamp_millis(),
            t0: Instant::now(),
        }
    }

    /// The outcome of entity `c`, run from `s` to `e`. A failure is
    /// counted against MAX_FAILURES, and then handed in at once.
    fn record(
        &mut self,
        hub: &Hub,
        shared: &Shared,
        c: Claimed,
        s: Instant,
        e: Instant,
        result: Result<Completed, (String, Option<serde_json::Value>)>,
    ) {
        let elapsed = e.saturating_duration_since(s);
        self.busy += elapsed;
        let ms = |t: Instant| {
            let since = t.saturating_duration_since(self.t0).as_millis() as i64;
            self.wall0 + since
        };
        let o = outcome(shared, c, ms(s), ms(e), elapsed, result);
        if shared.count_failures && matches!(o.state, OutcomeState::Failed { .. }) {
            self.failed += 1;
            if shared.failure_budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
                shared.halt.store(true, Ordering::SeqCst);
            }
        }
        self.outcomes.push(o);
        if self.failed > 0 {
            // MAX_FAILURES is set: a failure is handed in at once.
            self.hand_in(hub);
        }
    }

    fn hand_in(&mut self, hub: &Hub) {
        hand_in(hub, &mut self.outcomes, &mut self.busy, &mut self.failed);
    }
}

/// Gives a worker's outcomes to the writer, and wakes it when they make
/// a step worth it (enough of them, or a failure that counts).
pub(super) fn hand_in(
    hub: &Hub,
    outcomes: &mut Vec<Outcome>,
    busy: &mut Duration,
    failed: &mut usize,
) {
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

/// The outcome of one entity, made on the worker (the writer only writes).
pub(super) fn outcome(
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
pub(super) struct Completed {
    pub(super) result: String,
    pub(super) added: bool,
    pub(super) updated: bool,
    pub(super) unchanged: bool,
}

impl Completed {
    /// A result that is only its JSON text.
    pub(super) fn text(result: String) -> Completed {
        Completed {
            result,
            added: false,
            updated: false,
            unchanged: false,
        }
    }

    pub(super) fn from_json(v: serde_json::Value) -> Completed {
        let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_i64) == Some(1);
        Completed {
            added: flag("Added"),
            updated: flag("Updated"),
            unchanged: flag("Unchanged"),
            result: v.to_string(),
        }
    }
}

/// What every worker shares: the command, and a pool of the connections it
/// needs (each worker takes one, uses it, gives it back).
pub(super) struct Shared {
    pub(super) command: crate::ast::CommandKind,
    pub(super) max_retries: i64,
    pub(super) retry_delay: Duration,
    pub(super) bid: String,
    pub(super) lu: String,
    pub(super) node: String,
    pub(super) timeout: Option<Duration>,
    pub(super) output_limit: usize,
    /// `SHOW_OUTPUT`: where the processes' lines go as they come, when the
    /// run's events sink shows them.
    pub(super) lines: Option<crate::batch::LineSink>,
    pub(super) home: std::path::PathBuf,
    pub(super) command_lu: Option<crate::store::LuDef>,
    /// Connections to the interface the command reads (`sql`) or syncs
    /// from (`sync_instance`): a batch's command uses one interface.
    pub(super) pool: Option<source::Pool>,
    pub(super) lu_stores: Mutex<Vec<crate::lu::LuStore>>,
    /// `exec`'s program (or `sh`), found in `PATH` once for the run, or
    /// a relative path (`./export_one.sh`) made absolute in `workdir`.
    pub(super) program_path: Option<std::path::PathBuf>,
    /// Where `exec` and `shell` run: the batch's working directory
    /// (SPEC §5), `None` for a batch that did not record one.
    pub(super) workdir: Option<std::path::PathBuf>,
    /// MAX_FAILURES is set: workers count failures and hand them in at once.
    pub(super) count_failures: bool,
    /// A MAX_FAILURES count less the failures stored before the run: the
    /// worker whose failure takes it below zero halts the others at once
    /// (the writer, which stops the batch, learns of it a commit later).
    pub(super) failure_budget: AtomicI64,
    /// The batch stops: workers start nothing more.
    pub(super) halt: AtomicBool,
    /// When the writer last committed a step, in milliseconds since
    /// `epoch`: see [`Shared::lease_lapsed`].
    pub(super) last_commit_ms: AtomicI64,
    pub(super) epoch: Instant,
    /// Half the dead-after time, in milliseconds.
    pub(super) lease_ms: i64,
    /// Slots shared with the other batches of the process: a worker holds
    /// one while its entity runs.
    pub(super) permits: Option<Arc<crate::exec::Permits>>,
    /// The processes of a `pipe` command, one per worker: the run ends
    /// them all ([`command::Pipes::end_all`]).
    pub(super) pipes: Arc<command::Pipes>,
    /// The window variables of a named batch's run (SPEC §9), empty for a
    /// batch without NAME.
    pub(super) window: Vec<(String, String)>,
}

impl Shared {
    /// `failed_before`: the batch's FAILED entities before this run;
    /// `workdir`: the batch's working directory.
    pub(super) fn new(
        plan: &Plan,
        env: &Env,
        bid: &str,
        failed_before: i64,
        workdir: Option<std::path::PathBuf>,
        window: Vec<(String, String)>,
    ) -> Shared {
        Shared {
            window,
            command: plan.command.clone(),
            max_retries: plan.max_retries,
            retry_delay: plan.retry_delay,
            bid: bid.to_string(),
            lu: plan.lu.clone(),
            node: env.node.to_string(),
            timeout: plan.entity_timeout,
            output_limit: plan.output_limit,
            lines: plan.show_output.then(|| env.events.lines()).flatten(),
            home: env.home.to_path_buf(),
            permits: env.permits.cloned(),
            pipes: Arc::default(),
            command_lu: plan.command_lu.clone(),
            pool: plan
                .command_interface
                .clone()
                .or_else(|| plan.command_lu_source.clone())
                .map(source::Pool::new),
            lu_stores: Mutex::new(Vec::new()),
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
                // Which file `./x.sh` is must not depend on whether the
                // child changes folder before or after it is looked up.
                crate::ast::CommandKind::Exec { program, .. }
                | crate::ast::CommandKind::Pipe { program, .. }
                    if program.contains('/') && !program.starts_with('/') =>
                {
                    workdir.as_ref().map(|d| d.join(program))
                }
                crate::ast::CommandKind::Exec { program, .. }
                | crate::ast::CommandKind::Pipe { program, .. } => {
                    command::resolve_program(program)
                }
                crate::ast::CommandKind::Shell { .. } => command::resolve_program("sh"),
                _ => None,
            },
            workdir,
        }
    }

    /// A slot to run an entity in, when the process shares them among its
    /// batches: waits for one while the batch goes on (`None` once it
    /// stops, which the caller then sees).
    pub(super) fn slot(&self) -> Option<crate::exec::permits::Permit<'_>> {
        self.permits.as_ref().and_then(|p| {
            p.acquire(|| !self.halt.load(Ordering::SeqCst) && !self.lease_lapsed(Instant::now()))
        })
    }

    /// The writer committed a step just now: the run still owns its batch.
    pub(super) fn committed(&self) {
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
    pub(super) fn lease_lapsed(&self, now: Instant) -> bool {
        let now = now.duration_since(self.epoch).as_millis() as i64;
        let limit = self.lease_ms;
        now - self.last_commit_ms.load(Ordering::SeqCst) > limit
    }

    /// Whether a worker starts nothing more: the batch stops, or the run's
    /// hold on it lapsed.
    fn stops(&self) -> bool {
        self.halt.load(Ordering::SeqCst) || self.lease_lapsed(Instant::now())
    }

    /// What a command run for `entity_id` knows of its batch.
    fn context<'a>(&'a self, entity_id: &'a str) -> command::Context<'a> {
        command::Context {
            bid: &self.bid,
            lu: &self.lu,
            node: &self.node,
            timeout: self.timeout,
            output_limit: self.output_limit,
            lines: self.lines.as_ref(),
            program_path: self.program_path.as_deref(),
            cwd: self.workdir.as_deref(),
            window: &self.window,
            ..command::Context::for_entity(entity_id)
        }
    }

    /// A worker's pipe, for a `pipe` command (its process starts when the
    /// worker first asks it).
    fn pipe(&self) -> Option<command::Pipe> {
        let crate::ast::CommandKind::Pipe { program, args } = &self.command else {
            return None;
        };
        let window = crate::knobs::pipe_window().unwrap_or(command::pipe::WINDOW);
        Some(command::Pipe::new(
            program,
            args,
            &self.context(""),
            window,
            Some(Arc::clone(&self.pipes)),
        ))
    }

    pub(super) fn process(
        &self,
        c: &Claimed,
    ) -> Result<Completed, (String, Option<serde_json::Value>)> {
        use crate::ast::CommandKind as K;
        match &self.command {
            // The same text as `command::run` gives ({"echo":"<id>"}),
            // without building a JSON value for it.
            K::Echo => Ok(Completed::text(format!(
                "{{\"echo\":{}}}",
                serde_json::to_string(&c.entity_id).unwrap_or_default()
            ))),
            K::SyncInstance { .. } | K::DeleteInstance { .. } => {
                self.lu_command(c).map(Completed::from_json)
            }
            other => command::run(other, &self.context(&c.entity_id), &self.pool)
                .map(Completed::from_json)
                .map_err(|e| (e.to_string(), e.result())),
        }
    }

    pub(super) fn lu_command(
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
                let pool = self
                    .pool
                    .as_ref()
                    .ok_or_else(|| fail(format!("LU {} has no interface", lu.name)))?;
                pool.with(|conn| {
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
