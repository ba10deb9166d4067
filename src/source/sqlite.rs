//! `SQLITE` interfaces: an existing database file, never created.

use super::{BUSY_TIMEOUT, Interface, SourceError};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::io::ErrorKind;

pub(super) enum Mode {
    /// For [`super::check`]: looking must not change the file.
    ReadOnly,
    /// For [`super::connect`]: per-entity `sql` commands write.
    ReadWrite,
}

/// Opens the interface's file and proves it is a database by reading its
/// schema: SQLite opens any file lazily, so a text file would otherwise pass
/// here and fail at the first query with a less helpful message.
pub(super) fn open(iface: &Interface, mode: Mode) -> Result<Connection, SourceError> {
    let path = iface.path();
    let interface = || iface.name.clone();
    let meta = std::fs::metadata(path).map_err(|io| match io.kind() {
        ErrorKind::NotFound => SourceError::NotFound {
            interface: interface(),
            path: path.to_path_buf(),
        },
        _ => SourceError::Unreadable {
            interface: interface(),
            path: path.to_path_buf(),
            io,
        },
    })?;
    if meta.is_dir() {
        return Err(SourceError::SqliteFolder {
            interface: interface(),
            path: path.to_path_buf(),
        });
    }
    if let Some(what) = super::special_file(&meta) {
        return Err(SourceError::NotAFile {
            interface: interface(),
            path: path.to_path_buf(),
            what,
            expected: "give the path of an SQLite database file",
        });
    }
    // SQLite reports an unreadable file as "unable to open database file";
    // the operating system's reason is clearer.
    std::fs::File::open(path).map_err(|io| SourceError::Unreadable {
        interface: interface(),
        path: path.to_path_buf(),
        io,
    })?;

    // No SQLITE_OPEN_CREATE: a mistyped PATH must not leave an empty database
    // behind. No SQLITE_OPEN_URI: a path is a path, even with a `?` in it.
    let access = match mode {
        Mode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Mode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
    };
    let open_error = |e: rusqlite::Error| {
        if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
            SourceError::NotSqlite {
                interface: interface(),
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        } else {
            SourceError::Open {
                interface: interface(),
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        }
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    conn.query_row("select count(*) from sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(open_error)?;
    Ok(conn)
}
