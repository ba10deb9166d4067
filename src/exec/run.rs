//! Runs a planned batch in this process (a synchronous BATCH, or a retry).
//!
//! Three parties: a producer thread streams ids from the source through a
//! bounded channel (so 10M ids are never held in memory); a rayon pool runs
//! one command per entity; this thread is the only writer to the store. It
//! loops: gather new ids and finished entities, write them and claim the
//! next entities in one transaction ([`Store::step`]), hand the claimed ones
//! to the pool. Writes are grouped: a step commits at most every 50 ms or
//! 1000 results, so persistence costs little per entity.

use super::plan::{EntitySource, Plan};
use crate::command::{self, CommandError, Connections};
use crate::session::RunError;
use crate::source;
use crate::store::Store;
use crate::store::batches::{Claimed, Counters, NewId, Outcome, OutcomeState, sample_progress};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the run needs from its surroundings.
pub struct Env<'a> {
    pub store: &'a Store,
    pub home: &'a Path,
    pub node: &'a str,
    pub dc: &'a str,
    /// Show a progress bar (the caller has checked stderr is a terminal).
    pub progress: bool,
    /// Set by Ctrl-C: cancel gracefully.
    pub interrupt: &'a AtomicBool,
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    pub bid: String,
    pub execution_id: String,
    pub status: String,
    pub counters: Counters,
    pub duration: Duration,
}

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_AT: usize = 1000;
/// How often an otherwise idle loop writes anyway: its heartbeat, and the
/// moment it reads requests from other processes (pause, cancel, edit),
/// which must take effect within a second.
const CONTROL_POLL: Duration = Duration::from_millis(500);
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const ID_CHANNEL: usize = 8192;

enum Produced {
    Id(NewId),
    Done,
    Failed(String),
}

/// One finished entity from a worker.
struct Done {
    claimed: Claimed,
    start: chrono::DateTime<chrono::Utc>,
    elapsed: Duration,
    result: Result<serde_json::Value, (String, Option<serde_json::Value>)>,
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs the batch `bid` until it reaches a final status. `need_ids`: the
/// source has not been read to its end yet (a new batch, or a retry of one
/// interrupted while its ids were generated).
pub fn run(
    env: &Env,
    plan: &Plan,
    bid: &str,
    execution_id: &str,
    need_ids: bool,
) -> Result<Finished, RunError> {
    let store = env.store;
    let serr = |e: crate::store::StoreError| RunError {
        message: e.to_string(),
        span: None,
    };
    let started = Instant::now();
    store.take_ownership(bid, env.node, env.dc).map_err(serr)?;
    let mut status = if need_ids {
        "GENERATE_IID_LIST"
    } else {
        "IN_PROGRESS"
    };
    store
        .set_batch_status(bid, status, execution_id, env.node, None)
        .map_err(serr)?;

    let (id_tx, id_rx) = mpsc::sync_channel::<Produced>(ID_CHANNEL);
    let producer = if need_ids {
        Some(spawn_producer(plan, env.home, id_tx))
    } else {
        drop(id_tx);
        None
    };
    let mut ids_open = need_ids;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.workers)
        .thread_name(|k| format!("batchsh-worker-{k}"))
        .build()
        .map_err(|e| RunError {
            message: format!("cannot start {} worker threads: {e}", plan.workers),
            span: None,
        })?;
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let shared = Arc::new(Shared::new(plan, env.home, bid, env.node));

    let bar = super::progress::Bar::new(env.progress, plan.estimated_total);
    let mut next_seq = store.max_seq(bid).map_err(serr)?;
    let mut in_flight = 0usize;
    let mut workers = plan.workers;
    let mut last_write = Instant::now() - CONTROL_POLL;
    let mut last_sample = Instant::now();
    let mut stop: Option<(&'static str, Option<String>)> = None; // (final status, error)
    let mut paused = false;
    let mut retry_pending = false;
    // Running mean of an entity's time, which sizes the pipeline; starts
    // slow, so a batch of long commands never claims far ahead.
    let mut avg_entity_ms = 1000.0_f64;

    loop {
        // Gather what arrived.
        let mut new_ids = Vec::new();
        while ids_open && new_ids.len() < 5000 {
            match id_rx.try_recv() {
                Ok(Produced::Id(id)) => new_ids.push(id),
                Ok(Produced::Done) | Err(TryRecvError::Disconnected) => ids_open = false,
                Ok(Produced::Failed(msg)) => {
                    ids_open = false;
                    stop.get_or_insert(("FAILED", Some(msg)));
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        let mut outcomes = Vec::new();
        let wait = if new_ids.is_empty() && in_flight > 0 {
            FLUSH_EVERY
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + wait;
        while outcomes.len() < FLUSH_AT {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = if left.is_zero() {
                done_rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                done_rx.recv_timeout(left)
            };
            match got {
                Ok(d) => {
                    in_flight -= 1;
                    let ms = d.elapsed.as_secs_f64() * 1000.0;
                    avg_entity_ms = 0.9 * avg_entity_ms + 0.1 * ms;
                    outcomes.push(outcome(plan, d));
                    // Half the pipeline is free: write and refill now, so
                    // the workers never starve waiting for a group commit.
                    if in_flight <= pipeline_depth(workers, avg_entity_ms) / 2 {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if in_flight == 0 && new_ids.is_empty() && outcomes.is_empty() {
            if ids_open {
                // Nothing to do but wait for the source.
                match id_rx.recv_timeout(FLUSH_EVERY) {
                    Ok(Produced::Id(id)) => new_ids.push(id),
                    Ok(Produced::Done) | Err(RecvTimeoutError::Disconnected) => ids_open = false,
                    Ok(Produced::Failed(msg)) => {
                        ids_open = false;
                        stop.get_or_insert(("FAILED", Some(msg)));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
            } else if paused || retry_pending {
                std::thread::sleep(FLUSH_EVERY);
            }
        }

        if env.interrupt.load(Ordering::SeqCst) {
            stop.get_or_insert(("CANCELLED", None));
        }
        let can_claim = stop.is_none() && !paused && !(plan.generate_first && ids_open);
        let room = pipeline_depth(workers, avg_entity_ms).saturating_sub(in_flight);
        let claim = if can_claim {
            match plan.chunk_size {
                Some(c) if room > 0 => c.max(room),
                _ => room,
            }
        } else {
            0
        };
        let due = last_write.elapsed() >= CONTROL_POLL;
        if new_ids.is_empty()
            && outcomes.is_empty()
            && claim == 0
            && !due
            && !(stop.is_some() && in_flight == 0)
        {
            continue;
        }
        let step = store
            .step(
                bid,
                env.node,
                &mut next_seq,
                &new_ids,
                !ids_open && stop.is_none(),
                &outcomes,
                claim,
            )
            .map_err(serr)?;
        last_write = Instant::now();
        let counters = step.counters;
        retry_pending = step.retry_pending;
        if let Some(n) = step.control.max_workers {
            workers = (n.max(1) as usize).min(plan.workers);
        }
        match step.control.requested.as_deref() {
            Some("CANCEL") => {
                stop.get_or_insert(("CANCELLED", None));
            }
            Some("PAUSE") if !paused && stop.is_none() => {
                paused = true;
                status = "PAUSED";
                store
                    .set_batch_status(bid, status, execution_id, env.node, None)
                    .map_err(serr)?;
            }
            None if paused => {
                paused = false;
                status = "IN_PROGRESS";
                store
                    .set_batch_status(bid, status, execution_id, env.node, None)
                    .map_err(serr)?;
            }
            _ => {}
        }
        if let (Some(limit), None) = (plan.max_failures, &stop)
            && limit.passed(counters.failed, counters.total)
        {
            stop = Some((
                "FAILED",
                Some(format!(
                    "{} entities failed, more than MAX_FAILURES allows; the batch stopped",
                    counters.failed
                )),
            ));
        }
        if !step.claimed.is_empty() && status == "GENERATE_IID_LIST" {
            status = "IN_PROGRESS";
            store
                .set_batch_status(bid, status, execution_id, env.node, None)
                .map_err(serr)?;
        }
        for c in step.claimed {
            in_flight += 1;
            let tx = done_tx.clone();
            let shared = Arc::clone(&shared);
            pool.spawn(move || {
                let start = chrono::Utc::now();
                let t = Instant::now();
                let result = shared.process(&c);
                // The receiver only goes away when the run has ended.
                let _ = tx.send(Done {
                    claimed: c,
                    start,
                    elapsed: t.elapsed(),
                    result,
                });
            });
        }
        bar.update(&counters, ids_open);
        if last_sample.elapsed() >= SAMPLE_EVERY {
            last_sample = Instant::now();
            sample_progress(store, bid, env.node, counters.completed + counters.failed)
                .map_err(serr)?;
        }

        // Ended?
        if in_flight == 0 {
            if let Some((final_status, error)) = stop.clone() {
                if final_status == "CANCELLED" {
                    store.cancel_waiting(bid).map_err(serr)?;
                }
                return finish(
                    env,
                    plan,
                    bid,
                    execution_id,
                    final_status,
                    error.as_deref(),
                    started,
                    &bar,
                    producer,
                );
            }
            if !ids_open && counters.waiting == 0 && !retry_pending {
                return finish(
                    env,
                    plan,
                    bid,
                    execution_id,
                    "DONE",
                    None,
                    started,
                    &bar,
                    producer,
                );
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    env: &Env,
    plan: &Plan,
    bid: &str,
    execution_id: &str,
    status: &str,
    error: Option<&str>,
    started: Instant,
    bar: &super::progress::Bar,
    producer: Option<std::thread::JoinHandle<()>>,
) -> Result<Finished, RunError> {
    let store = env.store;
    let serr = |e: crate::store::StoreError| RunError {
        message: e.to_string(),
        span: None,
    };
    bar.finish();
    // A producer still reading a cancelled or failed batch's source stops
    // at its next send, the channel being gone.
    drop(producer);
    let slowest = store.slowest(bid).map_err(serr)?;
    store.set_extra_stats(bid, &slowest).map_err(serr)?;
    let done = store
        .step(
            bid,
            env.node,
            &mut store.max_seq(bid).map_err(serr)?,
            &[],
            false,
            &[],
            0,
        )
        .map_err(serr)?;
    sample_progress(
        store,
        bid,
        env.node,
        done.counters.completed + done.counters.failed,
    )
    .map_err(serr)?;
    store.end_node(bid, env.node).map_err(serr)?;
    store
        .set_batch_status(bid, status, execution_id, env.node, error)
        .map_err(serr)?;
    let c = done.counters;
    if let Some(cmd) = &plan.on_done {
        // The hook's own failure does not change the batch's outcome.
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("BID", bid)
            .env("STATUS", status)
            .env("TOTAL", c.total.to_string())
            .env("SUCCEEDED", c.completed.to_string())
            .env("FAILED", c.failed.to_string())
            .stdin(std::process::Stdio::null())
            .status();
    }
    Ok(Finished {
        bid: bid.to_string(),
        execution_id: execution_id.to_string(),
        status: status.to_string(),
        counters: c,
        duration: started.elapsed(),
    })
}

/// How many entities to keep claimed: about 50 ms of work per worker
/// between two commits, at least two per worker (so none idles while a
/// step commits), at most 1000 in all. Fast commands (echo) get long
/// pipelines and few commits; slow ones (a 20 s script) stay at two per
/// worker, so a pause or cancel leaves little claimed work behind.
fn pipeline_depth(workers: usize, avg_entity_ms: f64) -> usize {
    let per_worker = (50.0 / avg_entity_ms.max(0.001)).ceil() as usize;
    (workers * per_worker.max(2)).clamp(workers * 2, 1000.max(workers * 2))
}

fn outcome(plan: &Plan, d: Done) -> Outcome {
    let end = d.start + chrono::Duration::from_std(d.elapsed).unwrap_or_default();
    let (result, state) = match d.result {
        Ok(v) => {
            let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_i64) == Some(1);
            (
                Some(v.to_string()),
                OutcomeState::Completed {
                    added: flag("Added"),
                    updated: flag("Updated"),
                    unchanged: flag("Unchanged"),
                },
            )
        }
        Err((error, result)) => {
            let result = result.map(|r| r.to_string());
            if d.claimed.attempts <= plan.max_retries {
                // RETRY_DELAY before the first retry, doubled on each further one.
                let factor = 1u32 << (d.claimed.attempts - 1).clamp(0, 20);
                let delay = plan.retry_delay.saturating_mul(factor);
                let at = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                (
                    result,
                    OutcomeState::Retry {
                        error,
                        retry_at: ts(at),
                    },
                )
            } else {
                (result, OutcomeState::Failed { error })
            }
        }
    };
    Outcome {
        seq: d.claimed.seq,
        start: ts(d.start),
        end: ts(end),
        process_ms: d.elapsed.as_millis() as i64,
        result,
        state,
    }
}

fn spawn_producer(
    plan: &Plan,
    home: &Path,
    tx: SyncSender<Produced>,
) -> std::thread::JoinHandle<()> {
    let source = match &plan.source {
        EntitySource::Ids(ids) => Source::Ids(ids.clone()),
        EntitySource::Query {
            interface,
            sql,
            params,
            ..
        } => Source::Query(interface.clone(), sql.clone(), params.clone()),
        EntitySource::Fabric => Source::Fabric(home.to_path_buf(), plan.lu.clone()),
    };
    std::thread::Builder::new()
        .name("batchsh-ids".into())
        .spawn(move || {
            let send = |r: Result<String, source::IdError>| -> std::ops::ControlFlow<()> {
                let id = match r.and_then(|id| source::check_id(&id).map(|()| id)) {
                    Ok(id) => NewId::Ok(id),
                    Err(e) => NewId::Bad(e.stand_in(), e.to_string()),
                };
                match tx.send(Produced::Id(id)) {
                    Ok(()) => std::ops::ControlFlow::Continue(()),
                    Err(_) => std::ops::ControlFlow::Break(()),
                }
            };
            let r: Result<(), String> = match source {
                Source::Ids(ids) => {
                    for id in ids {
                        if send(Ok(id)).is_break() {
                            break;
                        }
                    }
                    Ok(())
                }
                Source::Query(iface, sql, params) => source::connect(&iface)
                    .and_then(|conn| source::for_each_id(&conn, &sql, &params, &[], send))
                    .map(|_| ())
                    .map_err(|e| {
                        format!("the source query failed on interface {}: {e}", iface.name)
                    }),
                Source::Fabric(home, lu) => crate::lu::LuStore::open(&home, &lu)
                    .and_then(|s| s.for_each_instance(|id| send(Ok(id))))
                    .map(|_| ())
                    .map_err(|e| format!("cannot read the LU store of {}: {e}", lu.name)),
            };
            let _ = tx.send(match r {
                Ok(()) => Produced::Done,
                Err(m) => Produced::Failed(m),
            });
        })
        .expect("a thread for the id source")
}

enum Source {
    Ids(Vec<String>),
    Query(source::Interface, String, Vec<source::Param>),
    Fabric(std::path::PathBuf, crate::store::LuDef),
}

/// What every worker shares: the command, and a pool of the connections it
/// needs (each worker takes one, uses it, gives it back).
struct Shared {
    command: crate::ast::CommandKind,
    bid: String,
    lu: String,
    node: String,
    timeout: Option<Duration>,
    home: std::path::PathBuf,
    command_lu: Option<crate::store::LuDef>,
    command_lu_source: Option<source::Interface>,
    command_interface: Option<source::Interface>,
    lu_stores: Mutex<Vec<crate::lu::LuStore>>,
    sources: Mutex<Vec<rusqlite::Connection>>,
}

impl Shared {
    fn new(plan: &Plan, home: &Path, bid: &str, node: &str) -> Shared {
        Shared {
            command: plan.command.clone(),
            bid: bid.to_string(),
            lu: plan.lu.name.clone(),
            node: node.to_string(),
            timeout: plan.entity_timeout,
            home: home.to_path_buf(),
            command_lu: plan.command_lu.clone(),
            command_lu_source: plan.command_lu_source.clone(),
            command_interface: plan.command_interface.clone(),
            lu_stores: Mutex::new(Vec::new()),
            sources: Mutex::new(Vec::new()),
        }
    }

    fn process(
        &self,
        c: &Claimed,
    ) -> Result<serde_json::Value, (String, Option<serde_json::Value>)> {
        use crate::ast::CommandKind as K;
        match &self.command {
            K::SyncInstance { .. } | K::DeleteInstance { .. } => self.lu_command(c),
            other => {
                let ctx = command::Context {
                    timeout: self.timeout,
                    ..command::Context::for_entity(&c.entity_id)
                };
                let ctx = command::Context {
                    bid: &self.bid,
                    lu: &self.lu,
                    node: &self.node,
                    ..ctx
                };
                command::run(other, &ctx, self).map_err(|e| (e.to_string(), e.result()))
            }
        }
    }

    fn lu_command(
        &self,
        c: &Claimed,
    ) -> Result<serde_json::Value, (String, Option<serde_json::Value>)> {
        let fail = |m: String| (m, None);
        let lu = self
            .command_lu
            .as_ref()
            .ok_or_else(|| fail("no LU for the command".into()))?;
        let store = match self.lu_stores.lock().map(|mut v| v.pop()) {
            Ok(Some(s)) => s,
            _ => crate::lu::LuStore::open(&self.home, lu).map_err(|e| fail(e.to_string()))?,
        };
        let r = match &self.command {
            crate::ast::CommandKind::SyncInstance { .. } => {
                let iface = self
                    .command_lu_source
                    .as_ref()
                    .ok_or_else(|| fail(format!("LU {} has no interface", lu.name)))?;
                let conn = match self.sources.lock().map(|mut v| v.pop()) {
                    Ok(Some(c)) => c,
                    _ => source::connect(iface).map_err(|e| fail(e.to_string()))?,
                };
                let r = store.sync_instance(lu, &conn, &c.entity_id);
                if let Ok(mut v) = self.sources.lock() {
                    v.push(conn);
                }
                r
            }
            _ => store.delete_instance(lu, &c.entity_id),
        };
        if let Ok(mut v) = self.lu_stores.lock() {
            v.push(store);
        }
        r.map_err(|e| fail(e.to_string()))
    }
}

impl Connections for Shared {
    fn with_connection(
        &self,
        interface: &str,
        f: &mut dyn FnMut(&rusqlite::Connection) -> Result<usize, rusqlite::Error>,
    ) -> Result<usize, CommandError> {
        let iface = self
            .command_interface
            .as_ref()
            .ok_or_else(|| CommandError::Interface {
                interface: interface.to_string(),
                reason: "not resolved for this batch".into(),
            })?;
        let conn = source::connect(iface).map_err(|e| CommandError::Interface {
            interface: interface.to_string(),
            reason: e.to_string(),
        })?;
        f(&conn).map_err(|e| CommandError::sql(interface, e))
    }
}
