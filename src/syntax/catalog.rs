//! The catalog (SPEC §3): interfaces, logical units, instance groups, and
//! the SHOW / DROP / DESCRIBE / GET statements around them. `SHOW` and `DROP`
//! also lead to schedules and settings, so those forms live here too.

use super::batch::{paren_string, using_sql};
use super::error::{ErrorKind, PErr};
use super::keywords::CSV_OPTIONS;
use super::lexeme::{kw, name, peek_char, peek_kw, pos, punct, string, string_or_bare, word};
use super::options::options;
use super::{Ctx, In, PResult, end};
use crate::ast::{InterfaceKind, LuTable, Name, Options, Span, Statement};
use nom::Err;

fn expected(i: &In, what: Vec<&'static str>) -> Err<PErr> {
    Err::Failure(PErr::at(i, ErrorKind::Expected(what)))
}

fn named<'a>(i: In<'a>, what: &'static str) -> PResult<'a, Name> {
    name(i).map_err(|_| expected(&i, vec![what]))
}

pub(crate) fn create(i: In, ctx: Ctx) -> PResult<Statement> {
    let (i, or_replace) = if peek_kw(&i, "OR") {
        let (i, _) = kw("OR")(i)?;
        let (i, _) = kw("REPLACE")(i)?;
        (i, true)
    } else {
        (i, false)
    };
    if peek_kw(&i, "INTERFACE") {
        let (i, _) = kw("INTERFACE")(i)?;
        create_interface(i, ctx, or_replace)
    } else if peek_kw(&i, "LU") {
        let (i, _) = kw("LU")(i)?;
        create_lu(i, or_replace)
    } else if peek_kw(&i, "INSTANCE") {
        let (i, _) = kw("INSTANCE")(i)?;
        let (i, _) = kw("GROUP")(i)?;
        create_group(i, or_replace)
    } else {
        let mut what = vec!["INTERFACE", "LU", "INSTANCE"];
        if !or_replace {
            what.insert(0, "OR");
        }
        Err(expected(&i, what))
    }
}

fn create_interface(i: In, ctx: Ctx, or_replace: bool) -> PResult<Statement> {
    let (i, name) = named(i, "an interface name")?;
    let (i, _) = kw("TYPE")(i)?;
    let kind_at = pos(&i);
    let (i, kind_word) = named(i, "SQLITE, CSV or POSTGRES")?;
    let kind = InterfaceKind::ALL
        .into_iter()
        .find(|k| k.keyword().eq_ignore_ascii_case(&kind_word.text))
        .ok_or_else(|| {
            Err::Failure(PErr::span(
                Span::new(kind_at, kind_word.span.end),
                ErrorKind::Expected(vec!["SQLITE", "CSV", "POSTGRES"]),
            ))
        })?;
    let (i, _) = kw(kind.location_keyword())(i)?;
    let (i, location) = string(i)?;
    let (i, opts) = if peek_kw(&i, "WITH") {
        let with_at = pos(&i);
        let (i, _) = kw("WITH")(i)?;
        if kind != InterfaceKind::Csv {
            return Err(Err::Failure(PErr::span(
                Span::new(with_at, with_at + 4),
                ErrorKind::Invalid(format!(
                    "a {} interface takes no WITH options; HEADER and DELIMITER are for CSV",
                    kind.keyword()
                )),
            )));
        }
        let (i, opts) = options(i, CSV_OPTIONS, ctx)?;
        if opts.is_empty() {
            return Err(expected(&i, vec!["an option"]));
        }
        (i, opts)
    } else {
        (i, Options::default())
    };
    let hints: &[&str] = match (kind, opts.is_empty()) {
        (InterfaceKind::Csv, true) => &["WITH"],
        (InterfaceKind::Csv, false) => &["an option"],
        _ => &[],
    };
    let (i, ()) = end(i, hints)?;
    Ok((
        i,
        Statement::CreateInterface {
            or_replace,
            name,
            kind,
            location: location.into_text(),
            options: opts,
        },
    ))
}

fn create_lu(i: In, or_replace: bool) -> PResult<Statement> {
    let (i, name) = named(i, "an LU name")?;
    let (i, _) = kw("FROM")(i)?;
    let (i, interface) = named(i, "an interface name")?;
    let (i, _) = kw("ROOT")(i)?;
    let (mut i, root) = paren_string(i)?;
    let mut tables = Vec::new();
    while peek_kw(&i, "TABLE") {
        let (rest, _) = kw("TABLE")(i)?;
        let (rest, tname) = named(rest, "a table name")?;
        let (rest, key) = if peek_kw(&rest, "KEY") {
            let (rest, _) = kw("KEY")(rest)?;
            name_list(rest)?
        } else {
            (rest, Vec::new())
        };
        let (rest, sql) = paren_string(rest)?;
        tables.push(LuTable {
            name: tname,
            key,
            sql,
        });
        i = rest;
    }
    let (i, ()) = end(i, &["TABLE"])?;
    Ok((
        i,
        Statement::CreateLu {
            or_replace,
            name,
            interface,
            root,
            tables,
        },
    ))
}

/// `(a, b, ...)` of names.
fn name_list(i: In) -> PResult<Vec<Name>> {
    let (mut i, _) = punct('(')(i)?;
    let mut names = Vec::new();
    loop {
        let (rest, n) = named(i, "a column name")?;
        names.push(n);
        if peek_char(&rest, ',') {
            i = punct(',')(rest)?.0;
        } else {
            let (rest, _) = punct(')')(rest).map_err(|_| expected(&rest, vec!["','", "')'"]))?;
            return Ok((rest, names));
        }
    }
}

/// `LU.group`
fn group_ref(i: In) -> PResult<(Name, Name)> {
    let (i, lu) = named(i, "an LU name")?;
    let (i, _) = punct('.')(i)?;
    let (i, group) = named(i, "an instance group name")?;
    Ok((i, (lu, group)))
}

fn create_group(i: In, or_replace: bool) -> PResult<Statement> {
    let (i, (lu, group)) = group_ref(i)?;
    let (i, interface) = if peek_kw(&i, "FROM") {
        let (i, _) = kw("FROM")(i)?;
        let (i, n) = named(i, "an interface name")?;
        (i, Some(n))
    } else {
        (i, None)
    };
    let (i, sql) = using_sql(i).map_err(|_| {
        let mut what = vec!["USING"];
        if interface.is_none() {
            what.insert(0, "FROM");
        }
        expected(&i, what)
    })?;
    let (i, ()) = end(i, &[])?;
    Ok((
        i,
        Statement::CreateInstanceGroup {
            or_replace,
            lu,
            group,
            interface,
            sql,
        },
    ))
}

pub(crate) fn drop(i: In, _ctx: Ctx) -> PResult<Statement> {
    let (i, stmt) = if peek_kw(&i, "INTERFACE") {
        let (i, _) = kw("INTERFACE")(i)?;
        let (i, name) = named(i, "an interface name")?;
        (i, Statement::DropInterface { name })
    } else if peek_kw(&i, "LU") {
        let (i, _) = kw("LU")(i)?;
        let (i, name) = named(i, "an LU name")?;
        (i, Statement::DropLu { name })
    } else if peek_kw(&i, "INSTANCE") {
        let (i, _) = kw("INSTANCE")(i)?;
        let (i, _) = kw("GROUP")(i)?;
        let (i, (lu, group)) = group_ref(i)?;
        (i, Statement::DropInstanceGroup { lu, group })
    } else if peek_kw(&i, "SCHEDULE") {
        let (i, _) = kw("SCHEDULE")(i)?;
        // A job's NAME may be any text (STARTJOB NAME='nightly-sync'): a
        // quoted name drops it too.
        let (i, name) = match string(i) {
            Ok((rest, lit)) => (rest, Name::new(lit.value, lit.span)),
            Err(Err::Failure(e)) => return Err(Err::Failure(e)),
            Err(_) => named(i, "a schedule name")?,
        };
        (i, Statement::DropSchedule { name })
    } else {
        return Err(expected(
            &i,
            vec!["INTERFACE", "LU", "INSTANCE", "SCHEDULE"],
        ));
    };
    let (i, ()) = end(i, &[])?;
    Ok((i, stmt))
}

pub(crate) fn show(i: In, _ctx: Ctx) -> PResult<Statement> {
    let simple = [
        ("INTERFACES", Statement::ShowInterfaces),
        ("LUS", Statement::ShowLus),
        ("SCHEDULES", Statement::ShowSchedules),
        ("NODES", Statement::ShowNodes),
        ("SETTINGS", Statement::ShowSettings),
    ];
    for (word, stmt) in simple {
        if peek_kw(&i, word) {
            let (i, _) = kw(word)(i)?;
            let (i, ()) = end(i, &[])?;
            return Ok((i, stmt));
        }
    }
    if peek_kw(&i, "INSTANCE") {
        let (i, _) = kw("INSTANCE")(i)?;
        let (i, _) = kw("GROUPS")(i)?;
        let (i, lu) = match name(i) {
            Ok((rest, n)) => (rest, Some(n)),
            Err(_) => (i, None),
        };
        let hints: &[&str] = if lu.is_none() { &["an LU name"] } else { &[] };
        let (i, ()) = end(i, hints)?;
        return Ok((i, Statement::ShowInstanceGroups { lu }));
    }
    if peek_kw(&i, "BATCHES") || peek_kw(&i, "BATCH") {
        let (_, (w, span)) = word(i)?;
        return Err(Err::Failure(PErr::span(
            span,
            ErrorKind::Habit {
                message: format!("SHOW {} is not a statement", w.to_ascii_uppercase()),
                instead: "did you mean BATCH_LIST? (STATUS='ALL' lists finished ones too)".into(),
            },
        )));
    }
    Err(expected(
        &i,
        vec![
            "INTERFACES",
            "LUS",
            "INSTANCE",
            "SCHEDULES",
            "NODES",
            "SETTINGS",
        ],
    ))
}

pub(crate) fn describe(i: In, _ctx: Ctx) -> PResult<Statement> {
    if let Ok((i, _)) = kw("INTERFACE")(i) {
        let (i, name) = named(i, "an interface name")?;
        let (i, ()) = end(i, &[])?;
        return Ok((i, Statement::DescribeInterface { name }));
    }
    let (i, _) = kw("LU")(i).map_err(|_| expected(&i, vec!["LU", "INTERFACE"]))?;
    let (i, name) = named(i, "an LU name")?;
    let (i, ()) = end(i, &[])?;
    Ok((i, Statement::DescribeLu { name }))
}

/// `GET LU.'id'` or `GET LU.id`.
pub(crate) fn get(i: In, _ctx: Ctx) -> PResult<Statement> {
    let (i, lu) = named(i, "an LU name")?;
    let (i, _) = punct('.')(i)?;
    let (i, id) = string_or_bare(i, &["an entity id"])?;
    let (i, ()) = end(i, &[])?;
    Ok((
        i,
        Statement::Get {
            lu,
            id: id.into_text(),
        },
    ))
}
