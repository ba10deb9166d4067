//! Unit tests of the data-source layer: one module per interface kind, one
//! for binding and id conversion, one for paths.

mod csv;
mod params;
mod paths;
mod sqlite;

use super::{IdError, Interface, SourceError, for_each_id};
use crate::catalog::InterfaceKind;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn iface(kind: InterfaceKind, path: &Path) -> Interface {
    Interface::new("src", kind, path.to_str().expect("a UTF-8 temp path"))
}

/// A new SQLite database at `dir/name`, set up by `sql`.
fn sqlite_db(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let path = dir.join(name);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    path
}

/// Every id the query gives, in order.
fn all_ids(conn: &rusqlite::Connection, sql: &str) -> Vec<Result<String, IdError>> {
    let mut out = Vec::new();
    let n = for_each_id(conn, sql, &[], &[], |id| {
        out.push(id);
        ControlFlow::Continue(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, out.len() as u64);
    out
}

/// The ids, all of which must be valid.
fn ok_ids(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    all_ids(conn, sql)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A FIFO (named pipe) at `path`: opening it for reading waits for a writer.
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `f` on a thread and fails the test if it takes more than 10 s, so
/// that a regression that waits forever (opening a FIFO) fails instead of
/// hanging the test run. The stuck thread is left behind.
fn in_time<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("finished within 10 s")
}

fn expect_err<T>(r: Result<T, SourceError>) -> SourceError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}
