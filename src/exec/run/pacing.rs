//! The pacing of a run, pure maths: how many entities to keep in flight
//! and how many a worker takes at once, from the running mean of an
//! entity's time.

/// The pipeline holds about this much work per worker (by the running
/// mean of an entity's time) ...
pub(super) const QUEUE_MS: f64 = 100.0;

/// ... and never more than this many entities.
pub(super) const QUEUE_MAX: usize = 16 * 1024;

/// A worker takes about this much work from the queue at once.
pub(super) const TAKE_MS: f64 = 2.0;

/// How many entities to keep in flight (claimed: queued, running, or
/// finished and not yet written back): about [`QUEUE_MS`] of work per
/// worker, at least two per worker (one running, one next, so none idles
/// while a step commits), at most [`QUEUE_MAX`]. Fast commands (echo) get
/// long pipelines and few, large commits; slow ones (a 20 s script) stay
/// at two per worker, so a pause or a crash leaves little claimed work.
pub(super) fn pipeline_depth(workers: usize, avg_entity_ms: f64) -> usize {
    let per_worker = (QUEUE_MS / avg_entity_ms.max(0.000_1)).ceil();
    let per_worker = if per_worker.is_finite() {
        (per_worker as usize).max(2)
    } else {
        QUEUE_MAX
    };
    workers
        .saturating_mul(per_worker)
        .clamp(workers * 2, QUEUE_MAX.max(workers * 2))
}

/// How many entities a worker takes at once: about [`TAKE_MS`] of work.
pub(super) fn take_size(avg_entity_ms: f64) -> usize {
    let n = (TAKE_MS / avg_entity_ms.max(0.000_1)).ceil();
    if n.is_finite() {
        (n as usize).clamp(1, QUEUE_MAX)
    } else {
        QUEUE_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (2, 0.002, QUEUE_MAX),
            // A mean of zero, or not a number, is the cap too.
            (2, 0.0, QUEUE_MAX),
            (2, f64::NAN, QUEUE_MAX),
            // More workers than the cap allows: two each still.
            (10_000, 0.001, 20_000),
        ];
        for &(workers, ms, want) in table {
            assert_eq!(
                pipeline_depth(workers, ms),
                want,
                "{workers} workers, {ms} ms"
            );
        }
    }

    #[test]
    fn a_worker_takes_about_two_milliseconds_of_work_at_once() {
        let table: &[(f64, usize)] = &[
            (1000.0, 1),
            (2.0, 1),
            (0.5, 4),
            (0.001, 2000),
            (0.0, QUEUE_MAX),
            (f64::INFINITY, 1),
        ];
        for &(ms, want) in table {
            assert_eq!(take_size(ms), want, "{ms} ms");
        }
    }
}
