//! `pipe 'program' 'arg' ...` (SPEC §5): one long-running process per
//! entity thread, started when the thread first needs it. batchsh writes
//! each entity id and a newline to the process's stdin and reads exactly
//! one line back from its stdout: the entity's result. For per-entity
//! scripts whose start-up costs more than their work (Python, Node, a JVM).
//!
//! [`Pipe`] owns the process: it starts it (lazily), asks it about ids,
//! starts it again when it fails, and ends it. The executor holds one per
//! entity thread, so answers come back in the order the ids were written
//! and no lock is taken per entity. Decisions the spec leaves open:
//!
//! - **The answer.** A line that is a JSON object is the result as it is;
//!   with an `"error"` that is not `null` it fails the entity, the error
//!   being that text (or the value's JSON when it is not a string), the
//!   object kept as the entity's result. Any other line (a scalar, an array,
//!   plain text, an empty line) is `{"line":"..."}`. A trailing `\r` is
//!   dropped (CRLF). Past `OUTPUT_LIMIT` the line is cut, read on to its
//!   newline and dropped, and the result says `"truncated": true` (a cut
//!   line is never taken as JSON). A line that is not UTF-8 fails its
//!   entity (its text, made valid, kept as the result): the line is the
//!   result, and a silent replacement character would corrupt it.
//! - **Written ahead.** The ids of up to [`Pipe::window`] entities are
//!   written before their answers are read (the answers come back in
//!   order), so a fast program is not held up by one round trip per
//!   entity; a new process answers its first [`PROBATION`] ids one at a
//!   time first. Each entity's time runs from the answer before it (or
//!   from the write) to its own answer, and `ENTITY_TIMEOUT` counts from
//!   there.
//! - **A process that fails.** When it exits (or closes its stdout) before
//!   answering, or an entity passes `ENTITY_TIMEOUT`, the process group is
//!   killed; the entity it owed an answer fails (with the tail of its
//!   stderr), and the ids written after it are written again to a new
//!   process: the process read them, so their work may run twice (at least
//!   once, as after a crash).
//! - **A process that fails at start-up** (it ended without reading
//!   anything, or could not be started): its entity fails, and the program
//!   is not started again for a second, then 2, 4... up to 30 seconds (for
//!   this thread); the entities meanwhile fail at once with the same error.
//!   So a broken script fails a batch in moments, never in a spawning loop;
//!   an answer resets the pause.
//! - **Out of step.** A line nobody asked for (two lines for one id) cannot
//!   be told from the next id's answer. batchsh looks for one whenever
//!   every id written has its answer: a byte more then, and the answers
//!   read since the last such look fail ("out of step") and the process is
//!   started again; output that came while the process was not asked
//!   anything restarts it too (the answers taken before stand). On
//!   probation (one id at a time) a program that writes its two lines at
//!   once is caught on its first id. Later, an extra line written after
//!   batchsh looked may be taken as the next id's answer: one line per id
//!   is the program's contract.
//! - **An id with a line break** (`\n` or `\r`, which Python's text mode
//!   reads as one) cannot be one line: that entity fails, not sent.
//! - **Its environment** is `exec`'s (`BID`, `LU`, `NODE`, the window
//!   variables) without `ENTITY_ID`, which names no one entity here (one
//!   batchsh itself inherited is removed). Its working directory is the
//!   batch's; its stdin and stdout are batchsh's to use; its stderr is read
//!   all the time by a thread of its own (so the process never blocks on
//!   it) and only its last [`STDERR_TAIL`] bytes are kept, for the errors.
//! - **Its end.** When the batch ends (or is cancelled, or the thread
//!   leaves), its stdin is closed: a program that reads its stdin to its
//!   end leaves then. One still there after [`END_GRACE`] is killed, with
//!   its process group. A stop at once (a second Ctrl-C, SIGTERM at once)
//!   kills the groups at once ([`super::kill_running`]). After a kill -9 of
//!   batchsh, the program sees its stdin end (and a write to its stdout
//!   fail) as the only sign: one that reads its stdin leaves; one stuck
//!   elsewhere is left running, holding nothing of batchsh's (the store,
//!   a retry and new processes do not wait for it).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Map, Value, json};
use thiserror::Error;
use wait_timeout::ChildExt;

use super::Context;
use super::process::{drop_cut_char, forget, program_command, running};

/// Ids written ahead of the answers read, unless the knob says otherwise
/// (see [`Pipe::window`]).
pub const WINDOW: usize = 64;

/// A new process answers this many ids one at a time (written one by one,
/// each answer checked alone) before ids are written ahead to it.
pub const PROBATION: u64 = 16;

/// How long a program has to leave after its stdin closed (the batch
/// ended) before it is killed.
pub const END_GRACE: Duration = Duration::from_secs(2);

/// The bytes of a process's stderr kept for its errors (less when
/// `OUTPUT_LIMIT` is less).
pub const STDERR_TAIL: usize = 8 * 1024;

/// The pause after a failed start, doubled for each further one in a
/// row, up to [`REST_MAX`].
const REST_FIRST: Duration = Duration::from_secs(1);
const REST_MAX: Duration = Duration::from_secs(30);

/// How long the tail of a dead process's stderr is waited for (a process
/// that left the group may hold the pipe open).
const TAIL_WAIT: Duration = Duration::from_millis(200);

/// How long a process that closed its stdout is given to exit by itself,
/// so its own exit status is told.
const EXIT_WAIT: Duration = Duration::from_millis(100);

/// What a pipe's program answered for one id.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A JSON object, the result as it is.
    Object(Value),
    /// Any other line, the result being `{"line": text}`, with
    /// `"truncated": true` when `OUTPUT_LIMIT` cut it.
    Line { text: String, truncated: bool },
}

impl Reply {
    /// The result as JSON text (for a line, written directly: the fast
    /// path of a program such as `cat`).
    pub fn json_text(&self) -> String {
        match self {
            Reply::Object(v) => v.to_string(),
            Reply::Line { text, truncated } => {
                let text = serde_json::to_string(text).unwrap_or_default();
                if *truncated {
                    format!("{{\"line\":{text},\"truncated\":true}}")
                } else {
                    format!("{{\"line\":{text}}}")
                }
            }
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Reply::Object(v) => v,
            Reply::Line { text, truncated } => line_json(text, truncated),
        }
    }
}

fn line_json(text: String, truncated: bool) -> Value {
    let mut v = json!({ "line": text });
    if truncated {
        v["truncated"] = Value::Bool(true);
    }
    v
}

/// Why a pipe failed an entity. The message is the entity's error text.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PipeError {
    /// The program answered `{"error": ...}`.
    #[error("{text}")]
    Answered { text: String, object: Value },
    /// The process ended, or closed its stdout, before answering.
    #[error(
        "the pipe program ended ({status}) before answering{}{}",
        partial_note(.partial),
        last_line_hint(.stderr)
    )]
    Ended {
        status: String,
        /// Its exit code, or 128 + the signal that killed it.
        code: i32,
        /// What it wrote of an answer, with no newline.
        partial: String,
        stderr: String,
    },
    /// The process could not start, or ended at start-up: nothing was
    /// read. The same error fails this thread's entities until `rest`
    /// has passed.
    #[error(
        "{why}{}; not started again for {} (its entities fail meanwhile)",
        last_line_hint(.stderr),
        crate::ast::Duration(.rest.as_millis() as u64)
    )]
    StartUp {
        why: String,
        stderr: String,
        rest: Duration,
    },
    /// `ENTITY_TIMEOUT` passed; the process was killed.
    #[error("timed out after {}", crate::ast::Duration(.limit.as_millis() as u64))]
    TimedOut { limit: Duration, stderr: String },
    /// The process wrote more lines than it was sent ids.
    #[error("{}", out_of_step(*.answers))]
    OutOfStep { answers: usize },
    #[error(
        "the pipe program's answer is not valid UTF-8 (byte {at}): it must write UTF-8 text \
         (or JSON, whose \\u escapes hold any character)"
    )]
    NotUtf8 { at: usize, lossy: String },
    #[error(
        "the entity id holds a line break, which pipe cannot send as one line (exec passes \
         such an id as one argument)"
    )]
    LineBreak,
    #[error("cannot talk to the pipe program: {0}")]
    Io(String),
}

impl PipeError {
    /// The result JSON to record with the error.
    pub fn result(&self) -> Option<Value> {
        match self {
            PipeError::Answered { object, .. } => Some(object.clone()),
            PipeError::Ended {
                code,
                partial,
                stderr,
                ..
            } => Some(json!({"exit": code, "stdout": partial, "stderr": stderr})),
            PipeError::StartUp { stderr, .. } | PipeError::TimedOut { stderr, .. }
                if !stderr.is_empty() =>
            {
                Some(json!({ "stderr": stderr }))
            }
            PipeError::NotUtf8 { lossy, .. } => Some(json!({ "line": lossy })),
            _ => None,
        }
    }
}

fn out_of_step(answers: usize) -> String {
    if answers == 1 {
        "the pipe program wrote more than one line for this id (out of step): its answer \
         cannot be trusted, and the program is started again"
            .into()
    } else {
        format!(
            "the pipe program wrote more lines than the {answers} ids it was sent together \
             (out of step): their answers cannot be matched to them, and the program is \
             started again"
        )
    }
}

fn partial_note(partial: &str) -> String {
    if partial.is_empty() {
        String::new()
    } else {
        format!(", after writing {} bytes with no newline", partial.len())
    }
}

/// `: <last line of stderr>`: for a process, the last line says why it
/// ended (a Python traceback ends with the exception), not the first.
fn last_line_hint(stderr: &str) -> String {
    super::line_hint(stderr.lines().map(str::trim).rfind(|l| !l.is_empty()))
}

/// One entity's answer, and when its time began and ended.
#[derive(Debug)]
pub struct Answer {
    pub result: Result<Reply, PipeError>,
    pub began: Instant,
    pub ended: Instant,
}

/// The pipe processes of one run, so that the run's end can make sure
/// none outlives it: each [`Pipe`] ends its own, and [`Pipes::end_all`]
/// kills what is left.
#[derive(Debug, Default)]
pub struct Pipes {
    groups: Mutex<Vec<u32>>,
    gone: Condvar,
}

impl Pipes {
    fn add(&self, pgid: u32) {
        self.lock().push(pgid);
    }

    fn remove(&self, pgid: u32) {
        forget(&mut self.lock(), pgid);
        self.gone.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u32>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `within` for the pipes' threads to end their processes
    /// (closing their stdin, the graceful way), then kills the process
    /// groups still there: a thread stuck on a process that does not
    /// answer (no `ENTITY_TIMEOUT`) is freed by it.
    pub fn end_all(&self, within: Duration) {
        let (groups, _) = self
            .gone
            .wait_timeout_while(self.lock(), within, |groups| !groups.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        for &pgid in groups.iter() {
            kill_group(pgid);
        }
    }
}

fn kill_group(pgid: u32) {
    if let Some(pgid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pgid, Signal::KILL);
    }
}

/// A pipe: how to start its program, and the process when one runs.
pub struct Pipe {
    program: String,
    path: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    limit: usize,
    window: usize,
    group: Option<Arc<Pipes>>,
    live: Option<Live>,
    /// Failed starts in a row, and the error that fails entities until
    /// the program may be started again.
    failed_starts: u32,
    resting: Option<(Instant, PipeError)>,
}

impl Pipe {
    /// A pipe for `program` with `args`, taking from `ctx` what a process
    /// of the batch gets (its environment, working directory, program
    /// path) and the limits of its answers (`ENTITY_TIMEOUT`,
    /// `OUTPUT_LIMIT`); `ctx.entity_id` is not read. Nothing starts yet.
    /// `group`: the run's pipes, `None` for a pipe of its own.
    pub fn new(
        program: &str,
        args: &[String],
        ctx: &Context,
        window: usize,
        group: Option<Arc<Pipes>>,
    ) -> Pipe {
        let mut env: Vec<(String, String)> = ctx
            .window
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        // After the window, so a window variable cannot shadow these.
        for (k, v) in [("BID", ctx.bid), ("LU", ctx.lu), ("NODE", ctx.node)] {
            env.push((k.to_string(), v.to_string()));
        }
        Pipe {
            program: program.to_string(),
            path: ctx.program_path.map(PathBuf::from),
            args: args.to_vec(),
            env,
            cwd: ctx.cwd.map(PathBuf::from),
            timeout: ctx.timeout,
            limit: ctx.output_limit,
            window: window.max(1),
            group,
            live: None,
            failed_starts: 0,
            resting: None,
        }
    }

    /// How many ids the pipe's user should give [`Pipe::ask`] at once: the
    /// ids written before the first answer is read.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The answers for `ids`, in their order. All of them are written
    /// before the answers are read; a process that fails is started again
    /// for the ids after the one it failed (module doc).
    pub fn ask(&mut self, ids: &[&str]) -> Vec<Answer> {
        let mut out = Vec::with_capacity(ids.len());
        let mut k = 0;
        while k < ids.len() {
            let breaks = |id: &&str| id.contains(['\n', '\r']);
            if breaks(&ids[k]) {
                let now = Instant::now();
                out.push(Answer {
                    result: Err(PipeError::LineBreak),
                    began: now,
                    ended: now,
                });
                k += 1;
                continue;
            }
            let end = ids[k..]
                .iter()
                .position(breaks)
                .map_or(ids.len(), |p| k + p);
            self.ask_each(&ids[k..end], &mut out);
            k = end;
        }
        out
    }

    /// [`Pipe::ask`] for ids that can all be sent.
    fn ask_each(&mut self, ids: &[&str], out: &mut Vec<Answer>) {
        let (timeout, limit) = (self.timeout, self.limit);
        let mut from = 0;
        while from < ids.len() {
            let began = Instant::now();
            let live = match self.ready() {
                Ok(live) => live,
                Err(e) => {
                    out.push(Answer {
                        result: Err(e),
                        began,
                        ended: Instant::now(),
                    });
                    from += 1;
                    continue;
                }
            };
            // On probation, one id at a time: a program that writes two
            // lines for an id is caught at once, before a window of ids
            // could take its lines for theirs.
            let n = if live.answers < PROBATION {
                1
            } else {
                ids.len() - from
            };
            let first = out.len();
            let (talk, head_began) = live.talk(&ids[from..from + n], timeout, limit, out);
            if out.len() > first {
                self.failed_starts = 0;
            }
            from += out.len() - first;
            let failed = match talk {
                Talk::Answered => continue,
                Talk::OutOfStep => {
                    let answers = out.len() - first;
                    for a in &mut out[first..] {
                        a.result = Err(PipeError::OutOfStep { answers });
                    }
                    self.stop();
                    continue;
                }
                Talk::Closed => self.ended(),
                Talk::TimedOut => {
                    let limit = timeout.unwrap_or_default();
                    let stderr = self.stop();
                    PipeError::TimedOut { limit, stderr }
                }
                Talk::Failed(e) => {
                    self.stop();
                    PipeError::Io(e.to_string())
                }
            };
            out.push(Answer {
                result: Err(failed),
                began: head_began,
                ended: Instant::now(),
            });
            from += 1;
        }
    }

    /// Makes sure a process runs, quiet and ready to be asked: a new one
    /// if there is none (unless the program rests after failed starts), or
    /// if the one there wrote while nobody asked, or has ended.
    fn ready(&mut self) -> Result<&mut Live, PipeError> {
        let quiet = match self.live.as_mut().map(Live::peek) {
            None => false,
            Some(Ok(Peek::Quiet)) => true,
            // Output nobody asked for: out of step, with no answer of ours
            // to blame (those before it were taken in step). Or it left
            // since it was last asked (a program that serves so many ids,
            // then exits): a new one serves the next.
            Some(Ok(Peek::Spoke | Peek::Closed) | Err(_)) => {
                self.stop();
                false
            }
        };
        if !quiet {
            if let Some((until, e)) = &self.resting {
                if Instant::now() < *until {
                    return Err(e.clone());
                }
                self.resting = None;
            }
            match self.start() {
                Ok(live) => self.live = Some(live),
                Err(why) => return Err(self.failed_start(why, String::new())),
            }
        }
        self.live
            .as_mut()
            .ok_or_else(|| PipeError::Io("no process".into()))
    }

    fn start(&self) -> Result<Live, String> {
        let mut cmd = program_command(&self.program, self.path.as_deref());
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("ENTITY_ID")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run '{}': {e}", self.program))?;
        let pgid = child.id();
        running().push(pgid);
        if let Some(group) = &self.group {
            group.add(pgid);
        }
        // From here on, dropping `live` kills and reaps the process.
        let mut live = Live {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            pgid,
            group: self.group.clone(),
            stderr: Arc::new(Tail::default()),
            partial: Vec::new(),
            cut: false,
            extra: false,
            answers: 0,
            written: 0,
            reaped: false,
            buf: vec![0; 64 * 1024],
        };
        let keep = STDERR_TAIL.min(self.limit.max(1));
        let stderr = live.child.stderr.take();
        let tail = Arc::clone(&live.stderr);
        std::thread::Builder::new()
            .name("batchsh-pipe-stderr".into())
            .spawn(move || tail.drain(stderr, keep))
            .map_err(|e| format!("cannot start a thread to read its stderr: {e}"))?;
        for fd in [
            live.stdin.as_ref().map(rustix::fd::AsFd::as_fd),
            live.stdout.as_ref().map(rustix::fd::AsFd::as_fd),
        ]
        .into_iter()
        .flatten()
        {
            rustix::io::ioctl_fionbio(fd, true)
                .map_err(|e| format!("cannot set up its pipes: {e}"))?;
        }
        Ok(live)
    }

    /// A start failed (`why`): the program rests, for longer after each
    /// failed start in a row, and the error fails entities meanwhile.
    fn failed_start(&mut self, why: String, stderr: String) -> PipeError {
        self.failed_starts = self.failed_starts.saturating_add(1);
        let rest = REST_FIRST
            .saturating_mul(1 << (self.failed_starts - 1).min(16))
            .min(REST_MAX);
        let e = PipeError::StartUp { why, stderr, rest };
        self.resting = Some((Instant::now() + rest, e.clone()));
        e
    }

    /// The process closed its stdout before answering: how it ended, as
    /// the error of the entity it owed an answer.
    fn ended(&mut self) -> PipeError {
        let Some(mut live) = self.live.take() else {
            return PipeError::Io("no process".into());
        };
        // Nothing answered and nothing read of what was written: it ended
        // at start-up, and a new one would too.
        let at_start_up = live.answers == 0 && live.unread() == Some(live.written);
        let status = live.finish(EXIT_WAIT);
        let stderr = live.stderr.text(TAIL_WAIT);
        let partial = {
            let mut p = std::mem::take(&mut live.partial);
            if live.cut {
                drop_cut_char(&mut p);
            }
            String::from_utf8_lossy(&p).into_owned()
        };
        drop(live);
        let (status, code) = describe(status);
        if !at_start_up {
            self.failed_starts = 0;
        } else {
            let why =
                format!("the pipe program ended at start-up, before reading an id ({status})");
            return self.failed_start(why, stderr);
        }
        PipeError::Ended {
            status,
            code,
            partial,
            stderr,
        }
    }

    /// Kills the process (its group) at once, and gives the tail of its
    /// stderr.
    fn stop(&mut self) -> String {
        match self.live.take() {
            Some(mut live) => {
                live.kill();
                live.stderr.text(TAIL_WAIT)
            }
            None => String::new(),
        }
    }

    /// Ends the process the graceful way: its stdin closes, and it has
    /// [`END_GRACE`] to leave before it is killed.
    pub fn end(&mut self) {
        if let Some(mut live) = self.live.take() {
            live.stdin = None;
            live.finish(END_GRACE);
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.end();
    }
}

/// How a process ended, in words and as a code (128 + signal when a
/// signal killed it, as a shell says).
fn describe(status: Option<ExitStatus>) -> (String, i32) {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (format!("exit code {code}"), code),
            (None, Some(sig)) => (format!("killed by signal {sig}"), 128 + sig),
            (None, None) => ("ended".into(), -1),
        },
        None => ("closed its stdout and was killed".into(), -1),
    }
}

/// How a talk with the process ended.
enum Talk {
    /// Every id has its answer, and nothing more came.
    Answered,
    /// Every id has its answer, and more came: out of step.
    OutOfStep,
    /// Its stdout closed before every id had its answer.
    Closed,
    /// The entity owed an answer passed `ENTITY_TIMEOUT`.
    TimedOut,
    Failed(std::io::Error),
}

/// What a look at an idle process finds.
enum Peek {
    Quiet,
    /// It wrote while nobody asked.
    Spoke,
    Closed,
}

/// A running process of a pipe. Dropping it kills its group and reaps it.
struct Live {
    child: Child,
    pgid: u32,
    group: Option<Arc<Pipes>>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Arc<Tail>,
    /// The answer being read (at most the limit), whether the limit cut
    /// it, and whether a line came that no id asked for.
    partial: Vec<u8>,
    cut: bool,
    extra: bool,
    /// The ids it has answered; the bytes written to its stdin.
    answers: u64,
    written: u64,
    reaped: bool,
    buf: Vec<u8>,
}

impl Live {
    /// Writes `ids` and reads their answers into `out`, in order, each
    /// entity's time beginning when the answer before it came (the first
    /// one's now). Gives how it ended and when the entity still owed an
    /// answer (if any) began.
    fn talk(
        &mut self,
        ids: &[&str],
        timeout: Option<Duration>,
        limit: usize,
        out: &mut Vec<Answer>,
    ) -> (Talk, Instant) {
        let mut send = Vec::with_capacity(ids.iter().map(|id| id.len() + 1).sum());
        for id in ids {
            send.extend_from_slice(id.as_bytes());
            send.push(b'\n');
        }
        let mut sent = 0;
        let first = out.len();
        let mut head_began = Instant::now();
        loop {
            if out.len() - first == ids.len() {
                let more = self.extra || !self.partial.is_empty() || self.cut;
                return match (more, self.peek()) {
                    (true, _) | (_, Ok(Peek::Spoke)) => (Talk::OutOfStep, head_began),
                    (_, Ok(_)) => (Talk::Answered, head_began),
                    (_, Err(e)) => (Talk::Failed(e), head_began),
                };
            }
            let wait = match timeout {
                None => None,
                Some(t) => {
                    let left = (head_began + t).saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return (Talk::TimedOut, head_began);
                    }
                    Some(Timespec {
                        tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                        tv_nsec: left.subsec_nanos().into(),
                    })
                }
            };
            let (Some(stdout), stdin) = (self.stdout.as_ref(), self.stdin.as_ref()) else {
                return (Talk::Closed, head_began);
            };
            let writing = sent < send.len() && stdin.is_some();
            let (readable, writable) = {
                let mut fds = vec![PollFd::new(stdout, PollFlags::IN)];
                if let (true, Some(stdin)) = (writing, stdin) {
                    fds.push(PollFd::new(stdin, PollFlags::OUT));
                }
                match poll(&mut fds, wait.as_ref()) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return (Talk::Failed(e.into()), head_began),
                }
                let ready = |k: usize| fds.get(k).is_some_and(|f| !f.revents().is_empty());
                (ready(0), ready(1))
            };
            if writable && let Some(stdin) = self.stdin.as_mut() {
                match stdin.write(&send[sent..]) {
                    Ok(n) => {
                        sent += n;
                        self.written += n as u64;
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    // It closed its stdin (or ended): nothing more can be
                    // written, and what it writes back is still read.
                    Err(_) => sent = send.len(),
                }
            }
            if readable {
                let Some(stdout) = self.stdout.as_mut() else {
                    continue;
                };
                match stdout.read(&mut self.buf) {
                    Ok(0) => return (Talk::Closed, head_began),
                    Ok(n) => {
                        let chunk = std::mem::take(&mut self.buf);
                        self.lines(
                            &chunk[..n],
                            ids.len() - (out.len() - first),
                            limit,
                            out,
                            &mut head_began,
                        );
                        self.buf = chunk;
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(e) => return (Talk::Failed(e), head_began),
                }
            }
        }
    }

    /// Takes the answers in `bytes` (at most `owed` of them) into `out`.
    fn lines(
        &mut self,
        mut bytes: &[u8],
        mut owed: usize,
        limit: usize,
        out: &mut Vec<Answer>,
        head_began: &mut Instant,
    ) {
        let now = Instant::now();
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = bytes.split_at(nl);
            bytes = &rest[1..];
            if owed == 0 {
                self.extra = true;
                return;
            }
            let result = if self.partial.is_empty() && !self.cut && line.len() <= limit {
                reply(line, false)
            } else {
                self.keep(line, limit);
                let (whole, cut) = (std::mem::take(&mut self.partial), self.cut);
                self.cut = false;
                reply(&whole, cut)
            };
            out.push(Answer {
                result,
                began: *head_began,
                ended: now,
            });
            *head_began = now;
            self.answers += 1;
            owed -= 1;
        }
        if owed == 0 && !bytes.is_empty() {
            self.extra = true;
            return;
        }
        self.keep(bytes, limit);
    }

    /// Adds `bytes` to the answer being read, up to `limit` bytes.
    fn keep(&mut self, bytes: &[u8], limit: usize) {
        let room = limit.saturating_sub(self.partial.len());
        let take = bytes.len().min(room);
        self.partial.extend_from_slice(&bytes[..take]);
        self.cut |= take < bytes.len();
    }

    /// Whether the process wrote while nobody asked, or closed its stdout.
    fn peek(&mut self) -> std::io::Result<Peek> {
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(Peek::Closed);
        };
        let mut fds = [PollFd::new(&*stdout, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            match poll(&mut fds, Some(&zero)) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if fds[0].revents().is_empty() {
            return Ok(Peek::Quiet);
        }
        let mut one = [0u8; 1];
        match stdout.read(&mut one) {
            Ok(0) => Ok(Peek::Closed),
            Ok(_) => Ok(Peek::Spoke),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                Ok(Peek::Quiet)
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes written to its stdin that it has not read.
    fn unread(&self) -> Option<u64> {
        let stdin = self.stdin.as_ref()?;
        rustix::io::ioctl_fionread(stdin).ok()
    }

    /// Waits up to `grace` for the process to exit, kills its group, and
    /// reaps it: how it ended, `None` when it had to be killed.
    fn finish(&mut self, grace: Duration) -> Option<ExitStatus> {
        let status = match self.child.wait_timeout(grace) {
            Ok(Some(status)) => {
                self.reaped = true;
                Some(status)
            }
            _ => None,
        };
        // Its children, if any stayed in its group, go with it.
        self.kill();
        status
    }

    /// Kills the process group, and reaps the process.
    fn kill(&mut self) {
        // Before the leader is reaped its pid, the group's id, cannot be
        // reused; after, members still in the group keep the id alive.
        kill_group(self.pgid);
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.kill();
        forget(&mut running(), self.pgid);
        if let Some(group) = &self.group {
            group.remove(self.pgid);
        }
    }
}

/// One answer line (its newline taken off) as the entity's result.
fn reply(line: &[u8], cut: bool) -> Result<Reply, PipeError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut owned;
    let line = if cut {
        owned = line.to_vec();
        drop_cut_char(&mut owned);
        &owned[..]
    } else {
        line
    };
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Err(PipeError::NotUtf8 {
                at: e.valid_up_to(),
                lossy: String::from_utf8_lossy(line).into_owned(),
            });
        }
    };
    if !cut
        && text.trim_start().starts_with('{')
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text)
    {
        return object(map);
    }
    Ok(Reply::Line {
        text: text.to_string(),
        truncated: cut,
    })
}

/// An answer that is a JSON object: the result, or the entity's error.
fn object(map: Map<String, Value>) -> Result<Reply, PipeError> {
    match map.get("error") {
        None | Some(Value::Null) => Ok(Reply::Object(Value::Object(map))),
        Some(e) => {
            let text = match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Err(PipeError::Answered {
                text,
                object: Value::Object(map),
            })
        }
    }
}

/// A process's stderr, read all the time by a thread of its own (so the
/// process never blocks on it); its last bytes are kept.
#[derive(Default)]
struct Tail {
    state: Mutex<TailState>,
    done: Condvar,
}

#[derive(Default)]
struct TailState {
    bytes: VecDeque<u8>,
    /// Bytes dropped from the front.
    dropped: bool,
    eof: bool,
}

impl Tail {
    fn lock(&self) -> std::sync::MutexGuard<'_, TailState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads `pipe` to its end, keeping its last `keep` bytes.
    fn drain(&self, pipe: Option<ChildStderr>, keep: usize) {
        if let Some(mut pipe) = pipe {
            let mut buf = [0u8; 8 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut st = self.lock();
                        st.bytes.extend(&buf[..n]);
                        let over = st.bytes.len().saturating_sub(keep);
                        if over > 0 {
                            st.bytes.drain(..over);
                            st.dropped = true;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        self.lock().eof = true;
        self.done.notify_all();
    }

    /// The tail as text, once the stream has ended (or `wait` has passed).
    fn text(&self, wait: Duration) -> String {
        let (st, _) = self
            .done
            .wait_timeout_while(self.lock(), wait, |st| !st.eof)
            .unwrap_or_else(|e| e.into_inner());
        let (a, b) = st.bytes.as_slices();
        let mut bytes = [a, b].concat();
        if st.dropped {
            // The front was cut: start at the first whole character.
            let skip = bytes.iter().take_while(|&&b| b & 0xC0 == 0x80).count();
            bytes.drain(..skip);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// `pipe` for one entity alone: a process started, asked once, ended. The
/// executor keeps one per entity thread instead ([`Pipe`]); this is for
/// callers that run one command for one id.
pub fn once(program: &str, args: &[String], ctx: &Context) -> Result<Value, PipeError> {
    let mut pipe = Pipe::new(program, args, ctx, 1, None);
    let answer = pipe
        .ask(&[ctx.entity_id])
        .pop()
        .ok_or_else(|| PipeError::Io("no answer".into()))?;
    answer.result.map(Reply::into_value)
}

#[cfg(test)]
mod tests;
