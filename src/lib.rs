//! batchsh: a command-language shell for entity batches.
//!
//! The pipeline reads from the module list: `syntax` turns text into
//! statements (`ast`), `diag` renders parse errors against their source,
//! `cli` holds the command line. [`run`] is the one entry point the binary
//! calls; it returns the process exit code (SPEC §1).
//!
//! This version has the language front end: every statement parses, prints
//! back canonically, and `batchsh parse` emits it as JSON. Running
//! statements is not implemented yet and says so.

pub mod ast;
pub mod cli;
pub mod diag;
pub mod error;
pub mod store;
pub mod syntax;

use cli::{Cli, Sub};
use error::Error;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

/// Exit codes, SPEC §1.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
}

/// Runs the command line and returns the exit code.
pub fn run(cli: Cli) -> i32 {
    match dispatch(cli) {
        Ok(()) => exit::OK,
        Err(Error::BrokenPipe) => exit::OK,
        Err(e) => {
            eprint!("{}", e.render());
            e.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.sub {
        Some(Sub::Parse { input }) => {
            let (_, text) = read_parse_input(&input)?;
            parse_command(&text)
        }
        Some(Sub::Worker { .. }) => Err(Error::NotImplemented("batchsh worker")),
        Some(Sub::Tick) => Err(Error::NotImplemented("batchsh tick")),
        None => {
            let text = if let Some(c) = cli.command {
                c
            } else if let Some(f) = cli.file.as_deref().filter(|f| *f != Path::new("-")) {
                read_file(f)?
            } else if cli.file.is_none() && std::io::stdin().is_terminal() {
                return Err(Error::NotImplemented("the interactive REPL"));
            } else {
                read_stdin()?
            };
            // The whole input is parsed before anything runs: an error in
            // the last statement must not leave the first ones half done.
            let stmts = syntax::parse(&text).map_err(|e| Error::Parse(text.clone(), e))?;
            match stmts.first() {
                None => Ok(()),
                Some(s) => Err(Error::NotImplemented(s.kind.name())),
            }
        }
    }
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
    std::fs::read_to_string(p).map_err(|source| Error::Io {
        what: format!("cannot read {}", p.display()),
        source,
    })
}

fn read_stdin() -> Result<String, Error> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|source| Error::Io {
            what: "cannot read standard input".into(),
            source,
        })?;
    Ok(s)
}
