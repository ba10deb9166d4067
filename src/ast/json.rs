//! The JSON form of a statement, printed by `batchsh parse`: a tooling
//! interface (documented in the README), so field names are a contract.
//!
//! Every object has `statement` (the canonical name), `canonical` (the
//! canonical text) and `span` (byte offsets); the other fields depend on the
//! statement and are `null` when absent.

use super::*;
use serde_json::{Map, Value as J, json};

pub fn to_json(stmt: &Stmt) -> J {
    let mut o = Map::new();
    o.insert("statement".into(), J::from(stmt.kind.name()));
    o.insert("canonical".into(), J::from(stmt.kind.to_string()));
    o.insert(
        "span".into(),
        json!({"start": stmt.span.start, "end": stmt.span.end}),
    );
    fields(&stmt.kind, &mut o);
    J::Object(o)
}

fn name(n: &Name) -> J {
    J::from(n.text.as_str())
}

fn opt_name(n: &Option<Name>) -> J {
    n.as_ref().map_or(J::Null, name)
}

fn text(t: &Text) -> J {
    J::from(t.value.as_str())
}

fn opt_text(t: &Option<Text>) -> J {
    t.as_ref().map_or(J::Null, text)
}

fn ids(list: &[Text]) -> J {
    J::Array(list.iter().map(text).collect())
}

pub(super) fn options(opts: &Options) -> J {
    let mut m = Map::new();
    for o in &opts.0 {
        m.insert(o.name.to_string(), value(&o.value));
    }
    J::Object(m)
}

/// Booleans and numbers as JSON booleans and numbers; durations,
/// percentages and schedules as their canonical text ("30s", "5%");
/// JSON values as themselves; a statement as its canonical text.
fn value(v: &Value) -> J {
    match v {
        Value::Bool(b) => J::from(*b),
        Value::Int(n) => J::from(*n),
        Value::Number(n) => J::from(*n),
        Value::Duration(d) => J::from(d.to_string()),
        Value::Percent(p) => J::from(format!("{p}%")),
        Value::Str(s) => J::from(s.as_str()),
        Value::Json(j) => j.clone(),
        Value::Schedule(s) => J::from(s.to_string()),
        Value::Statement(s) => J::from(s.to_string()),
    }
}

fn command(c: &EntityCommand) -> J {
    let mut m = Map::new();
    m.insert("command".into(), J::from(c.kind.name()));
    match &c.kind {
        CommandKind::SyncInstance { lu } | CommandKind::DeleteInstance { lu } => {
            m.insert("lu".into(), name(lu));
        }
        CommandKind::Exec { program, args } => {
            m.insert("program".into(), J::from(program.as_str()));
            let a = args
                .iter()
                .map(|a| match a {
                    Arg::Literal(s) => J::from(s.as_str()),
                    Arg::EntityId => json!({"placeholder": "?"}),
                    Arg::Param(p) => json!({"param": p}),
                })
                .collect();
            m.insert("args".into(), J::Array(a));
        }
        CommandKind::Shell { script } => {
            m.insert("script".into(), J::from(script.as_str()));
        }
        CommandKind::Pipe { program, args } => {
            m.insert("program".into(), J::from(program.as_str()));
            let a = args.iter().map(|a| J::from(a.as_str())).collect();
            m.insert("args".into(), J::Array(a));
        }
        CommandKind::Sql {
            interface,
            statement,
        } => {
            m.insert("interface".into(), name(interface));
            m.insert("statement".into(), J::from(statement.as_str()));
        }
        CommandKind::Echo => {}
        CommandKind::Sleep { ms } => {
            m.insert("ms".into(), J::from(*ms));
        }
    }
    m.insert("text".into(), J::from(c.kind.to_string()));
    J::Object(m)
}

fn batch(b: &BatchStmt, o: &mut Map<String, J>) {
    let t = &b.target;
    o.insert("lu".into(), name(&t.lu));
    o.insert("dc".into(), opt_name(&t.dc));
    let (group, id_list) = match &t.selection {
        Selection::All => (J::Null, J::Null),
        Selection::Group(g) => (name(g), J::Null),
        Selection::Ids(list) => (J::Null, ids(list)),
    };
    o.insert("group".into(), group);
    o.insert("ids".into(), id_list);
    let (interface, sql, from_fabric) = match &b.source {
        None | Some(Source::Stdin) | Some(Source::File(_)) => (J::Null, J::Null, false),
        Some(Source::Fabric) => (J::Null, J::Null, true),
        Some(Source::Query { interface, sql }) => (name(interface), text(sql), false),
    };
    o.insert("interface".into(), interface);
    o.insert("sql".into(), sql);
    o.insert("from_fabric".into(), J::from(from_fabric));
    o.insert(
        "from_stdin".into(),
        J::from(matches!(b.source, Some(Source::Stdin))),
    );
    o.insert(
        "from_file".into(),
        match &b.source {
            Some(Source::File(path)) => text(path),
            _ => J::Null,
        },
    );
    o.insert("fabric_command".into(), command(&b.command));
    o.insert("options".into(), options(&b.options));
}

fn fields(s: &Statement, o: &mut Map<String, J>) {
    use Statement::*;
    let mut put = |k: &str, v: J| {
        o.insert(k.to_string(), v);
    };
    match s {
        CreateInterface {
            or_replace,
            name: n,
            kind,
            location,
            options: opts,
        } => {
            put("or_replace", J::from(*or_replace));
            put("name", name(n));
            put("type", J::from(kind.keyword()));
            put(
                &kind.location_keyword().to_ascii_lowercase(),
                text(location),
            );
            put("options", options(opts));
        }
        DropInterface { name: n }
        | DropLu { name: n }
        | DescribeLu { name: n }
        | DescribeInterface { name: n }
        | DropSchedule { name: n } => put("name", name(n)),
        ShowInterfaces | ShowLus | ShowSchedules | ShowNodes | ShowSettings | Exit => {}
        CreateLu {
            or_replace,
            name: n,
            interface,
            root,
            tables,
        } => {
            put("or_replace", J::from(*or_replace));
            put("name", name(n));
            put("interface", name(interface));
            put("root", text(root));
            let t = tables
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name.text,
                        "key": t.key.iter().map(|k| k.text.as_str()).collect::<Vec<_>>(),
                        "sql": t.sql.value,
                    })
                })
                .collect();
            put("tables", J::Array(t));
        }
        Get { lu, id } => {
            put("lu", name(lu));
            put("id", text(id));
        }
        CreateInstanceGroup {
            or_replace,
            lu,
            group,
            interface,
            sql,
        } => {
            put("or_replace", J::from(*or_replace));
            put("lu", name(lu));
            put("group", name(group));
            put("interface", opt_name(interface));
            put("sql", text(sql));
        }
        DropInstanceGroup { lu, group } => {
            put("lu", name(lu));
            put("group", name(group));
        }
        ShowInstanceGroups { lu } => put("lu", opt_name(lu)),
        Batch(b) => batch(b, o),
        Explain(b) => {
            put(
                "explains",
                J::from(if b.migrate { "MIGRATE" } else { "BATCH" }),
            );
            batch(b, o);
        }
        BatchPause { bid }
        | BatchResume { bid }
        | BatchCancel { bid }
        | BatchWaitoff { bid }
        | BatchInfo { bid }
        | BatchSummary { bid }
        | BatchHistory { bid } => put("bid", opt_text(bid)),
        BatchRetry { bid, options: opts }
        | BatchEdit { bid, options: opts }
        | BatchWait { bid, options: opts }
        | BatchDetails { bid, options: opts }
        | BatchInProcess { bid, options: opts }
        | BatchOutput { bid, options: opts } => {
            put("bid", opt_text(bid));
            put("options", options(opts));
        }
        JobHistory {
            name: n,
            options: opts,
        } => {
            put("name", opt_text(n));
            put("options", options(opts));
        }
        BatchAppend { bid, source } => {
            put("bid", text(bid));
            match source {
                AppendSource::Ids(list) => {
                    put("ids", ids(list));
                    put("interface", J::Null);
                    put("sql", J::Null);
                }
                AppendSource::Query { interface, sql } => {
                    put("ids", J::Null);
                    put("interface", name(interface));
                    put("sql", text(sql));
                }
            }
        }
        BatchPurge { options: opts } | BatchList { options: opts } => put("options", options(opts)),
        Job {
            job_type,
            options: opts,
            ..
        } => {
            put("job_type", J::from(job_type.keyword()));
            put("options", options(opts));
        }
        JobStatus {
            job_type,
            name: n,
            options: opts,
        } => {
            put(
                "job_type",
                job_type.map_or(J::Null, |t| J::from(t.keyword())),
            );
            put("name", opt_text(n));
            put("options", options(opts));
        }
        Schedule {
            name: n,
            when,
            body,
        } => {
            put("name", name(n));
            let w = match when {
                ScheduleSpec::Cron(c) => json!({"cron": c}),
                ScheduleSpec::Every(d) => json!({"every": when.to_string(), "every_ms": d.0}),
                ScheduleSpec::At(_) => json!({"at": when.to_string()}),
            };
            put("when", w);
            put("body", to_json(body));
        }
        WindowStatus {
            name: n,
            options: opts,
        } => {
            put("name", opt_text(n));
            put("options", options(opts));
        }
        WindowOpen {
            name: n,
            options: opts,
        }
        | WindowFail {
            name: n,
            options: opts,
        } => {
            put("name", text(n));
            put("options", options(opts));
        }
        WindowClose { name: n } => put("name", text(n)),
        WindowSet {
            name: n,
            options: opts,
            params,
        } => {
            put("name", text(n));
            put("options", options(opts));
            put(
                "params",
                J::Object(
                    params
                        .iter()
                        .map(|p| (p.name.value.clone(), J::String(p.value.value.clone())))
                        .collect(),
                ),
            );
        }
        Help { topic } => put("topic", opt_name(topic)),
        Set { setting } => match setting {
            Setting::Format(f) => {
                put("setting", J::from("FORMAT"));
                put("value", J::from(f.name()));
            }
            Setting::Progress(on) => {
                put("setting", J::from("PROGRESS"));
                put("value", J::from(*on));
            }
            Setting::Expanded(e) => {
                put("setting", J::from("EXPANDED"));
                put("value", J::from(e.name()));
            }
            Setting::Timing(on) => {
                put("setting", J::from("TIMING"));
                put("value", J::from(*on));
            }
            Setting::Pager(on) => {
                put("setting", J::from("PAGER"));
                put("value", J::from(*on));
            }
        },
    }
}
