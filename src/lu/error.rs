//! Errors of the LU store: each names the LU, and the instance and the table
//! when there is one.

use crate::source::{IdError, SourceError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LuError {
    #[error("LU name {lu:?} cannot name a file; LU names are letters, digits and _")]
    BadLuName { lu: String },
    #[error(
        "LU {lu}: table name {table} is kept for the LU store's own use (names beginning \
         with __ or sqlite_); rename the table"
    )]
    ReservedTable { lu: String, table: String },
    #[error("LU {lu} has two tables named {table} (table names ignore case); rename one")]
    DuplicateTable { lu: String, table: String },
    #[error("cannot create the folder {} for the store of LU {lu}: {source}", path.display())]
    CreateDir {
        lu: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not a batchsh LU store ({reason}); it was left untouched; move it away \
         and LU {lu} starts a new one",
        path.display()
    )]
    NotAnLuStore {
        lu: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{} was written by a newer batchsh (LU store version {found}, this batchsh knows \
         up to {supported}); it was left untouched; upgrade batchsh",
        path.display()
    )]
    Newer {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the store of LU {lu} ({}): {source}", path.display())]
    Sqlite {
        lu: String,
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("LU {lu}: {source}")]
    Id { lu: String, source: IdError },
    #[error("cannot sync the log of LU {lu}'s store ({}) to disk: {source}", path.display())]
    Sync {
        lu: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// `ENTITY_TIMEOUT` passed; the instance was left as it was.
    #[error("timed out after {} (LU {lu}; the instance was left as it was)", crate::ast::Duration(.limit.as_millis() as u64))]
    TimedOut {
        lu: String,
        limit: std::time::Duration,
    },
    #[error("instance {id} of LU {lu}, table {table}: {source}")]
    Source {
        lu: String,
        id: String,
        table: String,
        /// Boxed: a source error is large, and this enum travels in every
        /// `Result` of the store.
        source: Box<SourceError>,
    },
    #[error("LU {lu}, table {table}: the query returns no columns; write a SELECT")]
    NoColumns { lu: String, table: String },
    #[error(
        "LU {lu}, table {table}: the query returns two columns named {column} (column \
         names ignore case); name them apart with AS"
    )]
    DuplicateColumn {
        lu: String,
        table: String,
        column: String,
    },
    #[error(
        "LU {lu}, table {table}: the query returns a column named {column}, a name the \
         LU store keeps for itself; rename it with AS"
    )]
    ReservedColumn {
        lu: String,
        table: String,
        column: String,
    },
    #[error(
        "LU {lu}, table {table}: KEY column {column} is not among the columns the query \
         returns ({})",
        columns.join(", ")
    )]
    KeyColumn {
        lu: String,
        table: String,
        column: String,
        columns: Vec<String>,
    },
    #[error(
        "instance {id} of LU {lu} is not in the LU store (sync it first: BATCH {lu}.({}) \
         FABRIC_COMMAND=\"sync_instance {lu}.?\")",
        string_literal(id)
    )]
    NotInStore { lu: String, id: String },
}

/// `'it''s'`: the id as the language writes a string.
fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
