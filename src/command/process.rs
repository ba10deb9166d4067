//! `exec` and `shell`: start a process for one entity, capture its output,
//! enforce `ENTITY_TIMEOUT`, and turn how it ended into a result or an error.
//!
//! - The process gets its own process group (`process_group(0)`). On
//!   timeout the whole group is killed, so a `shell` pipeline or a script's
//!   children do not outlive the entity; and a Ctrl-C at the terminal, which
//!   goes to the foreground group, does not reach it: a cancelled batch lets
//!   in-flight entities finish (SPEC §6).
//! - The group is killed with `kill(2)` on the group (through `rustix`,
//!   which wraps it safely; the crate forbids unsafe code). The leader is
//!   also killed through [`Child::kill`] if it was not reaped yet.
//! - stdin is `/dev/null`: an entity's command must not read the terminal.
//! - stdout and stderr are read together by the worker's own thread (one
//!   `poll` loop, no thread started per entity), so a child filling either
//!   pipe never blocks; past `OUTPUT_LIMIT` (1 MiB by default) the bytes
//!   are read and dropped, and the result says `"truncated": true`.
//! - With [`Context::lines`] (`SHOW_OUTPUT`), each line is also told as
//!   soon as its newline is read, whole, whatever `OUTPUT_LIMIT` keeps
//!   ([`Tap`]).
//! - The command runs until its output pipes close, not only until the
//!   first process exits (as `$(...)` in a shell): a background process that
//!   keeps the pipes open keeps the entity running, and `ENTITY_TIMEOUT`
//!   covers that time too.

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wait_timeout::ChildExt;

use super::{CommandError, Context, process_json};
use crate::ast::Arg;
use crate::batch::{LineSink, Stream};

/// Each of stdout and stderr is cut at this many bytes unless
/// `OUTPUT_LIMIT` says otherwise (SPEC §4: `'1MB'`).
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// The process groups of the entity commands running now. Their groups
/// are their own (so a Ctrl-C at the terminal does not reach them), so
/// nothing kills them when batchsh ends: [`kill_running`] does, when
/// batchsh stops at once (a second Ctrl-C or SIGTERM).
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

pub(super) fn running() -> std::sync::MutexGuard<'static, Vec<u32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills the process groups of every entity command still running, so
/// that none outlives a batchsh that stops at once (and none runs on
/// beside a retry of its entity).
pub fn kill_running() {
    for &pgid in running().iter() {
        if let Some(pgid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
    }
    for &pid in hooks().iter() {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}

/// The hooks (`ON_DONE`) running now: processes in batchsh's own group
/// (so a Ctrl-C at the terminal reaches them, and they keep the terminal),
/// which [`kill_running`] kills one by one.
static HOOKS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn hooks() -> std::sync::MutexGuard<'static, Vec<u32>> {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `cmd` (a batch's `ON_DONE` hook) to its end, and returns how it
/// ended; [`kill_running`] kills it meanwhile: a stop at once must not
/// leave it running.
pub fn run_tracked(mut cmd: Command) -> std::io::Result<ExitStatus> {
    let mut child = cmd.spawn()?;
    let id = child.id();
    hooks().push(id);
    let status = child.wait();
    forget(&mut hooks(), id);
    status
}

/// Takes process `id` off a list of running ones.
pub(super) fn forget(list: &mut Vec<u32>, id: u32) {
    if let Some(k) = list.iter().position(|&p| p == id) {
        list.swap_remove(k);
    }
}

/// The absolute path of `program` found in `PATH`, for a batch to look it
/// up once instead of at every spawn (each spawn would otherwise try every
/// `PATH` folder before the right one, a failed `execve` each: on a `PATH` of
/// eight folders that is a sixth of the cost of spawning `true`). `None` for
/// a program named with a `/` (used as given), or not found (then each
/// spawn fails and says so, as without the lookup).
pub fn resolve(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return None;
    }
    which::which(program).ok().filter(|p| p.is_absolute())
}

/// A command for `program`, started from its path found by [`resolve`]
/// when there is one; `argv[0]` stays the name as written.
fn command(program: &str, ctx: &Context) -> Command {
    program_command(program, ctx.program_path)
}

/// [`command`] for a program whose path (if found) is `path`.
pub(super) fn program_command(program: &str, path: Option<&std::path::Path>) -> Command {
    match path {
        Some(path) => {
            let mut cmd = Command::new(path);
            cmd.arg0(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// `exec 'program' 'arg' ? :param ...`: the program with its argv, no shell.
pub fn exec(program: &str, args: &[Arg], ctx: &Context) -> Result<Value, CommandError> {
    let mut cmd = command(program, ctx);
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
    let mut cmd = command("sh", ctx);
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
    running().push(child.id());
    let mut running = Running {
        child,
        reaped: false,
    };
    let deadline = ctx.timeout.map(|t| (Instant::now() + t, t));

    // Both pipes are read to their end first (this thread, one poll loop),
    // then the process is reaped: what has closed its pipes has exited,
    // or is about to.
    let tap = |stream| {
        ctx.lines.map(|sink| Tap {
            sink,
            entity_id: ctx.entity_id,
            stream,
            pending: Vec::new(),
        })
    };
    let (stdout, stderr, truncated) = match read_both(
        Capture::new(
            running.child.stdout.take(),
            ctx.output_limit,
            tap(Stream::Stdout),
        ),
        Capture::new(
            running.child.stderr.take(),
            ctx.output_limit,
            tap(Stream::Stderr),
        ),
        deadline.map(|(at, _)| at),
    ) {
        Ok(out) => out,
        Err(ReadError::TimedOut) => {
            let limit = deadline.map_or(Duration::ZERO, |(_, l)| l);
            return Err(running.timed_out(limit));
        }
        Err(ReadError::Io(source)) => {
            return Err(CommandError::Io {
                what: "cannot read the command's output",
                source,
            });
        }
    };
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
    finish(status, stdout, stderr, truncated)
}

enum ReadError {
    TimedOut,
    Io(std::io::Error),
}

/// One output pipe being read: the text kept so far (at most `limit`
/// bytes; the rest is read and dropped), whether the limit cut it, and
/// where its lines go as they come, if anywhere.
struct Capture<'a, R> {
    pipe: Option<R>,
    kept: Vec<u8>,
    limit: usize,
    cut: bool,
    tap: Option<Tap<'a>>,
}

/// The lines of one stream of one entity, told to a [`LineSink`] as each
/// newline is read; the unfinished line waits in `pending` (at most
/// [`LineSink::LONGEST`] bytes: a longer one is told in pieces).
struct Tap<'a> {
    sink: &'a LineSink,
    entity_id: &'a str,
    stream: Stream,
    pending: Vec<u8>,
}

impl Tap<'_> {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.tell();
            } else {
                self.pending.push(b);
                if self.pending.len() >= LineSink::LONGEST {
                    self.tell();
                }
            }
        }
    }

    fn tell(&mut self) {
        let line = String::from_utf8_lossy(&self.pending);
        self.sink.line(self.entity_id, self.stream, &line);
        self.pending.clear();
    }

    /// The end of the stream: a last line with no newline is told too.
    fn end(&mut self) {
        if !self.pending.is_empty() {
            self.tell();
        }
    }
}

impl<'a, R: Read> Capture<'a, R> {
    fn new(pipe: Option<R>, limit: usize, tap: Option<Tap<'a>>) -> Capture<'a, R> {
        Capture {
            pipe,
            kept: Vec::new(),
            limit,
            cut: false,
            tap,
        }
    }

    /// Reads what is there; at the end of the stream, lets the pipe go.
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(());
        };
        match pipe.read(buf) {
            Ok(0) => {
                self.pipe = None;
                if let Some(tap) = &mut self.tap {
                    tap.end();
                }
            }
            Ok(n) => {
                let take = n.min(self.limit.saturating_sub(self.kept.len()));
                self.kept.extend_from_slice(&buf[..take]);
                self.cut |= take < n;
                if let Some(tap) = &mut self.tap {
                    tap.feed(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn text(mut self) -> String {
        if self.cut {
            drop_cut_char(&mut self.kept);
        }
        String::from_utf8_lossy(&self.kept).into_owned()
    }
}

/// Reads stdout and stderr to their ends together (a child filling one
/// pipe while we wait on the other never blocks), until `deadline`.
fn read_both(
    mut out: Capture<ChildStdout>,
    mut err: Capture<ChildStderr>,
    deadline: Option<Instant>,
) -> Result<(String, String, bool), ReadError> {
    let mut buf = [0u8; 16 * 1024];
    while out.pipe.is_some() || err.pipe.is_some() {
        let timeout = match deadline {
            None => None,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::TimedOut);
                }
                Some(Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                })
            }
        };
        let (out_ready, err_ready) = {
            let mut fds = Vec::with_capacity(2);
            if let Some(p) = &out.pipe {
                fds.push(PollFd::new(p, PollFlags::IN));
            }
            if let Some(p) = &err.pipe {
                fds.push(PollFd::new(p, PollFlags::IN));
            }
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ReadError::Io(e.into())),
            }
            // Readable, closed (HUP) or failed: a read tells which.
            let ready = |k: usize| fds.get(k).is_some_and(|f| !f.revents().is_empty());
            if out.pipe.is_some() {
                (ready(0), ready(1))
            } else {
                (false, ready(0))
            }
        };
        if out_ready {
            out.read_some(&mut buf).map_err(ReadError::Io)?;
        }
        if err_ready {
            err.read_some(&mut buf).map_err(ReadError::Io)?;
        }
    }
    let truncated = out.cut || err.cut;
    Ok((out.text(), err.text(), truncated))
}

fn finish(
    status: ExitStatus,
    stdout: String,
    stderr: String,
    truncated: bool,
) -> Result<Value, CommandError> {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(process_json(0, &stdout, &stderr, truncated)),
        (Some(code), _) => Err(CommandError::Exit {
            code,
            stdout,
            stderr,
            truncated,
        }),
        (None, Some(signal)) => Err(CommandError::Signal {
            signal,
            stdout,
            stderr,
            truncated,
        }),
        // Neither a code nor a signal does not happen on unix; -1 says "odd".
        (None, None) => Err(CommandError::Exit {
            code: -1,
            stdout,
            stderr,
            truncated,
        }),
    }
}

/// A started process. Dropping it before it was reaped (an error, a
/// timeout) kills its group, so no path leaves a process running.
struct Running {
    child: Child,
    reaped: bool,
}

impl Running {
    /// Kills the process group and returns the timeout error. The pipes are
    /// dropped unread: a process that left the group (`setsid`) may hold
    /// them, and the entity must not wait.
    fn timed_out(mut self, limit: Duration) -> CommandError {
        self.kill();
        CommandError::Timeout(limit)
    }

    fn kill(&mut self) {
        // The group is killed before the leader is reaped: while it is
        // unreaped its pid, which is the group id, cannot be reused. After
        // it was reaped, members still holding our pipes keep the id alive.
        if let Some(pgid) = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
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
        forget(&mut running(), self.child.id());
    }
}

/// Drops a UTF-8 sequence that the cap cut in two, so a cut output ends in
/// whole characters rather than a replacement character.
pub(super) fn drop_cut_char(b: &mut Vec<u8>) {
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
    use super::{LineSink, Stream, Tap, drop_cut_char};
    use std::sync::{Arc, Mutex};

    /// Lines are told at each newline, however the reads cut them; a
    /// line past the longest piece comes in pieces; the last one without
    /// a newline comes at the end of the stream.
    #[test]
    fn a_tap_tells_whole_lines_as_their_newlines_come() {
        type Told = Arc<Mutex<Vec<(String, Stream, String)>>>;
        let told: Told = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&told);
        let sink = LineSink(Arc::new(move |id, stream, line| {
            into.lock()
                .unwrap()
                .push((id.to_string(), stream, line.to_string()));
        }));
        let mut tap = Tap {
            sink: &sink,
            entity_id: "42",
            stream: Stream::Stderr,
            pending: Vec::new(),
        };
        let lines = |t: &Told| -> Vec<String> {
            t.lock()
                .unwrap()
                .iter()
                .map(|(_, _, l)| l.clone())
                .collect()
        };
        tap.feed(b"one\ntw");
        assert_eq!(lines(&told), ["one"]);
        tap.feed(b"o\n\nthr");
        assert_eq!(lines(&told), ["one", "two", ""]);
        tap.feed(b"ee");
        tap.end();
        assert_eq!(lines(&told), ["one", "two", "", "three"]);
        assert!(
            told.lock()
                .unwrap()
                .iter()
                .all(|(id, s, _)| id == "42" && *s == Stream::Stderr)
        );
        told.lock().unwrap().clear();
        tap.feed(&vec![b'x'; LineSink::LONGEST + 1]);
        tap.end();
        let sizes: Vec<usize> = lines(&told).iter().map(String::len).collect();
        assert_eq!(sizes, [LineSink::LONGEST, 1]);
    }

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
