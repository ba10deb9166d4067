//! The monitoring statements' reads (SPEC §6) on PostgreSQL: batch rows,
//! per-node counters, progress samples, entity rows, events, and bid
//! resolution.
//!
//! As on SQLite, nothing here reads a batch's entity rows unless the
//! statement asks for them (`BATCH_DETAILS`): a batch's counters are its
//! row plus its workers' rows of `batch_counts` (`batch_totals`), read
//! through the view with the batch's number, so that PostgreSQL sums the
//! few `batch_counts` rows of that batch alone (a lateral subquery, which
//! it keeps apart). A page of `BATCH_DETAILS` is a walk of the entity
//! rows' primary key that stops at the limit. `BATCH_IN_PROCESS` reaches
//! entity rows only through the index of unfinished entities, batch by
//! batch, of the batches whose `in_process` total is set. The tests
//! (`reads/tests.rs`) check the plans.

use super::{PgStore, TxError};
use crate::batch::{EntityStatus, StatusError};
use crate::store::appends::Openness;
use crate::store::batches::Counters;
use crate::store::reads::*;
use crate::store::{Result, StoreError};
use postgres::Row;
use postgres::types::{FromSql, ToSql};
use std::str::FromStr;

/// A statement's arguments, made as its text is.
type Args = Vec<Box<dyn ToSql + Sync>>;

impl ReadStore for PgStore {
    fn resolve_bid(&self, given: Option<&str>, last: Option<&str>) -> Result<String> {
        resolve(self, given, last)
    }

    fn read_batch(&self, bid: &str) -> Result<BatchRow> {
        let found = rows(self, READ_BATCH_SQL, &[&bid])?;
        match found.first() {
            Some(r) => batch_row(&Cols(self, r)),
            None => Err(StoreError::NoBatch {
                given: bid.to_string(),
                suggestion: None,
            }),
        }
    }

    fn list_batches(&self, q: &ListQuery<'_>) -> Result<Vec<BatchRow>> {
        let (sql, args) = list_sql(q);
        let args: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as _).collect();
        let Some(re) = q.command else {
            let rows = self.client().query(&sql, &args).map_err(|e| self.err(e))?;
            return rows.iter().map(|r| batch_row(&Cols(self, r))).collect();
        };
        // The limit counts the rows whose command matches, which only
        // batchsh can tell (a Rust regex): rows come a page at a time
        // until it is reached.
        let mut client = self.client();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let portal = tx.bind(sql.as_str(), &args).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        loop {
            let page = tx
                .query_portal(&portal, LIST_PAGE)
                .map_err(|e| self.err(e))?;
            for r in &page {
                if q.limit.is_some_and(|n| out.len() >= n) {
                    return Ok(out);
                }
                let b = batch_row(&Cols(self, r))?;
                if re.is_match(&b.command) {
                    out.push(b);
                }
            }
            if page.len() < LIST_PAGE as usize || q.limit.is_some_and(|n| out.len() >= n) {
                return Ok(out);
            }
        }
    }

    fn batch_node_rows(&self, bid: &str) -> Result<Vec<NodeRow>> {
        rows(
            self,
            "SELECT node, dc, start_time, end_time, completed, failed, added, updated, unchanged
             FROM batch_nodes WHERE bid = $1 ORDER BY dc COLLATE \"C\", node COLLATE \"C\"",
            &[&bid],
        )?
        .iter()
        .map(|r| {
            let c = Cols(self, r);
            Ok(NodeRow {
                node: c.get(0)?,
                dc: c.get(1)?,
                start_time: c.get(2)?,
                end_time: c.get(3)?,
                completed: c.get(4)?,
                failed: c.get(5)?,
                added: c.get(6)?,
                updated: c.get(7)?,
                unchanged: c.get(8)?,
            })
        })
        .collect()
    }

    fn pace_samples(&self, bid: &str, node: &str, window_ms: i64) -> Result<Option<PaceSamples>> {
        let one = |sql: &'static str, args: &[&(dyn ToSql + Sync)]| -> Result<Option<(i64, i64)>> {
            let found = rows(self, sql, args)?;
            found
                .first()
                .map(|r| {
                    let c = Cols(self, r);
                    Ok((c.get(0)?, c.get(1)?))
                })
                .transpose()
        };
        let Some(newest) = one(
            "SELECT time_ms, done FROM batch_progress WHERE bid = $1 AND node = $2
             ORDER BY time_ms DESC LIMIT 1",
            &[&bid, &node],
        )?
        else {
            return Ok(None);
        };
        let older = one(
            "SELECT time_ms, done FROM batch_progress
             WHERE bid = $1 AND node = $2 AND time_ms <= $3
             ORDER BY time_ms DESC LIMIT 1",
            &[&bid, &node, &newest.0.saturating_sub(window_ms)],
        )?;
        let reference = match older {
            Some(s) => s,
            None => one(
                "SELECT time_ms, done FROM batch_progress WHERE bid = $1 AND node = $2
                 ORDER BY time_ms ASC LIMIT 1",
                &[&bid, &node],
            )?
            .unwrap_or(newest),
        };
        Ok(Some(PaceSamples { newest, reference }))
    }

    fn entity_rows(&self, bid: &str, q: &DetailsQuery) -> Result<Vec<EntityRow>> {
        let Some(no) = batch_no(self, bid)? else {
            return Ok(Vec::new());
        };
        // Each part comes in order, cut at the limit; the two are merged
        // here, which PostgreSQL does not do by index for a UNION ALL.
        let mut rows = Vec::new();
        for (sql, args) in details_sql(no, bid, q) {
            let args: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as _).collect();
            for r in self.client().query(&sql, &args).map_err(|e| self.err(e))? {
                let c = Cols(self, &r);
                rows.push(EntityRow {
                    seq: c.get(0)?,
                    entity_id: c.get(1)?,
                    node: c.get(2)?,
                    status: c.status(3)?,
                    attempts: c.get(4)?,
                    process_time_ms: c.get(5)?,
                    error: c.get(6)?,
                    result: c.get(7)?,
                    start_time_ms: c.get(8)?,
                });
            }
        }
        if q.slowest_first {
            rows.sort_by_key(|r| {
                (
                    r.process_time_ms.is_none(),
                    std::cmp::Reverse(r.process_time_ms),
                    r.seq,
                )
            });
        } else {
            rows.sort_by_key(|r| r.seq);
        }
        if let Some(n) = q.limit {
            rows.truncate(n);
        }
        Ok(rows)
    }

    fn in_process_rows(&self) -> Result<Vec<InProcessRow>> {
        let rows = self.tx(|tx| {
            // PostgreSQL cannot tell how few batches are at work, and
            // estimates this statement costly enough to compile it (JIT),
            // which takes most of a second; it reads a few index ranges.
            tx.batch_execute("SET LOCAL jit = off")?;
            let st = self.cached(tx, IN_PROCESS_SQL)?;
            Ok::<_, TxError>(tx.query(&st, &[])?)
        })?;
        rows.iter()
            .map(|r| {
                let c = Cols(self, r);
                Ok(InProcessRow {
                    node: c.get(0)?,
                    bid: c.get(1)?,
                    entity_id: c.get(2)?,
                    lu: c.get(3)?,
                    start_time_ms: c.get(4)?,
                    execution_id: c.get(5)?,
                    command: c.get(6)?,
                    owner_node: c.get(7)?,
                    owner_pid: c.get(8)?,
                    heartbeat_at: c.get(9)?,
                    fabric_command: c.get(11)?,
                    worker: c.get(12)?,
                })
            })
            .collect()
    }

    fn event_rows(&self, bid: &str) -> Result<Vec<EventRow>> {
        rows(
            self,
            "SELECT time, execution_id, node, status, note
             FROM batch_events WHERE bid = $1 ORDER BY id",
            &[&bid],
        )?
        .iter()
        .map(|r| {
            let c = Cols(self, r);
            Ok(EventRow {
                time: c.get(0)?,
                execution_id: c.get(1)?,
                node: c.get(2)?,
                status: c.get(3)?,
                note: c.get(4)?,
            })
        })
        .collect()
    }
}

impl BidLookup for PgStore {
    fn exact(&self, bid: &str) -> Result<Option<String>> {
        Ok(bids(self, "SELECT bid FROM batches WHERE bid = $1", &[&bid])?.pop())
    }

    fn starting_at(&self, prefix: &str, n: i64) -> Result<Vec<String>> {
        bids(self, PREFIX_SQL, &[&prefix, &n])
    }

    fn recent(&self, n: i64) -> Result<Vec<String>> {
        bids(
            self,
            "SELECT bid FROM batches ORDER BY creation_time DESC LIMIT $1",
            &[&n],
        )
    }
}

/// The rows of `sql`, a statement prepared once per connection.
pub(super) fn rows(
    s: &PgStore,
    sql: &'static str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    let mut client = s.client();
    let st = s.cached(&mut *client, sql).map_err(|e| s.err(e))?;
    client.query(&st, args).map_err(|e| s.err(e))
}

/// The number of batch `bid`, which keys its entity rows and claims.
fn batch_no(s: &PgStore, bid: &str) -> Result<Option<i64>> {
    let found = rows(s, "SELECT batch_no FROM batches WHERE bid = $1", &[&bid])?;
    found.first().map(|r| Cols(s, r).get(0)).transpose()
}

fn bids(s: &PgStore, sql: &'static str, args: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>> {
    rows(s, sql, args)?
        .iter()
        .map(|r| Cols(s, r).get(0))
        .collect()
}

/// A row's columns, read with the store's errors.
pub(super) struct Cols<'a>(pub &'a PgStore, pub &'a Row);

impl Cols<'_> {
    pub fn get<T: for<'b> FromSql<'b>>(&self, i: usize) -> Result<T> {
        self.1.try_get(i).map_err(|e| self.0.err(e))
    }

    /// A status column: a text that is no status (a damaged store, or one
    /// a newer batchsh wrote) fails the read with the status error.
    pub fn status<T: FromStr<Err = StatusError>>(&self, i: usize) -> Result<T> {
        self.get::<String>(i)?
            .parse()
            .map_err(|e: StatusError| StoreError::Postgres {
                store: self.0.target.shown().to_string(),
                message: format!("a row holds an unknown status: {e}"),
            })
    }
}

/// Rows of a `BATCH_LIST` with a FILTER fetched at a time.
const LIST_PAGE: i32 = 200;

/// Bids from a prefix on, in order: a range read of the primary key
/// (which orders bids byte by byte).
const PREFIX_SQL: &str = "SELECT bid FROM batches WHERE bid >= $1 ORDER BY bid LIMIT $2";

/// A batch row with its counters, `FROM` included; the counters of the
/// one batch are summed for each row.
macro_rules! batch_select {
    ($($tail:literal),*) => {
        concat!(
            "SELECT b.bid, b.command, b.lu, b.fabric_command, b.source, b.arguments, b.status,
                    b.execution_id, b.created_by, b.creation_time, b.start_time, b.end_time,
                    b.error, b.extra_stats, b.ids_complete, b.estimated_total, t.total,
                    t.waiting, t.in_process, t.completed, t.failed, t.cancelled, t.added,
                    t.updated, t.unchanged, b.open
             FROM batches AS b
             CROSS JOIN LATERAL (SELECT * FROM batch_totals AS t WHERE t.batch = b.batch_no OFFSET 0) AS t",
            $($tail),*
        )
    };
}

/// The entities claimed as they arrived that have no row yet, as a table
/// (`batch`, `seq`, `entity_id`, `node`, `start_time_ms`): `batch_claimed`,
/// with the row each claimed entity may have looked up by the primary
/// key, one at a time (a subquery PostgreSQL cannot turn into a join,
/// which could read every row of the batch to find the few claimed).
macro_rules! claimed {
    () => {
        "(SELECT c.batch, c.first_seq + j.n - 1 AS seq, j.value AS entity_id, c.node,
                 c.start_time_ms, c.worker
          FROM batch_claims AS c
          CROSS JOIN LATERAL jsonb_array_elements_text(c.ids::jsonb) WITH ORDINALITY AS j (value, n)
          WHERE j.value IS NOT NULL
              AND (SELECT e.seq FROM batch_entities AS e
                   WHERE e.batch = c.batch AND e.seq = c.first_seq + j.n - 1) IS NULL) AS claimed"
    };
}

/// The WAITING entities stored ahead in chunks (`batch_chunks`), as a
/// table (`batch`, `seq`, `entity_id`, `node`): a row each.
macro_rules! chunked {
    () => {
        "(SELECT c.batch, c.first_seq + j.n - 1 AS seq, j.value AS entity_id, NULL::text AS node
          FROM batch_chunks AS c
          CROSS JOIN LATERAL jsonb_array_elements_text(c.ids::jsonb) WITH ORDINALITY AS j (value, n)
          WHERE j.value IS NOT NULL) AS chunked"
    };
}
pub(super) use chunked;

const READ_BATCH_SQL: &str = batch_select!(" WHERE b.bid = $1");

fn batch_row(c: &Cols<'_>) -> Result<BatchRow> {
    Ok(BatchRow {
        bid: c.get(0)?,
        command: c.get(1)?,
        lu: c.get(2)?,
        fabric_command: c.get(3)?,
        source: c.get(4)?,
        arguments: c.get(5)?,
        status: c.status(6)?,
        execution_id: c.get(7)?,
        created_by: c.get(8)?,
        creation_time: c.get(9)?,
        start_time: c.get(10)?,
        end_time: c.get(11)?,
        error: c.get(12)?,
        extra_stats: c.get(13)?,
        ids_complete: c.get::<i64>(14)? != 0,
        estimated_total: c.get(15)?,
        counts: Counters {
            total: c.get(16)?,
            waiting: c.get(17)?,
            in_process: c.get(18)?,
            completed: c.get(19)?,
            failed: c.get(20)?,
            cancelled: c.get(21)?,
            added: c.get(22)?,
            updated: c.get(23)?,
            unchanged: c.get(24)?,
        },
        openness: match c.get::<Option<i64>>(25)? {
            None => Openness::NotOpen,
            Some(0) => Openness::Closed,
            Some(_) => Openness::Open,
        },
    })
}

/// `$n` for the next argument, which is pushed.
fn arg(args: &mut Args, v: impl ToSql + Sync + 'static) -> String {
    args.push(Box::new(v));
    format!("${}", args.len())
}

fn texts<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    values.iter().map(|v| v.as_ref().to_string()).collect()
}

/// `BATCH_LIST`'s statement and its arguments.
fn list_sql(q: &ListQuery<'_>) -> (String, Args) {
    let mut sql = String::from(batch_select!(" WHERE true"));
    let mut args = Args::new();
    match &q.status {
        StatusFilter::All => {}
        StatusFilter::Active => {
            sql.push_str(" AND b.status NOT IN ('DONE', 'FAILED', 'CANCELLED')");
        }
        StatusFilter::Only(statuses) => {
            let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            sql.push_str(&format!(
                " AND b.status = ANY({})",
                arg(&mut args, texts(&names))
            ));
        }
    }
    if let Some(t) = &q.created_from {
        sql.push_str(&format!(
            " AND b.creation_time >= {}",
            arg(&mut args, t.clone())
        ));
    }
    if let Some(t) = &q.created_before {
        sql.push_str(&format!(
            " AND b.creation_time < {}",
            arg(&mut args, t.clone())
        ));
    }
    sql.push_str(" ORDER BY b.creation_time DESC, b.bid DESC");
    // Without a regex the database can stop at the limit itself; with one
    // the limit counts matching rows, so rows are read until it is reached.
    if let (Some(n), None) = (q.limit, q.command) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        sql.push_str(&format!(" LIMIT {}", arg(&mut args, n)));
    }
    (sql, args)
}

/// `BATCH_DETAILS`' statements and their arguments, for batch `bid`,
/// number `no`: the batch's entity rows and, unless the statuses asked
/// leave them out, its claimed entities without a row yet, IN_PROCESS,
/// and its entities stored ahead in chunks, WAITING; each in the order
/// asked, cut at the limit. The entity rows come by the
/// primary key (`seq`), or the index of unfinished entities when no
/// completed one is asked for, and stop at the limit.
fn details_sql(no: i64, bid: &str, q: &DetailsQuery) -> Vec<(String, Args)> {
    let order = if q.slowest_first {
        " ORDER BY process_time_ms IS NULL, process_time_ms DESC, seq"
    } else {
        " ORDER BY seq"
    };
    let limit = match q.limit {
        Some(n) => format!(" LIMIT {}", i64::try_from(n).unwrap_or(i64::MAX)),
        None => String::new(),
    };
    let (mut sql, mut args) = details_part(
        "SELECT seq, entity_id, node, status, attempts, process_time_ms, error, result,
                start_time_ms
         FROM batch_entities",
        no,
        bid,
        q,
    );
    if let Some(s) = &q.statuses {
        if !s.contains(&EntityStatus::Completed) {
            // The condition of the index of unfinished entities: with it,
            // failed ones are found without reading the completed ones.
            sql.push_str(" AND status <> 'COMPLETED'");
        }
        // One status: the index gives its rows in order, and the limit
        // stops the walk.
        let cond = match s.as_slice() {
            [one] => format!(" AND status = {}", arg(&mut args, one.as_str())),
            _ => {
                let names: Vec<&str> = s.iter().map(|s| s.as_str()).collect();
                format!(" AND status = ANY({})", arg(&mut args, texts(&names)))
            }
        };
        sql.push_str(&cond);
    }
    let mut parts = vec![(format!("{sql}{order}{limit}"), args)];
    if q.statuses
        .as_ref()
        .is_none_or(|s| s.contains(&EntityStatus::InProcess))
    {
        let (sql, args) = details_part(
            concat!(
                "SELECT seq, entity_id, node, 'IN_PROCESS', 1::bigint, NULL::bigint, NULL::text,
                        NULL::text, start_time_ms
                 FROM ",
                claimed!()
            ),
            no,
            bid,
            q,
        );
        parts.push((format!("{sql} ORDER BY seq{limit}"), args));
    }
    if q.statuses
        .as_ref()
        .is_none_or(|s| s.contains(&EntityStatus::Waiting))
    {
        let (sql, args) = details_part(
            concat!(
                "SELECT seq, entity_id, NULL::text, 'WAITING', 0::bigint, NULL::bigint,
                        NULL::text, NULL::text, NULL::bigint
                 FROM ",
                chunked!()
            ),
            no,
            bid,
            q,
        );
        parts.push((format!("{sql} ORDER BY seq{limit}"), args));
    }
    parts
}

/// `select` from the rows of batch `no` that pass the filters both kinds
/// of rows are read with (entity ids, nodes or DCs).
fn details_part(select: &str, no: i64, bid: &str, q: &DetailsQuery) -> (String, Args) {
    let mut args = Args::new();
    let mut sql = format!("{select} WHERE batch = {}", arg(&mut args, no));
    if let Some(ids) = &q.entity_ids {
        sql.push_str(&format!(
            " AND entity_id = ANY({})",
            arg(&mut args, texts(ids))
        ));
    }
    if let Some(nodes) = &q.nodes {
        let bid = arg(&mut args, bid.to_string());
        let nodes = arg(&mut args, texts(nodes));
        sql.push_str(&format!(
            " AND (node = ANY({nodes}) OR node IN \
             (SELECT node FROM batch_nodes WHERE bid = {bid} AND dc = ANY({nodes})))"
        ));
    }
    (sql, args)
}

/// The batches whose `in_process` total is set come first (a materialised
/// CTE); then each one's IN_PROCESS entities, by the index of unfinished
/// entities (`OFFSET 0` keeps the lateral subqueries apart, so that they
/// are searched batch by batch, never joined by a scan). Entities claimed
/// as they arrived, without a row yet, are in `claimed!`.
const IN_PROCESS_SQL: &str = concat!(
    "
    WITH busy AS MATERIALIZED (
        SELECT b.batch_no, b.bid, b.lu, b.execution_id, b.command, b.owner_node,
               b.owner_pid, b.heartbeat_at, b.fabric_command
        FROM batch_totals AS t JOIN batches AS b ON b.batch_no = t.batch
        WHERE t.in_process > 0)
    SELECT * FROM (
    SELECT e.node AS node, b.bid AS bid, e.entity_id, b.lu, e.start_time_ms AS start_time_ms,
           b.execution_id, b.command, b.owner_node, b.owner_pid, b.heartbeat_at, e.seq AS seq,
           b.fabric_command, e.worker
    FROM busy AS b
    CROSS JOIN LATERAL (
        SELECT node, entity_id, start_time_ms, seq, worker FROM batch_entities
        WHERE batch = b.batch_no AND status <> 'COMPLETED' AND status = 'IN_PROCESS'
        OFFSET 0) AS e
    UNION ALL
    SELECT c.node, b.bid, c.entity_id, b.lu, c.start_time_ms, b.execution_id, b.command,
           b.owner_node, b.owner_pid, b.heartbeat_at, c.seq, b.fabric_command, c.worker
    FROM busy AS b
    CROSS JOIN LATERAL (
        SELECT node, entity_id, start_time_ms, seq, worker FROM ",
    claimed!(),
    "
        WHERE batch = b.batch_no OFFSET 0) AS c) AS r
    ORDER BY node COLLATE \"C\", start_time_ms, bid, seq"
);

#[cfg(test)]
mod tests;
