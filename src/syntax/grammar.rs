//! The grammar file, `grammar/batchsh.ebnf`, as data: its sections, their
//! comments, productions and examples. `HELP` prints from it and the grammar
//! test reads it, so what `HELP BATCH` shows is the grammar itself and
//! cannot drift from it.
//!
//! The file's layout (its header says so too): a `(* statement: NAME *)`
//! marker opens the section of a statement, a `(* section: NAME *)` marker
//! one of productions that several statements share; inside, comments,
//! productions (`name = ... ;`) and `(* example: ... *)` comments.

/// The grammar file, built into the binary.
pub const TEXT: &str = include_str!("../../grammar/batchsh.ebnf");

/// Shared sections whose productions `HELP` does not repeat under "Where":
/// the whole script, and the value forms every option uses.
const GENERAL_SECTIONS: &[&str] = &["script", "options and values"];

/// The section of the lexical rules: `HELP` repeats only those of its
/// productions that have a comment of their own (`bid`, `sql_text`), not
/// the plain ones (`identifier`, `lu_name`).
const TOKENS_SECTION: &str = "tokens";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section<'a> {
    /// The statement's name as keywords.rs spells it, or the shared
    /// section's name. Text before the first marker is a section named
    /// `(none)`.
    pub name: &'a str,
    pub is_statement: bool,
    pub items: Vec<Item<'a>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A comment's text, between `(*` and `*)`.
    Comment(&'a str),
    /// An example statement, trimmed, as written (it may span lines).
    Example(&'a str),
    /// `name = ... ;`, with a comment that follows the `;` on its line.
    Production { name: &'a str, text: &'a str },
}

/// The sections of a grammar text, in file order.
pub fn sections(text: &str) -> Vec<Section<'_>> {
    let mut out = vec![Section {
        name: "(none)",
        is_statement: false,
        items: Vec::new(),
    }];
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if text[i..].starts_with("(*") {
            let end = comment_end(text, i);
            let body = text[i + 2..]
                .find("*)")
                .map_or(&text[i + 2..], |n| &text[i + 2..i + 2 + n]);
            i = end;
            let t = body.trim_start();
            let marker = |p: &str| t.strip_prefix(p).map(str::trim);
            if let Some(name) = marker("statement:") {
                out.push(Section {
                    name,
                    is_statement: true,
                    items: Vec::new(),
                });
            } else if let Some(name) = marker("section:") {
                out.push(Section {
                    name,
                    is_statement: false,
                    items: Vec::new(),
                });
            } else if let Some(ex) = marker("example:") {
                push(&mut out, Item::Example(ex));
            } else {
                push(&mut out, Item::Comment(body));
            }
        } else if is_name_start(b[i]) {
            let name_end = i + text[i..]
                .bytes()
                .position(|c| !is_name_char(c))
                .unwrap_or(b.len() - i);
            let end = production_end(text, i);
            push(
                &mut out,
                Item::Production {
                    name: &text[i..name_end],
                    text: text[i..end].trim_end(),
                },
            );
            i = end;
        } else {
            // Not grammar (a stray character): skip the line.
            i = text[i..].find('\n').map_or(b.len(), |n| i + n + 1);
        }
    }
    out
}

fn push<'a>(sections: &mut [Section<'a>], item: Item<'a>) {
    if let Some(s) = sections.last_mut() {
        s.items.push(item);
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Where the comment opening at `start` ends (after its `*)`; the end of the
/// text when it is not closed).
fn comment_end(text: &str, start: usize) -> usize {
    text[start + 2..]
        .find("*)")
        .map_or(text.len(), |n| start + 2 + n + 2)
}

/// Where the production starting at `start` ends: after its `;` (terminals,
/// special sequences and comments skipped), and after a comment that
/// follows the `;` on the same line.
fn production_end(text: &str, start: usize) -> usize {
    let b = text.as_bytes();
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' | b'?' => {
                let close = b[i];
                i = text[i + 1..]
                    .find(close as char)
                    .map_or(b.len(), |n| i + 1 + n + 1);
            }
            b'(' if text[i..].starts_with("(*") => i = comment_end(text, i),
            b';' => {
                i += 1;
                let rest = &text[i..];
                let blank = rest.len() - rest.trim_start_matches([' ', '\t']).len();
                if rest[blank..].starts_with("(*") {
                    i = comment_end(text, i + blank);
                }
                return i;
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// The names a production refers to (terminals, special sequences and
/// comments left out), each once, in order.
fn references(production: &str) -> Vec<&str> {
    let b = production.as_bytes();
    let mut out: Vec<&str> = Vec::new();
    // Skip the production's own name and its `=`.
    let mut i = production.find('=').map_or(b.len(), |n| n + 1);
    while i < b.len() {
        match b[i] {
            b'"' | b'?' => {
                let close = b[i] as char;
                i = production[i + 1..]
                    .find(close)
                    .map_or(b.len(), |n| i + 1 + n + 1);
            }
            b'(' if production[i..].starts_with("(*") => i = comment_end(production, i),
            c if is_name_start(c) => {
                let n = production[i..]
                    .bytes()
                    .position(|c| !is_name_char(c))
                    .unwrap_or(b.len() - i);
                let name = &production[i..i + n];
                if !out.contains(&name) {
                    out.push(name);
                }
                i += n;
            }
            _ => i += 1,
        }
    }
    out
}

/// The keywords of the language: every terminal of the productions that is
/// made of letters and underscores (the header's definition), upper case,
/// each once, in file order.
pub fn keywords(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sections(text) {
        for item in &s.items {
            let Item::Production { text, .. } = item else {
                continue;
            };
            let mut rest = *text;
            while let Some(open) = rest.find(['"', '(', '?']) {
                match rest.as_bytes()[open] {
                    b'(' if rest[open..].starts_with("(*") => {
                        rest = &rest[comment_end(rest, open)..];
                        continue;
                    }
                    b'(' => {
                        rest = &rest[open + 1..];
                        continue;
                    }
                    b'?' => {
                        // A special sequence: skip to its closing `?`.
                        let close = rest[open + 1..]
                            .find('?')
                            .map_or(rest.len(), |n| open + 2 + n);
                        rest = &rest[close..];
                        continue;
                    }
                    _ => {}
                }
                let Some(len) = rest[open + 1..].find('"') else {
                    break;
                };
                let t = &rest[open + 1..open + 1 + len];
                if !t.is_empty() && t.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_') {
                    let up = t.to_ascii_uppercase();
                    if !out.contains(&up) {
                        out.push(up);
                    }
                }
                rest = &rest[open + 1 + len + 1..];
            }
        }
    }
    out
}

/// A comment's or example's text as it reads: continuation lines lose the
/// three columns of the `(* ` they are aligned under.
fn unindent(text: &str) -> String {
    let mut lines = text.trim().lines();
    let mut out = lines.next().unwrap_or("").trim_end().to_string();
    for l in lines {
        out.push('\n');
        let strip = l.len() - l.trim_start_matches(' ').len();
        out.push_str(l[strip.min(3)..].trim_end());
    }
    out
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{by}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The statement section a `HELP` topic names: the topic as keywords.rs
/// spells it, `QUIT` being `EXIT`.
pub fn statement_section<'a>(sections: &'a [Section<'a>], topic: &str) -> Option<&'a Section<'a>> {
    let topic = if topic.eq_ignore_ascii_case("QUIT") {
        "EXIT"
    } else {
        topic
    };
    sections
        .iter()
        .find(|s| s.is_statement && s.name.eq_ignore_ascii_case(topic))
}

/// `HELP <statement>`: the statement's summary, what its section says about
/// it, its syntax, the shared productions that syntax uses, and its
/// examples. `None` when the grammar has no section for `topic`.
pub fn help_text(topic: &str) -> Option<String> {
    let all = sections(TEXT);
    let section = statement_section(&all, topic)?;
    let summary = super::keywords::STATEMENTS
        .iter()
        .find(|s| s.name == section.name)
        .map_or("", |s| s.summary);
    let mut about = Vec::new();
    let mut syntax = Vec::new();
    let mut examples = Vec::new();
    for item in &section.items {
        match item {
            Item::Comment(c) => about.push(unindent(c)),
            Item::Production { text, .. } => syntax.push(indent(text, "    ")),
            Item::Example(e) => examples.push(indent(&unindent(e), "    ")),
        }
    }
    // Parts are separated by a blank line; an empty part is left out.
    let mut out = format!("{}: {summary}\n", section.name);
    if !super::keywords::is_built(section.name) {
        out.push_str(
            "\nNot built yet in this version: it parses (batchsh parse shows it), and \
             running it says so.\n",
        );
    }
    let parts = [
        ("", about.join("\n\n")),
        ("Syntax:\n", syntax.join("\n")),
        ("Where:\n", shared_productions(&all, section).join("\n\n")),
        ("Examples:\n", examples.join("\n")),
        (
            "",
            "Notation: [ a ] optional, { a } repeated, a | b one of them; \"WORD\" is a \
             keyword,\nin any case; (* ... *) is a comment."
                .to_string(),
        ),
    ];
    for (title, body) in parts {
        if !body.is_empty() {
            out.push_str(&format!("\n{title}{body}\n"));
        }
    }
    Some(out)
}

/// The grammar section that `HELP commands` and `HELP <command>` print.
const COMMANDS_SECTION: &str = "per-entity commands";

/// A comment of the commands section that opens the part of a command not
/// built yet (it has no production): `(* not built yet: name ... *)`.
const NOT_BUILT_MARK: &str = "not built yet:";

/// The topics of `HELP` besides the statements, upper case as the parser
/// gives them: `HELP commands`, and each per-entity command (SPEC §5).
pub const COMMAND_TOPICS: &[&str] = &[
    "COMMANDS",
    "SYNC_INSTANCE",
    "DELETE_INSTANCE",
    "EXEC",
    "SHELL",
    "SQL",
    "ECHO",
    "SLEEP",
    "PIPE",
];

pub fn is_command_topic(topic: &str) -> bool {
    COMMAND_TOPICS.iter().any(|t| t.eq_ignore_ascii_case(topic))
}

/// One command's part of the commands section: its comment, productions
/// and examples.
#[derive(Debug, Default)]
struct CommandPart<'a> {
    /// As typed: `exec`, `sync_instance`.
    name: String,
    built: bool,
    about: Vec<&'a str>,
    syntax: Vec<&'a str>,
    examples: Vec<&'a str>,
}

/// `HELP commands` (`None`) or `HELP <command>`: from the grammar's
/// commands section. `None` when the topic names no command.
pub fn command_help(topic: &str) -> Option<String> {
    let all = sections(TEXT);
    let section = all.iter().find(|s| s.name == COMMANDS_SECTION)?;
    let parts = parts_of(section);
    let (intro, commands) = parts.split_first()?;
    let notation = "Notation: [ a ] optional, { a } repeated, a | b one of them; \"WORD\" is a \
                    keyword,\nin any case; (* ... *) is a comment.";
    let mut out;
    if topic.eq_ignore_ascii_case("COMMANDS") {
        out = "Per-entity commands: what FABRIC_COMMAND runs for each entity of a BATCH\n"
            .to_string();
        for c in &intro.about {
            out.push_str(&format!("\n{}\n", unindent(c)));
        }
        out.push_str("\nCommands:\n");
        for c in commands {
            let first = c.about.first().map(|a| unindent(a)).unwrap_or_default();
            let first = first.replace('\n', " ");
            let first = first.split(". ").next().unwrap_or("").trim_end_matches('.');
            let mark = if c.built { "" } else { " (not built yet)" };
            out.push_str(&format!("    {:<16}{first}{mark}\n", c.name));
        }
        out.push_str("\nHELP <command> (HELP exec, HELP shell, ...) shows one with its syntax and examples.\n");
        let examples: Vec<String> = commands
            .iter()
            .filter_map(|c| c.examples.first())
            .map(|e| indent(&unindent(e), "    "))
            .collect();
        out.push_str(&format!("\nExamples:\n{}\n", examples.join("\n")));
        return Some(out);
    }
    let c = commands
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(topic))?;
    out = if c.built {
        format!("{}: a per-entity command (FABRIC_COMMAND)\n", c.name)
    } else {
        format!(
            "{}: a per-entity command (FABRIC_COMMAND), not built yet in this version\n",
            c.name
        )
    };
    let about: Vec<String> = c.about.iter().map(|a| unindent(a)).collect();
    let syntax: Vec<String> = c.syntax.iter().map(|p| indent(p, "    ")).collect();
    let rules: Vec<String> = intro.about.iter().skip(1).map(|a| unindent(a)).collect();
    let examples: Vec<String> = c
        .examples
        .iter()
        .map(|e| indent(&unindent(e), "    "))
        .collect();
    let parts = [
        ("", about.join("\n\n")),
        ("Syntax:\n", syntax.join("\n")),
        ("The entity id:\n", indent(&rules.join("\n\n"), "    ")),
        ("Examples:\n", examples.join("\n")),
        ("", notation.to_string()),
    ];
    for (title, body) in parts {
        if !body.is_empty() {
            out.push_str(&format!("\n{title}{body}\n"));
        }
    }
    Some(out)
}

/// The commands section cut in parts: the introduction (its comments and
/// the `entity_command` production, name empty), then one part per
/// command, each opened by a comment; a built command is named by the
/// first terminal of its first production, one not built yet by the word
/// after the mark.
fn parts_of<'a>(section: &Section<'a>) -> Vec<CommandPart<'a>> {
    let mut parts = vec![CommandPart {
        built: true,
        ..CommandPart::default()
    }];
    let mut in_intro = true;
    for item in &section.items {
        match item {
            Item::Comment(c) if !in_intro => {
                let t = c.trim_start();
                let (name, built, text) = match t.strip_prefix(NOT_BUILT_MARK) {
                    Some(rest) => {
                        let rest = rest.trim_start();
                        let name = rest.split_whitespace().next().unwrap_or("");
                        let text = rest[name.len()..].trim_start();
                        (name.trim_end_matches('.').to_string(), false, text)
                    }
                    None => (String::new(), true, *c),
                };
                parts.push(CommandPart {
                    name,
                    built,
                    about: vec![text],
                    ..CommandPart::default()
                });
            }
            Item::Comment(c) => parts[0].about.push(c),
            Item::Production { name, text } => {
                let last = parts.len() - 1;
                let part = &mut parts[last];
                if part.name.is_empty() && last > 0 {
                    part.name = first_terminal(text).unwrap_or(name).to_string();
                }
                part.syntax.push(text);
                if *name == "entity_command" {
                    in_intro = false;
                }
            }
            Item::Example(e) => {
                let last = parts.len() - 1;
                parts[last].examples.push(e);
            }
        }
    }
    parts
}

/// The first `"terminal"` of a production's right side.
fn first_terminal(production: &str) -> Option<&str> {
    let rest = &production[production.find('=')? + 1..];
    let open = rest.find('"')?;
    let len = rest[open + 1..].find('"')?;
    Some(&rest[open + 1..open + 1 + len])
}

/// The productions of shared sections (but the general ones) that the
/// statement's productions use, directly or through each other, each with
/// the comment written just before it, indented for `HELP`.
fn shared_productions(all: &[Section], section: &Section) -> Vec<String> {
    let own: Vec<&str> = section
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Production { name, .. } => Some(*name),
            _ => None,
        })
        .collect();
    let mut wanted: Vec<&str> = section
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Production { text, .. } => Some(references(text)),
            _ => None,
        })
        .flatten()
        .filter(|r| !own.contains(r))
        .collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < wanted.len() {
        let want = wanted[k];
        k += 1;
        for s in all
            .iter()
            .filter(|s| !s.is_statement && !GENERAL_SECTIONS.contains(&s.name))
        {
            for (k, item) in s.items.iter().enumerate() {
                let Item::Production { name, text } = item else {
                    continue;
                };
                if *name != want {
                    continue;
                }
                // The comment just before a production is its note, unless
                // the next item is a production too (a comment on a group).
                let note = match k.checked_sub(1).map(|p| &s.items[p]) {
                    Some(Item::Comment(c))
                        if !matches!(s.items.get(k + 1), Some(Item::Production { .. })) =>
                    {
                        Some(*c)
                    }
                    _ => None,
                };
                if s.name == TOKENS_SECTION && note.is_none() {
                    continue;
                }
                let mut chunk = String::new();
                if let Some(c) = note {
                    chunk.push_str(&indent(&unindent(c), "    "));
                    chunk.push('\n');
                }
                chunk.push_str(&indent(text, "    "));
                out.push(chunk);
                for r in references(text) {
                    if !wanted.contains(&r) && !own.contains(&r) {
                        wanted.push(r);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::keywords::STATEMENTS;

    #[test]
    fn every_statement_has_help_with_syntax_and_an_example() {
        for st in STATEMENTS {
            let text = help_text(st.name).unwrap_or_else(|| panic!("no help for {}", st.name));
            assert!(text.starts_with(&format!("{}: {}\n", st.name, st.summary)));
            let syntax = text.split("\nSyntax:\n").nth(1).expect("a Syntax part");
            assert!(syntax.starts_with("    "), "{text}");
            let examples = text.split("\nExamples:\n").nth(1).expect("examples");
            assert!(examples.starts_with("    "), "{}: {text}", st.name);
        }
    }

    #[test]
    fn help_batch_shows_the_grammar_section_and_the_shared_productions() {
        let text = help_text("BATCH").unwrap();
        // The description, the production and an example, as the file has
        // them (examples lose only the comment's indentation).
        assert!(text.contains("Run one command per entity on a pool of workers."));
        assert!(text.contains("    batch = \"BATCH\" , target , [ source ] ,"));
        assert!(text.contains("    | \"SHOW_OUTPUT\" , \"=\" , bool ;"));
        assert!(text.contains("    BATCH Customer.vip\n        FABRIC_COMMAND = "));
        // target and source come from the shared section, with their notes;
        // tokens such as lu_name are not repeated.
        let where_ = text.split("\nWhere:\n").nth(1).unwrap();
        assert!(where_.contains("    target = lu_name , [ \"@\" , dc_name ] ,"));
        assert!(where_.contains("Which entities a batch processes"));
        assert!(where_.contains("    source = \"FROM\" , \"FABRIC\""));
        assert!(!where_.contains("identifier ="));
    }

    #[test]
    fn quit_is_exit_and_case_does_not_matter() {
        assert_eq!(help_text("QUIT"), help_text("EXIT"));
        assert_eq!(help_text("batch_list"), help_text("BATCH_LIST"));
        assert_eq!(help_text("NO_SUCH_STATEMENT"), None);
    }

    #[test]
    fn a_comment_after_the_semicolon_stays_with_its_production() {
        let s = sections("(* statement: X *)\nx = \"X\" ; (* note *)\n(* example: X *)");
        assert_eq!(
            s[1].items,
            vec![
                Item::Production {
                    name: "x",
                    text: "x = \"X\" ; (* note *)"
                },
                Item::Example("X"),
            ]
        );
    }

    #[test]
    fn malformed_text_never_panics() {
        for t in [
            "(*",
            "x = \"",
            "x = ?",
            "(* statement: *)",
            "; ; =",
            "a",
            "\"(*\"",
        ] {
            let _ = sections(t);
            let _ = references(t);
        }
    }

    #[test]
    fn keywords_are_the_word_terminals() {
        let k = keywords(TEXT);
        for w in [
            "BATCH",
            "FABRIC_COMMAND",
            "WITH",
            "SYNC_INSTANCE",
            "PATH",
            "MAX_RETRIES",
        ] {
            assert!(k.iter().any(|x| x == w), "{w} missing");
        }
        // Punctuation, specials and comments are not keywords.
        assert!(!k.iter().any(|x| x == "ANY" || x.is_empty()));
        assert_eq!(
            keywords("a = \"X\" , \"y_z\" (* \"NO\" *) , \";\" , ? \"Q\" ? ;"),
            vec!["X", "Y_Z"]
        );
    }

    #[test]
    fn references_skip_terminals_and_comments() {
        assert_eq!(
            references("a = \"B\" , c , ? d ? , (* e *) [ f ] ;"),
            vec!["c", "f"]
        );
    }
}
