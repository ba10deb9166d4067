//! What the executor runs: a BATCH statement that [`crate::analyze`] has
//! checked against the catalog, its names resolved, its options typed,
//! the node's limits and the defaults applied. Nothing here reads the
//! statement again.

use crate::ast::CommandKind;
use crate::source::{self, Param};
use crate::store::LuDef;
use std::time::Duration;

/// Where entity ids come from.
#[derive(Debug)]
pub enum EntitySource {
    /// Listed in the statement, in order (duplicates are dropped on store).
    Ids(Vec<String>),
    /// A query's first column: ROOT, an instance group, or FROM ... USING.
    Query {
        interface: source::Interface,
        sql: String,
        params: Vec<Param>,
        /// How the statement named it, for BATCH_INFO ("root", "group vip"...).
        origin: String,
    },
    /// Instances present in the LU store of this LU.
    Fabric(LuDef),
    /// `FROM STDIN` / `FROM FILE`: one id per line, read by the process
    /// that creates the batch before the batch is created
    /// ([`crate::source::lines`]), then stored before any is processed.
    /// `ids` is `None` until read, and stays `None` in the plan of a
    /// stored batch (a retry, a worker): its ids are in the store, and
    /// the lines are never read again.
    Lines { from: Lines, ids: Option<LineIds> },
}

/// The ids of a [`EntitySource::Lines`], shared with the thread that hands
/// them out (a million of them are not copied to start it).
pub type LineIds = std::sync::Arc<Vec<Result<String, source::IdError>>>;

/// Where the lines of a [`EntitySource::Lines`] come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Lines {
    Stdin,
    /// The path as written, and resolved (absolute).
    File {
        written: String,
        path: std::path::PathBuf,
    },
}

impl std::fmt::Display for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lines::Stdin => f.write_str("standard input"),
            Lines::File { path, .. } => write!(f, "file {}", path.display()),
        }
    }
}

/// `MAX_FAILURES`: a count, or a share of the total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FailureLimit {
    Count(i64),
    Percent(f64),
}

impl FailureLimit {
    /// Whether `failed` entities out of `total` pass the limit. While the
    /// source is still read, `total` is what is known of it: the ids read
    /// so far (stored or not yet), or ESTIMATED_ENTITIES_COUNT if larger.
    pub fn passed(self, failed: i64, total: i64) -> bool {
        match self {
            FailureLimit::Count(n) => failed > n,
            FailureLimit::Percent(p) => total > 0 && (failed as f64) * 100.0 > p * total as f64,
        }
    }
}

impl std::fmt::Display for FailureLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureLimit::Count(n) => write!(f, "{n}"),
            FailureLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The most worker threads one batch runs on one node (SPEC §4:
/// per-entity commands are often I/O-bound, so a synchronous batch runs as
/// many as it asks for, up to this).
pub const MAX_NODE_WORKERS: usize = 1024;

/// A batch, ready to run: every field is what runs, not what was written
/// (the options as written are [`crate::analyze::BatchOptions`]).
#[derive(Debug)]
pub struct Plan {
    /// The statement's canonical text: the batch's `command` in the store.
    pub command_text: String,
    /// The LU's name; for an ad-hoc batch, the undefined name that labels it.
    pub lu: String,
    /// An ad-hoc batch whose label is close to a defined LU: the note that
    /// says so ("no LU named Custmer; running as an ad-hoc batch (did you
    /// mean Customer?)"), for stderr.
    pub adhoc_note: Option<String>,
    pub command: CommandKind,
    pub source: EntitySource,
    /// The LU a sync_instance / delete_instance command works on.
    pub command_lu: Option<LuDef>,
    /// The interface of that LU (sync_instance reads it).
    pub command_lu_source: Option<source::Interface>,
    /// The interface a `sql` command runs on.
    pub command_interface: Option<source::Interface>,
    /// Worker threads: `MAX_WORKERS_PER_NODE` (default: the node's
    /// default), at most `node_workers`.
    pub workers: usize,
    /// The node's worker limit: what `BATCH_EDIT` may raise `workers` to
    /// ([`MAX_NODE_WORKERS`] for a synchronous batch).
    pub node_workers: usize,
    /// `MAX_WORKERS_PER_NODE` as given, where it is more than `workers`:
    /// the statement asked for more than the node runs.
    pub workers_capped_from: Option<usize>,
    pub max_retries: i64,
    pub retry_delay: Duration,
    pub entity_timeout: Option<Duration>,
    pub max_failures: Option<FailureLimit>,
    pub chunk_size: Option<usize>,
    pub generate_first: bool,
    /// `ASYNC=true` (or `OPEN=true`): a worker runs the batch; the
    /// statement returns at once.
    pub asynchronous: bool,
    /// Where the batch may run: `AFFINITY`, `JOB_AFFINITY`, `@DC`,
    /// `MAX_NODES`.
    pub placement: crate::batch::Placement,
    /// `OPEN=true`: after its source, the batch's feeding run reads the
    /// ids appended to it (`BATCH_APPEND`) until `BATCH_WAITOFF`.
    pub open: bool,
    pub estimated_total: Option<i64>,
    pub on_done: Option<String>,
    pub allow_multiple: bool,
    /// `RESUME=true`: a twin that no process runs and none will take is
    /// continued (as `BATCH_RETRY`) instead of refused (SPEC §4).
    pub resume: bool,
    /// `OUTPUT_LIMIT`: bytes of each of stdout and stderr kept.
    pub output_limit: usize,
    /// `SHOW_OUTPUT`: each line an entity's process writes goes to the
    /// run's [`crate::batch::Events::lines`] as it comes.
    pub show_output: bool,
    /// The options as written, as JSON: the batch's `arguments` in the store.
    pub arguments: serde_json::Value,
    /// Where a new batch's `exec`, `shell` and `pipe` commands run: the
    /// working directory of the session that creates it (SPEC §5), which
    /// the batch records. A run of a stored batch reads it from the store.
    pub workdir: Option<std::path::PathBuf>,
    /// `NAME=...`: the batch is a run of this named series (SPEC §9).
    pub series: Option<SeriesPlan>,
}

/// The named series a batch is a run of, and the settings its `BATCH`
/// gives the series (`None`: kept as the series has them).
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPlan {
    pub name: String,
    pub reprocess_hours: Option<i64>,
    pub trunc_start: Option<bool>,
}

impl EntitySource {
    /// The `source` JSON of the batch row (BATCH_INFO shows it).
    pub fn describe(&self) -> serde_json::Value {
        match self {
            EntitySource::Ids(ids) => serde_json::json!({"kind": "ids", "ids": ids}),
            EntitySource::Query {
                interface,
                sql,
                origin,
                ..
            } => serde_json::json!({
                "kind": "query", "interface": interface.name, "sql": sql, "origin": origin
            }),
            EntitySource::Fabric(_) => serde_json::json!({"kind": "fabric"}),
            EntitySource::Lines { from, ids } => {
                let mut j = match from {
                    Lines::Stdin => serde_json::json!({"kind": "stdin"}),
                    Lines::File { path, .. } => {
                        serde_json::json!({"kind": "file", "path": path.display().to_string()})
                    }
                };
                if let Some(ids) = ids {
                    j["lines"] = ids.len().into();
                }
                j
            }
        }
    }
}
