//! The control statements: `BATCH_PAUSE`, `BATCH_RESUME`, `BATCH_CANCEL`,
//! `BATCH_RETRY`, `BATCH_EDIT`. A live owner is asked through a request it
//! reads at its next step; a batch nobody runs is changed here, in one
//! transaction guarded against a process that took it over meanwhile.

use super::{Result, Session, StatementError, message};
use crate::analyze::{EditOptions, RetryOptions};
use crate::ast::{Span, Statement, Stmt};
use crate::batch::{BatchStatus, Request};
use crate::output::Output;
use crate::store::{Store, StoreError};

impl Session {
    pub(super) fn control(&mut self, stmt: &Stmt) -> Result<Option<Output>> {
        use Statement as S;
        let (bid_text, verb) = match &stmt.kind {
            S::BatchPause { bid } => (bid, "pause"),
            S::BatchResume { bid } => (bid, "resume"),
            S::BatchCancel { bid } => (bid, "cancel"),
            S::BatchRetry { bid, .. } => (bid, "retry"),
            S::BatchEdit { bid, .. } => (bid, "edit"),
            _ => unreachable!("control() takes control statements"),
        };
        let bid = self.resolve(bid_text, stmt.span)?;
        let at = bid_text.as_ref().map_or(stmt.span, |b| b.span);
        self.last_bid = Some(bid.clone());
        self.control_of(stmt, &bid, at, verb)
            .map_err(|e| e.about(&bid))
    }

    /// A control statement on batch `bid` (`at`: where the statement
    /// names it), which is `verb`ed.
    fn control_of(
        &mut self,
        stmt: &Stmt,
        bid: &str,
        at: Span,
        verb: &str,
    ) -> Result<Option<Output>> {
        use Statement as S;
        let bid = bid.to_string();
        let store = self.store.as_deref().expect("resolve opened it");
        let state = store
            .batch_state(&bid)
            .map_err(|e| StatementError::at(at, e))?;
        let serr = |e: StoreError| StatementError::at(at, e);
        let is_final = state.status.is_final();
        let alive = state.owner_alive();
        let refuse = |why: String| {
            Err(StatementError::refused(
                at,
                format!("cannot {verb} batch {bid}: {why}"),
            ))
        };
        match &stmt.kind {
            S::BatchPause { .. } => {
                if is_final {
                    return refuse(format!("it has ended ({})", state.status));
                }
                if state.status == BatchStatus::Paused {
                    return refuse("it is paused already".into());
                }
                if alive {
                    store.request(&bid, Some(Request::Pause)).map_err(serr)?;
                    Ok(message(format!(
                        "batch {bid}: pause requested; entities in flight finish"
                    )))
                } else if store
                    .pause_unowned(&bid, &state, &self.node)
                    .map_err(serr)?
                {
                    Ok(message(format!("batch {bid} paused")))
                } else {
                    refuse(changed_meanwhile(store, &bid, &state))
                }
            }
            S::BatchResume { .. } => {
                if alive
                    && state.status != BatchStatus::Paused
                    && state.requested == Some(Request::Pause)
                {
                    // Paused so recently that the run has not seen it yet.
                    store.request(&bid, None).map_err(serr)?;
                    return Ok(message(format!(
                        "batch {bid}: the pause asked for is withdrawn"
                    )));
                }
                if state.status != BatchStatus::Paused {
                    return refuse(format!("it is {}, not PAUSED", state.status));
                }
                if alive {
                    store.request(&bid, None).map_err(serr)?;
                    Ok(message(format!("batch {bid}: resume requested")))
                } else {
                    // Nobody runs it: resuming means running it here.
                    self.rerun(&bid, &state, false, stmt.span).map(Some)
                }
            }
            S::BatchCancel { .. } => {
                if is_final {
                    return refuse(format!("it has ended ({})", state.status));
                }
                if alive {
                    store.request(&bid, Some(Request::Cancel)).map_err(serr)?;
                    Ok(message(format!(
                        "batch {bid}: cancel requested; entities in flight finish"
                    )))
                } else if store
                    .cancel_unowned(&bid, &state, &self.node)
                    .map_err(serr)?
                {
                    Ok(message(format!("batch {bid} cancelled")))
                } else {
                    refuse(changed_meanwhile(store, &bid, &state))
                }
            }
            S::BatchRetry { options, .. } => {
                // A finished batch has no owner; one that has is being
                // taken over by another retry, which has not started yet.
                if alive {
                    return refuse(format!(
                        "it is running on node {} (pid {})",
                        state.owner_node.clone().unwrap_or_default(),
                        state.owner_pid.unwrap_or_default()
                    ));
                }
                let options = RetryOptions::decode(options);
                if state.status == BatchStatus::Cancelled && !options.allow_cancelled {
                    return refuse("it was cancelled; add ALLOW_CANCELLED=true to retry it".into());
                }
                let finished = state.status == BatchStatus::Done;
                self.rerun(&bid, &state, finished, stmt.span).map(Some)
            }
            S::BatchEdit { options, .. } => {
                if is_final {
                    return refuse(format!("it has ended ({})", state.status));
                }
                // Its faults are told against the batch, like its state.
                let n = match EditOptions::decode(options, stmt.span) {
                    Ok(options) => options.max_workers_per_node,
                    Err(e) => return refuse(e.to_string()),
                };
                store
                    .set_max_workers(&bid, n as i64, &self.node)
                    .map_err(serr)?;
                let most = crate::plan::MAX_NODE_WORKERS;
                let cap = if n > most {
                    format!(" ({most} run: the most a batch runs on one node)")
                } else {
                    String::new()
                };
                Ok(message(format!(
                    "batch {bid}: MAX_WORKERS_PER_NODE={n}{cap}"
                )))
            }
            _ => unreachable!("matched above"),
        }
    }

    /// Runs an existing batch again here: a retry, or a resume of a batch
    /// nobody runs. The statement is re-planned from its stored text.
    pub(super) fn rerun(
        &mut self,
        bid: &str,
        state: &crate::store::batches::BatchState,
        finished: bool,
        span: Span,
    ) -> Result<Output> {
        let (stop, _watch) = self.stop_token();
        let store = self.store.as_deref().expect("opened");
        let serr = |e: StoreError| StatementError::at(span, e);
        let plan = crate::analyze::stored_batch(store, bid, &state.command, self.workers)
            .map_err(|why| StatementError::refused(span, why))?;
        let execution_id = uuid::Uuid::new_v4().to_string();
        crate::knobs::gate();
        if store
            .prepare_retry(bid, finished, state, &self.node, &execution_id)
            .map_err(serr)?
            .is_none()
        {
            return Err(StatementError::refused(
                span,
                format!(
                    "cannot run batch {bid} here: {}",
                    changed_meanwhile(store, bid, state)
                ),
            ));
        }
        if plan.asynchronous {
            // ASYNC stays ASYNC: the batch goes back in the queue of jobs.
            store.queue_job(bid, &self.node).map_err(serr)?;
            return Ok(self.queued(bid.to_string(), &plan.placement));
        }
        // Taken over, the batch is this process's to finish: it joins it
        // with every role, as a new batch's process does.
        let fin = crate::exec::run::join(
            &self.env(store, &self.terminal(&plan), &stop),
            &plan,
            bid,
            &execution_id,
            crate::exec::run::Roles::ALL,
            !state.ids_complete,
        )?;
        Ok(self.ended(&fin))
    }
}

/// Why a control statement lost its race: another process changed the
/// batch between the moment it was read (`seen`) and the write. The owner
/// it judged dead may have woken up (it had stalled: its heartbeat came
/// back, or it wrote before its heartbeat did), or another process took
/// the batch over.
fn changed_meanwhile(
    store: &dyn Store,
    bid: &str,
    seen: &crate::store::batches::BatchState,
) -> String {
    match store.batch_state(bid) {
        Ok(now) => why_changed(seen, &now, now.owner_alive()),
        Err(e) => e.to_string(),
    }
}

/// [`changed_meanwhile`]'s words, from the batch as it was `seen` and as
/// it is `now`, and whether its owner now is `alive`. The same process
/// (node and pid) as before woke up, whether or not its heartbeat is
/// back yet: it was not taken over.
fn why_changed(
    seen: &crate::store::batches::BatchState,
    now: &crate::store::batches::BatchState,
    alive: bool,
) -> String {
    let pid = now.owner_pid.unwrap_or_default();
    match &now.owner_node {
        Some(node) if Some(node) == seen.owner_node.as_ref() && now.owner_pid == seen.owner_pid => {
            if alive {
                format!(
                    "it is running on node {node} (pid {pid}): its heartbeat came back, so it \
                     had stalled, not died; it is {} now",
                    now.status
                )
            } else {
                format!(
                    "the process that ran it, on node {node} (pid {pid}), wrote to it again: it \
                     had stalled, not died; it is {} now",
                    now.status
                )
            }
        }
        Some(node) => format!(
            "node {node} (pid {pid}) took it over meanwhile; it is {} now",
            now.status
        ),
        None => format!(
            "another process changed it meanwhile; it is {} now, try again",
            now.status
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::why_changed;
    use crate::batch::BatchStatus;
    use crate::store::batches::BatchState;

    fn state(node: &str, pid: i64, status: BatchStatus) -> BatchState {
        BatchState {
            status,
            execution_id: "e1".into(),
            ids_complete: false,
            owner_node: Some(node.into()),
            owner_pid: Some(pid),
            heartbeat_at: None,
            command: "BATCH L FABRIC_COMMAND='echo ?'".into(),
            requested: None,
            owner_worker: None,
        }
    }

    /// A retry that lost its race to the owner it judged dead says that
    /// owner runs the batch, with its heartbeat back or not yet (it wrote
    /// first); only another process is said to have taken it over.
    #[test]
    fn a_lost_race_names_the_owner_that_woke_up_or_the_one_that_took_over() {
        let seen = state("n1", 41, BatchStatus::InProgress);
        let woke = why_changed(&seen, &state("n1", 41, BatchStatus::InProgress), true);
        assert!(woke.contains("running on node n1 (pid 41)"), "{woke}");
        assert!(woke.contains("heartbeat came back"), "{woke}");
        let wrote = why_changed(&seen, &state("n1", 41, BatchStatus::Done), false);
        assert!(
            wrote.contains("on node n1 (pid 41), wrote to it again"),
            "{wrote}"
        );
        assert!(
            wrote.contains("stalled, not died; it is DONE now"),
            "{wrote}"
        );
        assert!(!wrote.contains("took it over"), "{wrote}");
        for other in [
            state("n2", 41, BatchStatus::New),
            state("n1", 42, BatchStatus::New),
        ] {
            let took = why_changed(&seen, &other, true);
            assert!(took.contains("took it over meanwhile"), "{took}");
        }
    }
}
