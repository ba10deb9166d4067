//! Parse -> print -> parse round trips (SPEC §2, §4-§6; STYLE.md,
//! "Canonical printing").
//!
//! Three layers:
//! - every example of the project (grammar file, `examples/*.bsh`, the
//!   `bsh` blocks of the README and of `docs/*.md`) reparses from its canonical text to the same statements,
//!   and printing is idempotent;
//! - one hand-written test per statement family lists tricky spellings
//!   (doubled quotes, `$$` strings, comments, lower case, legacy words,
//!   commas between options, bare ids, nesting) and pins the exact
//!   canonical text of some;
//! - a proptest property builds statements directly as ASTs (strategies
//!   below) and checks `parse(print(stmt)) == [stmt]`: 2000 cases for single
//!   statements, 300 for scripts of several (`ProptestConfig` below).
//!
//! Statement equality ignores spans by design (`Span`'s `PartialEq` is
//! always true), so the comparisons are of what the statements say.

use crate::common;
use batchsh::ast::*;
use batchsh::diag;
use batchsh::syntax::keywords::{self, OptSpec, OptType};
use batchsh::syntax::parse;
use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// helpers

/// Parses `src`, failing the test with the rendered diagnostic.
fn parse_ok(origin: &str, src: &str) -> Vec<Stmt> {
    parse(src).unwrap_or_else(|e| {
        panic!(
            "{origin}: does not parse:\n{src}\n{}",
            diag::render(src, &e)
        )
    })
}

/// Checks the round trip of `src` and returns the canonical text, or why
/// it failed.
fn check_round_trip(src: &str) -> Result<String, String> {
    let first = parse(src).map_err(|e| format!("does not parse:\n{}", diag::render(src, &e)))?;
    let printed = common::print(&first);
    let second = parse(&printed).map_err(|e| {
        format!(
            "canonical text does not parse:\n{printed}\n{}",
            diag::render(&printed, &e)
        )
    })?;
    if first != second {
        return Err(format!(
            "canonical text reparses to different statements:\n{printed}\nfirst:  {first:?}\nsecond: {second:?}"
        ));
    }
    let again = common::print(&second);
    if again != printed {
        return Err(format!("printing is not idempotent:\n{printed}\n{again}"));
    }
    Ok(printed)
}

/// Round-trips every input, collecting all failures into one panic.
fn assert_all_round_trip(inputs: &[&str]) {
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|src| {
            check_round_trip(src)
                .err()
                .map(|e| format!("--- input:\n{src}\n{e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} inputs fail to round-trip:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

/// The canonical text of a one-statement input (after checking its round
/// trip).
fn canonical(src: &str) -> String {
    let stmts = parse_ok("input", src);
    assert_eq!(stmts.len(), 1, "one statement expected in {src:?}");
    check_round_trip(src).unwrap_or_else(|e| panic!("{src}\n{e}"))
}

/// Asserts the canonical text of each `(input, expected)` pair.
fn assert_canonical(pairs: &[(&str, &str)]) {
    for (src, want) in pairs {
        assert_eq!(canonical(src), *want, "canonical text of {src:?}");
    }
}

// ---------------------------------------------------------------------------
// every example of the project

#[test]
fn examples_round_trip() {
    let examples = common::all_examples();
    assert!(!examples.is_empty(), "no examples found");
    let failures: Vec<String> = examples
        .iter()
        .filter_map(|(origin, text)| {
            check_round_trip(text)
                .err()
                .map(|e| format!("--- {origin}:\n{text}\n{e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} examples fail to round-trip:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// hand-written round trips, one test per statement family

#[test]
fn catalog_statements_round_trip() {
    assert_all_round_trip(&[
        "CREATE INTERFACE crm TYPE SQLITE PATH 'data/crm.db'",
        "create or replace interface ids type csv path \"data/it's\" with header='TRUE', delimiter='|'",
        "CREATE INTERFACE x TYPE CSV PATH $$C:\\data\\it's$$ WITH DELIMITER='''' HEADER=false",
        "CREATE INTERFACE x TYPE CSV PATH 'a' WITH DELIMITER=\"\"\"\"",
        "CREATE INTERFACE x TYPE csv PATH 'a' WITH delimiter=';'",
        "CREATE INTERFACE w TYPE POSTGRES URL 'postgres://u@h:5432/db' -- trailing comment",
        "/* leading */ DROP INTERFACE crm",
        "show interfaces",
        "CREATE LU Customer FROM crm ROOT ('select id from customer') \
         TABLE customer ('select * from customer where id = ?') \
         TABLE address KEY (customer_id, kind) (\"select * from address where note = 'it''s'\")",
        "create lu L from i root ($$select 'x' -- not a comment /* nor this */$$)",
        "CREATE OR REPLACE LU Account FROM crm ROOT ('select account_id from account')\n\
         TABLE account KEY (account_id) ('select * from account where account_id = ?')",
        "DROP LU Customer",
        "SHOW LUS",
        "describe lu customer",
        "GET Customer.'42'",
        "GET Customer.42",
        "get Device.\"SN-0001-A\"",
        "GET c.vip_7",
        "GET c.'日本語 ''quoted'''",
        "CREATE INSTANCE GROUP Customer.vip USING ('select id from customer where tier = ''gold''')",
        "create or replace instance group Customer.churned from warehouse using (\"select 1\")",
        "DROP INSTANCE GROUP Customer.vip",
        "SHOW INSTANCE GROUPS",
        "show instance groups Customer",
    ]);
    assert_canonical(&[
        (
            "create or replace interface ids type csv path \"data/it's\" with header='TRUE', delimiter='|'",
            "CREATE OR REPLACE INTERFACE ids TYPE CSV PATH 'data/it''s' WITH HEADER=true DELIMITER='|'",
        ),
        (
            "create lu L from i root ($$select 'x'$$) table t key (a,b) (\"select ?\")",
            "CREATE LU L FROM i ROOT ('select ''x''') TABLE t KEY (a, b) ('select ?')",
        ),
        ("GET Customer.42", "GET Customer.'42'"),
        (
            "show instance groups Customer",
            "SHOW INSTANCE GROUPS Customer",
        ),
    ]);
}

#[test]
fn batch_statements_round_trip() {
    assert_all_round_trip(&[
        "batch customer fabric_command=\"echo ?\" with async='TRUE' allow_multiply=true",
        "BATCH AUTODATA_DELTA FROM idsFile USING ('select id from ids  limit 100') \
         FABRIC_COMMAND=\"sync_instance AUTODATA_DELTA.?\" with JOB_AFFINITY='10.21.2.102' ASYNC='true';",
        "batch c@DC1 (1, two, 'th''ree', \"fo\"\"ur\", -5, 1.5) fabric_command='echo ?'",
        "BATCH c@DC1.('1') FABRIC_COMMAND='ECHO ?'",
        "BATCH c FABRIC_COMMAND=$$exec '/bin/echo' \"it's\" ? :BATCH_ID$$ \
         WITH RETRY_DELAY='90s', ENTITY_TIMEOUT=1500ms MAX_FAILURES='10%' MAX_RETRIES=-1",
        "BATCH c.vip FABRIC_COMMAND=\"shell 'curl https://x/?id=? -- not a comment /* nor this */'\" \
         WITH ENTITY_TIMEOUT='01:30:00' MAX_FAILURES=5 REPROCESS_HOURS=1.50 \
         BIND_PARAMS_JSON='[\"a\",1]' ON_DONE='notify \"done\"'",
        "BATCH c FROM FABRIC FABRIC_COMMAND=\"sql crm 'update t set x = ? where y = ''a'''\"",
        "BATCH c FROM crm USING ($$select id from t where name = 'x' and d >= :from_date$$) \
         FABRIC_COMMAND='sleep 250 ?' WITH BIND_PARAMS='a|b' BIND_PARAMS_SEPARATOR='|' TRUNC_START=TRUE",
        "batch c fabric_command=\"DELETE_INSTANCE c.?\" with max_failures='12.5%' \
         generate_iids_first=false, estimated_entities_count=1000",
        "BATCH c FABRIC_COMMAND='exec prog ? ''--x'' :bid :batch_start :batch_end' \
         WITH RETRY_DELAY='1.02:00:00' NAME='日本 🦀' OPEN=true, AFFINITY='n1,n2' MAX_NODES=2 \
         MAX_WORKERS_PER_NODE=8 CHUNK_SIZE=500",
        "BATCH c /* ids */ ( '1' , '2' ) -- the command\n FABRIC_COMMAND = 'echo ?' WITH ASYNC = false",
        "BATCH c FABRIC_COMMAND='shell ''echo \"$$ ?\"'''",
        "BATCH Customer.vip\n FABRIC_COMMAND = \"exec '/opt/etl/export_customer' '--id' ? '--since' :from_date\"\n \
         WITH NAME='customer_export' MAX_WORKERS_PER_NODE=8, MAX_RETRIES=3 RETRY_DELAY=30s\n \
         MAX_FAILURES='10%' ENTITY_TIMEOUT='5m' ALLOW_MULTIPLY=true;",
    ]);
    assert_canonical(&[
        (
            "batch customer fabric_command=\"echo ?\" with async='TRUE' allow_multiply=true",
            "BATCH customer FABRIC_COMMAND='echo ?' WITH ASYNC=true ALLOW_MULTIPLE=true",
        ),
        (
            "BATCH AUTODATA_DELTA FROM idsFile USING ('select id from ids  limit 100') \
             FABRIC_COMMAND=\"sync_instance AUTODATA_DELTA.?\" with JOB_AFFINITY='10.21.2.102' ASYNC='true';",
            "BATCH AUTODATA_DELTA FROM idsFile USING ('select id from ids  limit 100') \
             FABRIC_COMMAND='sync_instance AUTODATA_DELTA.?' WITH JOB_AFFINITY='10.21.2.102' ASYNC=true",
        ),
        (
            "batch c@DC1 (1, two, 'th''ree', \"fo\"\"ur\", -5, 1.5) fabric_command='echo ?'",
            "BATCH c@DC1.('1', 'two', 'th''ree', 'fo\"ur', '-5', '1.5') FABRIC_COMMAND='echo ?'",
        ),
        (
            "BATCH c FABRIC_COMMAND=$$exec '/bin/echo' \"it's\" ? :BATCH_ID$$ \
             WITH RETRY_DELAY='90s', ENTITY_TIMEOUT=1500ms MAX_FAILURES='10%' MAX_RETRIES=-1",
            "BATCH c FABRIC_COMMAND='exec ''/bin/echo'' ''it''''s'' ? :batch_id' \
             WITH RETRY_DELAY='90s' ENTITY_TIMEOUT='1500ms' MAX_FAILURES='10%' MAX_RETRIES=-1",
        ),
        (
            "batch c fabric_command=\"DELETE_INSTANCE c.?\" with max_failures='12.5%' \
             generate_iids_first=false, estimated_entities_count=1000",
            "BATCH c FABRIC_COMMAND='delete_instance c.?' WITH MAX_FAILURES='12.5%' \
             GENERATE_ENTITIES_FIRST=false ESTIMATED_ENTITIES_COUNT=1000",
        ),
        (
            // 'HH:MM:SS' and 'D.HH:MM:SS' durations print in the largest exact unit.
            "BATCH c FABRIC_COMMAND='echo ?' WITH ENTITY_TIMEOUT='01:30:00' RETRY_DELAY='1.02:00:00' \
             REPROCESS_HOURS=1.50 BIND_PARAMS_JSON='[ \"a\" , 1 ]'",
            "BATCH c FABRIC_COMMAND='echo ?' WITH ENTITY_TIMEOUT='90m' RETRY_DELAY='26h' \
             REPROCESS_HOURS=1.5 BIND_PARAMS_JSON='[\"a\",1]'",
        ),
    ]);
}

#[test]
fn migrate_and_explain_round_trip() {
    assert_all_round_trip(&[
        "MIGRATE Customer",
        "migrate Customer.vip with async='true' job_affinity=DC2 allow_multiply=FALSE",
        "MIGRATE c@dc ('1', 2) FROM FABRIC",
        "MIGRATE AUTODATA_DELTA FROM idsFile USING ('select id from ids where m = ?') \
         WITH BIND_PARAMS_JSON='[\"2026-11\"]' CHUNK_SIZE=500;",
        "migrate c@dc.grp with GENERATE_IIDS_FIRST=\"TRUE\"",
        "explain batch Device.('SN-1', 'SN-2') FABRIC_COMMAND=\"sleep 250 ?\" WITH OPEN=true AFFINITY='node1,node2'",
        "EXPLAIN MIGRATE Customer FROM FABRIC WITH ESTIMATED_ENTITIES_COUNT=120000 MAX_NODES=2",
        "explain migrate c",
        "EXPLAIN BATCH c FROM crm USING ('select ?') FABRIC_COMMAND='sql crm ''update t set a = :batch_start where id = ?''' \
         WITH BIND_PARAMS='EU' NAME='crm_touch' REPROCESS_HOURS=1.5 TRUNC_START=true",
    ]);
    assert_canonical(&[
        (
            "migrate Customer.vip with async='true' job_affinity=DC2 allow_multiply=FALSE",
            "MIGRATE Customer.vip WITH ASYNC=true JOB_AFFINITY='DC2' ALLOW_MULTIPLE=false",
        ),
        (
            "migrate c@dc ('1', 2) from fabric with generate_iids_first=\"TRUE\"",
            "MIGRATE c@dc.('1', '2') FROM FABRIC WITH GENERATE_ENTITIES_FIRST=true",
        ),
        ("explain migrate c", "EXPLAIN MIGRATE c"),
    ]);
}

#[test]
fn control_and_monitoring_statements_round_trip() {
    assert_all_round_trip(&[
        "BATCH_PAUSE",
        "BATCH_PAUSE 'c0ffee42-1d2e-4b7a-9f00-5a1b2c3d4e5f'",
        "batch_resume c0ffee42",
        "BATCH_CANCEL \"c0ffee42\"",
        "CANCEL BATCH",
        "cancel batch 'c0ffee42'",
        "BATCH_RETRY",
        "BATCH_RETRY 'c0ffee42' ALLOW_CANCELLED=true",
        "batch_retry allow_cancelled='FALSE'",
        "BATCH_EDIT MAX_WORKERS_PER_NODE=2",
        "BATCH_EDIT 'c0ffee42' MAX_WORKERS_PER_NODE = 16",
        "BATCH_APPEND 'c0ffee42' ('1004', '1005', 1006, vip)",
        "BATCH_APPEND c0ffee42 FROM crm USING ('select id from customer where created_at >= :batch_start')",
        "batch_append \"it's\" from FABRIC using ($$select 'x'$$)",
        "BATCH_WAITOFF 'c0ffee42'",
        "BATCH_WAIT",
        "BATCH_WAIT NAME='etl.*' SINCE='today' TIMEOUT='2h'",
        "BATCH_WAIT c0ffee42 TIMEOUT=00:30:00",
        "batch_wait since='2026-01-31T02:00:00+01:00', timeout='1500ms'",
        "BATCH_PURGE",
        "BATCH_PURGE OLDER_THAN='30d' STATUS='done, cancelled'",
        "BATCH_LIST",
        "BATCH_LIST STATUS='ALL' FROM_DATE='2026-11-01' TO_DATE=today FILTER='sync_instance' LIMIT=20",
        "batch_list status=\"in_progress,paused,generate_iid\", limit=20",
        "BATCH_INFO",
        "batch_info 'it''s'",
        "BATCH_SUMMARY c0ffee42",
        "BATCH_DETAILS 'c0ffee42' STATUS='FAILED' LIMIT=-1 SORT_BY_PROCESS_TIME=true",
        "BATCH_DETAILS ENTITIES='1001,1002', AFFINITY='node1'",
        "BATCH_IN_PROCESS",
        "BATCH_IN_PROCESS FILTER='^sync_instance -- not a comment'",
        "BATCH_IN_PROCESS 'c0ffee42' FILTER='^sync'",
        "BATCH_HISTORY 'c0ffee42'",
        "BATCH_OUTPUT",
        "batch_output 'c0ffee42' status='failed,completed' entities='1, 2' stream=stderr",
        "SHOW NODES",
        "show nodes; -- the nodes",
        "BATCH_LIST; BATCH_INFO;; -- two statements\n",
    ]);
    assert_canonical(&[
        ("cancel batch 'c0ffee42'", "BATCH_CANCEL 'c0ffee42'"),
        ("CANCEL BATCH", "BATCH_CANCEL"),
        ("batch_resume c0ffee42", "BATCH_RESUME 'c0ffee42'"),
        (
            "BATCH_WAIT c0ffee42 TIMEOUT=00:30:00",
            "BATCH_WAIT 'c0ffee42' TIMEOUT='30m'",
        ),
        (
            "batch_list status=\"in_progress,paused,generate_iid\", limit=20",
            "BATCH_LIST STATUS='IN_PROGRESS,PAUSED,GENERATE_IID' LIMIT=20",
        ),
        (
            "BATCH_PURGE OLDER_THAN='30d' STATUS='done, cancelled'",
            "BATCH_PURGE OLDER_THAN='30d' STATUS='DONE,CANCELLED'",
        ),
        (
            "BATCH_APPEND c0ffee42 ('1004', 1005, vip)",
            "BATCH_APPEND 'c0ffee42' ('1004', '1005', 'vip')",
        ),
    ]);
}

#[test]
fn job_statements_round_trip() {
    assert_all_round_trip(&[
        "STARTJOB STATEMENT NAME='nightly' UID='u1' AFFINITY='node1' EXEC_INTERVAL='0  2 * * *' \
         COMMAND=$$ BATCH Customer FABRIC_COMMAND=\"sync_instance Customer.?\" $$;",
        "startjob statement NAME=\"purge\", COMMAND='BATCH_PURGE OLDER_THAN=''30d''', EXEC_INTERVAL='2026-12-01 02:00:00';",
        "STARTJOB STATEMENT NAME=a COMMAND='STARTJOB STATEMENT NAME=b COMMAND=$$ BATCH_LIST $$'",
        "STARTJOB STATEMENT NAME=a COMMAND=$$STARTJOB STATEMENT NAME=b COMMAND='STARTJOB STATEMENT NAME=c \
         COMMAND=''BATCH c FABRIC_COMMAND=''''echo ?'''''''$$",
        "STARTJOB STATEMENT NAME=a EXEC_INTERVAL='90s' COMMAND=$$SCHEDULE s EVERY '1m' DO BATCH_LIST$$",
        "STARTJOB STATEMENT NAME=a EXEC_INTERVAL='1500ms' COMMAND=$$ -- a comment\nHELP /* c */ $$",
        "STARTJOB STATEMENT NAME=a EXEC_INTERVAL='0 0 12 ? * MON-FRI 2027' COMMAND='EXIT'",
        "STARTJOB PROCESS NAME='cleanup' COMMAND='/usr/local/bin/cleanup.sh' \
         ARGS='{\"0\": \"--older-than\", \"1\": \"30d\"}' EXEC_INTERVAL='1.00:00:00'",
        "STOPJOB STATEMENT NAME='nightly' UID='u1'",
        "stopjob batch_job NAME='BATCH_JOB_Customer'",
        "RESTARTJOB PROCESS NAME='cleanup'",
        "RESUMEJOB STATEMENT NAME='nightly', UID='u1'",
        "UPDATEJOB STATEMENT NAME='nightly' EXEC_INTERVAL='0 3 * * *' RESET_END_TIME=true",
        "UPDATEJOB PROCESS NAME='cleanup', UID='u1', AFFINITY='DC2'",
        "UPDATEJOB BATCH_JOB NAME=x EXEC_INTERVAL='00:15:00'",
        "JOBSTATUS",
        "JOBSTATUS STATEMENT 'nightly' WITH UID='u1'",
        "jobstatus batch_job",
        "JOBSTATUS PROCESS WITH UID=\"u''1\"",
    ]);
    assert_canonical(&[
        (
            "STARTJOB STATEMENT NAME='nightly' UID='u1' AFFINITY='node1' EXEC_INTERVAL='0  2 * * *' \
             COMMAND=$$ BATCH Customer FABRIC_COMMAND=\"sync_instance Customer.?\" $$;",
            "STARTJOB STATEMENT NAME='nightly' UID='u1' AFFINITY='node1' EXEC_INTERVAL='0 2 * * *' \
             COMMAND=$$ BATCH Customer FABRIC_COMMAND='sync_instance Customer.?' $$",
        ),
        (
            "startjob statement NAME=\"purge\", COMMAND='BATCH_PURGE OLDER_THAN=''30d''', EXEC_INTERVAL='2026-12-01 02:00:00';",
            "STARTJOB STATEMENT NAME='purge' COMMAND=$$ BATCH_PURGE OLDER_THAN='30d' $$ \
             EXEC_INTERVAL='2026-12-01 02:00:00'",
        ),
        (
            // The inner statement holds $$, so the outer one quotes it.
            "STARTJOB STATEMENT NAME=a COMMAND='STARTJOB STATEMENT NAME=b COMMAND=$$ BATCH_LIST $$'",
            "STARTJOB STATEMENT NAME='a' COMMAND='STARTJOB STATEMENT NAME=''b'' COMMAND=$$ BATCH_LIST $$'",
        ),
        (
            "STARTJOB PROCESS NAME='cleanup' COMMAND='/usr/local/bin/cleanup.sh' \
             ARGS='{\"0\": \"--older-than\", \"1\": \"30d\"}' EXEC_INTERVAL='1.00:00:00'",
            "STARTJOB PROCESS NAME='cleanup' COMMAND='/usr/local/bin/cleanup.sh' \
             ARGS='{\"0\":\"--older-than\",\"1\":\"30d\"}' EXEC_INTERVAL='1.00:00:00'",
        ),
        (
            // Intervals print as HH:MM:SS when whole seconds, else as a duration.
            "STARTJOB STATEMENT NAME=a EXEC_INTERVAL='90s' COMMAND='EXIT'",
            "STARTJOB STATEMENT NAME='a' EXEC_INTERVAL='00:01:30' COMMAND=$$ EXIT $$",
        ),
        (
            "STARTJOB STATEMENT NAME=a EXEC_INTERVAL='1500ms' COMMAND='QUIT'",
            "STARTJOB STATEMENT NAME='a' EXEC_INTERVAL='1500ms' COMMAND=$$ EXIT $$",
        ),
        ("jobstatus batch_job", "JOBSTATUS BATCH_JOB"),
    ]);
}

#[test]
fn schedule_statements_round_trip() {
    assert_all_round_trip(&[
        "SCHEDULE nightly CRON '0 2 * * *' DO BATCH Customer FABRIC_COMMAND=\"sync_instance Customer.?\";",
        "schedule heartbeat every '15m' do batch Device ('probe-1') fabric_command='echo ?'",
        "SCHEDULE purge_once AT '2026-12-01 02:00:00'\n DO BATCH Customer FROM FABRIC \
         FABRIC_COMMAND=\"delete_instance Customer.?\" WITH ASYNC=true;",
        "SCHEDULE s AT \"2026-12-01 02:00:00\" DO STARTJOB STATEMENT NAME=x \
         COMMAND=$$SCHEDULE t EVERY '1500ms' DO BATCH_LIST$$",
        "SCHEDULE s every '90s' DO MIGRATE c WITH ASYNC=true",
        "SCHEDULE s EVERY '1.02:03:04' DO EXPLAIN BATCH c FABRIC_COMMAND='echo ?'",
        "SCHEDULE s CRON $$0  0 12 ? * MON-FRI$$ DO HELP CANCEL BATCH",
        "SCHEDULE cron CRON '* * * * *' DO BATCH_LIST -- CRON named cron",
        "SHOW SCHEDULES",
        "drop schedule nightly",
    ]);
    assert_canonical(&[
        (
            "schedule heartbeat every '15m' do batch Device ('probe-1') fabric_command='echo ?'",
            "SCHEDULE heartbeat EVERY '00:15:00' DO BATCH Device.('probe-1') FABRIC_COMMAND='echo ?'",
        ),
        (
            "SCHEDULE s every '90s' DO MIGRATE c WITH ASYNC=true",
            "SCHEDULE s EVERY '00:01:30' DO MIGRATE c WITH ASYNC=true",
        ),
        (
            "SCHEDULE s EVERY '1500ms' DO cancel batch",
            "SCHEDULE s EVERY '1500ms' DO BATCH_CANCEL",
        ),
        (
            "SCHEDULE s CRON $$0  0 12 ? * MON-FRI$$ DO HELP CANCEL BATCH",
            "SCHEDULE s CRON '0 0 12 ? * MON-FRI' DO HELP CANCEL BATCH",
        ),
    ]);
}

#[test]
fn window_statements_round_trip() {
    assert_all_round_trip(&[
        "WINDOW_STATUS 'orders_delta'",
        "window_status \"orders_delta\" format='infa'",
        "WINDOW_STATUS orders FORMAT=json",
        "WINDOW_SET 'orders_delta' FROM_DATE='2026-01-01 00:00:00'",
        "window_set orders from_date=yesterday",
    ]);
    assert_canonical(&[
        (
            "window_status \"orders_delta\" format='infa'",
            "WINDOW_STATUS 'orders_delta' FORMAT='INFA'",
        ),
        (
            "window_set orders from_date=yesterday",
            "WINDOW_SET 'orders' FROM_DATE='yesterday'",
        ),
    ]);
}

#[test]
fn session_statements_round_trip() {
    assert_all_round_trip(&[
        "HELP",
        "HELP BATCH;",
        "help create lu",
        "HELP cancel batch",
        "help quit",
        "SET FORMAT json",
        "set format 'CSV'",
        "set progress off",
        "SET PROGRESS true",
        "show settings",
        "EXIT",
        "quit;",
    ]);
    assert_canonical(&[
        ("help create lu", "HELP CREATE LU"),
        ("set format 'CSV'", "SET FORMAT csv"),
        ("SET PROGRESS true", "SET PROGRESS on"),
        ("quit;", "EXIT"),
    ]);
}

// ---------------------------------------------------------------------------
// generated statements
//
// The strategies build ASTs the parser can produce: option names canonical,
// each value of its option's `OptType` (keywords.rs), commands holding `?`,
// required options present, no option given twice. Names are identifiers,
// sometimes words the language uses as keywords (FROM, WITH, CRON...), which
// the parser must read as names where a name stands. One exclusion: the
// interface of a BATCH source is never FABRIC (any case), since
// `FROM FABRIC` is always the keyword form (grammar, "batch target and
// entity source").

/// How deep generated statements nest (STARTJOB STATEMENT COMMAND, SCHEDULE
/// DO); the parser allows 8.
const NEST: u32 = 3;

const KEYWORD_NAMES: &[&str] = &[
    "FROM",
    "WITH",
    "USING",
    "TABLE",
    "KEY",
    "ROOT",
    "TYPE",
    "OR",
    "REPLACE",
    "DO",
    "CRON",
    "EVERY",
    "AT",
    "BATCH",
    "MIGRATE",
    "FABRIC_COMMAND",
    "INSTANCE",
    "GROUP",
    "fabric",
    "sql",
    "echo",
    "exec",
    "NAME",
    "STATUS",
];

fn ident() -> BoxedStrategy<String> {
    prop_oneof![
        5 => "[A-Za-z_][A-Za-z0-9_]{0,10}",
        1 => prop::sample::select(KEYWORD_NAMES).prop_map(String::from),
    ]
    .boxed()
}

fn name() -> BoxedStrategy<Name> {
    ident().prop_map(|t| Name::new(t, Span::default())).boxed()
}

/// A name after `FROM` in a BATCH source: anything but FABRIC.
fn source_interface() -> BoxedStrategy<Name> {
    name()
        .prop_filter("FABRIC, STDIN and FILE after FROM are keywords", |n| {
            !["FABRIC", "STDIN", "FILE"]
                .iter()
                .any(|k| n.text.eq_ignore_ascii_case(k))
        })
        .boxed()
}

/// Text with the characters that quoting must survive: both quotes, `$$`,
/// comment openers, new lines, `?`, `;`, unicode.
fn string() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        3 => "[a-zA-Z0-9 ,;().@=:%_/-]{1,6}",
        1 => Just("'".to_string()),
        1 => Just("''".to_string()),
        1 => Just("\"".to_string()),
        1 => Just("$$".to_string()),
        1 => Just("$".to_string()),
        1 => Just("--".to_string()),
        1 => Just("/*".to_string()),
        1 => Just("*/".to_string()),
        1 => Just("\n".to_string()),
        1 => Just("\r\n\t".to_string()),
        1 => Just("?".to_string()),
        1 => Just("é日本🦀".to_string()),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6)
        .prop_map(|v| v.concat())
        .boxed()
}

/// A string holding at least one `?`.
fn string_with_placeholder() -> BoxedStrategy<String> {
    (string(), string())
        .prop_map(|(a, b)| format!("{a}?{b}"))
        .boxed()
}

fn text() -> BoxedStrategy<Text> {
    string()
        .prop_map(|value| Text {
            value,
            span: Span::default(),
        })
        .boxed()
}

fn opt_text() -> BoxedStrategy<Option<Text>> {
    prop::option::of(text()).boxed()
}

fn date() -> BoxedStrategy<NaiveDate> {
    (1970i32..2100, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("valid date"))
        .boxed()
}

fn datetime() -> BoxedStrategy<chrono::NaiveDateTime> {
    (date(), 0u32..24, 0u32..60, 0u32..60)
        .prop_map(|(d, h, m, s)| d.and_hms_opt(h, m, s).expect("valid time"))
        .boxed()
}

/// A `Time` option's text (kept as written by the parser).
fn time_text() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(&["today", "yesterday", "now", "TODAY", "Now"][..])
            .prop_map(String::from),
        date().prop_map(|d| d.format("%Y-%m-%d").to_string()),
        datetime().prop_map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        (
            datetime(),
            prop::option::of(1u32..1_000_000),
            prop_oneof![
                Just("Z".to_string()),
                ("[+-]", 0u32..24, 0u32..60).prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
            ],
        )
            .prop_map(|(t, frac, zone)| {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                format!("{}{frac}{zone}", t.format("%Y-%m-%dT%H:%M:%S"))
            }),
    ]
    .boxed()
}

fn duration() -> BoxedStrategy<Duration> {
    prop_oneof![
        0u64..100_000,
        (0u64..100_000).prop_map(|s| s * 1000),
        (0u64..1000).prop_map(|m| m * 60_000),
        (0u64..1000).prop_map(|d| d * 86_400_000),
        any::<u64>(),
    ]
    .prop_map(Duration)
    .boxed()
}

fn schedule_spec() -> BoxedStrategy<ScheduleSpec> {
    let cron_field = "[0-9A-Za-z*/,?#-]{1,5}";
    // Times also far from now (chrono prints years past 9999 with a sign)
    // and on a leap second (printed as :60).
    let any_time = prop_oneof![
        3 => datetime(),
        1 => (
            NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce(),
            0u32..86_400,
        )
            .prop_map(|(d, s)| {
                let date = NaiveDate::from_num_days_from_ce_opt(d).expect("a date in range");
                let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(s, 0)
                    .expect("a time of day");
                date.and_time(time)
            }),
        1 => date().prop_map(|d| d.and_hms_milli_opt(23, 59, 59, 1000).expect("a leap second")),
    ];
    prop_oneof![
        any_time.prop_map(ScheduleSpec::At),
        duration()
            .prop_filter("an interval is greater than zero", |d| d.0 > 0)
            .prop_map(ScheduleSpec::Every),
        prop::collection::vec(cron_field, 5..=7).prop_map(|f| ScheduleSpec::Cron(f.join(" "))),
    ]
    .boxed()
}

/// JSON values. Floats are limited to those serde_json reads back exactly
/// from its own output: built without its `float_roundtrip` feature, its
/// reader may land one ULP off the printed (shortest) form, so such a float
/// is not one the parser can produce from any text. (Text round trips are
/// not affected: the float read is stable from then on.)
fn json() -> BoxedStrategy<serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        (-1.0e6f64..1.0e6)
            .prop_filter("survives serde_json's own round trip", |f| {
                serde_json::from_str::<f64>(&J::from(*f).to_string()).ok() == Some(*f)
            })
            .prop_map(J::from),
        string().prop_map(J::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Array),
            prop::collection::btree_map(string(), inner, 0..4)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn json_array() -> BoxedStrategy<serde_json::Value> {
    prop::collection::vec(json(), 0..4)
        .prop_map(serde_json::Value::Array)
        .boxed()
}

fn json_object() -> BoxedStrategy<serde_json::Value> {
    prop::collection::btree_map(string(), json(), 0..4)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
        .boxed()
}

/// A value of the option's type, as the parser builds it.
fn value(spec: &'static OptSpec, depth: u32) -> BoxedStrategy<Value> {
    match spec.ty {
        OptType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        OptType::Int => prop_oneof![-5i64..1000, any::<i64>()]
            .prop_map(Value::Int)
            .boxed(),
        OptType::Number => prop_oneof![
            (0u32..1000, 0u32..100).prop_map(|(a, b)| f64::from(a) + f64::from(b) / 100.0),
            prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        ]
        .prop_map(Value::Number)
        .boxed(),
        OptType::Duration => duration().prop_map(Value::Duration).boxed(),
        OptType::IntOrPercent => prop_oneof![
            (0i64..=i64::MAX).prop_map(Value::Int),
            (0u32..=100).prop_map(|p| Value::Percent(f64::from(p))),
            (0.0f64..=100.0).prop_map(Value::Percent),
        ]
        .boxed(),
        OptType::Str => string().prop_map(Value::Str).boxed(),
        OptType::Char => any::<char>()
            .prop_map(|c| Value::Str(c.to_string()))
            .boxed(),
        OptType::JsonArray => json_array().prop_map(Value::Json).boxed(),
        OptType::JsonObject => json_object().prop_map(Value::Json).boxed(),
        OptType::Enum { values, list } => {
            if list {
                prop::collection::vec(prop::sample::select(values), 1..4)
                    .prop_map(|v| Value::Str(v.join(",")))
                    .boxed()
            } else {
                prop::sample::select(values)
                    .prop_map(|v| Value::Str(v.to_string()))
                    .boxed()
            }
        }
        OptType::Time => time_text().prop_map(Value::Str).boxed(),
        OptType::Schedule => schedule_spec().prop_map(Value::Schedule).boxed(),
        OptType::Statement => {
            assert!(depth > 0, "a statement option needs nesting room");
            statement(depth - 1, true)
                .prop_map(|kind| {
                    Value::Statement(Box::new(Stmt {
                        kind,
                        span: Span::default(),
                    }))
                })
                .boxed()
        }
    }
}

/// A random subset of `specs`, in random order, always holding `required`.
fn options(
    specs: &'static [OptSpec],
    required: &'static [&'static str],
    depth: u32,
) -> BoxedStrategy<Options> {
    let all: Vec<usize> = (0..specs.len()).collect();
    prop::sample::subsequence(all, 0..=specs.len())
        .prop_map(move |mut picked| {
            for (k, s) in specs.iter().enumerate() {
                if required.contains(&s.name) && !picked.contains(&k) {
                    picked.push(k);
                }
            }
            picked
        })
        .prop_shuffle()
        .prop_flat_map(move |picked| {
            picked
                .into_iter()
                .map(|k| {
                    let spec = &specs[k];
                    value(spec, depth).prop_map(move |value| Opt {
                        name: spec.name,
                        value,
                        span: Span::default(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .prop_map(Options)
        .boxed()
}

fn arg() -> BoxedStrategy<Arg> {
    prop_oneof![
        2 => string().prop_map(Arg::Literal),
        1 => Just(Arg::EntityId),
        1 => prop::sample::select(NAMED_PARAMS).prop_map(|p| Arg::Param(p.to_string())),
    ]
    .boxed()
}

fn command() -> BoxedStrategy<CommandKind> {
    prop_oneof![
        name().prop_map(|lu| CommandKind::SyncInstance { lu }),
        name().prop_map(|lu| CommandKind::DeleteInstance { lu }),
        (
            string(),
            prop::collection::vec(arg(), 0..3),
            prop::collection::vec(arg(), 0..3)
        )
            .prop_map(|(program, before, after)| {
                let mut args = before;
                args.push(Arg::EntityId);
                args.extend(after);
                CommandKind::Exec { program, args }
            }),
        // The parser refuses a `?` in shell arithmetic (it would be
        // evaluated): such scripts are not statements.
        string_with_placeholder()
            .prop_filter("? in shell arithmetic", |script| {
                !batchsh::command::shell::placeholder_in_arithmetic(script)
            })
            .prop_map(|script| CommandKind::Shell { script }),
        (name(), string_with_placeholder()).prop_map(|(interface, statement)| CommandKind::Sql {
            interface,
            statement
        }),
        Just(CommandKind::Echo),
        prop_oneof![0u64..10_000, any::<u64>()].prop_map(|ms| CommandKind::Sleep { ms }),
    ]
    .boxed()
}

fn ids() -> BoxedStrategy<Vec<Text>> {
    prop::collection::vec(text(), 1..5).boxed()
}

fn target() -> BoxedStrategy<Target> {
    let selection = prop_oneof![
        Just(Selection::All),
        name().prop_map(Selection::Group),
        ids().prop_map(Selection::Ids),
    ];
    (name(), prop::option::of(name()), selection)
        .prop_map(|(lu, dc, selection)| Target { lu, dc, selection })
        .boxed()
}

fn source() -> BoxedStrategy<Option<Source>> {
    prop_oneof![
        Just(None),
        Just(Some(Source::Fabric)),
        Just(Some(Source::Stdin)),
        text().prop_map(|path| Some(Source::File(path))),
        (source_interface(), text())
            .prop_map(|(interface, sql)| Some(Source::Query { interface, sql })),
    ]
    .boxed()
}

fn batch_stmt() -> BoxedStrategy<BatchStmt> {
    (
        any::<bool>(),
        target(),
        source(),
        command(),
        options(keywords::BATCH_OPTIONS, &[], 0),
    )
        .prop_map(|(migrate, target, source, kind, options)| {
            // MIGRATE's command is implied: sync_instance of the target's LU.
            let kind = if migrate {
                CommandKind::SyncInstance {
                    lu: target.lu.clone(),
                }
            } else {
                kind
            };
            BatchStmt {
                migrate,
                target,
                source,
                command: EntityCommand {
                    kind,
                    span: Span::default(),
                },
                options,
            }
        })
        .boxed()
}

fn catalog_statement() -> BoxedStrategy<Statement> {
    let kind = prop::sample::select(&InterfaceKind::ALL[..]);
    let create_interface = (any::<bool>(), name(), kind, text()).prop_flat_map(
        |(or_replace, name, kind, location)| {
            let opts = if kind == InterfaceKind::Csv {
                options(keywords::CSV_OPTIONS, &[], 0)
            } else {
                Just(Options::default()).boxed()
            };
            opts.prop_map(move |options| Statement::CreateInterface {
                or_replace,
                name: name.clone(),
                kind,
                location: location.clone(),
                options,
            })
        },
    );
    let table = (name(), prop::collection::vec(name(), 0..3), text())
        .prop_map(|(name, key, sql)| LuTable { name, key, sql });
    let create_lu = (
        any::<bool>(),
        name(),
        name(),
        text(),
        prop::collection::vec(table, 0..3),
    )
        .prop_map(
            |(or_replace, name, interface, root, tables)| Statement::CreateLu {
                or_replace,
                name,
                interface,
                root,
                tables,
            },
        );
    let create_group = (
        any::<bool>(),
        name(),
        name(),
        prop::option::of(name()),
        text(),
    )
        .prop_map(
            |(or_replace, lu, group, interface, sql)| Statement::CreateInstanceGroup {
                or_replace,
                lu,
                group,
                interface,
                sql,
            },
        );
    prop_oneof![
        create_interface,
        name().prop_map(|name| Statement::DropInterface { name }),
        Just(Statement::ShowInterfaces),
        create_lu,
        name().prop_map(|name| Statement::DropLu { name }),
        Just(Statement::ShowLus),
        name().prop_map(|name| Statement::DescribeLu { name }),
        name().prop_map(|name| Statement::DescribeInterface { name }),
        (name(), text()).prop_map(|(lu, id)| Statement::Get { lu, id }),
        create_group,
        (name(), name()).prop_map(|(lu, group)| Statement::DropInstanceGroup { lu, group }),
        prop::option::of(name()).prop_map(|lu| Statement::ShowInstanceGroups { lu }),
    ]
    .boxed()
}

fn control_statement() -> BoxedStrategy<Statement> {
    use Statement as S;
    let bid_only = (0usize..7, opt_text()).prop_map(|(k, bid)| match k {
        0 => S::BatchPause { bid },
        1 => S::BatchResume { bid },
        2 => S::BatchCancel { bid },
        3 => S::BatchWaitoff { bid },
        4 => S::BatchInfo { bid },
        5 => S::BatchSummary { bid },
        _ => S::BatchHistory { bid },
    });
    let wait =
        (opt_text(), options(keywords::WAIT_OPTIONS, &[], 0)).prop_map(|(bid, mut options)| {
            // A bid and NAME exclude each other.
            if bid.is_some() {
                options.0.retain(|o| o.name != "NAME");
            }
            S::BatchWait { bid, options }
        });
    let append_source = prop_oneof![
        ids().prop_map(AppendSource::Ids),
        (name(), text()).prop_map(|(interface, sql)| AppendSource::Query { interface, sql }),
    ];
    prop_oneof![
        bid_only,
        (opt_text(), options(keywords::RETRY_OPTIONS, &[], 0))
            .prop_map(|(bid, options)| S::BatchRetry { bid, options }),
        (
            opt_text(),
            options(keywords::EDIT_OPTIONS, &["MAX_WORKERS_PER_NODE"], 0)
        )
            .prop_map(|(bid, options)| S::BatchEdit { bid, options }),
        (text(), append_source).prop_map(|(bid, source)| S::BatchAppend { bid, source }),
        wait,
        options(keywords::PURGE_OPTIONS, &[], 0).prop_map(|options| S::BatchPurge { options }),
        options(keywords::LIST_OPTIONS, &[], 0).prop_map(|options| S::BatchList { options }),
        (opt_text(), options(keywords::DETAILS_OPTIONS, &[], 0))
            .prop_map(|(bid, options)| S::BatchDetails { bid, options }),
        (opt_text(), options(keywords::IN_PROCESS_OPTIONS, &[], 0))
            .prop_map(|(bid, options)| S::BatchInProcess { bid, options }),
        (opt_text(), options(keywords::OUTPUT_OPTIONS, &[], 0))
            .prop_map(|(bid, options)| S::BatchOutput { bid, options }),
        Just(S::ShowNodes),
    ]
    .boxed()
}

fn job_statement(depth: u32) -> BoxedStrategy<Statement> {
    let verbs: &[JobVerb] = &[
        JobVerb::Start,
        JobVerb::Stop,
        JobVerb::Restart,
        JobVerb::Resume,
        JobVerb::Update,
    ];
    let job = (
        prop::sample::select(verbs),
        prop::sample::select(&JobType::ALL[..]),
    )
        .prop_filter_map(
            "STARTJOB takes STATEMENT or PROCESS",
            move |(verb, job_type)| {
                use keywords::*;
                let (specs, required): (&'static [OptSpec], &'static [&'static str]) =
                    match (verb, job_type) {
                        (JobVerb::Start, JobType::BatchJob) => return None,
                        // A STATEMENT job's COMMAND is a statement: it needs room to nest.
                        (JobVerb::Start, JobType::Statement) if depth == 0 => return None,
                        (JobVerb::Start, JobType::Statement) => {
                            (STARTJOB_STATEMENT_OPTIONS, &["NAME", "COMMAND"])
                        }
                        (JobVerb::Start, JobType::Process) => {
                            (STARTJOB_PROCESS_OPTIONS, &["NAME", "COMMAND"])
                        }
                        (JobVerb::Stop | JobVerb::Restart, _) => (JOB_ID_OPTIONS, &["NAME"]),
                        (JobVerb::Resume, _) => (JOB_ID_OPTIONS, &["NAME", "UID"]),
                        (JobVerb::Update, _) => (UPDATEJOB_OPTIONS, &["NAME"]),
                    };
                Some((verb, job_type, specs, required))
            },
        )
        .prop_flat_map(move |(verb, job_type, specs, required)| {
            options(specs, required, depth).prop_map(move |options| Statement::Job {
                verb,
                job_type,
                options,
            })
        });
    let jobstatus = prop_oneof![
        Just(Statement::JobStatus {
            job_type: None,
            name: None,
            options: Options::default(),
        }),
        (
            prop::sample::select(&JobType::ALL[..]),
            opt_text(),
            options(keywords::JOBSTATUS_OPTIONS, &[], 0)
        )
            .prop_map(|(t, name, options)| Statement::JobStatus {
                job_type: Some(t),
                name,
                options,
            }),
    ];
    prop_oneof![
        3 => job,
        1 => jobstatus,
        1 => Just(Statement::ShowSchedules),
        1 => name().prop_map(|name| Statement::DropSchedule { name }),
    ]
    .boxed()
}

fn schedule_statement(depth: u32) -> BoxedStrategy<Statement> {
    // The body may be any statement but another SCHEDULE.
    (name(), schedule_spec(), statement(depth - 1, false))
        .prop_map(|(name, when, body)| Statement::Schedule {
            name,
            when,
            body: Box::new(Stmt {
                kind: body,
                span: Span::default(),
            }),
        })
        .boxed()
}

fn window_or_session_statement() -> BoxedStrategy<Statement> {
    let mut topics: Vec<&'static str> = keywords::STATEMENTS.iter().map(|s| s.name).collect();
    topics.push("QUIT");
    let format =
        prop::sample::select(&[OutputFormat::Table, OutputFormat::Json, OutputFormat::Csv][..]);
    prop_oneof![
        (opt_text(), options(keywords::WINDOW_STATUS_OPTIONS, &[], 0))
            .prop_map(|(name, options)| Statement::WindowStatus { name, options }),
        (
            text(),
            options(keywords::WINDOW_SET_OPTIONS, &["FROM_DATE"], 0),
            series_params(),
        )
            .prop_map(|(name, options, params)| Statement::WindowSet {
                name,
                options: hours_not_negative(options),
                params,
            }),
        (text(), options(keywords::WINDOW_OPEN_OPTIONS, &[], 0))
            .prop_map(|(name, options)| Statement::WindowOpen { name, options }),
        text().prop_map(|name| Statement::WindowClose { name }),
        (text(), options(keywords::WINDOW_FAIL_OPTIONS, &[], 0))
            .prop_map(|(name, options)| Statement::WindowFail { name, options }),
        prop::option::of(prop::sample::select(topics)).prop_map(|t| Statement::Help {
            topic: t.map(|t| Name::new(t, Span::default())),
        }),
        format.prop_map(|f| Statement::Set {
            setting: Setting::Format(f)
        }),
        any::<bool>().prop_map(|on| Statement::Set {
            setting: Setting::Progress(on)
        }),
        Just(Statement::ShowSettings),
        Just(Statement::Exit),
    ]
    .boxed()
}

/// `REPROCESS_HOURS` is 0 or more.
fn hours_not_negative(mut options: Options) -> Options {
    for o in &mut options.0 {
        if let Value::Int(h) = &mut o.value {
            *h = h.checked_abs().unwrap_or(0);
        }
    }
    options
}

/// A series' parameters: names that are no option of WINDOW_SET nor a
/// window variable, each once.
fn series_params() -> BoxedStrategy<Vec<Param>> {
    prop::collection::vec((ident(), string()), 0..3)
        .prop_map(|pairs| {
            let mut out: Vec<Param> = Vec::new();
            for (name, value) in pairs {
                let taken = keywords::WINDOW_SET_OPTIONS
                    .iter()
                    .map(|o| o.name)
                    .chain(["series", "batch_id", "batch_start", "batch_end", "bid"])
                    .chain(out.iter().map(|p| p.name.value.as_str()))
                    .any(|n| n.eq_ignore_ascii_case(&name));
                if !taken {
                    out.push(Param {
                        name: Text {
                            value: name,
                            span: Span::default(),
                        },
                        value: Text {
                            value,
                            span: Span::default(),
                        },
                    });
                }
            }
            out
        })
        .boxed()
}

/// Any statement, nesting at most `depth` deep; a SCHEDULE only when
/// `allow_schedule` (not as a SCHEDULE's body).
fn statement(depth: u32, allow_schedule: bool) -> BoxedStrategy<Statement> {
    let batch = prop_oneof![
        3 => batch_stmt().prop_map(|b| Statement::Batch(Box::new(b))),
        1 => batch_stmt().prop_map(|b| Statement::Explain(Box::new(b))),
    ];
    let mut choices: Vec<(u32, BoxedStrategy<Statement>)> = vec![
        (3, catalog_statement()),
        (5, batch.boxed()),
        (3, control_statement()),
        (3, job_statement(depth)),
        (2, window_or_session_statement()),
    ];
    if depth > 0 {
        // Nesting finds the quoting bugs: give it room beside the job
        // statements' own share.
        let startjob = options(
            keywords::STARTJOB_STATEMENT_OPTIONS,
            &["NAME", "COMMAND"],
            depth,
        )
        .prop_map(|options| Statement::Job {
            verb: JobVerb::Start,
            job_type: JobType::Statement,
            options,
        });
        choices.push((2, startjob.boxed()));
        if allow_schedule {
            choices.push((2, schedule_statement(depth)));
        }
    }
    prop::strategy::Union::new_weighted(choices).boxed()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are reported by the test; no regression files are kept
        // beside the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn reparse(stmts: &[Stmt]) -> Result<(), TestCaseError> {
    common::round_trip(stmts).map_err(TestCaseError::fail)
}

fn stmt(kind: Statement) -> Stmt {
    Stmt {
        kind,
        span: Span::default(),
    }
}

proptest! {
    // 2000 generated statements per run.
    #![proptest_config(config(2000))]

    #[test]
    fn generated_statements_round_trip(kind in statement(NEST, true)) {
        reparse(&[stmt(kind)])?;
    }
}

proptest! {
    // 300 generated scripts of 1 to 5 statements per run.
    #![proptest_config(config(300))]

    #[test]
    fn generated_scripts_round_trip(kinds in prop::collection::vec(statement(1, true), 1..6)) {
        let stmts: Vec<Stmt> = kinds.into_iter().map(stmt).collect();
        reparse(&stmts)?;
    }
}
