//! The batch tables on PostgreSQL: the executor's writes and what other
//! processes ask of a batch, with the guarantees of the SQLite store
//! (`crate::store::sqlite::batches`): an entity is stored before it is
//! handed out, its outcome commits with its status and the counters, a
//! COMPLETED entity is never claimed again, and every write of a run is
//! fenced by its execution id.
//!
//! What differs is that many processes write at once, on several hosts:
//!
//! - the steps of the nodes that process a batch run side by side: each
//!   holds the batch row `FOR KEY SHARE` (which a takeover, holding the
//!   row `FOR UPDATE`, waits for), claims WAITING entities and chunks
//!   `FOR UPDATE SKIP LOCKED`, and
//!   adds its changes to the counters to its worker's own row of
//!   `batch_counts`, never to the batch row (see [`step`]);
//! - whatever sets counters absolutely (a recount: a retry, a cancel, a
//!   requeue) holds the batch row `FOR UPDATE`, so no step runs meanwhile,
//!   and folds the workers' rows into the batch row (see [`rows`]);
//! - a batch's creation and a retry's check for an active twin hold an
//!   advisory lock ([`rows::CREATE_LOCK`]), as SQLite's single writer
//!   would serialise them;
//! - liveness is judged on the database's clock.

mod beside;
mod rows;
mod step;
#[cfg(test)]
mod tests;

use super::purge;

use super::notices::notify;
use super::{PgStore, TxError};
use crate::batch::Counters;
use crate::batch::{BatchStatus, Request};
use crate::store::batches::*;
use crate::store::holders::Holders;
use crate::store::{Notice, Result, StoreError};
use postgres::Transaction;
use rows::*;

impl BatchStore for PgStore {
    fn stored_ids(
        &self,
        bid: &str,
        each: &mut dyn FnMut(StoredId<'_>) -> std::ops::ControlFlow<()>,
    ) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut client = self.client();
        let no: Option<i64> = client
            .query_opt("SELECT batch_no FROM batches WHERE bid = $1", &[&bid])
            .map_err(|e| self.err(e))?
            .map(|r| r.get(0));
        let Some(no) = no else { return Ok(()) };
        let good = format!(
            "SELECT entity_id FROM batch_entities WHERE batch = $1 AND NOT ({BAD_ID_ROW})
             UNION ALL
             SELECT entity_id FROM batch_claimed WHERE batch = $1
             UNION ALL
             SELECT entity_id FROM {} WHERE batch = $1",
            super::reads::chunked!()
        );
        let mut rows = client.query_raw(&good, [&no]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            if each(StoredId::Good(r.get(0))).is_break() {
                return Ok(());
            }
        }
        drop(rows);
        let bad = format!(
            "SELECT entity_id, error FROM batch_entities
             WHERE batch = $1 AND status <> 'COMPLETED' AND {BAD_ID_ROW}"
        );
        let mut rows = client.query_raw(&bad, [&no]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id = StoredId::Bad {
                stand_in: r.get(0),
                error: r.get::<_, Option<&str>>(1).unwrap_or_default(),
            };
            if each(id).is_break() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn sample_progress(&self, run: RunRef, done: i64) -> Result<()> {
        let ms = chrono::Utc::now().timestamp_millis();
        self.fenced(run, Hold::Share, |tx, _| {
            tx.execute(
                "INSERT INTO batch_progress (bid, node, time_ms, done) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (bid, node, time_ms) DO UPDATE SET done = excluded.done",
                &[&run.bid, &run.node, &ms, &done],
            )?;
            Ok(())
        })
    }

    fn create_batch(&self, b: &NewBatch, refuse_twin: bool) -> Result<Option<String>> {
        let now = crate::store::now();
        let status = b.first_status();
        let placement = b.stored_placement();
        self.tx(|tx| {
            // The twin check and the new number, one creation at a time.
            lock_creation(tx)?;
            if refuse_twin {
                let twin = active_twin(tx, b.command, b.bid)?;
                if twin.is_some() {
                    return Ok(twin);
                }
            }
            // Its number is past every number rows are stored under, not
            // only past the batches': the rows of a batch that BATCH_PURGE
            // deleted go a chunk at a time after its row, and a new batch
            // given their number would take them for its own.
            tx.execute(
                "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                     execution_id, created_by, creation_time, estimated_total, max_workers,
                     batch_no, owner_node, owner_pid, heartbeat_at, placement, open, workdir)
                 VALUES ($1, $2, $3, $4, $5, $6, $13, $7, $8, $9, $10, $11,
                     greatest(coalesce((SELECT max(batch_no) FROM batches), 0),
                              coalesce((SELECT max(batch) FROM batch_entities), 0),
                              coalesce((SELECT max(batch) FROM batch_appends), 0)) + 1,
                     CASE WHEN $14 THEN NULL ELSE $8 END,
                     CASE WHEN $14 THEN NULL ELSE $12::bigint END, $9,
                     $15, CASE WHEN $16 THEN 1 END, $17)",
                &[
                    &b.bid,
                    &b.command,
                    &b.lu,
                    &b.fabric_command,
                    &b.source.to_string(),
                    &b.arguments.to_string(),
                    &b.execution_id,
                    &b.node,
                    &now,
                    &b.estimated_total,
                    &b.max_workers,
                    &i64::from(std::process::id()),
                    &status.as_str(),
                    &b.queued,
                    &placement,
                    &b.open,
                    &b.workdir,
                ],
            )?;
            for (part, lines) in b.lines.unwrap_or_default().iter().enumerate() {
                tx.execute(
                    "INSERT INTO batch_lines (bid, part, lines) VALUES ($1, $2, $3)",
                    &[&b.bid, &(part as i64), lines],
                )?;
            }
            if b.queued {
                // Its job (SPEC §8), which follows it from now on (the
                // trigger `batch_job_follows_batch`).
                let affinity = b.job_affinity();
                tx.execute(
                    "INSERT INTO jobs (type, name, uid, status, affinity, statement, created_at,
                         output)
                     VALUES ('BATCH_JOB', 'BATCH_JOB_' || $1, $2, 'WAITING', $3, $4, $5, $2)",
                    &[&b.lu, &b.bid, &affinity, &b.command, &now],
                )?;
                // Idle workers, on every host, look for it at once.
                notify(tx, Notice::Work, b.bid)?;
            }
            if let Some(run) = b.series {
                // A run open already: the transaction rolls back, and
                // nothing of this batch is stored.
                super::series::open_batch_run(tx, run, b.bid)?;
            }
            event(tx, b.bid, b.execution_id, b.node, status, None)?;
            Ok(None)
        })
    }

    fn active_twin(&self, command: &str) -> Result<Option<String>> {
        self.tx(|tx| active_twin(tx, command, ""))
    }

    fn batch_lines(&self, bid: &str) -> Result<Option<Vec<u8>>> {
        let rows = self
            .client()
            .query(
                "SELECT lines FROM batch_lines WHERE bid = $1 ORDER BY part",
                &[&bid],
            )
            .map_err(|e| self.err(e))?;
        let mut text: Option<Vec<u8>> = None;
        for r in &rows {
            let part: &[u8] = r.get(0);
            text.get_or_insert_with(Vec::new).extend_from_slice(part);
        }
        Ok(text)
    }

    fn set_run_status(&self, run: RunRef, status: BatchStatus, note: Option<&str>) -> Result<()> {
        self.fenced(run, Hold::Update, |tx, _| {
            write_status(tx, run.bid, status, run.execution_id, run.node, note)
        })
    }

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
                 WHERE bid = $1",
                &[&bid],
            )?;
            Ok(())
        })
    }

    fn cancel_unowned(&self, bid: &str, seen: &BatchState, node: &str) -> Result<bool> {
        let fence = uuid::Uuid::new_v4().to_string();
        self.if_as_seen(bid, seen, |tx| {
            declare_owner_dead(tx, seen)?;
            let no = batch_no(tx, bid)?;
            let held = materialize_claims(tx, no, Holders::DeadAnd(None))?;
            cancel_rows(tx, no, &held)?;
            recount(self, tx, no)?;
            write_status(tx, bid, BatchStatus::Cancelled, &fence, node, None)
        })
    }

    fn leave_unfinished(&self, run: RunRef, note: &str) -> Result<()> {
        self.fenced(run, Hold::Update, |tx, _| {
            let r = tx.query_one(
                "UPDATE batches SET owner_node = NULL, owner_pid = NULL, owner_worker = NULL
                 WHERE bid = $1 RETURNING status",
                &[&run.bid],
            )?;
            let status: BatchStatus = parsed(self, r.get(0))?;
            Ok(event(
                tx,
                run.bid,
                run.execution_id,
                run.node,
                status,
                Some(note),
            )?)
        })
    }

    fn take_ownership(&self, run: RunRef, dc: &str) -> Result<()> {
        let (bid, node) = (run.bid, run.node);
        let dropped = self.fenced(run, Hold::Update, |tx, _| {
            let r = tx.query_one(
                "SELECT lu, fabric_command, source FROM batches WHERE bid = $1",
                &[&bid],
            )?;
            let (lu, fabric_command, source): (String, String, String) =
                (r.get(0), r.get(1), r.get(2));
            for name in NewBatch::lus_used(&lu, &fabric_command, &source) {
                // Held until the commit: a DROP LU waits for this owner,
                // and then sees it.
                let exists = tx
                    .query_opt("SELECT 1 FROM lus WHERE name = $1 FOR SHARE", &[&name])?
                    .is_some();
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
                "UPDATE batches SET owner_node = $2, owner_pid = $3, heartbeat_at = batchsh_now(),
                     owner_worker = $4
                 WHERE bid = $1",
                &[&bid, &node, &i64::from(std::process::id()), &run.worker],
            )?;
            node_joins(tx, run, dc)?;
            Ok(None)
        })?;
        dropped.map_or(Ok(()), Err)
    }

    fn join_batch(&self, run: RunRef, dc: &str) -> Result<()> {
        self.fenced(run, Hold::Share, |tx, _| node_joins(tx, run, dc))
    }

    fn max_seq(&self, bid: &str) -> Result<i64> {
        let r = self
            .client()
            .query_opt(
                "SELECT greatest(
                     (SELECT coalesce(max(seq), 0) FROM batch_entities WHERE batch = b.batch_no),
                     (SELECT coalesce(max(first_seq + jsonb_array_length(ids::jsonb) - 1), 0)
                      FROM batch_claims WHERE batch = b.batch_no),
                     (SELECT coalesce(max(first_seq + jsonb_array_length(ids::jsonb) - 1), 0)
                      FROM batch_chunks WHERE batch = b.batch_no))
                 FROM batches AS b WHERE bid = $1",
                &[&bid],
            )
            .map_err(|e| self.err(e))?;
        r.map(|r| r.get(0)).ok_or_else(|| StoreError::no_batch(bid))
    }

    fn keeps_chunks(&self) -> bool {
        true
    }

    fn step(&self, run: RunRef, next_seq: &mut i64, input: &mut StepInput) -> Result<StepResult> {
        if let Some(half) = beside::half_to_write_beside(input) {
            return self.step_in_two(run, next_seq, input, half);
        }
        self.step_part(run, next_seq, input, &mut step::Part::Whole)
    }

    fn cancel_waiting(&self, run: RunRef, orphans: bool) -> Result<()> {
        self.fenced(run, Hold::Update, |tx, fence| {
            let no = fence.no;
            if orphans {
                let held = materialize_claims(tx, no, Holders::DeadAnd(Some(run.worker)))?;
                cancel_rows(tx, no, &held)?;
                recount(self, tx, no)?;
                return Ok(());
            }
            let n = tx.execute(
                "UPDATE batch_entities SET status = 'CANCELLED', retry_at_ms = NULL
                 WHERE batch = $1 AND status <> 'COMPLETED' AND status = 'WAITING'",
                &[&no],
            )? + cancel_chunks(tx, no)?;
            let n = n as i64;
            // The batch row's own counters: the workers' changes add to them.
            tx.execute(
                "UPDATE batches SET waiting = waiting - $2, cancelled = cancelled + $2
                 WHERE batch_no = $1",
                &[&no, &n],
            )?;
            Ok(())
        })
    }

    fn requeue_orphans(&self, run: RunRef) -> Result<Counters> {
        self.fenced(run, Hold::Update, |tx, fence| {
            if requeue_in_process(tx, fence.no, Holders::DeadAnd(Some(run.worker)))? == 0 {
                // Nothing went back (the IN_PROCESS entities are live
                // nodes'): the counters stand; no scan of the rows.
                return counters_of(tx, run.bid);
            }
            recount(self, tx, fence.no)
        })
    }

    fn requeue_dead(&self, run: RunRef) -> Result<Option<Counters>> {
        // First a look that locks nothing: the owner asks twice a second
        // while other nodes hold claims, and holding the batch row for
        // the write would stop every node's step each time.
        let mut client = self.client();
        let dead = batch_no(&mut *client, run.bid)
            .and_then(|no| dead_holders(&mut *client, no, Some(run.worker)))
            .map_err(|e| self.tx_err(e))?;
        drop(client);
        if dead.is_empty() {
            return Ok(None);
        }
        self.fenced(run, Hold::Update, |tx, fence| {
            let back = requeue_in_process(tx, fence.no, Holders::Dead { but: run.worker })?;
            if back == 0 {
                return Ok(None);
            }
            // Moved in the run's own row of changes, not recounted: a
            // recount reads the rows, and the run's own claims of ids as
            // they arrived have none yet.
            let back = back as i64;
            tx.execute(
                "INSERT INTO batch_counts AS c (batch, worker, waiting, in_process)
                 VALUES ($1, $2, $3::bigint, -$3::bigint)
                 ON CONFLICT (batch, worker) DO UPDATE SET waiting = c.waiting + excluded.waiting,
                     in_process = c.in_process + excluded.in_process",
                &[&fence.no, &run.worker, &back],
            )?;
            Ok(Some(counters_of(tx, run.bid)?))
        })
    }

    fn fail_run(&self, run: RunRef, error: &str) -> Result<()> {
        self.fenced(run, Hold::Update, |tx, fence| {
            requeue_in_process(tx, fence.no, Holders::DeadAnd(Some(run.worker)))?;
            recount(self, tx, fence.no)?;
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
        let stats = stats.to_string();
        self.fenced(run, Hold::Update, |tx, _| {
            tx.execute(
                "UPDATE batches SET extra_stats = $2 WHERE bid = $1",
                &[&run.bid, &stats],
            )?;
            Ok(())
        })
    }

    fn end_node(&self, run: RunRef) -> Result<()> {
        self.fenced(run, Hold::Share, |tx, _| {
            tx.execute(
                "UPDATE batch_nodes SET end_time = $3 WHERE bid = $1 AND node = $2",
                &[&run.bid, &run.node, &crate::store::now()],
            )?;
            // The owner may be waiting for this node's last entities.
            notify(tx, Notice::Batch, run.bid)?;
            Ok(())
        })
    }

    fn counters(&self, bid: &str) -> Result<Counters> {
        counters_of(&mut *self.client(), bid).map_err(|e| self.tx_err(e))
    }

    fn finished_counts(&self, bid: &str) -> Result<(i64, i64)> {
        let c = self.counters(bid)?;
        Ok((c.completed, c.failed))
    }

    fn workdir(&self, bid: &str) -> Result<Option<String>> {
        self.client()
            .query_opt("SELECT workdir FROM batches WHERE bid = $1", &[&bid])
            .map_err(|e| self.err(e))?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::no_batch(bid))
    }

    fn slowest(&self, bid: &str) -> Result<serde_json::Value> {
        let rows = self
            .client()
            .query(
                "SELECT entity_id, process_time_ms, status, result FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = $1)
                     AND status IN ('COMPLETED', 'FAILED') AND process_time_ms IS NOT NULL
                 ORDER BY process_time_ms DESC, seq LIMIT 10",
                &[&bid],
            )
            .map_err(|e| self.err(e))?;
        let rows = rows.iter().map(|r| {
            slowest_row(
                &r.get::<_, String>(0),
                r.get(1),
                &r.get::<_, String>(2),
                r.get::<_, Option<String>>(3).as_deref(),
            )
        });
        Ok(slowest_json(rows.collect()))
    }

    fn batch_state(&self, bid: &str) -> Result<BatchState> {
        let r = self
            .client()
            .query_opt(
                "SELECT status, execution_id, ids_complete, owner_node, owner_pid, heartbeat_at,
                        command, requested, owner_worker
                 FROM batches WHERE bid = $1",
                &[&bid],
            )
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::no_batch(bid))?;
        let requested: Option<&str> = r.get(7);
        Ok(BatchState {
            status: parsed(self, r.get(0))?,
            execution_id: r.get(1),
            ids_complete: r.get::<_, i64>(2) != 0,
            owner_node: r.get(3),
            owner_pid: r.get(4),
            heartbeat_at: r.get(5),
            command: r.get(6),
            requested: requested.map(|t| parsed(self, t)).transpose()?,
            owner_worker: r.get(8),
        })
    }

    fn request(&self, bid: &str, requested: Option<Request>) -> Result<()> {
        self.client()
            .execute(
                "UPDATE batches SET requested = $2 WHERE bid = $1",
                &[&bid, &requested.map(Request::as_str)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn set_max_workers(&self, bid: &str, n: i64, node: &str) -> Result<()> {
        self.tx(|tx| {
            let Some(r) = tx.query_opt(
                "UPDATE batches SET max_workers = $2 WHERE bid = $1
                 RETURNING status, execution_id",
                &[&bid, &n],
            )?
            else {
                return Err(StoreError::no_batch(bid).into());
            };
            let status: BatchStatus = parsed(self, r.get(0))?;
            let execution_id: String = r.get(1);
            let note = max_workers_note(n);
            Ok(event(tx, bid, &execution_id, node, status, Some(&note))?)
        })
    }

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
            counters = None;
            let r = tx.query_one(
                "SELECT command, coalesce((arguments::jsonb -> 'ALLOW_MULTIPLE')
                     IN ('true'::jsonb, '1'::jsonb), false)
                 FROM batches WHERE bid = $1",
                &[&bid],
            )?;
            let (command, multiple): (String, bool) = (r.get(0), r.get(1));
            twin = None;
            if !multiple {
                lock_creation(tx)?;
                twin = active_twin(tx, &command, bid)?;
            }
            if twin.is_some() {
                return Ok(());
            }
            tx.execute(
                "UPDATE batches SET owner_node = $2, owner_pid = $3, heartbeat_at = batchsh_now(),
                     requested = NULL, execution_id = $4, owner_worker = NULL
                 WHERE bid = $1",
                &[&bid, &node, &i64::from(std::process::id()), &execution_id],
            )?;
            declare_owner_dead(tx, seen)?;
            let no = batch_no(tx, bid)?;
            // Every claim goes back, a live node's too: the new execution
            // id fences out every write of the runs before it, so an
            // entity still in flight in one of them would never be
            // written; it runs again.
            let held = materialize_claims(tx, no, Holders::All)?;
            let statuses: Vec<&str> = retried_statuses(finished)
                .iter()
                .map(|s| s.as_str())
                .collect();
            // A bad id stays FAILED: a retry cannot make it good.
            tx.execute(
                &format!(
                    "UPDATE batch_entities SET status = 'WAITING', retry_at_ms = NULL, worker = NULL
                     WHERE batch = $1 AND status <> 'COMPLETED'
                         AND (status = ANY($3::text[]) OR (status = 'IN_PROCESS' AND {HELD_BY}))
                         AND NOT ({BAD_ID_ROW})"
                ),
                &[&no, &held, &statuses],
            )?;
            counters = Some(recount(self, tx, no)?);
            Ok(())
        })?;
        if let Some(other) = twin {
            return Err(twin_active(bid, other));
        }
        Ok(counters)
    }

    fn purgeable(&self, cutoff: &str, statuses: &[BatchStatus]) -> Result<Vec<Purgeable>> {
        purge::purgeable(self, cutoff, statuses)
    }

    fn purge_batch(&self, seen: &Purgeable) -> Result<bool> {
        purge::purge_batch(self, seen)
    }

    fn purge_rows(&self, batch_no: i64, max_rows: usize) -> Result<usize> {
        purge::purge_rows(self, batch_no, max_rows)
    }

    fn orphan_batch_nos(&self) -> Result<Vec<i64>> {
        purge::orphan_batch_nos(self)
    }
}

impl PgStore {
    /// A step's transaction, writing `part` of it.
    fn step_part(
        &self,
        run: RunRef,
        next_seq: &mut i64,
        input: &mut StepInput,
        part: &mut step::Part<'_>,
    ) -> Result<StepResult> {
        let from = *next_seq;
        let (mut r, moved, seq) = self.fenced(run, Hold::Share, |tx, fence| {
            // Again from the same number, should the transaction run again.
            let mut seq = from;
            let (r, moved) = step::step_in(self, tx, fence, run, &mut seq, &*input, part)?;
            Ok((r, moved, seq))
        })?;
        *next_seq = seq;
        crate::store::step::move_claimed_ids(&mut r, moved, input);
        Ok(r)
    }

    /// A transaction body's error, for a statement run outside one.
    fn tx_err(&self, e: TxError) -> StoreError {
        match e {
            TxError::Pg(e) => self.err(e),
            TxError::Store(e) => e,
        }
    }
}

/// The run's node starts (or starts again) its row of the batch's per-node
/// counters.
fn node_joins(tx: &mut Transaction<'_>, run: RunRef, dc: &str) -> TxResult<()> {
    tx.execute(
        "INSERT INTO batch_nodes (bid, node, dc, start_time) VALUES ($1, $2, $3, $4)
         ON CONFLICT (bid, node) DO UPDATE SET end_time = NULL",
        &[&run.bid, &run.node, &dc, &crate::store::now()],
    )?;
    Ok(())
}

/// WAITING entities, and the IN_PROCESS ones of the holders `held`
/// ([`HELD_BY`]), become CANCELLED; the caller recounts.
fn cancel_rows(tx: &mut Transaction<'_>, no: i64, held: &Option<Vec<String>>) -> TxResult<()> {
    cancel_chunks(tx, no)?;
    tx.execute(
        &format!(
            "UPDATE batch_entities SET status = 'CANCELLED', retry_at_ms = NULL, worker = NULL
             WHERE batch = $1 AND status <> 'COMPLETED'
                 AND (status = 'WAITING' OR (status = 'IN_PROCESS' AND {HELD_BY}))"
        ),
        &[&no, held],
    )?;
    Ok(())
}

/// The entities stored ahead in chunks become CANCELLED rows: how many.
fn cancel_chunks(tx: &mut Transaction<'_>, no: i64) -> TxResult<u64> {
    Ok(tx.execute(
        "WITH c AS (DELETE FROM batch_chunks WHERE batch = $1 RETURNING first_seq, ids)
         INSERT INTO batch_entities (batch, seq, entity_id, status)
         SELECT $1, c.first_seq + j.n - 1, j.value, 'CANCELLED'
         FROM c CROSS JOIN LATERAL jsonb_array_elements_text(c.ids::jsonb)
              WITH ORDINALITY AS j (value, n)
         WHERE j.value IS NOT NULL",
        &[&no],
    )?)
}

/// The condition (SQL) true of exactly the rows of bad ids, as in the
/// SQLite store (`crate::store::sqlite::batches`): FAILED with no attempt.
const BAD_ID_ROW: &str = "status = 'FAILED' AND attempts = 0";
