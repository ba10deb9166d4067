//! The line editor's helper: Tab completion (`complete.rs`) with names
//! read from the store, and highlighting (`highlight.rs`). Both see the
//! lines typed before the current one, so a string opened on an earlier
//! line is still a string and a statement's start is where it really is.

use super::complete::{self, Catalog};
use crate::store::{ListQuery, StatusFilter, Store, StoreError, Upgrades};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::PathBuf;

/// How many batch ids completion offers, newest first.
const RECENT_BIDS: usize = 20;

pub struct Helper {
    /// The lines of the input typed before the current one, `\n`-joined.
    pub pending: String,
    highlight: bool,
    catalog: StoreCatalog,
    /// Where relative `PATH`s are resolved, as the session does.
    cwd: PathBuf,
}

impl Helper {
    pub fn new(store_path: PathBuf, cwd: PathBuf, highlight: bool) -> Helper {
        Helper {
            pending: String::new(),
            highlight,
            catalog: StoreCatalog {
                path: store_path,
                store: RefCell::new(None),
            },
            cwd,
        }
    }

    /// The whole input so far with `line` as its last line, and where that
    /// line starts in it.
    fn with_pending(&self, line: &str) -> (String, usize) {
        if self.pending.is_empty() {
            (line.to_string(), 0)
        } else {
            (format!("{}\n{line}", self.pending), self.pending.len() + 1)
        }
    }
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (text, offset) = self.with_pending(line);
        let c = complete::complete(&text, offset + pos, &self.catalog, &self.cwd);
        // A word is never completed across lines.
        if c.start < offset {
            return Ok((pos, Vec::new()));
        }
        let pairs = c
            .candidates
            .into_iter()
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        Ok((c.start - offset, pairs))
    }
}

impl Highlighter for Helper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.highlight {
            Cow::Owned(super::highlight::paint(&self.pending, line))
        } else {
            Cow::Borrowed(line)
        }
    }

    /// Every edit may change what a word is (a quote opens a string), so
    /// the line is painted again; moving the cursor changes nothing.
    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        self.highlight && kind != CmdKind::MoveCursor
    }
}

impl Hinter for Helper {
    type Hint = String;
}

/// rustyline's validator keeps an incomplete input in one multi-line
/// buffer, whose later lines it draws without a prompt; the spec wants the
/// continuation prompt `      -> ` on them. So the REPL reads line by line
/// and asks `input::verdict` (the real parser) after each one, and this
/// validator accepts every line.
impl Validator for Helper {}

impl rustyline::Helper for Helper {}

/// The store's names, for completion. The store is opened on the first
/// Tab that needs a name, and only when it exists: pressing Tab never
/// creates a store. Names are read at each Tab, so what another process
/// (or this session) has just created is offered.
struct StoreCatalog {
    path: PathBuf,
    store: RefCell<Option<Box<dyn Store>>>,
}

impl StoreCatalog {
    /// `read` on the store; nothing when there is no store or it fails
    /// (completion has no place to report an error, and must not break
    /// the line being typed).
    fn read<T: Default>(&self, read: impl FnOnce(&dyn Store) -> Result<T, StoreError>) -> T {
        let mut slot = self.store.borrow_mut();
        if slot.is_none() && self.path.is_file() {
            // Silent: a notice would break the line being edited.
            *slot = crate::store::open(&self.path, Upgrades::Silent).ok();
        }
        slot.as_deref()
            .and_then(|s| read(s).ok())
            .unwrap_or_default()
    }
}

impl Catalog for StoreCatalog {
    fn lus(&self) -> Vec<String> {
        self.read(|s| Ok(s.lus()?.into_iter().map(|l| l.name).collect()))
    }

    fn interfaces(&self) -> Vec<String> {
        self.read(|s| Ok(s.interfaces()?.into_iter().map(|i| i.name).collect()))
    }

    fn groups(&self, lu: &str) -> Vec<String> {
        self.read(|s| Ok(s.groups(Some(lu))?.into_iter().map(|g| g.name).collect()))
    }

    fn recent_bids(&self) -> Vec<String> {
        self.read(|s| {
            let q = ListQuery {
                status: StatusFilter::All,
                limit: Some(RECENT_BIDS),
                ..ListQuery::default()
            };
            Ok(s.list_batches(&q)?.into_iter().map(|b| b.bid).collect())
        })
    }
}
