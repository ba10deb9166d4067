//! `BATCH_PURGE`'s half of the batch store on PostgreSQL
//! ([`crate::store::BatchStore::purgeable`] and its three siblings): a
//! finished batch goes with everything kept for it but its entity rows in
//! one short transaction, which holds its row locked while it checks that
//! the batch is still as seen; its entity rows and appended ids follow a
//! chunk at a time, each one a range of a primary key.

use crate::batch::BatchStatus;
use crate::store::batches::{Purgeable, purged_statuses};
use crate::store::postgres::reads::{Cols, rows};
use crate::store::postgres::{PgStore, TxError};
use crate::store::row::Row;
use crate::store::{Result, StoreError};

/// See [`crate::store::BatchStore::purgeable`].
pub(super) fn purgeable(
    s: &PgStore,
    cutoff: &str,
    statuses: &[BatchStatus],
) -> Result<Vec<Purgeable>> {
    let wanted = purged_statuses(statuses);
    // The final statuses in so many words: an unfinished batch is never
    // deleted, whatever the caller asked. Nor is the batch of a named
    // series' last successful run (what its next window counts from).
    // Job runs are not batches: their keys stay whatever is purged.
    rows(
        s,
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
    .map(|r| Purgeable::read(&Cols(s, r), |c| c.status(3)))
    .collect()
}

/// A row of the store's answer read with its store's errors, as the
/// mappings shared with SQLite read it ([`Purgeable::read`]).
impl Row for Cols<'_> {
    type Error = StoreError;

    fn int(&self, at: usize) -> Result<i64> {
        self.get(at)
    }

    fn int_or_null(&self, at: usize) -> Result<Option<i64>> {
        self.get(at)
    }

    fn text(&self, at: usize) -> Result<String> {
        self.get(at)
    }

    fn text_or_null(&self, at: usize) -> Result<Option<String>> {
        self.get(at)
    }
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
        tx.execute("DELETE FROM batch_chunks WHERE batch = $1", &[&no])?;
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
    rows(
        s,
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

#[cfg(test)]
mod tests {
    //! BATCH_PURGE's store half, its rows set up with plain SQL.

    use super::*;
    use crate::store::postgres::testing::fresh;
    use crate::store::{ListQuery, ReadStore, StatusFilter};

    const LATER: &str = "9999-12-31T23:59:59.999Z";

    fn sql(s: &PgStore, sql: &str) {
        s.client().batch_execute(sql).unwrap();
    }

    fn count(s: &PgStore, sql: &str) -> i64 {
        s.client().query_one(sql, &[]).unwrap().get(0)
    }

    /// A batch with `status` and `rows` entity rows (its counters split
    /// between its row and a worker's); its number.
    fn batch(s: &PgStore, bid: &str, status: &str, rows: i64) -> i64 {
        let end = BatchStatus::ALL
            .iter()
            .find(|st| st.as_str() == status && st.is_final())
            .map(|_| "2026-03-10T11:00:00.000Z");
        let no: i64 = s
            .client()
            .query_one(
                "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments,
                     status, execution_id, created_by, creation_time, end_time, total)
                 VALUES ($1, 'BATCH ' || $1, 'L', 'x', '{}', '{}', $2, 'e1', 'me',
                     '2026-03-10T10:00:00.000Z', $3, 2)
                 RETURNING batch_no",
                &[&bid, &status, &end],
            )
            .unwrap()
            .get(0);
        s.client()
            .execute(
                "INSERT INTO batch_counts (batch, worker, total) VALUES ($1, 'w1', $2::bigint - 2)",
                &[&no, &rows],
            )
            .unwrap();
        s.client()
            .execute(
                "INSERT INTO batch_entities (batch, seq, entity_id, status)
                 SELECT $1, g, g::text, 'COMPLETED' FROM generate_series(1, $2::bigint) AS g",
                &[&no, &rows],
            )
            .unwrap();
        no
    }

    fn bids(found: Vec<Purgeable>) -> Vec<String> {
        found.into_iter().map(|p| p.bid).collect()
    }

    /// Only finished batches of the asked statuses that ended before the
    /// cutoff are found; a batch goes with everything but its rows at
    /// once, only as it was seen; its entity rows and appended ids then
    /// go in chunks, and a new batch never takes their number.
    #[test]
    fn a_finished_batch_is_purged_and_its_rows_follow_a_chunk_at_a_time() {
        let Some(s) = fresh("a_finished_batch_is_purged_and_its_rows_follow_a_chunk_at_a_time")
        else {
            return;
        };
        // b1: DONE, 5 entity rows, 2 appended ids and everything kept for
        // a batch; b2: running; b3: FAILED, asynchronous (its job).
        let n1 = batch(&s, "b1", "DONE", 5);
        sql(
            &s,
            &format!(
                "INSERT INTO batch_appends (batch, entity_id, appended_at, node)
                     VALUES ({n1}, 'x', 't', 'n1'), ({n1}, 'y', 't', 'n1');
                 INSERT INTO batch_claims (batch, first_seq, node, start_time_ms, open, ids)
                     VALUES ({n1}, 6, 'n1', 0, 0, '[]');
                 INSERT INTO batch_workers (batch, worker, joined_at) VALUES ('b1', 'w1', 't');
                 INSERT INTO batch_events (bid, time, status) VALUES ('b1', 't', 'DONE');
                 INSERT INTO batch_nodes (bid, node, dc, start_time) VALUES ('b1', 'n1', 'd', 't');
                 INSERT INTO batch_progress (bid, node, time_ms, done) VALUES ('b1', 'n1', 1, 1);
                 INSERT INTO batch_lines (bid, part, lines) VALUES ('b1', 0, '\\x00');"
            ),
        );
        batch(&s, "b2", "IN_PROGRESS", 3);
        batch(&s, "b3", "FAILED", 0);
        sql(
            &s,
            "INSERT INTO jobs (type, name, uid, status, created_at)
                 VALUES ('BATCH_JOB', 'b3', 'b3', 'FAILED', 't')",
        );
        assert_eq!(
            bids(purgeable(&s, LATER, &[BatchStatus::Done]).unwrap()),
            ["b1"]
        );
        assert_eq!(
            bids(purgeable(&s, LATER, BatchStatus::ALL).unwrap()),
            ["b1", "b3"],
            "never an unfinished batch, whatever is asked"
        );
        assert!(
            purgeable(&s, "2000-01-01T00:00:00.000Z", BatchStatus::FINAL)
                .unwrap()
                .is_empty(),
            "none ended before the cutoff"
        );
        let b1 = purgeable(&s, LATER, &[BatchStatus::Done])
            .unwrap()
            .remove(0);
        assert_eq!(
            (b1.status, b1.entities, b1.batch_no),
            (BatchStatus::Done, 5, n1)
        );
        // Seen otherwise (a retry gave it a new execution since): kept.
        let stale = Purgeable {
            execution_id: "e0".into(),
            ..b1.clone()
        };
        assert!(!purge_batch(&s, &stale).unwrap());
        assert!(purge_batch(&s, &b1).unwrap());
        assert!(s.read_batch("b1").is_err(), "the batch row is gone");
        assert!(!purge_batch(&s, &b1).unwrap(), "gone already");
        for table in ["batch_claims WHERE batch", "batch_counts WHERE batch"] {
            assert_eq!(
                count(&s, &format!("SELECT count(*) FROM {table} = {n1}")),
                0
            );
        }
        for table in [
            "batch_workers WHERE batch",
            "batch_events WHERE bid",
            "batch_nodes WHERE bid",
            "batch_progress WHERE bid",
            "batch_lines WHERE bid",
        ] {
            assert_eq!(
                count(&s, &format!("SELECT count(*) FROM {table} = 'b1'")),
                0
            );
        }
        let listed = s
            .list_batches(&ListQuery {
                status: StatusFilter::All,
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(listed.len(), 2, "out of every listing at once");
        // Its rows are orphans now, and no new batch takes their number.
        assert_eq!(orphan_batch_nos(&s).unwrap(), [n1]);
        let n4 = batch(&s, "b4", "DONE", 0);
        assert!(n4 > n1);
        // A chunk at a time: entity rows, then appended ids.
        let chunks: Vec<usize> =
            std::iter::from_fn(|| Some(purge_rows(&s, n1, 3).unwrap()).filter(|&n| n > 0))
                .collect();
        assert_eq!(chunks, [3, 3, 1]);
        assert!(orphan_batch_nos(&s).unwrap().is_empty());
        // An asynchronous batch's job goes with it.
        let b3 = purgeable(&s, LATER, &[BatchStatus::Failed])
            .unwrap()
            .remove(0);
        assert!(purge_batch(&s, &b3).unwrap());
        assert_eq!(count(&s, "SELECT count(*) FROM jobs"), 0);
        // A live batch's rows are never taken for orphans: of every number
        // up to the newest, purge_rows deletes nothing.
        for no in 1..=n4 {
            assert_eq!(purge_rows(&s, no, 100).unwrap(), 0, "batch number {no}");
        }
        assert_eq!(s.read_batch("b2").unwrap().counts.total, 3);
        let rows = s
            .entity_rows("b2", &crate::store::DetailsQuery::default())
            .unwrap();
        assert_eq!(rows.len(), 3, "the running batch keeps its rows");
    }

    #[test]
    fn the_last_good_run_of_a_series_is_kept() {
        let Some(s) = fresh("the_last_good_run_of_a_series_is_kept") else {
            return;
        };
        for bid in ["r1", "r2", "r3"] {
            batch(&s, bid, "DONE", 0);
        }
        // r2 is the last successful run; r3 ran later but failed some.
        sql(
            &s,
            "INSERT INTO series (name, created_at, updated_at) VALUES ('etl', 't', 't');
             INSERT INTO series_runs (series, run_no, batch_id, start_time, status, failed,
                 from_date, bid)
             VALUES ('etl', 1, 1, 't', 'DONE', 0, 'f', 'r1'),
                    ('etl', 2, 2, 't', 'DONE', 0, 'f', 'r2'),
                    ('etl', 3, 3, 't', 'DONE', 2, 'f', 'r3')",
        );
        assert_eq!(
            bids(purgeable(&s, LATER, BatchStatus::FINAL).unwrap()),
            ["r1", "r3"]
        );
    }

    /// A retry that changes the batch while the purge waits for its row
    /// keeps it: the purge sees the retry's row, not the one it found.
    #[test]
    fn a_batch_retried_while_the_purge_waits_for_it_is_kept() {
        let Some(s) = fresh("a_batch_retried_while_the_purge_waits_for_it_is_kept") else {
            return;
        };
        batch(&s, "b1", "DONE", 2);
        let seen = purgeable(&s, LATER, BatchStatus::FINAL).unwrap().remove(0);
        let mut retry = postgres::Client::connect(&s.url, postgres::NoTls).unwrap();
        let mut tx = retry.transaction().unwrap();
        tx.execute(
            "UPDATE batches SET status = 'NEW', execution_id = 'e2', end_time = NULL
             WHERE bid = 'b1'",
            &[],
        )
        .unwrap();
        let url = s.url.clone();
        let purge = std::thread::spawn(move || {
            let other = PgStore::open(&url, crate::store::Upgrades::Silent).unwrap();
            purge_batch(&other, &seen).unwrap()
        });
        // The purge waits on the row lock until the retry commits.
        while count(
            &s,
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'",
        ) == 0
        {
            std::thread::yield_now();
        }
        tx.commit().unwrap();
        assert!(!purge.join().unwrap(), "the retried batch is kept");
        assert_eq!(count(&s, "SELECT count(*) FROM batch_entities"), 2);
        assert_eq!(s.read_batch("b1").unwrap().execution_id, "e2");
    }
}
