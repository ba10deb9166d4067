//! PostgreSQL for the tests that need it. `BATCHSH_TEST_POSTGRES` names a
//! server (as a URL to a database there, `.ci/pg-cluster` prints one) on
//! which the tests may create databases; each test gets a fresh database
//! of its own, dropped when it is done. Without the variable, a test that
//! needs PostgreSQL says in one line that it skipped it.

use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that names the test server.
pub const VAR: &str = "BATCHSH_TEST_POSTGRES";

/// A database of one test's own, dropped with it.
pub struct Database {
    /// Its URL, as `--store` or an interface's URL takes it.
    pub url: String,
    admin: String,
    name: String,
}

/// Says that the tests on PostgreSQL are skipped (`test` the first of
/// them): once per test binary, past the test harness's capture, so that
/// a skip is seen and does not pass silently.
pub fn skipped(test: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        use std::io::Write;
        let _ = std::io::stderr().write_all(
            format!(
                "{test} and the other tests on PostgreSQL: skipped \
                 ({VAR} is not set; .ci/run sets it)\n"
            )
            .as_bytes(),
        );
    });
}

/// A fresh database for `test`, or `None` (after saying so on stderr) when
/// no test server is given.
pub fn database(test: &str) -> Option<Database> {
    let Some(admin) = std::env::var(VAR).ok().filter(|v| !v.is_empty()) else {
        skipped(test);
        return None;
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "bsh_t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("{VAR}={admin}: cannot connect: {e}"));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    Some(Database {
        url: batchsh::pg::with_database(&admin, &name),
        admin,
        name,
    })
}

impl Database {
    /// Drops it now, under whatever uses it (`WITH (FORCE)`: the server
    /// ends their sessions).
    pub fn drop_now(&self) {
        postgres::Client::connect(&self.admin, postgres::NoTls)
            .and_then(|mut c| c.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name)))
            .unwrap_or_else(|e| panic!("cannot drop database {}: {e}", self.name));
    }

    /// Its name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client on this database, for a test to look at or change rows.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Whether this run keeps every test's store in PostgreSQL: the second
/// pass of `.ci/run` sets `BATCHSH_TEST_STORE_SERVER` (see batchsh's
/// `knobs::store_server`) for the tests of workers, takeover, schedules
/// and windows.
pub fn stores_on_postgres() -> bool {
    std::env::var("BATCHSH_TEST_STORE_SERVER").is_ok_and(|v| !v.is_empty())
}

/// For a test of the SQLite store file itself (its locks, its log, its
/// header): false when the stores are in PostgreSQL, after saying so in
/// one line (written past the test harness's capture, so that a skip is
/// seen).
pub fn sqlite_file_test(test: &str) -> bool {
    if !stores_on_postgres() {
        return true;
    }
    use std::io::Write;
    let _ = std::io::stderr().write_all(
        format!("{test}: skipped on a PostgreSQL store (it tests the SQLite file)\n").as_bytes(),
    );
    false
}

/// The URL of the store a test's processes use for the home `home` when
/// the stores are in PostgreSQL.
pub fn store_url(home: &std::path::Path) -> Option<String> {
    let server = std::env::var("BATCHSH_TEST_STORE_SERVER")
        .ok()
        .filter(|v| !v.is_empty())?;
    Some(batchsh::pg::database_for(&server, home).expect("the test store's database"))
}

/// The JSON output of a batchsh run of `script`, which must have ended
/// with exit 0 (else the assertion shows its stderr).
#[track_caller]
pub fn json_output(script: &str, out: &std::process::Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{script}: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap()
}
