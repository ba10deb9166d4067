//! `CSV` interfaces: a file (of any extension), or a folder of `.csv` files, loaded into an
//! in-memory SQLite database with one table per file. Each column's type is
//! inferred from its values as they are read (SPEC §3: INTEGER when every
//! non-empty value is an integer, REAL when every one is a number, else
//! TEXT; an empty field of a typed column is NULL); `TYPES=false` keeps
//! every column TEXT.
//!
//! Loading into SQLite (rather than a virtual table) buys full SQLite SQL,
//! joins between files included, at the cost of holding the data in memory
//! for as long as the connection lives.

use super::{Interface, SourceError};
use ::csv::{ErrorKind as CsvErrorKind, Position, Reader, ReaderBuilder, StringRecord};
use rusqlite::Connection;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One `.csv` file and the table it becomes.
struct CsvFile {
    table: String,
    path: PathBuf,
}

/// Reads every file through, checking its shape, without loading it.
pub(super) fn check(iface: &Interface) -> Result<(), SourceError> {
    let mut record = StringRecord::new();
    for file in files(iface)? {
        let (_, mut rows) = Rows::open(iface, &file.path)?;
        while rows.next(&mut record)? {}
    }
    Ok(())
}

/// Creates every file's table, empty, in a new in-memory database: see
/// [`super::schema`]. Reads each file's first row only.
pub(super) fn schema(iface: &Interface) -> Result<Connection, SourceError> {
    let conn = Connection::open_in_memory().map_err(|e| load_error(iface, iface.path(), e))?;
    for file in files(iface)? {
        let (columns, _) = Rows::open(iface, &file.path)?;
        conn.execute_batch(&create_table(&file.table, &columns, &[]))
            .map_err(|e| load_error(iface, &file.path, e))?;
    }
    read_only(iface, &conn)?;
    Ok(conn)
}

/// Loads every file into its own table of a new in-memory database.
pub(super) fn load(iface: &Interface) -> Result<Connection, SourceError> {
    let files = files(iface)?;
    let load_error = |path: &Path, e: rusqlite::Error| load_error(iface, path, e);
    let mut conn = Connection::open_in_memory().map_err(|e| load_error(iface.path(), e))?;
    // One transaction for everything: a commit per row would be the whole
    // cost of loading.
    let tx = conn
        .transaction()
        .map_err(|e| load_error(iface.path(), e))?;
    let mut record = StringRecord::new();
    for file in &files {
        let err = |e| load_error(&file.path, e);
        let (columns, mut rows) = Rows::open(iface, &file.path)?;
        // The types first, from a read of the whole file that stores
        // nothing; then the rows, each field stored as its column's type.
        let mut types = vec![Seen::Nothing; columns.len()];
        if iface.types {
            while rows.next(&mut record)? {
                for (seen, field) in types.iter_mut().zip(record.iter()) {
                    *seen = seen.and(field);
                }
            }
            rows = Rows::open(iface, &file.path)?.1;
        }
        tx.execute_batch(&create_table(&file.table, &columns, &types))
            .map_err(err)?;
        let marks = vec!["?"; columns.len()].join(", ");
        let mut insert = tx
            .prepare(&format!(
                "insert into {} values ({marks})",
                quote(&file.table)
            ))
            .map_err(err)?;
        while rows.next(&mut record)? {
            for (i, (field, seen)) in record.iter().zip(&types).enumerate() {
                let i = i + 1;
                match seen.value(field) {
                    Typed::Text => insert.raw_bind_parameter(i, field),
                    Typed::Null => insert.raw_bind_parameter(i, rusqlite::types::Null),
                    Typed::Integer(n) => insert.raw_bind_parameter(i, n),
                    Typed::Real(x) => insert.raw_bind_parameter(i, x),
                }
                .map_err(err)?;
            }
            insert.raw_execute().map_err(err)?;
        }
    }
    tx.commit().map_err(|e| load_error(iface.path(), e))?;
    read_only(iface, &conn)?;
    Ok(conn)
}

/// The data is a copy: a write would vanish with the connection, so make
/// it fail instead.
fn read_only(iface: &Interface, conn: &Connection) -> Result<(), SourceError> {
    conn.execute_batch("pragma query_only = on")
        .map_err(|e| load_error(iface, iface.path(), e))
}

/// What a column's non-empty values have been so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// None yet (an empty column is TEXT).
    Nothing,
    Integers,
    /// Numbers, not all integers.
    Numbers,
    Text,
}

impl Seen {
    /// What the column has been, with `field` too.
    fn and(self, field: &str) -> Seen {
        if self == Seen::Text || field.is_empty() {
            return self;
        }
        // A number is typed only when it reads back as written: `007`,
        // `+5` and integers past 64 bits stay text, as ids must.
        let digits = field.strip_prefix(['-', '+']).unwrap_or(field);
        let this = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            match field.parse::<i64>() {
                Ok(n) if n.to_string() == field => Seen::Integers,
                _ => Seen::Text,
            }
        } else if is_number(field) {
            Seen::Numbers
        } else {
            Seen::Text
        };
        self.max(this)
    }

    /// How `field` is stored in a column of this type: an INTEGER or REAL
    /// column's fields are all numbers of its kind or empty (NULL).
    fn value(self, field: &str) -> Typed {
        match self {
            Seen::Nothing | Seen::Text => Typed::Text,
            _ if field.is_empty() => Typed::Null,
            Seen::Integers => field.parse().map_or(Typed::Text, Typed::Integer),
            Seen::Numbers => field.parse().map_or(Typed::Text, Typed::Real),
        }
    }

    fn sql_type(self) -> &'static str {
        match self {
            Seen::Integers => "integer",
            Seen::Numbers => "real",
            Seen::Nothing | Seen::Text => "text",
        }
    }
}

/// A field as [`Seen::value`] stores it.
enum Typed {
    Text,
    Null,
    Integer(i64),
    Real(f64),
}

/// A finite decimal number as SQLite and people write it (`1.5`, `-2`,
/// `3e8`), not `inf`, `NaN` or hex.
fn is_number(field: &str) -> bool {
    field
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && field.bytes().any(|b| b.is_ascii_digit())
        && field.parse::<f64>().is_ok_and(f64::is_finite)
}

/// A file's table, each column of its type (TEXT where `types` has none).
fn create_table(table: &str, columns: &[String], types: &[Seen]) -> String {
    let defs: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = types.get(i).map_or("text", |t| t.sql_type());
            format!("{} {ty}", quote(c))
        })
        .collect();
    format!("create table {} ({})", quote(table), defs.join(", "))
}

fn load_error(iface: &Interface, path: &Path, e: rusqlite::Error) -> SourceError {
    SourceError::CsvLoad {
        interface: iface.name.clone(),
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The interface's files: the file itself, or the folder's `.csv` files
/// (not its subfolders), in name order.
fn files(iface: &Interface) -> Result<Vec<CsvFile>, SourceError> {
    if matches!(iface.delimiter, b'"' | b'\n' | b'\r') {
        return Err(SourceError::Delimiter {
            interface: iface.name.clone(),
            delimiter: iface.delimiter,
        });
    }
    let path = iface.path();
    let meta = std::fs::metadata(path).map_err(|io| io_error(iface, path, io))?;
    if let Some(what) = super::special_file(&meta) {
        return Err(SourceError::NotAFile {
            interface: iface.name.clone(),
            path: path.to_path_buf(),
            what,
            expected: "give a .csv file or a folder that holds .csv files",
        });
    }
    let mut files = Vec::new();
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|io| io_error(iface, path, io))?;
        for entry in entries {
            let entry = entry.map_err(|io| io_error(iface, path, io))?;
            let p = entry.path();
            if !is_csv(&p) {
                continue;
            }
            // `fs::metadata` follows symlinks: a link to a .csv file counts.
            // A folder named `x.csv` is skipped like any subfolder; a FIFO
            // (or socket, device) is refused rather than skipped: its name
            // says it is one of the tables, and opening it could wait forever.
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => files.push(csv_file(p)),
                Ok(m) => {
                    if let Some(what) = super::special_file(&m) {
                        return Err(SourceError::NotAFile {
                            interface: iface.name.clone(),
                            path: p,
                            what,
                            expected: "every .csv file of a CSV interface's folder is a \
                                       table; move it out of the folder or rename it",
                        });
                    }
                }
                // A dangling symlink is no table.
                Err(_) => {}
            }
        }
        if files.is_empty() {
            return Err(SourceError::NoCsvFiles {
                interface: iface.name.clone(),
                path: path.to_path_buf(),
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
    } else {
        // A file named in PATH is the table whatever its extension
        // (`ids.txt`, SPEC §3); in a folder, the `.csv` files are.
        files.push(csv_file(path.to_path_buf()));
    }
    // SQLite table names ignore ASCII case: `IDS.csv` and `ids.csv` would
    // both be table `ids`.
    let mut seen: HashMap<String, &Path> = HashMap::new();
    for f in &files {
        if let Some(first) = seen.insert(f.table.to_ascii_lowercase(), &f.path) {
            return Err(SourceError::TableClash {
                interface: iface.name.clone(),
                table: f.table.clone(),
                first: first.to_path_buf(),
                second: f.path.clone(),
            });
        }
    }
    Ok(files)
}

fn is_csv(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn csv_file(path: PathBuf) -> CsvFile {
    let table = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    CsvFile { table, path }
}

/// The records of one file after its header, each checked to have as many
/// fields as the header (or, with `HEADER=false`, the first row).
struct Rows<'a> {
    iface: &'a Interface,
    path: &'a Path,
    reader: Reader<File>,
    expected: usize,
    /// With `HEADER=false` the first row was read to count the columns and
    /// is handed out first.
    pending: Option<StringRecord>,
    /// Where the last record read starts: at the end of the file it is
    /// checked for a quote that never closed.
    last: Option<Position>,
}

impl<'a> Rows<'a> {
    /// Opens a file and reads its first row: the column names, and the rows.
    fn open(iface: &'a Interface, path: &'a Path) -> Result<(Vec<String>, Rows<'a>), SourceError> {
        let file = File::open(path).map_err(|io| io_error(iface, path, io))?;
        // The header is read as a plain record, so that its line number,
        // emptiness and field count are handled like any other row's, and
        // `flexible` lets a short row reach our message instead of csv's.
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(iface.delimiter)
            .from_reader(file);
        let mut rows = Rows {
            iface,
            path,
            reader,
            expected: 0,
            pending: None,
            last: None,
        };
        let mut first = StringRecord::new();
        if !rows.read(&mut first)? {
            if iface.header {
                return Err(SourceError::EmptyCsv {
                    interface: iface.name.clone(),
                    path: path.to_path_buf(),
                });
            }
            // No header and no rows is an empty id list, not an error: one
            // column so that `select c1 from ...` returns nothing.
            return Ok((vec!["c1".to_string()], rows));
        }
        rows.expected = first.len();
        let columns = if iface.header {
            header_columns(iface, path, &first)?
        } else {
            let n = first.len();
            rows.pending = Some(first);
            (1..=n).map(|i| format!("c{i}")).collect()
        };
        Ok((columns, rows))
    }

    /// The next row into `record`; false at the end of the file.
    fn next(&mut self, record: &mut StringRecord) -> Result<bool, SourceError> {
        if let Some(first) = self.pending.take() {
            *record = first;
            return Ok(true);
        }
        if !self.read(record)? {
            return Ok(false);
        }
        if record.len() != self.expected {
            return Err(SourceError::CsvFields {
                interface: self.iface.name.clone(),
                path: self.path.to_path_buf(),
                line: line_of(record),
                found: record.len(),
                expected: self.expected,
                header: self.iface.header,
            });
        }
        Ok(true)
    }

    fn read(&mut self, record: &mut StringRecord) -> Result<bool, SourceError> {
        let more = self.read_raw(record)?;
        if more {
            self.last = record.position().cloned();
        } else if let Some(start) = self.last.take() {
            self.refuse_unclosed_quote(&start)?;
        }
        Ok(more)
    }

    /// The csv crate ends a quoted field that is still open at the end of
    /// the file as if it had closed there: `1,"a` followed by a thousand
    /// lines is one record whose last field holds them all, and no error.
    /// Only the last record can be such a field (it runs to the end), so
    /// that record's bytes are read again and scanned as csv-core scans
    /// them; a quoted field that closes, on its line or lines later, passes.
    fn refuse_unclosed_quote(&self, start: &Position) -> Result<(), SourceError> {
        let io = |io| io_error(self.iface, self.path, io);
        let mut file = File::open(self.path).map_err(io)?;
        file.seek(SeekFrom::Start(start.byte())).map_err(io)?;
        let mut raw = BufReader::new(file);
        if start.byte() == 0 {
            skip_bom(&mut raw).map_err(io)?;
        }
        match open_quote_line(raw, start.line(), self.iface.delimiter).map_err(io)? {
            None => Ok(()),
            Some(line) => Err(SourceError::UnclosedQuote {
                interface: self.iface.name.clone(),
                path: self.path.to_path_buf(),
                line,
            }),
        }
    }

    fn read_raw(&mut self, record: &mut StringRecord) -> Result<bool, SourceError> {
        self.reader.read_record(record).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            let message = match e.kind() {
                CsvErrorKind::Utf8 { err, .. } => format!(
                    "field {} is not valid UTF-8; save the file as UTF-8",
                    err.field() + 1
                ),
                _ => e.to_string(),
            };
            match e.into_kind() {
                CsvErrorKind::Io(io) => io_error(self.iface, self.path, io),
                _ => SourceError::CsvRead {
                    interface: self.iface.name.clone(),
                    path: self.path.to_path_buf(),
                    line,
                    message,
                },
            }
        })
    }
}

/// Column names from the header line: trimmed (`id, name` names `name`, not
/// ` name`), an empty one named by its position (`c1`...) as spreadsheet and
/// pandas exports leave the index column unnamed; two equal names (ignoring
/// ASCII case, as SQLite does) are an error.
fn header_columns(
    iface: &Interface,
    path: &Path,
    header: &StringRecord,
) -> Result<Vec<String>, SourceError> {
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let name = match name.trim() {
            "" => format!("c{}", i + 1),
            n => n.to_string(),
        };
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(SourceError::DuplicateColumn {
                interface: iface.name.clone(),
                path: path.to_path_buf(),
                line: line_of(header),
                column: name,
            });
        }
        columns.push(name);
    }
    Ok(columns)
}

/// Where a field is, for [`open_quote_line`].
#[derive(Clone, Copy, PartialEq)]
enum Scan {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the closing one, or the first of `""`.
    QuoteInQuoted,
}

/// Reads CSV text from a record's start to the end and returns the line of
/// the opening quote of a quoted field still open at the end, if any.
///
/// The states are csv-core's with its defaults (`"` quotes, `""` escapes
/// one, CR, LF or CRLF end a record): a quote opens a field only as its
/// first byte (`ab"c` is text), and after a closing quote the rest of the
/// field is plain text.
fn open_quote_line(
    raw: impl BufRead,
    first_line: u64,
    delimiter: u8,
) -> std::io::Result<Option<u64>> {
    let mut state = Scan::FieldStart;
    let mut line = first_line;
    let mut opened = first_line;
    for b in raw.bytes() {
        let b = b?;
        let ends_field = b == delimiter || b == b'\n' || b == b'\r';
        state = match (state, b) {
            (Scan::FieldStart, b'"') => {
                opened = line;
                Scan::Quoted
            }
            (Scan::Quoted, b'"') => Scan::QuoteInQuoted,
            (Scan::Quoted, _) => Scan::Quoted,
            (Scan::QuoteInQuoted, b'"') => Scan::Quoted,
            (_, _) if ends_field => Scan::FieldStart,
            _ => Scan::Unquoted,
        };
        if b == b'\n' {
            line += 1;
        }
    }
    Ok((state == Scan::Quoted).then_some(opened))
}

/// Skips a UTF-8 byte order mark, which the csv crate skips at the start
/// of a file.
fn skip_bom(raw: &mut impl BufRead) -> std::io::Result<()> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if raw.fill_buf()?.starts_with(BOM) {
        raw.consume(BOM.len());
    }
    Ok(())
}

/// The line a record starts on (a quoted field may span several).
fn line_of(record: &StringRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

fn io_error(iface: &Interface, path: &Path, io: std::io::Error) -> SourceError {
    if io.kind() == ErrorKind::NotFound {
        SourceError::NotFound {
            interface: iface.name.clone(),
            path: path.to_path_buf(),
        }
    } else {
        SourceError::Unreadable {
            interface: iface.name.clone(),
            path: path.to_path_buf(),
            io,
        }
    }
}

/// An SQL identifier: a file stem or header may hold any character.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
