//! Where a BATCH's entity ids come from: its target (ids, an instance
//! group, the LU's ROOT query) or its `FROM`, resolved against the catalog,
//! and a source query whose text cannot be one refused before anything is
//! stored.

use super::error::{AnalyzeError, Result};
use super::interface;
use crate::ast::{BatchStmt, CommandKind, Selection, Source, Span};
use crate::plan::{EntitySource, Lines};
use crate::source::{self, Param};
use crate::store::{CatalogStore, LuDef, StoreError};

/// The LU `b` names, or `None` for an ad-hoc batch (SPEC §4): one whose
/// command neither reads nor writes LU data and whose ids come from a
/// list, FROM ... USING, FROM STDIN or FROM FILE may name an LU that is
/// not defined; the name only labels the batch. With it, the note for
/// stderr when the name is close to a defined LU. Any other batch over an
/// undefined LU is refused as before.
pub(super) fn target_lu(
    catalog: &dyn CatalogStore,
    b: &BatchStmt,
) -> Result<(Option<LuDef>, Option<String>)> {
    let name = &b.target.lu;
    match catalog.lu(&name.text) {
        Ok(def) => Ok((Some(def), None)),
        Err(StoreError::NotFound {
            kind: "LU",
            suggestion,
            ..
        }) if may_be_adhoc(b) => Ok((
            None,
            suggestion.map(|s| {
                format!(
                    "no LU named {}; running as an ad-hoc batch (did you mean {s}?)",
                    name.text
                )
            }),
        )),
        Err(e) => Err(AnalyzeError::at(name.span, e)),
    }
}

/// Whether `b` may run without its LU (see [`target_lu`]).
fn may_be_adhoc(b: &BatchStmt) -> bool {
    let touches_lu = matches!(
        b.command.kind,
        CommandKind::SyncInstance { .. } | CommandKind::DeleteInstance { .. }
    );
    let ids_given = matches!(
        (&b.target.selection, &b.source),
        (Selection::Ids(_), None)
            | (
                Selection::All,
                Some(Source::Query { .. } | Source::Stdin | Source::File(_))
            )
    );
    !b.migrate && !touches_lu && ids_given
}

/// The entity source of `b`, whose LU is `lu`; `span` is the statement's
/// (a fault of a query the statement does not show points at it);
/// `windowed`: the batch has NAME, so its query may use the window
/// variables.
pub(super) fn entity_source(
    catalog: &dyn CatalogStore,
    b: &BatchStmt,
    lu: Option<&LuDef>,
    span: Span,
    params: Vec<Param>,
    windowed: bool,
) -> Result<EntitySource> {
    // Only an ad-hoc batch has no LU, and its ids never come from one.
    let lu = || {
        lu.ok_or_else(|| {
            AnalyzeError::invalid(
                b.target.lu.span,
                format!("no LU named {}", b.target.lu.text),
            )
        })
    };
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
            let lu = lu()?;
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
        (Selection::All, None) => {
            let lu = lu()?;
            (
                EntitySource::Query {
                    interface: interface(catalog, &lu.interface, b.target.lu.span)?,
                    sql: lu.root_sql.clone(),
                    params,
                    origin: format!("ROOT query of LU {}", lu.name),
                },
                b.target.lu.span,
            )
        }
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
        (Selection::All, Some(Source::Fabric)) => (EntitySource::Fabric(lu()?.clone()), span),
        (Selection::All, Some(Source::Stdin)) => (
            EntitySource::Lines {
                from: Lines::Stdin,
                ids: None,
            },
            span,
        ),
        (Selection::All, Some(Source::File(path))) => (
            EntitySource::Lines {
                from: Lines::File {
                    written: path.value.clone(),
                    path: path.value.clone().into(),
                },
                ids: None,
            },
            span,
        ),
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
        refuse_query_text(interface, sql, params, windowed).map_err(|e| {
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
/// A `POSTGRES` interface is not connected to here: its text is checked
/// for its placeholders and values alone, and the run does the rest.
pub(super) fn refuse_query_text(
    iface: &source::Interface,
    sql: &str,
    params: &[Param],
    windowed: bool,
) -> Result<(), source::SourceError> {
    // A named batch's query may use its window variables; a value is only
    // needed to prepare it.
    let named: Vec<(&str, Param)> = if windowed {
        crate::ast::NAMED_PARAMS
            .iter()
            .map(|n| (*n, Param::Null))
            .collect()
    } else {
        Vec::new()
    };
    // PostgreSQL's text is checked without the server: connecting here
    // and again in the run would make an unreachable host wait twice.
    if iface.kind == crate::catalog::InterfaceKind::Postgres {
        return source::postgres::check_text(sql, params, &named);
    }
    let Ok(conn) = source::schema(iface) else {
        return Ok(());
    };
    match source::check_id_query(&conn, sql, params, &named) {
        Err(e) if e.is_query_text_fault() => Err(e),
        _ => Ok(()),
    }
}
