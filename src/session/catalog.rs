//! The catalog statements: interfaces, LUs, instance groups, and `GET`.

use super::{Result, Session, StatementError, message, time_cell};
use crate::ast::{InterfaceKind, Span, Statement, Stmt};
use crate::output::{Cell, Output, Table};
use crate::source;
use crate::store::{self, GroupDef, InterfaceDef, LuDef, LuTableDef};

impl Session {
    /// Runs a catalog statement.
    pub(super) fn catalog(&mut self, stmt: &Stmt) -> Result<Option<Output>> {
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
                let csv = crate::analyze::InterfaceOptions::decode(options)?;
                let def = InterfaceDef {
                    name: name.text.clone(),
                    kind: *kind,
                    location: location_text,
                    header: csv.header,
                    delimiter: csv.delimiter,
                    types: csv.types,
                    created_at: store::now(),
                };
                source::check(&def.source()).map_err(|e| StatementError::at(location.span, e))?;
                let store = self.store()?;
                let replaced = store
                    .find_interface(&def.name)
                    .map_err(|e| StatementError::at(name.span, e))?
                    .is_some();
                store
                    .create_interface(&def, *or_replace)
                    .map_err(|e| StatementError::at(name.span, e))?;
                message(format!(
                    "interface {} {} ({} {})",
                    def.name,
                    created_or_replaced(replaced),
                    kind.keyword(),
                    def.location
                ))
            }
            S::DropInterface { name } => {
                self.store()?
                    .drop_interface(&name.text)
                    .map_err(|e| StatementError::at(name.span, e))?;
                message(format!("interface {} dropped", name.text))
            }
            S::ShowInterfaces => {
                let mut t = Table::new([
                    "Name",
                    "Type",
                    "Location",
                    "Header",
                    "Delimiter",
                    "Types",
                    "Created",
                ]);
                for i in self
                    .store()?
                    .interfaces()
                    .map_err(|e| StatementError::at(stmt.span, e))?
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
                        if csv { Cell::Bool(i.types) } else { Cell::Null },
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
                    .map_err(|e| StatementError::at(interface.span, e))?;
                // Every query must compile on the interface, and only
                // read, now, not fail for each entity later. Compiling needs
                // the schema only: a CSV interface's rows are not loaded.
                let mut conn = source::open_schema(&iface.source())
                    .map_err(|e| StatementError::at(interface.span, e))?;
                let mut compile = |sql: &str, what: String, span: Span| -> Result<()> {
                    conn.check_read_query(sql).map_err(|e| {
                        let message = match e {
                            source::SourceError::Query { message, .. } => format!(
                                "the {what} query does not run on interface {}: {message}",
                                iface.name
                            ),
                            e => format!("the {what} query is refused: {e}"),
                        };
                        StatementError::refused(span, message)
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
                crate::lu::check_table_names(&def).map_err(|e| StatementError::at(name.span, e))?;
                let replaced = store
                    .find_lu(&def.name)
                    .map_err(|e| StatementError::at(name.span, e))?;
                store
                    .create_lu(&def, *or_replace)
                    .map_err(|e| StatementError::at(name.span, e))?;
                message(format!(
                    "LU {} {} on interface {} ({} table{})",
                    // Replacing keeps the LU's first name.
                    replaced.as_ref().map_or(&def.name, |old| &old.name),
                    created_or_replaced(replaced.is_some()),
                    def.interface,
                    def.tables.len(),
                    if def.tables.len() == 1 { "" } else { "s" }
                ))
            }
            S::DropLu { name } => {
                let home = self.home.clone();
                let store = self.store()?;
                let def = store
                    .lu(&name.text)
                    .map_err(|e| StatementError::at(name.span, e))?;
                if let Some(user) = store
                    .drop_lu_unless_in_use(&def.name)
                    .map_err(|e| StatementError::at(name.span, e))?
                {
                    return Err(StatementError::refused(
                        name.span,
                        format!(
                            "LU {} is in use by batch {bid}, which process {} on node {} is \
                             running; dropping it now would delete the data that batch \
                             reads or writes. Wait for the batch to end, or cancel it \
                             (BATCH_CANCEL '{bid}'), then drop the LU",
                            def.name,
                            user.owner_pid.unwrap_or_default(),
                            user.owner_node,
                            bid = user.bid,
                        ),
                    ));
                }
                // The LU's synced data goes with its definition, so that an
                // LU created again under this name starts empty.
                if let Ok(path) = crate::lu::store_path(&home, &def.name) {
                    for suffix in ["", "-wal", "-shm"] {
                        let mut p = path.clone().into_os_string();
                        p.push(suffix);
                        let _ = std::fs::remove_file(p);
                    }
                }
                message(format!("LU {} dropped, with its synced data", def.name))
            }
            S::ShowLus => {
                let mut t = Table::new(["Name", "Interface", "Tables", "Root query"]);
                for lu in self
                    .store()?
                    .lus()
                    .map_err(|e| StatementError::at(stmt.span, e))?
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
            S::DescribeInterface { name } => {
                let def = self
                    .store()?
                    .interface(&name.text)
                    .map_err(|e| StatementError::at(name.span, e))?;
                let columns = source::describe(&def.source())
                    .map_err(|e| StatementError::at(name.span, e))?;
                let mut t = Table::new(["Table", "Column", "Type"]);
                for c in columns {
                    t.rows.push(vec![
                        Cell::Text(c.table),
                        Cell::Text(c.name),
                        Cell::Text(c.ty),
                    ]);
                }
                Some(Output::Table(t))
            }
            S::DescribeLu { name } => {
                let lu = self
                    .store()?
                    .lu(&name.text)
                    .map_err(|e| StatementError::at(name.span, e))?;
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
                    .map_err(|e| StatementError::at(lu.span, e))?;
                let (iface_name, iface_span) = match interface {
                    Some(i) => (i.text.clone(), i.span),
                    None => (lu_def.interface.clone(), lu.span),
                };
                let iface = store
                    .interface(&iface_name)
                    .map_err(|e| StatementError::at(iface_span, e))?;
                let columns = source::open_schema(&iface.source())
                    .and_then(|mut conn| conn.column_count(&sql.value))
                    .map_err(|e| StatementError::at(sql.span, e))?;
                if columns != 1 {
                    return Err(StatementError::refused(
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
                let replaced = store
                    .find_group(&def.lu, &def.name)
                    .map_err(|e| StatementError::at(group.span, e))?
                    .is_some();
                store
                    .create_group(&def, *or_replace)
                    .map_err(|e| StatementError::at(group.span, e))?;
                message(format!(
                    "instance group {}.{} {}",
                    def.lu,
                    def.name,
                    created_or_replaced(replaced)
                ))
            }
            S::DropInstanceGroup { lu, group } => {
                self.store()?
                    .drop_group(&lu.text, &group.text)
                    .map_err(|e| StatementError::at(group.span, e))?;
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
                    .map_err(|e| StatementError::at(span, e))?;
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
            S::Get { lu, id } => {
                let home = self.home.clone();
                let def = self
                    .store()?
                    .lu(&lu.text)
                    .map_err(|e| StatementError::at(lu.span, e))?;
                let tables = crate::lu::get_instance(&home, &def, &id.value)
                    .map_err(|e| StatementError::at(id.span, e))?;
                Some(super::get::long_table(tables))
            }
            _ => unreachable!("catalog() takes catalog statements"),
        };
        Ok(out)
    }
}

/// What a CREATE [OR REPLACE] did.
fn created_or_replaced(replaced: bool) -> &'static str {
    if replaced { "replaced" } else { "created" }
}
