//! Signals to a running batchsh: Ctrl-C, SIGTERM, SIGHUP, a closed terminal,
//! `timeout`, and a second signal.

use crate::world::{World, assert_none_lost_none_rerun, eventually, result_row, signal};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// SPEC §1, §12: Ctrl-C during a synchronous batch in -c mode cancels it
/// gracefully (entities in flight finish), prints its row, exits 130.
#[test]
fn ctrl_c_cancels_gracefully_and_exits_130() {
    let w = World::new(200);
    // The statement after the batch must not run: Ctrl-C stops the script.
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND='sleep 50 ?' WITH MAX_WORKERS_PER_NODE=2;
         BATCH Customer.('after') FABRIC_COMMAND='echo ?';",
    );
    w.wait_until_running();
    eventually("a few entities to complete", || {
        w.query_i64(
            "SELECT completed FROM batches WHERE bid = ?1",
            &w.last_bid(),
        ) >= 2
    });
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bid = w.last_bid();
    assert_eq!(w.status(&bid), "CANCELLED");
    // The summary row was printed, and it says what was done.
    let row = result_row(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(row["batch_id"], bid.as_str());
    let completed = w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid);
    assert!(completed >= 2);
    assert_eq!(row["execution_succeeded"], completed);
    w.assert_counters_add_up(&bid);
    assert_eq!(w.batch_count(), 1, "the script went on after Ctrl-C");
    // Stderr says what the exit code means, and what did not run.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: batch {bid} ended CANCELLED, {completed} of 200 entities done; \
             BATCH_RETRY '{bid}' ALLOW_CANCELLED=true finishes it"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: the 1 statement after it did not run\n"),
        "{stderr}"
    );
}

/// SIGTERM (`timeout`, a shutdown) stops the batch cleanly and leaves it
/// unfinished, not cancelled: the running entities finish and are
/// committed, none is claimed, the batch has no owner, the script stops,
/// and batchsh exits 143. A plain BATCH_RETRY then finishes it, and no
/// entity ran twice: none was lost in flight, unlike after a kill -9.
#[test]
fn sigterm_leaves_the_batch_unfinished_for_retry_and_exits_143() {
    a_stop_signal_leaves_the_batch_unfinished("-TERM", "SIGTERM", 143);
}

/// SIGHUP (the terminal or SSH session of the run was closed) does what
/// SIGTERM does, and batchsh exits 129.
#[test]
fn sighup_leaves_the_batch_unfinished_for_retry_and_exits_129() {
    a_stop_signal_leaves_the_batch_unfinished("-HUP", "SIGHUP", 129);
}

fn a_stop_signal_leaves_the_batch_unfinished(sig: &str, name: &str, code: i32) {
    let w = World::new(200);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" WITH MAX_WORKERS_PER_NODE=2;
         BATCH Customer.('after') FABRIC_COMMAND='echo ?';",
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || {
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid) >= 20
    });
    signal(&child, sig);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("batchsh: {name}: batch {bid} stopped unfinished"))
            && stderr.contains(&format!("BATCH_RETRY '{bid}' finishes it")),
        "{stderr}"
    );
    let note: String = w
        .sqlite()
        .query_row(
            "SELECT note FROM batch_events WHERE bid = ?1 AND note LIKE 'stopped by%'",
            [&bid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(note, format!("stopped by {name}; BATCH_RETRY finishes it"));
    w.assert_left_unfinished(&bid);
    w.assert_counters_add_up(&bid);
    let completed = w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid);
    assert!(completed < 200, "the batch was not stopped");
    assert_eq!(w.batch_count(), 1, "the script went on after {name}");
    w.retry_to_done(&bid);
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 200, "an entity ran twice or never");
    assert_none_lost_none_rerun(&w, 200, &[]);
}

/// The terminal of an interactive run closed (an SSH session that
/// dropped): the kernel hangs the terminal up and sends SIGHUP. Writing to
/// that terminal now fails; batchsh still stops cleanly, as for SIGTERM:
/// exit 129, the batch unfinished with no owner and nothing in process,
/// and a retry runs every entity once.
#[test]
fn a_closed_terminal_stops_the_batch_cleanly() {
    use nix::fcntl::OFlag;
    let w = World::new(200);
    // Close-on-exec, so that no child (of this test or of another one
    // running beside it) holds the terminal open when the test closes it.
    let master =
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    let slave_path = nix::pty::ptsname_r(&master).unwrap();
    let slave = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&slave_path)
                .unwrap(),
        )
    };
    // `setsid -c`: batchsh leads a session of its own, with the terminal
    // as its controlling terminal, as a login shell's child would.
    // (`-w`: setsid waits for batchsh, should it have to fork to start
    // the session, and exits with its code.)
    let child = Command::new("setsid")
        .args(["-w", "-c"])
        .arg(env!("CARGO_BIN_EXE_batchsh"))
        .args(w.args(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.02'\" WITH MAX_WORKERS_PER_NODE=2",
        ))
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .stdin(slave())
        .stdout(slave())
        .stderr(slave())
        .spawn()
        .unwrap();
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("some entities to complete", || {
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid) >= 20
    });
    // The terminal goes away.
    drop(master);
    let out = crate::world::wait_or_kill(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(129));
    w.assert_left_unfinished(&bid);
    w.retry_to_done(&bid);
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 200, "an entity ran twice or never");
}

/// `timeout`, as in a crontab line: it sends SIGTERM to batchsh and then
/// to its own process group, two signals at once, which are one stop. The
/// entities running finish (they are in process groups of their own, so
/// the group signal does not cut them short), and a retry finishes the
/// batch with every entity run once.
#[test]
fn timeout_stops_the_batch_cleanly() {
    let w = World::new(300);
    let out = Command::new("timeout")
        .current_dir(w.path())
        .args(["1.5", env!("CARGO_BIN_EXE_batchsh")])
        .args(["--home", w.home().to_str().unwrap(), "--format", "json", "-c"])
        .arg(
            "BATCH Customer FABRIC_COMMAND=\"shell 'echo ? >> ran.txt; sleep 0.05; echo ? >> done.txt'\" \
             WITH MAX_WORKERS_PER_NODE=2",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(124),
        "timeout did not fire: {stderr}"
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    let bid = w.last_bid();
    let (in_process, failed, owner): (i64, i64, Option<i64>) = w
        .sqlite()
        .query_row(
            "SELECT in_process, failed, owner_pid FROM batches WHERE bid = ?1",
            [&bid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((in_process, failed, owner), (0, 0, None));
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    let done = std::fs::read_to_string(w.path().join("done.txt")).unwrap();
    assert_eq!(
        ran.lines().count(),
        done.lines().count(),
        "an entity was cut short"
    );
    w.retry_to_done(&bid);
    assert_none_lost_none_rerun(&w, 300, &[]);
    let ran = std::fs::read_to_string(w.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 300, "an entity ran twice");
}

/// A second SIGTERM well after the first does not wait for the running
/// entities: batchsh kills their commands and ends at once with 143, and
/// the batch is left as after a crash. No command outlives it (to run on
/// beside the retry of its entity).
#[test]
fn a_second_sigterm_ends_batchsh_at_once() {
    let w = World::new(10);
    // Slow until the file `fast` exists (the retry's entities are quick).
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND=\"shell 'echo $$ >> pids.txt; test -f fast || sleep 60 # ?'\" WITH MAX_WORKERS_PER_NODE=2",
    );
    w.wait_until_running();
    let bid = w.last_bid();
    eventually("commands at work", || {
        std::fs::read_to_string(w.path().join("pids.txt")).is_ok_and(|p| p.lines().count() >= 2)
    });
    let t = Instant::now();
    signal(&child, "-TERM");
    // Not within the 2 s that make one stop of `timeout`'s two signals.
    std::thread::sleep(Duration::from_millis(2500));
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "it waited for the entities"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "batchsh: SIGTERM, stopping at once: batch {bid} is left unfinished, as after a crash; \
             BATCH_RETRY '{bid}' finishes it, BATCH_CANCEL '{bid}' ends it"
        )),
        "{stderr}"
    );
    // The shells it started are gone (a zombie left to a parent that does
    // not reap counts as gone).
    let pids = std::fs::read_to_string(w.path().join("pids.txt")).unwrap();
    let gone = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    };
    let killed_by = Instant::now() + Duration::from_secs(3);
    while !pids.lines().all(gone) {
        assert!(Instant::now() < killed_by, "a command outlived batchsh");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(w.path().join("fast"), "").unwrap();
    w.retry_to_done(&bid);
}

/// A SIGTERM while a batch's ON_DONE hook runs ends batchsh at once (the
/// batch is over), kills the hook, and says the batch had ended.
#[test]
fn a_sigterm_during_on_done_stops_the_hook_and_says_the_batch_ended() {
    let w = World::new(3);
    let child = w.spawn(
        "BATCH Customer FABRIC_COMMAND='echo ?' WITH ON_DONE='echo $$ > hook.pid; exec sleep 60'",
    );
    let pid_file = w.path().join("hook.pid");
    eventually("the hook to run", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    let bid = w.last_bid();
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "batchsh: SIGTERM, stopping at once: batch {bid} had ended DONE; its ON_DONE hook was stopped"
        )),
        "{stderr}"
    );
    assert_eq!(w.status(&bid), "DONE");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let gone = || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    };
    eventually("the hook to be gone", gone);
}

/// On a terminal, the bar names the batch (its bid's first 8
/// characters), shows the percentage and the elapsed time, says PAUSED
/// while the batch is paused, and is drawn in ASCII when the locale is
/// not UTF-8.
#[test]
fn the_progress_bar_names_the_batch_and_says_paused() {
    let w = World::new(60);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_batchsh"));
    cmd.current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap()])
        .args([
            "-c",
            "BATCH Customer FABRIC_COMMAND='sleep 100 ?' WITH MAX_WORKERS_PER_NODE=2",
        ])
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_CTYPE")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let mut s = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    s.exp_string("%").unwrap();
    let bid = w.last_bid();
    w.test(&format!("BATCH_PAUSE '{bid}'")).status(0).run();
    let before = s.exp_string("PAUSED").unwrap();
    assert!(before.contains(&bid[..8]), "{before:?}");
    assert!(
        before.contains('#') || before.contains('-'),
        "ASCII bar: {before:?}"
    );
    assert!(
        !before.contains('█'),
        "no block glyphs in the C locale: {before:?}"
    );
    w.test(&format!("BATCH_RESUME '{bid}'")).status(0).run();
    s.exp_eof().unwrap();
    assert_eq!(w.status(&bid), "DONE");
}

/// The lines a terminal was sent, without their escape sequences (colour,
/// cursor moves, line clearing): what each redraw wrote between two
/// carriage returns or newlines.
fn drawn_lines(shown: &str) -> Vec<String> {
    let mut plain = String::with_capacity(shown.len());
    let mut chars = shown.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // CSI: ESC [ parameters, then a final byte in @..~.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            plain.push(ch);
        }
    }
    plain.split(['\r', '\n']).map(str::to_string).collect()
}

/// On an 80-column terminal, the progress bar fits the width: its bar
/// takes what the counts, times and message leave. A fixed 30-character
/// bar made the line 89 characters, and the terminal wrapped it on every
/// redraw.
#[test]
fn the_progress_bar_fits_an_80_column_terminal() {
    let w = World::new(60);
    let (code, shown) = crate::tables::on_terminal(
        &w,
        "BATCH Customer FABRIC_COMMAND='sleep 20 ?' WITH MAX_WORKERS_PER_NODE=2",
        (80, 24),
        &[("LANG", "C"), ("LC_ALL", ""), ("LC_CTYPE", "")],
    );
    assert_eq!(code, 0, "{shown}");
    let bid = w.last_bid();
    let lines = drawn_lines(&shown);
    let bars: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with(&bid[..8]) && l.contains("/60 "))
        .collect();
    assert!(!bars.is_empty(), "no bar drawn:\n{shown}");
    for line in &lines {
        assert!(
            line.chars().count() <= 80,
            "{} characters: {line:?}",
            line.chars().count()
        );
    }
    // The bar stretches to the width, not a fixed 30 characters.
    assert!(bars.iter().any(|l| l.chars().count() >= 75), "{bars:#?}");
}
