//! The writer's decisions, pure: whether it may claim, when a step is
//! worth its cost, how long to sleep until one is, what a request from
//! another process does, and whether the run ends. They take plain values
//! (counts, ages, flags), so their tests are tables; the writer
//! ([`super::writer`]) gathers the values and acts on the answers.

use super::Stop;
use super::hub::ID_BUFFER;
use crate::batch::{BatchStatus, Counters, Request};
use std::time::Duration;

/// Outcomes wait at most this long for their commit.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// ... or until this many are there.
pub(super) const FLUSH_AT: usize = 1000;
/// How often an otherwise idle loop writes anyway: its heartbeat, and the
/// moment it reads requests from other processes (pause, cancel, edit),
/// which must take effect within a second.
pub(super) const CONTROL_POLL: Duration = Duration::from_millis(500);
/// The longest the writer sleeps without looking at Ctrl-C.
pub(super) const MAX_WAIT: Duration = Duration::from_millis(100);
/// While nothing claims (GENERATE_ENTITIES_FIRST, paused), this many ids
/// in the hub make a step worth it (else they wait up to [`FLUSH_EVERY`]).
pub(super) const IDS_BATCH: usize = 4096;
/// Otherwise ids wait in the hub until they can be claimed as they are
/// stored, or at most this long, or until half of [`ID_BUFFER`] is full.
/// (So a batch of slow commands stores its ids, and shows its total, within
/// about a second of reading them.)
pub(super) const IDS_HOLD: Duration = Duration::from_secs(1);

/// The same for an asynchronous batch, which other nodes may help with:
/// they can claim the ids only once they are stored.
pub(super) const SHARED_IDS_HOLD: Duration = Duration::from_millis(10);

/// How long ids may wait in the hub to be claimed as they are stored:
/// [`IDS_HOLD`]; but the ids of an asynchronous batch (`shared`: other
/// nodes may process it) whose entities are slow (`seen`: outcomes have
/// come, and the `depth` their own mean time gives is under
/// [`IDS_BATCH`]) are stored for the other nodes after
/// [`SHARED_IDS_HOLD`]: this node would not claim them soon. Fast
/// entities keep the long hold: this node claims their ids as fast as
/// they come, and storing them WAITING first would write each row twice
/// (and, once some are, the claims take those first while the ids read
/// since age in the hub until they too are stored WAITING: every row
/// written twice). Before any outcome, the pace is unknown: the long hold
/// too. The depth is not the run's (whose running mean starts from a slow
/// guess, and would take `echo` for slow until tens of outcomes came).
pub(super) fn id_hold(shared: bool, seen: bool, depth: usize) -> Duration {
    if shared && seen && depth < IDS_BATCH {
        SHARED_IDS_HOLD
    } else {
        IDS_HOLD
    }
}

/// How often a node looks at the store when it knows of nothing to claim
/// but other nodes are at work: a helper while another node stores ids,
/// an owner while other nodes run the last entities.
pub(super) const HELPER_LOOK: Duration = Duration::from_millis(50);

/// Whether a turn may claim entities: not once the run stops, nor while
/// it is paused, nor with GENERATE_ENTITIES_FIRST while ids are still read
/// (every id is stored before any entity runs).
pub(super) fn may_claim(
    stopping: bool,
    paused: bool,
    generate_first: bool,
    ids_open: bool,
) -> bool {
    !(stopping || paused || (generate_first && ids_open))
}

/// What the writer sees while it waits for a step: its own state and the
/// hub's, as plain values.
#[derive(Clone, Debug, Default)]
pub(super) struct Signs {
    /// This turn may claim entities: the run is not stopping nor paused,
    /// nor storing every id first (GENERATE_ENTITIES_FIRST).
    pub(super) can_claim: bool,
    /// Entities to keep in flight ([`super::pacing::pipeline_depth`]).
    pub(super) depth: usize,
    /// The mean entity time is known, not the first guess.
    pub(super) known: bool,
    /// How long ids may wait in the hub to be claimed as they are stored
    /// ([`IDS_HOLD`], or [`SHARED_IDS_HOLD`] for an asynchronous batch).
    pub(super) hold: Duration,
    /// Entities claimed and not written back.
    pub(super) in_flight: usize,
    /// Of them, those taken back, to be released.
    pub(super) release: usize,
    /// Stored WAITING entities: in how long they may be claimed (zero: now).
    pub(super) claim_in: Option<Duration>,
    /// Outcomes in the hub, and the age of the oldest.
    pub(super) outcomes: usize,
    pub(super) outcomes_age: Option<Duration>,
    /// Failures among them that count for MAX_FAILURES.
    pub(super) failed_pending: usize,
    /// Ids in the hub, and the age of the oldest.
    pub(super) ids: usize,
    pub(super) ids_age: Option<Duration>,
    /// The run still takes ids from the source ...
    pub(super) ids_open: bool,
    /// ... which has ended (or failed).
    pub(super) feed_over: bool,
    /// Time since the last step.
    pub(super) since_write: Duration,
    /// The run stops (a cancel, a failure, a signal).
    pub(super) stopping: bool,
    /// Claimed entities in the hub's queue, not started.
    pub(super) queued: usize,
    /// Ctrl-C or a stop signal came, and the run does not stop for it yet.
    pub(super) stop_asked: bool,
}

impl Signs {
    /// Stored WAITING entities may be claimed now.
    /// How long ids wait in the hub: to be claimed as they are stored
    /// when the run may claim, else only to be written together.
    fn id_hold(&self) -> Duration {
        if self.can_claim {
            self.hold
        } else {
            FLUSH_EVERY
        }
    }

    fn claimable(&self) -> bool {
        self.claim_in == Some(Duration::ZERO)
    }

    /// Entities queued or running (the rest of those in flight have their
    /// outcome in the hub, or are to be released).
    fn active(&self) -> usize {
        self.in_flight.saturating_sub(self.outcomes + self.release)
    }
}

/// Whether a step is worth its cost now: the pipeline wants refilling, or
/// outcomes, ids, releases or the end of the source are to be written, or
/// the run stops, or nothing was written for [`CONTROL_POLL`].
pub(super) fn worth_a_step(s: &Signs) -> bool {
    let aged = |age: Option<Duration>| age.is_some_and(|a| a >= FLUSH_EVERY);
    let refill = s.can_claim && s.active() <= s.depth / 2 && (s.claimable() || s.ids > 0);
    refill
        || s.outcomes >= FLUSH_AT
        || (s.in_flight > 0 && s.outcomes + s.release >= s.in_flight)
        || aged(s.outcomes_age)
        || (!s.can_claim && (s.ids >= IDS_BATCH || aged(s.ids_age)))
        || ids_press(s.ids, s.ids_age, s.id_hold(), s.depth, s.known)
        || (s.ids_open && s.feed_over && s.ids == 0)
        || s.release > 0
        // The last step of a run that stops.
        || (s.stopping && s.in_flight == 0)
        || s.since_write >= CONTROL_POLL
        || s.failed_pending > 0
        // Entities a halted worker gave back, to be released.
        || (s.stopping && s.queued > 0)
        || s.stop_asked
}

/// How the writer sleeps when no step is worth it yet.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Nap {
    /// Until the next deadline at most (never zero).
    pub(super) at_most: Duration,
    /// Outcomes, and ids, that make a step worth it before the deadline:
    /// workers and the producer wake the writer only then.
    pub(super) wake_outcomes: usize,
    pub(super) wake_ids: usize,
}

/// How long the writer sleeps, and what wakes it early: enough outcomes to
/// refill (or every entity in flight done), or ids to store.
pub(super) fn nap(s: &Signs) -> Nap {
    let hold = s.id_hold();
    let mut at_most = MAX_WAIT.min(CONTROL_POLL.saturating_sub(s.since_write));
    if let Some(age) = s.outcomes_age {
        at_most = at_most.min(FLUSH_EVERY.saturating_sub(age));
    }
    if let Some(age) = s.ids_age {
        at_most = at_most.min(hold.saturating_sub(age));
    }
    if let Some(claim_in) = s.claim_in
        && s.can_claim
    {
        at_most = at_most.min(claim_in);
    }
    let refill_possible = s.can_claim && (s.claimable() || s.ids_open);
    let done_needed = (s.in_flight - s.release.min(s.in_flight))
        .saturating_sub(if refill_possible { s.depth / 2 } else { 0 });
    let wake_ids = if !s.can_claim {
        IDS_BATCH
    } else if s.active() <= s.depth / 2 {
        1
    } else if s.known && s.depth < IDS_BATCH {
        ID_BUFFER / 2
    } else {
        usize::MAX
    };
    Nap {
        at_most: at_most.max(Duration::from_millis(1)),
        wake_outcomes: done_needed.clamp(1, FLUSH_AT),
        wake_ids,
    }
}

/// Whether the `ids` waiting in the hub (the oldest for `age`) are to be
/// stored even if not all can be claimed at once (the rest stored
/// WAITING): they have waited long, or the producer is about to wait while
/// the queue is short (slow commands: store the ids, the total shows). Not
/// while the mean entity time is a first guess, nor for fast commands,
/// whose queue takes the ids as fast as they are stored: a row stored
/// WAITING costs a second write.
pub(super) fn ids_press(
    ids: usize,
    age: Option<Duration>,
    hold: Duration,
    depth: usize,
    known: bool,
) -> bool {
    age.is_some_and(|a| a >= hold) || (known && ids >= ID_BUFFER / 2 && depth < IDS_BATCH)
}

/// What a request from another process (the batch's `requested` column,
/// read at each step) does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Heed {
    Nothing,
    Cancel,
    Pause,
    /// The pause was lifted (BATCH_RESUME cleared the request).
    Resume,
}

/// What `requested` does to a run that is `paused` or `stopping`: a cancel
/// always stops it; a pause holds a run that goes on; no request any more
/// resumes a paused one.
pub(super) fn heed(requested: Option<Request>, paused: bool, stopping: bool) -> Heed {
    match requested {
        Some(Request::Cancel) => Heed::Cancel,
        Some(Request::Pause) if !paused && !stopping => Heed::Pause,
        None if paused => Heed::Resume,
        _ => Heed::Nothing,
    }
}

/// The total that MAX_FAILURES counts against: while ids are still read,
/// what is known of it (the ids read, stored or not yet, or
/// ESTIMATED_ENTITIES_COUNT if larger); then the stored total.
pub(super) fn failures_total(
    stored: i64,
    unstored: i64,
    ids_open: bool,
    estimated: Option<i64>,
) -> i64 {
    if ids_open {
        (stored + unstored).max(estimated.unwrap_or(0))
    } else {
        stored
    }
}

/// What the run does once a step's claims are handed out.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Verdict {
    /// Entities are in flight, wait, or may still come: another turn.
    GoOn,
    /// Nothing is in flight here, yet entities are IN_PROCESS: claims that
    /// no live run holds. A batch never ends with entities that never ran:
    /// they wait again, and this run takes them.
    RequeueOrphans,
    /// The run ends so, once the entities left are dealt with.
    End(Stop, Leftovers),
    /// A node that does not coordinate the batch leaves it: it stops, or
    /// nothing is left for it to claim. Its coordinator ends the batch.
    Leave,
}

/// What becomes of the entities a run leaves as it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Leftovers {
    Nothing,
    /// CANCELLED: the WAITING entities are cancelled, and the IN_PROCESS
    /// ones too when there are any (claims no live run holds).
    Cancel {
        orphans: bool,
    },
    /// FAILED or interrupted: IN_PROCESS claims nobody holds wait again.
    Requeue,
}

/// Whether the run ends, from the entities it has in flight (claimed, or
/// taken back to be released), why it stops if it does, whether the
/// source is still read (an open batch's source is, until `BATCH_WAITOFF`
/// closes it and its appends are read: it stays IN_PROGRESS with every
/// entity done), and the batch's counters after the last step.
/// Nothing in flight, no stop, the source read and nothing WAITING: DONE.
/// Entities IN_PROCESS while nothing is in flight here nor WAITING are
/// claims of other nodes, which may have died: they are looked at
/// (requeued if so) even while ids may still come, since an open batch
/// may wait for appends for hours.
/// A node that does not `coordinate` decides no end of the batch: it
/// leaves when it stops or when it is drained so.
pub(super) fn verdict(
    coordinate: bool,
    in_flight: usize,
    release: usize,
    stop: Option<&Stop>,
    ids_open: bool,
    c: &Counters,
) -> Verdict {
    if in_flight > 0 || release > 0 {
        return Verdict::GoOn;
    }
    let drained = !ids_open && c.waiting == 0;
    if !coordinate {
        return if stop.is_some() || drained {
            Verdict::Leave
        } else {
            Verdict::GoOn
        };
    }
    let how = match stop {
        Some(how) => how.clone(),
        None if c.waiting == 0 && c.in_process > 0 => return Verdict::RequeueOrphans,
        None if drained => Stop::End(BatchStatus::Done, None),
        None => return Verdict::GoOn,
    };
    let leftovers = match how {
        Stop::End(BatchStatus::Cancelled, _) => Leftovers::Cancel {
            orphans: c.in_process > 0,
        },
        _ if c.in_process > 0 => Leftovers::Requeue,
        _ => Leftovers::Nothing,
    };
    Verdict::End(how, leftovers)
}

#[cfg(test)]
mod tests;
