//! Tests of the per-entity commands against real processes and an
//! in-memory SQLite database. None asserts on wall-clock speed; the ones
//! that could hang on a bug run under an `ENTITY_TIMEOUT`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use super::*;
use crate::ast::{Arg, CommandKind, Name, Span};

/// Answers `sql` on one in-memory database called `mem`.
struct Mem(Connection);

impl Connections for Mem {
    fn execute(&self, interface: &str, sql: &str, ctx: &Context) -> Result<usize, CommandError> {
        if interface != "mem" {
            return Err(CommandError::Interface {
                interface: interface.to_string(),
                reason: format!("no interface named {interface}"),
            });
        }
        sql::on_sqlite(&self.0, interface, sql, ctx)
    }
}

fn mem() -> Mem {
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch(
        "create table t (id text primary key, n integer not null default 0, batch text)",
    )
    .unwrap();
    Mem(c)
}

fn window() -> Vec<(String, String)> {
    [
        ("FROM_DATE", "2026-01-01 00:00:00"),
        ("BATCH_START", "2026-01-02 03:04:05"),
        ("BATCH_ID", "1764000000"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

fn go(kind: &CommandKind, ctx: &Context) -> Result<Value, CommandError> {
    run(kind, ctx, &mem())
}

fn exec(program: &str, args: &[Arg]) -> CommandKind {
    CommandKind::Exec {
        program: program.to_string(),
        args: args.to_vec(),
    }
}

fn lit(s: &str) -> Arg {
    Arg::Literal(s.to_string())
}

fn shell(script: &str) -> CommandKind {
    CommandKind::Shell {
        script: script.to_string(),
    }
}

fn sql(statement: &str) -> CommandKind {
    CommandKind::Sql {
        interface: Name::new("mem", Span::default()),
        statement: statement.to_string(),
    }
}

fn stdout(v: &Value) -> &str {
    v["stdout"].as_str().unwrap()
}

/// True once `pid` has ended (gone, or a zombie nobody reaped yet).
fn process_gone(pid: u32) -> bool {
    if Path::new("/proc/self/stat").exists() {
        return match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        };
    }
    !std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .unwrap()
        .success()
}

/// Waits (boundedly: the kill is asynchronous) until `pid` has ended.
fn assert_ends(pid: u32) {
    for _ in 0..200 {
        if process_gone(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("process {pid} is still running after the timeout killed its command");
}

fn read_pid(dir: &Path, file: &str) -> u32 {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn echo_returns_the_id() {
    let r = go(&CommandKind::Echo, &Context::for_entity("a b")).unwrap();
    assert_eq!(r, json!({"echo": "a b"}));
}

#[test]
fn sleep_reports_the_time_slept() {
    let r = go(&CommandKind::Sleep { ms: 5 }, &Context::for_entity("1")).unwrap();
    assert_eq!(r, json!({"slept_ms": 5}));
}

#[test]
fn sleep_longer_than_entity_timeout_times_out() {
    let ctx = Context {
        timeout: Some(Duration::from_millis(10)),
        ..Context::for_entity("1")
    };
    let e = go(&CommandKind::Sleep { ms: 60_000 }, &ctx).unwrap_err();
    assert!(matches!(e, CommandError::Timeout(_)));
    assert_eq!(e.to_string(), "timed out after 10ms");
}

#[test]
fn sync_and_delete_instance_are_not_run_here() {
    let lu = Name::new("Customer", Span::default());
    let e = go(
        &CommandKind::SyncInstance { lu: lu.clone() },
        &Context::for_entity("1"),
    )
    .unwrap_err();
    assert!(matches!(e, CommandError::NotHere("sync_instance")));
    let e = go(
        &CommandKind::DeleteInstance { lu },
        &Context::for_entity("1"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "delete_instance is run by the LU layer, not by the command runner"
    );
}

#[test]
fn exec_true_succeeds_with_exit_zero() {
    let r = go(&exec("true", &[Arg::EntityId]), &Context::for_entity("1")).unwrap();
    assert_eq!(r, json!({"exit": 0, "stdout": "", "stderr": ""}));
}

#[test]
fn exec_false_fails_with_exit_code_one() {
    let e = go(&exec("false", &[Arg::EntityId]), &Context::for_entity("1")).unwrap_err();
    assert!(matches!(e, CommandError::Exit { code: 1, .. }));
    assert_eq!(e.to_string(), "exit code 1");
    assert_eq!(
        e.result(),
        Some(json!({"exit": 1, "stdout": "", "stderr": ""}))
    );
}

#[test]
fn exec_non_zero_exit_keeps_output_and_names_first_stderr_line() {
    let cmd = exec(
        "sh",
        &[
            lit("-c"),
            lit("echo out; printf '\\n  bad thing  \\nmore\\n' >&2; exit 3"),
            Arg::EntityId,
        ],
    );
    let e = go(&cmd, &Context::for_entity("1")).unwrap_err();
    assert_eq!(e.to_string(), "exit code 3: bad thing");
    assert_eq!(
        e.result(),
        Some(json!({"exit": 3, "stdout": "out\n", "stderr": "\n  bad thing  \nmore\n"}))
    );
}

#[test]
fn exec_passes_arguments_in_order_with_id_and_window_params() {
    let w = window();
    let ctx = Context {
        bid: "B1",
        window: &w,
        ..Context::for_entity("id with space")
    };
    let cmd = exec(
        "printf",
        &[
            lit("%s|"),
            lit("a"),
            Arg::EntityId,
            Arg::Param("batch_id".into()),
            lit("z"),
            Arg::Param("bid".into()),
            Arg::Param("from_date".into()),
        ],
    );
    let r = go(&cmd, &ctx).unwrap();
    assert_eq!(
        stdout(&r),
        "a|id with space|1764000000|z|B1|2026-01-01 00:00:00|"
    );
}

#[test]
fn exec_param_without_a_window_fails_the_entity() {
    let cmd = exec("echo", &[Arg::EntityId, Arg::Param("from_date".into())]);
    let e = go(&cmd, &Context::for_entity("1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no value for :from_date: window variables are set only for a named batch (WITH NAME='...')"
    );
}

#[test]
fn exec_caps_both_streams_at_the_output_limit_without_blocking_the_child() {
    // stderr first, then stdout, then stderr again: a runner that read one
    // stream to its end before the other, or stopped reading at the cap,
    // would leave the child blocked on a full pipe.
    let script = "yes e | head -c 1048576 >&2; yes o | head -c 1048576; echo end >&2";
    let cmd = exec("sh", &[lit("-c"), lit(script), Arg::EntityId]);
    let ctx = Context {
        timeout: Some(Duration::from_secs(120)),
        output_limit: 64 * 1024,
        ..Context::for_entity("1")
    };
    let r = go(&cmd, &ctx).unwrap();
    assert_eq!(r["exit"], 0);
    assert_eq!(stdout(&r).len(), 64 * 1024);
    assert!(stdout(&r).starts_with("o\no\n"));
    let err = r["stderr"].as_str().unwrap();
    assert_eq!(err.len(), 64 * 1024);
    assert!(err.starts_with("e\ne\n"));
    assert_eq!(r["truncated"], true);
    // The default keeps 1 MiB of each: all of stdout here, and stderr cut
    // by its last line only.
    let r = go(
        &cmd,
        &Context {
            timeout: Some(Duration::from_secs(120)),
            ..Context::for_entity("1")
        },
    )
    .unwrap();
    assert_eq!(stdout(&r).len(), 1024 * 1024);
    assert_eq!(r["truncated"], true, "stderr had 1 MiB and 4 bytes");
    // Within the limit: no mark.
    let small = exec("sh", &[lit("-c"), lit("echo hi"), Arg::EntityId]);
    let r = go(&small, &Context::for_entity("1")).unwrap();
    assert!(r.get("truncated").is_none(), "{r}");
}

#[test]
fn exec_replaces_invalid_utf8() {
    let cmd = exec("printf", &[lit("a\\377b"), Arg::EntityId]);
    let r = go(&cmd, &Context::for_entity("1")).unwrap();
    assert_eq!(stdout(&r), "a\u{FFFD}b");
}

#[test]
fn exec_of_a_missing_program_names_it_and_the_os_error() {
    let cmd = exec("batchsh-no-such-program", &[Arg::EntityId]);
    let e = go(&cmd, &Context::for_entity("1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot run 'batchsh-no-such-program': No such file or directory (os error 2)"
    );
}

#[test]
fn exec_refuses_an_id_with_a_nul_byte() {
    let e = go(
        &exec("echo", &[Arg::EntityId]),
        &Context::for_entity("a\0b"),
    )
    .unwrap_err();
    assert!(matches!(e, CommandError::NulInId));
}

#[test]
fn exec_and_shell_see_entity_batch_and_window_variables() {
    let w = window();
    let ctx = Context {
        bid: "B1",
        lu: "Customer",
        node: "n1",
        window: &w,
        ..Context::for_entity("42")
    };
    let r = go(
        &shell("printf '%s|' \"$BID\" \"$LU\" \"$NODE\" \"$FROM_DATE\" \"$BATCH_START\" \"$BATCH_ID\" ?"),
        &ctx,
    )
    .unwrap();
    assert_eq!(
        stdout(&r),
        "B1|Customer|n1|2026-01-01 00:00:00|2026-01-02 03:04:05|1764000000|42|"
    );
    let script = "printf %s \"$ENTITY_ID/$BID/$LU/$NODE/$BATCH_ID\"";
    let r = go(&exec("sh", &[lit("-c"), lit(script), Arg::EntityId]), &ctx).unwrap();
    assert_eq!(stdout(&r), "42/B1/Customer/n1/1764000000");
}

/// SPEC §5: "an id such as `1; rm -rf /` is harmless".
#[test]
fn shell_passes_hostile_ids_byte_for_byte_and_runs_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    // A file for `*` to match, were the id ever globbed.
    std::fs::write(dir.path().join("present"), "").unwrap();
    let ids = [
        "1; touch pwned",
        "$(touch pwned2)",
        "`touch pwned3`",
        "a\"b",
        "x\ny",
        "*",
        "'; touch pwned4; '",
        "\"; touch pwned5; \"",
        "  two  spaces  ",
        "\\",
        "-n",
        "?",
    ];
    let scripts = [
        "printf %s ?",
        "printf %s '?'",
        "printf %s \"?\"",
        "printf %s \"$(printf %s ?)\"",
    ];
    for id in ids {
        for script in scripts {
            let ctx = Context {
                cwd: Some(dir.path()),
                ..Context::for_entity(id)
            };
            let r =
                go(&shell(script), &ctx).unwrap_or_else(|e| panic!("{script} with id {id:?}: {e}"));
            assert_eq!(stdout(&r), id, "{script} with id {id:?}");
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    files.sort();
    assert_eq!(files, ["present"]);
}

#[test]
fn shell_question_mark_in_single_and_double_quotes_is_the_id() {
    let ctx = Context::for_entity("7");
    let r = go(&shell("echo 'id=<?>' \"n=?x\" \\?"), &ctx).unwrap();
    assert_eq!(stdout(&r), "id=<7> n=7x ?\n");
}

#[test]
fn shell_non_zero_exit_is_a_failure() {
    let e = go(
        &shell("echo no >&2; exit 3; : ?"),
        &Context::for_entity("1"),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "exit code 3: no");
}

#[test]
fn shell_killed_by_a_signal_reports_it() {
    let e = go(&shell("kill -s TERM $$; : ?"), &Context::for_entity("1")).unwrap_err();
    assert!(matches!(e, CommandError::Signal { signal: 15, .. }), "{e}");
    assert_eq!(e.result().unwrap()["exit"], 143);
}

#[test]
fn entity_timeout_kills_exec() {
    let ctx = Context {
        timeout: Some(Duration::from_millis(200)),
        ..Context::for_entity("1")
    };
    let cmd = exec("sh", &[lit("-c"), lit("sleep 30"), Arg::EntityId]);
    let e = go(&cmd, &ctx).unwrap_err();
    assert!(matches!(e, CommandError::Timeout(_)));
    assert_eq!(e.to_string(), "timed out after 200ms");
}

#[test]
fn entity_timeout_kills_the_shells_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context {
        timeout: Some(Duration::from_millis(1500)),
        cwd: Some(dir.path()),
        ..Context::for_entity("1")
    };
    let script = "sleep 30 & echo $! > sleep.pid; echo $$ > sh.pid; wait; : ?";
    let e = go(&shell(script), &ctx).unwrap_err();
    assert!(matches!(e, CommandError::Timeout(_)), "{e}");
    assert_eq!(e.to_string(), "timed out after 1500ms");
    assert_ends(read_pid(dir.path(), "sh.pid"));
    assert_ends(read_pid(dir.path(), "sleep.pid"));
}

#[test]
fn entity_timeout_covers_a_background_process_holding_the_output() {
    // The shell exits at once; its background `sleep` keeps stdout open.
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context {
        timeout: Some(Duration::from_millis(500)),
        cwd: Some(dir.path()),
        ..Context::for_entity("1")
    };
    let e = go(&shell("sleep 30 & echo $! > sleep.pid; echo ?"), &ctx).unwrap_err();
    assert!(matches!(e, CommandError::Timeout(_)), "{e}");
    assert_ends(read_pid(dir.path(), "sleep.pid"));
}

#[test]
fn sql_binds_the_id_and_window_params() {
    let db = mem();
    let w = window();
    let ctx = Context {
        bid: "B1",
        window: &w,
        ..Context::for_entity("c1")
    };
    let r = run(
        &sql("insert into t (id, batch) values (?, :batch_id || '/' || :bid)"),
        &ctx,
        &db,
    )
    .unwrap();
    assert_eq!(r, json!({"rows": 1}));
    let r = run(
        &sql("update t set n = n + 1 where id = ?1 or id = ?"),
        &ctx,
        &db,
    )
    .unwrap();
    assert_eq!(r, json!({"rows": 1}));
    let r = run(
        &sql("update t set n = n + 1 where id = ? || 'x'"),
        &ctx,
        &db,
    )
    .unwrap();
    assert_eq!(r, json!({"rows": 0}));
    let (n, batch): (i64, String) =
        db.0.query_row("select n, batch from t where id = 'c1'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, batch.as_str()), (1, "1764000000/B1"));
}

#[test]
fn sql_select_counts_the_rows_returned() {
    let db = mem();
    db.0.execute("insert into t (id) values ('c1')", [])
        .unwrap();
    let hit = run(
        &sql("select 1 from t where id = ?"),
        &Context::for_entity("c1"),
        &db,
    );
    assert_eq!(hit.unwrap(), json!({"rows": 1}));
    let miss = run(
        &sql("select 1 from t where id = ?"),
        &Context::for_entity("c2"),
        &db,
    );
    assert_eq!(miss.unwrap(), json!({"rows": 0}));
}

#[test]
fn sql_error_carries_the_database_message() {
    let e = go(
        &sql("insert into nosuch values (?)"),
        &Context::for_entity("1"),
    )
    .unwrap_err();
    assert!(matches!(e, CommandError::Sql { .. }));
    assert_eq!(
        e.to_string(),
        "sql error on interface mem: no such table: nosuch"
    );
    let e = go(
        &sql("insert into t (id) values (?); drop table t"),
        &Context::for_entity("1"),
    )
    .unwrap_err();
    assert!(matches!(e, CommandError::Sql { .. }), "{e}");
}

#[test]
fn sql_named_param_without_a_window_fails_the_entity() {
    let e = go(
        &sql("insert into t (id, batch) values (?, :from_date)"),
        &Context::for_entity("1"),
    )
    .unwrap_err();
    assert!(
        matches!(e, CommandError::NoWindowValue(ref n) if n == "from_date"),
        "{e}"
    );
    let e = go(&sql("select ? , :nope"), &Context::for_entity("1")).unwrap_err();
    assert!(
        matches!(e, CommandError::UnknownParam(ref n) if n == "nope"),
        "{e}"
    );
}

#[test]
fn sql_on_an_unknown_interface_says_so() {
    let cmd = CommandKind::Sql {
        interface: Name::new("crm", Span::default()),
        statement: "select ?".into(),
    };
    let e = go(&cmd, &Context::for_entity("1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot use interface crm: no interface named crm"
    );
}

#[test]
fn entity_timeout_interrupts_a_long_sql_statement() {
    let ctx = Context {
        timeout: Some(Duration::from_millis(200)),
        ..Context::for_entity("1")
    };
    let endless = "with recursive c(x) as (select 1 union all select x + 1 from c) \
                   select count(*) from c where ? is not null";
    let e = go(&sql(endless), &ctx).unwrap_err();
    assert!(matches!(e, CommandError::Timeout(_)), "{e}");
}
