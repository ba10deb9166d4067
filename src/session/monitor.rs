//! The monitoring statements, as a session runs them: [`crate::monitor`]
//! answers them; the session says which batch a statement without a bid
//! is about when it has started none itself (SPEC §6), and what a plain
//! `BATCH_LIST` left out.

use super::{Result, Session, StatementError};
use crate::ast::{Statement, Stmt};
use crate::output::Output;
use crate::store::{ListQuery, StatusFilter};

impl Session {
    pub(super) fn monitor(&mut self, stmt: &Stmt) -> Result<Output> {
        let last = match (&self.last_bid, about_newest(&stmt.kind)) {
            (None, Some(name)) => Some(self.newest_batch(name)?),
            _ => self.last_bid.clone(),
        };
        let node = self.node.clone();
        let quiet = self.quiet;
        let store = self.store()?;
        let out = crate::monitor::run(store, &stmt.kind, last.as_deref(), &node)
            .map_err(|e| StatementError::from(e).or_at(stmt.span))?;
        if let Statement::BatchList { options } = &stmt.kind
            && options.get("STATUS").is_none()
            && !quiet
            && matches!(&out, Output::Table(t) if t.rows.is_empty())
            && newest(store)?.is_some()
        {
            eprintln!("note: no batch is active; BATCH_LIST STATUS='ALL' lists the others");
        }
        if let Output::Raw(raw) = &out
            && !quiet
        {
            cut_note(raw);
        }
        Ok(out)
    }

    /// The newest batch of the store, for a statement (`name`) without a
    /// bid in a session that has started no batch (a new `-c`, a new
    /// REPL): stderr says which it is, unless `--quiet`. An error when the
    /// store has no batch at all.
    pub(super) fn newest_batch(&mut self, name: &str) -> Result<String> {
        let quiet = self.quiet;
        let Some(b) = newest(self.store()?)? else {
            return Err(crate::store::StoreError::NoBatchYet.into());
        };
        if !quiet {
            let created = chrono::DateTime::parse_from_rfc3339(&b.creation_time)
                .map(|t| {
                    crate::output::format_time_in(&t.with_timezone(&chrono::Utc), &chrono::Local)
                })
                .unwrap_or_else(|_| b.creation_time.clone());
            eprintln!(
                "note: no batch in this session yet; {name} is about the newest batch, {} \
                 ({}, created {created})",
                crate::batch::short_id(&b.bid),
                crate::monitor::shown_status(self.store()?, &b)?,
            );
        }
        Ok(b.bid)
    }
}

/// Says on stderr how many of `BATCH_OUTPUT`'s texts `OUTPUT_LIMIT` cut
/// when they were stored (the raw text cannot say it), if any.
fn cut_note(raw: &crate::output::Raw) {
    let Some(at) = raw.records.columns.iter().position(|c| c == "Truncated") else {
        return;
    };
    let cut = raw
        .records
        .rows
        .iter()
        .filter(|r| matches!(r.get(at), Some(crate::output::Cell::Bool(true))))
        .count();
    if cut > 0 {
        eprintln!(
            "note: the output of {cut} entit{} was cut at the batch's OUTPUT_LIMIT when it \
             was stored; what was kept is printed",
            if cut == 1 { "y" } else { "ies" }
        );
    }
}

/// The statement's name when it is a monitoring statement without a bid
/// that may take the newest batch (SPEC §6); control statements still
/// need theirs.
fn about_newest(s: &Statement) -> Option<&'static str> {
    match s {
        Statement::BatchInfo { bid: None }
        | Statement::BatchSummary { bid: None }
        | Statement::BatchDetails { bid: None, .. }
        | Statement::BatchOutput { bid: None, .. }
        | Statement::BatchHistory { bid: None } => Some(s.name()),
        _ => None,
    }
}

/// The newest batch of the store, whatever its status.
fn newest(store: &dyn crate::store::Store) -> Result<Option<crate::store::BatchRow>> {
    let rows = store.list_batches(&ListQuery {
        status: StatusFilter::All,
        created_from: None,
        created_before: None,
        command: None,
        limit: Some(1),
    })?;
    Ok(rows.into_iter().next())
}
