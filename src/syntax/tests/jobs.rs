//! Jobs and schedules.

use super::*;
use crate::ast::{Duration, JobType, JobVerb, ScheduleSpec};

#[test]
fn startjob_statement_parses_its_command() {
    match one(
        "STARTJOB STATEMENT NAME='nightly' UID='u1' EXEC_INTERVAL='0 2 * * *' COMMAND=$$ BATCH C FABRIC_COMMAND=\"sync_instance C.?\" $$",
    ) {
        Statement::Job {
            verb,
            job_type,
            options,
        } => {
            assert_eq!((verb, job_type), (JobVerb::Start, JobType::Statement));
            assert_eq!(options.get("NAME"), Some(&Value::Str("nightly".into())));
            assert_eq!(
                options.get("EXEC_INTERVAL"),
                Some(&Value::Schedule(ScheduleSpec::Cron("0 2 * * *".into())))
            );
            match options.get("COMMAND") {
                Some(Value::Statement(s)) => assert_eq!(s.kind.name(), "BATCH"),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn startjob_process_takes_a_program_and_args() {
    assert_eq!(
        one(
            "STARTJOB PROCESS NAME='cleanup' COMMAND='/usr/local/bin/cleanup.sh' ARGS='{\"0\":\"x\"}' EXEC_INTERVAL='00:15:00'"
        ),
        Statement::Job {
            verb: JobVerb::Start,
            job_type: JobType::Process,
            options: opts(&[
                ("NAME", Value::Str("cleanup".into())),
                ("COMMAND", Value::Str("/usr/local/bin/cleanup.sh".into())),
                ("ARGS", Value::Json(serde_json::json!({"0": "x"}))),
                (
                    "EXEC_INTERVAL",
                    Value::Schedule(ScheduleSpec::Every(Duration(900_000)))
                ),
            ]),
        }
    );
}

#[test]
fn other_job_verbs() {
    assert!(matches!(
        one("STOPJOB STATEMENT NAME='n'"),
        Statement::Job {
            verb: JobVerb::Stop,
            ..
        }
    ));
    assert!(matches!(
        one("RESTARTJOB PROCESS NAME='n' UID='u'"),
        Statement::Job {
            verb: JobVerb::Restart,
            ..
        }
    ));
    assert!(matches!(
        one("RESUMEJOB BATCH_JOB NAME='n' UID='u'"),
        Statement::Job {
            verb: JobVerb::Resume,
            job_type: JobType::BatchJob,
            ..
        }
    ));
    assert!(matches!(
        one("UPDATEJOB STATEMENT NAME='n' EXEC_INTERVAL='2026-12-01 02:00:00' RESET_END_TIME=true"),
        Statement::Job {
            verb: JobVerb::Update,
            ..
        }
    ));
}

#[test]
fn job_errors() {
    assert_eq!(
        err("RESUMEJOB STATEMENT NAME='n'").kind,
        ErrorKind::MissingOption {
            name: "UID",
            statement: "RESUMEJOB"
        }
    );
    assert_eq!(
        err("STOPJOB STATEMENT").kind,
        ErrorKind::MissingOption {
            name: "NAME",
            statement: "STOPJOB"
        }
    );
    assert_eq!(
        expected(&err("STARTJOB SCRIPT NAME='x'")),
        vec!["STATEMENT", "PROCESS", "BATCH_JOB"]
    );
    let src = "STARTJOB BATCH_JOB NAME='x' COMMAND='y'";
    let e = err(src);
    assert_eq!(at(src, &e), (9, "BATCH_JOB"));
    // The COMMAND of a STATEMENT job is parsed; its errors point inside it.
    let src = "STARTJOB STATEMENT NAME='x' COMMAND=$$ BATCH_LSIT $$";
    let e = err(src);
    assert_eq!(at(src, &e), (39, "BATCH_LSIT"));
    let src = "STARTJOB STATEMENT NAME='x' COMMAND=$$ EXIT; EXIT $$";
    assert!(matches!(err(src).kind, ErrorKind::Invalid(_)));
    assert!(matches!(
        err("STARTJOB STATEMENT NAME='x' COMMAND='EXIT' EXEC_INTERVAL='daily'").kind,
        ErrorKind::InvalidValue { .. }
    ));
    // ARGS of a process is a JSON object.
    assert!(matches!(
        err("STARTJOB PROCESS NAME='x' COMMAND='y' ARGS='[1]'").kind,
        ErrorKind::InvalidValue { .. }
    ));
}

#[test]
fn jobstatus_forms() {
    assert_eq!(
        one("JOBSTATUS"),
        Statement::JobStatus {
            job_type: None,
            name: None,
            options: Options::default()
        }
    );
    assert_eq!(
        one("JOBSTATUS STATEMENT 'nightly' WITH UID='u1'"),
        Statement::JobStatus {
            job_type: Some(JobType::Statement),
            name: Some(text("nightly")),
            options: opts(&[("UID", Value::Str("u1".into()))]),
        }
    );
    assert_eq!(
        expected(&err("JOBSTATUS STATEMENT 'n' WITH")),
        vec!["an option"]
    );
}

#[test]
fn schedule_forms() {
    match one("SCHEDULE nightly CRON '0 2 * * *' DO BATCH C FABRIC_COMMAND='echo ?'") {
        Statement::Schedule {
            name: n,
            when,
            body,
        } => {
            assert_eq!(n, name("nightly"));
            assert_eq!(when, ScheduleSpec::Cron("0 2 * * *".into()));
            assert_eq!(body.kind.name(), "BATCH");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        one("SCHEDULE e EVERY '15m' DO BATCH_PURGE OLDER_THAN='30d'"),
        Statement::Schedule {
            when: ScheduleSpec::Every(Duration(900_000)),
            ..
        }
    ));
    assert!(matches!(
        one("SCHEDULE o AT '2026-12-01 02:00:00' DO EXIT"),
        Statement::Schedule {
            when: ScheduleSpec::At(_),
            ..
        }
    ));
    assert_eq!(one("SHOW SCHEDULES"), Statement::ShowSchedules);
    assert_eq!(
        one("DROP SCHEDULE nightly"),
        Statement::DropSchedule {
            name: name("nightly")
        }
    );
}

#[test]
fn schedule_errors() {
    assert_eq!(
        expected(&err("SCHEDULE n DAILY DO EXIT")),
        vec!["CRON", "EVERY", "AT"]
    );
    assert!(matches!(
        err("SCHEDULE n CRON '* *' DO EXIT").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        err("SCHEDULE n EVERY '00:00:00' DO EXIT").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert_eq!(expected(&err("SCHEDULE n EVERY '1m' EXIT")), vec!["DO"]);
    assert!(matches!(
        err("SCHEDULE n EVERY '1m' DO SCHEDULE m EVERY '1m' DO EXIT").kind,
        ErrorKind::Invalid(_)
    ));
    // The scheduled statement's own errors stand where they are.
    let src = "SCHEDULE n EVERY '1m' DO BATCH_LIST LIMIT=x";
    assert_eq!(at(src, &err(src)), (42, "x"));
}

/// An interval of zero is refused where it is written, and the error says
/// that zero is what is wrong (SPEC §8; issue 17, bad input).
#[test]
fn a_zero_interval_says_it_must_be_greater_than_zero() {
    for (src, option) in [
        ("SCHEDULE n EVERY '00:00:00' DO EXIT", "EVERY"),
        ("SCHEDULE n EVERY '0s' DO EXIT", "EVERY"),
        (
            "STARTJOB PROCESS NAME='x' COMMAND='y' EXEC_INTERVAL='0.00:00:00'",
            "EXEC_INTERVAL",
        ),
        (
            "UPDATEJOB STATEMENT NAME='x' EXEC_INTERVAL='0m'",
            "EXEC_INTERVAL",
        ),
    ] {
        match err(src).kind {
            ErrorKind::InvalidValue {
                option: o,
                expected,
                ..
            } => {
                assert_eq!(o, option, "{src}");
                assert_eq!(
                    expected, "an interval greater than zero, such as '00:15:00' or '15m'",
                    "{src}"
                );
            }
            other => panic!("{src}: {other:?}"),
        }
    }
    // Other bad intervals keep the general message.
    match err("SCHEDULE n EVERY 'soon' DO EXIT").kind {
        ErrorKind::InvalidValue { expected, .. } => {
            assert!(expected.starts_with("an interval such as"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nesting_is_bounded() {
    // EXPLAIN cannot nest, STARTJOB can through COMMAND: past the limit it is
    // refused, not a stack overflow.
    let mut s = String::from("EXIT");
    for _ in 0..12 {
        s = format!(
            "STARTJOB STATEMENT NAME='n' COMMAND={}",
            crate::ast::quote(&s)
        );
    }
    assert!(matches!(err(&s).kind, ErrorKind::Invalid(ref m) if m.contains("nest")));
}
