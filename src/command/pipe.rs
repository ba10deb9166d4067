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

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::Value;

use super::Context;
use super::process::{forget, program_command};

mod answer;
mod live;

pub use answer::{PipeError, Reply};
use live::{Live, Peek, Talk};

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
            let n = if live.answers() < PROBATION {
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
        let keep = STDERR_TAIL.min(self.limit.max(1));
        Live::start(cmd, &self.program, self.group.clone(), keep)
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
        let Some(live) = self.live.take() else {
            return PipeError::Io("no process".into());
        };
        let end = live.ended(EXIT_WAIT, TAIL_WAIT);
        if end.at_start_up {
            let why = format!(
                "the pipe program ended at start-up, before reading an id ({})",
                end.status
            );
            return self.failed_start(why, end.stderr);
        }
        self.failed_starts = 0;
        PipeError::Ended {
            status: end.status,
            code: end.code,
            partial: end.partial,
            stderr: end.stderr,
        }
    }

    /// Kills the process (its group) at once, and gives the tail of its
    /// stderr.
    fn stop(&mut self) -> String {
        self.live
            .take()
            .map_or_else(String::new, |live| live.kill_now(TAIL_WAIT))
    }

    /// Ends the process the graceful way: its stdin closes, and it has
    /// [`END_GRACE`] to leave before it is killed.
    pub fn end(&mut self) {
        if let Some(live) = self.live.take() {
            live.end(END_GRACE);
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.end();
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
