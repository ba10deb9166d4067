//! Notices on PostgreSQL (see [`crate::store::Notice`]): the transactions
//! that queue a batch, take its job, change its status or end a node's
//! part in it send a NOTIFY, which the server delivers at their commit to
//! every connection that LISTENs, on any host. Idle workers and
//! `BATCH_WAIT` then look at once instead of at their next poll; they poll
//! still, should a notice be lost (a connection replaced between two
//! looks, a pooler that does not pass LISTEN on).

use super::PgStore;
use crate::store::Notice;
use postgres::{Client, GenericClient};
use std::time::Duration;

/// The channel of a notice; its payload is the batch's id.
fn channel(notice: Notice) -> &'static str {
    match notice {
        Notice::Work => "batchsh_work",
        Notice::Batch => "batchsh_batch",
    }
}

/// Sends `notice` about batch `bid`, at the commit of the transaction
/// `on` is in (at once outside one).
pub(super) fn notify(
    on: &mut impl GenericClient,
    notice: Notice,
    bid: &str,
) -> std::result::Result<(), postgres::Error> {
    on.execute("SELECT pg_notify($1, $2)", &[&channel(notice), &bid])
        .map(drop)
}

/// LISTENs again, on a new connection, to what the old one listened to.
pub(super) fn listen_again(client: &mut Client, notices: &[Notice]) {
    for &n in notices {
        let _ = client.batch_execute(&format!("LISTEN {}", channel(n)));
    }
}

impl PgStore {
    pub(super) fn listen_to(&self, notice: Notice) -> bool {
        let listened = self
            .client()
            .batch_execute(&format!("LISTEN {}", channel(notice)))
            .is_ok();
        if listened {
            let mut on = self.listening.borrow_mut();
            if !on.contains(&notice) {
                on.push(notice);
            }
        }
        listened
    }

    pub(super) fn unlisten_to(&self, notice: Notice) {
        self.listening.borrow_mut().retain(|&n| n != notice);
        let mut client = self.client();
        let _ = client.batch_execute(&format!("UNLISTEN {}", channel(notice)));
        // Those that came meanwhile are nobody's now.
        let mut pending = client.notifications();
        let mut it = pending.iter();
        while let Ok(Some(_)) = postgres::fallible_iterator::FallibleIterator::next(&mut it) {}
    }

    pub(super) fn await_notice_for(&self, timeout: Duration) -> Vec<String> {
        use postgres::fallible_iterator::FallibleIterator;
        let started = std::time::Instant::now();
        let mut bids = Vec::new();
        {
            let mut client = self.client();
            let mut notices = client.notifications();
            let first = notices.timeout_iter(timeout).next();
            if let Ok(Some(n)) = first {
                bids.push(n.payload().to_string());
                // Those that came together are taken with it.
                let mut it = notices.iter();
                while let Ok(Some(n)) = it.next() {
                    bids.push(n.payload().to_string());
                }
            }
        }
        if bids.is_empty() {
            // A connection that failed answers at once: the rest of the
            // wait is slept, so that a caller's loop does not spin.
            std::thread::sleep(timeout.saturating_sub(started.elapsed()));
        }
        bids
    }
}
