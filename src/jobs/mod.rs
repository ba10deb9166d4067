//! Firing jobs (SPEC §8): what every worker does continuously, and
//! `batchsh tick` once. A job is fired when its next due time has come,
//! by one process only, once per due time ([`crate::store::jobs`] says how
//! the store makes sure of it); the process that fired it runs it
//! ([`run`]) and records how the run ended, with the job's next due time.
//!
//! The policies, in one place:
//!
//! - **Missed runs** (nothing ran at their time): the job fires once, for
//!   the latest due time that has come, and the run's notes say how late it
//!   was and how many due times it stands for.
//! - **No overlap**: a job is not due while a run of it goes on; a due time
//!   that came meanwhile fires once, as soon as the run ends.
//! - **A run that fails** marks that run `FAILED` (and the job's notes say
//!   so); a recurring job's next due time runs as usual.
//! - **A process that dies** while it runs a job (kill -9, a lost host):
//!   the next worker or tick marks that run `FAILED`, saying so, and the
//!   job goes on with its next due time. The run is not started again for
//!   its due time: a job runs at most once per due time.

pub mod run;
pub mod tick;

use crate::batch::{JobStatus, NodeIdent, Placement};
use crate::schedule::Schedule;
use crate::store::jobs::{Fire, JobRow};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Local, Utc};

/// Who fires jobs: a worker, or a tick.
pub struct Firer<'a> {
    pub store: &'a dyn Store,
    pub worker_id: &'a str,
    pub ident: &'a NodeIdent,
}

/// A run this process fired, to run now.
#[derive(Clone, Debug)]
pub struct Fired {
    pub job: JobRow,
    /// The due time it was fired for, as stored (the run's key).
    pub due: String,
    /// How late it was fired, if that is worth a note.
    pub late: Option<String>,
}

pub use crate::store::stamp;

fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A job's schedule, compiled (see [`crate::schedule::stored`]).
pub fn schedule_of(job: &JobRow) -> Result<Option<Schedule>, String> {
    crate::schedule::stored(job.schedule.as_deref())
}

/// The job's next due time after a run due at `due` that ended at `ended`.
pub fn next_after(
    schedule: Option<&Schedule>,
    due: DateTime<Utc>,
    ended: DateTime<Utc>,
) -> Option<String> {
    schedule
        .and_then(|s| s.after(due, ended, &Local))
        .map(stamp)
}

/// Whether this process may fire `job` (its `AFFINITY`).
pub fn may_fire(job: &JobRow, me: &NodeIdent) -> bool {
    Placement::of_job(job.affinity.as_deref()).may_own(me)
}

/// How late a run was, as a person reads it: `3 d 0 h 5 m`, `42 s`.
fn lateness(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec} s"),
        (0, 0, _) => format!("{m} min {sec} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h {m} min"),
    }
}

/// How late a run may start and still count as on time: a worker looks
/// every half second, and cron starts a tick within the minute.
const ON_TIME_MS: i64 = 60_000;

/// The notes of a run fired `late_ms` after its due time, standing for
/// `skipped` earlier due times.
fn late_note(late_ms: i64, skipped: u64, overran: bool) -> Option<String> {
    if late_ms < ON_TIME_MS && skipped == 0 {
        return None;
    }
    let (why, while_) = if overran {
        (
            "the run before it was still going at its time",
            "during that run",
        )
    } else {
        ("no worker or tick ran at its time", "while nothing ran")
    };
    let missed = match skipped {
        0 => String::new(),
        1 => format!("; it stands for 1 earlier due time that came {while_}"),
        n => format!("; it stands for {n} earlier due times that came {while_}"),
    };
    Some(format!(
        "the last run started {} late ({why}){missed}",
        lateness(late_ms)
    ))
}

/// Fires every job due at `now` that this process may fire, after taking
/// back the runs of processes that died. Gives the runs it fired, to run.
pub fn fire_due(f: &Firer, now: DateTime<Utc>) -> Result<Vec<Fired>, StoreError> {
    recover_dead(f.store, now)?;
    let mut fired = Vec::new();
    for job in f.store.due_jobs(&stamp(now))? {
        if !may_fire(&job, f.ident) {
            continue;
        }
        let Some(next) = job.next_run.as_deref().and_then(parse_stamp) else {
            continue;
        };
        let schedule = match schedule_of(&job) {
            Ok(s) => s,
            Err(why) => {
                // Said once, in the job's notes; it is not fired.
                let notes = format!("not run: {why}; UPDATEJOB ... EXEC_INTERVAL='...' fixes it");
                let change = crate::store::jobs::JobChange {
                    status: Some(JobStatus::Failed),
                    next_run: Some(None),
                    notes: Some(Some(&notes)),
                    ..Default::default()
                };
                f.store.change_job(job.job_no, &[job.status], &change)?;
                continue;
            }
        };
        // A restart runs now, whatever the schedule; otherwise the latest
        // due time that has come stands for those missed before it.
        let (mut due, skipped) = match (&schedule, job.status) {
            (Some(s), status) if status != JobStatus::Restart => s.catch_up(next, now, &Local),
            _ => (next, 0),
        };
        // A due time that ran already is not run again: a cron slot that
        // ran moves the job on to its next slot; a restart (or a job
        // resumed) in the same millisecond as its last run runs a
        // millisecond later.
        if let Some(last) = job.last_due.as_deref().and_then(parse_stamp)
            && due <= last
        {
            match (&schedule, job.status) {
                (Some(s @ Schedule::Cron(_)), status) if status != JobStatus::Restart => {
                    let next = next_after(Some(s), last, last);
                    let change = crate::store::jobs::JobChange {
                        next_run: Some(next.as_deref()),
                        ..Default::default()
                    };
                    f.store.change_job(job.job_no, &[job.status], &change)?;
                    continue;
                }
                _ => due = last + chrono::TimeDelta::milliseconds(1),
            }
        }
        let late_ms = (now - due).num_milliseconds().max(0);
        let due_text = stamp(due);
        let next_run = next_after(schedule.as_ref(), due, due);
        // Late because the run before was still going at its time, or
        // because nothing ran then.
        let overran = job
            .end_time
            .as_deref()
            .and_then(parse_stamp)
            .is_some_and(|ended| ended > due);
        let notes = late_note(late_ms, skipped, overran);
        let node = &f.ident.node;
        let fire = Fire {
            job_no: job.job_no,
            last_due: job.last_due.as_deref(),
            due: &due_text,
            node,
            worker: f.worker_id,
            late_ms,
            skipped: i64::try_from(skipped).unwrap_or(i64::MAX),
            next_run: next_run.as_deref(),
            notes: notes.as_deref(),
        };
        if f.store.fire(&fire)? {
            fired.push(Fired {
                job,
                due: due_text,
                late: notes,
            });
        }
    }
    Ok(fired)
}

/// The runs of processes that died while they ran them (kill -9, a lost
/// host, a stall past the dead time) are ended, and their nodes declared
/// dead in the same transaction (a stalled process writes nothing more
/// when it wakes). A run that had queued a batch ends with its batch, as
/// it would have: until the batch ends, the run goes on (and its job is
/// not due). Any other run ends `FAILED`, its program killed if it still
/// runs on this host: it is not started again for its due time. Their
/// jobs go on with their next due time.
pub fn recover_dead(store: &dyn Store, now: DateTime<Utc>) -> Result<(), StoreError> {
    let running = store.running_jobs()?;
    if running.is_empty() {
        return Ok(());
    }
    let nodes = store.nodes()?;
    for job in running {
        let (Some(owner), Some(due)) = (&job.owner_worker, &job.last_due) else {
            continue;
        };
        let node = nodes.iter().find(|n| n.worker_id == *owner);
        if node.is_some_and(|n| n.alive()) {
            continue;
        }
        let this_run = store
            .job_runs(Some(job.job_no), 1)?
            .into_iter()
            .find(|r| r.due == *due);
        let outcome = match queued_batch(store, &job, this_run.as_ref())? {
            Some(row) => match run::batch_outcome(&row) {
                Some(outcome) => outcome,
                None => continue,
            },
            None => {
                let killed = this_run.as_ref().is_some_and(|r| end_program(&job, r));
                let who = node.map_or_else(
                    || "the process that ran it".to_string(),
                    |n| format!("{} (node {}, pid {})", n.kind.as_str(), n.node, n.pid),
                );
                let killed = if killed {
                    "; its program was killed"
                } else {
                    ""
                };
                run::Outcome {
                    error: Some(format!(
                        "{who} ended before the run did (killed, stopped, or its host \
                         lost){killed}; the run is not started again for this due time"
                    )),
                    ..run::Outcome::default()
                }
            }
        };
        let schedule = schedule_of(&job).ok().flatten();
        let due_at = parse_stamp(due).unwrap_or(now);
        let next_run = next_after(schedule.as_ref(), due_at, now.max(due_at));
        let notes = outcome.failed_note();
        let ended = stamp(now);
        let end = outcome.end(next_run.as_deref(), notes.as_deref(), &ended);
        store.recover_run(job.job_no, due, owner, &end)?;
    }
    Ok(())
}

/// The batch a STATEMENT run queued, if it did (its output is the bid).
fn queued_batch(
    store: &dyn Store,
    job: &JobRow,
    run: Option<&crate::store::jobs::RunRow>,
) -> Result<Option<crate::store::BatchRow>, StoreError> {
    let bid = run.and_then(|r| r.output.as_deref()).filter(|o| {
        job.job_type == crate::ast::JobType::Statement && uuid::Uuid::parse_str(o).is_ok()
    });
    let Some(bid) = bid else {
        return Ok(None);
    };
    match store.read_batch(bid) {
        Ok(row) => Ok(Some(row)),
        // Purged since: the run ends FAILED, as one that queued nothing.
        Err(StoreError::NoBatch { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Kills the program of a PROCESS run whose process died, with its
/// children, if it still runs on this host (its pid leads its process
/// group, and is the process that started then: a pid given since to
/// another process is left alone). Whether it did.
fn end_program(job: &JobRow, run: &crate::store::jobs::RunRow) -> bool {
    let (Some(pid), Some(host)) = (run.pid, run.host.as_deref()) else {
        return false;
    };
    if host != crate::owner::hostname() || job.job_type != crate::ast::JobType::Process {
        return false;
    }
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    let runs_it = match (crate::owner::started_at(pid), run.pid_start.as_deref()) {
        (Some(now), Some(then)) => stamp(now) == then,
        _ => false,
    };
    let leads = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .and_then(|p| rustix::process::getpgid(Some(p)).ok())
        .is_some_and(|g| g.as_raw_nonzero().get() as u32 == pid);
    if runs_it && leads {
        run::kill_group(pid);
    }
    runs_it && leads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_reads_in_the_largest_units() {
        assert_eq!(lateness(42_000), "42 s");
        assert_eq!(lateness(61_000), "1 min 1 s");
        assert_eq!(lateness(3 * 86_400_000 + 5 * 60_000), "3 d 0 h 5 min");
    }

    #[test]
    fn a_run_on_time_has_no_note_and_a_late_one_says_how_late() {
        assert_eq!(late_note(1_500, 0, false), None);
        let overran = late_note(1_500, 2, true).unwrap();
        assert!(
            overran.contains("the run before it was still going"),
            "{overran}"
        );
        let note = late_note(3 * 86_400_000, 4319, false).unwrap();
        assert!(note.contains("3 d 0 h 0 min late"), "{note}");
        assert!(note.contains("4319 earlier due times"), "{note}");
    }
}
