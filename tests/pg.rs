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

/// A fresh database for `test`, or `None` (after saying so on stderr) when
/// no test server is given.
pub fn database(test: &str) -> Option<Database> {
    let Some(admin) = std::env::var(VAR).ok().filter(|v| !v.is_empty()) else {
        eprintln!("{test}: skipped on PostgreSQL ({VAR} is not set)");
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
        url: with_database(&admin, &name),
        admin,
        name,
    })
}

/// `url` with its database (the last path segment) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].rfind('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Database {
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

#[test]
fn a_database_url_keeps_its_server_and_query() {
    assert_eq!(
        with_database(
            "postgres://postgres@localhost:5432/postgres?host=/tmp/x",
            "t1"
        ),
        "postgres://postgres@localhost:5432/t1?host=/tmp/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db", "t2"),
        "postgres://u:p@h/t2"
    );
    assert_eq!(with_database("postgres://u@h", "t3"), "postgres://u@h/t3");
}
