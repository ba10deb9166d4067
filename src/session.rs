//! Runs statements. [`Session::run_statement`] is the one door the command
//! line (and the REPL) go through: a statement in, something to print out.
//!
//! A session holds what lasts between statements: the store (opened on first
//! use, so `SET` or `HELP` never create one), the settings, the working
//! directory relative paths are resolved against.

use crate::ast::{InterfaceKind, OutputFormat, Setting, Span, Statement, Stmt, Value};
use crate::batch::{BatchStatus, Request};
use crate::output::{Cell, KeyValues, Output, Table};
use crate::source;
use crate::store::{self, GroupDef, InterfaceDef, LuDef, LuTableDef, Store, StoreError, Upgrades};
use std::path::PathBuf;
use thiserror::Error;

/// Why a statement could not run: the error of the layer it came from,
/// or a refusal of the statement itself.
#[derive(Debug, Error)]
pub enum StatementErrorKind {
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecErrorKind),
    #[error(transparent)]
    Monitor(#[from] crate::monitor::MonitorErrorKind),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Lu(#[from] crate::lu::LuError),
    /// The statement cannot do what it asks: a control statement's
    /// refusal, a query that does not fit, a topic HELP does not know.
    #[error("{0}")]
    Refused(String),
    /// Parsed, but not built yet.
    #[error("{0} is not implemented yet in this version of batchsh")]
    NotImplemented(&'static str),
}

/// A statement's error: its kind, and the part of the statement it is
/// about (a name, an option, the SQL), when that is known.
#[derive(Debug, Error)]
#[error("{kind}")]
pub struct StatementError {
    /// Boxed: the layers' errors are large, and travel in every `Result`.
    pub kind: Box<StatementErrorKind>,
    pub span: Option<Span>,
}

impl StatementError {
    /// `kind`, pointing at `span`.
    pub fn at(span: Span, kind: impl Into<StatementErrorKind>) -> StatementError {
        StatementError {
            kind: Box::new(kind.into()),
            span: Some(span),
        }
    }

    /// A refusal, pointing at `span`.
    pub fn refused(span: Span, message: impl Into<String>) -> StatementError {
        StatementError::at(span, StatementErrorKind::Refused(message.into()))
    }

    /// Points at `span` unless it points somewhere already.
    fn or_at(mut self, span: Span) -> StatementError {
        self.span.get_or_insert(span);
        self
    }
}

impl<K: Into<StatementErrorKind>> From<K> for StatementError {
    fn from(kind: K) -> StatementError {
        StatementError {
            kind: Box::new(kind.into()),
            span: None,
        }
    }
}

impl From<crate::exec::ExecError> for StatementError {
    fn from(e: crate::exec::ExecError) -> StatementError {
        StatementError {
            kind: Box::new((*e.kind).into()),
            span: e.span,
        }
    }
}

impl From<crate::monitor::MonitorError> for StatementError {
    fn from(e: crate::monitor::MonitorError) -> StatementError {
        StatementError {
            kind: Box::new((*e.kind).into()),
            span: e.span,
        }
    }
}

type Result<T> = std::result::Result<T, StatementError>;

/// Session settings (`SET`, `SHOW SETTINGS`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub format: OutputFormat,
    pub progress: bool,
}

pub struct Session {
    store_path: PathBuf,
    store: Option<Store>,
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
    /// Set by Ctrl-C while a batch runs.
    pub interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
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
        }
    }

    /// A run has ended: its exit code is noted, a FAILED batch's reason
    /// is printed (stderr: the result row shows counts, not why), and its
    /// result row returned.
    fn ended(&mut self, fin: &crate::exec::run::Finished) -> Output {
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
            RunEnd::TakenOver { why, .. } => eprintln!("error: {why}"),
            RunEnd::Ended {
                status: BatchStatus::Failed,
                error,
                ..
            } => eprintln!(
                "error: batch {bid} ended FAILED: {}",
                error.as_deref().unwrap_or("no reason was recorded")
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
            RunEnd::Ended { .. } if c.failed > 0 => eprintln!(
                "warning: batch {bid} ended DONE with {} of {} entities FAILED; \
                 BATCH_DETAILS '{bid}' STATUS='FAILED' lists them, BATCH_RETRY '{bid}' runs \
                 them again (not those whose id is empty, not UTF-8 or too long)",
                c.failed, c.total
            ),
            _ => {}
        }
        result_row(fin)
    }

    /// Records how a batch's run ended: its exit code (SPEC §1, see
    /// [`crate::batch::RunEnd::exit_code`]), and whether the statement
    /// failed.
    fn note_end(&mut self, bid: &str, end: &crate::batch::RunEnd) {
        self.batch_failed = end.is_failure();
        self.outcomes.insert(bid.to_string(), end.exit_code());
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

    fn env<'a>(&'a self, store: &'a Store) -> crate::exec::Env<'a> {
        crate::exec::Env {
            store,
            home: &self.home,
            node: &self.node,
            dc: &self.dc,
            progress: self.progress_allowed && self.settings.progress,
            interrupt: &self.interrupt,
        }
    }

    fn batch(&mut self, b: &crate::ast::BatchStmt, span: Span) -> Result<Option<Output>> {
        self.store()?;
        let store = self.store.as_ref().expect("opened above");
        let plan = crate::exec::plan(store, b, span, self.workers)?;
        if let Some(Value::Int(n)) = b.options.get("MAX_WORKERS_PER_NODE")
            && *n > plan.workers as i64
            && !self.quiet
        {
            eprintln!(
                "note: MAX_WORKERS_PER_NODE={n} is more than this node's {} workers (its \
                 cores); {} run",
                plan.node_workers, plan.workers
            );
        }
        let fin = crate::exec::start(&self.env(store), &plan, span)?;
        self.last_bid = Some(fin.bid.clone());
        Ok(Some(self.ended(&fin)))
    }

    fn resolve(&mut self, bid: &Option<crate::ast::Text>, span: Span) -> Result<String> {
        let last = self.last_bid.clone();
        let store = self.store()?;
        let at = bid.as_ref().map_or(span, |b| b.span);
        crate::store::resolve_bid(
            store,
            bid.as_ref().map(|b| b.value.as_str()),
            last.as_deref(),
        )
        .map_err(|e| StatementError::at(at, e))
    }

    fn control(&mut self, stmt: &Stmt) -> Result<Option<Output>> {
        use Statement as S;
        let (bid_text, verb) = match &stmt.kind {
            S::BatchPause { bid } => (bid, "pause"),
            S::BatchResume { bid } => (bid, "resume"),
            S::BatchCancel { bid } => (bid, "cancel"),
            S::BatchRetry { bid, .. } => (bid, "retry"),
            S::BatchEdit { bid, .. } => (bid, "edit"),
            _ => unreachable!("control() takes control statements"),
        };
        let bid = self.resolve(bid_text, stmt.span)?;
        let at = bid_text.as_ref().map_or(stmt.span, |b| b.span);
        self.last_bid = Some(bid.clone());
        let store = self.store.as_ref().expect("resolve opened it");
        let state = store
            .batch_state(&bid)
            .map_err(|e| StatementError::at(at, e))?;
        let serr = |e: StoreError| StatementError::at(at, e);
        let is_final = state.status.is_final();
        let alive = state.owner_alive();
        let refuse = |why: String| {
            Err(StatementError::refused(
                at,
                format!("cannot {verb} batch {bid}: {why}"),
            ))
        };
        match &stmt.kind {
            S::BatchPause { .. } => {
                if is_final {
                    return refuse(format!("it has ended ({})", state.status));
                }
                if state.status == BatchStatus::Paused {
                    return refuse("it is paused already".into());
                }
                if alive {
                    store.request(&bid, Some(Request::Pause)).map_err(serr)?;
                    Ok(message(format!(
                        "batch {bid}: pause requested; entities in flight finish"
                    )))
                } else if store
                    .pause_unowned(&bid, &state, &self.node)
                    .map_err(serr)?
                {
                    Ok(message(format!("batch {bid} paused")))
                } else {
                    refuse(changed_meanwhile(store, &bid, &state))
                }
            }
            S::BatchResume { .. } => {
                if alive
                    && state.status != BatchStatus::Paused
                    && state.requested == Some(Request::Pause)
                {
                    // Paused so recently that the run has not seen it yet.
                    store.request(&bid, None).map_err(serr)?;
                    return Ok(message(format!(
                        "batch {bid}: the pause asked for is withdrawn"
                    )));
                }
                if state.status != BatchStatus::Paused {
                    return refuse(format!("it is {}, not PAUSED", state.status));
                }
                if alive {
                    store.request(&bid, None).map_err(serr)?;
                    Ok(message(format!("batch {bid}: resume requested")))
                } else {
                    // Nobody runs it: resuming means running it here.
                    self.rerun(&bid, &state, false, stmt.span).map(Some)
                }
            }
            S::BatchCancel { .. } => {
                if is_final {
                    return refuse(format!("it has ended ({})", state.status));
                }
                if alive {
                    store.request(&bid, Some(Request::Cancel)).map_err(serr)?;
                    Ok(message(format!(
                        "batch {bid}: cancel requested; entities in flight finish"
                    )))
                } else if store
                    .cancel_unowned(&bid, &state, &self.node)
                    .map_err(serr)?
                {
                    Ok(message(format!("batch {bid} cancelled")))
                } else {
                    refuse(changed_meanwhile(store, &bid, &state))
                }
            }
            S::BatchRetry { options, .. } => {
                // A finished batch has no owner; one that has is being
                // taken over by another retry, which has not started yet.
                if alive {
                    return refuse(format!(
                        "it is running on node {} (pid {})",
                        state.owner_node.clone().unwrap_or_default(),
                        state.owner_pid.unwrap_or_default()
                    ));
                }
                let allow_cancelled =
                    matches!(options.get("ALLOW_CANCELLED"), Some(Value::Bool(true)));
                if state.status == BatchStatus::Cancelled && !allow_cancelled {
                    return refuse("it was cancelled; add ALLOW_CANCELLED=true to retry it".into());
                }
                let finished = state.status == BatchStatus::Done;
                self.rerun(&bid, &state, finished, stmt.span).map(Some)
            }
            S::BatchEdit { options, .. } => {
                if is_final {
                    return refuse(format!("it has ended ({})", state.status));
                }
                let Some(Value::Int(n)) = options.get("MAX_WORKERS_PER_NODE") else {
                    return refuse("MAX_WORKERS_PER_NODE is missing".into());
                };
                if *n < 1 {
                    return refuse(format!("MAX_WORKERS_PER_NODE must be 1 or more, not {n}"));
                }
                store.set_max_workers(&bid, *n, &self.node).map_err(serr)?;
                let cap = if *n > self.workers as i64 {
                    format!(
                        " (a node runs at most as many workers as it has cores: {} on this one)",
                        self.workers
                    )
                } else {
                    String::new()
                };
                Ok(message(format!(
                    "batch {bid}: MAX_WORKERS_PER_NODE={n}{cap}"
                )))
            }
            _ => unreachable!("matched above"),
        }
    }

    /// Runs an existing batch again here: a retry, or a resume of a batch
    /// nobody runs. The statement is re-planned from its stored text.
    fn rerun(
        &mut self,
        bid: &str,
        state: &crate::store::batches::BatchState,
        finished: bool,
        span: Span,
    ) -> Result<Output> {
        let store = self.store.as_ref().expect("opened");
        let serr = |e: StoreError| StatementError::at(span, e);
        let parsed = crate::syntax::parse(&state.command).map_err(|e| {
            StatementError::refused(
                span,
                format!("the stored command of batch {bid} does not parse: {e:?}"),
            )
        })?;
        let Some(Statement::Batch(b)) = parsed.into_iter().next().map(|s| s.kind) else {
            return Err(StatementError::refused(
                span,
                format!("batch {bid} has no BATCH command stored"),
            ));
        };
        // Its errors point into the stored statement, not the one typed:
        // they are told against the batch, with that statement quoted.
        let plan = crate::exec::plan(store, &b, span, self.workers).map_err(|e| {
            StatementError::refused(
                span,
                format!(
                    "batch {bid} cannot run again: {} (its statement: {})",
                    e.kind, state.command
                ),
            )
        })?;
        let execution_id = uuid::Uuid::new_v4().to_string();
        crate::knobs::gate();
        if store
            .prepare_retry(bid, finished, state, &self.node, &execution_id)
            .map_err(serr)?
            .is_none()
        {
            return Err(StatementError::refused(
                span,
                format!(
                    "cannot run batch {bid} here: {}",
                    changed_meanwhile(store, bid, state)
                ),
            ));
        }
        let fin = crate::exec::run::run(
            &self.env(store),
            &plan,
            bid,
            &execution_id,
            !state.ids_complete,
        )?;
        Ok(self.ended(&fin))
    }

    /// Opens the store now if its file exists (so that an upgrade is
    /// announced here, not done silently by the REPL's Tab completion);
    /// an error is left for the first statement that needs the store.
    pub fn open_existing_store(&mut self) {
        if self.store.is_none() && self.store_path.is_file() {
            let _ = self.store();
        }
    }

    fn store(&mut self) -> Result<&Store> {
        if self.store.is_none() {
            let upgrades = if self.quiet {
                Upgrades::Silent
            } else {
                Upgrades::Announced
            };
            let s = Store::open_with(&self.store_path, upgrades)?;
            self.store = Some(s);
        }
        Ok(self.store.as_ref().expect("opened above"))
    }

    /// Runs one statement. `Ok(None)` prints nothing.
    pub fn run_statement(&mut self, stmt: &Stmt) -> Result<(Option<Output>, Flow)> {
        use Statement as S;
        self.batch_failed = false;
        let out = match &stmt.kind {
            S::CreateInterface {
                or_replace,
                name,
                kind,
                location,
                options,
            } => {
                let location_text = match kind {
                    InterfaceKind::Postgres => location.value.clone(),
                    _ => source::resolve_path(&location.value, &self.cwd)
                        .to_string_lossy()
                        .into_owned(),
                };
                let delimiter = match options.get("DELIMITER") {
                    Some(Value::Str(d)) if d.len() == 1 => d.chars().next().unwrap_or(','),
                    Some(Value::Str(d)) => {
                        let at = options
                            .0
                            .iter()
                            .find(|o| o.name == "DELIMITER")
                            .map_or(stmt.span, |o| o.span);
                        return Err(StatementError::refused(
                            at,
                            format!("DELIMITER must be one ASCII character, not '{d}'"),
                        ));
                    }
                    _ => ',',
                };
                let header = !matches!(options.get("HEADER"), Some(Value::Bool(false)));
                let def = InterfaceDef {
                    name: name.text.clone(),
                    kind: *kind,
                    location: location_text,
                    header,
                    delimiter,
                    created_at: store::now(),
                };
                source::check(&def.source()).map_err(|e| StatementError::at(location.span, e))?;
                let store = self.store()?;
                let replaced = store
                    .find_interface(&def.name)
                    .map_err(|e| StatementError::at(name.span, e))?
                    .is_some();
                store
                    .create_interface(&def, *or_replace)
                    .map_err(|e| StatementError::at(name.span, e))?;
                message(format!(
                    "interface {} {} ({} {})",
                    def.name,
                    created_or_replaced(replaced),
                    kind.keyword(),
                    def.location
                ))
            }
            S::DropInterface { name } => {
                self.store()?
                    .drop_interface(&name.text)
                    .map_err(|e| StatementError::at(name.span, e))?;
                message(format!("interface {} dropped", name.text))
            }
            S::ShowInterfaces => {
                let mut t =
                    Table::new(["Name", "Type", "Location", "Header", "Delimiter", "Created"]);
                for i in self
                    .store()?
                    .interfaces()
                    .map_err(|e| StatementError::at(stmt.span, e))?
                {
                    let csv = i.kind == InterfaceKind::Csv;
                    t.rows.push(vec![
                        Cell::Text(i.name),
                        Cell::Text(i.kind.keyword().into()),
                        Cell::Text(i.location),
                        if csv {
                            Cell::Bool(i.header)
                        } else {
                            Cell::Null
                        },
                        if csv {
                            Cell::Text(i.delimiter.to_string())
                        } else {
                            Cell::Null
                        },
                        time_cell(&i.created_at),
                    ]);
                }
                Some(Output::Table(t))
            }
            S::CreateLu {
                or_replace,
                name,
                interface,
                root,
                tables,
            } => {
                let store = self.store()?;
                let iface = store
                    .interface(&interface.text)
                    .map_err(|e| StatementError::at(interface.span, e))?;
                // Every query must compile on the interface, and only
                // read, now, not fail for each entity later. Compiling needs
                // the schema only: a CSV interface's rows are not loaded.
                let conn = source::schema(&iface.source())
                    .map_err(|e| StatementError::at(interface.span, e))?;
                let compile = |sql: &str, what: String, span: Span| -> Result<()> {
                    source::check_read_query(&conn, sql).map_err(|e| {
                        let message = match e {
                            source::SourceError::Query { message, .. } => format!(
                                "the {what} query does not run on interface {}: {message}",
                                iface.name
                            ),
                            e => format!("the {what} query is refused: {e}"),
                        };
                        StatementError::refused(span, message)
                    })
                };
                compile(&root.value, "ROOT".into(), root.span)?;
                for t in tables {
                    compile(&t.sql.value, format!("TABLE {}", t.name.text), t.sql.span)?;
                }
                let def = LuDef {
                    name: name.text.clone(),
                    interface: iface.name.clone(),
                    root_sql: root.value.clone(),
                    tables: tables
                        .iter()
                        .map(|t| LuTableDef {
                            name: t.name.text.clone(),
                            key: t.key.iter().map(|k| k.text.clone()).collect(),
                            sql: t.sql.value.clone(),
                        })
                        .collect(),
                    created_at: store::now(),
                };
                crate::lu::check_table_names(&def).map_err(|e| StatementError::at(name.span, e))?;
                let replaced = store
                    .find_lu(&def.name)
                    .map_err(|e| StatementError::at(name.span, e))?;
                store
                    .create_lu(&def, *or_replace)
                    .map_err(|e| StatementError::at(name.span, e))?;
                message(format!(
                    "LU {} {} on interface {} ({} table{})",
                    // Replacing keeps the LU's first name.
                    replaced.as_ref().map_or(&def.name, |old| &old.name),
                    created_or_replaced(replaced.is_some()),
                    def.interface,
                    def.tables.len(),
                    if def.tables.len() == 1 { "" } else { "s" }
                ))
            }
            S::DropLu { name } => {
                let home = self.home.clone();
                let store = self.store()?;
                let def = store
                    .lu(&name.text)
                    .map_err(|e| StatementError::at(name.span, e))?;
                if let Some(user) = store
                    .drop_lu_unless_in_use(&def.name)
                    .map_err(|e| StatementError::at(name.span, e))?
                {
                    return Err(StatementError::refused(
                        name.span,
                        format!(
                            "LU {} is in use by batch {bid}, which process {} on node {} is \
                             running; dropping it now would delete the data that batch \
                             reads or writes. Wait for the batch to end, or cancel it \
                             (BATCH_CANCEL '{bid}'), then drop the LU",
                            def.name,
                            user.owner_pid.unwrap_or_default(),
                            user.owner_node,
                            bid = user.bid,
                        ),
                    ));
                }
                // The LU's synced data goes with its definition, so that an
                // LU created again under this name starts empty.
                if let Ok(path) = crate::lu::store_path(&home, &def.name) {
                    for suffix in ["", "-wal", "-shm"] {
                        let mut p = path.clone().into_os_string();
                        p.push(suffix);
                        let _ = std::fs::remove_file(p);
                    }
                }
                message(format!("LU {} dropped, with its synced data", def.name))
            }
            S::ShowLus => {
                let mut t = Table::new(["Name", "Interface", "Tables", "Root query"]);
                for lu in self
                    .store()?
                    .lus()
                    .map_err(|e| StatementError::at(stmt.span, e))?
                {
                    let tables: Vec<&str> = lu.tables.iter().map(|t| t.name.as_str()).collect();
                    t.rows.push(vec![
                        Cell::Text(lu.name.clone()),
                        Cell::Text(lu.interface.clone()),
                        Cell::Text(tables.join(", ")),
                        Cell::Text(lu.root_sql.clone()),
                    ]);
                }
                Some(Output::Table(t))
            }
            S::DescribeLu { name } => {
                let lu = self
                    .store()?
                    .lu(&name.text)
                    .map_err(|e| StatementError::at(name.span, e))?;
                let mut t = Table::new(["Part", "Name", "Key", "Query"]);
                t.rows.push(vec![
                    Cell::Text("ROOT".into()),
                    Cell::Text(lu.name.clone()),
                    Cell::Null,
                    Cell::Text(lu.root_sql.clone()),
                ]);
                for tb in &lu.tables {
                    let key = if tb.key.is_empty() {
                        "(first column)".to_string()
                    } else {
                        tb.key.join(", ")
                    };
                    t.rows.push(vec![
                        Cell::Text("TABLE".into()),
                        Cell::Text(tb.name.clone()),
                        Cell::Text(key),
                        Cell::Text(tb.sql.clone()),
                    ]);
                }
                let mut out = Some(Output::Table(t));
                if let Some(Output::Table(t)) = &mut out {
                    t.rows.insert(
                        0,
                        vec![
                            Cell::Text("INTERFACE".into()),
                            Cell::Text(lu.interface.clone()),
                            Cell::Null,
                            Cell::Null,
                        ],
                    );
                }
                out
            }
            S::CreateInstanceGroup {
                or_replace,
                lu,
                group,
                interface,
                sql,
            } => {
                let store = self.store()?;
                let lu_def = store
                    .lu(&lu.text)
                    .map_err(|e| StatementError::at(lu.span, e))?;
                let (iface_name, iface_span) = match interface {
                    Some(i) => (i.text.clone(), i.span),
                    None => (lu_def.interface.clone(), lu.span),
                };
                let iface = store
                    .interface(&iface_name)
                    .map_err(|e| StatementError::at(iface_span, e))?;
                let conn = source::schema(&iface.source())
                    .map_err(|e| StatementError::at(iface_span, e))?;
                let columns = source::column_count(&conn, &sql.value)
                    .map_err(|e| StatementError::at(sql.span, e))?;
                if columns != 1 {
                    return Err(StatementError::refused(
                        sql.span,
                        format!("the query must return one column only; it returns {columns}"),
                    ));
                }
                let def = GroupDef {
                    lu: lu_def.name.clone(),
                    name: group.text.clone(),
                    interface: interface.as_ref().map(|_| iface.name.clone()),
                    sql: sql.value.clone(),
                    created_at: store::now(),
                };
                let replaced = store
                    .find_group(&def.lu, &def.name)
                    .map_err(|e| StatementError::at(group.span, e))?
                    .is_some();
                store
                    .create_group(&def, *or_replace)
                    .map_err(|e| StatementError::at(group.span, e))?;
                message(format!(
                    "instance group {}.{} {}",
                    def.lu,
                    def.name,
                    created_or_replaced(replaced)
                ))
            }
            S::DropInstanceGroup { lu, group } => {
                self.store()?
                    .drop_group(&lu.text, &group.text)
                    .map_err(|e| StatementError::at(group.span, e))?;
                message(format!("instance group {}.{} dropped", lu.text, group.text))
            }
            S::ShowInstanceGroups { lu } => {
                let (filter, span) = match lu {
                    Some(n) => (Some(n.text.as_str()), n.span),
                    None => (None, stmt.span),
                };
                let groups = self
                    .store()?
                    .groups(filter)
                    .map_err(|e| StatementError::at(span, e))?;
                let mut t = Table::new(["LU", "Group", "Interface", "Query"]);
                for g in groups {
                    t.rows.push(vec![
                        Cell::Text(g.lu),
                        Cell::Text(g.name),
                        g.interface.map_or(Cell::Null, Cell::Text),
                        Cell::Text(g.sql),
                    ]);
                }
                Some(Output::Table(t))
            }
            S::Set { setting } => {
                match setting {
                    Setting::Format(f) => self.settings.format = *f,
                    Setting::Progress(p) => self.settings.progress = *p,
                }
                None
            }
            S::ShowSettings => {
                let mut kv = KeyValues::default();
                kv.rows.push((
                    "format".into(),
                    Cell::Text(self.settings.format.name().into()),
                ));
                kv.rows.push((
                    "progress".into(),
                    Cell::Text(if self.settings.progress { "on" } else { "off" }.into()),
                ));
                // Whether a bar shows at all: only on a terminal, and not
                // with --quiet or --no-progress, whatever the setting.
                kv.rows.push((
                    "progress_shown".into(),
                    Cell::Bool(self.progress_allowed && self.settings.progress),
                ));
                kv.rows.push((
                    "store".into(),
                    Cell::Text(self.store_path.display().to_string()),
                ));
                Some(Output::KeyValues(kv))
            }
            S::Exit => return Ok((None, Flow::Exit)),
            S::Help { topic } => Some(help(topic.as_ref().map(|t| t.text.as_str()), stmt.span)?),
            S::Get { lu, id } => {
                let home = self.home.clone();
                let def = self
                    .store()?
                    .lu(&lu.text)
                    .map_err(|e| StatementError::at(lu.span, e))?;
                let out = crate::lu::get_output(&home, &def, &id.value)
                    .map_err(|e| StatementError::at(id.span, e))?;
                Some(out)
            }
            S::Batch(b) => self.batch(b, stmt.span)?,
            S::Explain(b) => {
                let (home, workers) = (self.home.clone(), self.workers);
                let store = self.store()?;
                let plan = crate::exec::plan(store, b, stmt.span, workers)?;
                Some(Output::KeyValues(crate::exec::explain(&plan, b, &home)?))
            }
            S::BatchPause { .. }
            | S::BatchResume { .. }
            | S::BatchCancel { .. }
            | S::BatchRetry { .. }
            | S::BatchEdit { .. } => self.control(stmt)?,
            S::BatchList { .. }
            | S::BatchInfo { .. }
            | S::BatchSummary { .. }
            | S::BatchDetails { .. }
            | S::BatchInProcess { .. }
            | S::BatchHistory { .. } => {
                let last = self.last_bid.clone();
                let node = self.node.clone();
                let store = self.store()?;
                let out = crate::monitor::run(store, &stmt.kind, last.as_deref(), &node)
                    .map_err(|e| StatementError::from(e).or_at(stmt.span))?;
                Some(out)
            }
            other => {
                return Err(StatementError::at(
                    stmt.span,
                    StatementErrorKind::NotImplemented(typed_name(other)),
                ));
            }
        };
        Ok((out, Flow::Continue))
    }
}

/// `HELP`: every statement with its summary; `HELP <statement>`: its
/// section of the grammar file (syntax and examples).
fn help(topic: Option<&str>, span: Span) -> Result<Output> {
    use crate::syntax::{grammar, keywords};
    let Some(topic) = topic else {
        let mut t = Table::new(["Statement", "Summary"]);
        for s in keywords::STATEMENTS {
            t.rows.push(vec![
                Cell::Text(s.name.into()),
                Cell::Text(s.summary.into()),
            ]);
        }
        return Ok(Output::Table(t));
    };
    // The parser accepts only statement names as topics, and a test holds
    // the grammar to a section per statement: this is a safety net.
    grammar::help_text(topic)
        .map(Output::Message)
        .ok_or_else(|| {
            StatementError::refused(
                span,
                format!("the grammar has no section for {topic}; HELP lists the statements"),
            )
        })
}

fn message(text: String) -> Option<Output> {
    Some(Output::Message(text))
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

/// Why a control statement lost its race: another process changed the
/// batch between the moment it was read (`seen`) and the write. The owner
/// it judged dead may have woken up (it had stalled: its heartbeat came
/// back), or another process took the batch over.
fn changed_meanwhile(store: &Store, bid: &str, seen: &crate::store::batches::BatchState) -> String {
    match store.batch_state(bid) {
        Ok(now) => match now.owner_node {
            Some(node)
                if Some(&node) == seen.owner_node.as_ref()
                    && now.owner_pid == seen.owner_pid
                    && now.owner_alive() =>
            {
                format!(
                    "it is running on node {node} (pid {}): its heartbeat came back, so it had \
                     stalled, not died; it is {} now",
                    now.owner_pid.unwrap_or_default(),
                    now.status
                )
            }
            Some(node) => format!(
                "node {node} (pid {}) took it over meanwhile; it is {} now",
                now.owner_pid.unwrap_or_default(),
                now.status
            ),
            None => format!(
                "another process changed it meanwhile; it is {} now, try again",
                now.status
            ),
        },
        Err(e) => e.to_string(),
    }
}

/// What a CREATE [OR REPLACE] did.
fn created_or_replaced(replaced: bool) -> &'static str {
    if replaced { "replaced" } else { "created" }
}

/// A statement's name as it is typed: `SHOW SCHEDULES`, where
/// [`Statement::name`] (the `statement` key of `batchsh parse`) says
/// `SHOW_SCHEDULES`.
fn typed_name(s: &Statement) -> &'static str {
    match s {
        Statement::ShowSchedules => "SHOW SCHEDULES",
        Statement::DropSchedule { .. } => "DROP SCHEDULE",
        other => other.name(),
    }
}

/// A stored RFC 3339 time as a cell (shown in local time by the table).
fn time_cell(s: &str) -> Cell {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Cell::Time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| Cell::Text(s.to_string()))
}
