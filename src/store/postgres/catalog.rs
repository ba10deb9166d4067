//! The catalog tables on PostgreSQL (see [`crate::store::catalog`]):
//! interfaces, logical units with their tables, and instance groups.
//!
//! Names are compared without case by the columns' `batchsh_nocase`
//! collation, as SQLite's `COLLATE NOCASE` does. What SQLite's single
//! writer gives for free, a check and the write it guards, is one
//! statement here (`INSERT ... ON CONFLICT`) or a row lock: two processes
//! creating one name at once get one "exists already" between them, and
//! an LU is not dropped while a batch takes it.

use super::{PgStore, TxError};
use crate::store::catalog::*;
use crate::store::{Result, StoreError};
use postgres::{GenericClient, Row};

/// The order of `column`'s names that SQLite's `NOCASE` gives (ASCII
/// letters folded, then bytes), so that listings, and did-you-mean among
/// equally close names, come out alike on both stores.
fn nocase_order(column: &str) -> String {
    format!("lower({column} COLLATE \"C\") COLLATE \"C\"")
}

impl CatalogStore for PgStore {
    fn create_interface(&self, def: &InterfaceDef, or_replace: bool) -> Result<()> {
        // Replacing takes the name as now written, as SQLite's upsert does.
        let on_conflict = if or_replace {
            "DO UPDATE SET name = excluded.name, kind = excluded.kind,
                 location = excluded.location, options = excluded.options,
                 created_at = excluded.created_at"
        } else {
            "DO NOTHING"
        };
        let written = self
            .client()
            .execute(
                &format!(
                    "INSERT INTO interfaces (name, kind, location, options, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) {on_conflict}"
                ),
                &[
                    &def.name,
                    &def.kind.keyword(),
                    &def.location,
                    &def.options(),
                    &def.created_at,
                ],
            )
            .map_err(|e| self.err(e))?;
        if written == 0 {
            return Err(StoreError::Exists {
                kind: "interface",
                name: def.name.clone(),
            });
        }
        Ok(())
    }

    fn find_interface(&self, name: &str) -> Result<Option<InterfaceDef>> {
        let row = self
            .client()
            .query_opt(
                "SELECT name, kind, location, options, created_at FROM interfaces WHERE name = $1",
                &[&name],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| {
            let options: String = r.get(3);
            InterfaceDef::from_stored(r.get(0), r.get(1), r.get(2), &options, r.get(4))
        }))
    }

    fn interface(&self, name: &str) -> Result<InterfaceDef> {
        match self.find_interface(name)? {
            Some(d) => Ok(d),
            None => Err(self.not_found("interface", name, Names::Interfaces)),
        }
    }

    fn interfaces(&self) -> Result<Vec<InterfaceDef>> {
        self.names(Names::Interfaces)?
            .iter()
            .map(|n| self.interface(n))
            .collect()
    }

    /// Drops the interface unless an LU or an instance group reads it; the
    /// interface's row is locked from the look to the drop.
    fn drop_interface(&self, name: &str) -> Result<()> {
        self.tx(|tx| {
            let Some(row) = tx.query_opt(
                "SELECT name FROM interfaces WHERE name = $1 FOR UPDATE",
                &[&name],
            )?
            else {
                return Err(self.not_found_in(tx, "interface", name, Names::Interfaces)?);
            };
            let name: String = row.get(0);
            // LUs first, as SQLite names them.
            let user = tx.query_opt(
                "SELECT who FROM (
                     SELECT 0 AS k, 'LU ' || name AS who, created_at FROM lus
                     WHERE interface = $1
                     UNION ALL SELECT 1, 'instance group ' || lu || '.' || name, created_at
                     FROM instance_groups WHERE interface = $1) AS users
                 ORDER BY k, created_at LIMIT 1",
                &[&name],
            )?;
            if let Some(user) = user {
                return Err(TxError::Store(StoreError::InUse {
                    kind: "interface",
                    name,
                    user: user.get(0),
                }));
            }
            tx.execute("DELETE FROM interfaces WHERE name = $1", &[&name])?;
            Ok(())
        })
    }

    /// Creates (or replaces) an LU and its tables in one transaction; the
    /// upsert locks the LU's row, so that two replacements do not mix
    /// their tables. Replacing keeps the name as the LU was first created.
    fn create_lu(&self, def: &LuDef, or_replace: bool) -> Result<()> {
        let on_conflict = if or_replace {
            "DO UPDATE SET interface = excluded.interface, root_sql = excluded.root_sql,
                 created_at = excluded.created_at"
        } else {
            "DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO lus (name, interface, root_sql, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) {on_conflict} RETURNING name"
        );
        self.tx(|tx| {
            let Some(row) = tx.query_opt(
                &sql,
                &[&def.name, &def.interface, &def.root_sql, &def.created_at],
            )?
            else {
                return Err(TxError::Store(StoreError::Exists {
                    kind: "LU",
                    name: def.name.clone(),
                }));
            };
            let name: String = row.get(0);
            // Replacing keeps the LU's groups: only its definition changes.
            tx.execute("DELETE FROM lu_tables WHERE lu = $1", &[&name])?;
            let insert = tx.prepare(
                "INSERT INTO lu_tables (lu, position, name, key_columns, sql)
                 VALUES ($1, $2, $3, $4, $5)",
            )?;
            for (k, t) in def.tables.iter().enumerate() {
                tx.execute(
                    &insert,
                    &[&name, &(k as i64), &t.name, &t.stored_key(), &t.sql],
                )?;
            }
            Ok(())
        })
    }

    fn find_lu(&self, name: &str) -> Result<Option<LuDef>> {
        // One snapshot for the LU and its tables, as a replacement may
        // commit between two reads.
        self.tx(|tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            let Some(head) = tx.query_opt(
                "SELECT name, interface, root_sql, created_at FROM lus WHERE name = $1",
                &[&name],
            )?
            else {
                return Ok(None);
            };
            let name: String = head.get(0);
            let tables = tx
                .query(
                    "SELECT name, key_columns, sql FROM lu_tables WHERE lu = $1 ORDER BY position",
                    &[&name],
                )?
                .iter()
                .map(|r| LuTableDef::from_stored(r.get(0), r.get(1), r.get(2)))
                .collect();
            Ok(Some(LuDef {
                name,
                interface: head.get(1),
                root_sql: head.get(2),
                tables,
                created_at: head.get(3),
            }))
        })
    }

    fn lu(&self, name: &str) -> Result<LuDef> {
        match self.find_lu(name)? {
            Some(d) => Ok(d),
            None => Err(self.not_found("LU", name, Names::Lus)),
        }
    }

    fn lus(&self) -> Result<Vec<LuDef>> {
        self.names(Names::Lus)?.iter().map(|n| self.lu(n)).collect()
    }

    /// Drops the LU, its tables and its instance groups, unless a live
    /// process runs a batch that uses the LU's data; then nothing is
    /// dropped and that batch is returned. The LU's row is locked from the
    /// look to the drop (a batch that takes its LU reads that row).
    fn drop_lu_unless_in_use(&self, name: &str) -> Result<Option<LuUser>> {
        self.tx(|tx| {
            let Some(row) =
                tx.query_opt("SELECT name FROM lus WHERE name = $1 FOR UPDATE", &[&name])?
            else {
                return Err(self.not_found_in(tx, "LU", name, Names::Lus)?);
            };
            let name: String = row.get(0);
            let users = tx.query(
                "SELECT bid, lu, fabric_command, owner_node, owner_pid, heartbeat_at
                 FROM batches WHERE owner_node IS NOT NULL
                 AND status NOT IN ('DONE', 'FAILED', 'CANCELLED')
                 ORDER BY batch_no",
                &[],
            )?;
            // Whether the owner beats is judged on the database's clock.
            let skew = self.skew(tx)?;
            for r in users {
                let (lu, fabric_command): (&str, &str) = (r.get(1), r.get(2));
                let heartbeat_at = r
                    .get::<_, Option<&str>>(5)
                    .map(|t| super::nodes::moved(t, skew));
                let user = LuUser {
                    bid: r.get(0),
                    owner_node: r.get(3),
                    owner_pid: r.get(4),
                };
                if user.holds(&name, lu, fabric_command, heartbeat_at.as_deref()) {
                    return Ok(Some(user));
                }
            }
            tx.execute("DELETE FROM lus WHERE name = $1", &[&name])?;
            Ok(None)
        })
    }

    /// Creates (or replaces) an instance group of an LU, whose row is read
    /// under a share lock so that it is not dropped meanwhile.
    fn create_group(&self, def: &GroupDef, or_replace: bool) -> Result<()> {
        let on_conflict = if or_replace {
            "DO UPDATE SET name = excluded.name, interface = excluded.interface,
                 sql = excluded.sql, created_at = excluded.created_at"
        } else {
            "DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO instance_groups (lu, name, interface, sql, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (lu, name) {on_conflict}"
        );
        self.tx(|tx| {
            let Some(lu) =
                tx.query_opt("SELECT name FROM lus WHERE name = $1 FOR SHARE", &[&def.lu])?
            else {
                return Err(self.not_found_in(tx, "LU", &def.lu, Names::Lus)?);
            };
            let lu: String = lu.get(0);
            let written = tx.execute(
                &sql,
                &[&lu, &def.name, &def.interface, &def.sql, &def.created_at],
            )?;
            if written == 0 {
                return Err(TxError::Store(StoreError::Exists {
                    kind: "instance group",
                    name: format!("{lu}.{}", def.name),
                }));
            }
            Ok(())
        })
    }

    fn find_group(&self, lu: &str, name: &str) -> Result<Option<GroupDef>> {
        let row = self
            .client()
            .query_opt(
                "SELECT lu, name, interface, sql, created_at FROM instance_groups
                 WHERE lu = $1 AND name = $2",
                &[&lu, &name],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| group_at(&r)))
    }

    fn group(&self, lu: &str, name: &str) -> Result<GroupDef> {
        let lu = self.lu(lu)?;
        match self.find_group(&lu.name, name)? {
            Some(g) => Ok(g),
            None => Err(self.no_group(&lu.name, name)?),
        }
    }

    fn groups(&self, lu: Option<&str>) -> Result<Vec<GroupDef>> {
        let lu = match lu {
            Some(n) => Some(self.lu(n)?.name),
            None => None,
        };
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT lu, name, interface, sql, created_at FROM instance_groups
                     WHERE $1::text IS NULL OR lu = $1 ORDER BY {}, {}",
                    nocase_order("lu"),
                    nocase_order("name")
                ),
                &[&lu],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(group_at).collect())
    }

    fn drop_group(&self, lu: &str, name: &str) -> Result<()> {
        let lu = self.lu(lu)?;
        let gone = self
            .client()
            .execute(
                "DELETE FROM instance_groups WHERE lu = $1 AND name = $2",
                &[&lu.name, &name],
            )
            .map_err(|e| self.err(e))?;
        if gone == 0 {
            return Err(self.no_group(&lu.name, name)?);
        }
        Ok(())
    }
}

/// Which names a did-you-mean picks from.
#[derive(Clone, Copy)]
enum Names {
    Interfaces,
    Lus,
}

impl Names {
    fn sql(self) -> String {
        let table = match self {
            Names::Interfaces => "interfaces",
            Names::Lus => "lus",
        };
        format!("SELECT name FROM {table} ORDER BY {}", nocase_order("name"))
    }
}

impl PgStore {
    fn names(&self, which: Names) -> Result<Vec<String>> {
        names_on(&mut *self.client(), which).map_err(|e| self.err(e))
    }

    /// "no LU named Custmer (did you mean Customer?)".
    fn not_found(&self, kind: &'static str, name: &str, which: Names) -> StoreError {
        match self.names(which) {
            Ok(all) => not_found(kind, name, &all),
            Err(e) => e,
        }
    }

    /// [`PgStore::not_found`] inside a transaction.
    fn not_found_in(
        &self,
        tx: &mut impl GenericClient,
        kind: &'static str,
        name: &str,
        which: Names,
    ) -> std::result::Result<TxError, TxError> {
        let all = names_on(tx, which)?;
        Ok(TxError::Store(not_found(kind, name, &all)))
    }

    /// "no instance group named Customer.vpi (did you mean Customer.vip?)",
    /// `lu` being the LU's name as stored.
    fn no_group(&self, lu: &str, name: &str) -> Result<StoreError> {
        let all: Vec<String> = self
            .groups(Some(lu))?
            .iter()
            .map(GroupDef::full_name)
            .collect();
        Ok(not_found("instance group", &format!("{lu}.{name}"), &all))
    }
}

fn names_on(
    on: &mut impl GenericClient,
    which: Names,
) -> std::result::Result<Vec<String>, postgres::Error> {
    Ok(on
        .query(&which.sql(), &[])?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

fn group_at(r: &Row) -> GroupDef {
    GroupDef {
        lu: r.get(0),
        name: r.get(1),
        interface: r.get(2),
        sql: r.get(3),
        created_at: r.get(4),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fresh;
    use super::*;
    use crate::store::contract::catalog::{group, iface, lu};

    /// The same statements on SQLite and on PostgreSQL give the same
    /// answers and the same errors, word for word.
    #[test]
    fn errors_and_suggestions_are_sqlites() {
        let Some(s) = fresh("errors_and_suggestions_are_sqlites") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let lite = crate::store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let script = |c: &dyn CatalogStore| -> Vec<String> {
            let said = |r: Result<String>| match r {
                Ok(v) => v,
                Err(e) => format!("error: {e}"),
            };
            let unit = |r: Result<()>| said(r.map(|()| "ok".to_string()));
            let mut out = Vec::new();
            for n in ["crm", "Crm2", "billing", "CRM_old"] {
                out.push(unit(c.create_interface(&iface(n), false)));
            }
            out.push(unit(c.create_interface(&iface("CRM"), false)));
            out.push(unit(c.create_interface(&iface("CRM2"), true)));
            for n in ["crn", "crm3", "bill", "xyz", "crm_ol"] {
                out.push(said(c.interface(n).map(|i| i.name)));
            }
            out.push(unit(c.create_lu(&lu("Customer", "crm"), false)));
            out.push(unit(c.create_lu(&lu("Orders", "CRM2"), false)));
            out.push(unit(c.create_lu(&lu("customer", "crm"), false)));
            out.push(unit(c.create_lu(&lu("CUSTOMER", "billing"), true)));
            for n in ["Custmer", "order", "ORDERS", "nothing"] {
                out.push(said(c.lu(n).map(|l| format!("{} {}", l.name, l.interface))));
            }
            out.push(unit(c.create_group(&group("customer", "vip"), false)));
            out.push(unit(c.create_group(&group("Customer", "VIP"), false)));
            out.push(unit(c.create_group(&group("Nope", "vip"), false)));
            out.push(unit(c.create_group(&group("orders", "late"), false)));
            for (l, g) in [("CUSTOMER", "vpi"), ("orders", "lat"), ("Nop", "vip")] {
                out.push(said(c.group(l, g).map(|g| format!("{}.{}", g.lu, g.name))));
            }
            out.push(said(c.groups(None).map(|gs| {
                let names: Vec<String> =
                    gs.iter().map(|g| format!("{}.{}", g.lu, g.name)).collect();
                names.join(",")
            })));
            out.push(said(c.interfaces().map(|is| {
                let names: Vec<String> = is.iter().map(|i| i.name.clone()).collect();
                names.join(",")
            })));
            out.push(unit(c.drop_interface("billing")));
            out.push(unit(c.drop_interface("crm2")));
            out.push(unit(c.drop_interface("crm_old")));
            out.push(unit(c.drop_interface("crm_old")));
            out.push(unit(c.drop_group("customer", "vpi")));
            out.push(unit(c.drop_group("customer", "VIP")));
            out.push(said(
                c.drop_lu_unless_in_use("Ordrs").map(|u| format!("{u:?}")),
            ));
            out.push(said(
                c.drop_lu_unless_in_use("ORDERS").map(|u| format!("{u:?}")),
            ));
            out.push(unit(c.drop_interface("crm2")));
            out
        };
        let on_pg = script(&*s);
        assert_eq!(on_pg, script(&lite));
        assert!(
            on_pg.iter().any(|l| l.contains("did you mean")),
            "{on_pg:?}"
        );
    }

    /// Processes creating one LU at once, each on a store of its own: one
    /// creates it, the others are told it exists.
    #[test]
    fn of_creations_of_one_name_at_once_one_succeeds() {
        let Some(s) = fresh("of_creations_of_one_name_at_once_one_succeeds") else {
            return;
        };
        let results = super::super::nodes::race(&s.url, 4, |store, k| {
            let name = ["customer", "Customer", "CUSTOMER", "cUSTOMER"][k];
            store.create_lu(&lu(name, "crm"), false)
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_ok() || matches!(r, Err(StoreError::Exists { .. })))
        );
        assert_eq!(s.lu("CUSTOMER").unwrap().tables.len(), 2);
    }
}
