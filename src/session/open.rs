//! Open batches (SPEC §6): `BATCH_APPEND 'bid' ('id', ...)` or
//! `BATCH_APPEND 'bid' FROM iface USING ('sql')` records more entities for
//! a batch created `WITH OPEN=true`, from any process; `BATCH_WAITOFF
//! ['bid']` closes it, and it ends once its entities are done. The store
//! checks, in the transaction that writes, that the batch is still open
//! and not final; the run that feeds the batch stores the appended ids as
//! entities (see [`crate::store::appends`]).

use super::{Result, Session, StatementError, message};
use crate::analyze::Appending;
use crate::ast::{AppendSource, Span, Text};
use crate::output::{Cell, Output, Table};
use crate::source;

impl Session {
    /// `BATCH_APPEND`: its `Batch id | Appended` row.
    pub(super) fn append(
        &mut self,
        bid: &Text,
        source: &AppendSource,
        span: Span,
    ) -> Result<Option<Output>> {
        let at = bid.span;
        let bid = self.resolve(&Some(bid.clone()), span)?;
        let node = self.node.clone();
        let store = self.store()?;
        let appending = crate::analyze::append(store, source)?;
        // A batch that takes no appends is refused before a query is read
        // (the store checks again as it records them).
        let row = store
            .read_batch(&bid)
            .map_err(|e| StatementError::at(at, e))?;
        if let Some(why) = row.openness.refusal(row.status) {
            return Err(StatementError::at(
                at,
                crate::store::StoreError::NotOpen {
                    verb: "append to",
                    bid,
                    why,
                },
            ));
        }
        let ids = match appending {
            Appending::Ids(ids) => ids,
            Appending::Query { interface, sql, at } => query_ids(&interface, &sql, at)?,
        };
        let n = store
            .append_ids(&bid, &ids, &node)
            .map_err(|e| StatementError::at(at, e))?;
        let mut t = Table::new(crate::output::columns::BATCH_APPEND.iter().copied());
        t.rows
            .push(vec![Cell::Text(bid.clone()), Cell::Int(n as i64)]);
        self.last_bid = Some(bid);
        Ok(Some(Output::Table(t)))
    }

    /// `BATCH_WAITOFF`: the batch takes no more appends.
    pub(super) fn waitoff(&mut self, bid: &Option<Text>, span: Span) -> Result<Option<Output>> {
        let at = bid.as_ref().map_or(span, |b| b.span);
        let bid = self.resolve(bid, span)?;
        let node = self.node.clone();
        let store = self.store()?;
        store
            .close_batch(&bid, &node)
            .map_err(|e| StatementError::at(at, e))?;
        self.last_bid = Some(bid.clone());
        Ok(message(format!(
            "batch {bid} closed: it takes no more appends, and ends once its entities are done"
        )))
    }
}

/// The ids a `BATCH_APPEND ... FROM iface USING ('sql')` query gives, each
/// checked as an entity id: a row without a usable id refuses the whole
/// statement (`at`: the SQL), which appends nothing.
fn query_ids(interface: &source::Interface, sql: &str, at: Span) -> Result<Vec<String>> {
    let mut conn = source::open(interface).map_err(|e| StatementError::at(at, e))?;
    let mut ids = Vec::new();
    let mut bad = None;
    conn.for_each_id(sql, &[], &[], |r| {
        match r.and_then(|id| source::check_id(&id).map(|()| id)) {
            Ok(id) => {
                ids.push(id);
                std::ops::ControlFlow::Continue(())
            }
            Err(e) => {
                bad = Some((ids.len() + 1, e));
                std::ops::ControlFlow::Break(())
            }
        }
    })
    .map_err(|e| StatementError::at(at, e))?;
    match bad {
        Some((row, e)) => Err(StatementError::refused(
            at,
            format!(
                "row {row} of the query gives no usable entity id ({e}); nothing was appended: \
                 leave such rows out of the query (an entity id is 1 to 1,024 bytes of text)"
            ),
        )),
        None => Ok(ids),
    }
}
