//! The run of a named series that a new batch is (`BATCH ... WITH
//! NAME=...`), opened in the batch's creating transaction, as the SQLite
//! store opens it (`crate::store::sqlite::series::open_batch_run`).

use super::rows::TxResult;
use crate::store::series::{BatchRun, SeriesRow, SeriesRunRow, SeriesRunStatus};
use postgres::Transaction;

/// Opens the run that batch `bid` is, after giving the series the settings
/// of its statement; the run open already, when there is one (then
/// nothing is opened). The series row is held until the commit, so that
/// of two runs opened at once one sees the other.
pub(super) fn open_batch_run(
    tx: &mut Transaction<'_>,
    run: &BatchRun,
    bid: &str,
) -> TxResult<Option<SeriesRunRow>> {
    tx.execute(
        "INSERT INTO series (name, created_at, updated_at) VALUES ($1, $2, $2)
         ON CONFLICT (name) DO NOTHING",
        &[&run.series, &run.start],
    )?;
    let trunc = run.trunc_start.map(i64::from);
    let r = tx.query_one(
        "UPDATE series SET
             reprocess_hours = coalesce($2, reprocess_hours),
             trunc_start = coalesce($3, trunc_start),
             updated_at = CASE WHEN $2::bigint IS NULL AND $3::bigint IS NULL THEN updated_at
                 ELSE $4 END
         WHERE name = $1
         RETURNING name, reprocess_hours, trunc_start, from_date, params, created_at, updated_at",
        &[&run.series, &run.reprocess_hours, &trunc, &run.start],
    )?;
    let params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r.get(4)).unwrap_or_default();
    let series = SeriesRow {
        name: r.get(0),
        reprocess_hours: r.get(1),
        trunc_start: r.get::<_, i64>(2) != 0,
        from_date: r.get(3),
        params: params
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        created_at: r.get(5),
        updated_at: r.get(6),
    };
    let latest = match tx.query_opt(
        "SELECT series, run_no, batch_id, start_time, end_time, status, failed, from_date,
             error, bid
         FROM series_runs WHERE series = $1 ORDER BY run_no DESC LIMIT 1",
        &[&series.name],
    )? {
        Some(r) => {
            let status: &str = r.get(5);
            Some(SeriesRunRow {
                series: r.get(0),
                run_no: r.get(1),
                batch_id: r.get(2),
                start_time: r.get(3),
                end_time: r.get(4),
                status: SeriesRunStatus::ALL
                    .into_iter()
                    .find(|x| x.as_str() == status)
                    .unwrap_or(SeriesRunStatus::Failed),
                failed: r.get(6),
                from_date: r.get(7),
                error: r.get(8),
                bid: r.get(9),
            })
        }
        None => None,
    };
    if let Some(open) = latest
        .as_ref()
        .filter(|r| r.status == SeriesRunStatus::Open)
    {
        return Ok(Some(open.clone()));
    }
    let from_date = series
        .next_from_date(latest.as_ref())
        .unwrap_or_else(|| crate::window::EPOCH_START.into());
    let run_no = latest.as_ref().map_or(1, |r| r.run_no + 1);
    tx.execute(
        "INSERT INTO series_runs (series, run_no, batch_id, start_time, status, from_date, bid)
         VALUES ($1, $2, $3, $4, 'OPEN', $5, $6)",
        &[
            &series.name,
            &run_no,
            &run.batch_id,
            &run.start,
            &from_date,
            &bid,
        ],
    )?;
    tx.execute(
        "UPDATE series SET from_date = NULL WHERE name = $1",
        &[&series.name],
    )?;
    Ok(None)
}
