//! Tokens: white space and comments, words, keywords, punctuation, strings,
//! bare values. Every token parser eats the white space after it, so a
//! failing parser's position is the start of the offending token, which is
//! where a diagnostic should point.

use super::error::{ErrorKind, PErr};
use super::{In, PResult};
use crate::ast::Span;
use nom::{Err, Input};

pub fn pos(i: &In) -> usize {
    i.location_offset()
}

pub fn advance<'a>(i: In<'a>, n: usize) -> In<'a> {
    i.take_from(n)
}

/// Skips white space, `-- line` comments and `/* block */` comments.
pub fn ws(i: In) -> PResult<()> {
    let s = i.fragment().as_bytes();
    let mut p = 0;
    loop {
        while p < s.len() && s[p].is_ascii_whitespace() {
            p += 1;
        }
        if s[p..].starts_with(b"--") {
            p = match memchr_byte(b'\n', &s[p..]) {
                Some(n) => p + n + 1,
                None => s.len(),
            };
        } else if s[p..].starts_with(b"/*") {
            match find(&s[p + 2..], b"*/") {
                Some(n) => p += 2 + n + 2,
                None => {
                    let at = advance(i, p);
                    let start = pos(&at);
                    return Err(Err::Failure(PErr::span(
                        Span::new(start, start + 2),
                        ErrorKind::UnterminatedComment,
                    )));
                }
            }
        } else {
            break;
        }
    }
    Ok((advance(i, p), ()))
}

fn memchr_byte(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The length of the word at the start of `s`, if one starts there.
pub fn word_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first().copied().is_some_and(is_word_start) {
        Some(b.iter().position(|&c| !is_word_char(c)).unwrap_or(b.len()))
    } else {
        None
    }
}

/// An identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn word<'a>(i: In<'a>) -> PResult<'a, (&'a str, Span)> {
    match word_len(i.fragment()) {
        Some(n) => {
            let start = pos(&i);
            let text = &i.fragment()[..n];
            let (rest, ()) = ws(advance(i, n))?;
            Ok((rest, (text, Span::new(start, start + n))))
        }
        None => Err(Err::Error(PErr::expected(&i, "a name"))),
    }
}

/// A name, for the AST.
pub fn name(i: In) -> PResult<crate::ast::Name> {
    let (rest, (text, span)) = word(i)?;
    Ok((rest, crate::ast::Name::new(text, span)))
}

/// A case-insensitive keyword, on a word boundary (`FROMX` is not `FROM`).
pub fn kw<'a>(k: &'static str) -> impl Fn(In<'a>) -> PResult<'a, Span> {
    move |i: In<'a>| match word_len(i.fragment()) {
        Some(n) if i.fragment()[..n].eq_ignore_ascii_case(k) => {
            let start = pos(&i);
            let (rest, ()) = ws(advance(i, n))?;
            Ok((rest, Span::new(start, start + n)))
        }
        _ => Err(Err::Error(PErr::expected(&i, k))),
    }
}

/// Whether the next word is `k` (nothing consumed).
pub fn peek_kw(i: &In, k: &str) -> bool {
    word_len(i.fragment()).is_some_and(|n| i.fragment()[..n].eq_ignore_ascii_case(k))
}

/// One punctuation character. The label names it for "expected" lists.
pub fn punct<'a>(c: char) -> impl Fn(In<'a>) -> PResult<'a, Span> {
    move |i: In<'a>| {
        if i.fragment().starts_with(c) {
            let start = pos(&i);
            let (rest, ()) = ws(advance(i, c.len_utf8()))?;
            Ok((rest, Span::new(start, start + c.len_utf8())))
        } else {
            Err(Err::Error(PErr::expected(&i, punct_label(c))))
        }
    }
}

pub fn punct_label(c: char) -> &'static str {
    match c {
        '(' => "'('",
        ')' => "')'",
        ',' => "','",
        '.' => "'.'",
        '=' => "'='",
        '@' => "'@'",
        ';' => "';'",
        '?' => "'?'",
        ':' => "':'",
        _ => "punctuation",
    }
}

pub fn peek_char(i: &In, c: char) -> bool {
    i.fragment().starts_with(c)
}

/// A string literal, decoded, with what is needed to map a position in the
/// decoded text back to the source (for code inside strings).
#[derive(Clone, Debug)]
pub struct Lit {
    pub value: String,
    /// The whole token, quotes included.
    pub span: Span,
    /// Source offset of the first content byte.
    pub content_start: usize,
    /// Decoded offsets at which a doubled quote was collapsed to one.
    pub escapes: Vec<usize>,
    pub quoted: bool,
}

impl Lit {
    /// The source offset of decoded offset `d`.
    pub fn source_offset(&self, d: usize) -> usize {
        if !self.quoted {
            return self.span.start + d;
        }
        let before = self.escapes.partition_point(|&e| e < d);
        self.content_start + d + before
    }

    pub fn source_span(&self, s: Span) -> Span {
        Span::new(self.source_offset(s.start), self.source_offset(s.end))
    }

    pub fn into_text(self) -> crate::ast::Text {
        crate::ast::Text {
            value: self.value,
            span: self.span,
        }
    }
}

/// `'single'`, `"double"` (quote doubled to escape) or `$$dollar$$`.
pub fn string(i: In) -> PResult<Lit> {
    let s = *i.fragment();
    let start = pos(&i);
    if let Some(body) = s.strip_prefix("$$") {
        return match body.find("$$") {
            Some(n) => {
                let total = 2 + n + 2;
                let (rest, ()) = ws(advance(i, total))?;
                Ok((
                    rest,
                    Lit {
                        value: body[..n].to_string(),
                        span: Span::new(start, start + total),
                        content_start: start + 2,
                        escapes: Vec::new(),
                        quoted: true,
                    },
                ))
            }
            None => Err(Err::Failure(PErr::span(
                Span::new(start, start + 2),
                ErrorKind::UnterminatedString { quote: "$$" },
            ))),
        };
    }
    let q = match s.as_bytes().first() {
        Some(b'\'') => '\'',
        Some(b'"') => '"',
        _ => return Err(Err::Error(PErr::expected(&i, "a string"))),
    };
    let body = &s[1..];
    let mut value = String::new();
    let mut escapes = Vec::new();
    let mut p = 0;
    loop {
        match body[p..].find(q) {
            None => {
                return Err(Err::Failure(PErr::span(
                    Span::new(start, start + 1),
                    ErrorKind::UnterminatedString {
                        quote: if q == '\'' { "'" } else { "\"" },
                    },
                )));
            }
            Some(n) => {
                value.push_str(&body[p..p + n]);
                p += n + 1;
                if body[p..].starts_with(q) {
                    escapes.push(value.len());
                    value.push(q);
                    p += 1;
                } else {
                    break;
                }
            }
        }
    }
    let total = 1 + p;
    let (rest, ()) = ws(advance(i, total))?;
    Ok((
        rest,
        Lit {
            value,
            span: Span::new(start, start + total),
            content_start: start + 1,
            escapes,
            quoted: true,
        },
    ))
}

fn is_bare_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'%' | b'-')
}

/// The length of the bare value at the start of `s`: `[A-Za-z0-9_.:%-]+`,
/// stopping before a `--` comment.
pub fn bare_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut n = 0;
    while n < b.len() && is_bare_char(b[n]) {
        if b[n] == b'-' && b.get(n + 1) == Some(&b'-') {
            break;
        }
        n += 1;
    }
    n
}

/// An unquoted value: `true`, `42`, `-1`, `30s`, `10%`, `10.21.2.102`.
pub fn bare(i: In) -> PResult<Lit> {
    let n = bare_len(i.fragment());
    if n == 0 {
        return Err(Err::Error(PErr::expected(&i, "a value")));
    }
    let start = pos(&i);
    let value = i.fragment()[..n].to_string();
    let (rest, ()) = ws(advance(i, n))?;
    Ok((
        rest,
        Lit {
            value,
            span: Span::new(start, start + n),
            content_start: start,
            escapes: Vec::new(),
            quoted: false,
        },
    ))
}

/// A string or a bare value; `what` says what was expected when neither
/// stands here. A string that starts but never ends stays that error.
pub fn string_or_bare<'a>(i: In<'a>, what: &[&'static str]) -> PResult<'a, Lit> {
    match string(i) {
        Err(Err::Error(_)) => {
            bare(i).map_err(|_| Err::Failure(PErr::at(&i, ErrorKind::Expected(what.to_vec()))))
        }
        r => r,
    }
}

/// A string or a bare value.
pub fn value(i: In) -> PResult<Lit> {
    match string(i) {
        Err(Err::Error(e1)) => match bare(i) {
            Err(Err::Error(_)) => {
                let mut e = e1;
                e.0.kind = ErrorKind::Expected(vec!["a value"]);
                Err(Err::Error(e))
            }
            r => r,
        },
        r => r,
    }
}

/// Whether, after the bare token or word at the start of `i`, the next
/// non-blank character is `=`: that makes the token an option name.
pub fn followed_by_eq(i: &In) -> bool {
    let n = bare_len(i.fragment());
    if n == 0 {
        return false;
    }
    match ws(advance(*i, n)) {
        Ok((rest, ())) => rest.fragment().starts_with('='),
        Err(_) => false,
    }
}

/// Turns a soft error into a hard one: after a statement's leading keyword
/// there is nothing else to try, so the error stands where it is.
pub fn cut<T>(r: PResult<T>) -> PResult<T> {
    r.map_err(|e| match e {
        Err::Error(e) => Err::Failure(e),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(src: &str) -> Lit {
        string(In::new(src)).expect("string parses").1
    }

    #[test]
    fn doubled_quotes_escape() {
        assert_eq!(lit("'it''s'").value, "it's");
        assert_eq!(lit(r#""say ""hi""""#).value, r#"say "hi""#);
        assert_eq!(lit("'a\nb'").value, "a\nb");
        assert_eq!(lit("$$ it's \"x\" $$").value, " it's \"x\" ");
    }

    #[test]
    fn escapes_map_back_to_source() {
        let l = lit("'a''b?'");
        // decoded "a'b?": the '?' is decoded offset 3, source offset 5.
        assert_eq!(l.value, "a'b?");
        assert_eq!(l.source_offset(3), 5);
        assert_eq!(l.source_offset(0), 1);
    }

    #[test]
    fn unterminated_string_is_a_failure_at_the_quote() {
        let e = string(In::new("  'abc")).err();
        assert!(e.is_some());
        match string(In::new("'abc")) {
            Err(Err::Failure(e)) => {
                assert_eq!(e.0.span.range(), (0, 1));
                assert_eq!(e.0.kind, ErrorKind::UnterminatedString { quote: "'" });
            }
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn comments_are_white_space() {
        let (rest, ()) = ws(In::new("-- x\n /* y\n z */ BATCH")).unwrap();
        assert_eq!(*rest.fragment(), "BATCH");
        assert!(ws(In::new("/* open")).is_err());
    }

    #[test]
    fn keywords_respect_word_boundaries() {
        assert!(kw("FROM")(In::new("from x")).is_ok());
        assert!(kw("FROM")(In::new("FROMX")).is_err());
        assert!(kw("FROM")(In::new("Fro")).is_err());
    }

    #[test]
    fn bare_values_stop_at_comments() {
        assert_eq!(bare_len("-1--x"), 2);
        assert_eq!(bare_len("10.21.2.102 "), 11);
        assert_eq!(bare_len("10%;"), 3);
    }
}
