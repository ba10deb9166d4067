//! Tab completion. The completer does not know the grammar: it asks the
//! real parser what may stand at the cursor, so it cannot drift from it.
//!
//! - It parses the statement up to the word being typed. An error at the
//!   very end says what was expected there: keywords (`FROM`,
//!   `FABRIC_COMMAND`, `WITH`, `json`), or a kind of name ("an LU name",
//!   "an interface name", "an instance group name", "a batch id"), which
//!   the store fills in.
//! - Where the statement could end, it parses it again with a probe word
//!   after it: the probe is either refused (and the error lists what was
//!   expected), or taken as a part of the statement, which `batchsh
//!   parse`'s JSON names (`bid`, `lu`, `interface`): that is how a
//!   `BATCH_INFO` bid or the LU of `SHOW INSTANCE GROUPS` is found.
//! - It parses it once more with `probe=1`: the "unknown option" error
//!   lists the options of that statement at that place (`WITH` options
//!   after `WITH`, `BATCH_LIST` options, ...), from keywords.rs.
//! - Statement names come from keywords.rs; `HELP` topics are statement
//!   names; inside `PATH '...'` the completer lists files.

use super::lex::{self, Kind};
use crate::syntax::error::{ErrorKind, ParseError};
use crate::syntax::keywords;
use std::path::Path;

/// The names the completer reads from the store, when it needs them.
pub trait Catalog {
    fn lus(&self) -> Vec<String>;
    fn interfaces(&self) -> Vec<String>;
    fn groups(&self, lu: &str) -> Vec<String>;
    /// Batch ids, newest first.
    fn recent_bids(&self) -> Vec<String>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// What the list of choices shows.
    pub display: String,
    /// What replaces the text from [`Completion::start`] to the cursor.
    pub replacement: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Completion {
    /// Byte offset in the text where the replaced part starts.
    pub start: usize,
    pub candidates: Vec<Candidate>,
}

/// What may stand at the cursor, as the parser says.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    Keyword(String),
    Statement,
    Lus,
    Interfaces,
    /// The instance groups of this LU.
    Groups(String),
    Bids,
    Options(Vec<&'static str>),
}

/// A word no statement, option or name of a test is called.
const PROBE: &str = "batchsh_completion_probe";

/// The completions of `text` at byte offset `cursor`. Relative paths are
/// listed from `cwd`, as a statement resolves them.
pub fn complete(text: &str, cursor: usize, catalog: &dyn Catalog, cwd: &Path) -> Completion {
    if cursor > text.len() || !text.is_char_boundary(cursor) {
        return nothing(cursor.min(text.len()));
    }
    let before = &text[..cursor];
    let toks = lex::tokens(before);
    let stmt = lex::statement_start(&toks);
    match toks.last() {
        Some(t) if t.kind == (Kind::String { open: true }) => {
            return in_string(before, stmt, t.start, catalog, cwd);
        }
        // In a comment: nothing to complete (a `--` comment runs to the end
        // of its line, so it ends at the cursor).
        Some(t) if matches!(t.kind, Kind::Comment { .. }) && t.end == cursor => {
            return nothing(cursor);
        }
        _ => {}
    }
    let ident_start = cursor - trailing(before, |c| c.is_ascii_alphanumeric() || c == b'_');
    // A bid is a bare value (`c0ffee42-1d2e-...`), more than a word.
    let bare_start = cursor - trailing(before, is_bare);
    if bare_start.max(stmt) < ident_start {
        let from = bare_start.max(stmt);
        if wants(&before[stmt..from]).contains(&Want::Bids) {
            return Completion {
                start: from,
                candidates: names(catalog.recent_bids(), &before[from..], ""),
            };
        }
    }
    let partial = &before[ident_start..];
    let candidates = wants(&before[stmt..ident_start])
        .into_iter()
        .flat_map(|w| offer(w, partial, catalog))
        .fold(Vec::new(), |mut all: Vec<Candidate>, c| {
            if !all.iter().any(|a| a.display == c.display) {
                all.push(c);
            }
            all
        });
    Completion {
        start: ident_start,
        candidates,
    }
}

fn nothing(at: usize) -> Completion {
    Completion {
        start: at,
        candidates: Vec::new(),
    }
}

/// How many bytes at the end of `s` satisfy `f`.
fn trailing(s: &str, f: impl Fn(u8) -> bool) -> usize {
    s.bytes().rev().take_while(|&c| f(c)).count()
}

/// The characters of a bare value (see `lexeme::bare_len`).
fn is_bare(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'%' | b'-')
}

/// What may come after `prefix`, the statement typed so far.
fn wants(prefix: &str) -> Vec<Want> {
    let words: Vec<&str> = lex::tokens(prefix)
        .into_iter()
        .filter(|t| t.kind == Kind::Word)
        .map(|t| &prefix[t.start..t.end])
        .collect();
    if words
        .first()
        .is_some_and(|w| w.eq_ignore_ascii_case("HELP"))
    {
        return help_topics(&words[1..]);
    }
    let mut out = Vec::new();
    // Options first: where a name is both (FABRIC_COMMAND), the option
    // form, with its `=`, is the one offered.
    if !words.is_empty()
        && let Err(e) = crate::syntax::parse(&format!("{prefix}{PROBE}=1"))
        && let ErrorKind::UnknownOption { valid, .. } = e.kind
        && e.span.start == prefix.len()
    {
        out.push(Want::Options(valid));
    }
    match crate::syntax::parse(prefix) {
        Err(e) if at_end(&e, prefix) => out.extend(from_error(&e, prefix)),
        // An error before the cursor: a mistake, or a check that needs the
        // whole statement (a required option, which the option probe above
        // has offered).
        Err(_) => {}
        Ok(_) => {
            let probed = format!("{prefix}{PROBE}");
            match crate::syntax::parse(&probed) {
                Ok(stmts) => out.extend(stmts.last().and_then(probe_role)),
                Err(e) if e.span.start == prefix.len() => out.extend(from_error(&e, prefix)),
                Err(_) => {}
            }
        }
    }
    out
}

/// The parser stopped at the end of `prefix`: it wanted more there.
fn at_end(e: &ParseError, prefix: &str) -> bool {
    e.span.start >= prefix.trim_end().len()
}

/// The wants an error at the cursor names.
fn from_error(e: &ParseError, prefix: &str) -> Vec<Want> {
    match &e.kind {
        ErrorKind::Expected(labels) => labels
            .iter()
            .filter_map(|label| match *label {
                "a statement" => Some(Want::Statement),
                "an LU name" => Some(Want::Lus),
                "an interface name" => Some(Want::Interfaces),
                "an instance group name" => lu_before_dot(prefix).map(Want::Groups),
                "a batch id" => Some(Want::Bids),
                w if !w.is_empty() && w.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_') => {
                    Some(Want::Keyword(w.to_string()))
                }
                // Punctuation, "a string", "end of input": nothing to type
                // for the user but what they know.
                _ => None,
            })
            .collect(),
        ErrorKind::UnknownStatement { .. } => vec![Want::Statement],
        ErrorKind::UnknownOption { valid, .. } => vec![Want::Options(valid.clone())],
        _ => Vec::new(),
    }
}

/// The probe was taken as a part of the statement: which part, by its key
/// in `batchsh parse`'s JSON.
fn probe_role(stmt: &crate::ast::Stmt) -> Option<Want> {
    let json = crate::ast::to_json(stmt);
    let obj = json.as_object()?;
    let (key, _) = obj.iter().find(|(_, v)| v.as_str() == Some(PROBE))?;
    match key.as_str() {
        "bid" => Some(Want::Bids),
        "lu" => Some(Want::Lus),
        "interface" => Some(Want::Interfaces),
        "group" => obj
            .get("lu")
            .and_then(|v| v.as_str())
            .map(|lu| Want::Groups(lu.to_string())),
        _ => None,
    }
}

/// `Customer.` at the end of the text: `Customer`.
fn lu_before_dot(prefix: &str) -> Option<String> {
    let t = prefix.trim_end().strip_suffix('.')?.trim_end();
    let n = trailing(t, |c| c.is_ascii_alphanumeric() || c == b'_');
    (n > 0).then(|| t[t.len() - n..].to_string())
}

/// `HELP` topics: the next word of every statement name that starts with
/// the words typed after `HELP`.
fn help_topics(typed: &[&str]) -> Vec<Want> {
    let mut out: Vec<Want> = Vec::new();
    for name in keywords::STATEMENTS.iter().map(|s| s.name).chain(["QUIT"]) {
        let words: Vec<&str> = name.split(' ').collect();
        let matches = words.len() > typed.len()
            && words
                .iter()
                .zip(typed)
                .all(|(w, t)| w.eq_ignore_ascii_case(t));
        let next = Want::Keyword(words.get(typed.len()).unwrap_or(&"").to_string());
        if matches && !out.contains(&next) {
            out.push(next);
        }
    }
    out
}

/// The candidates a want gives for the `partial` word.
fn offer(want: Want, partial: &str, catalog: &dyn Catalog) -> Vec<Candidate> {
    match want {
        Want::Keyword(k) => keyword(&k, partial).into_iter().collect(),
        Want::Statement => keywords::leading_words()
            .into_iter()
            .filter_map(|w| keyword(w, partial))
            .collect(),
        Want::Options(valid) => valid
            .into_iter()
            .filter(|o| starts_with_ignore_case(o, partial))
            .map(|o| {
                let o = in_case_of(o, partial);
                Candidate {
                    replacement: format!("{o}="),
                    display: o,
                }
            })
            .collect(),
        Want::Lus => names(sorted(catalog.lus()), partial, ""),
        Want::Interfaces => names(sorted(catalog.interfaces()), partial, ""),
        Want::Groups(lu) => names(sorted(catalog.groups(&lu)), partial, ""),
        Want::Bids => names(catalog.recent_bids(), partial, ""),
    }
}

/// A keyword that continues `partial`, followed by a blank.
fn keyword(k: &str, partial: &str) -> Option<Candidate> {
    if !starts_with_ignore_case(k, partial) {
        return None;
    }
    let k = in_case_of(k, partial);
    Some(Candidate {
        replacement: format!("{k} "),
        display: k,
    })
}

/// Keywords follow the case the user types in: `bat` gives `batch`, `Bat`
/// and `BAT` give `BATCH`, nothing typed gives the parser's spelling.
fn in_case_of(k: &str, partial: &str) -> String {
    if partial.is_empty() {
        k.to_string()
    } else if partial.bytes().any(|c| c.is_ascii_uppercase()) {
        k.to_ascii_uppercase()
    } else {
        k.to_ascii_lowercase()
    }
}

/// Names (of the store, as stored) that continue `partial`, each followed
/// by `suffix`.
fn names(all: Vec<String>, partial: &str, suffix: &str) -> Vec<Candidate> {
    all.into_iter()
        .filter(|n| starts_with_ignore_case(n, partial))
        .map(|n| Candidate {
            replacement: format!("{n}{suffix}"),
            display: n,
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_by_key(|s| s.to_ascii_lowercase());
    v
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The cursor is inside a string that opens at `open`: a file path after
/// `PATH`, a batch id where one goes, nothing elsewhere (SQL, commands).
fn in_string(
    before: &str,
    stmt: usize,
    open: usize,
    catalog: &dyn Catalog,
    cwd: &Path,
) -> Completion {
    let quote = if before[open..].starts_with("$$") {
        "$$"
    } else {
        &before[open..open + 1]
    };
    let content_start = open + quote.len();
    let content = &before[content_start..];
    let prefix = &before[stmt..open];
    let last_word = lex::tokens(prefix)
        .last()
        .filter(|t| t.kind == Kind::Word)
        .map(|t| &prefix[t.start..t.end]);
    if last_word.is_some_and(|w| w.eq_ignore_ascii_case("PATH")) {
        let dir_len = content.rfind('/').map_or(0, |n| n + 1);
        return Completion {
            start: content_start + dir_len,
            candidates: paths(content, quote, cwd),
        };
    }
    if wants(prefix).contains(&Want::Bids) {
        return Completion {
            start: content_start,
            candidates: names(catalog.recent_bids(), content, quote),
        };
    }
    nothing(before.len())
}

/// The files and folders whose path starts with `raw`, the text typed
/// inside a string opened with `quote` (a doubled quote stands for one).
fn paths(raw: &str, quote: &str, cwd: &Path) -> Vec<Candidate> {
    let escaped = if quote == "$$" {
        None
    } else {
        Some((quote.repeat(2), quote))
    };
    let decoded = match &escaped {
        Some((twice, once)) => raw.replace(twice.as_str(), once),
        None => raw.to_string(),
    };
    let (dir, file) = match decoded.rfind('/') {
        Some(n) => decoded.split_at(n + 1),
        None => ("", decoded.as_str()),
    };
    let folder = crate::source::resolve_path(if dir.is_empty() { "." } else { dir }, cwd);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut out: Vec<Candidate> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            // Hidden files only when asked for, as shells do.
            if !name.starts_with(file) || (name.starts_with('.') && !file.starts_with('.')) {
                return None;
            }
            let slash = if e.path().is_dir() { "/" } else { "" };
            let text = match &escaped {
                Some((twice, once)) => name.replace(once, twice),
                None => name.clone(),
            };
            Some(Candidate {
                display: format!("{name}{slash}"),
                replacement: format!("{text}{slash}"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.display.cmp(&b.display));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl Catalog for Fake {
        fn lus(&self) -> Vec<String> {
            vec!["Customer".into(), "Account".into(), "Cust2".into()]
        }
        fn interfaces(&self) -> Vec<String> {
            vec!["crm".into(), "warehouse".into()]
        }
        fn groups(&self, lu: &str) -> Vec<String> {
            if lu.eq_ignore_ascii_case("Customer") {
                vec!["vip".into(), "churned".into()]
            } else {
                Vec::new()
            }
        }
        fn recent_bids(&self) -> Vec<String> {
            vec![
                "c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f".into(),
                "c0ffee99-0000-4000-8000-000000000000".into(),
                "0a1b2c3d-0000-4000-8000-000000000000".into(),
            ]
        }
    }

    /// The candidates' displays for `text` with the cursor at its end (or
    /// at `|` when it has one), and the replaced part.
    fn at(text: &str) -> (Vec<String>, String) {
        let cursor = text.find('|').unwrap_or(text.len());
        let text = text.replace('|', "");
        let c = complete(&text, cursor, &Fake, Path::new("/"));
        (
            c.candidates.into_iter().map(|c| c.display).collect(),
            text[c.start..cursor].to_string(),
        )
    }

    fn shown(text: &str) -> Vec<String> {
        at(text).0
    }

    #[test]
    fn statement_names_from_the_keyword_list() {
        let mut words = keywords::leading_words();
        words.sort_unstable();
        words.dedup();
        assert_eq!(shown("").len(), words.len());
        assert_eq!(shown("BATCH_L"), vec!["BATCH_LIST"]);
        assert_eq!(shown("batch_l"), vec!["batch_list"]);
        assert_eq!(
            shown("SHOW LUS; BATCH_IN"),
            vec!["BATCH_INFO", "BATCH_IN_PROCESS"]
        );
        assert_eq!(shown("qu"), vec!["quit"]);
        assert_eq!(shown("CREATE "), vec!["OR", "INTERFACE", "LU", "INSTANCE"]);
        assert_eq!(shown("create instance g"), vec!["group"]);
        assert_eq!(shown("SHOW S"), vec!["SCHEDULES", "SETTINGS"]);
        assert_eq!(shown("SET FORMAT "), vec!["table", "json", "csv"]);
        assert_eq!(shown("SET PROGRESS o"), vec!["on", "off"]);
    }

    #[test]
    fn keywords_come_with_a_blank_and_options_with_an_equals_sign() {
        let c = complete("BATCH_LIS", 9, &Fake, Path::new("/"));
        assert_eq!(c.start, 0);
        assert_eq!(c.candidates[0].replacement, "BATCH_LIST ");
        let c = complete("BATCH_LIST LIM", 14, &Fake, Path::new("/"));
        assert_eq!(c.start, 11);
        assert_eq!(c.candidates[0].replacement, "LIMIT=");
    }

    #[test]
    fn with_options_after_with() {
        let b = "BATCH Customer.(1, 2) FABRIC_COMMAND='sleep 10 ?' ";
        assert_eq!(shown(b), vec!["WITH"]);
        assert_eq!(
            shown(&format!("{b}WITH MAX_W")),
            vec!["MAX_WORKERS_PER_NODE"]
        );
        assert_eq!(
            shown(&format!("{b}with max_r")),
            vec!["max_retries"],
            "lower case in, lower case out"
        );
        let all = shown(&format!("{b}WITH ASYNC=true "));
        assert_eq!(all.len(), keywords::BATCH_OPTIONS.len());
        assert!(shown(&format!("{b}WITH MAX_RETRIES=1, CH")).contains(&"CHUNK_SIZE".into()));
        assert_eq!(
            shown("CREATE INTERFACE f TYPE CSV PATH 'a.csv' WITH "),
            vec!["HEADER", "DELIMITER"]
        );
    }

    #[test]
    fn options_of_statements_that_take_them_without_with() {
        assert_eq!(
            shown("BATCH_LIST "),
            vec!["STATUS", "FROM_DATE", "TO_DATE", "FILTER", "LIMIT"]
        );
        assert_eq!(shown("BATCH_RETRY 'c0ffee42' AL"), vec!["ALLOW_CANCELLED"]);
        assert_eq!(shown("STARTJOB STATEMENT NAME='n' C"), vec!["COMMAND"]);
        assert_eq!(shown("BATCH_EDIT MAX"), vec!["MAX_WORKERS_PER_NODE"]);
    }

    #[test]
    fn store_names_where_a_name_goes() {
        assert_eq!(shown("BATCH Cu"), vec!["Cust2", "Customer"]);
        assert_eq!(shown("batch cust"), vec!["Cust2", "Customer"]);
        assert_eq!(shown("GET A"), vec!["Account"]);
        assert_eq!(shown("DESCRIBE LU "), vec!["Account", "Cust2", "Customer"]);
        assert_eq!(shown("SHOW INSTANCE GROUPS Acc"), vec!["Account"]);
        assert_eq!(
            shown("BATCH Customer FROM "),
            vec!["FABRIC", "crm", "warehouse"]
        );
        assert_eq!(shown("CREATE LU x FROM w"), vec!["warehouse"]);
        assert_eq!(shown("BATCH Customer."), vec!["churned", "vip"]);
        assert_eq!(shown("BATCH Customer.v"), vec!["vip"]);
        assert_eq!(shown("DROP INSTANCE GROUP Customer.c"), vec!["churned"]);
        assert_eq!(
            shown("BATCH Customer FROM crm USING ('select 1') "),
            vec!["FABRIC_COMMAND"]
        );
    }

    #[test]
    fn recent_batch_ids_after_batch_statements() {
        let (c, replaced) = at("BATCH_INFO c0ff");
        assert_eq!(c.len(), 2);
        assert_eq!(replaced, "c0ff");
        // A bid with its dashes is one bare value.
        let (c, replaced) = at("BATCH_SUMMARY c0ffee42-1d");
        assert_eq!(c, vec!["c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f"]);
        assert_eq!(replaced, "c0ffee42-1d");
        assert_eq!(shown("BATCH_DETAILS 0a").len(), 1);
        assert_eq!(shown("CANCEL BATCH 0a").len(), 1);
        assert_eq!(shown("BATCH_APPEND 0").len(), 1);
        // BATCH_DETAILS takes a bid or options.
        let both = shown("BATCH_DETAILS ");
        assert_eq!(both.len(), 3 + keywords::DETAILS_OPTIONS.len());
        // Inside quotes, with the closing quote.
        let c = complete("BATCH_PAUSE 'c0ffee4", 20, &Fake, Path::new("/"));
        assert_eq!(c.start, 13);
        assert_eq!(
            c.candidates[0].replacement,
            "c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f'"
        );
    }

    #[test]
    fn help_topics_are_statement_names() {
        assert_eq!(shown("HELP BATCH_S"), vec!["BATCH_SUMMARY"]);
        assert_eq!(shown("help create "), vec!["INTERFACE", "LU", "INSTANCE"]);
        assert_eq!(shown("HELP CREATE INSTANCE "), vec!["GROUP"]);
        assert_eq!(shown("HELP Q"), vec!["QUIT"]);
    }

    #[test]
    fn nothing_inside_sql_comments_or_after_a_broken_prefix() {
        assert!(shown("BATCH Customer FROM crm USING ('select c").is_empty());
        assert!(shown("SHOW LUS -- BATCH_L").is_empty());
        assert!(shown("SHOW LUS /* BATCH_L").is_empty());
        assert!(shown("BATCH_LSIT; x").is_empty());
        assert!(shown("NO_SUCH_STATEMENT ").is_empty());
        assert!(shown("BATCH Customer FABRIC_COMAND='x' ").is_empty());
    }

    #[test]
    fn the_cursor_in_the_middle_completes_the_word_before_it() {
        let (c, replaced) = at("BATCH_L| LIMIT=3");
        assert_eq!(c, vec!["BATCH_LIST"]);
        assert_eq!(replaced, "BATCH_L");
    }

    #[test]
    fn file_paths_inside_path_strings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/crm.db"), "").unwrap();
        std::fs::write(dir.path().join("data/crm.csv"), "").unwrap();
        std::fs::write(dir.path().join("data/it's.csv"), "").unwrap();
        std::fs::write(dir.path().join("data/.hidden"), "").unwrap();
        let cwd = dir.path();
        let run = |text: &str| complete(text, text.len(), &Fake, cwd);

        let c = run("CREATE INTERFACE crm TYPE SQLITE PATH 'da");
        assert_eq!(c.start, 39);
        assert_eq!(c.candidates[0].display, "data/");
        assert_eq!(c.candidates[0].replacement, "data/");

        let c = run("CREATE INTERFACE crm TYPE SQLITE path 'data/cr");
        assert_eq!(c.start, 44);
        let shown: Vec<&str> = c.candidates.iter().map(|c| c.display.as_str()).collect();
        assert_eq!(shown, vec!["crm.csv", "crm.db"]);

        // A quote in a name is doubled inside the string.
        let c = run("CREATE INTERFACE f TYPE CSV PATH 'data/it");
        assert_eq!(c.candidates[0].replacement, "it''s.csv");
        let c = run("CREATE INTERFACE f TYPE CSV PATH \"data/");
        assert_eq!(c.candidates.len(), 3, "hidden files stay hidden");

        let abs = format!(
            "CREATE INTERFACE f TYPE CSV PATH '{}/data/crm.d",
            dir.path().display()
        );
        assert_eq!(run(&abs).candidates[0].display, "crm.db");
        // Not a PATH: a SQL string.
        assert!(run("CREATE LU x FROM crm ROOT ('da").candidates.is_empty());
    }

    #[test]
    fn odd_input_never_panics() {
        for text in [
            "é",
            "'",
            "$$",
            ";;;",
            "BATCH é",
            "((((",
            "\u{0}",
            "BATCH_INFO 'é",
        ] {
            for cursor in 0..=text.len() + 1 {
                let _ = complete(text, cursor, &Fake, Path::new("/nonexistent"));
            }
        }
    }
}
