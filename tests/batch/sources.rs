//! Where a batch's entities come from: listed ids, the ROOT query, groups,
//! USING queries, CSV files, and the ways a source fails or is refused.

use crate::common::Test;
use crate::world::{World, result_row};
use std::time::Duration;

#[test]
fn echo_over_listed_ids() {
    let w = World::new(0);
    let out = w
        .test("BATCH Customer.('1', '2', '2', 3) FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let r = result_row(&out.stdout);
    // Duplicates are processed once.
    assert_eq!(r["total"], 3);
    assert_eq!(r["execution_succeeded"], 3);
    assert_eq!(r["execution_failed"], 0);
    let bid = r["batch_id"].as_str().unwrap().to_string();
    assert_eq!(w.status(&bid), "DONE");
    let res: String = w
        .sqlite()
        .query_row(
            "SELECT result FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '3'",
            [&bid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(res, r#"{"echo":"3"}"#);
    w.assert_counters_add_up(&bid);
}

#[test]
fn root_query_group_and_using_sources() {
    let w = World::new(50);
    let out = w.run("BATCH Customer FABRIC_COMMAND='echo ?'");
    assert_eq!(result_row(&out.stdout)["total"], 50, "{}", out.stderr);
    let out = w.run(
        "CREATE INSTANCE GROUP Customer.small USING ('select id from customer where id <= 5');
         BATCH Customer.small FABRIC_COMMAND='echo ?'",
    );
    assert_eq!(result_row(&out.stdout)["total"], 5, "{}", out.stderr);
    let out = w.run(
        "BATCH Customer FROM crm USING ('select id from customer where id > ? and id <= ?')
             FABRIC_COMMAND='echo ?' WITH BIND_PARAMS='10,14'",
    );
    assert_eq!(result_row(&out.stdout)["total"], 4, "{}", out.stderr);
    let out = w
        .test(
            "BATCH Customer FROM crm USING ('select id from customer where id = 0') FABRIC_COMMAND='echo ?'",
        )
        .status(0)
        .run();
    assert_eq!(result_row(&out.stdout)["total"], 0);
}

#[test]
fn a_failing_source_query_fails_the_batch_with_the_database_message() {
    let w = World::new(3);
    let out = w
        .test("BATCH Customer FROM crm USING ('select id from nowhere') FABRIC_COMMAND='echo ?'")
        .status(1)
        .run();
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    let error = w.error(&bid);
    assert!(error.contains("no such table: nowhere"), "{error}");
    // It started (to read its ids) and ended: both times are recorded.
    assert_eq!(
        w.query_i64(
            "SELECT start_time IS NOT NULL AND end_time >= start_time FROM batches WHERE bid = ?1",
            &bid
        ),
        1
    );
    // The run says why, not only the stored row.
    assert!(
        out.stderr
            .contains(&format!("error: batch {bid} ended FAILED: ")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("no such table: nowhere"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_ids_fail_alone_and_the_batch_goes_on() {
    let w = World::new(0);
    let long = "x".repeat(1025);
    let out = w
        .test(&format!(
            "BATCH Customer.('ok', '', '{long}') FABRIC_COMMAND='echo ?'"
        ))
        .status(3)
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(r["execution_succeeded"], 1);
    assert_eq!(r["execution_failed"], 2);
    let bid = r["batch_id"].as_str().unwrap();
    w.assert_counters_add_up(bid);
    // Exit code 3 is explained on stderr (what a cron job mails), in one
    // line that names the bid by its first 8 characters, in the retry
    // that a new session can run as it is written.
    let short = &bid[..8];
    assert_eq!(
        out.stderr,
        format!(
            "warning: batch {short} ended DONE with 2 of 3 entities FAILED \
             (BATCH_DETAILS STATUS='FAILED' lists them, BATCH_RETRY '{short}' runs them again)\n"
        )
    );
    w.test("BATCH_DETAILS STATUS='FAILED'")
        .status(0)
        .stdout_contains(format!("\"entity_id\":\"{long}\""))
        .run();
    // Retried, the two fail again: the same line, from a new session.
    w.test(&format!("BATCH_RETRY '{short}'"))
        .status(3)
        .stderr_contains(format!("BATCH_RETRY '{short}' runs them again"))
        .run();
}

/// A bad id is told apart from a good id with the text of its stand-in
/// (`NULL`), duplicates of it count once, and BATCH_RETRY leaves it FAILED
/// instead of giving its stand-in to the command.
#[test]
fn bad_ids_are_not_good_ids_and_stay_failed_on_retry() {
    let w = World::new(0);
    let out = w
        .test(
            "BATCH Customer FROM crm USING ('select column1 from (values (NULL), (''NULL''), (NULL), (''''), (''ok''), (''''))')
             FABRIC_COMMAND='echo ?'",
        )
        .status(3)
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 4);
    assert_eq!(r["execution_succeeded"], 2);
    assert_eq!(r["execution_failed"], 2);
    let bid = r["batch_id"].as_str().unwrap().to_string();
    let details = |w: &World| -> Vec<(String, String, Option<String>)> {
        let c = w.sqlite();
        let mut st = c
            .prepare(
                "SELECT entity_id, status, coalesce(error, result) FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) ORDER BY seq",
            )
            .unwrap();
        st.query_map([&bid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let want = [
        ("NULL", "FAILED", "the id is NULL"),
        ("NULL", "COMPLETED", r#"{"echo":"NULL"}"#),
        ("", "FAILED", "the id is empty"),
        ("ok", "COMPLETED", r#"{"echo":"ok"}"#),
    ];
    let want: Vec<(String, String, Option<String>)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), Some(c.to_string())))
        .collect();
    assert_eq!(details(&w), want);

    w.test(&format!("BATCH_RETRY '{bid}'")).status(3).run();
    assert_eq!(details(&w), want, "the retry ran a bad id's stand-in");
    w.assert_counters_add_up(&bid);
}

/// Ids that are not UTF-8 are told apart by all their bytes, not by the 64
/// their error message shows: two that differ only past the 64th byte are
/// two failed entities, and a repeat of one of them counts once.
#[test]
fn ids_that_are_not_utf8_stay_apart_whatever_their_length() {
    let w = World::new(0);
    let head = "ff".repeat(69);
    let out = w.test(&format!(
        "BATCH Customer FROM crm USING ('select column1 from (values (x''{head}01''), (x''{head}02''), (x''{head}01''), (''ok''))')
             FABRIC_COMMAND='echo ?'"
    )).status(3).run();
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 3);
    assert_eq!(r["execution_succeeded"], 1);
    assert_eq!(r["execution_failed"], 2);
    let bid = r["batch_id"].as_str().unwrap();
    let c = w.sqlite();
    let ids: Vec<String> = c
        .prepare(
            "SELECT entity_id FROM batch_entities WHERE status = 'FAILED'
             AND batch = (SELECT batch_no FROM batches WHERE bid = ?1) ORDER BY seq",
        )
        .unwrap()
        .query_map([bid], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, [format!("x'{head}01'"), format!("x'{head}02'")]);
    w.assert_counters_add_up(bid);
}

#[test]
fn duplicate_ids_from_a_query_are_processed_once() {
    let w = World::new(50);
    let out = w
        .test(
            "BATCH Customer FROM crm USING ('select id from customer union all select id from customer
             union all select cast(id as text) from customer where id <= 10')
             FABRIC_COMMAND='echo ?'",
        )
        .status(0)
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 50);
    assert_eq!(r["execution_succeeded"], 50);
    let bid = r["batch_id"].as_str().unwrap().to_string();
    assert_eq!(
        w.query_i64(
            "SELECT count(DISTINCT entity_id) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1)",
            &bid
        ),
        50
    );
    w.assert_counters_add_up(&bid);
}

/// SQLite skips a temporary folder it cannot use; so does the duplicate
/// check's own file, and duplicates are still dropped.
#[test]
fn a_missing_sqlite_tmpdir_does_not_stop_the_duplicate_check() {
    let w = World::new(20);
    let out = Test::new()
        .current_dir(w.path())
        .env("SQLITE_TMPDIR", "/nonexistent/batchsh-tmp")
        .args([
            "--home",
            w.home().to_str().unwrap(),
            "--format",
            "json",
            "-c",
            "BATCH Customer FROM crm USING ('select id from customer
                 union all select id from customer where id <= 5')
                 FABRIC_COMMAND='echo ?'",
        ])
        .status(0)
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(
        (r["total"].as_i64(), r["execution_succeeded"].as_i64()),
        (Some(20), Some(20))
    );
}

#[test]
fn a_source_file_that_vanished_fails_the_batch_clearly() {
    let w = World::new(5);
    std::fs::remove_file(w.path().join("crm.db")).unwrap();
    w.test("BATCH Customer FABRIC_COMMAND='echo ?'")
        .status(1)
        .run();
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "FAILED");
    let error = w.error(&bid);
    assert!(
        error.contains("crm.db") && error.contains("does not exist"),
        "{error}"
    );
}

/// A source query that writes, holds two statements, or whose `?` count
/// differs from BIND_PARAMS is a validation error: refused with a caret
/// under the SQL, before anything is stored or run (SPEC §11).
#[test]
fn a_using_query_that_cannot_be_a_source_query_stores_no_batch() {
    let w = World::new(3);
    w.test("BATCH Customer FROM crm USING ('delete from customer') FABRIC_COMMAND='echo ?'")
        .status(1)
        .stderr(
            "error: the query would change data; a source query must only read (query: delete from customer)
  --> line 1, column 32
   |
 1 | BATCH Customer FROM crm USING ('delete from customer') FABRIC_COMMAND='echo ?'
   |                                ^^^^^^^^^^^^^^^^^^^^^^
{\"error\":\"the query would change data; a source query must only read (query: delete from customer)\",\"bid\":null}
",
        )
        .run();
    for (using, options, why) in [
        (
            "select id from customer; delete from customer",
            "",
            "the text holds more than one statement",
        ),
        (
            "delete from customer returning id",
            "",
            "the query would change data",
        ),
        (
            "select id from customer where id > ?",
            "",
            "the query has 1 ? placeholder and 0 values were given for it",
        ),
        (
            "select id from customer where id > ?",
            "WITH BIND_PARAMS='1,2'",
            "the query has 1 ? placeholder and 2 values were given for it",
        ),
        (
            "select id from customer where id > ?",
            "WITH BIND_PARAMS_JSON='[1, 2]'",
            "the query has 1 ? placeholder and 2 values were given for it",
        ),
        // Values with nothing to bind them to are a mistake too.
        (
            "select id from customer",
            "WITH BIND_PARAMS='1'",
            "the query has no ? placeholder and 1 value was given",
        ),
    ] {
        let batch =
            format!("BATCH Customer FROM crm USING ('{using}') FABRIC_COMMAND='echo ?' {options}");
        for statement in [batch.clone(), format!("EXPLAIN {batch}")] {
            let out = w.refused(&statement, why);
            // The caret is under the SQL text.
            let column = statement.find(&format!("'{using}'")).unwrap() + 1;
            assert!(
                out.stderr
                    .contains(&format!("--> line 1, column {column}\n")),
                "{statement}: {}",
                out.stderr
            );
            assert!(out.stdout.is_empty(), "{statement}: {}", out.stdout);
        }
    }
    assert_eq!(w.batch_count(), 0);
    let rows: i64 = rusqlite::Connection::open(w.path().join("crm.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM customer", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3, "the source keeps its rows");
    // The same on a CSV interface, whose tables are checked empty.
    std::fs::write(w.path().join("ids.csv"), "id\n1\n2\n").unwrap();
    w.refused(
        "CREATE INTERFACE ids TYPE CSV PATH 'ids.csv';
         BATCH Customer FROM ids USING ('select id from ids where id = ?') FABRIC_COMMAND='echo ?'",
        "the query has 1 ? placeholder and 0 values",
    );
    assert_eq!(w.batch_count(), 0);
    // The matching count runs.
    w.test(
        "BATCH Customer FROM crm USING ('select id from customer where id > ?') \
         FABRIC_COMMAND='echo ?' WITH BIND_PARAMS='1'",
    )
    .status(0)
    .run();
    assert_eq!(w.batch_count(), 1);
}

/// The ROOT query and a group's query are checked the same way when a
/// batch uses them; the error names the query, whose text is not in the
/// statement.
#[test]
fn a_root_or_group_query_that_writes_stores_no_batch() {
    let w = World::new(3);
    // CREATE LU refuses a ROOT query that writes: one written into the
    // store by hand (or by an older batchsh) reaches the BATCH check.
    w.sqlite()
        .execute(
            "UPDATE lus SET root_sql = 'delete from customer returning id'",
            [],
        )
        .unwrap();
    let out = w.refused(
        "BATCH Customer FABRIC_COMMAND='echo ?'",
        "the ROOT query of LU Customer: the query would change data; a source query must \
         only read",
    );
    assert!(
        out.stderr.contains("--> line 1, column 7\n"),
        "{}",
        out.stderr
    );
    w.refused(
        "CREATE INSTANCE GROUP Customer.low USING ('select id from customer where id < ?');
         BATCH Customer.low FABRIC_COMMAND='echo ?'",
        "the instance group Customer.low: the query has 1 ? placeholder and 0 values",
    );
    assert_eq!(w.batch_count(), 0);
}

/// A CSV source whose file gained an unclosed quote after CREATE INTERFACE
/// is refused when the batch reads it, naming the file and the line, instead
/// of giving the rest of the file as one id.
#[test]
fn a_csv_source_with_an_unclosed_quote_fails_the_batch_naming_the_line() {
    let w = World::new(0);
    let ids = w.path().join("ids.csv");
    std::fs::write(&ids, "id\n1\n2\n3\n").unwrap();
    w.test("CREATE INTERFACE ids TYPE CSV PATH 'ids.csv'")
        .status(0)
        .run();
    std::fs::write(&ids, "id,note\n1,\"unterminated\n2,b\n3,c\n").unwrap();
    let why = format!(
        "{} line 2: a quoted field opens here and is never closed",
        ids.display()
    );
    w.assert_last_failed(
        w.test("BATCH Customer FROM ids USING ('select id from ids') FABRIC_COMMAND='echo ?'"),
        &why,
    );
}

/// A source path that became a FIFO fails the batch at once with what it
/// is: opening it would wait for a writer forever.
#[test]
fn a_source_that_is_a_fifo_fails_the_batch_instead_of_hanging() {
    let w = World::new(3);
    let db = w.path().join("crm.db");
    std::fs::remove_file(&db).unwrap();
    crate::common::mkfifo(&db);
    let why = format!(
        "{} is a FIFO (named pipe), not a file; give the path of an SQLite database file",
        db.display()
    );
    w.assert_last_failed(
        w.test("BATCH Customer FABRIC_COMMAND='echo ?'")
            .timeout(Duration::from_secs(10)),
        &why,
    );
}
