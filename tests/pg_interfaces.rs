//! `TYPE POSTGRES` interfaces against a real server (`BATCHSH_TEST_POSTGRES`,
//! see tests/pg.rs; without it every test here says it skipped and
//! passes): ids streamed from a cursor, `?` and window names bound,
//! `sync_instance` and `sql` commands, and every bad URL or query refused
//! with nothing stored, or ending its batch FAILED with the server's words.

use crate::pg::{self, Database};
use crate::world::{World, eventually, result_row};
use serde_json::{Value, json};
use std::time::Duration;

/// A world whose interface `wh` is a fresh PostgreSQL database, filled
/// by `setup` (SQL run with the `postgres` client).
struct Pg {
    w: World,
    db: Database,
}

impl Pg {
    fn new(test: &str, setup: &str) -> Option<Pg> {
        let db = pg::database(test)?;
        db.client().batch_execute(setup).unwrap();
        let w = World::new(0);
        w.test(&format!(
            "CREATE INTERFACE wh TYPE POSTGRES URL '{}'",
            db.url
        ))
        .status(0)
        .run();
        Some(Pg { w, db })
    }

    /// Runs a batch that must succeed, and gives its result row.
    #[track_caller]
    fn batch(&self, script: &str) -> Value {
        let out = self.w.test(script).status(0).run();
        result_row(&out.stdout)
    }

    /// The ids a batch's `echo ?` entities were given, sorted as text.
    fn echoed(&self, bid: &str) -> Vec<String> {
        let mut ids = crate::world::completed_ids(&self.w, bid);
        ids.sort();
        ids
    }

    /// Runs `script`, which must be refused with `message` and store no
    /// batch.
    #[track_caller]
    fn refused(&self, script: &str, message: &str) {
        let before = self.w.batch_count();
        self.w.refused(script, message);
        assert_eq!(self.w.batch_count(), before, "{script}");
    }

    /// The errors of the FAILED entities of the last batch.
    fn failures(&self) -> Vec<String> {
        self.entity_texts("error", "FAILED")
    }

    /// `column` of the last batch's entities whose status is `status`.
    fn entity_texts(&self, column: &str, status: &str) -> Vec<String> {
        let bid = self.w.last_bid();
        self.w
            .sqlite()
            .prepare(&format!(
                "SELECT {column} FROM batch_entities WHERE status = ?2 \
                 AND batch = (SELECT batch_no FROM batches WHERE bid = ?1)"
            ))
            .unwrap()
            .query_map([bid.as_str(), status], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn query_strings(&self, sql: &str) -> Vec<String> {
        self.db
            .client()
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

fn bid(row: &Value) -> String {
    row["batch_id"].as_str().unwrap().to_string()
}

/// `url` with its user replaced by `user`.
fn with_user(url: &str, user: &str) -> String {
    let start = url.find("://").unwrap() + 3;
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let host = match url[start..authority_end].rfind('@') {
        Some(at) => start + at + 1,
        None => start,
    };
    format!("{}{user}@{}", &url[..start], &url[host..])
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// Ids come from a portal a page at a time: while a slow query is still
/// running on the server (each row waits a millisecond, so the whole
/// result takes minutes), the batch has already processed ids from its
/// first pages. A source loaded whole would have processed none.
#[test]
fn ids_are_streamed_while_the_query_still_runs() {
    let Some(p) = Pg::new("ids_are_streamed_while_the_query_still_runs", "") else {
        return;
    };
    let mut child = p.w.spawn(
        "BATCH Slow FROM wh USING ('select g from generate_series(1, 200000) g \
         where pg_sleep(0.001) is not null') FABRIC_COMMAND='echo ?'",
    );
    eventually("ids from the first pages to be processed", || {
        p.w.home().join("store.db").exists()
            && p.w
                .sqlite()
                .query_row("SELECT coalesce(max(completed), 0) FROM batches", [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap_or(0)
                >= 1000
    });
    let running = p.query_strings(
        "select state from pg_stat_activity where application_name = 'batchsh' \
         and datname = current_database() and query like '%generate_series%'",
    );
    assert_eq!(running.len(), 1, "{running:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A large source is counted whole, across pages (200,001 rows: not a
/// multiple of the page), and a batch over a source of exactly two
/// pages gets every id once.
#[test]
fn a_large_source_is_read_across_pages() {
    let Some(p) = Pg::new(
        "a_large_source_is_read_across_pages",
        "create table big as select g as id, md5(g::text) as pad \
         from generate_series(1, 200001) g",
    ) else {
        return;
    };
    let out =
        p.w.test("EXPLAIN BATCH Big FROM wh USING ('select id from big') FABRIC_COMMAND='echo ?'")
            .status(0)
            .run();
    let plan: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(plan["entities_now"], 200_001);
    let row = p.batch(
        "BATCH Big FROM wh USING ('select id from big where id <= 2000') FABRIC_COMMAND='echo ?'",
    );
    assert_eq!(row["total"], 2000);
    assert_eq!(row["execution_succeeded"], 2000);
}

/// Ids of any type arrive as text, as PostgreSQL prints them: integers,
/// text, uuid, numeric with its scale, a date; an array as its text form.
#[test]
fn ids_of_any_type_are_text() {
    let Some(p) = Pg::new(
        "ids_of_any_type_are_text",
        "create table k (i bigint, t text, u uuid, n numeric(6,2), d date, a int[]); \
         insert into k values (42, 'abc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 12.5, \
         '2026-01-31', '{1,2}')",
    ) else {
        return;
    };
    let mut ids = Vec::new();
    for column in ["i", "t", "u", "n", "d", "a"] {
        let row = p.batch(&format!(
            "BATCH K FROM wh USING ('select {column} from k') FABRIC_COMMAND='echo ?'"
        ));
        ids.extend(p.echoed(&bid(&row)));
    }
    assert_eq!(
        ids,
        [
            "42",
            "abc",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "12.50",
            "2026-01-31",
            "{1,2}"
        ]
    );
}

/// BIND_PARAMS values go to the `?` in order, each read as the type the
/// query gives it (an integer, a text); a `?` inside a string literal is
/// text, and a `::cast` is no parameter.
#[test]
fn bind_params_are_bound_to_question_marks() {
    let Some(p) = Pg::new(
        "bind_params_are_bound_to_question_marks",
        "create table t (id int, name text); \
         insert into t select g, 'n' || g from generate_series(1, 10) g",
    ) else {
        return;
    };
    let row = p.batch(
        "BATCH T FROM wh USING ('select id::text from t where id > ? and name <> ? \
         and name <> ''?''') FABRIC_COMMAND='echo ?' WITH BIND_PARAMS='6,n8'",
    );
    assert_eq!(p.echoed(&bid(&row)), ["10", "7", "9"]);
    let row = p.batch(
        "BATCH T FROM wh USING ('select id from t where id = any(?::int[])') \
         FABRIC_COMMAND='echo ?' WITH BIND_PARAMS_JSON='[\"{2,3}\"]'",
    );
    assert_eq!(p.echoed(&bid(&row)), ["2", "3"]);
    // One value too many: refused before anything is stored.
    p.refused(
        "BATCH T FROM wh USING ('select id from t where id > ?') FABRIC_COMMAND='echo ?' \
         WITH BIND_PARAMS='1,2'",
        "the query has 1 ? placeholder and 2 values were given",
    );
}

/// A named batch's window names are bound as parameters (one name used
/// twice is one value), in the USING query and in an `sql` command;
/// `:bid` is every batch's.
#[test]
fn window_names_are_bound() {
    let Some(p) = Pg::new(
        "window_names_are_bound",
        "create table o (id int, at timestamp); \
         insert into o values (1, '1969-06-01'), (2, '2000-01-01'); \
         create table seen (id text, from_date text, bid text, batch_id bigint)",
    ) else {
        return;
    };
    let row = p.batch(
        "BATCH O FROM wh USING ('select id from o where at >= :from_date::timestamp \
         and (:from_date) is not null') \
         FABRIC_COMMAND=\"sql wh 'insert into seen values (?, :from_date, :bid, :batch_id)'\" \
         WITH NAME='o_delta'",
    );
    let bid = bid(&row);
    let seen = p.query_strings("select id || '|' || from_date || '|' || bid from seen");
    assert_eq!(seen, [format!("2|1970-01-01 00:00:00|{bid}")]);
    // Without NAME, a window name has no value: refused, nothing stored.
    p.refused(
        "BATCH O FROM wh USING ('select id from o where at >= :from_date') FABRIC_COMMAND='echo ?'",
        "the query uses :from_date, which has no value here",
    );
}

/// `sync_instance` reads an LU's tables from PostgreSQL, in one read-only
/// snapshot, `?` the instance id, values converted to SQLite's types; a second sync after a change
/// is an update, and one without a change leaves the instance alone.
#[test]
fn sync_instance_reads_postgres_tables() {
    let Some(p) = Pg::new(
        "sync_instance_reads_postgres_tables",
        "create table customer (id int primary key, name text, balance numeric(8,2), \
             visits bigint, score float8, vip boolean, born date, seen timestamptz, \
             card uuid, photo bytea, doc jsonb, tags text[]); \
         insert into customer values (1, 'Ann', 12.50, 3, 0.5, true, '1990-05-17', \
             '2026-01-31 12:00:00+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x0102', \
             '{\"a\": 1}', '{x,y}'), \
             (2, 'Bob', 100, null, null, false, null, null, null, null, null, null); \
         create table orders (customer_id int, n int); \
         insert into orders values (1, 10), (1, 11), (2, 20)",
    ) else {
        return;
    };
    p.w.test(
        "CREATE LU C FROM wh ROOT ('select id from customer') \
         TABLE customer ('select * from customer where id = ?') \
         TABLE orders KEY (n) ('select customer_id, n from orders where customer_id = ? order by n') \
         TABLE tx ('select current_setting(''transaction_isolation'') as isolation, \
             current_setting(''transaction_read_only'') as read_only where ? is not null')",
    )
    .status(0)
    .run();
    let row = p.batch("BATCH C FABRIC_COMMAND='sync_instance C.?'");
    assert_eq!(row["added"], 2);
    let out = p.w.test("GET C.1").status(0).run();
    let cells: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    let value = |table: &str, column: &str| -> Value {
        cells
            .iter()
            .find(|c| c["table"] == table && c["column"] == column)
            .unwrap_or_else(|| panic!("no {table}.{column} in {cells:?}"))["value"]
            .clone()
    };
    assert_eq!(value("customer", "id"), json!(1));
    assert_eq!(value("customer", "name"), json!("Ann"));
    assert_eq!(value("customer", "balance"), json!("12.50"));
    assert_eq!(value("customer", "visits"), json!(3));
    assert_eq!(value("customer", "score"), json!(0.5));
    assert_eq!(value("customer", "vip"), json!(1));
    assert_eq!(value("customer", "born"), json!("1990-05-17"));
    assert_eq!(value("customer", "seen"), json!("2026-01-31 12:00:00+00"));
    assert_eq!(
        value("customer", "card"),
        json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    );
    assert_eq!(value("customer", "doc"), json!("{\"a\": 1}"));
    assert_eq!(value("customer", "tags"), json!("{x,y}"));
    // The tables are read in one read-only snapshot.
    assert_eq!(value("tx", "isolation"), json!("repeatable read"));
    assert_eq!(value("tx", "read_only"), json!("on"));
    // The LU store keeps SQLite's types: an integer, a real, a blob.
    let lu = rusqlite::Connection::open(p.w.home().join("lu/C.db")).unwrap();
    let types: String = lu
        .query_row(
            "select typeof(id) || typeof(balance) || typeof(score) || typeof(photo) \
             || typeof(visits) from customer where __iid = '2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // numeric(8,2) prints 100.00: kept as that text.
    assert_eq!(types, "integertextnullnullnull");
    let photo: Vec<u8> = lu
        .query_row("select photo from customer where __iid = '1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(photo, [1, 2]);

    p.db.client()
        .batch_execute("update orders set n = 12 where n = 11")
        .unwrap();
    let row = p.batch("BATCH C FABRIC_COMMAND='sync_instance C.?'");
    assert_eq!(
        (row["updated"].clone(), row["unchanged"].clone()),
        (json!(1), json!(1))
    );
}

/// A table query that fails fails its entity with PostgreSQL's message;
/// one slower than ENTITY_TIMEOUT is stopped by the server, and the
/// entity fails with "timed out".
#[test]
fn sync_instance_failures_are_the_entitys() {
    let Some(p) = Pg::new(
        "sync_instance_failures_are_the_entitys",
        "create table customer (id int); insert into customer values (1)",
    ) else {
        return;
    };
    p.w.test(
        "CREATE LU Slow FROM wh ROOT ('select id from customer') \
         TABLE customer ('select id, pg_sleep(5) as s from customer where id = ?')",
    )
    .status(0)
    .run();
    let out =
        p.w.test("BATCH Slow FABRIC_COMMAND='sync_instance Slow.?' WITH ENTITY_TIMEOUT='300ms'")
            .run();
    let row = result_row(&out.stdout);
    assert_eq!(row["execution_failed"], 1, "{}", out.stderr);
    let errors = p.failures();
    assert!(errors[0].contains("timed out after 300ms"), "{errors:?}");
    p.db.client().batch_execute("drop table customer").unwrap();
    p.db.client()
        .batch_execute("create table customer (id int); insert into customer values (1)")
        .unwrap();
    p.w.test(
        "CREATE LU Gone FROM wh ROOT ('select id from customer') \
         TABLE customer ('select * from customer where id = ?')",
    )
    .status(0)
    .run();
    p.db.client().batch_execute("drop table customer").unwrap();
    let out =
        p.w.test("BATCH Gone.('1') FABRIC_COMMAND='sync_instance Gone.?'")
            .run();
    let row = result_row(&out.stdout);
    assert_eq!(row["execution_failed"], 1, "{}", out.stderr);
    let error = p.failures().remove(0);
    assert!(
        error.contains("relation \"customer\" does not exist"),
        "{error}"
    );
}

/// `sql` commands run on PostgreSQL with the id bound (`?` in a string
/// literal is text), and report the rows changed; a statement the server
/// refuses fails its entity with the server's words; ENTITY_TIMEOUT stops
/// a slow statement.
#[test]
fn sql_commands_run_on_postgres() {
    let Some(p) = Pg::new(
        "sql_commands_run_on_postgres",
        "create table log (id int primary key, note text)",
    ) else {
        return;
    };
    let row = p.batch(
        "BATCH L.('1', '2', '3') FABRIC_COMMAND=\"sql wh 'insert into log values (?, ''why?'')'\"",
    );
    assert_eq!(row["execution_succeeded"], 3);
    let notes = p.query_strings("select id || note from log order by id");
    assert_eq!(notes, ["1why?", "2why?", "3why?"]);
    let results = p.entity_texts("result", "COMPLETED");
    assert!(results.iter().all(|r| r == "{\"rows\":1}"), "{results:?}");

    // The same ids again: the primary key refuses them.
    let out = p
        .w
        .test("BATCH L.('1') FABRIC_COMMAND=\"sql wh 'insert into log values (?, ''x'')'\" WITH ALLOW_MULTIPLE=true")
        .run();
    assert_eq!(result_row(&out.stdout)["execution_failed"], 1);
    let error = p.failures().remove(0);
    assert!(
        error.starts_with("sql error on interface wh: the query failed: duplicate key value"),
        "{error}"
    );

    let out = p
        .w
        .test("BATCH L.('9') FABRIC_COMMAND=\"sql wh 'select pg_sleep(5) where ? is not null'\" WITH ENTITY_TIMEOUT='300ms'")
        .run();
    assert_eq!(result_row(&out.stdout)["execution_failed"], 1);
    let error = p.failures().remove(0);
    assert_eq!(error, "timed out after 300ms");
}

/// A URL that is not one, a database that does not exist, a user the
/// server refuses, a port where nothing listens: each is refused when the interface is created, with what to
/// do, and nothing is stored.
#[test]
fn bad_urls_are_refused_and_nothing_is_stored() {
    let Some(db) = pg::database("bad_urls_are_refused_and_nothing_is_stored") else {
        return;
    };
    let w = World::new(0);
    let missing = batchsh::pg::with_database(&db.url, "no_such_db");
    let nobody = with_user(&db.url, "nobody_here");
    let cases = [
        (
            "postgres://u@h".to_string(),
            "postgres://u@h is not a PostgreSQL URL (it names no database".to_string(),
        ),
        (
            missing.clone(),
            "database \"no_such_db\" does not exist (create it with: createdb no_such_db)".into(),
        ),
        (nobody, "the server refused user nobody_here".into()),
        (
            "postgres://u@127.0.0.1:1/db".into(),
            "nothing listens at 127.0.0.1:1".into(),
        ),
    ];
    for (url, why) in cases {
        let out = w
            .test(&format!("CREATE INTERFACE bad TYPE POSTGRES URL '{url}'"))
            .status(1)
            .run();
        assert!(
            out.stderr.starts_with("error: interface bad: ") && out.stderr.contains(&why),
            "{url}: {}",
            out.stderr
        );
        let shown = w.test("SHOW INTERFACES").status(0).run();
        assert!(!shown.stdout.contains("\"bad\""), "{}", shown.stdout);
    }
}

/// An interface whose database went away since: a batch that uses it
/// ends FAILED, saying why and what to do; a query the server refuses
/// ends its batch FAILED with the server's message; one that writes,
/// however it is written, is refused.
#[test]
fn a_batch_on_a_broken_source_fails_with_the_reason() {
    let Some(p) = Pg::new(
        "a_batch_on_a_broken_source_fails_with_the_reason",
        "create table t (id int); insert into t values (1)",
    ) else {
        return;
    };
    p.w.assert_last_failed(
        p.w.test("BATCH T FROM wh USING ('select id from nope') FABRIC_COMMAND='echo ?'"),
        "the source query failed on interface wh: the query failed: relation \"nope\" does not exist",
    );
    // A write the text does not show: the read-only transaction refuses it.
    p.w.assert_last_failed(
        p.w.test(
            "BATCH T FROM wh USING ('with d as (delete from t returning id) select id from d') \
             FABRIC_COMMAND='echo ?'",
        ),
        "the query would change data; a source query must only read",
    );
    assert_eq!(p.query_strings("select id::text from t"), ["1"]);
    // A write it does show is refused before anything is stored.
    p.refused(
        "BATCH T FROM wh USING ('delete from t returning id') FABRIC_COMMAND='echo ?'",
        "the query would change data",
    );
    p.refused(
        "BATCH T FROM wh USING ('select id from t; delete from t') FABRIC_COMMAND='echo ?'",
        "the text holds more than one statement; give one query",
    );
    p.refused(
        "BATCH T FROM wh USING ('select id from t where id > $1') FABRIC_COMMAND='echo ?' \
         WITH BIND_PARAMS='0'",
        "the query uses $1; write ? for a value and :name for a window variable",
    );

    // A second database, its interface, then the database dropped.
    let gone = pg::database("a_batch_on_a_broken_source_fails_with_the_reason_2").unwrap();
    p.w.test(&format!(
        "CREATE INTERFACE gone TYPE POSTGRES URL '{}'",
        gone.url
    ))
    .status(0)
    .run();
    drop(gone);
    p.w.assert_last_failed(
        p.w.test("BATCH T FROM gone USING ('select 1') FABRIC_COMMAND='echo ?'"),
        "does not exist (create it with: createdb",
    );
    let error = p.w.error(&p.w.last_bid());
    assert!(
        error.contains("correct the URL with CREATE OR REPLACE INTERFACE gone"),
        "{error}"
    );
}

/// The URL's `statement_timeout` (in `options`) holds for source
/// queries, and a query it stops is said to have taken too long.
#[test]
fn the_urls_statement_timeout_holds() {
    let Some(p) = Pg::new("the_urls_statement_timeout_holds", "") else {
        return;
    };
    let url = with_param(&p.db.url, "options=-c%20statement_timeout%3D200");
    p.w.test(&format!("CREATE INTERFACE quick TYPE POSTGRES URL '{url}'"))
        .status(0)
        .run();
    p.w.assert_last_failed(
        p.w.test(
            "BATCH Q FROM quick USING ('select g from generate_series(1, 3) g \
             where pg_sleep(1) is not null') FABRIC_COMMAND='echo ?'",
        )
        .timeout(Duration::from_secs(30)),
        "the query took longer than the statement_timeout of 200 ms",
    );
}

/// Groups and LU queries are checked on the server when they are
/// created: a group of two columns, a query on a table that is not
/// there, one that writes; nothing is stored. DESCRIBE INTERFACE lists
/// the database's tables.
#[test]
fn group_and_lu_queries_are_checked_on_the_server() {
    let Some(p) = Pg::new(
        "group_and_lu_queries_are_checked_on_the_server",
        "create table customer (id int, tier text)",
    ) else {
        return;
    };
    p.w.test("CREATE LU C FROM wh ROOT ('select id from customer') TABLE customer ('select * from customer where id = ?')")
        .status(0)
        .run();
    p.w.refused(
        "CREATE INSTANCE GROUP C.gold USING ('select id, tier from customer')",
        "the query must return one column only; it returns 2",
    );
    p.w.test(
        "CREATE INSTANCE GROUP C.gold USING ('select id from customer where tier = ''gold''')",
    )
    .status(0)
    .run();
    p.w.refused(
        "CREATE LU D FROM wh ROOT ('select id from nope') TABLE t ('select 1')",
        "the ROOT query does not run on interface wh: relation \"nope\" does not exist",
    );
    p.w.refused(
        "CREATE LU D FROM wh ROOT ('select id from customer') \
         TABLE t ('update customer set tier = ? returning *')",
        "the TABLE t query is refused: the query would change data",
    );
    let lus = p.w.test("SHOW LUS").status(0).run();
    assert!(!lus.stdout.contains("\"D\""), "{}", lus.stdout);
    p.db.client()
        .batch_execute("insert into customer values (1, 'gold'), (2, 'tin')")
        .unwrap();
    let row = p.batch("BATCH C.gold FABRIC_COMMAND='echo ?'");
    assert_eq!(p.echoed(&bid(&row)), ["1"]);
    let out = p.w.test("DESCRIBE INTERFACE wh").status(0).run();
    let columns: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        columns,
        json!([
            {"table": "customer", "column": "id", "type": "INTEGER"},
            {"table": "customer", "column": "tier", "type": "TEXT"}
        ])
    );
}
