use super::*;

#[test]
fn every_status_prints_its_spec_spelling_and_parses_back() {
    for s in BatchStatus::ALL {
        assert_eq!(s.to_string().parse::<BatchStatus>(), Ok(*s));
    }
    for s in EntityStatus::ALL {
        assert_eq!(s.to_string().parse::<EntityStatus>(), Ok(*s));
    }
    for s in JobStatus::ALL {
        assert_eq!(s.to_string().parse::<JobStatus>(), Ok(*s));
    }
    assert_eq!(
        BatchStatus::NAMES,
        [
            "WAITING_FOR_JOB",
            "NEW",
            "GENERATE_IID_LIST",
            "IN_PROGRESS",
            "PAUSED",
            "DONE",
            "FAILED",
            "CANCELLED"
        ]
    );
    assert_eq!(
        EntityStatus::NAMES,
        ["WAITING", "IN_PROCESS", "COMPLETED", "FAILED", "CANCELLED"]
    );
    assert_eq!(
        JobStatus::NAMES,
        [
            "SCHEDULED",
            "WAITING",
            "IN_PROCESS",
            "PROCESSED",
            "STOPPING",
            "TERMINATED",
            "FAILED",
            "RESTART"
        ]
    );
    let e = "done".parse::<BatchStatus>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "done is not a batch status (one of WAITING_FOR_JOB, NEW, GENERATE_IID_LIST, \
         IN_PROGRESS, PAUSED, DONE, FAILED, CANCELLED)"
    );
    assert_eq!(
        BatchStatus::parse_filter("GENERATE_IID"),
        Ok(BatchStatus::GenerateIidList)
    );
}

#[test]
fn the_name_lists_agree_with_the_statuses() {
    let finals: Vec<&str> = BatchStatus::FINAL.iter().map(|s| s.as_str()).collect();
    assert_eq!(finals, BatchStatus::FINAL_NAMES);
    for name in BatchStatus::FILTER_NAMES {
        assert!(
            ["ALL", "INTERRUPTED"].contains(name) || BatchStatus::parse_filter(name).is_ok(),
            "{name}"
        );
    }
    for name in BatchStatus::NAMES {
        assert!(BatchStatus::FILTER_NAMES.contains(name), "{name}");
    }
}

#[test]
fn only_done_failed_and_cancelled_are_final() {
    let finals: Vec<BatchStatus> = BatchStatus::ALL
        .iter()
        .copied()
        .filter(|s| s.is_final())
        .collect();
    assert_eq!(finals, BatchStatus::FINAL);
    assert_eq!(
        finals,
        [
            BatchStatus::Done,
            BatchStatus::Failed,
            BatchStatus::Cancelled
        ]
    );
}

#[test]
fn the_lifecycle_allows_the_spec_arrows_and_nothing_odd() {
    use BatchStatus::*;
    let allowed = [
        (WaitingForJob, New),
        (New, GenerateIidList),
        (GenerateIidList, InProgress),
        (InProgress, Done),
        (InProgress, Failed),
        (InProgress, Cancelled),
        (InProgress, Paused),
        (Paused, InProgress),
        // An empty entity set ends while its ids are generated.
        (GenerateIidList, Done),
        // A retry of a finished batch.
        (Done, InProgress),
        (Failed, GenerateIidList),
        (Cancelled, InProgress),
    ];
    for (from, to) in allowed {
        assert!(from.can_become(to), "{from} -> {to}");
    }
    let refused = [
        (Done, Failed),
        (Cancelled, Done),
        (Failed, Cancelled),
        (Done, Paused),
        (New, Done),
        (InProgress, New),
        (InProgress, WaitingForJob),
        (Paused, Paused),
    ];
    for (from, to) in refused {
        assert!(!from.can_become(to), "{from} -> {to}");
    }
    // Every unfinished status can fail or be cancelled; no final one can.
    for s in BatchStatus::ALL {
        assert_eq!(s.can_become(Failed), !s.is_final() && *s != Failed, "{s}");
        assert_eq!(
            s.can_become(Cancelled),
            !s.is_final() && *s != Cancelled,
            "{s}"
        );
    }
}

#[test]
fn a_runs_end_maps_to_one_exit_code() {
    let c = |failed| Counters {
        total: 10,
        completed: 10 - failed,
        failed,
        ..Counters::default()
    };
    let ended = |status, failed| RunEnd::Ended {
        status,
        error: None,
        counters: c(failed),
    };
    assert_eq!(ended(BatchStatus::Done, 0).exit_code(), 0);
    assert_eq!(ended(BatchStatus::Done, 2).exit_code(), 3);
    assert_eq!(ended(BatchStatus::Cancelled, 0).exit_code(), 3);
    assert_eq!(ended(BatchStatus::Failed, 0).exit_code(), 1);
    assert!(ended(BatchStatus::Failed, 0).is_failure());
    assert!(!ended(BatchStatus::Done, 2).is_failure());
    let taken = RunEnd::TakenOver {
        why: "x".into(),
        counters: c(0),
    };
    assert_eq!(taken.exit_code(), 1);
    for (signal, code) in [
        (StopSignal::Term, 143),
        (StopSignal::Hup, 129),
        (StopSignal::Drain, 1),
    ] {
        let end = RunEnd::Interrupted {
            signal,
            counters: c(0),
        };
        assert_eq!(end.exit_code(), code);
        // A signal is not the statement's failure; a store that failed is.
        assert_eq!(end.is_failure(), signal == StopSignal::Drain);
    }
}

#[test]
fn status_tones_cover_every_kind() {
    assert_eq!(Tone::of("DONE"), Some(Tone::Good));
    assert_eq!(Tone::of("FAILED"), Some(Tone::Bad));
    assert_eq!(Tone::of("PAUSED"), Some(Tone::Held));
    assert_eq!(Tone::of("IN_PROCESS"), Some(Tone::Active));
    assert_eq!(Tone::of("customer 42"), None);
}

#[test]
fn a_stop_says_what_stopped_the_batch() {
    assert_eq!(StopSignal::Term.stopped_by(), "stopped by SIGTERM");
    assert_eq!(StopSignal::Hup.stopped_by(), "stopped by SIGHUP");
    assert_eq!(
        StopSignal::Drain.stopped_by(),
        "stopped with its worker, whose store failed"
    );
}
