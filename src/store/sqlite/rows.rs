//! The SQL the batch writes share: the fence, a status change and its
//! event, claims turned into rows, orphans requeued, counters recounted.

use super::SqliteStore;
use crate::batch::Counters;
use crate::batch::{BatchStatus, EntityStatus};
use crate::store::batches::*;
use crate::store::{Result, StoreError};
use rusqlite::{Transaction, params};

impl SqliteStore {
    /// Runs `f` in one IMMEDIATE transaction for `run`, if the batch's
    /// current execution is still the run's (its fencing token); else it
    /// writes nothing and says who runs the batch now
    /// ([`StoreError::TakenOver`]). `f` is given the batch's number.
    pub(super) fn fenced<T>(
        &self,
        run: RunRef,
        f: impl FnOnce(&Transaction, i64) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        type Row = (i64, String, Option<String>, Option<i64>, String);
        let (no, execution_id, node, pid, status): Row = tx
            .prepare_cached(
                "SELECT batch_no, execution_id, owner_node, owner_pid, status
                 FROM batches WHERE bid = ?1",
            )
            .and_then(|mut st| {
                st.query_row([run.bid], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
            })
            .map_err(|e| self.err(e))?;
        if execution_id != run.execution_id {
            // Dropped, the transaction rolls back: nothing of it is written.
            return Err(StoreError::TakenOver {
                bid: run.bid.to_string(),
                node,
                pid,
                status,
            });
        }
        let out = f(&tx, no).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Runs `f` in one IMMEDIATE transaction if the batch's owner, its
    /// heartbeat and its status are still as `seen` (what the caller judged
    /// on); false, changing nothing, if another process changed them.
    pub(super) fn if_as_seen(
        &self,
        bid: &str,
        seen: &BatchState,
        f: impl FnOnce(&Transaction) -> rusqlite::Result<()>,
    ) -> Result<bool> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let same = tx
            .query_row(
                "SELECT count(*) FROM batches WHERE bid = ?1 AND owner_node IS ?2
                     AND owner_pid IS ?3 AND heartbeat_at IS ?4 AND status IS ?5
                     AND execution_id IS ?6",
                params![
                    bid,
                    seen.owner_node,
                    seen.owner_pid,
                    seen.heartbeat_at,
                    seen.status,
                    seen.execution_id
                ],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(e))?
            == 1;
        if !same {
            return Ok(false);
        }
        f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }
}

/// See [`BatchStore::set_run_status`].
pub(super) fn write_status(
    tx: &Transaction,
    bid: &str,
    status: BatchStatus,
    execution_id: &str,
    node: &str,
    note: Option<&str>,
) -> rusqlite::Result<()> {
    let is_final = status.is_final();
    tx.execute(
        "UPDATE batches SET status = ?2, execution_id = ?3,
             start_time = CASE WHEN ?2 IN ('GENERATE_IID_LIST', 'IN_PROGRESS') AND start_time IS NULL THEN ?4 ELSE start_time END,
             end_time = CASE WHEN ?5 THEN ?4 ELSE NULL END,
             error = CASE WHEN ?2 = 'FAILED' THEN ?6 WHEN ?5 THEN error ELSE NULL END,
             owner_node = CASE WHEN ?5 THEN NULL ELSE owner_node END,
             owner_pid = CASE WHEN ?5 THEN NULL ELSE owner_pid END,
             requested = CASE WHEN ?5 THEN NULL ELSE requested END
         WHERE bid = ?1",
        params![bid, status, execution_id, crate::store::now(), is_final, note],
    )?;
    event(tx, bid, execution_id, node, status, note)
}

pub(super) fn event(
    tx: &Transaction,
    bid: &str,
    execution_id: &str,
    node: &str,
    status: BatchStatus,
    note: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO batch_events (bid, execution_id, time, node, status, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![bid, execution_id, crate::store::now(), node, status, note],
    )?;
    Ok(())
}

/// The claims a dead run left (see the module doc) become IN_PROCESS rows
/// of their own, so that what is done with orphaned IN_PROCESS entities
/// (retried, cancelled) is done with them too. The entities of a claim
/// that have a row already (their outcome was committed) keep it.
pub(super) fn materialize_claims(tx: &Transaction, bid: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO batch_entities (batch, seq, entity_id, status, attempts, node, start_time_ms)
         SELECT batch, seq, entity_id, 'IN_PROCESS', 1, node, start_time_ms FROM batch_claimed
         WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
        [bid],
    )?;
    tx.execute(
        "DELETE FROM batch_claims WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
        [bid],
    )?;
    Ok(())
}

/// Every IN_PROCESS entity of the batch (claims included) waits again.
/// The counters are left to the caller's recount.
pub(super) fn requeue_in_process(tx: &Transaction, bid: &str, no: i64) -> rusqlite::Result<()> {
    materialize_claims(tx, bid)?;
    tx.execute(
        "UPDATE batch_entities SET status = 'WAITING', retry_at_ms = NULL
         WHERE batch = ?1 AND status <> 'COMPLETED' AND status = 'IN_PROCESS'",
        [no],
    )
    .map(drop)
}

/// Counters recomputed from the entity rows, and written to the batch row.
pub(super) fn recount(tx: &Transaction, bid: &str) -> rusqlite::Result<Counters> {
    let mut c = Counters::default();
    {
        let mut st = tx.prepare(
            "SELECT status, count(*) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) GROUP BY status",
        )?;
        let mut rows = st.query([bid])?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(1)?;
            match r.get::<_, EntityStatus>(0)? {
                EntityStatus::Waiting => c.waiting = n,
                EntityStatus::InProcess => c.in_process = n,
                EntityStatus::Completed => c.completed = n,
                EntityStatus::Failed => c.failed = n,
                EntityStatus::Cancelled => c.cancelled = n,
            }
        }
    }
    c.total = c.waiting + c.in_process + c.completed + c.failed + c.cancelled;
    let (added, updated, unchanged): (i64, i64, i64) = tx.query_row(
        "SELECT coalesce(sum(json_extract(result, '$.Added')), 0),
                coalesce(sum(json_extract(result, '$.Updated')), 0),
                coalesce(sum(json_extract(result, '$.Unchanged')), 0)
         FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'COMPLETED' AND json_valid(result)",
        [bid],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    (c.added, c.updated, c.unchanged) = (added, updated, unchanged);
    tx.execute(
        "UPDATE batches SET total = ?2, waiting = ?3, in_process = ?4, completed = ?5, failed = ?6,
             cancelled = ?7, added = ?8, updated = ?9, unchanged = ?10 WHERE bid = ?1",
        params![
            bid,
            c.total,
            c.waiting,
            c.in_process,
            c.completed,
            c.failed,
            c.cancelled,
            c.added,
            c.updated,
            c.unchanged
        ],
    )?;
    Ok(c)
}

/// An active (not final) batch other than `except` whose command text is
/// `command`, the oldest: what `ALLOW_MULTIPLE=false` refuses to run beside
/// (a new batch, or a retry).
pub(super) fn active_twin(
    tx: &Transaction,
    command: &str,
    except: &str,
) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    tx.query_row(
        "SELECT bid FROM batches WHERE command = ?1 AND bid <> ?2
             AND status NOT IN ('DONE', 'FAILED', 'CANCELLED')
         ORDER BY batch_no LIMIT 1",
        [command, except],
        |r| r.get(0),
    )
    .optional()
}
