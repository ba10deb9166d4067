//! How a batch and its script end: failed entities, retries, MAX_FAILURES,
//! exit codes, and the statements after a failure.

use crate::common::Test;
use crate::world::{World, result_row};
use serde_json::Value;
use std::path::Path;

#[test]
fn failed_entities_make_exit_code_3_and_keep_their_error() {
    let w = World::new(10);
    // Ids ending in 3, 6 or 9 fail.
    let out = w
        .test("BATCH Customer FABRIC_COMMAND=\"shell 'case ? in *[369]) exit 1;; esac'\"")
        .status(3)
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(r["execution_failed"], 3);
    assert_eq!(r["execution_succeeded"], 7);
    let bid = r["batch_id"].as_str().unwrap();
    assert_eq!(w.status(bid), "DONE");
    let err: String = w
        .sqlite()
        .query_row(
            "SELECT error FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '3'",
            [bid],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.starts_with("exit code 1"), "{err}");
    w.assert_counters_add_up(bid);
}

#[test]
fn retries_run_a_failed_entity_again_until_it_succeeds() {
    let w = World::new(0);
    // Fails on the first attempt of each id, succeeds on the second.
    let out = w
        .test(
            "BATCH Customer.('a', 'b') FABRIC_COMMAND=\"shell 'f=tries-?; if [ -e $f ]; then exit 0; fi; touch $f; exit 1'\"
         WITH MAX_RETRIES=2 RETRY_DELAY='10ms'",
        )
        .status(0)
        .run();
    let bid = result_row(&out.stdout)["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let attempts = w.query_i64(
        "SELECT sum(attempts) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
        &bid,
    );
    assert_eq!(attempts, 4);
    w.assert_counters_add_up(&bid);
}

#[test]
fn max_failures_stops_the_batch_as_failed() {
    let w = World::new(200);
    let out = w
        .test(
            "BATCH Customer FABRIC_COMMAND=\"shell 'exit 1 # ?'\" WITH MAX_FAILURES=5 MAX_WORKERS_PER_NODE=1",
        )
        .status(1)
        .run();
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    // The 6th failure stops it; the one worker may have started a 7th.
    let failed = w.query_i64("SELECT failed FROM batches WHERE bid = ?1", &bid);
    assert!((6..=7).contains(&failed), "failed = {failed}");
    let error = w.error(&bid);
    assert!(error.contains("MAX_FAILURES=5"), "{error}");
    w.assert_counters_add_up(&bid);
    assert!(
        out.stderr
            .contains("ended FAILED: more entities failed than MAX_FAILURES=5"),
        "{}",
        out.stderr
    );
}

/// A share is of the batch's entities as far as they are known, not of
/// the few stored when the first entities fail: with a third of 300
/// failing, 10% stops the batch at its 31st failure (plus the failures of
/// entities the two workers started before the writer saw it), not at its
/// first, nor at its 100th.
#[test]
fn max_failures_as_a_share_stops_at_that_share_of_the_batch() {
    let w = World::new(300);
    w.test(
        "BATCH Customer FABRIC_COMMAND=\"shell 'test $(expr ? % 3) -ne 0'\"
         WITH MAX_FAILURES='10%' MAX_WORKERS_PER_NODE=2",
    )
    .status(1)
    .run();
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    let failed = w.query_i64("SELECT failed FROM batches WHERE bid = ?1", &bid);
    assert!((31..=45).contains(&failed), "failed = {failed}");
    assert!(w.error(&bid).contains("MAX_FAILURES=10%"));
    w.assert_counters_add_up(&bid);
}

#[test]
fn a_batch_that_ends_failed_stops_the_script_unless_keep_going() {
    let w = World::new(3);
    let script = "BATCH Customer FROM crm USING ('select id from nowhere') FABRIC_COMMAND='echo ?';
                  BATCH Customer FABRIC_COMMAND='echo ?'; BATCH_LIST STATUS='ALL'";
    let out = w.test(script).status(1).run();
    // The failed batch's row, and nothing after it.
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("note: the 2 statements after it did not run (--keep-going runs them)"),
        "{}",
        out.stderr
    );
    assert_eq!(w.batch_count(), 1);
    let out = Test::new()
        .current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "--format", "json"])
        .args(["--keep-going", "-c", script])
        .status(1)
        .run();
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    assert_eq!(w.batch_count(), 3);
    // Still a failed statement when a retry in the same run finishes the
    // batch: the first run of this one stops at its failure (it creates
    // the flag), the retry passes.
    Test::new()
        .current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "--keep-going", "-c"])
        .arg(
            "BATCH Customer.(1) FABRIC_COMMAND=\"shell 'test -e flag || { touch flag; exit 1; }; echo ?'\" \
             WITH MAX_FAILURES=0; BATCH_RETRY",
        )
        .status(1).stderr_contains("ended FAILED").run();
    assert_eq!(w.status(&w.last_bid()), "DONE");
}

/// Any failing statement, not only a batch that ends FAILED, stops the
/// rest of a script and says how many did not run, after its error.
#[test]
fn a_failing_statement_says_how_many_after_it_did_not_run() {
    let w = World::new(3);
    let out = w
        .test("GET Customer.999; SHOW LUS; SHOW INTERFACES")
        .status(1)
        .run();
    assert_eq!(out.stdout, "", "{}", out.stdout);
    let error = out.stderr.find("error: ").expect(&out.stderr);
    let note = out
        .stderr
        .find("note: the 2 statements after it did not run (--keep-going runs them)")
        .expect(&out.stderr);
    assert!(error < note, "{}", out.stderr);
    // The last statement failing leaves nothing to say.
    w.test("SHOW LUS; GET Customer.999")
        .status(1)
        .stderr_lacks("note:")
        .run();
}

/// The README's first command: the quickstart runs on a fresh home,
/// exits 0, and shows what its comments promise. Twice: it is meant to run
/// again and again. From another folder than its own: its relative paths
/// are its folder's (SPEC §1).
#[test]
fn the_quickstart_runs_and_shows_what_it_says() {
    let home = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.bsh");
    for run in 1..=2 {
        let out = Test::new()
            .current_dir(home.path())
            .args(["--home", home.path().to_str().unwrap(), "--format", "json"])
            .arg(script.to_str().unwrap())
            .status(0)
            .run();
        let rows: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v[0].get("execution_succeeded").is_some())
            .map(|v| v[0].clone())
            .collect();
        let counts = |r: &Value| {
            ["total", "execution_failed", "added", "updated", "unchanged"]
                .map(|k| r[k].as_i64().unwrap())
        };
        // v1 synced (all Added the first time), v2 (20 moved tier), the
        // broken source, its retry, the gold group through `shell`.
        let first = if run == 1 {
            [300, 0, 300, 0, 0]
        } else {
            [300, 0, 0, 20, 280]
        };
        // Should an entity fail where none may, its error says why.
        let failed = |r: &Value| {
            Test::new()
                .args(["--home", home.path().to_str().unwrap(), "--format", "json"])
                .args([
                    "-c",
                    &format!(
                        "BATCH_DETAILS '{}' STATUS='FAILED'",
                        r["batch_id"].as_str().unwrap()
                    ),
                ])
                .run()
                .stdout
        };
        assert_eq!(counts(&rows[0]), first, "run {run}: {}", failed(&rows[0]));
        assert_eq!(counts(&rows[1]), [300, 0, 0, 20, 280], "run {run}");
        assert_eq!(counts(&rows[2]), [5, 5, 0, 0, 0], "run {run}");
        assert_eq!(counts(&rows[3])[..2], [5, 0], "run {run}");
        assert_eq!(rows[3]["batch_id"], rows[2]["batch_id"]);
        assert_eq!(counts(&rows[4])[..2], [127, 0], "run {run}");
        // The failed batch is explained on stderr, and it is the only thing there.
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.starts_with("warning: batch "), "{}", out.stderr);
    }
}

/// OUTPUT_LIMIT (SPEC §4): each stream keeps that many bytes and the
/// result says `"truncated": true`; the default keeps 1 MB; a size that
/// means nothing is refused before anything is stored.
#[test]
fn output_limit_cuts_each_stream_and_says_so() {
    let w = World::new(2);
    let results = |with: &str| -> Vec<Value> {
        w.test(&format!(
            "BATCH Customer FABRIC_COMMAND=\"shell 'yes | head -c 200000; : ?'\" \
             WITH ALLOW_MULTIPLE=true {with}"
        ))
        .status(0)
        .run();
        let bid = w.last_bid();
        let out = w
            .test(&format!("BATCH_DETAILS '{bid}' LIMIT=-1"))
            .status(0)
            .run();
        let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
        rows.iter().map(|r| r["results"].clone()).collect()
    };
    for r in results("OUTPUT_LIMIT='10'") {
        assert_eq!(r["stdout"], "y\ny\ny\ny\ny\n", "{r}");
        assert_eq!(r["truncated"], true, "{r}");
    }
    for r in results("") {
        assert_eq!(r["stdout"].as_str().unwrap().len(), 200_000);
        assert!(r.get("truncated").is_none(), "within 1 MB: {r}");
    }
    let before = w.batch_count();
    w.test("BATCH Customer FABRIC_COMMAND='echo ?' WITH OUTPUT_LIMIT='lots'")
        .status(1)
        .stderr_contains("OUTPUT_LIMIT must be a size of 1 byte or more")
        .run();
    assert_eq!(w.batch_count(), before);
}
