//! When the REPL runs what was typed: the real parser decides whether the
//! input is complete (SPEC §2: it ends with `;`, or is a complete statement
//! with balanced quotes and parentheses), so a BATCH whose SQL spans lines
//! inside quotes, or whose options follow on the next line, asks for more
//! instead of failing.

use crate::syntax::error::ErrorKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Run it: it parses, or it has an error that more text cannot fix
    /// (the parser's message will say what is wrong).
    Complete,
    /// Ask for more with the continuation prompt. `open`: the input ends
    /// inside a string or a block comment.
    Incomplete { open: bool },
}

/// Whether `text` (every line typed so far) is ready to run.
///
/// Incomplete means the parser stopped at the very end of the text: it
/// wanted more (an open string, comment or parenthesis, a missing
/// `FABRIC_COMMAND`, a `WITH` with no option yet). A `;` at the end is a
/// token the parser stops at, so input that ends with `;` runs, as the
/// spec says, and shows its error if it has one; a `;` inside an open
/// string is text, not an end.
pub fn verdict(text: &str) -> Verdict {
    let Err(e) = crate::syntax::parse(text) else {
        return Verdict::Complete;
    };
    match e.kind {
        ErrorKind::UnterminatedString { .. } | ErrorKind::UnterminatedComment => {
            Verdict::Incomplete { open: true }
        }
        _ if e.span.start >= text.trim_end().len() => Verdict::Incomplete { open: false },
        _ => Verdict::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    const MORE: Verdict = Incomplete { open: false };
    const OPEN: Verdict = Incomplete { open: true };

    #[test]
    fn complete_statements_run_with_or_without_a_semicolon() {
        assert_eq!(verdict("SHOW SETTINGS"), Complete);
        assert_eq!(verdict("SHOW SETTINGS;"), Complete);
        assert_eq!(verdict("SET FORMAT json; SHOW SETTINGS"), Complete);
        assert_eq!(verdict("BATCH X.(1) FABRIC_COMMAND='echo ?'"), Complete);
        // Nothing to run is complete too: the prompt comes back.
        assert_eq!(verdict(""), Complete);
        assert_eq!(verdict("  -- a comment"), Complete);
    }

    #[test]
    fn a_multi_line_batch_with_sql_in_quotes_waits_for_its_end() {
        let lines = [
            "BATCH Customer FROM crm USING ('select id",
            "  from customer; -- not the end: inside the string",
            "  where id <= 3')",
            "FABRIC_COMMAND=\"echo ?\" WITH",
            "MAX_WORKERS_PER_NODE=2;",
        ];
        let want = [OPEN, OPEN, MORE, MORE, Complete];
        let mut text = String::new();
        for (line, want) in lines.iter().zip(want) {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line);
            assert_eq!(verdict(&text), want, "after {line:?}");
        }
    }

    #[test]
    fn open_parentheses_quotes_dollars_and_comments_ask_for_more() {
        assert_eq!(verdict("BATCH X.(1, 2,"), MORE);
        assert_eq!(verdict("BATCH X.(1, 2"), MORE);
        assert_eq!(
            verdict("STARTJOB STATEMENT NAME='n' COMMAND=$$ BATCH_LIST"),
            OPEN
        );
        assert_eq!(verdict("SHOW LUS /* a"), OPEN);
        assert_eq!(verdict("BATCH X FABRIC_COMMAND=\"echo ?"), OPEN);
        assert_eq!(verdict("CREATE"), MORE);
        assert_eq!(verdict("BATCH_EDIT"), MORE);
        assert_eq!(verdict("SHOW LUS; BATCH"), MORE);
        assert_eq!(verdict("BATCH X -- the command on the next line"), MORE);
    }

    #[test]
    fn errors_that_more_text_cannot_fix_run_to_show_them() {
        assert_eq!(verdict("BATCH_LSIT"), Complete);
        assert_eq!(verdict("BATCH X FABRIC_COMAND='echo ?'"), Complete);
        assert_eq!(verdict("BATCH X;"), Complete);
        assert_eq!(verdict("BATCH X FABRIC_COMMAND=\"exec 'a ?\""), Complete);
        assert_eq!(verdict("HELP NO_SUCH"), Complete);
        assert_eq!(verdict(")"), Complete);
    }
}
