//! The queue of asynchronous batches (SPEC §7): what workers take, help
//! with, or take over. A batch waits for its job in `WAITING_FOR_JOB`;
//! there is no jobs table yet: an asynchronous batch is its own job.

use super::Result;
use super::batches::BatchState;
use crate::batch::BatchStatus;

/// An asynchronous batch as a worker finds it.
#[derive(Clone, Debug, PartialEq)]
pub struct AsyncBatch {
    pub bid: String,
    pub execution_id: String,
    pub status: BatchStatus,
    /// The BATCH statement, canonical text.
    pub command: String,
    pub ids_complete: bool,
}

/// The queue of asynchronous batches.
pub trait QueueStore {
    /// Takes the job of the oldest asynchronous batch that waits for one
    /// (`WAITING_FOR_JOB`) for this process (`node`, pid) and a new
    /// execution `execution_id`, atomically: of two workers asking at
    /// once, one gets it. The batch is then `NEW`, owned as a synchronous
    /// batch is by its process.
    fn take_job(&self, node: &str, execution_id: &str) -> Result<Option<AsyncBatch>>;

    /// The unfinished asynchronous batches a worker may serve (not those
    /// waiting for their job), oldest first, with their owners.
    fn async_batches(&self) -> Result<Vec<(AsyncBatch, BatchState)>>;

    /// Puts a batch back in the queue of jobs (a retry of an asynchronous
    /// batch, made ready by [`super::BatchStore::prepare_retry`]): `WAITING_FOR_JOB`,
    /// no owner, for a worker to take.
    fn queue_job(&self, bid: &str, node: &str) -> Result<()>;
}
