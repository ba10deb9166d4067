//! `BATCH_APPEND`'s entities (SPEC §6): listed ids, each checked as an
//! entity id, or a query on an interface, checked as a source query is,
//! before anything is read or stored.

use super::error::{AnalyzeError, Result};
use super::interface;
use super::source::refuse_query_text;
use crate::ast::{AppendSource, Span};
use crate::store::CatalogStore;

/// Where the ids of a `BATCH_APPEND` come from, checked.
#[derive(Debug)]
pub enum Appending {
    /// Listed in the statement, in order.
    Ids(Vec<String>),
    /// The first column of a query; `at` is the SQL's span, where a fault
    /// of its rows is pointed at.
    Query {
        interface: crate::source::Interface,
        sql: String,
        at: Span,
    },
}

/// The ids `source` appends: each listed id must be one (not empty, at
/// most 1,024 bytes: a bad id is refused here, where a source's bad id
/// fails its entity, since the statement can be put right); a query's
/// interface must exist and its text be a source query's.
pub fn append(catalog: &dyn CatalogStore, source: &AppendSource) -> Result<Appending> {
    match source {
        AppendSource::Ids(ids) => ids
            .iter()
            .map(|id| {
                crate::source::check_id(&id.value)
                    .map(|()| id.value.clone())
                    .map_err(|e| {
                        AnalyzeError::invalid(
                            id.span,
                            format!("{e}: an entity id is 1 to 1,024 bytes of text"),
                        )
                    })
            })
            .collect::<Result<Vec<String>>>()
            .map(Appending::Ids),
        AppendSource::Query {
            interface: name,
            sql,
        } => {
            let interface = interface(catalog, &name.text, name.span)?;
            refuse_query_text(&interface, &sql.value, &[], false)
                .map_err(|e| AnalyzeError::invalid(sql.span, e.to_string()))?;
            Ok(Appending::Query {
                interface,
                sql: sql.value.clone(),
                at: sql.span,
            })
        }
    }
}
