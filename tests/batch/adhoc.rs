//! Ad-hoc batches (an undefined LU name labels the batch) and ids from
//! anywhere: FROM STDIN, FROM FILE, a CSV interface over `ids.txt`.

use crate::world::{World, assert_none_lost_none_rerun, completed_ids, kill_9_after, result_row};

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
            w.sqlite()
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

/// The lines are stored with the batch, in its creating transaction: a
/// run killed before it stored every id as an entity is finished by a
/// retry from those lines, with the file gone, none lost, none run twice.
#[test]
fn kill_9_then_retry_takes_the_ids_from_the_stored_lines() {
    const N: usize = 1000;
    for attempt in 1..=3 {
        let w = World::new(0);
        let ids: String = (1..=N).map(|i| format!("{i}\n")).collect();
        std::fs::write(w.path().join("ids.txt"), ids).unwrap();
        let child = w.spawn(
            "BATCH Export FROM FILE 'ids.txt' FABRIC_COMMAND=\"shell 'echo ? >> ran.txt'\" WITH MAX_WORKERS_PER_NODE=2",
        );
        kill_9_after(&w, child, 20);
        let bid = w.last_bid();
        // What this test is about: ids the killed run had not stored as
        // entities (it stores them as it hands them out).
        if w.query_i64("SELECT total FROM batches WHERE bid = ?1", &bid) == N as i64 {
            assert!(attempt < 3, "no kill came before every id was stored");
            continue;
        }
        let completed_before = completed_ids(&w, &bid);
        std::fs::remove_file(w.path().join("ids.txt")).unwrap();
        w.retry_to_done(&bid);
        assert_eq!(
            w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
            N as i64
        );
        assert_none_lost_none_rerun(&w, N, &completed_before);
        return;
    }
}

/// With their lines in the store, ids from standard input or a file may
/// run in a worker (ASYNC=true) and start an open batch (OPEN=true).
#[test]
fn stdin_ids_run_in_a_worker_and_file_ids_open_a_batch() {
    let w = World::new(0);
    let ids: String = (1..=500).map(|i| format!("{i}\n")).collect();
    w.test("BATCH Export FROM STDIN FABRIC_COMMAND='echo ?' WITH ASYNC=true")
        .stdin(ids)
        .status(0)
        .run();
    let bid = w.last_bid();
    w.test(&format!("BATCH_WAIT '{bid}'")).status(0).run();
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        500
    );
    assert_eq!(
        w.query_i64(
            "SELECT count(DISTINCT entity_id) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'COMPLETED'",
            &bid
        ),
        500
    );

    std::fs::write(w.path().join("ids.txt"), "a\nb\n").unwrap();
    w.test("BATCH Open FROM FILE 'ids.txt' FABRIC_COMMAND='echo ?' WITH ASYNC=true, OPEN=true")
        .status(0)
        .run();
    let open = w.last_bid();
    w.test(&format!("BATCH_APPEND '{open}' ('c')"))
        .status(0)
        .run();
    w.test(&format!("BATCH_WAITOFF '{open}'")).status(0).run();
    w.test(&format!("BATCH_WAIT '{open}'")).status(0).run();
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &open),
        3
    );
}

#[test]
fn a_missing_ids_file_is_refused_and_no_stdin_is_no_ids() {
    let w = World::new(0);
    w.refused(
        "BATCH Export FROM FILE '' FABRIC_COMMAND='echo ?'",
        "FROM FILE '' names no file",
    );
    w.test("BATCH Export FROM FILE ids.txt FABRIC_COMMAND='echo ?'")
        .status(1)
        .stderr_starts_with("error: expected a file path in quotes ('ids.txt'), found ids.txt")
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

    // DESCRIBE INTERFACE shows each column's type: inferred, or TEXT with
    // TYPES=false; a column of numbers and words is TEXT.
    std::fs::write(
        w.path().join("mixed.txt"),
        "id,amount,note
1,1.5,x
2,2,7
",
    )
    .unwrap();
    w.test("CREATE INTERFACE mixed TYPE CSV PATH 'mixed.txt'")
        .status(0)
        .run();
    let described = |iface: &str| -> Vec<String> {
        let out = w
            .test(&format!("DESCRIBE INTERFACE {iface}"))
            .status(0)
            .run();
        let rows: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).unwrap();
        rows.iter()
            .map(|r| format!("{}.{} {}", r["table"], r["column"], r["type"]).replace('"', ""))
            .collect()
    };
    assert_eq!(described("typed"), ["ids.id INTEGER", "ids.code TEXT"]);
    assert_eq!(described("text"), ["ids.id TEXT", "ids.code TEXT"]);
    assert_eq!(
        described("mixed"),
        ["mixed.id INTEGER", "mixed.amount REAL", "mixed.note TEXT"]
    );
    assert_eq!(
        described("crm"),
        ["customer.id INTEGER", "customer.name TEXT"]
    );
    w.refused(
        "DESCRIBE INTERFACE crn",
        "no interface named crn (did you mean crm?)",
    );
}

/// FROM STDIN when standard input holds no ids: the statements themselves
/// (`batchsh -`, a pipe into `batchsh`), or a terminal (it would wait for
/// typing). Each is refused at once, says what to do, and stores nothing.
#[test]
fn from_stdin_is_refused_where_stdin_holds_statements_or_is_a_terminal() {
    let w = World::new(0);
    let statement = "BATCH Export FROM STDIN FABRIC_COMMAND='echo ?';\n";
    for args in [&["-"][..], &[][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"))
            .args(["--home", w.home().to_str().unwrap()])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(statement.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(
                "error: FROM STDIN reads ids from standard input, which holds the statements here; \
                 give the statements with -c or a script file"
            ),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"));
    cmd.current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "-c", statement])
        .env("NO_COLOR", "1");
    let mut s = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    s.exp_string(
        "error: FROM STDIN reads one id per line from standard input, which is a terminal here",
    )
    .unwrap();
    s.exp_eof().unwrap();
    assert_eq!(w.batch_count(), 0);
}

/// A cron line with RESUME=true and a relative FROM FILE, run again from
/// another folder (cron's `$HOME`) after a kill -9: the interrupted batch
/// goes on from what it stored (its ids, its folder), the file being
/// neither there nor read, and no completed entity runs again.
#[test]
fn resume_true_from_another_folder_does_not_read_the_file_again() {
    const N: usize = 200;
    let w = World::new(0);
    let ids: String = (1..=N).map(|i| format!("{i}\n")).collect();
    std::fs::write(w.path().join("ids.txt"), ids).unwrap();
    let batch = "BATCH Cron FROM FILE 'ids.txt' FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.01'\" \
                 WITH MAX_WORKERS_PER_NODE=2 RESUME=true";
    kill_9_after(&w, w.spawn(batch), 20);
    let bid = w.last_bid();
    let completed_before = completed_ids(&w, &bid);
    let elsewhere = tempfile::tempdir().unwrap();
    let out = crate::common::Test::new()
        .current_dir(elsewhere.path())
        .args([
            "--home",
            w.home().to_str().unwrap(),
            "--format",
            "json",
            "-c",
            batch,
        ])
        .status(0)
        .run();
    assert_eq!(
        result_row(&out.stdout)["batch_id"],
        bid.as_str(),
        "{}",
        out.stderr
    );
    assert_eq!(w.status(&bid), "DONE");
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        N as i64
    );
    assert!(
        !elsewhere.path().join("ran.txt").exists(),
        "ran in the batch's folder"
    );
    assert_none_lost_none_rerun(&w, N, &completed_before);
}

/// Standard input is read to its end by the first FROM STDIN of a run: a
/// second one is refused, saying so, rather than running with no ids.
#[test]
fn a_second_from_stdin_in_one_run_is_refused() {
    let w = World::new(0);
    w.test(
        "BATCH T1 FROM STDIN FABRIC_COMMAND='echo ?'; BATCH T2 FROM STDIN FABRIC_COMMAND='echo ?'",
    )
    .stdin("1\n2\n3\n")
    .status(1)
    .stderr_starts_with(
        "error: standard input was read to its end by an earlier FROM STDIN of this run",
    )
    .run();
    assert_eq!(w.batch_count(), 1);
}
