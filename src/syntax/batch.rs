//! `BATCH`, its legacy form `MIGRATE`, and `EXPLAIN` (SPEC §4): target,
//! entity source, the per-entity command and the `WITH` options.

use super::command::{migrate_command, parse_command};
use super::error::{ErrorKind, PErr};
use super::keywords::{BATCH_OPTIONS, suggest};
use super::lexeme::{
    followed_by_eq, kw, name, peek_char, peek_kw, pos, punct, string, string_or_bare, word_len, ws,
};
use super::options::{lookup, options};
use super::{Ctx, In, PResult, end};
use crate::ast::{BatchStmt, Options, Selection, Source, Span, Statement, Target, Text};
use nom::Err;

pub(crate) fn batch(i: In, ctx: Ctx, migrate: bool) -> PResult<Statement> {
    let (i, b) = batch_body(i, ctx, migrate)?;
    Ok((i, Statement::Batch(Box::new(b))))
}

pub(crate) fn explain(i: In, ctx: Ctx) -> PResult<Statement> {
    let migrate = if peek_kw(&i, "MIGRATE") {
        true
    } else if peek_kw(&i, "BATCH") {
        false
    } else {
        return Err(Err::Failure(PErr::at(
            &i,
            ErrorKind::Expected(vec!["BATCH", "MIGRATE"]),
        )));
    };
    let (i, _) = kw(if migrate { "MIGRATE" } else { "BATCH" })(i)?;
    let (i, b) = batch_body(i, ctx, migrate)?;
    Ok((i, Statement::Explain(Box::new(b))))
}

fn batch_body(i: In, ctx: Ctx, migrate: bool) -> PResult<BatchStmt> {
    let (i, target) = target(i)?;
    let (i, source) = if peek_kw(&i, "FROM") {
        let (i, s) = source(i)?;
        (i, Some(s))
    } else {
        (i, None)
    };
    let (i, command) = if migrate {
        let at = pos(&i);
        (i, migrate_command(&target.lu, Span::new(at, at)))
    } else {
        let (i, _) = fabric_command_keyword(i, source.is_none())?;
        let (i, _) = punct('=')(i)?;
        let (i, lit) = string(i).map_err(|e| match e {
            Err::Error(_) => unquoted_command(i),
            e => e,
        })?;
        let cmd = parse_command(&lit).map_err(|e| Err::Failure(PErr(e)))?;
        (i, cmd)
    };
    let (i, opts) = with_options(i, ctx)?;
    let hints: &[&str] = if opts.is_empty() {
        &["WITH"]
    } else {
        &["an option"]
    };
    let (i, ()) = end(i, hints)?;
    Ok((
        i,
        BatchStmt {
            migrate,
            target,
            source,
            command,
            options: opts,
        },
    ))
}

/// `FABRIC_COMMAND`, with a helpful error for a misspelling of it and for
/// options written before it.
fn fabric_command_keyword(i: In, source_possible: bool) -> PResult<Span> {
    if let Ok(r) = kw("FABRIC_COMMAND")(i) {
        return Ok(r);
    }
    let at = pos(&i);
    if let Some(n) = word_len(i.fragment()) {
        let found = &i.fragment()[..n];
        let span = Span::new(at, at + n);
        if found.eq_ignore_ascii_case("WITH") {
            return Err(Err::Failure(PErr::span(
                span,
                ErrorKind::Invalid(
                    "WITH and its options come after the command: \
                     ... FABRIC_COMMAND=\"...\" WITH option=value ..."
                        .into(),
                ),
            )));
        }
        if lookup(BATCH_OPTIONS, found).is_some() {
            return Err(Err::Failure(PErr::span(
                span,
                ErrorKind::Invalid(format!(
                    "{} is a WITH option: write it after FABRIC_COMMAND=..., as WITH {}=...",
                    found.to_ascii_uppercase(),
                    found.to_ascii_uppercase()
                )),
            )));
        }
        if followed_by_eq(&i) {
            return Err(Err::Failure(PErr::span(
                span,
                ErrorKind::UnknownOption {
                    found: found.to_string(),
                    valid: vec!["FABRIC_COMMAND"],
                    suggestion: suggest(found, ["FABRIC_COMMAND"]),
                },
            )));
        }
    }
    let mut expected = Vec::new();
    if source_possible {
        expected.push("FROM");
    }
    expected.push("FABRIC_COMMAND");
    Err(Err::Failure(PErr::at(&i, ErrorKind::Expected(expected))))
}

/// The error for a `FABRIC_COMMAND=` not followed by a string: when a
/// command follows unquoted (`FABRIC_COMMAND=sync_instance Customer.?`),
/// it points at the command and shows it quoted.
fn unquoted_command(i: In) -> Err<PErr> {
    let Ok((i, ())) = ws(i) else {
        return Err::Failure(PErr::expected(&i, "a string"));
    };
    let text = i.fragment();
    if word_len(text).is_none() {
        return Err::Failure(PErr::expected(&i, "a string"));
    }
    // The command runs to the end of the statement or line, or to a WITH,
    // outside its own quotes (`shell 'a; b ?'` holds a `;`).
    let mut end = text.len();
    let mut quote = None;
    let mut after_space = false;
    for (k, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ';' || c == '\n' => {
                end = k;
                break;
            }
            None if after_space
                && text[k..]
                    .get(..4)
                    .is_some_and(|w| w.eq_ignore_ascii_case("WITH"))
                && text[k + 4..]
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                end = k;
                break;
            }
            None => {}
        }
        after_space = c.is_ascii_whitespace();
    }
    if quote.is_some() {
        // A quote that never closes: the statement ends at its line.
        end = text.find([';', '\n']).unwrap_or(text.len());
    }
    let command = text[..end].trim_end();
    let start = pos(&i);
    let how = if command.contains('"') {
        "quote it, doubling the quotes inside".to_string()
    } else {
        format!("quote it: FABRIC_COMMAND=\"{command}\"")
    };
    Err::Failure(PErr::span(
        Span::new(start, start + command.len()),
        ErrorKind::Invalid(format!("the command is a string; {how}")),
    ))
}

fn with_options(i: In, ctx: Ctx) -> PResult<Options> {
    if !peek_kw(&i, "WITH") {
        return Ok((i, Options::default()));
    }
    let (i, _) = kw("WITH")(i)?;
    let (i, opts) = options(i, BATCH_OPTIONS, ctx)?;
    if opts.is_empty() {
        return Err(Err::Failure(PErr::expected(&i, "an option")));
    }
    Ok((i, opts))
}

/// `LU [@DC] [.GROUP | [.](id, ...)]`
pub(crate) fn target(i: In) -> PResult<Target> {
    let (i, lu) = name(i).map_err(|_| Err::Failure(PErr::expected(&i, "an LU name")))?;
    let (i, dc) = if peek_char(&i, '@') {
        let (i, _) = punct('@')(i)?;
        let (i, dc) =
            name(i).map_err(|_| Err::Failure(PErr::expected(&i, "a data center name")))?;
        (i, Some(dc))
    } else {
        (i, None)
    };
    let (i, selection) = if peek_char(&i, '.') {
        let (i, _) = punct('.')(i)?;
        if peek_char(&i, '(') {
            let (i, ids) = id_list(i)?;
            (i, Selection::Ids(ids))
        } else {
            let (i, g) = name(i).map_err(|_| {
                Err::Failure(PErr::at(
                    &i,
                    ErrorKind::Expected(vec!["an instance group name", "'('"]),
                ))
            })?;
            (i, Selection::Group(g))
        }
    } else if peek_char(&i, '(') {
        let (i, ids) = id_list(i)?;
        (i, Selection::Ids(ids))
    } else {
        (i, Selection::All)
    };
    Ok((i, Target { lu, dc, selection }))
}

/// `FROM FABRIC`, `FROM STDIN`, `FROM FILE 'path'` or
/// `FROM iface USING ('sql')`. FABRIC, STDIN and FILE after FROM are
/// always the keywords.
fn source(i: In) -> PResult<Source> {
    let (i, _) = kw("FROM")(i)?;
    if peek_kw(&i, "FABRIC") {
        let (i, _) = kw("FABRIC")(i)?;
        return Ok((i, Source::Fabric));
    }
    if peek_kw(&i, "STDIN") {
        let (i, _) = kw("STDIN")(i)?;
        return Ok((i, Source::Stdin));
    }
    if peek_kw(&i, "FILE") {
        let (i, _) = kw("FILE")(i)?;
        let (i, path) = string(i)
            .map_err(|_| Err::Failure(PErr::expected(&i, "a file path in quotes ('ids.txt')")))?;
        return Ok((i, Source::File(path.into_text())));
    }
    let (i, interface) = name(i).map_err(|_| {
        Err::Failure(PErr::at(
            &i,
            ErrorKind::Expected(vec!["FABRIC", "STDIN", "FILE", "an interface name"]),
        ))
    })?;
    let (i, sql) = using_sql(i)?;
    Ok((i, Source::Query { interface, sql }))
}

/// `USING ('sql')`.
pub(crate) fn using_sql(i: In) -> PResult<Text> {
    let (i, _) = kw("USING")(i)?;
    paren_string(i)
}

/// `('text')`.
pub(crate) fn paren_string(i: In) -> PResult<Text> {
    let (i, _) = punct('(')(i)?;
    let (i, lit) = string(i)?;
    let (i, _) = punct(')')(i)?;
    Ok((i, lit.into_text()))
}

/// `(id, ...)`: ids are strings, numbers or names.
pub(crate) fn id_list(i: In) -> PResult<Vec<Text>> {
    let (mut i, _) = punct('(')(i)?;
    let mut ids = Vec::new();
    loop {
        let (rest, lit) = string_or_bare(i, &["an entity id"])?;
        ids.push(lit.into_text());
        if peek_char(&rest, ',') {
            i = punct(',')(rest)?.0;
        } else {
            let (rest, _) = punct(')')(rest).map_err(|_| {
                Err::Failure(PErr::at(&rest, ErrorKind::Expected(vec!["','", "')'"])))
            })?;
            return Ok((rest, ids));
        }
    }
}
