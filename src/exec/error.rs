//! Why a batch could not run: the layer's error kinds, and the part of the
//! statement an error is about, where it is known.

use crate::ast::Span;
use crate::lu::LuError;
use crate::source::SourceError;
use crate::store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExecErrorKind {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Lu(#[from] LuError),
    /// The statement cannot run now: batch `bid`, unfinished, has its
    /// command (`why` says what to do about it).
    #[error("{why}")]
    Twin { bid: String, why: String },
    /// The run could not go on.
    #[error("{0}")]
    Run(String),
}

/// An error of this layer, and where in the statement it points.
#[derive(Debug, Error)]
#[error("{kind}")]
pub struct ExecError {
    /// Boxed: the layers' errors are large, and travel in every `Result`.
    pub kind: Box<ExecErrorKind>,
    pub span: Option<Span>,
}

impl ExecError {
    /// `kind`, pointing at `span`.
    pub fn at(span: Span, kind: impl Into<ExecErrorKind>) -> ExecError {
        ExecError {
            kind: Box::new(kind.into()),
            span: Some(span),
        }
    }

    /// The run could not go on.
    pub fn run(message: impl Into<String>) -> ExecError {
        ExecErrorKind::Run(message.into()).into()
    }
}

impl From<ExecErrorKind> for ExecError {
    fn from(kind: ExecErrorKind) -> ExecError {
        ExecError {
            kind: Box::new(kind),
            span: None,
        }
    }
}

impl From<StoreError> for ExecError {
    fn from(e: StoreError) -> ExecError {
        ExecErrorKind::Store(e).into()
    }
}

impl From<SourceError> for ExecError {
    fn from(e: SourceError) -> ExecError {
        ExecErrorKind::Source(e).into()
    }
}

impl From<LuError> for ExecError {
    fn from(e: LuError) -> ExecError {
        ExecErrorKind::Lu(e).into()
    }
}

pub type Result<T, E = ExecError> = std::result::Result<T, E>;
