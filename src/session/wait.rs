//! `BATCH_WAIT ['bid'] [TIMEOUT='2h']` (SPEC §6): blocks until the batch
//! reaches a final status, with a progress bar on a terminal, then prints
//! its result row and ends as the batch did (exit 0, 3 or 1), or with 4 at
//! the timeout. It only reads: the batch runs elsewhere (another process,
//! a worker), and Ctrl-C stops the waiting, not the batch.
//!
//! `BATCH_WAIT NAME='etl.*' [SINCE=...] [FAIL_FAST=true]` (SPEC §9, as
//! Waitsy) waits instead until the latest run of every series the glob
//! names, started since SINCE (local midnight by default), ended DONE with
//! no failure, saying on stderr which it still waits for. It reads the
//! series' runs only, however they were made (`WINDOW_OPEN`, a batch).

use super::awaited::{self, Glob, Standing};
use super::{Result, Session, StatementError, StatementErrorKind};
use crate::analyze::WaitOptions;
use crate::ast::{Options, Span, Text};
use crate::batch::{BatchStatus, Event, Events, RunEnd};
use crate::output::progress::Line;
use crate::store::appends::Openness;
use crate::store::series::SeriesRunRow;
use crate::store::{Listening, Notice};
use crate::window;
use chrono::Local;
use std::time::{Duration, Instant};

/// How often the batch's row is read: its end shows within this, or at
/// once on a store that tells ([`Notice::Batch`]).
const POLL: Duration = Duration::from_millis(50);

impl Session {
    pub(super) fn wait(
        &mut self,
        bid: &Option<Text>,
        options: &Options,
        span: Span,
    ) -> Result<Option<crate::output::Output>> {
        let opts = WaitOptions::decode(options);
        if let Some(pattern) = &opts.name {
            return self.wait_named(pattern, &opts, options, span);
        }
        if let Some(o) = options
            .0
            .iter()
            .find(|o| o.name == "SINCE" || o.name == "FAIL_FAST")
        {
            return Err(StatementError::refused(
                o.span,
                format!(
                    "{} goes with NAME='pattern' (the runs of named series); BATCH_WAIT 'bid' \
                     waits for one batch",
                    o.name
                ),
            ));
        }
        let bid = match (bid, &self.last_bid) {
            (None, None) => self.newest_batch("BATCH_WAIT").map_err(|e| e.or_at(span))?,
            _ => self.resolve(bid, span)?,
        };
        let (stop, _watch) = self.stop_token();
        let show = self.progress_allowed && self.settings.progress;
        let quiet = self.quiet;
        let store = self.store()?;
        let started = Instant::now();
        let mut bar: Option<crate::output::progress::Terminal> = None;
        let mut said_paused = false;
        let mut said_idle = false;
        let mut said_open = false;
        // Before the first read: a change after it is told.
        let told = Listening::new(store, Notice::Batch);
        let row = loop {
            let row = store.read_batch(&bid)?;
            if row.is_final() {
                break row;
            }
            let bar = bar.get_or_insert_with(|| {
                crate::output::progress::Terminal::new(show, row.estimated_total)
            });
            bar.event(Event::Progress {
                bid: &bid,
                counters: &row.counts,
                generating: !row.ids_complete,
                paused: row.status == BatchStatus::Paused,
            });
            if row.status == BatchStatus::Paused && !said_paused && !quiet {
                said_paused = true;
                bar.event(Event::ProgressDone);
                eprintln!(
                    "note: batch {bid} is PAUSED; BATCH_WAIT waits until it is resumed \
                     (BATCH_RESUME '{bid}') and ends"
                );
            }
            if row.openness == Openness::Open && !said_open && !quiet {
                said_open = true;
                bar.event(Event::ProgressDone);
                eprintln!(
                    "note: batch {bid} is OPEN; BATCH_WAIT waits until it is closed \
                     (BATCH_WAITOFF '{bid}') and its entities are done"
                );
            }
            if row.status != BatchStatus::Paused
                && !said_idle
                && !quiet
                && let Some(why) = stalled(store, &bid, row.status)?
            {
                said_idle = true;
                bar.event(Event::ProgressDone);
                eprintln!("note: {why}");
            }
            if stop.cancelled() || stop.signalled().is_some() {
                // Ctrl-C or a stop signal: the waiting stops; the batch
                // goes on where it runs.
                bar.event(Event::ProgressDone);
                return Ok(None);
            }
            if let Some(limit) = opts.timeout
                && started.elapsed() >= limit
            {
                bar.event(Event::ProgressDone);
                let c = &row.counts;
                return Err(StatementError::at(
                    span,
                    StatementErrorKind::TimedOut(format!(
                        "BATCH_WAIT timed out after {}: batch {bid} is {}, {} of {} entities \
                         done",
                        crate::ast::Duration(limit.as_millis() as u64),
                        row.status,
                        c.finished(),
                        c.total
                    )),
                )
                .about(&bid));
            }
            store.await_notice(POLL);
        };
        drop(told);
        if let Some(bar) = &bar {
            bar.event(Event::ProgressDone);
        }
        let duration = match (&row.start_time, &row.end_time) {
            (Some(start), Some(end)) => between(start, end),
            _ => Duration::ZERO,
        };
        let fin = crate::exec::Finished {
            bid: row.bid.clone(),
            execution_id: row.execution_id.clone(),
            end: RunEnd::Ended {
                status: row.status,
                error: row.error.clone(),
                counters: row.counts,
            },
            duration,
        };
        self.last_bid = Some(bid);
        Ok(Some(self.ended(&fin)))
    }
}

/// The time from one stored RFC 3339 time to another (zero if unreadable).
fn between(start: &str, end: &str) -> Duration {
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (t(start), t(end)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// Why batch `bid` (now `status`, not paused) makes no progress, if
/// nothing will move it: its job waits for a node that no live worker is,
/// no live worker may process it, or it was interrupted and no process
/// runs it or will take it over.
fn stalled(
    store: &dyn crate::store::Store,
    bid: &str,
    status: BatchStatus,
) -> crate::store::Result<Option<String>> {
    if let Some(why) = crate::monitor::placement_wait(store, bid)? {
        return Ok(Some(format!("batch {bid}: {why}")));
    }
    if !crate::monitor::interrupted(store, bid, status)? {
        return Ok(None);
    }
    Ok(Some(format!(
        "no process runs batch {bid} (it was interrupted); it ends once BATCH_RETRY '{bid}' \
         finishes it"
    )))
}

/// How often `BATCH_WAIT NAME=...` reads the series' runs.
const POLL_NAMED: Duration = Duration::from_millis(200);

/// A series `BATCH_WAIT NAME=...` waits for: its latest run and how it
/// stands.
struct Awaited {
    name: String,
    latest: Option<SeriesRunRow>,
    standing: Standing,
}

/// How the waiting for named series ended.
enum Named {
    /// Every series succeeded.
    Succeeded(Vec<Awaited>),
    /// FAIL_FAST: these failed (the names and why).
    Failed(Vec<Awaited>, Vec<String>),
    /// Ctrl-C or a stop signal.
    Stopped,
}

impl Session {
    /// `BATCH_WAIT NAME='pattern' [SINCE=...] [TIMEOUT=...]
    /// [FAIL_FAST=true]`.
    fn wait_named(
        &mut self,
        pattern: &str,
        opts: &WaitOptions,
        options: &Options,
        span: Span,
    ) -> Result<Option<crate::output::Output>> {
        let at = |name: &str| {
            options
                .0
                .iter()
                .find(|o| o.name == name)
                .map_or(span, |o| o.span)
        };
        let since_text = opts.since.as_deref().unwrap_or("today");
        let since = awaited::since(since_text, crate::knobs::now(), &Local).ok_or_else(|| {
            StatementError::refused(at("SINCE"), format!("SINCE '{since_text}' is not a time"))
        })?;
        let glob = Glob::new(pattern);
        let (stop, _watch) = self.stop_token();
        let show = self.progress_allowed && self.settings.progress;
        let quiet = self.quiet;
        let store = self.store()?;
        let all = store
            .all_series()
            .map_err(|e| StatementError::at(at("NAME"), e))?;
        if !all.iter().any(|s| glob.matches(&s.name)) {
            return Err(StatementError::refused(
                at("NAME"),
                no_match(pattern, all.iter().map(|s| s.name.as_str())),
            ));
        }
        // SINCE is fixed now: a wait that runs past midnight still counts
        // the runs of the day it started.
        let since_local = window::local_text(since, &Local);
        let line = Line::new(show);
        let started = Instant::now();
        let mut said = String::new();
        let ended = loop {
            let now = standings(store, &glob, since).map_err(|e| StatementError::at(span, e))?;
            // Per series, why it is still awaited (none once it succeeded).
            let whys: Vec<Option<String>> = now
                .iter()
                .map(|a| {
                    let why = a
                        .standing
                        .why(&since_local, |t| window::local_text(t, &Local))?;
                    Some(format!("{} ({why})", a.name))
                })
                .collect();
            let waiting: Vec<&str> = whys.iter().flatten().map(String::as_str).collect();
            if waiting.is_empty() {
                break Named::Succeeded(now);
            }
            let failed: Vec<String> = now
                .iter()
                .zip(&whys)
                .filter(|(a, _)| matches!(a.standing, Standing::Failed { .. }))
                .filter_map(|(_, w)| w.clone())
                .collect();
            if opts.fail_fast && !failed.is_empty() {
                break Named::Failed(now, failed);
            }
            let text = format!("waiting for: {}", waiting.join(", "));
            if line.shown() {
                line.say(&text);
            } else if text != said && !quiet {
                eprintln!("{text}");
            }
            said = text;
            if stop.cancelled() || stop.signalled().is_some() {
                break Named::Stopped;
            }
            if let Some(limit) = opts.timeout
                && started.elapsed() >= limit
            {
                return Err(StatementError::at(
                    span,
                    StatementErrorKind::TimedOut(format!(
                        "BATCH_WAIT timed out after {}: still waiting for {}",
                        crate::ast::Duration(limit.as_millis() as u64),
                        waiting.join(", ")
                    )),
                ));
            }
            std::thread::sleep(POLL_NAMED);
        };
        drop(line);
        match ended {
            Named::Stopped => Ok(None),
            Named::Succeeded(series) => Ok(Some(named_table(&series))),
            Named::Failed(series, failed) => {
                // Exit code 3, as a batch that ended with failures: the
                // table shows every series, stderr says which failed.
                eprintln!(
                    "error: a series BATCH_WAIT waits for failed (FAIL_FAST): {}",
                    failed.join(", ")
                );
                self.outcomes
                    .insert(format!("NAME='{pattern}'"), crate::exit::BATCH_INCOMPLETE);
                Ok(Some(named_table(&series)))
            }
        }
    }
}

/// The series `glob` names, each with its latest run and how it stands
/// since `since`.
fn standings(
    store: &dyn crate::store::Store,
    glob: &Glob,
    since: chrono::DateTime<chrono::Utc>,
) -> crate::store::Result<Vec<Awaited>> {
    let mut out = Vec::new();
    for s in store.all_series()? {
        if !glob.matches(&s.name) {
            continue;
        }
        let latest = store.series_runs(&s.name, 1)?.into_iter().next();
        let standing = awaited::standing(latest.as_ref(), since);
        out.push(Awaited {
            name: s.name,
            latest,
            standing,
        });
    }
    Ok(out)
}

/// Why no series matches `pattern`: the closest name, or the names there
/// are.
fn no_match<'a>(pattern: &str, names: impl Iterator<Item = &'a str> + Clone) -> String {
    let head = format!("no series matches NAME='{pattern}'");
    if let Some(near) = crate::typo::suggest(pattern, names.clone()) {
        return format!("{head} (did you mean '{near}'?)");
    }
    let names: Vec<&str> = names.collect();
    match names.len() {
        0 => format!("{head}: there is no series yet (WINDOW_OPEN or WINDOW_SET makes one)"),
        n if n <= 10 => format!("{head}; the series are {}", names.join(", ")),
        n => format!(
            "{head}; there are {n} series (WINDOW_STATUS lists them), among them {}",
            names[..10].join(", ")
        ),
    }
}

/// One row per series: its latest run (times local in a table, RFC 3339
/// UTC in JSON, as every time is printed).
fn named_table(series: &[Awaited]) -> crate::output::Output {
    use crate::output::{Cell, Table};
    let time = |stamp: Option<&str>| {
        stamp
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map_or(Cell::Null, |t| Cell::Time(t.with_timezone(&chrono::Utc)))
    };
    let mut t = Table::new(crate::output::columns::BATCH_WAIT_NAMED.iter().copied());
    for a in series {
        let run = a.latest.as_ref();
        t.push_row(vec![
            Cell::Text(a.name.clone()),
            run.map(|r| r.status.to_string()).into(),
            run.map(|r| r.batch_id).into(),
            time(run.map(|r| r.start_time.as_str())),
            time(run.and_then(|r| r.end_time.as_deref())),
            run.and_then(|r| r.bid.clone()).into(),
        ]);
    }
    crate::output::Output::Table(t)
}
