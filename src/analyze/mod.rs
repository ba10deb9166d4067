//! The analysis step: a parsed statement and the catalog -> what runs.
//! Syntax is the parser's; meaning is checked here, all of it, before
//! anything is stored: names the catalog must hold, values that must be in
//! range, options that exclude each other, what this version cannot run
//! yet. Each fault is an [`AnalyzeError`] pointing at its part of the
//! statement. A BATCH becomes a [`Plan`] for the executor; the options of
//! other statements become typed structs ([`options`]).

mod append;
mod command;
mod error;
pub mod options;
mod source;
#[cfg(test)]
mod tests;

pub use append::{Appending, append};
pub use command::{literal_braces_warning, refuse_missing_pipe_program};
pub use error::{AnalyzeError, AnalyzeErrorKind, Result};
pub use options::{
    BatchOptions, EditOptions, InterfaceOptions, PurgeOptions, RetryOptions, WaitOptions,
};

use crate::ast::{BatchStmt, Span, Statement, Stmt};
use crate::plan::{MAX_NODE_WORKERS, Plan};
use crate::store::CatalogStore;
use std::time::Duration;

/// A BATCH (or the BATCH of an EXPLAIN, or the stored statement of a batch
/// run again) as a plan for a synchronous run: `MAX_WORKERS_PER_NODE`
/// workers (up to [`MAX_NODE_WORKERS`]), else `default_workers` (the
/// number of cores). `span` is the statement's.
///
/// The first fault found is the error, in this order: the target (its LU,
/// a data center), the options ([`BatchOptions::decode`]), the command's
/// window variables, the entity source, the command's LU or interface.
pub fn batch(
    catalog: &dyn CatalogStore,
    b: &BatchStmt,
    span: Span,
    default_workers: usize,
) -> Result<Plan> {
    let (lu, adhoc_note) = source::target_lu(catalog, b)?;
    let options = BatchOptions::decode(&b.options)?;
    if options.name.is_none() {
        command::refuse_window_args(&b.command)?;
    }
    let source = source::entity_source(
        catalog,
        b,
        lu.as_ref(),
        span,
        options.bind_params.clone(),
        options.name.is_some(),
    )?;
    let needs = command::needs(catalog, &b.command)?;
    let workers = options
        .max_workers_per_node
        .unwrap_or(default_workers)
        .clamp(1, MAX_NODE_WORKERS);
    let stmt = Stmt {
        kind: Statement::Batch(Box::new(b.clone())),
        span,
    };
    Ok(Plan {
        command_text: stmt.to_string(),
        arguments: crate::ast::to_json(&stmt)["options"].clone(),
        lu: lu.map_or_else(|| b.target.lu.text.clone(), |def| def.name),
        adhoc_note,
        workdir: None,
        command: b.command.kind.clone(),
        source,
        command_lu: needs.lu,
        command_lu_source: needs.lu_source,
        command_interface: needs.interface,
        workers,
        node_workers: MAX_NODE_WORKERS,
        workers_capped_from: options.max_workers_per_node.filter(|&n| n > workers),
        asynchronous: options.asynchronous,
        placement: crate::batch::Placement {
            affinity: options.affinity,
            job_affinity: options.job_affinity,
            dc: b.target.dc.as_ref().map(|dc| dc.text.clone()),
            max_nodes: options.max_nodes,
        },
        open: options.open,
        max_retries: options.max_retries.unwrap_or(0),
        retry_delay: options.retry_delay.unwrap_or(Duration::from_secs(1)),
        entity_timeout: options.entity_timeout,
        max_failures: options.max_failures,
        chunk_size: options.chunk_size,
        generate_first: options.generate_entities_first,
        estimated_total: options.estimated_entities_count,
        on_done: options.on_done,
        allow_multiple: options.allow_multiple,
        resume: options.resume,
        output_limit: options
            .output_limit
            .unwrap_or(crate::command::DEFAULT_OUTPUT_LIMIT),
        show_output: options.show_output,
        series: options.name.map(|name| crate::plan::SeriesPlan {
            name,
            reprocess_hours: options.reprocess_hours,
            trunc_start: options.trunc_start,
        }),
    })
}

/// The interface named `name` (at `at`), as a data source.
fn interface(catalog: &dyn CatalogStore, name: &str, at: Span) -> Result<crate::source::Interface> {
    catalog
        .interface(name)
        .map(|def| def.source())
        .map_err(|e| AnalyzeError::at(at, e))
}

/// The plan of batch `bid` from its stored statement `command` (a retry,
/// or a worker that takes the batch), for a node of `default_workers`.
/// Its faults are told against the batch, with the statement quoted: they
/// point into the stored text, not into a statement typed now.
pub fn stored_batch(
    catalog: &dyn CatalogStore,
    bid: &str,
    command: &str,
    default_workers: usize,
) -> std::result::Result<Plan, String> {
    let parsed = crate::syntax::parse(command)
        .map_err(|e| format!("the stored command of batch {bid} does not parse: {e:?}"))?;
    let Some(stmt) = parsed.into_iter().next() else {
        return Err(format!("batch {bid} has no BATCH command stored"));
    };
    let crate::ast::Statement::Batch(b) = &stmt.kind else {
        return Err(format!("batch {bid} has no BATCH command stored"));
    };
    batch(catalog, b, stmt.span, default_workers).map_err(|e| {
        format!(
            "batch {bid} cannot run again: {} (its statement: {command})",
            e.kind
        )
    })
}
