//! A statement's error: the error of the layer it came from, or a refusal
//! of the statement itself, and where in the statement it points.

use crate::ast::Span;
use crate::source;
use crate::store::StoreError;
use thiserror::Error;

/// Why a statement could not run: the error of the layer it came from,
/// or a refusal of the statement itself.
#[derive(Debug, Error)]
pub enum StatementErrorKind {
    #[error(transparent)]
    Analyze(#[from] crate::analyze::AnalyzeErrorKind),
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecErrorKind),
    #[error(transparent)]
    Monitor(#[from] crate::monitor::MonitorErrorKind),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Lu(#[from] crate::lu::LuError),
    /// The statement cannot do what it asks: a control statement's
    /// refusal, a query that does not fit, a topic HELP does not know.
    #[error("{0}")]
    Refused(String),
    /// `BATCH_WAIT` gave up at its TIMEOUT (exit code 4).
    #[error("{0}")]
    TimedOut(String),
    /// Parsed, but not built yet.
    #[error("{0} is not implemented yet in this version of batchsh")]
    NotImplemented(&'static str),
    /// A job changed between reading it and writing it (a run started or
    /// ended): the statement may be run again.
    #[error("{0}")]
    Changed(String),
}

/// A statement's error: its kind, and the part of the statement it is
/// about (a name, an option, the SQL), when that is known.
#[derive(Debug, Error)]
#[error("{kind}")]
pub struct StatementError {
    /// Boxed: the layers' errors are large, and travel in every `Result`.
    pub kind: Box<StatementErrorKind>,
    pub span: Option<Span>,
    /// The batch the error is about, when it is about one: the `bid` of
    /// the JSON error object (`--format json`, SPEC §10).
    pub bid: Option<String>,
}

impl StatementError {
    /// `kind`, pointing at `span`.
    pub fn at(span: Span, kind: impl Into<StatementErrorKind>) -> StatementError {
        StatementError {
            kind: Box::new(kind.into()),
            span: Some(span),
            bid: None,
        }
    }

    /// A refusal, pointing at `span`.
    pub fn refused(span: Span, message: impl Into<String>) -> StatementError {
        StatementError::at(span, StatementErrorKind::Refused(message.into()))
    }

    /// The exit code this error calls for (SPEC §1): 4 for a BATCH_WAIT
    /// that timed out, else 1.
    pub fn exit_code(&self) -> i32 {
        match *self.kind {
            StatementErrorKind::TimedOut(_) => crate::exit::WAIT_TIMEOUT,
            _ => crate::exit::FAILED,
        }
    }

    /// About batch `bid` (unless it names one already).
    pub(super) fn about(mut self, bid: &str) -> StatementError {
        self.bid.get_or_insert_with(|| bid.to_string());
        self
    }

    /// Points at `span` unless it points somewhere already.
    pub(super) fn or_at(mut self, span: Span) -> StatementError {
        self.span.get_or_insert(span);
        self
    }
}

impl<K: Into<StatementErrorKind>> From<K> for StatementError {
    fn from(kind: K) -> StatementError {
        StatementError {
            kind: Box::new(kind.into()),
            span: None,
            bid: None,
        }
    }
}

impl From<crate::analyze::AnalyzeError> for StatementError {
    fn from(e: crate::analyze::AnalyzeError) -> StatementError {
        StatementError::at(e.span, *e.kind)
    }
}

impl From<crate::exec::ExecError> for StatementError {
    fn from(e: crate::exec::ExecError) -> StatementError {
        let bid = match &*e.kind {
            crate::exec::ExecErrorKind::Twin { bid, .. } => Some(bid.clone()),
            _ => None,
        };
        StatementError {
            kind: Box::new((*e.kind).into()),
            span: e.span,
            bid,
        }
    }
}

impl From<crate::monitor::MonitorError> for StatementError {
    fn from(e: crate::monitor::MonitorError) -> StatementError {
        StatementError {
            kind: Box::new((*e.kind).into()),
            span: e.span,
            bid: None,
        }
    }
}

pub type Result<T> = std::result::Result<T, StatementError>;
