//! Parse errors: a kind plus a span. `nom` carries them through the
//! combinators as [`PErr`]; [`ParseError`] is what leaves the parser, and
//! `diag.rs` renders it rustc-style.

use crate::ast::Span;
use crate::syntax::In;
use nom::error::ErrorKind as NomKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub span: Span,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The next token is not one of these. An empty list: nothing fits here.
    Expected(Vec<&'static str>),
    UnknownStatement {
        found: String,
        suggestion: Option<&'static str>,
    },
    /// A word followed by `=` that no option of this statement is called.
    UnknownOption {
        found: String,
        valid: Vec<&'static str>,
        suggestion: Option<&'static str>,
    },
    DuplicateOption {
        name: &'static str,
    },
    MissingOption {
        name: &'static str,
        statement: &'static str,
    },
    InvalidValue {
        option: String,
        expected: String,
        found: String,
    },
    UnknownCommand {
        found: String,
        suggestion: Option<&'static str>,
    },
    UnknownParam {
        found: String,
    },
    /// A per-entity command without `?`.
    NoPlaceholder {
        command: &'static str,
    },
    UnterminatedString {
        quote: &'static str,
    },
    UnterminatedComment,
    UnknownHelpTopic {
        found: String,
        suggestion: Option<&'static str>,
    },
    /// Something is well-formed but not allowed here; the text says why.
    Invalid(String),
    /// A form that users of a neighbouring tool type (GNU parallel's `{}`,
    /// psql's `\x`, `SHOW BATCHES`): what is wrong, and under the carets
    /// what batchsh says instead.
    Habit {
        message: String,
        instead: String,
    },
    /// An error inside a string that holds code (a `FABRIC_COMMAND` or a
    /// job's `COMMAND`): the inner error, with its span already placed in
    /// the outer text.
    Nested {
        context: &'static str,
        inner: Box<ParseError>,
    },
}

impl ParseError {
    pub fn new(span: Span, kind: ErrorKind) -> ParseError {
        ParseError { span, kind }
    }

    /// The same error with every span (its own and its inner errors') moved
    /// by `f`: used to place errors in text parsed from inside a string.
    pub fn relocated(self, f: &dyn Fn(Span) -> Span) -> ParseError {
        let kind = match self.kind {
            ErrorKind::Nested { context, inner } => ErrorKind::Nested {
                context,
                inner: Box::new(inner.relocated(f)),
            },
            other => other,
        };
        ParseError::new(f(self.span), kind)
    }

    /// The innermost error, whose span is the one to underline.
    pub fn innermost(&self) -> &ParseError {
        match &self.kind {
            ErrorKind::Nested { inner, .. } => inner.innermost(),
            _ => self,
        }
    }
}

/// The error type threaded through nom. Same shape as [`ParseError`]; kept
/// as its own type so the `nom::error::ParseError` impl (with its merging
/// rules) stays an internal matter.
#[derive(Clone, Debug, PartialEq)]
pub struct PErr(pub ParseError);

impl PErr {
    pub fn at(input: &In, kind: ErrorKind) -> PErr {
        let start = input.location_offset();
        PErr(ParseError::new(Span::new(start, start), kind))
    }

    pub fn span(span: Span, kind: ErrorKind) -> PErr {
        PErr(ParseError::new(span, kind))
    }

    pub fn expected(input: &In, what: &'static str) -> PErr {
        PErr::at(input, ErrorKind::Expected(vec![what]))
    }
}

impl<'a> nom::error::ParseError<In<'a>> for PErr {
    fn from_error_kind(input: In<'a>, _kind: NomKind) -> Self {
        PErr::at(&input, ErrorKind::Expected(Vec::new()))
    }

    fn append(_input: In<'a>, _kind: NomKind, other: Self) -> Self {
        other
    }

    /// `alt` calls this when two branches fail: at the same place, the
    /// expectations add up ("expected A, B or C"); otherwise the error that
    /// got further wins, because it knows more about what the user meant.
    fn or(self, other: Self) -> Self {
        let (a, b) = (self.0, other.0);
        match a.span.start.cmp(&b.span.start) {
            std::cmp::Ordering::Greater => PErr(a),
            std::cmp::Ordering::Less => PErr(b),
            std::cmp::Ordering::Equal => match (a.kind, b.kind) {
                (ErrorKind::Expected(mut x), ErrorKind::Expected(y)) => {
                    for w in y {
                        if !x.contains(&w) {
                            x.push(w);
                        }
                    }
                    PErr(ParseError::new(a.span, ErrorKind::Expected(x)))
                }
                (ErrorKind::Expected(_), kind) => PErr(ParseError::new(b.span, kind)),
                (kind, _) => PErr(ParseError::new(a.span, kind)),
            },
        }
    }
}

/// `A`, `A or B`, `A, B or C`.
pub fn one_of(list: &[&str]) -> String {
    match list {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
