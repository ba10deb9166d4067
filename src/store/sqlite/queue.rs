//! The queue of asynchronous batches in SQLite (see
//! [`crate::store::queue`]).

use super::SqliteStore;
use super::nodes::{NODE_COLUMNS, node_at};
use super::rows::event;
use crate::batch::BatchStatus;
use crate::store::Result;
use crate::store::batches::BatchState;
use crate::store::queue::*;
use rusqlite::{OptionalExtension, Transaction, params};

/// The columns of a batches row that [`async_batch`] reads.
const ASYNC_COLUMNS: &str = "bid, execution_id, status, command, ids_complete, placement";

fn async_batch(r: &rusqlite::Row) -> rusqlite::Result<AsyncBatch> {
    Ok(AsyncBatch::from_stored(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        &r.get::<_, String>(5)?,
    ))
}

impl QueueStore for SqliteStore {
    fn waiting_jobs(&self) -> Result<Vec<AsyncBatch>> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<AsyncBatch>> {
            let mut st = conn.prepare(&format!(
                "SELECT {ASYNC_COLUMNS} FROM batches WHERE status = 'WAITING_FOR_JOB'
                 ORDER BY batch_no"
            ))?;
            let rows = st.query_map([], async_batch)?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    fn take_job(
        &self,
        bid: &str,
        node: &str,
        worker: &str,
        execution_id: &str,
        processes: bool,
    ) -> Result<Option<AsyncBatch>> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let take = || -> rusqlite::Result<Option<AsyncBatch>> {
            let taken = tx
                .query_row(
                    &format!(
                        "UPDATE batches SET status = 'NEW', execution_id = ?2, owner_node = ?3,
                             owner_pid = ?4, heartbeat_at = ?5, owner_worker = NULL,
                             requested = NULL
                         WHERE bid = ?1 AND status = 'WAITING_FOR_JOB'
                         RETURNING {ASYNC_COLUMNS}"
                    ),
                    params![
                        bid,
                        execution_id,
                        node,
                        i64::from(std::process::id()),
                        crate::store::now()
                    ],
                    async_batch,
                )
                .optional()?;
            if let Some(b) = taken.as_ref().filter(|_| processes) {
                tx.execute(
                    "INSERT INTO batch_workers (batch, worker, joined_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    params![b.bid, worker, crate::store::now()],
                )?;
            }
            if let Some(b) = &taken {
                event(
                    &tx,
                    &b.bid,
                    execution_id,
                    node,
                    BatchStatus::New,
                    Some(TAKEN_NOTE),
                )?;
            }
            Ok(taken)
        };
        let taken = take().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(taken)
    }

    fn async_batches(&self) -> Result<Vec<(AsyncBatch, BatchState)>> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<(AsyncBatch, BatchState)>> {
            let mut st = conn.prepare(&format!(
                "SELECT {ASYNC_COLUMNS}, owner_node, owner_pid, heartbeat_at, requested,
                     owner_worker
                 FROM batches
                 WHERE status IN ('NEW', 'GENERATE_IID_LIST', 'IN_PROGRESS', 'PAUSED')
                     AND (json_extract(arguments, '$.ASYNC') = 1 OR open IS NOT NULL)
                 ORDER BY batch_no"
            ))?;
            let rows = st.query_map([], |r| {
                let b = async_batch(r)?;
                let state = b.state(r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?);
                Ok((b, state))
            })?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    fn queue_job(&self, bid: &str, node: &str) -> Result<()> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let queue = || -> rusqlite::Result<()> {
            let execution_id: String = tx.query_row(
                "UPDATE batches SET status = 'WAITING_FOR_JOB', owner_node = NULL,
                     owner_pid = NULL, owner_worker = NULL, end_time = NULL
                 WHERE bid = ?1 RETURNING execution_id",
                [bid],
                |r| r.get(0),
            )?;
            tx.execute("DELETE FROM batch_workers WHERE batch = ?1", [bid])?;
            event(
                &tx,
                bid,
                &execution_id,
                node,
                BatchStatus::WaitingForJob,
                Some(QUEUED_NOTE),
            )
        };
        queue().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn enter_batch(
        &self,
        bid: &str,
        worker: &str,
        max_nodes: Option<usize>,
        owner: bool,
    ) -> Result<bool> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let enter = || -> rusqlite::Result<bool> {
            if let (Some(max), false) = (max_nodes, owner) {
                let mut st = tx.prepare(&format!(
                    "SELECT {NODE_COLUMNS} FROM batch_workers AS p
                     JOIN nodes AS n ON n.worker_id = p.worker
                     WHERE p.batch = ?1 AND p.worker <> ?2"
                ))?;
                let others = st
                    .query_map(params![bid, worker], |r| node_at(r, 0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                if others.iter().filter(|n| n.alive()).count() >= max {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO batch_workers (batch, worker, joined_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![bid, worker, crate::store::now()],
            )?;
            Ok(true)
        };
        let entered = enter().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(entered)
    }

    fn leave_batch(&self, bid: &str, worker: &str) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM batch_workers WHERE batch = ?1 AND worker = ?2",
                params![bid, worker],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn batch_job(&self, bid: &str) -> Result<Option<BatchJob>> {
        self.conn()
            .query_row(
                "SELECT name, status, owner_worker, start_time, end_time FROM jobs
                 WHERE type = 'BATCH_JOB' AND uid = ?1",
                [bid],
                |r| {
                    let status: String = r.get(1)?;
                    Ok(BatchJob::from_stored(
                        r.get(0)?,
                        &status,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
