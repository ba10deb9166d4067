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
//!   rows are claimed, and only IN_PROCESS entities (rows and claims) go
//!   back to WAITING: those of nodes found dead (the `nodes` table, see
//!   [`crate::store::nodes`]; [`BatchStore::prepare_retry`],
//!   [`BatchStore::requeue_orphans`]) or of the run itself when it fails
//!   ([`BatchStore::fail_run`]): at-least-once for those alone.
//!
//! A step also claims nothing once the batch has its final status, so a
//! node that helps the batch's owner learns of the end there and leaves.
//!
//! Every write of a run is fenced ([`RunRef`]): it checks, inside its own
//! transaction, that the batch's current execution is still the run's, and
//! that its node was not declared dead. A
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
use crate::store::holders::Holders;
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
        let status = b.first_status();
        // Its number is past every number rows are stored under, not only
        // past the batches': the rows of a batch that BATCH_PURGE deleted
        // go a chunk at a time after its row, and a new batch given their
        // number would take them for its own.
        tx.execute(
            "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                 execution_id, created_by, creation_time, estimated_total, max_workers, batch_no,
                 owner_node, owner_pid, heartbeat_at, placement, open, workdir)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?13, ?7, ?8, ?9, ?10, ?11,
                 (SELECT max(coalesce((SELECT max(batch_no) FROM batches), 0),
                             coalesce((SELECT max(batch) FROM batch_entities), 0),
                             coalesce((SELECT max(batch) FROM batch_appends), 0)) + 1),
                 CASE WHEN ?14 THEN NULL ELSE ?8 END, CASE WHEN ?14 THEN NULL ELSE ?12 END, ?9,
                 ?15, CASE WHEN ?16 THEN 1 END, ?17)",
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
                i64::from(std::process::id()),
                status,
                b.queued,
                b.stored_placement(),
                b.open,
                b.workdir
            ],
        )
        .map_err(|e| self.err(e))?;
        for (part, lines) in b.lines.unwrap_or_default().iter().enumerate() {
            tx.execute(
                "INSERT INTO batch_lines (bid, part, lines) VALUES (?1, ?2, ?3)",
                params![b.bid, part as i64, lines],
            )
            .map_err(|e| self.err(e))?;
        }
        if b.queued {
            // Its job (SPEC §8), which follows it from now on (see the
            // trigger of migration 8).
            tx.execute(
                "INSERT INTO jobs (type, name, uid, status, affinity, statement, created_at,
                     output)
                 VALUES ('BATCH_JOB', 'BATCH_JOB_' || ?1, ?2, 'WAITING', ?3, ?4, ?5, ?2)",
                params![b.lu, b.bid, b.job_affinity(), b.command, now],
            )
            .map_err(|e| self.err(e))?;
        }
        if let Some(run) = b.series {
            let opened = super::series::open_batch_run(&tx, run, b.bid).map_err(|e| self.err(e))?;
            if let crate::store::series::Opened::AlreadyOpen(open) = opened {
                // Dropped, the transaction stores nothing of this batch.
                return Err(open.open_already());
            }
        }
        event(&tx, b.bid, b.execution_id, b.node, status, None).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(None)
    }

    fn active_twin(&self, command: &str) -> Result<Option<String>> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Deferred)
            .map_err(|e| self.err(e))?;
        active_twin(&tx, command, "").map_err(|e| self.err(e))
    }

    fn batch_lines(&self, bid: &str) -> Result<Option<Vec<u8>>> {
        let read = || -> rusqlite::Result<Option<Vec<u8>>> {
            let mut stmt = self
                .conn()
                .prepare("SELECT lines FROM batch_lines WHERE bid = ?1 ORDER BY part")?;
            let mut rows = stmt.query([bid])?;
            let mut text: Option<Vec<u8>> = None;
            while let Some(row) = rows.next()? {
                let part = row.get_ref(0)?.as_blob()?;
                text.get_or_insert_with(Vec::new).extend_from_slice(part);
            }
            Ok(text)
        };
        read().map_err(|e| self.err(e))
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
            declare_owner_dead(tx, seen)?;
            write_status(
                tx,
                bid,
                BatchStatus::Paused,
                &fence,
                node,
                Some(PAUSED_UNOWNED_NOTE),
            )?;
            tx.execute(
                "UPDATE batches SET owner_node = NULL, owner_pid = NULL, owner_worker = NULL
                 WHERE bid = ?1",
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
            declare_owner_dead(tx, seen)?;
            let no = batch_no(tx, bid)?;
            let held = materialize_claims(tx, no, Holders::DeadAnd(None))?;
            tx.execute(
                &format!(
                    "UPDATE batch_entities SET status = 'CANCELLED', retry_at_ms = NULL, worker = NULL
                     WHERE batch = ?1 AND status <> 'COMPLETED'
                         AND (status = 'WAITING' OR (status = 'IN_PROCESS' AND {HELD_BY}))"
                ),
                params![no, held],
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
                "UPDATE batches SET owner_node = NULL, owner_pid = NULL, owner_worker = NULL
                 WHERE bid = ?1 RETURNING status",
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
    /// whose data the batch uses (its target, when its ids come from the
    /// LU, and the LU its command writes) still exist: `DROP LU` refuses while a live owner uses an
    /// LU, so between the two, one of them sees the other. An LU dropped
    /// since the batch was planned ends the batch FAILED.
    fn take_ownership(&self, run: RunRef, dc: &str) -> Result<()> {
        let now = crate::store::now();
        let (bid, node) = (run.bid, run.node);
        let dropped = self.fenced(run, |tx, _| {
            let (lu, fabric_command, source): (String, String, String) = tx.query_row(
                "SELECT lu, fabric_command, source FROM batches WHERE bid = ?1",
                [bid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            for name in NewBatch::lus_used(&lu, &fabric_command, &source) {
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
                "UPDATE batches SET owner_node = ?2, owner_pid = ?3, heartbeat_at = ?4,
                     owner_worker = ?5
                 WHERE bid = ?1",
                params![bid, node, i64::from(std::process::id()), now, run.worker],
            )?;
            node_joins(tx, run, dc)?;
            Ok(None)
        })?;
        dropped.map_or(Ok(()), Err)
    }

    fn join_batch(&self, run: RunRef, dc: &str) -> Result<()> {
        self.fenced(run, |tx, _| node_joins(tx, run, dc))
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
        crate::store::step::move_claimed_ids(&mut r, moved, input);
        Ok(r)
    }

    /// Every entity still WAITING becomes CANCELLED (with the counters).
    /// With `orphans`, so do the IN_PROCESS ones, which the run calls for
    /// when it has nothing in flight itself: they are claims that no live
    /// run holds.
    fn cancel_waiting(&self, run: RunRef, orphans: bool) -> Result<()> {
        self.fenced(run, |tx, no| {
            if orphans {
                let held = materialize_claims(tx, no, Holders::DeadAnd(Some(run.worker)))?;
                tx.execute(
                    &format!(
                        "UPDATE batch_entities SET status = 'CANCELLED', retry_at_ms = NULL, worker = NULL
                         WHERE batch = ?1 AND status <> 'COMPLETED'
                             AND (status = 'WAITING' OR (status = 'IN_PROCESS' AND {HELD_BY}))"
                    ),
                    params![no, held],
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

    /// See [`BatchStore::requeue_orphans`]: the run's own and dead nodes'
    /// claims go back; the counters are recounted only when some did.
    fn requeue_orphans(&self, run: RunRef) -> Result<Counters> {
        self.fenced(run, |tx, no| {
            if requeue_in_process(tx, no, Holders::DeadAnd(Some(run.worker)))? == 0 {
                // Nothing went back (the IN_PROCESS entities are live
                // nodes'): the counters stand; no scan of the rows.
                return counters_of(tx, run.bid);
            }
            recount(tx, run.bid)
        })
    }

    fn requeue_dead(&self, run: RunRef) -> Result<Option<Counters>> {
        self.fenced(run, |tx, no| {
            let back = requeue_in_process(tx, no, Holders::Dead { but: run.worker })?;
            if back == 0 {
                return Ok(None);
            }
            // Moved, not recounted: a recount reads the rows, and the
            // run's own claims of ids as they arrived have none yet.
            tx.execute(
                "UPDATE batches SET in_process = in_process - ?2, waiting = waiting + ?2
                 WHERE bid = ?1",
                params![run.bid, back as i64],
            )?;
            counters_of(tx, run.bid).map(Some)
        })
    }

    /// Ends the run's batch FAILED with `error`, its IN_PROCESS entities
    /// (the run's own claims, whose outcomes are lost with the run) waiting
    /// again in the same transaction: a batch never ends with entities in
    /// process, and a retry runs them (at-least-once).
    fn fail_run(&self, run: RunRef, error: &str) -> Result<()> {
        self.fenced(run, |tx, no| {
            requeue_in_process(tx, no, Holders::DeadAnd(Some(run.worker)))?;
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
        counters_of(self.conn(), bid).map_err(|e| self.err(e))
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

    fn workdir(&self, bid: &str) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT workdir FROM batches WHERE bid = ?1", [bid], |r| {
                r.get(0)
            })
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
                Ok(slowest_row(
                    &r.get::<_, String>(0)?,
                    r.get(1)?,
                    &r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?.as_deref(),
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(slowest_json(rows))
    }

    /// The batch's row, for control statements and retries.
    fn batch_state(&self, bid: &str) -> Result<BatchState> {
        self.conn()
            .query_row(
                "SELECT status, execution_id, ids_complete, owner_node, owner_pid, heartbeat_at,
                        command, requested, owner_worker
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
                        owner_worker: r.get(8)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::no_batch(bid))
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
            let note = max_workers_note(n);
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
                     requested = NULL, execution_id = ?5, owner_worker = NULL
                 WHERE bid = ?1",
                params![
                    bid,
                    node,
                    i64::from(std::process::id()),
                    crate::store::now(),
                    execution_id
                ],
            )?;
            declare_owner_dead(tx, seen)?;
            let no = batch_no(tx, bid)?;
            // Every claim goes back, a live node's too: the new execution
            // id fences out every write of the runs before it, so an
            // entity still in flight in one of them (a helper's, a moment
            // after a cancel) would never be written; it runs again.
            let held = materialize_claims(tx, no, Holders::All)?;
            let statuses: Vec<String> = retried_statuses(finished)
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            let statuses = format!("({})", statuses.join(", "));
            // A bad id stays FAILED: a retry cannot make it good.
            tx.execute(
                &format!(
                    "UPDATE batch_entities SET status = 'WAITING', retry_at_ms = NULL, worker = NULL
                     WHERE batch = ?1 AND status <> 'COMPLETED'
                         AND (status IN {statuses} OR (status = 'IN_PROCESS' AND {HELD_BY}))
                         AND NOT ({BAD_ID_ROW})"
                ),
                params![no, held],
            )?;
            counters = Some(recount(tx, bid)?);
            Ok(())
        })?;
        if let Some(other) = twin {
            return Err(twin_active(bid, other));
        }
        Ok(counters)
    }

    fn purgeable(&self, cutoff: &str, statuses: &[BatchStatus]) -> Result<Vec<Purgeable>> {
        let wanted = purged_statuses(statuses);
        let wanted = serde_json::to_string(&wanted).unwrap_or_else(|_| "[]".into());
        let read = || -> rusqlite::Result<Vec<Purgeable>> {
            // The final statuses in so many words: an unfinished batch is
            // never deleted, whatever the caller asked. Nor is the batch
            // of a named series' last successful run (what its next
            // window counts from). Job runs are not batches: their keys
            // stay whatever is purged.
            let mut st = self.conn().prepare(
                "SELECT bid, batch_no, command, status, end_time, execution_id, total
                 FROM batches
                 WHERE status IN ('DONE', 'FAILED', 'CANCELLED')
                     AND status IN (SELECT value FROM json_each(?2))
                     AND end_time IS NOT NULL AND end_time < ?1
                     AND bid NOT IN (
                         SELECT r.bid FROM series_runs AS r
                         WHERE r.bid IS NOT NULL AND r.status = 'DONE' AND r.failed = 0
                             AND r.run_no = (SELECT max(l.run_no) FROM series_runs AS l
                                             WHERE l.series = r.series AND l.status = 'DONE'
                                                 AND l.failed = 0))
                 ORDER BY end_time, batch_no",
            )?;
            st.query_map(params![cutoff, wanted], |r| {
                Purgeable::read(r, |r| r.get(3))
            })?
            .collect()
        };
        read().map_err(|e| self.err(e))
    }

    fn purge_batch(&self, seen: &Purgeable) -> Result<bool> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let purge = || -> rusqlite::Result<bool> {
            // Still finished, and as seen: a retry started since has a new
            // execution id (and will have a new end).
            let same: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM batches
                     WHERE bid = ?1 AND batch_no = ?2 AND status = ?3 AND end_time = ?4
                         AND execution_id = ?5
                         AND status IN ('DONE', 'FAILED', 'CANCELLED'))",
                params![
                    seen.bid,
                    seen.batch_no,
                    seen.status,
                    seen.end_time,
                    seen.execution_id
                ],
                |r| r.get(0),
            )?;
            if !same {
                return Ok(false);
            }
            let (bid, no) = (seen.bid.as_str(), seen.batch_no);
            tx.execute("DELETE FROM batch_claims WHERE batch = ?1", [no])?;
            tx.execute("DELETE FROM batch_workers WHERE batch = ?1", [bid])?;
            tx.execute(
                "DELETE FROM jobs WHERE type = 'BATCH_JOB' AND uid = ?1",
                [bid],
            )?;
            // These go with the batch row (ON DELETE CASCADE) too; said
            // here, they do not depend on the connection's foreign keys.
            for table in [
                "batch_events",
                "batch_nodes",
                "batch_progress",
                "batch_lines",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE bid = ?1"), [bid])?;
            }
            tx.execute("DELETE FROM batches WHERE bid = ?1", [bid])?;
            Ok(true)
        };
        let purged = purge().map_err(|e| self.err(e))?;
        if purged {
            tx.commit().map_err(|e| self.err(e))?;
        }
        Ok(purged)
    }

    fn purge_rows(&self, batch_no: i64, max_rows: usize) -> Result<usize> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let max = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let purge = || -> rusqlite::Result<usize> {
            let owned: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM batches WHERE batch_no = ?1)",
                [batch_no],
                |r| r.get(0),
            )?;
            if owned || max <= 0 {
                return Ok(0);
            }
            // The first sequence number to keep, found by walking `max`
            // steps along the primary key; the rows before it go in one
            // range delete.
            let keep_from: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM batch_entities WHERE batch = ?1
                     ORDER BY seq LIMIT 1 OFFSET ?2",
                    params![batch_no, max],
                    |r| r.get(0),
                )
                .optional()?;
            let mut deleted = match keep_from {
                Some(seq) => tx.execute(
                    "DELETE FROM batch_entities WHERE batch = ?1 AND seq < ?2",
                    params![batch_no, seq],
                )?,
                None => tx.execute("DELETE FROM batch_entities WHERE batch = ?1", [batch_no])?,
            };
            let left = max - deleted as i64;
            if left > 0 {
                deleted += tx.execute(
                    "DELETE FROM batch_appends WHERE place IN (
                         SELECT place FROM batch_appends WHERE batch = ?1
                         ORDER BY place LIMIT ?2)",
                    params![batch_no, left],
                )?;
            }
            Ok(deleted)
        };
        let deleted = purge().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(deleted)
    }

    fn orphan_batch_nos(&self) -> Result<Vec<i64>> {
        let read = || -> rusqlite::Result<Vec<i64>> {
            // Each table's distinct batch numbers, one index seek apiece
            // (a scan would read every entity row).
            let mut st = self.conn().prepare(
                "WITH RECURSIVE
                     e(n) AS (SELECT min(batch) FROM batch_entities
                              UNION ALL
                              SELECT (SELECT min(batch) FROM batch_entities WHERE batch > n)
                              FROM e WHERE n IS NOT NULL),
                     a(n) AS (SELECT min(batch) FROM batch_appends
                              UNION ALL
                              SELECT (SELECT min(batch) FROM batch_appends WHERE batch > n)
                              FROM a WHERE n IS NOT NULL)
                 SELECT n FROM (SELECT n FROM e UNION SELECT n FROM a)
                 WHERE n IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM batches WHERE batch_no = n)
                 ORDER BY n",
            )?;
            st.query_map([], |r| r.get(0))?.collect()
        };
        read().map_err(|e| self.err(e))
    }
}

/// The run's node starts (or starts again) its row of the batch's per-node
/// counters.
fn node_joins(tx: &Transaction, run: RunRef, dc: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO batch_nodes (bid, node, dc, start_time) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (bid, node) DO UPDATE SET end_time = NULL",
        params![run.bid, run.node, dc, crate::store::now()],
    )
    .map(drop)
}

/// The condition (SQL) true of exactly the rows of bad ids (NULL, empty,
/// not UTF-8, too long): they failed as they arrived and never ran, so they
/// are FAILED with no attempt; an entity that ran has at least one, and
/// only a row that ran can be FAILED otherwise. Such a row holds a
/// stand-in for the id, which no command must be given.
pub(super) const BAD_ID_ROW: &str = "status = 'FAILED' AND attempts = 0";
