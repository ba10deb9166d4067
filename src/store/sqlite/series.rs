//! Named series and their runs in SQLite (see [`crate::store::series`]).

use super::SqliteStore;
use crate::store::Result;
use crate::store::series::*;
use rusqlite::{OptionalExtension, params};

const SERIES_COLUMNS: &str =
    "name, reprocess_hours, trunc_start, from_date, params, created_at, updated_at";

const RUN_COLUMNS: &str =
    "series, run_no, batch_id, start_time, end_time, status, failed, from_date, error, bid";

fn series_row(r: &rusqlite::Row) -> rusqlite::Result<SeriesRow> {
    SeriesRow::read(r)
}

fn run_row(r: &rusqlite::Row) -> rusqlite::Result<SeriesRunRow> {
    SeriesRunRow::read(r)
}

fn one_series(c: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<SeriesRow>> {
    c.query_row(
        &format!("SELECT {SERIES_COLUMNS} FROM series WHERE name = ?1"),
        [name],
        series_row,
    )
    .optional()
}

fn latest_run(c: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<SeriesRunRow>> {
    c.query_row(
        &format!(
            "SELECT {RUN_COLUMNS} FROM series_runs WHERE series = ?1 ORDER BY run_no DESC LIMIT 1"
        ),
        [name],
        run_row,
    )
    .optional()
}

/// Creates the series with its defaults unless it exists.
fn ensure_series(c: &rusqlite::Connection, name: &str, now: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO series (name, created_at, updated_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (name) DO NOTHING",
        params![name, now],
    )
    .map(|_| ())
}

/// Opens a run of the series in the transaction of `c` (see
/// [`crate::store::SeriesStore::open_series_run`]).
pub(super) fn open_run(
    c: &rusqlite::Connection,
    open: &OpenRun,
    window: &dyn Fn(&SeriesRow, Option<&SeriesRunRow>) -> String,
) -> rusqlite::Result<Opened> {
    ensure_series(c, open.series, open.start)?;
    let series = one_series(c, open.series)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    let latest = latest_run(c, &series.name)?;
    let (run_no, from_date) = match next_run(&series, latest.as_ref(), window) {
        Ok(next) => next,
        Err(open) => return Ok(Opened::AlreadyOpen(open.clone())),
    };
    c.execute(
        "INSERT INTO series_runs (series, run_no, batch_id, start_time, status, from_date, bid)
         VALUES (?1, ?2, ?3, ?4, 'OPEN', ?5, ?6)",
        params![
            series.name,
            run_no,
            open.batch_id,
            open.start,
            from_date,
            open.bid
        ],
    )?;
    c.execute(
        "UPDATE series SET from_date = NULL WHERE name = ?1",
        [&series.name],
    )?;
    let run = latest_run(c, &series.name)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok(Opened::Run(run, series))
}

/// Opens the run that batch `bid` is (see [`BatchRun`]) in the
/// transaction of `c`, after giving the series the settings of its
/// statement; the run already open when there is one.
pub(super) fn open_batch_run(
    c: &rusqlite::Connection,
    run: &BatchRun,
    bid: &str,
) -> rusqlite::Result<Opened> {
    ensure_series(c, run.series, run.start)?;
    c.execute(
        "UPDATE series SET
             reprocess_hours = COALESCE(?2, reprocess_hours),
             trunc_start = COALESCE(?3, trunc_start),
             updated_at = CASE WHEN ?2 IS NULL AND ?3 IS NULL THEN updated_at ELSE ?4 END
         WHERE name = ?1",
        params![run.series, run.reprocess_hours, run.trunc_start, run.start],
    )?;
    open_run(c, &run.run(bid), &BatchRun::window)
}

impl crate::store::SeriesStore for SqliteStore {
    fn set_series(&self, set: &SeriesSet) -> Result<()> {
        let tx = self.immediate()?;
        let r = (|| {
            ensure_series(&tx, set.name, set.now)?;
            let old: String = tx.query_row(
                "SELECT params FROM series WHERE name = ?1",
                [set.name],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE series SET
                     reprocess_hours = COALESCE(?2, reprocess_hours),
                     trunc_start = COALESCE(?3, trunc_start),
                     from_date = COALESCE(?4, from_date),
                     params = ?5,
                     updated_at = ?6
                 WHERE name = ?1",
                params![
                    set.name,
                    set.reprocess_hours,
                    set.trunc_start,
                    set.from_date,
                    set.merged_params(&old),
                    set.now,
                ],
            )
        })();
        r.map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn all_series(&self) -> Result<Vec<SeriesRow>> {
        let r = (|| -> rusqlite::Result<Vec<SeriesRow>> {
            let mut st = self.conn().prepare_cached(&format!(
                "SELECT {SERIES_COLUMNS} FROM series ORDER BY name"
            ))?;
            let rows = st.query_map([], series_row)?;
            rows.collect()
        })();
        r.map_err(|e| self.err(e))
    }

    fn series(&self, name: &str) -> Result<Option<SeriesRow>> {
        one_series(self.conn(), name).map_err(|e| self.err(e))
    }

    fn series_runs(&self, name: &str, limit: usize) -> Result<Vec<SeriesRunRow>> {
        let r = (|| -> rusqlite::Result<Vec<SeriesRunRow>> {
            let mut st = self.conn().prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM series_runs WHERE series = ?1
                 ORDER BY run_no DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(
                params![name, i64::try_from(limit).unwrap_or(i64::MAX)],
                run_row,
            )?;
            rows.collect()
        })();
        r.map_err(|e| self.err(e))
    }

    fn open_series_run(
        &self,
        open: &OpenRun,
        window: &dyn Fn(&SeriesRow, Option<&SeriesRunRow>) -> String,
    ) -> Result<Opened> {
        let tx = self.immediate()?;
        let r = open_run(&tx, open, window);
        let opened = r.map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(opened)
    }

    fn batch_run(&self, bid: &str) -> Result<Option<SeriesRunRow>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM series_runs WHERE bid = ?1
                     ORDER BY run_no DESC LIMIT 1"
                ),
                [bid],
                run_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn end_series_run(&self, name: &str, end: &SeriesRunEnd) -> Result<Option<SeriesRunRow>> {
        let tx = self.immediate()?;
        let r = (|| {
            let n = tx.execute(
                "UPDATE series_runs SET status = ?2, failed = ?3, error = ?4, end_time = ?5
                 WHERE series = ?1 AND status = 'OPEN'",
                params![name, end.status.as_str(), end.failed, end.error, end.ended],
            )?;
            if n == 0 {
                return Ok(None);
            }
            latest_run(&tx, name)
        })();
        let run = r.map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(run)
    }
}
