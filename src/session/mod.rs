//! Runs statements. [`Session::run_statement`] is the one door the command
//! line (and the REPL) go through: a statement in, something to print out.
//!
//! A session holds what lasts between statements: the store (opened on first
//! use, so `SET` or `HELP` never create one), the settings, the working
//! directory relative paths are resolved against.
//!
//! [`Session::run_statement`] is a thin dispatcher: each family of
//! statements has its file (`catalog`, `batch`, `control`, `open`,
//! `purge`, `settings`, `help`, `window`); monitoring statements go to [`crate::monitor`].

mod awaited;
mod batch;
mod catalog;
mod control;
mod error;
mod get;
mod help;
mod jobs;
mod monitor;
mod open;
mod purge;
mod settings;
mod wait;
mod window;

pub use error::{Result, StatementError, StatementErrorKind};

use crate::ast::{Expanded, OutputFormat, Span, Statement, Stmt};
use crate::output::{Cell, Output};
use crate::store::{Store, Upgrade, Upgrades};
use std::path::PathBuf;

/// Session settings (`SET`, `SHOW SETTINGS`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub format: OutputFormat,
    pub progress: bool,
    /// Tables as one key/value block per row: `SET EXPANDED`, `-x`.
    pub expanded: Expanded,
    /// Each statement's time on stderr: `SET TIMING`.
    pub timing: bool,
    /// Tall tables on a terminal through the pager: `SET PAGER`.
    pub pager: bool,
}

pub struct Session {
    store_path: PathBuf,
    store: Option<Box<dyn Store>>,
    pub settings: Settings,
    cwd: PathBuf,
    home: PathBuf,
    node: String,
    dc: String,
    workers: usize,
    /// Draw progress bars (stderr is a terminal and not --quiet).
    progress_allowed: bool,
    /// `--quiet`: opening the store does not announce an upgrade.
    quiet: bool,
    /// The batch the bid-less statements act on (SPEC §6).
    pub last_bid: Option<String>,
    /// Each batch's latest outcome as an exit code (SPEC §1): a batch
    /// that failed and was then retried to DONE counts as DONE here (the
    /// statement that ended it FAILED still failed: see
    /// [`Session::take_batch_failed`]).
    outcomes: std::collections::HashMap<String, i32>,
    /// The last statement's batch ended FAILED: a failed statement for the
    /// run (it stops the statements after it, as an error does).
    batch_failed: bool,
    /// Set by Ctrl-C: a statement that runs a batch cancels it, and a
    /// script stops after the statement.
    pub interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The statements come from standard input (`batchsh -`, or a pipe
    /// into `batchsh`): FROM STDIN has no ids to read there.
    pub statements_on_stdin: bool,
    /// A FROM STDIN of this run read standard input to its end: a second
    /// one would get no ids.
    stdin_read: std::cell::Cell<bool>,
}

/// Where a session stands: its files, and this process's node.
pub struct Config {
    pub store_path: PathBuf,
    pub home: PathBuf,
    pub cwd: PathBuf,
    pub node: String,
    pub dc: String,
    pub workers: usize,
    pub progress_allowed: bool,
    pub quiet: bool,
}

/// What a statement asks of the caller besides printing.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `EXIT` / `QUIT`.
    Exit,
}

impl Session {
    pub fn new(config: Config, settings: Settings) -> Session {
        Session {
            store_path: config.store_path,
            store: None,
            settings,
            cwd: config.cwd,
            home: config.home,
            node: config.node,
            dc: config.dc,
            workers: config.workers.max(1),
            progress_allowed: config.progress_allowed,
            quiet: config.quiet,
            last_bid: None,
            outcomes: Default::default(),
            batch_failed: false,
            interrupt: Default::default(),
            statements_on_stdin: false,
            stdin_read: Default::default(),
        }
    }

    /// Whether the statement that ran last ended a batch FAILED (cleared
    /// by asking). It printed its result row and the reason; the run treats
    /// it as a failed statement (SPEC §1).
    pub fn take_batch_failed(&mut self) -> bool {
        std::mem::take(&mut self.batch_failed)
    }

    /// The exit code the batches of the session call for: 1 outranks 3.
    pub fn exit_code(&self) -> i32 {
        let codes = || self.outcomes.values().copied();
        if codes().any(|c| c == crate::exit::FAILED) {
            crate::exit::FAILED
        } else {
            codes().max().unwrap_or(crate::exit::OK)
        }
    }

    fn env<'a>(
        &'a self,
        store: &'a dyn Store,
        events: &'a dyn crate::batch::Events,
        stop: &'a std::sync::Arc<crate::batch::StopToken>,
    ) -> crate::exec::Env<'a> {
        crate::exec::Env {
            store,
            home: &self.home,
            node: &self.node,
            dc: &self.dc,
            events,
            worker: None,
            permits: None,
            stop,
        }
    }

    /// The stop token of a statement that may run a batch, watched from
    /// now on (Ctrl-C and stop signals reach it while the guard lives); a
    /// Ctrl-C that came before (the session's interrupt flag) cancels it.
    fn stop_token(
        &self,
    ) -> (
        std::sync::Arc<crate::batch::StopToken>,
        crate::terminate::Watch,
    ) {
        let token = std::sync::Arc::new(crate::batch::StopToken::default());
        let watch = crate::terminate::watch(std::sync::Arc::clone(&token));
        if self.interrupt.load(std::sync::atomic::Ordering::SeqCst) {
            token.cancel();
        }
        (token, watch)
    }

    /// Where a run of `plan` shows itself: a progress bar when stderr is a
    /// terminal and progress is on, the run's warnings, and with
    /// `SHOW_OUTPUT=true` the entities' lines (stdout ones on stderr when
    /// stdout holds a JSON or CSV document).
    fn terminal(&self, plan: &crate::plan::Plan) -> crate::output::progress::Terminal {
        use crate::output::progress::{LinesTo, Terminal};
        Terminal::new(
            self.progress_allowed && self.settings.progress,
            plan.estimated_total,
        )
        .stdout_lines_to(match self.settings.format {
            OutputFormat::Table => LinesTo::Stdout,
            OutputFormat::Json | OutputFormat::Csv => LinesTo::Stderr,
        })
    }

    fn resolve(&mut self, bid: &Option<crate::ast::Text>, span: Span) -> Result<String> {
        let last = self.last_bid.clone();
        let store = self.store()?;
        let at = bid.as_ref().map_or(span, |b| b.span);
        store
            .resolve_bid(bid.as_ref().map(|b| b.value.as_str()), last.as_deref())
            .map_err(|e| StatementError::at(at, e))
    }

    /// Opens the store now if its file exists, or if it is a PostgreSQL
    /// store (so that an upgrade is announced here, not done silently by
    /// the REPL's Tab completion), and says whether that failed.
    pub fn open_existing_store(&mut self) -> Result<()> {
        if self.store.is_none() && crate::store::exists(&self.store_path) {
            self.store()?;
        }
        Ok(())
    }

    fn store(&mut self) -> Result<&dyn Store> {
        if self.store.is_none() {
            let announce = |u: Upgrade| eprintln!("batchsh: {u}");
            let upgrades = if self.quiet {
                Upgrades::Silent
            } else {
                Upgrades::Told(&announce)
            };
            let s = crate::store::open(&self.store_path, upgrades)?;
            self.store = Some(s);
        }
        Ok(self.store.as_deref().expect("opened above"))
    }

    /// Runs one statement. `Ok(None)` prints nothing.
    pub fn run_statement(&mut self, stmt: &Stmt) -> Result<(Option<Output>, Flow)> {
        use Statement as S;
        self.batch_failed = false;
        let out = match &stmt.kind {
            S::CreateInterface { .. }
            | S::DropInterface { .. }
            | S::ShowInterfaces
            | S::CreateLu { .. }
            | S::DropLu { .. }
            | S::ShowLus
            | S::DescribeLu { .. }
            | S::DescribeInterface { .. }
            | S::CreateInstanceGroup { .. }
            | S::DropInstanceGroup { .. }
            | S::ShowInstanceGroups { .. }
            | S::Get { .. } => self.catalog(stmt)?,
            S::Set { .. } | S::ShowSettings => self.settings(stmt),
            S::Exit => return Ok((None, Flow::Exit)),
            S::Help { topic } => Some(help::help(
                topic.as_ref().map(|t| t.text.as_str()),
                stmt.span,
            )?),
            S::Batch(b) => self.batch(b, stmt.span)?,
            S::Explain(b) => self.explain(b, stmt.span)?,
            S::BatchPause { .. }
            | S::BatchResume { .. }
            | S::BatchCancel { .. }
            | S::BatchRetry { .. }
            | S::BatchEdit { .. } => self.control(stmt)?,
            S::BatchAppend { bid, source } => self.append(bid, source, stmt.span)?,
            S::BatchWaitoff { bid } => self.waitoff(bid, stmt.span)?,
            S::BatchWait { bid, options } => self.wait(bid, options, stmt.span)?,
            S::BatchPurge { options } => self.purge(options, stmt.span)?,
            S::BatchList { .. }
            | S::BatchInfo { .. }
            | S::BatchSummary { .. }
            | S::BatchDetails { .. }
            | S::BatchInProcess { .. }
            | S::BatchHistory { .. }
            | S::BatchOutput { .. }
            | S::ShowNodes => Some(self.monitor(stmt)?),
            S::Job {
                verb,
                job_type,
                options,
            } => self.job(*verb, *job_type, options, stmt.span)?,
            S::JobStatus {
                job_type,
                name,
                options,
            } => self.job_status(
                *job_type,
                name.as_ref().map(|n| n.value.as_str()),
                options,
                stmt.span,
            )?,
            S::Schedule { name, when, body } => self.schedule(&name.text, when, body, stmt.span)?,
            S::JobHistory { name, options } => {
                self.job_history(name.as_ref(), options, stmt.span)?
            }
            S::ShowSchedules => self.show_schedules(stmt.span)?,
            S::DropSchedule { name } => self.drop_schedule(&name.text, name.span)?,
            S::WindowSet {
                name,
                options,
                params,
            } => self.window_set(name, options, params)?,
            S::WindowOpen { name, options } => self.window_open(name, options)?,
            S::WindowClose { name } => {
                self.window_end(name, crate::store::series::SeriesRunStatus::Done, None)?
            }
            S::WindowFail { name, options } => {
                let error = match options.get("ERROR") {
                    Some(crate::ast::Value::Str(e)) => Some(e.as_str()),
                    _ => None,
                };
                self.window_end(name, crate::store::series::SeriesRunStatus::Failed, error)?
            }
            S::WindowStatus { name, options } => {
                self.window_status(name.as_ref(), options, stmt.span)?
            }
        };
        Ok((out, Flow::Continue))
    }
}

fn message(text: String) -> Option<Output> {
    Some(Output::Message(text))
}

/// A stored RFC 3339 time as a cell (shown in local time by the table).
fn time_cell(s: &str) -> Cell {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Cell::Time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| Cell::Text(s.to_string()))
}
