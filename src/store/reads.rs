//! What the monitoring statements read (SPEC §6): batch rows, per-node
//! counters, progress samples, entity rows, events, and bid resolution.
//! [`ReadStore`] is the seam; every read there stays fast on a store with
//! millions of entity rows (see the SQLite implementation).

use super::batches::Counters;
use super::{Result, StoreError};
use crate::batch::{BatchStatus, EntityStatus};
use regex::Regex;

/// One row of `batches`, as stored (JSON columns as text).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRow {
    pub bid: String,
    pub command: String,
    pub lu: String,
    pub fabric_command: String,
    /// JSON: where the ids come from.
    pub source: String,
    /// JSON object: options by canonical name.
    pub arguments: String,
    pub status: BatchStatus,
    pub execution_id: String,
    pub created_by: String,
    pub creation_time: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub error: Option<String>,
    pub extra_stats: Option<String>,
    /// The source is exhausted: `counts.total` is final.
    pub ids_complete: bool,
    pub estimated_total: Option<i64>,
    pub counts: Counters,
    /// Whether it takes `BATCH_APPEND` (`OPEN=true`, not yet closed).
    pub openness: super::appends::Openness,
}

impl BatchRow {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

/// Which batch statuses `BATCH_LIST` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// Not DONE, FAILED or CANCELLED: what `BATCH_LIST` shows by default.
    #[default]
    Active,
    All,
    /// Exactly these statuses.
    Only(Vec<BatchStatus>),
}

/// What `BATCH_LIST` asks for.
#[derive(Clone, Debug, Default)]
pub struct ListQuery<'a> {
    pub status: StatusFilter,
    /// Created at or after this time (store time text).
    pub created_from: Option<String>,
    /// Created before this time (store time text; exclusive).
    pub created_before: Option<String>,
    /// Keeps only batches whose command text matches.
    pub command: Option<&'a Regex>,
    /// At most this many rows, counted after the filters.
    pub limit: Option<usize>,
}

/// A batch's counters on one node (`batch_nodes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    pub node: String,
    pub dc: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub completed: i64,
    pub failed: i64,
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
}

/// Two progress samples of one node, `(time_ms, done)`: the newest, and the
/// newest at least the window older than it (else the oldest). The pace
/// over the window is the difference between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaceSamples {
    pub newest: (i64, i64),
    pub reference: (i64, i64),
}

/// What `BATCH_DETAILS` asks for.
#[derive(Clone, Debug, Default)]
pub struct DetailsQuery {
    /// Entity statuses to keep; `None`: all.
    pub statuses: Option<Vec<EntityStatus>>,
    /// Entity ids to keep; `None`: all.
    pub entity_ids: Option<Vec<String>>,
    /// Node ids or DC names (through `batch_nodes`) to keep; `None`: all.
    pub nodes: Option<Vec<String>>,
    /// At most this many rows; `None`: all.
    pub limit: Option<usize>,
    /// Slowest first (longest process time; entities never run last),
    /// instead of the order of arrival.
    pub slowest_first: bool,
}

/// One row of `batch_entities`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityRow {
    pub seq: i64,
    pub entity_id: String,
    pub node: Option<String>,
    pub status: EntityStatus,
    pub attempts: i64,
    /// When its latest attempt started (or it was claimed, while no
    /// attempt has ended), in ms since 1970-01-01 UTC.
    pub start_time_ms: Option<i64>,
    pub process_time_ms: Option<i64>,
    pub error: Option<String>,
    /// JSON text, as Fabric stores it.
    pub result: Option<String>,
}

/// An entity being processed now, with its batch's details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InProcessRow {
    pub node: Option<String>,
    pub bid: String,
    pub entity_id: String,
    pub lu: String,
    /// When the current attempt started, in ms since 1970-01-01 UTC.
    pub start_time_ms: Option<i64>,
    pub execution_id: String,
    /// The batch's command text.
    pub command: String,
    /// The batch's `FABRIC_COMMAND`, in canonical form.
    pub fabric_command: String,
    /// The process that runs the batch, and its last heartbeat: what
    /// tells whether a row that names no holder is being processed
    /// ([`crate::owner`]).
    pub owner_node: Option<String>,
    pub owner_pid: Option<i64>,
    pub heartbeat_at: Option<String>,
    /// The worker id of the node that holds the entity (its claim's), if
    /// the row names one: whether that node still holds it decides
    /// whether it is listed.
    pub worker: Option<String>,
}

/// One row of `batch_events`: a status change of a batch or an execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub time: String,
    pub execution_id: Option<String>,
    pub node: Option<String>,
    pub status: String,
    pub note: Option<String>,
}

/// The monitoring statements' reads.
pub trait ReadStore {
    /// The bid a monitoring or control statement means: `given` (an exact bid,
    /// or a unique prefix of at least 6 characters), else `last`, the last batch
    /// started in this session.
    fn resolve_bid(&self, given: Option<&str>, last: Option<&str>) -> Result<String>;

    /// One batch by its exact bid (see [`ReadStore::resolve_bid`] for prefixes).
    fn read_batch(&self, bid: &str) -> Result<BatchRow>;

    /// Batch rows, newest first (creation time, then bid, descending). Reads
    /// only the `batches` table, walking its creation-time index.
    fn list_batches(&self, q: &ListQuery<'_>) -> Result<Vec<BatchRow>>;

    /// The nodes that took part in a batch, by DC, then node.
    fn batch_node_rows(&self, bid: &str) -> Result<Vec<NodeRow>>;

    /// The samples for a node's pace over the last `window_ms` of its samples;
    /// `None` when the node has no sample. Three reads of the primary key.
    fn pace_samples(&self, bid: &str, node: &str, window_ms: i64) -> Result<Option<PaceSamples>>;

    /// A batch's entity rows, in order of arrival (or slowest first): its own
    /// rows, and the entities claimed as they arrived that have no row yet
    /// (`batch_claimed`, IN_PROCESS).
    fn entity_rows(&self, bid: &str, q: &DetailsQuery) -> Result<Vec<EntityRow>>;

    /// Every entity `IN_PROCESS` now, across batches, by node, then longest at
    /// work first. Only batches whose `in_process` counter is set are visited,
    /// each through the index of its unfinished entities.
    fn in_process_rows(&self) -> Result<Vec<InProcessRow>>;

    /// A batch's events, oldest first (in the order they were recorded, which
    /// clocks of different nodes cannot disturb).
    fn event_rows(&self, bid: &str) -> Result<Vec<EventRow>>;
}

/// How many matching bids an "ambiguous prefix" error lists.
const AMBIGUOUS_SHOWN: usize = 5;

/// The shortest bid prefix accepted (SPEC §6).
const MIN_PREFIX: usize = 6;

/// Batches looked at for a did-you-mean: the most recent ones.
const SUGGEST_FROM: i64 = 1000;

/// How a store finds bids, for [`resolve`]: the three reads that
/// [`ReadStore::resolve_bid`] is made of, each a seek of an index.
pub(crate) trait BidLookup {
    /// `bid` itself, if a batch has it.
    fn exact(&self, bid: &str) -> Result<Option<String>>;
    /// Up to `n` bids from `prefix` on, in byte order (a range read of the
    /// primary key: the bids with a prefix are contiguous in that order).
    fn starting_at(&self, prefix: &str, n: i64) -> Result<Vec<String>>;
    /// The bids of the `n` batches created last.
    fn recent(&self, n: i64) -> Result<Vec<String>>;
}

/// [`ReadStore::resolve_bid`], on the reads `store` gives.
pub(crate) fn resolve(
    store: &impl BidLookup,
    given: Option<&str>,
    last: Option<&str>,
) -> Result<String> {
    let Some(given) = given.map(str::trim) else {
        return last.map(str::to_string).ok_or(StoreError::NoLastBatch);
    };
    // Bids are lowercase UUIDs, which read the same in either case; the
    // messages quote what was typed.
    let typed = given;
    let lowered = given.to_ascii_lowercase();
    let given = lowered.as_str();
    if let Some(bid) = store.exact(given)? {
        return Ok(bid);
    }
    if given.chars().count() < MIN_PREFIX {
        return Err(StoreError::BidPrefixTooShort(typed.to_string()));
    }
    let mut matches: Vec<String> = store
        .starting_at(given, AMBIGUOUS_SHOWN as i64 + 1)?
        .into_iter()
        .take_while(|b| b.starts_with(given))
        .collect();
    match matches.len() {
        0 => Err(StoreError::NoBatch {
            given: typed.to_string(),
            suggestion: nearest_bid(given, store)?,
        }),
        1 => Ok(matches.remove(0)),
        n => {
            matches.truncate(AMBIGUOUS_SHOWN);
            Err(StoreError::AmbiguousBid {
                prefix: typed.to_string(),
                matches,
                more: n > AMBIGUOUS_SHOWN,
            })
        }
    }
}

/// The bid of a recent batch that `given` (a bid or a prefix) is a typo
/// of: its start, as long as `given`, one edit away (two for 12 characters
/// or more), and no other as near. Bids are random hex: a looser match
/// would suggest unrelated batches.
fn nearest_bid(given: &str, store: &impl BidLookup) -> Result<Option<String>> {
    let len = given.chars().count();
    if len > 36 + 2 {
        return Ok(None);
    }
    let limit = if len >= 12 { 2 } else { 1 };
    let mut best: Option<(usize, String)> = None;
    let mut tie = false;
    for bid in store.recent(SUGGEST_FROM)? {
        let start: String = bid.chars().take(len).collect();
        let d = crate::typo::edit_distance(given, &start);
        if d > limit {
            continue;
        }
        match &best {
            Some((bd, _)) if d > *bd => {}
            Some((bd, _)) if d == *bd => tie = true,
            _ => {
                best = Some((d, bid));
                tie = false;
            }
        }
    }
    Ok(best.filter(|_| !tie).map(|(_, bid)| bid))
}
