//! Robustness: whatever the input, the parser returns (statements or an
//! error) without panicking, overflowing the stack or hanging, and the
//! diagnostic renderer turns every error into a short rustc-style message.
//!
//! The fuzz targets are proptest properties with explicit case counts, per
//! run (`ProptestConfig` below):
//! - `arbitrary_strings`: 10_000 cases of `any::<String>()`;
//! - `arbitrary_bytes`: 10_000 cases of up to 512 random bytes, read as
//!   UTF-8 with replacement (the parser takes `&str`);
//! - `token_soup`: 10_000 cases of up to 64 tokens of the language and its
//!   punctuation (quotes, `$$`, comment openers...), see [`TOKENS`];
//! - `mutated_statements`: 10_000 cases of valid statements (every project
//!   example and [`VALID`]) after 1 to 4 random edits: delete a range,
//!   insert a token, duplicate a range, truncate.
//!
//! Each case checks: no panic; an error's spans lie within the input, and
//! it renders to text that starts with `error: ` and holds ` --> line `;
//! what does parse prints back to text that parses to the same statements
//! (the round trip of `roundtrip.rs`, now on odd inputs).
//!
//! Then pathological inputs of about 1 MB each, which must return without
//! panic or stack overflow, and must render short diagnostics. No test
//! measures time: speed is for the benchmarks.

use crate::common;
use batchsh::ast::{Statement, Stmt};
use batchsh::diag;
use batchsh::syntax::error::{ErrorKind, ParseError};
use batchsh::syntax::parse;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use std::sync::OnceLock;

const MB: usize = 1 << 20;

/// The longest diagnostic accepted, whatever the input's size.
const MAX_RENDERED: usize = 2000;

// ---------------------------------------------------------------------------
// checks

/// Checks a parse error of `src`: its spans (down to the innermost) lie in
/// the text on char boundaries, and it renders as a diagnostic.
fn check_render(src: &str, err: &ParseError) -> Result<String, String> {
    let mut e = err;
    loop {
        let (a, b) = e.span.range();
        if !(a <= b && b <= src.len() && src.is_char_boundary(a) && src.is_char_boundary(b)) {
            return Err(format!(
                "error span {a}..{b} is not a range of the input ({} bytes): {err:?}",
                src.len()
            ));
        }
        match &e.kind {
            ErrorKind::Nested { inner, .. } => e = inner,
            _ => break,
        }
    }
    let r = diag::render(src, err);
    if !r.starts_with("error: ") || !r.contains(" --> line ") {
        return Err(format!("malformed diagnostic for {src:?}:\n{r}"));
    }
    Ok(r)
}

/// Parses `src`; an error must render, a success must round-trip.
fn check(src: &str) -> Result<(), TestCaseError> {
    match parse(src) {
        Err(e) => {
            check_render(src, &e).map_err(TestCaseError::fail)?;
        }
        Ok(stmts) => {
            common::round_trip(&stmts)
                .map_err(|m| TestCaseError::fail(format!("input {src:?}: {m}")))?;
        }
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are reported by the test; no regression files are kept
        // beside the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// inputs

/// Up to 64 soup tokens, short words and numbers, run together. Each
/// token comes from one random `u32` (cheaper than nested strategies, and
/// it still shrinks).
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u32>(), 0..=64)
        .prop_map(|v| v.into_iter().map(soup_token).collect())
}

fn soup_token(x: u32) -> String {
    let rest = x >> 3;
    match x % 8 {
        // A short lower-case word, 1 to 4 letters.
        6 => (0..=(rest % 4))
            .map(|k| char::from(b'a' + ((rest >> (2 + 5 * k)) % 26) as u8))
            .collect(),
        // A number, 1 to 3 digits.
        7 => (rest % 1000).to_string(),
        _ => TOKENS[rest as usize % TOKENS.len()].to_string(),
    }
}

/// The words of the token soup, and what the mutations insert: keywords,
/// punctuation, and pieces of statements that open or close something (a
/// string, a comment, a nesting). A list rather than a proptest regex: the
/// regex generator takes about 15 ms a case in a debug build.
const TOKENS: &[&str] = &[
    "BATCH",
    "MIGRATE",
    "EXPLAIN",
    "WITH",
    "FROM",
    "FABRIC",
    "USING",
    "FABRIC_COMMAND",
    "STARTJOB",
    "STATEMENT",
    "COMMAND=",
    "SCHEDULE s EVERY '1m' DO ",
    "DO",
    "NAME=",
    "ASYNC=",
    "MAX_FAILURES=",
    "sync_instance c.?",
    "echo ?",
    "exec",
    "'",
    "''",
    "\"",
    "$$",
    "(",
    ")",
    ";",
    ",",
    "=",
    "?",
    "--",
    "/*",
    "*/",
    ".",
    "@",
    ":",
    ":bid",
    "%",
    "-",
    " ",
    "\n",
    "\r\n",
    "\t",
    "0",
    "-1",
    "99999999999999999999",
    "1.5",
    "'10%'",
    "'90s'",
    "'00:15:00'",
    "'0 2 * * *'",
    "'[\"a\",1]'",
    "é",
    "🦀",
    "\u{0}",
    "\u{feff}",
    "COMMAND",
    "NAME",
    "SCHEDULE",
    "EVERY",
    "CRON",
    "AT",
    "BATCH_LIST",
    "HELP",
    "CREATE",
    "LU",
    "ROOT",
    "TABLE",
    "KEY",
    "echo",
    "sync_instance",
    "shell",
    "sql",
    "sleep",
    "ASYNC",
    "MAX_FAILURES",
    "EXEC_INTERVAL",
];

/// Valid statements beside the project's examples: the tricky spellings.
const VALID: &[&str] = &[
    "batch customer fabric_command=\"echo ?\" with async='TRUE' allow_multiply=true",
    "BATCH c@DC1 (1, two, 'th''ree', \"fo\"\"ur\", -5) FABRIC_COMMAND='echo ?'",
    "BATCH c FABRIC_COMMAND=$$exec '/bin/echo' \"it's\" ? :BATCH_ID$$ WITH RETRY_DELAY='90s', \
     ENTITY_TIMEOUT=1500ms MAX_FAILURES='10%' BIND_PARAMS_JSON='[\"a\",1]'",
    "BATCH c.vip FROM crm USING ('select id from t -- x') FABRIC_COMMAND=\"shell 'curl x/?'\"",
    "BATCH c FROM FABRIC FABRIC_COMMAND=\"sql crm 'update t set x = ? where y = ''a'''\"",
    "migrate Customer.vip with generate_iids_first='true' chunk_size=500",
    "EXPLAIN MIGRATE c FROM FABRIC WITH MAX_NODES=2",
    "CANCEL BATCH 'c0ffee42'; BATCH_RETRY ALLOW_CANCELLED=true; BATCH_EDIT MAX_WORKERS_PER_NODE=2",
    "BATCH_APPEND c0ffee42 ('1', 2); BATCH_WAIT NAME='etl.*' SINCE=today TIMEOUT='2h'",
    "BATCH_LIST STATUS='IN_PROGRESS,PAUSED' LIMIT=20; BATCH_DETAILS 'x' LIMIT=-1",
    "STARTJOB STATEMENT NAME='n' EXEC_INTERVAL='0 2 * * *' COMMAND=$$ BATCH c FABRIC_COMMAND='echo ?' $$",
    "STARTJOB STATEMENT NAME=a COMMAND='STARTJOB STATEMENT NAME=b COMMAND=''BATCH_LIST'''",
    "STARTJOB PROCESS NAME='p' COMMAND='/bin/x' ARGS='{\"0\": \"a\"}' EXEC_INTERVAL='1.00:00:00'",
    "SCHEDULE s EVERY '90s' DO BATCH c FABRIC_COMMAND='sleep 5 ?' WITH ASYNC=true",
    "SCHEDULE s AT '2026-12-01 02:00:00' DO MIGRATE c",
    "CREATE OR REPLACE INTERFACE i TYPE CSV PATH 'a' WITH HEADER=true, DELIMITER='|'",
    "CREATE LU L FROM i ROOT ('select id') TABLE t KEY (a, b) ('select * from t where id = ?')",
    "CREATE INSTANCE GROUP c.g FROM i USING ('select 1'); GET c.'42'; SHOW INSTANCE GROUPS c",
    "WINDOW_SET 'w' FROM_DATE='2026-01-01 00:00:00'; WINDOW_STATUS w FORMAT=infa",
    "HELP CANCEL BATCH; SET FORMAT json; SET PROGRESS off; SHOW SETTINGS; QUIT",
    "JOBSTATUS STATEMENT 'n' WITH UID='u1'; UPDATEJOB PROCESS NAME=p RESET_END_TIME=true",
    "/* c */ BATCH_LIST -- c\n;",
];

/// The statements to mutate: every project example, then [`VALID`].
fn pool() -> &'static [String] {
    static POOL: OnceLock<Vec<String>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut p: Vec<String> = common::all_examples()
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        p.extend(VALID.iter().map(|s| s.to_string()));
        p
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Remove the text between two positions.
    Delete(Index, Index),
    /// Insert a token at a position.
    Insert(Index, &'static str),
    /// Repeat the text between two positions right after it.
    Duplicate(Index, Index),
    /// Cut the text at a position.
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        4 => (any::<Index>(), prop::sample::select(TOKENS)).prop_map(|(a, t)| Mutation::Insert(a, t)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// A position in `s` (0..=len), moved back to a char boundary.
fn at(s: &str, i: &Index) -> usize {
    let mut p = i.index(s.len() + 1);
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    p
}

/// Two positions, in order; the range is kept short (at most 40 bytes) so
/// that edits stay local and the statement stays recognizable.
fn range(s: &str, a: &Index, b: &Index) -> (usize, usize) {
    let start = at(s, a);
    let mut end = (start + b.index(41)).min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (start, end)
}

fn apply(s: &str, m: &Mutation) -> String {
    match m {
        Mutation::Delete(a, b) => {
            let (x, y) = range(s, a, b);
            format!("{}{}", &s[..x], &s[y..])
        }
        Mutation::Insert(a, t) => {
            let x = at(s, a);
            format!("{}{t}{}", &s[..x], &s[x..])
        }
        Mutation::Duplicate(a, b) => {
            let (x, y) = range(s, a, b);
            format!("{}{}{}", &s[..y], &s[x..y], &s[y..])
        }
        Mutation::Truncate(a) => s[..at(s, a)].to_string(),
    }
}

fn mutated() -> impl Strategy<Value = String> {
    (
        prop::sample::select(pool().to_vec()),
        prop::collection::vec(mutation(), 1..5),
    )
        .prop_map(|(src, ms)| ms.iter().fold(src, |s, m| apply(&s, m)))
}

// ---------------------------------------------------------------------------
// fuzz targets

proptest! {
    // 10_000 cases each.
    #![proptest_config(config(10_000))]

    #[test]
    fn arbitrary_strings(src in any::<String>()) {
        check(&src)?;
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..=512)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn token_soup(src in soup()) {
        check(&src)?;
    }

    #[test]
    fn mutated_statements(src in mutated()) {
        check(&src)?;
    }
}

#[test]
fn mutation_pool_is_valid() {
    // The mutations start from valid text; an invalid one would only test
    // error paths.
    for src in pool() {
        if let Err(e) = parse(src) {
            panic!("not valid:\n{src}\n{}", diag::render(src, &e));
        }
    }
}

// ---------------------------------------------------------------------------
// pathological inputs, about 1 MB each

/// Parses `src`: any result but a panic or a stack overflow will do; an
/// error must render short. Returns the result for further checks.
fn survive(what: &str, src: &str) -> Result<Vec<Stmt>, ParseError> {
    let r = parse(src);
    if let Err(e) = &r {
        let rendered = check_render(src, e).unwrap_or_else(|m| panic!("{what}: {m}"));
        assert!(
            rendered.len() < MAX_RENDERED,
            "{what}: a {} byte diagnostic:\n{}…",
            rendered.len(),
            rendered.chars().take(600).collect::<String>()
        );
    }
    r
}

/// Statement openings after which the parser reads a filler as what would
/// stand there: a string, an id list, a source, a command, a value...
const PREFIXES: &[&str] = &[
    "",
    "BATCH_PAUSE ",
    "BATCH c",
    "BATCH c.",
    "BATCH c FROM i USING ",
    "BATCH c FABRIC_COMMAND=",
    "BATCH c FABRIC_COMMAND='exec ",
    "BATCH_APPEND x ",
    "CREATE LU a FROM b ROOT ",
    "STARTJOB STATEMENT NAME=n COMMAND=",
    "HELP ",
    "BATCH_LIST LIMIT=",
];

/// A few of [`PREFIXES`], for the variations of a filler.
const SOME_PREFIXES: &[&str] = &["", "BATCH_PAUSE ", "BATCH c FABRIC_COMMAND="];

/// The filler alone and after each of `prefixes`.
fn survive_with_prefixes(what: &str, filler: &str, prefixes: &[&str]) {
    for prefix in prefixes {
        let src = format!("{prefix}{filler}");
        let _ = survive(&format!("{what} after {prefix:?}"), &src);
    }
}

#[test]
fn a_megabyte_of_open_parentheses() {
    survive_with_prefixes("1 MB of '('", &"(".repeat(MB), PREFIXES);
}

#[test]
fn a_megabyte_of_single_quotes() {
    // An even count reads as one string of doubled quotes; an odd one is
    // unterminated.
    survive_with_prefixes("1 MB of '", &"'".repeat(MB), PREFIXES);
    survive_with_prefixes("1 MB + 1 of '", &"'".repeat(MB + 1), SOME_PREFIXES);
    survive_with_prefixes("1 MB of \"", &"\"".repeat(MB), SOME_PREFIXES);
}

#[test]
fn a_megabyte_of_dollar_quotes() {
    survive_with_prefixes("1 MB of $$", &"$$".repeat(MB / 2), PREFIXES);
    survive_with_prefixes("1 MB of $", &"$".repeat(MB + 1), SOME_PREFIXES);
}

#[test]
fn an_unterminated_block_comment() {
    let body = "x * / -- ' \" $$ \n".repeat(MB / 16);
    survive_with_prefixes("unterminated /*", &format!("/*{body}"), PREFIXES);
    let r = survive(
        "unterminated /* after a statement",
        &format!("BATCH_LIST /*{body}"),
    );
    assert!(r.is_err(), "an unterminated comment is an error");
}

#[test]
fn an_id_list_of_100k_ids() {
    let ids: Vec<String> = (0..100_000).map(|k| format!("'{k}'")).collect();
    let src = format!("BATCH c.({}) FABRIC_COMMAND='echo ?'", ids.join(", "));
    let stmts = survive("100k ids", &src).expect("100k ids parse");
    match &stmts[0].kind {
        Statement::Batch(b) => match &b.target.selection {
            batchsh::ast::Selection::Ids(v) => assert_eq!(v.len(), 100_000),
            other => panic!("ids expected, got {other:?}"),
        },
        other => panic!("BATCH expected, got {other:?}"),
    }
    // Bare ids, and the list left open at the end.
    let bare: Vec<String> = (0..100_000).map(|k| k.to_string()).collect();
    let open = format!("BATCH c ({}", bare.join(","));
    assert!(survive("100k bare ids, unclosed", &open).is_err());
}

#[test]
fn a_hundred_thousand_statements() {
    let src = "BATCH_LIST;".repeat(100_000);
    let stmts = survive("100k statements", &src).expect("100k statements parse");
    assert_eq!(stmts.len(), 100_000);
    // The same with an error in the last one.
    let bad = format!("{src}BATCH_LIST LIMIT=x");
    assert!(survive("100k statements, last bad", &bad).is_err());
}

#[test]
fn a_schedule_chain_10k_deep_is_refused() {
    let src = format!("{}BATCH_LIST", "SCHEDULE a EVERY '1m' DO ".repeat(10_000));
    assert!(survive("SCHEDULE chain", &src).is_err());
    // Schedules that nest through a job's COMMAND, quoting alternating
    // between ' and " so that the text stays small: refused past the
    // parser's depth limit, not overflowing.
    let mut inner = "BATCH_LIST".to_string();
    for k in 0..20 {
        let q = if k % 2 == 0 { '\'' } else { '"' };
        let quoted: String = inner
            .chars()
            .flat_map(|c| if c == q { vec![c, c] } else { vec![c] })
            .collect();
        inner =
            format!("SCHEDULE s{k} EVERY '1m' DO STARTJOB STATEMENT NAME=n COMMAND={q}{quoted}{q}");
    }
    let r = survive("SCHEDULE / STARTJOB chain", &inner);
    let e = r.expect_err("nesting 40 deep is refused");
    assert!(diag::render(&inner, &e).contains("nest"));
}

#[test]
fn startjob_nested_20_levels_by_quoting_is_refused() {
    // Each level doubles the quotes of the one inside: about 2 MB in all.
    let mut src = "BATCH c FABRIC_COMMAND='echo ?'".to_string();
    for _ in 0..20 {
        src = format!(
            "STARTJOB STATEMENT NAME=n COMMAND={}",
            batchsh::ast::quote(&src)
        );
    }
    assert!(src.len() > MB, "{} bytes", src.len());
    let e = survive("STARTJOB nested 20 deep", &src).expect_err("20 levels are refused");
    let rendered = diag::render(&src, &e);
    assert!(rendered.contains("nest"), "{rendered}");
    // Within the limit, the same construction parses.
    let mut ok = "BATCH c FABRIC_COMMAND='echo ?'".to_string();
    for _ in 0..5 {
        ok = format!(
            "STARTJOB STATEMENT NAME=n COMMAND={}",
            batchsh::ast::quote(&ok)
        );
    }
    survive("STARTJOB nested 5 deep", &ok).expect("5 levels parse");
}

#[test]
fn a_megabyte_string_literal() {
    let body = "it''s é 🦀 -- /* ? $ \n".repeat(MB / 24);
    let src = format!("BATCH_PAUSE '{body}'");
    let stmts = survive("1 MB string", &src).expect("a 1 MB string parses");
    assert_eq!(stmts.len(), 1);
    let shell = format!("BATCH c FABRIC_COMMAND=$$shell '{body}'$$");
    survive("1 MB shell command", &shell).expect("a 1 MB command parses");
    // Unterminated: the diagnostic must not print the megabyte.
    assert!(survive("1 MB unterminated string", &format!("BATCH_PAUSE '{body}")).is_err());
}

/// Errors on a 1 MB line whose rendering is kept short: the line is cut to
/// a window around the error, and the found token is shortened.
#[test]
fn diagnostics_of_a_megabyte_line_are_short() {
    let long = "x".repeat(MB);
    let wide = "é".repeat(MB / 2);
    // (what, input, a piece of the source line the diagnostic must show)
    let cases = [
        // The error at the end of the line.
        (
            "error at the end",
            format!("BATCH_PAUSE '{long}' oops"),
            "x' oops",
        ),
        (
            "error after wide chars",
            format!("BATCH_PAUSE '{wide}' oops"),
            "é' oops",
        ),
        // The error at the start, the line running on.
        (
            "error at the start",
            format!("BATCH_PAUSE 'a' b {long}"),
            "BATCH_PAUSE 'a' b xxx",
        ),
        // The offending token is the megabyte.
        ("long token", format!("BATCH_PAUSE 'a' {long}"), "'a' xxx"),
        (
            "long value",
            format!("BATCH_LIST LIMIT={long}"),
            "LIMIT=xxx",
        ),
        (
            "long quoted value",
            format!("BATCH_LIST LIMIT='{long}'"),
            "LIMIT='xxx",
        ),
        (
            "long status",
            format!("BATCH_LIST STATUS='{long}'"),
            "STATUS='xxx",
        ),
        (
            "unterminated",
            format!("BATCH_PAUSE '{long}"),
            "BATCH_PAUSE 'xxx",
        ),
        (
            "blanks",
            format!("{} BATCH_LIST LIMIT=x", " ".repeat(MB)),
            "BATCH_LIST LIMIT=x",
        ),
        (
            "inside a long COMMAND",
            format!("STARTJOB STATEMENT NAME=n COMMAND=$$BATCH_PAUSE '{long}' oops$$"),
            "x' oops$$",
        ),
        (
            "inside a long FABRIC_COMMAND",
            format!("BATCH c FABRIC_COMMAND=$$shell '{long}' ?$$"),
            "$$shell 'xxx",
        ),
    ];
    for (what, src, shown) in &cases {
        let e = survive(what, src).expect_err(what);
        let rendered = diag::render(src, &e);
        assert!(
            rendered.contains(shown) && rendered.contains('^'),
            "{what}: the diagnostic should show {shown:?} and a caret:\n{rendered}"
        );
    }
}

/// Regression: diagnostics once repeated the offending word whole (an
/// unknown statement, option, command, parameter or HELP topic), so a 1 MB
/// word made a 1 MB diagnostic. Every diagnostic stays under 2000 bytes.
#[test]
fn diagnostics_shorten_a_megabyte_word() {
    let long = "x".repeat(MB);
    let cases = [
        ("unknown statement", long.clone()),
        ("unknown option", format!("BATCH_LIST {long}=1")),
        (
            "unknown option before FABRIC_COMMAND",
            format!("BATCH c {long}=1"),
        ),
        ("unknown HELP topic", format!("HELP {long}")),
        (
            "unknown command",
            format!("BATCH c FABRIC_COMMAND='{long} ?'"),
        ),
        (
            "unknown parameter",
            format!("BATCH c FABRIC_COMMAND='exec p ? :{long}'"),
        ),
        (
            "BATCH_WAIT bid and NAME",
            format!("BATCH_WAIT '{long}' NAME=n"),
        ),
    ];
    let mut long_ones = Vec::new();
    for (what, src) in &cases {
        let e = parse(src).expect_err(what);
        let rendered = check_render(src, &e).unwrap_or_else(|m| panic!("{what}: {m}"));
        if rendered.len() >= MAX_RENDERED {
            long_ones.push(format!("{what}: {} bytes", rendered.len()));
        }
    }
    assert!(
        long_ones.is_empty(),
        "diagnostics of {MAX_RENDERED} bytes or more:\n{}",
        long_ones.join("\n")
    );
}
