//! The queue of asynchronous batches on PostgreSQL (see
//! [`crate::store::queue`]).
//!
//! Workers on several hosts poll the queue at once. A worker takes a
//! waiting batch's job by locking its row with `FOR UPDATE SKIP LOCKED`
//! and moving it on in the same statement: of workers asking at once, one
//! takes it, and the others pass it by without waiting. Entering a batch
//! (`MAX_NODES`) counts the batch's nodes under a lock of that batch's
//! own, so that two workers entering at once are counted one after the
//! other.

use super::notices::notify;
use super::{PgStore, TxError};
use crate::batch::BatchStatus;
use crate::batch::StatusError;
use crate::store::Notice;
use crate::store::batches::BatchState;
use crate::store::queue::*;
use crate::store::{Result, StoreError};
use postgres::{GenericClient, Row};

/// The columns of a batches row that [`async_batch`] reads.
const ASYNC_COLUMNS: &str = "bid, execution_id, status, command, ids_complete, placement";

/// The first key of the advisory locks that [`QueueStore::enter_batch`]
/// takes, one per batch (the second key is a hash of its bid): "ENTR".
const ENTER_LOCK: i32 = 0x454e_5452;

fn async_batch(r: &Row) -> std::result::Result<AsyncBatch, StatusError> {
    Ok(AsyncBatch::from_stored(
        r.get(0),
        r.get(1),
        r.get::<_, &str>(2).parse()?,
        r.get(3),
        r.get(4),
        r.get(5),
    ))
}

impl PgStore {
    /// A status text that names no status (a damaged store, or one a
    /// newer batchsh wrote), as the store's error.
    pub(super) fn unreadable(&self, e: StatusError) -> StoreError {
        StoreError::Postgres {
            store: self.target.shown().to_string(),
            message: e.to_string(),
        }
    }
}

/// Records an event of batch `bid` (the time is this host's, as the
/// events' times are for display only).
pub(super) fn event(
    on: &mut impl GenericClient,
    bid: &str,
    execution_id: &str,
    node: &str,
    status: BatchStatus,
    note: Option<&str>,
) -> std::result::Result<(), postgres::Error> {
    on.execute(
        "INSERT INTO batch_events (bid, execution_id, time, node, status, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &bid,
            &execution_id,
            &crate::store::now(),
            &node,
            &status.as_str(),
            &note,
        ],
    )
    .map(drop)
}

impl QueueStore for PgStore {
    fn waiting_jobs(&self) -> Result<Vec<AsyncBatch>> {
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT {ASYNC_COLUMNS} FROM batches WHERE status = 'WAITING_FOR_JOB'
                     ORDER BY batch_no"
                ),
                &[],
            )
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| async_batch(r).map_err(|e| self.unreadable(e)))
            .collect()
    }

    fn take_job(
        &self,
        bid: &str,
        node: &str,
        worker: &str,
        execution_id: &str,
        processes: bool,
    ) -> Result<Option<AsyncBatch>> {
        let pid = i64::from(std::process::id());
        self.tx(|tx| {
            // The owner's heartbeat is the database's clock's, as every
            // liveness stamp.
            let Some(row) = tx.query_opt(
                &format!(
                    "UPDATE batches SET status = 'NEW', execution_id = $2, owner_node = $3,
                         owner_pid = $4, heartbeat_at = batchsh_now(), owner_worker = NULL,
                         requested = NULL
                     WHERE bid = (SELECT bid FROM batches
                                  WHERE bid = $1 AND status = 'WAITING_FOR_JOB'
                                  FOR UPDATE SKIP LOCKED)
                         AND status = 'WAITING_FOR_JOB'
                     RETURNING {ASYNC_COLUMNS}"
                ),
                &[&bid, &execution_id, &node, &pid],
            )?
            else {
                return Ok(None);
            };
            let b = async_batch(&row).map_err(|e| TxError::Store(self.unreadable(e)))?;
            if processes {
                tx.execute(
                    "INSERT INTO batch_workers (batch, worker, joined_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&b.bid, &worker, &crate::store::now()],
                )?;
            }
            event(
                tx,
                &b.bid,
                execution_id,
                node,
                BatchStatus::New,
                Some(TAKEN_NOTE),
            )?;
            // The other workers, on every host, may help with it at once.
            notify(tx, Notice::Work, &b.bid)?;
            Ok(Some(b))
        })
    }

    fn async_batches(&self) -> Result<Vec<(AsyncBatch, BatchState)>> {
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT {ASYNC_COLUMNS}, owner_node, owner_pid, heartbeat_at, requested,
                         owner_worker
                     FROM batches
                     WHERE status IN ('NEW', 'GENERATE_IID_LIST', 'IN_PROGRESS', 'PAUSED')
                         AND ((arguments::jsonb -> 'ASYNC') IN ('true'::jsonb, '1'::jsonb)
                              OR open IS NOT NULL)
                     ORDER BY batch_no"
                ),
                &[],
            )
            .map_err(|e| self.err(e))?;
        let read = |r: &Row| -> std::result::Result<(AsyncBatch, BatchState), StatusError> {
            let b = async_batch(r)?;
            let state = b.state(
                r.get(6),
                r.get(7),
                // As stored: a takeover compares it with the row's.
                r.get(8),
                r.get::<_, Option<&str>>(9).map(str::parse).transpose()?,
                r.get(10),
            );
            Ok((b, state))
        };
        rows.iter()
            .map(|r| read(r).map_err(|e| self.unreadable(e)))
            .collect()
    }

    fn queue_job(&self, bid: &str, node: &str) -> Result<()> {
        self.tx(|tx| {
            let Some(row) = tx.query_opt(
                "UPDATE batches SET status = 'WAITING_FOR_JOB', owner_node = NULL,
                     owner_pid = NULL, owner_worker = NULL, end_time = NULL
                 WHERE bid = $1 RETURNING execution_id",
                &[&bid],
            )?
            else {
                return Err(TxError::Store(StoreError::no_batch(bid)));
            };
            let execution_id: String = row.get(0);
            tx.execute("DELETE FROM batch_workers WHERE batch = $1", &[&bid])?;
            event(
                tx,
                bid,
                &execution_id,
                node,
                BatchStatus::WaitingForJob,
                Some(QUEUED_NOTE),
            )?;
            notify(tx, Notice::Work, bid)?;
            Ok(())
        })
    }

    fn enter_batch(
        &self,
        bid: &str,
        worker: &str,
        max_nodes: Option<usize>,
        owner: bool,
    ) -> Result<bool> {
        self.tx(|tx| {
            if let (Some(max), false) = (max_nodes, owner) {
                // Workers entering one batch count one after the other; a
                // lock of the batch's own, not its row, which its run
                // writes at every step.
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    &[&ENTER_LOCK, &bid],
                )?;
                let others = self.nodes_on(
                    tx,
                    "JOIN batch_workers AS p ON p.worker = n.worker_id
                     WHERE p.batch = $1 AND p.worker <> $2",
                    &[&bid, &worker],
                )?;
                if others.iter().filter(|n| n.alive()).count() >= max {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO batch_workers (batch, worker, joined_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&bid, &worker, &crate::store::now()],
            )?;
            Ok(true)
        })
    }

    fn leave_batch(&self, bid: &str, worker: &str) -> Result<()> {
        self.client()
            .execute(
                "DELETE FROM batch_workers WHERE batch = $1 AND worker = $2",
                &[&bid, &worker],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn batch_job(&self, bid: &str) -> Result<Option<BatchJob>> {
        let row = self
            .client()
            .query_opt(
                "SELECT name, status, owner_worker, start_time, end_time FROM jobs
                 WHERE type = 'BATCH_JOB' AND uid = $1",
                &[&bid],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| BatchJob::from_stored(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::nodes::race;
    use super::super::testing::fresh;
    use super::*;
    use crate::batch::JobStatus;
    use crate::store::NodeStore;
    use crate::store::nodes::{LiveHere, NodeInfo, NodeKind};

    /// An asynchronous batch waiting for its job, with its job, as
    /// creating a queued batch leaves them (`arguments`: its options).
    fn queued(s: &PgStore, bid: &str, arguments: &str) {
        s.client()
            .execute(
                "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments,
                     status, execution_id, created_by, creation_time, placement)
                 VALUES ($1, 'BATCH x', 'L', 'echo ?', '{}', $2, 'WAITING_FOR_JOB', 'e0', 'n0',
                     '2026-01-01T00:00:00.000Z', '{\"max_nodes\": 1}')",
                &[&bid, &arguments],
            )
            .unwrap();
        s.client()
            .execute(
                "INSERT INTO jobs (type, name, uid, status, created_at)
                 VALUES ('BATCH_JOB', 'BATCH_JOB_L', $1, 'WAITING', '2026-01-01T00:00:00.000Z')",
                &[&bid],
            )
            .unwrap();
    }

    /// Registers worker `id` of node n1.
    fn worker(s: &PgStore, id: &str) {
        s.register_node(&NodeInfo {
            worker_id: id,
            node: "n1",
            dc: "dc",
            kind: NodeKind::Worker,
            workers: 2,
            addrs: &[],
        })
        .unwrap();
    }

    fn workers_of(s: &PgStore, bid: &str) -> Vec<String> {
        s.client()
            .query(
                "SELECT worker FROM batch_workers WHERE batch = $1 ORDER BY worker",
                &[&bid],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    #[test]
    fn a_waiting_job_is_taken_once_and_queued_again() {
        let Some(s) = fresh("a_waiting_job_is_taken_once_and_queued_again") else {
            return;
        };
        queued(&s, "b1", r#"{"ASYNC": true}"#);
        let waiting = s.waiting_jobs().unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            (waiting[0].status, waiting[0].placement.max_nodes),
            (BatchStatus::WaitingForJob, Some(1))
        );
        assert!(s.async_batches().unwrap().is_empty());
        let b = s.take_job("b1", "n1", "w1", "e1", true).unwrap().unwrap();
        assert_eq!(
            (b.status, b.execution_id.as_str()),
            (BatchStatus::New, "e1")
        );
        assert_eq!(s.take_job("b1", "n2", "w2", "e2", true).unwrap(), None);
        assert!(s.waiting_jobs().unwrap().is_empty());
        assert_eq!(workers_of(&s, "b1"), ["w1"]);
        let serving = s.async_batches().unwrap();
        assert_eq!(serving.len(), 1);
        let (b, state) = &serving[0];
        assert_eq!(b.bid, "b1");
        assert_eq!(
            (state.owner_node.as_deref(), state.owner_pid),
            (Some("n1"), Some(i64::from(std::process::id())))
        );
        assert!(state.heartbeat_at.is_some());
        assert_eq!(
            s.find_async("b1").unwrap().unwrap().status,
            BatchStatus::New
        );
        let job = s.batch_job("b1").unwrap().unwrap();
        assert_eq!(
            (job.name.as_str(), job.status),
            ("BATCH_JOB_L", JobStatus::InProcess)
        );
        let event: String = s
            .client()
            .query_one(
                "SELECT note FROM batch_events WHERE bid = 'b1' AND status = 'NEW'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(event, "job taken");
        s.queue_job("b1", "n1").unwrap();
        let waiting = s.waiting_jobs().unwrap();
        assert_eq!(waiting.len(), 1);
        assert!(workers_of(&s, "b1").is_empty());
        assert_eq!(
            s.batch_job("b1").unwrap().unwrap().status,
            JobStatus::Waiting
        );
        // A worker whose affinity keeps it from processing owns the batch
        // without taking part.
        s.take_job("b1", "n2", "w2", "e2", false).unwrap().unwrap();
        assert!(workers_of(&s, "b1").is_empty());
        assert!(matches!(
            s.queue_job("nope", "n1"),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(s.batch_job("nope").unwrap(), None);
    }

    /// Asynchronous batches are those given ASYNC=true, and open batches;
    /// a synchronous one is no worker's.
    #[test]
    fn async_batches_are_the_asynchronous_and_open_ones() {
        let Some(s) = fresh("async_batches_are_the_asynchronous_and_open_ones") else {
            return;
        };
        queued(&s, "b1", r#"{"ASYNC": true}"#);
        queued(&s, "b2", r#"{"ASYNC": false}"#);
        queued(&s, "b3", "{}");
        s.client()
            .batch_execute(
                "UPDATE batches SET status = 'IN_PROGRESS';
                 UPDATE batches SET open = 1 WHERE bid = 'b3'",
            )
            .unwrap();
        let bids: Vec<String> = s
            .async_batches()
            .unwrap()
            .into_iter()
            .map(|(b, _)| b.bid)
            .collect();
        assert_eq!(bids, ["b1", "b3"]);
    }

    #[test]
    fn max_nodes_counts_the_live_nodes_of_a_batch() {
        let Some(s) = fresh("max_nodes_counts_the_live_nodes_of_a_batch") else {
            return;
        };
        queued(&s, "b1", r#"{"ASYNC": true}"#);
        let _live: Vec<LiveHere> = ["mq-w1", "mq-w2"]
            .iter()
            .map(|w| LiveHere::new(w))
            .collect();
        for w in ["mq-w1", "mq-w2", "mq-w3"] {
            worker(&s, w);
        }
        assert!(s.enter_batch("b1", "mq-w1", Some(1), false).unwrap());
        assert!(
            s.enter_batch("b1", "mq-w1", Some(1), false).unwrap(),
            "it does not count itself"
        );
        assert!(!s.enter_batch("b1", "mq-w2", Some(1), false).unwrap());
        assert!(s.enter_batch("b1", "mq-w2", None, false).unwrap());
        s.leave_batch("b1", "mq-w2").unwrap();
        assert!(
            s.enter_batch("b1", "mq-w2", Some(1), true).unwrap(),
            "the owner takes part whatever the count"
        );
        s.leave_batch("b1", "mq-w1").unwrap();
        s.leave_batch("b1", "mq-w2").unwrap();
        // mq-w3 is not alive here (no LiveHere): it does not count.
        assert!(s.enter_batch("b1", "mq-w3", Some(1), false).unwrap());
        assert!(s.enter_batch("b1", "mq-w1", Some(1), false).unwrap());
        assert_eq!(workers_of(&s, "b1"), ["mq-w1", "mq-w3"]);
    }

    /// Four workers, each with a store of its own, ask for one queued
    /// batch at the same moment: exactly one takes it.
    #[test]
    fn of_workers_taking_one_job_at_once_one_takes_it() {
        let Some(s) = fresh("of_workers_taking_one_job_at_once_one_takes_it") else {
            return;
        };
        queued(&s, "b1", r#"{"ASYNC": true}"#);
        let taken = race(&s.url, 4, |store, k| {
            let (worker, execution) = (format!("w{k}"), format!("e{k}"));
            store
                .take_job("b1", "n1", &worker, &execution, true)
                .unwrap()
                .map(|b| (worker, b.execution_id))
        });
        let winners: Vec<_> = taken.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "{winners:?}");
        let (worker, execution) = &winners[0];
        assert_eq!(workers_of(&s, "b1"), [worker.as_str()]);
        let events: i64 = s
            .client()
            .query_one(
                "SELECT count(*) FROM batch_events WHERE bid = 'b1' AND note = 'job taken'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(events, 1);
        assert_eq!(&s.async_batches().unwrap()[0].0.execution_id, execution);
    }

    /// A batch whose row another transaction holds is passed by at once,
    /// and taken once that transaction is over.
    #[test]
    fn a_job_whose_row_is_held_is_passed_by_without_waiting() {
        let Some(s) = fresh("a_job_whose_row_is_held_is_passed_by_without_waiting") else {
            return;
        };
        queued(&s, "b1", r#"{"ASYNC": true}"#);
        let other = PgStore::open(&s.url, crate::store::Upgrades::Silent).unwrap();
        let mut client = other.client();
        let mut holding = client.transaction().unwrap();
        holding
            .execute("SELECT 1 FROM batches WHERE bid = 'b1' FOR UPDATE", &[])
            .unwrap();
        // Waiting would wait for this very thread: fail instead of hanging.
        s.client()
            .batch_execute("SET lock_timeout = '10s'")
            .unwrap();
        assert_eq!(s.take_job("b1", "n1", "w1", "e1", true).unwrap(), None);
        holding.rollback().unwrap();
        assert!(s.take_job("b1", "n1", "w1", "e1", true).unwrap().is_some());
    }

    /// Four workers enter a batch of MAX_NODES=2 at once: two get in.
    #[test]
    fn workers_entering_at_once_are_counted_one_after_the_other() {
        let Some(s) = fresh("workers_entering_at_once_are_counted_one_after_the_other") else {
            return;
        };
        queued(&s, "b1", r#"{"ASYNC": true}"#);
        let workers = ["ea-w0", "ea-w1", "ea-w2", "ea-w3"];
        let _live: Vec<LiveHere> = workers.iter().map(|w| LiveHere::new(w)).collect();
        for w in workers {
            worker(&s, w);
        }
        let entered = race(&s.url, 4, move |store, k| {
            store.enter_batch("b1", workers[k], Some(2), false).unwrap()
        });
        assert_eq!(entered.iter().filter(|&&e| e).count(), 2, "{entered:?}");
        assert_eq!(workers_of(&s, "b1").len(), 2);
    }
}
