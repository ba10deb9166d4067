//! The nodes table in SQLite (see [`crate::store::nodes`]).

use super::SqliteStore;
use crate::store::Result;
use crate::store::nodes::*;
use rusqlite::params;

/// How long the row of a synchronous run that ended is kept.
const KEEP_ENDED: chrono::TimeDelta = chrono::TimeDelta::days(1);

impl NodeStore for SqliteStore {
    fn register_node(&self, n: &NodeInfo) -> Result<()> {
        let now = crate::store::now();
        let cutoff =
            (chrono::Utc::now() - KEEP_ENDED).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let tx = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.err(e))?;
        let write = || -> rusqlite::Result<()> {
            // A DEAD row stays: it is what fences its node off, should
            // that only have stalled.
            tx.execute(
                "DELETE FROM nodes WHERE kind IN ('synchronous', 'tick') AND status = 'STOPPED'
                     AND heartbeat_at < ?1",
                [&cutoff],
            )?;
            // A node declared dead stays dead: it must not come back to
            // life by registering again.
            tx.execute(
                "INSERT INTO nodes (worker_id, node, dc, host, pid, kind, status, workers,
                     started_at, heartbeat_at, addrs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'RUNNING', ?7, ?8, ?8, ?9)
                 ON CONFLICT (worker_id) DO UPDATE SET status = 'RUNNING', workers = ?7,
                     heartbeat_at = ?8
                 WHERE status <> 'DEAD'",
                params![
                    n.worker_id,
                    n.node,
                    n.dc,
                    crate::owner::hostname(),
                    i64::from(std::process::id()),
                    n.kind.as_str(),
                    n.workers as i64,
                    now,
                    serde_json::to_string(n.addrs).unwrap_or_else(|_| "[]".into())
                ],
            )?;
            Ok(())
        };
        write().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn beat(&self, worker_id: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE nodes SET heartbeat_at = ?2 WHERE worker_id = ?1",
                params![worker_id, crate::store::now()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn set_node_state(&self, worker_id: &str, state: NodeState) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE nodes SET status = ?2, heartbeat_at = ?3
                 WHERE worker_id = ?1 AND status <> 'DEAD'",
                params![worker_id, state.as_str(), crate::store::now()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn node_loads(&self) -> Result<Vec<NodeLoad>> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<NodeLoad>> {
            let mut st = conn.prepare(
                "SELECT w, count(DISTINCT b), sum(n) FROM (
                     SELECT worker AS w, batch AS b, 1 AS n FROM batch_entities
                     WHERE status <> 'COMPLETED' AND status = 'IN_PROCESS' AND worker IS NOT NULL
                     UNION ALL
                     SELECT worker, batch, 1 FROM batch_claimed WHERE worker IS NOT NULL
                     UNION ALL
                     SELECT owner_worker, batch_no, 0 FROM batches
                     WHERE owner_worker IS NOT NULL
                         AND status NOT IN ('DONE', 'FAILED', 'CANCELLED')
                     UNION ALL
                     SELECT p.worker, b.batch_no, 0 FROM batch_workers AS p
                     JOIN batches AS b ON b.bid = p.batch
                     WHERE b.status NOT IN ('DONE', 'FAILED', 'CANCELLED'))
                 GROUP BY w",
            )?;
            let rows = st.query_map([], |r| {
                Ok(NodeLoad {
                    worker_id: r.get(0)?,
                    batches: r.get(1)?,
                    in_process: r.get(2)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<NodeRecord>> {
            let mut st = conn.prepare(&format!(
                "SELECT {NODE_COLUMNS} FROM nodes AS n ORDER BY started_at DESC, worker_id"
            ))?;
            let rows = st.query_map([], |r| node_at(r, 0))?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }
}

/// The columns of a nodes row (table alias `n`) that [`node_at`] reads.
pub(super) const NODE_COLUMNS: &str = "n.worker_id, n.node, n.dc, n.host, n.pid, n.kind, n.status,
     n.workers, n.started_at, n.heartbeat_at, n.addrs";

/// The node whose [`NODE_COLUMNS`] start at column `at` of `r`.
pub(super) fn node_at(r: &rusqlite::Row, at: usize) -> rusqlite::Result<NodeRecord> {
    let kind: String = r.get(at + 5)?;
    let state: String = r.get(at + 6)?;
    Ok(NodeRecord {
        worker_id: r.get(at)?,
        node: r.get(at + 1)?,
        dc: r.get(at + 2)?,
        host: r.get(at + 3)?,
        pid: r.get(at + 4)?,
        kind: NodeKind::parse(&kind).unwrap_or(NodeKind::Synchronous),
        // A state this batchsh does not know: not one it may count on.
        state: NodeState::parse(&state).unwrap_or(NodeState::Dead),
        workers: r.get(at + 7)?,
        started_at: r.get(at + 8)?,
        heartbeat_at: r.get(at + 9)?,
        addrs: serde_json::from_str(&r.get::<_, String>(at + 10)?).unwrap_or_default(),
    })
}
