//! The contract of named series and their runs, on any store.

use super::ContractStore;
use crate::store::series::*;

/// Runs the series tests on stores that `fresh` makes, each new and
/// empty.
pub fn all(fresh: &dyn Fn() -> Box<dyn ContractStore>) {
    one_run_of_a_series_is_open_at_a_time(&*fresh());
}

/// Opens a run of `series` for batch `batch_id`; its from-date names the
/// run before it.
pub fn open_run(s: &dyn ContractStore, series: &str, start: &str, batch_id: i64) -> Opened {
    s.open_series_run(
        &OpenRun {
            series,
            start,
            batch_id,
            bid: None,
        },
        &|_, latest| format!("from after run {:?}", latest.map(|r| r.run_no)),
    )
    .unwrap()
}

fn one_run_of_a_series_is_open_at_a_time(s: &dyn ContractStore) {
    let Opened::Run(first, series) = open_run(s, "wf1", "2026-11-21T13:30:00.000Z", 1) else {
        panic!("the first run was not opened");
    };
    assert_eq!((first.run_no, series.name.as_str()), (1, "wf1"));
    assert_eq!(first.from_date, "from after run None");
    // A second open finds the first one, and writes nothing.
    assert_eq!(
        open_run(s, "WF1", "2026-11-21T13:31:00.000Z", 2),
        Opened::AlreadyOpen(first)
    );
    assert_eq!(s.series_runs("wf1", 10).unwrap().len(), 1);
    // The schema refuses a second open run written by any other way.
    assert!(
        s.try_execute(
            "INSERT INTO series_runs (series, run_no, batch_id, start_time, status, from_date)
             VALUES ('wf1', 9, 9, 'x', 'OPEN', 'x')",
        )
        .is_err()
    );
    let end = SeriesRunEnd {
        status: SeriesRunStatus::Failed,
        failed: 0,
        error: Some("boom"),
        ended: "2026-11-21T13:32:00.000Z",
    };
    let ended = s.end_series_run("WF1", &end).unwrap().unwrap();
    assert_eq!(
        (ended.status, ended.error.as_deref()),
        (SeriesRunStatus::Failed, Some("boom"))
    );
    assert_eq!(s.end_series_run("wf1", &end).unwrap(), None);
    let Opened::Run(second, _) = open_run(s, "wf1", "2026-11-21T13:33:00.000Z", 3) else {
        panic!("the second run was not opened");
    };
    assert_eq!(
        (second.run_no, second.from_date.as_str()),
        (2, "from after run Some(1)")
    );
    let runs = s.series_runs("wf1", 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.run_no).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(s.series_runs("wf1", 1).unwrap(), [second]);
}
