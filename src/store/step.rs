//! What a step ([`super::BatchStore::step`]) decides the same way on every
//! store: which new ids are claimed as they arrive and which are stored,
//! what an outcome writes and counts, and what the step gives back. The
//! statements that write it are each store's own.

use super::batches::{Claimed, NewId, OutcomeState, StepInput, StepResult};
use crate::batch::{Counters, EntityStatus};

/// What a step has changed so far, as its writes count it.
#[derive(Default)]
pub struct Tally {
    /// The step's changes to the batch's counters.
    pub d: Counters,
    /// Entities of each claim row (by its first sequence number) that get
    /// their own row in this step.
    pub claims_done: Vec<(i64, i64)>,
    /// New ids that failed as they arrived ([`NewId::Bad`]).
    pub bad_ids: i64,
}

impl Tally {
    /// One more entity of the claim row `first` got its own row.
    pub fn claim_done(&mut self, first: i64) {
        count_per_claim(&mut self.claims_done, first);
    }

    /// An outcome was written over its IN_PROCESS entity.
    pub fn outcome(&mut self, state: &OutcomeState) {
        let d = &mut self.d;
        d.in_process -= 1;
        match state {
            OutcomeState::Completed {
                added,
                updated,
                unchanged,
            } => {
                d.completed += 1;
                d.added += i64::from(*added);
                d.updated += i64::from(*updated);
                d.unchanged += i64::from(*unchanged);
            }
            OutcomeState::Failed { .. } => d.failed += 1,
            OutcomeState::Retry { .. } => d.waiting += 1,
        }
    }

    /// `n` IN_PROCESS entities were released: they wait again.
    pub fn released(&mut self, n: i64) {
        self.d.in_process -= n;
        self.d.waiting += n;
    }

    /// `n` WAITING entities were claimed.
    pub fn claimed(&mut self, n: i64) {
        self.d.waiting -= n;
        self.d.in_process += n;
    }

    /// Numbers the new ids of `input` from after `next_seq` on and sorts
    /// them: as many good ones as `input.claim` leaves room for after the
    /// entities in `claimed` are claimed as they arrive (added to
    /// `claimed`, their text empty); where `chunks` is set (the store keeps
    /// them), the good ones after those go in chunks of `input.chunk`;
    /// every other one is given to `store`, in order. Counts them all;
    /// `now_ms` ends the bad ones.
    pub fn place_new_ids<'a, E>(
        &mut self,
        input: &'a StepInput,
        next_seq: &mut i64,
        now_ms: i64,
        claimed: &mut Vec<Claimed>,
        chunks: bool,
        mut store: impl FnMut(NewRow<'a>) -> Result<(), E>,
    ) -> Result<Arrivals, E> {
        let d = &mut self.d;
        let mut arrived = IdsJson::default();
        let mut chunked: Vec<IdsJson> = Vec::new();
        let chunk = if chunks { input.chunk } else { 0 };
        let mut moved = Vec::new();
        for (index, id) in input.new_ids.iter().enumerate() {
            *next_seq += 1;
            let seq = *next_seq;
            match id {
                NewId::Ok(text) if claimed.len() < input.claim => {
                    let first = arrived.push(seq, text);
                    d.total += 1;
                    d.in_process += 1;
                    moved.push((claimed.len(), index));
                    claimed.push(Claimed {
                        seq,
                        entity_id: String::new(),
                        attempts: 1,
                        claim: Some(first),
                    });
                }
                NewId::Ok(text) if chunk > 0 => {
                    if chunked.last().is_none_or(|c| c.open >= chunk as i64) {
                        chunked.push(IdsJson::default());
                    }
                    if let Some(c) = chunked.last_mut() {
                        c.push(seq, text);
                    }
                    d.total += 1;
                    d.waiting += 1;
                }
                NewId::Ok(text) => {
                    store(NewRow {
                        seq,
                        entity_id: text,
                        status: EntityStatus::Waiting,
                        error: None,
                        end_ms: None,
                    })?;
                    d.total += 1;
                    d.waiting += 1;
                }
                NewId::Bad(text, error) => {
                    store(NewRow {
                        seq,
                        entity_id: text,
                        status: EntityStatus::Failed,
                        error: Some(error),
                        end_ms: Some(now_ms),
                    })?;
                    d.total += 1;
                    d.failed += 1;
                    self.bad_ids += 1;
                }
            }
        }
        Ok(Arrivals {
            claim: arrived.done(),
            chunks: chunked.into_iter().filter_map(IdsJson::done).collect(),
            moved,
        })
    }

    /// Whether the step changes its node's row of per-node counters: it
    /// wrote outcomes, or entities reached one.
    pub fn touches_node(&self, input: &StepInput) -> bool {
        self.d.completed + self.d.failed != 0 || !input.outcomes.is_empty()
    }

    /// The entities that failed at the node in this step: bad ids are
    /// counted on the batch, not on a node, as no node processed them.
    pub fn node_failed(&self) -> i64 {
        (self.d.failed - self.bad_ids).max(0)
    }
}

/// One more entity of the claim row `first` in `per_claim` ((first
/// sequence number, entities) of each claim row): looked for from the
/// last, as entities in order come claim row after claim row.
pub fn count_per_claim(per_claim: &mut Vec<(i64, i64)>, first: i64) {
    match per_claim.iter_mut().rev().find(|(f, _)| *f == first) {
        Some((_, n)) => *n += 1,
        None => per_claim.push((first, 1)),
    }
}

/// What an entity's row holds after its outcome: its status, its error,
/// and when it is to be tried again.
pub fn outcome_fields(state: &OutcomeState) -> (EntityStatus, Option<&str>, Option<i64>) {
    match state {
        OutcomeState::Completed { .. } => (EntityStatus::Completed, None, None),
        OutcomeState::Failed { error } => (EntityStatus::Failed, Some(error.as_str()), None),
        OutcomeState::Retry { error, retry_at_ms } => (
            EntityStatus::Waiting,
            Some(error.as_str()),
            Some(*retry_at_ms),
        ),
    }
}

/// A new id that gets a row of its own as it is stored: a good one not
/// claimed as it arrived (WAITING), or a bad one (FAILED, ended at once).
pub struct NewRow<'a> {
    pub seq: i64,
    pub entity_id: &'a str,
    pub status: EntityStatus,
    pub error: Option<&'a str>,
    pub end_ms: Option<i64>,
}

/// Ids of consecutive sequence numbers as one row: a claim row of ids
/// claimed as they arrived, or a chunk of WAITING ones.
pub struct IdsRow {
    /// The sequence number of the first of them.
    pub first: i64,
    /// How many of them it holds.
    pub open: i64,
    /// Their ids, a JSON array from the first of them on: the id at index
    /// `i` has the number `first + i`; null where that number is another
    /// row's (a bad id's, or, after it, one claimed otherwise).
    pub ids_json: String,
}

/// An [`IdsRow`] as its ids are added, in order.
#[derive(Default)]
struct IdsJson {
    first: Option<i64>,
    next: i64,
    open: i64,
    json: String,
}

impl IdsJson {
    /// Adds `id`, numbered `seq` (above the last one's); gives the first
    /// number.
    fn push(&mut self, seq: i64, id: &str) -> i64 {
        let first = match self.first {
            None => {
                self.json.push('[');
                *self.first.insert(seq)
            }
            Some(first) => {
                for _ in self.next..seq {
                    self.json.push_str(",null");
                }
                self.json.push(',');
                first
            }
        };
        self.json
            .push_str(&serde_json::to_string(id).unwrap_or_default());
        self.next = seq + 1;
        self.open += 1;
        first
    }

    fn done(mut self) -> Option<IdsRow> {
        let first = self.first?;
        self.json.push(']');
        Some(IdsRow {
            first,
            open: self.open,
            ids_json: self.json,
        })
    }
}

/// The new ids of a step that go in rows of many ids: those claimed as
/// they arrived, and where their text goes once the step is committed;
/// the chunks of WAITING ones.
pub struct Arrivals {
    /// The claim row of those claimed as they arrived, if any was.
    pub claim: Option<IdsRow>,
    /// The chunks of WAITING ids ([`StepInput::chunk`]).
    pub chunks: Vec<IdsRow>,
    /// (index in the step's claimed entities, index in `new_ids`) of each
    /// id claimed as it arrived.
    pub moved: Vec<(usize, usize)>,
}

/// Whether fewer entities than asked for were claimed while some wait:
/// those wait for a retry time (or, where nodes claim side by side,
/// another node is claiming them). Derived, not queried: an EXISTS over
/// the waiting rows would cost every step the size of the batch.
pub fn retry_pending(claimed: &[Claimed], input: &StepInput, counters: &Counters) -> bool {
    claimed.len() < input.claim && counters.waiting > 0
}

/// Once the step is committed, the ids claimed as they arrived move out
/// of `input.new_ids` into the result (`moved` as [`Arrivals`] notes
/// it): no copy.
pub fn move_claimed_ids(r: &mut StepResult, moved: Vec<(usize, usize)>, input: &mut StepInput) {
    for (claimed, new) in moved {
        if let NewId::Ok(text) = &mut input.new_ids[new] {
            r.claimed[claimed].entity_id = std::mem::take(text);
        }
    }
}
