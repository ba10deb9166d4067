//! Open batches in SQLite (see [`crate::store::appends`]): the `open`
//! column of `batches` and the `batch_appends` table.

use super::SqliteStore;
use super::rows::event;
use crate::store::appends::*;
use crate::store::{Result, StoreError};
use rusqlite::{OptionalExtension, Transaction, params};

fn standing(tx: &Transaction, bid: &str) -> rusqlite::Result<Option<Standing>> {
    tx.query_row(
        "SELECT batch_no, status, execution_id, open FROM batches WHERE bid = ?1",
        [bid],
        |r| {
            Ok(Standing {
                no: r.get(0)?,
                status: r.get(1)?,
                execution_id: r.get(2)?,
                openness: Openness::from_column(r.get(3)?),
            })
        },
    )
    .optional()
}

/// The `open` column as [`Openness`] ([`Openness::from_column`]), by the
/// name the store's reads know it.
pub(super) fn openness(open: Option<i64>) -> Openness {
    Openness::from_column(open)
}

impl SqliteStore {
    /// Runs `f` in one IMMEDIATE transaction if batch `bid` is open and
    /// not final; else writes nothing and says why (`verb`: what was
    /// asked, for the message).
    fn while_open<T>(
        &self,
        bid: &str,
        verb: &'static str,
        f: impl FnOnce(&Transaction, &Standing) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let tx = Transaction::new_unchecked(self.conn(), rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let Some(b) = standing(&tx, bid).map_err(|e| self.err(e))? else {
            return Err(StoreError::no_batch(bid));
        };
        if let Some(refusal) = b.refusal(bid, verb) {
            return Err(refusal);
        }
        let out = f(&tx, &b).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }
}

impl AppendStore for SqliteStore {
    fn append_ids(&self, bid: &str, ids: &[String], node: &str) -> Result<usize> {
        let now = crate::store::now();
        self.while_open(bid, "append to", |tx, b| {
            let mut ins = tx.prepare_cached(
                "INSERT INTO batch_appends (batch, entity_id, appended_at, node)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for id in ids {
                ins.execute(params![b.no, id, now, node])?;
            }
            let note = append_note(ids.len());
            event(tx, bid, &b.execution_id, node, b.status, Some(&note))?;
            Ok(ids.len())
        })
    }

    fn close_batch(&self, bid: &str, node: &str) -> Result<()> {
        self.while_open(bid, "close", |tx, b| {
            tx.execute("UPDATE batches SET open = 0 WHERE batch_no = ?1", [b.no])?;
            event(tx, bid, &b.execution_id, node, b.status, Some(CLOSE_NOTE))
        })
    }

    fn appended_since(&self, bid: &str, after: i64, limit: usize) -> Result<Appended> {
        // One read transaction: the open flag and the appends are of one
        // snapshot, so a batch read closed has no append after these.
        let conn = self.conn();
        let read = || -> rusqlite::Result<Appended> {
            let tx = conn.unchecked_transaction()?;
            let (no, open): (i64, Option<i64>) = tx.query_row(
                "SELECT batch_no, open FROM batches WHERE bid = ?1",
                [bid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let ids = tx
                .prepare_cached(
                    "SELECT place, entity_id FROM batch_appends
                     WHERE batch = ?1 AND place > ?2 ORDER BY place LIMIT ?3",
                )?
                .query_map(params![no, after, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
            Ok(Appended {
                ids,
                open: Openness::from_column(open) == Openness::Open,
            })
        };
        read().map_err(|e| self.err(e))
    }
}
