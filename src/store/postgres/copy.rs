//! Rows sent with `COPY ... FROM STDIN (FORMAT binary)`: the fastest way
//! into a table, several times faster than an `INSERT` of as many rows,
//! since the server adds them to the table a page at a time.
//!
//! The rows are framed here, as PostgreSQL's binary copy format has
//! them: a header; each row as its number of fields, then each field as
//! its length in bytes (-1 for null) and its bytes (`bigint` in network
//! order, `text` as UTF-8); a trailer. They go to the server in pieces
//! as they are framed, so that it stores the first while the rest are
//! framed. (The `postgres` crate's own writer sends a row at a time,
//! each through its connection task: a third slower for a step's rows.)

use super::{PgStore, TxError};
use crate::store::StoreError;
use postgres::{CopyInWriter, Transaction};
use std::io::Write;

/// The header: signature, flags, no extension area.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Framed bytes sent to the server whenever this many have gathered.
const PIECE: usize = 256 * 1024;

/// One field of a row.
pub(crate) enum Field<'a> {
    Int8(i64),
    Text(&'a str),
    Null,
}

impl From<i64> for Field<'_> {
    fn from(v: i64) -> Self {
        Field::Int8(v)
    }
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(v: &'a str) -> Self {
        Field::Text(v)
    }
}

impl<'a, T: Into<Field<'a>>> From<Option<T>> for Field<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Field::Null, Into::into)
    }
}

/// A `COPY ... FROM STDIN (FORMAT binary)` under way.
pub(crate) struct CopyIn<'a> {
    s: &'a PgStore,
    out: CopyInWriter<'a>,
    buf: Vec<u8>,
}

impl<'a> CopyIn<'a> {
    /// Starts `sql`, a `COPY ... FROM STDIN (FORMAT binary)`.
    pub(crate) fn start(
        s: &'a PgStore,
        tx: &'a mut Transaction<'_>,
        sql: &postgres::Statement,
    ) -> Result<Self, TxError> {
        let mut buf = Vec::with_capacity(PIECE + 4096);
        buf.extend_from_slice(HEADER);
        Ok(CopyIn {
            s,
            out: tx.copy_in(sql)?,
            buf,
        })
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, fields: &[Field<'_>]) -> Result<(), TxError> {
        let n = i16::try_from(fields.len()).unwrap_or(i16::MAX);
        self.buf.extend_from_slice(&n.to_be_bytes());
        for f in fields {
            match f {
                Field::Int8(v) => {
                    self.buf.extend_from_slice(&8i32.to_be_bytes());
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                Field::Text(t) => {
                    let len = i32::try_from(t.len()).unwrap_or(i32::MAX);
                    self.buf.extend_from_slice(&len.to_be_bytes());
                    self.buf.extend_from_slice(t.as_bytes());
                }
                Field::Null => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(())
    }

    /// Sends the trailer and ends the copy: the rows copied.
    pub(crate) fn finish(mut self) -> Result<u64, TxError> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.send()?;
        Ok(self.out.finish()?)
    }

    fn send(&mut self) -> Result<(), TxError> {
        let sent = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        self.buf.clear();
        // The writer's errors are the connection's, wrapped.
        sent.map_err(|e| match e.downcast::<postgres::Error>() {
            Ok(pg) => TxError::Pg(pg),
            Err(other) => TxError::Store(StoreError::Postgres {
                store: self.s.target.shown().to_string(),
                message: other.to_string(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fresh;
    use super::*;

    /// Every kind of field arrives as sent: numbers at their limits,
    /// text that is empty, not ASCII, or longer than a piece, and nulls;
    /// and rows enough to be sent in several pieces.
    #[test]
    fn rows_copied_arrive_as_they_were_sent() {
        let Some(s) = fresh("rows_copied_arrive_as_they_were_sent") else {
            return;
        };
        let long = "x".repeat(PIECE + 10);
        let texts = ["", "é – 名前", "a\tb\nc\\d", long.as_str()];
        let mut client = s.client();
        client
            .batch_execute("CREATE TABLE t (n bigint, a text, b text)")
            .unwrap();
        let mut tx = client.transaction().unwrap();
        let st = tx
            .prepare("COPY t (n, a, b) FROM STDIN (FORMAT binary)")
            .unwrap();
        let mut copy = CopyIn::start(&s, &mut tx, &st).unwrap();
        let numbers = [i64::MIN, -1, 0, 1, i64::MAX];
        for (i, n) in numbers.iter().enumerate() {
            copy.row(&[
                (*n).into(),
                texts[i % texts.len()].into(),
                None::<&str>.into(),
            ])
            .unwrap();
        }
        for i in 0..20_000i64 {
            copy.row(&[i.into(), Some("row").into(), Field::Null])
                .unwrap();
        }
        assert_eq!(copy.finish().unwrap(), 20_005);
        tx.commit().unwrap();
        let first: Vec<(i64, String, Option<String>)> = client
            .query("SELECT n, a, b FROM t WHERE a <> 'row' ORDER BY n", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut want: Vec<(i64, String, Option<String>)> = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, texts[i % texts.len()].to_string(), None))
            .collect();
        want.sort();
        assert_eq!(first, want);
        let (count, sum): (i64, i64) = client
            .query_one(
                "SELECT count(*), sum(n)::bigint FROM t WHERE a = 'row' AND b IS NULL",
                &[],
            )
            .map(|r| (r.get(0), r.get(1)))
            .unwrap();
        assert_eq!((count, sum), (20_000, (0..20_000).sum()));
    }
}
