//! Renders a [`ParseError`] against its source text, rustc-style:
//!
//! ```text
//! error: unknown option FABRIC_COMAND
//!   --> line 1, column 51
//!    |
//!  1 | BATCH Customer FROM crm USING ('select id from c') FABRIC_COMAND="..."
//!    |                                                   ^^^^^^^^^^^^^ did you mean FABRIC_COMMAND?
//! ```
//!
//! The message says what is wrong, the arrow where, the label (when there is
//! one) what would be right; notes add what is valid.

pub use crate::syntax::error::one_of;
use crate::syntax::error::{ErrorKind, ParseError};
use crate::syntax::lexeme::{bare_len, word_len};
use std::fmt::Write;

/// Longest source line shown whole; longer lines are cut around the error.
const MAX_LINE: usize = 120;

/// Marks where a long line was cut (ASCII, so every terminal aligns it).
const ELLIPSIS: &str = "...";

pub fn render(src: &str, err: &ParseError) -> String {
    let inner = err.innermost();
    let (message, label, mut notes) = describe(src, inner);
    // Innermost first: "inside the FABRIC_COMMAND string, inside the COMMAND string".
    let mut contexts = Vec::new();
    let mut e = err;
    while let ErrorKind::Nested { context, inner } = &e.kind {
        contexts.push(format!("inside the {context} string"));
        e = inner;
    }
    if !contexts.is_empty() {
        contexts.reverse();
        notes.push(contexts.join(", "));
    }
    let start = clamp(src, inner.span.start);
    let found_len = token_len(src, start);
    let width = if inner.span.end > inner.span.start {
        src[start..clamp(src, inner.span.end)].chars().count()
    } else {
        found_len
    };

    let line_start = src[..start].rfind('\n').map_or(0, |n| n + 1);
    let line_end = src[start..].find('\n').map_or(src.len(), |n| start + n);
    let line_no = src[..start].matches('\n').count() + 1;
    let line = src[line_start..line_end].trim_end_matches('\r');
    let col = src[line_start..start].chars().count() + 1;

    // Cut very long lines to a window around the column.
    let chars: Vec<char> = line.chars().collect();
    let (shown, caret_col) = if chars.len() > MAX_LINE {
        let from = (col - 1).saturating_sub(MAX_LINE / 2);
        let to = (from + MAX_LINE).min(chars.len());
        let lead = if from > 0 { ELLIPSIS } else { "" };
        let mut s = String::from(lead);
        s.extend(&chars[from..to]);
        if to < chars.len() {
            s.push_str(ELLIPSIS);
        }
        (s, col - 1 - from + lead.len())
    } else {
        (line.to_string(), col - 1)
    };
    let shown_chars: Vec<char> = shown.chars().collect();
    let pad: String = shown_chars
        .iter()
        .take(caret_col)
        .map(|&c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let room = shown_chars.len().saturating_sub(caret_col).max(1);
    let carets = "^".repeat(width.clamp(1, room));

    let num = line_no.to_string();
    let gutter = " ".repeat(num.len());
    let mut out = String::new();
    let _ = writeln!(out, "error: {message}");
    let _ = writeln!(out, "{gutter} --> line {line_no}, column {col}");
    let _ = writeln!(out, "{gutter}  |");
    let _ = writeln!(out, " {num} | {shown}");
    match label {
        Some(l) => {
            let _ = writeln!(out, "{gutter}  | {pad}{carets} {l}");
        }
        None => {
            let _ = writeln!(out, "{gutter}  | {pad}{carets}");
        }
    }
    for n in notes {
        let _ = writeln!(out, "{gutter}  = note: {n}");
    }
    out
}

fn clamp(src: &str, at: usize) -> usize {
    let mut at = at.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The message, the label under the carets, and notes.
fn describe(src: &str, e: &ParseError) -> (String, Option<String>, Vec<String>) {
    let found = || found_at(src, clamp(src, e.span.start));
    let did_you_mean = |s: &Option<&str>| s.map(|s| format!("did you mean {s}?"));
    match &e.kind {
        ErrorKind::Expected(list) if list.is_empty() => {
            (format!("unexpected {}", found()), None, vec![])
        }
        ErrorKind::Expected(list) => (
            format!("expected {}, found {}", one_of(list), found()),
            None,
            vec![],
        ),
        ErrorKind::UnknownStatement { found, suggestion } => (
            format!("unknown statement {}", shorten_raw(found)),
            did_you_mean(suggestion),
            vec!["HELP lists the statements".into()],
        ),
        ErrorKind::UnknownOption {
            found,
            valid,
            suggestion,
        } => (
            format!("unknown option {}", shorten_raw(found)),
            did_you_mean(suggestion),
            vec![format!("valid here: {}", valid.join(", "))],
        ),
        ErrorKind::DuplicateOption { name } => (
            format!("option {name} is given twice"),
            Some("give each option once".into()),
            vec![],
        ),
        ErrorKind::MissingOption { name, statement } => (
            format!("{statement} needs {name}=..."),
            Some(format!("add {name}=... here")),
            vec![],
        ),
        ErrorKind::InvalidValue {
            option,
            expected,
            found,
        } => (
            format!("invalid value for {option}: {}", shorten(found)),
            Some(format!("expected {expected}")),
            vec![],
        ),
        ErrorKind::UnknownCommand { found, suggestion } => (
            format!("unknown command {}", shorten_raw(found)),
            did_you_mean(suggestion),
            vec![format!(
                "commands: {}",
                crate::syntax::keywords::COMMANDS.join(", ")
            )],
        ),
        ErrorKind::UnknownParam { found } => (
            format!("unknown parameter :{}", shorten_raw(found)),
            None,
            vec![format!(
                "parameters: {}",
                crate::ast::NAMED_PARAMS
                    .iter()
                    .map(|p| format!(":{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        ),
        ErrorKind::NoPlaceholder { command } => (
            format!("the {command} command has no ?"),
            Some(if *command == "shell" {
                "put ? where the entity id goes (or $ENTITY_ID, the id's variable)".into()
            } else {
                "put ? where the entity id goes".into()
            }),
            vec![
                "a per-entity command must use the entity id (pipe alone takes it on its stdin)"
                    .into(),
            ],
        ),
        ErrorKind::UnterminatedString { quote } => (
            "unterminated string".into(),
            Some(format!("this {quote} is never closed")),
            vec![],
        ),
        ErrorKind::UnterminatedComment => (
            "unterminated comment".into(),
            Some("this /* is never closed".into()),
            vec![],
        ),
        ErrorKind::UnknownHelpTopic { found, suggestion } => (
            format!("no statement named {}", shorten_raw(found)),
            did_you_mean(suggestion),
            vec!["HELP lists the statements, HELP commands the per-entity commands".into()],
        ),
        ErrorKind::Invalid(msg) => (msg.clone(), None, vec![]),
        ErrorKind::Habit { message, instead } => (message.clone(), Some(instead.clone()), vec![]),
        ErrorKind::Nested { inner, .. } => describe(src, inner),
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("'{cut}…'")
    } else {
        format!("'{s}'")
    }
}

/// Describes the token at `at` for "found ...".
fn found_at(src: &str, at: usize) -> String {
    let rest = &src[at..];
    let Some(c) = rest.chars().next() else {
        return "end of input".into();
    };
    let n = token_len(src, at);
    let tok: String = rest.chars().take(n).collect();
    if c == '\'' || c == '"' || rest.starts_with("$$") {
        format!("string {}", shorten_raw(&tok))
    } else if word_len(rest).is_some() || bare_len(rest) > 0 {
        shorten_raw(&tok)
    } else {
        format!("'{c}'")
    }
}

fn shorten_raw(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        s.to_string()
    }
}

/// The length in chars of the token at `at` (at least 1 unless at the end).
fn token_len(src: &str, at: usize) -> usize {
    let rest = &src[at..];
    let Some(c) = rest.chars().next() else {
        return 0;
    };
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let bytes = if c == '\'' || c == '"' {
        // To the closing quote (doubled quotes stay inside), or the line's end.
        let b = rest.as_bytes();
        let q = b[0];
        let mut k = 1;
        loop {
            match b.get(k) {
                None => break b.len(),
                Some(&x) if x == q && b.get(k + 1) == Some(&q) => k += 2,
                Some(&x) if x == q => break k + 1,
                Some(_) => k += 1,
            }
        }
        .min(line_len)
    } else if let Some(body) = rest.strip_prefix("$$") {
        body.find("$$").map_or(line_len, |n| n + 4).min(line_len)
    } else if let Some(n) = word_len(rest) {
        n.max(bare_len(rest))
    } else if bare_len(rest) > 0 {
        bare_len(rest)
    } else {
        c.len_utf8()
    };
    rest[..bytes.min(rest.len())].chars().count()
}
