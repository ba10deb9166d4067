//! ReadStore on PostgreSQL, each test on a fresh database, its rows set
//! up with plain SQL: what the reads return (as on SQLite), and the plans
//! that keep `BATCH_LIST` and `BATCH_SUMMARY` off the entity rows.

use super::super::testing::{TestStore, fresh};
use super::*;
use crate::batch::BatchStatus;
use regex::Regex;

/// Runs `sql` (statements without arguments) on the test's store.
fn sql(s: &PgStore, sql: &str) {
    s.client().batch_execute(sql).unwrap();
}

/// A batch row with `status`, created at `created` (final ones end a
/// minute later); its number.
fn batch(s: &PgStore, bid: &str, status: &str, created: &str) -> i64 {
    let end = BatchStatus::from_str(status)
        .unwrap()
        .is_final()
        .then(|| created.replace("T10:", "T11:"));
    s.client()
        .query_one(
            "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                 execution_id, created_by, creation_time, end_time)
             VALUES ($1, 'BATCH L FABRIC_COMMAND=\"echo ?\"', 'L', 'echo ?', '{}', '{}', $2,
                 'e1', 'me', $3, $4)
             RETURNING batch_no",
            &[&bid, &status, &created, &end],
        )
        .unwrap()
        .get(0)
}

const T: &str = "2026-03-10T10:00:00.000Z";

fn bids(rows: Vec<BatchRow>) -> Vec<String> {
    rows.into_iter().map(|b| b.bid).collect()
}

fn bid_fixture(test: &str) -> Option<TestStore> {
    let s = fresh(test)?;
    let zs = (1..=7).map(|i| format!("zzzzzz-{i}"));
    for bid in ["short", "abcdef01-0000", "abcdef02-1111"]
        .map(String::from)
        .into_iter()
        .chain(zs)
    {
        batch(&s, &bid, "DONE", T);
    }
    Some(s)
}

/// The reads bid resolution is made of (the rules are the store's
/// `resolve`, tested with SQLite's statements): exact, a range of the
/// primary key in byte order, the recent batches for a did-you-mean.
#[test]
fn resolve_bid_exact_prefix_and_last() {
    let Some(s) = bid_fixture("resolve_bid_exact_prefix_and_last") else {
        return;
    };
    let cases: &[(&str, std::result::Result<&str, &str>)] = &[
        ("short", Ok("short")),
        (" ABCDEF01 ", Ok("abcdef01-0000")),
        ("abcdef02-1", Ok("abcdef02-1111")),
        (
            "abcde",
            Err("no batch with id 'abcde', and a batch id prefix needs at least 6 characters"),
        ),
        (
            "zzzzzz",
            Err(
                "batch id prefix zzzzzz is ambiguous: it matches zzzzzz-1, zzzzzz-2, \
                 zzzzzz-3, zzzzzz-4, zzzzzz-5, ...; give more characters",
            ),
        ),
        // One typo away from a single recent bid: suggested; from two, not.
        (
            "abcdef01-0001",
            Err("no batch with id 'abcdef01-0001' (did you mean 'abcdef01-0000'?)"),
        ),
        ("zzzzzz-9", Err("no batch with id 'zzzzzz-9'")),
    ];
    for (given, expected) in cases {
        let got = s.resolve_bid(Some(given), None).map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map(str::to_string).map_err(str::to_string),
            "{given}"
        );
    }
    assert_eq!(s.resolve_bid(None, Some("short")).unwrap(), "short");
}

#[test]
fn a_batch_reads_its_counters_from_its_row_and_every_workers_counts() {
    let Some(s) = fresh("a_batch_reads_its_counters_from_its_row_and_every_workers_counts") else {
        return;
    };
    let no = batch(&s, "b1", "IN_PROGRESS", T);
    sql(
        &s,
        &format!(
            "UPDATE batches SET total = 10, waiting = 10, ids_complete = 1, open = 1,
                 estimated_total = 12, start_time = '{T}' WHERE batch_no = {no};
             INSERT INTO batch_counts (batch, worker, waiting, in_process, completed, added)
                 VALUES ({no}, 'w1', -4, 1, 3, 2), ({no}, 'w2', -3, 0, 2, 5);"
        ),
    );
    let b = s.read_batch("b1").unwrap();
    assert_eq!(
        b.counts,
        Counters {
            total: 10,
            waiting: 3,
            in_process: 1,
            completed: 5,
            added: 7,
            ..Counters::default()
        }
    );
    assert_eq!(
        (b.status, b.ids_complete, b.estimated_total, b.openness),
        (BatchStatus::InProgress, true, Some(12), Openness::Open)
    );
    assert_eq!(b.start_time.as_deref(), Some(T));
    // Listed with the same counters.
    let listed = s.list_batches(&ListQuery::default()).unwrap();
    assert_eq!(listed, [b]);
    let e = s.read_batch("b2").unwrap_err().to_string();
    assert_eq!(e, "no batch with id 'b2'");
    // A row no batchsh wrote fails the read with the status error.
    sql(&s, "UPDATE batches SET status = 'LOST'");
    let e = s.read_batch("b1").unwrap_err().to_string();
    assert!(e.contains("LOST is not a batch status"), "{e}");
}

#[test]
fn batch_list_filters_orders_and_limits() {
    let Some(s) = fresh("batch_list_filters_orders_and_limits") else {
        return;
    };
    batch(&s, "a-done", "DONE", "2026-03-09T10:00:00.000Z");
    batch(&s, "b-run", "IN_PROGRESS", "2026-03-10T10:00:00.000Z");
    batch(&s, "c-fail", "FAILED", "2026-03-10T10:00:00.000Z");
    batch(&s, "d-new", "NEW", "2026-03-11T10:00:00.000Z");
    sql(
        &s,
        "UPDATE batches SET command = 'BATCH Customer' WHERE bid IN ('b-run', 'd-new')",
    );
    let list = |q: ListQuery<'_>| bids(s.list_batches(&q).unwrap());
    // Newest first, then by bid, descending.
    assert_eq!(list(ListQuery::default()), ["d-new", "b-run"]);
    assert_eq!(
        list(ListQuery {
            status: StatusFilter::All,
            ..ListQuery::default()
        }),
        ["d-new", "c-fail", "b-run", "a-done"]
    );
    assert_eq!(
        list(ListQuery {
            status: StatusFilter::Only(vec![BatchStatus::Done, BatchStatus::Failed]),
            ..ListQuery::default()
        }),
        ["c-fail", "a-done"]
    );
    assert_eq!(
        list(ListQuery {
            status: StatusFilter::All,
            created_from: Some("2026-03-10T10:00:00.000Z".into()),
            created_before: Some("2026-03-11T10:00:00.000Z".into()),
            ..ListQuery::default()
        }),
        ["c-fail", "b-run"]
    );
    let customer = Regex::new("^BATCH Customer").unwrap();
    let all = |command, limit| ListQuery {
        status: StatusFilter::All,
        command,
        limit,
        ..ListQuery::default()
    };
    assert_eq!(list(all(Some(&customer), None)), ["d-new", "b-run"]);
    // The limit counts the rows that match, not those read.
    assert_eq!(list(all(Some(&customer), Some(1))), ["d-new"]);
    assert_eq!(list(all(None, Some(2))), ["d-new", "c-fail"]);
    assert!(list(all(None, Some(0))).is_empty());
    assert!(list(all(Some(&customer), Some(0))).is_empty());
    // More batches than a page of a filtered listing.
    sql(
        &s,
        "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
             execution_id, created_by, creation_time)
         SELECT 'p-' || lpad(g::text, 4, '0'), 'BATCH Customer ' || g, 'L', 'x', '{}', '{}',
             'NEW', 'e1', 'me', '2026-03-08T10:00:00.000Z'
         FROM generate_series(1, 450) AS g",
    );
    let found = list(all(Some(&customer), Some(420)));
    assert_eq!(found.len(), 420);
    assert_eq!(found[..3], ["d-new", "b-run", "p-0450"]);
    assert_eq!(list(all(Some(&customer), None)).len(), 452);
}

#[test]
fn node_rows_and_pace_samples() {
    let Some(s) = fresh("node_rows_and_pace_samples") else {
        return;
    };
    batch(&s, "b1", "IN_PROGRESS", T);
    sql(
        &s,
        &format!(
            "INSERT INTO batch_nodes (bid, node, dc, start_time, completed, failed)
                 VALUES ('b1', 'n2', 'dc1', '{T}', 5, 1), ('b1', 'n1', 'dc2', '{T}', 2, 0),
                        ('b1', 'n1b', 'dc1', '{T}', 0, 0);
             INSERT INTO batch_progress (bid, node, time_ms, done)
                 VALUES ('b1', 'n2', 1000, 1), ('b1', 'n2', 5000, 3), ('b1', 'n2', 9000, 6),
                        ('b1', 'n2', 10000, 8), ('b1', 'n1', 7000, 2);"
        ),
    );
    let nodes: Vec<(String, String, i64)> = s
        .batch_node_rows("b1")
        .unwrap()
        .into_iter()
        .map(|n| (n.dc, n.node, n.completed))
        .collect();
    assert_eq!(
        nodes,
        [
            ("dc1".into(), "n1b".into(), 0),
            ("dc1".into(), "n2".into(), 5),
            ("dc2".into(), "n1".into(), 2)
        ]
    );
    assert!(s.batch_node_rows("b2").unwrap().is_empty());
    let pace = |node, window| s.pace_samples("b1", node, window).unwrap();
    assert_eq!(
        pace("n2", 5000),
        Some(PaceSamples {
            newest: (10000, 8),
            reference: (5000, 3)
        })
    );
    // No sample as old as the window: the oldest.
    assert_eq!(
        pace("n2", 60_000),
        Some(PaceSamples {
            newest: (10000, 8),
            reference: (1000, 1)
        })
    );
    assert_eq!(
        pace("n1", 5000),
        Some(PaceSamples {
            newest: (7000, 2),
            reference: (7000, 2)
        })
    );
    assert_eq!(pace("n3", 5000), None);
}

/// Batch b1: rows 1..=6 (seq 3 claimed as it arrived, without a row yet)
/// on nodes n1 (dc1) and n2 (dc2); batch b2 with rows of its own.
fn entity_fixture(s: &PgStore) {
    let no = batch(s, "b1", "IN_PROGRESS", T);
    let other = batch(s, "b2", "IN_PROGRESS", T);
    sql(
        s,
        &format!(
            "INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, node,
                 start_time_ms, process_time_ms, result, error)
             VALUES ({no}, 1, 'e1', 'COMPLETED', 1, 'n1', 100, 50, '{{\"Added\":1}}', NULL),
                    ({no}, 2, 'e2', 'FAILED', 2, 'n2', 200, 70, NULL, 'boom'),
                    ({no}, 4, 'e4', 'COMPLETED', 1, 'n2', 400, 90, NULL, NULL),
                    ({no}, 5, 'e5', 'WAITING', 0, NULL, NULL, NULL, NULL, NULL),
                    ({no}, 6, 'e6', 'IN_PROCESS', 1, 'n1', 600, NULL, NULL, NULL),
                    ({other}, 1, 'x1', 'IN_PROCESS', 1, 'n1', 50, NULL, NULL, NULL);
             INSERT INTO batch_claims (batch, first_seq, node, start_time_ms, open, ids, worker)
                 VALUES ({no}, 2, 'n1', 300, 1, '[\"e2\", \"e3\", \"e4\"]', 'w1');
             INSERT INTO batch_nodes (bid, node, dc, start_time)
                 VALUES ('b1', 'n1', 'dc1', '{T}'), ('b1', 'n2', 'dc2', '{T}');"
        ),
    );
}

fn shown(rows: Vec<EntityRow>) -> Vec<(i64, String, String)> {
    rows.into_iter()
        .map(|r| (r.seq, r.entity_id, r.status.as_str().to_string()))
        .collect()
}

fn ids(rows: Vec<EntityRow>) -> Vec<String> {
    rows.into_iter().map(|r| r.entity_id).collect()
}

#[test]
fn entity_rows_merge_rows_and_claims_with_their_filters() {
    let Some(s) = fresh("entity_rows_merge_rows_and_claims_with_their_filters") else {
        return;
    };
    entity_fixture(&s);
    let rows = |q: DetailsQuery| s.entity_rows("b1", &q).unwrap();
    let all = rows(DetailsQuery::default());
    assert_eq!(
        shown(all.clone()),
        [
            (1, "e1".into(), "COMPLETED".into()),
            (2, "e2".into(), "FAILED".into()),
            (3, "e3".into(), "IN_PROCESS".into()),
            (4, "e4".into(), "COMPLETED".into()),
            (5, "e5".into(), "WAITING".into()),
            (6, "e6".into(), "IN_PROCESS".into()),
        ]
    );
    assert_eq!(
        all[1],
        EntityRow {
            seq: 2,
            entity_id: "e2".into(),
            node: Some("n2".into()),
            status: EntityStatus::Failed,
            attempts: 2,
            start_time_ms: Some(200),
            process_time_ms: Some(70),
            error: Some("boom".into()),
            result: None,
        }
    );
    assert_eq!(
        all[2],
        EntityRow {
            seq: 3,
            entity_id: "e3".into(),
            node: Some("n1".into()),
            status: EntityStatus::InProcess,
            attempts: 1,
            start_time_ms: Some(300),
            process_time_ms: None,
            error: None,
            result: None,
        }
    );
    assert_eq!(all[0].result.as_deref(), Some("{\"Added\":1}"));
    let only = |statuses: Vec<EntityStatus>| {
        ids(rows(DetailsQuery {
            statuses: Some(statuses),
            ..DetailsQuery::default()
        }))
    };
    assert_eq!(only(vec![EntityStatus::InProcess]), ["e3", "e6"]);
    assert_eq!(only(vec![EntityStatus::Failed]), ["e2"]);
    assert_eq!(
        only(vec![EntityStatus::Completed, EntityStatus::Waiting]),
        ["e1", "e4", "e5"]
    );
    assert!(only(vec![]).is_empty());
    let by_ids = ids(rows(DetailsQuery {
        entity_ids: Some(vec!["e3".into(), "e4".into(), "x1".into()]),
        ..DetailsQuery::default()
    }));
    assert_eq!(by_ids, ["e3", "e4"]);
    let on = |nodes: &[&str]| {
        ids(rows(DetailsQuery {
            nodes: Some(nodes.iter().map(|n| n.to_string()).collect()),
            ..DetailsQuery::default()
        }))
    };
    assert_eq!(on(&["n1"]), ["e1", "e3", "e6"]);
    assert_eq!(on(&["dc2"]), ["e2", "e4"]);
    assert!(on(&[]).is_empty());
    assert_eq!(
        ids(rows(DetailsQuery {
            limit: Some(3),
            ..DetailsQuery::default()
        })),
        ["e1", "e2", "e3"]
    );
    // Slowest first; entities never run last, in order of arrival.
    assert_eq!(
        ids(rows(DetailsQuery {
            slowest_first: true,
            ..DetailsQuery::default()
        })),
        ["e4", "e2", "e1", "e3", "e5", "e6"]
    );
    assert!(
        s.entity_rows("nope", &DetailsQuery::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn in_process_rows_come_from_batches_with_entities_in_process() {
    let Some(s) = fresh("in_process_rows_come_from_batches_with_entities_in_process") else {
        return;
    };
    entity_fixture(&s);
    // b1's count is in a worker's row; b2's count is not set (its row is
    // not visited).
    sql(
        &s,
        "INSERT INTO batch_counts (batch, worker, in_process)
             SELECT batch_no, 'w1', 3 FROM batches WHERE bid = 'b1';
         UPDATE batches SET owner_node = 'n1', owner_pid = 42 WHERE bid = 'b1'",
    );
    let rows: Vec<(Option<String>, String, String, Option<i64>)> = s
        .in_process_rows()
        .unwrap()
        .into_iter()
        .map(|r| (r.node, r.bid, r.entity_id, r.start_time_ms))
        .collect();
    assert_eq!(
        rows,
        [
            (Some("n1".into()), "b1".into(), "e3".into(), Some(300)),
            (Some("n1".into()), "b1".into(), "e6".into(), Some(600)),
        ]
    );
    let first = &s.in_process_rows().unwrap()[0];
    assert_eq!(
        (
            first.owner_node.as_deref(),
            first.owner_pid,
            first.lu.as_str()
        ),
        (Some("n1"), Some(42), "L")
    );
    sql(&s, "UPDATE batches SET in_process = 1 WHERE bid = 'b2'");
    assert_eq!(s.in_process_rows().unwrap()[0].entity_id, "x1");
}

#[test]
fn events_come_in_the_order_they_were_recorded() {
    let Some(s) = fresh("events_come_in_the_order_they_were_recorded") else {
        return;
    };
    batch(&s, "b1", "DONE", T);
    sql(
        &s,
        "INSERT INTO batch_events (bid, execution_id, time, node, status, note)
             VALUES ('b1', 'e1', '2026-03-10T10:00:05.000Z', 'n1', 'NEW', NULL),
                    ('b1', 'e1', '2026-03-10T10:00:01.000Z', 'n2', 'IN_PROGRESS', NULL),
                    ('b1', 'e1', '2026-03-10T10:00:09.000Z', NULL, 'DONE', 'all done')",
    );
    let events = s.event_rows("b1").unwrap();
    let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["NEW", "IN_PROGRESS", "DONE"]);
    assert_eq!(
        events[2],
        EventRow {
            time: "2026-03-10T10:00:09.000Z".into(),
            execution_id: Some("e1".into()),
            node: None,
            status: "DONE".into(),
            note: Some("all done".into()),
        }
    );
    assert!(s.event_rows("b2").unwrap().is_empty());
}

// ---------------------------------------------------------------- plans

/// The plan of `sql` with `args`, one line a node.
fn plan(s: &PgStore, sql: &str, args: &Args) -> String {
    let args: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as _).collect();
    s.client()
        .query(&format!("EXPLAIN {sql}"), &args)
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rows enough that the plans are those of a store in use: 20 batches,
/// 200,000 entity rows, statistics.
fn plan_fixture(s: &PgStore) {
    sql(
        s,
        "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
             execution_id, created_by, creation_time, in_process)
         SELECT 'b' || g, 'BATCH L', 'L', 'x', '{}', '{}', 'IN_PROGRESS', 'e1', 'me',
             '2026-03-10T10:00:' || lpad(g::text, 2, '0') || '.000Z', 1
         FROM generate_series(1, 20) AS g;
         INSERT INTO batch_counts (batch, worker, completed)
             SELECT batch_no, 'w' || w, 1 FROM batches, generate_series(1, 3) AS w;
         INSERT INTO batch_entities (batch, seq, entity_id, status, node, process_time_ms)
         SELECT 1 + g % 20, g, g::text,
             CASE WHEN g % 1000 = 0 THEN 'FAILED' WHEN g % 997 = 0 THEN 'IN_PROCESS'
                  ELSE 'COMPLETED' END,
             'n1', g % 500
         FROM generate_series(1, 200000) AS g;
         ANALYZE",
    );
}

#[test]
fn summary_and_list_read_no_entity_row_and_details_pages_by_index() {
    let Some(s) = fresh("summary_and_list_read_no_entity_row_and_details_pages_by_index") else {
        return;
    };
    plan_fixture(&s);
    let re = Regex::new("x").unwrap();
    let mut filtered = ListQuery {
        status: StatusFilter::Only(vec![BatchStatus::Done]),
        created_from: Some(T.into()),
        created_before: Some(T.into()),
        limit: Some(5),
        ..ListQuery::default()
    };
    filtered.command = Some(&re);
    let lists = [ListQuery::default(), filtered];
    // The batch tables are small here: with scans off, the plans show
    // what the indexes allow (as on a store of many batches).
    sql(&s, "SET enable_seqscan = off");
    for q in &lists {
        let (sql, args) = list_sql(q);
        let p = plan(&s, &sql, &args);
        assert!(!p.contains("batch_entities"), "{p}");
        // Each batch's counters: its own workers' rows, by their key.
        assert!(p.contains("batch_counts_pkey"), "{p}");
    }
    let one: Args = vec![Box::new("b1".to_string())];
    let p = plan(&s, READ_BATCH_SQL, &one);
    assert!(
        !p.contains("batch_entities") && !p.contains("Seq Scan"),
        "{p}"
    );
    let p = plan(
        &s,
        PREFIX_SQL,
        &vec![Box::new("b1".to_string()) as _, Box::new(6_i64) as _],
    );
    assert!(p.contains("Index Only Scan using batches_pkey"), "{p}");
    sql(&s, "RESET enable_seqscan");
    // A page of details: the entity rows in key order, stopped at the
    // limit; failed ones through the index of unfinished entities.
    let page = DetailsQuery {
        limit: Some(50),
        ..DetailsQuery::default()
    };
    let (sql, args) = details_sql(3, "b3", &page).remove(0);
    let mut parts = details_sql(3, "b3", &page);
    let p = plan(&s, &sql, &args);
    assert!(
        p.starts_with("Limit") && p.contains("Index Scan using batch_entities_pkey"),
        "{p}"
    );
    assert!(!p.contains("Sort"), "{p}");
    // Claimed entities' rows are looked up one by one, never hashed.
    let (sql, args) = parts.remove(1);
    let p = plan(&s, &sql, &args);
    assert!(p.contains("SubPlan") && !p.contains("Join"), "{p}");
    let failed = DetailsQuery {
        statuses: Some(vec![EntityStatus::Failed]),
        limit: Some(50),
        ..DetailsQuery::default()
    };
    let parts = details_sql(3, "b3", &failed);
    assert_eq!(parts.len(), 1, "no claimed entity is FAILED");
    let p = plan(&s, &parts[0].0, &parts[0].1);
    assert!(p.contains("batch_entities_open"), "{p}");
    let p = plan(&s, IN_PROCESS_SQL, &Args::new());
    assert!(
        p.contains("batch_entities_open") && !p.contains("Anti Join"),
        "{p}"
    );
    assert!(!p.contains("Seq Scan on batch_entities"), "{p}");
}

/// `BATCH_SUMMARY`'s and `BATCH_LIST`'s reads on a store of 10,000,000
/// entity rows, and a page of `BATCH_DETAILS`: the median of 20 of each.
/// A measurement, run by hand (it fills the store for a minute or two):
///
/// ```text
/// BATCHSH_TEST_POSTGRES=postgres://… cargo test --release --lib \
///     store::postgres::reads::tests::ten_million_rows -- --ignored --nocapture
/// ```
#[test]
#[ignore = "a measurement on 10,000,000 rows, run by hand"]
fn ten_million_rows() {
    use std::time::{Duration, Instant};
    let Some(s) = fresh("ten_million_rows") else {
        return;
    };
    let started = Instant::now();
    // 1,000 batches (the newest, "big", holds every entity row), each
    // with 4 workers' counters; 4 nodes and their progress for "big".
    sql(
        &s,
        "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
             execution_id, created_by, creation_time, end_time, total, waiting)
         SELECT md5(g::text)::uuid::text, 'BATCH L FABRIC_COMMAND=\"echo ?\"', 'L', 'echo ?',
             '{}', '{}', CASE WHEN g % 10 = 0 THEN 'IN_PROGRESS' ELSE 'DONE' END, 'e1', 'me',
             to_char(timestamp '2026-01-01' + g * interval '1 minute',
                     'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
             CASE WHEN g % 10 = 0 THEN NULL ELSE '2026-03-01T00:00:00.000Z' END,
             CASE WHEN g = 1000 THEN 10000000 ELSE 0 END,
             CASE WHEN g = 1000 THEN 10000000 ELSE 0 END
         FROM generate_series(1, 1000) AS g;
         UPDATE batches SET bid = 'big' WHERE batch_no = 1000;
         INSERT INTO batch_counts (batch, worker, waiting, in_process, completed, failed)
             SELECT batch_no, 'w' || w, -2000000, 1000, 1990000, 9000
             FROM batches, generate_series(1, 4) AS w WHERE bid = 'big';
         INSERT INTO batch_counts (batch, worker, completed)
             SELECT batch_no, 'w' || w, 1 FROM batches, generate_series(1, 4) AS w
             WHERE bid <> 'big';
         INSERT INTO batch_nodes (bid, node, dc, start_time)
             SELECT 'big', 'n' || n, 'dc' || n % 2, '2026-03-01T00:00:00.000Z'
             FROM generate_series(1, 4) AS n;
         INSERT INTO batch_progress (bid, node, time_ms, done)
             SELECT 'big', 'n' || n, t * 1000, t * 100
             FROM generate_series(1, 4) AS n, generate_series(1, 3600) AS t;
         INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, node,
             start_time_ms, end_time_ms, process_time_ms, worker)
         SELECT 1000, g, g::text,
             CASE WHEN g % 1000 = 0 THEN 'FAILED'
                  WHEN g > 9996000 THEN 'IN_PROCESS'
                  WHEN g > 8000000 THEN 'WAITING' ELSE 'COMPLETED' END,
             1, 'n' || (g % 4 + 1), g, g + 5, 5 + g % 100, 'w' || (g % 4 + 1)
         FROM generate_series(1, 10000000) AS g",
    );
    sql(&s, "VACUUM ANALYZE");
    eprintln!("filled in {:.1?}", started.elapsed());
    let median = |what: &str, f: &dyn Fn()| {
        let mut took: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        took.sort();
        eprintln!(
            "{what:<44} median {:>8.2?}  (min {:.2?}, max {:.2?})",
            took[10], took[0], took[19]
        );
    };
    let summary = || {
        let bid = s.resolve_bid(Some("big"), None).unwrap();
        let b = s.read_batch(&bid).unwrap();
        assert_eq!(b.counts.total, 10_000_000);
        for n in s.batch_node_rows(&bid).unwrap() {
            s.pace_samples(&bid, &n.node, 60_000).unwrap().unwrap();
        }
    };
    median("BATCH_SUMMARY (resolve, batch, 4 nodes' pace)", &summary);
    median("BATCH_LIST (active batches)", &|| {
        assert_eq!(s.list_batches(&ListQuery::default()).unwrap().len(), 100);
    });
    median("BATCH_LIST STATUS='ALL' LIMIT=20", &|| {
        let q = ListQuery {
            status: StatusFilter::All,
            limit: Some(20),
            ..ListQuery::default()
        };
        assert_eq!(s.list_batches(&q).unwrap().len(), 20);
    });
    median("BATCH_LIST STATUS='ALL' (1,000 batches)", &|| {
        let q = ListQuery {
            status: StatusFilter::All,
            ..ListQuery::default()
        };
        assert_eq!(s.list_batches(&q).unwrap().len(), 1000);
    });
    let some_bid: String = s
        .client()
        .query_one("SELECT bid FROM batches WHERE batch_no = 500", &[])
        .unwrap()
        .get(0);
    median("resolve a bid by its 8-character prefix", &|| {
        assert_eq!(s.resolve_bid(Some(&some_bid[..8]), None).unwrap(), some_bid);
    });
    median("BATCH_DETAILS LIMIT=100", &|| {
        let q = DetailsQuery {
            limit: Some(100),
            ..DetailsQuery::default()
        };
        assert_eq!(s.entity_rows("big", &q).unwrap().len(), 100);
    });
    median("BATCH_DETAILS STATUS='FAILED' LIMIT=100", &|| {
        let q = DetailsQuery {
            statuses: Some(vec![EntityStatus::Failed]),
            limit: Some(100),
            ..DetailsQuery::default()
        };
        assert_eq!(s.entity_rows("big", &q).unwrap().len(), 100);
    });
    median("BATCH_IN_PROCESS (3,996 entities)", &|| {
        assert_eq!(s.in_process_rows().unwrap().len(), 3996);
    });
    let read_batch: Args = vec![Box::new("big".to_string())];
    let page = DetailsQuery {
        limit: Some(100),
        ..DetailsQuery::default()
    };
    for (what, (sql, args)) in [
        ("summary's batch", (READ_BATCH_SQL.to_string(), read_batch)),
        ("list", list_sql(&ListQuery::default())),
        ("details page", details_sql(1000, "big", &page).remove(0)),
    ] {
        eprintln!("plan of the {what}:\n{}", plan(&s, &sql, &args));
    }
}
