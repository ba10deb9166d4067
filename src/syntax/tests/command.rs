//! Per-entity commands inside FABRIC_COMMAND.

use super::*;
use crate::ast::{Arg, CommandKind};

fn command(cmd_text: &str) -> CommandKind {
    let src = format!("BATCH C FABRIC_COMMAND={}", crate::ast::quote(cmd_text));
    match one(&src) {
        Statement::Batch(b) => b.command.kind,
        other => panic!("not a batch: {other:?}"),
    }
}

fn command_err(cmd_text: &str) -> (ParseError, usize) {
    let src = format!("BATCH C FABRIC_COMMAND={}", crate::ast::quote(cmd_text));
    (err(&src), "BATCH C FABRIC_COMMAND='".len())
}

#[test]
fn every_command_kind() {
    assert_eq!(
        command("sync_instance Customer.?"),
        CommandKind::SyncInstance {
            lu: name("Customer")
        }
    );
    assert_eq!(
        command("DELETE_INSTANCE Customer . ?"),
        CommandKind::DeleteInstance {
            lu: name("Customer")
        }
    );
    assert_eq!(
        command("exec '/bin/prog' '--id' ? :from_date bare-arg"),
        CommandKind::Exec {
            program: "/bin/prog".into(),
            args: vec![
                Arg::Literal("--id".into()),
                Arg::EntityId,
                Arg::Param("from_date".into()),
                Arg::Literal("bare-arg".into()),
            ],
        }
    );
    assert_eq!(
        command("shell 'echo \"?\" > /dev/null'"),
        CommandKind::Shell {
            script: "echo \"?\" > /dev/null".into()
        }
    );
    assert_eq!(
        command("sql crm 'update t set x = 1 where id = ?'"),
        CommandKind::Sql {
            interface: name("crm"),
            statement: "update t set x = 1 where id = ?".into()
        }
    );
    assert_eq!(command("echo ?"), CommandKind::Echo);
    assert_eq!(command("sleep 250 ?"), CommandKind::Sleep { ms: 250 });
    assert_eq!(
        command("PIPE 'python3' 'worker.py' '--fast'"),
        CommandKind::Pipe {
            program: "python3".into(),
            args: vec!["worker.py".into(), "--fast".into()],
        }
    );
    assert_eq!(
        command("pipe cat"),
        CommandKind::Pipe {
            program: "cat".into(),
            args: vec![],
        }
    );
}

/// `pipe` takes the id on its stdin: a `?` (or `{}`, or a `:param`) among
/// its arguments is refused where it stands, and a pipe needs no `?`.
#[test]
fn pipe_refuses_a_placeholder() {
    for (text, at) in [
        ("pipe p ?", "pipe p ".len()),
        ("pipe p a {}", "pipe p a ".len()),
        ("pipe p :bid", "pipe p ".len()),
    ] {
        let (e, base) = command_err(text);
        match &e.kind {
            ErrorKind::Invalid(m) => assert!(m.starts_with("pipe takes no ?"), "{m}"),
            other => panic!("{text}: {other:?}"),
        }
        assert_eq!(e.span.start, base + at, "{text}");
    }
    let (e, _) = command_err("pipe");
    assert_eq!(expected(&e), vec!["a program to run"]);
}

#[test]
fn a_command_without_placeholder_is_refused() {
    for (text, cmd) in [
        ("exec 'true'", "exec"),
        ("shell 'true'", "shell"),
        ("sql crm 'delete from t'", "sql"),
        ("echo", "echo"),
        ("sleep 5", "sleep"),
        ("sync_instance C.", "sync_instance"),
    ] {
        let (e, _) = command_err(text);
        match (&e.kind, cmd) {
            (ErrorKind::NoPlaceholder { command }, _) => assert_eq!(*command, cmd, "{text}"),
            // `sync_instance C.` is missing its `?`: an Expected error is as good.
            (ErrorKind::Expected(v), "sync_instance") => assert_eq!(v, &vec!["'?'"]),
            (other, _) => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn errors_point_into_the_outer_text() {
    let (e, base) = command_err("sleep x ?");
    assert_eq!(e.span.start, base + "sleep ".len());
    let (e, base) = command_err("exek 'true' ?");
    assert_eq!(e.span.range(), (base, base + 4));
    assert!(matches!(
        e.kind,
        ErrorKind::UnknownCommand {
            suggestion: Some("exec"),
            ..
        }
    ));
    let (e, _) = command_err("echo ? extra");
    assert_eq!(expected(&e), vec!["end of command"]);
    let (e, _) = command_err("exec 'p' ? :nope");
    assert_eq!(
        e.kind,
        ErrorKind::UnknownParam {
            found: "nope".into()
        }
    );
    let (e, _) = command_err("");
    assert!(matches!(e.kind, ErrorKind::Expected(_)));
}

#[test]
fn the_error_is_wrapped_with_its_context() {
    let e = crate::syntax::parse("BATCH C FABRIC_COMMAND='echo'").unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::Nested {
            context: "FABRIC_COMMAND",
            ..
        }
    ));
}
