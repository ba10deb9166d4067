//! Jobs and their runs in SQLite (see [`crate::store::jobs`]).

use super::SqliteStore;
use crate::batch::JobStatus;
use crate::store::Result;
use crate::store::jobs::*;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

const JOB_COLUMNS: &str = "job_no, type, name, uid, status, affinity, schedule, statement, args, \
     timeout_ms, workdir, created_at, start_time, end_time, next_run, owner_worker, notes, output, \
     archived, last_due, short_form";

fn job_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    JobRow::read(r, |r| r.get(4))
}

fn run_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
    RunRow::read(r, |r| r.get(9))
}

/// The statuses in which a job is fired when its time comes.
const FIRABLE: &str = "('SCHEDULED', 'RESTART', 'WAITING')";

impl SqliteStore {
    fn select_jobs(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> rusqlite::Result<Vec<JobRow>> {
        let mut st = self
            .conn()
            .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs {filter}"))?;
        let rows = st.query_map(args, job_row)?;
        rows.collect()
    }

    pub(super) fn immediate(&self) -> Result<Transaction<'_>> {
        Transaction::new_unchecked(self.conn(), TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))
    }
}

impl JobStore for SqliteStore {
    fn create_job(&self, j: &NewJob) -> Result<()> {
        let tx = self.immediate()?;
        let r = tx.execute(
            "INSERT INTO jobs (type, name, uid, status, affinity, schedule, statement, args,
                 timeout_ms, workdir, created_at, next_run, short_form)
             VALUES (?1, ?2, ?3, 'SCHEDULED', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (type, name, uid) DO NOTHING",
            params![
                j.job_type.keyword(),
                j.name,
                j.uid,
                j.affinity,
                j.schedule,
                j.statement,
                j.args,
                j.stored_timeout(),
                j.workdir,
                crate::store::now(),
                j.next_run,
                j.short_form,
            ],
        );
        match r {
            Ok(1) => tx.commit().map_err(|e| self.err(e)),
            Ok(_) => Err(j.exists()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn jobs(&self) -> Result<Vec<JobRow>> {
        self.select_jobs("ORDER BY type, name, uid", [])
            .map_err(|e| self.err(e))
    }

    fn due_jobs(&self, now: &str) -> Result<Vec<JobRow>> {
        self.select_jobs(
            &format!(
                "WHERE next_run <= ?1 AND type <> 'BATCH_JOB' AND status IN {FIRABLE}
                 ORDER BY next_run, job_no"
            ),
            [now],
        )
        .map_err(|e| self.err(e))
    }

    fn running_jobs(&self) -> Result<Vec<JobRow>> {
        self.select_jobs(
            "WHERE type <> 'BATCH_JOB' AND status IN ('IN_PROCESS', 'STOPPING')
             ORDER BY job_no",
            [],
        )
        .map_err(|e| self.err(e))
    }

    fn fire(&self, f: &Fire) -> Result<bool> {
        let tx = self.immediate()?;
        let fire = || -> rusqlite::Result<bool> {
            let now = crate::store::now();
            let moved = tx.execute(
                &format!(
                    "UPDATE jobs SET status = 'IN_PROCESS', owner_worker = ?3, last_due = ?4,
                         start_time = ?5, next_run = ?6, notes = ?7
                     WHERE job_no = ?1 AND last_due IS ?2 AND status IN {FIRABLE}"
                ),
                params![
                    f.job_no, f.last_due, f.worker, f.due, now, f.next_run, f.notes
                ],
            )?;
            if moved != 1 {
                return Ok(false);
            }
            let written = tx.execute(
                "INSERT INTO job_runs (job_no, due, node, worker, start_time, status, late_ms,
                     skipped)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'IN_PROCESS', ?6, ?7)
                 ON CONFLICT DO NOTHING",
                params![f.job_no, f.due, f.node, f.worker, now, f.late_ms, f.skipped],
            )?;
            Ok(written == 1)
        };
        match fire() {
            Ok(true) => tx.commit().map(|()| true).map_err(|e| self.err(e)),
            // Dropped: rolled back.
            Ok(false) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    fn run_output(&self, job_no: i64, due: &str, output: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE job_runs SET output = ?3 WHERE job_no = ?1 AND due = ?2",
                params![job_no, due, output],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn finish_run(&self, job_no: i64, due: &str, worker: &str, end: &RunEnd) -> Result<bool> {
        let tx = self.immediate()?;
        match finish(&tx, job_no, due, worker, end) {
            Ok(true) => tx.commit().map(|()| true).map_err(|e| self.err(e)),
            Ok(false) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    fn recover_run(&self, job_no: i64, due: &str, worker: &str, end: &RunEnd) -> Result<bool> {
        let tx = self.immediate()?;
        let recover = || -> rusqlite::Result<bool> {
            tx.execute(
                "UPDATE nodes SET status = 'DEAD'
                 WHERE worker_id = ?1 AND status IN ('RUNNING', 'STOPPING')",
                [worker],
            )?;
            finish(&tx, job_no, due, worker, end)
        };
        match recover() {
            Ok(true) => tx.commit().map(|()| true).map_err(|e| self.err(e)),
            Ok(false) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    fn job(&self, job_no: i64) -> Result<Option<JobRow>> {
        self.select_jobs("WHERE job_no = ?1", [job_no])
            .map(|mut jobs| jobs.pop())
            .map_err(|e| self.err(e))
    }

    fn run_program(&self, job_no: i64, due: &str, p: &Program) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE job_runs SET pid = ?3, host = ?4, pid_start = ?5
                 WHERE job_no = ?1 AND due = ?2",
                params![job_no, due, p.pid, p.host, p.started],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn change_job(&self, job_no: i64, expect: &[JobStatus], c: &JobChange) -> Result<bool> {
        let tx = self.immediate()?;
        let change = || -> rusqlite::Result<bool> {
            let status: Option<JobStatus> = tx
                .query_row("SELECT status FROM jobs WHERE job_no = ?1", [job_no], |r| {
                    r.get(0)
                })
                .optional()?;
            if !status.is_some_and(|s| expect.contains(&s)) {
                return Ok(false);
            }
            let set = |column: &str, value: &dyn rusqlite::ToSql| {
                tx.execute(
                    &format!("UPDATE jobs SET {column} = ?2 WHERE job_no = ?1"),
                    params![job_no, value],
                )
            };
            if let Some(s) = c.status {
                set("status", &s)?;
            }
            if let Some(v) = c.next_run {
                set("next_run", &v)?;
            }
            if let Some(v) = c.affinity {
                set("affinity", &v)?;
            }
            if let Some(v) = c.schedule {
                set("schedule", &v)?;
            }
            if let Some(v) = c.end_time {
                set("end_time", &v)?;
            }
            if let Some(v) = c.notes {
                set("notes", &v)?;
            }
            Ok(true)
        };
        match change() {
            Ok(true) => tx.commit().map(|()| true).map_err(|e| self.err(e)),
            Ok(false) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    fn delete_job(&self, job_no: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let delete = || -> rusqlite::Result<bool> {
            tx.execute("DELETE FROM job_runs WHERE job_no = ?1 AND NOT EXISTS (SELECT 1 FROM jobs WHERE job_no = ?1 AND status IN ('IN_PROCESS', 'STOPPING'))", [job_no])?;
            Ok(tx.execute(
                "DELETE FROM jobs WHERE job_no = ?1 AND status NOT IN ('IN_PROCESS', 'STOPPING')",
                [job_no],
            )? == 1)
        };
        match delete() {
            Ok(true) => tx.commit().map(|()| true).map_err(|e| self.err(e)),
            Ok(false) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    fn job_runs(&self, job_no: Option<i64>, limit: usize) -> Result<Vec<RunRow>> {
        let read = || -> rusqlite::Result<Vec<RunRow>> {
            let mut st = self.conn().prepare_cached(
                "SELECT r.job_no, j.type, j.name, j.uid, r.due, r.node, r.worker, r.start_time,
                     r.end_time, r.status, r.late_ms, r.skipped, r.output, r.error, r.exit_code,
                     r.pid, r.host, r.pid_start
                 FROM job_runs AS r JOIN jobs AS j USING (job_no)
                 WHERE ?1 IS NULL OR r.job_no = ?1
                 ORDER BY r.due DESC, r.job_no LIMIT ?2",
            )?;
            let rows = st.query_map(
                params![job_no, i64::try_from(limit).unwrap_or(i64::MAX)],
                run_row,
            )?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }
}

/// Ends a run that is still under way and still `worker`'s, and moves
/// its job on (see [`JobStore::finish_run`]); false when it was not.
fn finish(
    tx: &Transaction,
    job_no: i64,
    due: &str,
    worker: &str,
    end: &RunEnd,
) -> rusqlite::Result<bool> {
    let now = end.ended;
    let ended = tx.execute(
        "UPDATE job_runs SET status = ?4, end_time = ?5, output = coalesce(?6, output),
             error = ?7, exit_code = ?8
         WHERE job_no = ?1 AND due = ?2 AND worker = ?3 AND status = 'IN_PROCESS'",
        params![
            job_no,
            due,
            worker,
            end.status,
            now,
            end.output,
            end.error,
            end.exit_code
        ],
    )?;
    if ended != 1 {
        return Ok(false);
    }
    let after_once = end.job_after_once();
    tx.execute(
        "UPDATE jobs SET
             status = CASE
                 WHEN status = 'STOPPING' THEN 'TERMINATED'
                 WHEN ?3 IS NULL THEN ?4
                 ELSE 'SCHEDULED' END,
             next_run = CASE WHEN status = 'STOPPING' THEN NULL ELSE ?3 END,
             end_time = ?2, output = coalesce(?5, output), notes = ?6
         WHERE job_no = ?1 AND status IN ('IN_PROCESS', 'STOPPING')",
        params![job_no, now, end.next_run, after_once, end.output, end.notes],
    )?;
    Ok(true)
}
