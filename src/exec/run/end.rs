//! How a run ends: its last writes, its final status (or its batch left
//! unfinished after a stop signal), the `ON_DONE` hook; and the end of a
//! run that was taken over.

use super::*;

/// How a run that was taken over ends: with the batch's counters as the
/// new owner keeps them, and why it stopped. `helped`: the run only
/// helped, and this node (if known) owned the batch when it joined.
pub(super) fn taken_over(
    store: &dyn Store,
    me: RunRef,
    e: &StoreError,
    helped: Option<Option<String>>,
    started: Instant,
) -> Finished {
    // A helper's batch that has another execution now was taken from its
    // owner, which another process judged dead: this helper was not
    // (its own node declared dead leaves the execution as it was, and the
    // error tells that case as it is).
    let moved = helped.is_some()
        && store
            .batch_state(me.bid)
            .is_ok_and(|s| s.execution_id != me.execution_id);
    let why = match (e, helped) {
        (
            StoreError::TakenOver {
                node, pid, status, ..
            },
            Some(owner),
        ) if moved => {
            let owner = owner.map(|o| format!(", node {o},")).unwrap_or_default();
            let by = match node {
                Some(node) => format!("node {node} (pid {})", pid.unwrap_or_default()),
                None => format!("another process (the batch is {status} now)"),
            };
            format!(
                "batch {} was taken over by {by}, which judged its owner{owner} dead; this \
                 node stopped helping with it",
                me.bid
            )
        }
        _ => e.to_string(),
    };
    Finished {
        bid: me.bid.to_string(),
        execution_id: me.execution_id.to_string(),
        end: RunEnd::TakenOver {
            why,
            counters: store.counters(me.bid).unwrap_or_default(),
        },
        duration: started.elapsed(),
    }
}

/// The end of a run that reached it (`end`), with the `slowest` entities
/// to record: the last writes, the final status (or the batch left
/// unfinished after a stop signal), and `ON_DONE`.
pub(super) fn finish(
    ctx: Ctx,
    end: Stop,
    slowest: &serde_json::Value,
) -> std::result::Result<Finished, Halt> {
    let Ctx {
        env,
        plan,
        me,
        started,
        ..
    } = ctx;
    let store = env.store;
    let bid = me.bid;
    env.events.event(Event::ProgressDone);
    patiently(env, bid, || store.set_extra_stats(me, slowest)).map_err(halt)?;
    let mut seq = patiently(env, bid, || store.max_seq(bid)).map_err(halt)?;
    let done = patiently(env, bid, || {
        store.step(me, &mut seq, &mut StepInput::default())
    })
    .map_err(halt)?;
    let finished = done.counters.completed + done.counters.failed;
    patiently(env, bid, || store.sample_progress(me, finished)).map_err(halt)?;
    patiently(env, bid, || store.end_node(me)).map_err(halt)?;
    let c = done.counters;
    patiently(env, bid, || store.still_there()).map_err(halt)?;
    let end = match end {
        Stop::Signal(signal) => {
            let note = format!("{}; BATCH_RETRY finishes it", signal.stopped_by());
            let note = note.as_str();
            patiently(env, bid, || store.leave_unfinished(me, note)).map_err(halt)?;
            RunEnd::Interrupted {
                signal,
                counters: c,
            }
        }
        Stop::End(status, error) => {
            let why = error.as_deref();
            patiently(env, bid, || store.set_run_status(me, status, why)).map_err(halt)?;
            if let Some(cmd) = &plan.on_done {
                // The batch is over: a SIGTERM need not wait for its hook
                // (it kills it, and says the batch had ended).
                crate::terminate::batch_ended();
                let _hook = crate::terminate::HookRunning::start(bid, status);
                on_done(env.events, cmd, bid, status, &c);
            }
            RunEnd::Ended {
                status,
                error,
                counters: c,
            }
        }
    };
    Ok(Finished {
        bid: bid.to_string(),
        execution_id: me.execution_id.to_string(),
        end,
        duration: started.elapsed(),
    })
}
