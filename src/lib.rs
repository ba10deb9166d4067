//! batchsh: a command-language shell for entity batches.
//!
//! The pipeline reads from the module list: `syntax` turns text into
//! statements (`ast`), `diag` renders parse errors against their source;
//! `session` runs them, through `analyze` (statement and catalog -> a
//! `plan`, every meaning checked), `exec` (run a plan), `monitor` and
//! `store` (the traits every store backend implements), with statuses
//! as data in `batch` and due times in `schedule`; `output` prints what
//! they give. `cli` holds the
//! command line. [`run`] is the one entry point the binary calls; it
//! returns the process exit code (SPEC §1). docs/architecture.md draws it.

pub mod analyze;
pub mod ast;
pub mod background;
pub mod batch;
pub mod catalog;
pub mod cli;
pub mod command;
pub mod diag;
pub mod error;
pub mod exec;
pub mod exit;
pub mod jobs;
pub mod knobs;
pub mod lu;
pub mod monitor;
pub mod output;
pub mod owner;
pub mod pg;
pub mod plan;
pub mod repl;
pub mod runner;
pub mod schedule;
pub mod session;
pub mod source;
pub mod store;
pub mod syntax;
pub mod terminate;
pub mod typo;
pub mod window;
pub mod worker;

use cli::{Cli, Sub};
use error::Error;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

/// Runs the command line and returns the exit code.
pub fn run(cli: Cli) -> i32 {
    let json = matches!(cli.global.format, cli::Format::Json);
    match dispatch(cli) {
        Ok(()) => exit::OK,
        Err(Error::BrokenPipe) => exit::OK,
        Err(e) => {
            eprint!("{}", e.render());
            if json {
                runner::json_error(&e);
            }
            e.exit_code()
        }
    }
}

/// Writes generated text (a completion script, the man page) to stdout.
fn print_bytes(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::from_stdout)
}

fn dispatch(cli: Cli) -> Result<(), Error> {
    if let Some(sub) = &cli.sub {
        let given = if cli.command.is_some() {
            Some("-c")
        } else {
            cli.file.as_ref().map(|_| "a script file")
        };
        if let Some(given) = given {
            return Err(Error::Usage(format!(
                "{given} cannot be used with the subcommand {}: run one or the other",
                sub.name()
            )));
        }
    }
    if !matches!(
        cli.sub,
        Some(Sub::Parse { .. } | Sub::Completions { .. } | Sub::Man)
    ) {
        // Before the script is read or parsed: a wrong command line is
        // said first, and nothing is created on disk for it.
        refuse_store_url(&cli.global)?;
    }
    match cli.sub {
        Some(Sub::Parse { input }) => {
            let (_, text) = read_parse_input(&input)?;
            parse_command(&text)
        }
        Some(Sub::Worker {
            workers,
            until_idle,
        }) => {
            let c = runner::session_config(&cli.global)?;
            let cfg = worker::Config {
                home: c.home,
                store_path: c.store_path,
                node: c.node,
                dc: c.dc,
                workers: workers
                    .unwrap_or(c.workers)
                    .clamp(1, plan::MAX_NODE_WORKERS),
                until_idle,
            };
            match worker::run(&cfg)? {
                0 => Ok(()),
                code => Err(Error::Exit(code)),
            }
        }
        Some(Sub::Tick) => {
            let c = runner::session_config(&cli.global)?;
            let host = jobs::run::Host {
                home: c.home,
                store_path: c.store_path,
                node: c.node,
                dc: c.dc,
                workers: c.workers,
                worker_id: uuid::Uuid::new_v4().to_string(),
            };
            match jobs::tick::tick(&host).map_err(worker::WorkerError::from)? {
                0 => Ok(()),
                code => Err(Error::Exit(code)),
            }
        }
        Some(Sub::Completions { shell }) => print_bytes(&cli::completions(shell)),
        Some(Sub::Man) => {
            let page = cli::man_page().map_err(|source| Error::Io {
                what: "cannot render the man page".into(),
                source,
            })?;
            print_bytes(&page)
        }
        None => {
            let file = cli.file.as_deref().filter(|f| *f != Path::new("-"));
            let stdin = cli.command.is_none() && file.is_none();
            let text = if let Some(c) = cli.command {
                c
            } else if let Some(f) = file {
                match std::fs::metadata(f) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::NoScript(f.to_path_buf()));
                    }
                    Ok(m) if m.is_dir() => return Err(Error::ScriptIsFolder(f.to_path_buf())),
                    _ => {}
                }
                read_file(f)?
            } else if cli.file.is_none() && std::io::stdin().is_terminal() {
                return repl::run(&cli.global);
            } else {
                read_stdin()?
            };
            // The whole input is parsed before anything runs: an error in
            // the last statement must not leave the first ones half done.
            let stmts =
                syntax::parse(&text).map_err(|e| Error::Parse(text.clone(), e).in_file(file))?;
            run_script(&cli.global, &text, &stmts, file, stdin)
        }
    }
}

/// Runs parsed statements in order; the first failure stops the run unless
/// `--keep-going`, and Ctrl-C stops it after the statement it interrupted
/// (a batch cancelled gracefully prints its summary first). Results print
/// as each statement ends. `stdin`: the statements were read from standard
/// input, which then holds no ids for FROM STDIN.
fn run_script(
    global: &cli::Global,
    text: &str,
    stmts: &[ast::Stmt],
    file: Option<&Path>,
    stdin: bool,
) -> Result<(), Error> {
    let mut config = runner::session_config(global)?;
    if let Some(f) = file {
        // A script's relative paths (interface PATHs, the folder its
        // batches' commands run in) are its folder's, as psql's `\ir`
        // (SPEC §1): it runs the same from any working directory.
        let script = source::resolve_path(f, &config.cwd);
        if let Some(folder) = script.parent() {
            config.cwd = folder.to_path_buf();
        }
    }
    let mut session = session::Session::new(config, runner::settings(global));
    session.statements_on_stdin = stdin;
    on_ctrl_c(&session);
    terminate::install();
    let ran = runner::run_statements(
        global,
        &mut session,
        text,
        stmts,
        runner::Front::Script { file },
    )?;
    if terminate::requested() {
        return Err(Error::Exit(terminate::exit_code()));
    }
    if session.interrupt.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::Exit(exit::INTERRUPTED));
    }
    if ran.failed {
        return Err(if ran.only_timed_out {
            Error::Exit(exit::WAIT_TIMEOUT)
        } else {
            Error::Reported
        });
    }
    match session.exit_code() {
        0 => Ok(()),
        code => Err(Error::Exit(code)),
    }
}

/// The first Ctrl-C cancels the running batch gracefully (it prints its
/// summary); the second stops the process at once (SPEC §1, §12). The
/// REPL has its own handler (`repl::on_ctrl_c`).
fn on_ctrl_c(session: &session::Session) {
    let interrupt = std::sync::Arc::clone(&session.interrupt);
    let _ = ctrlc::set_handler(move || {
        if output::pager::is_running() {
            return;
        }
        if interrupt.swap(true, std::sync::atomic::Ordering::SeqCst) {
            terminate::stop_now(exit::INTERRUPTED, "second Ctrl-C");
        }
        terminate::cancel_running();
    });
}

/// Refuses a `--store` (or BATCHSH_STORE) that is a `scheme://…` URL of
/// no store batchsh knows: taken as a path, `mysql://host/db` would
/// quietly become an SQLite file under a folder named `mysql:`. A
/// `postgres://` (or `postgresql://`) URL is a PostgreSQL store.
fn refuse_store_url(global: &cli::Global) -> Result<(), Error> {
    let Some(url) = global.store.as_deref().and_then(Path::to_str) else {
        return Ok(());
    };
    match url_scheme(url) {
        None => Ok(()),
        Some(_) if crate::pg::is_url(url) => Ok(()),
        Some(s) => Err(Error::StoreUrl {
            url: url.to_string(),
            scheme: s.to_string(),
        }),
    }
}

/// The scheme of a `scheme://…` text (RFC 3986: a letter, then letters,
/// digits, `+`, `-` or `.`); a path like `./x:y.db` has none.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// `batchsh parse`: the statements as one JSON array on stdout.
fn parse_command(text: &str) -> Result<(), Error> {
    let stmts = syntax::parse(text).map_err(|e| Error::Parse(text.to_string(), e))?;
    let json = serde_json::Value::Array(stmts.iter().map(ast::to_json).collect());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{json}").map_err(Error::from_stdout)?;
    out.flush().map_err(Error::from_stdout)
}

/// `-` is stdin; an existing file is read; anything else is statement text.
fn read_parse_input(input: &str) -> Result<(Option<String>, String), Error> {
    if input == "-" {
        return Ok((None, read_stdin()?));
    }
    let p = Path::new(input);
    if p.is_file() {
        return Ok((Some(input.to_string()), read_file(p)?));
    }
    Ok((None, input.to_string()))
}

fn read_file(p: &Path) -> Result<String, Error> {
    script_text(format!("cannot read {}", p.display()), std::fs::read(p))
}

fn read_stdin() -> Result<String, Error> {
    let mut bytes = Vec::new();
    let read = std::io::stdin().read_to_end(&mut bytes).map(|_| bytes);
    script_text("cannot read standard input".into(), read)
}

/// The text of what was read, or the error, reading or decoding, under
/// `what`.
fn script_text(what: String, read: std::io::Result<Vec<u8>>) -> Result<String, Error> {
    read.and_then(utf8_text)
        .map_err(|source| Error::Io { what, source })
}

/// Script text, which must be UTF-8; if it is not, the error says where
/// the first bad byte is.
fn utf8_text(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text: invalid byte at line {line}, column {column} (byte {}); \
                 save the script as UTF-8",
                good.len()
            ),
        )
    })
}
