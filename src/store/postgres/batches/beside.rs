//! A step with many outcomes, written on two connections at once.
//!
//! A fast command's step spends most of its time in the server's `COPY`
//! of its outcomes' rows, which one connection's backend does on one
//! core. So a step whose outcomes of entities claimed as they arrived
//! are many ([`WRITE_BESIDE_FROM`]) writes the later half of them
//! beside the rest, in a transaction of its own on a second connection
//! ("the part beside"): the two backends copy their rows at once.
//!
//! Each part is whole by itself: the part beside writes its rows, counts
//! down their claim rows and adds them to the counters (a row of
//! `batch_counts` of its own) in one transaction, as a step does. The
//! main part commits only after the part beside did, so a crash between
//! the two commits leaves the later half written and the rest still
//! claimed, as if the step had been two steps. Neither part waits for a
//! row the other holds:
//!
//! - the main part starts once the part beside holds its fence, so a
//!   takeover that comes between them waits for both, not the part
//!   beside for it;
//! - the main part holds its claim rows `FOR KEY SHARE` and copies its
//!   own rows first, and counts down its claim rows (of which the part
//!   beside may share one, which the hold lets it count down) only once
//!   the part beside has committed, as it takes the node's rows, which
//!   both change, only at its end;
//! - the part beside locks nothing that the main part holds by then: its
//!   claim rows and the node's rows are not the main part's yet, its
//!   counters row is its own, and both hold the batch row `FOR KEY
//!   SHARE`, which the main part's heartbeat on it lets through.
//!
//! Only a step that releases nothing is written in two: a release comes
//! with a pause or a stop, rare and small, and the step stays whole then.

use super::super::{PgStore, TxError};
use super::rows::{Hold, TxResult};
use super::step::{Part, counts_key, step_in};
use crate::store::batches::*;
use crate::store::{Result, StoreError};
use std::sync::mpsc;

/// Steps with fewer outcomes of entities claimed as they arrived than
/// this write them all in one transaction: at 8 Ki rows, the copy takes
/// the server about 10 ms, ten times the round trips the part beside
/// adds.
pub(super) const WRITE_BESIDE_FROM: usize = 8 * 1024;

/// What the counters row of the part beside adds to the run's key.
const BESIDE_KEY: &str = "/beside";

/// The outcomes that `input` writes beside the rest, taken out of it:
/// the later half, by sequence number, of its outcomes of entities
/// claimed as they arrived, when those are [`WRITE_BESIDE_FROM`] or
/// more and the step releases nothing. None otherwise (`input` is left
/// as it was).
pub(super) fn half_to_write_beside(input: &mut StepInput) -> Option<Vec<Outcome>> {
    let claimed = input.outcomes.iter().filter(|o| o.claim.is_some()).count();
    if claimed < WRITE_BESIDE_FROM || !input.release.is_empty() {
        return None;
    }
    // Those of stored rows first, then the claimed ones in order.
    input
        .outcomes
        .sort_unstable_by_key(|o| (o.claim.is_some(), o.seq));
    let at = input.outcomes.len() - claimed / 2;
    Some(input.outcomes.split_off(at))
}

impl PgStore {
    /// A step whose outcomes `half` are written beside the rest of it,
    /// on the second connection, as the module says. When the part beside
    /// fails, nothing of the step is written and `half` is back in
    /// `input`; when the main part fails after the part beside committed,
    /// `half` stays out of `input` (it is written), so that the step,
    /// tried again, writes the rest only.
    pub(super) fn step_in_two(
        &self,
        run: RunRef,
        next_seq: &mut i64,
        input: &mut StepInput,
        half: Vec<Outcome>,
    ) -> Result<StepResult> {
        let mut side = self.side.borrow_mut();
        if side.is_none() {
            match self.sibling() {
                Ok(s) => *side = Some(Box::new(s)),
                // No second connection now: the step is written whole.
                Err(_) => {
                    input.outcomes.extend(half);
                    return self.step_part(run, next_seq, input, &mut Part::Whole);
                }
            }
        }
        let beside: &mut PgStore = side.as_deref_mut().expect("opened above");
        let key = format!("{}{BESIDE_KEY}", counts_key(&run));
        let part_input = StepInput {
            outcomes: half,
            // It beats no batch heartbeat: the main part does.
            helper: true,
            ..StepInput::default()
        };
        let (fenced_tx, fenced_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<Result<()>>();
        let (main, part_input, beside_result) = std::thread::scope(|scope| {
            let part = scope.spawn(move || {
                let mut seq = 0;
                let r = beside.fenced(run, Hold::Share, |tx, fence| {
                    let _ = fenced_tx.send(());
                    let part = &mut Part::Beside(&key);
                    step_in(beside, tx, fence, run, &mut seq, &part_input, part).map(|_| ())
                });
                let _ = done_tx.send(r);
                part_input
            });
            // Its fence held (or its failure known): see the module.
            let _ = fenced_rx.recv();
            let mut beside_result: Option<Result<()>> = None;
            let mut wait = || -> TxResult<()> {
                let r = beside_result
                    .get_or_insert_with(|| done_rx.recv().unwrap_or(Err(beside_failed(self))));
                match r {
                    Ok(()) => Ok(()),
                    Err(_) => Err(TxError::Store(beside_failed(self))),
                }
            };
            let main = self.step_part(run, next_seq, input, &mut Part::Main(&mut wait));
            let part_input = part.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            // The main part may have failed before it waited.
            let beside_result = beside_result
                .or_else(|| done_rx.try_recv().ok())
                .unwrap_or(Err(beside_failed(self)));
            (main, part_input, beside_result)
        });
        match beside_result {
            Ok(()) => main,
            Err(e) => {
                input.outcomes.extend(part_input.outcomes);
                Err(e)
            }
        }
    }
}

/// The main part's error when the part beside failed (whose own error is
/// the step's).
fn beside_failed(s: &PgStore) -> StoreError {
    StoreError::Postgres {
        store: s.shown.display().to_string(),
        message: "the outcomes written beside the step were not written".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::store;
    use super::*;
    use crate::store::contract::batches::{adds_up, done, failed, ids, ok, step, test_run};

    fn count(s: &PgStore, sql: &str) -> i64 {
        crate::store::contract::count(s, sql)
    }

    /// Claims `n` ids as they arrive, `per_row` to a claim row (one step
    /// each): their entities.
    fn claimed(s: &PgStore, seq: &mut i64, n: i64, per_row: i64) -> Vec<Claimed> {
        let mut all = Vec::new();
        for from in (1..=n).step_by(per_row as usize) {
            let upto = (from + per_row).min(n + 1);
            let input = StepInput {
                new_ids: ids(from..upto),
                claim: (upto - from) as usize,
                ..StepInput::default()
            };
            all.extend(step(s, seq, input).claimed);
        }
        all
    }

    /// The transactions that wrote the batch's rows, each with the
    /// lowest and highest sequence number it wrote, in order.
    fn writers(s: &PgStore) -> Vec<(i64, i64)> {
        s.client()
            .query(
                "SELECT min(seq), max(seq) FROM batch_entities
                 GROUP BY xmin::text ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// A step of many outcomes writes the later half of them in a
    /// transaction of its own, beside the rest, with their own counters
    /// row; together they write what one transaction would: every row,
    /// the claim rows counted down and gone, counters that add up. A step
    /// of fewer outcomes writes them in one transaction.
    #[test]
    fn a_step_of_many_outcomes_writes_the_later_half_beside_the_rest() {
        let Some(s) = store("a_step_of_many_outcomes_writes_the_later_half_beside_the_rest") else {
            return;
        };
        let n = 2 * WRITE_BESIDE_FROM as i64 + 100;
        let mut seq = 0;
        let claimed = claimed(&s, &mut seq, n, 10_000);
        assert_eq!(claimed.len() as i64, n);
        // The first 100 alone: one transaction.
        let outcomes = claimed[..100].iter().map(|c| done(c, 1, ok())).collect();
        step(
            &*s,
            &mut seq,
            StepInput {
                outcomes,
                ..StepInput::default()
            },
        );
        assert_eq!(writers(&s), [(1, 100)]);
        // The rest, some of them failed: two, split at the middle.
        let outcomes: Vec<Outcome> = claimed[100..]
            .iter()
            .map(|c| {
                done(
                    c,
                    1,
                    if c.seq % 1000 == 0 {
                        failed("no")
                    } else {
                        ok()
                    },
                )
            })
            .collect();
        let half = outcomes.len() / 2;
        let r = step(
            &*s,
            &mut seq,
            StepInput {
                outcomes,
                ..StepInput::default()
            },
        );
        let middle = 100 + n - 100 - half as i64;
        assert_eq!(writers(&s), [(1, 100), (101, middle), (middle + 1, n)]);
        let c = r.counters;
        assert_eq!(
            (c.total, c.in_process, c.completed, c.failed),
            (n, 0, n - n / 1000, n / 1000)
        );
        adds_up(&c);
        assert_eq!(s.counters("b1").unwrap(), c);
        assert_eq!(count(&s, "SELECT count(*) FROM batch_claims"), 0);
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM batch_entities WHERE status = 'COMPLETED'"
            ),
            n - n / 1000
        );
        assert_eq!(
            count(
                &s,
                "SELECT completed FROM batch_counts WHERE worker = 'w1/beside'"
            ),
            half as i64 - (middle + 1..=n).filter(|k| k % 1000 == 0).count() as i64
        );
        // The second connection lasts until the run's end.
        assert!(s.side.borrow().is_some());
        crate::store::Store::end_run(&*s);
        assert!(s.side.borrow().is_none());
    }

    /// The main part fails after the part beside committed (its claim row
    /// was taken back, as a takeover does it: its entities given rows of
    /// their own, the claim row deleted): the step fails as taken over;
    /// the later half stays written, with its claim row counted down and
    /// its counters, and is no longer in the step's input, so the step
    /// tried again writes the rest only. Nothing of the main part is
    /// written.
    #[test]
    fn a_main_part_that_fails_leaves_the_part_beside_written_and_out_of_the_step() {
        let Some(s) = store("a_main_part_that_fails_leaves_the_part_beside_written") else {
            return;
        };
        let per_row = WRITE_BESIDE_FROM as i64;
        let mut seq = 0;
        let claimed = claimed(&s, &mut seq, 2 * per_row, per_row);
        s.client()
            .batch_execute(&format!(
                "INSERT INTO batch_entities (batch, seq, entity_id, status, attempts)
                 SELECT batch, seq, entity_id, 'WAITING', 1 FROM batch_claimed
                 WHERE seq <= {per_row};
                 DELETE FROM batch_claims WHERE first_seq = 1"
            ))
            .unwrap();
        let mut input = StepInput {
            outcomes: claimed.iter().map(|c| done(c, 1, ok())).collect(),
            ..StepInput::default()
        };
        let e = s.step(test_run("b1"), &mut seq, &mut input).unwrap_err();
        assert!(matches!(e, StoreError::TakenOver { .. }), "{e}");
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM batch_entities WHERE status = 'WAITING'"
            ),
            per_row
        );
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM batch_entities WHERE status = 'COMPLETED'"
            ),
            per_row
        );
        assert_eq!(
            count(
                &s,
                "SELECT min(seq) FROM batch_entities WHERE status = 'COMPLETED'"
            ),
            per_row + 1
        );
        assert_eq!(count(&s, "SELECT count(*) FROM batch_claims"), 0);
        assert_eq!(
            count(&s, "SELECT sum(completed) FROM batch_counts"),
            per_row
        );
        let left: Vec<i64> = input.outcomes.iter().map(|o| o.seq).collect();
        assert_eq!(left, (1..=per_row).collect::<Vec<_>>());
    }

    /// The part beside fails (a row it copies is refused): nothing of the
    /// step is written, its outcomes are all back in its input, and the
    /// step tried again writes them all.
    #[test]
    fn a_part_beside_that_fails_writes_nothing_and_gives_its_outcomes_back() {
        let Some(s) = store("a_part_beside_that_fails_writes_nothing") else {
            return;
        };
        let n = 2 * WRITE_BESIDE_FROM as i64;
        let mut seq = 0;
        let claimed = claimed(&s, &mut seq, n, n);
        let before = s.counters("b1").unwrap();
        s.client()
            .batch_execute(&format!(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                     $$BEGIN RAISE EXCEPTION 'refused'; END$$;
                 CREATE TRIGGER refuse BEFORE INSERT ON batch_entities
                     FOR EACH ROW WHEN (NEW.seq = {n}) EXECUTE FUNCTION refuse()"
            ))
            .unwrap();
        let mut input = StepInput {
            outcomes: claimed.iter().map(|c| done(c, 1, ok())).collect(),
            ..StepInput::default()
        };
        let e = s.step(test_run("b1"), &mut seq, &mut input).unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        assert_eq!(count(&s, "SELECT count(*) FROM batch_entities"), 0);
        assert_eq!(count(&s, "SELECT sum(open) FROM batch_claims"), n);
        assert_eq!(s.counters("b1").unwrap(), before);
        assert_eq!(input.outcomes.len() as i64, n);
        s.client()
            .batch_execute("DROP TRIGGER refuse ON batch_entities")
            .unwrap();
        let r = s.step(test_run("b1"), &mut seq, &mut input).unwrap();
        assert_eq!((r.counters.completed, r.counters.in_process), (n, 0));
        assert_eq!(writers(&s).len(), 2);
    }
}
