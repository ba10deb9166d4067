//! The catalog statements through the real binary: interfaces, LUs,
//! instance groups; validation errors that change nothing in the store.

use crate::common::Test;
use serde_json::Value;
use std::path::Path;

/// A folder with `crm.db` (customer, orders) and `csv/ids.csv`.
fn data() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(d.path().join("crm.db")).unwrap();
    c.execute_batch(
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, tier TEXT);
         INSERT INTO customer VALUES (1, 'ann', 'gold'), (2, 'bob', 'silver'), (3, 'cy', 'gold');
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);",
    )
    .unwrap();
    std::fs::create_dir(d.path().join("csv")).unwrap();
    std::fs::write(d.path().join("csv/ids.csv"), "id,kind\n1,a\n2,b\n").unwrap();
    d
}

/// Runs `script` in `dir` with a store in `home` (kept across runs).
fn run(dir: &Path, home: &Path, script: &str) -> crate::common::Output {
    test(dir, home, script).run()
}

/// The run of [`run`], to set more on before it runs.
fn test(dir: &Path, home: &Path, script: &str) -> Test {
    Test::new().current_dir(dir).args([
        "--home",
        home.to_str().unwrap(),
        "--format",
        "json",
        "-c",
        script,
    ])
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn define_show_describe_and_drop() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let out = test(
        d.path(),
        home.path(),
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
         CREATE INTERFACE ids TYPE CSV PATH 'csv' WITH DELIMITER=',';
         CREATE LU Customer FROM crm ROOT ('select id from customer')
             TABLE customer ('select * from customer where id = ?')
             TABLE orders KEY (id) ('select * from orders where customer_id = ?');
         CREATE INSTANCE GROUP Customer.vip USING ('select id from customer where tier = ''gold''');
         SHOW INTERFACES; SHOW LUS; DESCRIBE LU customer; SHOW INSTANCE GROUPS Customer",
    )
    .status(0)
    .run();
    let v = json_lines(&out.stdout);
    assert_eq!(
        v[0]["message"],
        format!(
            "interface crm created (SQLITE {})",
            d.path().join("crm.db").display()
        )
    );
    let ifaces = &v[4];
    assert_eq!(ifaces[0]["name"], "crm");
    // A relative PATH is stored absolute (SPEC §3).
    assert_eq!(
        ifaces[0]["location"],
        d.path().join("crm.db").to_str().unwrap()
    );
    assert_eq!(ifaces[1]["type"], "CSV");
    assert_eq!(ifaces[1]["header"], true);
    assert_eq!(v[5][0]["tables"], "customer, orders");
    assert_eq!(v[6][0]["part"], "INTERFACE");
    assert_eq!(v[6][3]["key"], "id");
    assert_eq!(v[7][0]["group"], "vip");

    let out = test(
        d.path(),
        home.path(),
        "DROP INSTANCE GROUP Customer.vip; DROP LU Customer; DROP INTERFACE crm; SHOW LUS",
    )
    .status(0)
    .run();
    assert_eq!(
        json_lines(&out.stdout).last().unwrap(),
        &serde_json::json!([])
    );
}

#[test]
fn a_missing_file_is_reported_and_nothing_is_stored() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    test(
        d.path(),
        home.path(),
        "CREATE INTERFACE crm TYPE SQLITE PATH 'nope.db'",
    )
    .status(1)
    .stderr_starts_with("error: ")
    .stderr_contains("nope.db")
    .stderr_contains("--> line 1, column 39")
    .run();
    test(d.path(), home.path(), "SHOW INTERFACES")
        .stdout_json(serde_json::json!([]))
        .run();
}

#[test]
fn lu_queries_must_run_on_their_interface() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    test(
        d.path(),
        home.path(),
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
         CREATE LU Customer FROM crm ROOT ('select id from customers')",
    )
    .status(1)
    .stderr_starts_with(
        "error: the ROOT query does not run on interface crm: no such table: customers",
    )
    .stderr_contains("--> line 2, column 44")
    .run();
    // The interface of the first statement stays; no LU was stored.
    let out = run(d.path(), home.path(), "SHOW LUS; SHOW INTERFACES");
    let v = json_lines(&out.stdout);
    assert_eq!(v[0], serde_json::json!([]));
    assert_eq!(v[1].as_array().unwrap().len(), 1);
}

#[test]
fn names_that_do_not_exist_get_a_suggestion() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    test(
        d.path(),
        home.path(),
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
         CREATE LU Customer FROM crn ROOT ('select id from customer')",
    )
    .status(1)
    .stderr(
        "error: no interface named crn (did you mean crm?)
  --> line 2, column 34
   |
 2 |          CREATE LU Customer FROM crn ROOT ('select id from customer')
   |                                  ^^^
{\"error\":\"no interface named crn (did you mean crm?)\",\"bid\":null}
",
    )
    .run();
}

#[test]
fn an_instance_group_query_returns_one_column() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    test(
        d.path(),
        home.path(),
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
         CREATE LU Customer FROM crm ROOT ('select id from customer');
         CREATE INSTANCE GROUP Customer.vip USING ('select id, name from customer')",
    )
    .status(1)
    .stderr_starts_with("error: the query must return one column only; it returns 2\n")
    .run();
}

#[test]
fn in_use_exists_and_replace() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let setup = "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
                 CREATE LU Customer FROM crm ROOT ('select id from customer')";
    test(d.path(), home.path(), setup).status(0).run();
    let out = run(d.path(), home.path(), "DROP INTERFACE crm");
    assert!(
        out.stderr
            .starts_with("error: interface crm is used by LU Customer; drop that first"),
        "{}",
        out.stderr
    );
    let out = run(
        d.path(),
        home.path(),
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db'",
    );
    assert!(
        out.stderr
            .starts_with("error: interface crm exists already; use CREATE OR REPLACE INTERFACE"),
        "{}",
        out.stderr
    );
    test(
        d.path(),
        home.path(),
        "CREATE OR REPLACE INTERFACE crm TYPE CSV PATH 'csv'",
    )
    .status(0)
    .run();
}

#[test]
fn replacing_an_lu_under_another_case_keeps_its_data_and_dropping_removes_it() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let lu = |name: &str| {
        format!(
            "LU {name} FROM crm ROOT ('select id from customer') \
             TABLE customer ('select * from customer where id = ?')"
        )
    };
    let setup = format!(
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db'; CREATE {};
         BATCH Customer FABRIC_COMMAND='sync_instance Customer.?'",
        lu("Customer")
    );
    test(d.path(), home.path(), &setup).status(0).run();
    test(
        d.path(),
        home.path(),
        &format!("CREATE OR REPLACE {}", lu("CUSTOMER")),
    )
    .status(0)
    .stdout_contains("LU Customer replaced on interface crm")
    .run();
    // The LU keeps its first name, and its synced data with it.
    let out = test(d.path(), home.path(), "SHOW LUS; GET customer.1")
        .status(0)
        .run();
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0][0]["name"], "Customer", "{}", out.stdout);
    assert!(out.stdout.contains("\"ann\""), "{}", out.stdout);
    let out = test(
        d.path(),
        home.path(),
        "BATCH Customer FROM FABRIC FABRIC_COMMAND='echo ?'",
    )
    .status(0)
    .run();
    assert_eq!(json_lines(&out.stdout)[0][0]["total"], 3, "{}", out.stdout);
    // Dropped under yet another case, its data goes: created again, empty.
    test(
        d.path(),
        home.path(),
        &format!(
            "DROP LU CUSTOMER; CREATE {}; GET Customer.1",
            lu("Customer")
        ),
    )
    .status(1)
    .stderr_contains("not in the LU store")
    .stdout_contains("{\"message\":\"LU Customer dropped, with its synced data\"}")
    .run();
}

/// CREATE OR REPLACE says which it did, for each kind of definition.
#[test]
fn create_or_replace_says_whether_it_replaced() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let define = "CREATE OR REPLACE INTERFACE crm TYPE SQLITE PATH 'crm.db';
         CREATE OR REPLACE LU Customer FROM crm ROOT ('select id from customer');
         CREATE OR REPLACE INSTANCE GROUP Customer.all USING ('select id from customer')";
    let messages = |out: &crate::common::Output| -> Vec<String> {
        json_lines(&out.stdout)
            .iter()
            .map(|v| v["message"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let out = test(d.path(), home.path(), define).status(0).run();
    let first = messages(&out);
    let out = test(d.path(), home.path(), define).status(0).run();
    let second = messages(&out);
    assert_eq!(first.len(), 3, "{}", out.stdout);
    for (a, b) in first.iter().zip(&second) {
        assert!(a.contains(" created"), "{a}");
        assert_eq!(*b, a.replace(" created", " replaced"));
    }
}

#[test]
fn keep_going_runs_the_rest_and_still_fails() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    Test::new()
        .current_dir(d.path())
        .args([
            "--home",
            home.path().to_str().unwrap(),
            "--keep-going",
            "--format",
            "json",
            "-c",
        ])
        .arg("DROP LU nope; CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db'")
        .status(1)
        .stderr_starts_with("error: no LU named nope")
        .stdout_contains("interface crm created")
        .run();
}

#[test]
fn a_parse_error_anywhere_runs_nothing() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    test(
        d.path(),
        home.path(),
        "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db'; SHOW LUSS",
    )
    .status(1)
    .run();
    assert!(
        !home.path().join("store.db").exists(),
        "no store was even created"
    );
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_kept() {
    let d = data();
    let not_store = d.path().join("csv/ids.csv");
    let before = std::fs::read(&not_store).unwrap();
    Test::new()
        .args(["--store", not_store.to_str().unwrap(), "-c", "SHOW LUS"])
        .status(1)
        .stderr_contains("is not a batchsh store")
        .run();
    assert_eq!(std::fs::read(&not_store).unwrap(), before);
}

/// A store from the first release is upgraded in place and keeps its
/// catalog; the upgrade is announced on stderr, except with `--quiet`
/// (SPEC §1: nothing but errors and the data asked for, so a cron job
/// mails nothing).
#[test]
fn an_old_store_is_upgraded_and_quiet_keeps_the_notice_off_stderr() {
    for quiet in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("store.db");
        rusqlite::Connection::open(&store)
            .unwrap()
            .execute_batch(include_str!("fixtures/store_v1.sql"))
            .unwrap();
        let mut args = vec!["--store", store.to_str().unwrap(), "--format", "csv"];
        if quiet {
            args.push("--quiet");
        }
        let t = Test::new()
            .args(args)
            .args(["-c", "SHOW INTERFACES"])
            .status(0)
            .stdout_contains("crm,");
        // --quiet prints no notice of the upgrade.
        if quiet {
            t.stderr("")
        } else {
            t.stderr_contains("upgrading the store from version 1 to")
        }
        .run();
        let version: i64 = rusqlite::Connection::open(&store)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert!(version > 1, "still at version {version}");
    }
}

#[test]
fn settings_change_the_session() {
    let out = Test::new()
        .args([
            "-c",
            "SET FORMAT json; SHOW SETTINGS; SET FORMAT csv; SET PROGRESS off; SHOW SETTINGS",
        ])
        .status(0)
        .run();
    let mut lines = out.stdout.lines();
    let first: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(first["format"], "json");
    assert_eq!(first["progress"], "on");
    // Off a terminal no bar shows, whatever the setting.
    assert_eq!(first["progress_shown"], false);
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest[0], "key,value");
    assert!(
        rest.contains(&"format,csv") && rest.contains(&"progress,off"),
        "{rest:?}"
    );
}

#[test]
fn exit_stops_the_script() {
    let out = Test::new()
        .args([
            "--format",
            "json",
            "-c",
            "SHOW SETTINGS; EXIT; SHOW SETTINGS",
        ])
        .status(0)
        .run();
    assert_eq!(out.stdout.lines().count(), 1);
}

#[test]
fn batchsh_home_places_the_store() {
    let out = Test::new().args(["-c", "SHOW LUS"]).status(0).run();
    assert!(out.home.path().join("store.db").exists());
}

#[test]
fn store_flag_names_the_store_file() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("x/my.db");
    let out = Test::new()
        .args(["--store", f.to_str().unwrap(), "-c", "SHOW LUS"])
        .status(0)
        .run();
    assert!(f.exists());
    assert!(!out.home.path().join("store.db").exists());
}

#[test]
fn a_csv_with_a_bad_row_is_refused_naming_file_and_line() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("csv/bad.csv"), "id,kind\n1,a\n2,b,extra\n").unwrap();
    test(
        d.path(),
        home.path(),
        "CREATE INTERFACE ids TYPE CSV PATH 'csv'",
    )
    .status(1)
    .stderr_contains("bad.csv")
    .stderr_contains("line 3")
    .run();
    test(d.path(), home.path(), "SHOW INTERFACES")
        .stdout_json(serde_json::json!([]))
        .run();
}

#[test]
fn a_misspelled_lu_in_batch_gets_a_suggestion_and_stores_nothing() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let setup = "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
                 CREATE LU Customer FROM crm ROOT ('select id from customer')";
    test(d.path(), home.path(), setup).status(0).run();
    test(
        d.path(),
        home.path(),
        "BATCH Custmer FABRIC_COMMAND='echo ?'",
    )
    .stderr(
        "error: no LU named Custmer (did you mean Customer?)
  --> line 1, column 7
   |
 1 | BATCH Custmer FABRIC_COMMAND='echo ?'
   |       ^^^^^^^
{\"error\":\"no LU named Custmer (did you mean Customer?)\",\"bid\":null}
",
    )
    .run();
    test(d.path(), home.path(), "BATCH_LIST STATUS='ALL'")
        .stdout_json(serde_json::json!([]))
        .run();
}

/// An LU reads its instances: a ROOT or TABLE query that writes, or holds
/// two statements, is refused when the LU is created, as a group's is.
#[test]
fn lu_queries_that_write_or_hold_two_statements_are_refused() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let setup = "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db'";
    test(d.path(), home.path(), setup).status(0).run();
    for (script, want) in [
        (
            "CREATE LU Customer FROM crm ROOT ('delete from customer returning id')",
            "error: the ROOT query is refused: the query would change data; a source query \
             must only read (query: delete from customer returning id)\n  --> line 1, column 35\n",
        ),
        (
            "CREATE LU Customer FROM crm ROOT ('select id from customer') \
             TABLE customer ('select * from customer where id = ?; delete from orders')",
            "error: the TABLE customer query is refused: the text holds more than one \
             statement; give one query",
        ),
        (
            "CREATE LU Customer FROM crm ROOT ('select id from customer') \
             TABLE customer ('update customer set tier = ''x'' where id = ?')",
            "error: the TABLE customer query is refused: the query would change data",
        ),
    ] {
        test(d.path(), home.path(), script)
            .status(1)
            .stderr_starts_with(want)
            .run();
    }
    test(d.path(), home.path(), "SHOW LUS")
        .stdout_json(serde_json::json!([]))
        .run();
    let c = rusqlite::Connection::open(d.path().join("crm.db")).unwrap();
    let rows: i64 = c
        .query_row("SELECT count(*) FROM customer WHERE tier <> 'x'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, 3, "nothing ran");
}

#[test]
fn a_csv_with_an_unclosed_quote_is_refused_naming_file_and_line() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let bad = d.path().join("csv/bad.csv");
    std::fs::write(&bad, "id,kind\n1,\"unterminated\n2,b\n3,c").unwrap();
    for path in ["csv/bad.csv", "csv"] {
        test(
            d.path(),
            home.path(),
            &format!("CREATE INTERFACE ids TYPE CSV PATH '{path}'"),
        )
        .status(1)
        .stderr_starts_with(format!(
            "error: interface ids: {} line 2: a quoted field opens here and is never closed",
            bad.display()
        ))
        .run();
    }
    // A quoted field over several lines that does close is fine.
    std::fs::write(&bad, "id,kind\n1,\"two\nlines\"\n2,b\n").unwrap();
    test(
        d.path(),
        home.path(),
        "CREATE INTERFACE ids TYPE CSV PATH 'csv/bad.csv'",
    )
    .status(0)
    .run();
}

/// Opening a FIFO for reading waits for a writer: as an interface's PATH, or
/// as a .csv file of its folder, it is refused at once instead.
#[test]
fn a_fifo_as_an_interface_path_is_refused_not_waited_on() {
    let d = data();
    let home = tempfile::tempdir().unwrap();
    let fifo = d.path().join("csv/pipe.csv");
    crate::common::mkfifo(&fifo);
    for (kind, path, want) in [
        (
            "SQLITE",
            "csv/pipe.csv",
            "not a file; give the path of an SQLite database file",
        ),
        (
            "CSV",
            "csv/pipe.csv",
            "not a file; give a .csv file or a folder that holds .csv files",
        ),
        (
            "CSV",
            "csv",
            "not a file; every .csv file of a CSV interface's folder is a table",
        ),
    ] {
        let script = format!("CREATE INTERFACE src TYPE {kind} PATH '{path}'");
        test(d.path(), home.path(), &script)
            .timeout(std::time::Duration::from_secs(10))
            .status(1)
            .stderr_starts_with(format!(
                "error: interface src: {} is a FIFO (named pipe), {want}",
                fifo.display()
            ))
            .run();
    }
    test(d.path(), home.path(), "SHOW INTERFACES")
        .stdout_json(serde_json::json!([]))
        .run();
}
