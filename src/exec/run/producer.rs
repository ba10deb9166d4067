//! A run's producer thread: reads the source and hands each id, the first
//! time it comes, to the writer; then, for an open batch, the ids appended
//! to it, until it is closed.

use super::*;

/// How many appended ids one read takes.
const APPENDS_READ: usize = 4096;
/// How often an open batch's appends are looked for, when the last look
/// found none: an appended id starts within about this.
const APPENDS_POLL: Duration = Duration::from_millis(200);

/// The producer's own handle on the store, on its thread, when it needs
/// one: to read the ids an earlier run of the batch stored, and the ids
/// appended to an open batch.
pub(super) struct Stored {
    pub(super) store: Box<dyn Store + Send>,
    pub(super) bid: String,
    /// An earlier run of the batch stored ids (they are not stored again
    /// when the source is read again).
    pub(super) ids_stored: bool,
}

/// The set of ids seen so far: with `stored`, the ids an earlier run of
/// the batch stored.
fn seen_so_far(stored: Option<&Stored>) -> Result<Seen, String> {
    let mut seen = Seen::new()?;
    if let Some(Stored {
        store,
        bid,
        ids_stored: true,
    }) = stored
    {
        let mut failed = None;
        store
            .stored_ids(bid, &mut |id| match seen.stored(id) {
                Ok(()) => std::ops::ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    std::ops::ControlFlow::Break(())
                }
            })
            .map_err(|e| {
                format!(
                    "cannot read the ids already stored for the batch from {} ({e}), to skip \
                     them as the source is read again",
                    crate::store::shown(store.path())
                )
            })?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(seen)
}

/// Starts the thread that reads the source and hands each id, the first
/// time it comes (see [`crate::store::seen`]), to the writer. With
/// `stored` (a retry that reads the source again), it first reads the ids
/// the batch stored, on its own thread, while the writer goes on; for an
/// open batch, it reads the ids appended to it after the source
/// ([`follow_appends`]). `stored_lines` are the ids of a stored FROM STDIN
/// / FROM FILE batch, read from the store, whose plan has none.
pub(super) fn spawn_producer(
    plan: &Plan,
    home: &Path,
    stored: Result<Option<Stored>, String>,
    stored_lines: Option<crate::plan::LineIds>,
    hub: Arc<Hub>,
    window: Vec<(String, String)>,
) -> std::thread::JoinHandle<()> {
    let open = plan.open;
    let source = match &plan.source {
        EntitySource::Ids(ids) => Source::Ids(ids.clone()),
        EntitySource::Query {
            interface,
            sql,
            params,
            ..
        } => Source::Query(interface.clone(), sql.clone(), params.clone()),
        EntitySource::Fabric(lu) => Source::Fabric(home.to_path_buf(), lu.clone()),
        EntitySource::Lines { ids: Some(ids), .. } => Source::Lines(ids.clone()),
        // The plan of a stored batch: its lines were read once, when it
        // was created, and stored with it; they are not read again.
        EntitySource::Lines { from, ids: None } => match stored_lines {
            Some(ids) => Source::Lines(ids),
            None => Source::Unread(format!(
                "the ids of this batch came from {from} and were not all stored before its run \
                 stopped; they are not read again: run the BATCH statement again"
            )),
        },
    };
    std::thread::Builder::new()
        .name("batchsh-ids".into())
        .spawn(move || {
            let (stored, seen) = match stored.and_then(|s| Ok((seen_so_far(s.as_ref())?, s))) {
                Ok((seen, s)) => (s, seen),
                Err(e) => {
                    let mut st = hub.lock();
                    st.feed = Feed::Failed(e);
                    hub.wake_writer(&mut st);
                    return;
                }
            };
            let mut producer = Producer {
                hub: &hub,
                seen,
                failed: None,
                handed: 0,
            };
            let mut send = |r: Result<String, source::IdError>| producer.push(r);
            let r: Result<(), String> = match source {
                Source::Ids(ids) => {
                    for id in ids {
                        if send(Ok(id)).is_break() {
                            break;
                        }
                    }
                    Ok(())
                }
                Source::Lines(ids) => {
                    for id in ids.iter() {
                        if send(id.clone()).is_break() {
                            break;
                        }
                    }
                    Ok(())
                }
                Source::Unread(why) => Err(why),
                Source::Query(iface, sql, params) => {
                    source::read_ids(&iface, &sql, &params, &window, &mut send).map(|_| ())
                }
                Source::Fabric(home, lu) => crate::lu::LuStore::open(&home, &lu)
                    .and_then(|s| s.for_each_instance(|id| send(Ok(id))))
                    .map(|_| ())
                    .map_err(|e| format!("cannot read the LU store of {}: {e}", lu.name)),
            };
            let r = match (r, &stored) {
                (Ok(()), Some(stored)) if open && producer.failed.is_none() => {
                    follow_appends(&mut producer, stored)
                }
                (r, _) => r,
            };
            let mut st = hub.lock();
            st.feed = match producer.failed.or(r.err()) {
                None => Feed::Ended,
                Some(why) => Feed::Failed(why),
            };
            hub.wake_writer(&mut st);
        })
        .expect("a thread for the id source")
}

/// An open batch's appends, after its source: the feed becomes
/// [`Feed::Appending`], and each appended id goes through the duplicate
/// check as the source's did, until a read finds the batch closed (the
/// ids it read are the last: the flag and the ids are of one snapshot),
/// or the run ends. A run that reads the source again (a takeover) reads
/// the appends from the first: those stored already are dropped as seen.
fn follow_appends(producer: &mut Producer, stored: &Stored) -> Result<(), String> {
    let hub = producer.hub;
    let mut st = hub.lock();
    if st.feed == Feed::Open {
        st.feed = Feed::Appending;
    }
    hub.wake_writer(&mut st);
    drop(st);
    let mut after = 0;
    loop {
        let appended = stored
            .store
            .appended_since(&stored.bid, after, APPENDS_READ)
            .map_err(|e| format!("cannot read the ids appended to the batch: {e}"))?;
        let more = appended.ids.len() == APPENDS_READ;
        for (place, id) in appended.ids {
            after = place;
            if producer.push(Ok(id)).is_break() {
                return Ok(());
            }
        }
        if more {
            continue;
        }
        if !appended.open {
            return Ok(());
        }
        let st = hub.lock();
        if st.closed {
            return Ok(());
        }
        drop(hub.producer.wait_timeout(st, APPENDS_POLL));
    }
}

/// The producer's side of the hub: checks each id, drops the ones seen
/// before, and hands each other one over at once (a source may pause for
/// long between two rows: an id held back would wait as long).
pub(super) struct Producer<'a> {
    pub(super) hub: &'a Hub,
    pub(super) seen: Seen,
    /// The seen ids could not be kept: the batch cannot go on.
    pub(super) failed: Option<String>,
    /// New ids handed on so far.
    pub(super) handed: usize,
}

impl Producer<'_> {
    pub(super) fn push(&mut self, r: Result<String, source::IdError>) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        let id = match r.and_then(|id| source::check_id(&id).map(|()| id)) {
            Ok(id) => NewId::Ok(id),
            Err(e) => NewId::Bad(e.stand_in(), e.to_string()),
        };
        let first = match &id {
            NewId::Ok(text) => self.seen.first(text),
            NewId::Bad(stand_in, error) => self.seen.first_bad(stand_in, error),
        };
        match first {
            Ok(true) => {}
            Ok(false) => return Continue(()),
            Err(e) => {
                self.failed = Some(e);
                return Break(());
            }
        }
        let hub = self.hub;
        let mut st = hub.lock();
        while st.ids.len() >= st.id_room && !st.closed {
            st.producer_waits = true;
            st = hub.producer.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.closed {
            return Break(());
        }
        st.push_id(id);
        self.handed += 1;
        let hold = crate::knobs::ids_hold_after() == Some(self.handed);
        if st.ids.len() >= st.wake_ids || hold {
            hub.wake_writer(&mut st);
        }
        drop(st);
        if hold {
            // A test's stand-in for a source slow to read: the ids so
            // far are stored meanwhile, the rest wait (a minute at most,
            // or until the run ends).
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until && !hub.lock().closed {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Continue(())
    }
}

pub(super) enum Source {
    Ids(Vec<String>),
    Query(source::Interface, String, Vec<source::Param>),
    Fabric(std::path::PathBuf, crate::store::LuDef),
    Lines(crate::plan::LineIds),
    /// Lines that were not read: why the batch cannot have them.
    Unread(String),
}
