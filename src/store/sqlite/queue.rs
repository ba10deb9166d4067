//! The queue of asynchronous batches in SQLite (see
//! [`crate::store::queue`]).

use super::SqliteStore;
use super::rows::event;
use crate::batch::BatchStatus;
use crate::store::Result;
use crate::store::batches::BatchState;
use crate::store::queue::*;
use rusqlite::{OptionalExtension, Transaction, params};

impl QueueStore for SqliteStore {
    fn take_job(&self, node: &str, execution_id: &str) -> Result<Option<AsyncBatch>> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let take = || -> rusqlite::Result<Option<AsyncBatch>> {
            let taken = tx
                .query_row(
                    "UPDATE batches SET status = 'NEW', execution_id = ?1, owner_node = ?2,
                         owner_pid = ?3, heartbeat_at = ?4, owner_worker = NULL, requested = NULL
                     WHERE bid = (SELECT bid FROM batches WHERE status = 'WAITING_FOR_JOB'
                                  ORDER BY batch_no LIMIT 1)
                     RETURNING bid, command, ids_complete",
                    params![
                        execution_id,
                        node,
                        i64::from(std::process::id()),
                        crate::store::now()
                    ],
                    |r| {
                        Ok(AsyncBatch {
                            bid: r.get(0)?,
                            execution_id: execution_id.to_string(),
                            status: BatchStatus::New,
                            command: r.get(1)?,
                            ids_complete: r.get::<_, i64>(2)? != 0,
                        })
                    },
                )
                .optional()?;
            if let Some(b) = &taken {
                event(
                    &tx,
                    &b.bid,
                    execution_id,
                    node,
                    BatchStatus::New,
                    Some("job taken"),
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
            let mut st = conn.prepare(
                "SELECT bid, execution_id, status, command, ids_complete, owner_node, owner_pid,
                     heartbeat_at, requested, owner_worker
                 FROM batches
                 WHERE status IN ('NEW', 'GENERATE_IID_LIST', 'IN_PROGRESS', 'PAUSED')
                     AND (json_extract(arguments, '$.ASYNC') = 1 OR open IS NOT NULL)
                 ORDER BY batch_no",
            )?;
            let rows = st.query_map([], |r| {
                let b = AsyncBatch {
                    bid: r.get(0)?,
                    execution_id: r.get(1)?,
                    status: r.get(2)?,
                    command: r.get(3)?,
                    ids_complete: r.get::<_, i64>(4)? != 0,
                };
                let state = BatchState {
                    status: b.status,
                    execution_id: b.execution_id.clone(),
                    ids_complete: b.ids_complete,
                    owner_node: r.get(5)?,
                    owner_pid: r.get(6)?,
                    heartbeat_at: r.get(7)?,
                    command: b.command.clone(),
                    requested: r.get(8)?,
                    owner_worker: r.get(9)?,
                };
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
            event(
                &tx,
                bid,
                &execution_id,
                node,
                BatchStatus::WaitingForJob,
                Some("queued again"),
            )
        };
        queue().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }
}
