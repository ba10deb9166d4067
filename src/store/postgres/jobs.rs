//! Jobs and their runs on PostgreSQL (see [`crate::store::jobs`]).
//!
//! Many processes on many hosts fire jobs from one database, so what
//! SQLite gets from its single writer is done with row locks here: a
//! process fires a job only with the job's row locked (`FOR UPDATE SKIP
//! LOCKED`: another process firing it at the same moment is not waited
//! for, it has it), and the run's row has the key (job, due time), so
//! that a second run for one due time cannot be written at all.

use super::{PgStore, TxError};
use crate::batch::JobStatus;
use crate::store::jobs::*;
use crate::store::{Result, StoreError};
use postgres::Row;
use postgres::types::ToSql;

/// The columns [`PgStore::job_row`] reads, in order.
macro_rules! job_columns {
    () => {
        "job_no, type, name, uid, status, affinity, schedule, statement, args, timeout_ms, \
         workdir, created_at, start_time, end_time, next_run, owner_worker, notes, output, \
         archived, last_due, short_form"
    };
}

/// The statuses in which a job is fired when its time comes.
macro_rules! firable {
    () => {
        "('SCHEDULED', 'RESTART', 'WAITING')"
    };
}

const DUE_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE next_run <= $1 AND type <> 'BATCH_JOB' AND status IN ",
    firable!(),
    " ORDER BY next_run, job_no"
);

const RUNNING_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE type <> 'BATCH_JOB' AND status IN ('IN_PROCESS', 'STOPPING')
      ORDER BY job_no"
);

/// Locks job `$1` for firing, if it is still firable with the last due
/// time `$2` and no other process is firing it now.
const LOCK_TO_FIRE: &str = concat!(
    "SELECT job_no FROM jobs
     WHERE job_no = $1 AND last_due IS NOT DISTINCT FROM $2 AND status IN ",
    firable!(),
    " FOR UPDATE SKIP LOCKED"
);

const WRITE_RUN: &str = "INSERT INTO job_runs (job_no, due, node, worker, start_time, status,
         late_ms, skipped)
     VALUES ($1, $2, $3, $4, $5, 'IN_PROCESS', $6, $7)
     ON CONFLICT (job_no, due) DO NOTHING";

const MARK_FIRED: &str = "UPDATE jobs SET status = 'IN_PROCESS', owner_worker = $2,
         last_due = $3, start_time = $4, next_run = $5, notes = $6
     WHERE job_no = $1";

impl PgStore {
    /// A status as the store keeps it; a text that is no status (a store
    /// a newer batchsh wrote) fails the read, as on SQLite.
    fn job_status(&self, r: &Row, column: usize) -> Result<JobStatus> {
        let text: String = r.try_get(column).map_err(|e| self.err(e))?;
        text.parse()
            .map_err(|e: crate::batch::StatusError| StoreError::Postgres {
                store: self.target.shown().to_string(),
                message: format!("a row of jobs or job_runs cannot be read: {e}"),
            })
    }

    fn job_row(&self, r: &Row) -> Result<JobRow> {
        let status = self.job_status(r, 4)?;
        JobRow::read(r, |_| Ok(status)).map_err(|e| self.err(e))
    }

    fn run_row(&self, r: &Row) -> Result<RunRow> {
        let status = self.job_status(r, 9)?;
        RunRow::read(r, |_| Ok(status)).map_err(|e| self.err(e))
    }

    /// The jobs that the prepared statement `sql` selects with `args`.
    fn select_jobs(&self, sql: &'static str, args: &[&(dyn ToSql + Sync)]) -> Result<Vec<JobRow>> {
        let rows = {
            let mut c = self.client();
            let st = self.cached(&mut *c, sql).map_err(|e| self.err(e))?;
            c.query(&st, args).map_err(|e| self.err(e))?
        };
        rows.iter().map(|r| self.job_row(r)).collect()
    }
}

impl JobStore for PgStore {
    fn create_job(&self, j: &NewJob) -> Result<()> {
        let timeout_ms = j.stored_timeout();
        let now = crate::store::now();
        let short_form = i64::from(j.short_form);
        let written = self.tx(|tx| {
            Ok(tx.execute(
                "INSERT INTO jobs (type, name, uid, status, affinity, schedule, statement, args,
                     timeout_ms, workdir, created_at, next_run, short_form)
                 VALUES ($1, $2, $3, 'SCHEDULED', $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (type, name, uid) DO NOTHING",
                &[
                    &j.job_type.keyword(),
                    &j.name,
                    &j.uid,
                    &j.affinity,
                    &j.schedule,
                    &j.statement,
                    &j.args,
                    &timeout_ms,
                    &j.workdir,
                    &now,
                    &j.next_run,
                    &short_form,
                ],
            )?)
        })?;
        if written == 1 {
            return Ok(());
        }
        Err(j.exists())
    }

    fn jobs(&self) -> Result<Vec<JobRow>> {
        // Byte order, as SQLite sorts: the database's own collation may
        // sort otherwise.
        self.select_jobs(
            concat!(
                "SELECT ",
                job_columns!(),
                r#" FROM jobs ORDER BY type, name COLLATE "C", uid COLLATE "C""#
            ),
            &[],
        )
    }

    fn job(&self, job_no: i64) -> Result<Option<JobRow>> {
        self.select_jobs(
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE job_no = $1"),
            &[&job_no],
        )
        .map(|mut jobs| jobs.pop())
    }

    fn due_jobs(&self, now: &str) -> Result<Vec<JobRow>> {
        self.select_jobs(DUE_JOBS, &[&now])
    }

    fn running_jobs(&self) -> Result<Vec<JobRow>> {
        self.select_jobs(RUNNING_JOBS, &[])
    }

    fn fire(&self, f: &Fire) -> Result<bool> {
        let now = crate::store::now();
        self.tx(|tx| {
            let lock = self.cached(tx, LOCK_TO_FIRE)?;
            if tx.query_opt(&lock, &[&f.job_no, &f.last_due])?.is_none() {
                return Ok(false);
            }
            // The run's row first: when it exists already, nothing of
            // this transaction was written.
            let write = self.cached(tx, WRITE_RUN)?;
            let written = tx.execute(
                &write,
                &[
                    &f.job_no, &f.due, &f.node, &f.worker, &now, &f.late_ms, &f.skipped,
                ],
            )?;
            if written != 1 {
                return Ok(false);
            }
            let mark = self.cached(tx, MARK_FIRED)?;
            tx.execute(
                &mark,
                &[&f.job_no, &f.worker, &f.due, &now, &f.next_run, &f.notes],
            )?;
            Ok(true)
        })
    }

    fn run_program(&self, job_no: i64, due: &str, p: &Program) -> Result<()> {
        self.client()
            .execute(
                "UPDATE job_runs SET pid = $3, host = $4, pid_start = $5
                 WHERE job_no = $1 AND due = $2",
                &[&job_no, &due, &p.pid, &p.host, &p.started],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn run_output(&self, job_no: i64, due: &str, output: &str) -> Result<()> {
        self.client()
            .execute(
                "UPDATE job_runs SET output = $3 WHERE job_no = $1 AND due = $2",
                &[&job_no, &due, &output],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn finish_run(&self, job_no: i64, due: &str, worker: &str, end: &RunEnd) -> Result<bool> {
        self.tx(|tx| finish(tx, job_no, due, worker, end))
    }

    /// The caller judged `worker` dead on its own clock and by its pid;
    /// here the database's clock has the last word: a node on another
    /// host whose heartbeat is younger than the dead time there is alive,
    /// and its run is left to it (false). On this host its pid is checked
    /// again, so that a kill -9 is recovered at once, as on SQLite.
    fn recover_run(&self, job_no: i64, due: &str, worker: &str, end: &RunEnd) -> Result<bool> {
        let dead_after_ms =
            i64::try_from(crate::knobs::dead_after().as_millis()).unwrap_or(i64::MAX);
        let here = crate::owner::hostname();
        self.tx(|tx| {
            let node = tx.query_opt(
                "SELECT host, pid, heartbeat_at,
                     status IN ('RUNNING', 'STOPPING') AND heartbeat_at >= batchsh_ago($2)
                 FROM nodes WHERE worker_id = $1 FOR UPDATE",
                &[&worker, &dead_after_ms],
            )?;
            if let Some(n) = node {
                let (host, pid, heartbeat): (String, i64, String) =
                    (n.try_get(0)?, n.try_get(1)?, n.try_get(2)?);
                let beating: bool = n.try_get(3)?;
                let gone_here =
                    host == here && !crate::owner::process_alive(&host, pid, &heartbeat);
                if beating && !gone_here {
                    return Ok(false);
                }
            }
            if !finish(tx, job_no, due, worker, end)? {
                return Ok(false);
            }
            super::nodes::declare_dead(tx, worker, false)?;
            Ok(true)
        })
    }

    fn change_job(&self, job_no: i64, expect: &[JobStatus], c: &JobChange) -> Result<bool> {
        let expect: Vec<&str> = expect.iter().map(|s| s.as_str()).collect();
        let status = c.status.map(JobStatus::as_str);
        let fields: [(&str, Option<&(dyn ToSql + Sync)>); 6] = [
            ("status", status.as_ref().map(|v| v as _)),
            ("next_run", c.next_run.as_ref().map(|v| v as _)),
            ("affinity", c.affinity.as_ref().map(|v| v as _)),
            ("schedule", c.schedule.as_ref().map(|v| v as _)),
            ("end_time", c.end_time.as_ref().map(|v| v as _)),
            ("notes", c.notes.as_ref().map(|v| v as _)),
        ];
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&job_no, &expect];
        let mut sets = Vec::new();
        for (column, value) in fields {
            if let Some(v) = value {
                args.push(v);
                sets.push(format!("{column} = ${}", args.len()));
            }
        }
        if sets.is_empty() {
            sets.push("status = status".into());
        }
        // One statement: the status is checked on the row it changes.
        let sql = format!(
            "UPDATE jobs SET {} WHERE job_no = $1 AND status = ANY($2)",
            sets.join(", ")
        );
        self.tx(|tx| Ok(tx.execute(sql.as_str(), &args)? == 1))
    }

    fn delete_job(&self, job_no: i64) -> Result<bool> {
        // Its runs go with it (ON DELETE CASCADE).
        self.tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM jobs WHERE job_no = $1 AND status NOT IN ('IN_PROCESS', 'STOPPING')",
                &[&job_no],
            )? == 1)
        })
    }

    fn job_runs(&self, job_no: Option<i64>, limit: usize) -> Result<Vec<RunRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .query(
                "SELECT r.job_no, j.type, j.name, j.uid, r.due, r.node, r.worker, r.start_time,
                     r.end_time, r.status, r.late_ms, r.skipped, r.output, r.error, r.exit_code,
                     r.pid, r.host, r.pid_start
                 FROM job_runs AS r JOIN jobs AS j USING (job_no)
                 WHERE $1::bigint IS NULL OR r.job_no = $1
                 ORDER BY r.due DESC, r.job_no LIMIT $2",
                &[&job_no, &limit],
            )
            .map_err(|e| self.err(e))?;
        rows.iter().map(|r| self.run_row(r)).collect()
    }
}

/// Ends a run that is still under way and still `worker`'s, and moves
/// its job on (see [`JobStore::finish_run`]); false when it was not (and
/// nothing was written).
fn finish(
    tx: &mut postgres::Transaction<'_>,
    job_no: i64,
    due: &str,
    worker: &str,
    end: &RunEnd,
) -> std::result::Result<bool, TxError> {
    let now = end.ended;
    let ended = tx.execute(
        "UPDATE job_runs SET status = $4, end_time = $5, output = coalesce($6, output),
             error = $7, exit_code = $8
         WHERE job_no = $1 AND due = $2 AND worker = $3 AND status = 'IN_PROCESS'",
        &[
            &job_no,
            &due,
            &worker,
            &end.status.as_str(),
            &now,
            &end.output,
            &end.error,
            &end.exit_code,
        ],
    )?;
    if ended != 1 {
        return Ok(false);
    }
    let after_once = end.job_after_once().as_str();
    tx.execute(
        "UPDATE jobs SET
             status = CASE
                 WHEN status = 'STOPPING' THEN 'TERMINATED'
                 WHEN $3::text IS NULL THEN $4::text
                 ELSE 'SCHEDULED' END,
             next_run = CASE WHEN status = 'STOPPING' THEN NULL ELSE $3::text END,
             end_time = $2, output = coalesce($5, output), notes = $6
         WHERE job_no = $1 AND status IN ('IN_PROCESS', 'STOPPING')",
        &[
            &job_no,
            &now,
            &end.next_run,
            &after_once,
            &end.output,
            &end.notes,
        ],
    )?;
    Ok(true)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ast::JobType;
    use crate::store::Upgrades;
    use crate::store::postgres::testing::fresh;
    use std::sync::Barrier;

    /// Runs `f` on `n` threads at once, each with a store of its own on
    /// `url` (as processes have) and the barrier they share; their
    /// results, by thread.
    pub fn on_stores<T: Send>(
        url: &str,
        n: usize,
        f: impl Fn(usize, &PgStore, &Barrier) -> T + Sync,
    ) -> Vec<T> {
        let barrier = Barrier::new(n);
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (f, barrier) = (&f, &barrier);
                    scope.spawn(move || {
                        let store = PgStore::open(url, Upgrades::Silent).unwrap();
                        f(i, &store, barrier)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    pub fn job(name: &str, next_run: &str) -> NewJob {
        NewJob {
            job_type: JobType::Statement,
            name: name.into(),
            uid: String::new(),
            affinity: None,
            schedule: Some("EVERY 1 MINUTE".into()),
            statement: "BATCH_LIST".into(),
            args: None,
            timeout_ms: Some(5000),
            workdir: None,
            next_run: next_run.into(),
            short_form: false,
        }
    }

    pub fn fire<'a>(
        job_no: i64,
        last_due: Option<&'a str>,
        due: &'a str,
        worker: &'a str,
    ) -> Fire<'a> {
        Fire {
            job_no,
            last_due,
            due,
            node: "n1",
            worker,
            late_ms: 0,
            skipped: 0,
            next_run: None,
            notes: None,
        }
    }

    pub fn end<'a>(status: RunStatus, next_run: Option<&'a str>) -> RunEnd<'a> {
        RunEnd {
            status,
            output: Some("out"),
            error: None,
            exit_code: Some(0),
            next_run,
            notes: None,
            ended: "2026-01-01T00:00:30.000Z",
        }
    }

    /// A batch row, as the batches trait would write it, for the triggers.
    pub fn insert_batch(s: &PgStore, bid: &str, status: &str) {
        s.client()
            .execute(
                "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments,
                     status, execution_id, created_by, creation_time)
                 VALUES ($1, 'BATCH c', 'lu', 'c', 's', '{}', $2, 'x', 'me',
                     '2026-01-01T00:00:00.000Z')",
                &[&bid, &status],
            )
            .unwrap();
    }

    fn one(s: &PgStore, name: &str) -> JobRow {
        s.jobs()
            .unwrap()
            .into_iter()
            .find(|j| j.name == name)
            .unwrap()
    }

    const DUE: &str = "2026-01-01T00:00:00.000Z";

    #[test]
    fn a_job_is_stored_once_and_read_back() {
        let Some(s) = fresh("a_job_is_stored_once_and_read_back") else {
            return;
        };
        s.create_job(&job("b", DUE)).unwrap();
        s.create_job(&job("a", DUE)).unwrap();
        let e = s.create_job(&job("a", DUE)).unwrap_err();
        assert!(
            matches!(&e, StoreError::JobExists { label, .. } if label == "STATEMENT a"),
            "{e}"
        );
        let mut with_uid = job("a", DUE);
        with_uid.uid = "u1".into();
        s.create_job(&with_uid).unwrap();
        let e = s.create_job(&with_uid).unwrap_err().to_string();
        assert!(
            e.contains("job STATEMENT a (UID 'u1') exists already"),
            "{e}"
        );
        let jobs = s.jobs().unwrap();
        let names: Vec<_> = jobs
            .iter()
            .map(|j| (j.name.as_str(), j.uid.as_str()))
            .collect();
        assert_eq!(names, [("a", ""), ("a", "u1"), ("b", "")]);
        let a = &jobs[0];
        assert_eq!(
            (a.status, a.timeout_ms, a.next_run.as_deref(), a.archived),
            (JobStatus::Scheduled, Some(5000), Some(DUE), false)
        );
        assert_eq!(s.job(a.job_no).unwrap().as_ref(), Some(a));
        assert_eq!(s.job(9999).unwrap(), None);
    }

    #[test]
    fn a_due_job_fires_once_for_its_due_time_and_goes_on() {
        let Some(s) = fresh("a_due_job_fires_once_for_its_due_time_and_goes_on") else {
            return;
        };
        s.create_job(&job("j", DUE)).unwrap();
        s.create_job(&job("later", "2026-01-02T00:00:00.000Z"))
            .unwrap();
        let due: Vec<_> = s
            .due_jobs(DUE)
            .unwrap()
            .into_iter()
            .map(|j| j.name)
            .collect();
        assert_eq!(due, ["j"]);
        let no = one(&s, "j").job_no;
        assert!(s.fire(&fire(no, None, DUE, "w1")).unwrap());
        // Fired: neither the same due time again nor a stale reading fires.
        assert!(!s.fire(&fire(no, None, DUE, "w2")).unwrap());
        assert!(
            !s.fire(&fire(no, Some(DUE), "2026-01-01T00:01:00.000Z", "w2"))
                .unwrap()
        );
        let j = one(&s, "j");
        assert_eq!(
            (j.status, j.owner_worker.as_deref(), j.last_due.as_deref()),
            (JobStatus::InProcess, Some("w1"), Some(DUE))
        );
        assert!(s.due_jobs(DUE).unwrap().is_empty());
        assert_eq!(
            s.running_jobs()
                .unwrap()
                .iter()
                .map(|j| j.job_no)
                .collect::<Vec<_>>(),
            [no]
        );
        s.run_output(no, DUE, "bid-1").unwrap();
        s.run_program(
            no,
            DUE,
            &Program {
                pid: 42,
                host: "h",
                started: Some("t"),
            },
        )
        .unwrap();
        let next = "2026-01-01T00:01:00.000Z";
        // Only its worker ends it, once.
        assert!(
            !s.finish_run(no, DUE, "w2", &end(RunStatus::Processed, Some(next)))
                .unwrap()
        );
        assert!(
            s.finish_run(no, DUE, "w1", &end(RunStatus::Processed, Some(next)))
                .unwrap()
        );
        assert!(
            !s.finish_run(no, DUE, "w1", &end(RunStatus::Processed, Some(next)))
                .unwrap()
        );
        let j = one(&s, "j");
        assert_eq!(
            (j.status, j.next_run.as_deref(), j.output.as_deref()),
            (JobStatus::Scheduled, Some(next), Some("out"))
        );
        let runs = s.job_runs(Some(no), 10).unwrap();
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(
            (
                r.status,
                r.due.as_str(),
                r.worker.as_str(),
                r.pid,
                r.host.as_deref()
            ),
            (RunStatus::Processed, DUE, "w1", Some(42), Some("h"))
        );
        assert_eq!(r.output.as_deref(), Some("out"));
        // The next due time fires with the last one read.
        assert!(s.fire(&fire(no, Some(DUE), next, "w2")).unwrap());
        let runs = s.job_runs(None, 10).unwrap();
        assert_eq!(
            runs.iter().map(|r| r.due.as_str()).collect::<Vec<_>>(),
            [next, DUE]
        );
        assert_eq!(s.job_runs(None, 1).unwrap().len(), 1);
    }

    #[test]
    fn a_run_ends_its_job_as_its_schedule_and_its_stop_say() {
        let Some(s) = fresh("a_run_ends_its_job_as_its_schedule_and_its_stop_say") else {
            return;
        };
        for (name, status, stop, after) in [
            ("once", RunStatus::Processed, false, JobStatus::Processed),
            ("failed", RunStatus::Failed, false, JobStatus::Failed),
            ("stopped", RunStatus::Processed, true, JobStatus::Terminated),
        ] {
            s.create_job(&job(name, DUE)).unwrap();
            let no = one(&s, name).job_no;
            assert!(s.fire(&fire(no, None, DUE, "w1")).unwrap());
            if stop {
                let change = JobChange {
                    status: Some(JobStatus::Stopping),
                    ..JobChange::default()
                };
                assert!(s.change_job(no, &[JobStatus::InProcess], &change).unwrap());
                // Running, it is not deleted.
                assert!(!s.delete_job(no).unwrap());
            }
            let next = if stop {
                Some("2026-01-02T00:00:00.000Z")
            } else {
                None
            };
            assert!(s.finish_run(no, DUE, "w1", &end(status, next)).unwrap());
            let j = one(&s, name);
            assert_eq!((j.status, j.next_run), (after, None), "{name}");
            assert_eq!(j.end_time.as_deref(), Some("2026-01-01T00:00:30.000Z"));
        }
    }

    #[test]
    fn a_job_changes_only_from_the_statuses_expected() {
        let Some(s) = fresh("a_job_changes_only_from_the_statuses_expected") else {
            return;
        };
        s.create_job(&job("j", DUE)).unwrap();
        let no = one(&s, "j").job_no;
        let change = JobChange {
            status: Some(JobStatus::Restart),
            next_run: Some(None),
            affinity: Some(Some("dc1")),
            notes: Some(Some("why")),
            ..JobChange::default()
        };
        assert!(!s.change_job(no, &[JobStatus::InProcess], &change).unwrap());
        assert_eq!(one(&s, "j").status, JobStatus::Scheduled);
        assert!(
            s.change_job(no, &[JobStatus::InProcess, JobStatus::Scheduled], &change)
                .unwrap()
        );
        let j = one(&s, "j");
        assert_eq!(
            (
                j.status,
                j.next_run,
                j.affinity.as_deref(),
                j.notes.as_deref(),
                j.schedule.as_deref()
            ),
            (
                JobStatus::Restart,
                None,
                Some("dc1"),
                Some("why"),
                Some("EVERY 1 MINUTE")
            )
        );
        // Nothing to change: whether the status was expected.
        assert!(
            s.change_job(no, &[JobStatus::Restart], &JobChange::default())
                .unwrap()
        );
        assert!(
            !s.change_job(9999, &[JobStatus::Restart], &JobChange::default())
                .unwrap()
        );
        // Firable again (RESTART), fired, ended: then deleted with its runs.
        assert!(s.fire(&fire(no, None, DUE, "w1")).unwrap());
        assert!(!s.delete_job(no).unwrap());
        assert!(
            s.finish_run(no, DUE, "w1", &end(RunStatus::Processed, None))
                .unwrap()
        );
        assert!(s.delete_job(no).unwrap());
        assert!(s.jobs().unwrap().is_empty());
        assert!(s.job_runs(None, 10).unwrap().is_empty());
    }

    fn node(s: &PgStore, worker: &str, host: &str, pid: i64, heartbeat: &str) {
        s.client()
            .execute(
                &format!(
                    "INSERT INTO nodes (worker_id, node, dc, host, pid, kind, status,
                         started_at, heartbeat_at)
                     VALUES ($1, 'n', 'dc', $2, $3, 'worker', 'RUNNING', {heartbeat}, {heartbeat})"
                ),
                &[&worker, &host, &pid],
            )
            .unwrap();
    }

    fn node_status(s: &PgStore, worker: &str) -> String {
        s.client()
            .query_one("SELECT status FROM nodes WHERE worker_id = $1", &[&worker])
            .unwrap()
            .get(0)
    }

    #[test]
    fn a_dead_runners_run_is_recovered_once_on_the_databases_clock() {
        let Some(s) = fresh("a_dead_runners_run_is_recovered_once_on_the_databases_clock") else {
            return;
        };
        // Another host's nodes: one beat just now on the database's
        // clock, one an hour ago.
        node(&s, "live", "elsewhere.example", 1, "batchsh_now()");
        node(&s, "dead", "elsewhere.example", 1, "batchsh_ago(3600000)");
        s.create_job(&job("a", DUE)).unwrap();
        s.create_job(&job("b", DUE)).unwrap();
        let (a, b) = (one(&s, "a").job_no, one(&s, "b").job_no);
        assert!(s.fire(&fire(a, None, DUE, "live")).unwrap());
        assert!(s.fire(&fire(b, None, DUE, "dead")).unwrap());
        let next = Some("2026-01-01T00:01:00.000Z");
        let failed = RunEnd {
            error: Some("it died"),
            ..end(RunStatus::Failed, next)
        };
        // Alive on the database's clock, whatever the caller's says.
        assert!(!s.recover_run(a, DUE, "live", &failed).unwrap());
        assert_eq!(one(&s, "a").status, JobStatus::InProcess);
        assert_eq!(node_status(&s, "live"), "RUNNING");
        assert!(s.recover_run(b, DUE, "dead", &failed).unwrap());
        assert!(!s.recover_run(b, DUE, "dead", &failed).unwrap());
        assert_eq!(node_status(&s, "dead"), "DEAD");
        let j = one(&s, "b");
        assert_eq!(
            (j.status, j.next_run.as_deref()),
            (JobStatus::Scheduled, next)
        );
        let run = &s.job_runs(Some(b), 1).unwrap()[0];
        assert_eq!(
            (run.status, run.error.as_deref()),
            (RunStatus::Failed, Some("it died"))
        );
        // The dead node, should it wake, ends nothing.
        assert!(
            !s.finish_run(b, DUE, "dead", &end(RunStatus::Processed, None))
                .unwrap()
        );
        // A runner with no node row left is recovered too.
        let due2 = "2026-01-01T00:01:00.000Z";
        assert!(s.fire(&fire(b, Some(DUE), due2, "gone")).unwrap());
        assert!(s.recover_run(b, due2, "gone", &failed).unwrap());
    }

    #[test]
    fn a_runner_of_this_host_whose_process_is_gone_is_recovered_at_once() {
        let Some(s) = fresh("a_runner_of_this_host_whose_process_is_gone_is_recovered_at_once")
        else {
            return;
        };
        // It beat just now, but no process has its pid (a kill -9).
        node(
            &s,
            "killed",
            &crate::owner::hostname(),
            999_999_999,
            "batchsh_now()",
        );
        s.create_job(&job("j", DUE)).unwrap();
        let no = one(&s, "j").job_no;
        assert!(s.fire(&fire(no, None, DUE, "killed")).unwrap());
        assert!(
            s.recover_run(no, DUE, "killed", &end(RunStatus::Failed, None))
                .unwrap()
        );
        assert_eq!(node_status(&s, "killed"), "DEAD");
        assert_eq!(one(&s, "j").status, JobStatus::Failed);
    }

    #[test]
    fn processes_recovering_one_run_at_once_recover_it_once() {
        let Some(s) = fresh("processes_recovering_one_run_at_once_recover_it_once") else {
            return;
        };
        node(&s, "dead", "elsewhere.example", 1, "batchsh_ago(3600000)");
        s.create_job(&job("j", DUE)).unwrap();
        let no = one(&s, "j").job_no;
        assert!(s.fire(&fire(no, None, DUE, "dead")).unwrap());
        let recovered = on_stores(&s.url, 8, |_, store, barrier| {
            barrier.wait();
            let end = end(RunStatus::Failed, Some("2026-01-01T00:01:00.000Z"));
            store.recover_run(no, DUE, "dead", &end).unwrap()
        });
        assert_eq!(recovered.iter().filter(|r| **r).count(), 1, "{recovered:?}");
        assert_eq!(one(&s, "j").status, JobStatus::Scheduled);
    }

    #[test]
    fn workers_firing_one_job_at_once_fire_it_once_per_due_time() {
        let Some(s) = fresh("workers_firing_one_job_at_once_fire_it_once_per_due_time") else {
            return;
        };
        const WORKERS: usize = 8;
        const ROUNDS: usize = 50;
        let due = |round: usize| format!("2026-01-01T{:02}:{:02}:00.000Z", round / 60, round % 60);
        s.create_job(&job("j", &due(0))).unwrap();
        let no = one(&s, "j").job_no;
        let fired = on_stores(&s.url, WORKERS, |w, store, barrier| {
            let worker = format!("w{w}");
            let mut fired = Vec::new();
            for round in 0..ROUNDS {
                let (last, this, next) =
                    (round.checked_sub(1).map(due), due(round), due(round + 1));
                barrier.wait();
                if store
                    .fire(&fire(no, last.as_deref(), &this, &worker))
                    .unwrap()
                {
                    fired.push(round);
                    let end = end(RunStatus::Processed, Some(&next));
                    assert!(store.finish_run(no, &this, &worker, &end).unwrap());
                }
                barrier.wait();
            }
            fired
        });
        let mut fired: Vec<usize> = fired.into_iter().flatten().collect();
        fired.sort_unstable();
        assert_eq!(
            fired,
            (0..ROUNDS).collect::<Vec<_>>(),
            "one run per due time"
        );
        let runs = s.job_runs(Some(no), 1000).unwrap();
        assert_eq!(runs.len(), ROUNDS);
        assert!(runs.iter().all(|r| r.status == RunStatus::Processed));
    }

    #[test]
    fn a_batchs_job_follows_its_batch() {
        let Some(s) = fresh("a_batchs_job_follows_its_batch") else {
            return;
        };
        insert_batch(&s, "b1", "WAITING_FOR_JOB");
        s.client()
            .execute(
                "INSERT INTO jobs (type, name, uid, status, created_at)
                 VALUES ('BATCH_JOB', 'BATCH_JOB_lu', 'b1', 'WAITING', 'now')",
                &[],
            )
            .unwrap();
        let set = |sql: &str| s.client().execute(sql, &[]).unwrap();
        let job = || {
            let j = one(&s, "BATCH_JOB_lu");
            (j.status, j.owner_worker, j.start_time, j.end_time)
        };
        set(
            "UPDATE batches SET status = 'IN_PROGRESS', owner_worker = 'w1',
                 start_time = 't1' WHERE bid = 'b1'",
        );
        assert_eq!(
            job(),
            (
                JobStatus::InProcess,
                Some("w1".into()),
                Some("t1".into()),
                None
            )
        );
        // A new owner: the job's owner follows, its start stays.
        set("UPDATE batches SET owner_worker = 'w2', start_time = 't2' WHERE bid = 'b1'");
        assert_eq!(
            job(),
            (
                JobStatus::InProcess,
                Some("w2".into()),
                Some("t1".into()),
                None
            )
        );
        for (batch, after) in [
            ("DONE", JobStatus::Processed),
            ("FAILED", JobStatus::Failed),
            ("CANCELLED", JobStatus::Terminated),
        ] {
            set(&format!(
                "UPDATE batches SET status = '{batch}', end_time = 'e' WHERE bid = 'b1'"
            ));
            assert_eq!((job().0, job().3), (after, Some("e".into())), "{batch}");
        }
        set("UPDATE batches SET status = 'WAITING_FOR_JOB', end_time = NULL WHERE bid = 'b1'");
        assert_eq!(job(), (JobStatus::Waiting, None, Some("t1".into()), None));
        // Nothing changed of status or owner: the job is left as it is.
        set("UPDATE jobs SET notes = 'kept', status = 'RESTART' WHERE uid = 'b1'");
        set("UPDATE batches SET end_time = 'x' WHERE bid = 'b1'");
        assert_eq!(job().0, JobStatus::Restart);
    }
}
