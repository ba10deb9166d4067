use super::super::assert_table;
use super::*;
use crate::batch::StopSignal;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A writer with nothing to do: claims allowed, a full pipeline (100 in
/// flight, none done), nothing in the hub, just written.
fn quiet() -> Signs {
    Signs {
        can_claim: true,
        depth: 100,
        known: true,
        hold: IDS_HOLD,
        in_flight: 100,
        ids_open: true,
        ..Signs::default()
    }
}

#[test]
fn claims_wait_for_the_run_to_go_on_and_for_every_id_when_asked() {
    // (stopping, paused, GENERATE_ENTITIES_FIRST, ids open) -> may claim
    let table = [
        // A running batch claims.
        ((false, false, false, true), true),
        // Stopping, or paused: no claim.
        ((true, false, false, false), false),
        ((false, true, false, false), false),
        // GENERATE_ENTITIES_FIRST: no claim while ids open; once every id
        // is stored, claims.
        ((false, false, true, true), false),
        ((false, false, true, false), true),
    ];
    assert_table(&table, |(stopping, paused, first, open)| {
        may_claim(stopping, paused, first, open)
    });
}

#[test]
fn a_step_is_worth_it_only_when_something_calls_for_it() {
    let table: Vec<(&str, Signs, bool)> = vec![
        ("nothing new: wait", quiet(), false),
        (
            "a pending release forces a step",
            Signs {
                release: 1,
                ..quiet()
            },
            true,
        ),
        (
            "half the pipeline done and entities to claim: refill",
            Signs {
                outcomes: 50,
                claim_in: Some(Duration::ZERO),
                ..quiet()
            },
            true,
        ),
        (
            "half the pipeline done and new ids: refill",
            Signs {
                outcomes: 50,
                ids: 10,
                ids_age: Some(ms(1)),
                ..quiet()
            },
            true,
        ),
        (
            "half the pipeline done, nothing to claim: wait",
            Signs {
                outcomes: 50,
                outcomes_age: Some(ms(1)),
                ..quiet()
            },
            false,
        ),
        (
            "entities waiting for their retry time do not refill yet",
            Signs {
                outcomes: 50,
                claim_in: Some(ms(10)),
                ..quiet()
            },
            false,
        ),
        (
            "less than half done: no refill",
            Signs {
                outcomes: 49,
                claim_in: Some(Duration::ZERO),
                ..quiet()
            },
            false,
        ),
        (
            "paused: no refill",
            Signs {
                can_claim: false,
                outcomes: 50,
                claim_in: Some(Duration::ZERO),
                ..quiet()
            },
            false,
        ),
        (
            "every entity in flight done",
            Signs {
                outcomes: 100,
                ..quiet()
            },
            true,
        ),
        (
            "every entity in flight done or taken back",
            Signs {
                outcomes: 60,
                release: 40,
                ..quiet()
            },
            true,
        ),
        (
            "FLUSH_AT outcomes",
            Signs {
                in_flight: 4000,
                depth: 4000,
                outcomes: FLUSH_AT,
                ..quiet()
            },
            true,
        ),
        (
            "outcomes waited FLUSH_EVERY",
            Signs {
                outcomes: 1,
                outcomes_age: Some(FLUSH_EVERY),
                ..quiet()
            },
            true,
        ),
        (
            "outcomes younger than FLUSH_EVERY wait",
            Signs {
                outcomes: 1,
                outcomes_age: Some(FLUSH_EVERY - ms(1)),
                ..quiet()
            },
            false,
        ),
        (
            "nothing claims: a batch of ids is stored",
            Signs {
                can_claim: false,
                ids: IDS_BATCH,
                ids_age: Some(ms(1)),
                ..quiet()
            },
            true,
        ),
        (
            "nothing claims: fewer ids wait up to FLUSH_EVERY",
            Signs {
                can_claim: false,
                ids: IDS_BATCH - 1,
                ids_age: Some(FLUSH_EVERY - ms(1)),
                ..quiet()
            },
            false,
        ),
        (
            "nothing claims: ids older than FLUSH_EVERY are stored",
            Signs {
                can_claim: false,
                ids: 1,
                ids_age: Some(FLUSH_EVERY),
                ..quiet()
            },
            true,
        ),
        (
            "ids wait for claims up to IDS_HOLD",
            Signs {
                ids: 10,
                ids_age: Some(IDS_HOLD - ms(1)),
                ..quiet()
            },
            false,
        ),
        (
            "ids that waited IDS_HOLD are stored",
            Signs {
                ids: 10,
                ids_age: Some(IDS_HOLD),
                ..quiet()
            },
            true,
        ),
        (
            "slow commands and a half-full id buffer: the ids are stored",
            Signs {
                depth: 4,
                ids: ID_BUFFER / 2,
                ids_age: Some(ms(1)),
                ..quiet()
            },
            true,
        ),
        (
            "... not while the mean entity time is a guess",
            Signs {
                depth: 4,
                known: false,
                ids: ID_BUFFER / 2,
                ids_age: Some(ms(1)),
                ..quiet()
            },
            false,
        ),
        (
            "... nor for fast commands",
            Signs {
                depth: IDS_BATCH,
                in_flight: IDS_BATCH,
                ids: ID_BUFFER / 2,
                ids_age: Some(ms(1)),
                ..quiet()
            },
            false,
        ),
        (
            "the source ended and its ids are all taken: a step says so",
            Signs {
                feed_over: true,
                ..quiet()
            },
            true,
        ),
        (
            "the source ended with ids left in the hub: they come first",
            Signs {
                feed_over: true,
                ids: 5,
                ids_age: Some(ms(1)),
                ..quiet()
            },
            false,
        ),
        (
            "the source's end was written already",
            Signs {
                feed_over: true,
                ids_open: false,
                ..quiet()
            },
            false,
        ),
        (
            "stopping with nothing in flight: the last step",
            Signs {
                stopping: true,
                can_claim: false,
                in_flight: 0,
                ..quiet()
            },
            true,
        ),
        (
            "stopping: entities given back by a halted worker are released",
            Signs {
                stopping: true,
                can_claim: false,
                queued: 3,
                ..quiet()
            },
            true,
        ),
        (
            "stopping with entities running: wait for them",
            Signs {
                stopping: true,
                can_claim: false,
                ..quiet()
            },
            false,
        ),
        (
            "CONTROL_POLL since the last write: requests and heartbeat",
            Signs {
                since_write: CONTROL_POLL,
                ..quiet()
            },
            true,
        ),
        (
            "a failure that counts for MAX_FAILURES",
            Signs {
                outcomes: 1,
                failed_pending: 1,
                ..quiet()
            },
            true,
        ),
        (
            "Ctrl-C or a stop signal",
            Signs {
                stop_asked: true,
                ..quiet()
            },
            true,
        ),
    ];
    for (name, signs, want) in table {
        assert_eq!(worth_a_step(&signs), want, "{name}: {signs:?}");
    }
}

#[test]
fn the_writer_sleeps_until_the_next_deadline_and_is_woken_by_enough_work() {
    let nap_of = |at_most: u64, wake_outcomes: usize, wake_ids: usize| Nap {
        at_most: ms(at_most),
        wake_outcomes,
        wake_ids,
    };
    let table: Vec<(&str, Signs, Nap)> = vec![
        (
            "a full pipeline: MAX_WAIT; woken when half of it is done, or by fast ids",
            quiet(),
            nap_of(100, 50, ID_BUFFER / 2),
        ),
        (
            "the mean entity time unknown: ids do not wake it",
            Signs {
                known: false,
                ..quiet()
            },
            nap_of(100, 50, usize::MAX),
        ),
        (
            "room in the pipeline: woken by the first id",
            Signs {
                outcomes: 50,
                outcomes_age: Some(ms(10)),
                ..quiet()
            },
            nap_of(40, 50, 1),
        ),
        (
            "the heartbeat is due soon",
            Signs {
                since_write: CONTROL_POLL - ms(30),
                ..quiet()
            },
            nap_of(30, 50, ID_BUFFER / 2),
        ),
        (
            "overdue: a millisecond, never zero",
            Signs {
                outcomes: 1,
                outcomes_age: Some(FLUSH_EVERY * 2),
                ..quiet()
            },
            nap_of(1, 50, ID_BUFFER / 2),
        ),
        (
            "ids held up to IDS_HOLD",
            Signs {
                ids: 10,
                ids_age: Some(IDS_HOLD - ms(20)),
                ..quiet()
            },
            nap_of(20, 50, ID_BUFFER / 2),
        ),
        (
            "paused: ids held up to FLUSH_EVERY, woken by a batch of them, or when \
             everything in flight is done",
            Signs {
                can_claim: false,
                ids: 10,
                ids_age: Some(ms(10)),
                ..quiet()
            },
            nap_of(40, 100, IDS_BATCH),
        ),
        (
            "entities waiting for their retry time: until then",
            Signs {
                claim_in: Some(ms(7)),
                ..quiet()
            },
            nap_of(7, 50, ID_BUFFER / 2),
        ),
        (
            "... unless nothing claims",
            Signs {
                can_claim: false,
                claim_in: Some(ms(7)),
                ..quiet()
            },
            nap_of(100, 100, IDS_BATCH),
        ),
        (
            "the source read, nothing to claim: only when everything is done",
            Signs {
                ids_open: false,
                ..quiet()
            },
            nap_of(100, 100, ID_BUFFER / 2),
        ),
        (
            "entities to be released need no outcome",
            Signs {
                ids_open: false,
                release: 30,
                ..quiet()
            },
            nap_of(100, 70, ID_BUFFER / 2),
        ),
        (
            "nothing in flight: the first outcome",
            Signs {
                in_flight: 0,
                ..quiet()
            },
            nap_of(100, 1, 1),
        ),
        (
            "never more than FLUSH_AT outcomes",
            Signs {
                in_flight: 5000,
                depth: 100,
                ids_open: false,
                ..quiet()
            },
            nap_of(100, FLUSH_AT, ID_BUFFER / 2),
        ),
        (
            "fast commands: ids do not wake it",
            Signs {
                in_flight: IDS_BATCH,
                depth: IDS_BATCH,
                ..quiet()
            },
            nap_of(100, FLUSH_AT, usize::MAX),
        ),
    ];
    for (name, signs, want) in table {
        assert_eq!(nap(&signs), want, "{name}: {signs:?}");
    }
}

#[test]
fn a_cancel_always_stops_a_pause_holds_a_running_batch_and_its_end_resumes_it() {
    use Request::{Cancel, Pause};
    // (requested, paused, stopping) -> what the run does
    let table = [
        ((None, false, false), Heed::Nothing),
        ((Some(Cancel), false, false), Heed::Cancel),
        ((Some(Cancel), true, false), Heed::Cancel),
        ((Some(Cancel), false, true), Heed::Cancel),
        ((Some(Pause), false, false), Heed::Pause),
        // Paused already.
        ((Some(Pause), true, false), Heed::Nothing),
        // A run that stops is not paused: it releases what it holds anyway.
        ((Some(Pause), false, true), Heed::Nothing),
        // BATCH_RESUME cleared the request.
        ((None, true, false), Heed::Resume),
        ((None, true, true), Heed::Resume),
    ];
    assert_table(&table, |(requested, paused, stopping)| {
        heed(requested, paused, stopping)
    });
}

#[test]
fn max_failures_counts_against_what_is_known_of_the_total() {
    // (stored total, ids read not stored, ids open, estimate) -> total
    let table = [
        // The source read: the stored total, whatever the estimate.
        ((100, 0, false, Some(1000)), 100),
        // While it is read: the ids read so far ...
        ((100, 50, true, None), 150),
        // ... or ESTIMATED_ENTITIES_COUNT if larger.
        ((100, 50, true, Some(1000)), 1000),
        ((100, 50, true, Some(10)), 150),
    ];
    assert_table(&table, |(stored, unstored, open, estimate)| {
        failures_total(stored, unstored, open, estimate)
    });
}

#[test]
fn a_run_ends_when_nothing_is_in_flight_and_it_stops_or_its_batch_is_done() {
    let cancelled = Stop::End(BatchStatus::Cancelled, None);
    let failed = Stop::End(BatchStatus::Failed, Some("MAX_FAILURES".into()));
    let signal = Stop::Signal(StopSignal::Term);
    let done = Stop::End(BatchStatus::Done, None);
    let end = |how: &Stop, leftovers| Verdict::End(how.clone(), leftovers);
    // The counters after the last step: WAITING, IN_PROCESS.
    let c = |waiting: i64, in_process: i64| Counters {
        total: 10,
        waiting,
        in_process,
        ..Counters::default()
    };
    // (name, verdict(coordinate, in flight, to release, stop, ids open, counters), want)
    let table = [
        (
            "entities in flight: go on",
            verdict(true, 3, 0, None, false, &c(0, 3)),
            Verdict::GoOn,
        ),
        (
            "a cancel waits for the entities in flight",
            verdict(true, 3, 0, Some(&cancelled), false, &c(0, 3)),
            Verdict::GoOn,
        ),
        (
            "entities to release: go on",
            verdict(true, 0, 2, Some(&cancelled), false, &c(0, 2)),
            Verdict::GoOn,
        ),
        (
            "ids still read: go on",
            verdict(true, 0, 0, None, true, &c(0, 0)),
            Verdict::GoOn,
        ),
        (
            "an open batch, every entity done, appends may come: go on, not DONE",
            verdict(true, 0, 0, None, true, &c(0, 0)),
            Verdict::GoOn,
        ),
        (
            "IN_PROCESS entities nobody here holds while ids may come: looked at",
            verdict(true, 0, 0, None, true, &c(0, 2)),
            Verdict::RequeueOrphans,
        ),
        (
            "entities waiting (a retry time): go on",
            verdict(true, 0, 0, None, false, &c(4, 0)),
            Verdict::GoOn,
        ),
        (
            "all done: DONE",
            verdict(true, 0, 0, None, false, &c(0, 0)),
            end(&done, Leftovers::Nothing),
        ),
        (
            "IN_PROCESS entities nobody holds: requeued, not DONE",
            verdict(true, 0, 0, None, false, &c(0, 2)),
            Verdict::RequeueOrphans,
        ),
        (
            "cancel with in-process entities cancels orphans",
            verdict(true, 0, 0, Some(&cancelled), false, &c(0, 2)),
            end(&cancelled, Leftovers::Cancel { orphans: true }),
        ),
        (
            "cancel cancels the waiting entities, ids still read or not",
            verdict(true, 0, 0, Some(&cancelled), true, &c(5, 0)),
            end(&cancelled, Leftovers::Cancel { orphans: false }),
        ),
        (
            "FAILED with in-process entities requeues them",
            verdict(true, 0, 0, Some(&failed), false, &c(5, 2)),
            end(&failed, Leftovers::Requeue),
        ),
        (
            "FAILED leaves the waiting entities waiting",
            verdict(true, 0, 0, Some(&failed), true, &c(5, 0)),
            end(&failed, Leftovers::Nothing),
        ),
        (
            "a stop signal requeues in-process entities, for BATCH_RETRY",
            verdict(true, 0, 0, Some(&signal), false, &c(0, 1)),
            end(&signal, Leftovers::Requeue),
        ),
        (
            "a stop signal with ids still read",
            verdict(true, 0, 0, Some(&signal), true, &c(3, 0)),
            end(&signal, Leftovers::Nothing),
        ),
    ];
    for (name, got, want) in table {
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_node_that_does_not_coordinate_leaves_when_it_stops_or_nothing_is_left_for_it() {
    let cancelled = Stop::End(BatchStatus::Cancelled, None);
    let signal = Stop::Signal(StopSignal::Term);
    let c = |waiting: i64, in_process: i64| Counters {
        total: 10,
        waiting,
        in_process,
        ..Counters::default()
    };
    // (name, verdict(coordinate, in flight, to release, stop, ids open, counters), want)
    let table = [
        (
            "entities in flight: go on",
            verdict(false, 2, 0, None, false, &c(0, 2)),
            Verdict::GoOn,
        ),
        (
            "entities to release first",
            verdict(false, 0, 1, Some(&signal), false, &c(0, 1)),
            Verdict::GoOn,
        ),
        (
            "ids still stored by the feeding node: go on",
            verdict(false, 0, 0, None, true, &c(0, 0)),
            Verdict::GoOn,
        ),
        (
            "entities waiting: go on",
            verdict(false, 0, 0, None, false, &c(3, 0)),
            Verdict::GoOn,
        ),
        (
            "other nodes' entities in process: leave, not DONE, no requeue",
            verdict(false, 0, 0, None, false, &c(0, 4)),
            Verdict::Leave,
        ),
        (
            "nothing left: leave; the coordinator ends the batch",
            verdict(false, 0, 0, None, false, &c(0, 0)),
            Verdict::Leave,
        ),
        (
            "a cancel: leave, the coordinator cancels",
            verdict(false, 0, 0, Some(&cancelled), true, &c(5, 0)),
            Verdict::Leave,
        ),
        (
            "a stop signal: leave",
            verdict(false, 0, 0, Some(&signal), false, &c(5, 0)),
            Verdict::Leave,
        ),
    ];
    for (name, got, want) in table {
        assert_eq!(got, want, "{name}");
    }
}

/// An asynchronous batch's ids are stored for other nodes after
/// SHARED_IDS_HOLD when its entities are slow, not held the whole
/// IDS_HOLD to be claimed here; not before an outcome tells the pace
/// (echo would be stored WAITING first).
#[test]
fn ids_of_a_shared_batch_are_stored_sooner() {
    // (shared, outcomes seen, depth by their mean)
    let table = [
        ((false, true, 16), IDS_HOLD),
        ((true, false, 16), IDS_HOLD),
        ((true, true, 16), SHARED_IDS_HOLD),
        ((true, true, IDS_BATCH), IDS_HOLD),
    ];
    crate::exec::run::assert_table(&table, |(shared, seen, depth)| id_hold(shared, seen, depth));
    let waiting_ids = |hold| Signs {
        hold,
        ids: 10,
        ids_age: Some(SHARED_IDS_HOLD + Duration::from_millis(10)),
        ..quiet()
    };
    assert!(!worth_a_step(&waiting_ids(IDS_HOLD)));
    assert!(worth_a_step(&waiting_ids(SHARED_IDS_HOLD)));
}
