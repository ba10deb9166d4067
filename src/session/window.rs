//! Named series for ETL steps that run outside batchsh (SPEC §9), as
//! Batchy's endpoints: `WINDOW_SET` (a series' settings, next window and
//! parameters), `WINDOW_OPEN` (open a run, print its window),
//! `WINDOW_CLOSE` / `WINDOW_FAIL` (end it) and `WINDOW_STATUS`. The rules
//! of the next window are in [`crate::window`]; the store keeps one run of
//! a series open at a time.

use super::{Result, Session, StatementError};
use crate::ast::{OutputFormat, Param, Span, Text, Value};
use crate::output::{Cell, KeyValues, Output, Raw, Table};
use crate::store::series::{
    OpenRun, Opened, SeriesRow, SeriesRunEnd, SeriesRunRow, SeriesRunStatus, SeriesSet,
};
use crate::store::{StoreError, stamp};
use crate::window;
use chrono::Local;

/// How `WINDOW_OPEN` and `WINDOW_STATUS` print (their `FORMAT=`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Key/value rows, in the session's format.
    Table,
    /// One JSON object, as it is.
    Json,
    /// An Informatica parameter file, as it is.
    Infa,
}

fn format_of(options: &crate::ast::Options) -> Format {
    match options.get("FORMAT") {
        Some(Value::Str(s)) if s == "JSON" => Format::Json,
        Some(Value::Str(s)) if s == "INFA" => Format::Infa,
        _ => Format::Table,
    }
}

/// A stored RFC 3339 time as local wall-clock text, as windows are given.
fn local(stamp: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(stamp).map_or_else(
        |_| stamp.to_string(),
        |t| window::local_text(t.with_timezone(&chrono::Utc), &Local),
    )
}

/// The next run's `from_date`, from the series and its latest run; `None`
/// while a run is open (it depends on how that run ends).
fn next_from_date(series: &SeriesRow, latest: Option<&SeriesRunRow>) -> Option<String> {
    series.next_from_date(latest)
}

/// The window a named batch's next run would get, as `EXPLAIN` shows it
/// and counts its source with.
pub(super) struct NextWindow {
    /// `FROM_DATE`, `BATCH_START`, `BATCH_END`, `BATCH_ID` (now), `BID`.
    pub values: Vec<(String, String)>,
    /// Why a BATCH now would not get it.
    pub note: Option<String>,
}

/// The window the next run of `plan`'s series would get if it started
/// now, with the settings the statement gives it; while a run is open
/// (the BATCH would be refused), that run's window.
pub(super) fn next_window(
    store: &dyn crate::store::Store,
    plan: &crate::plan::SeriesPlan,
) -> std::result::Result<NextWindow, StoreError> {
    let now = crate::knobs::now();
    let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let start = stamp(now);
    let mut series = store.series(&plan.name)?.unwrap_or_else(|| SeriesRow {
        name: plan.name.clone(),
        reprocess_hours: 0,
        trunc_start: false,
        from_date: None,
        params: Vec::new(),
        created_at: start.clone(),
        updated_at: start.clone(),
    });
    series.reprocess_hours = plan.reprocess_hours.unwrap_or(series.reprocess_hours);
    series.trunc_start = plan.trunc_start.unwrap_or(series.trunc_start);
    let latest = store.series_runs(&series.name, 1)?.into_iter().next();
    let (from_date, note) = match latest
        .as_ref()
        .filter(|r| r.status == SeriesRunStatus::Open)
    {
        Some(open) => {
            let note = format!(
                "series {} has a run open (batch_id {}): a BATCH now is refused until it ends",
                series.name, open.batch_id
            );
            (open.from_date.clone(), Some(note))
        }
        None => (
            series
                .next_from_date(latest.as_ref())
                .unwrap_or_else(|| window::EPOCH_START.into()),
            None,
        ),
    };
    let run = SeriesRunRow {
        series: series.name.clone(),
        run_no: 0,
        batch_id: now.timestamp(),
        start_time: start,
        end_time: None,
        status: SeriesRunStatus::Open,
        failed: 0,
        from_date,
        error: None,
        bid: Some("(the new batch's id)".into()),
    };
    let params = crate::store::series::upper(Some(series.params));
    Ok(NextWindow {
        values: run.variables().into_iter().chain(params).collect(),
        note,
    })
}

/// What a run hands out: its window, then the series' parameters.
fn run_fields(run: &SeriesRunRow, series: &SeriesRow) -> Vec<(String, Cell)> {
    let mut f = vec![
        ("series".to_string(), Cell::Text(series.name.clone())),
        ("batch_id".to_string(), Cell::Int(run.batch_id)),
        ("from_date".to_string(), Cell::Text(run.from_date.clone())),
        (
            "batch_start".to_string(),
            Cell::Text(local(&run.start_time)),
        ),
    ];
    f.extend(params(series));
    f
}

fn params(series: &SeriesRow) -> impl Iterator<Item = (String, Cell)> + '_ {
    series
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Cell::Text(v.clone())))
}

/// Fields as `format` prints them.
fn print(fields: Vec<(String, Cell)>, format: Format) -> Output {
    match format {
        Format::Table => Output::KeyValues(KeyValues { rows: fields }),
        Format::Json => raw(as_json(Output::KeyValues(KeyValues { rows: fields }))),
        Format::Infa => {
            let mut text = String::from("[Global]\n");
            for (k, v) in fields.iter().filter(|(k, _)| k != "series") {
                let v = match v {
                    Cell::Text(s) => s.clone(),
                    Cell::Int(n) => n.to_string(),
                    Cell::Null => continue,
                    other => as_json(Output::KeyValues(KeyValues {
                        rows: vec![(k.clone(), other.clone())],
                    })),
                };
                text.push_str(&format!("$${k}={v}\n"));
            }
            raw(text)
        }
    }
}

fn as_json(out: Output) -> String {
    let style = crate::output::Style {
        format: OutputFormat::Json,
        color: false,
        width: None,
        expanded: crate::ast::Expanded::Off,
    };
    crate::output::render(&out, &style)
}

/// Text printed as it is.
fn raw(text: String) -> Output {
    let mut records = Table::new(["Parameters"]);
    records.push_row(vec![Cell::Text(text)]);
    Output::Raw(Raw {
        records,
        text_column: 0,
    })
}

impl Session {
    /// The series named `name`, or an error naming the closest one.
    fn series_named(&mut self, name: &Text) -> Result<SeriesRow> {
        let store = self.store()?;
        if let Some(s) = store
            .series(&name.value)
            .map_err(|e| StatementError::at(name.span, e))?
        {
            return Ok(s);
        }
        let all = store
            .all_series()
            .map_err(|e| StatementError::at(name.span, e))?;
        let suggestion = crate::typo::suggest(&name.value, all.iter().map(|s| s.name.as_str()))
            .map(|s| format!("'{s}'"));
        Err(StatementError::at(
            name.span,
            StoreError::NotFound {
                kind: "series",
                name: format!("'{}'", name.value),
                suggestion,
            },
        ))
    }

    /// `WINDOW_SET 'name' FROM_DATE='...' [REPROCESS_HOURS=n]
    /// [TRUNC_START=true] [param='value' ...]`.
    pub(super) fn window_set(
        &mut self,
        name: &Text,
        options: &crate::ast::Options,
        given: &[Param],
    ) -> Result<Option<Output>> {
        let now = crate::knobs::now();
        let mut from_date = None;
        if let Some(o) = options.0.iter().find(|o| o.name == "FROM_DATE")
            && let Value::Str(s) = &o.value
        {
            from_date = Some(window::parse_from_date(s, now, &Local).ok_or_else(|| {
                StatementError::refused(o.span, format!("FROM_DATE '{s}' is not a time"))
            })?);
        }
        let reprocess_hours = match options.get("REPROCESS_HOURS") {
            Some(Value::Int(h)) => Some(*h),
            _ => None,
        };
        let trunc_start = match options.get("TRUNC_START") {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        };
        let params: Vec<(String, String)> = given
            .iter()
            .map(|p| (p.name.value.clone(), p.value.value.clone()))
            .collect();
        let now = stamp(now);
        let store = self.store()?;
        store
            .set_series(&SeriesSet {
                name: &name.value,
                reprocess_hours,
                trunc_start,
                from_date: from_date.as_deref(),
                params: &params,
                now: &now,
            })
            .map_err(|e| StatementError::at(name.span, e))?;
        Ok(super::message(format!(
            "series {} set: its next run reads from {}",
            name.value,
            from_date.unwrap_or_default()
        )))
    }

    /// `WINDOW_OPEN 'name' [FORMAT=...]`: opens a run (making the series on
    /// its first run, as Batchy does) and prints its window.
    pub(super) fn window_open(
        &mut self,
        name: &Text,
        options: &crate::ast::Options,
    ) -> Result<Option<Output>> {
        // A batch_id is whole seconds; the start is the same second.
        let now = crate::knobs::now();
        let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let start = stamp(now);
        let store = self.store()?;
        let opened = store
            .open_series_run(
                &OpenRun {
                    series: &name.value,
                    start: &start,
                    batch_id: now.timestamp(),
                    bid: None,
                },
                &|series, latest| {
                    next_from_date(series, latest).unwrap_or_else(|| window::EPOCH_START.into())
                },
            )
            .map_err(|e| StatementError::at(name.span, e))?;
        match opened {
            Opened::Run(run, series) => {
                Ok(Some(print(run_fields(&run, &series), format_of(options))))
            }
            Opened::AlreadyOpen(run) => Err(StatementError::refused(
                name.span,
                format!(
                    "series {} has a run open already (batch_id {}, opened {}); end it first \
                     with WINDOW_CLOSE '{n}' or WINDOW_FAIL '{n}'",
                    run.series,
                    run.batch_id,
                    local(&run.start_time),
                    n = run.series
                ),
            )),
        }
    }

    /// `WINDOW_CLOSE 'name'` (`status` DONE) and `WINDOW_FAIL 'name'
    /// [ERROR='...']` (FAILED): ends the series' open run.
    pub(super) fn window_end(
        &mut self,
        name: &Text,
        status: SeriesRunStatus,
        error: Option<&str>,
    ) -> Result<Option<Output>> {
        let series = self.series_named(name)?;
        let ended = stamp(crate::knobs::now());
        let store = self.store()?;
        let latest = store
            .series_runs(&series.name, 1)
            .map_err(|e| StatementError::at(name.span, e))?;
        if let Some(run) = latest.first().filter(|r| r.status == SeriesRunStatus::Open)
            && let Some(bid) = &run.bid
        {
            return Err(StatementError::refused(
                name.span,
                format!(
                    "the open run of series {} is batch {bid}, which ends it as it ends; \
                     cancel it with BATCH_CANCEL '{bid}'",
                    series.name
                ),
            ));
        }
        let run = store
            .end_series_run(
                &series.name,
                &SeriesRunEnd {
                    status,
                    failed: 0,
                    error,
                    ended: &ended,
                },
            )
            .map_err(|e| StatementError::at(name.span, e))?;
        let Some(run) = run else {
            return Err(StatementError::refused(
                name.span,
                format!(
                    "series {n} has no open run to end (WINDOW_OPEN '{n}' opens one)",
                    n = series.name
                ),
            ));
        };
        Ok(super::message(format!(
            "run {} of series {} ended {}",
            run.batch_id, run.series, run.status
        )))
    }

    /// `WINDOW_STATUS ['name'] [FORMAT=...]`.
    pub(super) fn window_status(
        &mut self,
        name: Option<&Text>,
        options: &crate::ast::Options,
        span: Span,
    ) -> Result<Option<Output>> {
        let format = format_of(options);
        let Some(name) = name else {
            if format == Format::Infa {
                return Err(StatementError::refused(
                    span,
                    "FORMAT='infa' prints the parameters of one series: name it \
                     (WINDOW_STATUS 'name' FORMAT='infa')",
                ));
            }
            let table = self.all_series_status(span)?;
            return Ok(Some(match format {
                Format::Json => raw(as_json(Output::Table(table))),
                _ => Output::Table(table),
            }));
        };
        let series = self.series_named(name)?;
        let store = self.store()?;
        let runs = store
            .series_runs(&series.name, 1)
            .map_err(|e| StatementError::at(name.span, e))?;
        let latest = runs.first();
        if format == Format::Infa {
            // An open run's file is what WINDOW_OPEN printed; else the
            // next window's.
            let fields = match latest.filter(|r| r.status == SeriesRunStatus::Open) {
                Some(run) => run_fields(run, &series),
                None => {
                    let mut f = vec![(
                        "from_date".to_string(),
                        next_from_date(&series, latest).into(),
                    )];
                    f.extend(params(&series));
                    f
                }
            };
            return Ok(Some(print(fields, format)));
        }
        let mut f = status_fields(&series, latest);
        f.push(("reprocess_hours".into(), Cell::Int(series.reprocess_hours)));
        f.push(("trunc_start".into(), Cell::Bool(series.trunc_start)));
        f.extend(params(&series));
        Ok(Some(print(f, format)))
    }

    fn all_series_status(&mut self, span: Span) -> Result<Table> {
        let store = self.store()?;
        let all = store
            .all_series()
            .map_err(|e| StatementError::at(span, e))?;
        let mut t = Table::new(crate::output::columns::WINDOW_STATUS.iter().copied());
        for s in &all {
            let runs = store
                .series_runs(&s.name, 1)
                .map_err(|e| StatementError::at(span, e))?;
            t.push_row(
                status_fields(s, runs.first())
                    .into_iter()
                    .map(|(_, c)| c)
                    .collect(),
            );
        }
        Ok(t)
    }
}

/// A series' latest run and next window, in the order of
/// [`crate::output::columns::WINDOW_STATUS`].
fn status_fields(series: &SeriesRow, latest: Option<&SeriesRunRow>) -> Vec<(String, Cell)> {
    vec![
        ("series".into(), Cell::Text(series.name.clone())),
        ("status".into(), latest.map(|r| r.status.to_string()).into()),
        ("batch_id".into(), latest.map(|r| r.batch_id).into()),
        (
            "batch_start".into(),
            latest.map(|r| local(&r.start_time)).into(),
        ),
        (
            "batch_end".into(),
            latest.and_then(|r| r.end_time.as_deref().map(local)).into(),
        ),
        (
            "from_date".into(),
            latest.map(|r| r.from_date.clone()).into(),
        ),
        ("error".into(), latest.and_then(|r| r.error.clone()).into()),
        (
            "next_from_date".into(),
            next_from_date(series, latest).into(),
        ),
    ]
}
