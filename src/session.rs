//! Runs statements. [`Session::run_statement`] is the one door the command
//! line (and the REPL) go through: a statement in, something to print out.
//!
//! A session holds what lasts between statements: the store (opened on first
//! use, so `SET` or `HELP` never create one), the settings, the working
//! directory relative paths are resolved against.

use crate::ast::{InterfaceKind, OutputFormat, Setting, Span, Statement, Stmt, Value};
use crate::output::{Cell, KeyValues, Output, Table};
use crate::source;
use crate::store::{self, GroupDef, InterfaceDef, LuDef, LuTableDef, Store, StoreError};
use std::path::PathBuf;
use thiserror::Error;

/// A statement that could not run: what went wrong, and where in the
/// statement (a name's span) when that is known.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct RunError {
    pub message: String,
    pub span: Option<Span>,
}

impl RunError {
    pub fn at(span: Span, message: impl Into<String>) -> RunError {
        RunError {
            message: message.into(),
            span: Some(span),
        }
    }

    fn from_store(e: StoreError, span: Span) -> RunError {
        RunError::at(span, e.to_string())
    }

    fn from_source(e: source::SourceError, span: Span) -> RunError {
        RunError::at(span, e.to_string())
    }
}

type Result<T> = std::result::Result<T, RunError>;

/// Session settings (`SET`, `SHOW SETTINGS`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub format: OutputFormat,
    pub progress: bool,
}

pub struct Session {
    store_path: PathBuf,
    store: Option<Store>,
    pub settings: Settings,
    cwd: PathBuf,
}

/// What a statement asks of the caller besides printing.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `EXIT` / `QUIT`.
    Exit,
}

impl Session {
    pub fn new(store_path: PathBuf, settings: Settings, cwd: PathBuf) -> Session {
        Session {
            store_path,
            store: None,
            settings,
            cwd,
        }
    }

    fn store(&mut self) -> Result<&Store> {
        if self.store.is_none() {
            let s = Store::open(&self.store_path).map_err(|e| RunError {
                message: e.to_string(),
                span: None,
            })?;
            self.store = Some(s);
        }
        Ok(self.store.as_ref().expect("opened above"))
    }

    /// Runs one statement. `Ok(None)` prints nothing.
    pub fn run_statement(&mut self, stmt: &Stmt) -> Result<(Option<Output>, Flow)> {
        use Statement as S;
        let out = match &stmt.kind {
            S::CreateInterface {
                or_replace,
                name,
                kind,
                location,
                options,
            } => {
                let location_text = match kind {
                    InterfaceKind::Postgres => location.value.clone(),
                    _ => source::resolve_path(&location.value, &self.cwd)
                        .to_string_lossy()
                        .into_owned(),
                };
                let delimiter = match options.get("DELIMITER") {
                    Some(Value::Str(d)) if d.len() == 1 => d.chars().next().unwrap_or(','),
                    Some(Value::Str(d)) => {
                        let at = options
                            .0
                            .iter()
                            .find(|o| o.name == "DELIMITER")
                            .map_or(stmt.span, |o| o.span);
                        return Err(RunError::at(
                            at,
                            format!("DELIMITER must be one ASCII character, not '{d}'"),
                        ));
                    }
                    _ => ',',
                };
                let header = !matches!(options.get("HEADER"), Some(Value::Bool(false)));
                let def = InterfaceDef {
                    name: name.text.clone(),
                    kind: *kind,
                    location: location_text,
                    header,
                    delimiter,
                    created_at: store::now(),
                };
                source::check(&def.source())
                    .map_err(|e| RunError::from_source(e, location.span))?;
                self.store()?
                    .create_interface(&def, *or_replace)
                    .map_err(|e| RunError::from_store(e, name.span))?;
                message(format!(
                    "interface {} created ({} {})",
                    def.name,
                    kind.keyword(),
                    def.location
                ))
            }
            S::DropInterface { name } => {
                self.store()?
                    .drop_interface(&name.text)
                    .map_err(|e| RunError::from_store(e, name.span))?;
                message(format!("interface {} dropped", name.text))
            }
            S::ShowInterfaces => {
                let mut t =
                    Table::new(["Name", "Type", "Location", "Header", "Delimiter", "Created"]);
                for i in self
                    .store()?
                    .interfaces()
                    .map_err(|e| RunError::from_store(e, stmt.span))?
                {
                    let csv = i.kind == InterfaceKind::Csv;
                    t.rows.push(vec![
                        Cell::Text(i.name),
                        Cell::Text(i.kind.keyword().into()),
                        Cell::Text(i.location),
                        if csv {
                            Cell::Bool(i.header)
                        } else {
                            Cell::Null
                        },
                        if csv {
                            Cell::Text(i.delimiter.to_string())
                        } else {
                            Cell::Null
                        },
                        time_cell(&i.created_at),
                    ]);
                }
                Some(Output::Table(t))
            }
            S::CreateLu {
                or_replace,
                name,
                interface,
                root,
                tables,
            } => {
                let store = self.store()?;
                let iface = store
                    .interface(&interface.text)
                    .map_err(|e| RunError::from_store(e, interface.span))?;
                // Every query must compile on the interface now, not fail
                // for each entity later.
                let conn = source::connect(&iface.source())
                    .map_err(|e| RunError::from_source(e, interface.span))?;
                let compile = |sql: &str, what: String, span: Span| -> Result<()> {
                    conn.prepare(sql).map(|_| ()).map_err(|e| {
                        RunError::at(
                            span,
                            format!(
                                "the {what} query does not run on interface {}: {e}",
                                iface.name
                            ),
                        )
                    })
                };
                compile(&root.value, "ROOT".into(), root.span)?;
                for t in tables {
                    compile(&t.sql.value, format!("TABLE {}", t.name.text), t.sql.span)?;
                }
                let def = LuDef {
                    name: name.text.clone(),
                    interface: iface.name.clone(),
                    root_sql: root.value.clone(),
                    tables: tables
                        .iter()
                        .map(|t| LuTableDef {
                            name: t.name.text.clone(),
                            key: t.key.iter().map(|k| k.text.clone()).collect(),
                            sql: t.sql.value.clone(),
                        })
                        .collect(),
                    created_at: store::now(),
                };
                store
                    .create_lu(&def, *or_replace)
                    .map_err(|e| RunError::from_store(e, name.span))?;
                message(format!(
                    "LU {} created on interface {} ({} table{})",
                    def.name,
                    def.interface,
                    def.tables.len(),
                    if def.tables.len() == 1 { "" } else { "s" }
                ))
            }
            S::DropLu { name } => {
                self.store()?
                    .drop_lu(&name.text)
                    .map_err(|e| RunError::from_store(e, name.span))?;
                message(format!("LU {} dropped", name.text))
            }
            S::ShowLus => {
                let mut t = Table::new(["Name", "Interface", "Tables", "Root query"]);
                for lu in self
                    .store()?
                    .lus()
                    .map_err(|e| RunError::from_store(e, stmt.span))?
                {
                    let tables: Vec<&str> = lu.tables.iter().map(|t| t.name.as_str()).collect();
                    t.rows.push(vec![
                        Cell::Text(lu.name.clone()),
                        Cell::Text(lu.interface.clone()),
                        Cell::Text(tables.join(", ")),
                        Cell::Text(lu.root_sql.clone()),
                    ]);
                }
                Some(Output::Table(t))
            }
            S::DescribeLu { name } => {
                let lu = self
                    .store()?
                    .lu(&name.text)
                    .map_err(|e| RunError::from_store(e, name.span))?;
                let mut t = Table::new(["Part", "Name", "Key", "Query"]);
                t.rows.push(vec![
                    Cell::Text("ROOT".into()),
                    Cell::Text(lu.name.clone()),
                    Cell::Null,
                    Cell::Text(lu.root_sql.clone()),
                ]);
                for tb in &lu.tables {
                    let key = if tb.key.is_empty() {
                        "(first column)".to_string()
                    } else {
                        tb.key.join(", ")
                    };
                    t.rows.push(vec![
                        Cell::Text("TABLE".into()),
                        Cell::Text(tb.name.clone()),
                        Cell::Text(key),
                        Cell::Text(tb.sql.clone()),
                    ]);
                }
                let mut out = Some(Output::Table(t));
                if let Some(Output::Table(t)) = &mut out {
                    t.rows.insert(
                        0,
                        vec![
                            Cell::Text("INTERFACE".into()),
                            Cell::Text(lu.interface.clone()),
                            Cell::Null,
                            Cell::Null,
                        ],
                    );
                }
                out
            }
            S::CreateInstanceGroup {
                or_replace,
                lu,
                group,
                interface,
                sql,
            } => {
                let store = self.store()?;
                let lu_def = store
                    .lu(&lu.text)
                    .map_err(|e| RunError::from_store(e, lu.span))?;
                let (iface_name, iface_span) = match interface {
                    Some(i) => (i.text.clone(), i.span),
                    None => (lu_def.interface.clone(), lu.span),
                };
                let iface = store
                    .interface(&iface_name)
                    .map_err(|e| RunError::from_store(e, iface_span))?;
                let conn = source::connect(&iface.source())
                    .map_err(|e| RunError::from_source(e, iface_span))?;
                let columns = source::column_count(&conn, &sql.value)
                    .map_err(|e| RunError::from_source(e, sql.span))?;
                if columns != 1 {
                    return Err(RunError::at(
                        sql.span,
                        format!("the query must return one column only; it returns {columns}"),
                    ));
                }
                let def = GroupDef {
                    lu: lu_def.name.clone(),
                    name: group.text.clone(),
                    interface: interface.as_ref().map(|_| iface.name.clone()),
                    sql: sql.value.clone(),
                    created_at: store::now(),
                };
                store
                    .create_group(&def, *or_replace)
                    .map_err(|e| RunError::from_store(e, group.span))?;
                message(format!("instance group {}.{} created", def.lu, def.name))
            }
            S::DropInstanceGroup { lu, group } => {
                self.store()?
                    .drop_group(&lu.text, &group.text)
                    .map_err(|e| RunError::from_store(e, group.span))?;
                message(format!("instance group {}.{} dropped", lu.text, group.text))
            }
            S::ShowInstanceGroups { lu } => {
                let (filter, span) = match lu {
                    Some(n) => (Some(n.text.as_str()), n.span),
                    None => (None, stmt.span),
                };
                let groups = self
                    .store()?
                    .groups(filter)
                    .map_err(|e| RunError::from_store(e, span))?;
                let mut t = Table::new(["LU", "Group", "Interface", "Query"]);
                for g in groups {
                    t.rows.push(vec![
                        Cell::Text(g.lu),
                        Cell::Text(g.name),
                        g.interface.map_or(Cell::Null, Cell::Text),
                        Cell::Text(g.sql),
                    ]);
                }
                Some(Output::Table(t))
            }
            S::Set { setting } => {
                match setting {
                    Setting::Format(f) => self.settings.format = *f,
                    Setting::Progress(p) => self.settings.progress = *p,
                }
                None
            }
            S::ShowSettings => {
                let mut kv = KeyValues::default();
                kv.rows.push((
                    "format".into(),
                    Cell::Text(self.settings.format.name().into()),
                ));
                kv.rows.push((
                    "progress".into(),
                    Cell::Text(if self.settings.progress { "on" } else { "off" }.into()),
                ));
                kv.rows.push((
                    "store".into(),
                    Cell::Text(self.store_path.display().to_string()),
                ));
                Some(Output::KeyValues(kv))
            }
            S::Exit => return Ok((None, Flow::Exit)),
            other => {
                return Err(RunError::at(
                    stmt.span,
                    format!(
                        "{} is not implemented yet in this version of batchsh",
                        other.name()
                    ),
                ));
            }
        };
        Ok((out, Flow::Continue))
    }
}

fn message(text: String) -> Option<Output> {
    Some(Output::Message(text))
}

/// A stored RFC 3339 time as a cell (shown in local time by the table).
fn time_cell(s: &str) -> Cell {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Cell::Time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| Cell::Text(s.to_string()))
}

impl InterfaceDef {
    /// The data-source view of a catalog entry.
    pub fn source(&self) -> source::Interface {
        let mut i = source::Interface::new(self.name.clone(), self.kind, self.location.clone());
        i.header = self.header;
        i.delimiter = u8::try_from(self.delimiter).unwrap_or(b',');
        i
    }
}
