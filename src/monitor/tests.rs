//! Monitoring statements against a store filled with plain SQL fixtures:
//! exact columns, values, filters, ordering and defaults. The clock and the
//! local zone are fixed (now = 2026-03-10 12:00:00 UTC, local = +01:00), so
//! local "today" begins at 2026-03-09T23:00:00Z.

use super::*;
use crate::store::ReadStore;
use crate::store::sqlite::SqliteStore;
use chrono::FixedOffset;

const NOW: &str = "2026-03-10T12:00:00.000Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .with_timezone(&Utc)
}

fn now_ms() -> i64 {
    now().timestamp_millis()
}

fn plus_one() -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap()
}

fn open() -> (tempfile::TempDir, SqliteStore) {
    let d = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&d.path().join("store.db")).unwrap();
    (d, s)
}

/// A batch row with everything a test does not care about defaulted.
#[derive(Clone)]
struct B {
    bid: &'static str,
    status: &'static str,
    created: &'static str,
    lu: &'static str,
    start: Option<&'static str>,
    end: Option<&'static str>,
    error: Option<&'static str>,
    source: &'static str,
    arguments: &'static str,
    extra_stats: Option<&'static str>,
    ids_complete: bool,
    estimated: Option<i64>,
    /// total, waiting, in_process, completed, failed, cancelled
    counts: [i64; 6],
    /// added, updated, unchanged
    outcomes: [i64; 3],
}

impl B {
    fn new(bid: &'static str, status: &'static str, created: &'static str) -> B {
        B {
            bid,
            status,
            created,
            lu: "Account",
            start: None,
            end: None,
            error: None,
            source: r#"{"kind":"root"}"#,
            arguments: "{}",
            extra_stats: None,
            ids_complete: true,
            estimated: None,
            counts: [0; 6],
            outcomes: [0; 3],
        }
    }

    fn command(&self) -> String {
        format!("BATCH {} FABRIC_COMMAND=\"echo ?\"", self.lu)
    }

    fn insert(&self, s: &SqliteStore) {
        let [total, waiting, in_process, completed, failed, cancelled] = self.counts;
        let [added, updated, unchanged] = self.outcomes;
        s.test_execute(
            "INSERT INTO batches (bid, command, lu, fabric_command, source, arguments, status,
                    execution_id, created_by, creation_time, start_time, end_time, error,
                    extra_stats, total, ids_complete, estimated_total, waiting, in_process,
                    completed, failed, cancelled, added, updated, unchanged, batch_no,
                    owner_node, owner_pid, heartbeat_at)
                 VALUES (?1, ?2, ?3, 'echo ?', ?4, ?5, ?6, ?7, 'node-a', ?8, ?9, ?10, ?11, ?12,
                    ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
                    (SELECT coalesce(max(batch_no), 0) + 1 FROM batches),
                    'another-host', 1, ?24)",
            &[
                &self.bid,
                &self.command(),
                &self.lu,
                &self.source,
                &self.arguments,
                &self.status,
                &format!("x-{}", self.bid),
                &self.created,
                &self.start,
                &self.end,
                &self.error,
                &self.extra_stats,
                &total,
                &self.ids_complete,
                &self.estimated,
                &waiting,
                &in_process,
                &completed,
                &failed,
                &cancelled,
                &added,
                &updated,
                &unchanged,
                // A process of another host that beats now runs it: an
                // unfinished batch is not shown INTERRUPTED.
                &store_time(&Utc::now()),
            ],
        )
        .unwrap();
    }
}

/// One entity row: (seq, id, status, attempts, node, start, process ms,
/// result, error).
type E = (
    i64,
    &'static str,
    &'static str,
    i64,
    Option<&'static str>,
    Option<String>,
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
);

fn entities(s: &SqliteStore, bid: &str, rows: &[E]) {
    for (seq, id, status, attempts, node, start, ms, result, error) in rows {
        s.test_execute(
            "INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, node,
                    start_time_ms, process_time_ms, result, error)
                 VALUES ((SELECT batch_no FROM batches WHERE bid = ?1),
                    ?2, ?3, ?4, ?5, ?6, CAST(round(unixepoch(?7, 'subsec') * 1000) AS INTEGER),
                    ?8, ?9, ?10)",
            &[
                &bid, &seq, &id, &status, &attempts, &node, &start, &ms, &result, &error,
            ],
        )
        .unwrap();
    }
}

fn node(
    s: &SqliteStore,
    bid: &str,
    node: &str,
    dc: &str,
    start: &str,
    end: Option<&str>,
    n: [i64; 5],
) {
    s.test_execute(
        "INSERT INTO batch_nodes (bid, node, dc, start_time, end_time, completed, failed,
                added, updated, unchanged)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        &[
            &bid, &node, &dc, &start, &end, &n[0], &n[1], &n[2], &n[3], &n[4],
        ],
    )
    .unwrap();
}

/// A progress sample `secs_before_now` seconds before now.
fn sample(s: &SqliteStore, bid: &str, node: &str, secs_before_now: i64, done: i64) {
    s.test_execute(
        "INSERT INTO batch_progress (bid, node, time_ms, done) VALUES (?1, ?2, ?3, ?4)",
        &[&bid, &node, &(now_ms() - secs_before_now * 1000), &done],
    )
    .unwrap();
}

fn event(s: &SqliteStore, bid: &str, time: &str, exec: &str, node: &str, status: &str, note: &str) {
    s.test_execute(
        "INSERT INTO batch_events (bid, execution_id, time, node, status, note)
             VALUES (?1, ?2, ?3, ?4, ?5, NULLIF(?6, ''))",
        &[&bid, &exec, &time, &node, &status, &note],
    )
    .unwrap();
}

fn stmt(text: &str) -> Statement {
    let mut v = crate::syntax::parse(text).unwrap();
    assert_eq!(v.len(), 1, "{text}");
    v.remove(0).kind
}

fn exec(s: &SqliteStore, text: &str, last: Option<&str>) -> Result<Output> {
    run_at(s, &stmt(text), last, now(), &plus_one())
}

/// A cell as compact, typed text: `-` null, `#n` int, `~x` float (3
/// decimals), `@time` (UTC, ms), `ms` durations, `json` for JSON values,
/// plain text otherwise.
fn show(c: &Cell) -> String {
    match c {
        Cell::Null => "-".into(),
        Cell::Text(s) => s.clone(),
        Cell::Int(n) => format!("#{n}"),
        Cell::Float(x) => format!("~{x:.3}"),
        Cell::Bool(b) => format!("{b}"),
        Cell::Time(t) => format!("@{}", store_time(t)),
        Cell::Duration(d) => format!("{}ms", d.as_millis()),
        Cell::Json(j) => format!("json {j}"),
    }
}

fn table(out: Output) -> (Vec<String>, Vec<Vec<String>>) {
    let Output::Table(t) = out else {
        panic!("not a table: {out:?}")
    };
    for r in &t.rows {
        assert_eq!(r.len(), t.columns.len(), "row width");
    }
    let rows = t
        .rows
        .iter()
        .map(|r| r.iter().map(show).collect())
        .collect();
    (t.columns, rows)
}

fn rows(s: &SqliteStore, text: &str, last: Option<&str>) -> Vec<Vec<String>> {
    table(exec(s, text, last).unwrap()).1
}

/// The first cell of each row.
fn ids(s: &SqliteStore, text: &str) -> Vec<String> {
    rows(s, text, None)
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

fn err(s: &SqliteStore, text: &str, last: Option<&str>) -> MonitorError {
    exec(s, text, last).unwrap_err()
}

// ---------------------------------------------------------------- BATCH_LIST

/// Eight batches over three local days, one of each status (and two DONE).
fn list_fixture() -> (tempfile::TempDir, SqliteStore) {
    let (d, s) = open();
    let mut b = B::new("b-done-0001", "DONE", "2026-03-10T10:00:00.000Z");
    b.start = Some("2026-03-10T10:00:01.000Z");
    b.end = Some("2026-03-10T10:05:00.000Z");
    b.counts = [4, 0, 0, 3, 1, 0];
    b.insert(&s);
    let mut b = B::new("b-run-0002", "IN_PROGRESS", "2026-03-10T11:00:00.000Z");
    b.lu = "Customer";
    b.start = Some("2026-03-10T11:00:00.500Z");
    b.counts = [8, 4, 2, 2, 0, 0];
    b.insert(&s);
    B::new("b-wait-0003", "WAITING_FOR_JOB", "2026-03-10T11:30:00.000Z").insert(&s);
    let mut b = B::new("b-fail-0004", "FAILED", "2026-03-10T09:00:00.000Z");
    b.error = Some("source query failed: no such table: customer");
    b.end = Some("2026-03-10T09:00:01.000Z");
    b.insert(&s);
    let mut b = B::new("b-canc-0005", "CANCELLED", "2026-03-10T08:00:00.000Z");
    b.lu = "Customer";
    b.counts = [10, 0, 0, 2, 1, 7];
    b.insert(&s);
    // Local midnight today, exactly.
    let mut b = B::new("b-paus-0006", "PAUSED", "2026-03-09T23:00:00.000Z");
    b.counts = [3, 2, 0, 1, 0, 0];
    b.insert(&s);
    // A millisecond before local midnight: yesterday. Ids still coming,
    // with an estimate larger than the total so far.
    let mut b = B::new(
        "b-genr-0007",
        "GENERATE_IID_LIST",
        "2026-03-09T22:59:59.999Z",
    );
    b.lu = "Customer";
    b.ids_complete = false;
    b.estimated = Some(20);
    b.counts = [5, 0, 0, 5, 0, 0];
    b.insert(&s);
    B::new("b-empty-0008", "DONE", "2026-03-08T12:00:00.000Z").insert(&s);
    (d, s)
}

#[test]
fn batch_list_without_status_shows_the_active_batches_newest_first() {
    let (_d, s) = list_fixture();
    let (columns, rows) = table(exec(&s, "BATCH_LIST", None).unwrap());
    assert_eq!(columns, columns::BATCH_LIST);
    let cmd = |lu: &str| format!("BATCH {lu} FABRIC_COMMAND=\"echo ?\"");
    let expected: Vec<Vec<String>> = vec![
        vec![
            "b-wait-0003".into(),
            cmd("Account"),
            "-".into(),
            "-".into(),
            "WAITING_FOR_JOB".into(),
            "node-a".into(),
            "-".into(),
            "x-b-wait-0003".into(),
            "-".into(),
        ],
        vec![
            "b-run-0002".into(),
            cmd("Customer"),
            "@2026-03-10T11:00:00.500Z".into(),
            "-".into(),
            "IN_PROGRESS".into(),
            "node-a".into(),
            "~25.000".into(),
            "x-b-run-0002".into(),
            "-".into(),
        ],
        vec![
            "b-paus-0006".into(),
            cmd("Account"),
            "-".into(),
            "-".into(),
            "PAUSED".into(),
            "node-a".into(),
            "~33.333".into(),
            "x-b-paus-0006".into(),
            "-".into(),
        ],
        vec![
            "b-genr-0007".into(),
            cmd("Customer"),
            "-".into(),
            "-".into(),
            "GENERATE_IID_LIST".into(),
            "node-a".into(),
            // 5 of the estimated 20, not 5 of 5 so far.
            "~25.000".into(),
            "x-b-genr-0007".into(),
            "-".into(),
        ],
    ];
    assert_eq!(rows, expected);
}

#[test]
fn batch_list_status_filters() {
    let (_d, s) = list_fixture();
    let all = [
        "b-wait-0003",
        "b-run-0002",
        "b-done-0001",
        "b-fail-0004",
        "b-canc-0005",
        "b-paus-0006",
        "b-genr-0007",
        "b-empty-0008",
    ];
    assert_eq!(ids(&s, "BATCH_LIST STATUS='ALL'"), all);
    assert_eq!(ids(&s, "BATCH_LIST STATUS='failed,ALL'"), all);
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='FAILED,DONE'"),
        ["b-done-0001", "b-fail-0004", "b-empty-0008"]
    );
    assert_eq!(ids(&s, "BATCH_LIST STATUS='IN_PROGRESS'"), ["b-run-0002"]);
    assert_eq!(ids(&s, "BATCH_LIST STATUS='GENERATE_IID'"), ["b-genr-0007"]);
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='GENERATE_IID_LIST'"),
        ["b-genr-0007"]
    );
    assert_eq!(ids(&s, "BATCH_LIST STATUS='CANCELLED'"), ["b-canc-0005"]);
}

#[test]
fn batch_list_completion_percent_and_errors() {
    let (_d, s) = list_fixture();
    let by_id: Vec<(String, String, String)> = rows(&s, "BATCH_LIST STATUS='ALL'", None)
        .into_iter()
        .map(|r| (r[0].clone(), r[6].clone(), r[8].clone()))
        .collect();
    let get = |id: &str| by_id.iter().find(|r| r.0 == id).unwrap().clone();
    assert_eq!(get("b-done-0001").1, "~100.000");
    // Cancelled entities count as finished: the batch is over.
    assert_eq!(get("b-canc-0005").1, "~100.000");
    // An empty DONE batch is complete; a FAILED one with nothing known is not.
    assert_eq!(get("b-empty-0008").1, "~100.000");
    assert_eq!(get("b-fail-0004").1, "-");
    assert_eq!(
        get("b-fail-0004").2,
        "source query failed: no such table: customer"
    );
}

#[test]
fn batch_list_time_filters_read_local_days_and_times() {
    let (_d, s) = list_fixture();
    let q = |opts: &str| ids(&s, &format!("BATCH_LIST STATUS='ALL' {opts}"));
    let today = [
        "b-wait-0003",
        "b-run-0002",
        "b-done-0001",
        "b-fail-0004",
        "b-canc-0005",
        "b-paus-0006",
    ];
    assert_eq!(q("FROM_DATE='today'"), today);
    assert_eq!(q("FROM_DATE='TODAY' TO_DATE='today'"), today);
    assert_eq!(q("FROM_DATE='2026-03-10'"), today);
    assert_eq!(
        q("FROM_DATE='yesterday' TO_DATE='yesterday'"),
        ["b-genr-0007"]
    );
    // TO_DATE with a day keeps the whole day.
    assert_eq!(q("TO_DATE='2026-03-09'"), ["b-genr-0007", "b-empty-0008"]);
    assert_eq!(q("TO_DATE='2026-03-08'"), ["b-empty-0008"]);
    assert_eq!(q("FROM_DATE='2026-03-11'"), Vec::<String>::new());
    // A local time: 10:00 at +01:00 is 09:00Z. FROM is inclusive, TO too.
    assert_eq!(
        q("FROM_DATE='2026-03-10 10:00:00'"),
        ["b-wait-0003", "b-run-0002", "b-done-0001", "b-fail-0004"]
    );
    assert_eq!(
        q("TO_DATE='2026-03-10 10:00:00'"),
        [
            "b-fail-0004",
            "b-canc-0005",
            "b-paus-0006",
            "b-genr-0007",
            "b-empty-0008"
        ]
    );
    // RFC 3339 is taken as written, whatever its offset.
    let from_10z = ["b-wait-0003", "b-run-0002", "b-done-0001"];
    assert_eq!(q("FROM_DATE='2026-03-10T10:00:00Z'"), from_10z);
    assert_eq!(q("FROM_DATE='2026-03-10T11:00:00+01:00'"), from_10z);
    assert_eq!(q("FROM_DATE='2026-03-10T10:00:00.001Z'"), from_10z[..2]);
    assert_eq!(q("TO_DATE='now'").len(), 8);
    assert_eq!(q("FROM_DATE='now'"), Vec::<String>::new());
    // Filters combine with the default (active) status filter.
    assert_eq!(
        ids(&s, "BATCH_LIST FROM_DATE='today'"),
        ["b-wait-0003", "b-run-0002", "b-paus-0006"]
    );
}

#[test]
fn time_bounds_at_the_ends_of_time_neither_panic_nor_sort_wrongly() {
    let (_d, s) = list_fixture();
    let q = |opts: &str| ids(&s, &format!("BATCH_LIST STATUS='ALL' {opts}"));
    assert_eq!(q("TO_DATE='9999-12-31'").len(), 8);
    assert_eq!(q("TO_DATE='+10000-01-01'").len(), 8);
    assert_eq!(q("FROM_DATE='+10000-01-01'"), Vec::<String>::new());
    assert_eq!(q("FROM_DATE='-0001-01-01'").len(), 8);
    assert_eq!(q("TO_DATE='-0001-01-01'"), Vec::<String>::new());
    // chrono's last representable times, in a zone behind UTC and one
    // ahead: an answer (a bound, or "not a time"), never a panic.
    let behind = FixedOffset::west_opt(5 * 3600).unwrap();
    let ahead = FixedOffset::east_opt(14 * 3600).unwrap();
    for text in ["+262142-12-31 23:59:59", "+262142-12-31", "-262143-01-01"] {
        for bound in [Bound::From, Bound::Until] {
            let _ = time_bound(text, bound, now(), &behind);
            let _ = time_bound(text, bound, now(), &ahead);
        }
    }
}

#[test]
fn time_bounds_are_stored_time_text() {
    let tz = plus_one();
    let b = |t: &str, bound| store_time(&time_bound(t, bound, now(), &tz).unwrap());
    assert_eq!(b("today", Bound::From), "2026-03-09T23:00:00.000Z");
    assert_eq!(b("today", Bound::Until), "2026-03-10T23:00:00.000Z");
    assert_eq!(b("yesterday", Bound::From), "2026-03-08T23:00:00.000Z");
    assert_eq!(b("2026-01-31", Bound::Until), "2026-01-31T23:00:00.000Z");
    assert_eq!(
        b("2026-03-10 10:00:00", Bound::From),
        "2026-03-10T09:00:00.000Z"
    );
    assert_eq!(
        b("2026-03-10 10:00:00", Bound::Until),
        "2026-03-10T09:00:00.001Z"
    );
    assert_eq!(b("now", Bound::From), NOW);
    assert_eq!(
        b("2026-03-10T10:00:00-02:00", Bound::From),
        "2026-03-10T12:00:00.000Z"
    );
    assert_eq!(time_bound("soon", Bound::From, now(), &tz), None);
}

#[test]
fn batch_list_filter_is_a_regex_on_the_command_and_limit_counts_matches() {
    let (_d, s) = list_fixture();
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='ALL' FILTER='^BATCH Customer'"),
        ["b-run-0002", "b-canc-0005", "b-genr-0007"]
    );
    // The limit applies after the filter, not before it.
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='ALL' FILTER='Customer' LIMIT=2"),
        ["b-run-0002", "b-canc-0005"]
    );
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='ALL' FILTER='(?i)customer' LIMIT=1"),
        ["b-run-0002"]
    );
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='ALL' FILTER='customer'"),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='ALL' LIMIT=2"),
        ["b-wait-0003", "b-run-0002"]
    );
    assert_eq!(
        ids(&s, "BATCH_LIST STATUS='ALL' LIMIT=0"),
        Vec::<String>::new()
    );
    assert_eq!(ids(&s, "BATCH_LIST STATUS='ALL' LIMIT=-1").len(), 8);

    let e = err(&s, "BATCH_LIST FILTER='(unclosed'", None);
    assert_eq!(
        e.to_string(),
        "FILTER is not a valid regular expression: unclosed group"
    );
    assert_eq!(e.span.unwrap().range(), (11, 29));
    let e = err(&s, "BATCH_LIST LIMIT=-2", None);
    assert_eq!(e.to_string(), "LIMIT must be -1 (all) or 0 or more, not -2");
}

#[test]
fn an_empty_store_lists_nothing() {
    let (_d, s) = open();
    let (columns, rows) = table(exec(&s, "BATCH_LIST STATUS='ALL'", None).unwrap());
    assert_eq!(columns, columns::BATCH_LIST);
    assert!(rows.is_empty());
    let (columns, rows) = table(exec(&s, "BATCH_IN_PROCESS", None).unwrap());
    assert_eq!(columns, columns::BATCH_IN_PROCESS);
    assert!(rows.is_empty());
}

// ---------------------------------------------------------------- bids

fn bid_fixture() -> (tempfile::TempDir, SqliteStore) {
    let (d, s) = open();
    for bid in [
        "short",
        "abcdef01-0000",
        "abcdef02-0000",
        "abcdef02-1111",
        "zzzzzz-1",
        "zzzzzz-2",
        "zzzzzz-3",
        "zzzzzz-4",
        "zzzzzz-5",
        "zzzzzz-6",
        "zzzzzz-7",
    ] {
        B::new(bid, "DONE", "2026-03-10T10:00:00.000Z").insert(&s);
    }
    (d, s)
}

#[test]
fn resolve_bid_exact_prefix_and_last() {
    let (_d, s) = bid_fixture();
    let r = |given: Option<&str>, last: Option<&str>| {
        s.resolve_bid(given, last).map_err(|e| e.to_string())
    };
    // An exact bid wins, even when shorter than a prefix may be.
    assert_eq!(r(Some("short"), None), Ok("short".into()));
    assert_eq!(r(Some("abcdef02-0000"), None), Ok("abcdef02-0000".into()));
    assert_eq!(r(Some("abcdef01"), None), Ok("abcdef01-0000".into()));
    assert_eq!(
        r(Some("abcdef02-1"), Some("short")),
        Ok("abcdef02-1111".into())
    );
    assert_eq!(r(None, Some("abcdef01-0000")), Ok("abcdef01-0000".into()));
    assert_eq!(
        r(None, None),
        Err("no batch in this session yet; give a batch id (BATCH_LIST shows them)".into())
    );
    assert_eq!(
        r(Some("abcde"), None),
        Err("no batch with id 'abcde', and a batch id prefix needs at least 6 characters".into())
    );
    assert_eq!(
        r(Some("abcdef03"), None),
        Err("no batch with id 'abcdef03'".into())
    );
    assert_eq!(
        r(Some("zzzzzz-8"), None),
        Err("no batch with id 'zzzzzz-8'".into())
    );
    assert_eq!(
        r(Some("abcdef"), None),
        Err(
            "batch id prefix abcdef is ambiguous: it matches abcdef01-0000, abcdef02-0000, \
             abcdef02-1111; give more characters"
                .into()
        )
    );
    assert_eq!(
        r(Some("zzzzzz"), None),
        Err(
            "batch id prefix zzzzzz is ambiguous: it matches zzzzzz-1, zzzzzz-2, zzzzzz-3, \
             zzzzzz-4, zzzzzz-5, ...; give more characters"
                .into()
        )
    );
}

#[test]
fn statements_point_bid_errors_at_the_bid_or_the_statement() {
    let (_d, s) = bid_fixture();
    let e = err(&s, "BATCH_INFO 'abcdef'", None);
    assert!(
        e.to_string()
            .starts_with("batch id prefix abcdef is ambiguous")
    );
    assert_eq!(e.span.unwrap().range(), (11, 19));
    let e = err(&s, "BATCH_SUMMARY", None);
    assert_eq!(
        e.to_string(),
        "no batch in this session yet; give a batch id (BATCH_LIST shows them)"
    );
    // About the statement as a whole: the caller points at it.
    assert_eq!(e.span, None);
    // The session's last batch, once purged, is an error, not an empty table.
    let e = err(&s, "BATCH_HISTORY", Some("purged-batch"));
    assert_eq!(e.to_string(), "no batch with id 'purged-batch'");
    let e = err(&s, "BATCH_DETAILS 'nope'", None);
    assert_eq!(
        e.to_string(),
        "no batch with id 'nope', and a batch id prefix needs at least 6 characters"
    );
    // Every bid-taking statement resolves prefixes and the last bid.
    for text in [
        "BATCH_INFO 'abcdef01'",
        "BATCH_SUMMARY 'abcdef01'",
        "BATCH_DETAILS 'abcdef01'",
        "BATCH_HISTORY 'abcdef01'",
        "BATCH_INFO",
        "BATCH_SUMMARY",
        "BATCH_DETAILS",
        "BATCH_HISTORY",
    ] {
        exec(&s, text, Some("abcdef01-0000")).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    let Output::KeyValues(kv) = exec(&s, "BATCH_INFO", Some("short")).unwrap() else {
        panic!()
    };
    assert_eq!(kv.rows[0], ("Batch id".into(), Cell::Text("short".into())));
}

// ---------------------------------------------------------------- BATCH_INFO

#[test]
fn batch_info_shows_every_field_and_option() {
    let (_d, s) = open();
    let mut b = B::new("info-batch-1", "DONE", "2026-03-10T10:00:00.000Z");
    b.lu = "Customer";
    b.start = Some("2026-03-10T10:00:01.000Z");
    b.end = Some("2026-03-10T10:02:00.000Z");
    b.source = r#"{"kind":"query","interface":"crm","sql":"select id from customer"}"#;
    b.arguments = r#"{"ASYNC":true,"MAX_WORKERS_PER_NODE":8,"RETRY_DELAY":"1s","REPROCESS_HOURS":1.5,"AFFINITY":"n1,n2"}"#;
    b.extra_stats = Some(
        r#"{"slowestProcessed":[{"entityId":"4","processTimeMS":572,"status":"COMPLETED","result":"{\"Added\":1}"}]}"#,
    );
    b.insert(&s);
    let Output::KeyValues(kv) = exec(&s, "BATCH_INFO 'info-batch-1'", None).unwrap() else {
        panic!("not key/values")
    };
    let got: Vec<(String, String)> = kv.rows.iter().map(|(k, v)| (k.clone(), show(v))).collect();
    let expected: Vec<(&str, &str)> = vec![
        ("Batch id", "info-batch-1"),
        ("Command", "BATCH Customer FABRIC_COMMAND=\"echo ?\""),
        ("Status", "DONE"),
        // Not an OPEN batch.
        ("Open", "-"),
        ("LU", "Customer"),
        ("Fabric command", "echo ?"),
        (
            "Entity source",
            "query, interface: crm, SQL: select id from customer",
        ),
        // Every option: as given, else its default, else none.
        ("Option AFFINITY", "n1,n2"),
        ("Option ALLOW_MULTIPLE", "false"),
        ("Option ASYNC", "true"),
        ("Option BIND_PARAMS", "-"),
        ("Option BIND_PARAMS_JSON", "-"),
        ("Option BIND_PARAMS_SEPARATOR", ","),
        ("Option CHUNK_SIZE", "-"),
        ("Option ENTITY_TIMEOUT", "-"),
        ("Option ESTIMATED_ENTITIES_COUNT", "-"),
        ("Option GENERATE_ENTITIES_FIRST", "false"),
        ("Option JOB_AFFINITY", "-"),
        ("Option MAX_FAILURES", "-"),
        ("Option MAX_NODES", "-"),
        ("Option MAX_RETRIES", "#0"),
        ("Option MAX_WORKERS_PER_NODE", "#8"),
        ("Option NAME", "-"),
        ("Option ON_DONE", "-"),
        ("Option OPEN", "false"),
        ("Option OUTPUT_LIMIT", "1MB"),
        ("Option REPROCESS_HOURS", "~1.500"),
        ("Option RESUME", "false"),
        ("Option RETRY_DELAY", "1s"),
        ("Option SHOW_OUTPUT", "false"),
        ("Option TRUNC_START", "false"),
        ("Execution id", "x-info-batch-1"),
        ("Created by", "node-a"),
        ("Creation time", "@2026-03-10T10:00:00.000Z"),
        ("Start time", "@2026-03-10T10:00:01.000Z"),
        ("End time", "@2026-03-10T10:02:00.000Z"),
        ("Error", "-"),
        (
            "extra_stats",
            r#"json {"slowestProcessed":[{"entityId":"4","processTimeMS":572,"status":"COMPLETED","result":"{\"Added\":1}"}]}"#,
        ),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, expected);
    // JSON keys scripts will use.
    let keys: Vec<String> = kv
        .rows
        .iter()
        .map(|(k, _)| crate::output::json_key(k))
        .collect();
    assert!(keys.contains(&"option_max_workers_per_node".to_string()));
    assert!(keys.contains(&"entity_source".to_string()));
}

#[test]
fn entity_sources_read_as_one_line() {
    assert_eq!(describe_source(r#"{"kind":"root"}"#), "root");
    assert_eq!(
        describe_source(r#"{"kind":"group","group":"vip"}"#),
        "group, group: vip"
    );
    assert_eq!(
        describe_source(r#"{"kind":"ids","ids":["1","2","3"]}"#),
        "ids, ids: 1, 2, 3"
    );
    let many: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
    assert_eq!(
        describe_source(&serde_json::json!({ "ids": many }).to_string()),
        "ids: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ... (12 in all)"
    );
    assert_eq!(describe_source(r#""fabric""#), "fabric");
    assert_eq!(describe_source("not json"), "not json");
}

// ---------------------------------------------------------------- BATCH_SUMMARY

/// A batch at work for 10 minutes on three nodes in two DCs.
fn summary_fixture() -> (tempfile::TempDir, SqliteStore) {
    let (d, s) = open();
    let mut b = B::new("sum-batch-1", "IN_PROGRESS", "2026-03-10T11:49:59.000Z");
    b.start = Some("2026-03-10T11:50:00.000Z");
    b.counts = [1000, 390, 10, 500, 100, 0];
    b.outcomes = [300, 150, 50];
    b.insert(&s);
    let bid = "sum-batch-1";
    node(
        &s,
        bid,
        "n1",
        "DC1",
        "2026-03-10T11:50:00.000Z",
        None,
        [300, 50, 200, 80, 20],
    );
    node(
        &s,
        bid,
        "n2",
        "DC1",
        "2026-03-10T11:51:40.000Z",
        None,
        [150, 30, 80, 50, 20],
    );
    node(
        &s,
        bid,
        "n3",
        "DC2",
        "2026-03-10T11:50:00.000Z",
        Some("2026-03-10T11:55:00.000Z"),
        [50, 20, 20, 20, 10],
    );
    // n1: newest sample 10 s ago; the newest at least 100 s older is 110 s
    // ago: 100 entities in 100 s.
    for (ago, done) in [(300, 50), (110, 250), (60, 300), (10, 350)] {
        sample(&s, bid, "n1", ago, done);
    }
    // n2: no sample 100 s older than its newest: from its oldest, 80 in 20 s.
    for (ago, done) in [(40, 100), (20, 180)] {
        sample(&s, bid, "n2", ago, done);
    }
    // n3 ended 5 minutes ago: nothing in the last 100 s.
    for (ago, done) in [(420, 20), (300, 70)] {
        sample(&s, bid, "n3", ago, done);
    }
    (d, s)
}

#[test]
fn batch_summary_has_node_dc_and_cluster_rows() {
    let (_d, s) = summary_fixture();
    let (columns, rows) = table(exec(&s, "BATCH_SUMMARY 'sum-batch-1'", None).unwrap());
    assert_eq!(columns, columns::BATCH_SUMMARY);
    let st = "IN_PROGRESS";
    let expected: Vec<Vec<&str>> = vec![
        // Level, Name, Status, Start, End, Duration, Rem. dur., Remaining,
        // Total, Succeeded, Failed, Added, Updated, Unchanged, %, pace, avg
        vec![
            "Node",
            "n1",
            st,
            "@2026-03-10T11:50:00.000Z",
            "-",
            "600000ms",
            "-",
            "-",
            "#350",
            "#300",
            "#50",
            "#200",
            "#80",
            "#20",
            "-",
            "~1.000",
            "~0.583",
        ],
        vec![
            "Node",
            "n2",
            st,
            "@2026-03-10T11:51:40.000Z",
            "-",
            "500000ms",
            "-",
            "-",
            "#180",
            "#150",
            "#30",
            "#80",
            "#50",
            "#20",
            "-",
            "~4.000",
            "~0.360",
        ],
        vec![
            "Node",
            "n3",
            st,
            "@2026-03-10T11:50:00.000Z",
            "@2026-03-10T11:55:00.000Z",
            "300000ms",
            "-",
            "-",
            "#70",
            "#50",
            "#20",
            "#20",
            "#20",
            "#10",
            "-",
            "~0.000",
            "~0.233",
        ],
        vec![
            "DC",
            "DC1",
            st,
            "@2026-03-10T11:50:00.000Z",
            "-",
            "600000ms",
            "-",
            "-",
            "#530",
            "#450",
            "#80",
            "#280",
            "#130",
            "#40",
            "-",
            "~5.000",
            "~0.883",
        ],
        vec![
            "DC",
            "DC2",
            st,
            "@2026-03-10T11:50:00.000Z",
            "@2026-03-10T11:55:00.000Z",
            "300000ms",
            "-",
            "-",
            "#70",
            "#50",
            "#20",
            "#20",
            "#20",
            "#10",
            "-",
            "~0.000",
            "~0.233",
        ],
        // 400 remaining at 5/s: 80 s.
        vec![
            "Cluster",
            "-",
            st,
            "@2026-03-10T11:50:00.000Z",
            "-",
            "600000ms",
            "80000ms",
            "#400",
            "#1000",
            "#500",
            "#100",
            "#300",
            "#150",
            "#50",
            "~60.000",
            "~5.000",
            "~1.000",
        ],
    ];
    assert_eq!(rows, expected);
}

#[test]
fn batch_summary_of_a_finished_batch_ends_with_the_batch() {
    let (_d, s) = summary_fixture();
    s.test_execute_batch(
        "UPDATE batches SET status = 'DONE', end_time = '2026-03-10T11:58:20.000Z',
                waiting = 0, in_process = 0, completed = 870, failed = 130
             WHERE bid = 'sum-batch-1';",
    )
    .unwrap();
    let rows = rows(&s, "BATCH_SUMMARY 'sum-batch-1'", None);
    // n1 has no end of its own: it ends with the batch (8m20s after start),
    // its End time included.
    assert_eq!(rows[0][4], "@2026-03-10T11:58:20.000Z");
    assert_eq!(rows[0][5], "500000ms");
    // A finished batch keeps the pace of its last 100 s: n3 is not zeroed.
    assert_eq!(rows[2][15], "~0.417");
    let cluster = &rows[5];
    assert_eq!(cluster[0], "Cluster");
    assert_eq!(cluster[2], "DONE");
    assert_eq!(cluster[4], "@2026-03-10T11:58:20.000Z");
    assert_eq!(cluster[5], "500000ms");
    assert_eq!(cluster[6], "0ms");
    assert_eq!(cluster[7], "#0");
    assert_eq!(cluster[14], "~100.000");
    assert_eq!(cluster[16], "~2.000");
}

#[test]
fn batch_summary_of_a_batch_not_started_is_one_cluster_row() {
    let (_d, s) = open();
    let mut b = B::new("new-batch-1", "WAITING_FOR_JOB", "2026-03-10T11:59:00.000Z");
    b.ids_complete = false;
    b.estimated = Some(50);
    b.insert(&s);
    let rows = rows(&s, "BATCH_SUMMARY", Some("new-batch-1"));
    assert_eq!(
        rows,
        vec![vec![
            "Cluster",
            "-",
            "WAITING_FOR_JOB",
            "-",
            "-",
            "-",
            "-",
            "#50",
            "#50",
            "#0",
            "#0",
            "#0",
            "#0",
            "#0",
            "~0.000",
            "-",
            "-",
        ]]
    );
}

#[test]
fn remaining_duration_is_empty_while_the_pace_is_unknown() {
    let (_d, s) = open();
    let mut b = B::new("one-sample", "IN_PROGRESS", "2026-03-10T11:59:00.000Z");
    b.start = Some("2026-03-10T11:59:00.000Z");
    b.counts = [10, 8, 0, 2, 0, 0];
    b.insert(&s);
    node(
        &s,
        "one-sample",
        "n1",
        "LOCAL_DC",
        "2026-03-10T11:59:00.000Z",
        None,
        [2, 0, 2, 0, 0],
    );
    sample(&s, "one-sample", "n1", 5, 2);
    let rows = rows(&s, "BATCH_SUMMARY 'one-sample'", None);
    let cluster = rows.last().unwrap();
    assert_eq!(cluster[6], "-");
    assert_eq!(cluster[7], "#8");
    assert_eq!(cluster[15], "-");
    // 2 in 60 s.
    assert_eq!(cluster[16], "~0.033");
}

// ---------------------------------------------------------------- BATCH_DETAILS

fn details_fixture() -> (tempfile::TempDir, SqliteStore) {
    let (d, s) = open();
    let mut b = B::new("det-batch-1", "IN_PROGRESS", "2026-03-10T11:00:00.000Z");
    b.counts = [5, 1, 1, 2, 1, 0];
    b.insert(&s);
    let bid = "det-batch-1";
    node(
        &s,
        bid,
        "n1",
        "DC1",
        "2026-03-10T11:00:00.000Z",
        None,
        [1, 0, 1, 0, 0],
    );
    node(
        &s,
        bid,
        "n2",
        "DC1",
        "2026-03-10T11:00:00.000Z",
        None,
        [0, 1, 0, 0, 0],
    );
    node(
        &s,
        bid,
        "n3",
        "DC2",
        "2026-03-10T11:00:00.000Z",
        None,
        [1, 0, 0, 0, 0],
    );
    let start = Some("2026-03-10T11:59:59.000Z".to_string());
    entities(
        &s,
        bid,
        &[
            (
                1,
                "1",
                "COMPLETED",
                1,
                Some("n1"),
                None,
                Some(120),
                Some(r#"{"Added":1,"Updated":0,"Unchanged":0}"#),
                None,
            ),
            (
                2,
                "2",
                "FAILED",
                3,
                Some("n2"),
                None,
                Some(572),
                Some(r#"{"exit":3,"stdout":"","stderr":"boom"}"#),
                Some("exit status 3"),
            ),
            (3, "a", "WAITING", 0, None, None, None, None, None),
            (4, "B", "IN_PROCESS", 1, Some("n1"), start, None, None, None),
            (
                5,
                "5",
                "COMPLETED",
                1,
                Some("n3"),
                None,
                Some(90),
                Some("oops"),
                None,
            ),
        ],
    );
    (d, s)
}

#[test]
fn batch_details_lists_entities_in_order_of_arrival() {
    let (_d, s) = details_fixture();
    let (columns, rows) = table(exec(&s, "BATCH_DETAILS 'det-batch-1'", None).unwrap());
    assert_eq!(columns, columns::BATCH_DETAILS);
    let expected: Vec<Vec<&str>> = vec![
        vec![
            "1",
            "n1",
            "COMPLETED",
            "#1",
            "#120",
            "-",
            r#"json {"Added":1,"Updated":0,"Unchanged":0}"#,
            "-",
            "-",
            "echo '1'",
        ],
        // The exit code is the result's; the start time the attempt's.
        vec![
            "2",
            "n2",
            "FAILED",
            "#3",
            "#572",
            "exit status 3",
            r#"json {"exit":3,"stdout":"","stderr":"boom"}"#,
            "-",
            "#3",
            "echo '2'",
        ],
        vec![
            "a", "-", "WAITING", "#0", "-", "-", "-", "-", "-", "echo 'a'",
        ],
        vec![
            "B",
            "n1",
            "IN_PROCESS",
            "#1",
            "-",
            "-",
            "-",
            "@2026-03-10T11:59:59.000Z",
            "-",
            "echo 'B'",
        ],
        // A result that is not JSON is shown as text, not dropped.
        vec![
            "5",
            "n3",
            "COMPLETED",
            "#1",
            "#90",
            "-",
            "oops",
            "-",
            "-",
            "echo '5'",
        ],
    ];
    assert_eq!(rows, expected);
}

#[test]
fn batch_details_filters_sorting_and_limits() {
    let (_d, s) = details_fixture();
    let q = |opts: &str| ids(&s, &format!("BATCH_DETAILS 'det-batch-1' {opts}"));
    assert_eq!(q("STATUS='failed'"), ["2"]);
    assert_eq!(q("STATUS='COMPLETED,FAILED'"), ["1", "2", "5"]);
    assert_eq!(q("ENTITIES='a, B'"), ["a", "B"]);
    assert_eq!(q("ENTITIES='b'"), Vec::<String>::new());
    assert_eq!(q("ENTITIES='5,1' STATUS='COMPLETED'"), ["1", "5"]);
    assert_eq!(q("AFFINITY='n1'"), ["1", "B"]);
    assert_eq!(q("AFFINITY='n3, n2'"), ["2", "5"]);
    // A DC name stands for its nodes.
    assert_eq!(q("AFFINITY='DC1'"), ["1", "2", "B"]);
    assert_eq!(q("AFFINITY='DC9'"), Vec::<String>::new());
    assert_eq!(q("SORT_BY_PROCESS_TIME=true"), ["2", "1", "5", "a", "B"]);
    assert_eq!(q("SORT_BY_PROCESS_TIME=false"), ["1", "2", "a", "B", "5"]);
    assert_eq!(q("SORT_BY_PROCESS_TIME=true LIMIT=2"), ["2", "1"]);
    assert_eq!(q("LIMIT=2"), ["1", "2"]);
    assert_eq!(q("LIMIT=0"), Vec::<String>::new());
    assert_eq!(q("LIMIT=-1").len(), 5);
}

#[test]
fn batch_details_shows_10000_rows_unless_limit_is_minus_one() {
    let (_d, s) = open();
    let mut b = B::new("many-1", "DONE", "2026-03-10T11:00:00.000Z");
    b.counts = [10_001, 0, 0, 10_001, 0, 0];
    b.insert(&s);
    s.test_execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001)
             INSERT INTO batch_entities (batch, seq, entity_id, status, attempts)
             SELECT (SELECT batch_no FROM batches WHERE bid = 'many-1'), i, 'e' || i, 'COMPLETED', 1 FROM n;",
        )
        .unwrap();
    let all = rows(&s, "BATCH_DETAILS 'many-1'", None);
    assert_eq!(all.len(), 10_000);
    assert_eq!(all[9_999][0], "e10000");
    assert_eq!(
        rows(&s, "BATCH_DETAILS 'many-1' LIMIT=-1", None).len(),
        10_001
    );
}

// ---------------------------------------------------------------- BATCH_IN_PROCESS

fn ago(ms: i64) -> Option<String> {
    Some(store_time(&(now() - TimeDelta::milliseconds(ms))))
}

#[test]
fn batch_in_process_lists_entities_at_work_across_batches() {
    let (_d, s) = open();
    let mut b = B::new("p-batch-01", "IN_PROGRESS", "2026-03-10T11:00:00.000Z");
    b.lu = "Customer";
    b.counts = [3, 0, 2, 1, 0, 0];
    b.insert(&s);
    let mut b = B::new("p-batch-02", "IN_PROGRESS", "2026-03-10T11:10:00.000Z");
    b.counts = [1, 0, 1, 0, 0, 0];
    b.insert(&s);
    let mut b = B::new("p-batch-03", "DONE", "2026-03-10T10:00:00.000Z");
    b.counts = [1, 0, 0, 1, 0, 0];
    b.insert(&s);
    entities(
        &s,
        "p-batch-01",
        &[
            (
                1,
                "7",
                "IN_PROCESS",
                1,
                Some("n2"),
                ago(1500),
                None,
                None,
                None,
            ),
            (
                2,
                "8",
                "IN_PROCESS",
                2,
                Some("n1"),
                ago(3000),
                None,
                None,
                None,
            ),
            (
                3,
                "9",
                "COMPLETED",
                1,
                Some("n1"),
                ago(9000),
                Some(20),
                None,
                None,
            ),
        ],
    );
    entities(
        &s,
        "p-batch-02",
        &[(
            1,
            "x-1",
            "IN_PROCESS",
            1,
            Some("n1"),
            ago(500),
            None,
            None,
            None,
        )],
    );
    entities(
        &s,
        "p-batch-03",
        &[(
            1,
            "7",
            "COMPLETED",
            1,
            Some("n1"),
            ago(90_000),
            Some(5),
            None,
            None,
        )],
    );
    // Batches 01 and 02 run on another host, which wrote its heartbeat
    // a moment ago. Batch 04 has an entity IN_PROCESS too, but its owner's
    // last heartbeat is a minute old: it died, and nobody works on it.
    let mut b = B::new("p-batch-04", "IN_PROGRESS", "2026-03-10T11:20:00.000Z");
    b.counts = [1, 0, 1, 0, 0, 0];
    b.insert(&s);
    entities(
        &s,
        "p-batch-04",
        &[(
            1,
            "dead-1",
            "IN_PROCESS",
            1,
            Some("n3"),
            ago(60_000),
            None,
            None,
            None,
        )],
    );
    let owned = |bid: &str, heartbeat: Option<String>| {
        s.test_execute(
            "UPDATE batches SET owner_node = 'another-host', owner_pid = 1, heartbeat_at = ?2
                 WHERE bid = ?1",
            &[&bid, &heartbeat],
        )
        .unwrap();
    };
    // Liveness is judged on the real clock, not on the tests' fixed now.
    let real = |ms: i64| {
        Some(store_time(
            &(chrono::Utc::now() - TimeDelta::milliseconds(ms)),
        ))
    };
    owned("p-batch-01", real(0));
    owned("p-batch-02", real(0));
    owned("p-batch-04", real(60_000));
    let (columns, got) = table(exec(&s, "BATCH_IN_PROCESS", None).unwrap());
    assert_eq!(columns, columns::BATCH_IN_PROCESS);
    // The command as run for that entity.
    let (customer, account, customer_7) = ("echo '8'", "echo 'x-1'", "echo '7'");
    let expected: Vec<Vec<&str>> = vec![
        vec![
            "n1",
            "p-batch-01",
            "8",
            "Customer",
            "#3000",
            "x-p-batch-01",
            customer,
        ],
        vec![
            "n1",
            "p-batch-02",
            "x-1",
            "Account",
            "#500",
            "x-p-batch-02",
            account,
        ],
        vec![
            "n2",
            "p-batch-01",
            "7",
            "Customer",
            "#1500",
            "x-p-batch-01",
            customer_7,
        ],
    ];
    assert_eq!(got, expected);
    // FILTER matches the batch's command, the command as run, or the
    // entity id.
    let q = |f: &str| -> Vec<String> {
        rows(&s, &format!("BATCH_IN_PROCESS FILTER='{f}'"), None)
            .into_iter()
            .map(|r| r[2].clone())
            .collect()
    };
    assert_eq!(q("Customer"), ["8", "7"]);
    assert_eq!(q("^x-"), ["x-1"]);
    assert_eq!(q("^7$"), ["7"]);
    assert_eq!(q("nothing"), Vec::<String>::new());
}

/// The command as run for an entity: a `?` that stands alone becomes the
/// quoted id; a `?` inside a text (shell, sql) stays, and the id follows.
#[test]
fn command_as_run_puts_the_id_where_it_goes() {
    use crate::monitor::command_as_run;
    for (command, id, shown) in [
        ("echo ?", "42", "echo '42'"),
        ("sleep 500 ?", "a b", "sleep 500 'a b'"),
        (
            "sync_instance Customer.?",
            "7",
            "sync_instance Customer.'7'",
        ),
        (
            "exec './export one.sh' '--id' ? :bid",
            "it's",
            "exec './export one.sh' '--id' 'it''s' :bid",
        ),
        (
            "shell 'echo ''?'' ?'",
            "1",
            "shell 'echo ''?'' ?' -- ? = '1'",
        ),
        (
            "sql crm 'update t set n = n + 1 where id = ?'",
            "9",
            "sql crm 'update t set n = n + 1 where id = ?' -- ? = '9'",
        ),
    ] {
        assert_eq!(command_as_run(command, id), shown, "{command}");
    }
}

// ---------------------------------------------------------------- BATCH_HISTORY

#[test]
fn batch_history_lists_events_in_the_order_recorded() {
    let (_d, s) = open();
    B::new("h-batch-1", "DONE", "2026-03-10T10:00:00.000Z").insert(&s);
    B::new("h-batch-2", "DONE", "2026-03-10T10:00:00.000Z").insert(&s);
    event(
        &s,
        "h-batch-1",
        "2026-03-10T10:00:00.000Z",
        "e1",
        "n1",
        "NEW",
        "",
    );
    event(
        &s,
        "h-batch-2",
        "2026-03-10T10:00:00.000Z",
        "e9",
        "n1",
        "NEW",
        "",
    );
    event(
        &s,
        "h-batch-1",
        "2026-03-10T10:00:01.000Z",
        "e1",
        "n1",
        "IN_PROGRESS",
        "",
    );
    // Another node's clock runs a little behind: order of recording wins.
    event(
        &s,
        "h-batch-1",
        "2026-03-10T10:00:00.900Z",
        "e1",
        "n2",
        "DONE",
        "4 entities, 1 failed",
    );
    let (columns, got) = table(exec(&s, "BATCH_HISTORY 'h-batch-1'", None).unwrap());
    assert_eq!(columns, HISTORY_COLUMNS);
    let expected: Vec<Vec<&str>> = vec![
        vec!["@2026-03-10T10:00:00.000Z", "e1", "n1", "NEW", "-"],
        vec!["@2026-03-10T10:00:01.000Z", "e1", "n1", "IN_PROGRESS", "-"],
        vec![
            "@2026-03-10T10:00:00.900Z",
            "e1",
            "n2",
            "DONE",
            "4 entities, 1 failed",
        ],
    ];
    assert_eq!(got, expected);
}

#[test]
fn other_statements_are_refused() {
    let (_d, s) = open();
    assert!(!handles(&stmt("BATCH_PAUSE")));
    assert!(handles(&stmt("BATCH_IN_PROCESS")));
    let e = err(&s, "BATCH_PAUSE", None);
    assert_eq!(e.to_string(), "BATCH_PAUSE is not a monitoring statement");
}

// ---------------------------------------------------------------- scale

/// 200k entity rows: the list and the summary read the counters, and agree
/// with the rows (correctness only; speed is for the benchmarks).
#[test]
fn list_and_summary_stay_correct_with_200k_entity_rows() {
    let (_d, s) = open();
    let mut b = B::new("big-batch-1", "IN_PROGRESS", "2026-03-10T11:50:00.000Z");
    b.start = Some("2026-03-10T11:50:00.000Z");
    // seq % 10 == 0 failed, the last 1000 waiting, the rest completed.
    b.counts = [200_000, 1_000, 0, 179_100, 19_900, 0];
    b.outcomes = [179_100, 0, 0];
    b.insert(&s);
    B::new("small-done", "DONE", "2026-03-10T11:00:00.000Z").insert(&s);
    s.test_execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
             INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, node)
             SELECT (SELECT batch_no FROM batches WHERE bid = 'big-batch-1'), i, 'id-' || i,
                    CASE WHEN i > 199000 THEN 'WAITING'
                         WHEN i % 10 = 0 THEN 'FAILED' ELSE 'COMPLETED' END,
                    CASE WHEN i > 199000 THEN 0 ELSE 1 END,
                    CASE WHEN i > 199000 THEN NULL ELSE 'n1' END
             FROM n;",
    )
    .unwrap();
    node(
        &s,
        "big-batch-1",
        "n1",
        "LOCAL_DC",
        "2026-03-10T11:50:00.000Z",
        None,
        [179_100, 19_900, 179_100, 0, 0],
    );
    // The counters agree with the rows.
    let by_status: Vec<(String, i64)> = s.test_pairs(
        "SELECT status, count(*) FROM batch_entities
             WHERE batch = (SELECT batch_no FROM batches WHERE bid = 'big-batch-1')
             GROUP BY status ORDER BY status",
    );
    assert_eq!(
        by_status,
        [
            ("COMPLETED".to_string(), 179_100),
            ("FAILED".to_string(), 19_900),
            ("WAITING".to_string(), 1_000)
        ]
    );

    let list = rows(&s, "BATCH_LIST", None);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0][0], "big-batch-1");
    assert_eq!(list[0][6], "~99.500");

    let summary = rows(&s, "BATCH_SUMMARY 'big-batch-1'", None);
    assert_eq!(summary.len(), 3);
    assert_eq!(summary[0][..2], ["Node", "n1"]);
    assert_eq!(summary[0][8..11], ["#199000", "#179100", "#19900"]);
    assert_eq!(summary[1][..2], ["DC", "LOCAL_DC"]);
    let cluster = &summary[2];
    assert_eq!(
        cluster[7..15],
        [
            "#1000", "#200000", "#179100", "#19900", "#179100", "#0", "#0", "~99.500"
        ]
    );
    // 199000 in 600 s.
    assert_eq!(cluster[16], "~331.667");

    let failed = rows(
        &s,
        "BATCH_DETAILS 'big-batch-1' STATUS='FAILED' LIMIT=-1",
        None,
    );
    assert_eq!(failed.len(), 19_900);
    assert_eq!(failed[0][0], "id-10");
}

/// A caller that read a batch unfinished a moment before it ended asks
/// whether it is interrupted: it has ended since (DONE, its owner
/// cleared, out of the queue), so it is not, synchronous or not; nor is
/// one queued again for a worker meanwhile. An unfinished batch that no
/// live process runs still is.
#[test]
fn a_batch_that_moved_on_since_its_status_was_read_is_not_interrupted() {
    let (_d, s) = open();
    let ownerless = |bid: &str| {
        s.test_execute(
            "UPDATE batches SET owner_node = NULL, owner_pid = NULL, heartbeat_at = NULL
             WHERE bid = ?1",
            &[&bid],
        )
        .unwrap();
    };
    for (bid, status, arguments) in [
        ("sync-done", "DONE", "{}"),
        ("async-done", "DONE", r#"{"ASYNC":true}"#),
        ("async-queued", "WAITING_FOR_JOB", r#"{"ASYNC":true}"#),
        ("sync-left", "IN_PROGRESS", "{}"),
    ] {
        let mut b = B::new(bid, status, NOW);
        b.arguments = arguments;
        b.insert(&s);
        ownerless(bid);
        let want = bid == "sync-left";
        assert_eq!(
            interrupted(&s, bid, BatchStatus::InProgress).unwrap(),
            want,
            "{bid}, {status}"
        );
    }
}
