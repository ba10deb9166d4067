//! Per-entity commands (SPEC §5): runs one parsed `FABRIC_COMMAND` for one
//! entity id and returns its result JSON, or the error that fails the entity.
//!
//! The executor calls [`run`] once per entity. `exec` and `shell` start a
//! process ([`process`]); `pipe` keeps one per entity thread, which the
//! executor holds ([`Pipe`]; [`run`] starts one for the one entity),
//! `sql` runs a statement on an interface reached
//! through the executor's [`Connections`] ([`sql`]), `echo` and `sleep` are
//! answered here. `sync_instance` and `delete_instance` need the LU store and
//! are run by the LU layer; [`run`] refuses them with
//! [`CommandError::NotHere`].
//!
//! Decisions the spec leaves open, recorded here so the docs can repeat them:
//!
//! - The id is never spliced into code. `exec` passes it as one argv item;
//!   `shell` writes a reference to `$ENTITY_ID` where each `?` stands (see
//!   [`shell`] for the exact rule); `sql` binds it.
//! - Window variables: `:name` (in `exec` arguments and in `sql`) takes the
//!   value of the window variable `NAME` from [`Context::window`]; `:bid`
//!   falls back to the batch id. A known name with no value (a batch without
//!   `NAME=...` has no window) fails the entity rather than binding NULL or
//!   passing an empty argument, which would silently widen a query.
//! - `ENTITY_TIMEOUT` applies to every command here: a process (with its
//!   whole process group) is killed, an SQL statement is interrupted, `sleep`
//!   stops early; each returns [`CommandError::Timeout`].
//! - [`Context::cancel`] is not read by these commands: a cancelled batch
//!   lets its in-flight entities finish (SPEC §6), and none of these commands
//!   has a safe point at which to stop half way.
//! - A process killed by a signal fails with [`CommandError::Signal`]; its
//!   result JSON has `"exit": 128 + signal`, as a shell would report it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;

use crate::ast::{CommandKind, NAMED_PARAMS};

pub mod pipe;
mod process;
pub mod shell;
mod sql;

pub use pipe::{Pipe, Pipes};
pub use process::resolve as resolve_program;
pub use process::{DEFAULT_OUTPUT_LIMIT, kill_running, run_tracked};

#[cfg(test)]
mod tests;

/// Everything a command may know about the entity it runs for.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub entity_id: &'a str,
    pub bid: &'a str,
    pub lu: &'a str,
    pub node: &'a str,
    /// Window variables (SPEC §9), upper-case names: `FROM_DATE`,
    /// `BATCH_START`, `BATCH_ID`... Exported to `exec` / `shell` as
    /// environment variables and bound as `:from_date`... in `sql`.
    pub window: &'a [(String, String)],
    /// `ENTITY_TIMEOUT`: longer than this and the entity fails.
    pub timeout: Option<Duration>,
    /// Set when the batch is cancelled; not read by these commands (see the
    /// module doc), kept so the LU layer's commands see the same context.
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
    /// Working directory of `exec` / `shell` processes; `None` keeps the
    /// current one.
    pub cwd: Option<&'a Path>,
    /// The program of `exec` (or `sh` for `shell`) found in `PATH` once for
    /// the batch (see [`resolve_program`]); `None`: looked up at each spawn.
    pub program_path: Option<&'a Path>,
    /// `OUTPUT_LIMIT`: the bytes of each of stdout and stderr kept.
    pub output_limit: usize,
    /// `SHOW_OUTPUT`: where each line of an `exec` or `shell` process goes
    /// as it is written; `None`: lines are only kept for the result.
    pub lines: Option<&'a crate::batch::LineSink>,
}

impl<'a> Context<'a> {
    /// A context with only the entity id set, for callers (tests, `EXPLAIN`,
    /// one-off runs) that have no batch around the command.
    pub fn for_entity(entity_id: &'a str) -> Context<'a> {
        Context {
            entity_id,
            bid: "",
            lu: "",
            node: "",
            window: &[],
            timeout: None,
            cancel: None,
            cwd: None,
            program_path: None,
            output_limit: process::DEFAULT_OUTPUT_LIMIT,
            lines: None,
        }
    }

    /// The value of the named parameter `:name` (lower case, without the
    /// colon): the window variable of that name, or the batch id for `bid`.
    pub fn param(&self, name: &str) -> Result<&'a str, CommandError> {
        if let Some((_, v)) = self
            .window
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            return Ok(v.as_str());
        }
        if name.eq_ignore_ascii_case("bid") {
            return Ok(self.bid);
        }
        if NAMED_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            Err(CommandError::NoWindowValue(name.to_ascii_lowercase()))
        } else {
            Err(CommandError::UnknownParam(name.to_string()))
        }
    }
}

/// How `sql` reaches an interface: the seam between the per-entity
/// commands and the kinds of interface. `execute` runs `sql` on
/// `interface` for the entity of `ctx`, its parameters bound (positional
/// ones to the entity id, named ones to window values: [`sql`]'s module
/// doc), within `ctx.timeout`, and gives the rows it changed or returned.
/// SQLite and CSV interfaces implement it with [`sql::on_sqlite`],
/// PostgreSQL ones with [`sql::on_postgres`]. An
/// implementation reports its own failures (no such interface, cannot
/// open) with [`CommandError::Interface`].
pub trait Connections {
    fn execute(&self, interface: &str, sql: &str, ctx: &Context) -> Result<usize, CommandError>;
}

/// A run's pool of connections to its command's interface, or none (the
/// command needs no interface, or it could not be resolved).
impl Connections for Option<crate::source::Pool> {
    fn execute(&self, interface: &str, sql: &str, ctx: &Context) -> Result<usize, CommandError> {
        let pool = self.as_ref().ok_or_else(|| CommandError::Interface {
            interface: interface.to_string(),
            reason: "not resolved for this batch".into(),
        })?;
        pool.with(|conn| match conn {
            crate::source::Conn::Sqlite(c) => sql::on_sqlite(c, interface, sql, ctx),
            crate::source::Conn::Postgres(c) => sql::on_postgres(c, interface, sql, ctx),
        })
        .map_err(|e| CommandError::Interface {
            interface: interface.to_string(),
            reason: e.to_string(),
        })?
    }
}

/// Why a command failed its entity. The message is the entity's error text.
#[derive(Debug, Error)]
pub enum CommandError {
    /// `sync_instance` / `delete_instance` are run by the LU layer, which
    /// owns the LU store; the executor must route them there.
    #[error("{0} is run by the LU layer, not by the command runner")]
    NotHere(&'static str),
    #[error(
        "unknown parameter :{0}; the named parameters are \
         :from_date, :batch_start, :batch_end, :batch_id and :bid"
    )]
    UnknownParam(String),
    #[error(
        "no value for :{0}: window variables are set only for a named batch \
         (WITH NAME='...')"
    )]
    NoWindowValue(String),
    /// A NUL byte cannot be put in an argv item or an environment variable.
    #[error("the entity id contains a NUL byte, which cannot be passed to a program")]
    NulInId,
    #[error("cannot run '{program}': {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    /// The process ended with a non-zero code; [`CommandError::result`]
    /// gives the result JSON to record with the error.
    #[error("exit code {code}{}", stderr_hint(.stderr))]
    Exit {
        code: i32,
        stdout: String,
        stderr: String,
        /// OUTPUT_LIMIT cut stdout or stderr.
        truncated: bool,
    },
    /// The process was killed by a signal it did not get from us.
    #[error("killed by signal {signal}{}", stderr_hint(.stderr))]
    Signal {
        signal: i32,
        stdout: String,
        stderr: String,
        truncated: bool,
    },
    /// `ENTITY_TIMEOUT` passed; the work was stopped.
    #[error("timed out after {}", crate::ast::Duration(.0.as_millis() as u64))]
    Timeout(Duration),
    /// The executor could not give a connection to the interface.
    #[error("cannot use interface {interface}: {reason}")]
    Interface { interface: String, reason: String },
    #[error("sql error on interface {interface}: {source}")]
    Sql {
        interface: String,
        source: rusqlite::Error,
    },
    /// The statement failed on a `POSTGRES` interface: the server's
    /// message, or why the statement could not be sent.
    #[error("sql error on interface {interface}: {source}")]
    Postgres {
        interface: String,
        source: crate::source::SourceError,
    },
    #[error(transparent)]
    Pipe(#[from] pipe::PipeError),
}

impl CommandError {
    /// Wraps a database error from the statement run on `interface`.
    pub fn sql(interface: &str, source: rusqlite::Error) -> CommandError {
        CommandError::Sql {
            interface: interface.to_string(),
            source,
        }
    }

    /// The result JSON of a failed process, to record with the error text
    /// (an entity whose program printed why it failed should keep that).
    pub fn result(&self) -> Option<Value> {
        match self {
            CommandError::Exit {
                code,
                stdout,
                stderr,
                truncated,
            } => Some(process_json(*code, stdout, stderr, *truncated)),
            CommandError::Signal {
                signal,
                stdout,
                stderr,
                truncated,
            } => Some(process_json(128 + signal, stdout, stderr, *truncated)),
            CommandError::Pipe(e) => e.result(),
            _ => None,
        }
    }
}

/// The result of `exec` and `shell` (SPEC §5); `"truncated": true` when
/// OUTPUT_LIMIT cut stdout or stderr.
fn process_json(code: i32, stdout: &str, stderr: &str, truncated: bool) -> Value {
    let mut v = json!({"exit": code, "stdout": stdout, "stderr": stderr});
    if truncated {
        v["truncated"] = Value::Bool(true);
    }
    v
}

/// `: <first line of stderr>` for the error text, so a failed entity says
/// why without the reader opening its result; the full text is in the result.
fn stderr_hint(stderr: &str) -> String {
    line_hint(stderr.lines().map(str::trim).find(|l| !l.is_empty()))
}

/// `: <line>` for an error text, cut at 200 characters; nothing for no line.
fn line_hint(line: Option<&str>) -> String {
    const MAX_CHARS: usize = 200;
    match line {
        None => String::new(),
        Some(line) if line.chars().count() > MAX_CHARS => {
            let cut: String = line.chars().take(MAX_CHARS).collect();
            format!(": {cut}...")
        }
        Some(line) => format!(": {line}"),
    }
}

/// Runs `cmd` for the entity in `ctx` and returns its result JSON.
pub fn run(
    cmd: &CommandKind,
    ctx: &Context,
    conns: &dyn Connections,
) -> Result<Value, CommandError> {
    match cmd {
        CommandKind::SyncInstance { .. } | CommandKind::DeleteInstance { .. } => {
            Err(CommandError::NotHere(cmd.name()))
        }
        CommandKind::Exec { program, args } => process::exec(program, args, ctx),
        CommandKind::Shell { script } => process::shell(script, ctx),
        CommandKind::Pipe { program, args } => Ok(pipe::once(program, args, ctx)?),
        CommandKind::Sql {
            interface,
            statement,
        } => sql::run(&interface.text, statement, ctx, conns),
        CommandKind::Echo => Ok(json!({ "echo": ctx.entity_id })),
        CommandKind::Sleep { ms } => sleep(*ms, ctx.timeout),
    }
}

/// `sleep <ms> ?`. It honours `ENTITY_TIMEOUT` like any command, so that
/// timeout handling can be shown and tested without a real program.
fn sleep(ms: u64, timeout: Option<Duration>) -> Result<Value, CommandError> {
    let wanted = Duration::from_millis(ms);
    match timeout {
        Some(limit) if limit < wanted => {
            std::thread::sleep(limit);
            Err(CommandError::Timeout(limit))
        }
        _ => {
            std::thread::sleep(wanted);
            Ok(json!({ "slept_ms": ms }))
        }
    }
}
