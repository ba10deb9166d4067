//! Every entity's own output: `BATCH_OUTPUT` (SPEC §6), the columns
//! `BATCH_DETAILS` adds for it, and `SHOW_OUTPUT`, which streams it while
//! a synchronous batch runs.

use crate::common::Test;
use crate::world::World;
use serde_json::{Value, json};

/// A run of `script` on the world's store in the table format (the
/// world's own runs print JSON): what a user and a pipeline see.
fn plain(w: &World, script: &str) -> Test {
    Test::new()
        .current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "-c", script])
}

/// Three entities listed out of order, whose commands end in the reverse
/// of that order (the first waits for the last one's file): the output
/// must follow the input, not the ends nor the ids. Entity 2 writes no
/// final newline and fails; `9` writes to stderr only.
const OUT_OF_ORDER: &str = "BATCH Export.('3', '9', '2') \
    FABRIC_COMMAND=$$shell 'case ? in \
      3) while [ ! -e ended-2 ]; do sleep 0.01; done; printf \"three\\nlines\\nhere\\n\";; \
      9) echo \"nine to stderr\" >&2;; \
      2) printf \"two, no newline\"; touch ended-2; exit 4;; \
    esac'$$ WITH MAX_WORKERS_PER_NODE=3 ENTITY_TIMEOUT='60s'";

#[test]
fn batch_output_prints_each_entitys_stdout_raw_in_input_order() {
    let w = World::new(0);
    plain(&w, OUT_OF_ORDER).status(3).run();
    let bid = w.last_bid();
    // A new session: the newest batch, said on stderr. Raw text, no
    // table; the text with no final newline gets one.
    plain(&w, "BATCH_OUTPUT")
        .status(0)
        .stdout("three\nlines\nhere\ntwo, no newline\n")
        .stderr_contains(format!(
            "note: no batch in this session yet; BATCH_OUTPUT is about the newest batch, {}",
            &bid[..8]
        ))
        .run();
    // A prefix bid; STREAM='stderr'; STATUS and ENTITIES select.
    plain(&w, &format!("BATCH_OUTPUT '{}' STREAM='stderr'", &bid[..8]))
        .status(0)
        .stdout("nine to stderr\n")
        .stderr("")
        .run();
    plain(&w, &format!("BATCH_OUTPUT '{bid}' STATUS='FAILED'"))
        .status(0)
        .stdout("two, no newline\n")
        .run();
    plain(&w, &format!("BATCH_OUTPUT '{bid}' ENTITIES='2, 3'"))
        .status(0)
        .stdout("three\nlines\nhere\ntwo, no newline\n")
        .run();
    // --quiet keeps the data asked for and drops the note.
    plain(&w, "BATCH_OUTPUT ENTITIES='9'")
        .arg("--quiet")
        .status(0)
        .stdout("")
        .stderr("")
        .run();
}

/// JSON and CSV keep each entity's text apart, exactly as stored, with
/// null for an entity that has no such stream.
#[test]
fn batch_output_in_json_and_csv_is_one_record_per_entity() {
    let w = World::new(0);
    plain(&w, OUT_OF_ORDER).status(3).run();
    w.test("BATCH_OUTPUT")
        .status(0)
        .stdout_json(json!([
            {"entity_id": "3", "stdout": "three\nlines\nhere\n", "truncated": false},
            {"entity_id": "9", "stdout": "", "truncated": false},
            {"entity_id": "2", "stdout": "two, no newline", "truncated": false},
        ]))
        .run();
    plain(&w, "BATCH_OUTPUT STREAM='STDERR' ENTITIES='9,2'")
        .args(["--format", "csv"])
        .status(0)
        .stdout("entity_id,stderr,truncated\n9,\"nine to stderr\n\",false\n2,,false\n")
        .run();
    // Commands without a stdout (echo): nothing raw, null in JSON.
    w.test("BATCH Echo.('a', 'b') FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    plain(&w, "BATCH_OUTPUT").status(0).stdout("").run();
    let out = w.test("BATCH_OUTPUT").status(0).run();
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        rows,
        json!([
            {"entity_id": "a", "stdout": null, "truncated": null},
            {"entity_id": "b", "stdout": null, "truncated": null},
        ])
    );
}

/// What OUTPUT_LIMIT cut is what BATCH_OUTPUT prints; stderr and JSON
/// say so.
#[test]
fn batch_output_prints_what_output_limit_kept() {
    let w = World::new(0);
    w.test("BATCH Y.('1') FABRIC_COMMAND=\"shell 'yes ? | head -n 100'\" WITH OUTPUT_LIMIT='6'")
        .status(0)
        .run();
    plain(&w, "BATCH_OUTPUT")
        .status(0)
        .stdout("1\n1\n1\n")
        .stderr_contains(
            "note: the output of 1 entity was cut at the batch's OUTPUT_LIMIT when it was \
             stored; what was kept is printed\n",
        )
        .run();
    plain(&w, "BATCH_OUTPUT")
        .arg("-q")
        .status(0)
        .stdout("1\n1\n1\n")
        .stderr("")
        .run();
    w.test("BATCH_OUTPUT")
        .status(0)
        .stdout_json(json!([{"entity_id": "1", "stdout": "1\n1\n1\n", "truncated": true}]))
        .run();
}

/// A script's pipeline reads BATCH_OUTPUT (SPEC §6's own example).
#[test]
fn batch_output_feeds_a_pipeline() {
    let w = World::new(0);
    w.test("BATCH Z.('b', 'c', 'a') FABRIC_COMMAND=\"shell 'echo line-?; echo ?-again'\"")
        .status(0)
        .run();
    let bid = w.last_bid();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "\"$BATCHSH\" --home \"$HOME_DIR\" -c \"BATCH_OUTPUT '{}'\" | sort",
            &bid[..8]
        ))
        .env("BATCHSH", env!("CARGO_BIN_EXE_batchsh"))
        .env("HOME_DIR", w.home())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "a-again\nb-again\nc-again\nline-a\nline-b\nline-c\n"
    );
}

/// Bad input is refused with what, where and what would be right; the
/// store is not touched.
#[test]
fn batch_output_refuses_bad_options_and_unknown_bids() {
    let w = World::new(0);
    w.test("BATCH E.('1') FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let before = w.batch_count();
    plain(&w, "BATCH_OUTPUT STREAM='stdin'")
        .status(1)
        .stdout("")
        .stderr_starts_with("error: invalid value for STREAM: 'stdin'")
        .stderr_contains("expected one of STDOUT, STDERR")
        .run();
    plain(&w, "BATCH_OUTPUT STATUS='DONE'")
        .status(1)
        .stderr_starts_with("error: invalid value for STATUS: 'DONE'")
        .stderr_contains("WAITING, IN_PROCESS, COMPLETED, FAILED, CANCELLED")
        .run();
    plain(&w, "BATCH_OUTPUT 'feedface'")
        .status(1)
        .stdout("")
        .stderr_starts_with("error: no batch with id 'feedface'")
        .run();
    plain(&w, "BATCH_OUTPUT STREEM='stderr'")
        .status(1)
        .stderr_contains("did you mean STREAM?")
        .run();
    assert_eq!(w.batch_count(), before);
}

/// The examples HELP BATCH_OUTPUT shows run on a store with a batch.
#[test]
fn help_batch_output_examples_run() {
    let w = World::new(2);
    w.test("BATCH Customer FABRIC_COMMAND=\"shell 'echo ?'\"")
        .status(0)
        .run();
    let examples: Vec<(String, String)> =
        crate::common::grammar_examples(batchsh::syntax::grammar::TEXT)
            .into_iter()
            .filter(|(section, _)| section == "BATCH_OUTPUT")
            .collect();
    assert_eq!(examples.len(), 3, "{examples:?}");
    for (_, ex) in examples {
        w.test(&ex).status(0).run();
    }
    plain(&w, "HELP BATCH_OUTPUT")
        .status(0)
        .stdout_contains("Examples:\n    BATCH_OUTPUT;\n")
        .run();
}

/// BATCH_DETAILS adds, after the spec's columns, each entity's start
/// time, exit code (null for a command without one) and the command as
/// run for it.
#[test]
fn batch_details_shows_start_time_exit_code_and_the_command_as_run() {
    let w = World::new(0);
    w.test("BATCH X.('0', '2', 'it''s') FABRIC_COMMAND=$$exec 'sh' '-c' 'exit \"$1\"' 'sh' ?$$")
        .status(3)
        .run();
    let out = w.test("BATCH_DETAILS").status(0).run();
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "entity_id",
            "node_id",
            "status",
            "attempts",
            "process_time_ms",
            "error",
            "results",
            "start_time",
            "exit_code",
            "command"
        ]
    );
    let exits: Vec<&Value> = rows.iter().map(|r| &r["exit_code"]).collect();
    assert_eq!(exits, [&json!(0), &json!(2), &json!(2)]);
    assert_eq!(
        rows[2]["command"],
        "exec 'sh' '-c' 'exit \"$1\"' 'sh' 'it''s'"
    );
    for r in &rows {
        let start = r["start_time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(start).is_ok(),
            "{start}"
        );
    }
    // A command without an exit code: null; a shell command shows its
    // text as written and the id after it.
    w.test("BATCH E.('a') FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let out = w.test("BATCH_DETAILS").status(0).run();
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["exit_code"], Value::Null);
    assert_eq!(rows[0]["command"], "echo 'a'");
    plain(&w, "BATCH S.('1') FABRIC_COMMAND=\"shell 'exit 0 # ?'\"")
        .status(0)
        .run();
    plain(&w, "BATCH_DETAILS")
        .status(0)
        .stdout_contains("| Start time ")
        .stdout_contains("| Exit code | Command ")
        .stdout_contains("| shell 'exit 0 # ?' -- ? = '1' |")
        .run();
}

/// SHOW_OUTPUT=true prints each line as the entity's process writes it,
/// tagged with the entity id, while the entity still runs: here the
/// entity cannot end before the test, having read its first line, opens
/// the gate. (Were lines printed only at the entity's end, the first one
/// would never come before the gate, and ENTITY_TIMEOUT would fail the
/// entity: the test fails, it does not hang.)
#[test]
fn show_output_streams_each_line_while_the_entity_runs() {
    use std::io::{BufRead, BufReader};
    let w = World::new(0);
    let gate = w.path().join("gate");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"))
        .current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "-c"])
        .arg(
            "BATCH G.('7') FABRIC_COMMAND=$$shell 'echo first ?; echo to stderr >&2; \
             while [ ! -e gate ]; do sleep 0.01; done; printf \"second ?\"'$$ \
             WITH SHOW_OUTPUT=true ENTITY_TIMEOUT='30s'",
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "7\tfirst 7\n");
    assert!(!gate.exists());
    assert!(child.try_wait().unwrap().is_none(), "the batch still runs");
    std::fs::write(&gate, "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}{stderr}");
    // The last line, with no newline, is shown at the end of the stream;
    // then the result row.
    assert!(rest.starts_with("7\tsecond 7\n| Batch id "), "{rest}");
    assert_eq!(stderr, "7\tto stderr\n");
    // What is stored is what the entity wrote, as without SHOW_OUTPUT.
    plain(&w, "BATCH_OUTPUT")
        .status(0)
        .stdout("first 7\nsecond 7\n")
        .run();
}

/// With --format json the lines go to stderr, so stdout is one JSON
/// document; OUTPUT_LIMIT still cuts what is stored, not what is shown.
#[test]
fn show_output_keeps_json_stdout_parseable_and_output_limit_for_the_store() {
    let w = World::new(0);
    let out = w
        .test(
            "BATCH H.('1', '2') FABRIC_COMMAND=\"shell 'echo line-one-?; echo line-two-?'\" \
             WITH SHOW_OUTPUT=true OUTPUT_LIMIT='4'",
        )
        .status(0)
        .run();
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["total"], 2);
    let mut shown: Vec<&str> = out.stderr.lines().collect();
    shown.sort_unstable();
    assert_eq!(
        shown,
        [
            "1\tline-one-1",
            "1\tline-two-1",
            "2\tline-one-2",
            "2\tline-two-2"
        ]
    );
    plain(&w, "BATCH_OUTPUT")
        .status(0)
        .stdout("line\nline\n")
        .run();
    // Without the option nothing is shown; EXPLAIN and BATCH_INFO show it.
    let out = w
        .test("BATCH H.('3') FABRIC_COMMAND=\"shell 'echo ?'\"")
        .status(0)
        .stderr("")
        .run();
    assert!(!out.stdout.contains("\t"));
    plain(
        &w,
        "EXPLAIN BATCH H.('1') FABRIC_COMMAND='echo ?' WITH SHOW_OUTPUT=true",
    )
    .status(0)
    .stdout_contains("| Option SHOW_OUTPUT ")
    .run();
    let info = w.test("BATCH_INFO").status(0).run();
    let info: Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["option_show_output"], false, "{info}");
}

/// SHOW_OUTPUT needs a terminal that watches the run: an asynchronous
/// batch is refused, and nothing is stored.
#[test]
fn show_output_is_refused_on_an_asynchronous_batch() {
    let w = World::new(0);
    let before = w.batch_count();
    for with in ["ASYNC=true SHOW_OUTPUT=true", "SHOW_OUTPUT=true OPEN=true"] {
        plain(
            &w,
            &format!("BATCH A.('1') FABRIC_COMMAND='echo ?' WITH {with}"),
        )
        .status(1)
        .stderr_starts_with(
            "error: SHOW_OUTPUT=true prints the entities' lines while a batch runs here",
        )
        .stderr_contains("read them with BATCH_OUTPUT")
        .run();
    }
    assert_eq!(w.batch_count(), before);
}
