//! Unit tests of the parser, one module per statement family: the AST each
//! form produces, and the error (kind and span) each mistake produces.

mod batch;
mod catalog;
mod command;
mod control;
mod jobs;
mod session;

use crate::ast::{Name, Opt, Options, Span, Statement, Text, Value};
use crate::syntax::error::{ErrorKind, ParseError};
use crate::syntax::parse;

/// The one statement `src` holds.
pub(super) fn one(src: &str) -> Statement {
    let mut v = parse(src).unwrap_or_else(|e| panic!("{}", crate::diag::render(src, &e)));
    assert_eq!(v.len(), 1, "expected one statement in {src:?}");
    v.remove(0).kind
}

/// The innermost error `src` gives.
pub(super) fn err(src: &str) -> ParseError {
    match parse(src) {
        Ok(v) => panic!("expected an error for {src:?}, got {v:?}"),
        Err(e) => e.innermost().clone(),
    }
}

/// The error's span as (start, end), and the text it covers.
pub(super) fn at<'a>(src: &'a str, e: &ParseError) -> (usize, &'a str) {
    (e.span.start, &src[e.span.start..e.span.end])
}

pub(super) fn name(s: &str) -> Name {
    Name::new(s, Span::default())
}

pub(super) fn text(s: &str) -> Text {
    Text {
        value: s.to_string(),
        span: Span::default(),
    }
}

pub(super) fn opts(list: &[(&'static str, Value)]) -> Options {
    Options(
        list.iter()
            .map(|(n, v)| Opt {
                name: n,
                value: v.clone(),
                span: Span::default(),
            })
            .collect(),
    )
}

pub(super) fn expected(e: &ParseError) -> Vec<&'static str> {
    match &e.kind {
        ErrorKind::Expected(v) => v.clone(),
        other => panic!("expected an Expected error, got {other:?}"),
    }
}

#[test]
fn a_script_holds_many_statements_and_empty_ones() {
    let v = parse(";; SHOW LUS ; ; EXIT;").unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].kind, Statement::ShowLus);
    assert_eq!(v[0].span.range(), (3, 11));
    assert_eq!(v[1].span.range(), (16, 20));
    assert!(parse("").unwrap().is_empty());
    assert!(parse("-- only a comment").unwrap().is_empty());
}

#[test]
fn statements_without_semicolon_must_be_last() {
    let e = err("SHOW LUS SHOW LUS");
    assert_eq!(at("SHOW LUS SHOW LUS", &e), (9, ""));
    assert_eq!(expected(&e), vec!["';'", "end of input"]);
}

#[test]
fn statement_spans_exclude_trailing_blanks_and_comments_end() {
    let src = "BATCH_LIST LIMIT=5   -- x\n;";
    let v = parse(src).unwrap();
    // The span ends at the comment's end at most, never past the `;`.
    assert!(v[0].span.end <= src.find(';').unwrap());
    assert_eq!(&src[v[0].span.start..17], "BATCH_LIST LIMIT=");
}

#[test]
fn unknown_statement_suggests() {
    let e = err("BACTH C FABRIC_COMMAND='echo ?'");
    assert_eq!(
        e.kind,
        ErrorKind::UnknownStatement {
            found: "BACTH".into(),
            suggestion: Some("BATCH")
        }
    );
    assert_eq!(e.span.range(), (0, 5));
    let e = err("123");
    assert_eq!(expected(&e), vec!["a statement"]);
}
