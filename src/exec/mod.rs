//! The executor: a [`Plan`](crate::plan::Plan), made by [`crate::analyze`], runs here.
//!
//! Crash safety (SPEC §7): entities are stored before they are processed,
//! and an entity's outcome is committed with its status. After a kill -9,
//! `BATCH_RETRY` continues the batch: COMPLETED entities never run again;
//! entities that were IN_PROCESS at the crash run again (at-least-once).

pub mod error;
pub mod permits;
pub mod run;

// `run/` reads the plan's types as `super::plan`.
use crate::plan;
use crate::plan::Plan;
pub use permits::Permits;
pub use run::{Env, Finished};

pub use error::{ExecError, ExecErrorKind, Result};

#[cfg(test)]
mod tests;

/// Creates the batch and runs it to its end in this process. Unless
/// `ALLOW_MULTIPLE`, a batch with the command of an active one is refused
/// (checked and created in one transaction: see [`Store::create_batch`]).
///
/// [`Store::create_batch`]: crate::store::BatchStore::create_batch
pub fn start(env: &Env, plan: &Plan, at: crate::ast::Span) -> Result<Finished> {
    let (bid, execution_id) = create(env, plan, at)?;
    run::join(env, plan, &bid, &execution_id, run::Roles::ALL, true)
}

/// The size of the parts in which the ids of FROM STDIN / FROM FILE are
/// stored.
const LINES_PART: usize = 1 << 20;

/// Creates the batch of `plan`, owned by this process from its first
/// moment: its id and its execution id, for [`run::join`].
pub fn create(env: &Env, plan: &Plan, at: crate::ast::Span) -> Result<(String, String)> {
    crate::knobs::gate();
    let bid = crate::knobs::first_bid().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let execution_id = uuid::Uuid::new_v4().to_string();
    let fabric_command = plan.command.to_string();
    // The lines of FROM STDIN / FROM FILE go into the store with the batch:
    // every later run reads them from there (SPEC §4).
    let lines = match &plan.source {
        plan::EntitySource::Lines { ids: Some(ids), .. } => {
            let mut parts = crate::source::lines::to_stored(ids, LINES_PART);
            if parts.is_empty() {
                parts.push(Vec::new());
            }
            Some(parts)
        }
        _ => None,
    };
    // A run of a series starts with its batch, in whole seconds: its
    // batch_id (SPEC §9) is that second.
    let now = crate::knobs::now();
    let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let start = crate::store::stamp(now);
    let run = plan
        .series
        .as_ref()
        .map(|s| crate::store::series::BatchRun {
            series: &s.name,
            reprocess_hours: s.reprocess_hours,
            trunc_start: s.trunc_start,
            start: &start,
            batch_id: now.timestamp(),
        });
    let twin = env.store.create_batch(
        &crate::store::batches::NewBatch {
            bid: &bid,
            command: &plan.command_text,
            lu: &plan.lu,
            fabric_command: &fabric_command,
            source: &plan.source.describe(),
            arguments: &plan.arguments,
            execution_id: &execution_id,
            node: env.node,
            estimated_total: plan.estimated_total,
            max_workers: None,
            queued: plan.asynchronous,
            placement: &plan.placement,
            open: plan.open,
            workdir: plan.workdir.as_deref().and_then(|d| d.to_str()),
            lines: lines.as_deref(),
            series: run.as_ref(),
        },
        !plan.allow_multiple,
    )?;
    if let Some(other) = twin {
        return Err(ExecError::at(
            at,
            ExecErrorKind::Twin {
                why: twin_message(env, &other)?,
                bid: other,
            },
        ));
    }
    Ok((bid, execution_id))
}

/// Why a batch with the same command as an unfinished one is refused, and
/// what to do about that one: wait for it while a process runs it, resume
/// a paused one, finish one that no process runs any more (a crash, a
/// SIGTERM, a second Ctrl-C) with `BATCH_RETRY`.
fn twin_message(env: &Env, other: &str) -> Result<String> {
    let state = env.store.batch_state(other)?;
    let running = state.owner_alive();
    let by = match (&state.owner_node, state.owner_pid) {
        (Some(node), Some(pid)) if running => format!(" on node {node} (pid {pid})"),
        _ => String::new(),
    };
    // Paused first: a paused batch's process lives on, waiting for a
    // resume that waiting here would never give it.
    let (what, first) = if state.status == crate::batch::BatchStatus::Paused {
        (
            format!("is paused{by}"),
            format!("resume it (BATCH_RESUME '{other}')"),
        )
    } else if running {
        (format!("is still running{by}"), "wait for it".to_string())
    } else {
        (
            format!("was interrupted ({}, and no process runs it)", state.status),
            format!("finish it (BATCH_RETRY '{other}', or this statement WITH RESUME=true)"),
        )
    };
    Ok(format!(
        "batch {other} with the same command {what}; {first}, cancel it \
         (BATCH_CANCEL '{other}'), or add WITH ALLOW_MULTIPLE=true"
    ))
}

/// What `EXPLAIN BATCH ...` tells of a plan beyond the plan itself, as
/// data: the caller prints it, beside the statement's own words.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// Where the entity ids come from, in words.
    pub source: String,
    /// The query that gives them, when a query does.
    pub sql: Option<String>,
    /// Every option EXPLAIN shows, in its order, with the value the plan
    /// takes for it (given or default).
    pub options: Vec<(&'static str, String)>,
    /// How many entities the source gives now.
    pub entities_now: u64,
}

/// `EXPLAIN BATCH ...`: where the ids come from, every option's effective
/// value, and how many entities the source gives now. Runs nothing and
/// stores nothing.
///
/// `window`: the window variables a named batch's source query is counted
/// with (the next run's).
pub fn explain(
    plan: &Plan,
    home: &std::path::Path,
    window: &[(String, String)],
) -> Result<Explanation> {
    let (source, sql) = match &plan.source {
        plan::EntitySource::Ids(ids) => (format!("{} listed ids", ids.len()), None),
        plan::EntitySource::Query {
            interface,
            sql,
            origin,
            ..
        } => (
            format!("{origin}, on interface {}", interface.name),
            Some(sql.clone()),
        ),
        plan::EntitySource::Fabric(_) => ("instances in the LU store (FROM FABRIC)".into(), None),
        plan::EntitySource::Lines { from, .. } => (format!("one id per line of {from}"), None),
    };
    let options = vec![
        ("ASYNC", plan.asynchronous.to_string()),
        ("OPEN", plan.open.to_string()),
        ("GENERATE_ENTITIES_FIRST", plan.generate_first.to_string()),
        ("ALLOW_MULTIPLE", plan.allow_multiple.to_string()),
        ("RESUME", plan.resume.to_string()),
        ("MAX_WORKERS_PER_NODE", plan.workers.to_string()),
        (
            "ESTIMATED_ENTITIES_COUNT",
            plan.estimated_total
                .map_or("none".into(), |n| n.to_string()),
        ),
        ("MAX_RETRIES", plan.max_retries.to_string()),
        (
            "RETRY_DELAY",
            format!(
                "'{}'",
                crate::ast::Duration(plan.retry_delay.as_millis() as u64)
            ),
        ),
        (
            "ENTITY_TIMEOUT",
            plan.entity_timeout.map_or("none".into(), |d| {
                format!("'{}'", crate::ast::Duration(d.as_millis() as u64))
            }),
        ),
        (
            "MAX_FAILURES",
            plan.max_failures.map_or("none".into(), |m| m.to_string()),
        ),
        (
            "CHUNK_SIZE",
            plan.chunk_size
                .map_or("chosen by the executor".into(), |n| n.to_string()),
        ),
        (
            "ON_DONE",
            plan.on_done.clone().unwrap_or_else(|| "none".into()),
        ),
        ("OUTPUT_LIMIT", format!("{} bytes", plan.output_limit)),
        ("SHOW_OUTPUT", plan.show_output.to_string()),
    ];
    Ok(Explanation {
        source,
        sql,
        options,
        entities_now: count_entities(plan, home, window)?,
    })
}

/// How many ids the source gives now (streamed, not held).
fn count_entities(plan: &Plan, home: &std::path::Path, window: &[(String, String)]) -> Result<u64> {
    match &plan.source {
        plan::EntitySource::Ids(ids) => {
            let unique: std::collections::HashSet<&String> = ids.iter().collect();
            Ok(unique.len() as u64)
        }
        plan::EntitySource::Query {
            interface,
            sql,
            params,
            ..
        } => crate::source::read_ids(interface, sql, params, window, |_| {
            std::ops::ControlFlow::Continue(())
        })
        .map_err(ExecError::run),
        plan::EntitySource::Fabric(lu) => Ok(crate::lu::LuStore::open(home, lu)
            .and_then(|s| s.for_each_instance(|_| std::ops::ControlFlow::Continue(())))?),
        plan::EntitySource::Lines { ids, .. } => {
            let unique: std::collections::HashSet<String> = ids
                .iter()
                .flat_map(|ids| ids.iter())
                .map(|r| match r {
                    Ok(id) => id.clone(),
                    Err(e) => e.stand_in(),
                })
                .collect();
            Ok(unique.len() as u64)
        }
    }
}
