//! The grammar file is a contract: every statement has a section with
//! examples, every example parses (as do `examples/*.bsh` and the `bsh`
//! blocks of the README and of `docs/*.md`), and each example's statement is the one its section names.

use crate::common::{all_examples, grammar_examples, grammar_statements};
use batchsh::syntax::keywords::{ALL_OPTION_TABLES, COMMANDS, STATEMENTS};
use batchsh::syntax::parse;

fn grammar() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/grammar/batchsh.ebnf"))
        .expect("grammar/batchsh.ebnf")
}

#[test]
fn every_example_parses() {
    let mut failures = Vec::new();
    let examples = all_examples();
    assert!(
        examples.len() > 80,
        "too few examples found: {}",
        examples.len()
    );
    for (origin, text) in &examples {
        if let Err(e) = parse(text) {
            failures.push(format!("{origin}:\n{}", batchsh::diag::render(text, &e)));
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not parse:\n\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_statement_has_a_section_with_examples() {
    let g = grammar();
    let sections = grammar_statements(&g);
    let examples = grammar_examples(&g);
    for st in STATEMENTS {
        assert_eq!(
            sections.iter().filter(|s| *s == st.name).count(),
            1,
            "grammar/batchsh.ebnf needs exactly one `(* statement: {} *)` section",
            st.name
        );
        assert!(
            examples.iter().any(|(section, _)| section == st.name),
            "the {} section has no example",
            st.name
        );
    }
    for s in &sections {
        assert!(
            STATEMENTS.iter().any(|st| st.name == s),
            "grammar section {s} names no statement of keywords.rs"
        );
    }
}

/// An example in the section of statement X parses to statement X (legacy
/// spellings to their canonical statement).
#[test]
fn examples_parse_to_their_sections_statement() {
    let g = grammar();
    for (section, text) in grammar_examples(&g) {
        if !STATEMENTS.iter().any(|s| s.name == section) {
            continue;
        }
        let stmts = parse(&text).unwrap_or_else(|e| panic!("{}", batchsh::diag::render(&text, &e)));
        assert_eq!(stmts.len(), 1, "one statement per example: {text}");
        let expected = match section.as_str() {
            "CANCEL BATCH" => "BATCH_CANCEL".to_string(),
            s => s.replace(' ', "_"),
        };
        assert_eq!(
            stmts[0].kind.name(),
            expected,
            "example in section {section}: {text}"
        );
    }
}

/// Every option name, legacy spelling and command name of keywords.rs is a
/// terminal of the grammar, so the two cannot drift apart silently.
#[test]
fn grammar_names_every_option_and_command() {
    let g = grammar();
    for (table, specs) in ALL_OPTION_TABLES {
        for spec in *specs {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert!(
                    g.contains(&format!("\"{name}\"")),
                    "option {name} (of {table}) is missing from the grammar"
                );
            }
        }
    }
    for c in COMMANDS {
        assert!(
            g.contains(&format!("\"{c}\"")),
            "command {c} is missing from the grammar"
        );
    }
}

#[test]
fn the_fabric_seed_statement_is_in_the_grammar() {
    let g = grammar();
    assert!(g.contains(
        "BATCH AUTODATA_DELTA FROM idsFile USING ('select id from ids  limit 100') \
         FABRIC_COMMAND=\"sync_instance AUTODATA_DELTA.?\" with JOB_AFFINITY='10.21.2.102' ASYNC='true';"
    ));
}
