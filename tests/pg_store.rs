//! The PostgreSQL store from the command line (SPEC, "A shared store for
//! several machines"): what a bad URL, an unreachable server, a wrong
//! password, another application's database or a newer schema say (exit
//! 1, nothing created), and the same statements giving the same output
//! as on SQLite. The tests that need a server run when
//! `BATCHSH_TEST_POSTGRES` names one (see `pg.rs`).

use crate::common::Test;
use crate::pg;

/// A store that cannot be reached or read is an error (exit 1) that says
/// why, and creates nothing in the home or the working folder.
#[track_caller]
fn refused(url: &str, says: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = Test::new()
        .args(["--store", url, "-c", "SHOW LUS"])
        .current_dir(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .status(1)
        .stderr_starts_with("error: ")
        .run();
    for s in says {
        assert!(out.stderr.contains(s), "{url}: {}", out.stderr);
    }
    assert!(
        !out.stderr.contains("secret"),
        "a password shown: {}",
        out.stderr
    );
    crate::common::assert_created_nothing(url, dir.path(), &out);
}

#[test]
fn a_bad_url_or_a_server_that_does_not_answer_is_a_clear_error() {
    refused(
        "postgres://u:secret@db.example/batchsh?sslmode=sometimes",
        &["is not a PostgreSQL URL", "postgres://u:***@db.example"],
    );
    refused(
        "postgres://u:secret@db.example",
        &["names no database", "postgres://user[:password]@host"],
    );
    // Nothing listens on port 1 of this host.
    refused(
        "postgres://u:secret@127.0.0.1:1/batchsh?connect_timeout=5",
        &[
            "cannot connect to postgres://u:***@127.0.0.1:1/batchsh",
            "nothing listens at 127.0.0.1:1",
        ],
    );
    // The same from the environment, for a worker and for tick.
    for args in [&["worker", "--until-idle"][..], &["tick"]] {
        Test::new()
            .env("BATCHSH_STORE", "postgres://u@127.0.0.1:1/batchsh")
            .args(args.iter().copied())
            .timeout(std::time::Duration::from_secs(30))
            .status(1)
            .stderr_contains("nothing listens at 127.0.0.1:1")
            .run();
    }
}

#[test]
fn a_database_of_another_application_or_a_newer_schema_is_refused_and_left_untouched() {
    let Some(db) = pg::database("a_database_of_another_application_or_a_newer_schema_is_refused")
    else {
        return;
    };
    db.client()
        .batch_execute("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)")
        .unwrap();
    refused(
        &db.url,
        &["is not a batchsh store", "public.invoices", "createdb"],
    );
    let n: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the other application's database was left as it was");

    let Some(db) = pg::database("a_newer_schema") else {
        return;
    };
    Test::new()
        .args(["--store", &db.url, "-c", "SHOW LUS"])
        .status(0)
        .run();
    db.client()
        .execute(
            "UPDATE batchsh_meta SET value = '99' WHERE key = 'version'",
            &[],
        )
        .unwrap();
    refused(&db.url, &["written by a newer batchsh (store version 99"]);
}

#[test]
fn a_missing_database_says_how_to_create_it() {
    let Some(db) = pg::database("a_missing_database_says_how_to_create_it") else {
        return;
    };
    let url = batchsh::pg::with_database(&db.url, "bsh_no_such_database");
    refused(&url, &["does not exist", "createdb bsh_no_such_database"]);
}

#[test]
fn the_quickstart_prints_the_same_on_postgresql_as_on_sqlite() {
    let Some(db) = pg::database("the_quickstart_prints_the_same_on_postgresql_as_on_sqlite") else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.bsh");
    let on = |store: Option<&str>| {
        let mut t = Test::new().args(["--format", "json", script]);
        if let Some(url) = store {
            t = t.env("BATCHSH_STORE", url);
        }
        let out = t.status(0).run();
        normalised(&out.stdout)
    };
    assert_eq!(on(Some(&db.url)), on(None));
}

/// `text` with what differs from run to run (ids, times, durations,
/// rates) written as `_`.
fn normalised(text: &str) -> String {
    let re = regex::Regex::new(
        r#"(?x)
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        | "\d{4}-\d\d-\d\dT[^"]*"
        | "(duration|process_time_ms|time_at_work_ms|pace|avg_rate|remaining_duration)":\s*[^,}]+
        "#,
    )
    .unwrap();
    re.replace_all(text, "_").into_owned()
}

/// The TCP address of the test server (`BATCHSH_TEST_POSTGRES_TCP`, a URL
/// to its `postgres` database over 127.0.0.1: `.ci/run` sets it), where it
/// offers TLS and asks the role `batchsh_pw` for its password; `None`
/// when it is not given.
fn over_tcp(test: &str) -> Option<String> {
    let url = std::env::var("BATCHSH_TEST_POSTGRES_TCP")
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        if std::env::var(pg::VAR).is_ok_and(|v| !v.is_empty()) {
            use std::io::Write;
            let _ = std::io::stderr().write_all(
                format!(
                    "{test}: skipped (BATCHSH_TEST_POSTGRES_TCP is not set; .ci/run sets it)\n"
                )
                .as_bytes(),
            );
        } else {
            pg::skipped(test);
        }
    }
    url
}

/// `sslmode=require`: the store's connection is encrypted (the server
/// lists it in pg_stat_ssl while a batch runs).
#[test]
fn sslmode_require_encrypts_the_connection() {
    let Some(tcp) = over_tcp("sslmode_require_encrypts_the_connection") else {
        return;
    };
    let Some(db) = pg::database("sslmode_require_encrypts_the_connection") else {
        return;
    };
    let name = db.name().to_string();
    let url = format!(
        "{}?sslmode=require",
        batchsh::pg::with_database(&tcp, &name)
    );
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let running = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"))
        .args([
            "--home",
            home.path().to_str().unwrap(),
            "--store",
            &url,
            "-q",
            "-c",
        ])
        .arg(format!(
            "BATCH x.('1') FABRIC_COMMAND=\"shell 'while [ ! -e {} ]; do sleep 0.05; done; : ?'\"",
            go.display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut admin = db.client();
    crate::world::eventually("batchsh's encrypted connection", || {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
                 WHERE a.application_name = 'batchsh' AND a.datname = $1 AND s.ssl",
                &[&name],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
    });
    std::fs::write(&go, "").unwrap();
    let out = running.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A wrong password is refused with the server's words and where to give
/// the right one; the right one is taken from the URL, from PGPASSWORD
/// and from the password file.
#[test]
fn a_wrong_password_is_refused_and_the_right_one_found_where_libpq_looks() {
    let Some(tcp) = over_tcp("a_wrong_password_is_refused") else {
        return;
    };
    let Some(db) = pg::database("a_wrong_password_is_refused") else {
        return;
    };
    let mut admin = db.client();
    admin
        .batch_execute(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'batchsh_pw') THEN
                     CREATE ROLE batchsh_pw LOGIN PASSWORD 'right';
                 END IF;
             END $$",
        )
        .unwrap();
    let name = db.name().to_string();
    admin
        .batch_execute(&format!(
            "GRANT ALL ON DATABASE {name} TO batchsh_pw; GRANT ALL ON SCHEMA public TO batchsh_pw"
        ))
        .ok();
    let at = |user: &str| {
        batchsh::pg::with_database(&tcp.replacen("postgres@", &format!("{user}@"), 1), &name)
    };
    refused(
        &at("batchsh_pw:secret"),
        &[
            "password authentication failed",
            "PGPASSWORD",
            "batchsh_pw:***@",
        ],
    );
    Test::new()
        .args(["--store", &at("batchsh_pw:right"), "-c", "SHOW LUS"])
        .status(0)
        .run();
    Test::new()
        .env("PGPASSWORD", "right")
        .args(["--store", &at("batchsh_pw"), "-c", "SHOW LUS"])
        .status(0)
        .run();
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, "127.0.0.1:*:*:batchsh_pw:right\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    Test::new()
        .env("PGPASSFILE", pgpass.to_str().unwrap())
        .args(["--store", &at("batchsh_pw"), "-c", "SHOW LUS"])
        .status(0)
        .run();
}
