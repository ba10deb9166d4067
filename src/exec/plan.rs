//! A BATCH statement and the catalog -> what the executor runs. Every
//! meaning check happens here, before anything is stored: a statement that
//! fails here changes nothing.

use super::error::{ExecError, Result};
use crate::ast::{BatchStmt, CommandKind, Selection, Source, Span, Value};
use crate::source::{self, Param};
use crate::store::{LuDef, Store};
use std::time::Duration;

/// Where entity ids come from.
pub enum EntitySource {
    /// Listed in the statement, in order (duplicates are dropped on store).
    Ids(Vec<String>),
    /// A query's first column: ROOT, an instance group, or FROM ... USING.
    Query {
        interface: source::Interface,
        sql: String,
        params: Vec<Param>,
        /// How the statement named it, for BATCH_INFO ("root", "group vip"...).
        origin: String,
    },
    /// Instances present in the LU store.
    Fabric,
}

/// `MAX_FAILURES`: a count, or a share of the total.
#[derive(Clone, Copy, Debug)]
pub enum FailureLimit {
    Count(i64),
    Percent(f64),
}

impl FailureLimit {
    /// Whether `failed` entities out of `total` pass the limit. While the
    /// source is still read, `total` is what is known of it: the ids read
    /// so far (stored or not yet), or ESTIMATED_ENTITIES_COUNT if larger.
    pub fn passed(self, failed: i64, total: i64) -> bool {
        match self {
            FailureLimit::Count(n) => failed > n,
            FailureLimit::Percent(p) => total > 0 && (failed as f64) * 100.0 > p * total as f64,
        }
    }
}

impl std::fmt::Display for FailureLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureLimit::Count(n) => write!(f, "{n}"),
            FailureLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

pub struct Plan {
    pub command_text: String,
    pub lu: LuDef,
    pub command: CommandKind,
    pub source: EntitySource,
    /// The LU a sync_instance / delete_instance command works on.
    pub command_lu: Option<LuDef>,
    /// The interface of that LU (sync_instance reads it).
    pub command_lu_source: Option<source::Interface>,
    /// The interface a `sql` command runs on.
    pub command_interface: Option<source::Interface>,
    pub workers: usize,
    /// The node's worker limit: what `BATCH_EDIT` may raise `workers` to.
    pub node_workers: usize,
    pub max_retries: i64,
    pub retry_delay: Duration,
    pub entity_timeout: Option<Duration>,
    pub max_failures: Option<FailureLimit>,
    pub chunk_size: Option<usize>,
    pub generate_first: bool,
    pub estimated_total: Option<i64>,
    pub on_done: Option<String>,
    pub allow_multiple: bool,
    pub arguments: serde_json::Value,
}

/// Options whose behaviour needs the background worker (a later wave).
const WORKER_OPTIONS: &[&str] = &[
    "AFFINITY",
    "JOB_AFFINITY",
    "MAX_NODES",
    "NAME",
    "REPROCESS_HOURS",
    "TRUNC_START",
    "OPEN",
];

/// An `exec` argument that names a window variable (`:from_date`...) has
/// a value only in a named batch (`WITH NAME`), which needs the worker:
/// refused before anything is stored, rather than failing every entity.
/// `:bid` is the batch's id, which every batch has.
fn refuse_window_args(b: &BatchStmt) -> Result<()> {
    let cmd = &b.command;
    if let crate::ast::CommandKind::Exec { args, .. } = &cmd.kind {
        for a in args {
            if let crate::ast::Arg::Param(name) = a
                && !name.eq_ignore_ascii_case("bid")
            {
                return Err(ExecError::invalid(
                    cmd.span,
                    format!(
                        ":{} is a window variable, set only for a named batch \
                         (WITH NAME='...'), which needs the worker, not available yet; \
                         :bid (the batch's id) is the named parameter a batch has now",
                        name.to_ascii_lowercase()
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub fn plan(store: &dyn Store, b: &BatchStmt, span: Span, node_workers: usize) -> Result<Plan> {
    let store_err = |e: crate::store::StoreError, at: Span| ExecError::at(at, e);
    let lu = store
        .lu(&b.target.lu.text)
        .map_err(|e| store_err(e, b.target.lu.span))?;
    if let Some(dc) = &b.target.dc {
        return Err(ExecError::invalid(
            dc.span,
            "a batch for a data center (@DC) needs the worker, not available yet",
        ));
    }
    for o in &b.options.0 {
        let needs_worker =
            WORKER_OPTIONS.contains(&o.name) || (o.name == "ASYNC" && o.value == Value::Bool(true));
        if needs_worker {
            return Err(ExecError::invalid(
                o.span,
                format!("{} needs the worker, not available yet", o.name),
            ));
        }
    }
    let iface = |name: &str, at: Span| -> Result<source::Interface> {
        Ok(store
            .interface(name)
            .map_err(|e| store_err(e, at))?
            .source())
    };
    refuse_window_args(b)?;
    let params = bind_params(b)?;
    // With where a fault of the query's text is pointed at: the SQL when
    // the statement holds it, else the name that stands for it.
    let (source, query_at) = match (&b.target.selection, &b.source) {
        (Selection::Ids(ids), None) => (
            EntitySource::Ids(ids.iter().map(|t| t.value.clone()).collect()),
            span,
        ),
        (Selection::Ids(_), Some(_)) | (Selection::Group(_), Some(_)) => {
            return Err(ExecError::invalid(
                b.target.lu.span,
                "give the entities once: an id list or a group, or FROM ..., not both",
            ));
        }
        (Selection::Group(g), None) => {
            let def = store
                .group(&lu.name, &g.text)
                .map_err(|e| store_err(e, g.span))?;
            let name = def
                .interface
                .clone()
                .unwrap_or_else(|| lu.interface.clone());
            let source = EntitySource::Query {
                interface: iface(&name, g.span)?,
                sql: def.sql,
                params,
                origin: format!("instance group {}.{}", lu.name, def.name),
            };
            (source, g.span)
        }
        (Selection::All, None) => (
            EntitySource::Query {
                interface: iface(&lu.interface, b.target.lu.span)?,
                sql: lu.root_sql.clone(),
                params,
                origin: format!("ROOT query of LU {}", lu.name),
            },
            b.target.lu.span,
        ),
        (Selection::All, Some(Source::Query { interface, sql })) => (
            EntitySource::Query {
                interface: iface(&interface.text, interface.span)?,
                sql: sql.value.clone(),
                params,
                origin: format!("FROM {} USING", interface.text),
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
            ExecError::invalid(query_at, message)
        })?;
    }
    let (command_lu, command_lu_source, command_interface) = match &b.command.kind {
        CommandKind::SyncInstance { lu: l } | CommandKind::DeleteInstance { lu: l } => {
            let def = store.lu(&l.text).map_err(|e| store_err(e, l.span))?;
            let src = iface(&def.interface, l.span)?;
            (Some(def), Some(src), None)
        }
        CommandKind::Sql { interface, .. } => {
            (None, None, Some(iface(&interface.text, interface.span)?))
        }
        _ => (None, None, None),
    };
    let int = |name: &str| match b.options.get(name) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    let dur = |name: &str| match b.options.get(name) {
        Some(Value::Duration(d)) => Some(Duration::from_millis(d.millis())),
        _ => None,
    };
    let flag = |name: &str| matches!(b.options.get(name), Some(Value::Bool(true)));
    let workers = match int("MAX_WORKERS_PER_NODE") {
        None => node_workers,
        Some(n) if n >= 1 => (n as usize).min(node_workers.max(1)),
        Some(n) => {
            return Err(opt_err(
                b,
                "MAX_WORKERS_PER_NODE",
                format!("MAX_WORKERS_PER_NODE must be 1 or more, not {n}"),
            ));
        }
    };
    let max_retries = int("MAX_RETRIES").unwrap_or(0);
    if max_retries < 0 {
        return Err(opt_err(
            b,
            "MAX_RETRIES",
            "MAX_RETRIES cannot be negative".into(),
        ));
    }
    let chunk_size = match int("CHUNK_SIZE") {
        None => None,
        Some(n) if n >= 1 => Some(n as usize),
        Some(n) => {
            return Err(opt_err(
                b,
                "CHUNK_SIZE",
                format!("CHUNK_SIZE must be 1 or more, not {n}"),
            ));
        }
    };
    let max_failures = match b.options.get("MAX_FAILURES") {
        Some(Value::Int(n)) => Some(FailureLimit::Count(*n)),
        Some(Value::Percent(p)) => Some(FailureLimit::Percent(*p)),
        _ => None,
    };
    let on_done = match b.options.get("ON_DONE") {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let arguments = crate::ast::to_json(&crate::ast::Stmt {
        kind: crate::ast::Statement::Batch(Box::new(b.clone())),
        span,
    })["options"]
        .clone();
    Ok(Plan {
        command_text: crate::ast::Statement::Batch(Box::new(b.clone())).to_string(),
        lu,
        command: b.command.kind.clone(),
        source,
        command_lu,
        command_lu_source,
        command_interface,
        workers,
        node_workers: node_workers.max(1),
        max_retries,
        retry_delay: dur("RETRY_DELAY").unwrap_or(Duration::from_secs(1)),
        entity_timeout: dur("ENTITY_TIMEOUT"),
        max_failures,
        chunk_size,
        generate_first: flag("GENERATE_ENTITIES_FIRST"),
        estimated_total: int("ESTIMATED_ENTITIES_COUNT"),
        on_done,
        allow_multiple: flag("ALLOW_MULTIPLE"),
        arguments,
    })
}

/// Refuses an id query whose text cannot be a source query, whatever the
/// data: one that writes (it would run before the batch could fail),
/// holds two statements, returns no column, or whose `?` count differs
/// from the BIND_PARAMS values. Refused here, the statement stores
/// nothing (SPEC §11); found by
/// the run, it would leave a FAILED batch behind.
///
/// The query is prepared on [`source::schema`]: for a CSV interface, its
/// tables empty, so a large file is read once, by the run. An interface
/// that cannot be opened or a query the database rejects (no such table)
/// passes: the run meets it again, and the batch ends FAILED with the
/// database's message, as SPEC §11 has it for a source query that fails.
fn refuse_query_text(
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

fn opt_err(b: &BatchStmt, name: &str, msg: String) -> ExecError {
    let at = b
        .options
        .0
        .iter()
        .find(|o| o.name == name)
        .map_or(b.target.lu.span, |o| o.span);
    ExecError::invalid(at, msg)
}

fn bind_params(b: &BatchStmt) -> Result<Vec<Param>> {
    let text = b.options.get("BIND_PARAMS");
    let json = b.options.get("BIND_PARAMS_JSON");
    match (text, json) {
        (Some(_), Some(_)) => Err(opt_err(
            b,
            "BIND_PARAMS_JSON",
            "give BIND_PARAMS or BIND_PARAMS_JSON, not both".into(),
        )),
        (Some(Value::Str(t)), None) => {
            let sep = match b.options.get("BIND_PARAMS_SEPARATOR") {
                Some(Value::Str(s)) => s.as_str(),
                _ => ",",
            };
            Ok(source::bind_params(t, sep))
        }
        (None, Some(Value::Json(j))) => {
            source::bind_params_json(j).map_err(|e| opt_err(b, "BIND_PARAMS_JSON", e.to_string()))
        }
        _ => Ok(Vec::new()),
    }
}

impl EntitySource {
    /// The `source` JSON of the batch row (BATCH_INFO shows it).
    pub fn describe(&self) -> serde_json::Value {
        match self {
            EntitySource::Ids(ids) => serde_json::json!({"kind": "ids", "ids": ids}),
            EntitySource::Query {
                interface,
                sql,
                origin,
                ..
            } => serde_json::json!({
                "kind": "query", "interface": interface.name, "sql": sql, "origin": origin
            }),
            EntitySource::Fabric => serde_json::json!({"kind": "fabric"}),
        }
    }
}
