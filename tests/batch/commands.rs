//! What runs per entity: shell, exec, sql and sync commands, ON_DONE, and
//! ENTITY_TIMEOUT.

use crate::world::{World, result_row};
use std::time::{Duration, Instant};

/// A window variable in an `exec` argument has a value only in a named
/// batch: without NAME it is refused before anything is stored (it would
/// fail every entity); `:bid` works in any batch.
#[test]
fn window_variables_in_exec_are_refused_without_a_name() {
    let w = World::new(2);
    w.test("BATCH Customer FABRIC_COMMAND=\"exec 'echo' ? :from_date\"")
        .status(1)
        .stderr_starts_with(
            "error: :from_date is a window variable, set only for a named batch (WITH NAME='...'): \
             add NAME to make the batch a run of a series; :bid (the batch's id) is the named \
             parameter every batch has",
        )
        .run();
    assert_eq!(w.batch_count(), 0);
    w.test("BATCH Customer FABRIC_COMMAND=\"exec 'echo' ? :bid\"")
        .status(0)
        .run();
}

/// `exec 'echo' ? '{}'` runs, the `{}` passed as is: the statement warns
/// once (not once per entity) that `?` is the id.
#[test]
fn exec_with_parallel_braces_beside_question_mark_warns_once() {
    let w = World::new(0);
    w.test(
        r#"BATCH Customer.('1', '2', '3')
             FABRIC_COMMAND=$$exec 'sh' '-c' 'echo "$0 $1" >> seen.txt' ? '{}'$$"#,
    )
    .status(0)
    .stderr(
        "warning: exec passes {} to the program as is; the entity id is ? (GNU parallel's {})\n",
    )
    .run();
    let seen = std::fs::read_to_string(w.path().join("seen.txt")).unwrap();
    let mut lines: Vec<&str> = seen.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, vec!["1 {}", "2 {}", "3 {}"]);
}

/// SPEC §5: a `shell` command may name the id as `$ENTITY_ID` (it is in
/// every command's environment) instead of `?`; a text with neither is
/// still refused, and stores nothing.
#[test]
fn shell_commands_may_use_entity_id_instead_of_question_mark() {
    let w = World::new(0);
    w.test(
        r#"BATCH Customer.('a b', 'c')
             FABRIC_COMMAND=$$shell 'printf ''%s|%s\n'' "$ENTITY_ID" "${ENTITY_ID}" >> seen.txt'$$"#,
    )
    .status(0)
    .run();
    let seen = std::fs::read_to_string(w.path().join("seen.txt")).unwrap();
    let mut lines: Vec<&str> = seen.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, vec!["a b|a b", "c|c"]);
    let batches = w.batch_count();
    w.test("BATCH Customer.('1') FABRIC_COMMAND=\"shell 'echo $ENTITY_IDS'\"")
        .status(1)
        .stderr_starts_with("error: the shell command has no ?")
        .run();
    assert_eq!(w.batch_count(), batches);
}

#[test]
fn hostile_ids_are_harmless_in_shell_commands() {
    let w = World::new(0);
    // One write per entity: workers append at once, and two writes (the id,
    // then the newline) could interleave.
    w.test(
        "BATCH Customer.('1; touch pwned', '$(touch pwned2)', '`touch pwned3`')
             FABRIC_COMMAND=\"shell 'printf ''%s\\n'' ? >> seen.txt'\"",
    )
    .status(0)
    .run();
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!w.path().join(f).exists(), "{f} was created");
    }
    let seen = std::fs::read_to_string(w.path().join("seen.txt")).unwrap();
    let mut lines: Vec<&str> = seen.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec!["$(touch pwned2)", "1; touch pwned", "`touch pwned3`"]
    );
}

#[test]
fn a_placeholder_in_shell_arithmetic_is_refused_before_anything_runs() {
    // bash (sh on some systems) evaluates a variable's value inside $(( ))
    // and runs the command substitution in an id such as a[$(touch x)].
    let w = World::new(0);
    for cmd in [
        "echo $((? + 1))",
        "(( ? > 1 )) && echo big",
        // Inside FABRIC_COMMAND="...", a " is written "".
        "echo \"\"$((? + 1))\"\"",
        "echo $[? + 1]",
    ] {
        w.test(&format!(
            "BATCH Customer.('a[$(touch pwned)]') FABRIC_COMMAND=\"shell '{cmd}'\""
        ))
        .status(1)
        .stderr_contains("a ? inside shell arithmetic")
        .run();
        assert!(!w.path().join("pwned").exists());
    }
    assert_eq!(w.batch_count(), 0, "a parse error stores nothing");
}

#[test]
fn on_done_runs_with_the_outcome_in_its_environment() {
    let w = World::new(4);
    w.test(
        "BATCH Customer FABRIC_COMMAND='echo ?'
         WITH ON_DONE='echo $STATUS $TOTAL $SUCCEEDED $FAILED > done.txt'",
    )
    .status(0)
    .run();
    assert_eq!(
        std::fs::read_to_string(w.path().join("done.txt")).unwrap(),
        "DONE 4 4 0\n"
    );
    // What the hook prints goes to stderr, so stdout stays one JSON
    // document per statement; a hook that fails is reported, and the
    // batch's outcome stands.
    let out = w
        .test("BATCH Customer FABRIC_COMMAND='echo ?' WITH ON_DONE='echo hook says hi; exit 7'")
        .status(0)
        .run();
    let row = result_row(&out.stdout);
    assert_eq!(row["total"], 4);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stderr.contains("hook says hi"), "{}", out.stderr);
    assert!(
        out.stderr.contains("ON_DONE of batch") && out.stderr.contains("exit status: 7"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_hanging_command_is_killed_by_entity_timeout() {
    let w = World::new(0);
    let out = w
        .test(
            "BATCH Customer.('1', '2') FABRIC_COMMAND=\"shell 'sleep 30; echo ?'\" WITH ENTITY_TIMEOUT='200ms'",
        )
        .status(3)
        .run();
    let bid = result_row(&out.stdout)["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let err: String = w
        .sqlite()
        .query_row(
            "SELECT error FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '1'",
            [&bid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(err, "timed out after 200ms");
}

#[test]
fn entity_timeout_stops_a_slow_sync_instance() {
    // Customer 1's table query counts to 10^9 (tens of seconds); the
    // others' are quick.
    let w = World::new(3);
    let slow = "(with recursive c(x) as (select 1 union all select x + 1 from c \
                where x < 1000000000) select count(*) from c)";
    w.test(&format!(
        "CREATE LU Slow FROM crm ROOT ('select id from customer') \
         TABLE customer ('select * from customer where id = ? and (id <> 1 or {slow} > 0)')"
    ))
    .status(0)
    .run();
    let t = Instant::now();
    let out = w
        .test("BATCH Slow FABRIC_COMMAND='sync_instance Slow.?' WITH ENTITY_TIMEOUT='300ms'")
        .status(3)
        .run();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let row = result_row(&out.stdout);
    assert_eq!(
        (&row["execution_failed"], &row["added"]),
        (&1.into(), &2.into())
    );
    let bid = row["batch_id"].as_str().unwrap();
    let err: String = w
        .sqlite()
        .query_row(
            "SELECT error FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '1'",
            [bid],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.starts_with("timed out after 300ms"), "{err}");
    let out = w.run("GET Slow.1");
    assert_ne!(out.code, 0, "the instance that timed out was not stored");
}

#[test]
fn sql_commands_write_to_their_interface_per_entity() {
    let w = World::new(30);
    let out = w
        .test(
            "BATCH Customer FABRIC_COMMAND=\"sql crm 'update customer set name = ''seen'' where id = ?'\"",
        )
        .status(0)
        .run();
    assert_eq!(result_row(&out.stdout)["execution_succeeded"], 30);
    let c = rusqlite::Connection::open(w.path().join("crm.db")).unwrap();
    let seen: i64 = c
        .query_row(
            "SELECT count(*) FROM customer WHERE name = 'seen'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seen, 30);
    let res: String = w
        .sqlite()
        .query_row(
            "SELECT result FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND entity_id = '7'",
            [w.last_bid()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(res, r#"{"rows":1}"#);
}

/// SPEC §5: a batch's `exec` runs in the folder where the batch was
/// created. A retry from another folder (as cron runs from `$HOME`) finds
/// `./export_one.sh` there, and the files it writes land there.
#[test]
fn a_retry_from_another_folder_runs_exec_where_the_batch_was_created() {
    let w = World::new(3);
    let jobs = w.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    // Written by another process, which has closed it before anything runs
    // it (a file still open for writing cannot be executed).
    let made = std::process::Command::new("sh")
        .current_dir(&jobs)
        .args([
            "-c",
            "printf '#!/bin/sh\\n[ \"$1\" != 2 ] || [ -e ready ] || exit 7\\n\
             echo \"$1\" > \"out-$1.txt\"\\n' > export_one.sh && chmod +x export_one.sh",
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let batch = "BATCH Customer FABRIC_COMMAND=\"exec './export_one.sh' ?\"";
    crate::common::Test::new()
        .current_dir(&jobs)
        .args(w.args(batch))
        .status(3)
        .run();
    let bid = w.last_bid();
    std::fs::write(jobs.join("ready"), "").unwrap();
    // From the world's folder, where no export_one.sh is.
    w.test(&format!("BATCH_RETRY '{bid}'")).status(0).run();
    for id in 1..=3 {
        assert!(jobs.join(format!("out-{id}.txt")).is_file(), "entity {id}");
    }
    assert!(!w.path().join("out-2.txt").exists());
}
