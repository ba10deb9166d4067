//! `HELP`: the statements, and each one's section of the grammar file.

use super::{Result, StatementError};
use crate::ast::Span;
use crate::output::{Cell, Output, Table};

/// `HELP`: every statement with its summary; `HELP <statement>`: its
/// section of the grammar file (syntax and examples).
pub(super) fn help(topic: Option<&str>, span: Span) -> Result<Output> {
    use crate::syntax::{grammar, keywords};
    let Some(topic) = topic else {
        let mut t = Table::new(["Statement", "Summary"]);
        for s in keywords::STATEMENTS {
            t.rows.push(vec![
                Cell::Text(s.name.into()),
                Cell::Text(s.summary.into()),
            ]);
        }
        return Ok(Output::Table(t));
    };
    // The parser accepts only statement names as topics, and a test holds
    // the grammar to a section per statement: this is a safety net.
    grammar::help_text(topic)
        .map(Output::Message)
        .ok_or_else(|| {
            StatementError::refused(
                span,
                format!("the grammar has no section for {topic}; HELP lists the statements"),
            )
        })
}
