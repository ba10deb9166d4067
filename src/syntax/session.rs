//! Session statements (SPEC §12): `HELP`, `SET`, `EXIT` / `QUIT`.
//! (`SHOW SETTINGS` is read with the other `SHOW` forms in `catalog.rs`.)

use super::error::{ErrorKind, PErr};
use super::keywords::{STATEMENTS, suggest};
use super::lexeme::{kw, peek_kw, pos, string_or_bare, word};
use super::{Ctx, In, PResult, end};
use crate::ast::{Expanded, Name, OutputFormat, Setting, Span, Statement};
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

/// The settings `SET` takes, each with the values it accepts (the first
/// spelling of each; `true` / `false` also read as `on` / `off`).
const SETTINGS: &[(&str, &[&str])] = &[
    ("FORMAT", &["table", "json", "csv"]),
    ("PROGRESS", &["on", "off"]),
    ("EXPANDED", &["on", "off", "auto"]),
    ("TIMING", &["on", "off"]),
    ("PAGER", &["on", "off"]),
];

/// `SET FORMAT table|json|csv`, `SET PROGRESS on|off`,
/// `SET EXPANDED on|off|auto`, `SET TIMING on|off`, `SET PAGER on|off`.
pub(crate) fn set(i: In, _ctx: Ctx) -> PResult<Statement> {
    let Some(&(name, values)) = SETTINGS.iter().find(|(n, _)| peek_kw(&i, n)) else {
        return Err(Err::Failure(PErr::at(
            &i,
            ErrorKind::Expected(SETTINGS.iter().map(|(n, _)| *n).collect()),
        )));
    };
    let (i, _) = kw(name)(i)?;
    let (i, lit) = string_or_bare(i, values)?;
    let value = lit.value.to_ascii_lowercase();
    let on = match value.as_str() {
        "on" | "true" => Some(true),
        "off" | "false" => Some(false),
        _ => None,
    };
    let setting = match name {
        "FORMAT" => [OutputFormat::Table, OutputFormat::Json, OutputFormat::Csv]
            .into_iter()
            .find(|f| f.name() == value)
            .map(Setting::Format),
        "PROGRESS" => on.map(Setting::Progress),
        "TIMING" => on.map(Setting::Timing),
        "PAGER" => on.map(Setting::Pager),
        _ => Expanded::ALL
            .into_iter()
            .find(|e| e.name() == value)
            .or(on.map(|on| if on { Expanded::On } else { Expanded::Off }))
            .map(Setting::Expanded),
    };
    let setting = setting.ok_or_else(|| {
        Err::Failure(PErr::span(
            lit.span,
            ErrorKind::InvalidValue {
                option: name.into(),
                expected: super::error::one_of(values),
                found: lit.value.clone(),
            },
        ))
    })?;
    let (i, ()) = end(i, &[])?;
    Ok((i, Statement::Set { setting }))
}

pub(crate) fn exit(i: In, _ctx: Ctx) -> PResult<Statement> {
    let (i, ()) = end(i, &[])?;
    Ok((i, Statement::Exit))
}
