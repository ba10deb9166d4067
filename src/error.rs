//! The top-level error: every failure that reaches the command line, with
//! its exit code and how it prints.

use crate::syntax::error::ParseError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A parse error, with the source text it points into.
    #[error("parse error")]
    Parse(String, ParseError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Stdout was closed (`batchsh parse ... | head`): a quiet exit.
    #[error("broken pipe")]
    BrokenPipe,
    #[error(
        "{0} is not implemented yet in this version of batchsh; \
         only `batchsh parse` works so far"
    )]
    NotImplemented(&'static str),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BrokenPipe => crate::exit::OK,
            Error::Parse(..) | Error::Io { .. } | Error::NotImplemented(_) => crate::exit::FAILED,
        }
    }

    /// The text for stderr, ending in a newline.
    pub fn render(&self) -> String {
        match self {
            Error::Parse(src, e) => crate::diag::render(src, e),
            other => format!("error: {other}\n"),
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
