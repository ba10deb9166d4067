//! The interactive REPL (SPEC §12): `batchsh` with stdin on a terminal.
//!
//! A thin front door onto the same `Session::run_statement` the command
//! line uses, with one session for the whole REPL (so the bid of the last
//! batch is what bid-less statements act on, and `SET` lasts). Around it:
//!
//! - `input.rs`: when to run what was typed (the real parser decides), and
//!   the continuation prompt until then;
//! - `helper.rs`: rustyline's helper, with `complete.rs` (Tab completion
//!   by asking the parser what may come next) and `highlight.rs`;
//! - `lex.rs`: where strings and comments are in a half-typed input.
//!
//! Ctrl-C: rustyline reads keys in raw mode, so at the prompt Ctrl-C is a
//! key that clears the input. While a statement runs the terminal is in
//! its normal mode, and Ctrl-C is a SIGINT for [`on_ctrl_c`]'s handler:
//! the first cancels a running batch gracefully (it ends CANCELLED and
//! prints its row), the second ends batchsh at once (exit 130), leaving
//! the batch as a crash would: `BATCH_RETRY` finishes it. The flag is
//! cleared after each statement, so the next batch starts clean. On a
//! terminal rustyline cannot drive (`TERM=dumb`) the prompt reads in
//! normal mode too: there a SIGINT while no statement runs drops the input
//! and shows a fresh prompt, as a shell does.

mod complete;
mod helper;
mod highlight;
mod input;
mod lex;

use crate::cli::Global;
use crate::error::Error;
use crate::session::{Flow, Session};
use helper::Helper;
use input::Verdict;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{ColorMode, CompletionType, Config, Editor};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub const PROMPT: &str = "batchsh> ";
/// As wide as the prompt, so continued lines line up.
pub const CONTINUATION: &str = "      -> ";

/// The history file, in the home folder (SPEC §1).
const HISTORY_FILE: &str = "history";
const HISTORY_SIZE: usize = 1000;

/// What a Ctrl-C while a statement runs prints: the first one, and the
/// second, before batchsh ends.
const FIRST_CTRL_C: &str = "\nbatchsh: Ctrl-C, stopping once the entities in flight finish \
     (Ctrl-C again stops at once)";

/// Runs the REPL until Ctrl-D, `EXIT` or `QUIT`.
pub fn run(global: &Global) -> Result<(), Error> {
    let config = crate::runner::session_config(global)?;
    let history = config.home.join(HISTORY_FILE);
    let highlight = highlight::enabled(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    );
    let store_path = config.store_path.clone();
    let helper = Helper::new(config.store_path.clone(), config.cwd.clone(), highlight);
    let mut session = Session::new(config, crate::runner::settings(global));
    let ctrl_c = on_ctrl_c(&session);
    crate::terminate::install();
    let mut editor = editor(helper, highlight)?;
    let mut history = History::load(&mut editor, history);
    if !global.quiet {
        println!(
            "batchsh {}: HELP lists the statements, Tab completes, Ctrl-D or EXIT leaves",
            env!("CARGO_PKG_VERSION")
        );
    }
    // A store file that cannot be opened is left for the first statement
    // that needs it to say so (the REPL still helps); a PostgreSQL store
    // that cannot be reached ends the REPL at once, as psql does.
    if let Err(e) = session.open_existing_store()
        && crate::store::is_url(&store_path)
    {
        eprintln!("error: {e}");
        return Err(Error::Exit(crate::exit::FAILED));
    }
    let mut pending = String::new();
    loop {
        if let Some(h) = editor.helper_mut() {
            h.pending.clone_from(&pending);
        }
        let prompt = if pending.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        let line = match editor.readline(prompt) {
            Ok(line) if ctrl_c.dropped.swap(false, Ordering::SeqCst) => {
                // A Ctrl-C at a prompt read in normal mode: the terminal
                // dropped the line it was on; the lines before it go too.
                pending.clear();
                line
            }
            Ok(line) => line,
            // Ctrl-C at the prompt: the input so far is dropped.
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(terminal_error(e)),
        };
        // An empty line runs an unfinished statement anyway, so that its
        // error says what is missing; unless a string or comment is open,
        // which the blank line belongs to.
        let blank_run = line.trim().is_empty()
            && !pending.is_empty()
            && input::verdict(&pending) == (Verdict::Incomplete { open: false });
        if !blank_run {
            if !pending.is_empty() {
                pending.push('\n');
            }
            pending.push_str(&line);
            if let Verdict::Incomplete { .. } = input::verdict(&pending) {
                continue;
            }
        }
        let text = std::mem::take(&mut pending);
        if text.trim().is_empty() {
            continue;
        }
        history.add(&mut editor, text.trim_end());
        ctrl_c.running.store(true, Ordering::SeqCst);
        let flow = run_input(global, &mut session, &text);
        ctrl_c.running.store(false, Ordering::SeqCst);
        if flow? == Flow::Exit {
            return Ok(());
        }
        if crate::terminate::requested() {
            return Err(Error::Exit(crate::terminate::exit_code()));
        }
    }
}

/// What the REPL's Ctrl-C handler and its loop share.
struct CtrlC {
    /// A statement runs: a Ctrl-C interrupts it.
    running: Arc<AtomicBool>,
    /// A Ctrl-C came while no statement ran: the input so far is dropped.
    dropped: Arc<AtomicBool>,
}

/// Installs the REPL's SIGINT handler. While a statement runs, the first
/// Ctrl-C sets the session's interrupt flag (a running batch cancels
/// gracefully) and the second ends batchsh at once; each says so. At a
/// prompt that reads in normal mode, a Ctrl-C drops the input.
fn on_ctrl_c(session: &Session) -> CtrlC {
    let ctrl_c = CtrlC {
        running: Arc::default(),
        dropped: Arc::default(),
    };
    let interrupt = Arc::clone(&session.interrupt);
    let running = Arc::clone(&ctrl_c.running);
    let dropped = Arc::clone(&ctrl_c.dropped);
    let _ = ctrlc::set_handler(move || {
        if crate::output::pager::is_running() {
            return;
        }
        if !running.load(Ordering::SeqCst) {
            dropped.store(true, Ordering::SeqCst);
            print!("\n{PROMPT}");
            let _ = std::io::stdout().flush();
        } else if interrupt.swap(true, Ordering::SeqCst) {
            eprintln!();
            crate::terminate::stop_now(crate::exit::INTERRUPTED, "second Ctrl-C");
        } else {
            crate::terminate::cancel_running();
            eprintln!("{FIRST_CTRL_C}");
        }
    });
    ctrl_c
}

fn editor(helper: Helper, highlight: bool) -> Result<Editor<Helper, FileHistory>, Error> {
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)
        .and_then(|b| b.history_ignore_dups(true))
        .map_err(terminal_error)?
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .color_mode(if highlight {
            ColorMode::Enabled
        } else {
            ColorMode::Disabled
        })
        .build();
    let mut editor = Editor::with_config(config).map_err(terminal_error)?;
    editor.set_helper(Some(helper));
    Ok(editor)
}

fn terminal_error(e: ReadlineError) -> Error {
    let source = match e {
        ReadlineError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    };
    Error::Io {
        what: "cannot read from the terminal".into(),
        source,
    }
}

/// The history file: read at start, appended to after each input, so a
/// crash or a second Ctrl-C loses nothing typed before it. A history that
/// cannot be read or written is reported once, and the REPL goes on.
struct History {
    path: PathBuf,
    writable: bool,
}

impl History {
    fn load(editor: &mut Editor<Helper, FileHistory>, path: PathBuf) -> History {
        match editor.load_history(&path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: cannot read the history {}: {e}; it starts empty",
                path.display()
            ),
        }
        History {
            path,
            writable: true,
        }
    }

    /// Records an input; the same input twice in a row is kept once.
    fn add(&mut self, editor: &mut Editor<Helper, FileHistory>, text: &str) {
        if !matches!(editor.add_history_entry(text), Ok(true)) || !self.writable {
            return;
        }
        if let Err(e) = create_parent(&self.path).and_then(|()| {
            editor
                .append_history(&self.path)
                .map_err(|e| std::io::Error::other(e.to_string()))
        }) {
            self.writable = false;
            eprintln!(
                "warning: cannot write the history {}: {e}; this session's history is kept in memory only",
                self.path.display()
            );
        }
    }
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// Runs one input (one or more statements). A parse error runs none of
/// them; a failing statement stops the rest unless `--keep-going`; a
/// Ctrl-C stops the rest. Every error is printed, and the REPL goes on.
fn run_input(global: &Global, session: &mut Session, text: &str) -> Result<Flow, Error> {
    let stmts = match crate::syntax::parse(text) {
        Ok(stmts) => stmts,
        Err(e) => {
            eprint!("{}", Error::Parse(text.to_string(), e).render());
            return Ok(Flow::Continue);
        }
    };
    let ran =
        crate::runner::run_statements(global, session, text, &stmts, crate::runner::Front::Repl)?;
    Ok(if ran.exit { Flow::Exit } else { Flow::Continue })
}

#[cfg(test)]
mod tests {
    use super::complete::{Catalog, complete};
    use super::{highlight, input, lex};
    use proptest::prelude::*;

    struct Names;

    impl Catalog for Names {
        fn lus(&self) -> Vec<String> {
            vec!["Customer".into()]
        }
        fn interfaces(&self) -> Vec<String> {
            vec!["crm".into()]
        }
        fn groups(&self, _: &str) -> Vec<String> {
            vec!["vip".into()]
        }
        fn recent_bids(&self) -> Vec<String> {
            vec!["c0ffee42-1d2e".into()]
        }
    }

    /// Pieces of the language, its punctuation and its traps, for inputs
    /// that look like what people type.
    const PIECES: &[&str] = &[
        "BATCH ",
        "Customer",
        ".",
        "(",
        ")",
        "'",
        "''",
        "\"",
        "$$",
        "--",
        "/*",
        "*/",
        ";",
        " WITH ",
        "MAX_W",
        "=",
        "FROM ",
        "crm ",
        "USING ",
        "HELP ",
        "CREATE ",
        "PATH ",
        "BATCH_INFO ",
        "c0ff",
        "-",
        "?",
        "\n",
        " ",
        "é",
        "\u{0}",
        "FABRIC_COMMAND=",
    ];

    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|v| v.concat())
    }

    /// Runs every REPL function that reads typed text on `text`, with the
    /// cursor at every char boundary: none may panic, and highlighting
    /// only adds escape sequences.
    fn check(text: &str) {
        let _ = input::verdict(text);
        let _ = lex::tokens(text);
        for (at, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let c = complete(text, at, &Names, std::path::Path::new("/nonexistent"));
            assert!(c.start <= at, "{text:?} at {at}: start {}", c.start);
            let (before, line) = text.split_at(at);
            let painted = highlight::paint(before.trim_end_matches('\n'), line);
            let plain = ["\x1b[1;36m", "\x1b[32m", "\x1b[2m", "\x1b[0m"]
                .iter()
                .fold(painted, |s, code| s.replace(code, ""));
            assert_eq!(plain, line, "{text:?} at {at}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn typed_soup_never_breaks_the_repl(text in soup()) {
            check(&text);
        }

        #[test]
        fn arbitrary_text_never_breaks_the_repl(text in any::<String>()) {
            check(&text);
        }
    }
}
