//! One step of a run, in SQL: store new ids (claimed as they arrive, in
//! one claim row), write outcomes (rows of many entities per INSERT),
//! release what was not started, claim the next WAITING entities, and
//! update the batch's counters, all in the step's transaction.

use crate::batch::Counters;
use crate::batch::{BatchStatus, EntityStatus};
use crate::store::batches::*;
use crate::store::step::{Tally, outcome_fields, retry_pending};
use rusqlite::{Transaction, params};

/// The row of an entity claimed as it arrived, written with its outcome.
pub(super) struct OutcomeRow<'a> {
    pub(super) o: &'a Outcome,
    pub(super) status: EntityStatus,
    pub(super) error: Option<&'a str>,
    pub(super) retry_at: Option<i64>,
}

/// Rows per INSERT statement: one statement for many rows saves most of
/// what SQLite and the binding cost per statement.
pub(super) const ROWS_PER_INSERT: usize = 32;

/// Writes the rows of entities claimed as they arrived, in sequence order.
/// The batch and the node are bound once per statement; COMPLETED rows,
/// nearly all of them in a fast batch, have a statement of their own that
/// binds only what differs from row to row.
pub(super) fn insert_outcome_rows(
    tx: &Transaction,
    no: i64,
    node: &str,
    rows: &mut [OutcomeRow],
) -> rusqlite::Result<()> {
    use rusqlite::ToSql;
    rows.sort_by_key(|r| r.o.seq);
    let completed = |r: &OutcomeRow| {
        r.error.is_none() && r.retry_at.is_none() && r.status == EntityStatus::Completed
    };
    let mut k = 0;
    while k < rows.len() {
        let plain = completed(&rows[k]);
        let run = rows[k..]
            .iter()
            .take_while(|r| completed(r) == plain)
            .count();
        let (part, _) = rows[k..].split_at(run);
        k += run;
        // Full groups in one statement each, the rest one by one: four
        // statements to keep prepared, whatever the number of rows.
        let full = part.len() - part.len() % ROWS_PER_INSERT;
        for group in part[..full]
            .chunks(ROWS_PER_INSERT)
            .chain(part[full..].chunks(1))
        {
            let per_row = if plain { 6 } else { 9 };
            let mut values: Vec<&dyn ToSql> = Vec::with_capacity(2 + group.len() * per_row);
            values.extend([&no as &dyn ToSql, &node]);
            for r in group {
                values.extend([
                    &r.o.seq as &dyn ToSql,
                    &r.o.start_ms,
                    &r.o.end_ms,
                    &r.o.process_ms,
                    &r.o.result,
                    &r.o.entity_id,
                ]);
                if !plain {
                    values.extend([&r.status as &dyn ToSql, &r.error, &r.retry_at]);
                }
            }
            let sql = outcome_sql(plain, group.len());
            tx.prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(values))?;
        }
    }
    Ok(())
}

/// The INSERT of [`insert_outcome_rows`] for `n` rows (1 or
/// [`ROWS_PER_INSERT`]), COMPLETED ones (`plain`) or any: built once.
pub(super) fn outcome_sql(plain: bool, n: usize) -> &'static str {
    use std::sync::OnceLock;
    static SQL: [OnceLock<String>; 4] = [const { OnceLock::new() }; 4];
    debug_assert!(n == 1 || n == ROWS_PER_INSERT);
    let slot = usize::from(plain) * 2 + usize::from(n > 1);
    SQL[slot].get_or_init(|| {
        let per_row = if plain { 6 } else { 9 };
        let rows: Vec<String> = (0..n)
            .map(|i| {
                let p = |j: usize| format!("?{}", 3 + i * per_row + j);
                let rest = if plain {
                    "'COMPLETED', NULL, NULL".to_string()
                } else {
                    format!("{}, {}, {}", p(6), p(7), p(8))
                };
                let own: Vec<String> = (0..6).map(p).collect();
                format!("(?1, ?2, 1, {}, {rest})", own.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO batch_entities (batch, node, attempts, seq, start_time_ms, end_time_ms,
                 process_time_ms, result, entity_id, status, error, retry_at_ms)
             VALUES {}",
            rows.join(", ")
        )
    })
}

/// A step's writes; `no` is the batch's number, which keys its entity rows.
/// With the result, the ids claimed as they arrived: (index in the result's
/// claimed entities, index in `input.new_ids`), whose text the caller moves
/// over once the step is committed (their `entity_id` is empty until then).
pub(super) fn step_in(
    tx: &Transaction,
    no: i64,
    run: RunRef,
    next_seq: &mut i64,
    input: &StepInput,
) -> rusqlite::Result<(StepResult, Vec<(usize, usize)>)> {
    let (bid, node) = (run.bid, run.node);
    let now = crate::store::now();
    // The same moment as entity rows and claims keep it (`*_ms` columns).
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut tally = Tally::default();
    if !input.outcomes.is_empty() {
        let mut upd = tx.prepare_cached(
            "UPDATE batch_entities SET status = ?3, start_time_ms = ?4, end_time_ms = ?5,
                 process_time_ms = ?6, result = ?7, error = ?8, retry_at_ms = ?9, worker = NULL
             WHERE batch = ?1 AND seq = ?2 AND status = 'IN_PROCESS'",
        )?;
        let mut claim_open =
            tx.prepare_cached("SELECT 1 FROM batch_claims WHERE batch = ?1 AND first_seq = ?2")?;
        // Claim rows still there (the run's own), by first sequence number.
        let mut open_claims: Vec<(i64, bool)> = Vec::new();
        // The outcomes of entities claimed as they arrived: their rows,
        // written together below.
        let mut rows: Vec<OutcomeRow> = Vec::new();
        for o in &input.outcomes {
            let (status, error, retry_at) = outcome_fields(&o.state);
            let counted = match o.claim {
                None => {
                    upd.execute(params![
                        no,
                        o.seq,
                        status,
                        o.start_ms,
                        o.end_ms,
                        o.process_ms,
                        o.result,
                        error,
                        retry_at
                    ])? > 0
                }
                Some(first) => {
                    // A claim row gone means another process took the
                    // claim back (it found this run dead): not ours to count.
                    let open = match open_claims.iter().find(|(f, _)| *f == first) {
                        Some((_, open)) => *open,
                        None => {
                            let open = claim_open.exists(params![no, first])?;
                            open_claims.push((first, open));
                            open
                        }
                    };
                    if open {
                        tally.claim_done(first);
                        rows.push(OutcomeRow {
                            o,
                            status,
                            error,
                            retry_at,
                        });
                    }
                    open
                }
            };
            if !counted {
                // Not IN_PROCESS any more (a retry reset it): not ours to count.
                continue;
            }
            tally.outcome(&o.state);
        }
        insert_outcome_rows(tx, no, node, &mut rows)?;
    }
    if !input.release.is_empty() {
        let mut rel = tx.prepare_cached(
            "UPDATE batch_entities SET status = 'WAITING', attempts = attempts - 1,
                 node = NULL, start_time_ms = NULL, worker = NULL
             WHERE batch = ?1 AND seq = ?2 AND status = 'IN_PROCESS'",
        )?;
        let mut rel_claimed = tx.prepare_cached(
            "INSERT OR IGNORE INTO batch_entities (batch, seq, entity_id, status)
             VALUES (?1, ?2, ?3, 'WAITING')",
        )?;
        for c in &input.release {
            let n = match c.claim {
                None => rel.execute(params![no, c.seq])?,
                Some(first) => {
                    tally.claim_done(first);
                    rel_claimed.execute(params![no, c.seq, c.entity_id])?
                }
            } as i64;
            tally.released(n);
        }
    }
    if !tally.claims_done.is_empty() {
        let mut upd = tx.prepare_cached(
            "UPDATE batch_claims SET open = open - ?3 WHERE batch = ?1 AND first_seq = ?2",
        )?;
        let mut del = tx.prepare_cached(
            "DELETE FROM batch_claims WHERE batch = ?1 AND first_seq = ?2 AND open <= 0",
        )?;
        for &(first, n) in &tally.claims_done {
            upd.execute(params![no, first, n])?;
            del.execute(params![no, first])?;
        }
    }
    let mut claimed = Vec::new();
    // A batch that reached its final status hands out nothing more (a node
    // that helps its owner learns of the end at this step, and leaves).
    let status: BatchStatus = tx
        .prepare_cached("SELECT status FROM batches WHERE batch_no = ?1")?
        .query_row([no], |r| r.get(0))?;
    if input.claim > 0 && !status.is_final() {
        // Stored WAITING entities first, in order. The index is named:
        // with the retry time test, SQLite would otherwise walk the
        // primary key from the batch's first row for every claim.
        let mut st = tx.prepare_cached(
            "UPDATE batch_entities SET status = 'IN_PROCESS', node = ?2, attempts = attempts + 1,
                 start_time_ms = ?3, retry_at_ms = NULL, worker = ?5
             WHERE batch = ?1 AND seq IN (
                 SELECT seq FROM batch_entities INDEXED BY batch_entities_open
                 WHERE batch = ?1 AND status <> 'COMPLETED' AND status = 'WAITING'
                     AND (retry_at_ms IS NULL OR retry_at_ms <= ?3)
                 ORDER BY seq LIMIT ?4)
             RETURNING seq, entity_id, attempts",
        )?;
        let rows = st.query_map(
            params![no, node, now_ms, input.claim as i64, run.worker],
            |r| {
                Ok(Claimed {
                    seq: r.get(0)?,
                    entity_id: r.get(1)?,
                    attempts: r.get(2)?,
                    claim: None,
                })
            },
        )?;
        for c in rows {
            claimed.push(c?);
        }
        claimed.sort_by_key(|c| c.seq);
        tally.claimed(claimed.len() as i64);
    }
    let mut moved = Vec::new();
    if !input.new_ids.is_empty() {
        let mut ins = tx.prepare_cached(
            "INSERT INTO batch_entities (batch, seq, entity_id, status, error, end_time_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        // The ids claimed as they arrive: one claim row.
        let arrived = tally.place_new_ids(input, next_seq, now_ms, &mut claimed, false, |r| {
            ins.execute(params![no, r.seq, r.entity_id, r.status, r.error, r.end_ms])
                .map(drop)
        })?;
        if let Some(c) = &arrived.claim {
            tx.prepare_cached(
                "INSERT INTO batch_claims (batch, first_seq, node, start_time_ms, open, ids, worker)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                no,
                c.first,
                node,
                now_ms,
                c.open,
                c.ids_json,
                run.worker
            ])?;
        }
        moved = arrived.moved;
    }
    let d = &tally.d;
    tx.prepare_cached(
        "UPDATE batches SET total = total + ?2, waiting = waiting + ?3, in_process = in_process + ?4,
             completed = completed + ?5, failed = failed + ?6, added = added + ?7,
             updated = updated + ?8, unchanged = unchanged + ?9,
             heartbeat_at = CASE WHEN ?12 THEN heartbeat_at ELSE ?10 END,
             ids_complete = max(ids_complete, ?11)
         WHERE bid = ?1",
    )?
    .execute(params![
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
        input.ids_complete,
        input.helper
    ])?;
    // The node's heartbeat (with the batch's, for its owner).
    tx.prepare_cached("UPDATE nodes SET heartbeat_at = ?2 WHERE worker_id = ?1")?
        .execute(params![run.worker, now])?;
    if tally.touches_node(input) {
        // Entities that failed on arrival (bad ids) are counted on the
        // batch, not on a node: no node processed them.
        tx.prepare_cached(
            "UPDATE batch_nodes SET completed = completed + ?3, failed = failed + ?4,
                 added = added + ?5, updated = updated + ?6, unchanged = unchanged + ?7
             WHERE bid = ?1 AND node = ?2",
        )?
        .execute(params![
            bid,
            node,
            d.completed,
            tally.node_failed(),
            d.added,
            d.updated,
            d.unchanged
        ])?;
    }
    let (control, counters, ids_complete) = tx.prepare_cached(
        "SELECT requested, max_workers, total, waiting, in_process, completed, failed, cancelled,
                added, updated, unchanged, ids_complete
         FROM batches WHERE bid = ?1",
    )?
    .query_row(params![bid], |r| {
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
            r.get::<_, i64>(11)? != 0,
        ))
    })?;
    let retry_pending = retry_pending(&claimed, input, &counters);
    Ok((
        StepResult {
            claimed,
            control,
            counters,
            retry_pending,
            ids_complete,
            status,
        },
        moved,
    ))
}
