//! The catalog (SPEC §3): interfaces, logical units with their tables, and
//! instance groups. Names are stored as written and looked up without
//! regard to case. [`CatalogStore`] is the seam.

use super::Result;
use crate::catalog::InterfaceKind;

/// An interface as the catalog keeps it; `InterfaceDef::source` (in
/// `crate::source`, which opens it) is its data-source view.
#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceDef {
    pub name: String,
    pub kind: InterfaceKind,
    /// An absolute path (SQLITE, CSV) or a URL (POSTGRES).
    pub location: String,
    /// CSV: the first line names the columns.
    pub header: bool,
    /// CSV: the field separator.
    pub delimiter: char,
    /// CSV: column types inferred from the values (false: all TEXT).
    pub types: bool,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LuDef {
    pub name: String,
    pub interface: String,
    pub root_sql: String,
    pub tables: Vec<LuTableDef>,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LuTableDef {
    pub name: String,
    /// Row identity; empty means the first column.
    pub key: Vec<String>,
    pub sql: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupDef {
    pub lu: String,
    pub name: String,
    /// `None`: the LU's interface.
    pub interface: Option<String>,
    pub sql: String,
    pub created_at: String,
}

/// The current time as stored: RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    stamp(chrono::Utc::now())
}

/// A time as the store keeps it: RFC 3339 UTC, milliseconds.
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A batch that a live process runs on an LU's data (see
/// [`CatalogStore::drop_lu_unless_in_use`]).
#[derive(Debug)]
pub struct LuUser {
    pub bid: String,
    pub owner_node: String,
    pub owner_pid: Option<i64>,
}

/// The LU a stored per-entity command writes: `sync_instance LU.?` and
/// `delete_instance LU.?` (the canonical text the store keeps).
pub(crate) fn command_lu(fabric_command: &str) -> Option<&str> {
    let mut words = fabric_command.split_whitespace();
    let kind = words.next()?;
    if !kind.eq_ignore_ascii_case("sync_instance") && !kind.eq_ignore_ascii_case("delete_instance")
    {
        return None;
    }
    words.next()?.strip_suffix(".?")
}

/// Whether a batch whose stored `source` JSON is `source` reads its target
/// LU's data for its ids: its ROOT query, an instance group, FROM FABRIC.
/// A batch whose ids come from a list, FROM ... USING, STDIN or a file
/// does not, and may name an LU that is not defined (an ad-hoc batch).
pub(crate) fn source_uses_lu(source: &str) -> bool {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(source) else {
        return true;
    };
    match json["kind"].as_str() {
        Some("fabric") => true,
        Some("query") => !json["origin"]
            .as_str()
            .is_some_and(|o| o.starts_with("FROM ")),
        Some(_) => false,
        None => true,
    }
}

/// The catalog's reads and writes.
pub trait CatalogStore {
    fn create_interface(&self, def: &InterfaceDef, or_replace: bool) -> Result<()>;

    fn find_interface(&self, name: &str) -> Result<Option<InterfaceDef>>;

    /// The interface, or "no interface named X (did you mean Y?)".
    fn interface(&self, name: &str) -> Result<InterfaceDef>;

    fn interfaces(&self) -> Result<Vec<InterfaceDef>>;

    fn drop_interface(&self, name: &str) -> Result<()>;

    /// Creates (or replaces) an LU and its tables in one transaction.
    /// Replacing keeps the name as the LU was first created: names ignore
    /// case, and the LU's data file is named after it
    /// (`CREATE OR REPLACE LU CUSTOMER` replaces LU `Customer`, whose data
    /// stays in `lu/Customer.db`).
    fn create_lu(&self, def: &LuDef, or_replace: bool) -> Result<()>;

    fn find_lu(&self, name: &str) -> Result<Option<LuDef>>;

    /// The LU, or "no LU named Custmer (did you mean Customer?)".
    fn lu(&self, name: &str) -> Result<LuDef>;

    fn lus(&self) -> Result<Vec<LuDef>>;

    /// Drops the LU, its tables and its instance groups, unless a live
    /// process runs a batch that uses the LU's data: its target LU
    /// (`FROM FABRIC` reads the LU store) or the LU its `sync_instance` /
    /// `delete_instance` writes. Then nothing is dropped and that batch is
    /// returned. The look and the drop are one IMMEDIATE transaction, so a
    /// batch cannot take its LU between them.
    fn drop_lu_unless_in_use(&self, name: &str) -> Result<Option<LuUser>>;

    fn create_group(&self, def: &GroupDef, or_replace: bool) -> Result<()>;

    fn find_group(&self, lu: &str, name: &str) -> Result<Option<GroupDef>>;

    /// The group, or "no instance group named Customer.vpi (did you mean ...)".
    fn group(&self, lu: &str, name: &str) -> Result<GroupDef>;

    fn groups(&self, lu: Option<&str>) -> Result<Vec<GroupDef>>;

    fn drop_group(&self, lu: &str, name: &str) -> Result<()>;
}
