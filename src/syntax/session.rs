//! Session statements (SPEC §12): `HELP`, `SET`, `EXIT` / `QUIT`.
//! (`SHOW SETTINGS` is read with the other `SHOW` forms in `catalog.rs`.)

use super::error::{ErrorKind, PErr};
use super::keywords::{STATEMENTS, suggest};
use super::lexeme::{kw, peek_kw, pos, string_or_bare, word};
use super::{Ctx, In, PResult, end};
use crate::ast::{Name, OutputFormat, Setting, Span, Statement};
use nom::Err;

/// `HELP [statement name]`: the topic is checked against the statement list.
pub(crate) fn help(i: In, _ctx: Ctx) -> PResult<Statement> {
    let start = pos(&i);
    let mut words: Vec<&str> = Vec::new();
    let mut i = i;
    let mut last_end = start;
    while let Ok((rest, (w, span))) = word(i) {
        words.push(w);
        last_end = span.end;
        i = rest;
    }
    let (i, ()) = end(i, &["a statement name"])?;
    if words.is_empty() {
        return Ok((i, Statement::Help { topic: None }));
    }
    let topic = words.join(" ").to_ascii_uppercase();
    let span = Span::new(start, last_end);
    let known = STATEMENTS.iter().any(|s| s.name == topic)
        || topic == "QUIT"
        || super::grammar::is_command_topic(&topic);
    if !known {
        let topics = STATEMENTS
            .iter()
            .map(|s| s.name)
            .chain(super::grammar::COMMAND_TOPICS.iter().copied());
        return Err(Err::Failure(PErr::span(
            span,
            ErrorKind::UnknownHelpTopic {
                suggestion: suggest(&topic, topics),
                found: words.join(" "),
            },
        )));
    }
    Ok((
        i,
        Statement::Help {
            topic: Some(Name::new(topic, span)),
        },
    ))
}

/// `SET FORMAT table|json|csv`, `SET PROGRESS on|off`.
pub(crate) fn set(i: In, _ctx: Ctx) -> PResult<Statement> {
    if peek_kw(&i, "FORMAT") {
        let (i, _) = kw("FORMAT")(i)?;
        let (i, lit) = string_or_bare(i, &["table", "json", "csv"])?;
        let f = [OutputFormat::Table, OutputFormat::Json, OutputFormat::Csv]
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(&lit.value))
            .ok_or_else(|| {
                Err::Failure(PErr::span(
                    lit.span,
                    ErrorKind::InvalidValue {
                        option: "FORMAT".into(),
                        expected: "table, json or csv".into(),
                        found: lit.value.clone(),
                    },
                ))
            })?;
        let (i, ()) = end(i, &[])?;
        return Ok((
            i,
            Statement::Set {
                setting: Setting::Format(f),
            },
        ));
    }
    if peek_kw(&i, "PROGRESS") {
        let (i, _) = kw("PROGRESS")(i)?;
        let (i, lit) = string_or_bare(i, &["on", "off"])?;
        let v = match lit.value.to_ascii_lowercase().as_str() {
            "on" | "true" => true,
            "off" | "false" => false,
            _ => {
                return Err(Err::Failure(PErr::span(
                    lit.span,
                    ErrorKind::InvalidValue {
                        option: "PROGRESS".into(),
                        expected: "on or off".into(),
                        found: lit.value.clone(),
                    },
                )));
            }
        };
        let (i, ()) = end(i, &[])?;
        return Ok((
            i,
            Statement::Set {
                setting: Setting::Progress(v),
            },
        ));
    }
    Err(Err::Failure(PErr::at(
        &i,
        ErrorKind::Expected(vec!["FORMAT", "PROGRESS"]),
    )))
}

pub(crate) fn exit(i: In, _ctx: Ctx) -> PResult<Statement> {
    let (i, ()) = end(i, &[])?;
    Ok((i, Statement::Exit))
}
