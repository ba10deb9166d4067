//! Where the producer, the workers and the writer of a run meet: one
//! mutex over the ids read and not stored, the claimed entities not started,
//! and the outcomes not written, with a condition variable for each party.

use super::*;

/// Ids read ahead of the store; the producer waits beyond this (or
/// beyond [`id_room`], where the store takes larger steps).
pub(super) const ID_BUFFER: usize = 32 * 1024;

/// How many ids the hub holds read ahead, on a store whose steps take at
/// most `step_entities` ([`crate::store::Store::step_entities`]):
/// [`ID_BUFFER`], or half a step's most where that is more, since a step
/// stores only ids that are in the hub (steps of PostgreSQL's size gained
/// nothing with the smaller room). A run that stores chunks ahead for
/// other nodes (`shares`) holds two steps' most: its own refill and the
/// chunks, so that the owner's own claims do not take all it stores.
pub(super) fn id_room(step_entities: usize, shares: bool) -> usize {
    if shares {
        ID_BUFFER.max(step_entities * 2)
    } else {
        ID_BUFFER.max(step_entities / 2)
    }
}

/// The hub notes the arrival time of every this many ids (and of the first
/// one after it was empty): the age of its oldest id, to within a group.
pub(super) const ARRIVAL_GROUP: u64 = 1024;

/// Where the producer, the workers and the writer meet.
pub(super) struct Hub {
    pub(super) state: Mutex<HubState>,
    /// The writer waits here for ids and outcomes.
    pub(super) writer: Condvar,
    /// Workers wait here for entities.
    pub(super) workers: Condvar,
    /// The producer waits here for room.
    pub(super) producer: Condvar,
}

/// How the source of a run's ids stands: read, read to its end, or failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Feed {
    /// More ids may come.
    #[default]
    Open,
    /// The source was read to its end, and the batch is open (`OPEN=true`):
    /// ids appended to it may come until it is closed.
    Appending,
    /// Every id was handed over (or the source was read by an earlier run).
    Ended,
    /// The source failed, and why: the batch cannot go on.
    Failed(String),
}

#[derive(Default)]
pub(super) struct HubState {
    /// producer -> writer
    pub(super) ids: Vec<NewId>,
    /// When the ids in `ids` arrived, by groups: (arrival of the group's
    /// first id, its number counted from the run's first id). The front
    /// group holds the oldest id still here.
    pub(super) arrivals: VecDeque<(Instant, u64)>,
    /// Ids pushed into `ids`, and taken out of it, since the run began.
    pub(super) pushed: u64,
    pub(super) taken: u64,
    /// How the source stands, as the producer last said.
    pub(super) feed: Feed,
    /// writer -> workers: claimed (committed IN_PROCESS), not started.
    pub(super) queue: VecDeque<Claimed>,
    /// Most entities a worker takes at once.
    pub(super) take: usize,
    /// Most ids read ahead ([`id_room`]).
    pub(super) id_room: usize,
    /// Workers 0..allowed may take entities (MAX_WORKERS_PER_NODE edits).
    pub(super) allowed: usize,
    /// workers -> writer
    pub(super) outcomes: Vec<Outcome>,
    pub(super) outcomes_since: Option<Instant>,
    /// Failed outcomes among them, counted when MAX_FAILURES is set: each
    /// calls for a step at once, so the limit stops the batch in time.
    pub(super) failed_pending: usize,
    /// Time the outcomes' commands took, in seconds, for the running mean.
    pub(super) busy: f64,
    /// Waiting, so a notify is due (notifying nobody still costs a
    /// system call; these flags save most of them).
    pub(super) writer_waits: bool,
    /// While the writer waits: the number of outcomes, and of ids, that
    /// make a step worth it (so workers and producer wake it only then).
    pub(super) wake_outcomes: usize,
    pub(super) wake_ids: usize,
    pub(super) producer_waits: bool,
    pub(super) idle_workers: usize,
    /// The run is over: everybody leaves.
    pub(super) closed: bool,
}

impl HubState {
    /// When the oldest id waiting here arrived (within a group of
    /// [`ARRIVAL_GROUP`] ids: no later than it did).
    pub(super) fn ids_since(&self) -> Option<Instant> {
        if self.ids.is_empty() {
            None
        } else {
            self.arrivals.front().map(|&(t, _)| t)
        }
    }

    pub(super) fn push_id(&mut self, id: NewId) {
        if self.ids.is_empty() || self.pushed.is_multiple_of(ARRIVAL_GROUP) {
            self.arrivals.push_back((Instant::now(), self.pushed));
        }
        self.ids.push(id);
        self.pushed += 1;
    }

    /// The first `n` ids, for a step to store.
    pub(super) fn take_ids(&mut self, n: usize) -> Vec<NewId> {
        let ids = if n == self.ids.len() {
            std::mem::take(&mut self.ids)
        } else {
            self.ids.drain(..n).collect()
        };
        self.taken += n as u64;
        if self.ids.is_empty() {
            self.arrivals.clear();
        }
        while self
            .arrivals
            .get(1)
            .is_some_and(|&(_, first)| first <= self.taken)
        {
            self.arrivals.pop_front();
        }
        ids
    }
}

impl Hub {
    /// A hub for `allowed` workers, with the source as `feed` says.
    pub(super) fn new(allowed: usize, feed: Feed, id_room: usize) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                take: 1,
                id_room,
                allowed,
                feed,
                ..HubState::default()
            }),
            writer: Condvar::new(),
            workers: Condvar::new(),
            producer: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HubState> {
        // A poisoned lock means a worker panicked; the data is still sound
        // (every change is one push or drain).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn wake_writer(&self, st: &mut HubState) {
        if st.writer_waits {
            st.writer_waits = false;
            self.writer.notify_one();
        }
    }

    pub(super) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.queue.clear();
        drop(st);
        self.workers.notify_all();
        self.producer.notify_all();
        self.writer.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_reads_ahead_half_a_step_or_two_steps_where_it_shares() {
        // (the store's most per step, shares chunks) -> ids read ahead
        let table = [
            ((16 * 1024, false), ID_BUFFER),
            ((128 * 1024, false), 64 * 1024),
            ((128 * 1024, true), 256 * 1024),
            ((1024, true), ID_BUFFER),
        ];
        crate::exec::run::assert_table(&table, |(step, shares)| id_room(step, shares));
    }
}
