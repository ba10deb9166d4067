//! A forgiving scanner for input that is still being typed: which parts are
//! strings, comments and words, for the highlighter and the completer. It
//! follows the lexical rules the parser's `lexeme.rs` implements (and a test
//! holds the two together on strings), but never fails: an open string or
//! comment runs to the end of the text. What the input means is the
//! parser's business.

use crate::syntax::lexeme::{bare_len, word_len};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Word,
    /// `'...'`, `"..."` or `$$...$$`; `open` when it is not closed yet.
    String {
        open: bool,
    },
    Comment {
        open: bool,
    },
    /// A number or another bare value that starts with a digit (`42`, `-1`,
    /// `10.21.2.102`, `30s`).
    Number,
    Semicolon,
    /// Any other character (punctuation).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    /// Byte offsets in the text.
    pub start: usize,
    pub end: usize,
}

/// The tokens of `text`, white space left out.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut p = 0;
    while p < b.len() {
        let rest = &text[p..];
        let c = b[p];
        let (kind, len) = if c.is_ascii_whitespace() {
            p += 1;
            continue;
        } else if rest.starts_with("--") {
            (
                Kind::Comment { open: false },
                rest.find('\n').unwrap_or(rest.len()),
            )
        } else if let Some(body) = rest.strip_prefix("/*") {
            enclosed(
                body,
                "*/",
                Kind::Comment { open: false },
                Kind::Comment { open: true },
            )
        } else if let Some(body) = rest.strip_prefix("$$") {
            enclosed(
                body,
                "$$",
                Kind::String { open: false },
                Kind::String { open: true },
            )
        } else if c == b'\'' || c == b'"' {
            quoted(rest, c)
        } else if let Some(n) = word_len(rest) {
            (Kind::Word, n)
        } else if c.is_ascii_digit() || (c == b'-' && b.get(p + 1).is_some_and(u8::is_ascii_digit))
        {
            (Kind::Number, bare_len(rest).max(1))
        } else if c == b';' {
            (Kind::Semicolon, 1)
        } else {
            (Kind::Other, rest.chars().next().map_or(1, char::len_utf8))
        };
        out.push(Token {
            kind,
            start: p,
            end: p + len,
        });
        p += len;
    }
    out
}

/// A token whose two-character opener came before `body`: up to `close`,
/// or to the end when it is not closed.
fn enclosed(body: &str, close: &str, closed: Kind, open: Kind) -> (Kind, usize) {
    match body.find(close) {
        Some(n) => (closed, 2 + n + close.len()),
        None => (open, 2 + body.len()),
    }
}

/// A string opened by quote `q` at the start of `s`: the quote doubled
/// stands for itself.
fn quoted(s: &str, q: u8) -> (Kind, usize) {
    let b = s.as_bytes();
    let mut p = 1;
    while let Some(n) = b[p..].iter().position(|&c| c == q) {
        p += n + 1;
        if b.get(p) != Some(&q) {
            return (Kind::String { open: false }, p);
        }
        p += 1;
    }
    (Kind::String { open: true }, s.len())
}

/// Where the statement that `text` ends in starts: after the last `;` that
/// is not in a string or a comment.
pub fn statement_start(toks: &[Token]) -> usize {
    toks.iter()
        .rev()
        .find(|t| t.kind == Kind::Semicolon)
        .map_or(0, |t| t.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::lexeme;

    fn kinds(text: &str) -> Vec<(Kind, &str)> {
        tokens(text)
            .into_iter()
            .map(|t| (t.kind, &text[t.start..t.end]))
            .collect()
    }

    #[test]
    fn strings_comments_words_and_numbers() {
        use Kind::*;
        assert_eq!(
            kinds("BATCH X.(1, 'a''b') -- note\nWITH /* c */ N=-1; $$ q $$"),
            vec![
                (Word, "BATCH"),
                (Word, "X"),
                (Other, "."),
                (Other, "("),
                (Number, "1"),
                (Other, ","),
                (String { open: false }, "'a''b'"),
                (Other, ")"),
                (Comment { open: false }, "-- note"),
                (Word, "WITH"),
                (Comment { open: false }, "/* c */"),
                (Word, "N"),
                (Other, "="),
                (Number, "-1"),
                (Semicolon, ";"),
                (String { open: false }, "$$ q $$"),
            ]
        );
    }

    #[test]
    fn open_strings_and_comments_run_to_the_end() {
        use Kind::*;
        assert_eq!(
            kinds("USING ('select\n  x"),
            vec![
                (Word, "USING"),
                (Other, "("),
                (String { open: true }, "'select\n  x")
            ]
        );
        assert_eq!(
            kinds("a /* b"),
            vec![(Word, "a"), (Comment { open: true }, "/* b")]
        );
        assert_eq!(kinds("$$ x"), vec![(String { open: true }, "$$ x")]);
        assert_eq!(kinds("'it''"), vec![(String { open: true }, "'it''")]);
        assert_eq!(kinds("é;"), vec![(Other, "é"), (Semicolon, ";")]);
    }

    /// The scanner and the parser's lexer agree on where strings end.
    #[test]
    fn strings_end_where_the_parser_ends_them() {
        for s in [
            "'a'",
            "'it''s' x",
            "\"say \"\"hi\"\"\"",
            "$$ it's \"x\" $$ y",
            "'a;b' c",
            "''",
            "''''",
        ] {
            let lit = lexeme::string(crate::syntax::In::new(s)).expect("parses").1;
            let t = tokens(s)[0];
            assert_eq!(t.kind, Kind::String { open: false }, "{s}");
            assert_eq!((t.start, t.end), (lit.span.start, lit.span.end), "{s}");
        }
    }

    #[test]
    fn the_statement_starts_after_the_last_real_semicolon() {
        let text = "SHOW LUS; BATCH X USING (';') -- ;\n";
        assert_eq!(statement_start(&tokens(text)), 9);
        assert_eq!(statement_start(&tokens("BATCH")), 0);
    }
}
