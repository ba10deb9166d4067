//! A pipe against real processes (`sh` scripts): answers in order, each
//! kind of bad answer, failures and restarts, and its end. None asserts
//! on wall-clock speed; a test that could hang on a bug has an
//! `ENTITY_TIMEOUT`.

use super::*;
use serde_json::json;

/// A pipe running `sh -c script` in `dir`, with `timeout`, writing `window`
/// ids ahead.
fn sh(script: &str, dir: &std::path::Path, timeout: Option<Duration>, window: usize) -> Pipe {
    let ctx = Context {
        bid: "b1",
        lu: "Lu",
        node: "n1",
        timeout,
        cwd: Some(dir),
        ..Context::for_entity("")
    };
    let args = ["-c".to_string(), script.to_string()];
    Pipe::new("sh", &args, &ctx, window, None)
}

fn ids(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|k| k.to_string()).collect()
}

fn ask(pipe: &mut Pipe, ids: &[String]) -> Vec<Result<Reply, PipeError>> {
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let answers = pipe.ask(&refs);
    assert_eq!(answers.len(), ids.len());
    for a in &answers {
        assert!(a.ended >= a.began);
    }
    answers.into_iter().map(|a| a.result).collect()
}

fn line(text: &str) -> Result<Reply, PipeError> {
    Ok(Reply::Line {
        text: text.into(),
        truncated: false,
    })
}

/// How many times the script started: each start appends a line to `starts`.
fn starts(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("starts"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

const COUNTED: &str = "echo x >> starts; ";

#[test]
fn answers_come_back_in_order_written_ahead_after_the_probation() {
    let d = tempfile::tempdir().unwrap();
    let mut p = sh(&format!("{COUNTED}exec cat"), d.path(), None, 64);
    let all = ids(1..=300);
    for chunk in all.chunks(100) {
        let got = ask(&mut p, chunk);
        let want: Vec<_> = chunk.iter().map(|id| line(id)).collect();
        assert_eq!(got, want);
    }
    assert_eq!(starts(d.path()), 1, "one process served every id");
}

#[test]
fn a_json_object_is_the_result_and_error_fails_the_entity() {
    let d = tempfile::tempdir().unwrap();
    let script = r#"while read -r id; do case $id in
        obj) echo '{"a": 1, "Added": 1}' ;;
        err) echo '{"error": "no such customer", "code": 4}' ;;
        num) echo '{"error": {"code": 7}}' ;;
        nul) echo '{"error": null, "ok": true}' ;;
        arr) echo '[1, 2]' ;;
        crlf) printf 'x\r\n' ;;
        bad) echo '{"a": ' ;;
        *) echo "$id" ;;
    esac; done"#;
    let mut p = sh(script, d.path(), None, 64);
    let got = ask(
        &mut p,
        &["obj", "err", "num", "nul", "arr", "crlf", "bad", "42", ""].map(String::from),
    );
    assert_eq!(got[0], Ok(Reply::Object(json!({"a": 1, "Added": 1}))));
    let e = got[1].clone().unwrap_err();
    assert_eq!(e.to_string(), "no such customer");
    assert_eq!(
        e.result(),
        Some(json!({"error": "no such customer", "code": 4}))
    );
    assert_eq!(got[2].clone().unwrap_err().to_string(), r#"{"code":7}"#);
    assert_eq!(
        got[3],
        Ok(Reply::Object(json!({"error": null, "ok": true})))
    );
    assert_eq!(got[4], line("[1, 2]"));
    assert_eq!(got[5], line("x"));
    assert_eq!(got[6], line(r#"{"a": "#));
    assert_eq!(got[7], line("42"));
    assert_eq!(got[8], line(""));
    assert_eq!(
        Reply::Line {
            text: "a\"b".into(),
            truncated: true
        }
        .json_text(),
        r#"{"line":"a\"b","truncated":true}"#
    );
}

#[test]
fn output_limit_cuts_a_long_line_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let ctx = Context {
        output_limit: 10,
        cwd: Some(d.path()),
        ..Context::for_entity("")
    };
    let script =
        r#"while read -r id; do head -c 100000 /dev/zero | tr '\0' x; echo; echo "$id"; done"#;
    // Two lines per id would be out of step: this one writes the long
    // line, then the id is the next id's answer... so ask one id a time.
    let args = [
        "-c".to_string(),
        script.replace("echo; echo \"$id\"", "echo"),
    ];
    let mut p = Pipe::new("sh", &args, &ctx, 1, None);
    let got = ask(&mut p, &ids(1..=2));
    for g in got {
        assert_eq!(
            g,
            Ok(Reply::Line {
                text: "xxxxxxxxxx".into(),
                truncated: true
            })
        );
    }
}

#[test]
fn two_lines_for_one_id_are_out_of_step_and_restart_the_process() {
    let d = tempfile::tempdir().unwrap();
    let script = format!(
        r#"{COUNTED}while read -r id; do if [ "$id" = 2 ]; then printf 'a%s\nb%s\n' "$id" "$id"; else echo "$id"; fi; done"#
    );
    let mut p = sh(&script, d.path(), None, 64);
    let got = ask(&mut p, &ids(1..=4));
    assert_eq!(got[0], line("1"));
    assert_eq!(got[1], Err(PipeError::OutOfStep { answers: 1 }));
    assert_eq!(got[2], line("3"));
    assert_eq!(got[3], line("4"));
    assert_eq!(starts(d.path()), 2);
    assert!(
        got[1]
            .clone()
            .unwrap_err()
            .to_string()
            .starts_with("the pipe program wrote more than one line for this id (out of step)")
    );
}

#[test]
fn a_process_that_ends_fails_its_entity_and_the_ids_after_it_go_to_a_new_one() {
    let d = tempfile::tempdir().unwrap();
    // Past the probation, ids are written ahead: 20 and 21 were written to
    // the process that died on 19, and are answered by the next one.
    let script = format!(
        r#"{COUNTED}while read -r id; do if [ "$id" = 19 ] && [ ! -e died ]; then touch died; echo "dying on $id" >&2; printf 'half'; exit 5; fi; echo "$id"; done"#
    );
    let mut p = sh(&script, d.path(), None, 64);
    let got = ask(&mut p, &ids(1..=16));
    assert!(got.iter().all(Result::is_ok));
    let got = ask(&mut p, &ids(17..=21));
    assert_eq!(got[0], line("17"));
    assert_eq!(got[1], line("18"));
    let e = got[2].clone().unwrap_err();
    assert_eq!(
        e.to_string(),
        "the pipe program ended (exit code 5) before answering, after writing 4 bytes with no \
         newline: dying on 19"
    );
    assert_eq!(
        e.result(),
        Some(json!({"exit": 5, "stdout": "half", "stderr": "dying on 19\n"}))
    );
    assert_eq!(&got[3..], &[line("20"), line("21")]);
    assert_eq!(starts(d.path()), 2);
}

#[test]
fn a_program_that_fails_at_start_up_rests_and_its_entities_fail_at_once() {
    let d = tempfile::tempdir().unwrap();
    let script = format!("{COUNTED}echo 'SyntaxError: invalid syntax' >&2; exit 1");
    let mut p = sh(&script, d.path(), None, 64);
    let got = ask(&mut p, &ids(1..=50));
    let first = got[0].clone().unwrap_err();
    assert_eq!(
        first.to_string(),
        "the pipe program ended at start-up, before reading an id (exit code 1): SyntaxError: \
         invalid syntax; not started again for 1s (its entities fail meanwhile)"
    );
    assert_eq!(
        first.result(),
        Some(json!({"stderr": "SyntaxError: invalid syntax\n"}))
    );
    for g in &got {
        assert_eq!(g.as_ref().unwrap_err(), &first);
    }
    assert_eq!(starts(d.path()), 1, "no start while it rests");
}

#[test]
fn a_program_that_cannot_be_started_rests_too() {
    let d = tempfile::tempdir().unwrap();
    let ctx = Context {
        cwd: Some(d.path()),
        ..Context::for_entity("")
    };
    let mut p = Pipe::new("batchsh-no-such-program", &[], &ctx, 64, None);
    let got = ask(&mut p, &ids(1..=3));
    for g in got {
        assert_eq!(
            g.unwrap_err().to_string(),
            "cannot run 'batchsh-no-such-program': No such file or directory (os error 2); not \
             started again for 1s (its entities fail meanwhile)"
        );
    }
}

#[test]
fn an_entity_past_its_timeout_fails_and_the_next_gets_a_new_process() {
    let d = tempfile::tempdir().unwrap();
    let script = format!(
        r#"{COUNTED}while read -r id; do if [ "$id" = 2 ]; then echo "stuck on $id" >&2; sleep 60; fi; echo "$id"; done"#
    );
    let mut p = sh(&script, d.path(), Some(Duration::from_millis(300)), 64);
    let got = ask(&mut p, &ids(1..=3));
    assert_eq!(got[0], line("1"));
    let e = got[1].clone().unwrap_err();
    assert_eq!(e.to_string(), "timed out after 300ms");
    assert_eq!(e.result(), Some(json!({"stderr": "stuck on 2\n"})));
    assert_eq!(got[2], line("3"));
    assert_eq!(starts(d.path()), 2);
}

#[test]
fn an_id_with_a_line_break_fails_alone() {
    let d = tempfile::tempdir().unwrap();
    let mut p = sh("exec cat", d.path(), None, 64);
    let got = ask(&mut p, &["a", "b\nc", "d\re", "f"].map(String::from));
    assert_eq!(got[0], line("a"));
    assert_eq!(got[1], Err(PipeError::LineBreak));
    assert_eq!(got[2], Err(PipeError::LineBreak));
    assert_eq!(got[3], line("f"));
}

#[test]
fn an_answer_that_is_not_utf8_fails_its_entity_only() {
    let d = tempfile::tempdir().unwrap();
    let script = format!(r#"{COUNTED}while read -r id; do printf 'caf\351 %s\n' "$id"; done"#);
    let mut p = sh(&script, d.path(), None, 64);
    let got = ask(&mut p, &ids(1..=2));
    let e = got[0].clone().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the pipe program's answer is not valid UTF-8 (byte 3)")
    );
    assert_eq!(e.result(), Some(json!({"line": "caf\u{FFFD} 1"})));
    assert!(got[1].is_err());
    assert_eq!(starts(d.path()), 1, "still in step: not restarted");
}

/// A program that writes much to stderr never blocks on it: a thread
/// reads it all the time; the errors keep its tail.
#[test]
fn stderr_is_drained_and_its_tail_kept() {
    let d = tempfile::tempdir().unwrap();
    let script = r#"while read -r id; do
        if [ "$id" = 6 ]; then echo last words >&2; exit 2; fi
        head -c 300000 /dev/zero | tr '\0' e >&2; echo "$id"; done"#;
    let mut p = sh(script, d.path(), Some(Duration::from_secs(60)), 64);
    let got = ask(&mut p, &ids(1..=6));
    assert_eq!(
        &got[..5],
        &ids(1..=5).iter().map(|i| line(i)).collect::<Vec<_>>()[..]
    );
    let Err(PipeError::Ended { stderr, .. }) = &got[5] else {
        panic!("{:?}", got[5]);
    };
    assert_eq!(stderr.len(), STDERR_TAIL);
    assert!(
        stderr.ends_with("eeelast words\n"),
        "{}",
        &stderr[stderr.len() - 30..]
    );
}

#[test]
fn the_environment_is_the_batchs_without_entity_id_and_the_folder_its_own() {
    let d = tempfile::tempdir().unwrap();
    let script = r#"while read -r id; do echo "$BID $LU $NODE ${ENTITY_ID-unset} $(basename "$PWD") $id"; done"#;
    let mut p = sh(script, d.path(), None, 64);
    let got = ask(&mut p, &ids(1..=1));
    let folder = d.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(got[0], line(&format!("b1 Lu n1 unset {folder} 1")));
}

/// Its end closes its stdin: a program that then leaves is reaped; one
/// that stays is killed with its group after the grace.
#[test]
fn the_end_closes_stdin_and_kills_what_stays() {
    let d = tempfile::tempdir().unwrap();
    let group = Arc::new(Pipes::default());
    let ctx = Context {
        cwd: Some(d.path()),
        ..Context::for_entity("")
    };
    let script = r#"while read -r id; do echo "$id"; done; echo left > left; sleep 600 & echo $! > child; wait"#;
    let args = ["-c".to_string(), script.to_string()];
    let mut p = Pipe::new("sh", &args, &ctx, 64, Some(Arc::clone(&group)));
    assert_eq!(ask(&mut p, &ids(1..=1)), vec![line("1")]);
    assert_eq!(group.lock().len(), 1);
    let t = Instant::now();
    drop(p);
    assert!(t.elapsed() >= END_GRACE, "{:?}", t.elapsed());
    assert!(d.path().join("left").exists(), "stdin was closed first");
    let child: i32 = std::fs::read_to_string(d.path().join("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(gone(child), "the program's child was killed with its group");
    assert!(group.lock().is_empty());
}

/// Whether process `pid` has ended (a zombie that nobody reaps counts).
fn gone(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        let ended = match &stat {
            Err(_) => true,
            Ok(s) => s
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z')),
        };
        if ended {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The run's end kills a process whose thread cannot end it (it waits on
/// an answer that does not come, with no `ENTITY_TIMEOUT`).
#[test]
fn end_all_kills_the_processes_left() {
    let d = tempfile::tempdir().unwrap();
    let group = Arc::new(Pipes::default());
    let ctx = Context {
        cwd: Some(d.path()),
        ..Context::for_entity("")
    };
    let args = [
        "-c".to_string(),
        "read -r id; echo $$ > pid; sleep 600".to_string(),
    ];
    let mut p = Pipe::new("sh", &args, &ctx, 64, Some(Arc::clone(&group)));
    let asking = std::thread::spawn(move || ask(&mut p, &ids(1..=1)));
    let pid_file = d.path().join("pid");
    let until = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() || group.lock().is_empty() {
        assert!(Instant::now() < until);
        std::thread::sleep(Duration::from_millis(10));
    }
    group.end_all(Duration::from_millis(100));
    let got = asking.join().unwrap();
    assert!(
        matches!(&got[0], Err(PipeError::Ended { status, .. }) if status == "killed by signal 9"),
        "{got:?}"
    );
}

#[test]
fn once_asks_one_id_of_a_process_of_its_own() {
    let d = tempfile::tempdir().unwrap();
    let ctx = Context {
        cwd: Some(d.path()),
        ..Context::for_entity("7")
    };
    let args = [
        "-c".to_string(),
        r#"read -r id; echo "{\"id\": \"$id\"}""#.to_string(),
    ];
    assert_eq!(once("sh", &args, &ctx), Ok(json!({"id": "7"})));
}
