//! The heartbeat of a background process: a worker, or a tick while its
//! runs last (SPEC §7: every 2 seconds; a node silent for 10 is dead).

use crate::store::Store;
use crate::store::nodes::NodeState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a background process beats: every 2 s, or more often when
/// tests shorten the time after which a node is dead.
fn beat_every() -> Duration {
    Duration::from_secs(2).min(crate::knobs::dead_after() / 4)
}

/// The heartbeat of a background process (a worker, a tick that runs
/// jobs), on a thread and a store handle of its own, until `done`: each
/// beat runs `each` first. A process that finds its node declared dead
/// (it stalled, and another took its work) calls `dead` and exits 1 at
/// once, writing nothing more.
pub fn start(
    store: &dyn Store,
    worker_id: &str,
    done: Arc<AtomicBool>,
    each: impl Fn(&dyn Store) + Send + 'static,
    dead: impl Fn() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, crate::store::StoreError> {
    let store = store.reopen()?;
    let worker_id = worker_id.to_string();
    Ok(std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            each(&*store);
            let _ = store.beat(&worker_id);
            let declared_dead = store.nodes().is_ok_and(|nodes| {
                nodes
                    .iter()
                    .any(|n| n.worker_id == worker_id && n.state == NodeState::Dead)
            });
            if declared_dead {
                dead();
                std::process::exit(crate::exit::FAILED);
            }
            let until = std::time::Instant::now() + beat_every();
            while std::time::Instant::now() < until && !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }))
}
