//! Named series and their runs (SPEC §9): what `WINDOW_SET` stores, and
//! the runs `WINDOW_OPEN` opens and `WINDOW_CLOSE` / `WINDOW_FAIL` end.
//!
//! A run may later be a batch (`BATCH ... WITH NAME=...`): it then holds
//! the batch's bid, and a batch that ends DONE with failed entities ends
//! its run DONE with `failed` above zero, which the next window treats as
//! a failure. One run of a series is open at a time, checked in the one
//! transaction of [`SeriesStore::open_series_run`] and by the store's
//! schema besides.

use super::row::Row;
use super::{Result, StoreError};
use crate::window::Last;

/// How a run of a series stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesRunStatus {
    Open,
    Done,
    Failed,
    Cancelled,
}

impl SeriesRunStatus {
    pub const ALL: [SeriesRunStatus; 4] = [Self::Open, Self::Done, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// The status a store's text names (`FAILED` for a text that names
    /// none).
    pub fn from_stored(s: &str) -> SeriesRunStatus {
        SeriesRunStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .unwrap_or(SeriesRunStatus::Failed)
    }
}

impl std::fmt::Display for SeriesRunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A series' parameters as a store keeps them (a JSON object), by name;
/// a value that is no string reads as its JSON text.
pub fn stored_params(json: &str) -> Vec<(String, String)> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect()
}

/// A series as `WINDOW_SET` (or its first run) made it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRow {
    pub name: String,
    pub reprocess_hours: i64,
    pub trunc_start: bool,
    /// `WINDOW_SET`'s `FROM_DATE`, until a run opens with it.
    pub from_date: Option<String>,
    /// The series' own parameters, by name.
    pub params: Vec<(String, String)>,
    pub created_at: String,
    pub updated_at: String,
}

impl SeriesRow {
    /// The series in `r`, whose columns are name, reprocess_hours,
    /// trunc_start, from_date, params, created_at, updated_at.
    pub fn read<R: Row>(r: &R) -> std::result::Result<SeriesRow, R::Error> {
        Ok(SeriesRow {
            name: r.text(0)?,
            reprocess_hours: r.int(1)?,
            trunc_start: r.flag(2)?,
            from_date: r.text_or_null(3)?,
            params: stored_params(&r.text(4)?),
            created_at: r.text(5)?,
            updated_at: r.text(6)?,
        })
    }

    pub fn settings(&self) -> crate::window::Settings {
        crate::window::Settings {
            reprocess_hours: self.reprocess_hours,
            trunc_start: self.trunc_start,
        }
    }

    /// The next run's `from_date` in the local time zone, after `latest`
    /// (the series' latest run); `None` while that run is open (the
    /// window depends on how it ends).
    pub fn next_from_date(&self, latest: Option<&SeriesRunRow>) -> Option<String> {
        let last = match latest {
            None => Last::Nothing,
            Some(run) => run.last()?,
        };
        Some(crate::window::next_from_date(
            self.from_date.as_deref(),
            &last,
            self.settings(),
            &chrono::Local,
        ))
    }
}

/// A run of a series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRunRow {
    pub series: String,
    pub run_no: i64,
    /// The start as unix epoch seconds, as Batchy numbers its batches.
    pub batch_id: i64,
    /// RFC 3339 UTC.
    pub start_time: String,
    pub end_time: Option<String>,
    pub status: SeriesRunStatus,
    /// Failed entities, for a run that is a batch.
    pub failed: i64,
    /// The window it reads from (local wall-clock text).
    pub from_date: String,
    pub error: Option<String>,
    pub bid: Option<String>,
}

impl SeriesRunRow {
    /// The run in `r`, whose columns are series, run_no, batch_id,
    /// start_time, end_time, status, failed, from_date, error, bid.
    pub fn read<R: Row>(r: &R) -> std::result::Result<SeriesRunRow, R::Error> {
        Ok(SeriesRunRow {
            series: r.text(0)?,
            run_no: r.int(1)?,
            batch_id: r.int(2)?,
            start_time: r.text(3)?,
            end_time: r.text_or_null(4)?,
            status: SeriesRunStatus::from_stored(&r.text(5)?),
            failed: r.int(6)?,
            from_date: r.text(7)?,
            error: r.text_or_null(8)?,
            bid: r.text_or_null(9)?,
        })
    }

    /// The refusal of another run of its series while this one is open
    /// (one open run per series).
    pub fn open_already(self) -> StoreError {
        StoreError::SeriesRunOpen {
            series: self.series,
            batch_id: self.batch_id,
            bid: self.bid,
        }
    }

    /// What this run, the latest of its series, says of the next window;
    /// `None` while it is open (that depends on how it ends).
    pub fn last(&self) -> Option<Last> {
        match self.status {
            SeriesRunStatus::Open => None,
            SeriesRunStatus::Done if self.failed == 0 => {
                chrono::DateTime::parse_from_rfc3339(&self.start_time)
                    .ok()
                    .map(|t| Last::Clean {
                        start: t.with_timezone(&chrono::Utc),
                    })
            }
            _ => Some(Last::Repeat {
                from_date: self.from_date.clone(),
            }),
        }
    }
}

impl SeriesRunRow {
    /// The window variables of this run (SPEC §9), as a batch that is
    /// this run binds them (`:from_date`...) and exports them to its
    /// processes (`FROM_DATE`...): `BATCH_START` and `BATCH_END` are both
    /// the run's start as local wall-clock text, the end of its window (a
    /// row stamped at or after it is the next run's), and `BID` the batch.
    pub fn variables(&self) -> Vec<(String, String)> {
        let start = chrono::DateTime::parse_from_rfc3339(&self.start_time).map_or_else(
            |_| self.start_time.clone(),
            |t| crate::window::local_text(t.with_timezone(&chrono::Utc), &chrono::Local),
        );
        let mut v = vec![
            ("FROM_DATE", self.from_date.clone()),
            ("BATCH_START", start.clone()),
            ("BATCH_END", start),
            ("BATCH_ID", self.batch_id.to_string()),
        ];
        if let Some(bid) = &self.bid {
            v.push(("BID", bid.clone()));
        }
        v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// What the commands of batch `bid` get, when it is a run of a series:
/// the run's window variables ([`SeriesRunRow::variables`]), then the
/// series' parameters (`WINDOW_SET ... region='EU'`) under their names in
/// upper case (`REGION`); nothing for a batch that is no run.
pub fn batch_window(store: &dyn SeriesStore, bid: &str) -> Result<Vec<(String, String)>> {
    let Some(run) = store.batch_run(bid)? else {
        return Ok(Vec::new());
    };
    let params = store.series(&run.series)?.map(|s| s.params);
    Ok(run.variables().into_iter().chain(upper(params)).collect())
}

/// A series' parameters as a batch's commands get them.
pub fn upper(params: Option<Vec<(String, String)>>) -> impl Iterator<Item = (String, String)> {
    params
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
}

/// What `WINDOW_SET` changes: what is `None` (or not among `params`) is
/// kept as it is; a new series gets REPROCESS_HOURS 0 and no TRUNC_START.
#[derive(Clone, Debug, Default)]
pub struct SeriesSet<'a> {
    pub name: &'a str,
    pub reprocess_hours: Option<i64>,
    pub trunc_start: Option<bool>,
    pub from_date: Option<&'a str>,
    pub params: &'a [(String, String)],
    /// RFC 3339 UTC.
    pub now: &'a str,
}

impl SeriesSet<'_> {
    /// The series' parameters, `old` as the store keeps them (a JSON
    /// object), with this statement's set over them.
    pub fn merged_params(&self, old: &str) -> String {
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(old).unwrap_or_default();
        for (k, v) in self.params {
            map.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        serde_json::Value::Object(map).to_string()
    }
}

/// A run to open.
#[derive(Clone, Debug)]
pub struct OpenRun<'a> {
    pub series: &'a str,
    /// RFC 3339 UTC.
    pub start: &'a str,
    pub batch_id: i64,
    pub bid: Option<&'a str>,
}

/// A batch that is a run of a series (`BATCH ... WITH NAME=...`): the
/// series' settings its statement gives (`None`: kept), and the run's
/// start. [`crate::store::BatchStore::create_batch`] opens the run with
/// the batch, in its transaction.
#[derive(Clone, Debug)]
pub struct BatchRun<'a> {
    pub series: &'a str,
    pub reprocess_hours: Option<i64>,
    pub trunc_start: Option<bool>,
    /// RFC 3339 UTC.
    pub start: &'a str,
    pub batch_id: i64,
}

impl<'a> BatchRun<'a> {
    /// The run that batch `bid` opens.
    pub fn run(&self, bid: &'a str) -> OpenRun<'a> {
        OpenRun {
            series: self.series,
            start: self.start,
            batch_id: self.batch_id,
            bid: Some(bid),
        }
    }

    /// The window a batch's run reads: the one after its series' latest
    /// run, from the start of the epoch when nothing says where it begins.
    pub fn window(series: &SeriesRow, latest: Option<&SeriesRunRow>) -> String {
        series
            .next_from_date(latest)
            .unwrap_or_else(|| crate::window::EPOCH_START.into())
    }
}

/// The run of `series` to open after `latest`, its latest run: its
/// number and the `from_date` that `window` gives it; refused with
/// `latest` when that run is open (one open run per series).
pub fn next_run<'a>(
    series: &SeriesRow,
    latest: Option<&'a SeriesRunRow>,
    window: &dyn Fn(&SeriesRow, Option<&SeriesRunRow>) -> String,
) -> std::result::Result<(i64, String), &'a SeriesRunRow> {
    match latest {
        Some(open) if open.status == SeriesRunStatus::Open => Err(open),
        _ => Ok((latest.map_or(1, |r| r.run_no + 1), window(series, latest))),
    }
}

/// What [`SeriesStore::open_series_run`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Opened {
    /// The run, and its series as it was when the run opened.
    Run(SeriesRunRow, SeriesRow),
    /// Nothing: this run of the series is open.
    AlreadyOpen(SeriesRunRow),
}

/// How the open run of a series ended.
#[derive(Clone, Debug)]
pub struct SeriesRunEnd<'a> {
    pub status: SeriesRunStatus,
    pub failed: i64,
    pub error: Option<&'a str>,
    /// RFC 3339 UTC.
    pub ended: &'a str,
}

/// The series table and the runs of its series.
pub trait SeriesStore {
    /// Creates the series or changes it (see [`SeriesSet`]).
    fn set_series(&self, set: &SeriesSet) -> Result<()>;

    /// Every series, by name.
    fn all_series(&self) -> Result<Vec<SeriesRow>>;

    /// The series of that name (case-insensitive).
    fn series(&self, name: &str) -> Result<Option<SeriesRow>>;

    /// Runs of a series, newest first.
    fn series_runs(&self, name: &str, limit: usize) -> Result<Vec<SeriesRunRow>>;

    /// Opens a run, atomically: the series is created with its defaults if
    /// there is none, and unless a run of it is open, the run is written
    /// with the `from_date` that `window` computes from the series and its
    /// latest run, and the series' `WINDOW_SET` date is spent.
    fn open_series_run(
        &self,
        open: &OpenRun,
        window: &dyn Fn(&SeriesRow, Option<&SeriesRunRow>) -> String,
    ) -> Result<Opened>;

    /// The run of a series that batch `bid` is (`BATCH ... WITH NAME`).
    fn batch_run(&self, bid: &str) -> Result<Option<SeriesRunRow>>;

    /// Ends the open run of the series; `None` when none is open.
    fn end_series_run(&self, name: &str, end: &SeriesRunEnd) -> Result<Option<SeriesRunRow>>;
}
