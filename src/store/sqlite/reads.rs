//! Read-only queries on the batch tables, for the monitoring statements
//! (SPEC §6): batch rows, per-node counters, progress samples, entity rows,
//! events, and bid resolution.
//!
//! Nothing here scans a batch's entity rows unless the statement asks for
//! entity rows (`BATCH_DETAILS`): `BATCH_LIST` and `BATCH_SUMMARY` read the
//! counters the executor keeps on `batches` and `batch_nodes`, and
//! `BATCH_IN_PROCESS` reaches entity rows only through the
//! `(bid, status, seq)` index of batches whose `in_process` counter is set,
//! so all of them stay fast on a store with millions of entity rows.
//!
//! Times are passed and returned as RFC 3339 UTC text with milliseconds
//! (`2026-11-22T15:54:00.000Z`, see [`crate::store::now`]), which orders correctly
//! as text. The store keeps them so, except on entity rows and claims
//! (`*_ms` columns: milliseconds since 1970-01-01 UTC), which are read as
//! such.

use super::SqliteStore;
use crate::batch::EntityStatus;
use crate::store::batches::Counters;
use crate::store::reads::*;
use crate::store::{Result, StoreError};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

impl ReadStore for SqliteStore {
    /// The bid a monitoring or control statement means: `given` (an exact bid,
    /// or a unique prefix of at least 6 characters), else `last`, the last batch
    /// started in this session.
    fn resolve_bid(&self, given: Option<&str>, last: Option<&str>) -> Result<String> {
        resolve(self, given, last)
    }

    /// One batch by its exact bid (see [`ReadStore::resolve_bid`] for prefixes).
    fn read_batch(&self, bid: &str) -> Result<BatchRow> {
        let store = self;
        store
            .conn()
            .query_row(
                &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE bid = ?1"),
                [bid],
                map_batch,
            )
            .optional()
            .map_err(|e| store.err(e))?
            .ok_or_else(|| StoreError::NoBatch {
                given: bid.to_string(),
                suggestion: None,
            })
    }

    /// Batch rows, newest first (creation time, then bid, descending). Reads
    /// only the `batches` table, walking its creation-time index.
    fn list_batches(&self, q: &ListQuery<'_>) -> Result<Vec<BatchRow>> {
        let store = self;
        let (sql, args) = list_sql(q);
        let mut st = store.conn().prepare(&sql).map_err(|e| store.err(e))?;
        let mut rows = st.query(params_from_iter(args)).map_err(|e| store.err(e))?;
        let mut out = Vec::new();
        while q.limit.is_none_or(|n| out.len() < n) {
            let Some(r) = rows.next().map_err(|e| store.err(e))? else {
                break;
            };
            let b = map_batch(r).map_err(|e| store.err(e))?;
            if q.command.is_none_or(|re| re.is_match(&b.command)) {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// The nodes that took part in a batch, by DC, then node.
    fn batch_node_rows(&self, bid: &str) -> Result<Vec<NodeRow>> {
        let store = self;
        let mut st = store
            .conn()
            .prepare(
                "SELECT node, dc, start_time, end_time, completed, failed, added, updated, unchanged
                 FROM batch_nodes WHERE bid = ?1 ORDER BY dc, node",
            )
            .map_err(|e| store.err(e))?;
        st.query_map([bid], |r| {
            Ok(NodeRow {
                node: r.get(0)?,
                dc: r.get(1)?,
                start_time: r.get(2)?,
                end_time: r.get(3)?,
                completed: r.get(4)?,
                failed: r.get(5)?,
                added: r.get(6)?,
                updated: r.get(7)?,
                unchanged: r.get(8)?,
            })
        })
        .map_err(|e| store.err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| store.err(e))
    }

    /// The samples for a node's pace over the last `window_ms` of its samples;
    /// `None` when the node has no sample. Three reads of the primary key.
    fn pace_samples(&self, bid: &str, node: &str, window_ms: i64) -> Result<Option<PaceSamples>> {
        let store = self;
        let conn = store.conn();
        let one = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<Option<(i64, i64)>> {
            conn.query_row(sql, args, |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| store.err(e))
        };
        let Some(newest) = one(
            "SELECT time_ms, done FROM batch_progress WHERE bid = ?1 AND node = ?2
             ORDER BY time_ms DESC LIMIT 1",
            &[&bid, &node],
        )?
        else {
            return Ok(None);
        };
        let older = one(
            "SELECT time_ms, done FROM batch_progress WHERE bid = ?1 AND node = ?2 AND time_ms <= ?3
             ORDER BY time_ms DESC LIMIT 1",
            &[&bid, &node, &newest.0.saturating_sub(window_ms)],
        )?;
        let reference = match older {
            Some(s) => s,
            None => one(
                "SELECT time_ms, done FROM batch_progress WHERE bid = ?1 AND node = ?2
                 ORDER BY time_ms ASC LIMIT 1",
                &[&bid, &node],
            )?
            .unwrap_or(newest),
        };
        Ok(Some(PaceSamples { newest, reference }))
    }

    /// A batch's entity rows, in order of arrival (or slowest first): its own
    /// rows, and the entities claimed as they arrived that have no row yet
    /// (`batch_claimed`, IN_PROCESS).
    fn entity_rows(&self, bid: &str, q: &DetailsQuery) -> Result<Vec<EntityRow>> {
        let store = self;
        const BATCH: &str = "batch = (SELECT batch_no FROM batches WHERE bid = ?)";
        // The conditions both kinds of rows are read with.
        let mut filters = String::new();
        let mut filter_args = Vec::new();
        if let Some(ids) = &q.entity_ids {
            filters.push_str(&format!(
                " AND entity_id IN ({})",
                in_list(&mut filter_args, ids)
            ));
        }
        if let Some(nodes) = &q.nodes {
            let by_node = in_list(&mut filter_args, nodes);
            filter_args.push(SqlValue::Text(bid.to_string()));
            let by_dc = in_list(&mut filter_args, nodes);
            filters.push_str(&format!(
                " AND (node IN ({by_node}) OR node IN \
                 (SELECT node FROM batch_nodes WHERE bid = ? AND dc IN ({by_dc})))"
            ));
        }
        let mut sql = format!(
            "SELECT seq, entity_id, node, status, attempts, process_time_ms, error, result,
                    process_time_ms IS NULL AS never_run, start_time_ms
             FROM batch_entities WHERE {BATCH}"
        );
        let mut args = vec![SqlValue::Text(bid.to_string())];
        if let Some(s) = &q.statuses {
            if !s.contains(&EntityStatus::Completed) {
                // The condition of the index of unfinished entities: with it,
                // failed ones are found without reading the completed ones.
                sql.push_str(" AND status <> 'COMPLETED'");
            }
            sql.push_str(&format!(
                " AND status IN ({})",
                in_list(&mut args, &s.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            ));
        }
        sql.push_str(&filters);
        args.extend(filter_args.iter().cloned());
        if q.statuses
            .as_ref()
            .is_none_or(|s| s.contains(&EntityStatus::InProcess))
        {
            sql.push_str(&format!(
                " UNION ALL
                 SELECT seq, entity_id, node, 'IN_PROCESS', 1, NULL, NULL, NULL, 1,
                        start_time_ms
                 FROM batch_claimed WHERE {BATCH}{filters}"
            ));
            args.push(SqlValue::Text(bid.to_string()));
            args.extend(filter_args);
        }
        // Result columns only (a compound SELECT orders by those), so that
        // SQLite merges the two ordered parts and stops at the LIMIT.
        sql.push_str(if q.slowest_first {
            " ORDER BY never_run, process_time_ms DESC, seq"
        } else {
            " ORDER BY seq"
        });
        if let Some(n) = q.limit {
            sql.push_str(" LIMIT ?");
            args.push(SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        let mut st = store.conn().prepare(&sql).map_err(|e| store.err(e))?;
        st.query_map(params_from_iter(args), |r| {
            Ok(EntityRow {
                seq: r.get(0)?,
                entity_id: r.get(1)?,
                node: r.get(2)?,
                status: r.get(3)?,
                attempts: r.get(4)?,
                process_time_ms: r.get(5)?,
                error: r.get(6)?,
                result: r.get(7)?,
                start_time_ms: r.get(9)?,
            })
        })
        .map_err(|e| store.err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| store.err(e))
    }

    /// Every entity `IN_PROCESS` now, across batches, by node, then longest at
    /// work first. Only batches whose `in_process` counter is set are visited,
    /// each through the index of its unfinished entities.
    fn in_process_rows(&self) -> Result<Vec<InProcessRow>> {
        let store = self;
        let mut st = store
            .conn()
            .prepare(IN_PROCESS_SQL)
            .map_err(|e| store.err(e))?;
        st.query_map([], |r| {
            Ok(InProcessRow {
                node: r.get(0)?,
                bid: r.get(1)?,
                entity_id: r.get(2)?,
                lu: r.get(3)?,
                start_time_ms: r.get(4)?,
                execution_id: r.get(5)?,
                command: r.get(6)?,
                owner_node: r.get(7)?,
                owner_pid: r.get(8)?,
                heartbeat_at: r.get(9)?,
                fabric_command: r.get(11)?,
                worker: r.get(12)?,
            })
        })
        .map_err(|e| store.err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| store.err(e))
    }

    /// A batch's events, oldest first (in the order they were recorded, which
    /// clocks of different nodes cannot disturb).
    fn event_rows(&self, bid: &str) -> Result<Vec<EventRow>> {
        let store = self;
        let mut st = store
            .conn()
            .prepare(
                "SELECT time, execution_id, node, status, note
                 FROM batch_events WHERE bid = ?1 ORDER BY id",
            )
            .map_err(|e| store.err(e))?;
        st.query_map([bid], |r| {
            Ok(EventRow {
                time: r.get(0)?,
                execution_id: r.get(1)?,
                node: r.get(2)?,
                status: r.get(3)?,
                note: r.get(4)?,
            })
        })
        .map_err(|e| store.err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| store.err(e))
    }
}

impl BidLookup for SqliteStore {
    fn exact(&self, bid: &str) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT bid FROM batches WHERE bid = ?1", [bid], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    fn starting_at(&self, prefix: &str, n: i64) -> Result<Vec<String>> {
        self.bids(PREFIX_SQL, params![prefix, n])
    }

    fn recent(&self, n: i64) -> Result<Vec<String>> {
        self.bids(
            "SELECT bid FROM batches ORDER BY creation_time DESC LIMIT ?1",
            params![n],
        )
    }
}

impl SqliteStore {
    fn bids(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<String>> {
        let mut st = self.conn().prepare(sql).map_err(|e| self.err(e))?;
        st.query_map(args, |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

/// Bids from a prefix on, in order: a range read of the primary key.
const PREFIX_SQL: &str = "SELECT bid FROM batches WHERE bid >= ?1 ORDER BY bid LIMIT ?2";

const BATCH_COLUMNS: &str = "bid, command, lu, fabric_command, source, arguments, status, \
     execution_id, created_by, creation_time, start_time, end_time, error, extra_stats, \
     ids_complete, estimated_total, total, waiting, in_process, completed, failed, cancelled, \
     added, updated, unchanged, open";

fn map_batch(r: &Row<'_>) -> rusqlite::Result<BatchRow> {
    Ok(BatchRow {
        bid: r.get(0)?,
        command: r.get(1)?,
        lu: r.get(2)?,
        fabric_command: r.get(3)?,
        source: r.get(4)?,
        arguments: r.get(5)?,
        status: r.get(6)?,
        execution_id: r.get(7)?,
        created_by: r.get(8)?,
        creation_time: r.get(9)?,
        start_time: r.get(10)?,
        end_time: r.get(11)?,
        error: r.get(12)?,
        extra_stats: r.get(13)?,
        ids_complete: r.get::<_, i64>(14)? != 0,
        estimated_total: r.get(15)?,
        counts: Counters {
            total: r.get(16)?,
            waiting: r.get(17)?,
            in_process: r.get(18)?,
            completed: r.get(19)?,
            failed: r.get(20)?,
            cancelled: r.get(21)?,
            added: r.get(22)?,
            updated: r.get(23)?,
            unchanged: r.get(24)?,
        },
        openness: super::appends::openness(r.get(25)?),
    })
}

/// `BATCH_LIST`'s statement and its arguments.
fn list_sql(q: &ListQuery<'_>) -> (String, Vec<SqlValue>) {
    let mut sql = format!("SELECT {BATCH_COLUMNS} FROM batches WHERE 1");
    let mut args: Vec<SqlValue> = Vec::new();
    match &q.status {
        StatusFilter::All => {}
        StatusFilter::Active => {
            sql.push_str(" AND status NOT IN ('DONE', 'FAILED', 'CANCELLED')");
        }
        StatusFilter::Only(statuses) => {
            sql.push_str(&format!(
                " AND status IN ({})",
                in_list(
                    &mut args,
                    &statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>()
                )
            ));
        }
    }
    if let Some(t) = &q.created_from {
        sql.push_str(" AND creation_time >= ?");
        args.push(SqlValue::Text(t.clone()));
    }
    if let Some(t) = &q.created_before {
        sql.push_str(" AND creation_time < ?");
        args.push(SqlValue::Text(t.clone()));
    }
    sql.push_str(" ORDER BY creation_time DESC, bid DESC");
    // Without a regex the database can stop at the limit itself; with one
    // the limit counts matching rows, so rows are read until it is reached.
    if let (Some(n), None) = (q.limit, q.command) {
        sql.push_str(" LIMIT ?");
        args.push(SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
    }
    (sql, args)
}

/// `CROSS JOIN` makes SQLite keep `batches` as the outer loop whatever its
/// statistics say, so entity rows are only ever searched by index.
/// Entities claimed as they arrived, without a row yet, are in
/// `batch_claimed`.
const IN_PROCESS_SQL: &str =
    "SELECT e.node AS node, b.bid AS bid, e.entity_id, b.lu, e.start_time_ms AS start_time_ms,
            b.execution_id, b.command, b.owner_node, b.owner_pid, b.heartbeat_at, e.seq AS seq,
            b.fabric_command, e.worker
     FROM batches AS b
     CROSS JOIN batch_entities AS e
         ON e.batch = b.batch_no AND e.status <> 'COMPLETED' AND e.status = 'IN_PROCESS'
     WHERE b.in_process > 0
     UNION ALL
     SELECT c.node, b.bid, c.entity_id, b.lu, c.start_time_ms, b.execution_id, b.command,
            b.owner_node, b.owner_pid, b.heartbeat_at, c.seq, b.fabric_command, c.worker
     FROM batches AS b
     CROSS JOIN batch_claimed AS c ON c.batch = b.batch_no
     WHERE b.in_process > 0
     ORDER BY node, start_time_ms, bid, seq";

/// Binds `values` for an `IN (...)` list and returns the placeholders. An
/// empty list gives `NULL`, which matches nothing, instead of an SQL error.
fn in_list<'a, S: AsRef<str> + 'a>(
    args: &mut Vec<SqlValue>,
    values: impl IntoIterator<Item = &'a S>,
) -> String {
    let before = args.len();
    args.extend(
        values
            .into_iter()
            .map(|v| SqlValue::Text(v.as_ref().to_string())),
    );
    let n = args.len() - before;
    if n == 0 {
        return "NULL".into();
    }
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    //! The promise that monitoring stays fast on millions of entity rows,
    //! checked through SQLite's query plans rather than a clock.

    use super::*;
    use crate::batch::BatchStatus;
    use regex::Regex;

    fn plan(store: &SqliteStore, sql: &str, args: Vec<SqlValue>) -> Vec<String> {
        let mut st = store
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        st.query_map(params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&d.path().join("store.db")).unwrap();
        (d, s)
    }

    #[test]
    fn batch_list_walks_the_creation_index_and_no_entity_row() {
        let (_d, s) = open();
        let re = Regex::new("x").unwrap();
        let queries = [
            ListQuery::default(),
            ListQuery {
                status: StatusFilter::Only(vec![BatchStatus::Done, BatchStatus::Failed]),
                created_from: Some("2026-03-10T00:00:00.000Z".into()),
                created_before: Some("2026-03-11T00:00:00.000Z".into()),
                command: Some(&re),
                limit: Some(5),
            },
            ListQuery {
                status: StatusFilter::All,
                limit: Some(5),
                ..ListQuery::default()
            },
        ];
        for q in &queries {
            let (sql, args) = list_sql(q);
            let p = plan(&s, &sql, args);
            assert!(
                p.iter()
                    .any(|l| l.contains("USING INDEX batches_by_creation")),
                "{p:?}"
            );
            assert!(!p.iter().any(|l| l.contains("batch_entities")), "{p:?}");
        }
    }

    #[test]
    fn in_process_searches_entity_rows_by_index_only() {
        let (_d, s) = open();
        let p = plan(&s, IN_PROCESS_SQL, Vec::new());
        assert!(
            p.iter()
                .any(|l| l.starts_with("SEARCH e USING INDEX batch_entities_open")),
            "{p:?}"
        );
        assert!(!p.iter().any(|l| l.starts_with("SCAN e")), "{p:?}");
    }

    #[test]
    fn a_bid_prefix_is_a_range_read() {
        let (_d, s) = open();
        let p = plan(
            &s,
            PREFIX_SQL,
            vec![SqlValue::Text("abcdef".into()), SqlValue::Integer(6)],
        );
        assert!(p.iter().all(|l| l.starts_with("SEARCH batches")), "{p:?}");
    }

    #[test]
    fn an_empty_in_list_matches_nothing() {
        let mut args = Vec::new();
        assert_eq!(in_list::<&str>(&mut args, &[]), "NULL");
        assert!(args.is_empty());
        assert_eq!(in_list(&mut args, &["a", "b"]), "?, ?");
        assert_eq!(args.len(), 2);
    }
}
