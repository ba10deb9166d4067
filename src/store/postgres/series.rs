//! Named series and their runs on PostgreSQL (see [`crate::store::series`]).
//!
//! Whatever reads a series and then writes it (its parameters, its next
//! run) locks the series' row first, so that processes opening runs of
//! one series at once take turns; the index `series_runs_one_open` keeps
//! one run open besides.

use super::{PgStore, TxError};
use crate::store::Result;
use crate::store::series::*;
use postgres::{GenericClient, Row, Transaction};

macro_rules! series_columns {
    () => {
        "name, reprocess_hours, trunc_start, from_date, params, created_at, updated_at"
    };
}

macro_rules! run_columns {
    () => {
        "series, run_no, batch_id, start_time, end_time, status, failed, from_date, error, bid"
    };
}

type PgResult<T> = std::result::Result<T, postgres::Error>;

fn series_row(r: &Row) -> PgResult<SeriesRow> {
    SeriesRow::read(r)
}

fn run_row(r: &Row) -> PgResult<SeriesRunRow> {
    SeriesRunRow::read(r)
}

/// The series of that name (case-insensitive).
fn one_series(c: &mut impl GenericClient, name: &str) -> PgResult<Option<SeriesRow>> {
    c.query_opt(
        concat!("SELECT ", series_columns!(), " FROM series WHERE name = $1"),
        &[&name],
    )?
    .map(|r| series_row(&r))
    .transpose()
}

fn latest_run(c: &mut impl GenericClient, name: &str) -> PgResult<Option<SeriesRunRow>> {
    c.query_opt(
        concat!(
            "SELECT ",
            run_columns!(),
            " FROM series_runs WHERE series = $1 ORDER BY run_no DESC LIMIT 1"
        ),
        &[&name],
    )?
    .map(|r| run_row(&r))
    .transpose()
}

/// Creates the series with its defaults unless it exists.
fn ensure_series(tx: &mut Transaction<'_>, name: &str, now: &str) -> PgResult<()> {
    tx.execute(
        "INSERT INTO series (name, created_at, updated_at) VALUES ($1, $2, $2)
         ON CONFLICT (name) DO NOTHING",
        &[&name, &now],
    )
    .map(|_| ())
}

/// The series `name`, made with its defaults unless it exists, and
/// locked for the rest of `tx` (the update that changes nothing takes the
/// row's lock, as `FOR UPDATE` would).
fn locked_series(tx: &mut Transaction<'_>, name: &str, now: &str) -> PgResult<SeriesRow> {
    let row = tx.query_one(
        concat!(
            "INSERT INTO series (name, created_at, updated_at) VALUES ($1, $2, $2)
             ON CONFLICT (name) DO UPDATE SET updated_at = series.updated_at RETURNING ",
            series_columns!()
        ),
        &[&name, &now],
    )?;
    series_row(&row)
}

/// Opens a run of the series in `tx` (see
/// [`crate::store::SeriesStore::open_series_run`]).
fn open_run(
    tx: &mut Transaction<'_>,
    open: &OpenRun,
    window: &dyn Fn(&SeriesRow, Option<&SeriesRunRow>) -> String,
) -> PgResult<Opened> {
    // The series' lock makes processes opening its runs take turns: each
    // reads the latest run after the one before it committed.
    let series = locked_series(tx, open.series, open.start)?;
    let latest = latest_run(tx, &series.name)?;
    let (run_no, from_date) = match next_run(&series, latest.as_ref(), window) {
        Ok(next) => next,
        Err(open) => return Ok(Opened::AlreadyOpen(open.clone())),
    };
    let run = tx.query_one(
        concat!(
            "INSERT INTO series_runs (series, run_no, batch_id, start_time, status, from_date, bid)
             VALUES ($1, $2, $3, $4, 'OPEN', $5, $6) RETURNING ",
            run_columns!()
        ),
        &[
            &series.name,
            &run_no,
            &open.batch_id,
            &open.start,
            &from_date,
            &open.bid,
        ],
    )?;
    tx.execute(
        "UPDATE series SET from_date = NULL WHERE name = $1",
        &[&series.name],
    )?;
    Ok(Opened::Run(run_row(&run)?, series))
}

/// Opens the run that batch `bid` is (see [`BatchRun`]) in `tx`, after
/// giving the series the settings of its statement. A run of the series
/// open already refuses it with
/// [`crate::store::StoreError::SeriesRunOpen`], naming that run: the
/// caller's transaction then ends without a commit, and stores nothing of
/// the batch (nor of the settings).
pub(super) fn open_batch_run(
    tx: &mut Transaction<'_>,
    run: &BatchRun,
    bid: &str,
) -> std::result::Result<SeriesRunRow, TxError> {
    ensure_series(tx, run.series, run.start)?;
    let trunc_start = run.trunc_start.map(i64::from);
    tx.execute(
        "UPDATE series SET
             reprocess_hours = coalesce($2, reprocess_hours),
             trunc_start = coalesce($3, trunc_start),
             updated_at = CASE WHEN $2::bigint IS NULL AND $3::bigint IS NULL
                          THEN updated_at ELSE $4 END
         WHERE name = $1",
        &[&run.series, &run.reprocess_hours, &trunc_start, &run.start],
    )?;
    let opened = open_run(tx, &run.run(bid), &BatchRun::window)?;
    match opened {
        Opened::Run(run, _) => Ok(run),
        Opened::AlreadyOpen(open) => Err(TxError::Store(open.open_already())),
    }
}

impl crate::store::SeriesStore for PgStore {
    fn set_series(&self, set: &SeriesSet) -> Result<()> {
        let trunc_start = set.trunc_start.map(i64::from);
        self.tx(|tx| {
            // Locked: two WINDOW_SETs at once keep each other's parameters.
            locked_series(tx, set.name, set.now)?;
            let old: String = tx
                .query_one("SELECT params FROM series WHERE name = $1", &[&set.name])?
                .try_get(0)?;
            tx.execute(
                "UPDATE series SET
                     reprocess_hours = coalesce($2, reprocess_hours),
                     trunc_start = coalesce($3, trunc_start),
                     from_date = coalesce($4, from_date),
                     params = $5,
                     updated_at = $6
                 WHERE name = $1",
                &[
                    &set.name,
                    &set.reprocess_hours,
                    &trunc_start,
                    &set.from_date,
                    &set.merged_params(&old),
                    &set.now,
                ],
            )?;
            Ok(())
        })
    }

    fn all_series(&self) -> Result<Vec<SeriesRow>> {
        // Names without case in byte order, as SQLite's NOCASE sorts them.
        let rows = self
            .client()
            .query(
                concat!(
                    "SELECT ",
                    series_columns!(),
                    r#" FROM series ORDER BY lower(name COLLATE "C")"#
                ),
                &[],
            )
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(series_row)
            .collect::<PgResult<_>>()
            .map_err(|e| self.err(e))
    }

    fn series(&self, name: &str) -> Result<Option<SeriesRow>> {
        one_series(&mut *self.client(), name).map_err(|e| self.err(e))
    }

    fn series_runs(&self, name: &str, limit: usize) -> Result<Vec<SeriesRunRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .query(
                concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM series_runs WHERE series = $1 ORDER BY run_no DESC LIMIT $2"
                ),
                &[&name, &limit],
            )
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(run_row)
            .collect::<PgResult<_>>()
            .map_err(|e| self.err(e))
    }

    fn open_series_run(
        &self,
        open: &OpenRun,
        window: &dyn Fn(&SeriesRow, Option<&SeriesRunRow>) -> String,
    ) -> Result<Opened> {
        self.tx(|tx| Ok(open_run(tx, open, window)?))
    }

    fn batch_run(&self, bid: &str) -> Result<Option<SeriesRunRow>> {
        self.client()
            .query_opt(
                concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM series_runs WHERE bid = $1 ORDER BY run_no DESC LIMIT 1"
                ),
                &[&bid],
            )
            .and_then(|r| r.map(|r| run_row(&r)).transpose())
            .map_err(|e| self.err(e))
    }

    fn end_series_run(&self, name: &str, end: &SeriesRunEnd) -> Result<Option<SeriesRunRow>> {
        self.tx(|tx| {
            let ended = tx.query_opt(
                concat!(
                    "UPDATE series_runs SET status = $2, failed = $3, error = $4, end_time = $5
                     WHERE series = $1 AND status = 'OPEN' RETURNING ",
                    run_columns!()
                ),
                &[
                    &name,
                    &end.status.as_str(),
                    &end.failed,
                    &end.error,
                    &end.ended,
                ],
            )?;
            Ok(ended.map(|r| run_row(&r)).transpose()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::series::open_run;
    use crate::store::postgres::jobs::tests::{insert_batch, on_stores};
    use crate::store::postgres::testing::fresh;
    use crate::store::{SeriesStore, StoreError, Upgrades};

    fn batch_run<'a>(series: &'a str, start: &'a str, batch_id: i64) -> BatchRun<'a> {
        BatchRun {
            series,
            reprocess_hours: Some(2),
            trunc_start: Some(true),
            start,
            batch_id,
        }
    }

    #[test]
    fn window_set_keeps_what_it_does_not_name() {
        let Some(s) = fresh("window_set_keeps_what_it_does_not_name") else {
            return;
        };
        let region = [("region".to_string(), "EU".to_string())];
        s.set_series(&SeriesSet {
            name: "Sales",
            reprocess_hours: Some(3),
            from_date: Some("2026-01-01 00:00:00"),
            params: &region,
            now: "t1",
            ..SeriesSet::default()
        })
        .unwrap();
        let tier = [("tier".to_string(), "gold".to_string())];
        s.set_series(&SeriesSet {
            name: "SALES",
            trunc_start: Some(true),
            params: &tier,
            now: "t2",
            ..SeriesSet::default()
        })
        .unwrap();
        for name in ["a", "B"] {
            s.set_series(&SeriesSet {
                name,
                now: "t3",
                ..SeriesSet::default()
            })
            .unwrap();
        }
        let sales = s.series("sales").unwrap().unwrap();
        assert_eq!(
            (
                sales.name.as_str(),
                sales.reprocess_hours,
                sales.trunc_start,
                sales.from_date.as_deref()
            ),
            ("Sales", 3, true, Some("2026-01-01 00:00:00"))
        );
        assert_eq!(
            sales.params,
            [
                ("region".to_string(), "EU".to_string()),
                ("tier".to_string(), "gold".to_string())
            ]
        );
        assert_eq!(
            (sales.created_at.as_str(), sales.updated_at.as_str()),
            ("t1", "t2")
        );
        let names: Vec<_> = s
            .all_series()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "B", "Sales"]);
        assert_eq!(s.series("nope").unwrap(), None);
        // A run spends the WINDOW_SET date.
        let Opened::Run(_, was) = open_run(&*s, "sales", "2026-01-02T00:00:00.000Z", 1) else {
            panic!("no run opened");
        };
        assert_eq!(was.from_date.as_deref(), Some("2026-01-01 00:00:00"));
        assert_eq!(s.series("sales").unwrap().unwrap().from_date, None);
    }

    #[test]
    fn a_batch_of_a_series_with_a_run_open_is_refused_and_stores_nothing() {
        let Some(s) = fresh("a_batch_of_a_series_with_a_run_open_is_refused_and_stores_nothing")
        else {
            return;
        };
        let opened = s.tx(|tx| open_batch_run(tx, &batch_run("nightly", "t1", 7), "bid-1"));
        let run = opened.unwrap();
        assert_eq!(
            (run.run_no, run.bid.as_deref(), run.from_date.as_str()),
            (1, Some("bid-1"), crate::window::EPOCH_START)
        );
        assert_eq!(s.batch_run("bid-1").unwrap(), Some(run));
        assert_eq!(s.batch_run("bid-2").unwrap(), None);
        let nightly = s.series("nightly").unwrap().unwrap();
        assert_eq!((nightly.reprocess_hours, nightly.trunc_start), (2, true));
        let second = BatchRun {
            reprocess_hours: Some(9),
            ..batch_run("NIGHTLY", "t2", 8)
        };
        let e = s.tx(|tx| open_batch_run(tx, &second, "bid-2")).unwrap_err();
        assert!(
            matches!(&e, StoreError::SeriesRunOpen { series, batch_id: 7, bid: Some(b) }
                if series == "nightly" && b == "bid-1"),
            "{e}"
        );
        assert_eq!(s.series("nightly").unwrap(), Some(nightly));
        assert_eq!(s.series_runs("nightly", 10).unwrap().len(), 1);
        // And WINDOW_OPEN finds it as it is.
        let Opened::AlreadyOpen(open) = open_run(&*s, "nightly", "t3", 9) else {
            panic!("a second run was opened");
        };
        assert_eq!(open.bid.as_deref(), Some("bid-1"));
    }

    #[test]
    fn a_series_run_ends_with_its_batch_and_opens_again_with_its_retry() {
        let Some(s) = fresh("a_series_run_ends_with_its_batch_and_opens_again_with_its_retry")
        else {
            return;
        };
        insert_batch(&s, "b1", "IN_PROGRESS");
        s.tx(|tx| open_batch_run(tx, &batch_run("w", "t1", 1), "b1"))
            .unwrap();
        let set = |sql: &str| s.client().batch_execute(sql).unwrap();
        let run = || s.batch_run("b1").unwrap().unwrap();
        // Failed entities: the batch's own count and its workers'.
        set("UPDATE batches SET failed = 1 WHERE bid = 'b1';
             INSERT INTO batch_counts (batch, worker, failed)
                 SELECT batch_no, 'w1', 2 FROM batches WHERE bid = 'b1';
             UPDATE batches SET status = 'DONE', end_time = 'e1' WHERE bid = 'b1'");
        let r = run();
        assert_eq!(
            (r.status, r.failed, r.end_time.as_deref()),
            (SeriesRunStatus::Done, 3, Some("e1"))
        );
        // A retry opens it again.
        set("UPDATE batches SET status = 'IN_PROGRESS', end_time = NULL WHERE bid = 'b1'");
        let r = run();
        assert_eq!(
            (r.status, r.failed, r.end_time),
            (SeriesRunStatus::Open, 0, None)
        );
        // Failed with no end time of its own: ended now, with its error.
        set("UPDATE batches SET status = 'FAILED', error = 'boom' WHERE bid = 'b1'");
        let r = run();
        assert_eq!(
            (r.status, r.error.as_deref(), r.end_time.is_some()),
            (SeriesRunStatus::Failed, Some("boom"), true)
        );
        // Not the series' latest run any more: a retry leaves it ended.
        assert!(matches!(open_run(&*s, "w", "t2", 2), Opened::Run(..)));
        set("UPDATE batches SET status = 'IN_PROGRESS' WHERE bid = 'b1'");
        assert_eq!(run().status, SeriesRunStatus::Failed);
    }

    #[test]
    fn window_opens_at_once_open_one_run() {
        let Some(s) = fresh("window_opens_at_once_open_one_run") else {
            return;
        };
        const OPENERS: usize = 8;
        const ROUNDS: usize = 10;
        // The first round makes the series, the others find it.
        let opened = on_stores(&s.url, OPENERS, |i, store, barrier| {
            let mut opened = Vec::new();
            for round in 0..ROUNDS {
                let start = format!("2026-01-01T00:{round:02}:0{i}.000Z");
                barrier.wait();
                let won = matches!(open_run(store, "daily", &start, i as i64), Opened::Run(..));
                // Every opener has tried before the run ends.
                barrier.wait();
                if won {
                    opened.push(round);
                    let end = SeriesRunEnd {
                        status: SeriesRunStatus::Done,
                        failed: 0,
                        error: None,
                        ended: &start,
                    };
                    assert!(store.end_series_run("daily", &end).unwrap().is_some());
                }
                barrier.wait();
            }
            opened
        });
        let mut opened: Vec<usize> = opened.into_iter().flatten().collect();
        opened.sort_unstable();
        assert_eq!(opened, (0..ROUNDS).collect::<Vec<_>>(), "one run a round");
        assert_eq!(s.series_runs("daily", 100).unwrap().len(), ROUNDS);
        assert_eq!(s.all_series().unwrap().len(), 1);
    }

    #[test]
    fn a_retry_reopening_its_run_and_a_window_open_take_turns() {
        let Some(s) = fresh("a_retry_reopening_its_run_and_a_window_open_take_turns") else {
            return;
        };
        insert_batch(&s, "b1", "IN_PROGRESS");
        s.tx(|tx| open_batch_run(tx, &batch_run("w", "t1", 1), "b1"))
            .unwrap();
        let set = |c: &mut postgres::Client, status: &str| {
            c.execute(
                "UPDATE batches SET status = $1 WHERE bid = 'b1'",
                &[&status],
            )
            .unwrap();
        };
        set(&mut s.client(), "FAILED");
        // A retry of the batch opens its run again, and has not committed
        // when WINDOW_OPEN comes.
        let mut retry = postgres::Client::connect(&s.url, postgres::NoTls).unwrap();
        let mut tx = retry.transaction().unwrap();
        tx.execute(
            "UPDATE batches SET status = 'IN_PROGRESS' WHERE bid = 'b1'",
            &[],
        )
        .unwrap();
        let opened = std::thread::scope(|scope| {
            let opener = scope.spawn(|| {
                let store = PgStore::open(&s.url, Upgrades::Silent).unwrap();
                open_run(&store, "w", "t2", 2)
            });
            // WINDOW_OPEN waits for the retry's lock on the series.
            let waits = || {
                let waiting: i64 = s
                    .client()
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity
                         WHERE wait_event_type = 'Lock' AND datname = current_database()",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                waiting > 0
            };
            while !opener.is_finished() && !waits() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            tx.commit().unwrap();
            opener.join().unwrap()
        });
        let Opened::AlreadyOpen(run) = opened else {
            panic!("a second run was opened: {opened:?}");
        };
        assert_eq!((run.run_no, run.bid.as_deref()), (1, Some("b1")));
    }
}
