//! Entity slots shared by the batches of one process. A `batchsh worker`
//! serves several batches at once; each runs its own worker threads
//! (capped by its `MAX_WORKERS_PER_NODE`), and all of them together run at
//! most the worker's `--workers` entities at a time (SPEC §4): a thread
//! holds a slot while its entity runs.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A count of free slots.
#[derive(Debug)]
pub struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A slot, given back when dropped.
#[derive(Debug)]
pub struct Permit<'a>(&'a Permits);

/// How often a thread that waits for a slot looks whether it should stop
/// waiting.
const LOOK_EVERY: Duration = Duration::from_millis(50);

impl Permits {
    pub fn new(slots: usize) -> Permits {
        Permits {
            free: Mutex::new(slots.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot while `wait_on()` says so: `None` when it
    /// stopped saying so first.
    pub fn acquire(&self, wait_on: impl Fn() -> bool) -> Option<Permit<'_>> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            if !wait_on() {
                return None;
            }
            free = self
                .freed
                .wait_timeout(free, LOOK_EVERY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *free -= 1;
        Some(Permit(self))
    }

    /// Free slots now.
    pub fn free(&self) -> usize {
        *self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_at_once_than_the_slots() {
        let permits = Arc::new(Permits::new(3));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (permits, now, most) = (permits.clone(), now.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _p = permits.acquire(|| true).expect("waits until one is free");
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(permits.free(), 3);
    }

    #[test]
    fn a_waiter_told_to_stop_gets_none() {
        let permits = Permits::new(1);
        let held = permits.acquire(|| true).unwrap();
        assert!(permits.acquire(|| false).is_none());
        drop(held);
        assert!(
            permits.acquire(|| false).is_some(),
            "a free slot is taken at once"
        );
    }
}
