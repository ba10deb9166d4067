//! The SQL the batch writes share on PostgreSQL: the fence, a status
//! change and its event, claims turned into rows, orphans requeued,
//! counters recounted, statuses read back.
//!
//! SQLite runs each write alone (an IMMEDIATE transaction); here several
//! transactions run at once, so what a write checks is locked until it
//! commits: a run's step holds its batch row `FOR KEY SHARE` (the steps
//! of every node go on side by side, and a takeover, which holds the row
//! `FOR UPDATE` before it changes it, waits for them and they for it),
//! and every other write of a run, and every takeover, holds it `FOR
//! UPDATE`, which puts it between steps. The owner's heartbeat, its
//! batch's requests and its MAX_WORKERS are plain updates, which a step's
//! hold lets through: an update that waited for every node's step would
//! stop every step begun after it, on every node, until it had its turn.

use super::super::nodes::declare_dead;
use super::super::notices::notify;
pub(super) use super::super::queue::event;
use super::super::{PgStore, TxError};
use crate::batch::BatchStatus;
use crate::batch::Counters;
use crate::store::batches::*;
use crate::store::holders::Holders;
use crate::store::nodes::{NodeKind, NodeRecord, NodeState};
use crate::store::{Notice, Result, StoreError};
use postgres::Transaction;

pub(super) type TxResult<T> = std::result::Result<T, TxError>;

/// A status (or request) text from the store; one this batchsh does not
/// know (a damaged store, or one a newer batchsh wrote) fails the read.
pub(super) fn parsed<T>(s: &PgStore, text: &str) -> std::result::Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| StoreError::Postgres {
        store: s.shown.display().to_string(),
        message: e.to_string(),
    })
}

/// How a run's write holds its batch row while it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// A step: beside the other nodes' steps, not beside a takeover.
    Share,
    /// A write that changes the batch's row or its counters absolutely:
    /// alone.
    Update,
}

/// What the fence read of the batch's row, locked as [`Hold`] says.
pub(super) struct Fence {
    /// The batch's number, which keys its entity rows and claims.
    pub(super) no: i64,
    /// The batch's status, which stays as it is until the write commits.
    pub(super) status: BatchStatus,
    /// The batch's heartbeat is older than [`beat_every_ms`].
    pub(super) beat_due: bool,
    /// Every id of the batch is stored.
    pub(super) ids_complete: bool,
}

/// How often a run's steps write its batch's heartbeat: the batch row is
/// the one row every node's step holds, so its owner changes it only
/// when the heartbeat would age (a tenth of the time after which an owner
/// counts as dead, at most a second), not at every step.
pub(super) fn beat_every_ms() -> i64 {
    let tenth = crate::knobs::dead_after().as_millis() / 10;
    i64::try_from(tenth).unwrap_or(1000).clamp(0, 1000)
}

pub(super) const FENCE_SHARE: &str = "SELECT batch_no, execution_id, owner_node, owner_pid, status,
         EXISTS (SELECT 1 FROM nodes WHERE worker_id = $2 AND status = 'DEAD'),
         heartbeat_at IS NULL OR heartbeat_at < batchsh_ago($3), ids_complete
     FROM batches WHERE bid = $1 FOR KEY SHARE";

const FENCE_UPDATE: &str = "SELECT batch_no, execution_id, owner_node, owner_pid, status,
         EXISTS (SELECT 1 FROM nodes WHERE worker_id = $2 AND status = 'DEAD'),
         heartbeat_at IS NULL OR heartbeat_at < batchsh_ago($3), ids_complete
     FROM batches WHERE bid = $1 FOR UPDATE";

impl PgStore {
    /// Runs `f` in one transaction for `run`, if the batch's current
    /// execution is still the run's (its fencing token) and its node was
    /// not declared dead; else it writes nothing and says who runs the
    /// batch now ([`StoreError::TakenOver`]). `f` is given what the fence
    /// read, and may run again (see [`PgStore::tx`]).
    pub(super) fn fenced<T>(
        &self,
        run: RunRef,
        hold: Hold,
        mut f: impl FnMut(&mut Transaction<'_>, &Fence) -> TxResult<T>,
    ) -> Result<T> {
        let sql = match hold {
            Hold::Share => FENCE_SHARE,
            Hold::Update => FENCE_UPDATE,
        };
        self.tx(|tx| {
            let st = self.cached(tx, sql)?;
            let Some(row) = tx.query_opt(&st, &[&run.bid, &run.worker, &beat_every_ms()])? else {
                return Err(StoreError::no_batch(run.bid).into());
            };
            let execution_id: String = row.get(1);
            let status: String = row.get(4);
            let dead: bool = row.get(5);
            // Another run holds the batch now, or another node declared
            // this one dead.
            if let Some(refusal) =
                run.fence(&execution_id, dead, &status, || (row.get(2), row.get(3)))
            {
                return Err(refusal.into());
            }
            let fence = Fence {
                no: row.get(0),
                status: parsed(self, &status)?,
                beat_due: row.get(6),
                ids_complete: row.get::<_, i64>(7) != 0,
            };
            f(tx, &fence)
        })
    }

    /// Runs `f` in one transaction if the batch's owner, its heartbeat and
    /// its status are still as `seen` (what the caller judged on), holding
    /// the row until it commits; false, changing nothing, if another
    /// process changed them.
    pub(super) fn if_as_seen(
        &self,
        bid: &str,
        seen: &BatchState,
        mut f: impl FnMut(&mut Transaction<'_>) -> TxResult<()>,
    ) -> Result<bool> {
        self.tx(|tx| {
            let same = tx
                .query_opt(
                    "SELECT 1 FROM batches WHERE bid = $1
                         AND owner_node IS NOT DISTINCT FROM $2::text
                         AND owner_pid IS NOT DISTINCT FROM $3::bigint
                         AND heartbeat_at IS NOT DISTINCT FROM $4::text
                         AND status = $5 AND execution_id = $6
                     FOR UPDATE",
                    &[
                        &bid,
                        &seen.owner_node,
                        &seen.owner_pid,
                        &seen.heartbeat_at,
                        &seen.status.as_str(),
                        &seen.execution_id,
                    ],
                )?
                .is_some();
            if !same {
                return Ok(false);
            }
            f(tx)?;
            Ok(true)
        })
    }
}

/// The refusal of a run's write whose batch another run holds now.
pub(super) fn taken_over(
    bid: &str,
    node: Option<String>,
    pid: Option<i64>,
    status: String,
) -> StoreError {
    StoreError::TakenOver {
        bid: bid.to_string(),
        node,
        pid,
        status,
    }
}

/// The number of batch `bid`, which keys its entity rows and claims.
pub(super) fn batch_no(tx: &mut impl postgres::GenericClient, bid: &str) -> TxResult<i64> {
    match tx.query_opt("SELECT batch_no FROM batches WHERE bid = $1", &[&bid])? {
        Some(r) => Ok(r.get(0)),
        None => Err(StoreError::no_batch(bid).into()),
    }
}

/// See [`BatchStore::set_run_status`].
pub(super) fn write_status(
    tx: &mut Transaction<'_>,
    bid: &str,
    status: BatchStatus,
    execution_id: &str,
    node: &str,
    note: Option<&str>,
) -> TxResult<()> {
    tx.execute(
        "UPDATE batches SET status = $2::text, execution_id = $3,
             start_time = CASE WHEN $2::text IN ('GENERATE_IID_LIST', 'IN_PROGRESS')
                 AND start_time IS NULL THEN $4 ELSE start_time END,
             end_time = CASE WHEN $5::boolean THEN $4 ELSE NULL END,
             error = CASE WHEN $2::text = 'FAILED' THEN $6::text WHEN $5::boolean THEN error
                 ELSE NULL END,
             owner_node = CASE WHEN $5::boolean THEN NULL ELSE owner_node END,
             owner_pid = CASE WHEN $5::boolean THEN NULL ELSE owner_pid END,
             owner_worker = CASE WHEN $5::boolean THEN NULL ELSE owner_worker END,
             requested = CASE WHEN $5::boolean THEN NULL ELSE requested END
         WHERE bid = $1",
        &[
            &bid,
            &status.as_str(),
            &execution_id,
            &crate::store::now(),
            &status.is_final(),
            &note,
        ],
    )?;
    // Who waits for the batch (BATCH_WAIT) looks at once.
    notify(tx, Notice::Batch, bid)?;
    Ok(event(tx, bid, execution_id, node, status, note)?)
}

/// The SQL condition on a row with a `worker` column that it belongs to
/// `holders`, given [`taken_back`]'s list bound as `$2`.
fn filter(holders: Holders) -> &'static str {
    match holders {
        Holders::Dead { .. } => "worker = ANY($2::text[])",
        _ => HELD_BY,
    }
}

/// The worker ids whose IN_PROCESS entities of batch `no` go back, or
/// `None` for all of them. Holders found dead that their row still shows
/// running are declared DEAD in the same transaction: should one only
/// have stalled, it writes nothing more.
///
/// Whether a node lives is judged on the database's clock: its heartbeat
/// is moved by the difference between this host's clock and the
/// database's before [`NodeRecord::alive`] compares it with this host's.
fn taken_back(
    tx: &mut Transaction<'_>,
    no: i64,
    holders: Holders,
) -> TxResult<Option<Vec<String>>> {
    let Some((own, with_own)) = holders.own() else {
        return Ok(None);
    };
    let dead = dead_holders(tx, no, own)?;
    for (worker, mark) in &dead {
        if *mark {
            declare_dead(tx, worker, false)?;
        }
    }
    Ok(Some(Holders::taken_back(dead, own.filter(|_| with_own))))
}

/// The holders of IN_PROCESS entities of batch `no`, `own` left out, that
/// are dead, each with whether its row still shows it running (see
/// [`Holders::judge`]). A read: it locks nothing.
pub(super) fn dead_holders(
    tx: &mut impl postgres::GenericClient,
    no: i64,
    own: Option<&str>,
) -> TxResult<Vec<(String, bool)>> {
    let rows = tx.query(
        "SELECT w.worker, n.worker_id IS NOT NULL, n.node, n.dc, n.host, n.pid, n.kind,
             n.status, n.workers, n.started_at, n.heartbeat_at, n.addrs, batchsh_now_ms()
         FROM (SELECT worker FROM batch_entities
               WHERE batch = $1 AND status <> 'COMPLETED' AND status = 'IN_PROCESS'
                   AND worker IS NOT NULL
               UNION SELECT worker FROM batch_claims WHERE batch = $1 AND worker IS NOT NULL) AS w
         LEFT JOIN nodes AS n ON n.worker_id = w.worker",
        &[&no],
    )?;
    let mut dead: Vec<(String, bool)> = Vec::new();
    for r in &rows {
        let worker: String = r.get(0);
        if own == Some(worker.as_str()) {
            continue;
        }
        let known: bool = r.get(1);
        let node = known.then(|| node_at(r, &worker));
        if let Some(mark) = Holders::judge(node.as_ref()) {
            dead.push((worker, mark));
        }
    }
    Ok(dead)
}

/// The node row of holder `worker` that [`taken_back`] read from column 2
/// on, its heartbeat moved by the difference between this host's clock
/// and the database's (column 12).
fn node_at(r: &postgres::Row, worker: &str) -> NodeRecord {
    let db_now_ms: i64 = r.get(12);
    let skew = chrono::TimeDelta::milliseconds(chrono::Utc::now().timestamp_millis() - db_now_ms);
    let beat: String = r.get(10);
    let heartbeat_at = chrono::DateTime::parse_from_rfc3339(&beat)
        .map(|t| crate::store::stamp(t.with_timezone(&chrono::Utc) + skew))
        .unwrap_or(beat);
    NodeRecord {
        worker_id: worker.to_string(),
        node: r.get(2),
        dc: r.get(3),
        host: r.get(4),
        pid: r.get(5),
        kind: NodeKind::parse(r.get(6)).unwrap_or(NodeKind::Synchronous),
        // A state this batchsh does not know: not one it may count on.
        state: NodeState::parse(r.get(7)).unwrap_or(NodeState::Dead),
        workers: r.get(8),
        started_at: r.get(9),
        heartbeat_at,
        addrs: serde_json::from_str(r.get(11)).unwrap_or_default(),
    }
}

/// The owner that a takeover judged dead as `seen`: the node of its run
/// is declared dead, so that its claims go back even while its process
/// exists (a stalled one) and it writes nothing more.
pub(super) fn declare_owner_dead(tx: &mut Transaction<'_>, seen: &BatchState) -> TxResult<()> {
    match &seen.owner_worker {
        Some(worker) => Ok(declare_dead(tx, worker, false).map(drop)?),
        None => Ok(()),
    }
}

/// The SQL condition on a row with a `worker` column that it belongs to
/// the holders of [`materialize_claims`]'s filter, bound as `$2`.
pub(super) const HELD_BY: &str =
    "($2::text[] IS NULL OR worker IS NULL OR worker = ANY($2::text[]))";

/// The claims of `holders` become IN_PROCESS rows of their own, so that
/// what is done with taken back IN_PROCESS entities (retried, cancelled)
/// is done with them too. The entities of a claim that have a row
/// already (their outcome was committed) keep it. Gives the holders'
/// filter, for [`HELD_BY`].
pub(super) fn materialize_claims(
    tx: &mut Transaction<'_>,
    no: i64,
    holders: Holders,
) -> TxResult<Option<Vec<String>>> {
    let workers = taken_back(tx, no, holders)?;
    let held = filter(holders);
    // The claim rows first, as a step writing their outcomes takes them:
    // neither then waits for a row the other holds.
    tx.execute(
        &format!("SELECT 1 FROM batch_claims WHERE batch = $1 AND {held} FOR UPDATE"),
        &[&no, &workers],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO batch_entities
                 (batch, seq, entity_id, status, attempts, node, start_time_ms, worker)
             SELECT batch, seq, entity_id, 'IN_PROCESS', 1, node, start_time_ms, worker
             FROM batch_claimed
             WHERE batch = $1 AND {held}
             ON CONFLICT (batch, seq) DO NOTHING"
        ),
        &[&no, &workers],
    )?;
    tx.execute(
        &format!("DELETE FROM batch_claims WHERE batch = $1 AND {held}"),
        &[&no, &workers],
    )?;
    Ok(workers)
}

/// The IN_PROCESS entities of `holders` (claims included) wait again:
/// how many. The counters are left to the caller's recount.
pub(super) fn requeue_in_process(
    tx: &mut Transaction<'_>,
    no: i64,
    holders: Holders,
) -> TxResult<u64> {
    let workers = materialize_claims(tx, no, holders)?;
    Ok(tx.execute(
        &format!(
            "UPDATE batch_entities SET status = 'WAITING', retry_at_ms = NULL, worker = NULL
             WHERE batch = $1 AND status <> 'COMPLETED' AND status = 'IN_PROCESS' AND {}",
            filter(holders)
        ),
        &[&no, &workers],
    )?)
}

/// The columns of `batch_totals` that [`counters_at`] reads (sums, which
/// PostgreSQL gives as `numeric`, read as `bigint`).
pub(super) const COUNTER_COLUMNS: &str = "total::bigint, waiting::bigint, in_process::bigint,
     completed::bigint, failed::bigint, cancelled::bigint, added::bigint, updated::bigint,
     unchanged::bigint";

/// The counters whose [`COUNTER_COLUMNS`] start at column `at` of `r`.
pub(super) fn counters_at(r: &postgres::Row, at: usize) -> Counters {
    Counters {
        total: r.get(at),
        waiting: r.get(at + 1),
        in_process: r.get(at + 2),
        completed: r.get(at + 3),
        failed: r.get(at + 4),
        cancelled: r.get(at + 5),
        added: r.get(at + 6),
        updated: r.get(at + 7),
        unchanged: r.get(at + 8),
    }
}

/// The batch's counters: its row's and every worker's changes.
pub(super) fn counters_of(c: &mut impl postgres::GenericClient, bid: &str) -> TxResult<Counters> {
    let sql = format!("SELECT {COUNTER_COLUMNS} FROM batch_totals WHERE bid = $1");
    match c.query_opt(&sql, &[&bid])? {
        Some(r) => Ok(counters_at(&r, 0)),
        None => Err(StoreError::no_batch(bid).into()),
    }
}

/// Counters recomputed from the entity rows, and written to the batch row
/// (the workers' rows of changes, folded in, are deleted). The caller
/// holds the batch row `FOR UPDATE`, so no step adds to them meanwhile.
pub(super) fn recount(s: &PgStore, tx: &mut Transaction<'_>, no: i64) -> TxResult<Counters> {
    let counts = tx.query(
        "SELECT status, count(*) FROM batch_entities WHERE batch = $1 GROUP BY status",
        &[&no],
    )?;
    // Entities without a row: those claimed as they arrived (or with a
    // chunk) are IN_PROCESS, those stored ahead in chunks WAITING.
    let unrowed = tx.query_one(
        "SELECT (SELECT coalesce(sum(open), 0) FROM batch_claims WHERE batch = $1)::bigint,
                (SELECT coalesce(sum(open), 0) FROM batch_chunks WHERE batch = $1)::bigint",
        &[&no],
    )?;
    let unrowed = [
        (
            crate::batch::EntityStatus::InProcess,
            unrowed.get::<_, i64>(0),
        ),
        (
            crate::batch::EntityStatus::Waiting,
            unrowed.get::<_, i64>(1),
        ),
    ];
    let mut c = counters_by_status(
        counts
            .iter()
            .map(|r| {
                let n: i64 = r.get(1);
                Ok::<_, StoreError>((parsed(s, r.get(0))?, n))
            })
            .chain(unrowed.into_iter().map(Ok)),
    )?;
    // As SQLite's json_extract sums them: numbers, and true as 1; a result
    // that is no JSON object counts for nothing.
    let flag = |k: &str| {
        format!(
            "coalesce(sum(CASE jsonb_typeof(j -> '{k}')
                 WHEN 'number' THEN (j ->> '{k}')::numeric
                 WHEN 'boolean' THEN (j ->> '{k}')::boolean::int END), 0)::bigint"
        )
    };
    let r = tx.query_one(
        &format!(
            "SELECT {}, {}, {}
             FROM batch_entities,
                  LATERAL (SELECT CASE WHEN result ~ '^\\s*\\{{.*\\}}\\s*$'
                                  THEN result::jsonb END AS j) AS x
             WHERE batch = $1 AND status = 'COMPLETED'",
            flag("Added"),
            flag("Updated"),
            flag("Unchanged")
        ),
        &[&no],
    )?;
    (c.added, c.updated, c.unchanged) = (r.get(0), r.get(1), r.get(2));
    tx.execute("DELETE FROM batch_counts WHERE batch = $1", &[&no])?;
    tx.execute(
        "UPDATE batches SET total = $2, waiting = $3, in_process = $4, completed = $5,
             failed = $6, cancelled = $7, added = $8, updated = $9, unchanged = $10
         WHERE batch_no = $1",
        &[
            &no,
            &c.total,
            &c.waiting,
            &c.in_process,
            &c.completed,
            &c.failed,
            &c.cancelled,
            &c.added,
            &c.updated,
            &c.unchanged,
        ],
    )?;
    Ok(c)
}

/// An active (not final) batch other than `except` whose command text is
/// `command`, the oldest: what `ALLOW_MULTIPLE=false` refuses to run
/// beside (a new batch, or a retry). The caller holds [`CREATE_LOCK`], so
/// that of two identical statements one sees the other.
pub(super) fn active_twin(
    tx: &mut Transaction<'_>,
    command: &str,
    except: &str,
) -> TxResult<Option<String>> {
    Ok(tx
        .query_opt(
            "SELECT bid FROM batches WHERE command = $1 AND bid <> $2
                 AND status NOT IN ('DONE', 'FAILED', 'CANCELLED')
             ORDER BY batch_no LIMIT 1",
            &[&command, &except],
        )?
        .map(|r| r.get(0)))
}

/// The advisory lock that the creation of a batch (the twin check and the
/// new batch number) and a retry's twin check hold: "BSHB".
pub(super) const CREATE_LOCK: i64 = 0x4253_4842;

pub(super) fn lock_creation(tx: &mut Transaction<'_>) -> TxResult<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK])?;
    Ok(())
}
