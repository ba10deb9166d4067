//! Jobs and their runs (SPEC §8): what `STARTJOB` and `SCHEDULE` store,
//! and what every worker and `batchsh tick` fire when it is due.
//!
//! A job that is due is fired by one process only, once per due time.
//! Two things make sure of it, in the one transaction of [`JobStore::fire`]:
//! a compare-and-set of the job's last due time (of every process that
//! read the job before the run was fired, one moves it on), and the key of
//! the run's row, the job and its due time as a UTC instant (a second run
//! for one due time cannot be written at all).

use super::row::Row;
use super::{Result, StoreError};
use crate::ast::JobType;
use crate::batch::JobStatus;

/// A job as `STARTJOB` or `SCHEDULE` makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub job_type: JobType,
    pub name: String,
    pub uid: String,
    /// `AFFINITY`: the nodes (names, DCs, addresses) that may fire it.
    pub affinity: Option<String>,
    /// The schedule as written (`EXEC_INTERVAL`, or the short form's).
    pub schedule: Option<String>,
    /// A STATEMENT job's statement (canonical text), a PROCESS job's program.
    pub statement: String,
    /// A PROCESS job's `ARGS` (a JSON object).
    pub args: Option<String>,
    /// A PROCESS job's `TIMEOUT`, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Where relative paths of its statement, and its program, are read.
    pub workdir: Option<String>,
    /// Its first due time, RFC 3339 UTC.
    pub next_run: String,
    /// `SCHEDULE` made it (SHOW SCHEDULES, DROP SCHEDULE).
    pub short_form: bool,
}

impl NewJob {
    /// Its `TIMEOUT` as the store keeps it (milliseconds, at most
    /// `i64::MAX`).
    pub fn stored_timeout(&self) -> Option<i64> {
        self.timeout_ms.map(|t| t.min(i64::MAX as u64) as i64)
    }

    /// The refusal of this job when one of its type, name and UID exists.
    pub fn exists(&self) -> StoreError {
        let kind = self.job_type.keyword();
        StoreError::JobExists {
            label: if self.uid.is_empty() {
                format!("{kind} {}", self.name)
            } else {
                format!("{kind} {} (UID '{}')", self.name, self.uid)
            },
            name: self.name.clone(),
        }
    }
}

/// A row of the jobs table.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    pub job_no: i64,
    pub job_type: JobType,
    pub name: String,
    pub uid: String,
    pub status: JobStatus,
    pub affinity: Option<String>,
    pub schedule: Option<String>,
    pub statement: Option<String>,
    pub args: Option<String>,
    pub timeout_ms: Option<u64>,
    pub workdir: Option<String>,
    pub created_at: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub next_run: Option<String>,
    pub owner_worker: Option<String>,
    pub notes: Option<String>,
    pub output: Option<String>,
    pub archived: bool,
    /// The due time of its latest run.
    pub last_due: Option<String>,
    pub short_form: bool,
}

impl JobRow {
    /// The job in `r`, whose columns are job_no, type, name, uid, status,
    /// affinity, schedule, statement, args, timeout_ms, workdir,
    /// created_at, start_time, end_time, next_run, owner_worker, notes,
    /// output, archived, last_due, short_form; `status` reads its status
    /// (column 4), as the store reads a status.
    pub fn read<R: Row>(
        r: &R,
        status: impl FnOnce(&R) -> std::result::Result<JobStatus, R::Error>,
    ) -> std::result::Result<JobRow, R::Error> {
        Ok(JobRow {
            job_no: r.int(0)?,
            job_type: stored_job_type(&r.text(1)?),
            name: r.text(2)?,
            uid: r.text(3)?,
            status: status(r)?,
            affinity: r.text_or_null(5)?,
            schedule: r.text_or_null(6)?,
            statement: r.text_or_null(7)?,
            args: r.text_or_null(8)?,
            timeout_ms: r.int_or_null(9)?.map(|t| t.max(0) as u64),
            workdir: r.text_or_null(10)?,
            created_at: r.text(11)?,
            start_time: r.text_or_null(12)?,
            end_time: r.text_or_null(13)?,
            next_run: r.text_or_null(14)?,
            owner_worker: r.text_or_null(15)?,
            notes: r.text_or_null(16)?,
            output: r.text_or_null(17)?,
            archived: r.flag(18)?,
            last_due: r.text_or_null(19)?,
            short_form: r.flag(20)?,
        })
    }
}

/// The job type a store's `type` column names (`STATEMENT` for a text
/// that names none).
pub fn stored_job_type(s: &str) -> JobType {
    JobType::ALL
        .into_iter()
        .find(|t| t.keyword() == s)
        .unwrap_or(JobType::Statement)
}

/// How a run stands (the job statuses a run takes).
pub use crate::batch::JobStatus as RunStatus;

/// A row of a job's runs.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub job_no: i64,
    pub job_type: JobType,
    pub name: String,
    pub uid: String,
    /// The due time it was fired for, RFC 3339 UTC.
    pub due: String,
    pub node: String,
    pub worker: String,
    pub start_time: String,
    pub end_time: Option<String>,
    /// `IN_PROCESS`, `PROCESSED` or `FAILED`.
    pub status: RunStatus,
    /// How late it was fired, in milliseconds.
    pub late_ms: i64,
    /// How many earlier due times it stood for (missed while nothing ran).
    pub skipped: i64,
    pub output: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    /// A PROCESS run's program: its pid (leading its process group) and
    /// its host.
    pub pid: Option<i64>,
    pub host: Option<String>,
    /// When that process started, to tell it from a later one given the
    /// same pid.
    pub pid_start: Option<String>,
}

impl RunRow {
    /// The run in `r`, whose columns are the run's job_no, its job's
    /// type, name and uid, then the run's due, node, worker, start_time,
    /// end_time, status, late_ms, skipped, output, error, exit_code, pid,
    /// host, pid_start; `status` reads its status (column 9), as the store
    /// reads a status.
    pub fn read<R: Row>(
        r: &R,
        status: impl FnOnce(&R) -> std::result::Result<RunStatus, R::Error>,
    ) -> std::result::Result<RunRow, R::Error> {
        Ok(RunRow {
            job_no: r.int(0)?,
            job_type: stored_job_type(&r.text(1)?),
            name: r.text(2)?,
            uid: r.text(3)?,
            due: r.text(4)?,
            node: r.text(5)?,
            worker: r.text(6)?,
            start_time: r.text(7)?,
            end_time: r.text_or_null(8)?,
            status: status(r)?,
            late_ms: r.int(10)?,
            skipped: r.int(11)?,
            output: r.text_or_null(12)?,
            error: r.text_or_null(13)?,
            exit_code: r.int_or_null(14)?,
            pid: r.int_or_null(15)?,
            host: r.text_or_null(16)?,
            pid_start: r.text_or_null(17)?,
        })
    }
}

/// Where a PROCESS run's program runs.
#[derive(Clone, Debug)]
pub struct Program<'a> {
    /// Its pid, which leads its process group.
    pub pid: i64,
    pub host: &'a str,
    /// When it started (RFC 3339 UTC), if the system tells.
    pub started: Option<&'a str>,
}

/// A run to fire: job `job_no`, read with `last_due`, for `due`.
#[derive(Clone, Debug)]
pub struct Fire<'a> {
    pub job_no: i64,
    /// The job's last due time as the firing process read it: the run is
    /// fired only if no other process moved it on since.
    pub last_due: Option<&'a str>,
    pub due: &'a str,
    pub node: &'a str,
    pub worker: &'a str,
    pub late_ms: i64,
    pub skipped: i64,
    /// The job's next due time while this run goes on (for JOBSTATUS).
    pub next_run: Option<&'a str>,
    /// The job's notes from now on.
    pub notes: Option<&'a str>,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunEnd<'a> {
    pub status: RunStatus,
    pub output: Option<&'a str>,
    pub error: Option<&'a str>,
    pub exit_code: Option<i64>,
    /// The job's next due time, if it has one.
    pub next_run: Option<&'a str>,
    pub notes: Option<&'a str>,
    /// When it ended (RFC 3339 UTC), on the clock that due times are
    /// read on.
    pub ended: &'a str,
}

impl RunEnd<'_> {
    /// The status its job ends with when it has no next due time and
    /// was not asked to stop: `FAILED` after a failed run, else
    /// `PROCESSED`.
    pub fn job_after_once(&self) -> JobStatus {
        if self.status == JobStatus::Failed {
            JobStatus::Failed
        } else {
            JobStatus::Processed
        }
    }
}

/// A change to a job, made only if its status is one of `expect`.
#[derive(Clone, Debug, Default)]
pub struct JobChange<'a> {
    pub status: Option<JobStatus>,
    pub next_run: Option<Option<&'a str>>,
    pub affinity: Option<Option<&'a str>>,
    pub schedule: Option<Option<&'a str>>,
    pub end_time: Option<Option<&'a str>>,
    pub notes: Option<Option<&'a str>>,
}

/// The jobs table and the runs of its jobs.
pub trait JobStore {
    /// Stores a new job, `SCHEDULED`. A job of that type, name and uid
    /// exists already: [`super::StoreError::Exists`].
    fn create_job(&self, job: &NewJob) -> Result<()>;

    /// Every job, by type, name and uid; `BATCH_JOB` jobs too.
    fn jobs(&self) -> Result<Vec<JobRow>>;

    /// Job `job_no`, as it is now.
    fn job(&self, job_no: i64) -> Result<Option<JobRow>>;

    /// The jobs due at `now` (RFC 3339 UTC): not `BATCH_JOB`, scheduled (or
    /// asked to restart), their next due time not after `now`.
    fn due_jobs(&self, now: &str) -> Result<Vec<JobRow>>;

    /// The jobs with a run under way (`IN_PROCESS`, `STOPPING`), whose
    /// owner may have died.
    fn running_jobs(&self) -> Result<Vec<JobRow>>;

    /// Fires a run, atomically: the job goes `IN_PROCESS`, owned by
    /// `worker`, its last due time `due`, and the run's row is written, if
    /// the job is still due and its last due time still `last_due`. False
    /// when another process fired it first.
    fn fire(&self, fire: &Fire) -> Result<bool>;

    /// Records where a PROCESS run's program runs: its pid, which leads
    /// its process group, on `host`.
    fn run_program(&self, job_no: i64, due: &str, program: &Program) -> Result<()>;

    /// Records a run's output while it goes on (the bid of the batch its
    /// statement queued).
    fn run_output(&self, job_no: i64, due: &str, output: &str) -> Result<()>;

    /// Ends the run of `job_no` for `due` that `worker` owns, if it is
    /// still under way and still `worker`'s (a run recovered from a dead
    /// worker is not ended again). The job is `SCHEDULED` again with its
    /// next due time, or, without one, `PROCESSED` (`FAILED` when the run
    /// failed); a job asked to stop while it ran is `TERMINATED`.
    fn finish_run(&self, job_no: i64, due: &str, worker: &str, end: &RunEnd) -> Result<bool>;

    /// Ends the run of `job_no` for `due` that `worker`, a process found
    /// dead, owned, as [`JobStore::finish_run`] does, and declares that
    /// node dead in the same transaction (should it only have stalled, it
    /// writes nothing more).
    fn recover_run(&self, job_no: i64, due: &str, worker: &str, end: &RunEnd) -> Result<bool>;

    /// Changes job `job_no` if its status is one of `expect`; false if not.
    fn change_job(&self, job_no: i64, expect: &[JobStatus], change: &JobChange) -> Result<bool>;

    /// Deletes job `job_no` and its runs, unless a run of it is under way.
    fn delete_job(&self, job_no: i64) -> Result<bool>;

    /// Runs, newest due time first: of job `job_no`, or of every job.
    fn job_runs(&self, job_no: Option<i64>, limit: usize) -> Result<Vec<RunRow>>;
}
