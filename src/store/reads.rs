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
//! (`2026-11-22T15:54:00.000Z`, see [`super::now`]), which orders correctly
//! as text. The store keeps them so, except on entity rows and claims
//! (`*_ms` columns: milliseconds since 1970-01-01 UTC), which are read as
//! such.

use super::batches::Counters;
use super::{Result, Store, StoreError};
use crate::batch::{BatchStatus, EntityStatus};
use regex::Regex;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

/// How many matching bids an "ambiguous prefix" error lists.
const AMBIGUOUS_SHOWN: usize = 5;

/// The shortest bid prefix accepted (SPEC §6).
const MIN_PREFIX: usize = 6;

/// Bids from a prefix on, in order: a range read of the primary key.
const PREFIX_SQL: &str = "SELECT bid FROM batches WHERE bid >= ?1 ORDER BY bid LIMIT ?2";

/// Batches looked at for a did-you-mean: the most recent ones.
const SUGGEST_FROM: i64 = 1000;

/// The bid of a recent batch that `given` (a bid or a prefix) is a typo
/// of: its start, as long as `given`, one edit away (two for 12 characters
/// or more), and no other as near. Bids are random hex: a looser match
/// would suggest unrelated batches.
fn nearest_bid(store: &Store, given: &str) -> Result<Option<String>> {
    let len = given.chars().count();
    if len > 36 + 2 {
        return Ok(None);
    }
    let limit = if len >= 12 { 2 } else { 1 };
    let mut st = store
        .conn()
        .prepare("SELECT bid FROM batches ORDER BY creation_time DESC LIMIT ?1")
        .map_err(|e| store.err(e))?;
    let bids = st
        .query_map([SUGGEST_FROM], |r| r.get::<_, String>(0))
        .map_err(|e| store.err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| store.err(e))?;
    let mut best: Option<(usize, String)> = None;
    let mut tie = false;
    for bid in bids {
        let start: String = bid.chars().take(len).collect();
        let d = crate::syntax::keywords::edit_distance(given, &start);
        if d > limit {
            continue;
        }
        match &best {
            Some((bd, _)) if d > *bd => {}
            Some((bd, _)) if d == *bd => tie = true,
            _ => {
                best = Some((d, bid));
                tie = false;
            }
        }
    }
    Ok(best.filter(|_| !tie).map(|(_, bid)| bid))
}

/// The bid a monitoring or control statement means: `given` (an exact bid,
/// or a unique prefix of at least 6 characters), else `last`, the last batch
/// started in this session.
pub fn resolve_bid(store: &Store, given: Option<&str>, last: Option<&str>) -> Result<String> {
    let Some(given) = given.map(str::trim) else {
        return last.map(str::to_string).ok_or(StoreError::NoLastBatch);
    };
    // Bids are lowercase UUIDs, which read the same in either case; the
    // messages quote what was typed.
    let typed = given;
    let lowered = given.to_ascii_lowercase();
    let given = lowered.as_str();
    let exact: Option<String> = store
        .conn()
        .query_row("SELECT bid FROM batches WHERE bid = ?1", [given], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| store.err(e))?;
    if let Some(bid) = exact {
        return Ok(bid);
    }
    if given.chars().count() < MIN_PREFIX {
        return Err(StoreError::BidPrefixTooShort(typed.to_string()));
    }
    // Bids with a given prefix are contiguous in the primary key's binary
    // order and start at the prefix itself: a range read, not a scan.
    let mut st = store.conn().prepare(PREFIX_SQL).map_err(|e| store.err(e))?;
    let found = st
        .query_map(params![given, AMBIGUOUS_SHOWN as i64 + 1], |r| {
            r.get::<_, String>(0)
        })
        .map_err(|e| store.err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| store.err(e))?;
    let mut matches: Vec<String> = found
        .into_iter()
        .take_while(|b| b.starts_with(given))
        .collect();
    match matches.len() {
        0 => Err(StoreError::NoBatch {
            given: typed.to_string(),
            suggestion: nearest_bid(store, given)?,
        }),
        1 => Ok(matches.remove(0)),
        n => {
            matches.truncate(AMBIGUOUS_SHOWN);
            Err(StoreError::AmbiguousBid {
                prefix: typed.to_string(),
                matches,
                more: n > AMBIGUOUS_SHOWN,
            })
        }
    }
}

/// One row of `batches`, as stored (JSON columns as text).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRow {
    pub bid: String,
    pub command: String,
    pub lu: String,
    pub fabric_command: String,
    /// JSON: where the ids come from.
    pub source: String,
    /// JSON object: options by canonical name.
    pub arguments: String,
    pub status: BatchStatus,
    pub execution_id: String,
    pub created_by: String,
    pub creation_time: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub error: Option<String>,
    pub extra_stats: Option<String>,
    /// The source is exhausted: `counts.total` is final.
    pub ids_complete: bool,
    pub estimated_total: Option<i64>,
    pub counts: Counters,
}

impl BatchRow {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

const BATCH_COLUMNS: &str = "bid, command, lu, fabric_command, source, arguments, status, \
     execution_id, created_by, creation_time, start_time, end_time, error, extra_stats, \
     ids_complete, estimated_total, total, waiting, in_process, completed, failed, cancelled, \
     added, updated, unchanged";

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
    })
}

/// One batch by its exact bid (see [`resolve_bid`] for prefixes).
pub fn read_batch(store: &Store, bid: &str) -> Result<BatchRow> {
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

/// Which batch statuses `BATCH_LIST` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// Not DONE, FAILED or CANCELLED: what `BATCH_LIST` shows by default.
    #[default]
    Active,
    All,
    /// Exactly these statuses.
    Only(Vec<BatchStatus>),
}

/// What `BATCH_LIST` asks for.
#[derive(Clone, Debug, Default)]
pub struct ListQuery<'a> {
    pub status: StatusFilter,
    /// Created at or after this time (store time text).
    pub created_from: Option<String>,
    /// Created before this time (store time text; exclusive).
    pub created_before: Option<String>,
    /// Keeps only batches whose command text matches.
    pub command: Option<&'a Regex>,
    /// At most this many rows, counted after the filters.
    pub limit: Option<usize>,
}

/// Batch rows, newest first (creation time, then bid, descending). Reads
/// only the `batches` table, walking its creation-time index.
pub fn list_batches(store: &Store, q: &ListQuery<'_>) -> Result<Vec<BatchRow>> {
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

/// A batch's counters on one node (`batch_nodes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    pub node: String,
    pub dc: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub completed: i64,
    pub failed: i64,
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
}

/// The nodes that took part in a batch, by DC, then node.
pub fn batch_node_rows(store: &Store, bid: &str) -> Result<Vec<NodeRow>> {
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

/// Two progress samples of one node, `(time_ms, done)`: the newest, and the
/// newest at least the window older than it (else the oldest). The pace
/// over the window is the difference between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaceSamples {
    pub newest: (i64, i64),
    pub reference: (i64, i64),
}

/// The samples for a node's pace over the last `window_ms` of its samples;
/// `None` when the node has no sample. Three reads of the primary key.
pub fn pace_samples(
    store: &Store,
    bid: &str,
    node: &str,
    window_ms: i64,
) -> Result<Option<PaceSamples>> {
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

/// What `BATCH_DETAILS` asks for.
#[derive(Clone, Debug, Default)]
pub struct DetailsQuery {
    /// Entity statuses to keep; `None`: all.
    pub statuses: Option<Vec<EntityStatus>>,
    /// Entity ids to keep; `None`: all.
    pub entity_ids: Option<Vec<String>>,
    /// Node ids or DC names (through `batch_nodes`) to keep; `None`: all.
    pub nodes: Option<Vec<String>>,
    /// At most this many rows; `None`: all.
    pub limit: Option<usize>,
    /// Slowest first (longest process time; entities never run last),
    /// instead of the order of arrival.
    pub slowest_first: bool,
}

/// One row of `batch_entities`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityRow {
    pub seq: i64,
    pub entity_id: String,
    pub node: Option<String>,
    pub status: EntityStatus,
    pub attempts: i64,
    pub process_time_ms: Option<i64>,
    pub error: Option<String>,
    /// JSON text, as Fabric stores it.
    pub result: Option<String>,
}

/// A batch's entity rows, in order of arrival (or slowest first): its own
/// rows, and the entities claimed as they arrived that have no row yet
/// (`batch_claimed`, IN_PROCESS).
pub fn entity_rows(store: &Store, bid: &str, q: &DetailsQuery) -> Result<Vec<EntityRow>> {
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
                process_time_ms IS NULL AS never_run
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
             SELECT seq, entity_id, node, 'IN_PROCESS', 1, NULL, NULL, NULL, 1
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
        })
    })
    .map_err(|e| store.err(e))?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(|e| store.err(e))
}

/// An entity being processed now, with its batch's details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InProcessRow {
    pub node: Option<String>,
    pub bid: String,
    pub entity_id: String,
    pub lu: String,
    /// When the current attempt started, in ms since 1970-01-01 UTC.
    pub start_time_ms: Option<i64>,
    pub execution_id: String,
    /// The batch's command text.
    pub command: String,
    /// The process that runs the batch, and its last heartbeat: the row is
    /// only being processed if that process is alive ([`crate::owner`]).
    pub owner_node: Option<String>,
    pub owner_pid: Option<i64>,
    pub heartbeat_at: Option<String>,
}

/// `CROSS JOIN` makes SQLite keep `batches` as the outer loop whatever its
/// statistics say, so entity rows are only ever searched by index.
/// Entities claimed as they arrived, without a row yet, are in
/// `batch_claimed`.
const IN_PROCESS_SQL: &str =
    "SELECT e.node AS node, b.bid AS bid, e.entity_id, b.lu, e.start_time_ms AS start_time_ms,
            b.execution_id, b.command, b.owner_node, b.owner_pid, b.heartbeat_at, e.seq AS seq
     FROM batches AS b
     CROSS JOIN batch_entities AS e
         ON e.batch = b.batch_no AND e.status <> 'COMPLETED' AND e.status = 'IN_PROCESS'
     WHERE b.in_process > 0
     UNION ALL
     SELECT c.node, b.bid, c.entity_id, b.lu, c.start_time_ms, b.execution_id, b.command,
            b.owner_node, b.owner_pid, b.heartbeat_at, c.seq
     FROM batches AS b
     CROSS JOIN batch_claimed AS c ON c.batch = b.batch_no
     WHERE b.in_process > 0
     ORDER BY node, start_time_ms, bid, seq";

/// Every entity `IN_PROCESS` now, across batches, by node, then longest at
/// work first. Only batches whose `in_process` counter is set are visited,
/// each through the index of its unfinished entities.
pub fn in_process_rows(store: &Store) -> Result<Vec<InProcessRow>> {
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
        })
    })
    .map_err(|e| store.err(e))?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(|e| store.err(e))
}

/// One row of `batch_events`: a status change of a batch or an execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub time: String,
    pub execution_id: Option<String>,
    pub node: Option<String>,
    pub status: String,
    pub note: Option<String>,
}

/// A batch's events, oldest first (in the order they were recorded, which
/// clocks of different nodes cannot disturb).
pub fn event_rows(store: &Store, bid: &str) -> Result<Vec<EventRow>> {
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

    fn plan(store: &Store, sql: &str, args: Vec<SqlValue>) -> Vec<String> {
        let mut st = store
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        st.query_map(params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn open() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("store.db")).unwrap();
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
