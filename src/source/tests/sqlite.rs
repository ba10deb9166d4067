use super::{all_ids, expect_err, iface, ok_ids, sqlite_db};
use crate::catalog::InterfaceKind;
use crate::source::{
    IdError, Param, SourceError, check, column_count, connect, for_each_id, query_rows,
};
use rusqlite::types::Value;
use std::ops::ControlFlow;
use std::path::Path;

const IDS: &str = "
    create table t (n integer primary key, v);
    insert into t (v) values
        ('a'), (42), (1.5), (42.0), (null), (x'6869'), (x'ff00'), (''), ('z');
";

#[test]
fn ids_of_every_type_stream_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", IDS);
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    assert_eq!(
        all_ids(&conn, "select v from t order by n"),
        vec![
            Ok("a".to_string()),
            Ok("42".to_string()),
            Ok("1.5".to_string()),
            Ok("42".to_string()),
            Err(IdError::Null),
            Ok("hi".to_string()),
            Err(IdError::NotUtf8(vec![0xff, 0x00])),
            Err(IdError::Empty),
            Ok("z".to_string()),
        ]
    );
}

#[test]
fn id_longer_than_the_limit_fails_that_entity() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", "create table t (v text)");
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    let ids = all_ids(
        &conn,
        "select printf('%.*c', 1025, 'x') union all select 'ok'",
    );
    assert!(matches!(&ids[0], Err(IdError::TooLong(id)) if id.len() == 1025));
    assert_eq!(ids[1], Ok("ok".to_string()));
}

#[test]
fn break_stops_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", IDS);
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    let mut seen = Vec::new();
    let n = for_each_id(&conn, "select v from t order by n", &[], &[], |id| {
        seen.push(id.unwrap());
        if seen.len() == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(seen, ["a", "42"]);
}

#[test]
fn streaming_200k_rows_calls_f_for_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(
        dir.path(),
        "big.db",
        "create table big (id integer primary key);
         insert into big (id)
             with recursive n(i) as (select 1 union all select i + 1 from n where i < 200000)
             select i from n;",
    );
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    let (mut calls, mut last) = (0u64, String::new());
    let n = for_each_id(&conn, "select id from big order by id", &[], &[], |id| {
        calls += 1;
        last = id.unwrap();
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!((n, calls), (200_000, 200_000));
    assert_eq!(last, "200000");
}

#[test]
fn positional_and_named_params_are_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(
        dir.path(),
        "c.db",
        "create table c (id text, tier text, changed text);
         insert into c values ('1', 'gold', '2026-01-01'), ('2', 'gold', '2025-06-01'),
                              ('3', 'tin', '2026-02-01'), ('4', 'gold', '2026-03-01');",
    );
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    let named = [
        (":from_date", Param::Text("2025-12-31".into())),
        (":batch_id", Param::Int(1_764_000_000)),
        ("bid", Param::Text("unused".into())),
    ];
    let mut ids = Vec::new();
    let sql = "select id from c where tier = ? and changed >= :FROM_DATE and id <> ? \
               and :from_date is not null order by id";
    let params = [Param::Text("gold".into()), Param::Int(4)];
    for_each_id(&conn, sql, &params, &named, |id| {
        ids.push(id.unwrap());
        ControlFlow::Continue(())
    })
    .unwrap();
    // '4' <> 4 compares as text against the TEXT column: only '1' is left.
    assert_eq!(ids, ["1"]);

    // The value is bound, never pasted: a quote in it is just a character.
    let rows = query_rows(
        &conn,
        "select ?, ?, ?, ?",
        &[
            Param::Text("o'k".into()),
            Param::Int(7),
            Param::Float(0.5),
            Param::Null,
        ],
    )
    .unwrap();
    assert_eq!(
        rows.1,
        vec![vec![
            Value::Text("o'k".into()),
            Value::Integer(7),
            Value::Real(0.5),
            Value::Null
        ]]
    );
}

#[test]
fn wrong_number_of_positional_params_is_an_error() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let e = expect_err(for_each_id(
        &conn,
        "select ? where ? = 1",
        &[Param::Int(1)],
        &[],
        |_| ControlFlow::Continue(()),
    ));
    assert_eq!(
        e.to_string(),
        "the query has 2 ? placeholders and 1 value was given for them; a BATCH gives its \
         USING query one value per ? with BIND_PARAMS='v1,v2' or BIND_PARAMS_JSON='[\"v1\", 2]'"
    );
}

#[test]
fn named_param_without_a_value_is_an_error() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let named = [(":from_date", Param::Null), (":bid", Param::Null)];
    let e = expect_err(for_each_id(&conn, "select :todate", &[], &named, |_| {
        ControlFlow::Continue(())
    }));
    assert_eq!(
        e.to_string(),
        "the query uses :todate, which has no value here; \
         the named values here are :from_date, :bid"
    );
    let e = expect_err(for_each_id(&conn, "select :x", &[], &[], |_| {
        ControlFlow::Continue(())
    }));
    assert!(
        e.to_string().ends_with("no named values are bound here"),
        "{e}"
    );
}

#[test]
fn failing_query_gives_the_database_message_and_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", IDS);
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    let e = expect_err(for_each_id(&conn, "select v from tt", &[], &[], |_| {
        ControlFlow::Continue(())
    }));
    assert!(matches!(e, SourceError::Query { .. }));
    assert_eq!(
        e.to_string(),
        "the query failed: no such table: tt; the tables are t (query: select v from tt)"
    );
    let e = expect_err(for_each_id(&conn, "select nope from t", &[], &[], |_| {
        ControlFlow::Continue(())
    }));
    assert!(e.to_string().contains("no such column: nope"), "{e}");
}

#[test]
fn a_query_that_writes_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", IDS);
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    let e = expect_err(for_each_id(
        &conn,
        "delete from t returning v",
        &[],
        &[],
        |_| ControlFlow::Continue(()),
    ));
    assert!(matches!(e, SourceError::NotReadOnly { .. }), "{e}");
    assert_eq!(ok_ids(&conn, "select count(*) from t"), ["9"]);
}

#[test]
fn statement_without_columns_is_refused() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let e = expect_err(for_each_id(&conn, "-- nothing", &[], &[], |_| {
        ControlFlow::Continue(())
    }));
    assert!(matches!(e, SourceError::NoColumns { .. }), "{e}");
}

#[test]
fn column_count_reports_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", IDS);
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    assert_eq!(column_count(&conn, "select v from t").unwrap(), 1);
    assert_eq!(column_count(&conn, "select n, v from t").unwrap(), 2);
    let e = expect_err(column_count(&conn, "select v from t; select n from t"));
    assert!(e.to_string().contains("more than one statement"), "{e}");
}

#[test]
fn query_rows_returns_names_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", IDS);
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    let (names, rows) = query_rows(
        &conn,
        "select n, v as value from t where n <= ? order by n",
        &[Param::Int(2)],
    )
    .unwrap();
    assert_eq!(names, ["n", "value"]);
    assert_eq!(
        rows,
        vec![
            vec![Value::Integer(1), Value::Text("a".into())],
            vec![Value::Integer(2), Value::Integer(42)],
        ]
    );
}

#[test]
fn connect_opens_read_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "ids.db", IDS);
    let conn = connect(&iface(InterfaceKind::Sqlite, &db)).unwrap();
    conn.execute("insert into t (v) values ('new')", [])
        .unwrap();
    drop(conn);
    check(&iface(InterfaceKind::Sqlite, &db)).unwrap();
}

#[test]
fn missing_file_is_reported_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crm.db");
    let i = iface(InterfaceKind::Sqlite, &db);
    for e in [expect_err(check(&i)), expect_err(connect(&i))] {
        assert!(matches!(e, SourceError::NotFound { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("interface src: {} does not exist", db.display())),
            "{e}"
        );
    }
    assert!(!db.exists());
}

#[test]
fn folder_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let e = expect_err(check(&iface(InterfaceKind::Sqlite, dir.path())));
    assert_eq!(
        e.to_string(),
        format!(
            "interface src: {} is a folder; an SQLITE interface's PATH must be a database file",
            dir.path().display()
        )
    );
}

#[test]
fn text_file_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are notes, not a database\n".repeat(20)).unwrap();
    let i = iface(InterfaceKind::Sqlite, &path);
    for e in [expect_err(check(&i)), expect_err(connect(&i))] {
        assert!(matches!(e, SourceError::NotSqlite { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "interface src: {} is not an SQLite database (file is not a database)",
                path.display()
            )
        );
    }
}

#[test]
fn a_postgres_url_is_checked_and_has_no_sqlite_connection() {
    let i = crate::source::Interface::new("wh", InterfaceKind::Postgres, "postgres://u@h");
    assert_eq!(
        expect_err(check(&i)).to_string(),
        "interface wh: postgres://u@h is not a PostgreSQL URL (it names no database: end it \
         with /database, as in postgres://user@host/batchsh); write it as \
         postgres://user[:password]@host[:port]/database[?sslmode=require]"
    );
    assert_eq!(
        expect_err(connect(&i)).to_string(),
        "interface wh: a POSTGRES interface has no SQLite connection"
    );
}

#[test]
fn a_fifo_or_a_device_is_refused_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("crm.db");
    super::mkfifo(&fifo);
    let file = iface(InterfaceKind::Sqlite, &fifo);
    let (checked, connected) = super::in_time(move || (check(&file), connect(&file).map(drop)));
    assert_eq!(
        expect_err(checked).to_string(),
        format!(
            "interface src: {} is a FIFO (named pipe), not a file; give the path of an \
             SQLite database file",
            fifo.display()
        )
    );
    let e = expect_err(connected);
    assert!(e.to_string().contains("is a FIFO (named pipe)"), "{e}");
    let e = expect_err(check(&iface(InterfaceKind::Sqlite, Path::new("/dev/null"))));
    assert!(
        e.to_string()
            .contains("/dev/null is a character device, not a file"),
        "{e}"
    );
}
