//! Status as data (SPEC §7): the statuses of batches, entities and jobs,
//! the requests other processes make of a running batch, a batch's
//! counters, and how a run ends, with the one mapping from a run's end to
//! an exit code. No I/O here: the store keeps these as their SPEC
//! spellings ([`std::fmt::Display`] / [`std::str::FromStr`]), and nothing
//! else compares a status as text.

mod events;
pub mod placement;
mod status;
mod stop;

pub use events::{Event, Events, LineSink, Stream};
pub use placement::{NodeIdent, Placement};
pub use status::{BatchStatus, EntityStatus, JobStatus, Request, StatusError, Tone};
pub use stop::StopToken;

/// An id (a bid, a worker id) as tables, notes and the progress bar show
/// it: its first 8 characters (any statement takes such a prefix).
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A batch's counters. They always add up: total = waiting + in process +
/// completed + failed + cancelled (SPEC §6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: i64,
    pub waiting: i64,
    pub in_process: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
}

impl Counters {
    /// Entities that reached an outcome: COMPLETED or FAILED.
    pub fn finished(&self) -> i64 {
        self.completed + self.failed
    }
}

/// The stops that leave a batch unfinished: the signals (SIGTERM, SIGHUP),
/// and a worker's drain when its store failed under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    Term,
    Hup,
    /// No signal: the worker stops because its store failed under it,
    /// and drains its batches as on SIGTERM.
    Drain,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Term => "SIGTERM",
            StopSignal::Hup => "SIGHUP",
            StopSignal::Drain => "the worker's store failed",
        }
    }

    /// What stopped the batch, for its history: "stopped by SIGTERM".
    pub fn stopped_by(self) -> String {
        match self {
            StopSignal::Drain => "stopped with its worker, whose store failed".into(),
            signal => format!("stopped by {}", signal.name()),
        }
    }

    /// 128 + the signal's number, as shells report it (1 for a drain: the
    /// store failed).
    pub fn exit_code(self) -> i32 {
        match self {
            StopSignal::Term => 143,
            StopSignal::Hup => 129,
            StopSignal::Drain => crate::exit::FAILED,
        }
    }
}

/// How a run of a batch in this process ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEnd {
    /// The batch reached a final status (`error`: why it FAILED).
    Ended {
        status: BatchStatus,
        error: Option<String>,
        counters: Counters,
    },
    /// A stop signal left it unfinished, owned by no process, for
    /// `BATCH_RETRY`.
    Interrupted {
        signal: StopSignal,
        counters: Counters,
    },
    /// Another process took the batch over (it judged this one dead):
    /// this run stopped, writing nothing more.
    TakenOver { why: String, counters: Counters },
    /// A node that helped run a batch another process owns left it (it
    /// stopped, or nothing was left for it): the batch goes on.
    Left { counters: Counters },
}

impl RunEnd {
    pub fn counters(&self) -> &Counters {
        match self {
            RunEnd::Ended { counters, .. }
            | RunEnd::Interrupted { counters, .. }
            | RunEnd::TakenOver { counters, .. }
            | RunEnd::Left { counters } => counters,
        }
    }

    /// The exit code this end calls for (SPEC §1): 0 DONE with no failed
    /// entity; 3 DONE with failed entities, or CANCELLED; 1 FAILED, or
    /// taken over (the statement did not finish its batch); 128 + the
    /// signal when interrupted; 0 for a node that left a batch its owner
    /// goes on with (its work is done).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunEnd::Ended {
                status: BatchStatus::Failed,
                ..
            }
            | RunEnd::TakenOver { .. } => crate::exit::FAILED,
            RunEnd::Ended {
                status: BatchStatus::Cancelled,
                ..
            } => crate::exit::BATCH_INCOMPLETE,
            RunEnd::Ended { counters, .. } if counters.failed > 0 => crate::exit::BATCH_INCOMPLETE,
            RunEnd::Ended { .. } | RunEnd::Left { .. } => crate::exit::OK,
            RunEnd::Interrupted { signal, .. } => signal.exit_code(),
        }
    }

    /// Whether the statement that ran the batch failed (SPEC §1: a batch
    /// that ended FAILED is a failed statement; so is a run taken over).
    pub fn is_failure(&self) -> bool {
        self.exit_code() == crate::exit::FAILED
    }
}

#[cfg(test)]
mod tests;
