//! The SQL the batch writes share: the fence, a status change and its
//! event, claims turned into rows, orphans requeued, counters recounted.

use super::SqliteStore;
use super::nodes::{NODE_COLUMNS, node_at};
use crate::batch::Counters;
use crate::batch::{BatchStatus, EntityStatus};
use crate::store::Result;
use crate::store::batches::*;
use crate::store::holders::Holders;
use rusqlite::{Transaction, params};

impl SqliteStore {
    /// Runs `f` in one IMMEDIATE transaction for `run`, if the batch's
    /// current execution is still the run's (its fencing token) and its
    /// node was not declared dead; else it writes nothing and says who
    /// runs the batch now ([`RunRef::fence`]). `f` is given the batch's
    /// number.
    pub(super) fn fenced<T>(
        &self,
        run: RunRef,
        f: impl FnOnce(&Transaction, i64) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        type Row = (i64, String, Option<String>, Option<i64>, String, bool);
        let (no, execution_id, node, pid, status, dead): Row = tx
            .prepare_cached(
                "SELECT batch_no, execution_id, owner_node, owner_pid, status,
                     EXISTS (SELECT 1 FROM nodes WHERE worker_id = ?2 AND status = 'DEAD')
                 FROM batches WHERE bid = ?1",
            )
            .and_then(|mut st| {
                st.query_row([run.bid, run.worker], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
            })
            .map_err(|e| self.err(e))?;
        // Another run holds the batch now, or another node declared this
        // one dead: dropped, the transaction rolls back, and nothing of it
        // is written.
        if let Some(refusal) = run.fence(&execution_id, dead, &status, || (node, pid)) {
            return Err(refusal);
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

/// The number of batch `bid`, which keys its entity rows and claims.
pub(super) fn batch_no(tx: &Transaction, bid: &str) -> rusqlite::Result<i64> {
    tx.query_row("SELECT batch_no FROM batches WHERE bid = ?1", [bid], |r| {
        r.get(0)
    })
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
             owner_worker = CASE WHEN ?5 THEN NULL ELSE owner_worker END,
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

/// The SQL condition on a row with a `worker` column that it belongs to
/// `holders`, given [`taken_back`]'s list bound as `?2`.
fn filter(holders: Holders) -> &'static str {
    match holders {
        Holders::Dead { .. } => "worker IN (SELECT value FROM json_each(?2))",
        _ => HELD_BY,
    }
}

/// The worker ids whose IN_PROCESS entities of batch `no` go back, as a
/// JSON array for `json_each`, or `None` for all of them. Holders found
/// dead that their row still shows running are declared DEAD in the same
/// transaction: should one only have stalled, it writes nothing more.
fn taken_back(tx: &Transaction, no: i64, holders: Holders) -> rusqlite::Result<Option<String>> {
    let Some((own, with_own)) = holders.own() else {
        return Ok(None);
    };
    let mut st = tx.prepare_cached(&format!(
        "SELECT w.worker, n.worker_id IS NOT NULL, {NODE_COLUMNS}
         FROM (SELECT worker FROM batch_entities
               WHERE batch = ?1 AND status <> 'COMPLETED' AND status = 'IN_PROCESS'
                   AND worker IS NOT NULL
               UNION SELECT worker FROM batch_claims WHERE batch = ?1 AND worker IS NOT NULL) AS w
         LEFT JOIN nodes AS n ON n.worker_id = w.worker"
    ))?;
    let mut dead = Vec::new();
    let mut rows = st.query([no])?;
    while let Some(r) = rows.next()? {
        let worker: String = r.get(0)?;
        if own == Some(worker.as_str()) {
            continue;
        }
        let known: bool = r.get(1)?;
        let node = known.then(|| node_at(r, 2)).transpose()?;
        if let Some(mark) = Holders::judge(node.as_ref()) {
            dead.push((worker, mark));
        }
    }
    drop(rows);
    for (worker, mark) in &dead {
        if *mark {
            declare_dead(tx, worker)?;
        }
    }
    let ids = Holders::taken_back(dead, own.filter(|_| with_own));
    Ok(Some(serde_json::Value::from(ids).to_string()))
}

/// Node `worker` is dead, as another node found: it writes nothing more
/// (the fence, [`SqliteStore::fenced`], reads its row).
pub(super) fn declare_dead(tx: &Transaction, worker: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE nodes SET status = 'DEAD' WHERE worker_id = ?1 AND status IN ('RUNNING', 'STOPPING')",
        [worker],
    )
    .map(drop)
}

/// The owner that a takeover (a retry, or a pause or cancel of a batch
/// nobody runs) judged dead as `seen`: the node of its run is declared
/// dead, so that its claims go back even while its process exists (a
/// stalled one) and it writes nothing more. Only that run's node: its
/// process may run other batches meanwhile (a REPL), under other nodes.
pub(super) fn declare_owner_dead(tx: &Transaction, seen: &BatchState) -> rusqlite::Result<()> {
    match &seen.owner_worker {
        Some(worker) => declare_dead(tx, worker),
        None => Ok(()),
    }
}

/// The claims of `holders` (see the module doc) become IN_PROCESS rows of
/// their own, so that what is done with taken back IN_PROCESS entities
/// (retried, cancelled) is done with them too. The entities of a claim
/// that have a row already (their outcome was committed) keep it. Gives
/// the holders' filter, for [`HELD_BY`].
pub(super) fn materialize_claims(
    tx: &Transaction,
    no: i64,
    holders: Holders,
) -> rusqlite::Result<Option<String>> {
    let workers = taken_back(tx, no, holders)?;
    let held = filter(holders);
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO batch_entities
                 (batch, seq, entity_id, status, attempts, node, start_time_ms, worker)
             SELECT batch, seq, entity_id, 'IN_PROCESS', 1, node, start_time_ms, worker
             FROM batch_claimed
             WHERE batch = ?1 AND {held}"
        ),
        params![no, workers],
    )?;
    tx.execute(
        &format!("DELETE FROM batch_claims WHERE batch = ?1 AND {held}"),
        params![no, workers],
    )?;
    Ok(workers)
}

/// The SQL condition on a `batch_entities` row that it belongs to the
/// holders of [`materialize_claims`]'s filter, bound as `?2`.
pub(super) const HELD_BY: &str =
    "(?2 IS NULL OR worker IS NULL OR worker IN (SELECT value FROM json_each(?2)))";

/// The IN_PROCESS entities of `holders` (claims included) wait again:
/// how many. The counters are left to the caller's recount.
pub(super) fn requeue_in_process(
    tx: &Transaction,
    no: i64,
    holders: Holders,
) -> rusqlite::Result<usize> {
    let workers = materialize_claims(tx, no, holders)?;
    tx.execute(
        &format!(
            "UPDATE batch_entities SET status = 'WAITING', retry_at_ms = NULL, worker = NULL
             WHERE batch = ?1 AND status <> 'COMPLETED' AND status = 'IN_PROCESS' AND {}",
            filter(holders)
        ),
        params![no, workers],
    )
}

/// The batch's counters, as its row keeps them.
pub(super) fn counters_of(conn: &rusqlite::Connection, bid: &str) -> rusqlite::Result<Counters> {
    conn.query_row(
        "SELECT total, waiting, in_process, completed, failed, cancelled, added, updated,
             unchanged
         FROM batches WHERE bid = ?1",
        [bid],
        |r| {
            Ok(Counters {
                total: r.get(0)?,
                waiting: r.get(1)?,
                in_process: r.get(2)?,
                completed: r.get(3)?,
                failed: r.get(4)?,
                cancelled: r.get(5)?,
                added: r.get(6)?,
                updated: r.get(7)?,
                unchanged: r.get(8)?,
            })
        },
    )
}

/// Counters recomputed from the entity rows, and written to the batch row.
pub(super) fn recount(tx: &Transaction, bid: &str) -> rusqlite::Result<Counters> {
    let mut c = {
        let mut st = tx.prepare(
            "SELECT status, count(*) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) GROUP BY status",
        )?;
        let counts = st.query_map([bid], |r| {
            let n: i64 = r.get(1)?;
            Ok((r.get::<_, EntityStatus>(0)?, n))
        })?;
        counters_by_status(counts)?
    };
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
