//! Tables that fit a terminal (SPEC §10): short ids, cut text, the width
//! from `COLUMNS` or the terminal, `SET EXPANDED`, `SET TIMING` and the
//! pager, run through the real binary, on a pipe and on a real
//! pseudo-terminal.

use crate::common::Test;
use crate::world::World;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use unicode_width::UnicodeWidthStr;

/// A batch whose entity 2 fails with a long error, and its bid.
fn batch_with_a_long_error(w: &World) -> String {
    w.test(
        "BATCH Customer FABRIC_COMMAND=\"shell 'if [ ? = 2 ]; then echo the command could not \
         reach the remote service for this entity >&2; exit 3; fi; echo ok ?'\"",
    )
    .status(3)
    .run();
    w.last_bid()
}

/// A world of `n` customers and a batch of `echo ?` over them, DONE.
fn world_with_a_batch(n: i64) -> (World, String) {
    let w = World::new(n);
    w.test("BATCH Customer FABRIC_COMMAND='echo ?'")
        .status(0)
        .run();
    let bid = w.last_bid();
    (w, bid)
}

/// `batchsh --home <world's home> -c script`, table format.
fn table(w: &World, script: &str) -> Test {
    Test::new()
        .current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "-c", script])
}

fn widest(s: &str) -> usize {
    s.lines().map(UnicodeWidthStr::width).max().unwrap_or(0)
}

/// SPEC §10: at 80 columns (`COLUMNS`, as psql honours it) the batch's
/// result row, BATCH_LIST and BATCH_SUMMARY print as records (expanded
/// auto, the default) and BATCH_DETAILS as a table whose long error is
/// cut; no line is wider than 80, ids show 8 characters, and JSON keeps
/// them and the error whole.
#[test]
fn at_80_columns_every_monitoring_table_fits() {
    let w = World::new(3);
    let result = table(
        &w,
        "BATCH Customer FABRIC_COMMAND=\"shell 'if [ ? = 2 ]; then echo the command could not \
         reach the remote service for this entity >&2; exit 3; fi; echo ok ?'\"",
    )
    .env("COLUMNS", "80")
    .status(3)
    .run();
    let bid = w.last_bid();
    let short = &bid[..8];
    assert!(
        result.stdout.starts_with(&format!(
            "-[ RECORD 1 ]-------+---------\nBatch id            | {short}\n"
        )),
        "{}",
        result.stdout
    );
    for script in [
        "BATCH_LIST STATUS='ALL'",
        "BATCH_SUMMARY",
        "BATCH_DETAILS",
        "BATCH_INFO",
    ] {
        let out = table(&w, script).env("COLUMNS", "80").status(0).run();
        assert!(widest(&out.stdout) <= 80, "{script}:\n{}", out.stdout);
        assert!(
            !out.stdout.contains(&bid[..9]) || script == "BATCH_INFO",
            "{script} shows the whole bid:\n{}",
            out.stdout
        );
    }
    let list = table(&w, "BATCH_LIST STATUS='ALL'")
        .env("COLUMNS", "80")
        .run();
    assert!(
        list.stdout.starts_with("-[ RECORD 1 ]-+---"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .contains(&format!("\nId            | {short}\n"))
    );
    assert!(
        list.stdout
            .contains("Command       | BATCH Customer FABRIC_COMMAND=")
    );
    assert!(list.stdout.contains('…'), "the long command is cut");
    let summary = table(&w, "BATCH_SUMMARY").env("COLUMNS", "80").run();
    assert_eq!(summary.stdout.matches("-[ RECORD ").count(), 3);
    // A table or records, as the columns allow: the long error is cut.
    let details = table(&w, "BATCH_DETAILS").env("COLUMNS", "80").run();
    let error = details
        .stdout
        .lines()
        .find(|l| l.contains("| exit code"))
        .unwrap();
    assert!(error.ends_with('…') || error.contains("… |"), "{error}");
    // JSON: whole.
    let json = table(&w, "BATCH_DETAILS STATUS='FAILED'")
        .env("COLUMNS", "80")
        .args(["--format", "json"])
        .run();
    assert!(
        json.stdout
            .contains("could not reach the remote service for this entity"),
        "{}",
        json.stdout
    );
    let json = table(&w, "BATCH_LIST STATUS='ALL'")
        .env("COLUMNS", "80")
        .args(["--format", "csv"])
        .run();
    assert!(json.stdout.contains(&bid), "{}", json.stdout);
}

/// Printed to a pipe with no `COLUMNS`, a table is not fitted to any
/// width (psql's rule): nothing is cut or wrapped, one line per row; ids
/// still show 8 characters.
#[test]
fn on_a_pipe_a_table_is_whole_and_one_line_per_row() {
    let w = World::new(3);
    let bid = batch_with_a_long_error(&w);
    let out = table(&w, "BATCH_DETAILS STATUS='FAILED'").status(0).run();
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("could not reach the remote service for this entity"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('…'));
    let list = table(&w, "BATCH_LIST STATUS='ALL'").status(0).run();
    assert!(list.stdout.starts_with("| Id "), "{}", list.stdout);
    assert!(list.stdout.contains(&format!("| {} |", &bid[..8])));
    assert!(!list.stdout.contains(&bid));
}

/// SPEC §6, §10: the 8 characters a table shows are a bid every statement
/// that takes one accepts: each either runs, or refuses for a reason that
/// names the whole bid (it was found), never "no batch".
#[test]
fn the_8_characters_a_table_shows_work_wherever_a_bid_is_taken() {
    let (w, bid) = world_with_a_batch(3);
    let list = table(&w, "BATCH_LIST STATUS='ALL'").status(0).run();
    let row = list.stdout.lines().nth(2).unwrap();
    let short = row.split('|').nth(1).unwrap().trim();
    assert_eq!(short, &bid[..8]);
    for stmt in [
        "BATCH_INFO",
        "BATCH_SUMMARY",
        "BATCH_DETAILS",
        "BATCH_HISTORY",
        "BATCH_WAIT",
        "BATCH_PAUSE",
        "BATCH_RESUME",
        "BATCH_CANCEL",
        "BATCH_RETRY",
        "BATCH_WAITOFF",
        "CANCEL BATCH",
    ]
    .map(|s| format!("{s} {short}"))
    .into_iter()
    .chain([
        format!("BATCH_EDIT {short} MAX_WORKERS_PER_NODE=2"),
        format!("BATCH_APPEND {short} ('9')"),
        format!("BATCH_RETRY '{short}' ALLOW_CANCELLED=true"),
    ]) {
        let out = table(&w, &stmt).run();
        assert!(
            out.code == 0 || out.stderr.contains(&bid),
            "{stmt}: exit {}\n{}",
            out.code,
            out.stderr
        );
        assert!(!out.stderr.contains("no batch"), "{stmt}: {}", out.stderr);
    }
}

/// `SET EXPANDED on|off|auto`, and `-x`: records whatever the width, or a
/// table however wide; `SET EXPANDED maybe` is refused with the three
/// values and runs nothing after it; JSON is the same either way.
#[test]
fn set_expanded_and_the_x_flag() {
    let (w, _) = world_with_a_batch(3);
    let on = table(&w, "SET EXPANDED on; BATCH_SUMMARY").status(0).run();
    assert!(on.stdout.starts_with("-[ RECORD 1 ]"), "{}", on.stdout);
    let x = table(&w, "BATCH_SUMMARY").arg("-x").status(0).run();
    assert_eq!(x.stdout, on.stdout);
    let off = table(&w, "SET EXPANDED off; BATCH_SUMMARY")
        .env("COLUMNS", "80")
        .status(0)
        .run();
    assert!(off.stdout.starts_with("| Level"), "{}", off.stdout);
    assert_eq!(
        off.stdout
            .lines()
            .filter(|l| l.contains("LOCAL_DC"))
            .count(),
        1
    );
    let auto = table(&w, "SET EXPANDED off; SET EXPANDED auto; BATCH_SUMMARY")
        .env("COLUMNS", "80")
        .status(0)
        .run();
    assert!(auto.stdout.starts_with("-[ RECORD 1 ]"));
    let wide = table(&w, "BATCH_SUMMARY")
        .env("COLUMNS", "400")
        .status(0)
        .run();
    assert!(wide.stdout.starts_with("| Level"));
    table(&w, "SET EXPANDED maybe; BATCH_SUMMARY")
        .status(1)
        .stdout("")
        .stderr_contains("invalid value for EXPANDED: 'maybe'")
        .stderr_contains("expected on, off or auto")
        .run();
    let json = |script: &str| {
        table(&w, script)
            .args(["--format", "json"])
            .env("COLUMNS", "40")
            .status(0)
            .run()
            .stdout
    };
    assert_eq!(
        json("SET EXPANDED on; BATCH_SUMMARY"),
        json("SET EXPANDED off; BATCH_SUMMARY")
    );
    let settings = table(
        &w,
        "SET EXPANDED on; SET TIMING on; SET PAGER off; SHOW SETTINGS",
    )
    .args(["--format", "json"])
    .status(0)
    .run();
    let v: serde_json::Value = serde_json::from_str(&settings.stdout).unwrap();
    assert_eq!(
        (&v["expanded"], &v["timing"], &v["pager"]),
        (&"on".into(), &"on".into(), &"off".into())
    );
}

/// HELP SET shows the settings and their values, from the grammar file.
#[test]
fn help_set_shows_expanded_timing_and_pager() {
    Test::new()
        .args(["-c", "HELP SET"])
        .status(0)
        .stdout_contains(r#""EXPANDED" , ( "ON" | "OFF" | "AUTO" )"#)
        .stdout_contains(r#""TIMING" , ( "ON" | "OFF" )"#)
        .stdout_contains(r#""PAGER" , ( "ON" | "OFF" )"#)
        .stdout_contains("SET EXPANDED on;")
        .run();
}

/// `SET TIMING on`: every statement after it prints `Time: N.NNN ms` on
/// stderr (a failed one too), stdout unchanged; off again, none.
#[test]
fn set_timing_prints_each_statements_time_on_stderr() {
    let out = Test::new()
        .args([
            "--keep-going",
            "-c",
            "SHOW LUS; SET TIMING on; SHOW LUS; BATCH_INFO 'nope0000'; SET TIMING off; SHOW LUS",
        ])
        .status(1)
        .run();
    let times: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Time: "))
        .collect();
    assert_eq!(times.len(), 2, "{}", out.stderr);
    for t in times {
        let ms = t
            .strip_prefix("Time: ")
            .and_then(|t| t.strip_suffix(" ms"))
            .unwrap_or_else(|| panic!("{t}"));
        let (whole, decimals) = ms.split_once('.').unwrap();
        assert!(whole.parse::<u64>().is_ok() && decimals.len() == 3, "{t}");
    }
    assert!(!out.stdout.contains("Time:"));
    // After the error's message, as psql prints it.
    let error_at = out.stderr.find("nope0000").unwrap();
    assert!(out.stderr[error_at..].contains("Time: "), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// On a real terminal.
// ---------------------------------------------------------------------------

/// batchsh with stdin, stdout and stderr on a pseudo-terminal of `cols`
/// by `rows`, run to its end: its exit code and what the terminal showed.
pub(crate) fn on_terminal(
    w: &World,
    script: &str,
    (cols, rows): (u16, u16),
    env: &[(&str, &str)],
) -> (i32, String) {
    let size = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(&size, None).unwrap();
    let slave = || Stdio::from(pty.slave.try_clone().unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_batchsh"));
    cmd.current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "-c", script])
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .env_remove("PAGER")
        .env_remove("BATCHSH_PAGER")
        .env_remove("LESS")
        .stdin(slave())
        .stdout(slave())
        .stderr(slave());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    drop(cmd);
    let nix::pty::OpenptyResult { master, slave } = pty;
    drop(slave);
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut shown = Vec::new();
        // The read ends in EIO once no process holds the terminal.
        let _ = master.read_to_end(&mut shown);
        shown
    });
    let out = crate::world::wait_or_kill(child, std::time::Duration::from_secs(60));
    let shown = reader.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&shown).replace("\r\n", "\n"),
    )
}

/// A fake pager: it writes what it is given to `paged.txt` (and its
/// `LESS` to `less.txt`), and shows `PAGED` on the terminal.
fn fake_pager(dir: &Path) -> String {
    let script = dir.join("pager.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat > paged.txt\nprintf '%s' \"$LESS\" > less.txt\necho PAGED\n",
    )
    .unwrap();
    format!("sh {}", script.display())
}

/// On an 80 by 10 terminal: the width is the terminal's (records for
/// BATCH_SUMMARY), and a table taller than the screen goes through
/// `$PAGER` (given `LESS=-SRFX`), whole; a short one, JSON, `SET PAGER
/// off` and an empty `PAGER` print directly; a pager that cannot run is
/// reported and the table printed.
#[test]
fn on_a_terminal_tables_fit_its_width_and_tall_ones_go_through_the_pager() {
    let (w, _) = world_with_a_batch(20);
    let pager = fake_pager(w.path());
    let paged = w.path().join("paged.txt");
    let env = [("PAGER", pager.as_str())];

    // Short: printed, fitted to the 80 columns (records).
    let (code, shown) = on_terminal(&w, "BATCH_LIST STATUS='ALL'", (80, 40), &env);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.starts_with("-[ RECORD 1 ]"), "{shown}");
    assert!(!paged.exists() && !shown.contains("PAGED"));
    // Wide: the same as a table.
    let (_, shown) = on_terminal(&w, "BATCH_LIST STATUS='ALL'", (250, 40), &env);
    assert!(shown.starts_with("| Id "), "{shown}");

    // Tall (20 entities, 10 rows): through the pager, whole.
    let (code, shown) = on_terminal(&w, "BATCH_DETAILS", (80, 10), &env);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("PAGED"), "{shown}");
    assert!(!shown.contains("COMPLETED"), "{shown}");
    let text = std::fs::read_to_string(&paged).unwrap();
    let at_80 = table(&w, "BATCH_DETAILS").env("COLUMNS", "80").run().stdout;
    assert_eq!(text, at_80);
    assert_eq!(text.matches("COMPLETED").count(), 20, "{text}");
    assert_eq!(
        std::fs::read_to_string(w.path().join("less.txt")).unwrap(),
        "-SRFX"
    );
    std::fs::remove_file(&paged).unwrap();
    // The user's own LESS is left alone.
    on_terminal(&w, "BATCH_DETAILS", (80, 10), &[env[0], ("LESS", "-R")]);
    assert_eq!(
        std::fs::read_to_string(w.path().join("less.txt")).unwrap(),
        "-R"
    );
    std::fs::remove_file(&paged).unwrap();

    // Not paged: SET PAGER off, JSON, an empty PAGER.
    for (script, env) in [
        ("SET PAGER off; BATCH_DETAILS", env.to_vec()),
        ("SET FORMAT json; BATCH_DETAILS", env.to_vec()),
        ("BATCH_DETAILS", vec![("PAGER", "")]),
        (
            "BATCH_DETAILS",
            vec![("PAGER", pager.as_str()), ("BATCHSH_PAGER", "")],
        ),
    ] {
        let (code, shown) = on_terminal(&w, script, (80, 10), &env);
        assert_eq!(code, 0, "{script}: {shown}");
        assert!(
            !paged.exists() && !shown.contains("PAGED"),
            "{script}: {shown}"
        );
        assert_eq!(shown.matches("COMPLETED").count(), 20, "{script}: {shown}");
    }

    // A pager that cannot run: said, and the table printed.
    let (code, shown) = on_terminal(
        &w,
        "BATCH_DETAILS",
        (80, 10),
        &[("PAGER", "/nonexistent/pager")],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("batchsh: the pager `/nonexistent/pager` failed"),
        "{shown}"
    );
    assert_eq!(shown.matches("COMPLETED").count(), 20, "{shown}");
}

/// `SET TIMING on` on a terminal: the time follows the result.
#[test]
fn set_timing_on_a_terminal() {
    let w = World::new(3);
    let (code, shown) = on_terminal(&w, "SET TIMING on; SHOW LUS", (120, 40), &[]);
    assert_eq!(code, 0, "{shown}");
    let table_at = shown.find("| Customer").unwrap();
    assert!(shown[table_at..].contains("\nTime: "), "{shown}");
}
