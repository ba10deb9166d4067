//! `BATCH` and `EXPLAIN`: analyse, create, run here, and tell how the run
//! ended.

use super::{Result, Session};
use crate::ast::{BatchStmt, Span};
use crate::exec::Explanation;
use crate::output::{Cell, KeyValues, Output, Table};
use crate::plan::Plan;

impl Session {
    pub(super) fn batch(
        &mut self,
        b: &crate::ast::BatchStmt,
        span: Span,
    ) -> Result<Option<Output>> {
        // Watched from the start: a Ctrl-C while the batch is planned or
        // created cancels it as soon as it runs.
        let (stop, _watch) = self.stop_token();
        self.store()?;
        let store = self.store.as_deref().expect("opened above");
        let mut plan = crate::analyze::batch(store, b, span, self.workers)?;
        // RESUME=true from cron: an interrupted twin is continued from what
        // it stored (its ids, its folder), before anything is read here
        // that this folder may not have (FROM FILE 'ids.txt', a program).
        if plan.resume
            && let Some(twin) = store
                .active_twin(&plan.command_text)
                .map_err(|e| super::StatementError::at(span, e))?
            && interrupted_twin(store, &twin)?
        {
            drop(_watch);
            return self.resume(&twin, span).map(Some);
        }
        crate::analyze::refuse_missing_pipe_program(&b.command, &self.cwd)?;
        self.read_lines(&mut plan, span)?;
        if let Some(note) = &plan.adhoc_note
            && !self.quiet
        {
            eprintln!("note: {note}");
        }
        plan.workdir = Some(self.cwd.clone());
        if let Some(warning) = crate::analyze::literal_braces_warning(&b.command)
            && !self.quiet
        {
            eprintln!("{warning}");
        }
        if matches!(plan.command, crate::ast::CommandKind::Pipe { .. })
            && plan.entity_timeout.is_none()
            && !self.quiet
        {
            eprintln!(
                "warning: pipe without ENTITY_TIMEOUT: a program that stops answering holds \
                 its worker thread (a cancel waits for it) until batchsh is stopped at once; \
                 WITH ENTITY_TIMEOUT='30s', say, fails that entity and starts the program again"
            );
        }
        if let Some(n) = plan.workers_capped_from
            && !self.quiet
        {
            eprintln!(
                "note: MAX_WORKERS_PER_NODE={n} is more than the {} workers a batch runs on \
                 one node; {} run",
                plan.node_workers, plan.workers
            );
        }
        if !plan.asynchronous {
            self.check_runs_here(&plan, span)?;
        }
        let terminal = self.terminal(&plan);
        let env = self.env(store, &terminal, &stop);
        let (bid, execution_id) = match crate::exec::create(&env, &plan, span) {
            Ok(ids) => ids,
            Err(e) => match resumable(store, &plan, &e)? {
                Some(twin) => {
                    drop(_watch);
                    return self.resume(&twin, span).map(Some);
                }
                None => return Err(e.into()),
            },
        };
        if plan.asynchronous {
            // Queued for a worker (SPEC §4): the statement returns at once.
            return Ok(Some(self.queued(bid, &plan.placement)));
        }
        let fin = crate::exec::run::join(
            &env,
            &plan,
            &bid,
            &execution_id,
            crate::exec::run::Roles::ALL,
            true,
        )?;
        self.last_bid = Some(fin.bid.clone());
        Ok(Some(self.ended(&fin)))
    }

    /// `RESUME=true` (SPEC §4): the interrupted twin `bid` is continued
    /// here, as `BATCH_RETRY` continues it.
    fn resume(&mut self, bid: &str, span: Span) -> Result<Output> {
        let store = self.store.as_deref().expect("opened by the statement");
        let state = store
            .batch_state(bid)
            .map_err(|e| super::StatementError::at(span, e))?;
        if !self.quiet {
            // One short line for cron mail, the bid by its 8 characters.
            eprintln!(
                "note: RESUME=true continues batch {} (interrupted, same command)",
                crate::batch::short_id(bid)
            );
        }
        self.last_bid = Some(bid.to_string());
        self.rerun(bid, &state, false, span)
    }

    /// An asynchronous batch was queued for a worker (created, or retried):
    /// a live worker will take it, else one is started in the background.
    /// Its `Batch id | Notes` row.
    pub(super) fn queued(&mut self, bid: String, placement: &crate::batch::Placement) -> Output {
        let store = self.store.as_deref().expect("opened by the statement");
        crate::background::wake::nudge_workers(store, None);
        let notes = crate::background::spawn::ensure_worker(
            store,
            &self.home,
            &self.store_path,
            &self.here(),
            placement,
        )
        .unwrap_or_else(|e| {
            format!(
                "queued, but no worker runs and none could be started ({e}): start one with \
                 batchsh worker"
            )
        });
        let mut t = Table::new(crate::output::columns::BATCH_ASYNC.iter().copied());
        t.rows
            .push(vec![Cell::Text(bid.clone()), Cell::Text(notes)]);
        self.last_bid = Some(bid);
        Output::Table(t)
    }

    /// Who this process is, for placement: a synchronous batch's node, and
    /// the worker it would start in the background.
    pub(super) fn here(&self) -> crate::batch::NodeIdent {
        crate::batch::NodeIdent {
            node: self.node.clone(),
            dc: self.dc.clone(),
            addrs: crate::batch::NodeIdent::host_addrs(),
        }
    }

    /// A synchronous batch runs in this process only (SPEC §7): where its
    /// placement (AFFINITY, JOB_AFFINITY, `@DC`) leaves this process out,
    /// it is refused, with the ways to run it.
    fn check_runs_here(&self, plan: &Plan, span: Span) -> Result<()> {
        let (p, here) = (&plan.placement, self.here());
        if p.may_own(&here) && p.may_process(&here) {
            return Ok(());
        }
        let wanted = if p.may_own(&here) {
            p.processors_wanted()
        } else {
            p.owners_wanted()
        };
        Err(super::StatementError::refused(
            span,
            format!(
                "this batch is for {wanted}, and a synchronous batch runs in this process \
                 (node '{}', DC '{}'): add ASYNC=true for a worker there to run it, or run \
                 batchsh with --node / --dc of such a node",
                self.node, self.dc
            ),
        ))
    }

    /// A run has ended: its exit code is noted, a FAILED batch's reason
    /// is printed (stderr: the result row shows counts, not why), and its
    /// result row returned.
    pub(super) fn ended(&mut self, fin: &crate::exec::run::Finished) -> Output {
        use crate::batch::{BatchStatus, RunEnd};
        let (bid, c) = (&fin.bid, fin.end.counters());
        if let RunEnd::Interrupted { signal, .. } = &fin.end {
            eprintln!(
                "batchsh: {}: batch {bid} stopped unfinished, {} of {} entities done; \
                 BATCH_RETRY '{bid}' finishes it",
                signal.name(),
                c.finished(),
                c.total,
            );
            return result_row(fin);
        }
        self.note_end(bid, &fin.end);
        match &fin.end {
            RunEnd::TakenOver { why, .. } => self.say_error(why, bid),
            RunEnd::Ended {
                status: BatchStatus::Failed,
                error,
                ..
            } => self.say_error(
                &format!(
                    "batch {bid} ended FAILED: {}",
                    error.as_deref().unwrap_or("no reason was recorded")
                ),
                bid,
            ),
            // Exit code 3 says something went wrong: stderr says what (a
            // cron job mails stderr), even with --quiet.
            RunEnd::Ended {
                status: BatchStatus::Cancelled,
                ..
            } => eprintln!(
                "warning: batch {bid} ended CANCELLED, {} of {} entities done; \
                 BATCH_RETRY '{bid}' ALLOW_CANCELLED=true finishes it",
                c.finished(),
                c.total
            ),
            // One short line for cron mail, the bid by its first 8
            // characters (as tables show it, and every statement takes):
            // BATCH_DETAILS without a bid finds this batch from a new
            // session too (the store's newest), BATCH_RETRY needs it.
            RunEnd::Ended { .. } if c.failed > 0 => eprintln!(
                "warning: batch {short} ended DONE with {} of {} entities FAILED \
                 (BATCH_DETAILS STATUS='FAILED' lists them, BATCH_RETRY '{short}' runs them again)",
                c.failed,
                c.total,
                short = crate::batch::short_id(bid),
            ),
            _ => {}
        }
        result_row(fin)
    }

    /// The ids of a FROM STDIN / FROM FILE source, read whole before the
    /// batch is created (so a fault stores nothing), a relative file path
    /// resolved against the working directory.
    fn read_lines(&self, plan: &mut Plan, span: Span) -> Result<()> {
        use crate::plan::{EntitySource, Lines};
        use crate::source::lines;
        let EntitySource::Lines { from, ids } = &mut plan.source else {
            return Ok(());
        };
        let read = match from {
            Lines::Stdin if self.statements_on_stdin => Err(lines::LinesError::Statements),
            Lines::Stdin if self.stdin_read.get() => Err(lines::LinesError::AlreadyRead),
            Lines::Stdin => {
                self.stdin_read.set(true);
                lines::read_stdin()
            }
            Lines::File { written, .. } if written.trim().is_empty() => {
                Err(lines::LinesError::NoPath)
            }
            Lines::File { written, path } => {
                *path = crate::source::resolve_path(written, &self.cwd);
                lines::read_file(path)
            }
        };
        *ids =
            Some(std::sync::Arc::new(read.map_err(|e| {
                super::StatementError::refused(span, e.to_string())
            })?));
        Ok(())
    }

    /// A batch's run failed: the error on stderr, and with `--format json`
    /// also as one JSON object (SPEC §10), as a failed statement's is.
    fn say_error(&self, message: &str, bid: &str) {
        eprintln!("error: {message}");
        if self.settings.format == crate::ast::OutputFormat::Json {
            eprintln!("{}", serde_json::json!({ "error": message, "bid": bid }));
        }
    }

    /// Records how a batch's run ended: its exit code (SPEC §1, see
    /// [`crate::batch::RunEnd::exit_code`]), and whether the statement
    /// failed.
    fn note_end(&mut self, bid: &str, end: &crate::batch::RunEnd) {
        self.batch_failed = end.is_failure();
        self.outcomes.insert(bid.to_string(), end.exit_code());
    }

    /// `EXPLAIN BATCH ...`: the plan, and runs nothing.
    pub(super) fn explain(
        &mut self,
        b: &crate::ast::BatchStmt,
        span: Span,
    ) -> Result<Option<Output>> {
        let (home, workers) = (self.home.clone(), self.workers);
        let store = self.store()?;
        let mut plan = crate::analyze::batch(store, b, span, workers)?;
        self.read_lines(&mut plan, span)?;
        let store = self.store.as_deref().expect("opened above");
        let window = match &plan.series {
            Some(series) => Some(
                super::window::next_window(store, series)
                    .map_err(|e| super::StatementError::at(span, e))?,
            ),
            None => None,
        };
        let values = window.as_ref().map_or(&[][..], |w| &w.values[..]);
        let explanation = crate::exec::explain(&plan, &home, values)?;
        let mut kv = explained(b, &plan, explanation);
        if let Some(w) = window {
            for (k, v) in &w.values {
                kv.push(format!("Window {k}"), v.as_str());
            }
            if let Some(note) = w.note {
                kv.push("Window note", note);
            }
        }
        Ok(Some(Output::KeyValues(kv)))
    }
}

/// The twin a `RESUME=true` batch continues: the batch whose command made
/// `create` refuse it, when it is interrupted (SPEC §6); `None` when the
/// refusal stands (no RESUME, another error, a twin that runs or is paused).
fn resumable(
    store: &dyn crate::store::Store,
    plan: &Plan,
    e: &crate::exec::ExecError,
) -> Result<Option<String>> {
    let crate::exec::ExecErrorKind::Twin { bid, .. } = &*e.kind else {
        return Ok(None);
    };
    if !plan.resume {
        return Ok(None);
    }
    Ok(interrupted_twin(store, bid)?.then(|| bid.clone()))
}

/// Whether batch `bid` is interrupted: unfinished, and no live process
/// runs it nor will a worker take it (SPEC §6).
fn interrupted_twin(store: &dyn crate::store::Store, bid: &str) -> Result<bool> {
    let status = store.batch_state(bid)?.status;
    Ok(crate::monitor::interrupted(store, bid, status)?)
}

/// What `EXPLAIN` prints: the statement's target, the plan, and every
/// option's effective value as given, else marked as the default.
fn explained(b: &BatchStmt, plan: &Plan, e: Explanation) -> KeyValues {
    let mut kv = KeyValues::default();
    kv.push("Target", b.target.to_string());
    kv.push("LU", plan.lu.as_str());
    kv.push("Entity source", e.source);
    kv.push("SQL", e.sql.map_or(Cell::Null, Cell::Text));
    kv.push("Command", plan.command.to_string());
    kv.push("Command kind", plan.command.name());
    for (name, value) in e.options {
        let shown = match b.options.get(name).map(|v| v.to_string()) {
            // More workers than a batch runs on one node: say how many run.
            Some(v) if name == "MAX_WORKERS_PER_NODE" && v != value => {
                format!("{v} ({value} run: the most a batch runs on one node)")
            }
            Some(v) => v,
            None if name == "ASYNC" && plan.open => format!("{value} (OPEN=true implies it)"),
            None => format!("{value} (default)"),
        };
        kv.push(format!("Option {name}"), shown);
    }
    kv.push("Entities now", e.entities_now);
    kv
}

/// The row a finished BATCH prints (SPEC §4).
fn result_row(f: &crate::exec::Finished) -> Output {
    let c = f.end.counters();
    let mut t = Table::new(crate::output::columns::BATCH_RESULT.iter().copied());
    t.rows.push(vec![
        Cell::Text(f.bid.clone()),
        Cell::Text(f.execution_id.clone()),
        Cell::Int(c.completed),
        Cell::Int(c.failed),
        Cell::Int(c.total),
        Cell::Int(c.added),
        Cell::Int(c.updated),
        Cell::Int(c.unchanged),
        Cell::Duration(f.duration),
    ]);
    Output::Table(t)
}
