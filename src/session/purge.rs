//! `BATCH_PURGE [OLDER_THAN='30d'] [STATUS='DONE']` (SPEC §6): deletes the
//! finished batches that ended longer ago than `OLDER_THAN`, with their
//! entity rows, events and claims, and prints what it deleted.
//!
//! A running batch may share the store, so nothing here holds the write
//! lock for long. Each batch goes in two steps: first its row with
//! everything kept for it but its entity rows, in one short transaction
//! ([`crate::store::BatchStore::purge_batch`]), which takes it out of every
//! listing at once; then its entity rows, a chunk at a time
//! ([`crate::store::BatchStore::purge_rows`]), each chunk sized to take
//! about [`Chunks::TARGET`] and followed by a [`PAUSE`] in which a waiting
//! writer takes the lock. A purge stopped between the two (a kill, a
//! crash, Ctrl-C) leaves rows under a batch number no batch has: the next
//! `BATCH_PURGE` deletes them first.

use super::{Result, Session, time_cell};
use crate::analyze::PurgeOptions;
use crate::ast::{Options, OutputFormat, Span};
use crate::output::{Cell, Output, Table, columns};
use crate::store::Store;
use crate::store::batches::Purgeable;
use std::time::{Duration, Instant};

/// How long the purge leaves the store's write lock free after each
/// chunk. A writer that waits for the lock (a running batch's step) is
/// not queued: SQLite lets it try again after 1, 2, 5, 10, 15, 20 and then
/// 25 ms at a time. A free spell of 50 ms is hit by one of its tries even
/// when another writer's short commit (the batch's own) takes a piece of
/// it, so a writer waits for about one chunk at most, not for a run of
/// them. The purge holds the lock about a third of the time (20 ms in 70).
const PAUSE: Duration = Duration::from_millis(50);

/// The size of the next chunk of rows to delete, adapted so that each
/// chunk's transaction takes about [`Chunks::TARGET`]: how fast rows go
/// depends on the disk, the page cache and the rows' size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunks {
    size: usize,
}

impl Chunks {
    /// How long one chunk's transaction should hold the write lock.
    const TARGET: Duration = Duration::from_millis(20);
    const FIRST: usize = 5_000;
    const MIN: usize = 100;
    const MAX: usize = 500_000;

    fn new() -> Chunks {
        Chunks {
            size: Chunks::FIRST,
        }
    }

    /// Takes note that a chunk deleted `deleted` rows in `took`. Only a
    /// full chunk says how long `size` rows take (the last of a batch is
    /// shorter). The size goes half way towards the one the target calls
    /// for (by the square root of the ratio), and by at most half or
    /// double at a time: the time of a chunk varies by a third either way
    /// from one to the next (an fsync, the page cache), and a full step
    /// would chase that noise.
    fn took(&mut self, deleted: usize, took: Duration) {
        if deleted < self.size {
            return;
        }
        let scaled = if took.is_zero() {
            self.size.saturating_mul(2)
        } else {
            let ratio = Chunks::TARGET.as_secs_f64() / took.as_secs_f64();
            (self.size as f64 * ratio.sqrt()) as usize
        };
        self.size = scaled
            .clamp(self.size / 2, self.size.saturating_mul(2))
            .clamp(Chunks::MIN, Chunks::MAX);
    }
}

impl Session {
    pub(super) fn purge(&mut self, options: &Options, span: Span) -> Result<Option<Output>> {
        let opts = PurgeOptions::decode(options, chrono::Utc::now())?;
        let (stop, _watch) = self.stop_token();
        let stopped = || stop.cancelled() || stop.signalled().is_some();
        let (quiet, format) = (self.quiet, self.settings.format);
        let store = self.store().map_err(|e| e.or_at(span))?;
        let cutoff = opts
            .cutoff
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut chunks = Chunks::new();
        let mut t = Table::new(columns::BATCH_PURGE.iter().copied());
        // First the rows a purge stopped half way left: their batches are
        // gone from every listing already.
        let mut orphan_rows = 0;
        let mut interrupted = false;
        for no in store.orphan_batch_nos()? {
            let (n, halted) = delete_rows(store, no, &mut chunks, &stopped)?;
            orphan_rows += n;
            interrupted = halted;
            if interrupted {
                break;
            }
        }
        if !interrupted {
            for b in store.purgeable(&cutoff, &opts.statuses)? {
                interrupted = stopped();
                if interrupted {
                    break;
                }
                // Kept if a retry started it again since it was found.
                if !store.purge_batch(&b)? {
                    continue;
                }
                t.push_row(row(&b));
                interrupted = delete_rows(store, b.batch_no, &mut chunks, &stopped)?.1;
                if interrupted {
                    break;
                }
            }
        }
        if !quiet && orphan_rows > 0 {
            eprintln!(
                "note: deleted {orphan_rows} rows left by an interrupted BATCH_PURGE, of \
                 batches it had deleted"
            );
        }
        if !quiet && interrupted {
            eprintln!(
                "note: BATCH_PURGE was interrupted; the batches listed are deleted, and the \
                 next BATCH_PURGE deletes the rows they left and the batches it did not reach"
            );
        }
        if t.rows.is_empty() && format == OutputFormat::Table && !interrupted {
            return Ok(Some(Output::Message(nothing_to_delete(&opts))));
        }
        Ok(Some(Output::Table(t)))
    }
}

/// Deletes the rows stored under batch number `no` (whose batch row is
/// gone), a chunk at a time, until none is left or `stopped` says to stop
/// between two chunks: how many it deleted, and whether it stopped early.
fn delete_rows(
    store: &dyn Store,
    no: i64,
    chunks: &mut Chunks,
    stopped: &dyn Fn() -> bool,
) -> Result<(usize, bool)> {
    let mut total = 0;
    loop {
        let started = Instant::now();
        let deleted = store.purge_rows(no, chunks.size)?;
        chunks.took(deleted, started.elapsed());
        total += deleted;
        if deleted == 0 {
            return Ok((total, false));
        }
        std::thread::sleep(PAUSE);
        if stopped() {
            return Ok((total, true));
        }
    }
}

/// A deleted batch, as the table shows it.
fn row(b: &Purgeable) -> Vec<Cell> {
    vec![
        Cell::Text(b.bid.clone()),
        Cell::Text(b.command.clone()),
        Cell::Text(b.status.to_string()),
        time_cell(&b.end_time),
        Cell::Int(b.entities),
    ]
}

/// What the table format says when no batch was deleted: which batches
/// were looked for.
fn nothing_to_delete(opts: &PurgeOptions) -> String {
    let statuses: Vec<&str> = opts.statuses.iter().map(|s| s.as_str()).collect();
    format!(
        "nothing to delete: no batch {} ended before {} (OLDER_THAN='{}')",
        statuses.join(" or "),
        crate::output::format_time_in(&opts.cutoff, &chrono::Local),
        opts.older_than
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_move_towards_the_target_by_at_most_half_or_double() {
        let ms = Duration::from_millis;
        // (size, rows deleted, time taken) -> next size
        let table = [
            (5_000, 5_000, ms(20), 5_000),
            (5_000, 5_000, ms(5), 10_000),
            (5_000, 5_000, ms(10), 7_071),
            (5_000, 5_000, ms(1), 10_000),
            (5_000, 5_000, ms(0), 10_000),
            (5_000, 5_000, ms(40), 3_535),
            (5_000, 5_000, ms(80), 2_500),
            (5_000, 5_000, ms(400), 2_500),
            (5_000, 5_000, ms(25), 4_472),
            // The last chunk of a batch says nothing of the speed.
            (5_000, 12, ms(30), 5_000),
            // Within bounds.
            (150, 150, ms(400), 100),
            (400_000, 400_000, ms(1), 500_000),
        ];
        for (size, deleted, took, next) in table {
            let mut c = Chunks { size };
            c.took(deleted, took);
            assert_eq!(c.size, next, "{size} rows, {deleted} deleted in {took:?}");
        }
    }
}
