//! The queue of asynchronous batches (SPEC §7, §8): what workers take,
//! help with, or take over. A batch waits for its job in
//! `WAITING_FOR_JOB`; its job (type `BATCH_JOB`, named `BATCH_JOB_<LU>`,
//! its output the bid) follows the batch's status and owner. Where a
//! batch may run is its [`Placement`]: a worker reads it here and decides
//! for itself; `MAX_NODES` is counted by the store ([`QueueStore::enter_batch`]).

use super::Result;
use super::batches::BatchState;
use crate::batch::{BatchStatus, JobStatus, Placement, Request};

/// An asynchronous batch as a worker finds it.
#[derive(Clone, Debug, PartialEq)]
pub struct AsyncBatch {
    pub bid: String,
    pub execution_id: String,
    pub status: BatchStatus,
    /// The BATCH statement, canonical text.
    pub command: String,
    pub ids_complete: bool,
    pub placement: Placement,
}

impl AsyncBatch {
    /// The batch as the store keeps it: `ids_complete` an integer flag,
    /// `placement` its JSON. A placement this batchsh cannot read lets the
    /// batch run anywhere.
    pub fn from_stored(
        bid: String,
        execution_id: String,
        status: BatchStatus,
        command: String,
        ids_complete: i64,
        placement: &str,
    ) -> AsyncBatch {
        AsyncBatch {
            bid,
            execution_id,
            status,
            command,
            ids_complete: ids_complete != 0,
            placement: serde_json::from_str(placement).unwrap_or_default(),
        }
    }

    /// The batch's state, with its owner as the row has it.
    pub fn state(
        &self,
        owner_node: Option<String>,
        owner_pid: Option<i64>,
        heartbeat_at: Option<String>,
        requested: Option<Request>,
        owner_worker: Option<String>,
    ) -> BatchState {
        BatchState {
            status: self.status,
            execution_id: self.execution_id.clone(),
            ids_complete: self.ids_complete,
            owner_node,
            owner_pid,
            heartbeat_at,
            command: self.command.clone(),
            requested,
            owner_worker,
        }
    }
}

/// The note of the event of a batch whose job a worker took.
pub const TAKEN_NOTE: &str = "job taken";

/// The note of the event of a batch put back in the queue.
pub const QUEUED_NOTE: &str = "queued again";

/// The job of an asynchronous batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchJob {
    /// `BATCH_JOB_<LU>`.
    pub name: String,
    pub status: JobStatus,
    /// The worker that owns it, or owned it last.
    pub owner_worker: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

impl BatchJob {
    /// The job as the store keeps it: a status this batchsh does not
    /// know reads as `WAITING`.
    pub fn from_stored(
        name: String,
        status: &str,
        owner_worker: Option<String>,
        start_time: Option<String>,
        end_time: Option<String>,
    ) -> BatchJob {
        BatchJob {
            name,
            status: status.parse().unwrap_or(JobStatus::Waiting),
            owner_worker,
            start_time,
            end_time,
        }
    }
}

/// The queue of asynchronous batches.
pub trait QueueStore {
    /// The asynchronous batches that wait for their job, oldest first.
    fn waiting_jobs(&self) -> Result<Vec<AsyncBatch>>;

    /// Takes the job of batch `bid` if it still waits for one, for worker
    /// `worker` of this process (`node`, pid) and a new execution
    /// `execution_id`, atomically: of two workers asking at once, one gets
    /// it. The batch is then `NEW`, owned as a synchronous batch is by its
    /// process; the worker takes part in processing it (for `MAX_NODES`,
    /// from the same moment) when `processes` (its `AFFINITY` lets it).
    fn take_job(
        &self,
        bid: &str,
        node: &str,
        worker: &str,
        execution_id: &str,
        processes: bool,
    ) -> Result<Option<AsyncBatch>>;

    /// The unfinished asynchronous batches a worker may serve (not those
    /// waiting for their job), oldest first, with their owners.
    fn async_batches(&self) -> Result<Vec<(AsyncBatch, BatchState)>>;

    /// Puts a batch back in the queue of jobs (a retry of an asynchronous
    /// batch, made ready by [`super::BatchStore::prepare_retry`]): `WAITING_FOR_JOB`,
    /// no owner, for a worker to take.
    fn queue_job(&self, bid: &str, node: &str) -> Result<()>;

    /// Counts worker `worker` among the nodes that process batch `bid`,
    /// unless `max_nodes` live nodes other than it do already (then
    /// false). `owner`: the batch's owner (that processes) takes part
    /// whatever the count (a takeover is never refused).
    fn enter_batch(
        &self,
        bid: &str,
        worker: &str,
        max_nodes: Option<usize>,
        owner: bool,
    ) -> Result<bool>;

    /// Worker `worker` no longer takes part in batch `bid`.
    fn leave_batch(&self, bid: &str, worker: &str) -> Result<()>;

    /// The job of batch `bid`, if it is an asynchronous batch.
    fn batch_job(&self, bid: &str) -> Result<Option<BatchJob>>;

    /// Batch `bid` as the queue has it, if it is an unfinished
    /// asynchronous batch (waiting for its job or under way).
    fn find_async(&self, bid: &str) -> Result<Option<AsyncBatch>> {
        let waiting = self.waiting_jobs()?.into_iter();
        let serving = self.async_batches()?.into_iter().map(|(b, _)| b);
        Ok(waiting.chain(serving).find(|b| b.bid == bid))
    }
}
