//! A running process of a pipe ([`Live`]): the ids written to its stdin
//! and the answers read from its stdout, both without blocking (one poll
//! loop on the worker's thread), and its stderr read by a thread of its
//! own ([`Tail`]).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use wait_timeout::ChildExt;

use super::super::process::{drop_cut_char, forget, running};
use super::answer::reply;
use super::{Answer, Pipes, kill_group};

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
pub(super) enum Talk {
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
pub(super) enum Peek {
    Quiet,
    /// It wrote while nobody asked.
    Spoke,
    Closed,
}

/// A running process of a pipe. Dropping it kills its group and reaps it.
pub(super) struct Live {
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

/// How a process that closed its stdout before answering ended.
pub(super) struct Ended {
    /// It read nothing of what was written to it, and answered nothing.
    pub(super) at_start_up: bool,
    /// Its exit code or signal, in words, and as a code (128 + signal).
    pub(super) status: String,
    pub(super) code: i32,
    /// What it wrote of an answer, with no newline.
    pub(super) partial: String,
    /// The tail of its stderr.
    pub(super) stderr: String,
}

impl Live {
    /// Starts `cmd` (`program`'s, for the error) in a process group of its
    /// own, its stdin and stdout piped and read without blocking, its
    /// stderr drained by a thread that keeps its last `keep` bytes; the
    /// group is registered with `group` and as running.
    pub(super) fn start(
        mut cmd: Command,
        program: &str,
        group: Option<Arc<Pipes>>,
        keep: usize,
    ) -> Result<Live, String> {
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run '{program}': {e}"))?;
        let pgid = child.id();
        running().push(pgid);
        if let Some(group) = &group {
            group.add(pgid);
        }
        // From here on, dropping `live` kills and reaps the process.
        let mut live = Live {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            pgid,
            group,
            stderr: Arc::new(Tail::default()),
            partial: Vec::new(),
            cut: false,
            extra: false,
            answers: 0,
            written: 0,
            reaped: false,
            buf: vec![0; 64 * 1024],
        };
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

    /// The ids it has answered.
    pub(super) fn answers(&self) -> u64 {
        self.answers
    }

    /// It closed its stdout before answering: waits up to `exit_wait` for
    /// it to exit by itself (so its own status is told), kills its group,
    /// and tells how it ended, with up to `tail_wait` for its stderr's end.
    pub(super) fn ended(mut self, exit_wait: Duration, tail_wait: Duration) -> Ended {
        // Nothing answered and nothing read of what was written: it ended
        // at start-up, and a new one would too.
        let at_start_up = self.answers == 0 && self.unread() == Some(self.written);
        let (status, code) = describe(self.finish(exit_wait));
        let mut partial = std::mem::take(&mut self.partial);
        if self.cut {
            drop_cut_char(&mut partial);
        }
        Ended {
            at_start_up,
            status,
            code,
            partial: String::from_utf8_lossy(&partial).into_owned(),
            stderr: self.stderr.text(tail_wait),
        }
    }

    /// Kills its group at once; the tail of its stderr (waited for up to
    /// `tail_wait`).
    pub(super) fn kill_now(mut self, tail_wait: Duration) -> String {
        self.kill();
        self.stderr.text(tail_wait)
    }

    /// Ends it the graceful way: its stdin closes, and it has `grace` to
    /// leave before its group is killed.
    pub(super) fn end(mut self, grace: Duration) {
        self.stdin = None;
        self.finish(grace);
    }

    /// Writes `ids` and reads their answers into `out`, in order, each
    /// entity's time beginning when the answer before it came (the first
    /// one's now). Gives how it ended and when the entity still owed an
    /// answer (if any) began.
    pub(super) fn talk(
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
    pub(super) fn peek(&mut self) -> std::io::Result<Peek> {
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
