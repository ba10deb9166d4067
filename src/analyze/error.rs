//! Why a statement cannot run as written: the analysis step's error, a
//! kind and the part of the statement it points at. Nothing was stored.

use crate::ast::Span;
use crate::store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnalyzeErrorKind {
    /// A name the catalog does not hold (an LU, an interface, a group),
    /// or a catalog that could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A meaning check that failed: a value out of range, two options that
    /// exclude each other, something this version cannot run yet.
    #[error("{0}")]
    Invalid(String),
}

/// An error of this layer, and where in the statement it points.
#[derive(Debug, Error)]
#[error("{kind}")]
pub struct AnalyzeError {
    /// Boxed: the store's errors are large, and travel in every `Result`.
    pub kind: Box<AnalyzeErrorKind>,
    pub span: Span,
}

impl AnalyzeError {
    /// `kind`, pointing at `span`.
    pub fn at(span: Span, kind: impl Into<AnalyzeErrorKind>) -> AnalyzeError {
        AnalyzeError {
            kind: Box::new(kind.into()),
            span,
        }
    }

    /// A meaning check that failed at `span`.
    pub fn invalid(span: Span, message: impl Into<String>) -> AnalyzeError {
        AnalyzeError::at(span, AnalyzeErrorKind::Invalid(message.into()))
    }
}

pub type Result<T, E = AnalyzeError> = std::result::Result<T, E>;
