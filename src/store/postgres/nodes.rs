//! The nodes table on PostgreSQL (see [`crate::store::nodes`]).
//!
//! Nodes on several hosts share the table, and their clocks may disagree:
//! heartbeats are stamped with the database's clock (`batchsh_now()`), and
//! whether a node is silent is judged on that clock too. A node as
//! [`NodeStore::nodes`] gives it carries its heartbeat as this host's
//! clock reads it (the database's stamp moved by how far the two clocks
//! are apart), so that [`NodeRecord::alive`], and the age SHOW NODES
//! prints, measure the heartbeat's age on the database's clock.
//!
//! Declaring a node dead ([`declare_dead`]) is one guarded `UPDATE`: of
//! several nodes that find it dead at the same moment, the row lock lets
//! one declare it, and the others see it declared already.

use super::PgStore;
use crate::store::Result;
use crate::store::nodes::*;
use postgres::GenericClient;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the row of a synchronous run that ended is kept (a day).
const KEEP_ENDED_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a measure of the distance between this host's clock and the
/// database's is used before it is taken again.
const SKEW_FOR: Duration = Duration::from_secs(60);

impl NodeStore for PgStore {
    fn register_node(&self, n: &NodeInfo) -> Result<()> {
        let addrs = serde_json::to_string(n.addrs).unwrap_or_else(|_| "[]".into());
        let (host, pid) = (crate::owner::hostname(), i64::from(std::process::id()));
        self.tx(|tx| {
            // A DEAD row stays: it is what fences its node off, should
            // that only have stalled.
            tx.execute(
                "DELETE FROM nodes WHERE kind IN ('synchronous', 'tick') AND status = 'STOPPED'
                     AND heartbeat_at < batchsh_ago($1)",
                &[&KEEP_ENDED_MS],
            )?;
            // A node declared dead stays dead: it must not come back to
            // life by registering again.
            tx.execute(
                "INSERT INTO nodes (worker_id, node, dc, host, pid, kind, status, workers,
                     started_at, heartbeat_at, addrs)
                 SELECT $1, $2, $3, $4, $5, $6, 'RUNNING', $7, t.now, t.now, $8
                 FROM (SELECT batchsh_now() AS now) AS t
                 ON CONFLICT (worker_id) DO UPDATE SET status = 'RUNNING',
                     workers = excluded.workers, heartbeat_at = excluded.heartbeat_at
                 WHERE nodes.status <> 'DEAD'",
                &[
                    &n.worker_id,
                    &n.node,
                    &n.dc,
                    &host,
                    &pid,
                    &n.kind.as_str(),
                    &(n.workers as i64),
                    &addrs,
                ],
            )?;
            Ok(())
        })
    }

    fn beat(&self, worker_id: &str) -> Result<()> {
        let mut client = self.client();
        let mut beat = || {
            let st = self.cached(
                &mut *client,
                "UPDATE nodes SET heartbeat_at = batchsh_now() WHERE worker_id = $1",
            )?;
            client.execute(&st, &[&worker_id])
        };
        beat().map(drop).map_err(|e| self.err(e))
    }

    fn set_node_state(&self, worker_id: &str, state: NodeState) -> Result<()> {
        self.client()
            .execute(
                "UPDATE nodes SET status = $2, heartbeat_at = batchsh_now()
                 WHERE worker_id = $1 AND status <> 'DEAD'",
                &[&worker_id, &state.as_str()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let mut client = self.client();
        // Byte order, as SQLite's (the database's own may be a locale's).
        self.nodes_on(
            &mut *client,
            "ORDER BY n.started_at COLLATE \"C\" DESC, n.worker_id COLLATE \"C\"",
            &[],
        )
        .map_err(|e| self.err(e))
    }

    fn node_loads(&self) -> Result<Vec<NodeLoad>> {
        let rows = self
            .client()
            .query(
                "SELECT w, count(DISTINCT b), coalesce(sum(n), 0)::bigint FROM (
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
                     WHERE b.status NOT IN ('DONE', 'FAILED', 'CANCELLED')) AS loads
                 GROUP BY w",
                &[],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| NodeLoad {
                worker_id: r.get(0),
                batches: r.get(1),
                in_process: r.get(2),
            })
            .collect())
    }
}

/// The columns of a nodes row (table alias `n`) that [`PgStore::nodes_on`]
/// reads.
pub(super) const NODE_COLUMNS: &str = "n.worker_id, n.node, n.dc, n.host, n.pid, n.kind, n.status,
     n.workers, n.started_at, n.heartbeat_at, n.addrs";

impl PgStore {
    /// The nodes that `rest` (what follows `FROM nodes AS n`: joins, a
    /// condition, an order) picks, each with its heartbeat on this host's
    /// clock (see the module doc); works in a transaction as outside one.
    pub(super) fn nodes_on(
        &self,
        on: &mut impl GenericClient,
        rest: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> std::result::Result<Vec<NodeRecord>, postgres::Error> {
        let rows = on.query(
            &format!("SELECT {NODE_COLUMNS} FROM nodes AS n {rest}"),
            params,
        )?;
        let skew = self.skew(on)?;
        Ok(rows
            .iter()
            .map(|r| {
                let kind: &str = r.get(5);
                let state: &str = r.get(6);
                let heartbeat_at: String = r.get(9);
                NodeRecord {
                    worker_id: r.get(0),
                    node: r.get(1),
                    dc: r.get(2),
                    host: r.get(3),
                    pid: r.get(4),
                    kind: NodeKind::parse(kind).unwrap_or(NodeKind::Synchronous),
                    // A state this batchsh does not know: not one it may
                    // count on.
                    state: NodeState::parse(state).unwrap_or(NodeState::Dead),
                    workers: r.get(7),
                    started_at: r.get(8),
                    heartbeat_at: moved(&heartbeat_at, skew),
                    addrs: serde_json::from_str(r.get(10)).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// How far this host's clock is ahead of the database's, measured now
    /// and then (an estimate within a round trip, which is nothing next to
    /// the seconds a heartbeat may be late).
    pub(super) fn skew(
        &self,
        on: &mut impl GenericClient,
    ) -> std::result::Result<chrono::TimeDelta, postgres::Error> {
        // By server, for a process that opens stores on two of them.
        static SKEWS: Mutex<Vec<(String, Instant, chrono::TimeDelta)>> = Mutex::new(Vec::new());
        let key = self.shown.to_string_lossy().into_owned();
        let known = |skews: &[(String, Instant, chrono::TimeDelta)]| {
            skews
                .iter()
                .find(|(k, at, _)| *k == key && at.elapsed() < SKEW_FOR)
                .map(|(_, _, d)| *d)
        };
        if let Some(d) = known(&SKEWS.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(d);
        }
        let before = chrono::Utc::now();
        let db_ms: i64 = on.query_one("SELECT batchsh_now_ms()", &[])?.get(0);
        let after = chrono::Utc::now();
        let here_ms = before.timestamp_millis() + (after - before).num_milliseconds() / 2;
        let d = chrono::TimeDelta::milliseconds(here_ms - db_ms);
        let mut skews = SKEWS.lock().unwrap_or_else(|e| e.into_inner());
        skews.retain(|(k, _, _)| *k != key);
        skews.push((key, Instant::now(), d));
        Ok(d)
    }
}

/// A stamp of the database's clock as this host's clock reads it.
pub(super) fn moved(stamp: &str, skew: chrono::TimeDelta) -> String {
    match chrono::DateTime::parse_from_rfc3339(stamp) {
        Ok(t) if skew != chrono::TimeDelta::zero() => {
            crate::store::stamp(t.with_timezone(&chrono::Utc) + skew)
        }
        _ => stamp.to_string(),
    }
}

/// Node `worker` is dead, as another node found: it writes nothing more
/// (the fence of a batch write reads its row, and a step checks it again
/// as it ends). `silent`: only if its heartbeat is older than the dead-after time on
/// the database's clock (a node judged by its heartbeat, which may have
/// beaten since). True if this call declared it: of several nodes that
/// judge it at once, one does; the others wait on its row, then find it
/// dead already (or beating again).
pub(super) fn declare_dead(
    on: &mut impl GenericClient,
    worker: &str,
    silent: bool,
) -> std::result::Result<bool, postgres::Error> {
    let dead_after = i64::try_from(crate::knobs::dead_after().as_millis()).unwrap_or(i64::MAX);
    let declared = on.execute(
        "UPDATE nodes SET status = 'DEAD'
         WHERE worker_id = $1 AND status IN ('RUNNING', 'STOPPING')
             AND (NOT $2 OR heartbeat_at < batchsh_ago($3))",
        &[&worker, &silent, &dead_after],
    )?;
    Ok(declared == 1)
}

/// Runs `f` on `n` threads at once (once all are ready), each with a
/// store of its own on `url` and its number; gives their results in the
/// threads' order.
#[cfg(test)]
pub(super) fn race<T: Send + 'static>(
    url: &str,
    n: usize,
    f: impl Fn(&PgStore, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    use std::sync::{Arc, Barrier};
    let (f, start) = (Arc::new(f), Arc::new(Barrier::new(n)));
    let threads: Vec<_> = (0..n)
        .map(|k| {
            let (url, f, start) = (url.to_string(), f.clone(), start.clone());
            std::thread::spawn(move || {
                let store = PgStore::open(&url, crate::store::Upgrades::Silent)
                    .expect("the test store opens");
                start.wait();
                f(&store, k)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("the thread ends"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::fresh;
    use super::*;

    fn node(worker_id: &str, kind: NodeKind) -> NodeInfo<'_> {
        NodeInfo {
            worker_id,
            node: "n1",
            dc: "dc",
            kind,
            workers: 4,
            addrs: &[],
        }
    }

    #[test]
    fn a_dead_node_stays_dead_and_old_stopped_runs_go() {
        let Some(s) = fresh("a_dead_node_stays_dead_and_old_stopped_runs_go") else {
            return;
        };
        s.register_node(&node("w1", NodeKind::Worker)).unwrap();
        s.register_node(&node("old", NodeKind::Synchronous))
            .unwrap();
        s.client()
            .execute(
                "UPDATE nodes SET status = 'STOPPED', heartbeat_at = '2020-01-01T00:00:00.000Z'
                 WHERE worker_id = 'old'",
                &[],
            )
            .unwrap();
        assert!(declare_dead(&mut *s.client(), "w1", false).unwrap());
        assert!(!declare_dead(&mut *s.client(), "w1", false).unwrap());
        s.set_node_state("w1", NodeState::Stopped).unwrap();
        s.register_node(&node("w1", NodeKind::Worker)).unwrap();
        let nodes = s.nodes().unwrap();
        assert_eq!(nodes.len(), 1, "the stopped run of 2020 went");
        assert_eq!(nodes[0].state, NodeState::Dead);
        assert!(!nodes[0].alive());
    }

    /// The heartbeat's age is the database's: a worker of another host that
    /// beat a minute ago on the database's clock is dead whatever this
    /// host's clock says, and one that just beat is alive.
    #[test]
    fn silence_is_judged_on_the_databases_clock() {
        let Some(s) = fresh("silence_is_judged_on_the_databases_clock") else {
            return;
        };
        s.register_node(&node("w1", NodeKind::Worker)).unwrap();
        s.client()
            .execute(
                "UPDATE nodes SET host = 'elsewhere', pid = 7, heartbeat_at = batchsh_ago(60000)",
                &[],
            )
            .unwrap();
        assert!(!s.nodes().unwrap()[0].alive());
        assert!(declare_dead(&mut *s.client(), "w1", true).unwrap());
        s.client()
            .execute(
                "UPDATE nodes SET status = 'RUNNING', heartbeat_at = batchsh_now()",
                &[],
            )
            .unwrap();
        assert!(s.nodes().unwrap()[0].alive());
        assert!(
            !declare_dead(&mut *s.client(), "w1", true).unwrap(),
            "a node that beats is not found silent"
        );
        assert_eq!(
            moved("2026-01-01T00:00:00.000Z", chrono::TimeDelta::seconds(2)),
            "2026-01-01T00:00:02.000Z"
        );
    }

    /// A database whose clock is a minute behind this host's: a worker of
    /// another host that has just beaten is alive, judged on the
    /// database's clock, though its stamp is a minute old on this one's.
    #[test]
    fn a_database_clock_behind_this_hosts_does_not_make_nodes_dead() {
        let Some(s) = fresh("a_database_clock_behind_this_hosts_does_not_make_nodes_dead") else {
            return;
        };
        s.client()
            .batch_execute(
                "CREATE OR REPLACE FUNCTION batchsh_now() RETURNS text LANGUAGE sql AS $$
                     SELECT to_char((clock_timestamp() - interval '1 minute') AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
                 $$;
                 CREATE OR REPLACE FUNCTION batchsh_now_ms() RETURNS bigint LANGUAGE sql AS $$
                     SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000
                 $$;",
            )
            .unwrap();
        s.register_node(&node("w1", NodeKind::Worker)).unwrap();
        s.client()
            .execute("UPDATE nodes SET host = 'elsewhere', pid = 7", &[])
            .unwrap();
        let stored: String = s
            .client()
            .query_one("SELECT heartbeat_at FROM nodes", &[])
            .unwrap()
            .get(0);
        assert!(
            !crate::owner::beating("elsewhere", 7, &stored),
            "on this host's clock the stamp is old"
        );
        let n = &s.nodes().unwrap()[0];
        assert!(n.alive(), "{} (stored {stored})", n.heartbeat_at);
    }

    #[test]
    fn node_loads_count_batches_and_held_entities() {
        let Some(s) = fresh("node_loads_count_batches_and_held_entities") else {
            return;
        };
        s.client()
            .batch_execute(
                "INSERT INTO batches (bid, batch_no, command, lu, fabric_command, source, arguments,
                     status, execution_id, created_by, creation_time, owner_worker)
                 VALUES ('b1', 1, 'BATCH a', 'L', 'echo ?', '{}', '{}', 'IN_PROGRESS', 'e1', 'n1',
                     '2026-01-01T00:00:00.000Z', 'w1'),
                        ('b2', 2, 'BATCH b', 'L', 'echo ?', '{}', '{}', 'DONE', 'e1', 'n1',
                     '2026-01-01T00:00:00.000Z', 'w3');
                 INSERT INTO batch_entities (batch, seq, entity_id, status, worker)
                 VALUES (1, 1, 'a', 'IN_PROCESS', 'w2'), (1, 2, 'b', 'COMPLETED', 'w2');
                 INSERT INTO batch_claims (batch, first_seq, node, start_time_ms, open, ids, worker)
                 VALUES (1, 3, 'n2', 0, 1, '[\"c\", \"d\"]', 'w2');
                 INSERT INTO batch_workers (batch, worker, joined_at)
                 VALUES ('b1', 'w4', '2026-01-01T00:00:00.000Z');",
            )
            .unwrap();
        let mut loads = s.node_loads().unwrap();
        loads.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        let got: Vec<(&str, i64, i64)> = loads
            .iter()
            .map(|l| (l.worker_id.as_str(), l.batches, l.in_process))
            .collect();
        assert_eq!(got, [("w1", 1, 0), ("w2", 1, 3), ("w4", 1, 0)]);
    }

    /// Four workers, each with a store of its own, find one silent node
    /// at the same moment: exactly one declares it dead.
    #[test]
    fn of_workers_judging_one_dead_node_at_once_one_declares_it() {
        let Some(s) = fresh("of_workers_judging_one_dead_node_at_once_one_declares_it") else {
            return;
        };
        s.register_node(&node("w1", NodeKind::Worker)).unwrap();
        s.client()
            .execute("UPDATE nodes SET heartbeat_at = batchsh_ago(60000)", &[])
            .unwrap();
        let won = race(&s.url, 4, |store, _| {
            store.tx(|tx| Ok(declare_dead(tx, "w1", true)?)).unwrap()
        })
        .into_iter()
        .filter(|&w| w)
        .count();
        assert_eq!(won, 1);
        assert_eq!(s.nodes().unwrap()[0].state, NodeState::Dead);
    }
}
