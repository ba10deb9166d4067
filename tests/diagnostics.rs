//! Exact diagnostics, one per error kind (SPEC §11): what, where (line,
//! column, a caret under the whole bad token) and what would be right.
//! Each runs the real binary: the text goes to stderr, nothing to stdout,
//! exit code 1.

use crate::common::Test;

fn diag(input: &str) -> String {
    let out = Test::new()
        .args(["parse", input])
        .status(1)
        .stdout("")
        .run();
    out.stderr
}

#[test]
fn unknown_option_in_place_of_fabric_command() {
    assert_eq!(
        diag(
            "BATCH Customer FROM crm USING ('select id from c') FABRIC_COMAND=\"sync_instance Customer.?\""
        ),
        r#"error: unknown option FABRIC_COMAND
  --> line 1, column 52
   |
 1 | BATCH Customer FROM crm USING ('select id from c') FABRIC_COMAND="sync_instance Customer.?"
   |                                                    ^^^^^^^^^^^^^ did you mean FABRIC_COMMAND?
   = note: valid here: FABRIC_COMMAND
"#
    );
}

#[test]
fn unknown_with_option_lists_the_valid_ones() {
    assert_eq!(
        diag("BATCH_LIST LIMT=5"),
        "error: unknown option LIMT
  --> line 1, column 12
   |
 1 | BATCH_LIST LIMT=5
   |            ^^^^ did you mean LIMIT?
   = note: valid here: STATUS, FROM_DATE, TO_DATE, FILTER, LIMIT
"
    );
}

#[test]
fn unknown_statement() {
    assert_eq!(
        diag("SHOW LUS;\nBATCH_LSIT STATUS='ALL'"),
        "error: unknown statement BATCH_LSIT
  --> line 2, column 1
   |
 2 | BATCH_LSIT STATUS='ALL'
   | ^^^^^^^^^^ did you mean BATCH_LIST?
   = note: HELP lists the statements
"
    );
}

#[test]
fn expected_one_of_several_found_a_word() {
    assert_eq!(
        diag("SHOW LU"),
        "error: expected INTERFACES, LUS, INSTANCE, SCHEDULES, NODES or SETTINGS, found LU
  --> line 1, column 6
   |
 1 | SHOW LU
   |      ^^
"
    );
}

#[test]
fn expected_at_end_of_input() {
    assert_eq!(
        diag("CREATE LU C FROM crm ROOT ("),
        "error: expected a string, found end of input
  --> line 1, column 28
   |
 1 | CREATE LU C FROM crm ROOT (
   |                            ^
"
    );
}

#[test]
fn missing_semicolon_between_statements() {
    assert_eq!(
        diag("BATCH C FABRIC_COMMAND='echo ?' WITH MAX_RETRIES=3\nBATCH_LIST"),
        "error: expected an option, ';' or end of input, found BATCH_LIST
  --> line 2, column 1
   |
 2 | BATCH_LIST
   | ^^^^^^^^^^
"
    );
}

#[test]
fn invalid_value() {
    assert_eq!(
        diag("BATCH C FABRIC_COMMAND='echo ?' WITH ASYNC=maybe"),
        "error: invalid value for ASYNC: 'maybe'
  --> line 1, column 44
   |
 1 | BATCH C FABRIC_COMMAND='echo ?' WITH ASYNC=maybe
   |                                            ^^^^^ expected true or false
"
    );
    assert_eq!(
        diag("BATCH C FABRIC_COMMAND='echo ?' WITH RETRY_DELAY='30 sec'"),
        "error: invalid value for RETRY_DELAY: '30 sec'
  --> line 1, column 50
   |
 1 | BATCH C FABRIC_COMMAND='echo ?' WITH RETRY_DELAY='30 sec'
   |                                                  ^^^^^^^^ expected a duration such as '500ms', '30s', '5m', '2h', '1d' or 'HH:MM:SS'
"
    );
}

#[test]
fn duplicate_option() {
    assert_eq!(
        diag("BATCH_LIST STATUS='DONE' status='FAILED'"),
        "error: option STATUS is given twice
  --> line 1, column 26
   |
 1 | BATCH_LIST STATUS='DONE' status='FAILED'
   |                          ^^^^^^ give each option once
"
    );
}

#[test]
fn missing_required_option() {
    assert_eq!(
        diag("STARTJOB STATEMENT NAME='x'"),
        "error: STARTJOB needs COMMAND=...
  --> line 1, column 20
   |
 1 | STARTJOB STATEMENT NAME='x'
   |                    ^^^^ add COMMAND=... here
"
    );
}

#[test]
fn unknown_command_inside_fabric_command() {
    assert_eq!(
        diag("BATCH C FABRIC_COMMAND='sync_instanse C.?'"),
        "error: unknown command sync_instanse
  --> line 1, column 25
   |
 1 | BATCH C FABRIC_COMMAND='sync_instanse C.?'
   |                         ^^^^^^^^^^^^^ did you mean sync_instance?
   = note: commands: sync_instance, delete_instance, exec, shell, pipe, sql, echo, sleep
   = note: inside the FABRIC_COMMAND string
"
    );
}

/// The caret lands on the right column of the outer text even after
/// doubled quotes inside the command string.
#[test]
fn command_errors_point_through_doubled_quotes() {
    assert_eq!(
        diag("BATCH C FABRIC_COMMAND='exec ''a''''b'' ? :batch_idd'"),
        "error: unknown parameter :batch_idd
  --> line 1, column 44
   |
 1 | BATCH C FABRIC_COMMAND='exec ''a''''b'' ? :batch_idd'
   |                                            ^^^^^^^^^
   = note: parameters: :from_date, :batch_start, :batch_end, :batch_id, :bid
   = note: inside the FABRIC_COMMAND string
"
    );
}

#[test]
fn command_without_placeholder() {
    assert_eq!(
        diag("BATCH C FABRIC_COMMAND=\"shell 'echo hi'\""),
        "error: the shell command has no ?
  --> line 1, column 31
   |
 1 | BATCH C FABRIC_COMMAND=\"shell 'echo hi'\"
   |                               ^^^^^^^^^ put ? where the entity id goes (or $ENTITY_ID, the id's variable)
   = note: a per-entity command must use the entity id (pipe alone takes it on its stdin)
   = note: inside the FABRIC_COMMAND string
"
    );
}

#[test]
fn errors_two_strings_deep() {
    assert_eq!(
        diag("STARTJOB STATEMENT NAME='n' COMMAND='BATCH C FABRIC_COMMAND=''echo x'''"),
        "error: expected '?', found x
  --> line 1, column 68
   |
 1 | STARTJOB STATEMENT NAME='n' COMMAND='BATCH C FABRIC_COMMAND=''echo x'''
   |                                                                    ^
   = note: inside the FABRIC_COMMAND string, inside the COMMAND string
"
    );
}

#[test]
fn unterminated_string_and_comment() {
    assert_eq!(
        diag("BATCH_INFO 'abc"),
        "error: unterminated string
  --> line 1, column 12
   |
 1 | BATCH_INFO 'abc
   |            ^ this ' is never closed
"
    );
    assert_eq!(
        diag("BATCH_LIST /* open"),
        "error: unterminated comment
  --> line 1, column 12
   |
 1 | BATCH_LIST /* open
   |            ^^ this /* is never closed
"
    );
}

#[test]
fn unknown_help_topic() {
    assert_eq!(
        diag("HELP BATCH_LSIT"),
        "error: no statement named BATCH_LSIT
  --> line 1, column 6
   |
 1 | HELP BATCH_LSIT
   |      ^^^^^^^^^^ did you mean BATCH_LIST?
   = note: HELP lists the statements, HELP commands the per-entity commands
"
    );
}

#[test]
fn options_before_fabric_command() {
    assert_eq!(
        diag("BATCH Customer ASYNC=true FABRIC_COMMAND='echo ?'"),
        "error: ASYNC is a WITH option: write it after FABRIC_COMMAND=..., as WITH ASYNC=...
  --> line 1, column 16
   |
 1 | BATCH Customer ASYNC=true FABRIC_COMMAND='echo ?'
   |                ^^^^^
"
    );
}

#[test]
fn with_before_fabric_command() {
    assert_eq!(
        diag("BATCH Customer WITH MAX_RETRIES=2 FABRIC_COMMAND='echo ?'"),
        "error: WITH and its options come after the command: ... FABRIC_COMMAND=\"...\" WITH option=value ...
  --> line 1, column 16
   |
 1 | BATCH Customer WITH MAX_RETRIES=2 FABRIC_COMMAND='echo ?'
   |                ^^^^
"
    );
}

#[test]
fn tabs_keep_the_caret_aligned() {
    assert_eq!(
        diag("BATCH_LIST;\n\tBATCH_INFO  x y"),
        "error: expected ';' or end of input, found y
  --> line 2, column 16
   |
 2 | \tBATCH_INFO  x y
   | \t              ^
"
    );
}

/// A 100 KB line is shown as a window around the error, not whole.
#[test]
fn long_lines_are_cut_around_the_error() {
    let ids: Vec<String> = (0..20_000).map(|n| format!("'{n}'")).collect();
    let input = format!("BATCH C.({}) FABRIC_COMMAND='echo x'", ids.join(","));
    let out = Test::new()
        .args(["parse", "-"])
        .stdin(input)
        .status(1)
        .run()
        .stderr;
    assert!(out.len() < 1000, "diagnostic is {} bytes", out.len());
    assert!(out.starts_with("error: expected '?', found x\n"), "{out}");
    let caret_line = out.lines().nth(4).unwrap();
    let source_line = out.lines().nth(3).unwrap();
    // The caret stands under the x.
    let caret_col = caret_line.find('^').unwrap();
    assert_eq!(&source_line[caret_col..caret_col + 1], "x", "{out}");
}

#[test]
fn an_unquoted_command_is_shown_quoted() {
    assert_eq!(
        diag("BATCH Customer FABRIC_COMMAND=sync_instance Customer.? WITH MAX_RETRIES=2"),
        r#"error: the command is a string; quote it: FABRIC_COMMAND="sync_instance Customer.?"
  --> line 1, column 31
   |
 1 | BATCH Customer FABRIC_COMMAND=sync_instance Customer.? WITH MAX_RETRIES=2
   |                               ^^^^^^^^^^^^^^^^^^^^^^^^
"#
    );
    // Up to the end of the statement; a WITH inside a word does not end it.
    assert!(
        diag("BATCH Customer FABRIC_COMMAND=exec 'withdraw' ?;").starts_with(
            r#"error: the command is a string; quote it: FABRIC_COMMAND="exec 'withdraw' ?""#
        )
    );
    // A `;` inside the command's own quotes does not end it.
    assert!(
        diag("BATCH Customer FABRIC_COMMAND=shell 'echo a; echo ?' WITH MAX_RETRIES=1")
            .starts_with(r#"error: the command is a string; quote it: FABRIC_COMMAND="shell 'echo a; echo ?'""#)
    );
    // A quote that never closes: the suggestion stops at the line's end.
    assert!(
        diag("BATCH Customer FABRIC_COMMAND=shell 'echo ?\nBATCH_LIST;\nSHOW LUS").starts_with(
            r#"error: the command is a string; quote it: FABRIC_COMMAND="shell 'echo ?"
"#
        )
    );
    // Not a command at all: what the value must be.
    assert!(
        diag("BATCH Customer FABRIC_COMMAND=12").starts_with("error: expected a string, found 12")
    );
}

#[test]
fn options_inside_the_command_string_are_pointed_out() {
    assert_eq!(
        diag("BATCH Customer FABRIC_COMMAND=\"shell 'echo ?' with ENTITY_TIMEOUT='1s'\""),
        r#"error: WITH and its options go after the command's closing quote: FABRIC_COMMAND="..." WITH option=value
  --> line 1, column 47
   |
 1 | BATCH Customer FABRIC_COMMAND="shell 'echo ?' with ENTITY_TIMEOUT='1s'"
   |                                               ^^^^
   = note: inside the FABRIC_COMMAND string
"#
    );
}

// ---------------------------------------------------------------------------
// Hints where users of neighbouring tools trip (GNU parallel, psql).
// ---------------------------------------------------------------------------

#[test]
fn parallel_braces_in_exec_say_use_question_mark() {
    assert_eq!(
        diag("BATCH Customer.('1') FABRIC_COMMAND=\"exec 'ls' {}\""),
        r#"error: the entity id is written ? in a batchsh command
  --> line 1, column 48
   |
 1 | BATCH Customer.('1') FABRIC_COMMAND="exec 'ls' {}"
   |                                                ^^ use ? for the entity id (GNU parallel's {})
   = note: inside the FABRIC_COMMAND string
"#
    );
}

/// `exec 'ls' '{}'`: the braces quoted, as a shell user types them, get
/// the same hint as bare ones.
#[test]
fn quoted_parallel_braces_in_exec_say_use_question_mark() {
    assert_eq!(
        diag("BATCH Customer.('1') FABRIC_COMMAND=\"exec 'ls' '{}'\""),
        r#"error: the exec command has no ?
  --> line 1, column 38
   |
 1 | BATCH Customer.('1') FABRIC_COMMAND="exec 'ls' '{}'"
   |                                      ^^^^ use ? for the entity id (GNU parallel's {})
   = note: inside the FABRIC_COMMAND string
"#
    );
}

#[test]
fn parallel_braces_in_other_commands_say_use_question_mark() {
    for cmd in [
        "echo {}",
        "sleep 5 {}",
        "sync_instance Customer.{}",
        "shell 'curl https://x/{}'",
        "sql crm 'delete from t where id = {}'",
    ] {
        let text = format!("BATCH Customer.('1') FABRIC_COMMAND=\"{cmd}\"");
        let err = diag(&text);
        assert!(
            err.contains("use ? for the entity id (GNU parallel's {})"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn max_workers_suggests_max_workers_per_node() {
    let err = diag("BATCH Customer.('1') FABRIC_COMMAND='echo ?' WITH MAX_WORKERS=4");
    assert!(
        err.starts_with(
            "error: unknown option MAX_WORKERS
  --> line 1, column 51
   |
 1 | BATCH Customer.('1') FABRIC_COMMAND='echo ?' WITH MAX_WORKERS=4
   |                                                   ^^^^^^^^^^^ did you mean MAX_WORKERS_PER_NODE?
"
        ),
        "{err}"
    );
}

#[test]
fn show_batches_suggests_batch_list() {
    assert_eq!(
        diag("SHOW BATCHES"),
        "error: SHOW BATCHES is not a statement
  --> line 1, column 6
   |
 1 | SHOW BATCHES
   |      ^^^^^^^ did you mean BATCH_LIST? (STATUS='ALL' lists finished ones too)
"
    );
}

/// psql's `\x` in `-c` (the REPL parses the same way, tests/repl.rs)
/// says what batchsh calls it, and runs nothing of the script.
#[test]
fn psql_backslash_x_suggests_set_expanded() {
    let out = Test::new()
        .args(["-c", "SHOW LUS;\n\\x"])
        .status(1)
        .stdout("")
        .stderr(
            "error: \\x is not a statement
  --> line 2, column 1
   |
 2 | \\x
   | ^^ psql's \\x is SET EXPANDED on here
",
        )
        .run();
    assert!(!out.home.path().join("store.db").exists());
    for (psql, hint) in [
        ("\\q", "^^ psql's \\q is EXIT here"),
        ("\\?", "^^ psql's \\? is HELP here"),
        ("\\timing", "^^^^^^^ psql's \\timing is SET TIMING on here"),
        (
            "\\pset pager off",
            "^^^^^ psql's \\pset pager off is SET PAGER off here",
        ),
    ] {
        let err = diag(psql);
        assert!(err.contains(hint), "{psql}: {err}");
    }
    let err = diag("\\dt");
    assert!(
        err.contains("batchsh has no backslash commands; HELP lists the statements"),
        "{err}"
    );
}
