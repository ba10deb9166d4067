//! The batch tables as the executor and the control statements use them:
//! what a run writes (fenced by its execution id, see [`RunRef`]), and
//! what other processes ask of a batch. [`BatchStore`] is the seam; SQLite
//! is one implementation (`super::sqlite`).

use super::row::Row;
use super::{Result, StoreError};
pub use crate::batch::Counters;
use crate::batch::{BatchStatus, EntityStatus, Request};

/// A run of a batch, as its writes name it: the batch, the run's
/// execution id, which is its fencing token (see the module doc), and its
/// node.
#[derive(Clone, Copy, Debug)]
pub struct RunRef<'a> {
    pub bid: &'a str,
    pub execution_id: &'a str,
    pub node: &'a str,
    /// The run's node's worker id (`super::nodes`), which its claims name.
    pub worker: &'a str,
}

impl RunRef<'_> {
    /// The refusal of this run's write, which the fence reads the batch
    /// for: its current execution is `execution_id`, its status `status`,
    /// and `dead` whether another node declared the run's node dead (it
    /// took its claims back). `None` when the write may go on. `owner`
    /// gives the batch's owner (node, pid), read only when another run
    /// holds the batch.
    pub fn fence(
        &self,
        execution_id: &str,
        dead: bool,
        status: &str,
        owner: impl FnOnce() -> (Option<String>, Option<i64>),
    ) -> Option<StoreError> {
        if execution_id == self.execution_id && !dead {
            return None;
        }
        // Refused for its node alone (found dead, the batch still under
        // the run's execution): who took its work is not known, and the
        // batch's owner may be the run itself.
        let (node, pid) = if execution_id == self.execution_id {
            (None, None)
        } else {
            owner()
        };
        Some(StoreError::TakenOver {
            bid: self.bid.to_string(),
            node,
            pid,
            status: status.to_string(),
        })
    }
}

/// The statuses of the entities that a retry runs again, besides the
/// IN_PROCESS ones it takes back: FAILED ones (but bad ids, which a retry
/// cannot make good), and, for an unfinished batch, CANCELLED ones too.
pub fn retried_statuses(finished: bool) -> &'static [EntityStatus] {
    if finished {
        &[EntityStatus::Failed]
    } else {
        &[EntityStatus::Failed, EntityStatus::Cancelled]
    }
}

/// Of `statuses`, those that `BATCH_PURGE` may delete batches of: the
/// final ones, whatever the caller asked.
pub fn purged_statuses(statuses: &[BatchStatus]) -> Vec<&'static str> {
    statuses
        .iter()
        .filter(|s| s.is_final())
        .map(|s| s.as_str())
        .collect()
}

/// The counters of the entities counted by status (`counts`: statuses
/// with how many entities have them, added up), as a recount finds them; added,
/// updated and unchanged are left to the caller.
pub fn counters_by_status<E>(
    counts: impl IntoIterator<Item = std::result::Result<(EntityStatus, i64), E>>,
) -> std::result::Result<Counters, E> {
    let mut c = Counters::default();
    for count in counts {
        let (status, n) = count?;
        match status {
            EntityStatus::Waiting => c.waiting += n,
            EntityStatus::InProcess => c.in_process += n,
            EntityStatus::Completed => c.completed += n,
            EntityStatus::Failed => c.failed += n,
            EntityStatus::Cancelled => c.cancelled += n,
        }
    }
    c.total = c.waiting + c.in_process + c.completed + c.failed + c.cancelled;
    Ok(c)
}

/// A new batch, as `BATCH` creates it.
pub struct NewBatch<'a> {
    pub bid: &'a str,
    pub command: &'a str,
    pub lu: &'a str,
    pub fabric_command: &'a str,
    pub source: &'a serde_json::Value,
    pub arguments: &'a serde_json::Value,
    pub execution_id: &'a str,
    pub node: &'a str,
    pub estimated_total: Option<i64>,
    pub max_workers: Option<i64>,
    /// An asynchronous batch (`ASYNC=true`): it waits for a worker to take
    /// its job (`WAITING_FOR_JOB`, no owner), instead of being owned by
    /// the creating process from its first moment (`NEW`).
    pub queued: bool,
    /// Where it may run (AFFINITY, JOB_AFFINITY, `@DC`, MAX_NODES).
    pub placement: &'a crate::batch::Placement,
    /// `OPEN=true`: the batch takes `BATCH_APPEND` until `BATCH_WAITOFF`
    /// ([`super::appends`]).
    pub open: bool,
    /// The creating process's working directory: `exec`, `shell` and
    /// `pipe` run there, whoever runs the batch (SPEC §5).
    pub workdir: Option<&'a str>,
    /// The ids of a FROM STDIN / FROM FILE batch, as
    /// [`crate::source::lines::to_stored`] gives them (at least one part,
    /// empty when there are no ids); stored with the batch, read back by
    /// [`BatchStore::batch_lines`]. `None` for every other source.
    pub lines: Option<&'a [Vec<u8>]>,
    /// `NAME=...`: the batch is a run of a series, opened with it; while a
    /// run of that series is open, nothing is stored and the creation
    /// fails with [`super::StoreError::SeriesRunOpen`].
    pub series: Option<&'a super::series::BatchRun<'a>>,
}

impl NewBatch<'_> {
    /// Its status as it is created: the creating process owns the batch
    /// from its first moment (`NEW`), so that a twin statement checking
    /// now sees it running, not interrupted; an asynchronous one waits for
    /// a worker, unowned (`WAITING_FOR_JOB`).
    pub fn first_status(&self) -> BatchStatus {
        if self.queued {
            BatchStatus::WaitingForJob
        } else {
            BatchStatus::New
        }
    }

    /// Its placement as the store keeps it: JSON.
    pub fn stored_placement(&self) -> String {
        serde_json::to_string(self.placement).unwrap_or_else(|_| "{}".into())
    }

    /// The `AFFINITY` of its job (an asynchronous batch's): the nodes its
    /// `JOB_AFFINITY` names, comma-separated; none when it names none.
    pub fn job_affinity(&self) -> Option<String> {
        Some(self.placement.job_affinity.join(",")).filter(|a| !a.is_empty())
    }

    /// The LUs whose data the batch uses (see
    /// [`BatchStore::take_ownership`]), as its stored `lu`,
    /// `fabric_command` and `source` say: its target, when its ids come
    /// from the LU, and the LU its command writes.
    pub fn lus_used<'a>(
        lu: &'a str,
        fabric_command: &'a str,
        source: &str,
    ) -> impl Iterator<Item = &'a str> {
        let target = super::catalog::source_uses_lu(source).then_some(lu);
        target
            .into_iter()
            .chain(super::catalog::command_lu(fabric_command))
    }
}

/// The note of the event of a batch paused while no process ran it.
pub const PAUSED_UNOWNED_NOTE: &str = "paused while not running";

/// The note of the event of `BATCH_EDIT MAX_WORKERS_PER_NODE=n`.
pub fn max_workers_note(n: i64) -> String {
    format!("BATCH_EDIT MAX_WORKERS_PER_NODE={n}")
}

/// The refusal of a retry of batch `bid` while `other`, with its command,
/// is active.
pub fn twin_active(bid: &str, other: String) -> StoreError {
    StoreError::TwinActive {
        bid: bid.to_string(),
        other,
    }
}

/// An id from the source: a usable id, or one that fails as it arrives
/// (NULL, empty, not UTF-8, too long): `(text to store, error)`.
pub enum NewId {
    Ok(String),
    Bad(String, String),
}

/// What happened to one claimed entity. Times are milliseconds since the
/// Unix epoch; they are written as RFC 3339 text, like every time in the
/// store, but formatted here once per distinct millisecond, not per entity.
pub struct Outcome {
    pub seq: i64,
    pub entity_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub process_ms: i64,
    pub result: Option<String>,
    pub state: OutcomeState,
    /// As in [`Claimed::claim`].
    pub claim: Option<i64>,
}

pub enum OutcomeState {
    Completed {
        added: bool,
        updated: bool,
        unchanged: bool,
    },
    Failed {
        error: String,
    },
    /// Failed, but to be tried again at `retry_at_ms`.
    Retry {
        error: String,
        retry_at_ms: i64,
    },
}

/// An entity handed to a worker.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub seq: i64,
    pub entity_id: String,
    pub attempts: i64,
    /// Claimed as it arrived, so stored in the `batch_claims` row of this
    /// first sequence number, not yet in a row of its own (its outcome, or
    /// its release, writes that row).
    pub claim: Option<i64>,
}

/// What one [`BatchStore::step`] writes, and how many entities it may claim.
#[derive(Default)]
pub struct StepInput {
    /// New ids from the source, in order. Ids are stored as they come; as
    /// many as `claim` leaves room for (after the WAITING rows already
    /// stored, which go first) are stored claimed (IN_PROCESS) at once,
    /// which saves rewriting their row a second time.
    pub new_ids: Vec<NewId>,
    /// The source is exhausted and every id is in `new_ids` or stored.
    pub ids_complete: bool,
    pub outcomes: Vec<Outcome>,
    /// Entities this process claimed but never started (the batch was
    /// paused or stopped): back to WAITING, as if never claimed.
    pub release: Vec<Claimed>,
    /// How many entities to claim.
    pub claim: usize,
    /// The run helps the batch's owner (it processes only): it beats its
    /// own node's heartbeat, not the batch's, which tells whether the
    /// owner lives.
    pub helper: bool,
    /// On a store that keeps chunks ([`BatchStore::keeps_chunks`]), the
    /// good new ids beyond those claimed as they arrive are stored in
    /// chunks of this many, WAITING, each claimed whole by the next node
    /// that claims (one row written and one read for them all, where a
    /// WAITING row per id costs each id two more writes). 0, or another
    /// store: they are stored as WAITING rows.
    pub chunk: usize,
}

/// What other processes asked of the batch, read at every step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Control {
    pub requested: Option<Request>,
    pub max_workers: Option<i64>,
}

#[derive(Debug)]
pub struct StepResult {
    pub claimed: Vec<Claimed>,
    pub control: Control,
    pub counters: Counters,
    /// Fewer entities than asked for could be claimed while WAITING ones
    /// remain: those wait for their retry time.
    pub retry_pending: bool,
    /// Every id of the batch is stored: its source was read to its end.
    pub ids_complete: bool,
    /// The batch's status: once it is final, a step claims nothing.
    pub status: BatchStatus,
}

/// The 10 slowest entities among outcomes seen one by one, ordered as
/// [`BatchStore::slowest`] orders the rows (longest first, then by sequence):
/// the same list, when every finished entity of the batch went through it.
#[derive(Default)]
pub struct Slowest {
    /// (process_time_ms, seq, entity id, status, result), slowest first.
    top: Vec<(i64, i64, String, EntityStatus, Option<String>)>,
}

impl Slowest {
    const KEEP: usize = 10;

    /// Takes note of a final outcome (a retry is not one).
    pub fn offer(&mut self, o: &Outcome) {
        let status = match o.state {
            OutcomeState::Completed { .. } => EntityStatus::Completed,
            OutcomeState::Failed { .. } => EntityStatus::Failed,
            OutcomeState::Retry { .. } => return,
        };
        let before = |t: &(i64, i64, String, EntityStatus, Option<String>)| {
            (o.process_ms, std::cmp::Reverse(o.seq)) > (t.0, std::cmp::Reverse(t.1))
        };
        if self.top.len() == Self::KEEP && !self.top.last().is_some_and(before) {
            return;
        }
        let at = self.top.iter().position(before).unwrap_or(self.top.len());
        self.top.insert(
            at,
            (
                o.process_ms,
                o.seq,
                o.entity_id.clone(),
                status,
                o.result.clone(),
            ),
        );
        self.top.truncate(Self::KEEP);
    }

    pub fn to_json(&self) -> serde_json::Value {
        let rows = self.top.iter().map(|(ms, _, id, status, result)| {
            slowest_row(id, *ms, status.as_str(), result.as_deref())
        });
        slowest_json(rows.collect())
    }
}

/// One of the slowest entities in Fabric's `extra_stats` shape.
pub fn slowest_row(
    entity_id: &str,
    process_ms: i64,
    status: &str,
    result: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "entityId": entity_id,
        "processTimeMS": process_ms,
        "status": status,
        "result": result,
    })
}

/// The slowest entities ([`slowest_row`]), slowest first, in Fabric's
/// `extra_stats` shape.
pub fn slowest_json(rows: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "slowestProcessed": rows })
}

/// The columns of `batches` that [`BatchStore::batch_state`] reads.
#[derive(Clone, Debug)]
pub struct BatchState {
    pub status: BatchStatus,
    pub execution_id: String,
    pub ids_complete: bool,
    pub owner_node: Option<String>,
    pub owner_pid: Option<i64>,
    pub heartbeat_at: Option<String>,
    pub command: String,
    pub requested: Option<Request>,
    /// The worker id of the owner's run (its node, `super::nodes`), once
    /// the run has started.
    pub owner_worker: Option<String>,
}

impl BatchState {
    /// Whether the process that owns the batch is alive ([`crate::owner::alive`]).
    pub fn owner_alive(&self) -> bool {
        crate::owner::alive(
            self.owner_node.as_deref(),
            self.owner_pid,
            self.heartbeat_at.as_deref(),
        )
    }
}

/// An id a batch has stored already: a good one, or a bad id's stand-in
/// with its error (a bad id fails as it arrives, see [`NewId::Bad`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredId<'a> {
    Good(&'a str),
    Bad { stand_in: &'a str, error: &'a str },
}

/// A finished batch that `BATCH_PURGE` may delete, as
/// [`BatchStore::purgeable`] found it. [`BatchStore::purge_batch`] deletes
/// it only if it is still as seen here: a `BATCH_RETRY` that started it
/// again meanwhile (a new execution id, a new end) keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purgeable {
    pub bid: String,
    /// The number that keys its entity rows ([`BatchStore::purge_rows`]).
    pub batch_no: i64,
    /// The BATCH statement, canonical text.
    pub command: String,
    pub status: BatchStatus,
    /// RFC 3339 UTC, as stored.
    pub end_time: String,
    pub execution_id: String,
    /// How many entities it has (its `total`).
    pub entities: i64,
}

impl Purgeable {
    /// The batch in `r`, whose columns are bid, batch_no, command, status,
    /// end_time, execution_id and its total; `status` reads its status
    /// (column 3), as the store reads a status.
    pub fn read<R: Row>(
        r: &R,
        status: impl FnOnce(&R) -> std::result::Result<BatchStatus, R::Error>,
    ) -> std::result::Result<Purgeable, R::Error> {
        Ok(Purgeable {
            bid: r.text(0)?,
            batch_no: r.int(1)?,
            command: r.text(2)?,
            status: status(r)?,
            end_time: r.text(4)?,
            execution_id: r.text(5)?,
            entities: r.int(6)?,
        })
    }
}

/// The executor's and the control statements' writes to the batch tables.
pub trait BatchStore {
    /// Every id stored for the batch so far, claimed ones included, in no
    /// particular order: a retry that reads the source again skips them.
    /// `each` may stop the reading early (`Break`).
    fn stored_ids(
        &self,
        bid: &str,
        each: &mut dyn FnMut(StoredId<'_>) -> std::ops::ControlFlow<()>,
    ) -> Result<()>;

    /// Appends a progress sample (finished entities at this moment) for
    /// the pace figure of `BATCH_SUMMARY`.
    fn sample_progress(&self, run: RunRef, done: i64) -> Result<()>;

    /// Creates the batch, unless `refuse_twin` and an active (not final)
    /// batch has the same command text: then it creates nothing and gives
    /// that batch's id. The check and the insert are one IMMEDIATE
    /// transaction, so of two identical statements started at the same
    /// moment (two cron lines, a retrying wrapper) exactly one creates its
    /// batch and the other sees it.
    fn create_batch(&self, b: &NewBatch, refuse_twin: bool) -> Result<Option<String>>;

    /// The active (not final) batch with this statement text, the oldest,
    /// as [`BatchStore::create_batch`] would refuse it for.
    fn active_twin(&self, command: &str) -> Result<Option<String>>;

    /// The stored ids of a FROM STDIN / FROM FILE batch ([`NewBatch::lines`],
    /// its parts joined); `None` when it has none stored (another source, or
    /// a batch created before they were stored).
    fn batch_lines(&self, bid: &str) -> Result<Option<Vec<u8>>>;

    /// Moves the batch to `status` for its run, with an event. Sets the
    /// start time when it first starts (GENERATE_IID_LIST or IN_PROGRESS: a
    /// batch whose source query fails has started too), and the end time
    /// (and clears the owner) on a final status.
    fn set_run_status(&self, run: RunRef, status: BatchStatus, note: Option<&str>) -> Result<()>;

    /// Pauses a batch that no process runs, if it is still as `seen` (no
    /// other process took it over meanwhile); false if it is not.
    ///
    /// The batch gets a new execution id, as a takeover gives it: should
    /// its owner only have stalled, it writes nothing when it wakes up
    /// (see the module doc). The same holds for [`BatchStore::cancel_unowned`].
    fn pause_unowned(&self, bid: &str, seen: &BatchState, node: &str) -> Result<bool>;

    /// Cancels a batch that no process runs, if it is still as `seen`:
    /// its WAITING entities, and the IN_PROCESS ones a dead process left,
    /// become CANCELLED. False if another process took it over meanwhile.
    fn cancel_unowned(&self, bid: &str, seen: &BatchState, node: &str) -> Result<bool>;

    /// This process stops running the batch without ending it (a
    /// SIGTERM): it lets the batch go (no owner, so another process may
    /// take it over at once) and records why, under the batch's status,
    /// which stays as it is.
    fn leave_unfinished(&self, run: RunRef, note: &str) -> Result<()>;

    /// Makes this process (`run`'s node, pid) the batch's owner, as its run
    /// starts, and starts its per-node row, if the batch's execution is
    /// still the run's (a retry that took it over set it). In the same
    /// IMMEDIATE transaction it checks that the LUs
    /// whose data the batch uses (its target, and the LU its command
    /// writes) still exist: `DROP LU` refuses while a live owner uses an
    /// LU, so between the two, one of them sees the other. An LU dropped
    /// since the batch was planned ends the batch FAILED.
    fn take_ownership(&self, run: RunRef, dc: &str) -> Result<()>;

    /// The run's node joins the batch to process its entities, beside the
    /// run that owns (coordinates) it: it starts its per-node row, and
    /// nothing else (see [`BatchStore::take_ownership`] for the owner).
    fn join_batch(&self, run: RunRef, dc: &str) -> Result<()>;

    /// The highest entity sequence number stored for the batch.
    fn max_seq(&self, bid: &str) -> Result<i64>;

    /// One step of the executor, in one fenced transaction (see the
    /// module doc). `next_seq` is the highest sequence number used so far;
    /// new ids take the following ones. A step that fails (the store is
    /// locked, the run was taken over) writes nothing and leaves `next_seq`
    /// and the input as they were, so the same input can be written again;
    /// one that succeeds moves the text of the ids it claimed as they
    /// arrived out of `input.new_ids` into the result (no copy).
    fn step(&self, run: RunRef, next_seq: &mut i64, input: &mut StepInput) -> Result<StepResult>;

    /// Whether [`StepInput::chunk`] stores ids in chunks here (the
    /// PostgreSQL store, whose nodes claim side by side); otherwise a
    /// step stores them as WAITING rows.
    fn keeps_chunks(&self) -> bool {
        false
    }

    /// Every entity still WAITING becomes CANCELLED (with the counters).
    /// With `orphans`, so do the IN_PROCESS ones of the run itself and of
    /// nodes that are not alive, which the run calls for when it has
    /// nothing in flight itself.
    fn cancel_waiting(&self, run: RunRef, orphans: bool) -> Result<()>;

    /// The IN_PROCESS entities of a batch whose run has none in flight
    /// itself go back to WAITING, so that the batch does not end with
    /// entities that never ran: the run's own, and those of nodes that are
    /// not alive (a run that stalled and was taken over left them), which
    /// are declared dead in the same transaction (see [`super::nodes`]).
    /// The claims of live nodes stay theirs. Counters are recounted.
    fn requeue_orphans(&self, run: RunRef) -> Result<Counters>;

    /// The IN_PROCESS entities (claims included) of the batch's other
    /// nodes that are not alive go back to WAITING, and those nodes are
    /// declared dead, in one transaction (SPEC §7: a dead node's entities
    /// are taken over at once); the run's own claims and those of live
    /// nodes stay as they are. The counters recounted when some went
    /// back, else `None`. The batch's owner calls it while other nodes
    /// hold claims, whatever it has in flight itself.
    fn requeue_dead(&self, run: RunRef) -> Result<Option<Counters>>;

    /// Ends the run's batch FAILED with `error`, its IN_PROCESS entities
    /// (the run's own claims, whose outcomes are lost with the run) waiting
    /// again in the same transaction: a batch never ends with entities in
    /// process, and a retry runs them (at-least-once).
    fn fail_run(&self, run: RunRef, error: &str) -> Result<()>;

    fn set_extra_stats(&self, run: RunRef, stats: &serde_json::Value) -> Result<()>;

    fn end_node(&self, run: RunRef) -> Result<()>;

    /// The batch's counters, as its row keeps them.
    fn counters(&self, bid: &str) -> Result<Counters>;

    /// How many of the batch's entities are COMPLETED and how many FAILED,
    /// by its counters.
    fn finished_counts(&self, bid: &str) -> Result<(i64, i64)>;

    /// The working directory the batch was created in ([`NewBatch::workdir`]);
    /// `None` for a batch created by a batchsh that did not record it.
    fn workdir(&self, bid: &str) -> Result<Option<String>>;

    /// The 10 slowest finished entities, in Fabric's `extra_stats` shape.
    /// It reads every finished row of the batch; a run that finished them
    /// all itself keeps the same list as it goes ([`Slowest`]).
    fn slowest(&self, bid: &str) -> Result<serde_json::Value>;

    /// The batch's row, for control statements and retries.
    fn batch_state(&self, bid: &str) -> Result<BatchState>;

    /// Records a request (PAUSE, CANCEL or none) for the process running
    /// the batch, which reads it at its next step.
    fn request(&self, bid: &str, requested: Option<Request>) -> Result<()>;

    /// `BATCH_EDIT MAX_WORKERS_PER_NODE=n`, asked from `node`: the running
    /// process reads it at its next step; `BATCH_HISTORY` shows the edit.
    fn set_max_workers(&self, bid: &str, n: i64, node: &str) -> Result<()>;

    /// Makes a batch ready to run again (BATCH_RETRY): failed entities,
    /// every IN_PROCESS one, and for an unfinished batch also CANCELLED
    /// ones, go back to WAITING; counters are recounted from the rows (the one
    /// place that scans them, so a crash can never leave them wrong).
    ///
    /// It takes the batch over for this process (`node`, pid) and its new
    /// execution `execution_id` (the fencing token of the run to come: the
    /// run taken over, should it wake up, writes nothing more) only if its
    /// owner is still the one `seen` (read when the caller judged that
    /// owner dead, or the batch finished): of two retries started at once,
    /// one runs and the other gets `None`. A PAUSE or CANCEL asked of the
    /// dead owner is dropped; this run starts afresh.
    ///
    /// Every IN_PROCESS entity waits again, a live node's too: the new
    /// execution id fences out every write of the runs before it, so an
    /// outcome still to come from one of them (a helper's entity in flight
    /// a moment after a cancel, a run that stalled) would be dropped, and
    /// the entity, never completed, would stay in process for good.
    ///
    /// Unless the batch has `ALLOW_MULTIPLE`, it is refused while another
    /// active batch has its command ([`crate::store::StoreError::TwinActive`]),
    /// as a new `BATCH` would be.
    fn prepare_retry(
        &self,
        bid: &str,
        finished: bool,
        seen: &BatchState,
        node: &str,
        execution_id: &str,
    ) -> Result<Option<Counters>>;

    /// The finished batches with one of `statuses` (final ones: DONE,
    /// FAILED, CANCELLED; any other is ignored) that ended before
    /// `cutoff` (RFC 3339 UTC, as the store writes times), oldest end
    /// first: what `BATCH_PURGE` deletes. An unfinished batch is never
    /// one of them, whatever its times say.
    ///
    /// To be kept whatever their age, once they exist: the last
    /// successful run of a named series, and the runs a job still needs
    /// for exactly-once. Neither exists yet (no named series, no job-run
    /// table), so no batch is kept for them today; this is where they are
    /// to be left out.
    fn purgeable(&self, cutoff: &str, statuses: &[BatchStatus]) -> Result<Vec<Purgeable>>;

    /// Deletes the batch `seen` and everything kept for it but its entity
    /// rows and appended ids, in one short transaction: its claims, the
    /// processes taking part in it, its job (an asynchronous batch's
    /// `BATCH_JOB`), its events, per-node rows, progress samples and
    /// stored lines, and its row, which takes it out of every listing at
    /// once. Only if it is still as `seen` (the same final status, end
    /// time and execution): false, deleting nothing, if it is not, or is
    /// gone. Its entity rows are left for [`BatchStore::purge_rows`],
    /// a chunk at a time.
    fn purge_batch(&self, seen: &Purgeable) -> Result<bool>;

    /// Deletes up to `max_rows` of the rows left under batch number
    /// `batch_no` once its batch row is gone (entity rows first, in
    /// sequence order, then appended ids), in one transaction that seeks
    /// them through their primary key: a short one, however many rows the
    /// batch had. How many it deleted; 0 when none is left, or when a
    /// batch with that number exists (its rows are not orphans).
    fn purge_rows(&self, batch_no: i64, max_rows: usize) -> Result<usize>;

    /// The batch numbers that rows are still stored under (entity rows,
    /// appended ids) though no batch has them: what a `BATCH_PURGE`
    /// interrupted between [`BatchStore::purge_batch`] and the end of its
    /// [`BatchStore::purge_rows`] left, for the next one to delete.
    fn orphan_batch_nos(&self) -> Result<Vec<i64>>;
}
