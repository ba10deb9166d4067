//! The pacing of a run, pure maths: the running mean of an entity's time,
//! and from it how many entities to keep in flight, how many a worker
//! takes at once, how many a step claims and how many new ids it stores.

/// The pipeline holds about this much work per worker (by the running
/// mean of an entity's time), and never more entities than the store's
/// [`step_entities`](crate::store::Store::step_entities).
pub(super) const QUEUE_MS: f64 = 100.0;

/// A worker takes about this much work from the queue at once.
pub(super) const TAKE_MS: f64 = 2.0;

/// The running mean of an entity's time, in milliseconds, after `n` more
/// outcomes whose commands took `busy_s` seconds together: each outcome
/// weighs as much as half of what came before it (64 of them outweigh
/// everything before). No outcomes: no change.
pub(super) fn running_mean(avg_ms: f64, busy_s: f64, n: usize) -> f64 {
    if n == 0 {
        return avg_ms;
    }
    let mean = busy_s * 1000.0 / n as f64;
    let alpha = 1.0 - 0.5_f64.powi(n.min(64) as i32);
    (1.0 - alpha) * avg_ms + alpha * mean
}

/// How many entities to keep in flight (claimed: queued, running, or
/// finished and not yet written back): about [`QUEUE_MS`] of work per
/// worker, at least two per worker (one running, one next, so none idles
/// while a step commits), at most `max` (the store's
/// [`step_entities`](crate::store::Store::step_entities)). Fast commands
/// (echo) get long pipelines and few, large commits; slow ones (a 20 s
/// script) stay at two per worker, so a pause or a crash leaves little
/// claimed work.
pub(super) fn pipeline_depth(workers: usize, avg_entity_ms: f64, max: usize) -> usize {
    let per_worker = (QUEUE_MS / avg_entity_ms.max(0.000_1)).ceil();
    let per_worker = if per_worker.is_finite() {
        (per_worker as usize).max(2)
    } else {
        max
    };
    workers
        .saturating_mul(per_worker)
        .clamp(workers * 2, max.max(workers * 2))
}

/// How many entities a worker takes at once: about [`TAKE_MS`] of work,
/// at most `max` (as for [`pipeline_depth`]).
pub(super) fn take_size(avg_entity_ms: f64, max: usize) -> usize {
    let n = (TAKE_MS / avg_entity_ms.max(0.000_1)).ceil();
    if n.is_finite() {
        (n as usize).clamp(1, max)
    } else {
        max
    }
}

/// How many entities a step claims: what fills the pipeline back to
/// `depth` from the `kept` still in flight after the step, and a whole
/// CHUNK_SIZE (`chunk`) when it claims at all. None when the run may not
/// claim (paused, stopping, GENERATE_ENTITIES_FIRST while ids are read).
pub(super) fn claim_size(
    can_claim: bool,
    depth: usize,
    kept: usize,
    chunk: Option<usize>,
) -> usize {
    if !can_claim {
        return 0;
    }
    let room = depth.saturating_sub(kept);
    match chunk {
        Some(c) if room > 0 => c.max(room),
        _ => room,
    }
}

/// How many of the `ids` waiting in the hub a step stores: as many as it
/// claims at once beyond the stored WAITING entities it claims
/// (`claimable_waiting` of them may be claimed now), since an id stored
/// WAITING and claimed later costs its row a second write; all of them
/// when they press ([`super::decide::ids_press`], or nothing claims). At
/// most `max` (as for [`pipeline_depth`]: the rest wait for the next
/// step). And `ahead` more, stored for any node to claim
/// ([`chunks_ahead`]).
pub(super) fn ids_to_store(
    ids: usize,
    claim: usize,
    claimable_waiting: usize,
    press: bool,
    max: usize,
    ahead: usize,
) -> usize {
    let for_claims = claim - claimable_waiting.min(claim);
    let now = ids
        .min(max)
        .min(if press { usize::MAX } else { for_claims });
    ids.min(now + ahead)
}

/// Chunks of WAITING ids an asynchronous batch keeps stored ahead, for
/// its nodes to claim whole: two pipelines' worth, so that several nodes
/// that come to claim at once each find some.
pub(super) const CHUNKS_AHEAD: usize = 8;

/// The size of the chunks in which a run stores ids ahead
/// ([`crate::store::batches::StepInput::chunk`]): a quarter of a
/// pipeline's depth (a node claims chunks until its pipeline is full),
/// for an asynchronous batch whose nodes claim side by side (`shared`, a
/// store that keeps chunks) and whose entities are fast (a depth of at
/// least `fast`: a WAITING row per id would cost more than its entity);
/// 0 (no chunks) otherwise, or when the step may not claim.
pub(super) fn chunk_size(shared: bool, can_claim: bool, depth: usize, fast: usize) -> usize {
    if shared && can_claim && depth >= fast {
        depth.div_ceil(4)
    } else {
        0
    }
}

/// How many ids a step stores ahead in chunks of `chunk`: what brings
/// the batch's `waiting` entities up to [`CHUNKS_AHEAD`] chunks, so that
/// a node that comes to claim finds one whole.
pub(super) fn chunks_ahead(chunk: usize, waiting: i64) -> usize {
    let waiting = usize::try_from(waiting).unwrap_or(0);
    (CHUNKS_AHEAD * chunk).saturating_sub(waiting)
}

/// How many entities go back from the queue when BATCH_EDIT lowers the
/// workers: those beyond the new `depth` among the `kept` in flight (what
/// the remaining workers cannot start soon), out of the `queued` ones.
pub(super) fn surplus(kept: usize, depth: usize, queued: usize) -> usize {
    kept.saturating_sub(depth).min(queued)
}

#[cfg(test)]
mod tests {
    use super::super::assert_table;
    use super::*;
    use crate::store::STEP_ENTITIES as MAX;

    #[test]
    fn the_pipeline_holds_about_a_tenth_of_a_second_of_work_per_worker() {
        // (workers, mean entity ms) -> entities in flight
        let table: &[(usize, f64, usize)] = &[
            // A 20 s script: two per worker, however slow.
            (2, 20_000.0, 4),
            (8, 20_000.0, 16),
            // 10 ms: 10 per worker.
            (2, 10.0, 20),
            // 1 ms: 100 per worker.
            (4, 1.0, 400),
            // echo, a few microseconds: capped.
            (2, 0.002, MAX),
            // A mean of zero, or not a number, is the cap too.
            (2, 0.0, MAX),
            (2, f64::NAN, MAX),
            // More workers than the cap allows: two each still.
            (10_000, 0.001, 20_000),
        ];
        for &(workers, ms, want) in table {
            assert_eq!(
                pipeline_depth(workers, ms, MAX),
                want,
                "{workers} workers, {ms} ms"
            );
        }
    }

    #[test]
    fn a_store_with_larger_steps_keeps_more_of_a_fast_batch_in_flight() {
        // (workers, mean entity ms) -> entities in flight, at 4 * MAX
        let table = [
            // Fast entities fill the larger cap ...
            ((2, 0.002), 4 * MAX),
            ((2, 0.0), 4 * MAX),
            // ... slower ones keep their tenth of a second of work.
            ((2, 10.0), 20),
            ((8, 20_000.0), 16),
        ];
        assert_table(&table, |(workers, ms)| pipeline_depth(workers, ms, 4 * MAX));
        // A worker's take: the mean's floor (0.1 µs) gives 20,000, under
        // the larger cap where it was over the smaller one.
        assert_eq!(take_size(0.0, MAX), MAX);
        assert_eq!(take_size(0.0, 4 * MAX), 20_000);
        assert_eq!(
            ids_to_store(8 * MAX, 8 * MAX, 0, false, 4 * MAX, 0),
            4 * MAX
        );
    }

    #[test]
    fn a_worker_takes_about_two_milliseconds_of_work_at_once() {
        let table: &[(f64, usize)] = &[
            (1000.0, 1),
            (2.0, 1),
            (0.5, 4),
            (0.001, 2000),
            (0.0, MAX),
            (f64::INFINITY, 1),
        ];
        for &(ms, want) in table {
            assert_eq!(take_size(ms, MAX), want, "{ms} ms");
        }
    }

    #[test]
    fn the_mean_entity_time_follows_the_outcomes_quickly() {
        // (mean before, seconds busy, outcomes) -> mean after, in ms
        let table: &[(f64, f64, usize, f64)] = &[
            // No outcomes: no change.
            (1000.0, 0.0, 0, 1000.0),
            // One outcome weighs half.
            (1000.0, 0.010, 1, 505.0),
            // Two: three quarters.
            (1000.0, 0.020, 2, 257.5),
            // 64 or more: the old mean is forgotten (to within 2^-64).
            (1000.0, 0.064, 64, 1.0),
            (1000.0, 0.200, 100, 2.0),
        ];
        for &(before, busy, n, want) in table {
            let got = running_mean(before, busy, n);
            assert!(
                (got - want).abs() < 1e-9,
                "{before} ms, {busy} s, {n}: {got}"
            );
        }
    }

    #[test]
    fn a_step_claims_what_fills_the_pipeline() {
        // (may claim, depth, kept in flight, CHUNK_SIZE) -> claim
        let table = [
            // Paused, stopping, or ids first: claim 0, whatever the room.
            ((false, 100, 0, None), 0),
            ((false, 100, 0, Some(500)), 0),
            // Room for the rest of the depth.
            ((true, 100, 0, None), 100),
            ((true, 100, 40, None), 60),
            // A full pipeline claims nothing, even with a CHUNK_SIZE.
            ((true, 100, 100, Some(500)), 0),
            ((true, 100, 150, None), 0),
            // A CHUNK_SIZE is claimed whole, or the room if larger.
            ((true, 100, 90, Some(500)), 500),
            ((true, 100, 0, Some(10)), 100),
        ];
        assert_table(&table, |(can_claim, depth, kept, chunk)| {
            claim_size(can_claim, depth, kept, chunk)
        });
    }

    #[test]
    fn new_ids_are_stored_as_they_can_be_claimed_unless_they_press() {
        const MANY: usize = 100_000;
        // (ids in the hub, claim, stored WAITING claimable now, press, ahead) -> ids stored
        let table = [
            // As many as the claim takes: the rest wait in the hub.
            ((1000, 100, 0, false, 0), 100),
            ((50, 100, 0, false, 0), 50),
            // Stored WAITING entities are claimed first.
            ((1000, 100, 30, false, 0), 70),
            ((1000, 100, 500, false, 0), 0),
            // Nothing claimed: nothing stored, unless they press.
            ((1000, 0, 0, false, 0), 0),
            ((1000, 0, 0, true, 0), 1000),
            ((1000, 100, 500, true, 0), 1000),
            // Never more than a step's worth ...
            ((MANY, MANY, 0, false, 0), MAX),
            ((MANY, 0, 0, true, 0), MAX),
            // ... and what is stored ahead, of those in the hub.
            ((MANY, MANY, 0, false, 500), MAX + 500),
            ((1000, 100, 0, false, 300), 400),
            ((1000, 100, 500, false, 300), 300),
            ((350, 100, 0, false, 300), 350),
        ];
        assert_table(&table, |(ids, claim, waiting, press, ahead)| {
            ids_to_store(ids, claim, waiting, press, MAX, ahead)
        });
    }

    #[test]
    fn fast_asynchronous_batches_store_chunks_ahead_for_every_node() {
        // (shared, may claim, depth, fast) -> chunk
        let table = [
            ((true, true, 16_384, 4096), 4096),
            ((true, true, 4096, 4096), 1024),
            ((true, true, 4097, 4096), 1025),
            // Slow entities: WAITING rows, as before.
            ((true, true, 4095, 4096), 0),
            // A synchronous batch, or a store without chunks.
            ((false, true, 16_384, 4096), 0),
            // Paused, stopping, ids first.
            ((true, false, 16_384, 4096), 0),
        ];
        assert_table(&table, |(shared, can_claim, depth, fast)| {
            chunk_size(shared, can_claim, depth, fast)
        });
        // (chunk, waiting) -> stored ahead
        let table = [
            ((1000, 0), CHUNKS_AHEAD * 1000),
            ((1000, 1500), CHUNKS_AHEAD * 1000 - 1500),
            ((1000, 9000), 0),
            ((0, 0), 0),
            // A count gone below zero for a moment stores no more than none.
            ((1000, -7), CHUNKS_AHEAD * 1000),
        ];
        assert_table(&table, |(chunk, waiting)| chunks_ahead(chunk, waiting));
    }

    #[test]
    fn fewer_workers_give_back_what_they_cannot_start_soon() {
        // (kept in flight, new depth, queued) -> released
        let table = [
            ((100, 40, 80), 60),
            // Only queued entities go back (running ones finish).
            ((100, 40, 10), 10),
            ((30, 40, 30), 0),
        ];
        assert_table(&table, |(kept, depth, queued)| surplus(kept, depth, queued));
    }
}
