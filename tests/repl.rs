//! The interactive REPL (SPEC §12), driven through a real pseudo-terminal,
//! and `HELP`, which is a statement of every mode.

use crate::common::Test;

/// SPEC §12: `HELP` lists the statements, one line each, in every mode.
#[test]
fn help_lists_every_statement_with_its_summary() {
    let out = Test::new()
        .args(["--format", "json", "-c", "HELP"])
        .status(0)
        .run();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), batchsh::syntax::keywords::STATEMENTS.len());
    assert_eq!(rows[0]["statement"], "CREATE INTERFACE");
    assert!(rows.iter().any(
        |r| r["statement"] == "BATCH" && r["summary"].as_str().unwrap().contains("per entity")
    ));
    let table = Test::new().args(["-c", "HELP;"]).status(0).run();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2 + rows.len(), "{}", table.stdout);
    assert!(lines.iter().any(|l| l.starts_with("| BATCH_LIST ")));
}

/// SPEC §12: `HELP BATCH` (any statement, any case) shows its syntax and an
/// example, from the grammar file's section; `--quiet` does not hide what
/// was asked for.
#[test]
fn help_for_a_statement_shows_its_grammar_section() {
    let out = Test::new()
        .args(["-q", "-c", "help batch_summary"])
        .status(0)
        .run();
    let grammar =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/grammar/batchsh.ebnf"))
            .unwrap();
    assert!(grammar.contains("batch_summary = \"BATCH_SUMMARY\" , [ bid ] ;"));
    assert_eq!(
        out.stdout,
        "BATCH_SUMMARY: progress per node, per DC and for the cluster\n\
         \n\
         Syntax:\n    batch_summary = \"BATCH_SUMMARY\" , [ bid ] ;\n\
         \n\
         Where:\n    \
         A batch id. Where it is optional and left out, the last batch started in\n    \
         this session is meant; in a session that started none, a monitoring\n    \
         statement takes the newest batch of the store (and says which), a\n    \
         control statement needs the id. A unique prefix of at least 6\n    \
         characters is enough. A bare word followed by \"=\" is an option name,\n    \
         never a batch id.\n    \
         bid = string | bare_value ;\n\
         \n\
         Examples:\n    BATCH_SUMMARY c0ffee42;\n\
         \n\
         Notation: [ a ] optional, { a } repeated, a | b one of them; \"WORD\" is a keyword,\n\
         in any case; (* ... *) is a comment.\n"
    );
    let create = Test::new().args(["-c", "HELP create instance group"]).run();
    assert!(
        create
            .stdout
            .starts_with("CREATE INSTANCE GROUP: save a one-column query of entity ids\n"),
        "{}",
        create.stdout
    );
    assert!(create.stdout.contains(
        "    CREATE INSTANCE GROUP Customer.vip USING ('select id from customer where tier = ''gold''');"
    ));
}

#[test]
fn help_for_an_unknown_statement_suggests_the_nearest() {
    Test::new()
        .args(["-c", "HELP BATCH_LSIT"])
        .status(1)
        .stdout("")
        .stderr_contains("did you mean BATCH_LIST?")
        .run();
}

/// SPEC §12: `HELP commands` lists the per-entity commands with the `?`
/// rules, `pipe` among them (built: no mark).
#[test]
fn help_commands_lists_the_per_entity_commands_and_the_id_rules() {
    let out = Test::new().args(["-c", "HELP commands"]).status(0).run();
    for want in [
        "Per-entity commands: what FABRIC_COMMAND runs for each entity of a BATCH\n",
        "\"?\" stands for the entity id",
        "GNU parallel's {} is not a placeholder here",
        "    sync_instance   Sync the instance",
        "    exec            Run a program directly",
        "    shell           Run the text with sh -c\n",
        "    pipe            Talk to one long-running process per worker thread, started once, a line per entity\n",
        "    BATCH Customer.('1', '2') FABRIC_COMMAND='echo ?'\n",
    ] {
        assert!(out.stdout.contains(want), "lacks {want:?}:\n{}", out.stdout);
    }
}

/// `HELP exec` and `HELP shell` (any case): the command's text, syntax,
/// the `?` rules and examples from the grammar.
#[test]
fn help_exec_and_shell_explain_the_command() {
    let out = Test::new().args(["-c", "help EXEC"]).status(0).run();
    assert!(
        out.stdout
            .starts_with("exec: a per-entity command (FABRIC_COMMAND)\n\nRun a program directly"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    exec_command   = \"exec\" , string , { exec_arg } ;")
    );
    assert!(
        out.stdout
            .contains("The entity id:\n    \"?\" stands for the entity id")
    );
    assert!(out.stdout.contains("Examples:\n    BATCH Customer.('1', '2') FABRIC_COMMAND=\"exec 'echo' '--id' ? '--batch' :bid\""));
    let out = Test::new().args(["-c", "HELP shell"]).status(0).run();
    assert!(
        out.stdout
            .contains("The text must contain \"?\" or $ENTITY_ID"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("FABRIC_COMMAND=$$shell 'echo \"$ENTITY_ID\" of $BID'$$")
    );
}

/// `HELP pipe`: what it does, its syntax and examples, and no longer
/// "not built yet".
#[test]
fn help_pipe_explains_the_command() {
    let out = Test::new().args(["-c", "HELP pipe"]).status(0).run();
    assert!(
        out.stdout.starts_with(
            "pipe: a per-entity command (FABRIC_COMMAND)\n\nTalk to one long-running process"
        ),
        "{}",
        out.stdout
    );
    for want in [
        "    pipe_command   = \"pipe\" , string , { string } ;",
        "{\"error\": \"...\"} fails the entity",
        "but for pipe, which takes the id on its stdin and refuses",
        "Examples:\n    BATCH Customer.('1', '2') FABRIC_COMMAND=\"pipe 'cat'\"",
    ] {
        assert!(out.stdout.contains(want), "lacks {want:?}:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("not built yet"), "{}", out.stdout);
}

/// Statements that parse but do not run are marked in HELP's list and in
/// their own HELP.
#[test]
fn help_marks_the_statements_not_built_yet() {
    let out = Test::new()
        .args(["--format", "json", "-c", "HELP"])
        .status(0)
        .run();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for r in rows.as_array().unwrap() {
        let name = r["statement"].as_str().unwrap();
        let built = batchsh::syntax::keywords::is_built(name);
        assert_eq!(r["built"], built, "{name}");
        assert!(!r["summary"].as_str().unwrap().contains("built"), "{r}");
    }
    let csv = Test::new()
        .args(["--format", "csv", "-c", "HELP"])
        .status(0)
        .run();
    assert!(
        csv.stdout.starts_with("statement,built,summary\n"),
        "{}",
        csv.stdout
    );
    // Every statement runs in this version: none is marked.
    assert!(batchsh::syntax::keywords::NOT_BUILT.is_empty());
    assert!(
        csv.stdout.contains("\nWINDOW_STATUS,true,"),
        "{}",
        csv.stdout
    );
    assert!(!csv.stdout.contains(",false,"), "{}", csv.stdout);
    Test::new()
        .args(["-c", "HELP WINDOW_STATUS"])
        .status(0)
        .stdout_lacks("Not built yet")
        .run();
    Test::new()
        .args(["-c", "HELP BATCH"])
        .status(0)
        .stdout_lacks("Not built yet")
        .run();
}

/// At 80 columns the summaries are cut to fit, and whether a statement is
/// built stays whole in its own column: a mark at the end of the summary
/// was cut to `…` with it.
#[test]
fn help_at_80_columns_keeps_the_not_built_mark() {
    let out = Test::new()
        .env("COLUMNS", "80")
        .args(["-c", "HELP"])
        .status(0)
        .run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("| Statement "), "{}", out.stdout);
    for s in batchsh::syntax::keywords::STATEMENTS {
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("| {} ", s.name)))
            .unwrap_or_else(|| panic!("no row for {}:\n{}", s.name, out.stdout));
        assert!(row.chars().count() <= 80, "{row}");
        let built = row.split('|').nth(2).unwrap().trim();
        let want = if batchsh::syntax::keywords::is_built(s.name) {
            "true"
        } else {
            "false"
        };
        assert_eq!(built, want, "{row}");
    }
}

// ---------------------------------------------------------------------------
// The REPL in a real pseudo-terminal.
// ---------------------------------------------------------------------------

use rexpect::process::WaitStatus;
use rexpect::session::PtySession;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long any one expectation may wait: generous, for a loaded 2-core
/// machine. Nothing here asserts on speed.
const TIMEOUT_MS: u64 = 60_000;

const PROMPT: &str = "batchsh> ";
const CONTINUATION: &str = "      -> ";

/// A working folder with an SQLite source (customers 1..=n), an interface
/// `crm` and an LU `Customer` in the store of `<dir>/home`.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new(n: i64) -> Place {
        let dir = tempfile::tempdir().unwrap();
        crate::common::customer_db(&dir.path().join("crm.db"), n);
        let p = Place { dir };
        p.test(crate::common::CRM_CUSTOMER_LU).status(0).run();
        p
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `batchsh -c` in another process, JSON out: to set more on before
    /// it runs.
    fn test(&self, script: &str) -> Test {
        Test::new()
            .current_dir(self.dir.path())
            .args(["--home", self.home().to_str().unwrap(), "--format", "json"])
            .args(["-c", script])
    }

    /// The JSON another process prints for `script` (one statement).
    fn json(&self, script: &str) -> Value {
        let out = self.test(script).status(0).run();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }

    /// The REPL on a pseudo-terminal, in this place, with `args` and `env`
    /// (TERM=xterm and NO_COLOR=1 unless `env` says otherwise), at its
    /// first prompt.
    fn repl(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Repl {
        let mut r = self.repl_start(args, env);
        r.greeting = r.expect(PROMPT);
        r
    }

    /// [`Place::repl`] just started: its prompt is not waited for.
    fn repl_start(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Repl {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_batchsh"));
        cmd.current_dir(self.dir.path())
            .args(["--home", self.home().to_str().unwrap()])
            .args(args)
            .env_remove("BATCHSH_HOME")
            .env_remove("BATCHSH_STORE")
            .env_remove("BATCHSH_FORMAT")
            .env_remove("BATCHSH_NODE")
            .env_remove("BATCHSH_DC")
            .env("TERM", "xterm")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let s = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).expect("batchsh starts");
        Repl {
            s,
            greeting: String::new(),
        }
    }
}

struct Repl {
    s: PtySession,
    /// What came before the first prompt.
    greeting: String,
}

impl Repl {
    /// Waits for `text`; returns what came before it.
    fn expect(&mut self, text: &str) -> String {
        self.s
            .exp_string(text)
            .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}"))
    }

    /// Types `keys` (no Enter).
    fn keys(&mut self, keys: &str) {
        self.s.send(keys).unwrap();
        self.s.flush().unwrap();
    }

    /// Types a line and Enter.
    fn line(&mut self, text: &str) {
        self.keys(&format!("{text}\r"));
    }

    /// Types a line, waits for `output`, then for the next prompt (which
    /// may be the output waited for). Returns what came before `output`.
    fn run(&mut self, text: &str, output: &str) -> String {
        self.line(text);
        let before = self.expect(output);
        if output != PROMPT {
            self.expect(PROMPT);
        }
        before
    }

    fn ctrl(&mut self, c: char) {
        self.s.send_control(c).unwrap();
    }

    /// Types `statement` (EXIT, QUIT) and checks that batchsh ends with 0.
    fn leave(mut self, statement: &str) {
        self.line(statement);
        assert_eq!(self.exit_code(), 0, "after {statement}");
    }

    /// Waits for batchsh to end; its exit code. (A batchsh that does not
    /// end fails the test, and is killed when the session drops.)
    fn exit_code(mut self) -> i32 {
        let rest = self.s.exp_eof();
        let mut status = None;
        eventually("batchsh to exit", || {
            status = self.s.process().status();
            status != Some(WaitStatus::StillAlive)
        });
        match status {
            Some(WaitStatus::Exited(_, code)) => code,
            other => panic!("batchsh did not exit normally: {other:?}; it printed {rest:?}"),
        }
    }
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_millis(TIMEOUT_MS),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The only batch of the store, as `BATCH_LIST` shows it to another process.
fn only_batch(p: &Place) -> Value {
    let list = p.json("BATCH_LIST STATUS='ALL'");
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    rows[0].clone()
}

/// The cluster row of `BATCH_SUMMARY`, as another process reads it.
fn cluster(p: &Place, bid: &str) -> Value {
    let rows = p.json(&format!("BATCH_SUMMARY '{bid}'"));
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["level"] == "Cluster")
        .cloned()
        .unwrap_or_else(|| panic!("no cluster row: {rows}"))
}

/// Issue 4, point 1: stdin that is not a terminal is a script: no prompt.
#[test]
fn stdin_that_is_not_a_terminal_is_read_as_a_script() {
    let out = Test::new()
        .stdin("SET FORMAT json;\nSHOW SETTINGS\n")
        .status(0)
        .stdout_lacks(PROMPT)
        .stderr_lacks(PROMPT)
        .run();
    assert!(
        out.stdout.starts_with("{\"format\":\"json\""),
        "{}",
        out.stdout
    );
}

/// Issue 20, point 10: a store URL of a scheme batchsh does not know is
/// refused before the REPL starts: exit 2, no prompt, no folder `mysql:`
/// in the working directory. A PostgreSQL store that cannot be reached
/// ends the REPL before its prompt, exit 1, saying why.
#[test]
fn a_store_url_is_refused_before_the_repl_starts() {
    let p = Place::new(1);
    let mut r = p.repl_start(&["--store", "mysql://localhost/batchsh"], &[]);
    let said = r.expect("which is not a store batchsh knows");
    assert!(
        said.contains("error: the store mysql://") && !said.contains(PROMPT),
        "{said}"
    );
    assert_eq!(r.exit_code(), 2);
    assert!(!p.dir.path().join("mysql:").exists());
    let mut r = p.repl_start(&["--store", "postgres://u@127.0.0.1:1/batchsh"], &[]);
    let said = r.expect("nothing listens at 127.0.0.1:1");
    assert!(!said.contains(PROMPT), "{said}");
    assert_eq!(r.exit_code(), 1);
    assert!(!p.dir.path().join("postgres:").exists());
}

/// Points 1, 2, 7: the prompt; a BATCH typed over four lines (SQL inside
/// quotes, options on a line of their own) shows the continuation prompt
/// until it is complete, then runs; SET lasts for the session; EXIT leaves
/// with 0.
#[test]
fn a_multi_line_batch_typed_line_by_line_runs() {
    let p = Place::new(5);
    let mut r = p.repl(&["--format", "json"], &[]);
    r.line("BATCH Customer FROM crm USING ('select id");
    r.expect(CONTINUATION);
    r.line("  from customer where id <= 3 -- in the SQL; not the end')");
    r.expect(CONTINUATION);
    r.line("FABRIC_COMMAND=\"echo ?\" WITH");
    r.expect(CONTINUATION);
    r.run("MAX_WORKERS_PER_NODE=2;", "\"total\":3");
    let batch = only_batch(&p);
    assert_eq!(batch["status"], "DONE");
    assert!(
        batch["command"].as_str().unwrap().contains("where id <= 3"),
        "{batch}"
    );
    r.run("SET FORMAT csv", PROMPT);
    r.run("SHOW SETTINGS", "format,csv");
    r.leave("EXIT");
}

/// Point 8: an error prints its diagnostic and the REPL goes on; Ctrl-C
/// clears the input typed so far; QUIT and Ctrl-D leave.
#[test]
fn errors_print_and_ctrl_c_clears_the_input() {
    let p = Place::new(1);
    let mut r = p.repl(&[], &[]);
    let shown = r.run("BATCH_LSIT;", "did you mean BATCH_LIST?");
    assert!(shown.contains("unknown statement BATCH_LSIT"), "{shown}");
    r.run(
        "BATCH Custmer.(1) FABRIC_COMMAND='sync_instance Custmer.?'",
        "no LU named Custmer (did you mean Customer?)",
    );
    // An unfinished statement, then Ctrl-C: the next line starts afresh.
    r.line("BATCH Customer.(1,");
    r.expect(CONTINUATION);
    r.ctrl('c');
    r.expect(PROMPT);
    // On a terminal the bar shows.
    r.run("SHOW SETTINGS", "| progress_shown | true ");
    // An empty line runs an unfinished statement, to say what it lacks.
    r.line("BATCH Customer.(1)");
    r.expect(CONTINUATION);
    let error = r.run("", "FABRIC_COMMAND, found end of input");
    assert!(
        !error.contains("line 2"),
        "the blank line is not part of it: {error}"
    );
    // A batch that ends FAILED stops the rest of its input, as an error
    // does; the REPL goes on.
    r.run(
        "BATCH Customer FROM crm USING ('select id from nowhere') FABRIC_COMMAND='echo ?'; SHOW LUS",
        "the 1 statement after it in this input did not run",
    );
    r.leave("QUIT");
    let mut r = p.repl(&[], &[]);
    r.ctrl('d');
    assert_eq!(r.exit_code(), 0);
}

/// Point 4: Tab completes LU names from the store, a partial WITH option
/// name, and a recent batch id; point 9: the batch just run is the one a
/// bid-less statement acts on.
#[test]
fn tab_completes_names_options_and_batch_ids() {
    let p = Place::new(3);
    let mut r = p.repl(&["--format", "json"], &[]);
    r.keys("BATCH Cus\t");
    r.expect("Customer");
    r.keys(".(1, 2) FABRIC_COMMAND='echo ?' WITH MAX_W\t");
    r.expect("MAX_WORKERS_PER_NODE=");
    r.run("2", "\"total\":2");
    let bid = only_batch(&p)["id"].as_str().unwrap().to_string();
    assert_eq!(cluster(&p, &bid)["succeeded"], 2);
    r.keys(&format!("BATCH_INFO {}\t", &bid[..4]));
    r.expect(&bid);
    r.run("", "\"batch_id\"");
    // The bid-less form means the batch of this session.
    let info = r.run("BATCH_INFO", PROMPT);
    assert!(info.contains(&bid), "{info}");
    r.leave("EXIT");
}

/// Point 3: history lives in <home>/history, survives a restart, and keeps
/// one copy of a line entered twice in a row.
#[test]
fn history_survives_a_restart_without_repeats() {
    let p = Place::new(1);
    let mut r = p.repl(&["--format", "json"], &[]);
    r.run("SET FORMAT csv", PROMPT);
    r.run("SHOW SETTINGS", "format,csv");
    r.run("SHOW SETTINGS", "format,csv");
    r.ctrl('d');
    assert_eq!(r.exit_code(), 0);
    let file = std::fs::read_to_string(p.home().join("history")).unwrap();
    assert_eq!(file.matches("SHOW SETTINGS").count(), 1, "{file}");
    assert!(file.contains("SET FORMAT csv"), "{file}");

    // A new REPL: Up, Up is SET FORMAT csv (the repeat was kept once).
    let mut r = p.repl(&["--format", "json"], &[]);
    r.keys("\x1b[A\x1b[A");
    r.expect("SET FORMAT csv");
    r.run("", PROMPT);
    r.run("SHOW SETTINGS", "format,csv");
    r.leave("EXIT");
}

/// Point 8: Ctrl-C during a running batch cancels it gracefully: it ends
/// CANCELLED with its completed entities recorded, its row prints, and the
/// REPL goes on with the next batch not cancelled.
#[test]
fn ctrl_c_during_a_batch_cancels_it_and_the_repl_goes_on() {
    let p = Place::new(0);
    let ids: Vec<String> = (1..=30).map(|k| k.to_string()).collect();
    let mut r = p.repl(&["--format", "json"], &[]);
    r.line(&format!(
        "BATCH Customer.({}) FABRIC_COMMAND=\"sleep 1000 ?\" WITH MAX_WORKERS_PER_NODE=2",
        ids.join(", ")
    ));
    let mut bid = String::new();
    eventually("two entities to complete", || {
        let list = p.json("BATCH_LIST STATUS='ALL'");
        let Some(id) = list[0]["id"].as_str() else {
            return false;
        };
        bid = id.to_string();
        cluster(&p, &bid)["succeeded"].as_i64().unwrap_or(0) >= 2
    });
    r.ctrl('c');
    r.expect("stopping once the entities in flight finish");
    let row = r.expect("\"batch_id\"");
    r.expect(PROMPT);
    assert!(!row.contains("second Ctrl-C"), "{row}");
    let batch = only_batch(&p);
    assert_eq!(batch["status"], "CANCELLED", "{batch}");
    let c = cluster(&p, &bid);
    let done = c["succeeded"].as_i64().unwrap();
    assert!((2..30).contains(&done), "{c}");
    assert_eq!(c["total"], 30);
    let completed = p.json(&format!("BATCH_DETAILS '{bid}' STATUS='COMPLETED'"));
    assert_eq!(completed.as_array().unwrap().len() as i64, done);
    // The same session: the bid-less summary is that batch's, and a new
    // batch is not cancelled by the Ctrl-C that is past.
    let summary = r.run("BATCH_SUMMARY", PROMPT);
    assert!(summary.contains("\"CANCELLED\""), "{summary}");
    r.run(
        "BATCH Customer.(a, b) FABRIC_COMMAND='echo ?'",
        "\"execution_succeeded\":2",
    );
    r.leave("EXIT");
}

/// Point 8: a second Ctrl-C stops batchsh at once (exit 130); the batch is
/// left as after a crash, and BATCH_RETRY in another process finishes it.
#[test]
fn a_second_ctrl_c_stops_at_once_and_retry_finishes_the_batch() {
    let p = Place::new(0);
    let mut r = p.repl(&["--format", "json"], &[]);
    // Entities long enough that the two presses come while the first two
    // still run.
    r.line("BATCH Customer.(1, 2, 3, 4) FABRIC_COMMAND='sleep 3000 ?' WITH MAX_WORKERS_PER_NODE=2");
    eventually("the batch to run", || {
        p.json("BATCH_LIST")
            .as_array()
            .is_some_and(|rows| rows.len() == 1 && rows[0]["status"] == "IN_PROGRESS")
    });
    r.ctrl('c');
    r.expect("Ctrl-C again stops at once");
    let batch = only_batch(&p);
    let bid = batch["id"].as_str().unwrap().to_string();
    r.ctrl('c');
    r.expect("second Ctrl-C, stopping at once");
    // It names the batch it leaves, and how to finish it.
    r.expect(&format!(
        "batch {bid} is left unfinished, as after a crash; BATCH_RETRY '{bid}' finishes it"
    ));
    assert_eq!(r.exit_code(), 130);
    // No process runs it any more (SPEC §6).
    assert_eq!(only_batch(&p)["status"], "INTERRUPTED");
    p.test(&format!("BATCH_RETRY '{bid}'")).status(0).run();
    assert_eq!(only_batch(&p)["status"], "DONE");
    assert_eq!(cluster(&p, &bid)["succeeded"], 4);
}

/// Point 5: keywords and strings are coloured as they are typed, unless
/// NO_COLOR is set; a terminal that cannot (TERM=dumb) gets plain lines.
#[test]
fn highlighting_follows_the_colour_gate() {
    let p = Place::new(1);
    // Colour on: typed text is painted as it is typed (Enter, never
    // Ctrl-C, ends each line here: Ctrl-C drops keys typed ahead).
    let mut r = p.repl(&[], &[("NO_COLOR", None)]);
    r.keys("SHOW LUS");
    r.expect("\x1b[1;36mSHOW\x1b[0m \x1b[1;36mLUS\x1b[0m");
    r.run("", "| Customer");
    r.keys("GET Customer.'1'");
    r.expect("\x1b[1;36mGET\x1b[0m Customer.\x1b[32m'1'\x1b[0m");
    r.run("", PROMPT);
    r.leave("EXIT");

    let mut r = p.repl(&[], &[]);
    let typed = r.run("SHOW LUS", "| Customer");
    assert!(!typed.contains("\x1b[1;36m"), "{typed:?}");
    r.leave("EXIT");

    let mut r = p.repl(&[], &[("NO_COLOR", None), ("TERM", Some("dumb"))]);
    let typed = r.run("SHOW LUS", "| Customer");
    assert!(!typed.contains("\x1b[1;36m"), "{typed:?}");
    r.leave("EXIT");
}

/// Paths complete inside PATH '...', relative to the working directory.
#[test]
fn tab_completes_file_paths_after_path() {
    let p = Place::new(1);
    let mut r = p.repl(&[], &[]);
    r.keys("CREATE INTERFACE crm2 TYPE SQLITE PATH 'cr\t");
    r.expect("crm.db");
    r.run("'", "interface crm2 created (SQLITE");
    r.leave("EXIT");
}

/// Point 8 on a terminal the line editor cannot drive (TERM=dumb: lines
/// are read in the terminal's normal mode, so Ctrl-C at the prompt is a
/// signal, not a key): it drops the input and shows a fresh prompt, and
/// never ends batchsh, however often it comes.
#[test]
fn ctrl_c_at_a_plain_prompt_drops_the_input() {
    let p = Place::new(1);
    let mut r = p.repl(&[], &[("TERM", Some("dumb"))]);
    r.line("BATCH Customer.(1,");
    r.expect(CONTINUATION);
    r.keys("2");
    r.ctrl('c');
    r.expect(PROMPT);
    let shown = r.run("SHOW LUS", "| Customer");
    assert!(!shown.contains("error"), "{shown}");
    for _ in 0..3 {
        r.ctrl('c');
        r.expect(PROMPT);
    }
    let shown = r.run("SHOW LUS", "| Customer");
    assert!(!shown.contains("stopping"), "{shown}");
    r.leave("EXIT");
}

/// An old store is upgraded when the REPL starts, with the notice before
/// the first prompt (not silently at the first Tab); `--quiet` drops it.
#[test]
fn the_repl_upgrades_an_old_store_at_start_and_says_so() {
    for quiet in [false, true] {
        let p = Place {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(p.home()).unwrap();
        rusqlite::Connection::open(p.home().join("store.db"))
            .unwrap()
            .execute_batch(include_str!("fixtures/store_v1.sql"))
            .unwrap();
        let args: &[&str] = if quiet { &["--quiet"] } else { &[] };
        let mut r = p.repl(args, &[]);
        let notice = "upgrading the store from version 1 to";
        assert_eq!(r.greeting.contains(notice), !quiet, "{}", r.greeting);
        r.run("SHOW INTERFACES", "crm");
        r.leave("EXIT");
    }
}

/// SHOW_OUTPUT in the REPL, on a terminal with the progress bar drawn:
/// each entity's line comes tagged, in its order (one worker), before
/// the result row, and the REPL goes on.
#[test]
fn show_output_prints_tagged_lines_above_the_progress_bar() {
    let p = Place::new(2);
    let mut r = p.repl(&[], &[]);
    r.line(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo out-?'\" \
         WITH SHOW_OUTPUT=true MAX_WORKERS_PER_NODE=1;",
    );
    r.expect("1\tout-1");
    r.expect("2\tout-2");
    r.expect("| Batch id ");
    r.expect(PROMPT);
    r.run("BATCH_OUTPUT", "out-2");
    r.leave("EXIT");
}

/// `SET TIMING on` in the REPL: each statement's result, then its time
/// (psql's `\timing`); `SET EXPANDED on` prints records; `\x` says what to
/// type instead.
#[test]
fn the_repl_times_statements_and_expands_tables() {
    let p = Place::new(2);
    let mut r = p.repl(&[], &[]);
    r.run("SET TIMING on", PROMPT);
    let before = r.run("SHOW LUS", "Time: ");
    assert!(before.contains("| Customer"), "{before:?}");
    r.run("SET EXPANDED on", PROMPT);
    r.run("SHOW LUS", "-[ RECORD 1 ]");
    r.run("\\x", "SET EXPANDED on");
    r.leave("EXIT");
}
