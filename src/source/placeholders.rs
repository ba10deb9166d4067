//! Placeholders for PostgreSQL: a query on a `POSTGRES` interface is
//! written as on any other (`?` for a value, `:from_date` for a window
//! variable), and PostgreSQL numbers its parameters (`$1`, `$2`...), so
//! the text is rewritten before it is sent.
//!
//! Only what stands outside quotes and comments is a placeholder: string
//! literals (`'...'`, `E'...'` with its backslash escapes), quoted
//! identifiers (`"..."`), dollar-quoted text (`$$...$$`, `$tag$...$tag$`),
//! `--` and (nested) `/* */` comments are copied as they are. `::` is a
//! cast, never a name. A `:word` is a parameter only when the word is one
//! the caller has a value for or knows (the window variables): `a[lo:hi]`
//! is an array slice, left to PostgreSQL. `??` stands for a `?` that is
//! PostgreSQL's own (the jsonb operators `?`, `?|`, `?&`), as in JDBC.

/// What one `$n` of the rewritten text takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The n-th `?` (from 0).
    Positional(usize),
    /// A `:name`, without its colon, as written. Every use of one name
    /// is one `$n`.
    Named(String),
}

/// The text PostgreSQL is given, and what each of its `$n` stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translated {
    pub sql: String,
    pub slots: Vec<Slot>,
    /// Something other than blanks and comments follows a `;`: the text
    /// holds a second statement.
    pub more_than_one: bool,
}

impl Translated {
    /// How many `?` the text had.
    pub fn positional(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Positional(_)))
            .count()
    }
}

/// A `$n` written in the text: it would clash with the numbers given to
/// the placeholders.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the query uses {written}; write ? for a value and :name for a window variable \
     (batchsh numbers PostgreSQL's parameters itself)"
)]
pub struct Numbered {
    pub written: String,
}

/// Rewrites `sql` for PostgreSQL: each `?` and each `:name` for which
/// `is_name` holds (ASCII case ignored by the caller) becomes a `$n`.
pub fn translate(sql: &str, is_name: impl Fn(&str) -> bool) -> Result<Translated, Numbered> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut slots: Vec<Slot> = Vec::new();
    let mut positional = 0;
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    // A `;` was seen outside quotes and comments.
    let mut ended = false;
    let mut more_than_one = false;
    while i < b.len() {
        let c = b[i];
        let comment = matches!((c, b.get(i + 1)), (b'-', Some(b'-')) | (b'/', Some(b'*')));
        if c == b';' {
            ended = true;
        } else if ended && !c.is_ascii_whitespace() && !comment {
            more_than_one = true;
        }
        match c {
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(b[i - 2]));
                i = end_of_string(b, i + 1, escapes);
            }
            b'"' => i = end_of_quoted(b, i + 1, b'"'),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = end_of_comment(b, i + 2),
            b'$' if i > 0 && is_ident_byte(b[i - 1]) => i += 1,
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = i + 1 + b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                return Err(Numbered {
                    written: sql[i..end].to_string(),
                });
            }
            b'$' => match dollar_tag(b, i) {
                Some(tag_end) => {
                    let tag = &b[i..tag_end];
                    i = find(b, tag_end, tag).map_or(b.len(), |p| p + tag.len());
                }
                None => i += 1,
            },
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' => {
                let start = i + 1;
                let len = b[start..].iter().take_while(|&&c| is_ident_byte(c)).count();
                let name = &sql[start..start + len];
                if len > 0 && !b[start].is_ascii_digit() && is_name(name) {
                    out.push_str(&sql[copied..i]);
                    let n = match slots
                        .iter()
                        .position(|s| matches!(s, Slot::Named(m) if m.eq_ignore_ascii_case(name)))
                    {
                        Some(k) => k + 1,
                        None => {
                            slots.push(Slot::Named(name.to_string()));
                            slots.len()
                        }
                    };
                    out.push_str(&format!("${n}"));
                    i = start + len;
                    copied = i;
                } else {
                    i = start + len;
                }
            }
            b'?' if b.get(i + 1) == Some(&b'?') => {
                out.push_str(&sql[copied..=i]);
                i += 2;
                copied = i;
            }
            b'?' => {
                out.push_str(&sql[copied..i]);
                slots.push(Slot::Positional(positional));
                positional += 1;
                out.push_str(&format!("${}", slots.len()));
                i += 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok(Translated {
        sql: out,
        slots,
        more_than_one,
    })
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Past the `'` that closes a string literal opened before `i` (`''` is a
/// quote inside it; with `escapes`, so is `\'`), or the end of the text.
fn end_of_string(b: &[u8], mut i: usize, escapes: bool) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Past the `quote` that closes a quoted identifier (doubled inside it).
fn end_of_quoted(b: &[u8], mut i: usize, quote: u8) -> usize {
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Past the `*/` that closes a comment opened before `i`; PostgreSQL's
/// comments nest.
fn end_of_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The end (past the second `$`) of a dollar-quote tag starting at `i`
/// (`$$`, `$body$`), or `None` when the `$` opens none.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while j < b.len() && is_ident_byte(b[j]) {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(name: &str) -> bool {
        crate::ast::NAMED_PARAMS
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    fn t(sql: &str) -> (String, Vec<Slot>) {
        let r = translate(sql, window).unwrap();
        (r.sql, r.slots)
    }

    fn pos(n: usize) -> Slot {
        Slot::Positional(n)
    }

    fn named(n: &str) -> Slot {
        Slot::Named(n.to_string())
    }

    #[test]
    fn question_marks_are_numbered_in_order() {
        assert_eq!(
            t("select id from t where a = ? and b > ?"),
            (
                "select id from t where a = $1 and b > $2".into(),
                vec![pos(0), pos(1)]
            )
        );
        assert_eq!(t("select 1"), ("select 1".into(), vec![]));
        assert_eq!(t("?"), ("$1".into(), vec![pos(0)]));
    }

    #[test]
    fn window_names_become_parameters_and_repeat_as_one() {
        assert_eq!(
            t(
                "select id from o where at >= :from_date and at < :BATCH_START or at >= :from_date and x = ?"
            ),
            (
                "select id from o where at >= $1 and at < $2 or at >= $1 and x = $3".into(),
                vec![named("from_date"), named("BATCH_START"), pos(0)]
            )
        );
    }

    #[test]
    fn casts_and_slices_are_not_names() {
        assert_eq!(
            t("select ?::int, x::text, a[1:2], a[lo:hi] from t"),
            (
                "select $1::int, x::text, a[1:2], a[lo:hi] from t".into(),
                vec![pos(0)]
            )
        );
        // A cast to a type named like a window variable is still a cast.
        assert_eq!(t("select x::bid"), ("select x::bid".into(), vec![]));
    }

    #[test]
    fn quoted_text_and_comments_are_left_alone() {
        for sql in [
            "select '?', 'it''s :from_date ?' from t",
            "select E'\\' ?' from t",
            "select \"odd?col\", \":from_date\" from t",
            "select $$ ? :from_date $$ from t",
            "select $fn$ it's ? $$ $fn$ from t",
            "select 1 -- where a = ?\n from t",
            "select 1 /* ? /* nested ? */ :bid */ from t",
        ] {
            assert_eq!(t(sql), (sql.to_string(), vec![]), "{sql}");
        }
        assert_eq!(
            t("select 'a' || ? from t where c = e'x\\'y' and d = ?"),
            (
                "select 'a' || $1 from t where c = e'x\\'y' and d = $2".into(),
                vec![pos(0), pos(1)]
            )
        );
        // Without the E, a backslash escapes nothing.
        assert_eq!(
            t("select 'a\\' , ?"),
            ("select 'a\\' , $1".into(), vec![pos(0)])
        );
        // `we'` is not an E string: the `e` ends an identifier.
        assert_eq!(t("select we'?'"), ("select we'?'".into(), vec![]));
    }

    #[test]
    fn a_dollar_inside_a_word_opens_no_quote() {
        assert_eq!(
            t("select a$b, ? from t$x$"),
            ("select a$b, $1 from t$x$".into(), vec![pos(0)])
        );
    }

    #[test]
    fn a_doubled_question_mark_is_postgresqls_own() {
        assert_eq!(
            t("select id from t where doc ?? 'k' and doc ??| array['a'] and id > ?"),
            (
                "select id from t where doc ? 'k' and doc ?| array['a'] and id > $1".into(),
                vec![pos(0)]
            )
        );
    }

    #[test]
    fn a_second_statement_is_seen() {
        let more = |sql: &str| translate(sql, window).unwrap().more_than_one;
        assert!(more("select 1; select 2"));
        assert!(more("select 1;delete from t"));
        assert!(!more("select 1;"));
        assert!(!more("select 1; -- done\n /* really */ ;  "));
        assert!(!more("select ';x', $$;y$$ from t -- ; z"));
    }

    #[test]
    fn a_numbered_parameter_is_refused() {
        let e = translate("select id from t where a = $1", window).unwrap_err();
        assert_eq!(e.written, "$1");
        assert!(e.to_string().contains("write ? for a value"), "{e}");
        // Inside quotes it is text.
        assert!(translate("select '$1'", window).is_ok());
    }

    #[test]
    fn unterminated_quotes_run_to_the_end() {
        assert_eq!(t("select 'a ? "), ("select 'a ? ".into(), vec![]));
        assert_eq!(t("select $$ ?"), ("select $$ ?".into(), vec![]));
        assert_eq!(t("select 1 /* ?"), ("select 1 /* ?".into(), vec![]));
    }

    #[test]
    fn other_names_are_the_callers_to_choose() {
        let r = translate("select :region, :other", |n| n == "region").unwrap();
        assert_eq!(r.sql, "select $1, :other");
        assert_eq!(r.slots, vec![named("region")]);
        assert_eq!(r.positional(), 0);
    }
}
