//! Running a fired job (SPEC §8), in the process that fired it.
//!
//! - A STATEMENT job runs its statement in a session of its own. A
//!   `BATCH` in it is queued as an asynchronous batch, whichever `ASYNC`
//!   it was written with, for the workers to run; its bid is the run's
//!   output at once, and the run lasts until the batch ends: `DONE` with
//!   no failed entity is a run `PROCESSED`, anything else `FAILED`. Any
//!   other statement's result (JSON) is the run's output.
//! - A PROCESS job runs its program directly (no shell), `ARGS` in order
//!   as its arguments, in the folder the job was started from; its output
//!   is kept (64 KiB of each stream), its exit code recorded, and it is
//!   killed at its `TIMEOUT`. Exit code 0 is a run `PROCESSED`.

use super::{Fired, next_after};
use crate::ast::{JobType, OutputFormat, Statement};
use crate::batch::JobStatus;
use crate::store::Store;
use crate::store::jobs::RunEnd;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How much of each of a process's streams a run keeps.
pub const KEEP_BYTES: usize = 64 * 1024;

/// Where a run happens: the process that fired it.
#[derive(Clone, Debug)]
pub struct Host {
    pub home: PathBuf,
    pub store_path: PathBuf,
    pub node: String,
    pub dc: String,
    pub workers: usize,
    pub worker_id: String,
}

/// How a run went, before it is recorded.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub ok: bool,
    pub output: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    /// The run was left unfinished (this process stops while the batch it
    /// queued goes on): it is not recorded here, and the next worker or
    /// tick ends it with its batch (see [`super::recover_dead`]).
    pub left: bool,
}

impl Outcome {
    fn failed(error: impl Into<String>) -> Outcome {
        Outcome {
            error: Some(error.into()),
            ..Outcome::default()
        }
    }

    /// The job's note on a run that failed: why, in one line.
    pub fn failed_note(&self) -> Option<String> {
        (!self.ok).then(|| {
            format!(
                "the last run FAILED: {}",
                first_line(self.error.as_deref().unwrap_or("?"))
            )
        })
    }

    /// The run's end as the store records it.
    pub fn end<'a>(
        &'a self,
        next_run: Option<&'a str>,
        notes: Option<&'a str>,
        ended: &'a str,
    ) -> RunEnd<'a> {
        RunEnd {
            status: if self.ok {
                JobStatus::Processed
            } else {
                JobStatus::Failed
            },
            output: self.output.as_deref(),
            error: self.error.as_deref(),
            exit_code: self.exit_code,
            next_run,
            notes,
            ended,
        }
    }
}

/// Runs `fired` and records how it ended, with the job's next due time.
/// Gives the outcome (a tick reports failures).
pub fn run(store: &dyn Store, host: &Host, fired: &Fired) -> Outcome {
    let outcome = match fired.job.job_type {
        JobType::Process => run_process(store, fired),
        _ => run_statement(store, host, fired),
    };
    if outcome.left {
        return outcome;
    }
    match record(store, host, fired, &outcome) {
        Ok(()) => outcome,
        Err(e) => Outcome::failed(format!("the run's end could not be recorded: {e}")),
    }
}

/// How long a run's end is tried again while the store is locked: a run
/// not recorded holds its job (IN_PROCESS) for as long as this process
/// lives.
const RECORD_FOR: Duration = Duration::from_secs(600);

/// Records the end of a run, with its job's next due time (from its
/// schedule as it is now: an UPDATEJOB during the run counts). A store
/// locked by another process is waited for, and tried again.
fn record(
    store: &dyn Store,
    host: &Host,
    fired: &Fired,
    outcome: &Outcome,
) -> Result<(), crate::store::StoreError> {
    let started = std::time::Instant::now();
    loop {
        match try_record(store, host, fired, outcome) {
            Err(crate::store::StoreError::Locked { .. }) if started.elapsed() < RECORD_FOR => {
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

fn try_record(
    store: &dyn Store,
    host: &Host,
    fired: &Fired,
    outcome: &Outcome,
) -> Result<(), crate::store::StoreError> {
    let ended = crate::knobs::now();
    let job = store.job(fired.job.job_no)?;
    let schedule = job
        .as_ref()
        .and_then(|j| super::schedule_of(j).ok())
        .flatten();
    let due = chrono::DateTime::parse_from_rfc3339(&fired.due)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or(ended);
    let next_run = next_after(schedule.as_ref(), due, ended.max(due));
    // The notes say how the last run went: how late it started, and
    // why it failed.
    let notes = match (outcome.failed_note(), &fired.late) {
        (Some(f), Some(late)) => Some(format!("{f}; {late}")),
        (f, late) => f.or_else(|| late.clone()),
    };
    let ended = super::stamp(ended);
    let end = outcome.end(next_run.as_deref(), notes.as_deref(), &ended);
    store
        .finish_run(fired.job.job_no, &fired.due, &host.worker_id, &end)
        .map(drop)
}

/// The first line of a message, for a one-line note.
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// The folder a job runs in: where it was started, else the home.
fn workdir(job: &crate::store::jobs::JobRow, home: &Path) -> PathBuf {
    job.workdir
        .as_deref()
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| home.to_path_buf())
}

fn run_statement(store: &dyn Store, host: &Host, fired: &Fired) -> Outcome {
    let text = fired.job.statement.as_deref().unwrap_or_default();
    let mut stmts = match crate::syntax::parse(text) {
        Ok(s) => s,
        Err(e) => {
            let why = crate::diag::render(text, &e);
            return Outcome::failed(format!("its statement no longer parses:\n{why}"));
        }
    };
    let Some(mut stmt) = stmts.pop().filter(|_| stmts.is_empty()) else {
        return Outcome::failed("its statement is not one statement");
    };
    let queues_batch = if let Statement::Batch(b) = &mut stmt.kind {
        force_async(&mut b.options);
        true
    } else {
        false
    };
    let config = crate::session::Config {
        store_path: host.store_path.clone(),
        home: host.home.clone(),
        cwd: workdir(&fired.job, &host.home),
        node: host.node.clone(),
        dc: host.dc.clone(),
        workers: host.workers,
        progress_allowed: false,
        quiet: true,
    };
    let settings = crate::session::Settings {
        format: OutputFormat::Json,
        progress: false,
        expanded: crate::ast::Expanded::Off,
        timing: false,
        pager: false,
    };
    let mut session = crate::session::Session::new(config, settings);
    let out = match session.run_statement(&stmt) {
        Ok((out, _)) => out,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let text = out.map(|o| {
        let style = crate::output::Style {
            format: OutputFormat::Json,
            color: false,
            width: None,
            expanded: crate::ast::Expanded::Off,
        };
        let text = crate::output::render(&o, &style);
        keep(text.trim_end().as_bytes().to_vec())
    });
    match session.last_bid.clone().filter(|_| queues_batch) {
        Some(bid) => {
            let _ = store.run_output(fired.job.job_no, &fired.due, &bid);
            wait_for_batch(store, &bid)
        }
        None => Outcome {
            ok: true,
            output: text,
            ..Outcome::default()
        },
    }
}

/// A BATCH in a job runs as an asynchronous batch (`ASYNC=true`).
fn force_async(options: &mut crate::ast::Options) {
    use crate::ast::{Opt, Span, Value};
    options.0.retain(|o| o.name != "ASYNC");
    options.0.push(Opt {
        name: "ASYNC",
        value: Value::Bool(true),
        span: Span::new(0, 0),
    });
}

/// How often a run looks at the batch it waits for.
const BATCH_POLL: Duration = Duration::from_millis(200);

/// Waits for the batch a run queued; its end is the run's outcome. A
/// stop (the worker drains) ends the wait and leaves the run: the batch
/// goes on without this process, and the run ends with it (see
/// [`super::recover_dead`]).
fn wait_for_batch(store: &dyn Store, bid: &str) -> Outcome {
    loop {
        let row = match store.read_batch(bid) {
            Ok(row) => row,
            Err(e) => return Outcome::failed(format!("batch {bid}: {e}")),
        };
        if let Some(outcome) = batch_outcome(&row) {
            return outcome;
        }
        if crate::terminate::requested() {
            return Outcome {
                output: Some(bid.to_string()),
                left: true,
                ..Outcome::default()
            };
        }
        std::thread::sleep(BATCH_POLL);
    }
}

/// The outcome of a run whose batch is `row`, once the batch has ended:
/// `DONE` with no failed entity is a run `PROCESSED`, anything else
/// `FAILED`.
pub fn batch_outcome(row: &crate::store::BatchRow) -> Option<Outcome> {
    use crate::batch::BatchStatus;
    let (bid, failed) = (&row.bid, row.counts.failed);
    let base = Outcome {
        output: Some(bid.clone()),
        ..Outcome::default()
    };
    match row.status {
        BatchStatus::Done if failed == 0 => Some(Outcome { ok: true, ..base }),
        BatchStatus::Done => Some(Outcome {
            error: Some(format!(
                "batch {bid} ended DONE with {failed} failed entities"
            )),
            ..base
        }),
        s if s.is_final() => {
            let why = row
                .error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            Some(Outcome {
                error: Some(format!("batch {bid} ended {s}{why}")),
                ..base
            })
        }
        _ => None,
    }
}

/// At most [`KEEP_BYTES`] of a stream, as text.
fn keep(mut bytes: Vec<u8>) -> String {
    let cut = bytes.len() > KEEP_BYTES;
    bytes.truncate(KEEP_BYTES);
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    if cut {
        s.push_str("\n[cut at 64 KiB]");
    }
    s
}

/// What a thread reads of a stream: the first [`KEEP_BYTES`] (and one
/// more, to tell a cut), shared so that the run can take what was read
/// when the program has exited (a child of it may keep the stream open).
type Kept = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Reads a stream to its end on a thread, keeping its first
/// [`KEEP_BYTES`] (the rest is read and dropped, so the program never
/// blocks on a full pipe).
fn drain(
    stream: Option<impl Read + Send + 'static>,
) -> (Kept, Option<std::thread::JoinHandle<()>>) {
    let kept: Kept = Default::default();
    let Some(mut stream) = stream else {
        return (kept, None);
    };
    let into = std::sync::Arc::clone(&kept);
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut kept = into.lock().unwrap_or_else(|e| e.into_inner());
                    let room = (KEEP_BYTES + 1).saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
    });
    (kept, Some(thread))
}

/// How long a run reads its program's streams after the program exited:
/// what it wrote last is in the pipe, and a child that keeps a stream
/// open is not waited for.
const STREAMS_AFTER_EXIT: Duration = Duration::from_millis(200);

/// What was read of a stream, once its thread ended or the program has
/// been gone for [`STREAMS_AFTER_EXIT`].
fn collect(
    kept: &Kept,
    thread: Option<std::thread::JoinHandle<()>>,
    until: std::time::Instant,
) -> String {
    if let Some(t) = thread {
        while !t.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    keep(kept.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Kills process group `pgid` (a run's program and its children).
pub fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// A PROCESS job's arguments: `ARGS`, a JSON object, its values in order.
pub fn process_args(args: Option<&str>) -> Result<Vec<String>, String> {
    let Some(args) = args else {
        return Ok(Vec::new());
    };
    let value: serde_json::Value = serde_json::from_str(args)
        .map_err(|e| format!("ARGS is not JSON ({e}): write ARGS='{{\"0\":\"x\"}}'"))?;
    let Some(object) = value.as_object() else {
        return Err(format!(
            "ARGS is {value}, not a JSON object: write ARGS='{{\"0\":\"first\",\"1\":\"second\"}}'"
        ));
    };
    Ok(object
        .values()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect())
}

fn run_process(store: &dyn Store, fired: &Fired) -> Outcome {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use wait_timeout::ChildExt;
    let job = &fired.job;
    let program = job.statement.as_deref().unwrap_or_default();
    let args = match process_args(job.args.as_deref()) {
        Ok(a) => a,
        Err(e) => return Outcome::failed(e),
    };
    let mut cmd = Command::new(program);
    // A group of its own: a TIMEOUT, and the run of a process that died,
    // end the program with its children.
    cmd.args(&args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = job.workdir.as_deref().filter(|d| Path::new(d).is_dir()) {
        cmd.current_dir(dir);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::failed(format!("cannot start the program {program}: {e}")),
    };
    let pid = child.id();
    let started = crate::owner::started_at(pid).map(super::stamp);
    let _ = store.run_program(
        job.job_no,
        &fired.due,
        &crate::store::jobs::Program {
            pid: i64::from(pid),
            host: &crate::owner::hostname(),
            started: started.as_deref(),
        },
    );
    let (out, out_thread) = drain(child.stdout.take());
    let (err, err_thread) = drain(child.stderr.take());
    let status = match job.timeout_ms {
        Some(ms) => match child.wait_timeout(Duration::from_millis(ms)) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => {
                kill_group(pid);
                let _ = child.wait();
                Err(format!(
                    "killed at its TIMEOUT of {}",
                    crate::output::format_duration(Duration::from_millis(ms))
                ))
            }
            Err(e) => Err(format!("cannot wait for the program: {e}")),
        },
        None => child
            .wait()
            .map_err(|e| format!("cannot wait for the program: {e}")),
    };
    let until = std::time::Instant::now() + STREAMS_AFTER_EXIT;
    let (stdout, stderr) = (
        collect(&out, out_thread, until),
        collect(&err, err_thread, until),
    );
    let stderr_note = |s: &str| {
        let s = s.trim_end();
        if s.is_empty() {
            String::new()
        } else {
            format!("; stderr: {s}")
        }
    };
    match status {
        Ok(status) if status.success() => Outcome {
            ok: true,
            output: Some(stdout),
            error: Some(stderr).filter(|s| !s.is_empty()),
            exit_code: Some(0),
            left: false,
        },
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let why = match (status.code(), status.signal()) {
                (Some(code), _) => format!("{program} exited with code {code}"),
                (None, Some(sig)) => format!("{program} was killed by signal {sig}"),
                _ => format!("{program} failed"),
            };
            Outcome {
                ok: false,
                output: Some(stdout),
                error: Some(format!("{why}{}", stderr_note(&stderr))),
                exit_code: status.code().map(i64::from),
                left: false,
            }
        }
        Err(why) => Outcome {
            ok: false,
            output: Some(stdout),
            error: Some(format!("{program} {why}{}", stderr_note(&stderr))),
            exit_code: None,
            left: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_the_values_of_a_json_object_in_order() {
        assert_eq!(
            process_args(Some(r#"{"0":"a","1":2,"2":"c d"}"#)).unwrap(),
            vec!["a", "2", "c d"]
        );
        assert!(
            process_args(Some("[1,2]"))
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            process_args(Some("{oops"))
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn output_is_kept_to_64_kib() {
        let s = keep(vec![b'x'; KEEP_BYTES + 10]);
        assert!(s.ends_with("[cut at 64 KiB]"));
        assert_eq!(keep(b"ok\n".to_vec()), "ok\n");
    }
}
