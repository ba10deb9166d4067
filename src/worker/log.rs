//! A worker's log: one line per event, time first, in
//! `<home>/logs/worker-<node>-<worker id>.log`.

use super::WorkerError;
use crate::batch::{Event, Events, RunEnd};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub(super) struct Log {
    file: Arc<Mutex<std::fs::File>>,
}

impl Log {
    pub(super) fn open(home: &Path, node: &str, worker_id: &str) -> Result<Log, WorkerError> {
        let dir = home.join("logs");
        let io = |source| WorkerError::Io {
            what: format!("cannot write the worker's log in {}", dir.display()),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let safe: String = node
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("worker-{safe}-{}.log", &worker_id[..8]));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok(Log {
            file: Arc::new(Mutex::new(file)),
        })
    }

    pub(super) fn line(&self, text: &str) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "{} {text}", crate::store::now());
    }

    /// How a batch left this worker: its end (with the reason of a FAILED
    /// one) and how much of it is done.
    pub(super) fn batch_left(&self, bid: &str, end: &RunEnd) {
        let c = end.counters();
        let how = match end {
            RunEnd::Ended {
                status,
                error: Some(why),
                ..
            } => format!("{status}: {why}"),
            RunEnd::Ended { status, .. } => status.to_string(),
            RunEnd::Left { .. } => "helped".into(),
            RunEnd::Interrupted { .. } => "left unfinished by a stop".into(),
            RunEnd::TakenOver { why, .. } => format!("taken over: {why}"),
        };
        self.line(&format!(
            "batch left: {bid} ({how}; {} of {} done)",
            c.finished(),
            c.total
        ));
    }
}

/// A run's events, as a worker logs them: what a user watching a terminal
/// would have seen as warnings; progress is not logged.
impl Events for Log {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Progress { .. } | Event::ProgressDone => {}
            Event::StoreLocked { bid, path, waited } => self.line(&format!(
                "batch {bid}: the store {} is locked by another process (waited {} s)",
                path.display(),
                waited.as_secs()
            )),
            Event::StoreFree { bid, waited } => self.line(&format!(
                "batch {bid}: the store is free again after {} s",
                waited.as_secs()
            )),
            Event::StoreUnreachable { bid, why, waited } => self.line(&format!(
                "batch {bid}: the store cannot be reached (for {} s so far: {why}); tries again",
                waited.as_secs()
            )),
            Event::StoreBack { bid, waited } => self.line(&format!(
                "batch {bid}: the store answers again after {} s",
                waited.as_secs()
            )),
            Event::HookFailed { bid, status, why } => self.line(&format!(
                "batch {bid} ended {status}: its ON_DONE hook {why}"
            )),
            Event::NotMarkedFailed { bid } => self.line(&format!(
                "batch {bid} could not be marked FAILED: the store cannot be written"
            )),
        }
    }
}
