//! Open batches (SPEC §4 `OPEN`, §6 `BATCH_APPEND`, `BATCH_WAITOFF`): a
//! batch created `WITH OPEN=true` takes more entities from any process
//! until it is closed. [`AppendStore`] is the seam.
//!
//! An appended id is not an entity yet: `BATCH_APPEND` only records it,
//! in the order of appending, and the run that feeds the batch (the one
//! that reads its source) reads the appends after its source, through the
//! same duplicate check as the source's ids, and stores them as entities
//! in its own steps. So the batch's one writer stays the only one that
//! numbers entities and counts them, and an id appended twice, or appended
//! while the source also gives it, is processed once.

use super::{Result, StoreError};
use crate::batch::BatchStatus;

/// Whether a batch takes `BATCH_APPEND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Openness {
    /// Created without `OPEN=true`.
    NotOpen,
    /// Takes appends until `BATCH_WAITOFF`.
    Open,
    /// `BATCH_WAITOFF` closed it: it ends once its entities are done.
    Closed,
}

impl Openness {
    /// The `open` column of `batches` as [`Openness`]: no value for a
    /// batch created without `OPEN=true`, 0 once closed.
    pub fn from_column(open: Option<i64>) -> Openness {
        match open {
            None => Openness::NotOpen,
            Some(0) => Openness::Closed,
            Some(_) => Openness::Open,
        }
    }

    /// Why a batch that is `self` and `status` takes no appends, or is
    /// not to be closed; `None` when it is open and not final.
    pub fn refusal(self, status: BatchStatus) -> Option<NotOpen> {
        if status.is_final() {
            return Some(NotOpen::Ended(status));
        }
        match self {
            Openness::Open => None,
            Openness::Closed => Some(NotOpen::Closed),
            Openness::NotOpen => Some(NotOpen::NotOpen),
        }
    }
}

/// How a batch stands for appends, as a transaction that appends to it
/// or closes it sees it.
pub struct Standing {
    /// The number that keys its rows.
    pub no: i64,
    pub status: BatchStatus,
    pub execution_id: String,
    pub openness: Openness,
}

impl Standing {
    /// The refusal of `verb` (what was asked, for the message: "append
    /// to", "close") on batch `bid` when it is not open, or is final.
    pub fn refusal(&self, bid: &str, verb: &'static str) -> Option<StoreError> {
        self.openness
            .refusal(self.status)
            .map(|why| StoreError::NotOpen {
                verb,
                bid: bid.to_string(),
                why,
            })
    }
}

/// The note of the event that `BATCH_APPEND` of `n` ids records.
pub fn append_note(n: usize) -> String {
    format!("BATCH_APPEND: {n} ids")
}

/// The note of the event that `BATCH_WAITOFF` records.
pub const CLOSE_NOTE: &str = "BATCH_WAITOFF: closed to appends";

/// Why a batch takes no more appends (and cannot be closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotOpen {
    #[error(
        "it is not an OPEN batch (it was created without WITH OPEN=true); only a batch \
         created WITH OPEN=true takes BATCH_APPEND"
    )]
    NotOpen,
    #[error(
        "BATCH_WAITOFF has closed it; it takes no more entities (start another batch WITH \
         OPEN=true for more)"
    )]
    Closed,
    #[error("it has ended ({0})")]
    Ended(BatchStatus),
}

/// Appended ids read by the feeding run: each with its place in the order
/// of appending, and whether the batch was still open when they were read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// `(place, id)`, in the order of appending.
    pub ids: Vec<(i64, String)>,
    /// The batch is still open: more may come. Read in the same snapshot
    /// as `ids`, so a batch read closed has no append after these.
    pub open: bool,
}

/// The store's side of open batches.
pub trait AppendStore {
    /// `BATCH_APPEND`: records `ids` for the batch, in order, in one
    /// IMMEDIATE transaction that first checks the batch is open and not
    /// final (else it records nothing, and the error says why,
    /// [`super::StoreError::NotOpen`]). Gives how many it recorded.
    fn append_ids(&self, bid: &str, ids: &[String], node: &str) -> Result<usize>;

    /// `BATCH_WAITOFF`: closes the batch to appends, with an event, if it
    /// is open and not final (else [`super::StoreError::NotOpen`]).
    fn close_batch(&self, bid: &str, node: &str) -> Result<()>;

    /// The ids appended to the batch after place `after` (0: from the
    /// first), at most `limit` of them, and whether the batch is open.
    fn appended_since(&self, bid: &str, after: i64, limit: usize) -> Result<Appended>;
}
