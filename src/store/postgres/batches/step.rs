//! One step of a run, in SQL: write outcomes, release what was not
//! started, claim the next WAITING entities, store new ids (claimed as
//! they arrive, in one claim row), and add the step's changes to the
//! worker's own counters, all in the step's transaction.
//!
//! A claim may leave a row locked that it did not take (PostgreSQL locks
//! the newer version of a row another step claimed meanwhile, then finds
//! it no longer WAITING): that step's outcome for it then waits for this
//! step's commit. So a step writes outcomes before it claims, and changes
//! the batch row, which the other steps hold too, before either: no two
//! steps wait for each other.
//!
//! Every set of rows goes in one statement (arrays bound once and
//! `unnest`ed), whatever its size: a step that writes outcomes and claims
//! costs nine round trips to the server (a dozen at most), however many
//! entities it writes; on a busy machine each costs as much as hundreds
//! of rows of the COPY. Claims take WAITING
//! rows `FOR UPDATE SKIP LOCKED`, so the nodes that process a batch take
//! disjoint entities without waiting for each other.

use super::super::copy::CopyIn;
use super::super::{PgStore, TxError};
use super::rows::{Fence, TxResult, counters_at, taken_over};
use crate::batch::Counters;
use crate::store::StoreError;
use crate::store::batches::*;
use crate::store::step::{Tally, count_per_claim, outcome_fields, retry_pending};
use postgres::Transaction;
use std::collections::HashMap;

/// Outcomes of entities claimed from their WAITING row: the row, if it is
/// still IN_PROCESS (a retry may have reset it); which ones were written.
const OUTCOMES_OF_ROWS: &str = "UPDATE batch_entities AS e SET status = o.status,
         start_time_ms = o.start_ms, end_time_ms = o.end_ms, process_time_ms = o.process_ms,
         result = o.result, error = o.error, retry_at_ms = o.retry_at_ms, worker = NULL
     FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                 $7::text[], $8::text[], $9::bigint[])
          AS o (seq, status, start_ms, end_ms, process_ms, result, error, retry_at_ms)
     WHERE e.batch = $1 AND e.seq = o.seq AND e.status = 'IN_PROCESS'
     RETURNING e.seq";

/// Claim rows of which `n` entities get their own row in this step (their
/// outcomes, or their release): fewer left open, or, with none left,
/// gone; locked until the step commits either way. Gives the rows that
/// were there: a claim row already gone means another process took its
/// claims back, finding this run dead, and its entities' outcomes are not
/// written. Taking the claim rows before the entity rows, as
/// [`super::rows::materialize_claims`] does, keeps the two from waiting
/// for each other. (Only the run that made a claim row changes its
/// `open`; another process only deletes it, holding the batch row `FOR
/// UPDATE`, which no step's fence lets through.)
const CLAIMS_DONE: &str = "WITH d AS (SELECT * FROM unnest($2::bigint[], $3::bigint[])
                    AS d (first_seq, n)),
     u AS (UPDATE batch_claims AS c SET open = c.open - d.n FROM d
           WHERE c.batch = $1 AND c.first_seq = d.first_seq AND c.open > d.n
           RETURNING c.first_seq),
     x AS (DELETE FROM batch_claims AS c USING d
           WHERE c.batch = $1 AND c.first_seq = d.first_seq AND c.open <= d.n
           RETURNING c.first_seq)
     SELECT first_seq FROM u UNION ALL SELECT first_seq FROM x";

/// Outcomes of entities claimed as they arrived: their rows, written
/// once, with `COPY` ([`CopyIn`]).
const OUTCOMES_OF_CLAIMS: &str = "COPY batch_entities (batch, node, attempts, seq,
         start_time_ms, end_time_ms, process_time_ms, result, entity_id, status, error,
         retry_at_ms)
     FROM STDIN (FORMAT binary)";

const RELEASE_ROWS: &str = "UPDATE batch_entities SET status = 'WAITING',
         attempts = attempts - 1, node = NULL, start_time_ms = NULL, worker = NULL
     WHERE batch = $1 AND seq = ANY($2::bigint[]) AND status = 'IN_PROCESS'";

const RELEASE_CLAIMS: &str = "INSERT INTO batch_entities (batch, seq, entity_id, status)
     SELECT $1, r.seq, r.entity_id, 'WAITING'
     FROM unnest($2::bigint[], $3::text[]) AS r (seq, entity_id)
     ON CONFLICT (batch, seq) DO NOTHING";

/// Stored WAITING entities, in order, that no other node is claiming
/// at this moment (`SKIP LOCKED`), whose retry time has come.
/// The rows are chosen once (`MATERIALIZED`): a join that ran the choice
/// again for each row would find the rows it just claimed skipped, and
/// claim more. They are updated through the primary key, as an array: a
/// prepared statement's generic plan does not know how few they are, and
/// would join them with a scan of every row of the table.
const CLAIM: &str = "WITH w AS MATERIALIZED (
         SELECT seq FROM batch_entities
         WHERE batch = $1 AND status <> 'COMPLETED' AND status = 'WAITING'
             AND (retry_at_ms IS NULL OR retry_at_ms <= $3)
         ORDER BY seq LIMIT $4
         FOR UPDATE SKIP LOCKED)
     UPDATE batch_entities AS e SET status = 'IN_PROCESS', node = $2,
         attempts = e.attempts + 1, start_time_ms = (SELECT batchsh_now_ms()),
         retry_at_ms = NULL, worker = $5
     WHERE e.batch = $1 AND e.seq = ANY (ARRAY (SELECT seq FROM w))
     RETURNING e.seq, e.entity_id, e.attempts";

/// New ids: the rows of those not claimed (WAITING, or FAILED for a bad
/// id), the claim row of those claimed as they arrive, and the chunks of
/// WAITING ones ([`StepInput::chunk`]).
const NEW_IDS: &str = "WITH claim AS (
         INSERT INTO batch_claims (batch, first_seq, node, start_time_ms, open, ids, worker)
         SELECT $1, $7::bigint, $8, batchsh_now_ms(), $9, $10, $11
         WHERE $7::bigint IS NOT NULL),
     chunks AS (
         INSERT INTO batch_chunks (batch, first_seq, open, ids)
         SELECT $1, c.first_seq, c.open, c.ids
         FROM unnest($12::bigint[], $13::bigint[], $14::text[]) AS c (first_seq, open, ids))
     INSERT INTO batch_entities (batch, seq, entity_id, status, error, end_time_ms)
     SELECT $1, n.seq, n.entity_id, n.status, n.error, n.end_ms
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])
          AS n (seq, entity_id, status, error, end_ms)";

/// The first chunk of WAITING ids that no other node is claiming at this
/// moment (`SKIP LOCKED`) becomes the node's claim row, whole: its ids.
const CLAIM_CHUNK: &str = "WITH c AS (
         DELETE FROM batch_chunks
         WHERE batch = $1 AND first_seq = (
             SELECT first_seq FROM batch_chunks WHERE batch = $1
             ORDER BY first_seq LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING first_seq, open, ids)
     INSERT INTO batch_claims (batch, first_seq, node, start_time_ms, open, ids, worker)
     SELECT $1, c.first_seq, $2, batchsh_now_ms(), c.open, c.ids, $3 FROM c
     RETURNING first_seq, open, ids";

/// The owner's heartbeat on the batch row (when due, see
/// [`super::rows::beat_every_ms`]), and the end of the ids.
const BATCH_ROW: &str = "UPDATE batches SET
         heartbeat_at = CASE WHEN $3 THEN batchsh_now() ELSE heartbeat_at END,
         ids_complete = CASE WHEN $2 THEN 1 ELSE ids_complete END
     WHERE batch_no = $1";

/// The step's end: its changes to the worker's own counters and to its
/// node's row, its node's heartbeat (which says whether another node
/// declared it dead meanwhile), and what the step gives back, with the
/// transaction's id ([`PgStore::note_xid`]). The counters read are those
/// before this statement's changes.
const END: &str = "WITH counts AS (
         INSERT INTO batch_counts AS c (batch, worker, total, waiting, in_process, completed,
             failed, added, updated, unchanged)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE $11
         ON CONFLICT (batch, worker) DO UPDATE SET
             total = c.total + excluded.total, waiting = c.waiting + excluded.waiting,
             in_process = c.in_process + excluded.in_process,
             completed = c.completed + excluded.completed, failed = c.failed + excluded.failed,
             added = c.added + excluded.added, updated = c.updated + excluded.updated,
             unchanged = c.unchanged + excluded.unchanged),
     per_node AS (
         UPDATE batch_nodes SET completed = completed + $6, failed = failed + $13,
             added = added + $8, updated = updated + $9, unchanged = unchanged + $10
         WHERE $12 AND bid = $14 AND node = $15),
     beat AS (
         UPDATE nodes SET heartbeat_at = batchsh_now() WHERE worker_id = $16 RETURNING status)
     SELECT b.requested, b.max_workers, b.ids_complete, (SELECT status FROM beat),
         b.owner_node, b.owner_pid, t.total::bigint, t.waiting::bigint, t.in_process::bigint,
         t.completed::bigint, t.failed::bigint, t.cancelled::bigint, t.added::bigint,
         t.updated::bigint, t.unchanged::bigint, txid_current()
     FROM batches AS b, batch_totals AS t
     WHERE b.batch_no = $1 AND t.batch = $1";

/// One column of outcomes or ids, bound as an array.
type Col<T> = Vec<T>;

/// Which part of a step a transaction writes: all of it, or one of the
/// two parts of a step whose outcomes are written on two connections at
/// once ([`super::beside`]).
pub(super) enum Part<'a> {
    /// Everything the step was given.
    Whole,
    /// All but the outcomes written beside: it copies its outcomes' rows
    /// first, and counts down their claim rows (which the part beside may
    /// share) only once `wait` says the part beside committed.
    Main(&'a mut dyn FnMut() -> TxResult<()>),
    /// The part beside: outcomes only, added to the counters row of this
    /// key, so that the two parts never wait for each other's row.
    Beside(&'a str),
}

/// A step's writes; `f` is what the fence read. With the result, the ids
/// claimed as they arrived: (index in the result's claimed entities,
/// index in `input.new_ids`), whose text the caller moves over once the
/// step is committed (their `entity_id` is empty until then).
pub(super) fn step_in(
    s: &PgStore,
    tx: &mut Transaction<'_>,
    f: &Fence,
    run: RunRef,
    next_seq: &mut i64,
    input: &StepInput,
    part: &mut Part<'_>,
) -> TxResult<(StepResult, Vec<(usize, usize)>)> {
    let (no, node) = (f.no, run.node);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut tally = Tally::default();
    // First, while the step holds no entity row: another update of the
    // batch row (a request, a takeover's) is waited for, and the process
    // that made it may wait for a row this step would have locked by then.
    let beat = f.beat_due && !input.helper;
    let ids_end = input.ids_complete && !f.ids_complete;
    if beat || ids_end {
        let st = s.cached(tx, BATCH_ROW)?;
        tx.execute(&st, &[&no, &ids_end, &beat])?;
    }
    if !input.outcomes.is_empty() {
        let gone = || taken_over(run.bid, None, None, f.status.as_str().to_string());
        write_outcomes(s, tx, no, node, &input.outcomes, &mut tally, part, gone)?;
    }
    if !input.release.is_empty() {
        let (rows, claimed): (Vec<&Claimed>, Vec<&Claimed>) =
            input.release.iter().partition(|c| c.claim.is_none());
        let mut n = 0;
        if !rows.is_empty() {
            let seqs: Col<i64> = rows.iter().map(|c| c.seq).collect();
            let st = s.cached(tx, RELEASE_ROWS)?;
            n += tx.execute(&st, &[&no, &seqs])?;
        }
        if !claimed.is_empty() {
            let seqs: Col<i64> = claimed.iter().map(|c| c.seq).collect();
            let ids: Col<&str> = claimed.iter().map(|c| c.entity_id.as_str()).collect();
            for c in &claimed {
                tally.claim_done(c.claim.unwrap_or_default());
            }
            let st = s.cached(tx, RELEASE_CLAIMS)?;
            n += tx.execute(&st, &[&no, &seqs, &ids])?;
        }
        tally.released(n as i64);
    }
    if !tally.claims_done.is_empty() {
        let (firsts, ns): (Col<i64>, Col<i64>) = tally.claims_done.iter().copied().unzip();
        let st = s.cached(tx, CLAIMS_DONE)?;
        tx.query(&st, &[&no, &firsts, &ns])?;
    }
    let mut claimed = Vec::new();
    // A batch that reached its final status hands out nothing more (a node
    // that helps its owner learns of the end at this step, and leaves).
    // The fence holds the batch row: its status stays as it read it.
    if input.claim > 0 && !f.status.is_final() {
        let limit = input.claim as i64;
        let st = s.cached(tx, CLAIM)?;
        for r in tx.query(&st, &[&no, &node, &now_ms, &limit, &run.worker])? {
            claimed.push(Claimed {
                seq: r.get(0),
                entity_id: r.get(1),
                attempts: r.get(2),
                claim: None,
            });
        }
        claimed.sort_by_key(|c| c.seq);
        tally.claimed(claimed.len() as i64);
        while claimed.len() < input.claim {
            let st = s.cached(tx, CLAIM_CHUNK)?;
            let Some(r) = tx.query_opt(&st, &[&no, &node, &run.worker])? else {
                break;
            };
            let first: i64 = r.get(0);
            let ids: Vec<Option<String>> =
                serde_json::from_str(r.get(2)).map_err(|e| StoreError::Postgres {
                    store: s.shown.display().to_string(),
                    message: format!("the ids of chunk {first} of batch {no} are not JSON: {e}"),
                })?;
            for (seq, id) in (first..).zip(ids) {
                if let Some(entity_id) = id {
                    claimed.push(Claimed {
                        seq,
                        entity_id,
                        attempts: 1,
                        claim: Some(first),
                    });
                }
            }
            tally.claimed(r.get(1));
        }
    }
    let mut moved = Vec::new();
    if !input.new_ids.is_empty() {
        let (mut seqs, mut texts, mut statuses, mut errors, mut ends) =
            (Col::new(), Col::new(), Col::new(), Col::new(), Col::new());
        // The ids claimed as they arrive: one claim row; those stored
        // ahead: chunks.
        let arrived = tally.place_new_ids(input, next_seq, now_ms, &mut claimed, true, |r| {
            seqs.push(r.seq);
            texts.push(r.entity_id);
            statuses.push(r.status.as_str());
            errors.push(r.error);
            ends.push(r.end_ms);
            Ok::<_, TxError>(())
        })?;
        let claim = arrived.claim.as_ref();
        let (firsts, opens, jsons): (Col<i64>, Col<i64>, Col<&str>) = (
            arrived.chunks.iter().map(|c| c.first).collect(),
            arrived.chunks.iter().map(|c| c.open).collect(),
            arrived.chunks.iter().map(|c| c.ids_json.as_str()).collect(),
        );
        let st = s.cached(tx, NEW_IDS)?;
        tx.execute(
            &st,
            &[
                &no,
                &seqs,
                &texts,
                &statuses,
                &errors,
                &ends,
                &claim.map(|c| c.first),
                &node,
                &claim.map_or(0, |c| c.open),
                &claim.map_or("", |c| c.ids_json.as_str()),
                &run.worker,
                &firsts,
                &opens,
                &jsons,
            ],
        )?;
        moved = arrived.moved;
    }
    let d = &tally.d;
    let changed = *d != Counters::default();
    let per_node = tally.touches_node(input);
    let worker = match part {
        Part::Beside(key) => key,
        _ => counts_key(&run),
    };
    let st = s.cached(tx, END)?;
    let r = tx.query_one(
        &st,
        &[
            &no,
            &worker,
            &d.total,
            &d.waiting,
            &d.in_process,
            &d.completed,
            &d.failed,
            &d.added,
            &d.updated,
            &d.unchanged,
            &changed,
            &per_node,
            &tally.node_failed(),
            &run.bid,
            &node,
            &run.worker,
        ],
    )?;
    // The commit need not ask for the transaction's id.
    s.note_xid(r.get(15));
    // Declared dead by another node while this step ran (the fence read
    // its row before that committed): nothing of the step is written.
    if r.get::<_, Option<&str>>(3) == Some("DEAD") {
        return Err(TxError::Store(taken_over(
            run.bid,
            None,
            None,
            f.status.as_str().to_string(),
        )));
    }
    let before = counters_at(&r, 6);
    let counters = Counters {
        total: before.total + d.total,
        waiting: before.waiting + d.waiting,
        in_process: before.in_process + d.in_process,
        completed: before.completed + d.completed,
        failed: before.failed + d.failed,
        cancelled: before.cancelled,
        added: before.added + d.added,
        updated: before.updated + d.updated,
        unchanged: before.unchanged + d.unchanged,
    };
    let requested = match r.get::<_, Option<&str>>(0) {
        Some(t) => Some(super::rows::parsed(s, t)?),
        None => None,
    };
    let retry_pending = retry_pending(&claimed, input, &counters);
    Ok((
        StepResult {
            claimed,
            control: Control {
                requested,
                max_workers: r.get(1),
            },
            counters,
            retry_pending,
            ids_complete: r.get::<_, i64>(2) != 0,
            status: f.status,
        },
        moved,
    ))
}

/// The run's own row of `batch_counts`: its worker's id, or its node's
/// for a run outside a worker.
pub(super) fn counts_key<'a>(run: &RunRef<'a>) -> &'a str {
    if run.worker.is_empty() {
        run.node
    } else {
        run.worker
    }
}

fn fields(o: &Outcome) -> (&'static str, Option<&str>, Option<i64>) {
    let (status, error, retry) = outcome_fields(&o.state);
    (status.as_str(), error, retry)
}

/// The main part of a step written in two ([`Part::Main`]) holds its
/// claim rows before it copies their entities' rows, without changing
/// them (the part beside may be counting one of them down): gives those
/// that are there. A row gone was taken back with its entities, whose
/// rows the copy would then meet.
const CLAIMS_HELD: &str = "SELECT first_seq FROM batch_claims
     WHERE batch = $1 AND first_seq = ANY($2::bigint[])
     FOR KEY SHARE";

/// Writes the outcomes, in three statements at most (the rows of those
/// claimed from WAITING; the claim rows of those claimed as they arrived,
/// and their rows), and counts in `tally` those written. The outcomes of
/// a claim row that is gone are not written; in the main part of a step
/// written in two ([`Part::Main`]), the step fails then with `gone`, the
/// error of a run taken over.
#[allow(clippy::too_many_arguments)]
fn write_outcomes(
    s: &PgStore,
    tx: &mut Transaction<'_>,
    no: i64,
    node: &str,
    outcomes: &[Outcome],
    tally: &mut Tally,
    part: &mut Part<'_>,
    gone: impl Fn() -> StoreError,
) -> TxResult<()> {
    let (rows, mut claimed): (Vec<&Outcome>, Vec<&Outcome>) =
        outcomes.iter().partition(|o| o.claim.is_none());
    if !rows.is_empty() {
        let seqs: Col<i64> = rows.iter().map(|o| o.seq).collect();
        let starts: Col<i64> = rows.iter().map(|o| o.start_ms).collect();
        let ends: Col<i64> = rows.iter().map(|o| o.end_ms).collect();
        let took: Col<i64> = rows.iter().map(|o| o.process_ms).collect();
        let results: Col<Option<&str>> = rows.iter().map(|o| o.result.as_deref()).collect();
        let (mut statuses, mut errors, mut retries) = (Col::new(), Col::new(), Col::new());
        for o in &rows {
            let (status, error, retry) = fields(o);
            statuses.push(status);
            errors.push(error);
            retries.push(retry);
        }
        let st = s.cached(tx, OUTCOMES_OF_ROWS)?;
        let by_seq: HashMap<i64, &Outcome> = rows.iter().map(|o| (o.seq, *o)).collect();
        for r in tx.query(
            &st,
            &[
                &no, &seqs, &statuses, &starts, &ends, &took, &results, &errors, &retries,
            ],
        )? {
            if let Some(o) = by_seq.get(&r.get::<_, i64>(0)) {
                tally.outcome(&o.state);
            }
        }
    }
    if claimed.is_empty() {
        return Ok(());
    }
    // In order: the rows go to the end of the primary key's index, and
    // the entities of a claim row are next to each other.
    claimed.sort_unstable_by_key(|o| o.seq);
    let mut per_claim: Vec<(i64, i64)> = Vec::new();
    for o in &claimed {
        count_per_claim(&mut per_claim, o.claim.unwrap_or_default());
    }
    let (firsts, ns): (Col<i64>, Col<i64>) = per_claim.into_iter().unzip();
    let claims_done = |tx: &mut Transaction<'_>| -> TxResult<Vec<i64>> {
        let st = s.cached(tx, CLAIMS_DONE)?;
        let mut held: Vec<i64> = tx
            .query(&st, &[&no, &firsts, &ns])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        held.sort_unstable();
        Ok(held)
    };
    if let Part::Main(wait) = part {
        // The rows first, while the part beside copies its own.
        let st = s.cached(tx, CLAIMS_HELD)?;
        if tx.query(&st, &[&no, &firsts])?.len() < firsts.len() {
            return Err(TxError::Store(gone()));
        }
        copy_outcomes(s, tx, no, node, &claimed)?;
        wait()?;
        if claims_done(tx)?.len() < firsts.len() {
            return Err(TxError::Store(gone()));
        }
    } else {
        let held = claims_done(tx)?;
        if held.len() < firsts.len() {
            claimed.retain(|o| o.claim.is_some_and(|c| held.binary_search(&c).is_ok()));
        }
        if claimed.is_empty() {
            return Ok(());
        }
        copy_outcomes(s, tx, no, node, &claimed)?;
    }
    for o in claimed {
        tally.outcome(&o.state);
    }
    Ok(())
}

/// The rows of the outcomes of entities claimed as they arrived, written
/// once, with `COPY`.
fn copy_outcomes(
    s: &PgStore,
    tx: &mut Transaction<'_>,
    no: i64,
    node: &str,
    claimed: &[&Outcome],
) -> TxResult<()> {
    let st = s.cached(tx, OUTCOMES_OF_CLAIMS)?;
    let mut copy = CopyIn::start(s, tx, &st)?;
    for o in claimed {
        let (status, error, retry) = fields(o);
        copy.row(&[
            no.into(),
            node.into(),
            1.into(),
            o.seq.into(),
            o.start_ms.into(),
            o.end_ms.into(),
            o.process_ms.into(),
            o.result.as_deref().into(),
            o.entity_id.as_str().into(),
            status.into(),
            error.into(),
            retry.into(),
        ])?;
    }
    copy.finish()?;
    Ok(())
}
