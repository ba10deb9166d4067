//! `pipe` (SPEC §5): one long-running process per worker thread, the ids
//! on its stdin and one line back per id, through the real binary: its
//! results, the bad inputs of its issue (a program that hangs, answers two
//! lines, writes no newline, exits at start-up, writes bytes that are not
//! UTF-8, does not exist), no process left behind however the batch ends,
//! crash safety, a background worker, and the Python example.

use crate::world::{World, completed_ids, eventually, kill_9_after, result_row, signal};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Writes the shell script `name` in the world's folder (where its
/// batches run): each start of it appends its pid to `starts.txt`.
fn script(w: &World, name: &str, body: &str) {
    std::fs::write(
        w.path().join(name),
        format!("echo $$ >> starts.txt\n{body}\n"),
    )
    .unwrap();
}

/// The pids of the script's starts.
fn starts(w: &World) -> Vec<i32> {
    std::fs::read_to_string(w.path().join("starts.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Whether process `pid` has ended, within a few seconds (a zombie that
/// nobody reaps counts: it runs nothing).
fn gone(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let ended = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z')),
        };
        if ended || Instant::now() > until {
            return ended;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[track_caller]
fn assert_all_gone(pids: &[i32]) {
    assert!(!pids.is_empty(), "no process started");
    for &pid in pids {
        assert!(gone(pid), "process {pid} outlived its batch");
    }
}

/// The last batch's entities: id -> (status, error, result).
fn entities(w: &World) -> std::collections::BTreeMap<String, (String, Value, Value)> {
    let out = w.test("BATCH_DETAILS LIMIT=-1").status(0).run();
    let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    rows.into_iter()
        .map(|r| {
            (
                r["entity_id"].as_str().unwrap().to_string(),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["error"].clone(),
                    r["results"].clone(),
                ),
            )
        })
        .collect()
}

const ANSWER: &str = r#"while read -r id; do printf '{"id": "%s", "bid": "%s", "entity": "%s"}\n' "$id" "$BID" "${ENTITY_ID-none}"; done"#;

#[test]
fn each_entity_gets_one_line_from_one_process_per_worker() {
    let w = World::new(500);
    script(&w, "answer.sh", ANSWER);
    let out = w
        .test(
            "BATCH Customer FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
             WITH MAX_WORKERS_PER_NODE=2 ENTITY_TIMEOUT='1m'",
        )
        .status(0)
        .stderr_lacks("warning")
        .run();
    let row = result_row(&out.stdout);
    assert_eq!(
        (&row["execution_succeeded"], &row["total"]),
        (&500.into(), &500.into())
    );
    let bid = row["batch_id"].as_str().unwrap();
    let all = entities(&w);
    assert_eq!(all.len(), 500);
    for (id, (status, _, result)) in &all {
        assert_eq!(status, "COMPLETED");
        assert_eq!(result, &json!({"id": id, "bid": bid, "entity": "none"}));
    }
    let pids = starts(&w);
    assert!(pids.len() <= 2, "one process per worker: {pids:?}");
    assert_all_gone(&pids);
}

/// A line that is not a JSON object is `{"line": ...}`; `{"error": ...}`
/// fails its entity with that text, the object kept as its result.
#[test]
fn plain_lines_and_error_objects() {
    let w = World::new(0);
    script(
        &w,
        "answer.sh",
        r#"while read -r id; do case $id in
            bad) echo '{"error": "no such customer", "code": 4}' ;;
            *) echo "seen $id" ;;
        esac; done"#,
    );
    w.test(
        "BATCH Lines.('a', 'bad', '7') FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH ENTITY_TIMEOUT='1m'",
    )
    .status(3)
    .run();
    let all = entities(&w);
    assert_eq!(
        all["a"],
        ("COMPLETED".into(), Value::Null, json!({"line": "seen a"}))
    );
    assert_eq!(
        all["7"],
        ("COMPLETED".into(), Value::Null, json!({"line": "seen 7"}))
    );
    assert_eq!(
        all["bad"],
        (
            "FAILED".into(),
            json!("no such customer"),
            json!({"error": "no such customer", "code": 4})
        )
    );
    // BATCH_OUTPUT gives each entity's answer line, in input order.
    let out = w.test("BATCH_OUTPUT").status(0).run();
    let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r["stdout"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "seen a",
            r#"{"error":"no such customer","code":4}"#,
            "seen 7"
        ]
    );
}

/// `?` has no place in a pipe, and a program that cannot be found is
/// refused before anything is stored (every entity would fail).
#[test]
fn a_placeholder_or_a_missing_program_is_refused_and_stores_nothing() {
    let w = World::new(3);
    w.refused(
        "BATCH Customer FABRIC_COMMAND=\"pipe 'cat' ?\"",
        "pipe takes no ? and no :parameter: it writes each entity id to the program's stdin",
    );
    w.refused(
        "BATCH Customer FABRIC_COMMAND=\"pipe 'batchsh-no-such-program' 'x'\"",
        "pipe cannot start its program: no program named batchsh-no-such-program in PATH",
    );
    w.refused(
        "BATCH Customer FABRIC_COMMAND=\"pipe './worker.sh'\"",
        "pipe cannot start its program: ./worker.sh (from ",
    );
    std::fs::write(w.path().join("worker.sh"), "cat\n").unwrap();
    let out = w.refused(
        "BATCH Customer FABRIC_COMMAND=\"pipe './worker.sh'\"",
        "pipe cannot start its program: ./worker.sh (from ",
    );
    assert!(
        out.stderr.contains("is not executable (chmod +x it)"),
        "{}",
        out.stderr
    );
    // A stdin batch is refused before its ids are read.
    w.test("BATCH Ids FROM STDIN FABRIC_COMMAND=\"pipe 'batchsh-no-such-program'\"")
        .stdin("1\n2\n")
        .status(1)
        .run();
    assert_eq!(w.batch_count(), 0);
}

/// Without ENTITY_TIMEOUT a program that stops answering holds its worker:
/// stderr says so once, at the start.
#[test]
fn without_entity_timeout_stderr_warns_once() {
    let w = World::new(5);
    let out = w
        .test("BATCH Customer FABRIC_COMMAND=\"pipe 'cat'\" WITH MAX_WORKERS_PER_NODE=2")
        .status(0)
        .run();
    let warning = "warning: pipe without ENTITY_TIMEOUT: a program that stops answering holds \
                   its worker thread";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
    w.test(
        "BATCH Customer FABRIC_COMMAND=\"pipe 'cat'\" WITH ALLOW_MULTIPLE=true ENTITY_TIMEOUT='5s'",
    )
    .status(0)
    .stderr_lacks("warning")
    .run();
    w.test("BATCH Customer FABRIC_COMMAND=\"pipe 'cat'\" WITH ALLOW_MULTIPLE=true")
        .arg("--quiet")
        .status(0)
        .stderr_lacks("warning")
        .run();
}

/// A program that never answers: ENTITY_TIMEOUT fails that entity and
/// kills the process, and a new one answers the next.
#[test]
fn a_program_that_never_answers_is_killed_at_entity_timeout_and_started_again() {
    let w = World::new(0);
    script(
        &w,
        "answer.sh",
        r#"while read -r id; do if [ "$id" = stuck ]; then sleep 600; fi; echo "$id"; done"#,
    );
    w.test(
        "BATCH Hang.('1', 'stuck', '2') FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH MAX_WORKERS_PER_NODE=1 ENTITY_TIMEOUT='300ms'",
    )
    .status(3)
    .run();
    let all = entities(&w);
    assert_eq!(all["stuck"].1, json!("timed out after 300ms"));
    assert_eq!(all["1"].2, json!({"line": "1"}));
    assert_eq!(all["2"].2, json!({"line": "2"}));
    let pids = starts(&w);
    assert_eq!(pids.len(), 2, "started again after the timeout");
    assert_all_gone(&pids);
}

/// Two lines for one id: the extra line belongs to nobody. The process is
/// out of step: that entity fails and a new process answers the others,
/// each its own line.
#[test]
fn two_lines_for_one_id_fail_it_out_of_step_and_the_others_keep_their_answers() {
    let w = World::new(0);
    script(
        &w,
        "answer.sh",
        r#"while read -r id; do if [ "$id" = twice ]; then printf '%s\n%s\n' "$id" "$id"; else echo "$id"; fi; done"#,
    );
    w.test(
        "BATCH Twice.('1', 'twice', '2', '3') FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH MAX_WORKERS_PER_NODE=1 ENTITY_TIMEOUT='1m'",
    )
    .status(3)
    .run();
    let all = entities(&w);
    assert_eq!(all["twice"].0, "FAILED");
    assert!(
        all["twice"]
            .1
            .as_str()
            .unwrap()
            .starts_with("the pipe program wrote more than one line for this id (out of step)"),
        "{:?}",
        all["twice"]
    );
    for id in ["1", "2", "3"] {
        assert_eq!(all[id].2, json!({ "line": id }), "{id}");
    }
    assert_eq!(starts(&w).len(), 2);
}

/// A program that writes no newline and exits: the entity fails, its
/// partial answer and exit code kept; the next entity gets a new process.
#[test]
fn no_newline_then_exit_fails_the_entity_with_what_it_wrote() {
    let w = World::new(0);
    script(&w, "answer.sh", "read -r id; printf 'no newline'; exit 0");
    w.test(
        "BATCH Cut.('1', '2') FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH MAX_WORKERS_PER_NODE=1 ENTITY_TIMEOUT='1m'",
    )
    .status(3)
    .run();
    for (_, (status, error, result)) in entities(&w) {
        assert_eq!(status, "FAILED");
        assert_eq!(
            error,
            json!(
                "the pipe program ended (exit code 0) before answering, after writing 10 bytes \
                 with no newline"
            )
        );
        assert_eq!(
            result,
            json!({"exit": 0, "stdout": "no newline", "stderr": ""})
        );
    }
    assert_eq!(starts(&w).len(), 2);
}

/// A program that exits at start-up: every entity fails with its stderr,
/// and batchsh does not spin starting it (it rests after a failed start,
/// entities failing at once meanwhile).
#[test]
fn a_program_that_exits_at_start_up_fails_every_entity_without_spinning() {
    let w = World::new(2_000);
    script(
        &w,
        "answer.sh",
        "echo 'ImportError: no module named nope' >&2; exit 1",
    );
    let t = Instant::now();
    w.test(
        "BATCH Customer FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH MAX_WORKERS_PER_NODE=2 ENTITY_TIMEOUT='1m'",
    )
    .status(3)
    .run();
    let all = entities(&w);
    assert_eq!(all.len(), 2_000);
    for (status, error, result) in all.values() {
        assert_eq!(status, "FAILED");
        let error = error.as_str().unwrap();
        assert!(
            error.starts_with(
                "the pipe program ended at start-up, before reading an id (exit code 1): \
                 ImportError: no module named nope; not started again for "
            ),
            "{error}"
        );
        assert_eq!(
            result,
            &json!({"stderr": "ImportError: no module named nope\n"})
        );
    }
    // Two workers, each resting a second, then 2, 4... after a failed
    // start: a handful of starts however long the batch took.
    let bound = 2 * (1 + (t.elapsed().as_secs_f64() + 1.0).log2().ceil() as usize);
    assert!(
        starts(&w).len() <= bound,
        "{} starts in {:?}",
        starts(&w).len(),
        t.elapsed()
    );
}

/// A line that is not UTF-8 fails its entity with a clear error; its text,
/// made valid, is kept; the process stays in step (not started again).
#[test]
fn an_answer_that_is_not_utf8_fails_its_entity_clearly() {
    let w = World::new(0);
    script(
        &w,
        "answer.sh",
        r#"while read -r id; do if [ "$id" = latin ]; then printf 'caf\351\n'; else echo "$id"; fi; done"#,
    );
    w.test(
        "BATCH Text.('latin', 'ok') FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH MAX_WORKERS_PER_NODE=1 ENTITY_TIMEOUT='1m'",
    )
    .status(3)
    .run();
    let all = entities(&w);
    assert_eq!(
        all["latin"],
        (
            "FAILED".into(),
            json!(
                "the pipe program's answer is not valid UTF-8 (byte 3): it must write UTF-8 \
                 text (or JSON, whose \\u escapes hold any character)"
            ),
            json!({"line": "caf\u{FFFD}"})
        )
    );
    assert_eq!(all["ok"].2, json!({"line": "ok"}));
    assert_eq!(starts(&w).len(), 1);
}

/// A program that stays after its stdin ends (and its child) is killed
/// with its process group once the batch ends: nothing outlives batchsh.
#[test]
fn nothing_outlives_a_batch_that_ends() {
    let w = World::new(50);
    script(
        &w,
        "answer.sh",
        r#"trap '' TERM HUP; while read -r id; do echo "$id"; done; sleep 600 & echo $! >> starts.txt; wait"#,
    );
    w.test(
        "BATCH Customer FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH MAX_WORKERS_PER_NODE=2 ENTITY_TIMEOUT='1m'",
    )
    .status(0)
    .run();
    // The pids are there before batchsh exits: each child wrote its own
    // once its parent's stdin had closed.
    assert_all_gone(&starts(&w));
}

/// A cancelled batch, and one stopped by SIGTERM: their pipe processes end
/// with them.
#[test]
fn nothing_outlives_a_batch_cancelled_or_stopped() {
    for how in ["BATCH_CANCEL", "-TERM"] {
        let w = World::new(2_000);
        script(
            &w,
            "answer.sh",
            r#"while read -r id; do sleep 0.005; echo "$id"; done"#,
        );
        let child = w.spawn(
            "BATCH Customer FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
             WITH MAX_WORKERS_PER_NODE=2 ENTITY_TIMEOUT='1m'",
        );
        w.wait_until_running();
        eventually("a pipe process to start", || !starts(&w).is_empty());
        let bid = w.last_bid();
        if how == "BATCH_CANCEL" {
            w.test(&format!("BATCH_CANCEL '{bid}'")).status(0).run();
        } else {
            signal(&child, how);
        }
        let out = child.wait_with_output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{how}");
        assert_ne!(w.status(&bid), "DONE", "{how}");
        assert_all_gone(&starts(&w));
    }
}

/// SPEC §7 with pipe: after kill -9 of batchsh, its pipe processes see
/// their stdin end and leave (they block nothing either way); BATCH_RETRY
/// finishes the batch and no entity COMPLETED before the kill runs again.
#[test]
fn kill_9_leaves_no_pipe_process_and_the_retry_reruns_no_completed_entity() {
    let w = World::new(400);
    script(
        &w,
        "answer.sh",
        r#"while read -r id; do echo "$id" >> ran.txt; sleep 0.005; echo "$id"; done"#,
    );
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH MAX_WORKERS_PER_NODE=2 ENTITY_TIMEOUT='1m'",
    );
    kill_9_after(&w, child, 40);
    let bid = w.last_bid();
    assert_ne!(w.status(&bid), "DONE");
    let before = starts(&w);
    assert_all_gone(&before);
    let completed_before = completed_ids(&w, &bid);
    assert!(!completed_before.is_empty());
    w.retry_to_done(&bid);
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        400
    );
    crate::world::assert_none_lost_none_rerun(&w, 400, &completed_before);
    assert_all_gone(&starts(&w));
}

/// A background worker runs a pipe batch as the statement's own process
/// would, and its pipe processes end with the batch.
#[test]
fn a_background_worker_runs_a_pipe_batch() {
    let w = World::new(300);
    script(&w, "answer.sh", ANSWER);
    w.test(
        "BATCH Customer FABRIC_COMMAND=\"pipe 'sh' 'answer.sh'\" \
         WITH ASYNC=true ENTITY_TIMEOUT='1m'",
    )
    .env("BATCHSH_TEST_NO_BACKGROUND_WORKER", "1")
    .status(0)
    .run();
    let bid = w.last_bid();
    let worker = crate::workers::worker(&w, "w1", &[]);
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    crate::workers::exits_0(worker);
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        300
    );
    assert_all_gone(&starts(&w));
}

/// The example of `examples/`: pipe.bsh runs worker.py, one Python
/// process per worker thread, over the 300 customers of its data.
#[test]
fn the_python_example_runs() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: python3 is not installed, and examples/pipe.bsh needs it");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pipe.bsh");
    let out = crate::common::Test::new()
        .current_dir(home.path())
        .args(["--home", home.path().to_str().unwrap(), "--format", "json"])
        .arg(script.to_str().unwrap())
        .status(0)
        .stderr_lacks("warning")
        .run();
    let docs: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = docs
        .iter()
        .find(|d| d[0].get("execution_succeeded").is_some())
        .expect("the batch's row");
    assert_eq!(
        (&row[0]["execution_succeeded"], &row[0]["total"]),
        (&300.into(), &300.into())
    );
    let details = docs.last().unwrap().as_array().unwrap();
    assert_eq!(details.len(), 5);
    assert_eq!(
        details[0]["results"],
        json!({"customer": "1", "name": "Kai Brown", "orders": 4, "spent": 982.73,
               "tier": "silver", "fits": "gold"})
    );
}
