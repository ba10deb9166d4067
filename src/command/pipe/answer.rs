//! What a pipe's answer line means: the entity's result ([`Reply`]), or
//! the error that fails it ([`PipeError`]), with the result JSON to keep.

use std::time::Duration;

use serde_json::{Map, Value, json};
use thiserror::Error;

use super::super::process::drop_cut_char;

/// What a pipe's program answered for one id.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A JSON object, the result as it is.
    Object(Value),
    /// Any other line, the result being `{"line": text}`, with
    /// `"truncated": true` when `OUTPUT_LIMIT` cut it.
    Line { text: String, truncated: bool },
}

impl Reply {
    /// The result as JSON text (for a line, written directly: the fast
    /// path of a program such as `cat`).
    pub fn json_text(&self) -> String {
        match self {
            Reply::Object(v) => v.to_string(),
            Reply::Line { text, truncated } => {
                let text = serde_json::to_string(text).unwrap_or_default();
                if *truncated {
                    format!("{{\"line\":{text},\"truncated\":true}}")
                } else {
                    format!("{{\"line\":{text}}}")
                }
            }
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Reply::Object(v) => v,
            Reply::Line { text, truncated } => line_json(text, truncated),
        }
    }
}

fn line_json(text: String, truncated: bool) -> Value {
    let mut v = json!({ "line": text });
    if truncated {
        v["truncated"] = Value::Bool(true);
    }
    v
}

/// Why a pipe failed an entity. The message is the entity's error text.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PipeError {
    /// The program answered `{"error": ...}`.
    #[error("{text}")]
    Answered { text: String, object: Value },
    /// The process ended, or closed its stdout, before answering.
    #[error(
        "the pipe program ended ({status}) before answering{}{}",
        partial_note(.partial),
        last_line_hint(.stderr)
    )]
    Ended {
        status: String,
        /// Its exit code, or 128 + the signal that killed it.
        code: i32,
        /// What it wrote of an answer, with no newline.
        partial: String,
        stderr: String,
    },
    /// The process could not start, or ended at start-up: nothing was
    /// read. The same error fails this thread's entities until `rest`
    /// has passed.
    #[error(
        "{why}{}; not started again for {} (its entities fail meanwhile)",
        last_line_hint(.stderr),
        crate::ast::Duration(.rest.as_millis() as u64)
    )]
    StartUp {
        why: String,
        stderr: String,
        rest: Duration,
    },
    /// `ENTITY_TIMEOUT` passed; the process was killed.
    #[error("timed out after {}", crate::ast::Duration(.limit.as_millis() as u64))]
    TimedOut { limit: Duration, stderr: String },
    /// The process wrote more lines than it was sent ids.
    #[error("{}", out_of_step(*.answers))]
    OutOfStep { answers: usize },
    #[error(
        "the pipe program's answer is not valid UTF-8 (byte {at}): it must write UTF-8 text \
         (or JSON, whose \\u escapes hold any character)"
    )]
    NotUtf8 { at: usize, lossy: String },
    #[error(
        "the entity id holds a line break, which pipe cannot send as one line (exec passes \
         such an id as one argument)"
    )]
    LineBreak,
    #[error("cannot talk to the pipe program: {0}")]
    Io(String),
}

impl PipeError {
    /// The result JSON to record with the error.
    pub fn result(&self) -> Option<Value> {
        match self {
            PipeError::Answered { object, .. } => Some(object.clone()),
            PipeError::Ended {
                code,
                partial,
                stderr,
                ..
            } => Some(json!({"exit": code, "stdout": partial, "stderr": stderr})),
            PipeError::StartUp { stderr, .. } | PipeError::TimedOut { stderr, .. }
                if !stderr.is_empty() =>
            {
                Some(json!({ "stderr": stderr }))
            }
            PipeError::NotUtf8 { lossy, .. } => Some(json!({ "line": lossy })),
            _ => None,
        }
    }
}

fn out_of_step(answers: usize) -> String {
    if answers == 1 {
        "the pipe program wrote more than one line for this id (out of step): its answer \
         cannot be trusted, and the program is started again"
            .into()
    } else {
        format!(
            "the pipe program wrote more lines than the {answers} ids it was sent together \
             (out of step): their answers cannot be matched to them, and the program is \
             started again"
        )
    }
}

fn partial_note(partial: &str) -> String {
    if partial.is_empty() {
        String::new()
    } else {
        format!(", after writing {} bytes with no newline", partial.len())
    }
}

/// `: <last line of stderr>`: for a process, the last line says why it
/// ended (a Python traceback ends with the exception), not the first.
fn last_line_hint(stderr: &str) -> String {
    super::super::line_hint(stderr.lines().map(str::trim).rfind(|l| !l.is_empty()))
}

/// One answer line (its newline taken off) as the entity's result.
pub(super) fn reply(line: &[u8], cut: bool) -> Result<Reply, PipeError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut owned;
    let line = if cut {
        owned = line.to_vec();
        drop_cut_char(&mut owned);
        &owned[..]
    } else {
        line
    };
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Err(PipeError::NotUtf8 {
                at: e.valid_up_to(),
                lossy: String::from_utf8_lossy(line).into_owned(),
            });
        }
    };
    if !cut
        && text.trim_start().starts_with('{')
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text)
    {
        return object(map);
    }
    Ok(Reply::Line {
        text: text.to_string(),
        truncated: cut,
    })
}

/// An answer that is a JSON object: the result, or the entity's error.
fn object(map: Map<String, Value>) -> Result<Reply, PipeError> {
    match map.get("error") {
        None | Some(Value::Null) => Ok(Reply::Object(Value::Object(map))),
        Some(e) => {
            let text = match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Err(PipeError::Answered {
                text,
                object: Value::Object(map),
            })
        }
    }
}
