//! The store file itself through the real binary: a damaged store is said
//! to be damaged and left as it is.

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
        let out = d.run(&script);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let bid = rusqlite::Connection::open(d.store())
            .unwrap()
            .query_row("SELECT bid FROM batches", [], |r| r.get(0))
            .unwrap();
        Damage { bid, ..d }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    fn run(&self, script: &str) -> crate::common::Output {
        Test::new()
            .current_dir(self.dir.path())
            .args(["--store", self.store().to_str().unwrap(), "-c", script])
            .run()
    }

    /// Runs `script` on the store as `damage` leaves it: batchsh must exit
    /// 1 saying the store is damaged, and leave the file as it was, with no
    /// log or index beside it.
    fn assert_damaged(&self, what: &str, damage: impl Fn(&mut Vec<u8>), script: &str) {
        let mut bytes = std::fs::read(self.store()).unwrap();
        damage(&mut bytes);
        let damaged = self.dir.path().join("damaged.db");
        std::fs::write(&damaged, &bytes).unwrap();
        let out = Test::new()
            .current_dir(self.dir.path())
            .args(["--store", damaged.to_str().unwrap(), "-c", script])
            .run();
        let said = format!("{what}, {script}: exit {}\n{}", out.code, out.stderr);
        assert_eq!(out.code, 1, "{said}");
        assert!(
            out.stderr.starts_with(&format!(
                "error: the store {} is damaged (",
                damaged.display()
            )) && out.stderr.contains("restore a backup")
                && out.stderr.contains("sqlite3's .recover"),
            "{said}"
        );
        assert!(!out.stderr.contains("not a batchsh store"), "{said}");
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
