//! Statements' options, typed: the AST's `NAME=value` list decoded once
//! into the fields of a struct, each value checked as it is read, so that
//! the rest of batchsh reads fields and never looks an option up by name.
//! The parser has already typed every value (an `Int` is an integer, a
//! `Duration` a duration); what is checked here is what a value means.

use super::error::{AnalyzeError, Result};
use crate::ast::{Opt, Options, Span, Value};
use crate::plan::FailureLimit;
use crate::source::{self, Param};
use std::time::Duration;

/// The `WITH` options of a BATCH (SPEC §4) as the statement gives them,
/// typed and checked: `None` (or `false`) where an option is not given.
/// The plan applies the defaults and the node's worker count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOptions {
    /// `MAX_WORKERS_PER_NODE`: 1 or more.
    pub max_workers_per_node: Option<usize>,
    /// `MAX_RETRIES`: 0 or more.
    pub max_retries: Option<i64>,
    pub retry_delay: Option<Duration>,
    pub entity_timeout: Option<Duration>,
    pub max_failures: Option<FailureLimit>,
    /// `CHUNK_SIZE`: 1 or more.
    pub chunk_size: Option<usize>,
    /// `GENERATE_ENTITIES_FIRST` (legacy `GENERATE_IIDS_FIRST`).
    pub generate_entities_first: bool,
    /// `ALLOW_MULTIPLE` (legacy `ALLOW_MULTIPLY`).
    pub allow_multiple: bool,
    pub estimated_entities_count: Option<i64>,
    pub on_done: Option<String>,
    /// The values for the `?` of the source query: `BIND_PARAMS` split on
    /// `BIND_PARAMS_SEPARATOR` (default `,`), or `BIND_PARAMS_JSON`.
    pub bind_params: Vec<Param>,
    /// `ASYNC`: the batch waits for a worker to take its job, and the
    /// statement returns at once. `OPEN=true` implies it.
    pub asynchronous: bool,
    /// `AFFINITY`: node names, DCs or IP addresses, at least one.
    pub affinity: Vec<String>,
    /// `JOB_AFFINITY`: the same, for the job's owner.
    pub job_affinity: Vec<String>,
    /// `MAX_NODES`: 1 or more.
    pub max_nodes: Option<usize>,
    /// `OPEN`: the batch takes `BATCH_APPEND` until `BATCH_WAITOFF`.
    pub open: bool,
    /// `RESUME`: an interrupted batch with the same command is continued
    /// instead of refused.
    pub resume: bool,
    /// `OUTPUT_LIMIT`: bytes of each stream of a process kept, 1 or more.
    pub output_limit: Option<usize>,
    /// `SHOW_OUTPUT`: a synchronous run prints each line an entity's
    /// process writes as it comes, tagged with the entity id.
    pub show_output: bool,
    /// `NAME`: the batch is a run of this named series (SPEC §9).
    pub name: Option<String>,
    /// `REPROCESS_HOURS`: 0 or more whole hours; only with `NAME`.
    pub reprocess_hours: Option<i64>,
    /// `TRUNC_START`; only with `NAME`.
    pub trunc_start: Option<bool>,
}

impl BatchOptions {
    /// Decodes a BATCH's options. The first fault found is the error: a
    /// value that means nothing (in the order written), then a series
    /// setting without `NAME`, then the `BIND_PARAMS` pair, then an option
    /// that `OPEN=true` excludes.
    pub fn decode(options: &Options) -> Result<BatchOptions> {
        let mut out = BatchOptions::default();
        let mut bind = Bind::default();
        for o in &options.0 {
            match (o.name, &o.value) {
                ("MAX_WORKERS_PER_NODE", Value::Int(n)) => {
                    out.max_workers_per_node = Some(at_least_one(o, *n)?);
                }
                ("MAX_RETRIES", Value::Int(n)) if *n < 0 => {
                    return Err(AnalyzeError::invalid(
                        o.span,
                        "MAX_RETRIES cannot be negative",
                    ));
                }
                ("MAX_RETRIES", Value::Int(n)) => out.max_retries = Some(*n),
                ("RETRY_DELAY", Value::Duration(d)) => out.retry_delay = Some(duration(*d)),
                ("ENTITY_TIMEOUT", Value::Duration(d)) => out.entity_timeout = Some(duration(*d)),
                ("MAX_FAILURES", Value::Int(n)) => {
                    out.max_failures = Some(FailureLimit::Count(*n));
                }
                ("MAX_FAILURES", Value::Percent(p)) => {
                    out.max_failures = Some(FailureLimit::Percent(*p));
                }
                ("CHUNK_SIZE", Value::Int(n)) => out.chunk_size = Some(at_least_one(o, *n)?),
                ("GENERATE_ENTITIES_FIRST", Value::Bool(b)) => out.generate_entities_first = *b,
                ("ALLOW_MULTIPLE", Value::Bool(b)) => out.allow_multiple = *b,
                ("ESTIMATED_ENTITIES_COUNT", Value::Int(n)) => {
                    out.estimated_entities_count = Some(*n);
                }
                ("ON_DONE", Value::Str(s)) => out.on_done = Some(s.clone()),
                ("ASYNC", Value::Bool(b)) => out.asynchronous = *b,
                ("AFFINITY", Value::Str(s)) => out.affinity = nodes(o, s)?,
                ("JOB_AFFINITY", Value::Str(s)) => out.job_affinity = nodes(o, s)?,
                ("MAX_NODES", Value::Int(n)) => out.max_nodes = Some(at_least_one(o, *n)?),
                ("OPEN", Value::Bool(b)) => out.open = *b,
                ("RESUME", Value::Bool(b)) => out.resume = *b,
                ("OUTPUT_LIMIT", Value::Str(s)) => out.output_limit = Some(size(o, s)?),
                ("SHOW_OUTPUT", Value::Bool(b)) => out.show_output = *b,
                ("NAME", Value::Str(s)) => out.name = Some(series_name(o, s)?),
                ("REPROCESS_HOURS", v) => out.reprocess_hours = Some(whole_hours(o, v)?),
                ("TRUNC_START", Value::Bool(b)) => out.trunc_start = Some(*b),
                ("BIND_PARAMS", Value::Str(s)) => bind.text = Some(s),
                ("BIND_PARAMS_SEPARATOR", Value::Str(s)) => bind.separator = Some(s),
                ("BIND_PARAMS_JSON", Value::Json(j)) => bind.json = Some((j, o.span)),
                // The values the parser gives no option of this list.
                _ => {}
            }
        }
        if out.name.is_none() {
            refuse_series_settings(options)?;
        }
        out.bind_params = bind.params()?;
        if out.open {
            refuse_beside_open(options)?;
            // SPEC §4: an open batch waits for appends from other
            // processes, so a worker runs it.
            out.asynchronous = true;
        }
        if out.show_output && out.asynchronous {
            refuse_show_output_async(options)?;
        }
        Ok(out)
    }
}

/// A size as `OUTPUT_LIMIT` takes it: a whole number of bytes, with an
/// optional unit `B`, `KB`, `MB` or `GB` (powers of 1024; `KiB`, `MiB`,
/// `GiB` and `K`, `M`, `G` too, any case), at least one byte.
fn size(o: &Opt, text: &str) -> Result<usize> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let scale: Option<u64> = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => Some(1),
        "K" | "KB" | "KIB" => Some(1 << 10),
        "M" | "MB" | "MIB" => Some(1 << 20),
        "G" | "GB" | "GIB" => Some(1 << 30),
        _ => None,
    };
    number
        .parse::<u64>()
        .ok()
        .zip(scale)
        .and_then(|(n, s)| n.checked_mul(s))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            AnalyzeError::invalid(
                o.span,
                format!(
                    "OUTPUT_LIMIT must be a size of 1 byte or more, as '1MB', '64KB' or '4096', \
                     not '{text}'"
                ),
            )
        })
}

/// The entries of an affinity option (a comma list), at least one.
fn nodes(o: &Opt, list: &str) -> Result<Vec<String>> {
    let entries = crate::batch::placement::entries(list);
    if entries.is_empty() {
        return Err(AnalyzeError::invalid(
            o.span,
            format!(
                "{} names no node: give node names, DCs or IP addresses, separated by commas \
                 (or leave the option out: any node)",
                o.name
            ),
        ));
    }
    Ok(entries)
}

/// Refuses, at its span, an option that cannot go with `OPEN=true`:
/// `ASYNC=false` (an open batch runs in a worker, waiting for appends
/// from other processes, not in the statement's process), and
/// `GENERATE_ENTITIES_FIRST=true` (an open batch's entity list is never
/// whole before `BATCH_WAITOFF`, so no entity would run until then).
fn refuse_beside_open(options: &Options) -> Result<()> {
    for o in &options.0 {
        let why = match (o.name, &o.value) {
            ("ASYNC", Value::Bool(false)) => {
                "OPEN=true runs the batch asynchronously (a worker runs it, and other \
                 processes append to it): drop ASYNC=false, or drop OPEN=true to run the \
                 batch here"
            }
            ("GENERATE_ENTITIES_FIRST", Value::Bool(true)) => {
                "GENERATE_ENTITIES_FIRST=true cannot go with OPEN=true: an open batch's \
                 entity list is whole only once BATCH_WAITOFF closes it, so nothing would \
                 run until then; drop one of them"
            }
            _ => continue,
        };
        return Err(AnalyzeError::invalid(o.span, why));
    }
    Ok(())
}

/// Refuses `SHOW_OUTPUT=true` on a batch that runs asynchronously: no
/// terminal watches a worker's entities.
fn refuse_show_output_async(options: &Options) -> Result<()> {
    match options.0.iter().find(|o| o.name == "SHOW_OUTPUT") {
        Some(o) => Err(AnalyzeError::invalid(
            o.span,
            "SHOW_OUTPUT=true prints the entities' lines while a batch runs here; an \
             ASYNC or OPEN batch runs in a worker, where no terminal shows them: drop \
             SHOW_OUTPUT, and read them with BATCH_OUTPUT once the entities are done",
        )),
        None => Ok(()),
    }
}

/// `NAME`: a series' name, not blank.
fn series_name(o: &Opt, s: &str) -> Result<String> {
    let name = s.trim();
    if name.is_empty() {
        return Err(AnalyzeError::invalid(
            o.span,
            "NAME must name a series, as NAME='orders_delta'",
        ));
    }
    Ok(name.to_string())
}

/// `REPROCESS_HOURS`: a whole number of hours, 0 or more.
fn whole_hours(o: &Opt, v: &Value) -> Result<i64> {
    let n = match v {
        Value::Int(n) => Some(*n),
        Value::Number(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(*f as i64),
        _ => None,
    };
    n.filter(|n| *n >= 0).ok_or_else(|| {
        AnalyzeError::invalid(
            o.span,
            format!("REPROCESS_HOURS must be a whole number of hours, 0 or more, not {v}"),
        )
    })
}

/// REPROCESS_HOURS and TRUNC_START shape the windows of a named series:
/// without `NAME` they would be silently ignored, so they are refused.
fn refuse_series_settings(options: &Options) -> Result<()> {
    let setting = |o: &&Opt| matches!(o.name, "REPROCESS_HOURS" | "TRUNC_START");
    match options.0.iter().find(setting) {
        Some(o) => Err(AnalyzeError::invalid(
            o.span,
            format!(
                "{} is a setting of a named series: add NAME='...' to make the batch a run \
                 of one (SPEC §9), or drop it",
                o.name
            ),
        )),
        None => Ok(()),
    }
}

/// The `BIND_PARAMS` options as written, read together once all are seen.
#[derive(Default)]
struct Bind<'a> {
    text: Option<&'a str>,
    separator: Option<&'a str>,
    /// With its span: a fault of the array points at it.
    json: Option<(&'a serde_json::Value, Span)>,
}

impl Bind<'_> {
    fn params(self) -> Result<Vec<Param>> {
        match (self.text, self.json) {
            (Some(_), Some((_, at))) => Err(AnalyzeError::invalid(
                at,
                "give BIND_PARAMS or BIND_PARAMS_JSON, not both",
            )),
            (Some(text), None) => Ok(source::bind_params(text, self.separator.unwrap_or(","))),
            (None, Some((json, at))) => {
                source::bind_params_json(json).map_err(|e| AnalyzeError::invalid(at, e.to_string()))
            }
            (None, None) => Ok(Vec::new()),
        }
    }
}

fn duration(d: crate::ast::Duration) -> Duration {
    Duration::from_millis(d.millis())
}

/// A count that must be 1 or more (`MAX_WORKERS_PER_NODE`, `CHUNK_SIZE`).
fn at_least_one(o: &Opt, n: i64) -> Result<usize> {
    usize::try_from(n)
        .ok()
        .filter(|&count| count >= 1)
        .ok_or_else(|| {
            AnalyzeError::invalid(o.span, format!("{} must be 1 or more, not {n}", o.name))
        })
}

/// `BATCH_RETRY`'s options (SPEC §6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryOptions {
    /// `ALLOW_CANCELLED`: a CANCELLED batch may be retried.
    pub allow_cancelled: bool,
}

impl RetryOptions {
    pub fn decode(options: &Options) -> RetryOptions {
        let mut out = RetryOptions::default();
        for o in &options.0 {
            if let ("ALLOW_CANCELLED", Value::Bool(b)) = (o.name, &o.value) {
                out.allow_cancelled = *b;
            }
        }
        out
    }
}

/// `BATCH_WAIT`'s options (SPEC §6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitOptions {
    /// `NAME`: the named batches to wait for (a glob).
    pub name: Option<String>,
    /// `SINCE` as written: runs of the named batches started since then
    /// count (today's local midnight when absent).
    pub since: Option<String>,
    /// `FAIL_FAST`: a failed latest run ends the waiting (exit 3) instead
    /// of waiting for a run that succeeds.
    pub fail_fast: bool,
    /// `TIMEOUT`: how long to wait at most.
    pub timeout: Option<Duration>,
}

impl WaitOptions {
    pub fn decode(options: &Options) -> WaitOptions {
        let mut out = WaitOptions::default();
        for o in &options.0 {
            match (o.name, &o.value) {
                ("NAME", Value::Str(s)) => out.name = Some(s.clone()),
                ("SINCE", Value::Str(s)) => out.since = Some(s.clone()),
                ("FAIL_FAST", Value::Bool(b)) => out.fail_fast = *b,
                ("TIMEOUT", Value::Duration(d)) => out.timeout = Some(duration(*d)),
                _ => {}
            }
        }
        out
    }
}

/// `BATCH_PURGE`'s options (SPEC §6), with the defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeOptions {
    /// `OLDER_THAN` (30 days by default): batches that ended longer ago
    /// than this go.
    pub older_than: crate::ast::Duration,
    /// Now less `older_than`: batches that ended before it go.
    pub cutoff: chrono::DateTime<chrono::Utc>,
    /// `STATUS` (DONE by default): final statuses, each once, in the order
    /// given. The parser lets only final ones through.
    pub statuses: Vec<crate::batch::BatchStatus>,
}

impl PurgeOptions {
    /// `OLDER_THAN` when none is given.
    pub const DEFAULT_OLDER_THAN: crate::ast::Duration = crate::ast::Duration(30 * 86_400_000);

    /// Decodes a BATCH_PURGE's options at the moment `now`. An
    /// `OLDER_THAN` that reaches back before the year 1 is refused: no
    /// time the store holds is that old, and the cutoff could not be
    /// written as one.
    pub fn decode(options: &Options, now: chrono::DateTime<chrono::Utc>) -> Result<PurgeOptions> {
        use crate::batch::BatchStatus;
        use chrono::Datelike;
        let mut older_than = (PurgeOptions::DEFAULT_OLDER_THAN, None);
        let mut statuses = vec![BatchStatus::Done];
        for o in &options.0 {
            match (o.name, &o.value) {
                ("OLDER_THAN", Value::Duration(d)) => older_than = (*d, Some(o.span)),
                ("STATUS", Value::Str(list)) => {
                    statuses.clear();
                    for text in list.split(',').map(str::trim) {
                        let status = text.to_ascii_uppercase().parse::<BatchStatus>();
                        let status = status.ok().filter(|s| s.is_final()).ok_or_else(|| {
                            AnalyzeError::invalid(
                                o.span,
                                format!(
                                    "STATUS takes final statuses ({}), not {text}",
                                    BatchStatus::FINAL_NAMES.join(", ")
                                ),
                            )
                        })?;
                        if !statuses.contains(&status) {
                            statuses.push(status);
                        }
                    }
                }
                _ => {}
            }
        }
        let (older_than, span) = older_than;
        let cutoff = i64::try_from(older_than.millis())
            .ok()
            .and_then(chrono::TimeDelta::try_milliseconds)
            .and_then(|d| now.checked_sub_signed(d))
            .filter(|c| c.year() >= 1);
        match (cutoff, span) {
            (Some(cutoff), _) => Ok(PurgeOptions {
                older_than,
                cutoff,
                statuses,
            }),
            (None, span) => Err(AnalyzeError::invalid(
                span.unwrap_or_default(),
                format!(
                    "OLDER_THAN='{older_than}' reaches back before the year 1; no batch \
                     ended that long ago"
                ),
            )),
        }
    }
}

/// `BATCH_EDIT`'s options (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditOptions {
    /// `MAX_WORKERS_PER_NODE`: 1 or more.
    pub max_workers_per_node: usize,
}

impl EditOptions {
    /// Decodes a BATCH_EDIT's options; `statement` is where a missing
    /// option is pointed at (the parser requires it: a safety net).
    pub fn decode(options: &Options, statement: Span) -> Result<EditOptions> {
        let mut workers = None;
        for o in &options.0 {
            if let ("MAX_WORKERS_PER_NODE", Value::Int(n)) = (o.name, &o.value) {
                workers = Some(at_least_one(o, *n)?);
            }
        }
        match workers {
            Some(max_workers_per_node) => Ok(EditOptions {
                max_workers_per_node,
            }),
            None => Err(AnalyzeError::invalid(
                statement,
                "MAX_WORKERS_PER_NODE is missing",
            )),
        }
    }
}

/// `CREATE INTERFACE`'s options (SPEC §3): how a CSV file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceOptions {
    /// `HEADER`: the first line names the columns.
    pub header: bool,
    /// `DELIMITER`: one ASCII character.
    pub delimiter: char,
    /// `TYPES`: each column's type is inferred from its values (false:
    /// every field TEXT).
    pub types: bool,
}

impl Default for InterfaceOptions {
    fn default() -> InterfaceOptions {
        InterfaceOptions {
            header: true,
            delimiter: ',',
            types: true,
        }
    }
}

impl InterfaceOptions {
    pub fn decode(options: &Options) -> Result<InterfaceOptions> {
        let mut out = InterfaceOptions::default();
        for o in &options.0 {
            match (o.name, &o.value) {
                ("HEADER", Value::Bool(b)) => out.header = *b,
                ("TYPES", Value::Bool(b)) => out.types = *b,
                // One byte: the parser let one character through, and the
                // CSV reader takes a byte.
                ("DELIMITER", Value::Str(d)) => match d.as_bytes() {
                    [b] => out.delimiter = char::from(*b),
                    _ => {
                        return Err(AnalyzeError::invalid(
                            o.span,
                            format!("DELIMITER must be one ASCII character, not '{d}'"),
                        ));
                    }
                },
                _ => {}
            }
        }
        Ok(out)
    }
}
