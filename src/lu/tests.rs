//! The LU store against a real source database in a temporary folder.

use super::*;
use crate::store::LuTableDef;
use rusqlite::Connection;
use std::sync::Arc;
use tempfile::TempDir;

struct Fixture {
    dir: TempDir,
    source: Connection,
    lu: LuDef,
}

impl Fixture {
    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn store(&self) -> LuStore {
        LuStore::open(self.home(), &self.lu).unwrap()
    }

    fn source_path(&self) -> PathBuf {
        self.dir.path().join("crm.db")
    }

    fn exec(&self, sql: &str) {
        self.source.execute_batch(sql).unwrap();
    }

    /// A second connection that watches for commits to the LU store.
    fn observer(&self) -> Connection {
        Connection::open(self.home().join("lu/Customer.db")).unwrap()
    }
}

fn table(name: &str, key: &[&str], sql: &str) -> LuTableDef {
    LuTableDef {
        name: name.into(),
        key: key.iter().map(|k| k.to_string()).collect(),
        sql: sql.into(),
    }
}

fn lu_def(name: &str, tables: Vec<LuTableDef>) -> LuDef {
    LuDef {
        name: name.into(),
        interface: "crm".into(),
        root_sql: "select id from customer".into(),
        tables,
        created_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

/// Customer 1: two orders, two addresses; customer 2: no orders; customer
/// 3 is not in the source at all.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let source = Connection::open(dir.path().join("crm.db")).unwrap();
    source
        .execute_batch(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL);
             CREATE TABLE address (customer_id INTEGER, kind TEXT, city TEXT);
             INSERT INTO customer VALUES (1, 'Ada'), (2, 'Bob');
             INSERT INTO orders VALUES (10, 1, 9.5), (11, 1, 20.0);
             INSERT INTO address VALUES (1, 'home', 'Oslo'), (1, 'work', 'Bergen');",
        )
        .unwrap();
    let lu = lu_def(
        "Customer",
        vec![
            table("customer", &[], "select * from customer where id = ?"),
            table("orders", &[], "select * from orders where customer_id = ?"),
            table(
                "address",
                &["customer_id", "kind"],
                "select * from address where customer_id = ?",
            ),
        ],
    );
    Fixture { dir, source, lu }
}

fn outcome(v: serde_json::Value) -> &'static str {
    let added = v["Added"].as_i64().unwrap();
    let updated = v["Updated"].as_i64().unwrap();
    let unchanged = v["Unchanged"].as_i64().unwrap();
    assert_eq!(added + updated + unchanged, 1, "{v}");
    match (added, updated) {
        (1, _) => "Added",
        (_, 1) => "Updated",
        _ => "Unchanged",
    }
}

fn sync(f: &Fixture, store: &LuStore, id: &str) -> &'static str {
    outcome(store.sync_instance(&f.lu, &f.source, id).unwrap())
}

fn data_version(c: &Connection) -> i64 {
    c.query_row("PRAGMA data_version", [], |r| r.get(0))
        .unwrap()
}

/// The instance's rows of one table, as text, for compact assertions.
fn rows(store: &LuStore, lu: &LuDef, id: &str, table: &str) -> Vec<Vec<String>> {
    let tables = store.get(lu, id).unwrap().expect("instance in the store");
    let t = tables.into_iter().find(|t| t.name == table).unwrap();
    t.rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| match v {
                    Atom::Null => "NULL".to_string(),
                    Atom::Int(i) => i.to_string(),
                    Atom::Real(bits) => format!("{:?}", f64::from_bits(bits)),
                    Atom::Text(s) => s,
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

#[test]
fn first_sync_adds_and_a_second_is_unchanged_without_writing() {
    let f = fixture();
    let store = f.store();
    assert_eq!(sync(&f, &store, "1"), "Added");
    let observer = f.observer();
    let before = data_version(&observer);
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
    assert_eq!(data_version(&observer), before, "an unchanged sync wrote");
    // The observer does see writes: the check above is not vacuous.
    f.exec("UPDATE customer SET name = 'Ada L.' WHERE id = 1");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    assert_ne!(data_version(&observer), before);
}

#[test]
fn the_result_json_has_the_spec_keys() {
    let f = fixture();
    let store = f.store();
    assert_eq!(
        store.sync_instance(&f.lu, &f.source, "1").unwrap(),
        serde_json::json!({"Added": 1, "Updated": 0, "Unchanged": 0})
    );
    assert_eq!(
        store.sync_instance(&f.lu, &f.source, "1").unwrap(),
        serde_json::json!({"Added": 0, "Updated": 0, "Unchanged": 1})
    );
}

#[test]
fn a_changed_row_is_updated_in_place() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    f.exec("UPDATE orders SET amount = 12.25 WHERE id = 10");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    assert_eq!(
        rows(&store, &f.lu, "1", "orders"),
        [["10", "1", "12.25"], ["11", "1", "20.0"]]
    );
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
}

#[test]
fn a_deleted_or_added_source_row_is_an_update() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    f.exec("DELETE FROM orders WHERE id = 11");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    assert_eq!(rows(&store, &f.lu, "1", "orders"), [["10", "1", "9.5"]]);
    f.exec("INSERT INTO orders VALUES (12, 1, 1.0)");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    assert_eq!(
        rows(&store, &f.lu, "1", "orders"),
        [["10", "1", "9.5"], ["12", "1", "1.0"]]
    );
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
}

#[test]
fn a_value_that_changes_type_is_an_update() {
    let f = fixture();
    // `v` has no declared type: the source keeps 1, 1.0 and '1' apart.
    f.exec("CREATE TABLE loose (id INTEGER, v); INSERT INTO loose VALUES (1, 1);");
    let lu = lu_def(
        "Loose",
        vec![table("loose", &[], "select * from loose where id = ?")],
    );
    let store = LuStore::open(f.home(), &lu).unwrap();
    let run = || outcome(store.sync_instance(&lu, &f.source, "1").unwrap());
    assert_eq!(run(), "Added");
    f.exec("UPDATE loose SET v = '1'");
    assert_eq!(run(), "Updated");
    f.exec("UPDATE loose SET v = 1.0");
    assert_eq!(run(), "Updated");
    assert_eq!(run(), "Unchanged");
    f.exec("UPDATE loose SET v = x'00ff'");
    assert_eq!(run(), "Updated");
    assert_eq!(run(), "Unchanged");
    let tables = store.get(&lu, "1").unwrap().unwrap();
    assert_eq!(tables[0].rows, [[Atom::Int(1), Atom::Blob(vec![0, 255])]]);
}

#[test]
fn an_instance_without_rows_is_added_then_unchanged() {
    let f = fixture();
    let store = f.store();
    assert_eq!(sync(&f, &store, "3"), "Added");
    let observer = f.observer();
    let before = data_version(&observer);
    assert_eq!(sync(&f, &store, "3"), "Unchanged");
    assert_eq!(data_version(&observer), before);
    let tables = store.get(&f.lu, "3").unwrap().expect("recorded");
    assert!(tables.iter().all(|t| t.rows.is_empty()));
    // Rows appearing later make it an update, not an add.
    f.exec("INSERT INTO customer VALUES (3, 'Cy')");
    assert_eq!(sync(&f, &store, "3"), "Updated");
}

#[test]
fn a_two_column_key_identifies_rows() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    let rowids = |c: &Connection| -> Vec<(i64, String)> {
        c.prepare("SELECT __rowid, kind FROM address ORDER BY __rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let observer = f.observer();
    let before = rowids(&observer);
    f.exec("UPDATE address SET city = 'Trondheim' WHERE kind = 'work'");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    // Same key: the row was updated, not deleted and inserted.
    assert_eq!(rowids(&observer), before);
    assert_eq!(
        rows(&store, &f.lu, "1", "address"),
        [["1", "home", "Oslo"], ["1", "work", "Trondheim"]]
    );
    // A new kind is a new row.
    f.exec("INSERT INTO address VALUES (1, 'cabin', 'Geilo')");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    assert_eq!(rows(&store, &f.lu, "1", "address").len(), 3);
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
}

#[test]
fn duplicate_rows_and_keys_still_sync_exactly() {
    let f = fixture();
    f.exec("INSERT INTO address VALUES (1, 'home', 'Oslo'), (1, 'home', 'Moss')");
    let store = f.store();
    assert_eq!(sync(&f, &store, "1"), "Added");
    assert_eq!(rows(&store, &f.lu, "1", "address").len(), 4);
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
    f.exec("DELETE FROM address WHERE city = 'Moss'");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    let mut got = rows(&store, &f.lu, "1", "address");
    got.sort();
    assert_eq!(
        got,
        [
            ["1", "home", "Oslo"],
            ["1", "home", "Oslo"],
            ["1", "work", "Bergen"]
        ]
    );
}

#[test]
fn delete_instance_reports_whether_it_was_there() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    sync(&f, &store, "2");
    assert_eq!(
        store.delete_instance(&f.lu, "1").unwrap(),
        serde_json::json!({"Deleted": 1})
    );
    assert!(store.get(&f.lu, "1").unwrap().is_none());
    assert!(store.get(&f.lu, "2").unwrap().is_some());
    let observer = f.observer();
    let before = data_version(&observer);
    assert_eq!(
        store.delete_instance(&f.lu, "1").unwrap(),
        serde_json::json!({"Deleted": 0})
    );
    assert_eq!(data_version(&observer), before);
    // An instance with no rows is there too.
    sync(&f, &store, "3");
    assert!(store.delete(&f.lu, "3").unwrap());
    // After a delete, a sync adds it again.
    assert_eq!(sync(&f, &store, "1"), "Added");
}

#[test]
fn delete_reaches_tables_the_lu_no_longer_defines() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    let smaller = lu_def("Customer", vec![f.lu.tables[0].clone()]);
    assert!(store.delete(&smaller, "1").unwrap());
    let left: i64 = f
        .observer()
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn for_each_instance_streams_ids_in_order_and_stops_early() {
    let f = fixture();
    let lu = lu_def("Customer", vec![]);
    let store = LuStore::open(f.home(), &lu).unwrap();
    for id in ["9", "10", "2", "b", "a"] {
        store.sync(&lu, &f.source, id).unwrap();
    }
    let mut seen = Vec::new();
    let n = store
        .for_each_instance(|id| {
            seen.push(id);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(seen, ["10", "2", "9", "a", "b"]);

    let mut seen = Vec::new();
    let n = store
        .for_each_instance(|id| {
            seen.push(id);
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(seen, ["10", "2"]);
}

#[test]
fn for_each_instance_reads_past_one_page() {
    let f = fixture();
    let lu = lu_def("Customer", vec![]);
    let store = LuStore::open(f.home(), &lu).unwrap();
    let mut conn = Connection::open(store.path()).unwrap();
    let tx = conn.transaction().unwrap();
    for k in 0..2500 {
        tx.execute(
            "INSERT INTO __instances (id, added_at, changed_at) VALUES (?1, 'x', 'x')",
            [format!("{k:05}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let mut seen = Vec::new();
    let n = store
        .for_each_instance(|id| {
            seen.push(id);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(n, 2500);
    let expected: Vec<String> = (0..2500).map(|k| format!("{k:05}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn get_instance_gives_every_table_under_its_stored_columns() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    let tables = get_instance(f.home(), &f.lu, "1").unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["customer", "orders", "address"]);
    assert_eq!(tables[0].columns, ["id", "name"]);
    assert_eq!(tables[0].rows, [[Atom::Int(1), Atom::Text("Ada".into())]]);
    assert_eq!(tables[1].columns, ["id", "customer_id", "amount"]);
    assert_eq!(
        tables[1].rows[1],
        [Atom::Int(11), Atom::Int(1), Atom::real(20.0)]
    );
    assert_eq!(tables[2].rows.len(), 2);
}

#[test]
fn get_instance_of_a_missing_instance_says_how_to_sync_it() {
    let f = fixture();
    let expected = "instance 42 of LU Customer is not in the LU store (sync it first: \
                    BATCH Customer.('42') FABRIC_COMMAND=\"sync_instance Customer.?\")";
    // No file yet: none is created for a look.
    let e = get_instance(f.home(), &f.lu, "42").unwrap_err();
    assert_eq!(e.to_string(), expected);
    assert!(!f.home().join("lu/Customer.db").exists());
    let store = f.store();
    sync(&f, &store, "1");
    let e = get_instance(f.home(), &f.lu, "42").unwrap_err();
    assert_eq!(e.to_string(), expected);
    let e = get_instance(f.home(), &f.lu, "it's").unwrap_err();
    assert!(e.to_string().contains("BATCH Customer.('it''s')"), "{e}");
}

#[test]
fn hostile_table_and_column_names_are_quoted() {
    let f = fixture();
    f.exec(
        r#"CREATE TABLE "a""b" ("select" TEXT, "x y" INTEGER, "c""d" TEXT, owner INTEGER);
           INSERT INTO "a""b" VALUES ('k1', 1, 'q"q', 1), ('k2', 2, NULL, 1);"#,
    );
    let lu = lu_def(
        "Hostile",
        vec![table(
            "a\"b",
            &["select"],
            r#"select * from "a""b" where owner = ?"#,
        )],
    );
    let store = LuStore::open(f.home(), &lu).unwrap();
    let run = |id| outcome(store.sync_instance(&lu, &f.source, id).unwrap());
    assert_eq!(run("1"), "Added");
    assert_eq!(run("1"), "Unchanged");
    f.exec(r#"UPDATE "a""b" SET "x y" = 3 WHERE "select" = 'k2'"#);
    assert_eq!(run("1"), "Updated");
    let tables = store.get(&lu, "1").unwrap().unwrap();
    assert_eq!(tables[0].name, "a\"b");
    assert_eq!(tables[0].columns, ["select", "x y", "c\"d", "owner"]);
    assert_eq!(rows(&store, &lu, "1", "a\"b")[1], ["k2", "3", "NULL", "1"]);
    assert!(store.delete(&lu, "1").unwrap());
}

#[test]
fn a_new_source_column_is_added_to_the_table() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    // A new column of NULLs changes no value.
    f.exec("ALTER TABLE customer ADD COLUMN tier TEXT");
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
    f.exec("UPDATE customer SET tier = 'gold' WHERE id = 1");
    assert_eq!(sync(&f, &store, "1"), "Updated");
    let tables = store.get(&f.lu, "1").unwrap().unwrap();
    assert_eq!(tables[0].columns, ["id", "name", "tier"]);
    assert_eq!(rows(&store, &f.lu, "1", "customer"), [["1", "Ada", "gold"]]);
    // Customer 2, synced after, reads NULL there; column names ignore case.
    f.exec("ALTER TABLE customer RENAME COLUMN tier TO TIER");
    assert_eq!(sync(&f, &store, "2"), "Added");
    assert_eq!(rows(&store, &f.lu, "2", "customer"), [["2", "Bob", "NULL"]]);
    assert_eq!(sync(&f, &store, "1"), "Unchanged");
}

#[test]
fn a_column_the_query_drops_is_kept_and_emptied() {
    let f = fixture();
    let store = f.store();
    sync(&f, &store, "1");
    let mut lu = f.lu.clone();
    lu.tables[0].sql = "select id from customer where id = ?".into();
    assert_eq!(
        outcome(store.sync_instance(&lu, &f.source, "1").unwrap()),
        "Updated"
    );
    assert_eq!(rows(&store, &lu, "1", "customer"), [["1", "NULL"]]);
    assert_eq!(
        outcome(store.sync_instance(&lu, &f.source, "1").unwrap()),
        "Unchanged"
    );
}

#[test]
fn every_placeholder_is_the_id() {
    let f = fixture();
    let lu = lu_def(
        "Twice",
        vec![
            table(
                "orders",
                &[],
                "select * from orders where customer_id = ? and ?1 = ?",
            ),
            table("all_customers", &[], "select * from customer"),
        ],
    );
    let store = LuStore::open(f.home(), &lu).unwrap();
    store.sync(&lu, &f.source, "1").unwrap();
    assert_eq!(rows(&store, &lu, "1", "orders").len(), 2);
    assert_eq!(rows(&store, &lu, "1", "all_customers").len(), 2);
}

#[test]
fn bad_queries_and_names_are_errors_that_name_the_table() {
    let f = fixture();
    let store = f.store();
    let mut lu = f.lu.clone();
    lu.tables[2].key = vec!["customer_id".into(), "sort".into()];
    let e = store.sync(&lu, &f.source, "1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "LU Customer, table address: KEY column sort is not among the columns the query \
         returns (customer_id, kind, city)"
    );

    let mut lu = f.lu.clone();
    lu.tables[1].sql = "select o.id, c.id from orders o join customer c on c.id = o.customer_id \
                        where c.id = ?"
        .into();
    let e = store.sync(&lu, &f.source, "1").unwrap_err();
    assert!(matches!(e, LuError::DuplicateColumn { .. }), "{e}");
    assert!(e.to_string().contains("two columns named id"), "{e}");

    let mut lu = f.lu.clone();
    lu.tables[1].sql = "select 1 as __IID".into();
    let e = store.sync(&lu, &f.source, "1").unwrap_err();
    assert!(matches!(e, LuError::ReservedColumn { .. }), "{e}");

    let mut lu = f.lu.clone();
    lu.tables[1].sql = "select * from nowhere where id = ?".into();
    let e = store.sync(&lu, &f.source, "1").unwrap_err();
    assert!(
        e.to_string().starts_with(
            "instance 1 of LU Customer, table orders: the query failed: no such table: nowhere"
        ),
        "{e}"
    );

    let mut lu = f.lu.clone();
    lu.tables[1].name = "__instances".into();
    let e = store.sync(&lu, &f.source, "1").unwrap_err();
    assert!(matches!(e, LuError::ReservedTable { .. }), "{e}");

    let mut lu = f.lu.clone();
    lu.tables[1].name = "CUSTOMER".into();
    assert!(matches!(
        check_table_names(&lu),
        Err(LuError::DuplicateTable { .. })
    ));

    let e = store.sync(&f.lu, &f.source, "").unwrap_err();
    assert_eq!(e.to_string(), "LU Customer: the id is empty");

    // None of this wrote anything.
    assert!(
        store
            .for_each_instance(|_| ControlFlow::Continue(()))
            .unwrap()
            == 0
    );
}

#[test]
fn an_lu_name_cannot_leave_the_lu_folder() {
    let f = fixture();
    let lu = lu_def("../escape", vec![]);
    assert!(matches!(
        LuStore::open(f.home(), &lu),
        Err(LuError::BadLuName { .. })
    ));
}

#[test]
fn the_file_is_stamped_and_reopens_with_its_data() {
    let f = fixture();
    sync(&f, &f.store(), "1");
    let observer = f.observer();
    let read = |sql: &str| observer.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(
        read("PRAGMA application_id"),
        i64::from(schema::APPLICATION_ID)
    );
    assert_eq!(read("PRAGMA user_version"), schema::VERSION);
    let mode: String = observer
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync(&f, &f.store(), "1"), "Unchanged");
    // A newer layout is refused.
    observer.execute_batch("PRAGMA user_version = 99").unwrap();
    let e = LuStore::open(f.home(), &f.lu).err().expect("refused");
    assert!(matches!(e, LuError::Newer { found: 99, .. }), "{e}");
}

#[test]
fn a_file_that_is_not_an_lu_store_is_left_alone() {
    let f = fixture();
    std::fs::create_dir_all(f.home().join("lu")).unwrap();
    let path = f.home().join("lu/Customer.db");
    std::fs::copy(f.source_path(), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = LuStore::open(f.home(), &f.lu).err().expect("refused");
    assert!(matches!(e, LuError::NotAnLuStore { .. }), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    std::fs::write(&path, b"not a database at all, just some text").unwrap();
    let e = LuStore::open(f.home(), &f.lu).err().expect("refused");
    assert!(matches!(e, LuError::NotAnLuStore { .. }), "{e}");
}

#[test]
fn two_threads_sync_different_instances_through_one_store() {
    let f = fixture();
    f.exec(
        "WITH RECURSIVE n(k) AS (SELECT 100 UNION ALL SELECT k + 1 FROM n WHERE k < 199)
         INSERT INTO orders (id, customer_id, amount) SELECT k * 10, k, k / 4.0 FROM n;",
    );
    let store = Arc::new(f.store());
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let store = Arc::clone(&store);
            let lu = f.lu.clone();
            let path = f.source_path();
            std::thread::spawn(move || {
                let source = Connection::open(path).unwrap();
                let mut outcomes = Vec::new();
                for k in (100 + t..200).step_by(2) {
                    let id = k.to_string();
                    outcomes.push(store.sync(&lu, &source, &id).unwrap());
                }
                outcomes
            })
        })
        .collect();
    for h in handles {
        let outcomes = h.join().unwrap();
        assert_eq!(outcomes.len(), 50);
        assert!(outcomes.iter().all(|o| *o == SyncOutcome::Added));
    }
    for k in 100..200 {
        let id = k.to_string();
        assert_eq!(
            rows(&store, &f.lu, &id, "orders"),
            [[
                (k * 10).to_string(),
                id.clone(),
                format!("{:?}", k as f64 / 4.0)
            ]]
        );
        assert_eq!(sync(&f, &store, &id), "Unchanged");
    }
}

#[test]
fn workers_may_each_open_the_store_and_race_on_one_instance() {
    let f = fixture();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let home = f.home().to_path_buf();
            let lu = f.lu.clone();
            let path = f.source_path();
            std::thread::spawn(move || {
                let store = LuStore::open(&home, &lu).unwrap();
                let source = Connection::open(path).unwrap();
                (0..20)
                    .map(|_| store.sync(&lu, &source, "1").unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<SyncOutcome> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    // Exactly one sync added the instance; every other saw the same data.
    let added = all.iter().filter(|o| **o == SyncOutcome::Added).count();
    let unchanged = all.iter().filter(|o| **o == SyncOutcome::Unchanged).count();
    assert_eq!((added, unchanged), (1, all.len() - 1));
    let store = f.store();
    assert_eq!(rows(&store, &f.lu, "1", "orders").len(), 2);
}

/// A subquery that counts to 10^9: tens of seconds unless interrupted.
const SLOW: &str = "(with recursive c(x) as (select 1 union all select x + 1 from c \
                    where x < 1000000000) select count(*) from c)";

#[test]
fn entity_timeout_interrupts_a_slow_source_query_and_leaves_the_instance() {
    let mut f = fixture();
    let store = f.store();
    assert_eq!(sync(&f, &store, "1"), "Added");
    let before = store.get(&f.lu, "1").unwrap();
    f.lu.tables[1].sql = format!("select * from orders where customer_id = ? and {SLOW} > 0");
    let t = std::time::Instant::now();
    let e = store
        .sync_within(
            &f.lu,
            &f.source,
            "1",
            None,
            Some(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(matches!(e, LuError::TimedOut { .. }), "{e}");
    assert!(e.to_string().starts_with("timed out after 200ms"), "{e}");
    assert_eq!(store.get(&f.lu, "1").unwrap(), before);
    // The source connection is not left interrupted: the next sync works.
    f.lu.tables[1].sql = "select * from orders where customer_id = ?".into();
    let next = store.sync_within(&f.lu, &f.source, "2", None, Some(Duration::from_secs(60)));
    assert_eq!(next.unwrap(), SyncOutcome::Added);
}

#[test]
fn entity_timeout_interrupts_a_slow_write_to_the_lu_store() {
    let f = fixture();
    let store = f.store();
    assert_eq!(sync(&f, &store, "1"), "Added");
    // A trigger of the LU store's own file makes its writes slow.
    f.observer()
        .execute_batch(&format!(
            "CREATE TRIGGER slow_d BEFORE DELETE ON orders BEGIN SELECT {SLOW}; END;
             CREATE TRIGGER slow_u BEFORE UPDATE ON orders BEGIN SELECT {SLOW}; END;
             CREATE TRIGGER slow_i BEFORE INSERT ON orders BEGIN SELECT {SLOW}; END;"
        ))
        .unwrap();
    let limit = Some(Duration::from_millis(200));
    let e = store.delete_within(&f.lu, "1", None, limit).unwrap_err();
    assert!(matches!(e, LuError::TimedOut { .. }), "{e}");
    f.exec("UPDATE orders SET amount = 1 WHERE id = 10");
    let e = store
        .sync_within(&f.lu, &f.source, "1", None, limit)
        .unwrap_err();
    assert!(matches!(e, LuError::TimedOut { .. }), "{e}");
    // Rolled back: the instance is as it was, and the store still works.
    let orders = f
        .observer()
        .query_row("SELECT count(*) FROM orders WHERE amount = 9.5", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    assert_eq!(orders, 1);
    assert_eq!(sync(&f, &store, "2"), "Added");
}

#[test]
fn flush_log_syncs_the_lu_stores_log_or_finds_nothing_to_do() {
    let f = fixture();
    // No store file yet: nothing to sync.
    flush_log(f.home(), "Customer").unwrap();
    let store = f.store();
    assert_eq!(sync(&f, &store, "1"), "Added");
    let wal = f.home().join("lu/Customer.db-wal");
    assert!(wal.exists(), "the commit is in the log");
    flush_log(f.home(), "Customer").unwrap();
    // An LU name that cannot name a file is an error, not a silent pass.
    assert!(flush_log(f.home(), "../x").is_err());
}

/// An entity run again after a crash (its write committed, its outcome
/// not) reports what its first run did, not Unchanged: the batch's
/// Added / Updated / Deleted counts stay what the batch did.
#[test]
fn an_entity_run_again_reports_what_its_first_run_wrote() {
    let f = fixture();
    let store = f.store();
    let entity = |batch: &'static str, seq: i64, again: bool| Entity { batch, seq, again };
    let sync = |by: Option<Entity>| store.sync_within(&f.lu, &f.source, "1", by, None).unwrap();
    assert_eq!(sync(Some(entity("b1", 7, false))), SyncOutcome::Added);
    // The same entity again: what it wrote is there, nothing to write now.
    assert_eq!(sync(Some(entity("b1", 7, true))), SyncOutcome::Added);
    // Not looked for on a first attempt (none can have written before).
    assert_eq!(sync(Some(entity("b1", 7, false))), SyncOutcome::Unchanged);
    // The source changed between the two runs: still the entity that
    // added the instance.
    f.exec("UPDATE customer SET name = 'Ada L.' WHERE id = 1");
    assert_eq!(sync(Some(entity("b1", 7, true))), SyncOutcome::Added);
    // Another entity (another batch, or another seq) sees the plain truth.
    assert_eq!(sync(Some(entity("b1", 8, true))), SyncOutcome::Unchanged);
    assert_eq!(sync(Some(entity("b9", 7, true))), SyncOutcome::Unchanged);
    assert_eq!(sync(None), SyncOutcome::Unchanged);
    f.exec("UPDATE customer SET name = 'Ada' WHERE id = 1");
    assert_eq!(sync(Some(entity("b2", 1, false))), SyncOutcome::Updated);
    assert_eq!(sync(Some(entity("b2", 1, true))), SyncOutcome::Updated);
    // The batch that added it earlier is no longer the last to write it.
    assert_eq!(sync(Some(entity("b1", 7, true))), SyncOutcome::Unchanged);

    // delete_instance: the delete is reported again, to its entity only.
    let del = |by: Option<Entity>| store.delete_within(&f.lu, "1", by, None).unwrap();
    assert!(del(Some(entity("b3", 4, false))));
    assert!(del(Some(entity("b3", 4, true))));
    assert!(!del(Some(entity("b3", 5, true))));
    assert!(!del(None));
    // A later sync adds it again, as a new instance.
    assert_eq!(sync(Some(entity("b4", 1, true))), SyncOutcome::Added);
}

/// A store of an older layout (version 1: no record of the writing batch
/// entity; version 2: a development build that kept it in `__last_write`)
/// is brought to the current one when opened, its data kept.
#[test]
fn stores_of_older_layouts_are_upgraded() {
    const BARE: &str = "ALTER TABLE __instances DROP COLUMN batch;
        ALTER TABLE __instances DROP COLUMN seq;
        ALTER TABLE __instances DROP COLUMN outcome;
        DROP TABLE __deleted;";
    for layout in [
        format!("{BARE} PRAGMA user_version = 1;"),
        format!(
            "{BARE} CREATE TABLE __last_write (id TEXT NOT NULL PRIMARY KEY, batch TEXT NOT NULL, \
             seq INTEGER NOT NULL, outcome TEXT NOT NULL) WITHOUT ROWID; PRAGMA user_version = 2;"
        ),
        // The other version 2: the marker columns and __deleted already.
        "PRAGMA user_version = 2;".to_string(),
    ] {
        let f = fixture();
        f.store().sync(&f.lu, &f.source, "1").unwrap();
        let path = f.home().join("lu/Customer.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(&layout).unwrap();
        }
        let store = f.store();
        let c = Connection::open(&path).unwrap();
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        let leftover: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = '__last_write'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftover, 0);
        let by = Entity {
            batch: "b",
            seq: 1,
            again: true,
        };
        // The data was kept: nothing to write.
        assert_eq!(
            store
                .sync_within(&f.lu, &f.source, "1", Some(by), None)
                .unwrap(),
            SyncOutcome::Unchanged
        );
        assert!(store.delete_within(&f.lu, "1", Some(by), None).unwrap());
        assert!(store.delete_within(&f.lu, "1", Some(by), None).unwrap());
    }
}
