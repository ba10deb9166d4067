//! Canonical text: upper-case keywords, one space between tokens, single
//! quotes (doubled inside), names as written. Statements held inside a
//! statement (a job's COMMAND) print as `$$ ... $$` so they stay readable.
//! `parse(print(s)) == s` for every statement; the tests hold it to that.

use super::*;
use std::fmt::{self, Display, Formatter, Write};

/// `'text'` with `'` doubled.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Code held in a string: `$$ ... $$` unless the code itself holds `$$`.
fn code(s: &str) -> String {
    if s.contains("$$") {
        quote(s)
    } else {
        format!("$$ {s} $$")
    }
}

fn q(t: &Text) -> String {
    quote(&t.value)
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        use Statement::*;
        match self {
            CreateInterface {
                or_replace,
                name,
                kind,
                location,
                options,
            } => {
                write!(
                    f,
                    "CREATE {}INTERFACE {} TYPE {} {} {}",
                    or_replace_kw(*or_replace),
                    name.text,
                    kind.keyword(),
                    kind.location_keyword(),
                    q(location)
                )?;
                with_options(f, options)
            }
            DropInterface { name } => write!(f, "DROP INTERFACE {}", name.text),
            ShowInterfaces => f.write_str("SHOW INTERFACES"),
            CreateLu {
                or_replace,
                name,
                interface,
                root,
                tables,
            } => {
                write!(
                    f,
                    "CREATE {}LU {} FROM {} ROOT ({})",
                    or_replace_kw(*or_replace),
                    name.text,
                    interface.text,
                    q(root)
                )?;
                for t in tables {
                    write!(f, " TABLE {}", t.name.text)?;
                    if !t.key.is_empty() {
                        let cols: Vec<&str> = t.key.iter().map(|k| k.text.as_str()).collect();
                        write!(f, " KEY ({})", cols.join(", "))?;
                    }
                    write!(f, " ({})", q(&t.sql))?;
                }
                Ok(())
            }
            DropLu { name } => write!(f, "DROP LU {}", name.text),
            ShowLus => f.write_str("SHOW LUS"),
            DescribeLu { name } => write!(f, "DESCRIBE LU {}", name.text),
            DescribeInterface { name } => write!(f, "DESCRIBE INTERFACE {}", name.text),
            Get { lu, id } => write!(f, "GET {}.{}", lu.text, q(id)),
            CreateInstanceGroup {
                or_replace,
                lu,
                group,
                interface,
                sql,
            } => {
                write!(
                    f,
                    "CREATE {}INSTANCE GROUP {}.{}",
                    or_replace_kw(*or_replace),
                    lu.text,
                    group.text
                )?;
                if let Some(i) = interface {
                    write!(f, " FROM {}", i.text)?;
                }
                write!(f, " USING ({})", q(sql))
            }
            DropInstanceGroup { lu, group } => {
                write!(f, "DROP INSTANCE GROUP {}.{}", lu.text, group.text)
            }
            ShowInstanceGroups { lu } => {
                f.write_str("SHOW INSTANCE GROUPS")?;
                if let Some(lu) = lu {
                    write!(f, " {}", lu.text)?;
                }
                Ok(())
            }
            Batch(b) => b.fmt(f),
            Explain(b) => write!(f, "EXPLAIN {b}"),
            BatchPause { bid }
            | BatchResume { bid }
            | BatchCancel { bid }
            | BatchWaitoff { bid }
            | BatchInfo { bid }
            | BatchSummary { bid }
            | BatchHistory { bid } => {
                f.write_str(self.name())?;
                opt_bid(f, bid)
            }
            BatchRetry { bid, options }
            | BatchEdit { bid, options }
            | BatchWait { bid, options }
            | BatchDetails { bid, options }
            | BatchInProcess { bid, options }
            | BatchOutput { bid, options }
            | JobHistory { name: bid, options } => {
                f.write_str(self.name())?;
                opt_bid(f, bid)?;
                bare_options(f, options)
            }
            BatchAppend { bid, source } => {
                write!(f, "BATCH_APPEND {}", q(bid))?;
                match source {
                    AppendSource::Ids(ids) => write!(f, " {}", id_list(ids)),
                    AppendSource::Query { interface, sql } => {
                        write!(f, " FROM {} USING ({})", interface.text, q(sql))
                    }
                }
            }
            BatchPurge { options } | BatchList { options } => {
                f.write_str(self.name())?;
                bare_options(f, options)
            }
            Job {
                verb,
                job_type,
                options,
            } => {
                write!(f, "{} {}", verb.keyword(), job_type.keyword())?;
                bare_options(f, options)
            }
            JobStatus {
                job_type,
                name,
                options,
            } => {
                f.write_str("JOBSTATUS")?;
                if let Some(t) = job_type {
                    write!(f, " {}", t.keyword())?;
                }
                if let Some(n) = name {
                    write!(f, " {}", q(n))?;
                }
                with_options(f, options)
            }
            Schedule { name, when, body } => {
                let (form, text) = match when {
                    ScheduleSpec::Cron(c) => ("CRON", c.clone()),
                    ScheduleSpec::Every(_) => ("EVERY", when.to_string()),
                    ScheduleSpec::At(_) => ("AT", when.to_string()),
                };
                write!(
                    f,
                    "SCHEDULE {} {form} {} DO {}",
                    name.text,
                    quote(&text),
                    body
                )
            }
            ShowSchedules => f.write_str("SHOW SCHEDULES"),
            ShowNodes => f.write_str("SHOW NODES"),
            DropSchedule { name } => {
                let plain = name
                    .text
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name
                        .text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    write!(f, "DROP SCHEDULE {}", name.text)
                } else {
                    write!(f, "DROP SCHEDULE {}", quote(&name.text))
                }
            }
            WindowStatus { name, options } => {
                f.write_str(self.name())?;
                opt_bid(f, name)?;
                bare_options(f, options)
            }
            WindowOpen { name, options } | WindowFail { name, options } => {
                write!(f, "{} {}", self.name(), q(name))?;
                bare_options(f, options)
            }
            WindowClose { name } => write!(f, "{} {}", self.name(), q(name)),
            WindowSet {
                name,
                options,
                params,
            } => {
                write!(f, "{} {}", self.name(), q(name))?;
                bare_options(f, options)?;
                for p in params {
                    write!(f, " {}={}", p.name.value, q(&p.value))?;
                }
                Ok(())
            }
            Help { topic } => {
                f.write_str("HELP")?;
                if let Some(t) = topic {
                    write!(f, " {}", t.text)?;
                }
                Ok(())
            }
            Set { setting } => match setting {
                Setting::Format(fmt) => write!(f, "SET FORMAT {}", fmt.name()),
                Setting::Progress(on) => write!(f, "SET PROGRESS {}", on_off(*on)),
                Setting::Expanded(e) => write!(f, "SET EXPANDED {}", e.name()),
                Setting::Timing(on) => write!(f, "SET TIMING {}", on_off(*on)),
                Setting::Pager(on) => write!(f, "SET PAGER {}", on_off(*on)),
            },
            ShowSettings => f.write_str("SHOW SETTINGS"),
            Exit => f.write_str("EXIT"),
        }
    }
}

fn or_replace_kw(yes: bool) -> &'static str {
    if yes { "OR REPLACE " } else { "" }
}

fn opt_bid(f: &mut Formatter<'_>, bid: &Option<Text>) -> fmt::Result {
    match bid {
        Some(b) => write!(f, " {}", q(b)),
        None => Ok(()),
    }
}

fn id_list(ids: &[Text]) -> String {
    let parts: Vec<String> = ids.iter().map(q).collect();
    format!("({})", parts.join(", "))
}

/// ` NAME=value ...` (statements whose options follow without `WITH`).
fn bare_options(f: &mut Formatter<'_>, options: &Options) -> fmt::Result {
    for o in &options.0 {
        write!(f, " {}={}", o.name, o.value)?;
    }
    Ok(())
}

/// ` WITH NAME=value ...`, or nothing.
fn with_options(f: &mut Formatter<'_>, options: &Options) -> fmt::Result {
    if options.is_empty() {
        return Ok(());
    }
    f.write_str(" WITH")?;
    bare_options(f, options)
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Duration(d) => write!(f, "'{d}'"),
            Value::Percent(p) => write!(f, "'{p}%'"),
            Value::Str(s) => f.write_str(&quote(s)),
            Value::Json(j) => f.write_str(&quote(&j.to_string())),
            Value::Schedule(s) => f.write_str(&quote(&s.to_string())),
            Value::Statement(s) => f.write_str(&code(&s.to_string())),
        }
    }
}

impl Display for BatchStmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            if self.migrate { "MIGRATE" } else { "BATCH" },
            self.target
        )?;
        match &self.source {
            None => {}
            Some(Source::Fabric) => f.write_str(" FROM FABRIC")?,
            Some(Source::Stdin) => f.write_str(" FROM STDIN")?,
            Some(Source::File(path)) => write!(f, " FROM FILE {}", q(path))?,
            Some(Source::Query { interface, sql }) => {
                write!(f, " FROM {} USING ({})", interface.text, q(sql))?
            }
        }
        if !self.migrate {
            write!(f, " FABRIC_COMMAND={}", quote(&self.command.to_string()))?;
        }
        with_options(f, &self.options)
    }
}

impl Display for Target {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lu.text)?;
        if let Some(dc) = &self.dc {
            write!(f, "@{}", dc.text)?;
        }
        match &self.selection {
            Selection::All => Ok(()),
            Selection::Group(g) => write!(f, ".{}", g.text),
            Selection::Ids(ids) => write!(f, ".{}", id_list(ids)),
        }
    }
}

impl Display for EntityCommand {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl Display for CommandKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            CommandKind::SyncInstance { lu } => write!(f, "sync_instance {}.?", lu.text),
            CommandKind::DeleteInstance { lu } => write!(f, "delete_instance {}.?", lu.text),
            CommandKind::Exec { program, args } => {
                write!(f, "exec {}", quote(program))?;
                for a in args {
                    f.write_char(' ')?;
                    match a {
                        Arg::Literal(s) => f.write_str(&quote(s))?,
                        Arg::EntityId => f.write_char('?')?,
                        Arg::Param(p) => write!(f, ":{p}")?,
                    }
                }
                Ok(())
            }
            CommandKind::Shell { script } => write!(f, "shell {}", quote(script)),
            CommandKind::Pipe { program, args } => {
                write!(f, "pipe {}", quote(program))?;
                for a in args {
                    write!(f, " {}", quote(a))?;
                }
                Ok(())
            }
            CommandKind::Sql {
                interface,
                statement,
            } => write!(f, "sql {} {}", interface.text, quote(statement)),
            CommandKind::Echo => f.write_str("echo ?"),
            CommandKind::Sleep { ms } => write!(f, "sleep {ms} ?"),
        }
    }
}

/// A boolean setting as `SET` spells it.
pub fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
