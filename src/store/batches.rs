//! The executor's writes to the batch tables. Each [`Store::step`] is one
//! transaction that stores newly generated ids, records finished entities
//! with their counters, and claims the next entities, so that:
//!
//! - an entity is stored (committed) before it is handed to a worker;
//! - an entity's outcome is committed together with its status and the
//!   batch's counters, which therefore always add up;
//! - after a crash, a COMPLETED entity is never claimed again: only WAITING
//!   rows are claimed, and IN_PROCESS rows of a dead run go back to WAITING
//!   only through [`Store::prepare_retry`] (at-least-once for those alone).

use super::{Result, Store, StoreError};
use rusqlite::{OptionalExtension, Transaction, params};

/// A new batch, as `BATCH` creates it.
pub struct NewBatch<'a> {
    pub bid: &'a str,
    pub command: &'a str,
    pub lu: &'a str,
    pub fabric_command: &'a str,
    pub source: &'a serde_json::Value,
    pub arguments: &'a serde_json::Value,
    pub execution_id: &'a str,
    pub node: &'a str,
    pub estimated_total: Option<i64>,
    pub max_workers: Option<i64>,
}

/// An id from the source: a usable id, or one that fails as it arrives
/// (NULL, empty, not UTF-8, too long): `(text to store, error)`.
pub enum NewId {
    Ok(String),
    Bad(String, String),
}

/// What happened to one claimed entity.
pub struct Outcome {
    pub seq: i64,
    pub start: String,
    pub end: String,
    pub process_ms: i64,
    pub result: Option<String>,
    pub state: OutcomeState,
}

pub enum OutcomeState {
    Completed {
        added: bool,
        updated: bool,
        unchanged: bool,
    },
    Failed {
        error: String,
    },
    /// Failed, but to be tried again at `retry_at`.
    Retry {
        error: String,
        retry_at: String,
    },
}

/// An entity handed to a worker.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub seq: i64,
    pub entity_id: String,
    pub attempts: i64,
}

/// What other processes asked of the batch, read at every step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Control {
    pub requested: Option<String>,
    pub max_workers: Option<i64>,
}

/// The batch's counters after a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: i64,
    pub waiting: i64,
    pub in_process: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
}

pub struct StepResult {
    pub claimed: Vec<Claimed>,
    pub control: Control,
    pub counters: Counters,
    /// WAITING entities exist but none was claimable: their retry time has
    /// not come yet.
    pub retry_pending: bool,
}

/// The statuses that end a batch.
pub const FINAL: [&str; 3] = ["DONE", "FAILED", "CANCELLED"];

impl Store {
    pub fn create_batch(&self, b: &NewBatch) -> Result<()> {
        let now = super::now();
        let tx = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                 execution_id, created_by, creation_time, estimated_total, max_workers)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'NEW', ?7, ?8, ?9, ?10, ?11)",
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
                b.max_workers
            ],
        )
        .map_err(|e| self.err(e))?;
        event(&tx, b.bid, b.execution_id, b.node, "NEW", None).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// An active (not final) batch whose command text is `command`.
    pub fn active_batch_with_command(&self, command: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT bid FROM batches WHERE command = ?1
                 AND status NOT IN ('DONE', 'FAILED', 'CANCELLED') LIMIT 1",
                [command],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Moves the batch to `status`, with an event. Sets the start time on
    /// the first IN_PROGRESS and the end time (and clears the owner) on a
    /// final status.
    pub fn set_batch_status(
        &self,
        bid: &str,
        status: &str,
        execution_id: &str,
        node: &str,
        note: Option<&str>,
    ) -> Result<()> {
        let now = super::now();
        let tx = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.err(e))?;
        let is_final = FINAL.contains(&status);
        tx.execute(
            "UPDATE batches SET status = ?2, execution_id = ?3,
                 start_time = CASE WHEN ?2 = 'IN_PROGRESS' AND start_time IS NULL THEN ?4 ELSE start_time END,
                 end_time = CASE WHEN ?5 THEN ?4 ELSE NULL END,
                 error = CASE WHEN ?2 = 'FAILED' THEN ?6 WHEN ?5 THEN error ELSE NULL END,
                 owner_node = CASE WHEN ?5 THEN NULL ELSE owner_node END,
                 owner_pid = CASE WHEN ?5 THEN NULL ELSE owner_pid END,
                 requested = CASE WHEN ?5 THEN NULL ELSE requested END
             WHERE bid = ?1",
            params![bid, status, execution_id, now, is_final, note],
        )
        .map_err(|e| self.err(e))?;
        event(&tx, bid, execution_id, node, status, note).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Claims the batch for this process (node and pid) and starts its
    /// per-node row.
    pub fn take_ownership(&self, bid: &str, node: &str, dc: &str) -> Result<()> {
        let now = super::now();
        self.conn()
            .execute(
                "UPDATE batches SET owner_node = ?2, owner_pid = ?3, heartbeat_at = ?4 WHERE bid = ?1",
                params![bid, node, i64::from(std::process::id()), now],
            )
            .map_err(|e| self.err(e))?;
        self.conn()
            .execute(
                "INSERT INTO batch_nodes (bid, node, dc, start_time) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (bid, node) DO UPDATE SET end_time = NULL",
                params![bid, node, dc, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The highest entity sequence number stored for the batch.
    pub fn max_seq(&self, bid: &str) -> Result<i64> {
        self.conn()
            .query_row(
                "SELECT coalesce(max(seq), 0) FROM batch_entities WHERE bid = ?1",
                [bid],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// One step of the executor, in one transaction (see the module doc).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        bid: &str,
        node: &str,
        next_seq: &mut i64,
        new_ids: &[NewId],
        ids_complete: bool,
        outcomes: &[Outcome],
        claim: usize,
    ) -> Result<StepResult> {
        let now = super::now();
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let r = step_in(
            &tx,
            bid,
            node,
            next_seq,
            new_ids,
            ids_complete,
            outcomes,
            claim,
            &now,
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(r)
    }

    /// Every entity still WAITING becomes CANCELLED (with the counters).
    pub fn cancel_waiting(&self, bid: &str) -> Result<()> {
        let tx = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.err(e))?;
        let n = tx
            .execute(
                "UPDATE batch_entities SET status = 'CANCELLED', retry_at = NULL
                 WHERE bid = ?1 AND status = 'WAITING'",
                [bid],
            )
            .map_err(|e| self.err(e))? as i64;
        tx.execute(
            "UPDATE batches SET waiting = waiting - ?2, cancelled = cancelled + ?2 WHERE bid = ?1",
            params![bid, n],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn set_extra_stats(&self, bid: &str, stats: &serde_json::Value) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE batches SET extra_stats = ?2 WHERE bid = ?1",
                params![bid, stats.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn end_node(&self, bid: &str, node: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE batch_nodes SET end_time = ?3 WHERE bid = ?1 AND node = ?2",
                params![bid, node, super::now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The 10 slowest finished entities, in Fabric's `extra_stats` shape.
    pub fn slowest(&self, bid: &str) -> Result<serde_json::Value> {
        let mut st = self
            .conn()
            .prepare(
                "SELECT entity_id, process_time_ms, status, result FROM batch_entities
                 WHERE bid = ?1 AND status IN ('COMPLETED', 'FAILED') AND process_time_ms IS NOT NULL
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
    pub fn batch_state(&self, bid: &str) -> Result<BatchState> {
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
    pub fn request(&self, bid: &str, requested: Option<&str>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE batches SET requested = ?2 WHERE bid = ?1",
                params![bid, requested],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_max_workers(&self, bid: &str, n: i64) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE batches SET max_workers = ?2 WHERE bid = ?1",
                params![bid, n],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes a batch ready to run again (BATCH_RETRY): failed entities, and
    /// for an unfinished batch also orphaned IN_PROCESS and CANCELLED ones,
    /// go back to WAITING; counters are recounted from the rows (the one
    /// place that scans them, so a crash can never leave them wrong).
    pub fn prepare_retry(&self, bid: &str, finished: bool) -> Result<Counters> {
        let tx = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.err(e))?;
        let statuses = if finished {
            "('FAILED')"
        } else {
            "('FAILED', 'IN_PROCESS', 'CANCELLED')"
        };
        tx.execute(
            &format!(
                "UPDATE batch_entities SET status = 'WAITING', retry_at = NULL
                 WHERE bid = ?1 AND status IN {statuses}"
            ),
            [bid],
        )
        .map_err(|e| self.err(e))?;
        let c = recount(&tx, bid).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(c)
    }

    /// Marks the source as exhausted (the total is final).
    pub fn set_ids_complete(&self, bid: &str) -> Result<()> {
        self.conn()
            .execute("UPDATE batches SET ids_complete = 1 WHERE bid = ?1", [bid])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// The columns of `batches` that [`Store::batch_state`] reads.
#[derive(Clone, Debug)]
pub struct BatchState {
    pub status: String,
    pub execution_id: String,
    pub ids_complete: bool,
    pub owner_node: Option<String>,
    pub owner_pid: Option<i64>,
    pub heartbeat_at: Option<String>,
    pub command: String,
    pub requested: Option<String>,
}

fn event(
    tx: &Transaction,
    bid: &str,
    execution_id: &str,
    node: &str,
    status: &str,
    note: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO batch_events (bid, execution_id, time, node, status, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![bid, execution_id, super::now(), node, status, note],
    )?;
    Ok(())
}

/// Counters recomputed from the entity rows, and written to the batch row.
fn recount(tx: &Transaction, bid: &str) -> rusqlite::Result<Counters> {
    let mut c = Counters::default();
    {
        let mut st = tx.prepare(
            "SELECT status, count(*) FROM batch_entities WHERE bid = ?1 GROUP BY status",
        )?;
        let mut rows = st.query([bid])?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(1)?;
            match r.get::<_, String>(0)?.as_str() {
                "WAITING" => c.waiting = n,
                "IN_PROCESS" => c.in_process = n,
                "COMPLETED" => c.completed = n,
                "FAILED" => c.failed = n,
                _ => c.cancelled += n,
            }
        }
    }
    c.total = c.waiting + c.in_process + c.completed + c.failed + c.cancelled;
    let (added, updated, unchanged): (i64, i64, i64) = tx.query_row(
        "SELECT coalesce(sum(json_extract(result, '$.Added')), 0),
                coalesce(sum(json_extract(result, '$.Updated')), 0),
                coalesce(sum(json_extract(result, '$.Unchanged')), 0)
         FROM batch_entities WHERE bid = ?1 AND status = 'COMPLETED' AND json_valid(result)",
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

#[allow(clippy::too_many_arguments)]
fn step_in(
    tx: &Transaction,
    bid: &str,
    node: &str,
    next_seq: &mut i64,
    new_ids: &[NewId],
    ids_complete: bool,
    outcomes: &[Outcome],
    claim: usize,
    now: &str,
) -> rusqlite::Result<StepResult> {
    let mut d = Counters::default();
    if !new_ids.is_empty() {
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO batch_entities (bid, seq, entity_id, status, error, end_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for id in new_ids {
            *next_seq += 1;
            let n = match id {
                NewId::Ok(text) => {
                    let n = ins.execute(params![
                        bid,
                        *next_seq,
                        text,
                        "WAITING",
                        None::<String>,
                        None::<String>
                    ])?;
                    d.waiting += n as i64;
                    n
                }
                NewId::Bad(text, error) => {
                    let n = ins.execute(params![bid, *next_seq, text, "FAILED", error, now])?;
                    d.failed += n as i64;
                    n
                }
            };
            d.total += n as i64;
        }
    }
    if !outcomes.is_empty() {
        let mut upd = tx.prepare_cached(
            "UPDATE batch_entities SET status = ?3, start_time = ?4, end_time = ?5,
                 process_time_ms = ?6, result = ?7, error = ?8, retry_at = ?9
             WHERE bid = ?1 AND seq = ?2 AND status = 'IN_PROCESS'",
        )?;
        for o in outcomes {
            let (status, error, retry_at) = match &o.state {
                OutcomeState::Completed { .. } => ("COMPLETED", None, None),
                OutcomeState::Failed { error } => ("FAILED", Some(error.as_str()), None),
                OutcomeState::Retry { error, retry_at } => {
                    ("WAITING", Some(error.as_str()), Some(retry_at.as_str()))
                }
            };
            let n = upd.execute(params![
                bid,
                o.seq,
                status,
                o.start,
                o.end,
                o.process_ms,
                o.result,
                error,
                retry_at
            ])? as i64;
            if n == 0 {
                // Not IN_PROCESS any more (a retry reset it): not ours to count.
                continue;
            }
            d.in_process -= 1;
            match &o.state {
                OutcomeState::Completed {
                    added,
                    updated,
                    unchanged,
                } => {
                    d.completed += 1;
                    d.added += i64::from(*added);
                    d.updated += i64::from(*updated);
                    d.unchanged += i64::from(*unchanged);
                }
                OutcomeState::Failed { .. } => d.failed += 1,
                OutcomeState::Retry { .. } => d.waiting += 1,
            }
        }
    }
    let mut claimed = Vec::new();
    if claim > 0 {
        let mut st = tx.prepare_cached(
            "UPDATE batch_entities SET status = 'IN_PROCESS', node = ?2, attempts = attempts + 1,
                 start_time = ?3, retry_at = NULL
             WHERE bid = ?1 AND seq IN (
                 SELECT seq FROM batch_entities
                 WHERE bid = ?1 AND status = 'WAITING' AND (retry_at IS NULL OR retry_at <= ?3)
                 ORDER BY seq LIMIT ?4)
             RETURNING seq, entity_id, attempts",
        )?;
        let rows = st.query_map(params![bid, node, now, claim as i64], |r| {
            Ok(Claimed {
                seq: r.get(0)?,
                entity_id: r.get(1)?,
                attempts: r.get(2)?,
            })
        })?;
        for c in rows {
            claimed.push(c?);
        }
        claimed.sort_by_key(|c| c.seq);
        d.waiting -= claimed.len() as i64;
        d.in_process += claimed.len() as i64;
    }
    let done_here = d.completed + d.failed;
    tx.execute(
        "UPDATE batches SET total = total + ?2, waiting = waiting + ?3, in_process = in_process + ?4,
             completed = completed + ?5, failed = failed + ?6, added = added + ?7,
             updated = updated + ?8, unchanged = unchanged + ?9, heartbeat_at = ?10,
             ids_complete = max(ids_complete, ?11)
         WHERE bid = ?1",
        params![
            bid,
            d.total,
            d.waiting,
            d.in_process,
            d.completed,
            d.failed,
            d.added,
            d.updated,
            d.unchanged,
            now,
            ids_complete
        ],
    )?;
    if done_here != 0 || !outcomes.is_empty() {
        // Entities that failed on arrival (bad ids) are counted on the
        // batch, not on a node: no node processed them.
        let node_failed = d.failed
            - new_ids
                .iter()
                .filter(|i| matches!(i, NewId::Bad(..)))
                .count() as i64;
        tx.execute(
            "UPDATE batch_nodes SET completed = completed + ?3, failed = failed + ?4,
                 added = added + ?5, updated = updated + ?6, unchanged = unchanged + ?7
             WHERE bid = ?1 AND node = ?2",
            params![
                bid,
                node,
                d.completed,
                node_failed.max(0),
                d.added,
                d.updated,
                d.unchanged
            ],
        )?;
    }
    let (control, counters) = tx.query_row(
        "SELECT requested, max_workers, total, waiting, in_process, completed, failed, cancelled,
                added, updated, unchanged
         FROM batches WHERE bid = ?1",
        params![bid],
        |r| {
            Ok((
                Control {
                    requested: r.get(0)?,
                    max_workers: r.get(1)?,
                },
                Counters {
                    total: r.get(2)?,
                    waiting: r.get(3)?,
                    in_process: r.get(4)?,
                    completed: r.get(5)?,
                    failed: r.get(6)?,
                    cancelled: r.get(7)?,
                    added: r.get(8)?,
                    updated: r.get(9)?,
                    unchanged: r.get(10)?,
                },
            ))
        },
    )?;
    // Entities wait but none could be claimed: they wait for a retry time
    // (derived here, not queried: an EXISTS over the waiting rows would
    // cost every step the size of the batch).
    let retry_pending = claim > 0 && claimed.is_empty() && counters.waiting > 0;
    Ok(StepResult {
        claimed,
        control,
        counters,
        retry_pending,
    })
}

/// Appends a progress sample for the pace figure.
pub fn sample_progress(store: &Store, bid: &str, node: &str, done: i64) -> Result<()> {
    let ms = chrono::Utc::now().timestamp_millis();
    store
        .conn()
        .execute(
            "INSERT OR REPLACE INTO batch_progress (bid, node, time_ms, done) VALUES (?1, ?2, ?3, ?4)",
            params![bid, node, ms, done],
        )
        .map_err(|e| store.err(e))?;
    Ok(())
}

impl Store {
    /// Cancels a batch that no process runs: its WAITING entities, and the
    /// IN_PROCESS ones a dead process left, become CANCELLED.
    pub fn cancel_idle(&self, bid: &str) -> Result<()> {
        let tx = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE batch_entities SET status = 'CANCELLED', retry_at = NULL
             WHERE bid = ?1 AND status IN ('WAITING', 'IN_PROCESS')",
            [bid],
        )
        .map_err(|e| self.err(e))?;
        recount(&tx, bid).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }
}
