//! HELP, SET, SHOW SETTINGS, EXIT / QUIT.

use super::*;
use crate::ast::{OutputFormat, Setting};

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
    assert_eq!(expected(&err("SET COLOR on")), vec!["FORMAT", "PROGRESS"]);
    assert_eq!(expected(&err("SET FORMAT")), vec!["table", "json", "csv"]);
}

#[test]
fn exit_and_quit() {
    assert_eq!(one("EXIT"), Statement::Exit);
    assert_eq!(one("quit;"), Statement::Exit);
    assert_eq!(expected(&err("EXIT now")), vec!["';'", "end of input"]);
}
