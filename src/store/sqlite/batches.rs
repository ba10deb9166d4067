//! The executor's writes to the batch tables. Each [`BatchStore::step`] is one
//! transaction that stores newly generated ids, records finished entities
//! with their counters, and claims the next entities, so that:
//!
//! - an entity is stored (committed) before it is handed to a worker:
//!   either as its own row (WAITING, then IN_PROCESS when claimed), or, for
//!   ids claimed as they arrive from the source, in the step's
//!   `batch_claims` row (one row for all of them, shown as IN_PROCESS rows by
//!   the `batch_claimed` view); such an entity's own row is written once,
//!   with its outcome;
//! - an entity's outcome is committed together with its status and the
//!   batch's counters, which therefore always add up;
//! - after a crash, a COMPLETED entity is never claimed again: only WAITING
//!   rows are claimed, and the IN_PROCESS entities of a dead run (rows and
//!   claims) go back to WAITING only through [`BatchStore::prepare_retry`]
//!   (at-least-once for those alone).
//!
//! Every write of a run is fenced ([`RunRef`]): it checks, inside its own
//! transaction, that the batch's current execution is still the run's. A
//! run that stalled (SIGSTOP, a paused VM, a store locked by another
//! process) and was judged dead and taken over meanwhile therefore writes
//! nothing more, not even the outcomes and claims it had pending: its
//! step rolls back with [`StoreError::TakenOver`], and the entities it held
//! are the new owner's to run (at-least-once for those alone).
//!
//! New ids must be distinct and new to the batch: the executor drops
//! duplicates before they reach the store (the store has no unique index
//! on entity ids, which would cost a second write per entity).

use super::SqliteStore;
use super::rows::*;
use super::step::step_in;
use crate::batch::Counters;
use crate::batch::{BatchStatus, Request};
use crate::store::batches::*;
use crate::store::{Result, StoreError};
use rusqlite::{OptionalExtension, Transaction, params};

impl BatchStore for SqliteStore {
    fn stored_ids(
        &self,
        bid: &str,
        each: &mut dyn FnMut(StoredId<'_>) -> std::ops::ControlFlow<()>,
    ) -> Result<()> {
        let conn = self.conn();
        let mut read = || -> rusqlite::Result<()> {
            let mut good = conn.prepare(&format!(
                "SELECT entity_id FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND NOT ({BAD_ID_ROW})
                 UNION ALL
                 SELECT entity_id FROM batch_claimed
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)"
            ))?;
            let mut rows = good.query([bid])?;
            while let Some(r) = rows.next()? {
                if each(StoredId::Good(r.get_ref(0)?.as_str()?)).is_break() {
                    return Ok(());
                }
            }
            let mut bad = conn.prepare(&format!(
                "SELECT entity_id, error FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)
                     AND status <> 'COMPLETED' AND {BAD_ID_ROW}"
            ))?;
            let mut rows = bad.query([bid])?;
            while let Some(r) = rows.next()? {
                let id = StoredId::Bad {
                    stand_in: r.get_ref(0)?.as_str()?,
                    error: r.get_ref(1)?.as_str().unwrap_or_default(),
                };
                if each(id).is_break() {
                    return Ok(());
                }
            }
            Ok(())
        };
        read().map_err(|e| self.err(e))
    }

    fn sample_progress(&self, run: RunRef, done: i64) -> Result<()> {
        let ms = chrono::Utc::now().timestamp_millis();
        self.fenced(run, |tx, _| {
            tx.execute(
                "INSERT OR REPLACE INTO batch_progress (bid, node, time_ms, done) VALUES (?1, ?2, ?3, ?4)",
                params![run.bid, run.node, ms, done],
            )
            .map(drop)
        })
    }

    /// Creates the batch, unless `refuse_twin` and an active (not final)
    /// batch has the same command text: then it creates nothing and gives
    /// that batch's id. The check and the insert are one IMMEDIATE
    /// transaction, so of two identical statements started at the same
    /// moment (two cron lines, a retrying wrapper) exactly one creates its
    /// batch and the other sees it.
    fn create_batch(&self, b: &NewBatch, refuse_twin: bool) -> Result<Option<String>> {
        let now = crate::store::now();
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        if refuse_twin {
            let twin = active_twin(&tx, b.command, b.bid).map_err(|e| self.err(e))?;
            if twin.is_some() {
                return Ok(twin);
            }
        }
        // The creating process owns the batch from its first moment, so
        // that a twin statement checking now sees it running, not
        // interrupted.
        tx.execute(
            "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                 execution_id, created_by, creation_time, estimated_total, max_workers, batch_no,
                 owner_node, owner_pid, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'NEW', ?7, ?8, ?9, ?10, ?11,
                 (SELECT coalesce(max(batch_no), 0) + 1 FROM batches), ?8, ?12, ?9)",
            params![
                b.bid,
                b.command,
                b.lu,
                b.fabric_command,
                b.source.to_string(),
                b.arguments.to_string(),
                b.execution_id,
                b.node,
                now,
                b.estimated_total,
                b.max_workers,
                i64::from(std::process::id())
            ],
        )
        .map_err(|e| self.err(e))?;
        event(&tx, b.bid, b.execution_id, b.node, BatchStatus::New, None)
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(None)
    }

    /// Moves the batch to `status` for its run, with an event. Sets the
    /// start time when it first starts (GENERATE_IID_LIST or IN_PROGRESS: a
    /// batch whose source query fails has started too), and the end time
    /// (and clears the owner) on a final status.
    fn set_run_status(&self, run: RunRef, status: BatchStatus, note: Option<&str>) -> Result<()> {
        self.fenced(run, |tx, _| {
            write_status(tx, run.bid, status, run.execution_id, run.node, note)
        })
    }

    /// Pauses a batch that no process runs, if it is still as `seen` (no
    /// other process took it over meanwhile); false if it is not.
    ///
    /// The batch gets a new execution id, as a takeover gives it: should
    /// its owner only have stalled, it writes nothing when it wakes up
    /// (see the module doc). The same holds for [`BatchStore::cancel_unowned`].
    fn pause_unowned(&self, bid: &str, seen: &BatchState, node: &str) -> Result<bool> {
        let fence = uuid::Uuid::new_v4().to_string();
        self.if_as_seen(bid, seen, |tx| {
            write_status(
                tx,
                bid,
                BatchStatus::Paused,
                &fence,
                node,
                Some("paused while not running"),
            )?;
            tx.execute(
                "UPDATE batches SET owner_node = NULL, owner_pid = NULL WHERE bid = ?1",
                [bid],
            )
            .map(drop)
        })
    }

    /// Cancels a batch that no process runs, if it is still as `seen`:
    /// its WAITING entities, and the IN_PROCESS ones a dead process left,
    /// become CANCELLED. False if another process took it over meanwhile.
    fn cancel_unowned(&self, bid: &str, seen: &BatchState, node: &str) -> Result<bool> {
        let fence = uuid::Uuid::new_v4().to_string();
        self.if_as_seen(bid, seen, |tx| {
            materialize_claims(tx, bid)?;
            tx.execute(
                "UPDATE batch_entities SET status = 'CANCELLED', retry_at_ms = NULL
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status <> 'COMPLETED' AND status IN ('WAITING', 'IN_PROCESS')",
                [bid],
            )?;
            recount(tx, bid)?;
            write_status(tx, bid, BatchStatus::Cancelled, &fence, node, None)
        })
    }

    /// This process stops running the batch without ending it (a
    /// SIGTERM): it lets the batch go (no owner, so another process may
    /// take it over at once) and records why, under the batch's status,
    /// which stays as it is.
    fn leave_unfinished(&self, run: RunRef, note: &str) -> Result<()> {
        self.fenced(run, |tx, _| {
            let status: BatchStatus = tx.query_row(
                "UPDATE batches SET owner_node = NULL, owner_pid = NULL WHERE bid = ?1 RETURNING status",
                [run.bid],
                |r| r.get(0),
            )?;
            event(tx, run.bid, run.execution_id, run.node, status, Some(note))
        })
    }

    /// Makes this process (`run`'s node, pid) the batch's owner, as its run
    /// starts, and starts its per-node row, if the batch's execution is
    /// still the run's (a retry that took it over set it). In the same
    /// IMMEDIATE transaction it checks that the LUs
    /// whose data the batch uses (its target, and the LU its command
    /// writes) still exist: `DROP LU` refuses while a live owner uses an
    /// LU, so between the two, one of them sees the other. An LU dropped
    /// since the batch was planned ends the batch FAILED.
    fn take_ownership(&self, run: RunRef, dc: &str) -> Result<()> {
        let now = crate::store::now();
        let (bid, node) = (run.bid, run.node);
        let dropped = self.fenced(run, |tx, _| {
            let (lu, fabric_command): (String, String) = tx.query_row(
                "SELECT lu, fabric_command FROM batches WHERE bid = ?1",
                [bid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let used =
                std::iter::once(lu.as_str()).chain(crate::store::catalog::command_lu(&fabric_command));
            for name in used {
                let exists: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM lus WHERE name = ?1)",
                    [name],
                    |r| r.get(0),
                )?;
                if !exists {
                    let error = StoreError::LuDropped {
                        lu: name.to_string(),
                        bid: bid.to_string(),
                    };
                    let note = error.to_string();
                    write_status(
                        tx,
                        bid,
                        BatchStatus::Failed,
                        run.execution_id,
                        node,
                        Some(&note),
                    )?;
                    return Ok(Some(error));
                }
            }
            tx.execute(
                "UPDATE batches SET owner_node = ?2, owner_pid = ?3, heartbeat_at = ?4 WHERE bid = ?1",
                params![bid, node, i64::from(std::process::id()), now],
            )?;
            tx.execute(
                "INSERT INTO batch_nodes (bid, node, dc, start_time) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (bid, node) DO UPDATE SET end_time = NULL",
                params![bid, node, dc, now],
            )?;
            Ok(None)
        })?;
        dropped.map_or(Ok(()), Err)
    }

    /// The highest entity sequence number stored for the batch.
    fn max_seq(&self, bid: &str) -> Result<i64> {
        self.conn()
            .query_row(
                "SELECT max(
                     (SELECT coalesce(max(seq), 0) FROM batch_entities WHERE batch = b.batch_no),
                     (SELECT coalesce(max(first_seq + json_array_length(ids) - 1), 0)
                      FROM batch_claims WHERE batch = b.batch_no))
                 FROM batches AS b WHERE bid = ?1",
                [bid],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// One step of the executor, in one fenced transaction (see the
    /// module doc). `next_seq` is the highest sequence number used so far;
    /// new ids take the following ones. The input is only borrowed: a step
    /// that fails (the store is locked, the run was taken over) writes
    /// nothing and leaves `next_seq` as it was, so the same input can be
    /// written again.
    fn step(&self, run: RunRef, next_seq: &mut i64, input: &mut StepInput) -> Result<StepResult> {
        let mut seq = *next_seq;
        let (mut r, moved) = self.fenced(run, |tx, no| step_in(tx, no, run, &mut seq, input))?;
        *next_seq = seq;
        // Committed: the ids claimed as they arrived move into the result.
        for (claimed, new) in moved {
            if let NewId::Ok(text) = &mut input.new_ids[new] {
                r.claimed[claimed].entity_id = std::mem::take(text);
            }
        }
        Ok(r)
    }

    /// Every entity still WAITING becomes CANCELLED (with the counters).
    /// With `orphans`, so do the IN_PROCESS ones, which the run calls for
    /// when it has nothing in flight itself: they are claims that no live
    /// run holds.
    fn cancel_waiting(&self, run: RunRef, orphans: bool) -> Result<()> {
        self.fenced(run, |tx, no| {
            if orphans {
                materialize_claims(tx, run.bid)?;
                tx.execute(
                    "UPDATE batch_entities SET status = 'CANCELLED', retry_at_ms = NULL
                     WHERE batch = ?1 AND status <> 'COMPLETED' AND status IN ('WAITING', 'IN_PROCESS')",
                    [no],
                )?;
                recount(tx, run.bid)?;
                return Ok(());
            }
            let n = tx.execute(
                "UPDATE batch_entities SET status = 'CANCELLED', retry_at_ms = NULL
                 WHERE batch = ?1 AND status <> 'COMPLETED' AND status = 'WAITING'",
                [no],
            )? as i64;
            tx.execute(
                "UPDATE batches SET waiting = waiting - ?2, cancelled = cancelled + ?2 WHERE bid = ?1",
                params![run.bid, n],
            )?;
            Ok(())
        })
    }

    /// The IN_PROCESS entities of a batch whose run has none in flight
    /// itself (claims that no live run holds: a run that stalled and was
    /// taken over left them) go back to WAITING, so that the batch does
    /// not end with entities that never ran. Counters are recounted.
    ///
    /// One run processes a batch at a time (its owner), so every
    /// IN_PROCESS entity that run does not hold is an orphan. When several
    /// nodes process one batch, this must keep to the claims of nodes that
    /// are not alive.
    fn requeue_orphans(&self, run: RunRef) -> Result<Counters> {
        self.fenced(run, |tx, no| {
            requeue_in_process(tx, run.bid, no)?;
            recount(tx, run.bid)
        })
    }

    /// Ends the run's batch FAILED with `error`, its IN_PROCESS entities
    /// (the run's own claims, whose outcomes are lost with the run) waiting
    /// again in the same transaction: a batch never ends with entities in
    /// process, and a retry runs them (at-least-once).
    fn fail_run(&self, run: RunRef, error: &str) -> Result<()> {
        self.fenced(run, |tx, no| {
            requeue_in_process(tx, run.bid, no)?;
            recount(tx, run.bid)?;
            write_status(
                tx,
                run.bid,
                BatchStatus::Failed,
                run.execution_id,
                run.node,
                Some(error),
            )
        })
    }

    fn set_extra_stats(&self, run: RunRef, stats: &serde_json::Value) -> Result<()> {
        self.fenced(run, |tx, _| {
            tx.execute(
                "UPDATE batches SET extra_stats = ?2 WHERE bid = ?1",
                params![run.bid, stats.to_string()],
            )
            .map(drop)
        })
    }

    fn end_node(&self, run: RunRef) -> Result<()> {
        self.fenced(run, |tx, _| {
            tx.execute(
                "UPDATE batch_nodes SET end_time = ?3 WHERE bid = ?1 AND node = ?2",
                params![run.bid, run.node, crate::store::now()],
            )
            .map(drop)
        })
    }

    /// The batch's counters, as its row keeps them.
    fn counters(&self, bid: &str) -> Result<Counters> {
        self.conn()
            .query_row(
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
            .map_err(|e| self.err(e))
    }

    /// How many of the batch's entities are COMPLETED and how many FAILED,
    /// by its counters.
    fn finished_counts(&self, bid: &str) -> Result<(i64, i64)> {
        self.conn()
            .query_row(
                "SELECT completed, failed FROM batches WHERE bid = ?1",
                [bid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// The 10 slowest finished entities, in Fabric's `extra_stats` shape.
    /// It reads every finished row of the batch; a run that finished them
    /// all itself keeps the same list as it goes ([`Slowest`]).
    fn slowest(&self, bid: &str) -> Result<serde_json::Value> {
        let mut st = self
            .conn()
            .prepare(
                "SELECT entity_id, process_time_ms, status, result FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status IN ('COMPLETED', 'FAILED') AND process_time_ms IS NOT NULL
                 ORDER BY process_time_ms DESC, seq LIMIT 10",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([bid], |r| {
                Ok(serde_json::json!({
                    "entityId": r.get::<_, String>(0)?,
                    "processTimeMS": r.get::<_, i64>(1)?,
                    "status": r.get::<_, String>(2)?,
                    "result": r.get::<_, Option<String>>(3)?,
                }))
            })
            .map_err(|e| self.err(e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(serde_json::json!({ "slowestProcessed": rows }))
    }

    /// The batch's row, for control statements and retries.
    fn batch_state(&self, bid: &str) -> Result<BatchState> {
        self.conn()
            .query_row(
                "SELECT status, execution_id, ids_complete, owner_node, owner_pid, heartbeat_at,
                        command, requested
                 FROM batches WHERE bid = ?1",
                [bid],
                |r| {
                    Ok(BatchState {
                        status: r.get(0)?,
                        execution_id: r.get(1)?,
                        ids_complete: r.get::<_, i64>(2)? != 0,
                        owner_node: r.get(3)?,
                        owner_pid: r.get(4)?,
                        heartbeat_at: r.get(5)?,
                        command: r.get(6)?,
                        requested: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::NotFound {
                kind: "batch",
                name: bid.to_string(),
                suggestion: None,
            })
    }

    /// Records a request (PAUSE, CANCEL or none) for the process running
    /// the batch, which reads it at its next step.
    fn request(&self, bid: &str, requested: Option<Request>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE batches SET requested = ?2 WHERE bid = ?1",
                params![bid, requested],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// `BATCH_EDIT MAX_WORKERS_PER_NODE=n`, asked from `node`: the running
    /// process reads it at its next step; `BATCH_HISTORY` shows the edit.
    fn set_max_workers(&self, bid: &str, n: i64, node: &str) -> Result<()> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let edit = || -> rusqlite::Result<()> {
            tx.execute(
                "UPDATE batches SET max_workers = ?2 WHERE bid = ?1",
                params![bid, n],
            )?;
            let (status, execution_id): (BatchStatus, String) = tx.query_row(
                "SELECT status, execution_id FROM batches WHERE bid = ?1",
                [bid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let note = format!("BATCH_EDIT MAX_WORKERS_PER_NODE={n}");
            event(&tx, bid, &execution_id, node, status, Some(&note))
        };
        edit().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Makes a batch ready to run again (BATCH_RETRY): failed entities, and
    /// for an unfinished batch also orphaned IN_PROCESS and CANCELLED ones,
    /// go back to WAITING; counters are recounted from the rows (the one
    /// place that scans them, so a crash can never leave them wrong).
    ///
    /// It takes the batch over for this process (`node`, pid) and its new
    /// execution `execution_id` (the fencing token of the run to come: the
    /// run taken over, should it wake up, writes nothing more) only if its
    /// owner is still the one `seen` (read when the caller judged that
    /// owner dead, or the batch finished): of two retries started at once,
    /// one runs and the other gets `None`. A PAUSE or CANCEL asked of the
    /// dead owner is dropped; this run starts afresh.
    ///
    /// A finished batch has no live run, so its IN_PROCESS entities are
    /// claims nobody holds (a run that stalled, was taken over, and whose
    /// claims a batchsh before fencing let through): they wait again too.
    fn prepare_retry(
        &self,
        bid: &str,
        finished: bool,
        seen: &BatchState,
        node: &str,
        execution_id: &str,
    ) -> Result<Option<Counters>> {
        // Set only if the batch was taken over.
        let mut counters = None;
        // An active batch with the same command, which the retry must not
        // run beside (unless the batch allows it: ALLOW_MULTIPLE).
        let mut twin: Option<String> = None;
        self.if_as_seen(bid, seen, |tx| {
            let (command, multiple): (String, bool) = tx.query_row(
                "SELECT command, coalesce(json_extract(arguments, '$.ALLOW_MULTIPLE'), 0)
                 FROM batches WHERE bid = ?1",
                [bid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if !multiple {
                twin = active_twin(tx, &command, bid)?;
            }
            if twin.is_some() {
                return Ok(());
            }
            tx.execute(
                "UPDATE batches SET owner_node = ?2, owner_pid = ?3, heartbeat_at = ?4,
                     requested = NULL, execution_id = ?5
                 WHERE bid = ?1",
                params![
                    bid,
                    node,
                    i64::from(std::process::id()),
                    crate::store::now(),
                    execution_id
                ],
            )?;
            materialize_claims(tx, bid)?;
            let statuses = if finished {
                "('FAILED', 'IN_PROCESS')"
            } else {
                "('FAILED', 'IN_PROCESS', 'CANCELLED')"
            };
            // A bad id stays FAILED: a retry cannot make it good.
            tx.execute(
                &format!(
                    "UPDATE batch_entities SET status = 'WAITING', retry_at_ms = NULL
                     WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status <> 'COMPLETED'
                         AND status IN {statuses} AND NOT ({BAD_ID_ROW})"
                ),
                [bid],
            )?;
            counters = Some(recount(tx, bid)?);
            Ok(())
        })?;
        if let Some(other) = twin {
            return Err(StoreError::TwinActive {
                bid: bid.to_string(),
                other,
            });
        }
        Ok(counters)
    }
}

/// The condition (SQL) true of exactly the rows of bad ids (NULL, empty,
/// not UTF-8, too long): they failed as they arrived and never ran, so they
/// are FAILED with no attempt; an entity that ran has at least one, and
/// only a row that ran can be FAILED otherwise. Such a row holds a
/// stand-in for the id, which no command must be given.
pub(super) const BAD_ID_ROW: &str = "status = 'FAILED' AND attempts = 0";

/// For tests: the run of batch `bid` that [`Store::test_batch`] starts
/// (execution `e1` on node `n1`).
#[cfg(test)]
pub(crate) fn test_run(bid: &str) -> RunRef<'_> {
    RunRef {
        bid,
        execution_id: "e1",
        node: "n1",
    }
}

#[cfg(test)]
impl SqliteStore {
    /// For tests: a new `echo ?` batch `bid`, owned by node `n1`.
    pub(crate) fn test_batch(&self, bid: &str) {
        // Its LU, which taking the batch over checks.
        self.conn()
            .execute_batch(
                "INSERT OR IGNORE INTO lus (name, interface, root_sql, created_at)
                 VALUES ('L', 'i', 'select 1', '2026-01-01T00:00:00.000Z')",
            )
            .unwrap();
        self.test_new_batch(bid, "L", "echo ?");
        self.take_ownership(test_run(bid), "dc").unwrap();
    }

    /// Creates batch `bid` of LU `lu` running `fabric_command`, as a run
    /// starting from node `n1` would, not yet owned.
    pub(crate) fn test_new_batch(&self, bid: &str, lu: &str, fabric_command: &str) {
        self.create_batch(
            &NewBatch {
                bid,
                command: "BATCH x",
                lu,
                fabric_command,
                source: &serde_json::json!({}),
                arguments: &serde_json::json!({}),
                execution_id: "e1",
                node: "n1",
                estimated_total: None,
                max_workers: None,
            },
            false,
        )
        .unwrap();
        // Not yet owned: as if its process had not taken it yet.
        self.conn()
            .execute(
                "UPDATE batches SET owner_node = NULL, owner_pid = NULL WHERE bid = ?1",
                [bid],
            )
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::super::step::ROWS_PER_INSERT;
    use super::*;
    use crate::batch::EntityStatus;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&d.path().join("store.db")).unwrap();
        s.test_batch("b1");
        (d, s)
    }

    /// One step of batch `b1` on node `n1`.
    fn step(s: &SqliteStore, seq: &mut i64, mut input: StepInput) -> StepResult {
        s.step(test_run("b1"), seq, &mut input)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn ids(range: std::ops::Range<i64>) -> Vec<NewId> {
        range.map(|k| NewId::Ok(k.to_string())).collect()
    }

    fn done(c: &Claimed, ms: i64, state: OutcomeState) -> Outcome {
        Outcome {
            seq: c.seq,
            entity_id: c.entity_id.clone(),
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_000_000 + ms,
            process_ms: ms,
            result: Some(format!("{{\"echo\":\"{}\"}}", c.entity_id)),
            state,
            claim: c.claim,
        }
    }

    fn count(s: &SqliteStore, sql: &str) -> i64 {
        s.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn ok() -> OutcomeState {
        OutcomeState::Completed {
            added: false,
            updated: false,
            unchanged: false,
        }
    }

    fn failed(error: impl Into<String>) -> OutcomeState {
        OutcomeState::Failed {
            error: error.into(),
        }
    }

    fn adds_up(c: &Counters) {
        assert_eq!(
            c.total,
            c.waiting + c.in_process + c.completed + c.failed + c.cancelled,
            "{c:?}"
        );
    }

    #[test]
    fn new_ids_are_stored_claimed_as_room_allows_and_waiting_rows_go_first() {
        let (_d, s) = store();
        let mut seq = 0;
        // Room for 3 of 5 new ids: 3 stored claimed, 2 WAITING.
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..6),
                claim: 3,
                ..StepInput::default()
            },
        );
        let got: Vec<&str> = r.claimed.iter().map(|c| c.entity_id.as_str()).collect();
        assert_eq!(got, ["1", "2", "3"]);
        assert!(r.claimed.iter().all(|c| c.attempts == 1));
        assert_eq!((r.counters.in_process, r.counters.waiting), (3, 2));
        adds_up(&r.counters);
        // The claimed ones are stored in one claim row, the others as rows.
        assert!(r.claimed.iter().all(|c| c.claim == Some(1)));
        assert_eq!(count(&s, "SELECT count(*) FROM batch_entities"), 2);
        assert_eq!(
            count(&s, "SELECT count(*) FROM batch_claimed WHERE node = 'n1'"),
            3
        );
        assert_eq!(s.max_seq("b1").unwrap(), 5);
        // Next claim: the 2 WAITING rows before 2 new ids.
        let new = ids(6..8);
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: new,
                claim: 10,
                ..StepInput::default()
            },
        );
        let got: Vec<&str> = r.claimed.iter().map(|c| c.entity_id.as_str()).collect();
        assert_eq!(got, ["4", "5", "6", "7"]);
        assert_eq!(r.counters.total, 7);
        assert!(!r.retry_pending);
        adds_up(&r.counters);
    }

    #[test]
    fn outcome_rows_of_every_kind_are_written_whole_in_groups_and_one_by_one() {
        let (_d, s) = store();
        let mut seq = 0;
        let n = 3 * ROWS_PER_INSERT as i64 + 5;
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..n + 1),
                claim: n as usize,
                ..StepInput::default()
            },
        );
        // Runs of COMPLETED rows and of others, full groups and leftovers,
        // given out of order.
        let kind = |k: i64| match k {
            k if k % 40 == 7 => 2,
            k if k <= 40 || k > 80 => 0,
            _ => 1,
        };
        let outcomes: Vec<Outcome> = r
            .claimed
            .iter()
            .rev()
            .map(|c| {
                let k: i64 = c.entity_id.parse().unwrap();
                let state = match kind(k) {
                    0 => ok(),
                    1 => failed(format!("boom {k}")),
                    _ => OutcomeState::Retry {
                        error: format!("again {k}"),
                        retry_at_ms: 1_800_000_000_000 + k,
                    },
                };
                done(c, k, state)
            })
            .collect();
        let r = step(
            &s,
            &mut seq,
            StepInput {
                outcomes,
                ..StepInput::default()
            },
        );
        adds_up(&r.counters);
        let mut st = s
            .conn()
            .prepare(
                "SELECT seq, entity_id, status, attempts, node, start_time_ms, end_time_ms,
                     process_time_ms, result, error, retry_at_ms
                 FROM batch_entities ORDER BY seq",
            )
            .unwrap();
        let rows: Vec<[Option<String>; 11]> = st
            .query_map([], |r| {
                let mut v: [Option<String>; 11] = Default::default();
                for (i, x) in v.iter_mut().enumerate() {
                    *x = r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                        rusqlite::types::Value::Null => None,
                        rusqlite::types::Value::Integer(n) => Some(n.to_string()),
                        rusqlite::types::Value::Text(t) => Some(t),
                        other => Some(format!("{other:?}")),
                    })?;
                }
                Ok(v)
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len() as i64, n);
        for (k, row) in (1..).zip(&rows) {
            let text = |t: &str| Some(t.to_string());
            let (status, error, retry_at) = match kind(k) {
                0 => ("COMPLETED", None, None),
                1 => ("FAILED", text(&format!("boom {k}")), None),
                _ => (
                    "WAITING",
                    text(&format!("again {k}")),
                    text(&(1_800_000_000_000 + k).to_string()),
                ),
            };
            let expected: [Option<String>; 11] = [
                text(&k.to_string()),
                text(&k.to_string()),
                text(status),
                text("1"),
                text("n1"),
                text("1700000000000"),
                text(&(1_700_000_000_000 + k).to_string()),
                text(&k.to_string()),
                text(&format!("{{\"echo\":\"{k}\"}}")),
                error,
                retry_at,
            ];
            assert_eq!(row, &expected, "entity {k}");
        }
    }

    #[test]
    fn claimed_entities_show_in_process_and_get_their_row_with_their_outcome() {
        use crate::store::{DetailsQuery, ReadStore};
        let (_d, s) = store();
        let mut seq = 0;
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..4),
                claim: 3,
                ..StepInput::default()
            },
        );
        let rows = s.entity_rows("b1", &DetailsQuery::default()).unwrap();
        let shown: Vec<(&str, &str, i64)> = rows
            .iter()
            .map(|r| (r.entity_id.as_str(), r.status.as_str(), r.attempts))
            .collect();
        assert_eq!(
            shown,
            [
                ("1", "IN_PROCESS", 1),
                ("2", "IN_PROCESS", 1),
                ("3", "IN_PROCESS", 1)
            ]
        );
        assert_eq!(s.in_process_rows().unwrap().len(), 3);
        // Two outcomes: their rows; the third stays claimed.
        let r = step(
            &s,
            &mut seq,
            StepInput {
                outcomes: vec![
                    done(&r.claimed[0], 5, ok()),
                    done(&r.claimed[2], 9, failed("boom")),
                ],
                ..StepInput::default()
            },
        );
        adds_up(&r.counters);
        assert_eq!(
            (
                r.counters.completed,
                r.counters.failed,
                r.counters.in_process
            ),
            (1, 1, 1)
        );
        let rows = s.entity_rows("b1", &DetailsQuery::default()).unwrap();
        let shown: Vec<(&str, &str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.entity_id.as_str(), r.status.as_str(), r.node.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("1", "COMPLETED", Some("n1")),
                ("2", "IN_PROCESS", Some("n1")),
                ("3", "FAILED", Some("n1"))
            ]
        );
        let failed = s
            .entity_rows(
                "b1",
                &DetailsQuery {
                    statuses: Some(vec![EntityStatus::Failed]),
                    ..DetailsQuery::default()
                },
            )
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].error.as_deref(), Some("boom"));
        assert_eq!(count(&s, "SELECT open FROM batch_claims"), 1);
    }

    #[test]
    fn a_dead_runs_claims_wait_again_on_retry_and_finished_ones_keep_their_row() {
        let (_d, s) = store();
        let mut seq = 0;
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..6),
                claim: 4,
                ..StepInput::default()
            },
        );
        step(
            &s,
            &mut seq,
            StepInput {
                outcomes: vec![
                    done(&r.claimed[0], 5, ok()),
                    done(&r.claimed[1], 5, failed("boom")),
                ],
                ..StepInput::default()
            },
        );
        // The process dies here: "3" and "4" are claimed, without a row.
        let seen = s.batch_state("b1").unwrap();
        s.request("b1", Some(Request::Pause)).unwrap();
        // The request changed no owner: the retry takes the batch over.
        let c = s
            .prepare_retry("b1", false, &seen, "n2", "e2")
            .unwrap()
            .unwrap();
        let now = s.batch_state("b1").unwrap();
        assert_eq!(now.owner_node.as_deref(), Some("n2"));
        assert_eq!(now.owner_pid, Some(i64::from(std::process::id())));
        assert_eq!(
            now.requested, None,
            "a pause asked of the dead owner is dropped"
        );
        // A second retry that saw the same dead owner is too late.
        assert!(
            s.prepare_retry("b1", false, &seen, "n3", "e3")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            s.batch_state("b1").unwrap().owner_node.as_deref(),
            Some("n2")
        );
        adds_up(&c);
        assert_eq!(
            (c.total, c.completed, c.waiting, c.in_process),
            (5, 1, 4, 0)
        );
        assert_eq!(count(&s, "SELECT count(*) FROM batch_claims"), 0);
        assert_eq!(s.max_seq("b1").unwrap(), 5);
        // The run taken over writes nothing more: its step rolls back.
        let before = seq;
        let e = s
            .step(
                test_run("b1"),
                &mut seq,
                &mut StepInput {
                    new_ids: ids(6..8),
                    claim: 10,
                    ..StepInput::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::TakenOver { node: Some(n), .. } if n == "n2"),
            "{e}"
        );
        assert_eq!(
            seq, before,
            "a step that wrote nothing uses no sequence number"
        );
        assert_eq!(s.max_seq("b1").unwrap(), 5);
        assert_eq!(s.counters("b1").unwrap(), c);
        let new_run = RunRef {
            bid: "b1",
            execution_id: "e2",
            node: "n2",
        };
        let r = s
            .step(
                new_run,
                &mut seq,
                &mut StepInput {
                    claim: 10,
                    ..StepInput::default()
                },
            )
            .unwrap();
        let again: Vec<(&str, i64)> = r
            .claimed
            .iter()
            .map(|c| (c.entity_id.as_str(), c.attempts))
            .collect();
        // The in-flight ones run again (at-least-once), as their 2nd attempt.
        assert_eq!(again, [("2", 2), ("3", 2), ("4", 2), ("5", 1)]);
        assert!(r.claimed.iter().all(|c| c.claim.is_none()));
    }

    #[test]
    fn cancelling_a_dead_run_cancels_its_claimed_entities() {
        let (_d, s) = store();
        let mut seq = 0;
        step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..4),
                claim: 2,
                ..StepInput::default()
            },
        );
        let seen = s.batch_state("b1").unwrap();
        assert!(s.cancel_unowned("b1", &seen, "n2").unwrap());
        // Cancelled: a second cancel that saw it before is refused.
        assert!(!s.cancel_unowned("b1", &seen, "n2").unwrap());
        assert!(!s.pause_unowned("b1", &seen, "n2").unwrap());
        assert_eq!(s.batch_state("b1").unwrap().status, BatchStatus::Cancelled);
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM batch_entities WHERE status = 'CANCELLED'"
            ),
            3
        );
        assert_eq!(count(&s, "SELECT count(*) FROM batch_claims"), 0);
        assert_eq!(
            count(&s, "SELECT cancelled FROM batches WHERE bid = 'b1'"),
            3
        );
    }

    #[test]
    fn released_entities_wait_again_as_if_never_claimed() {
        let (_d, s) = store();
        let mut seq = 0;
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..5),
                claim: 4,
                ..StepInput::default()
            },
        );
        let release = r.claimed[2..].to_vec();
        let r = step(
            &s,
            &mut seq,
            StepInput {
                outcomes: vec![done(&r.claimed[0], 5, ok())],
                release,
                ..StepInput::default()
            },
        );
        assert_eq!(
            (
                r.counters.completed,
                r.counters.in_process,
                r.counters.waiting
            ),
            (1, 1, 2)
        );
        adds_up(&r.counters);
        let attempts: i64 = s
            .conn()
            .query_row(
                "SELECT sum(attempts) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = 'b1') AND status = 'WAITING'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(attempts, 0);
        // Claimed again, they count their first attempt.
        let r = step(
            &s,
            &mut seq,
            StepInput {
                claim: 5,
                ..StepInput::default()
            },
        );
        assert_eq!(r.claimed.len(), 2);
        assert!(r.claimed.iter().all(|c| c.attempts == 1));
    }

    #[test]
    fn retries_wait_for_their_time_and_outcomes_keep_their_times() {
        let (_d, s) = store();
        let mut seq = 0;
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..3),
                claim: 2,
                ..StepInput::default()
            },
        );
        let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
        let r = step(
            &s,
            &mut seq,
            StepInput {
                outcomes: vec![
                    done(
                        &r.claimed[0],
                        7,
                        OutcomeState::Retry {
                            error: "boom".into(),
                            retry_at_ms: later,
                        },
                    ),
                    done(&r.claimed[1], 9, failed("bad")),
                ],
                claim: 5,
                ..StepInput::default()
            },
        );
        assert!(r.claimed.is_empty());
        assert!(r.retry_pending);
        assert_eq!((r.counters.waiting, r.counters.failed), (1, 1));
        adds_up(&r.counters);
        let (start, end, retry_at): (i64, i64, i64) = s
            .conn()
            .query_row(
                "SELECT start_time_ms, end_time_ms, retry_at_ms FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = 'b1') AND seq = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(start, 1_700_000_000_000);
        assert_eq!(end, 1_700_000_000_007);
        assert!(
            retry_at > chrono::Utc::now().timestamp_millis(),
            "{retry_at}"
        );
    }

    #[test]
    fn slowest_kept_in_memory_matches_the_rows() {
        let (_d, s) = store();
        let mut seq = 0;
        let mut slowest = Slowest::default();
        let r = step(
            &s,
            &mut seq,
            StepInput {
                new_ids: ids(1..41),
                claim: 40,
                ..StepInput::default()
            },
        );
        // Ties on the time, failures, and retries (not final) mixed.
        let outcomes: Vec<Outcome> = r
            .claimed
            .iter()
            .map(|c| {
                let ms = (c.seq * 7919) % 13;
                let state = match c.seq % 5 {
                    0 => failed("x"),
                    1 => OutcomeState::Retry {
                        error: "x".into(),
                        retry_at_ms: 0,
                    },
                    _ => ok(),
                };
                done(c, ms, state)
            })
            .collect();
        for o in &outcomes {
            slowest.offer(o);
        }
        step(
            &s,
            &mut seq,
            StepInput {
                outcomes,
                ..StepInput::default()
            },
        );
        assert_eq!(slowest.to_json(), s.slowest("b1").unwrap());
        assert_eq!(
            slowest.to_json()["slowestProcessed"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
    }
}
