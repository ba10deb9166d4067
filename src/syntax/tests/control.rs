//! BATCH_* control and monitoring statements, CANCEL BATCH, windows.

use super::*;
use crate::ast::AppendSource;

#[test]
fn bids_are_optional_and_quoted_or_bare() {
    assert_eq!(one("BATCH_PAUSE"), Statement::BatchPause { bid: None });
    assert_eq!(
        one("BATCH_RESUME 'a1b2c3'"),
        Statement::BatchResume {
            bid: Some(text("a1b2c3"))
        }
    );
    assert_eq!(
        one("batch_info a1b2c3-77"),
        Statement::BatchInfo {
            bid: Some(text("a1b2c3-77"))
        }
    );
    assert_eq!(
        one("BATCH_SUMMARY \"x\""),
        Statement::BatchSummary {
            bid: Some(text("x"))
        }
    );
    assert_eq!(one("BATCH_HISTORY"), Statement::BatchHistory { bid: None });
    assert_eq!(
        one("BATCH_WAITOFF 'b'"),
        Statement::BatchWaitoff {
            bid: Some(text("b"))
        }
    );
}

#[test]
fn cancel_and_its_legacy_form_are_one_statement() {
    assert_eq!(one("CANCEL BATCH 'x'"), one("BATCH_CANCEL 'x'"));
    assert_eq!(one("cancel batch"), Statement::BatchCancel { bid: None });
    assert_eq!(expected(&err("CANCEL JOB")), vec!["BATCH"]);
}

#[test]
fn options_follow_the_bid() {
    assert_eq!(
        one("BATCH_RETRY 'b' ALLOW_CANCELLED=true"),
        Statement::BatchRetry {
            bid: Some(text("b")),
            options: opts(&[("ALLOW_CANCELLED", Value::Bool(true))])
        }
    );
    assert_eq!(
        one("BATCH_RETRY ALLOW_CANCELLED=true"),
        Statement::BatchRetry {
            bid: None,
            options: opts(&[("ALLOW_CANCELLED", Value::Bool(true))])
        }
    );
    assert_eq!(
        one("BATCH_DETAILS STATUS='failed,completed' LIMIT=-1 SORT_BY_PROCESS_TIME=true"),
        Statement::BatchDetails {
            bid: None,
            options: opts(&[
                ("STATUS", Value::Str("FAILED,COMPLETED".into())),
                ("LIMIT", Value::Int(-1)),
                ("SORT_BY_PROCESS_TIME", Value::Bool(true)),
            ]),
        }
    );
    assert_eq!(
        one(
            "BATCH_LIST STATUS=generate_iid FROM_DATE='2026-01-01' TO_DATE='2026-01-31 23:59:59' FILTER='sync.*'"
        ),
        Statement::BatchList {
            options: opts(&[
                ("STATUS", Value::Str("GENERATE_IID".into())),
                ("FROM_DATE", Value::Str("2026-01-01".into())),
                ("TO_DATE", Value::Str("2026-01-31 23:59:59".into())),
                ("FILTER", Value::Str("sync.*".into())),
            ]),
        }
    );
    assert_eq!(
        one("BATCH_PURGE OLDER_THAN='30d' STATUS='DONE'"),
        Statement::BatchPurge {
            options: opts(&[
                (
                    "OLDER_THAN",
                    Value::Duration(crate::ast::Duration(30 * 86_400_000))
                ),
                ("STATUS", Value::Str("DONE".into())),
            ]),
        }
    );
    assert_eq!(
        one("BATCH_IN_PROCESS FILTER='Customer'"),
        Statement::BatchInProcess {
            bid: None,
            options: opts(&[("FILTER", Value::Str("Customer".into()))])
        }
    );
}

/// SPEC §6: `BATCH_IN_PROCESS ['bid'] [FILTER='regex']`, the bid quoted or
/// bare, as every statement's optional bid.
#[test]
fn batch_in_process_takes_a_bid_before_its_options() {
    assert_eq!(
        one("BATCH_IN_PROCESS 'c0ffee42' FILTER='^sync'"),
        Statement::BatchInProcess {
            bid: Some(text("c0ffee42")),
            options: opts(&[("FILTER", Value::Str("^sync".into()))])
        }
    );
    assert_eq!(
        one("batch_in_process c0ffee42"),
        Statement::BatchInProcess {
            bid: Some(text("c0ffee42")),
            options: opts(&[])
        }
    );
    assert_eq!(
        expected(&err("BATCH_IN_PROCESS 'b' 'c'")),
        vec!["an option", "';'", "end of input"]
    );
}

#[test]
fn option_errors() {
    let src = "BATCH_LIST STATUS='DONE,FINISHED'";
    assert!(
        matches!(err(src).kind, ErrorKind::InvalidValue { ref option, .. } if option == "STATUS")
    );
    assert!(matches!(
        err("BATCH_LIST FROM_DATE='yesterdayish'").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        err("BATCH_PURGE STATUS='IN_PROGRESS'").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        err("BATCH_RETRY FORCE=true").kind,
        ErrorKind::UnknownOption { .. }
    ));
    // A batch id, then a word that is not an option.
    assert_eq!(
        expected(&err("BATCH_DETAILS 'b' junk")),
        vec!["an option", "';'", "end of input"]
    );
    assert_eq!(
        expected(&err("BATCH_INFO 'a' 'b'")),
        vec!["';'", "end of input"]
    );
}

#[test]
fn edit_needs_the_worker_count() {
    assert_eq!(
        one("BATCH_EDIT 'b' MAX_WORKERS_PER_NODE=2"),
        Statement::BatchEdit {
            bid: Some(text("b")),
            options: opts(&[("MAX_WORKERS_PER_NODE", Value::Int(2))])
        }
    );
    assert_eq!(
        err("BATCH_EDIT 'b'").kind,
        ErrorKind::MissingOption {
            name: "MAX_WORKERS_PER_NODE",
            statement: "BATCH_EDIT"
        }
    );
}

#[test]
fn wait_takes_a_bid_or_a_name() {
    assert_eq!(
        one("BATCH_WAIT NAME='etl.*' SINCE='today' TIMEOUT='2h'"),
        Statement::BatchWait {
            bid: None,
            options: opts(&[
                ("NAME", Value::Str("etl.*".into())),
                ("SINCE", Value::Str("today".into())),
                ("TIMEOUT", Value::Duration(crate::ast::Duration(7_200_000))),
            ]),
        }
    );
    let src = "BATCH_WAIT 'b' NAME='x'";
    let e = err(src);
    assert_eq!(at(src, &e), (15, "NAME='x'"));
    assert!(matches!(e.kind, ErrorKind::Invalid(_)));
}

#[test]
fn append_takes_ids_or_a_query() {
    assert_eq!(
        one("BATCH_APPEND 'b' ('1', 2)"),
        Statement::BatchAppend {
            bid: text("b"),
            source: AppendSource::Ids(vec![text("1"), text("2")])
        }
    );
    assert_eq!(
        one("BATCH_APPEND b FROM crm USING ('select id from t')"),
        Statement::BatchAppend {
            bid: text("b"),
            source: AppendSource::Query {
                interface: name("crm"),
                sql: text("select id from t")
            },
        }
    );
    assert_eq!(expected(&err("BATCH_APPEND")), vec!["a batch id"]);
    assert_eq!(expected(&err("BATCH_APPEND 'b'")), vec!["'('", "FROM"]);
}

#[test]
fn unknown_batch_statement() {
    let e = err("BATCH_STATUS");
    assert_eq!(e.span.range(), (0, 12));
    assert!(matches!(e.kind, ErrorKind::UnknownStatement { .. }));
}

#[test]
fn windows() {
    assert_eq!(
        one("WINDOW_STATUS 'orders_delta' FORMAT='infa'"),
        Statement::WindowStatus {
            name: Some(text("orders_delta")),
            options: opts(&[("FORMAT", Value::Str("INFA".into()))])
        }
    );
    assert_eq!(
        one("WINDOW_SET orders_delta FROM_DATE='2026-01-01 00:00:00'"),
        Statement::WindowSet {
            name: text("orders_delta"),
            options: opts(&[("FROM_DATE", Value::Str("2026-01-01 00:00:00".into()))]),
            params: vec![],
        }
    );
    assert_eq!(
        err("WINDOW_SET 'x'").kind,
        ErrorKind::MissingOption {
            name: "FROM_DATE",
            statement: "WINDOW_SET"
        }
    );
    assert!(matches!(
        err("WINDOW_STATUS 'x' FORMAT='xml'").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert_eq!(
        one("WINDOW_STATUS"),
        Statement::WindowStatus {
            name: None,
            options: opts(&[])
        }
    );
    assert_eq!(
        one("WINDOW_CLOSE wf1"),
        Statement::WindowClose { name: text("wf1") }
    );
    assert_eq!(
        one("WINDOW_FAIL 'wf1' ERROR='timed out'"),
        Statement::WindowFail {
            name: text("wf1"),
            options: opts(&[("ERROR", Value::Str("timed out".into()))])
        }
    );
    assert_eq!(
        one("WINDOW_OPEN 'wf1' FORMAT=json"),
        Statement::WindowOpen {
            name: text("wf1"),
            options: opts(&[("FORMAT", Value::Str("JSON".into()))])
        }
    );
}

#[test]
fn window_set_takes_any_other_option_as_a_parameter() {
    let Statement::WindowSet {
        options, params, ..
    } = one("WINDOW_SET 'wf1' region='EU', FROM_DATE='2026-01-01' REPROCESS_HOURS=2 db=dwh")
    else {
        panic!("not a WINDOW_SET");
    };
    assert_eq!(options.get("REPROCESS_HOURS"), Some(&Value::Int(2)));
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|p| (p.name.value.as_str(), p.value.value.as_str()))
        .collect();
    assert_eq!(params, [("region", "EU"), ("db", "dwh")]);
}

#[test]
fn window_set_refusals_point_at_the_culprit() {
    // (script, the error's span, what it says)
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "WINDOW_SET 'w' FROM_DATE='soon'",
            (25, 31),
            "option: \"FROM_DATE\"",
        ),
        (
            "WINDOW_SET 'w' FROM_DATE='2026-01-01' REPROCESS_HOURS=-2",
            (54, 56),
            "a whole number of hours, 0 or more",
        ),
        (
            "WINDOW_SET 'w' FROM_DATE='2026-01-01' REPROCESS_HOURS='two'",
            (54, 59),
            "option: \"REPROCESS_HOURS\"",
        ),
        (
            "WINDOW_SET 'w' FROM_DATE='2026-01-01' a='1' A='2'",
            (44, 45),
            "parameter A is given twice",
        ),
        (
            "WINDOW_SET 'w' FROM_DATE='2026-01-01' batch_id='1'",
            (38, 46),
            "batch_id is a window variable",
        ),
    ];
    for (script, span, says) in cases {
        let e = err(script);
        assert_eq!(e.span.range(), *span, "{script}");
        let kind = format!("{:?}", e.kind);
        assert!(kind.contains(says), "{script}: {kind}");
    }
    // Other statements keep refusing an option they do not know.
    assert!(matches!(
        err("WINDOW_OPEN 'w' region='EU'").kind,
        ErrorKind::UnknownOption { .. }
    ));
}
