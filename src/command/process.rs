//! `exec` and `shell`: start a process for one entity, capture its output,
//! enforce `ENTITY_TIMEOUT`, and turn how it ended into a result or an error.
//!
//! - The process gets its own process group (`process_group(0)`). On
//!   timeout the whole group is killed, so a `shell` pipeline or a script's
//!   children do not outlive the entity; and a Ctrl-C at the terminal, which
//!   goes to the foreground group, does not reach it: a cancelled batch lets
//!   in-flight entities finish (SPEC §6).
//! - The group is killed with the shell's `kill -s KILL -- -PGID`, because
//!   `kill(2)` on a group needs `libc` and unsafe code, which the crate
//!   forbids; `sh` is there wherever `shell` commands work at all. If that
//!   fails, the leader is still killed through [`Child::kill`].
//! - stdin is `/dev/null`: an entity's command must not read the terminal.
//! - stdout and stderr are read by one thread each, so a child filling both
//!   pipes never blocks; past 64 KiB the bytes are read and dropped.
//! - The command runs until its output pipes close, not only until the
//!   first process exits (as `$(...)` in a shell): a background process that
//!   keeps the pipes open keeps the entity running, and `ENTITY_TIMEOUT`
//!   covers that time too.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wait_timeout::ChildExt;

use super::{CommandError, Context, process_json};
use crate::ast::Arg;

/// Each of stdout and stderr is cut at this many bytes (SPEC §5).
pub const OUTPUT_CAP: usize = 64 * 1024;

/// `exec 'program' 'arg' ? :param ...`: the program with its argv, no shell.
pub fn exec(program: &str, args: &[Arg], ctx: &Context) -> Result<Value, CommandError> {
    let mut cmd = Command::new(program);
    for a in args {
        match a {
            Arg::Literal(s) => cmd.arg(s),
            Arg::EntityId => cmd.arg(ctx.entity_id),
            Arg::Param(name) => cmd.arg(ctx.param(name)?),
        };
    }
    run(cmd, program, ctx)
}

/// `shell 'text with ?'`: `sh -c` on the text with each `?` rewritten.
pub fn shell(script: &str, ctx: &Context) -> Result<Value, CommandError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(super::shell::rewrite(script));
    run(cmd, "sh", ctx)
}

fn run(mut cmd: Command, program: &str, ctx: &Context) -> Result<Value, CommandError> {
    // Checked here, because spawn would report it as the program's fault.
    if ctx.entity_id.contains('\0') {
        return Err(CommandError::NulInId);
    }
    for (k, v) in ctx.window {
        cmd.env(k, v);
    }
    // After the window, so a window variable cannot shadow these.
    cmd.env("ENTITY_ID", ctx.entity_id)
        .env("BID", ctx.bid)
        .env("LU", ctx.lu)
        .env("NODE", ctx.node)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = ctx.cwd {
        cmd.current_dir(dir);
    }
    let child = cmd.spawn().map_err(|source| CommandError::Spawn {
        program: program.to_string(),
        source,
    })?;
    let mut running = Running {
        child,
        reaped: false,
    };
    let deadline = ctx.timeout.map(|t| (Instant::now() + t, t));

    let (tx, rx) = mpsc::channel();
    for (stream, pipe) in [
        (Stream::Out, running.child.stdout.take().map(box_read)),
        (Stream::Err, running.child.stderr.take().map(box_read)),
    ] {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("command-{stream:?}"))
            .spawn(move || {
                let bytes = pipe.map(capture).unwrap_or_default();
                // The receiver is gone only after a timeout: nobody wants it.
                let _ = tx.send((stream, bytes));
            })
            .map_err(|source| CommandError::Io {
                what: "cannot start a thread to read the command's output",
                source,
            })?;
    }
    drop(tx);

    let status = match deadline {
        None => running.child.wait(),
        Some((at, limit)) => {
            match running
                .child
                .wait_timeout(at.saturating_duration_since(Instant::now()))
            {
                Ok(Some(status)) => Ok(status),
                Ok(None) => return Err(running.timed_out(limit)),
                Err(e) => Err(e),
            }
        }
    }
    .map_err(|source| CommandError::Io {
        what: "cannot wait for the command",
        source,
    })?;
    running.reaped = true;

    let (mut stdout, mut stderr) = (String::new(), String::new());
    for _ in 0..2 {
        let got = match deadline {
            None => rx.recv().ok(),
            Some((at, limit)) => {
                match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(got) => Some(got),
                    Err(mpsc::RecvTimeoutError::Timeout) => return Err(running.timed_out(limit)),
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        // None: a reader thread died; what it read is lost, the status stands.
        match got {
            Some((Stream::Out, b)) => stdout = b,
            Some((Stream::Err, b)) => stderr = b,
            None => break,
        }
    }
    finish(status, stdout, stderr)
}

fn box_read(r: impl Read + Send + 'static) -> Box<dyn Read + Send> {
    Box::new(r)
}

fn finish(status: ExitStatus, stdout: String, stderr: String) -> Result<Value, CommandError> {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(process_json(0, &stdout, &stderr)),
        (Some(code), _) => Err(CommandError::Exit {
            code,
            stdout,
            stderr,
        }),
        (None, Some(signal)) => Err(CommandError::Signal {
            signal,
            stdout,
            stderr,
        }),
        // Neither a code nor a signal does not happen on unix; -1 says "odd".
        (None, None) => Err(CommandError::Exit {
            code: -1,
            stdout,
            stderr,
        }),
    }
}

#[derive(Clone, Copy, Debug)]
enum Stream {
    Out,
    Err,
}

/// A started process. Dropping it before it was reaped (an error, a
/// timeout) kills its group, so no path leaves a process running.
struct Running {
    child: Child,
    reaped: bool,
}

impl Running {
    /// Kills the process group and returns the timeout error. The reader
    /// threads are left to end when the pipes close: a process that left
    /// the group (`setsid`) may hold them, and the entity must not wait.
    fn timed_out(mut self, limit: Duration) -> CommandError {
        self.kill();
        CommandError::Timeout(limit)
    }

    fn kill(&mut self) {
        // The group is killed before the leader is reaped: while it is
        // unreaped its pid, which is the group id, cannot be reused. After
        // it was reaped, members still holding our pipes keep the id alive.
        let pgid = self.child.id();
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -s KILL -- -{pgid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}

/// Reads `r` to the end, keeping the first [`OUTPUT_CAP`] bytes as text.
fn capture(mut r: Box<dyn Read + Send>) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut cut = false;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let take = n.min(OUTPUT_CAP - kept.len());
                kept.extend_from_slice(&buf[..take]);
                cut |= take < n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if cut {
        drop_cut_char(&mut kept);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Drops a UTF-8 sequence that the cap cut in two, so a cut output ends in
/// whole characters rather than a replacement character.
fn drop_cut_char(b: &mut Vec<u8>) {
    let from = b.len().saturating_sub(3);
    // The last byte that starts a character (ASCII or a lead byte).
    if let Some(start) = (from..b.len()).rev().find(|&i| b[i] & 0xC0 != 0x80)
        && let Err(e) = std::str::from_utf8(&b[start..])
        && e.error_len().is_none()
    {
        b.truncate(start);
    }
}

#[cfg(test)]
mod tests {
    use super::drop_cut_char;

    #[test]
    fn a_character_cut_by_the_cap_is_dropped_whole() {
        let mut b = "ab€".as_bytes().to_vec();
        b.pop();
        drop_cut_char(&mut b);
        assert_eq!(b, b"ab");
        let mut whole = "ab€".as_bytes().to_vec();
        drop_cut_char(&mut whole);
        assert_eq!(whole, "ab€".as_bytes());
        let mut invalid = vec![b'a', 0xFF];
        drop_cut_char(&mut invalid);
        assert_eq!(invalid, vec![b'a', 0xFF]);
    }
}
