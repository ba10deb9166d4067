//! The monitoring statements (SPEC §6): `BATCH_LIST`, `BATCH_INFO`,
//! `BATCH_SUMMARY`, `BATCH_DETAILS`, `BATCH_IN_PROCESS`, `BATCH_HISTORY` and
//! `BATCH_OUTPUT` (`entity_output.rs`),
//! each turned into an [`Output`] from the store's read-only queries
//! ([`crate::store::ReadStore::resolve_bid`] and its siblings).
//!
//! Decisions the spec leaves open, kept here so the docs can quote them:
//!
//! - **Bids.** A statement without a bid means the last batch started in
//!   this session (the session passes the store's newest batch when it has
//!   started none, see `session/monitor.rs`); an exact bid always wins, even one shorter than 6
//!   characters; otherwise a prefix of at least 6 characters must match
//!   exactly one bid (an ambiguous prefix lists up to 5 matches).
//! - **Time filters** (`FROM_DATE`, `TO_DATE`): `today`, `yesterday` and
//!   `YYYY-MM-DD` name a local calendar day, `YYYY-MM-DD HH:MM:SS` is a local
//!   time, RFC 3339 is taken as written, `now` is now. `FROM_DATE` keeps
//!   batches created at or after the start of its day (or its instant);
//!   `TO_DATE` keeps batches created up to the *end* of its day (so
//!   `FROM_DATE='today' TO_DATE='today'` is today's batches), or up to and
//!   including its instant. Both filter on the creation time, which is
//!   indexed and set for every batch, waiting ones included.
//! - **`BATCH_LIST`.** `Start date` / `End date` are the batch's start and
//!   end times (empty until a worker starts or ends it). `STATUS` takes a
//!   comma list; `ALL` anywhere in it shows every status; `GENERATE_IID`
//!   means `GENERATE_IID_LIST`; `IN_PROGRESS` is that status only. `FILTER`
//!   is a regular expression (Rust `regex` syntax, case-sensitive; `(?i)`
//!   for case-insensitive) searched in the batch's command text. There is
//!   no default `LIMIT`; `LIMIT=-1` also means all; the limit counts rows
//!   that pass every filter.
//! - **`Completion %`** (and the cluster row's `% Completed`) =
//!   (completed + failed + cancelled) / total * 100. While ids are still
//!   being generated and `ESTIMATED_ENTITIES_COUNT` is larger than the total
//!   so far, the estimate is the total (the spec's "total to show while the
//!   real total is unknown"); this also applies to the summary's `Total`.
//!   With a total of 0 it is 100 for a `DONE` batch (nothing was left to
//!   do) and empty (`null`) otherwise (nothing known yet).
//! - **`BATCH_INFO`** keys, in order: `Batch id`, `Command`, `Status`, `LU`,
//!   `Fabric command`, `Entity source` (the stored source JSON as one
//!   readable line: kind, group, ids, interface, SQL), one `Option NAME` row
//!   per stored option (by name; JSON key `option_name`), `Execution id`,
//!   `Created by`, `Creation time`, `Start time`, `End time`, `Error`,
//!   `extra_stats` (JSON). Missing values are empty / `null`.
//! - **`BATCH_SUMMARY`.** Rows: one `Node` row per node (by DC, then node),
//!   one `DC` row per DC, then one `Cluster` row whose `Name` is empty.
//!   Node rows: `Status` is the batch's, `Total` = the node's succeeded +
//!   failed, `Remaining`, `Remaining dur.` and `% Completed` are empty.
//!   DC rows: sums of their nodes; started at the earliest node start,
//!   ended at the latest node end once every node has ended. Cluster row:
//!   the batch row's counters and times; `Remaining` = total - completed -
//!   failed - cancelled; `Remaining dur.` = remaining / pace (0 when nothing
//!   remains, empty when the pace is 0 or unknown). A running row's
//!   duration runs to now; a node or DC with no end of a finished batch
//!   (its process was killed) ends with the batch, `End time` included.
//!   So Node totals need not add up to the Cluster's: entities waiting or
//!   cancelled, and bad ids (failed on arrival, run by no node), are only
//!   in the Cluster row.
//! - **Pace** (`Ent./sec (pace)`), per node, from its progress samples: the
//!   entities finished between its newest sample and the newest sample at
//!   least 100 s older (else its oldest sample), divided by the seconds
//!   between them; unknown (empty) with fewer than two samples. While the
//!   batch is active, a node whose newest sample is more than 100 s old has
//!   pace 0 (it finished nothing in the last 100 s). DC and cluster paces
//!   are the sums of their nodes' known paces. **Avg** (`Ent./sec (avg.)`)
//!   = (succeeded + failed) / the row's duration in seconds.
//! - **`BATCH_DETAILS`.** `STATUS` is a comma list of entity statuses;
//!   `ENTITIES` a comma list of entity ids (spaces around commas are
//!   trimmed, case kept); `AFFINITY` a comma list of node ids or DC names.
//!   `LIMIT` defaults to 10000, `-1` is all. Rows come in order of arrival;
//!   `SORT_BY_PROCESS_TIME=true` puts the slowest first (entities never run
//!   last, in order of arrival). `Results` is the result JSON itself (text
//!   when it does not parse). After the spec's columns, at the end so that
//!   CSV read by position keeps working: `Start time` (of the latest
//!   attempt, or of the claim while in process), `Exit code` (the result's
//!   `exit`, null without one) and `Command` ([`command_as_run`]).
//! - **`BATCH_IN_PROCESS`**: by node, then longest at work first. `Command`
//!   is the command as run for the entity ([`command_as_run`]); `FILTER`
//!   is searched in it, in the batch's command text and in the entity id.
//! - **`BATCH_HISTORY`** columns: `Time, Execution id, Node, Status, Note`,
//!   in the order the events were recorded (oldest first).

use crate::ast::{Options, Span, Statement, Text, Value};
use crate::batch::{BatchStatus, EntityStatus};
use crate::output::{Cell, KeyValues, Output, Table, columns};
use crate::store::{
    self, BatchRow, DetailsQuery, ListQuery, NodeRow, PaceSamples, StatusFilter, Store,
};
use chrono::{
    DateTime, Datelike, Local, NaiveDate, NaiveDateTime, SecondsFormat, TimeDelta, TimeZone, Utc,
};
use regex::Regex;
use std::collections::BTreeMap;
use std::time::Duration;

mod entity_output;
mod info;
mod nodes;
mod options;
mod summary;
#[cfg(test)]
mod tests;
mod time;

pub use info::describe_source;
pub use time::{Bound, time_bound};

use options::{comma_list, entity_filter, list_opt, parse_statuses, str_opt};
use time::*;

/// Why a monitoring statement could not answer.
#[derive(Debug, thiserror::Error)]
pub enum MonitorErrorKind {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// An option or a bid that cannot be.
    #[error("{0}")]
    Invalid(String),
}

/// A [`MonitorErrorKind`] and the part of the statement it is about.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct MonitorError {
    /// Boxed: the layers' errors are large, and travel in every `Result`.
    pub kind: Box<MonitorErrorKind>,
    pub span: Option<Span>,
}

type Result<T> = std::result::Result<T, MonitorError>;

/// The window of the pace (SPEC §6: "rate over the last 100 s").
const PACE_WINDOW_MS: i64 = 100_000;

/// `BATCH_DETAILS` without `LIMIT` (SPEC §6).
const DETAILS_DEFAULT_LIMIT: usize = 10_000;

/// Runs a monitoring statement. `last_bid` is the last batch started in
/// this session (for statements without a bid). `_node` is this process's
/// node id, taken for symmetry with the control statements; no monitoring
/// output depends on it.
///
/// Errors point at the bid or the option they are about; an error about
/// the statement as a whole (no bid given and no batch in this session
/// yet) has no span, and the caller may point it at the statement.
/// Any other statement is an error (the caller dispatches only these).
pub fn run(
    store: &dyn Store,
    stmt: &Statement,
    last_bid: Option<&str>,
    _node: &str,
) -> Result<Output> {
    run_at(store, stmt, last_bid, Utc::now(), &Local)
}

/// Whether [`run`] handles `stmt`.
pub fn handles(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::BatchList { .. }
            | Statement::BatchInfo { .. }
            | Statement::BatchSummary { .. }
            | Statement::BatchDetails { .. }
            | Statement::BatchInProcess { .. }
            | Statement::BatchHistory { .. }
            | Statement::BatchOutput { .. }
            | Statement::ShowNodes
    )
}

/// [`run`] at a given moment, with local times read in `tz`, so that tests
/// do not depend on the clock or the machine's zone.
pub(crate) fn run_at<Tz: TimeZone>(
    store: &dyn Store,
    stmt: &Statement,
    last_bid: Option<&str>,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Result<Output> {
    let cx = Cx {
        store,
        last_bid,
        now,
    };
    match stmt {
        Statement::BatchList { options } => cx.list(options, tz),
        Statement::BatchInfo { bid } => cx.info(bid.as_ref()),
        Statement::BatchSummary { bid } => cx.summary(bid.as_ref()),
        Statement::BatchDetails { bid, options } => cx.details(bid.as_ref(), options),
        Statement::BatchInProcess { bid, options } => cx.in_process(bid.as_ref(), options),
        Statement::BatchHistory { bid } => cx.history(bid.as_ref()),
        Statement::BatchOutput { bid, options } => cx.output(bid.as_ref(), options),
        Statement::ShowNodes => cx.nodes(),
        other => Err(error(
            None,
            format!("{} is not a monitoring statement", other.name()),
        )),
    }
}

/// What every statement needs: the store, the session's last bid and the
/// moment "now". Errors that concern no bid or option have no span (the
/// caller knows the statement's).
struct Cx<'a> {
    store: &'a dyn Store,
    last_bid: Option<&'a str>,
    now: DateTime<Utc>,
}

impl Cx<'_> {
    fn store_err(&self, span: Option<Span>) -> impl Fn(store::StoreError) -> MonitorError {
        move |e| MonitorError {
            kind: Box::new(MonitorErrorKind::Store(e)),
            span,
        }
    }

    /// The batch a statement means, read (so a purged last batch is an
    /// error, not an empty result).
    fn batch(&self, bid: Option<&Text>) -> Result<BatchRow> {
        let span = bid.map(|t| t.span);
        let bid = self
            .store
            .resolve_bid(bid.map(|t| t.value.as_str()), self.last_bid)
            .map_err(self.store_err(span))?;
        self.store.read_batch(&bid).map_err(self.store_err(span))
    }

    fn list<Tz: TimeZone>(&self, options: &Options, tz: &Tz) -> Result<Output> {
        // `STATUS='INTERRUPTED'` is no stored status: the batches that may
        // be interrupted are read, and kept when they are.
        let mut want_interrupted = false;
        let mut asked = None;
        let status = match options.get("STATUS") {
            None => StatusFilter::Active,
            Some(v) => {
                let mut statuses = comma_list(str_opt(options, "STATUS", v)?)
                    .into_iter()
                    .map(|s| s.to_ascii_uppercase())
                    .collect::<Vec<_>>();
                want_interrupted = statuses.iter().any(|s| s == INTERRUPTED);
                statuses.retain(|s| s != INTERRUPTED);
                if statuses.iter().any(|s| s == "ALL") {
                    StatusFilter::All
                } else {
                    let only = parse_statuses(options, &statuses, BatchStatus::parse_filter)?;
                    let mut read = only.clone();
                    if want_interrupted {
                        read.extend(BatchStatus::RUNNING);
                    }
                    asked = Some(only);
                    StatusFilter::Only(read)
                }
            }
        };
        // A batch shown INTERRUPTED is kept by STATUS='INTERRUPTED' (or
        // ALL, or no STATUS), not by the status it has stored: the limit
        // is counted after that.
        let sifted = match &status {
            StatusFilter::All => false,
            StatusFilter::Active => false,
            StatusFilter::Only(s) => s.iter().any(|s| BatchStatus::RUNNING.contains(s)),
        };
        let created_from = self
            .time_opt(options, "FROM_DATE", tz, Bound::From)?
            .map(|t| bound_time(&t));
        let created_before = self
            .time_opt(options, "TO_DATE", tz, Bound::Until)?
            .map(|t| bound_time(&t));
        let filter = self.regex_opt(options, "FILTER")?;
        let limit = self.limit_opt(options, None)?;
        let rows = self
            .store
            .list_batches(&ListQuery {
                status,
                created_from,
                created_before,
                command: filter.as_ref(),
                limit: if sifted { None } else { limit },
            })
            .map_err(self.store_err(None))?;
        let mut t = Table::new(columns::BATCH_LIST.iter().copied());
        for b in rows {
            if limit.is_some_and(|n| t.rows.len() >= n) {
                break;
            }
            let shown = shown_status(self.store, &b).map_err(self.store_err(None))?;
            if let Some(asked) = &asked
                && !(if shown == INTERRUPTED {
                    want_interrupted
                } else {
                    asked.contains(&b.status)
                })
            {
                continue;
            }
            t.push_row(vec![
                Cell::Text(b.bid.clone()),
                Cell::Text(b.command.clone()),
                time_cell(b.start_time.as_deref()),
                time_cell(b.end_time.as_deref()),
                Cell::Text(shown),
                Cell::Text(b.created_by.clone()),
                completion_pct(&b).into(),
                Cell::Text(b.execution_id.clone()),
                b.error.clone().into(),
            ]);
        }
        Ok(t.into())
    }

    fn details(&self, bid: Option<&Text>, options: &Options) -> Result<Output> {
        let span = bid.map(|t| t.span);
        let b = self.batch(bid)?;
        let q = DetailsQuery {
            nodes: list_opt(options, "AFFINITY")?,
            limit: self.limit_opt(options, Some(DETAILS_DEFAULT_LIMIT))?,
            slowest_first: matches!(options.get("SORT_BY_PROCESS_TIME"), Some(Value::Bool(true))),
            ..entity_filter(options)?
        };
        let rows = self
            .store
            .entity_rows(&b.bid, &q)
            .map_err(self.store_err(span))?;
        let mut t = Table::new(columns::BATCH_DETAILS.iter().copied());
        for e in rows {
            let results = json_cell(e.result.as_deref());
            let exit = match &results {
                Cell::Json(r) => r.get("exit").and_then(serde_json::Value::as_i64),
                _ => None,
            };
            let command = command_as_run(&b.fabric_command, &e.entity_id);
            t.push_row(vec![
                Cell::Text(e.entity_id),
                e.node.into(),
                Cell::Text(e.status.to_string()),
                Cell::Int(e.attempts),
                e.process_time_ms.into(),
                e.error.into(),
                results,
                e.start_time_ms
                    .and_then(utc_ms)
                    .map_or(Cell::Null, Cell::Time),
                exit.into(),
                Cell::Text(command),
            ]);
        }
        Ok(t.into())
    }

    /// `BATCH_IN_PROCESS`: the entities of batch `bid` (resolved as every
    /// statement resolves one: a prefix, a did-you-mean), or of every
    /// batch without one.
    fn in_process(&self, bid: Option<&Text>, options: &Options) -> Result<Output> {
        let filter = self.regex_opt(options, "FILTER")?;
        let only = match bid {
            Some(given) => Some(
                self.store
                    .resolve_bid(Some(&given.value), self.last_bid)
                    .map_err(self.store_err(Some(given.span)))?,
            ),
            None => None,
        };
        let mut rows = self.store.in_process_rows().map_err(self.store_err(None))?;
        if let Some(bid) = &only {
            rows.retain(|r| r.bid == *bid);
        }
        let now_ms = self.now.timestamp_millis();
        let mut t = Table::new(columns::BATCH_IN_PROCESS.iter().copied());
        let nodes = self.store.nodes().map_err(self.store_err(None))?;
        let mut alive = std::collections::HashMap::new();
        for r in rows {
            let held = match r.worker.as_deref() {
                Some(worker) => still_held(nodes.iter().find(|n| n.worker_id == worker)),
                // A row from before claims named their node: its batch's
                // owner tells.
                None => *alive.entry(r.bid.clone()).or_insert_with(|| {
                    crate::owner::alive(
                        r.owner_node.as_deref(),
                        r.owner_pid,
                        r.heartbeat_at.as_deref(),
                    )
                }),
            };
            if !held {
                continue;
            }
            let command = command_as_run(&r.fabric_command, &r.entity_id);
            if let Some(re) = &filter
                && !re.is_match(&r.command)
                && !re.is_match(&command)
                && !re.is_match(&r.entity_id)
            {
                continue;
            }
            let at_work = r.start_time_ms.map(|s| (now_ms - s).max(0));
            t.push_row(vec![
                r.node.into(),
                Cell::Text(r.bid),
                Cell::Text(r.entity_id),
                Cell::Text(r.lu),
                at_work.into(),
                Cell::Text(r.execution_id),
                Cell::Text(command),
            ]);
        }
        Ok(t.into())
    }

    fn history(&self, bid: Option<&Text>) -> Result<Output> {
        let span = bid.map(|t| t.span);
        let b = self.batch(bid)?;
        let rows = self
            .store
            .event_rows(&b.bid)
            .map_err(self.store_err(span))?;
        let mut t = Table::new(HISTORY_COLUMNS.iter().copied());
        for e in rows {
            t.push_row(vec![
                time_cell(Some(e.time.as_str())),
                e.execution_id.into(),
                e.node.into(),
                Cell::Text(e.status.to_string()),
                e.note.into(),
            ]);
        }
        Ok(t.into())
    }
}

/// What monitoring shows for a batch that no process runs and none will
/// take over (SPEC §6); its stored status stays as it was.
pub const INTERRUPTED: &str = "INTERRUPTED";

/// Whether batch `bid`, now `status`, is interrupted (SPEC §6): it is
/// unfinished and not paused, no live process runs it, and no worker will
/// take it (an asynchronous batch whose owner died is taken over by any
/// live worker its placement lets own it; one still waiting for its job
/// is not interrupted). `BATCH_RETRY`, or `RESUME=true`, finishes it.
pub fn interrupted(store: &dyn Store, bid: &str, status: BatchStatus) -> store::Result<bool> {
    use crate::store::nodes::{NodeRecord, worker_alive};
    if status.is_final() || status == BatchStatus::Paused {
        return Ok(false);
    }
    // The queue first, then the batch's own row, whose status decides: a
    // batch that ended since the caller read `status` (its owner cleared,
    // and out of the queue) is not interrupted, nor one a retry queued
    // again meanwhile. A batch only moves on from what the queue showed.
    let found = store.find_async(bid)?;
    let state = store.batch_state(bid)?;
    if state.status.is_final()
        || matches!(
            state.status,
            BatchStatus::Paused | BatchStatus::WaitingForJob
        )
    {
        return Ok(false);
    }
    match found {
        Some(b) => Ok(!NodeRecord::owner_alive(store, &state)?
            && !worker_alive(store, |n| b.placement.may_own(n))?),
        None => Ok(!state.owner_alive()),
    }
}

/// Why batch `bid` waits because of its placement (SPEC §4), if it is an
/// unfinished asynchronous batch and no live worker may own its job (while
/// it waits for one) or process its entities: for BATCH_INFO's `Waiting`
/// row and BATCH_WAIT's note.
pub fn placement_wait(store: &dyn Store, bid: &str) -> store::Result<Option<String>> {
    let Some(b) = store.find_async(bid)? else {
        return Ok(None);
    };
    let owned = b.status != BatchStatus::WaitingForJob;
    store::nodes::waits_for(store, &b.placement, owned)
}

/// The status monitoring shows for `b`: [`INTERRUPTED`] for an
/// interrupted batch, else its stored status.
pub fn shown_status(store: &dyn Store, b: &BatchRow) -> store::Result<String> {
    Ok(if interrupted(store, &b.bid, b.status)? {
        INTERRUPTED.to_string()
    } else {
        b.status.to_string()
    })
}

/// `BATCH_HISTORY`'s columns (the spec names what, not the names).
pub const HISTORY_COLUMNS: &[&str] = &["Time", "Execution id", "Node", "Status", "Note"];

/// The total to show: the estimate while ids are still coming and it is
/// larger (SPEC §4 `ESTIMATED_ENTITIES_COUNT`), else the real total.
fn shown_total(b: &BatchRow) -> i64 {
    match b.estimated_total {
        Some(est) if !b.ids_complete && !b.is_final() => b.counts.total.max(est),
        _ => b.counts.total,
    }
}

/// `Completion %`: see the module doc.
fn completion_pct(b: &BatchRow) -> Option<f64> {
    let c = &b.counts;
    let total = shown_total(b);
    if total > 0 {
        Some((c.completed + c.failed + c.cancelled) as f64 * 100.0 / total as f64)
    } else if b.status == BatchStatus::Done {
        Some(100.0)
    } else {
        None
    }
}

/// The command as run for entity `id` (`BATCH_IN_PROCESS`,
/// `BATCH_DETAILS`): `fabric_command`, a batch's command in canonical form
/// (strings in single quotes), with each `?` that stands on its own (an
/// `exec` argument, `sync_instance LU.?`, `echo ?`) replaced by the id,
/// quoted as the language quotes. Where the id reaches the command inside
/// a text instead (`shell`, which reads it from `$ENTITY_ID`; `sql`, which
/// binds it), that text stays as written and ` -- ? = 'id'` follows.
pub fn command_as_run(fabric_command: &str, id: &str) -> String {
    let quoted = crate::ast::quote(id);
    let mut out = String::with_capacity(fabric_command.len() + quoted.len() + 8);
    // A doubled quote inside a string closes and reopens it at once.
    let mut in_string = false;
    let mut replaced = false;
    for c in fabric_command.chars() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string => {
                out.push_str(&quoted);
                replaced = true;
            }
            _ => out.push(c),
        }
    }
    if !replaced {
        out.push_str(" -- ? = ");
        out.push_str(&quoted);
    }
    out
}

/// Stored JSON text as a cell; text that does not parse is shown as text.
fn json_cell(s: Option<&str>) -> Cell {
    match s {
        None => Cell::Null,
        Some(s) => serde_json::from_str(s)
            .map(Cell::Json)
            .unwrap_or_else(|_| Cell::Text(s.to_string())),
    }
}

fn error(span: Option<Span>, message: impl Into<String>) -> MonitorError {
    MonitorError {
        kind: Box::new(MonitorErrorKind::Invalid(message.into())),
        span,
    }
}

/// Whether the node `holder` still holds the entities it claimed, for
/// `BATCH_IN_PROCESS`: until it is declared dead (its claims taken over,
/// which happens in the same transaction) or it stopped (a drain gives its
/// claims back), or its process is known gone (on this host, its pid).
/// A node silent on another host is still listed, as the node that holds
/// them, until another node judges it dead and takes them over (SPEC §7).
fn still_held(holder: Option<&crate::store::nodes::NodeRecord>) -> bool {
    use crate::store::nodes::NodeState;
    holder.is_some_and(|n| {
        matches!(n.state, NodeState::Running | NodeState::Stopping)
            && !crate::owner::gone_here(&n.host, n.pid, &n.heartbeat_at)
    })
}
