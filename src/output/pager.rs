//! The pager (SPEC §10): a table taller than the screen, printed on a
//! terminal, goes through `$PAGER` (`less` by default), as psql's does.
//!
//! Decisions, quoted by `docs/output.md`:
//!
//! - The command is `BATCHSH_PAGER`, else `PAGER`, else `less`; it runs
//!   through `sh -c`, so it may carry options (`PAGER='less -S'`). An
//!   empty value, or `cat`, turns the pager off.
//! - `less` gets `LESS=-SRFX` when `LESS` is not set (as git does): `-S`
//!   a row stays one line and a wide table scrolls sideways, `-R` the
//!   status colours show, `-F` a text that fits the screen after all is
//!   printed as is, `-X` the text stays on the screen after `q`.
//! - Only the table format pages (tables, key/value lists, long `HELP`
//!   text): JSON and CSV are for programs, and a person reading them on a
//!   terminal pipes them on.
//! - Never when stdout is not a terminal; `SET PAGER off` turns it off for
//!   the session.
//! - A pager that cannot start, or ends with a failure, is reported on
//!   stderr and the text is printed as is: nothing is lost.
//! - While the pager runs, Ctrl-C is the pager's (`less` uses it to stop
//!   a search): batchsh's handlers ignore it ([`is_running`]), so a user
//!   who presses it twice in `less` does not end the REPL under it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// A pager runs now.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Whether a pager runs now: a Ctrl-C is then the pager's business.
pub fn is_running() -> bool {
    RUNNING.load(Ordering::SeqCst)
}

/// Marks the pager running while it lives.
struct Running;

impl Running {
    fn start() -> Running {
        RUNNING.store(true, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::SeqCst);
    }
}

/// The pager command the environment asks for (`BATCHSH_PAGER`, else
/// `PAGER`, else `less`); `None` when it turns the pager off.
pub fn command() -> Option<String> {
    command_from(
        std::env::var("BATCHSH_PAGER").ok().as_deref(),
        std::env::var("PAGER").ok().as_deref(),
    )
}

/// [`command`] with the two variables passed in.
pub fn command_from(batchsh_pager: Option<&str>, pager: Option<&str>) -> Option<String> {
    let chosen = batchsh_pager.or(pager).unwrap_or("less").trim();
    (!chosen.is_empty() && chosen != "cat").then(|| chosen.to_string())
}

/// Whether `text` needs the pager on a screen `rows` lines tall: it has
/// more lines than fit above the next prompt.
pub fn wanted(text: &str, rows: u16) -> bool {
    text.lines().count() >= usize::from(rows)
}

/// Why the pager did not show a text.
#[derive(Debug, thiserror::Error)]
pub enum PagerError {
    #[error("cannot start the pager `{command}`: {source}")]
    Start {
        command: String,
        source: std::io::Error,
    },
    #[error("the pager `{command}` failed ({status})")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
    },
}

/// Shows `text` through `command` and waits until the user leaves it.
/// The user may quit before reading it all: that is not a failure.
pub fn page(command: &str, text: &str) -> Result<(), PagerError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        cmd.env("LESS", "-SRFX");
    }
    let _running = Running::start();
    let mut child = cmd.spawn().map_err(|source| PagerError::Start {
        command: command.to_string(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write fails when the pager quits early (or never started):
        // its exit status tells which.
        let _ = stdin.write_all(text.as_bytes());
    }
    let status = child.wait().map_err(|source| PagerError::Start {
        command: command.to_string(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(PagerError::Failed {
            command: command.to_string(),
            status,
        })
    }
}
