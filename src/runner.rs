//! The one loop that runs a list of parsed statements, for the command
//! line (a script, `-c`, stdin) and for the REPL (one input line, which may
//! hold several statements). Each statement's result prints as it ends;
//! an error prints and stops the rest, unless `--keep-going`; Ctrl-C or a
//! stop signal stops the rest. The two front doors differ only in what the
//! loop says about the statements that did not run, and in how a Ctrl-C
//! is counted ([`Front`]).

use crate::ast::Stmt;
use crate::cli::Global;
use crate::error::Error;
use crate::session::{Flow, Session};
use std::path::Path;
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
        let result = session.run_statement(stmt);
        let interrupted =
            matches!(front, Front::Repl) && session.interrupt.swap(false, Ordering::SeqCst);
        let failed = match result {
            Ok((out, flow)) => {
                if let Some(out) = out {
                    crate::print_output(global, session, stmt, &out)?;
                }
                if flow == Flow::Exit {
                    ran.exit = true;
                    break;
                }
                // A batch that ended FAILED is a failed statement: the exit
                // code is 1 whatever comes after (a retry that finishes the
                // batch too).
                session.take_batch_failed()
            }
            Err(e) => {
                let e = Error::Run(text.to_string(), e);
                let e = match front {
                    Front::Script { file } => e.in_file(file),
                    Front::Repl => e,
                };
                eprint!("{}", e.render());
                true
            }
        };
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
