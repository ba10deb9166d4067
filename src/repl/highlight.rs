//! Syntax highlighting of the line being typed: keywords bold cyan,
//! strings green, comments dim. Keywords are the grammar file's word
//! terminals, so every statement, option and command name is one.
//!
//! Only escape sequences are added: the line keeps its width, as the line
//! editor requires.

use super::lex::{self, Kind};
use std::ffi::OsStr;
use std::sync::OnceLock;

const KEYWORD: &str = "\x1b[1;36m";
const STRING: &str = "\x1b[32m";
const COMMENT: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Whether to highlight: the output layer's colour gate (a terminal, no
/// `NO_COLOR`) and a terminal that can show colour (`TERM` set and not
/// `dumb`).
pub fn enabled(stdout_is_terminal: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    crate::output::color_allowed_with(stdout_is_terminal, no_color)
        && term.is_some_and(|t| !t.is_empty() && t != "dumb")
}

fn is_keyword(word: &str) -> bool {
    static KEYWORDS: OnceLock<Vec<String>> = OnceLock::new();
    KEYWORDS
        .get_or_init(|| crate::syntax::grammar::keywords(crate::syntax::grammar::TEXT))
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
}

/// `line` with colour, read as the continuation of `before` (the lines
/// typed before it, so that a string opened there is still a string).
pub fn paint(before: &str, line: &str) -> String {
    let offset = if before.is_empty() {
        0
    } else {
        before.len() + 1
    };
    let text = if before.is_empty() {
        line.to_string()
    } else {
        format!("{before}\n{line}")
    };
    let mut out = String::with_capacity(line.len() * 2);
    let mut at = 0;
    for t in lex::tokens(&text) {
        if t.end <= offset {
            continue;
        }
        let (start, end) = (t.start.max(offset) - offset, t.end - offset);
        let color = match t.kind {
            Kind::Word if is_keyword(&line[start..end]) => KEYWORD,
            Kind::String { .. } => STRING,
            Kind::Comment { .. } => COMMENT,
            _ => continue,
        };
        out.push_str(&line[at..start]);
        out.push_str(color);
        out.push_str(&line[start..end]);
        out.push_str(RESET);
        at = end;
    }
    out.push_str(&line[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text with colours written as tags, to read the tests.
    fn tags(s: &str) -> String {
        s.replace(KEYWORD, "<k>")
            .replace(STRING, "<s>")
            .replace(COMMENT, "<c>")
            .replace(RESET, "</>")
    }

    #[test]
    fn keywords_strings_and_comments() {
        assert_eq!(
            tags(&paint(
                "",
                "batch Customer FABRIC_COMMAND='echo ?' WITH ASYNC=true -- go"
            )),
            "<k>batch</> Customer <k>FABRIC_COMMAND</>=<s>'echo ?'</> <k>WITH</> <k>ASYNC</>=<k>true</> <c>-- go</>"
        );
        assert_eq!(tags(&paint("", "SHOW LUS;")), "<k>SHOW</> <k>LUS</>;");
    }

    #[test]
    fn a_string_opened_on_an_earlier_line_goes_on() {
        assert_eq!(
            tags(&paint(
                "BATCH X FROM crm USING ('select id",
                "from t') FABRIC_COMMAND"
            )),
            "<s>from t'</>) <k>FABRIC_COMMAND</>"
        );
    }

    #[test]
    fn only_escape_sequences_are_added() {
        for line in ["", "é 'x' -- y", "BATCH $$ a", "\"a\"\"b\" ; /* c"] {
            let painted = paint("", line);
            let stripped = painted
                .replace(KEYWORD, "")
                .replace(STRING, "")
                .replace(COMMENT, "")
                .replace(RESET, "");
            assert_eq!(stripped, line);
        }
    }

    #[test]
    fn no_colour_without_a_capable_terminal_or_with_no_color() {
        let xterm = Some(OsStr::new("xterm-256color"));
        assert!(enabled(true, None, xterm));
        assert!(enabled(true, Some(OsStr::new("")), xterm));
        assert!(!enabled(true, Some(OsStr::new("1")), xterm));
        assert!(!enabled(false, None, xterm));
        assert!(!enabled(true, None, Some(OsStr::new("dumb"))));
        assert!(!enabled(true, None, None));
    }
}
