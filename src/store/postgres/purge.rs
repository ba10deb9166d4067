//! `BATCH_PURGE`'s half of the batch store on PostgreSQL
//! ([`crate::store::BatchStore::purgeable`] and its three siblings): a
//! finished batch goes with everything kept for it but its entity rows in
//! one short transaction, which holds its row locked while it checks that
//! the batch is still as seen; its entity rows and appended ids follow a
//! chunk at a time, each one a range of a primary key.

use crate::batch::BatchStatus;
use crate::store::Result;
use crate::store::batches::Purgeable;
use crate::store::postgres::reads::Cols;
use crate::store::postgres::{PgStore, TxError};

/// See [`crate::store::BatchStore::purgeable`].
pub(super) fn purgeable(
    s: &PgStore,
    cutoff: &str,
    statuses: &[BatchStatus],
) -> Result<Vec<Purgeable>> {
    let wanted: Vec<String> = statuses
        .iter()
        .filter(|st| st.is_final())
        .map(|st| st.as_str().to_string())
        .collect();
    // The final statuses in so many words: an unfinished batch is never
    // deleted, whatever the caller asked. Nor is the batch of a named
    // series' last successful run (what its next window counts from).
    // Job runs are not batches: their keys stay whatever is purged.
    s.read(
        "SELECT b.bid, b.batch_no, b.command, b.status, b.end_time, b.execution_id, t.total
         FROM batches AS b
         CROSS JOIN LATERAL (SELECT total FROM batch_totals AS t WHERE t.batch = b.batch_no) AS t
         WHERE b.status IN ('DONE', 'FAILED', 'CANCELLED')
             AND b.status = ANY($2)
             AND b.end_time IS NOT NULL AND b.end_time < $1
             AND b.bid NOT IN (
                 SELECT r.bid FROM series_runs AS r
                 WHERE r.bid IS NOT NULL AND r.status = 'DONE' AND r.failed = 0
                     AND r.run_no = (SELECT max(l.run_no) FROM series_runs AS l
                                     WHERE l.series = r.series AND l.status = 'DONE'
                                         AND l.failed = 0))
         ORDER BY b.end_time, b.batch_no",
        &[&cutoff, &wanted],
    )?
    .iter()
    .map(|r| {
        let c = Cols(s, r);
        Ok(Purgeable {
            bid: c.get(0)?,
            batch_no: c.get(1)?,
            command: c.get(2)?,
            status: c.status(3)?,
            end_time: c.get(4)?,
            execution_id: c.get(5)?,
            entities: c.get(6)?,
        })
    })
    .collect()
}

/// See [`crate::store::BatchStore::purge_batch`].
pub(super) fn purge_batch(s: &PgStore, seen: &Purgeable) -> Result<bool> {
    let (bid, no) = (seen.bid.as_str(), seen.batch_no);
    s.tx(|tx| {
        // Still finished, and as seen: a retry started since has a new
        // execution id (and will have a new end). The row stays locked
        // until the batch is gone, so no retry starts it meanwhile; one
        // that changed it first is seen here, as it committed.
        let same = tx
            .query_opt(
                "SELECT 1 FROM batches
                 WHERE bid = $1 AND batch_no = $2 AND status = $3 AND end_time = $4
                     AND execution_id = $5 AND status IN ('DONE', 'FAILED', 'CANCELLED')
                 FOR UPDATE",
                &[
                    &bid,
                    &no,
                    &seen.status.as_str(),
                    &seen.end_time,
                    &seen.execution_id,
                ],
            )?
            .is_some();
        if !same {
            return Ok(false);
        }
        tx.execute("DELETE FROM batch_claims WHERE batch = $1", &[&no])?;
        tx.execute("DELETE FROM batch_counts WHERE batch = $1", &[&no])?;
        tx.execute("DELETE FROM batch_workers WHERE batch = $1", &[&bid])?;
        tx.execute(
            "DELETE FROM jobs WHERE type = 'BATCH_JOB' AND uid = $1",
            &[&bid],
        )?;
        // These go with the batch row (ON DELETE CASCADE) too; said here,
        // the purge does not depend on the schema's cascades.
        for sql in [
            "DELETE FROM batch_events WHERE bid = $1",
            "DELETE FROM batch_nodes WHERE bid = $1",
            "DELETE FROM batch_progress WHERE bid = $1",
            "DELETE FROM batch_lines WHERE bid = $1",
            "DELETE FROM batches WHERE bid = $1",
        ] {
            tx.execute(sql, &[&bid])?;
        }
        Ok::<_, TxError>(true)
    })
}

/// See [`crate::store::BatchStore::purge_rows`].
pub(super) fn purge_rows(s: &PgStore, batch_no: i64, max_rows: usize) -> Result<usize> {
    let max = i64::try_from(max_rows).unwrap_or(i64::MAX);
    s.tx(|tx| {
        let owned: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM batches WHERE batch_no = $1)",
                &[&batch_no],
            )?
            .try_get(0)?;
        if owned || max <= 0 {
            return Ok(0);
        }
        // A worker's late counter row, should one have come after the
        // batch went: nothing reads it, and it is not counted.
        tx.execute("DELETE FROM batch_counts WHERE batch = $1", &[&batch_no])?;
        // The first sequence number to keep, found by walking `max` steps
        // along the primary key; the rows before it go in one range delete.
        let keep_from: Option<i64> = tx
            .query_opt(
                "SELECT seq FROM batch_entities WHERE batch = $1
                 ORDER BY seq LIMIT 1 OFFSET $2",
                &[&batch_no, &max],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        let mut deleted = match keep_from {
            Some(seq) => tx.execute(
                "DELETE FROM batch_entities WHERE batch = $1 AND seq < $2",
                &[&batch_no, &seq],
            )?,
            None => tx.execute("DELETE FROM batch_entities WHERE batch = $1", &[&batch_no])?,
        };
        let left = max - deleted as i64;
        if left > 0 {
            deleted += tx.execute(
                "DELETE FROM batch_appends WHERE place IN (
                     SELECT place FROM batch_appends WHERE batch = $1
                     ORDER BY place LIMIT $2)",
                &[&batch_no, &left],
            )?;
        }
        Ok::<_, TxError>(deleted as usize)
    })
}

/// See [`crate::store::BatchStore::orphan_batch_nos`].
pub(super) fn orphan_batch_nos(s: &PgStore) -> Result<Vec<i64>> {
    // Each table's distinct batch numbers, one index seek apiece (a scan
    // would read every entity row).
    s.read(
        "WITH RECURSIVE
             e(n) AS (SELECT min(batch) FROM batch_entities
                      UNION ALL
                      SELECT (SELECT min(batch) FROM batch_entities WHERE batch > e.n)
                      FROM e WHERE e.n IS NOT NULL),
             a(n) AS (SELECT min(batch) FROM batch_appends
                      UNION ALL
                      SELECT (SELECT min(batch) FROM batch_appends WHERE batch > a.n)
                      FROM a WHERE a.n IS NOT NULL)
         SELECT n FROM (SELECT n FROM e UNION SELECT n FROM a) AS found
         WHERE n IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM batches WHERE batch_no = found.n)
         ORDER BY n",
        &[],
    )?
    .iter()
    .map(|r| Cols(s, r).get(0))
    .collect()
}
