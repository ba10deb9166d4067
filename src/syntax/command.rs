//! Per-entity commands (SPEC §5), the language inside a `FABRIC_COMMAND`
//! string. They are parsed with the statement, so a bad command is a parse
//! error before anything runs; positions are mapped back into the outer text
//! so the caret lands on the right column even through doubled quotes.

use super::error::{ErrorKind, PErr, ParseError};
use super::keywords::{COMMANDS, suggest};
use super::lexeme::{
    Lit, bare, name, peek_char, pos, punct, string, string_or_bare, word, word_len, ws,
};
use super::{In, PResult};
use crate::ast::{Arg, CommandKind, EntityCommand, NAMED_PARAMS, Name, Span};
use nom::Err;

/// Parses the decoded text of `lit` as a per-entity command.
pub fn parse_command(lit: &Lit) -> Result<EntityCommand, ParseError> {
    let src = In::new(&lit.value);
    let map_span = |s: Span| lit.source_span(s);
    let r = command(src).and_then(|(rest, kind)| {
        let left = rest.fragment();
        let trimmed = left.trim_start();
        if left.is_empty() {
            Ok(kind)
        } else if word_len(trimmed) == Some(4) && trimmed[..4].eq_ignore_ascii_case("WITH") {
            // `FABRIC_COMMAND="shell 'x ?' WITH ENTITY_TIMEOUT='1s'"`.
            let at = rest.location_offset() + left.len() - trimmed.len();
            Err(Err::Failure(PErr::span(
                Span::new(at, at + 4),
                ErrorKind::Invalid(
                    "WITH and its options go after the command's closing quote: \
                     FABRIC_COMMAND=\"...\" WITH option=value"
                        .into(),
                ),
            )))
        } else {
            Err(Err::Failure(PErr::expected(&rest, "end of command")))
        }
    });
    match r {
        Ok(mut kind) => {
            match &mut kind {
                CommandKind::SyncInstance { lu } | CommandKind::DeleteInstance { lu } => {
                    lu.span = map_span(lu.span);
                }
                CommandKind::Sql { interface, .. } => interface.span = map_span(interface.span),
                _ => {}
            }
            Ok(EntityCommand {
                kind,
                span: lit.span,
            })
        }
        Err(Err::Error(e) | Err::Failure(e)) => Err(ParseError {
            span: lit.span,
            kind: ErrorKind::Nested {
                context: "FABRIC_COMMAND",
                inner: Box::new(e.0.relocated(&map_span)),
            },
        }),
        Err(Err::Incomplete(_)) => Err(ParseError::new(
            lit.span,
            ErrorKind::Invalid("incomplete command".into()),
        )),
    }
}

fn command(i: In) -> PResult<CommandKind> {
    let (i, ()) = ws(i)?;
    let (rest, (cmd, cmd_span)) = word(i).map_err(|_| {
        Err::Failure(PErr::expected(
            &i,
            "a command (sync_instance, exec, shell, ...)",
        ))
    })?;
    let lower = cmd.to_ascii_lowercase();
    match lower.as_str() {
        "sync_instance" | "delete_instance" => {
            let (rest, lu) = name(rest).map_err(to_failure)?;
            let (rest, _) = punct('.')(rest).map_err(to_failure)?;
            let (rest, _) = placeholder_or_refuse(rest, &lower)?;
            let kind = if lower == "sync_instance" {
                CommandKind::SyncInstance { lu }
            } else {
                CommandKind::DeleteInstance { lu }
            };
            Ok((rest, kind))
        }
        "exec" => exec(rest, cmd_span),
        "pipe" => pipe(rest),
        "shell" => {
            let (rest, script) = string(rest).map_err(to_failure)?;
            if !script.value.contains('?')
                && !crate::command::shell::uses_entity_id_variable(&script.value)
            {
                return Err(no_placeholder_in_text(
                    script.span,
                    script.value.contains("{}"),
                    "shell",
                ));
            }
            if crate::command::shell::placeholder_in_arithmetic(&script.value) {
                return Err(Err::Failure(PErr::span(
                    script.span,
                    ErrorKind::Invalid(
                        "a ? inside shell arithmetic ($(( )), $[ ], (( ))) or a ${ } expansion \
                         has the shell evaluate the entity id as an expression, and bash runs \
                         code an id such as a[$(reboot)] holds; check the id and use $ENTITY_ID \
                         there, e.g. \
                         case \"$ENTITY_ID\" in *[!0-9]*|'') exit 1;; esac; echo $((ENTITY_ID + 1))"
                            .into(),
                    ),
                )));
            }
            Ok((
                rest,
                CommandKind::Shell {
                    script: script.value,
                },
            ))
        }
        "sql" => {
            let (rest, interface) = name(rest).map_err(to_failure)?;
            let (rest, stmt) = string(rest).map_err(to_failure)?;
            if !stmt.value.contains('?') {
                return Err(no_placeholder_in_text(
                    stmt.span,
                    stmt.value.contains("{}"),
                    "sql",
                ));
            }
            Ok((
                rest,
                CommandKind::Sql {
                    interface,
                    statement: stmt.value,
                },
            ))
        }
        "echo" => {
            let (rest, _) = placeholder_or_refuse(rest, "echo")?;
            Ok((rest, CommandKind::Echo))
        }
        "sleep" => {
            let (rest2, ms) = bare(rest)
                .map_err(|_| Err::Failure(PErr::expected(&rest, "a number of milliseconds")))?;
            let ms_value: u64 = ms.value.parse().map_err(|_| {
                Err::Failure(PErr::span(
                    ms.span,
                    ErrorKind::Expected(vec!["a number of milliseconds"]),
                ))
            })?;
            let (rest, _) = placeholder_or_refuse(rest2, "sleep")?;
            Ok((rest, CommandKind::Sleep { ms: ms_value }))
        }
        _ => Err(Err::Failure(PErr::span(
            cmd_span,
            ErrorKind::UnknownCommand {
                found: cmd.to_string(),
                suggestion: suggest(cmd, COMMANDS.iter().copied()),
            },
        ))),
    }
}

/// `?` where the command needs it; at the end of input, a missing `?` is
/// the "command without ?" refusal rather than a bare "expected '?'".
fn placeholder_or_refuse<'a>(i: In<'a>, command: &str) -> PResult<'a, Span> {
    if i.fragment().is_empty() {
        let at = pos(&i);
        return Err(no_placeholder(Span::new(at, at), static_name(command)));
    }
    if peek_char(&i, '{') {
        return Err(parallel_braces(&i));
    }
    punct('?')(i).map_err(to_failure)
}

/// GNU parallel's and xargs' `{}` where `?` belongs: the most common slip
/// of a user who comes from them.
fn parallel_braces(i: &In) -> Err<PErr> {
    let at = pos(i);
    let len = if i.fragment().starts_with("{}") { 2 } else { 1 };
    Err::Failure(PErr::span(
        Span::new(at, at + len),
        ErrorKind::Habit {
            message: "the entity id is written ? in a batchsh command".into(),
            instead: BRACES_HINT.into(),
        },
    ))
}

const BRACES_HINT: &str = "use ? for the entity id (GNU parallel's {})";

fn static_name(command: &str) -> &'static str {
    COMMANDS
        .iter()
        .copied()
        .find(|c| *c == command)
        .unwrap_or("command")
}

fn exec(i: In, cmd_span: Span) -> PResult<CommandKind> {
    let (mut i, program) = string_or_bare(i, &["a program to run"])?;
    let mut args = Vec::new();
    loop {
        if i.fragment().is_empty() {
            break;
        }
        if peek_char(&i, '?') {
            i = punct('?')(i)?.0;
            args.push(Arg::EntityId);
        } else if peek_char(&i, '{') {
            return Err(parallel_braces(&i));
        } else if peek_char(&i, ':') {
            let (rest, _) = punct(':')(i)?;
            let (rest, n) = name(rest).map_err(to_failure)?;
            if !NAMED_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(&n.text)) {
                return Err(Err::Failure(PErr::span(
                    n.span,
                    ErrorKind::UnknownParam { found: n.text },
                )));
            }
            args.push(Arg::Param(n.text.to_ascii_lowercase()));
            i = rest;
        } else {
            let (rest, a) = string_or_bare(i, &["an argument", "'?'", "end of command"])?;
            args.push(Arg::Literal(a.value));
            i = rest;
        }
    }
    if !args.contains(&Arg::EntityId) {
        // `exec 'ls' '{}'`: the braces quoted, as a shell user types them.
        let braces = args.iter().any(Arg::has_parallel_braces);
        return Err(no_placeholder_in_text(cmd_span, braces, "exec"));
    }
    Ok((
        i,
        CommandKind::Exec {
            program: program.value,
            args,
        },
    ))
}

/// `pipe 'program' 'arg' ...`: strings only. The program reads the ids
/// on its stdin, so a `?` (or `{}`, or a `:param`) among its arguments is
/// refused: it would pass no id, and the reader would think it does.
fn pipe(i: In) -> PResult<CommandKind> {
    let (mut i, program) = string_or_bare(i, &["a program to run"])?;
    let mut args = Vec::new();
    while !i.fragment().is_empty() {
        if peek_char(&i, '?') || peek_char(&i, '{') || peek_char(&i, ':') {
            let at = pos(&i);
            let len = if i.fragment().starts_with("{}") { 2 } else { 1 };
            return Err(Err::Failure(PErr::span(
                Span::new(at, at + len),
                ErrorKind::Invalid(
                    "pipe takes no ? and no :parameter: it writes each entity id to the \
                     program's stdin, one per line, and its arguments are plain strings \
                     (BID, LU and NODE are in the program's environment)"
                        .into(),
                ),
            )));
        }
        let (rest, a) = string_or_bare(i, &["an argument", "end of command"])?;
        args.push(a.value);
        i = rest;
    }
    Ok((
        i,
        CommandKind::Pipe {
            program: program.value,
            args,
        },
    ))
}

/// A command without `?`: with GNU parallel's `{}` in its text (`braces`),
/// the hint for that; else the plain refusal.
fn no_placeholder_in_text(span: Span, braces: bool, command: &'static str) -> Err<PErr> {
    if braces {
        return Err::Failure(PErr::span(
            span,
            ErrorKind::Habit {
                message: format!("the {command} command has no ?"),
                instead: BRACES_HINT.into(),
            },
        ));
    }
    no_placeholder(span, command)
}

fn no_placeholder(span: Span, command: &'static str) -> Err<PErr> {
    Err::Failure(PErr::span(span, ErrorKind::NoPlaceholder { command }))
}

fn to_failure(e: Err<PErr>) -> Err<PErr> {
    match e {
        Err::Error(e) => Err::Failure(e),
        e => e,
    }
}

/// The implied command of `MIGRATE <LU>`: `sync_instance <LU>.?`.
pub(crate) fn migrate_command(lu: &Name, span: Span) -> EntityCommand {
    EntityCommand {
        kind: CommandKind::SyncInstance { lu: lu.clone() },
        span,
    }
}
