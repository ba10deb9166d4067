//! `HELP`: the statements, each one's section of the grammar file, and the
//! per-entity commands (`HELP commands`, `HELP exec`).

use super::{Result, StatementError};
use crate::ast::Span;
use crate::output::{Cell, Output, Table};

/// `HELP`: every statement, whether it is built yet, and its summary;
/// `HELP <statement>`: its section of the grammar file (syntax and
/// examples); `HELP commands` / `HELP <command>`: the per-entity commands.
pub(super) fn help(topic: Option<&str>, span: Span) -> Result<Output> {
    use crate::syntax::{grammar, keywords};
    let Some(topic) = topic else {
        // Built or not in a column of its own: a `Bool` stays whole at any
        // width, where a mark at the end of the summary was cut with it.
        let mut t = Table::new(["Statement", "Built", "Summary"]);
        for s in keywords::STATEMENTS {
            t.rows.push(vec![
                Cell::Text(s.name.into()),
                Cell::Bool(keywords::is_built(s.name)),
                Cell::Text(s.summary.into()),
            ]);
        }
        return Ok(Output::Table(t));
    };
    // The parser accepts only statement and command names as topics, and
    // tests hold the grammar to a section per statement and a part per
    // command: this is a safety net.
    grammar::help_text(topic)
        .or_else(|| grammar::command_help(topic))
        .map(Output::Message)
        .ok_or_else(|| {
            StatementError::refused(
                span,
                format!("the grammar has no section for {topic}; HELP lists the statements"),
            )
        })
}
