//! The catalog tables: interfaces, logical units with their tables, and
//! instance groups (SPEC §3). Names are stored as written and looked up
//! without regard to case.

use super::SqliteStore;
use crate::store::catalog::*;
use crate::store::{Result, StoreError};
use rusqlite::{OptionalExtension, params};

impl CatalogStore for SqliteStore {
    fn create_interface(&self, def: &InterfaceDef, or_replace: bool) -> Result<()> {
        if !or_replace && self.find_interface(&def.name)?.is_some() {
            return Err(StoreError::Exists {
                kind: "interface",
                name: def.name.clone(),
            });
        }
        self.conn()
            .execute(
                "INSERT INTO interfaces (name, kind, location, options, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                     location = excluded.location, options = excluded.options,
                     created_at = excluded.created_at",
                params![
                    def.name,
                    def.kind.keyword(),
                    def.location,
                    def.options(),
                    def.created_at
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn find_interface(&self, name: &str) -> Result<Option<InterfaceDef>> {
        self.conn()
            .query_row(
                "SELECT name, kind, location, options, created_at FROM interfaces WHERE name = ?1",
                [name],
                |r| {
                    let options: String = r.get(3)?;
                    Ok(InterfaceDef::from_stored(
                        r.get(0)?,
                        &r.get::<_, String>(1)?,
                        r.get(2)?,
                        &options,
                        r.get(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The interface, or "no interface named X (did you mean Y?)".
    fn interface(&self, name: &str) -> Result<InterfaceDef> {
        match self.find_interface(name)? {
            Some(d) => Ok(d),
            None => Err(self.not_found(
                "interface",
                name,
                self.names("SELECT name FROM interfaces")?,
            )),
        }
    }

    fn interfaces(&self) -> Result<Vec<InterfaceDef>> {
        self.names("SELECT name FROM interfaces ORDER BY name")?
            .iter()
            .map(|n| self.interface(n))
            .collect()
    }

    fn drop_interface(&self, name: &str) -> Result<()> {
        let def = self.interface(name)?;
        let users: Vec<String> = {
            let mut st = self
                .conn()
                .prepare(
                    "SELECT 'LU ' || name FROM lus WHERE interface = ?1
                     UNION ALL SELECT 'instance group ' || lu || '.' || name
                     FROM instance_groups WHERE interface = ?1",
                )
                .map_err(|e| self.err(e))?;
            st.query_map([&def.name], |r| r.get(0))
                .map_err(|e| self.err(e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| self.err(e))?
        };
        if let Some(user) = users.into_iter().next() {
            return Err(StoreError::InUse {
                kind: "interface",
                name: def.name,
                user,
            });
        }
        self.conn()
            .execute("DELETE FROM interfaces WHERE name = ?1", [&def.name])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Creates (or replaces) an LU and its tables in one transaction.
    /// Replacing keeps the name as the LU was first created: names ignore
    /// case, and the LU's data file is named after it
    /// (`CREATE OR REPLACE LU CUSTOMER` replaces LU `Customer`, whose data
    /// stays in `lu/Customer.db`).
    fn create_lu(&self, def: &LuDef, or_replace: bool) -> Result<()> {
        let existing = self.find_lu(&def.name)?;
        if !or_replace && existing.is_some() {
            return Err(StoreError::Exists {
                kind: "LU",
                name: def.name.clone(),
            });
        }
        let renamed;
        let def = match existing {
            Some(old) if old.name != def.name => {
                renamed = LuDef {
                    name: old.name,
                    ..def.clone()
                };
                &renamed
            }
            _ => def,
        };
        let tx = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.err(e))?;
        let write = || -> rusqlite::Result<()> {
            // Replacing keeps the LU's groups: only its definition changes.
            tx.execute("DELETE FROM lu_tables WHERE lu = ?1", [&def.name])?;
            tx.execute(
                "INSERT INTO lus (name, interface, root_sql, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET name = excluded.name,
                     interface = excluded.interface, root_sql = excluded.root_sql,
                     created_at = excluded.created_at",
                params![def.name, def.interface, def.root_sql, def.created_at],
            )?;
            for (k, t) in def.tables.iter().enumerate() {
                tx.execute(
                    "INSERT INTO lu_tables (lu, position, name, key_columns, sql) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![def.name, k as i64, t.name, t.stored_key(), t.sql],
                )?;
            }
            Ok(())
        };
        write().map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn find_lu(&self, name: &str) -> Result<Option<LuDef>> {
        let head = self
            .conn()
            .query_row(
                "SELECT name, interface, root_sql, created_at FROM lus WHERE name = ?1",
                [name],
                |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((name, interface, root_sql, created_at)) = head else {
            return Ok(None);
        };
        let mut st = self
            .conn()
            .prepare("SELECT name, key_columns, sql FROM lu_tables WHERE lu = ?1 ORDER BY position")
            .map_err(|e| self.err(e))?;
        let tables = st
            .query_map([&name], |r| {
                let key: String = r.get(1)?;
                Ok(LuTableDef::from_stored(r.get(0)?, &key, r.get(2)?))
            })
            .map_err(|e| self.err(e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))?;
        Ok(Some(LuDef {
            name,
            interface,
            root_sql,
            tables,
            created_at,
        }))
    }

    /// The LU, or "no LU named Custmer (did you mean Customer?)".
    fn lu(&self, name: &str) -> Result<LuDef> {
        match self.find_lu(name)? {
            Some(d) => Ok(d),
            None => Err(self.not_found("LU", name, self.names("SELECT name FROM lus")?)),
        }
    }

    fn lus(&self) -> Result<Vec<LuDef>> {
        self.names("SELECT name FROM lus ORDER BY name")?
            .iter()
            .map(|n| self.lu(n))
            .collect()
    }

    /// Drops the LU, its tables and its instance groups, unless a live
    /// process runs a batch that uses the LU's data: its target LU
    /// (`FROM FABRIC` reads the LU store) or the LU its `sync_instance` /
    /// `delete_instance` writes. Then nothing is dropped and that batch is
    /// returned. The look and the drop are one IMMEDIATE transaction, so a
    /// batch cannot take its LU between them.
    fn drop_lu_unless_in_use(&self, name: &str) -> Result<Option<LuUser>> {
        let def = self.lu(name)?;
        let tx = rusqlite::Transaction::new_unchecked(
            self.conn(),
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| self.err(e))?;
        let users = {
            let mut st = tx
                .prepare(
                    "SELECT bid, lu, fabric_command, owner_node, owner_pid, heartbeat_at
                     FROM batches WHERE owner_node IS NOT NULL
                     AND status NOT IN ('DONE', 'FAILED', 'CANCELLED')",
                )
                .map_err(|e| self.err(e))?;
            st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(5)?,
                    LuUser {
                        bid: r.get(0)?,
                        owner_node: r.get(3)?,
                        owner_pid: r.get(4)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?
        };
        for (lu, fabric_command, heartbeat_at, user) in users {
            if user.holds(&def.name, &lu, &fabric_command, heartbeat_at.as_deref()) {
                return Ok(Some(user));
            }
        }
        tx.execute("DELETE FROM lus WHERE name = ?1", [&def.name])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(None)
    }

    fn create_group(&self, def: &GroupDef, or_replace: bool) -> Result<()> {
        let lu = self.lu(&def.lu)?;
        if !or_replace && self.find_group(&lu.name, &def.name)?.is_some() {
            return Err(StoreError::Exists {
                kind: "instance group",
                name: format!("{}.{}", lu.name, def.name),
            });
        }
        self.conn()
            .execute(
                "INSERT INTO instance_groups (lu, name, interface, sql, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (lu, name) DO UPDATE SET name = excluded.name,
                     interface = excluded.interface, sql = excluded.sql, created_at = excluded.created_at",
                params![lu.name, def.name, def.interface, def.sql, def.created_at],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn find_group(&self, lu: &str, name: &str) -> Result<Option<GroupDef>> {
        self.conn()
            .query_row(
                "SELECT lu, name, interface, sql, created_at FROM instance_groups WHERE lu = ?1 AND name = ?2",
                [lu, name],
                |r| {
                    Ok(GroupDef {
                        lu: r.get(0)?,
                        name: r.get(1)?,
                        interface: r.get(2)?,
                        sql: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The group, or "no instance group named Customer.vpi (did you mean ...)".
    fn group(&self, lu: &str, name: &str) -> Result<GroupDef> {
        let lu = self.lu(lu)?;
        match self.find_group(&lu.name, name)? {
            Some(g) => Ok(g),
            None => {
                let all: Vec<String> = self
                    .groups(Some(&lu.name))?
                    .iter()
                    .map(GroupDef::full_name)
                    .collect();
                Err(self.not_found("instance group", &format!("{}.{name}", lu.name), all))
            }
        }
    }

    fn groups(&self, lu: Option<&str>) -> Result<Vec<GroupDef>> {
        let lu = match lu {
            Some(n) => Some(self.lu(n)?.name),
            None => None,
        };
        let mut st = self
            .conn()
            .prepare(
                "SELECT lu, name FROM instance_groups WHERE ?1 IS NULL OR lu = ?1 ORDER BY lu, name",
            )
            .map_err(|e| self.err(e))?;
        let keys: Vec<(String, String)> = st
            .query_map([&lu], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))?;
        keys.iter()
            .map(|(l, n)| {
                self.find_group(l, n)?
                    .ok_or_else(|| self.not_found("instance group", n, Vec::new()))
            })
            .collect()
    }

    fn drop_group(&self, lu: &str, name: &str) -> Result<()> {
        let g = self.group(lu, name)?;
        self.conn()
            .execute(
                "DELETE FROM instance_groups WHERE lu = ?1 AND name = ?2",
                [&g.lu, &g.name],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl SqliteStore {
    fn not_found(&self, kind: &'static str, name: &str, all: Vec<String>) -> StoreError {
        not_found(kind, name, &all)
    }

    fn names(&self, sql: &str) -> Result<Vec<String>> {
        let mut st = self.conn().prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}
