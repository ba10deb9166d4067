//! SqliteStore tests: opening, refusing, migrating, and the catalog tables.

use super::*;
use crate::store::CatalogStore;
use crate::store::batches::*;
use crate::store::reads::*;

fn temp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("sub/store.db");
    (d, p)
}

fn pragma(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0).map(|v| match v {
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
    })
    .unwrap()
}

/// A store at `p` as batchsh left it at schema `version` (its first
/// `version` migrations), for the upgrade tests to fill and reopen.
fn store_at_version(p: &Path, version: usize) -> Connection {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let c = Connection::open(p).unwrap();
    for sql in &migrations::MIGRATIONS[..version] {
        c.execute_batch(sql).unwrap();
    }
    c.execute_batch(&format!(
        "PRAGMA user_version = {version}; PRAGMA application_id = {APPLICATION_ID};"
    ))
    .unwrap();
    c
}

#[test]
fn a_new_store_is_created_in_wal_mode_at_the_latest_version() {
    let (_d, p) = temp();
    let s = SqliteStore::open(&p).unwrap();
    assert_eq!(pragma(s.conn(), "journal_mode"), "wal");
    assert_eq!(
        pragma(s.conn(), "user_version"),
        migrations::latest().to_string()
    );
    assert_eq!(
        pragma(s.conn(), "application_id"),
        APPLICATION_ID.to_string()
    );
    assert_eq!(pragma(s.conn(), "foreign_keys"), "1");
    // FULL (2): a commit is on disk when it returns, so a power loss loses
    // no COMPLETED entity (SPEC §7). NORMAL (1) would sync at checkpoints.
    assert_eq!(pragma(s.conn(), "synchronous"), "2");
    drop(s);
    // Opening again changes nothing and works.
    let s = SqliteStore::open(&p).unwrap();
    assert!(s.interfaces().unwrap().is_empty());
}

#[test]
fn an_empty_file_or_empty_database_becomes_a_store() {
    let (_d, p) = temp();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"").unwrap();
    SqliteStore::open(&p).unwrap();
    let p2 = p.with_file_name("empty.db");
    Connection::open(&p2)
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();
    SqliteStore::open(&p2).unwrap();
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let (_d, p) = temp();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let bytes = b"id,name\n1,alice\n".repeat(100);
    std::fs::write(&p, &bytes).unwrap();
    match SqliteStore::open(&p) {
        Err(StoreError::NotAStore { .. }) => {}
        other => panic!("expected NotAStore, got {:?}", other.err()),
    }
    assert_eq!(std::fs::read(&p).unwrap(), bytes);
    assert!(!p.with_extension("db-wal").exists());
}

#[test]
fn another_applications_database_is_refused_and_left_untouched() {
    let (_d, p) = temp();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    Connection::open(&p)
        .unwrap()
        .execute_batch("CREATE TABLE customer (id INTEGER); INSERT INTO customer VALUES (1);")
        .unwrap();
    let before = std::fs::read(&p).unwrap();
    let e = SqliteStore::open(&p).err().expect("refused");
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
    assert!(e.to_string().contains("another application"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn an_empty_database_with_another_applications_version_is_refused_and_left_untouched() {
    // No tables, but a user_version: some program's database, not an
    // empty one to initialise (nor a batchsh store: no application_id).
    for version in [3, 99] {
        let (_d, p) = temp();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        Connection::open(&p)
            .unwrap()
            .execute_batch(&format!("PRAGMA user_version = {version}; VACUUM;"))
            .unwrap();
        let before = std::fs::read(&p).unwrap();
        let e = SqliteStore::open(&p).err().expect("refused");
        assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
        assert!(e.to_string().contains("another application"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), before);
        assert!(!p.with_extension("db-wal").exists());
    }
}

/// SQLite's header, then what SQLite cannot read: a damaged database,
/// batchsh's or another program's, to repair rather than to replace with
/// another file; it is not touched either way.
#[test]
fn a_file_with_sqlites_header_that_sqlite_cannot_read_is_damaged_and_left_untouched() {
    let (_d, p) = temp();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let other = p.with_file_name("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE customer (id INTEGER); INSERT INTO customer VALUES (1);")
        .unwrap();
    let mut garbled = std::fs::read(&other).unwrap();
    garbled[100..].fill(0xA5);
    for bytes in [garbled, b"SQLite format 3\0 and nothing after".to_vec()] {
        std::fs::write(&p, &bytes).unwrap();
        let e = SqliteStore::open(&p).err().expect("refused");
        assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
        assert!(!p.with_extension("db-wal").exists());
    }
}

#[test]
fn a_newer_store_is_refused_and_left_untouched() {
    let (_d, p) = temp();
    drop(SqliteStore::open(&p).unwrap());
    let newer = migrations::latest() + 1;
    Connection::open(&p)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {newer}"))
        .unwrap();
    let before = std::fs::read(&p).unwrap();
    let e = SqliteStore::open(&p).err().expect("refused");
    assert!(
        matches!(e, StoreError::Newer { found, supported, .. } if found == newer && supported == newer - 1),
        "{e}"
    );
    assert!(e.to_string().contains("newer batchsh"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn an_older_store_is_upgraded_in_place() {
    let (_d, p) = temp();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    // Version 0 of a batchsh store: the id set, no schema yet.
    Connection::open(&p)
        .unwrap()
        .execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
        .unwrap();
    let s = SqliteStore::open(&p).unwrap();
    assert_eq!(
        pragma(s.conn(), "user_version"),
        migrations::latest().to_string()
    );
}

#[test]
fn processes_opening_a_new_store_at_once_all_succeed() {
    let (_d, p) = temp();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || SqliteStore::open(&p).map(|_| ()).map_err(|e| e.to_string()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let s = SqliteStore::open(&p).unwrap();
    assert_eq!(
        pragma(s.conn(), "user_version"),
        migrations::latest().to_string()
    );
}

/// A store written by the first release (catalog only) is upgraded in place
/// and keeps its data.
#[test]
fn a_version_1_store_is_upgraded_and_keeps_its_catalog() {
    let (_d, p) = temp();
    {
        let c = store_at_version(&p, 1);
        c.execute(
            "INSERT INTO interfaces (name, kind, location, options, created_at)
             VALUES ('crm', 'SQLITE', '/data/crm.db', '{}', '2026-11-01T00:00:00.000Z')",
            [],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&p).unwrap();
    assert_eq!(
        pragma(s.conn(), "user_version"),
        migrations::latest().to_string()
    );
    assert_eq!(s.interface("crm").unwrap().location, "/data/crm.db");
    let batches: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
        .unwrap();
    assert_eq!(batches, 0);
}

/// The store prints nothing of an upgrade: it tells the caller, before
/// the upgrade runs, and only when a store that holds data is upgraded.
#[test]
fn an_upgrade_is_told_to_the_caller_once() {
    let (_d, p) = temp();
    let heard = std::cell::RefCell::new(Vec::new());
    let tell = |u: crate::store::Upgrade| heard.borrow_mut().push(u);
    let told = || Upgrades::Told(&tell);
    drop(SqliteStore::open_with(&p, told()).unwrap());
    assert!(heard.borrow().is_empty(), "a new store is no upgrade");
    let old = p.with_file_name("old.db");
    drop(store_at_version(&old, 1));
    drop(SqliteStore::open_with(&old, told()).unwrap());
    drop(SqliteStore::open_with(&old, told()).unwrap());
    let to = migrations::latest();
    assert_eq!(*heard.borrow(), [crate::store::Upgrade { from: 1, to }]);
    assert_eq!(
        heard.borrow()[0].to_string(),
        format!("upgrading the store from version 1 to {to}; this runs once")
    );
}

/// A version-2 store (entity rows keyed by the bid) is upgraded in place:
/// every batch gets a number, its entity rows move under it unchanged,
/// and the executor and the readers go on with it.
#[test]
fn a_version_2_store_is_upgraded_and_keeps_its_batches_and_entities() {
    let (_d, p) = temp();
    {
        let c = store_at_version(&p, 2);
        for (bid, n) in [("bid-a", 3), ("bid-b", 2)] {
            c.execute(
                "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                     execution_id, created_by, creation_time, total, completed, failed)
                 VALUES (?1, 'BATCH X', 'X', 'echo ?', '{}', '{}', 'DONE', 'e', 'n',
                     '2026-11-01T00:00:00.000Z', ?2, ?2 - 1, 1)",
                rusqlite::params![bid, n],
            )
            .unwrap();
            for seq in 1..=n {
                c.execute(
                    "INSERT INTO batch_entities (bid, seq, entity_id, status, attempts, result)
                     VALUES (?1, ?2, ?3, ?4, 1, '{\"k\":1}')",
                    rusqlite::params![
                        bid,
                        seq,
                        format!("{bid}-{seq}"),
                        if seq == 1 { "FAILED" } else { "COMPLETED" }
                    ],
                )
                .unwrap();
            }
        }
    }
    let s = SqliteStore::open(&p).unwrap();
    assert_eq!(
        pragma(s.conn(), "user_version"),
        migrations::latest().to_string()
    );
    let q = crate::store::DetailsQuery {
        limit: None,
        ..Default::default()
    };
    let ids = |bid: &str| -> Vec<(String, String)> {
        s.entity_rows(bid, &q)
            .unwrap()
            .into_iter()
            .map(|r| (r.entity_id, r.status.to_string()))
            .collect()
    };
    assert_eq!(
        ids("bid-a"),
        [
            ("bid-a-1".to_string(), "FAILED".to_string()),
            ("bid-a-2".into(), "COMPLETED".into()),
            ("bid-a-3".into(), "COMPLETED".into())
        ]
    );
    assert_eq!(ids("bid-b").len(), 2);
    let failed_only = crate::store::DetailsQuery {
        statuses: Some(vec![crate::batch::EntityStatus::Failed]),
        limit: None,
        ..Default::default()
    };
    let failed = s.entity_rows("bid-b", &failed_only).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].entity_id, "bid-b-1");
    assert_eq!(failed[0].result.as_deref(), Some("{\"k\":1}"));
    // Batches keep distinct numbers; a new one takes the next.
    let nos: Vec<i64> = s
        .conn()
        .prepare("SELECT batch_no FROM batches ORDER BY batch_no")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(nos, [1, 2]);
    s.test_batch("bid-c");
    let no: i64 = s
        .conn()
        .query_row(
            "SELECT batch_no FROM batches WHERE bid = 'bid-c'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(no, 3);
    // A retry finds the failed entity through the new index.
    let seen = s.batch_state("bid-a").unwrap();
    let c = s
        .prepare_retry("bid-a", true, &seen, "n1", "e2")
        .unwrap()
        .unwrap();
    assert_eq!((c.total, c.waiting, c.completed), (3, 1, 2));
}

#[test]
fn the_checkpointer_copies_the_log_into_the_store_file_while_the_writer_goes_on() {
    let (_d, p) = temp();
    let s = SqliteStore::open(&p).unwrap();
    // Only the checkpointer may copy the log here.
    s.conn()
        .execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (x TEXT);
             WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 2000)
             INSERT INTO t SELECT printf('%.1000c', 'x') FROM c;",
        )
        .unwrap();
    let size = || std::fs::metadata(&p).unwrap().len();
    assert!(size() < 1_000_000, "still in the log: {}", size());
    let c = s.checkpointer();
    c.nudge();
    // Dropping it waits for the checkpoint asked for.
    drop(c);
    assert!(size() > 2_000_000, "copied into the store file: {}", size());
    let n: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2000);
}

/// A version-4 store (entity and claim times as RFC 3339 texts) is
/// upgraded in place: the times become milliseconds (`*_ms` columns), the
/// same instants, which the readers get as such.
#[test]
fn a_version_4_store_keeps_its_entity_times_as_milliseconds() {
    let (_d, p) = temp();
    {
        let c = store_at_version(&p, 4);
        c.execute_batch(
            "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                 execution_id, created_by, creation_time, total, completed, waiting, in_process,
                 batch_no)
             VALUES ('bid-a', 'BATCH X', 'X', 'echo ?', '{}', '{}', 'IN_PROGRESS', 'e', 'n',
                 '2026-11-01T00:00:00.000Z', 3, 1, 1, 1, 7);
             INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, node,
                 start_time, end_time, retry_at, process_time_ms)
             VALUES (7, 1, 'a', 'COMPLETED', 1, 'n1', '2026-11-01T10:00:00.123Z',
                     '2026-11-01T10:00:01.999Z', NULL, 1876),
                    (7, 2, 'b', 'WAITING', 1, NULL, NULL, '2026-11-01T10:00:02.001Z',
                     '2026-11-01T10:05:00.000Z', 2);
             INSERT INTO batch_claims (batch, first_seq, node, start_time, open, ids)
             VALUES (7, 3, 'n1', '2026-11-01T10:00:03.045Z', 1, '[\"c\"]');",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&p).unwrap();
    assert_eq!(
        pragma(s.conn(), "user_version"),
        migrations::latest().to_string()
    );
    let times: Vec<(Option<i64>, Option<i64>, Option<i64>)> = s
        .conn()
        .prepare("SELECT start_time_ms, end_time_ms, retry_at_ms FROM batch_entities ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(
        times,
        [
            (
                Some(ms("2026-11-01T10:00:00.123Z")),
                Some(ms("2026-11-01T10:00:01.999Z")),
                None
            ),
            (
                None,
                Some(ms("2026-11-01T10:00:02.001Z")),
                Some(ms("2026-11-01T10:05:00.000Z"))
            ),
        ]
    );
    // The claimed entity is still shown at work, since the same moment.
    let at_work = s.in_process_rows().unwrap();
    assert_eq!(at_work.len(), 1);
    assert_eq!(at_work[0].entity_id, "c");
    assert_eq!(
        at_work[0].start_time_ms,
        Some(ms("2026-11-01T10:00:03.045Z"))
    );
    // A batchsh from before the upgrade, still running, cannot write text
    // times into the integer columns unnoticed: its statements fail.
    for old in [
        "UPDATE batch_entities SET status = 'IN_PROCESS', start_time = '2026-11-01T10:00:04.000Z',
             retry_at = NULL WHERE batch = 7 AND seq = 2",
        "INSERT INTO batch_claims (batch, first_seq, node, start_time, open, ids)
             VALUES (7, 9, 'n1', '2026-11-01T10:00:04.000Z', 1, '[\"d\"]')",
        "SELECT start_time FROM batch_claimed",
    ] {
        let e = s.conn().prepare(old).err().unwrap().to_string();
        assert!(
            e.contains("no such column") || e.contains("has no column named"),
            "{e}"
        );
    }
}
