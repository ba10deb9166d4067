//! `FROM STDIN` and `FROM FILE` (SPEC §4): one entity id per line, read
//! whole by the process that creates the batch, before the batch is
//! created, so that a fault (a terminal for stdin, a missing file) stores
//! nothing, and the ids are stored before any is processed: a retry or a
//! worker never reads the lines again.
//!
//! A line's id is the line without its line end (`\n` or `\r\n`) and
//! without the white space around it; a UTF-8 byte order mark before the
//! first line is dropped; blank lines are skipped (a trailing new line, or
//! an empty line in a hand-edited file, is not an entity). A line that is
//! not UTF-8, or longer than an id may be, is kept as it is: the batch
//! records it as a failed entity, as it does such an id from a query.

use super::IdError;
use std::io::{BufRead, IsTerminal};
use std::path::Path;

/// Why the lines could not be read: nothing is stored.
#[derive(Debug, thiserror::Error)]
pub enum LinesError {
    #[error(
        "FROM STDIN reads one id per line from standard input, which is a terminal here; \
         pipe the ids in (seq 1 100 | batchsh -c '...') or use FROM FILE 'ids.txt'"
    )]
    Terminal,
    #[error(
        "FROM STDIN reads ids from standard input, which holds the statements here; \
         give the statements with -c or a script file (seq 1 100 | batchsh -c '...'), \
         or the ids with FROM FILE 'ids.txt'"
    )]
    Statements,
    #[error(
        "standard input was read to its end by an earlier FROM STDIN of this run; \
         one statement takes the ids of stdin: use FROM FILE for the others"
    )]
    AlreadyRead,
    #[error("FROM FILE '' names no file: give the path of the ids' file (FROM FILE 'ids.txt')")]
    NoPath,
    #[error("cannot read the ids from {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// The ids of standard input. A terminal is refused rather than waited on:
/// a user who typed FROM STDIN by mistake would see a hang.
pub fn read_stdin() -> Result<Vec<Result<String, IdError>>, LinesError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(LinesError::Terminal);
    }
    read(stdin.lock()).map_err(|source| LinesError::Io {
        what: "standard input".into(),
        source,
    })
}

/// The ids of the file at `path`.
pub fn read_file(path: &Path) -> Result<Vec<Result<String, IdError>>, LinesError> {
    let io = |source| LinesError::Io {
        what: format!("file {}", path.display()),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    read(std::io::BufReader::with_capacity(1 << 16, file)).map_err(io)
}

/// The ids of `input`, one per line (see the module doc).
pub fn read(mut input: impl BufRead) -> std::io::Result<Vec<Result<String, IdError>>> {
    let mut ids = Vec::new();
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(ids);
        }
        let mut bytes = line.as_slice();
        if first {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            first = false;
        }
        let bytes = bytes.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        ids.push(match std::str::from_utf8(bytes) {
            Ok(id) => Ok(id.to_string()),
            Err(_) => Err(IdError::NotUtf8(bytes.to_vec())),
        });
    }
}

/// The ids as the store keeps them ([`from_stored`] reads them back):
/// each id's bytes (a line that is not UTF-8 as it was) followed by a line
/// end, in parts of about `part` bytes that each end with a whole line.
pub fn to_stored(ids: &[Result<String, IdError>], part: usize) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut text = Vec::new();
    for id in ids {
        let stand_in;
        text.extend_from_slice(match id {
            Ok(id) => id.as_bytes(),
            Err(IdError::NotUtf8(bytes)) => bytes,
            // `read` gives no other error; another keeps its stand-in.
            Err(e) => {
                stand_in = e.stand_in();
                stand_in.as_bytes()
            }
        });
        text.push(b'\n');
        if text.len() >= part {
            parts.push(std::mem::take(&mut text));
        }
    }
    if !text.is_empty() {
        parts.push(text);
    }
    parts
}

/// The ids of stored lines ([`to_stored`]): each line is an id as it was
/// read, so nothing is trimmed or skipped again.
pub fn from_stored(text: &[u8]) -> Vec<Result<String, IdError>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\n").unwrap_or(line))
        .map(|line| match std::str::from_utf8(line) {
            Ok(id) => Ok(id.to_string()),
            Err(_) => Err(IdError::NotUtf8(line.to_vec())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_lines_read_back_as_they_were_read() {
        let read = ids(b"\xEF\xBB\xBF\xEF\xBB\xBF1\r\n\xff\n 2 \n\n3");
        // The second mark is part of the first id, which `read` would drop
        // if it read the stored text again.
        assert_eq!(read.len(), 4);
        assert_eq!(read[0], Ok("\u{feff}1".to_string()));
        for part in [1, 4, 1 << 20] {
            let parts = to_stored(&read, part);
            assert!(parts.iter().all(|p| p.ends_with(b"\n")));
            assert_eq!(from_stored(&parts.concat()), read, "parts of {part} bytes");
        }
        assert_eq!(to_stored(&read, 1).len(), 4);
        assert!(to_stored(&[], 8).is_empty());
        assert!(from_stored(b"").is_empty());
    }

    fn ids(input: &[u8]) -> Vec<Result<String, IdError>> {
        read(input).unwrap()
    }

    #[test]
    fn crlf_bom_blank_lines_and_spaces() {
        assert_eq!(
            ids(b"\xEF\xBB\xBF1\r\n\r\n 2 \r\n\n3"),
            vec![Ok("1".into()), Ok("2".into()), Ok("3".into())]
        );
    }

    #[test]
    fn a_bom_only_counts_at_the_start() {
        assert_eq!(
            ids(b"1\n\xEF\xBB\xBF2\n"),
            vec![Ok("1".into()), Ok("\u{feff}2".into())]
        );
    }

    #[test]
    fn not_utf8_and_long_lines_are_kept_for_the_batch_to_fail() {
        let long = "x".repeat(2048);
        let input = format!("{long}\n").into_bytes();
        let mut with_bad = input.clone();
        with_bad.extend_from_slice(b"\xff\n");
        assert_eq!(
            ids(&with_bad),
            vec![Ok(long), Err(IdError::NotUtf8(vec![0xff]))]
        );
    }

    #[test]
    fn nothing_is_no_ids() {
        assert!(ids(b"").is_empty());
        assert!(ids(b"\n\r\n  \n").is_empty());
    }
}
