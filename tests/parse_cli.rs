//! `batchsh parse` and the command line around it, through the real binary.

use crate::common::{Test, parse_json};
use serde_json::json;

const SEED: &str = "BATCH AUTODATA_DELTA FROM idsFile USING ('select id from ids  limit 100') \
    FABRIC_COMMAND=\"sync_instance AUTODATA_DELTA.?\" with JOB_AFFINITY='10.21.2.102' ASYNC='true';";

#[test]
fn the_fabric_seed_statement_parses_with_its_fields() {
    let v = parse_json(SEED);
    let s = &v[0];
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(s["statement"], "BATCH");
    assert_eq!(s["lu"], "AUTODATA_DELTA");
    assert_eq!(s["interface"], "idsFile");
    assert_eq!(s["sql"], "select id from ids  limit 100");
    assert_eq!(s["fabric_command"]["command"], "sync_instance");
    assert_eq!(s["fabric_command"]["lu"], "AUTODATA_DELTA");
    assert_eq!(s["options"]["JOB_AFFINITY"], "10.21.2.102");
    assert_eq!(s["options"]["ASYNC"], true);
    assert_eq!(s["dc"], serde_json::Value::Null);
    assert_eq!(s["group"], serde_json::Value::Null);
    assert_eq!(s["ids"], serde_json::Value::Null);
    assert_eq!(s["from_fabric"], false);
    // The span covers the statement, not the `;`.
    assert_eq!(s["span"], json!({"start": 0, "end": SEED.len() - 1}));
    assert_eq!(
        s["canonical"],
        "BATCH AUTODATA_DELTA FROM idsFile USING ('select id from ids  limit 100') \
         FABRIC_COMMAND='sync_instance AUTODATA_DELTA.?' WITH JOB_AFFINITY='10.21.2.102' ASYNC=true"
    );
}

#[test]
fn batch_json_covers_every_target_and_source_form() {
    let v = parse_json(
        "BATCH Customer@DC1.vip FABRIC_COMMAND='echo ?';\n\
         BATCH Customer ('1', 2, x-3) FABRIC_COMMAND='sleep 5 ?';\n\
         BATCH Customer FROM FABRIC FABRIC_COMMAND=\"exec 'p' 'a' ? :batch_id\";\n\
         MIGRATE Customer WITH GENERATE_IIDS_FIRST=true MAX_FAILURES='5%' RETRY_DELAY=90s",
    );
    assert_eq!(v[0]["dc"], "DC1");
    assert_eq!(v[0]["group"], "vip");
    assert_eq!(v[1]["ids"], json!(["1", "2", "x-3"]));
    assert_eq!(
        v[1]["fabric_command"],
        json!({"command": "sleep", "ms": 5, "text": "sleep 5 ?"})
    );
    assert_eq!(v[2]["from_fabric"], true);
    assert_eq!(
        v[2]["fabric_command"]["args"],
        json!(["a", {"placeholder": "?"}, {"param": "batch_id"}])
    );
    assert_eq!(v[3]["statement"], "MIGRATE");
    assert_eq!(v[3]["fabric_command"]["command"], "sync_instance");
    assert_eq!(
        v[3]["options"],
        json!({"GENERATE_ENTITIES_FIRST": true, "MAX_FAILURES": "5%", "RETRY_DELAY": "90s"})
    );
}

#[test]
fn parse_reads_a_file_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.bsh");
    std::fs::write(&f, "BATCH_LIST; -- comment\nBATCH_INFO 'abc123'").unwrap();
    let out = Test::new()
        .arg("parse")
        .arg(f.to_str().unwrap())
        .status(0)
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["statement"], "BATCH_LIST");
    assert_eq!(v[1]["bid"], "abc123");

    let out = Test::new()
        .args(["parse", "-"])
        .stdin("SHOW LUS;\nEXIT")
        .status(0)
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["statement"], "SHOW_LUS");
    assert_eq!(v[1]["statement"], "EXIT");
}

#[test]
fn empty_input_and_comments_parse_to_an_empty_array() {
    assert_eq!(parse_json(""), json!([]));
    assert_eq!(parse_json("  -- nothing\n/* at all */ ;;"), json!([]));
}

#[test]
fn parse_error_goes_to_stderr_and_exits_1() {
    Test::new()
        .args(["parse", "BATCH_LSIT"])
        .status(1)
        .stdout("")
        .stderr_starts_with("error: unknown statement BATCH_LSIT\n")
        .run();
}

#[test]
fn what_is_not_built_yet_says_so_honestly() {
    // Every statement that parses runs: HELP marks none as not built.
    use batchsh::syntax::keywords::{STATEMENTS, is_built};
    for s in STATEMENTS {
        assert!(is_built(s.name), "{} is marked not built", s.name);
    }
    let help = Test::new()
        .args(["--format", "csv", "-c", "HELP"])
        .status(0)
        .run();
    assert!(!help.stdout.contains(",false,"), "{}", help.stdout);
    assert!(!help.stdout.contains("not built"), "{}", help.stdout);
    // Waiting on named series, the last to be built, runs: an empty store
    // has no series to wait for, and it says so, not "not implemented".
    Test::new()
        .args(["-c", "batch_wait name='etl.*'"])
        .status(1)
        .stdout("")
        .stderr(
            "error: no series matches NAME='etl.*': there is no series yet (WINDOW_OPEN or \
             WINDOW_SET makes one)
  --> line 1, column 12
   |
 1 | batch_wait name='etl.*'
   |            ^^^^^^^^^^^^
",
        )
        .run();
}

#[test]
fn a_script_with_a_parse_error_reports_it_before_anything() {
    // The error is in the second statement; nothing may run, and the error
    // (not "not implemented") is what the user sees.
    Test::new()
        .args(["-c", "BATCH_LIST; BATCH_LIST LIMT=5"])
        .status(1)
        .stderr_starts_with("error: unknown option LIMT\n")
        .run();
    Test::new()
        .arg("-")
        .stdin("SHOW LUS;\nSHOW LU")
        .status(1)
        .stderr_contains("--> line 2, column 6")
        .run();
}

#[test]
fn errors_in_a_script_file_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nightly.bsh");
    let fails_at = |text: &str, position: &str| {
        std::fs::write(&script, text).unwrap();
        let out = Test::new().arg(script.to_str().unwrap()).status(1).run();
        let want = format!("--> {}, {position}", script.display());
        assert!(out.stderr.contains(&want), "{}", out.stderr);
    };
    fails_at("SHOW LUS;\nSHOW LUZ;\n", "line 2, column 6");
    // A statement that fails as it runs, too.
    fails_at(
        "SHOW LUS;\nBATCH_INFO 'no-such-batch';\n",
        "line 2, column 12",
    );
}

#[test]
fn a_script_that_is_not_utf8_says_where_its_first_bad_byte_is() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("latin1.bsh");
    // "SHOW LUS;\n-- caf\xe9\n": Latin-1, not UTF-8.
    std::fs::write(&script, b"SHOW LUS;\n-- caf\xe9\n").unwrap();
    let out = Test::new().arg(script.to_str().unwrap()).status(1).run();
    assert!(
        out.stderr.contains("latin1.bsh")
            && out
                .stderr
                .contains("not UTF-8 text: invalid byte at line 2, column 7 (byte 16)"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    Test::new().arg("--no-such-flag").status(2).run();
    Test::new()
        .args(["--format", "xml", "parse", "EXIT"])
        .status(2)
        .stderr_contains("table")
        .run();
    Test::new().args(["parse"]).status(2).run();
    // A script file that is not there, or statements without -c.
    Test::new()
        .arg("no-such-script.bsh")
        .status(2)
        .stderr_starts_with(
            "error: no script file no-such-script.bsh: batchsh FILE runs a script file, batchsh -c 'STATEMENTS' runs statements",
        )
        .run();
    // A folder where the script file goes.
    let dir = tempfile::tempdir().unwrap();
    Test::new()
        .arg(dir.path().to_str().unwrap())
        .status(2)
        .stderr(format!(
            "error: {} is a folder, not a script file: batchsh FILE runs the statements in FILE\n",
            dir.path().display()
        ))
        .run();
}

#[test]
fn help_documents_the_flags_and_subcommands() {
    let out = Test::new().arg("--help").status(0).run();
    for flag in [
        "--home",
        "--store",
        "--format",
        "--quiet",
        "--no-progress",
        "--node",
        "--dc",
        "-c",
        "--keep-going",
        "parse",
        "worker",
        "completions",
        "man",
        "BATCHSH_HOME",
        "Exit codes",
        "143 stopped by SIGTERM",
    ] {
        assert!(
            out.stdout.contains(flag),
            "--help lacks {flag}:\n{}",
            out.stdout
        );
    }
    // `tick`, for cron, is listed with the rest.
    assert!(out.stdout.contains("tick"), "{}", out.stdout);
    let out = Test::new().args(["worker", "--help"]).run();
    assert!(out.stdout.contains("--until-idle") && out.stdout.contains("--workers"));
    let out = Test::new().arg("--version").status(0).run();
    assert!(out.stdout.starts_with("batchsh "));
}

#[test]
fn global_flags_work_after_the_subcommand() {
    Test::new()
        .args(["parse", "EXIT", "--format", "json", "-q"])
        .status(0)
        .run();
}

/// SPEC §1: global flags go before or after the subcommand.
#[test]
fn global_flags_work_before_the_subcommand() {
    let out = Test::new()
        .args(["--format", "json", "-q", "parse", "EXIT"])
        .status(0)
        .run();
    assert!(
        out.stdout.starts_with("[{\"statement\":\"EXIT\""),
        "{}",
        out.stdout
    );
    let home = tempfile::tempdir().unwrap();
    // A tick with nothing due prints nothing (cron mails what it prints).
    Test::new()
        .args(["--home", home.path().to_str().unwrap(), "tick"])
        .status(0)
        .stdout("")
        .stderr("")
        .run();
    // A flag's value that is a subcommand's name is the flag's value.
    Test::new()
        .args(["-c", "help"])
        .status(0)
        .stdout_contains("BATCH_LIST")
        .run();
    Test::new()
        .args([
            "--node",
            "worker",
            "--format",
            "json",
            "-c",
            "SHOW SETTINGS",
        ])
        .status(0)
        .run();
    // A script file or -c with a subcommand: one or the other.
    for first in [vec!["script.bsh"], vec!["-c", "SHOW LUS"]] {
        Test::new()
            .args(first.iter().copied())
            .args(["parse", "EXIT"])
            .status(2)
            .stderr_contains("cannot be used with the subcommand parse")
            .run();
    }
}

#[test]
fn parse_output_is_one_line_of_json() {
    let out = Test::new().args(["parse", "BATCH_LIST;\nBATCH_INFO"]).run();
    assert_eq!(out.stdout.lines().count(), 1);
}

#[test]
fn statements_may_start_with_a_comment_or_a_dash() {
    // A `-c` text or a `parse` input that starts with a `-- comment` is the
    // statements, not a flag (as in a crontab line that labels its job).
    Test::new()
        .args(["--format", "json", "-c", "-- nightly sync\nSHOW SETTINGS"])
        .status(0)
        .stdout_contains("\"format\":\"json\"")
        .run();
    let out = Test::new()
        .args(["parse", "-- labelled\nBATCH_LIST"])
        .status(0)
        .run();
    assert_eq!(parse_json_stdout(&out.stdout)[0]["statement"], "BATCH_LIST");
    // Any other text that starts with `-` is a statement error, not a
    // usage error: it names the text and its place.
    Test::new()
        .args(["-c", "-q"])
        .status(1)
        .stderr_contains("expected a statement, found -q")
        .run();
}

#[test]
fn the_format_ignores_case() {
    let out = Test::new()
        .env("BATCHSH_FORMAT", "JSON")
        .args(["-c", "SHOW SETTINGS"])
        .status(0)
        .run();
    assert!(out.stdout.starts_with('{'), "{}", out.stdout);
    let out = Test::new()
        .args(["--format", "Csv", "-c", "SHOW SETTINGS"])
        .status(0)
        .run();
    assert!(out.stdout.starts_with("key,value\n"), "{}", out.stdout);
}

fn parse_json_stdout(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// SPEC §1: `batchsh completions bash|zsh|fish` prints a script on stdout
/// that knows the subcommands, and touches no store.
#[test]
fn completions_print_a_script_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Test::new()
            .args(["completions", shell])
            .status(0)
            .stderr("")
            .stdout_contains("worker")
            .stdout_contains("format")
            .run();
        assert!(out.stdout.len() > 200, "{shell}: {}", out.stdout);
        assert!(!out.home.path().join("store.db").exists());
    }
}

/// Bad input: a shell batchsh has no script for is a usage error (exit 2)
/// that lists the valid ones, with nothing on stdout.
#[test]
fn completions_for_tcsh_are_a_usage_error_listing_the_shells() {
    Test::new()
        .args(["completions", "tcsh"])
        .status(2)
        .stdout("")
        .stderr_contains("invalid value 'tcsh'")
        .stderr_contains("[possible values: bash, zsh, fish]")
        .run();
    Test::new()
        .arg("completions")
        .status(2)
        .stderr_contains("<SHELL>")
        .run();
}

/// SPEC §1: `batchsh man` prints the man page in roff: a `.TH` title line
/// (after clap_mangen's two-line quote-string preamble), the subcommands
/// and the flags.
#[test]
fn man_prints_the_man_page_in_roff() {
    let out = Test::new()
        .arg("man")
        .status(0)
        .stderr("")
        .stdout_contains("\n.TH batchsh 1 ")
        .stdout_contains("worker")
        .stdout_contains("completions")
        .stdout_contains("\\-\\-home")
        .run();
    let first_macro = out
        .stdout
        .lines()
        .find(|l| l.starts_with(".TH") || l.starts_with(".SH"))
        .unwrap_or("");
    assert!(first_macro.starts_with(".TH batchsh 1"), "{}", out.stdout);
    assert!(out.stdout.contains("tick"), "{}", out.stdout);
}

/// `--echo` (`-e`) prints each statement of a script, as written and
/// ended by `;`, before its result (as `psql -e`); without it, nothing.
#[test]
fn echo_prints_each_statement_before_its_result() {
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("s.bsh");
    std::fs::write(
        &script,
        "SET TIMING off;\nSHOW\n  INTERFACES;\n-- a comment\nSHOW LUS",
    )
    .unwrap();
    let h = home.path().join("h");
    let out = Test::new()
        .args(["--home", h.to_str().unwrap(), "--echo"])
        .arg(script.to_str().unwrap())
        .status(0)
        .stderr("")
        .run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "SET TIMING off;", "{}", out.stdout);
    // As written: over two lines.
    let shown = lines
        .iter()
        .position(|l| *l == "SHOW")
        .expect("SHOW INTERFACES echoed");
    assert_eq!(lines[shown + 1], "  INTERFACES;", "{}", out.stdout);
    let lus = lines
        .iter()
        .position(|l| *l == "SHOW LUS;")
        .expect("SHOW LUS echoed");
    assert!(
        lus > shown + 2,
        "each before its own result:\n{}",
        out.stdout
    );
    let quiet = Test::new()
        .args(["--home", h.to_str().unwrap(), "-c", "SHOW LUS"])
        .status(0)
        .run();
    assert!(!quiet.stdout.contains("SHOW LUS"), "{}", quiet.stdout);
}

/// With `--format json` or `csv`, `--echo` prints the statements on
/// stderr: stdout stays the documents a reader parses
/// (`batchsh -e --format json s.bsh | jq .`); a `SET FORMAT` in the
/// script moves the echo of the statements after it.
#[test]
fn echo_goes_to_stderr_with_json_and_csv() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().join("h");
    let out = Test::new()
        .args(["--home", h.to_str().unwrap(), "-e", "--format", "json"])
        .args(["-c", "SHOW INTERFACES; SHOW LUS"])
        .status(0)
        .stderr("SHOW INTERFACES;\nSHOW LUS;\n")
        .run();
    for line in out.stdout.lines() {
        let doc: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(doc.is_array(), "{line}");
    }
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    let out = Test::new()
        .args(["--home", h.to_str().unwrap(), "-e"])
        .args(["-c", "SET FORMAT csv; SHOW LUS"])
        .status(0)
        .stdout_lacks("SHOW LUS")
        .stderr("SHOW LUS;\n")
        .run();
    assert!(
        out.stdout.starts_with("SET FORMAT csv;\n"),
        "{}",
        out.stdout
    );
}

/// A usage error (clap's, exit 2) with `--format json`, in any of its
/// forms, is also one JSON object on stderr, after clap's text, as every
/// error is (SPEC §10); without it, clap's text alone.
#[test]
fn usage_errors_are_json_too_with_format_json() {
    for args in [
        &["--format", "json", "--bogus"][..],
        &["--format=JSON", "--bogus"],
        &["--bogus", "-c", "SHOW LUS", "--format", "json"],
    ] {
        let out = Test::new()
            .args(args.iter().copied())
            .status(2)
            .stdout("")
            .run();
        assert!(
            out.stderr
                .starts_with("error: unexpected argument '--bogus' found\n"),
            "{args:?}: {}",
            out.stderr
        );
        let last = out.stderr.lines().last().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(last).unwrap(),
            serde_json::json!({"error": "unexpected argument '--bogus' found", "bid": null}),
            "{args:?}"
        );
    }
    let env = Test::new()
        .env("BATCHSH_FORMAT", "json")
        .arg("--bogus")
        .status(2)
        .run();
    assert!(env.stderr.ends_with("\"bid\":null}\n"), "{}", env.stderr);
    for args in [&["--bogus"][..], &["-c", "--format json", "--bogus"]] {
        let out = Test::new().args(args.iter().copied()).status(2).run();
        assert!(
            !out.stderr.contains("\"error\""),
            "{args:?}: {}",
            out.stderr
        );
    }
}
