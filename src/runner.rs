//! The one loop that runs a list of parsed statements, for the command
//! line (a script, `-c`, stdin) and for the REPL (one input line, which may
//! hold several statements). Each statement's result prints as it ends;
//! an error prints and stops the rest, unless `--keep-going`; Ctrl-C or a
//! stop signal stops the rest. The two front doors differ only in what the
//! loop says about the statements that did not run, and in how a Ctrl-C
//! is counted ([`Front`]). Both also open their session here, as the
//! command line asks ([`session_config`], [`settings`]).

use crate::ast::{Expanded, OutputFormat, Statement, Stmt};
use crate::cli::{Format, Global};
use crate::error::Error;
use crate::output::Output;
use crate::session::{Config, Flow, Session, Settings};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Which front door runs the statements.
#[derive(Clone, Copy, Debug)]
pub enum Front<'a> {
    /// A script file (errors name it), `-c` or stdin: a Ctrl-C stops the
    /// whole run.
    Script { file: Option<&'a Path> },
    /// One input of the REPL: a Ctrl-C stops the rest of that input, and
    /// the REPL goes on.
    Repl,
}

/// How a run of statements went.
#[derive(Debug, Default)]
pub struct Ran {
    /// `EXIT` or `QUIT` ran.
    pub exit: bool,
    /// A statement failed (an error, or a batch that ended FAILED).
    pub failed: bool,
    /// Every statement that failed was a `BATCH_WAIT` that timed out: the
    /// exit code is 4, not 1.
    pub only_timed_out: bool,
}

/// Runs `stmts`, parsed from `text`, in `session`.
pub fn run_statements(
    global: &Global,
    session: &mut Session,
    text: &str,
    stmts: &[Stmt],
    front: Front,
) -> Result<Ran, Error> {
    let mut ran = Ran::default();
    let mut timeouts = 0;
    let mut failures = 0;
    for (k, stmt) in stmts.iter().enumerate() {
        let rest = stmts.len() - k - 1;
        match front {
            Front::Script { .. } => {
                if session.interrupt.load(Ordering::SeqCst) || crate::terminate::requested() {
                    // The statement before this one was stopped: the rest
                    // is not run (`--keep-going` does not run them either).
                    note(rest + 1, "", "");
                    break;
                }
            }
            Front::Repl => {
                if crate::terminate::requested() {
                    break;
                }
                session.interrupt.store(false, Ordering::SeqCst);
            }
        }
        if global.echo && matches!(front, Front::Script { .. }) {
            echo(text, stmt, session.settings.format)?;
        }
        let started = std::time::Instant::now();
        let result = session.run_statement(stmt);
        let took = started.elapsed();
        let interrupted =
            matches!(front, Front::Repl) && session.interrupt.swap(false, Ordering::SeqCst);
        let failed = match result {
            Ok((out, flow)) => {
                if let Some(out) = out {
                    print_output(global, session, stmt, &out)?;
                }
                if flow == Flow::Exit {
                    ran.exit = true;
                    break;
                }
                // A batch that ended FAILED is a failed statement: the exit
                // code is 1 whatever comes after (a retry that finishes the
                // batch too).
                let failed = session.take_batch_failed();
                failures += usize::from(failed);
                failed
            }
            Err(e) => {
                if e.exit_code() == crate::exit::WAIT_TIMEOUT {
                    timeouts += 1;
                } else {
                    failures += 1;
                }
                let e = Error::Run(text.to_string(), e);
                let e = match front {
                    Front::Script { file } => e.in_file(file),
                    Front::Repl => e,
                };
                eprint!("{}", e.render());
                if session.settings.format == OutputFormat::Json {
                    json_error(&e);
                }
                true
            }
        };
        // After the result or the error, as psql's \timing; a SET is the
        // session's own business, not a statement worth timing.
        if session.settings.timing && !matches!(stmt.kind, Statement::Set { .. }) {
            eprintln!("{}", crate::output::format_timing(took));
        }
        ran.only_timed_out = timeouts > 0 && failures == 0;
        ran.failed |= failed;
        match front {
            Front::Script { .. } if failed && !global.keep_going => {
                note(rest, "", " (--keep-going runs them)");
                break;
            }
            Front::Repl if rest > 0 && (interrupted || (failed && !global.keep_going)) => {
                note(rest, " in this input", "");
                break;
            }
            _ => {}
        }
    }
    Ok(ran)
}

/// `--echo`: the statement as written in the script, before its result,
/// ended by `;`. In table format on stdout (as `psql -e`); in JSON and CSV
/// on stderr, so that stdout stays the documents a reader parses
/// (`batchsh -e --format json s.bsh | jq .`).
fn echo(text: &str, stmt: &Stmt, format: OutputFormat) -> Result<(), Error> {
    use std::io::Write;
    let written = text
        .get(stmt.span.start..stmt.span.end)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map_or_else(|| stmt.to_string(), str::to_string);
    let semicolon = if written.ends_with(';') { "" } else { ";" };
    if format != OutputFormat::Table {
        eprintln!("{written}{semicolon}");
        return Ok(());
    }
    let mut o = std::io::stdout().lock();
    writeln!(o, "{written}{semicolon}").map_err(Error::from_stdout)?;
    o.flush().map_err(Error::from_stdout)
}

/// An error as one JSON object on its own line of stderr, after its text
/// (`--format json`, SPEC §10): a script reads it instead of the text.
pub fn json_error(e: &Error) {
    if let Some(j) = e.json() {
        eprintln!("{j}");
    }
}

/// Says how many statements did not run, if any: after the statement that
/// failed, or that Ctrl-C or a stop signal stopped.
fn note(rest: usize, place: &str, tail: &str) {
    if rest > 0 {
        eprintln!(
            "note: the {rest} statement{} after it{place} did not run{tail}",
            if rest == 1 { "" } else { "s" }
        );
    }
}

/// Prints what a statement gave, in the session's format.
fn print_output(
    global: &Global,
    session: &Session,
    stmt: &Stmt,
    out: &Output,
) -> Result<(), Error> {
    // `--quiet` drops messages, but not the help that was asked for.
    if global.quiet
        && matches!(out, Output::Message(_))
        && !matches!(stmt.kind, Statement::Help { .. })
    {
        return Ok(());
    }
    let terminal = std::io::stdout().is_terminal();
    let style = crate::output::Style {
        format: session.settings.format,
        color: crate::output::color_allowed(terminal),
        width: crate::output::output_width(terminal),
        expanded: session.settings.expanded,
    };
    let text = crate::output::render(out, &style);
    if terminal && session.settings.pager && style.format == OutputFormat::Table {
        use crate::output::{pager, terminal};
        let rows = terminal::stdout_size().map(|(_, rows)| rows);
        if let Some(command) = rows
            .filter(|&rows| pager::wanted(&text, rows))
            .and_then(|_| pager::command())
        {
            match pager::page(&command, &text) {
                Ok(()) => return Ok(()),
                // Printed as is below: the text is not lost.
                Err(e) => eprintln!(
                    "batchsh: {e}; printing the result as is (SET PAGER off stops trying)"
                ),
            }
        }
    }
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes()).map_err(Error::from_stdout)?;
    o.flush().map_err(Error::from_stdout)
}

/// The session settings the command line asks for.
pub fn settings(global: &Global) -> Settings {
    Settings {
        format: match global.format {
            Format::Table => OutputFormat::Table,
            Format::Json => OutputFormat::Json,
            Format::Csv => OutputFormat::Csv,
        },
        progress: !global.no_progress,
        // A table wider than the terminal is read best as blocks: at 80
        // columns, BATCH_LIST or BATCH_SUMMARY would break every row over
        // several lines (docs/output.md).
        expanded: if global.expanded {
            Expanded::On
        } else {
            Expanded::Auto
        },
        timing: false,
        pager: true,
    }
}

/// Where a session of this command line stands: its store, home, working
/// directory and node.
pub fn session_config(global: &Global) -> Result<Config, Error> {
    let store_path = store_path(global)?;
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        what: "cannot read the working directory".into(),
        source,
    })?;
    let home = match &global.home {
        Some(h) => h.clone(),
        None => crate::store::default_home().unwrap_or_else(|| store_path.with_file_name("")),
    };
    Ok(Config {
        store_path,
        home,
        cwd,
        node: global.node.clone().unwrap_or_else(crate::owner::hostname),
        dc: global.dc.clone(),
        workers: std::thread::available_parallelism().map_or(1, usize::from),
        progress_allowed: std::io::stderr().is_terminal() && !global.quiet,
        quiet: global.quiet,
    })
}

/// `--store`, else `<home>/store.db`, home being `--home` or the default.
fn store_path(global: &Global) -> Result<PathBuf, Error> {
    if let Some(s) = &global.store {
        return Ok(s.clone());
    }
    let home = global
        .home
        .clone()
        .or_else(crate::store::default_home)
        .ok_or(Error::NoHome)?;
    if let Some(server) = crate::knobs::store_server() {
        return crate::pg::database_for(&server, &home)
            .map(PathBuf::from)
            .map_err(|e| Error::Usage(e.to_string()));
    }
    Ok(home.join("store.db"))
}
