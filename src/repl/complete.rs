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
mod tests;
