//! HELP, SET, SHOW SETTINGS, EXIT / QUIT.

use super::*;
use crate::ast::{Expanded, OutputFormat, Setting};

#[test]
fn help_topics_are_statement_names() {
    assert_eq!(one("HELP"), Statement::Help { topic: None });
    assert_eq!(
        one("help batch"),
        Statement::Help {
            topic: Some(name("BATCH"))
        }
    );
    assert_eq!(
        one("HELP create   lu"),
        Statement::Help {
            topic: Some(name("CREATE LU"))
        }
    );
    let src = "HELP CREATE TABLE";
    let e = err(src);
    assert_eq!(at(src, &e), (5, "CREATE TABLE"));
    assert!(matches!(e.kind, ErrorKind::UnknownHelpTopic { .. }));
}

#[test]
fn set_and_show_settings() {
    assert_eq!(
        one("SET FORMAT json"),
        Statement::Set {
            setting: Setting::Format(OutputFormat::Json)
        }
    );
    assert_eq!(
        one("set format 'CSV'"),
        Statement::Set {
            setting: Setting::Format(OutputFormat::Csv)
        }
    );
    assert_eq!(
        one("SET PROGRESS off"),
        Statement::Set {
            setting: Setting::Progress(false)
        }
    );
    assert_eq!(one("SHOW SETTINGS"), Statement::ShowSettings);
    assert!(matches!(
        err("SET FORMAT xml").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        err("SET PROGRESS maybe").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert_eq!(
        expected(&err("SET COLOR on")),
        vec!["FORMAT", "PROGRESS", "EXPANDED", "TIMING", "PAGER"]
    );
    assert_eq!(expected(&err("SET FORMAT")), vec!["table", "json", "csv"]);
}

/// SET EXPANDED on|off|auto (psql's `\x`), SET TIMING and SET PAGER
/// on|off; `true` / `false` read as `on` / `off`, any case, quoted or not.
#[test]
fn set_expanded_timing_and_pager() {
    let set = |src| match one(src) {
        Statement::Set { setting } => setting,
        other => panic!("{src}: {other:?}"),
    };
    assert_eq!(set("SET EXPANDED on"), Setting::Expanded(Expanded::On));
    assert_eq!(
        set("set expanded 'AUTO'"),
        Setting::Expanded(Expanded::Auto)
    );
    assert_eq!(set("SET EXPANDED false"), Setting::Expanded(Expanded::Off));
    assert_eq!(set("SET TIMING on"), Setting::Timing(true));
    assert_eq!(set("SET TIMING OFF;"), Setting::Timing(false));
    assert_eq!(set("SET PAGER off"), Setting::Pager(false));
    assert_eq!(set("SET PAGER true"), Setting::Pager(true));
    let src = "SET EXPANDED maybe";
    let e = err(src);
    assert_eq!(at(src, &e), (13, "maybe"));
    assert_eq!(
        e.kind,
        ErrorKind::InvalidValue {
            option: "EXPANDED".into(),
            expected: "on, off or auto".into(),
            found: "maybe".into(),
        }
    );
    assert_eq!(expected(&err("SET EXPANDED")), vec!["on", "off", "auto"]);
    assert_eq!(expected(&err("SET TIMING")), vec!["on", "off"]);
    assert!(matches!(
        err("SET PAGER auto").kind,
        ErrorKind::InvalidValue { .. }
    ));
    assert_eq!(
        expected(&err("SET PAGER on now")),
        vec!["';'", "end of input"]
    );
}

#[test]
fn exit_and_quit() {
    assert_eq!(one("EXIT"), Statement::Exit);
    assert_eq!(one("quit;"), Statement::Exit);
    assert_eq!(expected(&err("EXIT now")), vec!["';'", "end of input"]);
}
