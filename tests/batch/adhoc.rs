//! Ad-hoc batches (an undefined LU name labels the batch) and ids from
//! anywhere: FROM STDIN, FROM FILE, a CSV interface over `ids.txt`.

use crate::world::{World, result_row};

/// The one-liner: a thousand ids piped in, an undefined LU, an
/// `exec` of a script in the working directory, nothing defined first.
#[test]
fn ids_piped_in_run_an_adhoc_batch_with_nothing_defined() {
    let w = World::new(0);
    let script = w.path().join("export_one.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"exported $1\"\n").unwrap();
    std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    let ids: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    let out = w
        .test("BATCH Export FROM STDIN FABRIC_COMMAND=\"exec './export_one.sh' ?\" WITH MAX_WORKERS_PER_NODE=16")
        .stdin(ids)
        .status(0)
        .stderr_lacks("note:")
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 1000, "{}", out.stderr);
    assert_eq!(r["execution_succeeded"], 1000);
    let bid = w.last_bid();
    assert_eq!(
        w.query_i64(
            "select count(*) from batch_entities where batch = (select batch_no from batches where bid = ?1) and result like '%exported 1000%'",
            &bid
        ),
        1
    );
    // The stored statement is the short one, not the ids.
    let list = w.run("BATCH_LIST STATUS='ALL'");
    assert!(
        list.stdout.contains("BATCH Export FROM STDIN"),
        "{}",
        list.stdout
    );
}

#[test]
fn a_name_close_to_a_defined_lu_gets_a_did_you_mean_note() {
    let w = World::new(3);
    let out = w
        .test("BATCH Custmer.(1, 2) FABRIC_COMMAND='echo ?'")
        .status(0)
        .stderr_contains(
            "note: no LU named Custmer; running as an ad-hoc batch (did you mean Customer?)",
        )
        .run();
    assert_eq!(result_row(&out.stdout)["total"], 2);
    // An ad-hoc batch over a query of a defined interface.
    let out = w
        .test("BATCH Report FROM crm USING ('select id from customer') FABRIC_COMMAND=\"shell 'true ?'\"")
        .status(0)
        .stderr_lacks("note:")
        .run();
    assert_eq!(result_row(&out.stdout)["total"], 3);
}

/// sync_instance, delete_instance, FROM FABRIC, the ROOT form and instance
/// groups read or write the LU: they still need it, and store nothing.
#[test]
fn commands_and_sources_that_use_the_lu_still_need_it() {
    let w = World::new(3);
    for stmt in [
        "BATCH Nope.(1) FABRIC_COMMAND='sync_instance Nope.?'",
        "BATCH Nope.(1) FABRIC_COMMAND='delete_instance Nope.?'",
        "BATCH Nope FROM FABRIC FABRIC_COMMAND='echo ?'",
        "BATCH Nope FABRIC_COMMAND='echo ?'",
        "BATCH Nope.vip FABRIC_COMMAND='echo ?'",
        "MIGRATE Nope.(1)",
    ] {
        w.refused(stmt, "no LU named Nope");
    }
    assert_eq!(w.batch_count(), 0);
}

/// CRLF line ends, a byte order mark, blank lines and a 2 KB line: the
/// blank lines are no entities, the long line fails as a long id from a
/// query does.
#[test]
fn an_ids_file_with_crlf_a_bom_blank_lines_and_a_long_line() {
    let w = World::new(0);
    let long = "x".repeat(2048);
    let text = format!("\u{feff}1\r\n\r\n2\r\n  \r\n3\r\n{long}\r\n");
    std::fs::write(w.path().join("ids.txt"), text).unwrap();
    let out = w
        .test("BATCH Export FROM FILE 'ids.txt' FABRIC_COMMAND='echo ?'")
        .status(3)
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 4, "{}", out.stderr);
    assert_eq!(r["execution_succeeded"], 3);
    assert_eq!(r["execution_failed"], 1);
    let bid = w.last_bid();
    for id in ["1", "2", "3"] {
        assert_eq!(
            w.store()
                .query_row(
                    "select count(*) from batch_entities where batch = (select batch_no from batches where bid = ?1) and entity_id = ?2 \
                     and status = 'COMPLETED'",
                    [&bid, id],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap(),
            1,
            "id {id}"
        );
    }
    assert_eq!(
        w.query_i64(
            "select count(*) from batch_entities where batch = (select batch_no from batches where bid = ?1) and status = 'FAILED' \
             and error like '%2048 bytes long; ids are at most 1024 bytes%'",
            &bid
        ),
        1
    );
}

/// The ids are stored before they are processed: a retry reads neither
/// standard input nor the file again, and finishes the stored batch.
#[test]
fn a_retry_reads_neither_stdin_nor_the_file_again() {
    let w = World::new(0);
    std::fs::write(w.path().join("ids.txt"), "1\n2\n3\n").unwrap();
    w.test("BATCH Export FROM FILE 'ids.txt' FABRIC_COMMAND=\"shell 'test -f ok || test ? != 2'\"")
        .status(3)
        .run();
    let bid = w.last_bid();
    std::fs::remove_file(w.path().join("ids.txt")).unwrap();
    std::fs::write(w.path().join("ok"), "").unwrap();
    let out = w
        .test(&format!("BATCH_RETRY '{bid}'"))
        .stdin("7\n8\n9\n")
        .status(0)
        .run();
    let r = result_row(&out.stdout);
    assert_eq!(r["total"], 3, "{}", out.stderr);
    assert_eq!(r["execution_succeeded"], 3);

    let out = w
        .test("BATCH Export FROM STDIN FABRIC_COMMAND=\"shell 'test -f no || test ? != 5'\"")
        .stdin("4\n5\n6\n")
        .status(3)
        .run();
    assert_eq!(result_row(&out.stdout)["total"], 3);
    let bid = w.last_bid();
    std::fs::write(w.path().join("no"), "").unwrap();
    let out = w
        .test(&format!("BATCH_RETRY '{bid}'"))
        .stdin("7\n8\n9\n")
        .status(0)
        .run();
    assert_eq!(result_row(&out.stdout)["total"], 3, "{}", out.stderr);
}

#[test]
fn stdin_and_file_ids_are_refused_for_a_worker_and_a_missing_file() {
    let w = World::new(0);
    w.test("BATCH Export FROM STDIN FABRIC_COMMAND='echo ?' WITH ASYNC=true")
        .stdin("1\n")
        .status(1)
        .stderr_starts_with("error: the ids of FROM STDIN and FROM FILE are read by this process")
        .run();
    w.refused(
        "BATCH Export FROM FILE 'gone.txt' FABRIC_COMMAND='echo ?'",
        "cannot read the ids from file ",
    );
    assert_eq!(w.batch_count(), 0);
    // Nothing piped in: no ids, a batch of none.
    let out = w
        .test("BATCH Export FROM STDIN FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    assert_eq!(result_row(&out.stdout)["total"], 0);
}

/// A CSV interface's file may have any extension (SPEC §3).
#[test]
fn a_csv_interface_over_ids_txt() {
    let w = World::new(0);
    std::fs::write(w.path().join("ids.txt"), "id\n1\n2\n3\n").unwrap();
    let out = w
        .test(
            "CREATE INTERFACE idsFile TYPE CSV PATH 'ids.txt';
             BATCH Export FROM idsFile USING ('select id from ids') FABRIC_COMMAND='echo ?'",
        )
        .status(0)
        .run();
    assert_eq!(result_row(&out.stdout)["total"], 3, "{}", out.stderr);
}

/// A CSV interface's columns are typed from their values (SPEC §3):
/// `where id < 50` compares numbers; `TYPES=false` keeps text (and its
/// string comparison); SHOW INTERFACES says which.
#[test]
fn csv_columns_are_typed_unless_types_is_false() {
    let w = World::new(1);
    let ids: String = std::iter::once("id,code\n".to_string())
        .chain((1..=2000).map(|k| format!("{k},c{k}\n")))
        .collect();
    std::fs::write(w.path().join("ids.csv"), ids).unwrap();
    w.test(
        "CREATE INTERFACE typed TYPE CSV PATH 'ids.csv';
         CREATE INTERFACE text TYPE CSV PATH 'ids.csv' WITH TYPES=false",
    )
    .status(0)
    .run();
    let total = |iface: &str, sql: &str| -> i64 {
        let out = w
            .test(&format!(
                "BATCH Export FROM {iface} USING ('{sql}') FABRIC_COMMAND='echo ?' \
                 WITH ALLOW_MULTIPLE=true"
            ))
            .status(0)
            .run();
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        v[0]["total"].as_i64().unwrap()
    };
    assert_eq!(total("typed", "select id from ids where id < 50"), 49);
    assert_eq!(total("typed", "select id from ids where id <= 100"), 100);
    let as_text = (1..=2000).filter(|k| k.to_string().as_str() < "50").count() as i64;
    assert_eq!(total("text", "select id from ids where id < 50"), as_text);
    let out = w.test("SHOW INTERFACES").status(0).run();
    let rows: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    let types = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap()["types"].clone();
    assert_eq!(types("typed"), true);
    assert_eq!(types("text"), false);
}
