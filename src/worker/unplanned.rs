//! A batch that a worker took but cannot plan (SPEC §7, §11): its stored
//! statement names an interface, LU or group that was dropped while the
//! batch waited for its job. The batch ends FAILED with the reason, so
//! that BATCH_WAIT, BATCH_INFO and BATCH_LIST tell it, rather than staying
//! NEW, owned by no run, for workers to take over again and again. A
//! helper (the batch is another worker's run) leaves the batch as it is:
//! its owner planned it already.

use super::WorkerError;
use crate::exec::run::Roles;
use crate::store::Store;
use crate::store::batches::RunRef;

/// Ends the run's batch FAILED with `e`, when this worker owns the run;
/// gives the error to log.
pub(super) fn fail(store: &dyn Store, run: RunRef, roles: Roles, e: WorkerError) -> WorkerError {
    if !roles.coordinate {
        return e;
    }
    let why = format!(
        "{e}; BATCH_RETRY '{bid}' runs the batch once its statement plans again",
        bid = run.bid
    );
    match store.fail_run(run, &why) {
        Ok(()) => WorkerError::Cannot(format!("batch {} ended FAILED: {why}", run.bid)),
        Err(s) => WorkerError::Cannot(format!(
            "{e}; the batch could not be marked FAILED either: {s}"
        )),
    }
}
