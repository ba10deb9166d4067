//! The PostgreSQL store (`--store postgres://…`): one database shared by
//! every batchsh process on every host (SPEC, "A shared store for several
//! machines").
//!
//! Opening is as careful as SQLite's: a database that holds another
//! application's tables, or a batchsh schema newer than this binary, is
//! refused and left untouched. Migrations run in one transaction under an
//! advisory lock, so that processes opening a new store at once wait for
//! each other and all succeed. Each trait's statements live in a file of
//! their own, as in `sqlite/`; what they share is here: [`PgStore::tx`]
//! runs a transaction (again, when PostgreSQL asks for that after a
//! serialisation failure or a deadlock), and errors become
//! [`StoreError::Postgres`] naming the store by its URL without password.

mod appends;
mod batches;
mod catalog;
mod copy;
mod jobs;
mod nodes;
mod notices;
mod purge;
mod queue;
mod reads;
pub mod schema;
mod series;

use super::{Notice, Result, RunTuning, Store, StoreError, Upgrade, Upgrades};
use crate::pg::{PgError, Target};
use postgres::{Client, Statement, Transaction};
use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many times a transaction runs again after a serialisation failure
/// or a deadlock before the error is the caller's.
const RETRIES: usize = 5;

/// How long the check of a connection before a statement (see
/// [`PgStore::client`]) waits for the server's answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgStore {
    client: RefCell<Client>,
    /// Statements prepared on `client`, by their text (see [`PgStore::cached`]).
    prepared: RefCell<HashMap<&'static str, Statement>>,
    /// The id of the transaction under way, when its body read it
    /// ([`PgStore::note_xid`]).
    xid: Cell<Option<i64>>,
    target: Target,
    /// The URL without password, as [`crate::store::Store::path`] gives it.
    shown: PathBuf,
    /// The notices this handle LISTENs to ([`Store::listen`]), again on a
    /// new connection.
    listening: RefCell<Vec<Notice>>,
    /// A second connection, opened at the first step that writes half
    /// its outcomes beside the other half (`batches::beside`).
    side: RefCell<Option<Box<PgStore>>>,
    /// The last new connection found the store's database gone (dropped),
    /// which waiting does not mend: the error of what the lost connection
    /// failed, instead of a wait for the server.
    gone: RefCell<Option<crate::pg::PgError>>,
    /// How long the last new connection that could not be made was tried.
    tried: Cell<Duration>,
}

impl PgStore {
    /// Connects to the store at `url`, creating or upgrading its schema
    /// when it is new or older, refusing a database that is not a batchsh
    /// store or is newer than this binary.
    pub fn open(url: &str, upgrades: Upgrades<'_>) -> Result<PgStore> {
        let target = Target::parse(url)?;
        let store = PgStore::on(session(&target)?, target);
        store.migrate(upgrades)?;
        Ok(store)
    }

    /// A handle on the connection `client` to the store at `target`.
    fn on(client: Client, target: Target) -> PgStore {
        PgStore {
            client: RefCell::new(client),
            prepared: RefCell::new(HashMap::new()),
            xid: Cell::new(None),
            shown: PathBuf::from(target.shown()),
            target,
            listening: RefCell::new(Vec::new()),
            side: RefCell::new(None),
            gone: RefCell::new(None),
            tried: Cell::new(super::busy_timeout()),
        }
    }

    /// Another handle on the same store, on a connection of its own (the
    /// schema was checked when this one opened).
    fn sibling(&self) -> Result<PgStore> {
        let client = session(&self.target).map_err(|e| match e {
            StoreError::Connect(e) => StoreError::Connect(e.again(&self.target)),
            other => other,
        })?;
        Ok(PgStore::on(client, self.target.clone()))
    }

    /// The connection, for a statement outside a transaction.
    /// A connection that the server closed (a restart, a dropped link) is
    /// replaced first, as [`PgStore::reconnect`] does.
    pub(crate) fn client(&self) -> RefMut<'_, Client> {
        let mut client = self.client.borrow_mut();
        // A server that ends a session (a restart, an administrator's
        // pg_terminate_backend) says so on the socket, but the client reads
        // it only with its next statement, which then fails, and a worker
        // whose statement fails stops. So the connection is asked first
        // (one round trip, next to a statement outside a transaction, which
        // no step of a run is), and found closed before anything that
        // matters is sent on it.
        if !client.is_closed() {
            let _ = client.is_valid(CHECK_TIMEOUT);
        }
        if client.is_closed() {
            let _ = self.reconnect(&mut client);
        }
        client
    }

    /// The connection for [`PgStore::tx`], which needs no check: a
    /// transaction that finds its connection lost before its commit runs
    /// again on a new one.
    fn tx_client(&self) -> RefMut<'_, Client> {
        let mut client = self.client.borrow_mut();
        if client.is_closed() {
            let _ = self.reconnect(&mut client);
        }
        client
    }

    /// Replaces a closed connection with a new one, trying again for up
    /// to the busy timeout (a server that restarts takes seconds), a few
    /// seconds once the process stops ([`crate::store::reconnect_window`]).
    /// A database gone (dropped) ends the tries at once, and is kept for
    /// [`PgStore::unreachable`]. The statements prepared on the old
    /// connection go with it.
    fn reconnect(&self, client: &mut Client) -> Result<()> {
        self.gone.take();
        let started = Instant::now();
        loop {
            match session(&self.target) {
                Ok(c) => {
                    *client = c;
                    self.prepared.borrow_mut().clear();
                    notices::listen_again(client, &self.listening.borrow());
                    return Ok(());
                }
                Err(StoreError::Connect(e @ crate::pg::PgError::NoDatabase { .. })) => {
                    let e = e.again(&self.target);
                    *self.gone.borrow_mut() = Some(e.clone());
                    return Err(StoreError::Connect(e));
                }
                // Looked at again at each try: a stop shortens the window.
                Err(e) if started.elapsed() >= super::reconnect_window() => {
                    self.tried.set(super::reconnect_window());
                    return Err(e);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// `sql` prepared once per connection, for the statements a run
    /// repeats at every step; works inside [`PgStore::tx`] (pass its
    /// transaction) as outside it (pass the client).
    pub(crate) fn cached(
        &self,
        on: &mut impl postgres::GenericClient,
        sql: &'static str,
    ) -> std::result::Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = on.prepare(sql)?;
        self.prepared.borrow_mut().insert(sql, s.clone());
        Ok(s)
    }

    /// Tells [`PgStore::tx`] the id of its transaction (`txid_current()`,
    /// read by a statement of the body, as a step's last one does): the
    /// commit does not ask for it in a round trip of its own.
    pub(crate) fn note_xid(&self, xid: i64) {
        self.xid.set(Some(xid));
    }

    /// A PostgreSQL error as the store's error: a connection lost (and
    /// not replaced within the busy timeout, see [`PgStore::client`]) is
    /// [`StoreError::Unreachable`].
    pub(crate) fn err(&self, e: postgres::Error) -> StoreError {
        if lost_error(&e) {
            return self.unreachable(&e);
        }
        StoreError::Postgres {
            store: self.target.shown().to_string(),
            message: crate::pg::db_message(&e),
        }
    }

    /// The error of a statement whose connection was lost before its
    /// commit, when no new one could be made: nothing of it was kept. A
    /// database found gone by the new one says so instead.
    fn unreachable(&self, e: &postgres::Error) -> StoreError {
        if let Some(gone) = self.gone.borrow().clone() {
            return StoreError::Connect(gone);
        }
        StoreError::Unreachable {
            store: self.target.shown().to_string(),
            message: crate::pg::db_message(e),
            waited: self.tried.get(),
        }
    }

    /// Runs `f` in a transaction and commits it; runs it again when
    /// PostgreSQL reports a serialisation failure or a deadlock, or when
    /// the connection was lost before the commit was sent (then nothing of
    /// it was kept: it runs again on a new connection). So `f` must do
    /// nothing outside the transaction that cannot be repeated. When the
    /// connection is lost during the commit, its answer lost with it, the
    /// transaction's fate is asked on a new connection (`txid_status` of
    /// its id, read before the commit): kept, it is done; not kept, it runs
    /// again. Only when that cannot be known is it an error, and the caller
    /// stops rather than guess. `f`'s own errors (a [`StoreError`] made
    /// from what it read) end the transaction without a commit.
    pub(crate) fn tx<T>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> std::result::Result<T, TxError>,
    ) -> Result<T> {
        let mut client = self.tx_client();
        let mut tries = 0;
        loop {
            // What the body gave, the transaction's id, once it commits.
            let mut committing: Option<(T, i64)> = None;
            let attempt = (|| {
                let mut tx = client.transaction()?;
                self.xid.set(None);
                let out = f(&mut tx)?;
                let xid = match self.xid.take() {
                    Some(xid) => xid,
                    None => {
                        let st = self.cached(&mut tx, "SELECT txid_current()")?;
                        tx.query_one(&st, &[])?.get(0)
                    }
                };
                committing = Some((out, xid));
                tx.commit()?;
                Ok(())
            })();
            match attempt {
                Ok(()) => {
                    if let Some((out, _)) = committing {
                        return Ok(out);
                    }
                }
                Err(TxError::Pg(e)) if is_retryable(&e) && tries < RETRIES => tries += 1,
                Err(TxError::Pg(e)) if lost(&client, &e) && tries < RETRIES => {
                    tries += 1;
                    let reconnected = self.reconnect(&mut client);
                    let Some((out, xid)) = committing else {
                        reconnected.map_err(|_| self.unreachable(&e))?;
                        continue;
                    };
                    match reconnected.map(|()| self.kept(&mut client, xid)) {
                        Ok(Ok(true)) => return Ok(out),
                        Ok(Ok(false)) => {}
                        _ => return Err(self.err_in_commit(&e)),
                    }
                }
                Err(TxError::Pg(e)) if committing.is_some() && lost(&client, &e) => {
                    return Err(self.err_in_commit(&e));
                }
                // Lost again on each new connection: the server answers, but
                // keeps nothing of it (not one that did not answer).
                Err(TxError::Pg(e)) if lost(&client, &e) => {
                    return Err(StoreError::LostAgain {
                        store: self.target.shown().to_string(),
                        message: crate::pg::db_message(&e),
                        times: tries + 1,
                    });
                }
                Err(TxError::Pg(e)) => return Err(self.err(e)),
                Err(TxError::Store(e)) => return Err(e),
            }
        }
    }

    /// Whether transaction `xid`, whose commit's answer was lost, was
    /// kept; asked on a new connection. A commit the server still works
    /// on is waited for (a moment: its session is gone).
    fn kept(&self, client: &mut Client, xid: i64) -> std::result::Result<bool, ()> {
        let until = Instant::now() + super::busy_timeout();
        loop {
            let status: Option<String> = client
                .query_one("SELECT txid_status($1)", &[&xid])
                .map_err(drop)?
                .get(0);
            match status.as_deref() {
                Some("committed") => return Ok(true),
                Some("aborted") => return Ok(false),
                Some(_) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => return Err(()),
            }
        }
    }

    /// The error of a commit whose fate could not be learnt (or of its
    /// database, gone meanwhile).
    fn err_in_commit(&self, e: &postgres::Error) -> StoreError {
        if let Some(gone) = self.gone.borrow().clone() {
            return StoreError::Connect(gone);
        }
        StoreError::FateUnknown {
            store: self.target.shown().to_string(),
            message: crate::pg::db_message(e),
        }
    }

    fn migrate(&self, upgrades: Upgrades<'_>) -> Result<()> {
        let shown = self.shown.clone();
        let mut told = false;
        self.tx(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&schema::MIGRATION_LOCK],
            )?;
            let found = version(tx, &shown)?;
            if found > schema::VERSION {
                return Err(TxError::Store(StoreError::Newer {
                    path: shown.clone(),
                    found,
                    supported: schema::VERSION,
                }));
            }
            if found > 0 && found < schema::VERSION && !told {
                told = true;
                if let Upgrades::Told(tell) = upgrades {
                    tell(Upgrade {
                        from: found,
                        to: schema::VERSION,
                    });
                }
            }
            for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
                tx.batch_execute(sql)?;
                let v = (i + 1).to_string();
                tx.execute(
                    "INSERT INTO batchsh_meta (key, value) VALUES ('version', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&v],
                )?;
            }
            tx.execute(
                "INSERT INTO batchsh_meta (key, value) VALUES ('application', $1)
                 ON CONFLICT (key) DO NOTHING",
                &[&schema::APPLICATION],
            )?;
            Ok(())
        })
    }
}

impl Store for PgStore {
    fn path(&self) -> &Path {
        &self.shown
    }

    /// The database is the store: it is still there while its schema is.
    fn still_there(&self) -> Result<()> {
        let ask = || {
            self.client()
                .query_one("SELECT to_regclass('batchsh_meta') IS NOT NULL", &[])
        };
        // A connection lost under the question is not a store gone: ask
        // again, on a new one.
        let there: bool = match ask() {
            Err(e) if lost(&self.client.borrow(), &e) => ask(),
            answer => answer,
        }
        .map_err(|e| self.err(e))?
        .get(0);
        if there {
            Ok(())
        } else {
            Err(StoreError::Vanished {
                path: self.shown.clone(),
                replaced: false,
            })
        }
    }

    /// PostgreSQL tunes itself: a run changes nothing.
    fn begin_run(&self) -> Result<RunTuning<'_>> {
        Ok(RunTuning::new(self))
    }

    /// Eight times the SQLite store's: a step costs nine round trips to
    /// the server besides its rows, each worth hundreds of rows of its
    /// `COPY` on a busy machine, and the plans of its statements; with
    /// steps of 16 Ki entities they were a fifth of a fast batch's time.
    /// (The memory a run holds grows with it: 35 MB of peak RSS for
    /// `echo` at 16 Ki, 65 MB at 64 Ki, about 100 MB at 128 Ki.)
    fn step_entities(&self) -> usize {
        8 * super::STEP_ENTITIES
    }

    /// The second connection of a run's large steps (`batches::beside`)
    /// closes with the run: a session's store does not keep it.
    fn end_run(&self) {
        if let Ok(mut side) = self.side.try_borrow_mut() {
            side.take();
        }
    }

    /// PostgreSQL's own autovacuum tidies the store.
    fn nudge(&self) {}

    fn compact(&self) -> Result<()> {
        Ok(())
    }

    fn reopen(&self) -> Result<Box<dyn Store + Send>> {
        Ok(Box::new(self.sibling()?))
    }

    fn listen(&self, notice: Notice) -> bool {
        self.listen_to(notice)
    }

    fn unlisten(&self, notice: Notice) {
        self.unlisten_to(notice);
    }

    fn notify(&self, notice: Notice, bid: &str) {
        let _ = notices::notify(&mut *self.client(), notice, bid);
    }

    fn await_notice(&self, timeout: Duration) -> Vec<String> {
        self.await_notice_for(timeout)
    }
}

/// A connection to the store, set for batchsh's short statements: no JIT
/// compilation (its cost estimate can make a statement of milliseconds
/// compile for most of a second), and a plan made for each execution's
/// values rather than one generic plan (on a table not analysed yet, the
/// generic plan of a step's claim read every row of the batch).
///
/// And the server ends the session of a process that went silent in the
/// middle of a transaction within about the time after which its node is
/// dead (dead after 10 s): a host cut off from the network, or a process
/// stopped, while its step held rows would otherwise keep them locked
/// until its link came back, and the nodes taking it over would wait for
/// it. Idle in a transaction, its session ends after that time; in the
/// middle of a statement (a copy the server waits to read), TCP
/// keepalives find the link dead. batchsh's transactions never wait on
/// anything but the server between their statements.
fn session(target: &Target) -> Result<Client> {
    session_for(target, crate::knobs::dead_after())
}

/// [`session`], for a node dead after `dead_after`.
fn session_for(target: &Target, dead_after: std::time::Duration) -> Result<Client> {
    let mut client = target.connect()?;
    let dead_ms = dead_after.as_millis().max(1000);
    let probe_s = (dead_ms / 2000).max(1);
    client
        .batch_execute(&format!(
            "SET jit = off; SET plan_cache_mode = force_custom_plan;
             SET idle_in_transaction_session_timeout = {dead_ms};
             SET tcp_keepalives_idle = {probe_s}; SET tcp_keepalives_interval = 1;
             SET tcp_keepalives_count = {probe_s}; SET tcp_user_timeout = {dead_ms}"
        ))
        .map_err(|e| StoreError::Postgres {
            store: target.shown().to_string(),
            message: crate::pg::db_message(&e),
        })?;
    Ok(client)
}

/// The schema version of the database `tx` is on: 0 for an empty one;
/// a database with tables of another application's is refused.
fn version(tx: &mut Transaction<'_>, shown: &Path) -> std::result::Result<i64, TxError> {
    let not_ours = |reason: String| {
        TxError::Store(StoreError::NotAStore {
            path: shown.to_path_buf(),
            reason,
        })
    };
    let has_meta: bool = tx
        .query_one("SELECT to_regclass('batchsh_meta') IS NOT NULL", &[])?
        .get(0);
    if !has_meta {
        let tables: Vec<String> = tx
            .query(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
                 ORDER BY 1 LIMIT 4",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if tables.is_empty() {
            return Ok(0);
        }
        return Err(not_ours(format!(
            "the database holds other tables ({}{}) and no batchsh_meta; \
             give batchsh a database of its own (createdb batchsh)",
            tables[..tables.len().min(3)].join(", "),
            if tables.len() > 3 { ", ..." } else { "" }
        )));
    }
    let rows = tx.query("SELECT key, value FROM batchsh_meta", &[])?;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == k)
            .map(|r| r.get::<_, String>(1))
    };
    match get("application") {
        Some(a) if a == schema::APPLICATION => {}
        Some(a) => return Err(not_ours(format!("batchsh_meta names the application {a}"))),
        None => return Err(not_ours("batchsh_meta names no application".into())),
    }
    let v = get("version").unwrap_or_default();
    v.parse::<i64>()
        .map_err(|_| not_ours(format!("batchsh_meta holds the version {v:?}")))
}

/// Whether PostgreSQL asks for the transaction to run again.
fn is_retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// Whether `e` says that the connection `client` was on is gone (the
/// server ended the session, or the socket failed), rather than that a
/// statement failed on a live connection.
fn lost(client: &Client, e: &postgres::Error) -> bool {
    client.is_closed() || lost_error(e)
}

/// Whether `e` says that its connection is gone (closed, or ended by the
/// server), whatever the state of the client.
fn lost_error(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.is_closed()
        // The socket failed under a statement ("error communicating with
        // the server"), before the client marks itself closed.
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        || e.code().is_some_and(|c| {
            c.code().starts_with("08")
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        })
}

/// What a transaction's body fails with: PostgreSQL's error (which the
/// store names, and may run again), or the store's own.
#[derive(Debug)]
pub(crate) enum TxError {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for TxError {
    fn from(e: postgres::Error) -> TxError {
        TxError::Pg(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> TxError {
        TxError::Store(e)
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> StoreError {
        StoreError::Connect(e)
    }
}

/// A fresh, empty PostgreSQL store for one unit test, on the server
/// `BATCHSH_TEST_POSTGRES` names; `None` (after one line on stderr) when
/// it names none. The database is dropped when the store is.
#[cfg(test)]
pub(crate) mod testing {
    use super::PgStore;
    use crate::store::Upgrades;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct TestStore {
        pub store: Option<PgStore>,
        pub url: String,
        admin: String,
        name: String,
    }

    impl std::ops::Deref for TestStore {
        type Target = PgStore;
        fn deref(&self) -> &PgStore {
            self.store
                .as_ref()
                .expect("the store is open until dropped")
        }
    }

    pub fn fresh(test: &str) -> Option<TestStore> {
        let Some(admin) = std::env::var("BATCHSH_TEST_POSTGRES")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            // Once per test binary, past the test harness's capture, so
            // that a skip is seen and does not pass silently.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = std::io::stderr().write_all(
                    format!(
                        "{test} and the other PostgreSQL store tests: skipped \
                         (BATCHSH_TEST_POSTGRES is not set; .ci/run sets it)\n"
                    )
                    .as_bytes(),
                );
            });
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bsh_u_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("test server");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("a test database");
        let url = crate::pg::with_database(&admin, &name);
        let store = PgStore::open(&url, Upgrades::Silent).expect("a fresh store opens");
        Some(TestStore {
            store: Some(store),
            url,
            admin,
            name,
        })
    }

    impl crate::store::contract::ContractStore for PgStore {
        fn try_execute(&self, sql: &str) -> Result<(), String> {
            self.client().batch_execute(sql).map_err(|e| e.to_string())
        }

        fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
            // The simple protocol gives every value as text, as the
            // contract wants it.
            let messages = self
                .client()
                .simple_query(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            messages
                .iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                    }
                    _ => None,
                })
                .collect()
        }
    }

    impl Drop for TestStore {
        fn drop(&mut self) {
            self.store.take();
            if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::fresh;
    use super::*;

    #[test]
    fn a_new_store_gets_the_schema_and_opens_again() {
        let Some(s) = fresh("a_new_store_gets_the_schema_and_opens_again") else {
            return;
        };
        let v: String = s
            .client()
            .query_one("SELECT value FROM batchsh_meta WHERE key = 'version'", &[])
            .unwrap()
            .get(0);
        assert_eq!(v, schema::VERSION.to_string());
        PgStore::open(&s.url, Upgrades::Silent).expect("opens again");
    }

    /// A store of schema version 1 (no chunks, claim ids compressed) is
    /// upgraded in place when opened, says so, and keeps its rows.
    #[test]
    fn a_version_1_store_is_upgraded_in_place_and_keeps_its_claims() {
        let Some(s) = fresh("a_version_1_store_is_upgraded_in_place_and_keeps_its_claims") else {
            return;
        };
        s.client()
            .batch_execute(
                "DROP TABLE batch_chunks;
                 ALTER TABLE batch_claims ALTER COLUMN ids SET STORAGE EXTENDED;
                 UPDATE batchsh_meta SET value = '1' WHERE key = 'version';
                 INSERT INTO batch_claims (batch, first_seq, node, start_time_ms, open, ids)
                 VALUES (1, 1, 'n1', 0, 2, '[\"a\", \"b\"]');",
            )
            .unwrap();
        let told = RefCell::new(Vec::new());
        let tell = |u: Upgrade| told.borrow_mut().push((u.from, u.to));
        let again = PgStore::open(&s.url, Upgrades::Told(&tell)).unwrap();
        assert_eq!(*told.borrow(), [(1, schema::VERSION)]);
        let mut c = again.client();
        let mut one = |sql: &str| -> String { c.query_one(sql, &[]).unwrap().get(0) };
        assert_eq!(
            one("SELECT value FROM batchsh_meta WHERE key = 'version'"),
            schema::VERSION.to_string()
        );
        assert_eq!(one("SELECT ids FROM batch_claims"), r#"["a", "b"]"#);
        assert_eq!(
            one("SELECT count(*)::text FROM batch_chunks"),
            "0",
            "the table of chunks is there"
        );
        // Stored out of line, uncompressed ('e'), in both tables.
        assert_eq!(
            one(
                "SELECT string_agg(attstorage::text, ',' ORDER BY attrelid::regclass::text)
                 FROM pg_attribute
                 WHERE attname = 'ids'
                     AND attrelid IN ('batch_claims'::regclass, 'batch_chunks'::regclass)"
            ),
            "e,e"
        );
    }

    /// A transaction whose connection is lost again on every new one (the
    /// server ends each session under it) stops after the retries with
    /// an error that says so, as many times as it was lost, and counts
    /// as a store unreachable for now: a run waits and writes again. It
    /// does not claim a wait of the busy timeout that never happened.
    #[test]
    fn connections_lost_again_and_again_are_said_so_and_waited_for() {
        let Some(s) = fresh("connections_lost_again_and_again_are_said_so") else {
            return;
        };
        s.client()
            .batch_execute("CREATE TABLE t (n bigint)")
            .unwrap();
        let mut runs = 0;
        let started = std::time::Instant::now();
        let e = s
            .tx(|tx| {
                runs += 1;
                tx.execute("INSERT INTO t VALUES (1)", &[])?;
                tx.execute("SELECT pg_terminate_backend(pg_backend_pid())", &[])?;
                Ok(())
            })
            .unwrap_err();
        assert!(started.elapsed() < crate::store::busy_timeout());
        assert_eq!(runs, RETRIES + 1);
        assert!(
            matches!(e, StoreError::LostAgain { times, .. } if times == RETRIES + 1),
            "{e:?}"
        );
        assert!(e.unreachable());
        let text = e.to_string();
        assert!(
            text.contains("lost 6 times in a row, each new one before the commit"),
            "{text}"
        );
        assert!(!text.contains("within"), "{text}");
        let n: i64 = s
            .client()
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "nothing of it kept");
    }

    /// A process gone silent in the middle of a transaction (cut off,
    /// stopped) holds its rows only about as long as it takes for its
    /// node to be dead: then the server ends its session, and the others
    /// get the rows.
    #[test]
    fn a_session_silent_in_a_transaction_gives_its_locks_up_when_its_node_is_dead() {
        let Some(s) = fresh("a_session_silent_in_a_transaction_gives_its_locks_up") else {
            return;
        };
        s.client()
            .batch_execute("CREATE TABLE t (n bigint); INSERT INTO t VALUES (1)")
            .unwrap();
        let target = Target::parse(&s.url).unwrap();
        let mut silent = session_for(&target, std::time::Duration::from_secs(1)).unwrap();
        let mut tx = silent.transaction().unwrap();
        tx.execute("SELECT n FROM t FOR UPDATE", &[]).unwrap();
        // Another session waits for the row (up to 30 s), and gets it once
        // the silent one's session is ended.
        let started = std::time::Instant::now();
        s.client()
            .batch_execute("SET lock_timeout = '30s'; UPDATE t SET n = 2")
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(900),
            "it waited {waited:?}"
        );
        // Its session is gone: its transaction can do nothing more.
        assert!(tx.execute("SELECT 1", &[]).is_err());
    }

    #[test]
    fn a_newer_or_foreign_database_is_refused_and_left_untouched() {
        let Some(s) = fresh("a_newer_or_foreign_database_is_refused_and_left_untouched") else {
            return;
        };
        s.client()
            .execute(
                "UPDATE batchsh_meta SET value = '99' WHERE key = 'version'",
                &[],
            )
            .unwrap();
        let e = PgStore::open(&s.url, Upgrades::Silent)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("newer batchsh (store version 99"), "{e}");
        s.client()
            .batch_execute(
                "DROP SCHEMA public CASCADE; CREATE SCHEMA public; CREATE TABLE orders (id int)",
            )
            .unwrap();
        let e = PgStore::open(&s.url, Upgrades::Silent)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("is not a batchsh store") && e.contains("public.orders"),
            "{e}"
        );
        let n: i64 = s
            .client()
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "the foreign database was left as it was");
    }

    #[test]
    fn processes_opening_a_new_store_at_once_all_succeed() {
        let Some(s) = fresh("processes_opening_a_new_store_at_once_all_succeed") else {
            return;
        };
        s.client()
            .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            .unwrap();
        let url = s.url.clone();
        let opened: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || PgStore::open(&url, Upgrades::Silent).map(|_| ()))
            })
            .collect();
        for t in opened {
            t.join().unwrap().expect("every open succeeds");
        }
    }
}
