//! The status enums, their SPEC §7 spellings, and the allowed transitions.

use std::fmt;
use std::str::FromStr;

/// A status text that names no status of its kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text} is not a {kind} status (one of {})", names.join(", "))]
pub struct StatusError {
    pub kind: &'static str,
    pub text: String,
    pub names: &'static [&'static str],
}

/// How a status reads at a glance, for the colour of a table cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Held,
    Active,
}

/// Declares a status enum with its SPEC spellings, in order.
macro_rules! statuses {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every status, in lifecycle order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Their spellings, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The SPEC spelling, as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StatusError;

            fn from_str(s: &str) -> Result<Self, StatusError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(StatusError {
                        kind: $kind,
                        text: s.to_string(),
                        names: $name::NAMES,
                    }),
                }
            }
        }
    };
}

statuses! {
    /// A batch's status (SPEC §7):
    ///
    /// ```text
    /// WAITING_FOR_JOB -> NEW -> GENERATE_IID_LIST -> IN_PROGRESS -> DONE | FAILED | CANCELLED
    ///                                                 IN_PROGRESS <-> PAUSED
    /// ```
    BatchStatus, "batch" {
        WaitingForJob = "WAITING_FOR_JOB",
        New = "NEW",
        GenerateIidList = "GENERATE_IID_LIST",
        InProgress = "IN_PROGRESS",
        Paused = "PAUSED",
        Done = "DONE",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
    }
}

statuses! {
    /// An entity's status: `WAITING -> IN_PROCESS -> COMPLETED | FAILED`,
    /// and CANCELLED for the entities left when a batch is cancelled. A
    /// retried entity goes back to WAITING.
    EntityStatus, "entity" {
        Waiting = "WAITING",
        InProcess = "IN_PROCESS",
        Completed = "COMPLETED",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
    }
}

statuses! {
    /// A job's status (SPEC §8).
    JobStatus, "job" {
        Scheduled = "SCHEDULED",
        Waiting = "WAITING",
        InProcess = "IN_PROCESS",
        Processed = "PROCESSED",
        Stopping = "STOPPING",
        Terminated = "TERMINATED",
        Failed = "FAILED",
        Restart = "RESTART",
    }
}

statuses! {
    /// What another process asks of a running batch (the `requested`
    /// column): its run reads it at its next step.
    Request, "request" {
        Pause = "PAUSE",
        Cancel = "CANCEL",
    }
}

impl BatchStatus {
    /// DONE, FAILED and CANCELLED end a batch.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            BatchStatus::Done | BatchStatus::Failed | BatchStatus::Cancelled
        )
    }

    /// The statuses that end a batch.
    /// The statuses of a batch a process runs (not waiting for its job,
    /// not paused): those a batch shown INTERRUPTED has stored.
    pub const RUNNING: &'static [BatchStatus] = &[
        BatchStatus::New,
        BatchStatus::GenerateIidList,
        BatchStatus::InProgress,
    ];

    pub const FINAL: &'static [BatchStatus] = &[
        BatchStatus::Done,
        BatchStatus::Failed,
        BatchStatus::Cancelled,
    ];
    /// Their spellings.
    pub const FINAL_NAMES: &'static [&'static str] = &["DONE", "FAILED", "CANCELLED"];
    /// What a `BATCH_LIST` STATUS filter accepts: `ALL`, every status,
    /// `GENERATE_IID` for `GENERATE_IID_LIST`, and `INTERRUPTED`, which
    /// monitoring shows (`crate::monitor::INTERRUPTED`) and no batch stores.
    pub const FILTER_NAMES: &'static [&'static str] = &[
        "ALL",
        "WAITING_FOR_JOB",
        "NEW",
        "GENERATE_IID_LIST",
        "GENERATE_IID",
        "IN_PROGRESS",
        "PAUSED",
        "DONE",
        "FAILED",
        "CANCELLED",
        "INTERRUPTED",
    ];

    /// Whether a batch in this status may move to `next`: the one table
    /// of the lifecycle. Besides SPEC §7's arrows: any unfinished batch
    /// may fail (its source failed, the store could not be written) or be
    /// cancelled, and be paused while nobody runs it; a batch whose ids
    /// are all known may end without any entity to run (an empty set);
    /// and `BATCH_RETRY` takes a finished batch (or one left unfinished)
    /// back to generating its ids or to running its entities.
    pub fn can_become(self, next: BatchStatus) -> bool {
        use BatchStatus::*;
        if self == next {
            return false;
        }
        match (self, next) {
            (_, WaitingForJob) => false,
            (WaitingForJob, New) => true,
            (s, Failed | Cancelled) => !s.is_final(),
            // A retry starts the batch again.
            (s, GenerateIidList | InProgress) if s.is_final() => true,
            (New, GenerateIidList | InProgress) => true,
            (GenerateIidList, InProgress) => true,
            (New | GenerateIidList | InProgress, Paused) => true,
            (Paused, GenerateIidList | InProgress) => true,
            (GenerateIidList | InProgress | Paused, Done) => true,
            _ => false,
        }
    }

    /// `GENERATE_IID` is accepted for `GENERATE_IID_LIST` in filters.
    pub fn parse_filter(text: &str) -> Result<BatchStatus, StatusError> {
        match text {
            "GENERATE_IID" => Ok(BatchStatus::GenerateIidList),
            other => other.parse(),
        }
    }
}

impl EntityStatus {
    /// COMPLETED, FAILED and CANCELLED: nothing more happens to the entity
    /// unless a retry sends it back to WAITING.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            EntityStatus::Completed | EntityStatus::Failed | EntityStatus::Cancelled
        )
    }
}

impl Tone {
    /// The tone of any status name (batch, entity or job), for colour;
    /// `None` for text that is no status.
    pub fn of(text: &str) -> Option<Tone> {
        Some(match text {
            "DONE" | "COMPLETED" | "PROCESSED" => Tone::Good,
            "FAILED" | "TERMINATED" => Tone::Bad,
            "CANCELLED" | "PAUSED" | "STOPPING" => Tone::Held,
            "IN_PROGRESS" | "IN_PROCESS" | "GENERATE_IID_LIST" | "RESTART" => Tone::Active,
            _ => return None,
        })
    }
}
