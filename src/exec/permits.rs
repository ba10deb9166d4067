//! Entity slots shared by the batches of one process. A `batchsh worker`
//! serves several batches at once; each runs its own worker threads
//! (capped by its `MAX_WORKERS_PER_NODE`), and all of them together run at
//! most the worker's `--workers` entities at a time (SPEC §4): a thread
//! holds a slot while its entity runs. Slots go to waiting threads in the
//! order they asked (a thread that gives one back and asks again queues
//! behind them), so one batch's threads cannot keep every slot from
//! another batch's.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Free slots, and the threads waiting for one, first come first.
#[derive(Debug)]
pub struct Permits {
    slots: Mutex<Slots>,
    freed: Condvar,
}

#[derive(Debug)]
struct Slots {
    free: usize,
    /// Tickets of the waiting threads, in the order they asked.
    waiting: VecDeque<u64>,
    next_ticket: u64,
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
            slots: Mutex::new(Slots {
                free: slots.max(1),
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free slot, in turn, while `wait_on()` says so: `None`
    /// when it stopped saying so first.
    pub fn acquire(&self, wait_on: impl Fn() -> bool) -> Option<Permit<'_>> {
        let mut s = self.lock();
        if s.waiting.is_empty() && s.free > 0 {
            s.free -= 1;
            return Some(Permit(self));
        }
        let me = s.next_ticket;
        s.next_ticket += 1;
        s.waiting.push_back(me);
        loop {
            if s.free > 0 && s.waiting.front() == Some(&me) {
                s.waiting.pop_front();
                s.free -= 1;
                if s.free > 0 {
                    // The next in line may take one too.
                    self.freed.notify_all();
                }
                return Some(Permit(self));
            }
            if !wait_on() {
                s.waiting.retain(|&t| t != me);
                self.freed.notify_all();
                return None;
            }
            s = self
                .freed
                .wait_timeout(s, LOOK_EVERY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Free slots now.
    pub fn free(&self) -> usize {
        self.lock().free
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.lock().free += 1;
        // Each waiter looks whether it is first in line.
        self.0.freed.notify_all();
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
    fn a_slot_given_back_goes_to_who_waited_first() {
        let permits = Arc::new(Permits::new(1));
        let held = permits.acquire(|| true).unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (p, o) = (Arc::clone(&permits), Arc::clone(&order));
        let waiter = std::thread::spawn(move || {
            let _slot = p.acquire(|| true).unwrap();
            o.lock().unwrap().push("waiter");
        });
        // The waiter is in line once the queue holds its ticket.
        while permits.lock().waiting.is_empty() {
            std::thread::yield_now();
        }
        drop(held);
        // Asking again right after giving it back: behind the waiter.
        let again = permits.acquire(|| true).unwrap();
        order.lock().unwrap().push("again");
        drop(again);
        waiter.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["waiter", "again"]);
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
