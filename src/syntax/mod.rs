//! Text to statements. [`parse`] reads a whole script (statements separated
//! by `;`) and returns the statements or the first error.
//!
//! The parser reads the leading word of a statement, finds its family in
//! [`keywords::STATEMENTS`], and from then on commits (`cut`): an error after
//! the leading keyword is reported where it happens instead of being
//! swallowed by backtracking. One module per statement family.

mod batch;
mod catalog;
mod command;
mod control;
pub mod error;
pub mod grammar;
mod jobs;
pub mod keywords;
pub mod lexeme;
mod options;
mod session;
pub mod values;

use crate::ast::{Span, Stmt};
use error::{ErrorKind, PErr, ParseError};
use lexeme::{cut, pos, punct, word, ws};
use nom::Err;
use nom_locate::LocatedSpan;

pub use command::parse_command;

pub type In<'a> = LocatedSpan<&'a str>;
pub type PResult<'a, T> = nom::IResult<In<'a>, T, PErr>;

/// How deeply statements may hold statements (a job's COMMAND, SCHEDULE ...
/// DO, EXPLAIN). Deeper input is refused instead of exhausting the stack.
const MAX_DEPTH: usize = 8;

/// Parses a script: zero or more statements separated by `;`.
pub fn parse(src: &str) -> Result<Vec<Stmt>, ParseError> {
    parse_at_depth(In::new(src), 0)
}

fn parse_at_depth(i: In, depth: usize) -> Result<Vec<Stmt>, ParseError> {
    script(i, depth)
        .map(|(_, stmts)| stmts)
        .map_err(|e| match e {
            Err::Error(e) | Err::Failure(e) => e.0,
            // Complete-input parsers never ask for more; report it as an error
            // at the end rather than panic if one ever does.
            Err::Incomplete(_) => {
                let end = pos(&i) + i.fragment().len();
                ParseError::new(Span::new(end, end), ErrorKind::Expected(vec![]))
            }
        })
}

fn script(i: In, depth: usize) -> PResult<Vec<Stmt>> {
    // About one statement per hundred bytes in real scripts.
    let mut out = Vec::with_capacity(i.fragment().len() / 100);
    let (mut i, ()) = ws(i)?;
    loop {
        while let Ok((rest, _)) = punct(';')(i) {
            i = rest;
        }
        if i.fragment().is_empty() {
            return Ok((i, out));
        }
        let (rest, stmt) = statement(i, depth)?;
        out.push(stmt);
        // `statement` has checked that `;` or the end follows.
        i = rest;
    }
}

/// One statement, and the check that it ends at `;` or the end of input.
pub(crate) fn statement(i: In, depth: usize) -> PResult<Stmt> {
    if depth > MAX_DEPTH {
        return Err(Err::Failure(PErr::at(
            &i,
            ErrorKind::Invalid(format!(
                "statements nest more than {MAX_DEPTH} deep; unnest them"
            )),
        )));
    }
    let start = pos(&i);
    if i.fragment().starts_with('\\') {
        return Err(backslash_command(&i));
    }
    let (rest, (lead, lead_span)) = word(i).map_err(|e| match e {
        Err::Error(_) => Err::Error(PErr::at(&i, ErrorKind::Expected(vec!["a statement"]))),
        hard => hard,
    })?;
    let upper = lead.to_ascii_uppercase();
    let ctx = Ctx { depth };
    let r = match upper.as_str() {
        "CREATE" => catalog::create(rest, ctx),
        "DROP" => catalog::drop(rest, ctx),
        "SHOW" => catalog::show(rest, ctx),
        "DESCRIBE" => catalog::describe(rest, ctx),
        "GET" => catalog::get(rest, ctx),
        "BATCH" => batch::batch(rest, ctx, false),
        "MIGRATE" => batch::batch(rest, ctx, true),
        "EXPLAIN" => batch::explain(rest, ctx),
        "STARTJOB" | "STOPJOB" | "RESTARTJOB" | "RESUMEJOB" | "UPDATEJOB" => {
            jobs::job(rest, ctx, &upper)
        }
        "JOBSTATUS" => jobs::jobstatus(rest, ctx),
        "JOB_HISTORY" => jobs::job_history(rest, ctx),
        "SCHEDULE" => jobs::schedule(rest, ctx),
        "HELP" => session::help(rest, ctx),
        "SET" => session::set(rest, ctx),
        "EXIT" | "QUIT" => session::exit(rest, ctx),
        "CANCEL" => control::cancel_batch(rest, ctx),
        "WINDOW_STATUS" | "WINDOW_SET" | "WINDOW_OPEN" | "WINDOW_CLOSE" | "WINDOW_FAIL" => {
            control::window(rest, ctx, &upper)
        }
        w if w.starts_with("BATCH_") => match control::statement(rest, ctx, w) {
            Some(r) => r,
            None => return Err(unknown_statement(lead, lead_span)),
        },
        _ => return Err(unknown_statement(lead, lead_span)),
    };
    let (rest, kind) = cut(r)?;
    // Token parsers eat the blanks after them; the span ends at the text.
    let eaten = &i.fragment()[..pos(&rest) - start];
    let end = start + eaten.trim_end().len();
    Ok((
        rest,
        Stmt {
            kind,
            span: Span::new(start, end),
        },
    ))
}

/// psql's backslash commands, which batchsh users type from habit: the
/// command, the form psql users type it in, and what it is here.
const BACKSLASH_COMMANDS: &[(&str, &str, &str)] = &[
    ("\\x", "\\x", "SET EXPANDED on"),
    ("\\timing", "\\timing", "SET TIMING on"),
    ("\\pset", "\\pset pager off", "SET PAGER off"),
    ("\\q", "\\q", "EXIT"),
    ("\\?", "\\?", "HELP"),
    ("\\h", "\\h", "HELP"),
];

fn backslash_command(i: &In) -> Err<PErr> {
    let text = i.fragment();
    let len = text
        .char_indices()
        .skip(1)
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '?'))
        .map_or(text.len(), |(n, _)| n);
    let found = &text[..len];
    let at = pos(i);
    let instead = BACKSLASH_COMMANDS
        .iter()
        .find(|(psql, ..)| psql.eq_ignore_ascii_case(found))
        .map_or_else(
            || "batchsh has no backslash commands; HELP lists the statements".to_string(),
            |(_, typed, ours)| format!("psql's {typed} is {ours} here"),
        );
    Err::Failure(PErr::span(
        Span::new(at, at + len),
        ErrorKind::Habit {
            message: format!("{found} is not a statement"),
            instead,
        },
    ))
}

fn unknown_statement(found: &str, span: Span) -> Err<PErr> {
    let suggestion = keywords::suggest(found, keywords::leading_words());
    Err::Failure(PErr::span(
        span,
        ErrorKind::UnknownStatement {
            found: found.to_string(),
            suggestion,
        },
    ))
}

/// What statement parsers need to know about where they stand.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    depth: usize,
}

/// Checks that the statement ends here (`;` or end of input), without
/// consuming the `;`. `hints` are what else could have come next.
pub(crate) fn end<'a>(i: In<'a>, hints: &[&'static str]) -> PResult<'a, ()> {
    let f = i.fragment();
    if f.is_empty() || f.starts_with(';') {
        return Ok((i, ()));
    }
    let mut expected: Vec<&'static str> = hints.to_vec();
    expected.extend(["';'", "end of input"]);
    Err(Err::Failure(PErr::at(&i, ErrorKind::Expected(expected))))
}

/// Parses code held in a string (a job's COMMAND): exactly one statement.
/// Errors are placed in the outer text.
pub(crate) fn nested_statement(
    lit: &lexeme::Lit,
    depth: usize,
    context: &'static str,
) -> Result<Stmt, ParseError> {
    let wrap = |inner: ParseError| ParseError {
        span: lit.span,
        kind: ErrorKind::Nested {
            context,
            inner: Box::new(inner),
        },
    };
    let mut stmts = parse_at_depth(In::new(&lit.value), depth + 1)
        .map_err(|e| wrap(e.relocated(&|s| lit.source_span(s))))?;
    match stmts.len() {
        1 => {
            let mut s = stmts.remove(0);
            s.span = lit.source_span(s.span);
            Ok(s)
        }
        n => Err(wrap(ParseError::new(
            lit.span,
            ErrorKind::Invalid(format!("{context} must hold one statement, found {n}")),
        ))),
    }
}

#[cfg(test)]
mod tests;
