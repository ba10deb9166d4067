//! The store file itself through the real binary: a damaged store is said
//! to be damaged and left as it is; a store URL no backend serves is a
//! usage error that creates nothing.

use crate::common::{CRM_CUSTOMER_LU, Test, customer_db};
use std::path::PathBuf;

/// A folder with `crm.db` (customers 1..=3000) and a store, `store.db`,
/// that holds the interface `crm`, the LU `Customer` and one finished
/// batch of `echo ?` over every customer: pages of catalog rows, batch
/// rows and entity rows to damage.
struct Damage {
    dir: tempfile::TempDir,
    bid: String,
}

impl Damage {
    fn new() -> Damage {
        let dir = tempfile::tempdir().unwrap();
        customer_db(&dir.path().join("crm.db"), 3000);
        let d = Damage {
            dir,
            bid: String::new(),
        };
        let script = format!("{CRM_CUSTOMER_LU}; BATCH Customer FABRIC_COMMAND='echo ?'");
        d.test(&script).status(0).run();
        let bid = rusqlite::Connection::open(d.store())
            .unwrap()
            .query_row("SELECT bid FROM batches", [], |r| r.get(0))
            .unwrap();
        Damage { bid, ..d }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    fn test(&self, script: &str) -> Test {
        Test::new().current_dir(self.dir.path()).args([
            "--store",
            self.store().to_str().unwrap(),
            "-c",
            script,
        ])
    }

    /// Runs `script` on the store as `damage` leaves it: batchsh must exit
    /// 1 saying the store is damaged, and leave the file as it was, with no
    /// log or index beside it.
    fn assert_damaged(&self, what: &str, damage: impl Fn(&mut Vec<u8>), script: &str) {
        let mut bytes = std::fs::read(self.store()).unwrap();
        damage(&mut bytes);
        let damaged = self.dir.path().join("damaged.db");
        std::fs::write(&damaged, &bytes).unwrap();
        Test::new()
            .current_dir(self.dir.path())
            .args(["--store", damaged.to_str().unwrap(), "-c", script])
            .status(1)
            .stderr_starts_with(format!(
                "error: the store {} is damaged (",
                damaged.display()
            ))
            .stderr_contains("restore a backup")
            .stderr_contains("sqlite3's .recover")
            .stderr_lacks("not a batchsh store")
            .run();
        assert!(std::fs::read(&damaged).unwrap() == bytes, "{what}: changed");
        for beside in ["damaged.db-wal", "damaged.db-shm"] {
            let f = self.dir.path().join(beside);
            assert!(!f.exists(), "{what}, {script}: {} was left", f.display());
        }
    }

    /// Where `text` first occurs in the store file.
    fn offset_of(&self, text: &str) -> usize {
        let bytes = std::fs::read(self.store()).unwrap();
        bytes
            .windows(text.len())
            .position(|w| w == text.as_bytes())
            .unwrap_or_else(|| panic!("{text:?} is not in the store file"))
    }
}

/// The page size of an SQLite file, from its header.
fn page_size(bytes: &[u8]) -> usize {
    match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => usize::from(n),
    }
}

#[test]
fn a_truncated_store_is_damaged_not_foreign_and_is_left_untouched() {
    let d = Damage::new();
    let half = |b: &mut Vec<u8>| b.truncate(b.len() / 2);
    for script in [
        "SHOW INTERFACES",
        "CREATE INTERFACE more TYPE SQLITE PATH 'crm.db'",
    ] {
        d.assert_damaged("cut to half its size", half, script);
    }
}

/// Damage that opening the store does not see, found when a statement
/// reads the rows: a page of entity rows overwritten with garbage, and
/// bytes of text columns that are no longer UTF-8 (SQLite does not check
/// text, rusqlite does).
#[test]
fn damage_found_while_reading_rows_says_the_store_is_damaged() {
    let d = Damage::new();
    let row = d.offset_of(r#"{"echo":"1500"}"#);
    let garbage_page = |b: &mut Vec<u8>| {
        let size = page_size(b);
        let page = row / size * size;
        b[page..page + size].fill(0xA5);
    };
    d.assert_damaged(
        "a page of entity rows overwritten",
        garbage_page,
        &format!("BATCH_DETAILS '{}'", d.bid),
    );
    let not_utf8 = |at: usize| move |b: &mut Vec<u8>| b[at] = 0xFF;
    d.assert_damaged(
        "an entity's result not UTF-8",
        not_utf8(row + 2),
        &format!("BATCH_DETAILS '{}'", d.bid),
    );
    d.assert_damaged(
        "a batch's command not UTF-8",
        not_utf8(d.offset_of("FABRIC_COMMAND")),
        "BATCH_LIST STATUS='ALL'",
    );
    d.assert_damaged(
        "an interface's location not UTF-8",
        not_utf8(d.offset_of("crm.db")),
        "SHOW INTERFACES",
    );
}

/// Runs `t` in a new, empty working folder, and returns the folder with
/// the output, to see what batchsh created there.
#[track_caller]
fn in_empty_dir(t: Test) -> (tempfile::TempDir, crate::common::Output) {
    let dir = tempfile::tempdir().unwrap();
    let out = t.current_dir(dir.path()).run();
    (dir, out)
}

/// Runs `t`, whose store is `url`: a usage error that `says` what, with
/// nothing created in the working folder (no folder `postgres:`) or the
/// home (no store, no log folder).
#[track_caller]
fn assert_refused_url(t: Test, url: &str, says: &str) {
    let (dir, out) = in_empty_dir(
        t.status(2)
            .stderr_starts_with(format!("error: the store {url} is a "))
            .stderr_contains(says),
    );
    crate::common::assert_created_nothing(url, dir.path(), &out);
}

/// Any `scheme://` is refused, from the flag or the environment; a path
/// with a colon is still a file.
#[test]
fn a_url_of_another_scheme_is_not_a_store_batchsh_knows_and_a_path_is_still_a_file() {
    let unknown = "which is not a store batchsh knows";
    for url in ["mysql://db.example/batchsh", "file:///tmp/store.db"] {
        let t = Test::new().args(["--store", url, "-c", "SHOW LUS"]);
        assert_refused_url(t, url, unknown);
    }
    let url = "mysql://db.example/batchsh";
    for args in [
        &["-c", "SHOW LUS"][..],
        &["worker", "--until-idle"],
        &["tick"],
    ] {
        let t = Test::new()
            .env("BATCHSH_STORE", url)
            .args(args.iter().copied());
        assert_refused_url(t, url, unknown);
    }
    for path in ["data/store.db", "./x:y.db"] {
        let (dir, _) = in_empty_dir(
            Test::new()
                .args(["--store", path, "-c", "SHOW LUS"])
                .status(0),
        );
        assert!(dir.path().join(path).is_file(), "{path}: no store file");
    }
}
