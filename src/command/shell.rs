//! The `?` rewrite of a `shell` command: each `?` in the text becomes a
//! quoted reference to `$ENTITY_ID`, never the id itself.
//!
//! The rule: *every* `?` stands for the id, wherever it is, except one
//! escaped with a backslash (`\?`) outside single quotes, which is left to
//! the shell (there it means a literal `?`). The form of the reference
//! depends on where the `?` stands, so that it is always exactly one quoted
//! expansion and the id arrives byte for byte:
//!
//! | where the `?` is | written as | so `echo ...` prints |
//! |---|---|---|
//! | plain text: `echo ?` | `"$ENTITY_ID"` | the id |
//! | single quotes: `echo '<?>'` | `'"$ENTITY_ID"'` (quote closed and reopened) | `<id>` |
//! | double quotes: `echo "id=?"` | `${ENTITY_ID}` | `id=<id>` |
//! | `$( )` or backticks | as plain text, quoting starts afresh there | the id |
//!
//! Safety does not rest on this scanner being a full shell parser: the id's
//! text is never in the script, only references to a variable holding it,
//! and the shell does not parse the value of a variable as code. A context
//! the scanner misreads (a `)` in a `case` pattern inside `$( )`, a
//! here-document body) can at worst leave a reference unquoted (subject to
//! word splitting) or show its quote marks, never run the id. Inside a
//! here-document, write `$ENTITY_ID` rather than `?`.
//!
//! The exception is shell arithmetic, where bash evaluates a variable's
//! value as an expression (and runs `$( )` in an array subscript of it):
//! a `?` inside `$(( ))` or `(( ))` is refused by the parser
//! ([`placeholder_in_arithmetic`]).

/// Whether a `shell` text names the id by its variable, `$ENTITY_ID` or
/// `${ENTITY_ID}` (SPEC §5: the text may do that instead of `?`; every
/// `shell` command has `ENTITY_ID` in its environment).
pub fn uses_entity_id_variable(text: &str) -> bool {
    text.contains("${ENTITY_ID}")
        || text.match_indices("$ENTITY_ID").any(|(at, m)| {
            !text[at + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The reference for a `?` in plain text (and inside `$( )`, backticks).
const PLAIN: &str = "\"$ENTITY_ID\"";
/// Inside double quotes; braces keep a following letter out of the name.
const IN_DOUBLE: &str = "${ENTITY_ID}";
/// Inside single quotes: close them, reference, reopen.
const IN_SINGLE: &str = "'\"$ENTITY_ID\"'";

/// A quoting context the scanner is inside of.
#[derive(Clone, Copy, PartialEq)]
enum Frame {
    /// Top level, or inside `$( )` with this many unclosed `(`.
    Plain {
        parens: Option<u32>,
    },
    Double,
    Backtick,
}

/// The script for `sh -c`: `text` with each `?` replaced (module doc).
pub fn rewrite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut stack = vec![Frame::Plain { parens: None }];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let top = *stack.last().unwrap_or(&Frame::Plain { parens: None });
        match (top, c) {
            // A backslash and what it escapes are copied as they are, so
            // `\?` stays for the shell and `\"` never opens a string.
            (_, '\\') => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (Frame::Double, '"') => {
                stack.pop();
                out.push(c);
            }
            (Frame::Double, '?') => out.push_str(IN_DOUBLE),
            (_, '$') if chars.peek() == Some(&'(') => {
                chars.next();
                out.push_str("$(");
                stack.push(Frame::Plain { parens: Some(0) });
            }
            (Frame::Backtick, '`') => {
                stack.pop();
                out.push(c);
            }
            (_, '`') => {
                stack.push(Frame::Backtick);
                out.push(c);
            }
            (Frame::Double, _) => out.push(c),
            // From here on: plain text, inside `$( )` or backticks.
            (_, '\'') => {
                out.push(c);
                for s in chars.by_ref() {
                    match s {
                        '?' => out.push_str(IN_SINGLE),
                        _ => out.push(s),
                    }
                    if s == '\'' {
                        break;
                    }
                }
            }
            (_, '"') => {
                stack.push(Frame::Double);
                out.push(c);
            }
            (_, '?') => out.push_str(PLAIN),
            (Frame::Plain { parens: Some(n) }, '(') => {
                set_top(
                    &mut stack,
                    Frame::Plain {
                        parens: Some(n + 1),
                    },
                );
                out.push(c);
            }
            (Frame::Plain { parens: Some(n) }, ')') => {
                if n == 0 {
                    stack.pop();
                } else {
                    set_top(
                        &mut stack,
                        Frame::Plain {
                            parens: Some(n - 1),
                        },
                    );
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether a `?` stands where the shell evaluates the value of
/// `$ENTITY_ID` as an arithmetic expression, and bash runs a command
/// substitution in an array subscript of it (an id `a[$(reboot)]`): inside
/// `$(( ))`, `$[ ]` (quoted or not: `"$((?))"` is arithmetic too), a
/// `(( ))` command, or a `${ }` expansion (`${s:?:1}`: offsets are
/// arithmetic), at any depth of `$( )`, backticks and quotes. The parser
/// refuses such a command. The contexts are followed as [`rewrite`]
/// follows them: a stack, on which quoting starts afresh inside `$( )` and
/// backticks.
pub fn placeholder_in_arithmetic(text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        /// Top level, or inside `$( )` with this many unclosed `(`.
        Plain(Option<u32>),
        Double,
        Backtick,
        /// `$((` or `((`, with this many unclosed `(` inside.
        Arith(u32),
        /// `$[`, with this many unclosed `[` inside.
        Bracket(u32),
        /// `${`.
        Brace,
    }
    let danger = |c: &Ctx| matches!(c, Ctx::Arith(_) | Ctx::Bracket(_) | Ctx::Brace);
    let b = text.as_bytes();
    let mut stack = vec![Ctx::Plain(None)];
    let mut i = 0;
    while i < b.len() {
        let top = *stack.last().unwrap_or(&Ctx::Plain(None));
        let c = b[i];
        i += 1;
        // The bytes after `c`.
        let (n1, n2) = (b.get(i).copied(), b.get(i + 1).copied());
        let in_danger = stack.iter().any(danger);
        match c {
            b'\\' => i += 1,
            b'?' if in_danger => return true,
            b'$' if n1 == Some(b'(') && n2 == Some(b'(') => {
                stack.push(Ctx::Arith(0));
                i += 2;
            }
            b'$' if n1 == Some(b'(') => {
                stack.push(Ctx::Plain(Some(0)));
                i += 1;
            }
            b'$' if n1 == Some(b'[') => {
                stack.push(Ctx::Bracket(0));
                i += 1;
            }
            b'$' if n1 == Some(b'{') => {
                stack.push(Ctx::Brace);
                i += 1;
            }
            b'`' if top == Ctx::Backtick => {
                stack.pop();
            }
            b'`' => stack.push(Ctx::Backtick),
            b'"' if top == Ctx::Double => {
                stack.pop();
            }
            _ if top == Ctx::Double => {}
            // From here on: not inside double quotes.
            b'"' => stack.push(Ctx::Double),
            b'\'' => {
                // Nothing expands inside single quotes, but a `?` there is
                // still the id in the rewritten text, inside what is open.
                while i < b.len() && b[i] != b'\'' {
                    if b[i] == b'?' && in_danger {
                        return true;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'(' if n1 == Some(b'(') && matches!(top, Ctx::Plain(_) | Ctx::Backtick) => {
                stack.push(Ctx::Arith(0));
                i += 1;
            }
            _ => {
                let next = match (top, c) {
                    (Ctx::Plain(Some(n)), b'(') => Some(Ctx::Plain(Some(n + 1))),
                    (Ctx::Plain(Some(0)), b')') => None,
                    (Ctx::Plain(Some(n)), b')') => Some(Ctx::Plain(Some(n - 1))),
                    (Ctx::Arith(n), b'(') => Some(Ctx::Arith(n + 1)),
                    (Ctx::Arith(0), b')') if n1 == Some(b')') => {
                        i += 1;
                        None
                    }
                    (Ctx::Arith(n), b')') => Some(Ctx::Arith(n.saturating_sub(1))),
                    (Ctx::Bracket(n), b'[') => Some(Ctx::Bracket(n + 1)),
                    (Ctx::Bracket(0), b']') | (Ctx::Brace, b'}') => None,
                    (Ctx::Bracket(n), b']') => Some(Ctx::Bracket(n - 1)),
                    _ => Some(top),
                };
                match next {
                    Some(ctx) => {
                        if let Some(t) = stack.last_mut() {
                            *t = ctx;
                        }
                    }
                    None => {
                        stack.pop();
                    }
                }
            }
        }
    }
    false
}

fn set_top(stack: &mut [Frame], frame: Frame) {
    if let Some(top) = stack.last_mut() {
        *top = frame;
    }
}

#[cfg(test)]
mod tests {
    use super::{rewrite, uses_entity_id_variable};

    #[test]
    fn a_question_mark_in_arithmetic_is_found() {
        use super::placeholder_in_arithmetic as arith;
        for bad in [
            "echo $((? + 1))",
            "(( ? > 3 )) && echo big",
            "echo $(( (? * 2) + 1 ))",
            "x=$(echo $((\"?\" + 1)))",
            "echo $(( '?' ))",
            // Quoted arithmetic is arithmetic all the same.
            "echo \"$((? + 1))\"",
            "echo \"$(echo $((? + 1)))\"",
            "echo `echo \"$((?))\"`",
            "echo $[? + 1]",
            "echo \"$[?]\"",
            // A substring offset is arithmetic; any `?` in `${ }` is refused.
            "s=abc; echo ${s:?:1}",
            "echo \"${s:0:?}\"",
            "echo $(( $(( ? )) ))",
            // Inside `$( )` or backticks within double quotes, quoting
            // starts afresh: arithmetic and quotes there count.
            "x=\"$( ((?)) )\"",
            "echo \"$(echo \"it's\")\" $((?))",
            "echo \"`(( ? ))`\"",
            "echo \"$(echo '\"')\" $((?))",
        ] {
            assert!(arith(bad), "{bad}");
        }
        for fine in [
            "echo ?",
            "echo $((1 + 2)) ?",
            "echo $(( (1 * 2) + 1 )) ?",
            "echo '$((?))'",
            "echo \"$((1))\" \\? ?",
            "echo $(( 1 \\? 2 : 3 ))",
            "( (echo ?) )",
            "test ? -eq 1",
            "echo \"(( ? ))\" ?",
            "echo \"${HOME}\" ? $((1)) \"$((2))\" $[3] ${#HOME}",
            "a=\"$(( 1 + (2 * 3) ))\"; echo \"$a ?\"",
            "echo \"${HOME}/?\"",
            "awk '{print $1}' ?",
            "case ? in (a) echo a;; esac",
            "[ -n \"${VAR:-x}\" ] && echo ?",
            "echo '$((?))' | bc; echo ?",
            "x=a{b; echo ${x/{/Z} ?",
            "echo \"$(printf '%s' '${')\" ?",
            "echo \"$(echo \"it's\")\" ?",
        ] {
            assert!(!arith(fine), "{fine}");
        }
    }

    #[test]
    fn the_entity_id_variable_is_found_but_not_a_longer_name() {
        for yes in [
            "echo $ENTITY_ID",
            "f \"${ENTITY_ID}\"",
            "g $ENTITY_ID-x",
            "$ENTITY_ID",
        ] {
            assert!(uses_entity_id_variable(yes), "{yes}");
        }
        for no in [
            "echo $ENTITY_IDS",
            "echo $ENTITY_ID_2",
            "echo ENTITY_ID",
            "echo $entity_id",
        ] {
            assert!(!uses_entity_id_variable(no), "{no}");
        }
    }

    #[test]
    fn plain_question_mark_becomes_a_quoted_reference() {
        assert_eq!(rewrite("echo ?"), r#"echo "$ENTITY_ID""#);
        // A text that uses the variable itself needs no rewrite.
        assert_eq!(rewrite("echo \"$ENTITY_ID\""), "echo \"$ENTITY_ID\"");
        assert_eq!(rewrite("f ?x ?"), r#"f "$ENTITY_ID"x "$ENTITY_ID""#);
    }

    #[test]
    fn inside_double_quotes_the_reference_is_braced_and_unquoted() {
        assert_eq!(rewrite(r#"echo "id=?x""#), r#"echo "id=${ENTITY_ID}x""#);
    }

    #[test]
    fn inside_single_quotes_the_quote_is_closed_and_reopened() {
        assert_eq!(rewrite("echo '<?>'"), r#"echo '<'"$ENTITY_ID"'>'"#);
    }

    #[test]
    fn backslash_question_mark_is_left_to_the_shell() {
        assert_eq!(rewrite(r"echo \? ?"), r#"echo \? "$ENTITY_ID""#);
        assert_eq!(rewrite(r#"echo "\"?""#), r#"echo "\"${ENTITY_ID}""#);
    }

    #[test]
    fn command_substitution_starts_quoting_afresh() {
        assert_eq!(
            rewrite(r#"echo "$(f ? "(?)")""#),
            r#"echo "$(f "$ENTITY_ID" "(${ENTITY_ID})")""#
        );
        assert_eq!(rewrite("echo \"`f ?`\""), "echo \"`f \"$ENTITY_ID\"`\"");
        assert_eq!(
            rewrite("echo $(f (?)) ?"),
            r#"echo $(f ("$ENTITY_ID")) "$ENTITY_ID""#
        );
    }

    #[test]
    fn text_without_question_marks_is_unchanged() {
        let s = r#"a 'b' "c $(d) `e`" \f"#;
        assert_eq!(rewrite(s), s);
    }
}
