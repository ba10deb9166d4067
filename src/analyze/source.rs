//! Where a BATCH's entity ids come from: its target (ids, an instance
//! group, the LU's ROOT query) or its `FROM`, resolved against the catalog,
//! and a source query whose text cannot be one refused before anything is
//! stored.

use super::error::{AnalyzeError, Result};
use super::interface;
use crate::ast::{BatchStmt, Selection, Source, Span};
use crate::plan::EntitySource;
use crate::source::{self, Param};
use crate::store::{CatalogStore, LuDef};

/// The entity source of `b`, whose LU is `lu`; `span` is the statement's
/// (a fault of a query the statement does not show points at it).
pub(super) fn entity_source(
    catalog: &dyn CatalogStore,
    b: &BatchStmt,
    lu: &LuDef,
    span: Span,
    params: Vec<Param>,
) -> Result<EntitySource> {
    // With where a fault of the query's text is pointed at: the SQL when
    // the statement holds it, else the name that stands for it.
    let (source, query_at) = match (&b.target.selection, &b.source) {
        (Selection::Ids(ids), None) => (
            EntitySource::Ids(ids.iter().map(|t| t.value.clone()).collect()),
            span,
        ),
        (Selection::Ids(_), Some(_)) | (Selection::Group(_), Some(_)) => {
            return Err(AnalyzeError::invalid(
                b.target.lu.span,
                "give the entities once: an id list or a group, or FROM ..., not both",
            ));
        }
        (Selection::Group(g), None) => {
            let def = catalog
                .group(&lu.name, &g.text)
                .map_err(|e| AnalyzeError::at(g.span, e))?;
            let name = def
                .interface
                .clone()
                .unwrap_or_else(|| lu.interface.clone());
            let source = EntitySource::Query {
                interface: interface(catalog, &name, g.span)?,
                sql: def.sql,
                params,
                origin: format!("instance group {}.{}", lu.name, def.name),
            };
            (source, g.span)
        }
        (Selection::All, None) => (
            EntitySource::Query {
                interface: interface(catalog, &lu.interface, b.target.lu.span)?,
                sql: lu.root_sql.clone(),
                params,
                origin: format!("ROOT query of LU {}", lu.name),
            },
            b.target.lu.span,
        ),
        (
            Selection::All,
            Some(Source::Query {
                interface: name,
                sql,
            }),
        ) => (
            EntitySource::Query {
                interface: interface(catalog, &name.text, name.span)?,
                sql: sql.value.clone(),
                params,
                origin: format!("FROM {} USING", name.text),
            },
            sql.span,
        ),
        (Selection::All, Some(Source::Fabric)) => (EntitySource::Fabric, span),
    };
    if let EntitySource::Query {
        interface,
        sql,
        params,
        origin,
    } = &source
    {
        // The USING text is under the caret; a stored query is named.
        let named = !matches!(b.source, Some(Source::Query { .. }));
        refuse_query_text(interface, sql, params).map_err(|e| {
            let message = if named {
                format!("the {origin}: {e}")
            } else {
                e.to_string()
            };
            AnalyzeError::invalid(query_at, message)
        })?;
    }
    Ok(source)
}

/// Refuses an id query whose text cannot be a source query, whatever the
/// data: one that writes (it would run before the batch could fail),
/// holds two statements, returns no column, or whose `?` count differs
/// from the BIND_PARAMS values. Refused here, the statement stores
/// nothing (SPEC §11); found by the run, it would leave a FAILED batch
/// behind.
///
/// The query is prepared on [`source::schema`]: for a CSV interface, its
/// tables empty, so a large file is read once, by the run. An interface
/// that cannot be opened or a query the database rejects (no such table)
/// passes: the run meets it again, and the batch ends FAILED with the
/// database's message, as SPEC §11 has it for a source query that fails.
pub(super) fn refuse_query_text(
    iface: &source::Interface,
    sql: &str,
    params: &[Param],
) -> Result<(), source::SourceError> {
    let Ok(conn) = source::schema(iface) else {
        return Ok(());
    };
    match source::check_id_query(&conn, sql, params) {
        Err(e) if e.is_query_text_fault() => Err(e),
        _ => Ok(()),
    }
}
