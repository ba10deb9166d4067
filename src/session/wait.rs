//! `BATCH_WAIT ['bid'] [TIMEOUT='2h']` (SPEC §6): blocks until the batch
//! reaches a final status, with a progress bar on a terminal, then prints
//! its result row and ends as the batch did (exit 0, 3 or 1), or with 4 at
//! the timeout. It only reads: the batch runs elsewhere (another process,
//! a worker), and Ctrl-C stops the waiting, not the batch.

use super::{Result, Session, StatementError, StatementErrorKind};
use crate::analyze::WaitOptions;
use crate::ast::{Options, Span, Text};
use crate::batch::{BatchStatus, Event, Events, RunEnd};
use crate::store::appends::Openness;
use std::time::{Duration, Instant};

/// How often the batch's row is read: its end shows within this.
const POLL: Duration = Duration::from_millis(50);

impl Session {
    pub(super) fn wait(
        &mut self,
        bid: &Option<Text>,
        options: &Options,
        span: Span,
    ) -> Result<Option<crate::output::Output>> {
        let opts = WaitOptions::decode(options);
        if opts.name.is_some() || opts.since {
            return Err(StatementError::at(
                span,
                StatementErrorKind::NotImplemented("BATCH_WAIT NAME=... (named batches)"),
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
            std::thread::sleep(POLL);
        };
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
