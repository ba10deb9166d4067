//! The catalog (SPEC §3): interfaces, logical units with their tables, and
//! instance groups. Names are stored as written and looked up without
//! regard to case. [`CatalogStore`] is the seam.

use super::{Result, StoreError};
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

impl InterfaceDef {
    /// The interface as the store keeps it: `kind` its keyword, `options`
    /// the JSON of [`InterfaceDef::options`]. An option missing (or the
    /// text no JSON) takes its default.
    pub fn from_stored(
        name: String,
        kind: &str,
        location: String,
        options: &str,
        created_at: String,
    ) -> InterfaceDef {
        let o: serde_json::Value = serde_json::from_str(options).unwrap_or_default();
        InterfaceDef {
            name,
            kind: stored_kind(kind),
            location,
            header: o["HEADER"].as_bool().unwrap_or(true),
            delimiter: o["DELIMITER"]
                .as_str()
                .and_then(|s| s.chars().next())
                .unwrap_or(','),
            // An interface made before TYPES existed: typed, as every
            // new one is by default.
            types: o["TYPES"].as_bool().unwrap_or(true),
            created_at,
        }
    }

    /// Its CSV options as the store keeps them: a JSON object.
    pub fn options(&self) -> String {
        serde_json::json!({
            "HEADER": self.header,
            "DELIMITER": self.delimiter.to_string(),
            "TYPES": self.types,
        })
        .to_string()
    }
}

/// The interface kind a store's `kind` column names (`SQLITE` for a text
/// that names none).
pub fn stored_kind(s: &str) -> InterfaceKind {
    InterfaceKind::ALL
        .into_iter()
        .find(|k| k.keyword() == s)
        .unwrap_or(InterfaceKind::Sqlite)
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

impl LuTableDef {
    /// The table as the store keeps it: `key` a JSON array of column
    /// names (none, when it is not one).
    pub fn from_stored(name: String, key: &str, sql: String) -> LuTableDef {
        LuTableDef {
            name,
            key: serde_json::from_str(key).unwrap_or_default(),
            sql,
        }
    }

    /// Its key columns as the store keeps them: a JSON array.
    pub fn stored_key(&self) -> String {
        serde_json::json!(self.key).to_string()
    }
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

impl GroupDef {
    /// `LU.group`, as messages name it.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.lu, self.name)
    }
}

/// "no LU named Custmer (did you mean Customer?)": nothing of `kind` is
/// named `name`; the suggestion is the closest of `all`.
pub fn not_found(kind: &'static str, name: &str, all: &[String]) -> StoreError {
    let suggestion = crate::typo::suggest(name, all.iter().map(String::as_str)).map(str::to_string);
    StoreError::NotFound {
        kind,
        name: name.to_string(),
        suggestion,
    }
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

impl LuUser {
    /// Whether this batch keeps LU `name` from being dropped: its owner is
    /// alive (its last heartbeat `heartbeat_at`), and `lu`, its target,
    /// or the LU its command `fabric_command` writes is `name` (names
    /// without regard to case).
    pub fn holds(
        &self,
        name: &str,
        lu: &str,
        fabric_command: &str,
        heartbeat_at: Option<&str>,
    ) -> bool {
        let uses = lu.eq_ignore_ascii_case(name)
            || command_lu(fabric_command).is_some_and(|l| l.eq_ignore_ascii_case(name));
        uses && crate::owner::alive(Some(self.owner_node.as_str()), self.owner_pid, heartbeat_at)
    }
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
