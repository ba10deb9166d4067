//! REPL startup benchmark: how long `batchsh` takes to open the REPL on a
//! terminal, show its prompt, and leave on `EXIT`. The target is under
//! 50 ms from start to exit.
//!
//! Run it with `cargo bench --bench repl_startup` (release profile). It is a
//! plain program, not a test: it prints figures and asserts nothing about
//! speed. The figures go in BENCHMARKS.md.
//!
//! Each run gives batchsh a fresh pseudo-terminal as stdin, stdout and
//! stderr (so the REPL opens), waits for the prompt, types `EXIT` and Enter,
//! and waits for the process to end. The home folder holds a full history
//! (1,000 entries), as a long-used REPL has, and an existing store. For
//! comparison it times `batchsh -c EXIT` (no terminal, no line editor) the
//! same way. Knob: BENCH_RUNS (default 200).

use nix::pty::openpty;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_batchsh");
const PROMPT: &[u8] = b"batchsh> ";
const TARGET: Duration = Duration::from_millis(50);

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("command: cargo bench --bench repl_startup   ({runs} runs each, after 10 warm-ups)");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    let home = tempfile::tempdir().expect("temporary home");
    let mut history = String::from("#V2\n");
    for k in 0..1000 {
        history.push_str(&format!("BATCH_SUMMARY 'bid-{k}'\n"));
    }
    std::fs::write(home.path().join("history"), history).expect("history file");
    let status = Command::new(BIN)
        .args(["--home", home.path().to_str().expect("UTF-8 path")])
        .args(["-c", "SHOW INTERFACES"])
        .stdout(Stdio::null())
        .status()
        .expect("batchsh runs");
    assert!(status.success(), "the store could not be created");

    let mut prompt = Vec::new();
    let mut total = Vec::new();
    for k in 0..runs + 10 {
        let (p, t) = repl_once(home.path());
        if k >= 10 {
            prompt.push(p);
            total.push(t);
        }
    }
    let mut script = Vec::new();
    for k in 0..runs + 10 {
        let t = script_once(home.path());
        if k >= 10 {
            script.push(t);
        }
    }
    println!();
    println!(
        "{:<42} {:>9} {:>9} {:>9} {:>9}",
        "", "median", "p90", "min", "max"
    );
    row("REPL: start to first prompt", &mut prompt);
    let median = row("REPL: start, prompt, EXIT, exit", &mut total);
    row("batchsh -c EXIT (no terminal), for scale", &mut script);
    println!();
    println!(
        "REPL start to exit: median {:.1} ms, target under {} ms: {}",
        ms(median),
        TARGET.as_millis(),
        if median < TARGET { "met" } else { "NOT met" }
    );
}

/// One REPL on a new pseudo-terminal: the time to its first prompt, and
/// to its exit after EXIT.
fn repl_once(home: &std::path::Path) -> (Duration, Duration) {
    let pty = openpty(None, None).expect("a pseudo-terminal");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("pty slave"));
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(["--home", home.to_str().expect("UTF-8 path")])
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .expect("batchsh starts");
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(PROMPT.len()).any(|w| w == PROMPT) {
        match master.read(&mut buf) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            other => panic!(
                "no prompt ({other:?}); batchsh printed {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    let at_prompt = start.elapsed();
    master.write_all(b"EXIT\r").expect("type EXIT");
    // Read what is left, so batchsh never waits on a full terminal.
    while matches!(master.read(&mut buf), Ok(n) if n > 0) {}
    let status = child.wait().expect("batchsh ends");
    let total = start.elapsed();
    assert!(status.success(), "batchsh ended with {status}");
    (at_prompt, total)
}

fn script_once(home: &std::path::Path) -> Duration {
    let start = Instant::now();
    let status = Command::new(BIN)
        .args(["--home", home.to_str().expect("UTF-8 path")])
        .args(["-c", "EXIT"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("batchsh runs");
    assert!(status.success());
    start.elapsed()
}

/// Prints a row of figures; returns the median.
fn row(name: &str, times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let median = at(0.5);
    println!(
        "{name:<42} {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>6.1} ms",
        ms(median),
        ms(at(0.9)),
        ms(at(0.0)),
        ms(at(1.0))
    );
    median
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
