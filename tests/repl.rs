//! The interactive REPL (SPEC §12), driven through a real pseudo-terminal,
//! and `HELP`, which is a statement of every mode.

use crate::common::Test;

/// SPEC §12: `HELP` lists the statements, one line each, in every mode.
#[test]
fn help_lists_every_statement_with_its_summary() {
    let out = Test::new().args(["--format", "json", "-c", "HELP"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), batchsh::syntax::keywords::STATEMENTS.len());
    assert_eq!(rows[0]["statement"], "CREATE INTERFACE");
    assert!(rows.iter().any(
        |r| r["statement"] == "BATCH" && r["summary"].as_str().unwrap().contains("per entity")
    ));
    let table = Test::new().args(["-c", "HELP;"]).run();
    assert_eq!(table.code, 0, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2 + rows.len(), "{}", table.stdout);
    assert!(lines.iter().any(|l| l.starts_with("| BATCH_LIST ")));
}

/// SPEC §12: `HELP BATCH` (any statement, any case) shows its syntax and an
/// example, from the grammar file's section; `--quiet` does not hide what
/// was asked for.
#[test]
fn help_for_a_statement_shows_its_grammar_section() {
    let out = Test::new().args(["-q", "-c", "help batch_summary"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let grammar =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/grammar/batchsh.ebnf"))
            .unwrap();
    assert!(grammar.contains("batch_summary = \"BATCH_SUMMARY\" , [ bid ] ;"));
    assert_eq!(
        out.stdout,
        "BATCH_SUMMARY: progress per node, per DC and for the cluster\n\
         \n\
         Syntax:\n    batch_summary = \"BATCH_SUMMARY\" , [ bid ] ;\n\
         \n\
         Where:\n    \
         A batch id. Where it is optional and left out, the last batch started in\n    \
         this session is meant; a unique prefix of at least 6 characters is enough.\n    \
         A bare word followed by \"=\" is an option name, never a batch id.\n    \
         bid = string | bare_value ;\n\
         \n\
         Examples:\n    BATCH_SUMMARY c0ffee42;\n\
         \n\
         Notation: [ a ] optional, { a } repeated, a | b one of them; \"WORD\" is a keyword,\n\
         in any case; (* ... *) is a comment.\n"
    );
    let create = Test::new().args(["-c", "HELP create instance group"]).run();
    assert!(
        create
            .stdout
            .starts_with("CREATE INSTANCE GROUP: save a one-column query of entity ids\n"),
        "{}",
        create.stdout
    );
    assert!(create.stdout.contains(
        "    CREATE INSTANCE GROUP Customer.vip USING ('select id from customer where tier = ''gold''');"
    ));
}

#[test]
fn help_for_an_unknown_statement_suggests_the_nearest() {
    let out = Test::new().args(["-c", "HELP BATCH_LSIT"]).run();
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("did you mean BATCH_LIST?"),
        "{}",
        out.stderr
    );
}
