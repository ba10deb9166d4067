//! Open batches on PostgreSQL (see [`crate::store::appends`]): the `open`
//! column of `batches` and the `batch_appends` table.
//!
//! SQLite's single writer orders appends for free; here the appends to a
//! batch and its closing take a lock of that batch's own, so that they
//! commit one after the other: an id's place is then never below one
//! already read (the feeding run reads on past the last place it saw), and
//! no append is recorded after the batch was closed. The feeding run reads
//! the open flag and the appends in one snapshot.

use super::queue::event;
use super::{PgStore, TxError};
use crate::store::appends::*;
use crate::store::{Result, StoreError};
use postgres::Transaction;

/// The first key of the advisory locks that appends and closing take,
/// one per batch (the second key is a hash of its bid): "APND".
const APPEND_LOCK: i32 = 0x4150_4e44;

impl PgStore {
    /// Runs `f` in one transaction, under the batch's append lock, if
    /// batch `bid` is open and not final; else writes nothing and says why
    /// (`verb`: what was asked, for the message).
    fn while_open<T>(
        &self,
        bid: &str,
        verb: &'static str,
        mut f: impl FnMut(&mut Transaction, &Standing) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        self.tx(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&APPEND_LOCK, &bid],
            )?;
            let row = tx
                .query_opt(
                    "SELECT batch_no, status, execution_id, open FROM batches WHERE bid = $1",
                    &[&bid],
                )?
                .ok_or_else(|| TxError::Store(StoreError::no_batch(bid)))?;
            let b = Standing {
                no: row.get(0),
                status: row
                    .get::<_, &str>(1)
                    .parse()
                    .map_err(|e| TxError::Store(self.unreadable(e)))?,
                execution_id: row.get(2),
                openness: Openness::from_column(row.get(3)),
            };
            if let Some(refusal) = b.refusal(bid, verb) {
                return Err(TxError::Store(refusal));
            }
            Ok(f(tx, &b)?)
        })
    }
}

impl AppendStore for PgStore {
    fn append_ids(&self, bid: &str, ids: &[String], node: &str) -> Result<usize> {
        let now = crate::store::now();
        self.while_open(bid, "append to", |tx, b| {
            // One statement for the lot, numbered in the order given.
            tx.execute(
                "INSERT INTO batch_appends (batch, entity_id, appended_at, node)
                 SELECT $1, id, $3, $4 FROM unnest($2::text[]) WITH ORDINALITY AS u (id, k)
                 ORDER BY k",
                &[&b.no, &ids, &now, &node],
            )?;
            let note = append_note(ids.len());
            event(tx, bid, &b.execution_id, node, b.status, Some(&note))?;
            Ok(ids.len())
        })
    }

    fn close_batch(&self, bid: &str, node: &str) -> Result<()> {
        self.while_open(bid, "close", |tx, b| {
            tx.execute("UPDATE batches SET open = 0 WHERE batch_no = $1", &[&b.no])?;
            event(tx, bid, &b.execution_id, node, b.status, Some(CLOSE_NOTE))
        })
    }

    fn appended_since(&self, bid: &str, after: i64, limit: usize) -> Result<Appended> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.tx(|tx| {
            // One snapshot: a batch read closed has no append after these.
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            let (no, open): (i64, Option<i64>) = tx
                .query_opt("SELECT batch_no, open FROM batches WHERE bid = $1", &[&bid])?
                .map(|r| (r.get(0), r.get(1)))
                .ok_or_else(|| TxError::Store(StoreError::no_batch(bid)))?;
            let st = self.cached(
                tx,
                "SELECT place, entity_id FROM batch_appends
                 WHERE batch = $1 AND place > $2 ORDER BY place LIMIT $3",
            )?;
            let ids = tx
                .query(&st, &[&no, &after, &limit])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok(Appended {
                ids,
                open: Openness::from_column(open) == Openness::Open,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::nodes::race;
    use super::super::testing::fresh;
    use super::*;

    /// A batch of status `status`, open (`Some(1)`), closed or not open.
    fn batch(s: &PgStore, bid: &str, status: &str, open: Option<i64>) {
        s.client()
            .execute(
                "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments,
                     status, execution_id, created_by, creation_time, open)
                 VALUES ($1, 'BATCH x', 'L', 'echo ?', '{}', '{}', $2, 'e1', 'n1',
                     '2026-01-01T00:00:00.000Z', $3)",
                &[&bid, &status, &open],
            )
            .unwrap();
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn refusal(e: StoreError) -> NotOpen {
        match e {
            StoreError::NotOpen { why, .. } => why,
            other => panic!("not a refusal: {other}"),
        }
    }

    /// Processes append while another closes the batch: an append either
    /// is refused, recording nothing, or is wholly read before the batch
    /// reads closed, in one run of places.
    #[test]
    fn appends_racing_a_close_are_all_read_or_refused() {
        let Some(s) = fresh("appends_racing_a_close_are_all_read_or_refused") else {
            return;
        };
        batch(&s, "b1", "IN_PROGRESS", Some(1));
        let outcomes = race(&s.url, 4, |store, k| {
            if k == 0 {
                std::thread::sleep(std::time::Duration::from_millis(20));
                store.close_batch("b1", "n0").map(|()| 0)
            } else {
                let mut recorded = 0;
                for round in 0..50 {
                    let batch = ids(&[&format!("{k}-{round}-a"), &format!("{k}-{round}-b")]);
                    match store.append_ids("b1", &batch, "n1") {
                        Ok(n) => recorded += n,
                        Err(e) => {
                            assert_eq!(refusal(e), NotOpen::Closed);
                            break;
                        }
                    }
                }
                Ok(recorded)
            }
        });
        let recorded: usize = outcomes.into_iter().map(Result::unwrap).sum();
        let read = s.appended_since("b1", 0, 10_000).unwrap();
        assert!(!read.open);
        assert_eq!(read.ids.len(), recorded);
        // Each append's two ids are next to each other, in their order.
        for pair in read.ids.chunks(2) {
            assert_eq!(pair[1].0, pair[0].0 + 1);
            assert_eq!(pair[0].1.replace("-a", "-b"), pair[1].1);
        }
    }
}
