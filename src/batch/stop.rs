//! How a run is asked, from outside, to stop: a cancel (Ctrl-C: the batch
//! ends CANCELLED) or a stop signal (SIGTERM, SIGHUP: the batch is left
//! unfinished, for `BATCH_RETRY`). A run reads only its own token; the
//! command line's handlers set it (`crate::terminate`). A `BATCH_CANCEL`
//! from another process comes through the store instead.

use super::StopSignal;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

#[derive(Debug, Default)]
pub struct StopToken {
    cancel: AtomicBool,
    /// 0: none; else the signal, see [`StopToken::signal`].
    signal: AtomicU8,
}

impl StopToken {
    /// Asks the run to cancel its batch gracefully.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Asks the run to stop, leaving its batch unfinished; the first
    /// signal is the one that counts.
    pub fn signal(&self, s: StopSignal) {
        let code = match s {
            StopSignal::Term => 1,
            StopSignal::Hup => 2,
            StopSignal::Drain => 3,
        };
        let _ = self
            .signal
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The stop signal that came, if one did.
    pub fn signalled(&self) -> Option<StopSignal> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            2 => Some(StopSignal::Hup),
            3 => Some(StopSignal::Drain),
            _ => Some(StopSignal::Term),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_a_cancel_and_the_first_signal() {
        let t = StopToken::default();
        assert!(!t.cancelled());
        assert_eq!(t.signalled(), None);
        t.signal(StopSignal::Hup);
        t.signal(StopSignal::Term);
        assert_eq!(t.signalled(), Some(StopSignal::Hup));
        t.cancel();
        assert!(t.cancelled());
    }
}
