//! Errors of the data-source layer: [`SourceError`] for an interface or a
//! query that cannot be used, [`IdError`] for one entity id that cannot be.

use std::fmt::Write;
use std::path::PathBuf;

/// Why an interface cannot be checked, opened or queried.
///
/// The interface variants name the interface and the path. The query
/// variants carry the SQL (clipped) but not the interface: a connection does
/// not know which interface it came from, and the caller that does adds it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A caller asked for the SQLite connection of a `POSTGRES`
    /// interface; [`super::open`] gives one of any kind.
    #[error("interface {interface}: a {kind} interface has no SQLite connection")]
    NotSqliteKind {
        interface: String,
        kind: &'static str,
    },
    #[error("interface {interface}: {source}")]
    Postgres {
        interface: String,
        source: crate::pg::PgError,
    },
    #[error(
        "interface {interface}: {} does not exist (a relative PATH is resolved \
         against the working directory of CREATE INTERFACE)",
        path.display()
    )]
    NotFound { interface: String, path: PathBuf },
    #[error("interface {interface}: cannot read {}: {io}", path.display())]
    Unreadable {
        interface: String,
        path: PathBuf,
        io: std::io::Error,
    },
    #[error(
        "interface {interface}: {} is a folder; an SQLITE interface's PATH must be \
         a database file",
        path.display()
    )]
    SqliteFolder { interface: String, path: PathBuf },
    #[error("interface {interface}: {} is {what}, not a file; {expected}", path.display())]
    NotAFile {
        interface: String,
        path: PathBuf,
        /// What it is instead: "a FIFO (named pipe)", "a socket"...
        what: &'static str,
        /// What the interface needs there.
        expected: &'static str,
    },
    #[error("interface {interface}: {} is not an SQLite database ({message})", path.display())]
    NotSqlite {
        interface: String,
        path: PathBuf,
        message: String,
    },
    #[error("interface {interface}: cannot open {}: {message}", path.display())]
    Open {
        interface: String,
        path: PathBuf,
        message: String,
    },
    #[error("interface {interface}: the folder {} holds no .csv file", path.display())]
    NoCsvFiles { interface: String, path: PathBuf },
    #[error(
        "interface {interface}: {} is empty; with HEADER=true its first line must \
         name the columns",
        path.display()
    )]
    EmptyCsv { interface: String, path: PathBuf },
    #[error(
        "interface {interface}: {} line {line}: {}, {} {expected}",
        path.display(),
        fields(*found),
        if *header { "the header has" } else { "the first row has" }
    )]
    CsvFields {
        interface: String,
        path: PathBuf,
        line: u64,
        found: usize,
        expected: usize,
        /// Whether `expected` comes from the header (`HEADER=true`) or from
        /// the first row.
        header: bool,
    },
    #[error(
        "interface {interface}: {} line {line}: the header names column {column} twice \
         (column names ignore case); rename one of them",
        path.display()
    )]
    DuplicateColumn {
        interface: String,
        path: PathBuf,
        line: u64,
        column: String,
    },
    #[error("interface {interface}: {} line {line}: {message}", path.display())]
    CsvRead {
        interface: String,
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "interface {interface}: {} line {line}: a quoted field opens here and is never \
         closed, so the rest of the file would be one field; close the quote (a quote \
         inside a quoted field is written twice, \"\")",
        path.display()
    )]
    UnclosedQuote {
        interface: String,
        path: PathBuf,
        /// The line of the opening quote.
        line: u64,
    },
    #[error(
        "interface {interface}: {} and {} would both be table {table} (table names \
         ignore case); rename one of the files",
        first.display(),
        second.display()
    )]
    TableClash {
        interface: String,
        table: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "interface {interface}: DELIMITER {} cannot separate fields; use one character \
         other than a double quote or a line break",
        std::ascii::escape_default(*delimiter)
    )]
    Delimiter { interface: String, delimiter: u8 },
    #[error("interface {interface}: cannot load {}: {message}", path.display())]
    CsvLoad {
        interface: String,
        path: PathBuf,
        message: String,
    },
    #[error("the query failed: {message} (query: {sql})")]
    Query { sql: String, message: String },
    #[error(
        "the query took longer than the statement_timeout of {ms} ms the interface's \
         connection has (the URL's options, or the role's or database's setting) and was \
         cancelled; make the query faster, or raise statement_timeout \
         (?options=-c%20statement_timeout%3D60000) (query: {sql})"
    )]
    TooSlow { sql: String, ms: i64 },
    /// `ENTITY_TIMEOUT` passed while the query ran.
    #[error("timed out after {}", crate::ast::Duration(.limit.as_millis() as u64))]
    TimedOut { limit: std::time::Duration },
    #[error("the query would change data; a source query must only read (query: {sql})")]
    NotReadOnly { sql: String },
    #[error("the text holds more than one statement; give one query (query: {sql})")]
    MultipleStatements { sql: String },
    /// A `$1` written in a query for PostgreSQL, whose parameters batchsh
    /// numbers itself.
    #[error("{0}")]
    Numbered(#[from] super::placeholders::Numbered),
    #[error("the statement returns no columns; write a SELECT (query: {sql})")]
    NoColumns { sql: String },
    #[error(
        "{}; a BATCH gives its USING query one value per ? with BIND_PARAMS='v1,v2' or \
         BIND_PARAMS_JSON='[\"v1\", 2]'",
        param_count(*expected, *given)
    )]
    ParamCount { expected: usize, given: usize },
    #[error(
        "the query uses {name}, which has no value here; {}{}",
        available_names(available),
        window_note(name)
    )]
    UnboundName {
        name: String,
        /// The names that do have a value, without their `:`.
        available: Vec<String>,
    },
    #[error(
        "BIND_PARAMS_JSON must be a JSON array of strings, numbers, booleans or null; \
         {found}"
    )]
    BindJson { found: String },
}

impl SourceError {
    /// Whether the error is the query text's own fault, whatever the data:
    /// it writes, holds more than one statement, returns no columns, or
    /// its parameters do not match the values given. A BATCH refuses such
    /// a query when it is planned; what the database says of a query (no
    /// such table) is the batch's to record when it runs (SPEC §11).
    pub fn is_query_text_fault(&self) -> bool {
        matches!(
            self,
            SourceError::NotReadOnly { .. }
                | SourceError::MultipleStatements { .. }
                | SourceError::NoColumns { .. }
                | SourceError::ParamCount { .. }
                | SourceError::UnboundName { .. }
                | SourceError::Numbered(_)
        )
    }

    /// A query error, with the SQL clipped so that a long query does not
    /// drown the message.
    pub(super) fn query(sql: &str, message: impl Into<String>) -> Self {
        SourceError::Query {
            sql: clip_sql(sql),
            message: message.into(),
        }
    }
}

/// The longest id, in bytes, an entity may have (SPEC §11).
pub const MAX_ID_BYTES: usize = 1024;

/// Why one row of an id query gives no usable entity id. The batch records
/// that entity as failed and goes on (SPEC §11).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the id is NULL")]
    Null,
    #[error("the id is not valid UTF-8: {}", hex_literal(.0, SHOWN_BYTES))]
    NotUtf8(Vec<u8>),
    #[error("the id is empty")]
    Empty,
    #[error("the id is {} bytes long; ids are at most {MAX_ID_BYTES} bytes", .0.len())]
    TooLong(String),
}

impl IdError {
    /// A printable id under which the failed entity can be recorded:
    /// `NULL`, all the bytes as an SQL blob literal (`x'ff00'`), the empty
    /// string, or the long id itself. With the error, it tells two bad ids
    /// apart (the error message may cut the bytes short; this does not),
    /// though a long id whose text is a blob literal has the same stand-in
    /// as the blob.
    pub fn stand_in(&self) -> String {
        match self {
            IdError::Null => "NULL".to_string(),
            IdError::NotUtf8(bytes) => hex_literal(bytes, usize::MAX),
            IdError::Empty => String::new(),
            IdError::TooLong(id) => id.clone(),
        }
    }
}

/// Checks the rules every entity id follows, whatever its source: not
/// empty, at most [`MAX_ID_BYTES`] bytes.
pub fn check_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        Err(IdError::Empty)
    } else if id.len() > MAX_ID_BYTES {
        Err(IdError::TooLong(id.to_string()))
    } else {
        Ok(())
    }
}

/// How many bytes of an id that is not UTF-8 its error message shows:
/// enough to recognise the value.
const SHOWN_BYTES: usize = 64;

/// `x'..'` of the first `shown` bytes, followed by `...` if that cut some.
fn hex_literal(bytes: &[u8], shown: usize) -> String {
    let mut s = String::from("x'");
    for b in bytes.iter().take(shown) {
        let _ = write!(s, "{b:02x}");
    }
    s.push('\'');
    if bytes.len() > shown {
        s.push_str("...");
    }
    s
}

pub(super) fn clip_sql(sql: &str) -> String {
    const SHOWN: usize = 200;
    let sql = sql.trim();
    match sql.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &sql[..at]),
        None => sql.to_string(),
    }
}

fn param_count(expected: usize, given: usize) -> String {
    let values = format!("{given} {}", plural(given, "value was", "values were"));
    if expected == 0 {
        format!("the query has no ? placeholder and {values} given")
    } else {
        format!(
            "the query has {expected} ? {} and {values} given for {}",
            plural(expected, "placeholder", "placeholders"),
            plural(expected, "it", "them")
        )
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn fields(n: usize) -> String {
    format!("{n} {}", plural(n, "field", "fields"))
}

/// For a window variable (`:from_date`...): where it would have a value.
fn window_note(name: &str) -> &'static str {
    let bare = name.trim_start_matches([':', '@', '$']);
    if crate::ast::NAMED_PARAMS
        .iter()
        .any(|p| *p != "bid" && p.eq_ignore_ascii_case(bare))
    {
        " (window variables are set only for a named batch, WITH NAME='...')"
    } else {
        ""
    }
}

fn available_names(names: &[String]) -> String {
    if names.is_empty() {
        "no named values are bound here".to_string()
    } else {
        let list: Vec<String> = names.iter().map(|n| format!(":{n}")).collect();
        format!("the named values here are {}", list.join(", "))
    }
}
