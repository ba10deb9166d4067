//! The top-level error: every failure that reaches the command line, with
//! its exit code and how it prints.

use crate::syntax::error::ParseError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A parse error, with the source text it points into.
    #[error("parse error")]
    Parse(String, ParseError),
    /// A statement that failed to run, with the script text it came from.
    #[error("{1}")]
    Run(String, crate::session::StatementError),
    /// Errors already printed (`--keep-going`): only the exit code is left.
    #[error("some statements failed")]
    Reported,
    /// Every statement ran; a batch's outcome sets the exit code (SPEC §1).
    #[error("exit {0}")]
    Exit(i32),
    #[error("no home folder: set --home or BATCHSH_HOME (HOME is not set)")]
    NoHome,
    /// The script file named on the command line does not exist: a usage
    /// error (exit 2), like an unknown flag.
    #[error(
        "no script file {}: batchsh FILE runs a script file, batchsh -c 'STATEMENTS' runs statements",
        .0.display()
    )]
    NoScript(std::path::PathBuf),
    /// The script file named on the command line is a folder: a usage
    /// error too.
    #[error(
        "{} is a folder, not a script file: batchsh FILE runs the statements in FILE",
        .0.display()
    )]
    ScriptIsFolder(std::path::PathBuf),
    /// `--store` (or BATCHSH_STORE) is a URL of no store batchsh knows.
    #[error(
        "the store {url} is a {scheme}:// URL, which is not a store batchsh knows: give --store \
         (or BATCHSH_STORE) the path of an SQLite file or a postgres:// URL"
    )]
    StoreUrl { url: String, scheme: String },
    /// Another command-line usage error, found after clap's checks.
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Stdout was closed (`batchsh parse ... | head`): a quiet exit.
    #[error("broken pipe")]
    BrokenPipe,
    #[error("{0} is not implemented yet in this version of batchsh")]
    NotImplemented(&'static str),
    /// What stops `batchsh worker`.
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
    /// An error in a script file: its position names the file.
    #[error("{1}")]
    InFile(std::path::PathBuf, Box<Error>),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BrokenPipe => crate::exit::OK,
            Error::Exit(code) => *code,
            Error::InFile(_, e) => e.exit_code(),
            Error::NoScript(_)
            | Error::ScriptIsFolder(_)
            | Error::StoreUrl { .. }
            | Error::Usage(_) => crate::exit::USAGE,
            _ => crate::exit::FAILED,
        }
    }

    /// The error as one JSON object, for `--format json` (SPEC §10):
    /// `{"error": "...", "bid": "..."}`, `bid` null unless a batch is
    /// concerned. `None` for an error printed already, or none at all.
    pub fn json(&self) -> Option<serde_json::Value> {
        let bid = match self {
            Error::Reported | Error::Exit(_) | Error::BrokenPipe => return None,
            Error::Run(_, e) => e.bid.clone(),
            Error::InFile(_, e) => return e.json(),
            _ => None,
        };
        // The message as the text's first line says it (a parse error's
        // kind is described there, not by its Display).
        let text = self.render();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        Some(serde_json::json!({ "error": message, "bid": bid }))
    }

    /// The text for stderr, ending in a newline.
    pub fn render(&self) -> String {
        match self {
            Error::Parse(src, e) => crate::diag::render(src, e),
            Error::Reported | Error::Exit(_) => String::new(),
            Error::Run(src, e) => match e.span {
                Some(span) => crate::diag::render(
                    src,
                    &ParseError::new(
                        span,
                        crate::syntax::error::ErrorKind::Invalid(e.to_string()),
                    ),
                ),
                None => format!("error: {e}\n"),
            },
            Error::InFile(file, e) => {
                e.render()
                    .replacen(" --> line ", &format!(" --> {}, line ", file.display()), 1)
            }
            other => format!("error: {other}\n"),
        }
    }

    /// The error of a statement read from `file` (none: `-c` or stdin).
    pub fn in_file(self, file: Option<&std::path::Path>) -> Error {
        match (file, self) {
            (Some(f), e @ (Error::Parse(..) | Error::Run(..))) => {
                Error::InFile(f.to_path_buf(), Box::new(e))
            }
            (_, e) => e,
        }
    }

    pub fn from_stdout(e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Error::BrokenPipe
        } else {
            Error::Io {
                what: "cannot write to standard output".into(),
                source: e,
            }
        }
    }
}
