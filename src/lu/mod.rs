//! The LU store: the instances' data, synced from an LU's source, in one
//! SQLite file per LU, `<home>/lu/<LU>.db` (SPEC §3), apart from the batch
//! store so that syncing and bookkeeping do not contend for one writer.
//!
//! Layout of the file (WAL, busy timeout 30 s, `application_id` "BSHL",
//! `user_version` 3):
//!
//! - one table per LU table, named as the LU table: `__rowid INTEGER
//!   PRIMARY KEY`, `__iid TEXT NOT NULL` (the instance id, indexed), then
//!   the columns the table query returns, without declared types so that
//!   values are kept exactly as the source gave them. A table is created at
//!   the first sync that writes the instance, from the columns its query
//!   returned; when a later query returns a column the table lacks, the
//!   next write adds it (`ALTER TABLE ADD COLUMN`; rows stored before read
//!   NULL there). A column the query no longer returns is kept, and is NULL
//!   in every row of an instance synced from then on (so that sync is an
//!   update where the column held values).
//! - `__instances (id, added_at, changed_at)`: the marker of presence, so
//!   that an instance whose queries return no rows is still in the store,
//!   and `FROM FABRIC` is one ordered scan.
//!   Its `batch`, `seq` and `outcome` name the batch entity that wrote the
//!   instance last and what it reported, and `__deleted (id, batch, seq)`
//!   the one that deleted it: both are written in the transaction of the
//!   write, so an entity run again after a crash reports what its first
//!   run did ([`Entity`]). Older files lacked them; opening one adds
//!   them.
//!
//! Names beginning with `__` (and SQLite's `sqlite_`) are the store's: an
//! LU table may not have one, and a query may not return a column named
//! `__iid` or `__rowid`. Names are matched ignoring ASCII case, as SQLite
//! does; every name is quoted, so any other name works, `select` and `a"b`
//! included.
//!
//! Syncing one instance ([`LuStore::sync_instance`]): the source queries
//! run first, with no lock on the store; the comparison then runs in a read
//! transaction, and an unchanged instance ends there, having written
//! nothing at all (not even a timestamp: `changed_at` is the last sync that
//! *changed* the instance). Otherwise a `BEGIN IMMEDIATE` transaction takes
//! the write lock up front (so two writers queue on the busy timeout
//! instead of deadlocking on a lock upgrade), compares again, since another
//! worker may have synced the same id meanwhile, and writes the difference:
//! deleted, updated and inserted rows, then the marker. One transaction per
//! instance: a crash leaves an instance as it was before or after.
//!
//! Threads: a [`LuStore`] is `Send + Sync`; share one (`Arc<LuStore>`)
//! between the workers of a batch. It keeps a small pool of connections to
//! the file, opening one more whenever every one is busy, so workers read
//! in parallel and queue only for SQLite's one writer. Opening one
//! `LuStore` per worker works too.

mod error;
mod schema;
mod sync;
#[cfg(test)]
mod tests;
mod value;

pub use error::LuError;
pub use schema::check_table_names;
pub use value::Atom;

use crate::source::InstanceRows;
use crate::store::LuDef;
use rusqlite::{Connection, TransactionBehavior};
use std::ops::{ControlFlow, Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What `sync_instance` did to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The instance was not in the store.
    Added,
    /// Rows were added, removed or changed.
    Updated,
    /// The same data; nothing was written.
    Unchanged,
}

/// One LU table of an instance, as `GET` reads it: the table's stored
/// columns (none when no instance has written the table yet) and the
/// instance's rows under them, in store order.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceTable {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Atom>>,
}

/// The batch entity a sync or delete runs for. A write records it (in the
/// instance's `__instances` row, or in `__deleted`, in the write's own
/// transaction), and a run that finds its own entity's record there is
/// that entity run again after a crash (at-least-once, SPEC §7): it
/// reports what the first run did, merged with what it does now, so that
/// the batch's Added / Updated counts do not lose what a killed run wrote
/// before its outcome was committed.
#[derive(Clone, Copy, Debug)]
pub struct Entity<'a> {
    pub batch: &'a str,
    pub seq: i64,
    /// The entity was claimed before (its attempts are more than one):
    /// only then can it find a write of its own, so only then is it
    /// looked for.
    pub again: bool,
}

impl SyncOutcome {
    fn name(self) -> &'static str {
        match self {
            SyncOutcome::Added => "Added",
            SyncOutcome::Updated => "Updated",
            SyncOutcome::Unchanged => "Unchanged",
        }
    }

    /// What an entity did to its instance over all its runs: `earlier`,
    /// what an earlier run recorded, then `self` now. Added stays Added
    /// (the instance was not there before the entity); an update found
    /// unchanged now stays an update.
    fn after(self, earlier: Option<&str>) -> SyncOutcome {
        match (earlier, self) {
            (Some("Added"), _) => SyncOutcome::Added,
            (Some("Updated"), SyncOutcome::Unchanged) => SyncOutcome::Updated,
            (_, now) => now,
        }
    }

    /// `{"Added":1,"Updated":0,"Unchanged":0}`: exactly one is 1 (SPEC §5).
    pub fn json(self) -> serde_json::Value {
        let one = |o: SyncOutcome| i32::from(self == o);
        serde_json::json!({
            "Added": one(SyncOutcome::Added),
            "Updated": one(SyncOutcome::Updated),
            "Unchanged": one(SyncOutcome::Unchanged),
        })
    }
}

/// Makes every commit to LU `lu`'s store so far durable (the store runs
/// with `synchronous = NORMAL`, which syncs its log only at checkpoints):
/// syncs `<LU>.db-wal` to disk. The executor calls it before it commits the
/// outcomes of `sync_instance` / `delete_instance` entities, so that after
/// a power loss no entity is COMPLETED whose LU data was lost. A log that
/// is not there (every commit checkpointed into the synced file) needs
/// nothing.
pub fn flush_log(home: &Path, lu: &str) -> Result<(), LuError> {
    let path = store_path(home, lu)?;
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    let synced = std::fs::File::open(&wal).and_then(|f| f.sync_data());
    match synced {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LuError::Sync {
            lu: lu.to_string(),
            path: PathBuf::from(wal),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The result of `delete_instance` (SPEC §5): `{"Deleted":1}` or
/// `{"Deleted":0}`.
pub fn deleted_json(deleted: bool) -> serde_json::Value {
    serde_json::json!({ "Deleted": i32::from(deleted) })
}

/// One LU's store: a pool of connections to `<home>/lu/<LU>.db`.
pub struct LuStore {
    lu: String,
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// The path of an LU's store, `<home>/lu/<LU>.db`. An LU name that could
/// leave that folder (anything but letters, digits and `_`) is refused.
pub fn store_path(home: &Path, lu: &str) -> Result<PathBuf, LuError> {
    schema::path(home, lu)
}

impl LuStore {
    /// Opens the LU's store, creating `<home>/lu/` and the file if needed.
    /// A file there that is not an LU store, or was written by a newer
    /// batchsh, is refused and left untouched.
    pub fn open(home: &Path, lu: &LuDef) -> Result<LuStore, LuError> {
        let path = schema::path(home, &lu.name)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LuError::CreateDir {
                lu: lu.name.clone(),
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = schema::open(&path, &lu.name)?;
        Ok(LuStore {
            lu: lu.name.clone(),
            path,
            idle: Mutex::new(vec![conn]),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs one instance (see the module docs) and returns
    /// `{"Added":1,"Updated":0,"Unchanged":0}` (SPEC §5).
    pub fn sync_instance(
        &self,
        lu: &LuDef,
        source: impl InstanceRows,
        id: &str,
    ) -> Result<serde_json::Value, LuError> {
        self.sync(lu, source, id).map(SyncOutcome::json)
    }

    /// [`LuStore::sync_instance`], as an enum for counting.
    pub fn sync(
        &self,
        lu: &LuDef,
        source: impl InstanceRows,
        id: &str,
    ) -> Result<SyncOutcome, LuError> {
        self.sync_within(lu, source, id, None, None)
    }

    /// [`LuStore::sync`] for entity `by` of a batch (see [`Entity`]),
    /// stopped after `limit` (`ENTITY_TIMEOUT`): the source query or the
    /// store's transaction is interrupted, the transaction rolled back, and
    /// the instance left as it was.
    pub fn sync_within(
        &self,
        lu: &LuDef,
        mut source: impl InstanceRows,
        id: &str,
        by: Option<Entity>,
        limit: Option<Duration>,
    ) -> Result<SyncOutcome, LuError> {
        check_table_names(lu)?;
        crate::source::check_id(id).map_err(|source| LuError::Id {
            lu: lu.name.clone(),
            source,
        })?;
        let mut conn = self.conn()?;
        let watch = limit.map(|l| {
            let handles = source.interrupt_handle().into_iter();
            (l, handles.chain([conn.get_interrupt_handle()]).collect())
        });
        self.limited(watch, |check| {
            let fetched = sync::fetch(lu, &mut source, id, limit)?;
            check()?;
            self.sync_on(&mut conn, id, &fetched, by, check)
        })
    }

    /// `check` fails once the time limit has passed: called between the
    /// steps (an interrupt that comes while no statement runs is lost), and
    /// last before the commit, so a sync that ran out of time is rolled
    /// back whatever it was doing then.
    fn sync_on(
        &self,
        conn: &mut Connection,
        id: &str,
        fetched: &[sync::Fetched<'_>],
        by: Option<Entity>,
        check: &dyn Fn() -> Result<(), LuError>,
    ) -> Result<SyncOutcome, LuError> {
        // Only an entity that ran before can find its own write.
        let earlier = |tx: &Connection| match by {
            Some(e) if e.again => schema::synced_by(tx, id, e.batch, e.seq),
            _ => Ok(None),
        };
        {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(|e| self.err(e))?;
            let plan = sync::plan(&tx, id, fetched).map_err(|e| self.err(e))?;
            let before = earlier(&tx).map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            check()?;
            if plan.outcome == SyncOutcome::Unchanged {
                return Ok(SyncOutcome::Unchanged.after(before.as_deref()));
            }
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let plan = sync::plan(&tx, id, fetched).map_err(|e| self.err(e))?;
        let outcome = plan
            .outcome
            .after(earlier(&tx).map_err(|e| self.err(e))?.as_deref());
        if plan.outcome != SyncOutcome::Unchanged {
            let by = by.map(|e| (e.batch, e.seq, outcome.name()));
            sync::apply(&tx, id, &plan, &crate::store::now(), by).map_err(|e| self.err(e))?;
        }
        check()?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(outcome)
    }

    /// Removes the instance from the store: its rows in every table of the
    /// file (tables the LU no longer defines included) and its marker.
    /// Returns `{"Deleted":1}`, or `{"Deleted":0}` when it was not there.
    pub fn delete_instance(&self, lu: &LuDef, id: &str) -> Result<serde_json::Value, LuError> {
        self.delete(lu, id).map(deleted_json)
    }

    /// [`LuStore::delete_instance`]: whether the instance was there.
    pub fn delete(&self, lu: &LuDef, id: &str) -> Result<bool, LuError> {
        self.delete_within(lu, id, None, None)
    }

    /// [`LuStore::delete`] for entity `by` of a batch (see [`Entity`]: a
    /// run again after a crash reports the delete its first run made),
    /// stopped after `limit` (`ENTITY_TIMEOUT`): the transaction is
    /// interrupted and rolled back.
    pub fn delete_within(
        &self,
        _lu: &LuDef,
        id: &str,
        by: Option<Entity>,
        limit: Option<Duration>,
    ) -> Result<bool, LuError> {
        let mut conn = self.conn()?;
        let watch = limit.map(|l| (l, vec![conn.get_interrupt_handle()]));
        self.limited(watch, |check| self.delete_on(&mut conn, id, by, check))
    }

    /// Runs `work` under `ENTITY_TIMEOUT`, when `watch` gives the limit and
    /// the connections the work uses: a watchdog interrupts them once the
    /// limit passes, `work` is handed a `check` that fails from then on, and
    /// any failure after it is the timeout. Without a limit, `check` never
    /// fails.
    fn limited<T>(
        &self,
        watch: Option<(Duration, Vec<rusqlite::InterruptHandle>)>,
        work: impl FnOnce(&dyn Fn() -> Result<(), LuError>) -> Result<T, LuError>,
    ) -> Result<T, LuError> {
        let Some((limit, handles)) = watch else {
            return work(&|| Ok(()));
        };
        let timed_out = AtomicBool::new(false);
        let expired = || LuError::TimedOut {
            lu: self.lu.clone(),
            limit,
        };
        let check = || {
            if timed_out.load(Ordering::SeqCst) {
                Err(expired())
            } else {
                Ok(())
            }
        };
        let start = std::time::Instant::now();
        let r = crate::source::watchdog::within(handles, limit, &timed_out, || work(&check));
        match r {
            // A PostgreSQL source keeps the limit on the server, which may
            // cancel its query a moment before the watchdog wakes.
            Err(_) if timed_out.load(Ordering::SeqCst) || start.elapsed() >= limit => {
                Err(expired())
            }
            r => r,
        }
    }

    /// `check`: as for `sync_on`.
    fn delete_on(
        &self,
        conn: &mut Connection,
        id: &str,
        by: Option<Entity>,
        check: &dyn Fn() -> Result<(), LuError>,
    ) -> Result<bool, LuError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let deleted_before = match by {
            Some(e) if e.again => {
                schema::deleted_by(&tx, id, e.batch, e.seq).map_err(|e| self.err(e))?
            }
            _ => false,
        };
        let mut n = 0;
        for table in schema::all_tables(&tx).map_err(|e| self.err(e))? {
            let sql = format!(
                "DELETE FROM {} WHERE {} = ?1",
                schema::ident(&table),
                schema::ident(schema::IID)
            );
            n += tx.execute(&sql, [id]).map_err(|e| self.err(e))?;
        }
        n += tx
            .execute("DELETE FROM __instances WHERE id = ?1", [id])
            .map_err(|e| self.err(e))?;
        if n > 0
            && let Some(e) = by
        {
            schema::record_delete(&tx, id, e.batch, e.seq).map_err(|e| self.err(e))?;
        }
        check()?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n > 0 || deleted_before)
    }

    /// `FROM FABRIC`: hands `f` the ids of the instances in the store, in
    /// id order (as text, byte by byte: `10` before `9`), until it returns
    /// `Break`. Returns how many ids `f` was given.
    ///
    /// Ids are read a page at a time, each page a short read: a batch that
    /// syncs the very instances it lists must not hold a read transaction
    /// open for its whole run, or the WAL could not be checkpointed and
    /// would grow without bound. So the list is not one snapshot: an id
    /// added while it is read may be listed if it sorts after the page
    /// being read.
    pub fn for_each_instance(
        &self,
        mut f: impl FnMut(String) -> ControlFlow<()>,
    ) -> Result<u64, LuError> {
        const PAGE: i64 = 1000;
        let conn = self.conn()?;
        let mut last: Option<String> = None;
        let mut count = 0;
        loop {
            let page = {
                let read = || -> rusqlite::Result<Vec<String>> {
                    match &last {
                        None => conn
                            .prepare_cached("SELECT id FROM __instances ORDER BY id LIMIT ?1")?
                            .query_map([PAGE], |r| r.get(0))?
                            .collect(),
                        Some(after) => conn
                            .prepare_cached(
                                "SELECT id FROM __instances WHERE id > ?1 ORDER BY id LIMIT ?2",
                            )?
                            .query_map(rusqlite::params![after, PAGE], |r| r.get(0))?
                            .collect(),
                    }
                };
                read().map_err(|e| self.err(e))?
            };
            let full = page.len() as i64 == PAGE;
            last = page.last().cloned();
            for id in page {
                count += 1;
                if f(id).is_break() {
                    return Ok(count);
                }
            }
            if !full {
                return Ok(count);
            }
        }
    }

    /// `GET LU.id`: the instance's rows, table by table in the LU's order,
    /// each under its stored columns, rows in store order; `None` when the
    /// instance is not in the store. A table the file does not have yet
    /// (no instance has written it) comes back with no columns.
    pub fn get(&self, lu: &LuDef, id: &str) -> Result<Option<Vec<InstanceTable>>, LuError> {
        check_table_names(lu)?;
        let mut conn = self.conn()?;
        // One read transaction: every table from the same commit.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| self.err(e))?;
        let read = || -> rusqlite::Result<Option<Vec<InstanceTable>>> {
            let mut any_rows = false;
            let mut out = Vec::with_capacity(lu.tables.len());
            for t in &lu.tables {
                let columns = schema::columns(&tx, &t.name)?;
                let mut rows = Vec::new();
                if let Some(columns) = &columns {
                    for (_, row) in sync::read_rows(&tx, &t.name, columns, id)? {
                        any_rows = true;
                        rows.push(row);
                    }
                }
                out.push(InstanceTable {
                    name: t.name.clone(),
                    columns: columns.unwrap_or_default(),
                    rows,
                });
            }
            let present = any_rows || schema::marked(&tx, id)?;
            Ok(present.then_some(out))
        };
        let out = read().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// A connection from the pool, or a new one when all are in use.
    fn conn(&self) -> Result<Lease<'_>, LuError> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => schema::connect(&self.path).map_err(|e| self.err(e))?,
        };
        Ok(Lease {
            store: self,
            conn: Some(conn),
        })
    }

    fn err(&self, source: rusqlite::Error) -> LuError {
        LuError::Sqlite {
            lu: self.lu.clone(),
            path: self.path.clone(),
            source,
        }
    }
}

/// A pooled connection, back in the pool when dropped, unless it was left
/// inside a transaction (a rollback that failed): that one is closed.
struct Lease<'s> {
    store: &'s LuStore,
    conn: Option<Connection>,
}

impl Deref for Lease<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take().filter(Connection::is_autocommit) {
            self.store
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}

/// `GET Customer.'42'`: the instance's tables as the store holds them
/// (see [`LuStore::get`]); printing them is the caller's.
///
/// An instance not in the store (or an LU never synced: no file is created
/// for a look) is an error that says how to sync it.
pub fn get_instance(home: &Path, lu: &LuDef, id: &str) -> Result<Vec<InstanceTable>, LuError> {
    let not_in_store = || LuError::NotInStore {
        lu: lu.name.clone(),
        id: id.to_string(),
    };
    if !schema::path(home, &lu.name)?.exists() {
        return Err(not_in_store());
    }
    let store = LuStore::open(home, lu)?;
    store.get(lu, id)?.ok_or_else(not_in_store)
}
