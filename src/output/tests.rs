//! Exact output of the three formats: output is a contract scripts parse,
//! so these tests pin every character.

use super::*;
use chrono::FixedOffset;
use serde_json::json;
use std::time::Duration;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// +01:00, so a table's local time visibly differs from the UTC in JSON.
fn plus_one() -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap()
}

fn style(format: OutputFormat) -> Style {
    Style {
        format,
        color: false,
        width: None,
        expanded: Expanded::Auto,
    }
}

fn show(out: &Output, format: OutputFormat) -> String {
    render_in(out, &style(format), &plus_one())
}

fn details() -> Output {
    let mut t = Table::new([
        "Entity ID",
        "Status",
        "Attempts",
        "% Completed",
        "Start time",
        "Duration",
        "Results",
        "Error",
    ]);
    t.push_row(vec![
        "1".into(),
        "COMPLETED".into(),
        1.into(),
        33.3333.into(),
        utc(2026, 11, 22, 15, 54, 0).into(),
        Duration::from_millis(97_389_500).into(),
        json!({"Added": 1}).into(),
        Cell::Null,
    ]);
    t.push_row(vec![
        "2".into(),
        "FAILED".into(),
        2.into(),
        100.0.into(),
        Cell::Null,
        Duration::from_millis(1_500).into(),
        Cell::Null,
        "exit 3".into(),
    ]);
    t.into()
}

fn info() -> Output {
    let mut kv = KeyValues::new();
    kv.push("Batch id", "b1");
    kv.push("Status", "DONE");
    kv.push("Total", 2);
    kv.push("End time", None::<DateTime<Utc>>);
    kv.push("extra_stats", json!({"slowestProcessed": []}));
    kv.into()
}

#[test]
fn table_format_of_a_table() {
    assert_eq!(
        show(&details(), OutputFormat::Table),
        "\
| Entity ID | Status    | Attempts | % Completed | Start time          | Duration | Results     | Error  |
|-----------|-----------|----------|-------------|---------------------|----------|-------------|--------|
| 1         | COMPLETED |        1 |       33.33 | 2026-11-22 16:54:00 | 27:03:09 | {\"Added\":1} |        |
| 2         | FAILED    |        2 |         100 |                     | 00:00:01 |             | exit 3 |
"
    );
}

#[test]
fn json_format_of_a_table() {
    assert_eq!(
        show(&details(), OutputFormat::Json),
        concat!(
            r#"[{"entity_id":"1","status":"COMPLETED","attempts":1,"pct_completed":33.3333,"#,
            r#""start_time":"2026-11-22T15:54:00Z","duration":97389500,"results":{"Added":1},"error":null},"#,
            r#"{"entity_id":"2","status":"FAILED","attempts":2,"pct_completed":100.0,"#,
            r#""start_time":null,"duration":1500,"results":null,"error":"exit 3"}]"#,
            "\n"
        )
    );
}

#[test]
fn csv_format_of_a_table() {
    assert_eq!(
        show(&details(), OutputFormat::Csv),
        "\
entity_id,status,attempts,pct_completed,start_time,duration,results,error
1,COMPLETED,1,33.3333,2026-11-22T15:54:00Z,97389500,\"{\"\"Added\"\":1}\",
2,FAILED,2,100.0,,1500,,exit 3
"
    );
}

#[test]
fn table_format_of_key_values() {
    assert_eq!(
        show(&info(), OutputFormat::Table),
        "\
| Key         | Value                   |
|-------------|-------------------------|
| Batch id    | b1                      |
| Status      | DONE                    |
| Total       | 2                       |
| End time    |                         |
| extra_stats | {\"slowestProcessed\":[]} |
"
    );
}

#[test]
fn json_format_of_key_values() {
    assert_eq!(
        show(&info(), OutputFormat::Json),
        r#"{"batch_id":"b1","status":"DONE","total":2,"end_time":null,"extra_stats":{"slowestProcessed":[]}}"#
            .to_string()
            + "\n"
    );
}

#[test]
fn csv_format_of_key_values() {
    assert_eq!(
        show(&info(), OutputFormat::Csv),
        "\
key,value
batch_id,b1
status,DONE
total,2
end_time,
extra_stats,\"{\"\"slowestProcessed\"\":[]}\"
"
    );
}

#[test]
fn message_in_each_format() {
    let m = Output::Message("interface crm created".into());
    assert_eq!(show(&m, OutputFormat::Table), "interface crm created\n");
    assert_eq!(
        show(&m, OutputFormat::Json),
        "{\"message\":\"interface crm created\"}\n"
    );
    assert_eq!(
        show(&m, OutputFormat::Csv),
        "message\ninterface crm created\n"
    );
}

#[test]
fn message_with_a_comma_is_one_csv_field() {
    let m = Output::Message("dropped a, b".into());
    assert_eq!(show(&m, OutputFormat::Csv), "message\n\"dropped a, b\"\n");
}

#[test]
fn multi_line_message_prints_as_is_in_a_table() {
    let text = "[Global]\n$$batch_id=1764000000\n";
    let m = Output::Message(text.into());
    assert_eq!(show(&m, OutputFormat::Table), text);
    assert_eq!(
        show(&m, OutputFormat::Json),
        "{\"message\":\"[Global]\\n$$batch_id=1764000000\\n\"}\n"
    );
}

#[test]
fn control_characters_in_a_table_cell_are_escapes_not_terminal_codes() {
    let mut t = Table::new(["Entity ID", "Error"]);
    t.rows.push(vec![
        Cell::Text("\u{1b}[2Jx".into()),
        Cell::Text("line 1\nline 2\tend\r".into()),
    ]);
    let t: Output = t.into();
    let shown = show(&t, OutputFormat::Table);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\r'),
        "{shown:?}"
    );
    assert!(shown.contains("| \\u{1b}[2Jx |"), "{shown}");
    assert!(shown.contains("line 1\\nline 2\\tend\\r"), "{shown}");
    // One line per row still.
    assert_eq!(shown.lines().count(), 3, "{shown}");
    // JSON and CSV carry the text itself, escaped their own way.
    assert_eq!(
        show(&t, OutputFormat::Json),
        "[{\"entity_id\":\"\\u001b[2Jx\",\"error\":\"line 1\\nline 2\\tend\\r\"}]\n"
    );
    assert!(show(&t, OutputFormat::Csv).contains("\u{1b}[2Jx"));
}

#[test]
fn empty_message_prints_nothing_but_json_still_answers() {
    let m = Output::Message(String::new());
    assert_eq!(show(&m, OutputFormat::Table), "");
    assert_eq!(show(&m, OutputFormat::Csv), "");
    assert_eq!(show(&m, OutputFormat::Json), "{\"message\":\"\"}\n");
}

#[test]
fn empty_table_keeps_its_header() {
    let t: Output = Table::new(["Id", "Status"]).into();
    assert_eq!(
        show(&t, OutputFormat::Table),
        "| Id | Status |\n|----|--------|\n"
    );
    assert_eq!(show(&t, OutputFormat::Json), "[]\n");
    assert_eq!(show(&t, OutputFormat::Csv), "id,status\n");
}

#[test]
fn table_without_columns_prints_nothing() {
    let t: Output = Table::default().into();
    assert_eq!(show(&t, OutputFormat::Table), "");
    assert_eq!(show(&t, OutputFormat::Csv), "");
    assert_eq!(show(&t, OutputFormat::Json), "[]\n");
}

#[test]
fn ragged_rows_are_padded_or_cut_to_the_header() {
    let mut t = Table::new(["A", "B"]);
    t.push_row(vec!["1".into()]);
    t.push_row(vec!["1".into(), "2".into(), "3".into()]);
    let t: Output = t.into();
    assert_eq!(
        show(&t, OutputFormat::Json),
        "[{\"a\":\"1\",\"b\":null},{\"a\":\"1\",\"b\":\"2\"}]\n"
    );
    assert_eq!(show(&t, OutputFormat::Csv), "a,b\n1,\n1,2\n");
    assert_eq!(
        show(&t, OutputFormat::Table),
        "| A | B |\n|---|---|\n| 1 |   |\n| 1 | 2 |\n"
    );
}

#[test]
fn colliding_keys_do_not_overwrite_each_other() {
    let mut t = Table::new(["Node id", "Node ID", "node-id"]);
    t.push_row(vec![1.into(), 2.into(), 3.into()]);
    assert_eq!(
        show(&t.into(), OutputFormat::Json),
        "[{\"node_id\":1,\"node_id_2\":2,\"node_id_3\":3}]\n"
    );
}

#[test]
fn non_finite_float_is_null_in_json_and_empty_in_csv() {
    let mut t = Table::new(["Ent./sec (avg.)", "Ent./sec (pace)"]);
    t.push_row(vec![f64::NAN.into(), f64::INFINITY.into()]);
    let t: Output = t.into();
    assert_eq!(
        show(&t, OutputFormat::Json),
        "[{\"avg_rate\":null,\"pace\":null}]\n"
    );
    assert_eq!(show(&t, OutputFormat::Csv), "avg_rate,pace\n,\n");
}

#[test]
fn every_cell_kind_in_json() {
    let mut kv = KeyValues::new();
    kv.push("null", Cell::Null);
    kv.push("text", "t");
    kv.push("int", -7);
    kv.push("float", 0.25);
    kv.push("bool", true);
    kv.push("time", utc(2026, 1, 2, 3, 4, 5));
    kv.push("duration", Duration::from_secs(90));
    kv.push("json", json!([1, "x", null]));
    assert_eq!(
        show(&kv.into(), OutputFormat::Json),
        concat!(
            r#"{"null":null,"text":"t","int":-7,"float":0.25,"bool":true,"#,
            r#""time":"2026-01-02T03:04:05Z","duration":90000,"json":[1,"x",null]}"#,
            "\n"
        )
    );
}

#[test]
fn csv_quotes_commas_quotes_and_newlines() {
    let mut t = Table::new(["Entity ID", "Error"]);
    t.push_row(vec!["a,b".into(), "say \"hi\"".into()]);
    t.push_row(vec!["line1\nline2".into(), "plain".into()]);
    t.push_row(vec!["cr\r\nlf".into(), " spaced ".into()]);
    assert_eq!(
        show(&t.into(), OutputFormat::Csv),
        "entity_id,error\n\"a,b\",\"say \"\"hi\"\"\"\n\"line1\nline2\",plain\n\"cr\r\nlf\", spaced \n"
    );
}

#[test]
fn csv_header_with_a_comma_is_quoted_too() {
    // json_key never yields a comma, but a hand-made KeyValues value may.
    let mut kv = KeyValues::new();
    kv.push("AFFINITY", "node1,node2");
    assert_eq!(
        show(&kv.into(), OutputFormat::Csv),
        "key,value\naffinity,\"node1,node2\"\n"
    );
}

#[test]
fn no_width_means_no_wrapping() {
    let mut t = Table::new(["Error"]);
    let long = "x ".repeat(100);
    t.push_row(vec![long.trim_end().into()]);
    let s = show(&t.into(), OutputFormat::Table);
    assert_eq!(s.lines().count(), 3, "{s}");
}

#[test]
fn colour_only_when_the_style_allows_it() {
    let plain = show(&details(), OutputFormat::Table);
    assert!(!plain.contains('\x1b'));
    let coloured = render_in(
        &details(),
        &Style {
            format: OutputFormat::Table,
            color: true,
            width: None,
            expanded: Expanded::Auto,
        },
        &plus_one(),
    );
    assert!(coloured.contains('\x1b'));
    // The colour codes are the only difference.
    assert_eq!(strip_ansi(&coloured), plain);
}

#[test]
fn colour_never_reaches_json_or_csv() {
    for format in [OutputFormat::Json, OutputFormat::Csv] {
        let s = render_in(
            &details(),
            &Style {
                format,
                color: true,
                width: None,
                expanded: Expanded::Auto,
            },
            &plus_one(),
        );
        assert!(!s.contains('\x1b'), "{s}");
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn colour_gate() {
    assert!(color_allowed_with(true, None));
    assert!(!color_allowed_with(false, None));
    assert!(!color_allowed_with(true, Some(OsStr::new("1"))));
    // An empty NO_COLOR does not count (no-color.org).
    assert!(color_allowed_with(true, Some(OsStr::new(""))));
    assert!(!color_allowed_with(false, Some(OsStr::new("1"))));
}

#[test]
fn local_time_in_a_fixed_zone() {
    let t = utc(2026, 11, 22, 23, 30, 5);
    assert_eq!(format_time_in(&t, &Utc), "2026-11-22 23:30:05");
    assert_eq!(format_time_in(&t, &plus_one()), "2026-11-23 00:30:05");
    let minus_five = FixedOffset::west_opt(5 * 3600).unwrap();
    assert_eq!(format_time_in(&t, &minus_five), "2026-11-22 18:30:05");
}

#[test]
fn rfc3339_is_utc_with_whole_seconds() {
    let t = utc(2026, 11, 22, 15, 54, 0) + chrono::Duration::milliseconds(999);
    assert_eq!(rfc3339(&t), "2026-11-22T15:54:00Z");
}

#[test]
fn durations_as_hours_minutes_seconds() {
    let cases = [
        (0, "00:00:00"),
        (999, "00:00:00"),
        (59_999, "00:00:59"),
        (60_000, "00:01:00"),
        (3_600_000, "01:00:00"),
        (86_399_000, "23:59:59"),
        // Hours go past 24 rather than wrapping to a day count.
        (97_389_000, "27:03:09"),
        (360_000_000, "100:00:00"),
    ];
    for (ms, text) in cases {
        assert_eq!(format_duration(Duration::from_millis(ms)), text, "{ms} ms");
    }
}

#[test]
fn durations_in_json_are_whole_milliseconds() {
    let mut kv = KeyValues::new();
    kv.push("Remaining dur.", Duration::from_micros(1_500_700));
    kv.push("Duration", Duration::MAX);
    assert_eq!(
        show(&kv.into(), OutputFormat::Json),
        format!(
            "{{\"remaining_duration\":1500,\"duration\":{}}}\n",
            u64::MAX
        )
    );
}

#[test]
fn floats_have_at_most_two_decimals_in_tables() {
    let cases = [
        (0.0, "0"),
        (100.0, "100"),
        (12.5, "12.5"),
        (33.3333, "33.33"),
        (2.0 / 3.0, "0.67"),
        (1.005, "1"),
        (0.001, "0"),
        (-0.001, "0"),
        (-2.25, "-2.25"),
        (1234567.891, "1234567.89"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ];
    for (x, text) in cases {
        assert_eq!(format_float(x), text, "{x}");
    }
}

/// Every column name of SPEC §4, §6 and §8, with its JSON key.
const SPEC_KEYS: &[(&str, &str)] = &[
    // §4, synchronous and asynchronous BATCH
    ("Batch id", "batch_id"),
    ("Execution id", "execution_id"),
    ("Execution succeeded", "execution_succeeded"),
    ("Execution failed", "execution_failed"),
    ("Total", "total"),
    ("Added", "added"),
    ("Updated", "updated"),
    ("Unchanged", "unchanged"),
    ("Duration", "duration"),
    ("Notes", "notes"),
    // §6 BATCH_LIST
    ("Id", "id"),
    ("Command", "command"),
    ("Start date", "start_date"),
    ("End date", "end_date"),
    ("Status", "status"),
    ("Created by", "created_by"),
    ("Completion %", "completion_pct"),
    ("Error", "error"),
    // §6 BATCH_SUMMARY
    ("Level", "level"),
    ("Name", "name"),
    ("Start time", "start_time"),
    ("End time", "end_time"),
    ("Remaining dur.", "remaining_duration"),
    ("Remaining", "remaining"),
    ("Succeeded", "succeeded"),
    ("Failed", "failed"),
    ("% Completed", "pct_completed"),
    ("Ent./sec (pace)", "pace"),
    ("Ent./sec (avg.)", "avg_rate"),
    // §6 BATCH_DETAILS
    ("Entity ID", "entity_id"),
    ("Node id", "node_id"),
    ("Attempts", "attempts"),
    ("Process time (ms)", "process_time_ms"),
    ("Results", "results"),
    ("Exit code", "exit_code"),
    // §6 BATCH_OUTPUT, in JSON and CSV
    ("Stdout", "stdout"),
    ("Stderr", "stderr"),
    ("Truncated", "truncated"),
    // §6 BATCH_IN_PROCESS
    ("Node ID", "node_id"),
    ("LU", "lu"),
    ("Time at work (ms)", "time_at_work_ms"),
    // §8 JOBSTATUS
    ("Type", "type"),
    ("UID", "uid"),
    ("Creation Time", "creation_time"),
    ("Start Time", "start_time"),
    ("End Time", "end_time"),
    ("Affinity", "affinity"),
    ("Is Archived", "is_archived"),
    ("Next Run", "next_run"),
    ("Ownership Candidates Num", "ownership_candidates_num"),
    ("Owner", "owner"),
];

#[test]
fn json_key_of_every_spec_column() {
    for (column, key) in SPEC_KEYS {
        assert_eq!(json_key(column), *key, "{column:?}");
    }
}

#[test]
fn every_column_constant_has_a_tested_key() {
    let tables = [
        columns::BATCH_RESULT,
        columns::BATCH_ASYNC,
        columns::BATCH_LIST,
        columns::BATCH_SUMMARY,
        columns::BATCH_DETAILS,
        columns::BATCH_OUTPUT_STDOUT,
        columns::BATCH_OUTPUT_STDERR,
        columns::BATCH_IN_PROCESS,
        columns::JOBSTATUS,
    ];
    for column in tables.iter().flat_map(|t| t.iter()) {
        assert!(
            SPEC_KEYS.iter().any(|(c, _)| c == column),
            "{column:?} has no expected key in SPEC_KEYS"
        );
    }
}

#[test]
fn no_spec_table_has_two_columns_with_one_key() {
    let tables = [
        columns::BATCH_RESULT,
        columns::BATCH_ASYNC,
        columns::BATCH_LIST,
        columns::BATCH_SUMMARY,
        columns::BATCH_DETAILS,
        columns::BATCH_OUTPUT_STDOUT,
        columns::BATCH_OUTPUT_STDERR,
        columns::BATCH_IN_PROCESS,
        columns::JOBSTATUS,
    ];
    for table in tables {
        let keys = keys::unique_keys(table.iter().copied());
        let plain: Vec<String> = table.iter().map(|c| json_key(c)).collect();
        assert_eq!(keys, plain, "{table:?}");
    }
}

#[test]
fn json_key_general_rule() {
    let cases = [
        ("BATCH id", "batch_id"),
        ("  Leading and trailing  ", "leading_and_trailing"),
        ("a--b__c", "a_b_c"),
        ("MAX_WORKERS_PER_NODE", "max_workers_per_node"),
        ("extra_stats", "extra_stats"),
        ("Ent./sec", "ent_sec"),
        ("100%", "100_pct"),
        ("", ""),
        ("...", ""),
    ];
    for (column, key) in cases {
        assert_eq!(json_key(column), key, "{column:?}");
    }
}

#[test]
fn style_is_copied_not_inferred_from_stdout() {
    // Rendering the same input twice gives the same text: nothing depends on
    // whether the test runner's stdout is a terminal.
    let a = show(&details(), OutputFormat::Table);
    let b = show(&details(), OutputFormat::Table);
    assert_eq!(a, b);
    assert!(!a.contains('\x1b'));
}

/// `Raw`: the text column as it is in a table (a newline after a text
/// that lacks one, nothing for an empty or missing text, control
/// characters untouched: it is the entities' own output), the records
/// in JSON and CSV.
#[test]
fn raw_prints_its_text_column_in_a_table_and_its_records_elsewhere() {
    let mut records = Table::new(["Entity ID", "Stdout"]);
    for (id, text) in [
        ("1", Cell::Text("a\nb\n".into())),
        ("2", Cell::Null),
        ("3", Cell::Text(String::new())),
        ("4", Cell::Text("\u{1b}[1mno newline".into())),
    ] {
        records.push_row(vec![Cell::Text(id.into()), text]);
    }
    let raw = Output::Raw(crate::output::Raw {
        records,
        text_column: 1,
    });
    assert_eq!(
        show(&raw, OutputFormat::Table),
        "a\nb\n\u{1b}[1mno newline\n"
    );
    assert_eq!(
        show(&raw, OutputFormat::Json),
        "[{\"entity_id\":\"1\",\"stdout\":\"a\\nb\\n\"},{\"entity_id\":\"2\",\"stdout\":null},\
         {\"entity_id\":\"3\",\"stdout\":\"\"},{\"entity_id\":\"4\",\"stdout\":\"\\u001b[1mno newline\"}]\n"
    );
    assert_eq!(
        show(&raw, OutputFormat::Csv),
        "entity_id,stdout\n1,\"a\nb\n\"\n2,\n3,\n4,\u{1b}[1mno newline\n"
    );
}
// ---------------------------------------------------------------------------
// Tables that fit a terminal (SPEC §10): short ids, cut text, expanded.
// ---------------------------------------------------------------------------

const BID: &str = "c0ffee42-1d2e-4f5a-8b9c-0123456789ab";
const EXEC: &str = "e7ec0001-aaaa-4bbb-8ccc-dddddddddddd";
const LONG_COMMAND: &str = "BATCH Customer FROM crm USING ('select id from customer where region = ''EU''') FABRIC_COMMAND='sync_instance Customer.?'";

/// A BATCH_LIST of two batches, one with a long error.
fn batch_list() -> Output {
    let mut t = Table::new(columns::BATCH_LIST.iter().copied());
    for (bid, error) in [
        (BID, Cell::Null),
        (
            "0badbad0-1111-4222-8333-444444444444",
            "the source query failed: no such table: customer (while reading ids)".into(),
        ),
    ] {
        t.push_row(vec![
            bid.into(),
            LONG_COMMAND.into(),
            utc(2026, 12, 7, 5, 0, 0).into(),
            utc(2026, 12, 7, 5, 1, 0).into(),
            "DONE".into(),
            "alice".into(),
            100.0.into(),
            EXEC.into(),
            error,
        ]);
    }
    t.into()
}

fn styled(width: Option<u16>, expanded: Expanded) -> Style {
    Style {
        format: OutputFormat::Table,
        color: false,
        width,
        expanded,
    }
}

fn show_at(out: &Output, width: Option<u16>, expanded: Expanded) -> String {
    render_in(out, &styled(width, expanded), &plus_one())
}

fn widest_line(s: &str) -> usize {
    use unicode_width::UnicodeWidthStr;
    s.lines().map(UnicodeWidthStr::width).max().unwrap_or(0)
}

#[test]
fn tables_show_bids_and_execution_ids_by_8_characters_json_and_csv_whole() {
    let out = batch_list();
    for width in [None, Some(80), Some(400)] {
        for expanded in Expanded::ALL {
            let s = show_at(&out, width, expanded);
            assert!(s.contains("c0ffee42") && s.contains("e7ec0001"), "{s}");
            assert!(!s.contains(BID) && !s.contains("c0ffee42-"), "{s}");
            assert!(!s.contains("e7ec0001-"), "{s}");
        }
    }
    for format in [OutputFormat::Json, OutputFormat::Csv] {
        let s = render_in(
            &out,
            &styled(Some(80), Expanded::On).with(format),
            &plus_one(),
        );
        assert!(s.contains(BID) && s.contains(EXEC), "{s}");
        assert!(s.contains(LONG_COMMAND), "{s}");
        assert!(!s.contains('…'), "{s}");
    }
}

impl Style {
    fn with(mut self, format: OutputFormat) -> Style {
        self.format = format;
        self
    }
}

#[test]
fn a_table_that_fits_is_whole_one_line_per_row() {
    let s = show_at(&batch_list(), Some(400), Expanded::Auto);
    assert_eq!(s.lines().count(), 4, "{s}");
    assert!(s.contains(LONG_COMMAND), "{s}");
    assert!(s.contains("(while reading ids)"), "{s}");
    assert!(!s.contains('…'), "{s}");
    // No width (a pipe, a file): nothing is cut, as psql does.
    assert_eq!(show_at(&batch_list(), None, Expanded::Auto), s);
}

#[test]
fn free_text_is_cut_with_an_ellipsis_and_the_rest_kept_whole_to_fit() {
    // The spec's seven columns of BATCH_DETAILS.
    let mut t = Table::new([
        "Entity ID",
        "Node id",
        "Status",
        "Attempts",
        "Process time (ms)",
        "Error",
        "Results",
    ]);
    t.push_row(vec![
        "customer-000042".into(),
        "node-1".into(),
        "FAILED".into(),
        3.into(),
        1234.into(),
        "exit code 3: the command wrote a long message to stderr".into(),
        json!({"exit": 3, "stdout": "", "stderr": "boom boom boom boom boom"}).into(),
    ]);
    let out: Output = t.into();
    for width in [90, 100, 120] {
        let s = show_at(&out, Some(width), Expanded::Auto);
        assert!(widest_line(&s) <= usize::from(width), "{width}:\n{s}");
        let row = s.lines().last().unwrap();
        for whole in ["customer-000042", "node-1", "FAILED", "1234"] {
            assert!(row.contains(whole), "{width}: {whole} cut:\n{s}");
        }
        assert_eq!(row.matches('…').count(), 2, "{width}:\n{s}");
        assert!(row.contains("| exit code"), "{width}:\n{s}");
        assert!(s.lines().filter(|l| l.contains("customer-")).count() == 1);
    }
    // At 90 columns the headers wrap at blanks to make room.
    let s = show_at(&out, Some(90), Expanded::Auto);
    assert!(
        s.starts_with("| Entity ID       | Node id | Status | Attempts | Process"),
        "{s}"
    );
    // At 80, free text at its narrowest does not fit: a record.
    let s = show_at(&out, Some(80), Expanded::Auto);
    assert!(s.starts_with("-[ RECORD 1 ]"), "{s}");
}

#[test]
fn expanded_on_prints_each_row_as_a_psql_record() {
    assert_eq!(
        show_at(&batch_list(), Some(60), Expanded::On),
        "\
-[ RECORD 1 ]-+---------------------------------------------
Id            | c0ffee42
Command       | BATCH Customer FROM crm USING ('select id…
Start date    | 2026-12-07 06:00:00
End date      | 2026-12-07 06:01:00
Status        | DONE
Created by    | alice
Completion %  | 100
Execution id  | e7ec0001
Error         |
-[ RECORD 2 ]-+---------------------------------------------
Id            | 0badbad0
Command       | BATCH Customer FROM crm USING ('select id…
Start date    | 2026-12-07 06:00:00
End date      | 2026-12-07 06:01:00
Status        | DONE
Created by    | alice
Completion %  | 100
Execution id  | e7ec0001
Error         | the source query failed: no such table:…
"
    );
    // Cut at a word's end where there is one (comfy-table's way), so the
    // longest line may be shorter than the width, never longer.
    assert!(widest_line(&show_at(&batch_list(), Some(60), Expanded::On)) <= 60);
    // With no width, values are whole.
    let s = show_at(&batch_list(), None, Expanded::On);
    assert!(
        s.contains(&format!("Command       | {LONG_COMMAND}\n")),
        "{s}"
    );
}

#[test]
fn expanded_auto_only_when_the_table_is_wider_than_the_terminal() {
    let out = batch_list();
    let at = |w, e| show_at(&out, w, e);
    assert!(at(Some(80), Expanded::Auto).starts_with("-[ RECORD 1 ]"));
    assert!(at(Some(160), Expanded::Auto).starts_with("| Id "));
    assert!(at(None, Expanded::Auto).starts_with("| Id "));
    // Off: a table however narrow the terminal, at its narrowest: long
    // texts cut, every row one line.
    let off = at(Some(40), Expanded::Off);
    assert!(off.starts_with("| Id "), "{off}");
    assert_eq!(off.lines().filter(|l| l.contains("c0ffee42")).count(), 1);
    assert!(off.contains('…'), "{off}");
    assert!(widest_line(&off) < widest_line(&at(None, Expanded::Off)));
}

#[test]
fn an_empty_table_prints_its_header_even_when_expanded() {
    let t: Output = Table::new(columns::BATCH_LIST.iter().copied()).into();
    let s = show_at(&t, Some(80), Expanded::On);
    assert!(s.starts_with("| Id"), "{s}");
    assert!(!s.contains("RECORD"), "{s}");
}

#[test]
fn json_and_csv_are_the_same_whatever_the_table_settings() {
    let out = batch_list();
    for format in [OutputFormat::Json, OutputFormat::Csv] {
        let plain = show(&out, format);
        for width in [None, Some(40)] {
            for expanded in Expanded::ALL {
                let s = render_in(&out, &styled(width, expanded).with(format), &plus_one());
                assert_eq!(s, plain);
            }
        }
    }
}

#[test]
fn the_width_is_columns_then_the_terminal_then_none() {
    assert_eq!(width_from(Some("80"), Some(200)), Some(80));
    assert_eq!(width_from(None, Some(200)), Some(200));
    assert_eq!(width_from(None, None), None);
    assert_eq!(width_from(Some(" 100 "), None), Some(100));
    // Not a width: ignored.
    assert_eq!(width_from(Some("0"), Some(120)), Some(120));
    assert_eq!(width_from(Some("wide"), None), None);
    assert_eq!(width_from(None, Some(0)), None);
}

#[test]
fn timing_reads_as_psql_prints_it() {
    let t = |ms: u64| format_timing(Duration::from_micros(ms * 1000 + 345));
    assert_eq!(t(12), "Time: 12.345 ms");
    assert_eq!(t(999), "Time: 999.345 ms");
    assert_eq!(t(75_012), "Time: 75012.345 ms (01:15.012)");
    assert_eq!(t(3_723_004), "Time: 3723004.345 ms (01:02:03.004)");
    assert_eq!(t(90_000_000), "Time: 90000000.345 ms (1 d 01:00:00.000)");
}

#[test]
fn the_pager_command_and_when_it_is_wanted() {
    use super::pager::{command_from, wanted};
    assert_eq!(command_from(None, None).as_deref(), Some("less"));
    assert_eq!(command_from(None, Some("more")).as_deref(), Some("more"));
    assert_eq!(
        command_from(Some("less -S"), Some("more")).as_deref(),
        Some("less -S")
    );
    assert_eq!(command_from(Some(""), Some("more")), None);
    assert_eq!(command_from(None, Some("cat")), None);
    assert_eq!(command_from(None, Some("  ")), None);
    assert!(!wanted("a\nb\n", 24));
    assert!(wanted(&"row\n".repeat(24), 24));
    assert!(!wanted(&"row\n".repeat(23), 24));
}

#[test]
fn no_width_is_too_narrow_to_print() {
    for out in [batch_list(), details(), info()] {
        for width in (0..=130).map(Some).chain([Some(u16::MAX), None]) {
            for expanded in Expanded::ALL {
                let s = show_at(&out, width, expanded);
                assert!(
                    s.ends_with('\n') && s.lines().count() >= 2,
                    "{width:?}:\n{s}"
                );
            }
        }
    }
}

/// Records are coloured as tables are: the status only, and the colour
/// codes are the only difference.
#[test]
fn expanded_records_colour_the_status_only() {
    for width in [None, Some(60)] {
        let plain = show_at(&details(), width, Expanded::On);
        let mut style = styled(width, Expanded::On);
        style.color = true;
        let coloured = render_in(&details(), &style, &plus_one());
        assert_eq!(strip_ansi(&coloured), plain);
        let status_lines: Vec<&str> = coloured.lines().filter(|l| l.contains('\x1b')).collect();
        assert_eq!(status_lines.len(), 2, "{coloured}");
        assert!(status_lines.iter().all(|l| l.starts_with("Status ")));
    }
}
