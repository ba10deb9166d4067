//! Managing and inspecting batches (SPEC §6): the `BATCH_*` statements and
//! the legacy `CANCEL BATCH`; and the window statements of SPEC §9, which
//! share their shape (a name, then options).

use super::batch::{id_list, using_sql};
use super::error::{ErrorKind, PErr};
use super::keywords::{
    DETAILS_OPTIONS, EDIT_OPTIONS, IN_PROCESS_OPTIONS, LIST_OPTIONS, OUTPUT_OPTIONS, OptSpec,
    PURGE_OPTIONS, RETRY_OPTIONS, WAIT_OPTIONS, WINDOW_FAIL_OPTIONS, WINDOW_OPEN_OPTIONS,
    WINDOW_SET_OPTIONS, WINDOW_STATUS_OPTIONS,
};
use super::lexeme::{
    bare, bare_len, followed_by_eq, kw, name, peek_char, peek_kw, pos, punct, string,
    string_or_bare, value, word, word_len,
};
use super::options::{lookup, options, require, typed};
use super::{Ctx, In, PResult, end};
use crate::ast::{AppendSource, Opt, Options, Param, Span, Statement, Text, Value};
use nom::Err;

/// The `BATCH_*` statement named `w`, or `None` when there is none by that
/// name (the caller reports it as an unknown statement).
pub(crate) fn statement<'a>(i: In<'a>, ctx: Ctx, w: &str) -> Option<PResult<'a, Statement>> {
    use Statement as S;
    let r = match w {
        "BATCH_PAUSE" => bid_only(i, |bid| S::BatchPause { bid }),
        "BATCH_RESUME" => bid_only(i, |bid| S::BatchResume { bid }),
        "BATCH_CANCEL" => bid_only(i, |bid| S::BatchCancel { bid }),
        "BATCH_WAITOFF" => bid_only(i, |bid| S::BatchWaitoff { bid }),
        "BATCH_INFO" => bid_only(i, |bid| S::BatchInfo { bid }),
        "BATCH_SUMMARY" => bid_only(i, |bid| S::BatchSummary { bid }),
        "BATCH_HISTORY" => bid_only(i, |bid| S::BatchHistory { bid }),
        "BATCH_RETRY" => bid_options(i, ctx, RETRY_OPTIONS)
            .map(|(i, (bid, options))| (i, S::BatchRetry { bid, options })),
        "BATCH_DETAILS" => bid_options(i, ctx, DETAILS_OPTIONS)
            .map(|(i, (bid, options))| (i, S::BatchDetails { bid, options })),
        "BATCH_OUTPUT" => bid_options(i, ctx, OUTPUT_OPTIONS)
            .map(|(i, (bid, options))| (i, S::BatchOutput { bid, options })),
        "BATCH_EDIT" => batch_edit(i, ctx),
        "BATCH_WAIT" => batch_wait(i, ctx),
        "BATCH_APPEND" => batch_append(i),
        "BATCH_PURGE" => {
            only_options(i, ctx, PURGE_OPTIONS).map(|(i, options)| (i, S::BatchPurge { options }))
        }
        "BATCH_LIST" => {
            only_options(i, ctx, LIST_OPTIONS).map(|(i, options)| (i, S::BatchList { options }))
        }
        "BATCH_IN_PROCESS" => bid_options(i, ctx, IN_PROCESS_OPTIONS)
            .map(|(i, (bid, options))| (i, S::BatchInProcess { bid, options })),
        _ => return None,
    };
    Some(r)
}

/// `CANCEL BATCH ['bid']`, the legacy form of `BATCH_CANCEL`.
pub(crate) fn cancel_batch(i: In, _ctx: Ctx) -> PResult<Statement> {
    let (i, _) = kw("BATCH")(i)?;
    bid_only(i, |bid| Statement::BatchCancel { bid })
}

/// An optional batch id: a string, or a bare token that is not an option
/// name (not followed by `=`).
fn opt_bid(i: In) -> PResult<Option<Text>> {
    if peek_char(&i, '\'') || peek_char(&i, '"') || i.fragment().starts_with("$$") {
        let (rest, lit) = string(i)?;
        return Ok((rest, Some(lit.into_text())));
    }
    if bare_len(i.fragment()) > 0 && !followed_by_eq(&i) {
        let (rest, lit) = bare(i)?;
        return Ok((rest, Some(lit.into_text())));
    }
    Ok((i, None))
}

fn bid_only<'a>(i: In<'a>, make: impl FnOnce(Option<Text>) -> Statement) -> PResult<'a, Statement> {
    let (i, bid) = opt_bid(i)?;
    let hints: &[&str] = if bid.is_none() { &["a batch id"] } else { &[] };
    let (i, ()) = end(i, hints)?;
    Ok((i, make(bid)))
}

fn bid_options<'a>(
    i: In<'a>,
    ctx: Ctx,
    specs: &'static [OptSpec],
) -> PResult<'a, (Option<Text>, Options)> {
    let (i, bid) = opt_bid(i)?;
    let (i, opts) = options(i, specs, ctx)?;
    let hints: &[&str] = if bid.is_none() && opts.is_empty() {
        &["a batch id", "an option"]
    } else {
        &["an option"]
    };
    let (i, ()) = end(i, hints)?;
    Ok((i, (bid, opts)))
}

fn only_options<'a>(i: In<'a>, ctx: Ctx, specs: &'static [OptSpec]) -> PResult<'a, Options> {
    let (i, opts) = options(i, specs, ctx)?;
    let (i, ()) = end(i, &["an option"])?;
    Ok((i, opts))
}

fn batch_edit(i: In, ctx: Ctx) -> PResult<Statement> {
    let at = pos(&i);
    let (i, (bid, options)) = bid_options(i, ctx, EDIT_OPTIONS)?;
    require(
        &options,
        &["MAX_WORKERS_PER_NODE"],
        "BATCH_EDIT",
        Span::new(at, at),
    )?;
    Ok((i, Statement::BatchEdit { bid, options }))
}

fn batch_wait(i: In, ctx: Ctx) -> PResult<Statement> {
    let (i, (bid, options)) = bid_options(i, ctx, WAIT_OPTIONS)?;
    if let (Some(_), Some(opt)) = (&bid, options.0.iter().find(|o| o.name == "NAME")) {
        return Err(Err::Failure(PErr::span(
            opt.span,
            ErrorKind::Invalid("BATCH_WAIT takes a batch id or NAME=..., not both".into()),
        )));
    }
    Ok((i, Statement::BatchWait { bid, options }))
}

/// `BATCH_APPEND 'bid' ('id', ...)` or `BATCH_APPEND 'bid' FROM iface USING ('sql')`.
fn batch_append(i: In) -> PResult<Statement> {
    let (i, bid) = string_or_bare(i, &["a batch id"])?;
    let (i, source) = if peek_char(&i, '(') {
        let (i, ids) = id_list(i)?;
        (i, AppendSource::Ids(ids))
    } else if peek_kw(&i, "FROM") {
        let (i, _) = kw("FROM")(i)?;
        let (i, interface) =
            name(i).map_err(|_| Err::Failure(PErr::expected(&i, "an interface name")))?;
        let (i, sql) = using_sql(i)?;
        (i, AppendSource::Query { interface, sql })
    } else {
        return Err(Err::Failure(PErr::at(
            &i,
            ErrorKind::Expected(vec!["'('", "FROM"]),
        )));
    };
    let (i, ()) = end(i, &[])?;
    Ok((
        i,
        Statement::BatchAppend {
            bid: bid.into_text(),
            source,
        },
    ))
}

/// The window statements of SPEC §9: `WINDOW_STATUS ['name']`,
/// `WINDOW_SET 'name' FROM_DATE='...' [param='value' ...]`,
/// `WINDOW_OPEN 'name'`, `WINDOW_CLOSE 'name'`, `WINDOW_FAIL 'name'`.
pub(crate) fn window<'a>(i: In<'a>, ctx: Ctx, w: &str) -> PResult<'a, Statement> {
    if w == "WINDOW_STATUS" {
        let (i, name) = opt_bid(i)?;
        let (i, options) = options(i, WINDOW_STATUS_OPTIONS, ctx)?;
        let hints: &[&str] = if name.is_none() && options.is_empty() {
            &["a series name", "an option"]
        } else {
            &["an option"]
        };
        let (i, ()) = end(i, hints)?;
        return Ok((i, Statement::WindowStatus { name, options }));
    }
    let (i, series) = string_or_bare(i, &["a series name"])?;
    let name = series.into_text();
    let (i, stmt) = match w {
        "WINDOW_SET" => {
            let at = pos(&i);
            let (i, (options, params)) = window_set_options(i, ctx)?;
            require(&options, &["FROM_DATE"], "WINDOW_SET", Span::new(at, at))?;
            let (i, ()) = end(i, &["an option", "a parameter"])?;
            (
                i,
                Statement::WindowSet {
                    name,
                    options,
                    params,
                },
            )
        }
        "WINDOW_CLOSE" => {
            let (i, ()) = end(i, &[])?;
            (i, Statement::WindowClose { name })
        }
        _ => {
            let specs = if w == "WINDOW_FAIL" {
                WINDOW_FAIL_OPTIONS
            } else {
                WINDOW_OPEN_OPTIONS
            };
            let (i, options) = options(i, specs, ctx)?;
            let (i, ()) = end(i, &["an option"])?;
            let stmt = if w == "WINDOW_FAIL" {
                Statement::WindowFail { name, options }
            } else {
                Statement::WindowOpen { name, options }
            };
            (i, stmt)
        }
    };
    Ok((i, stmt))
}

/// What a run of a series hands out besides its parameters: no parameter
/// may take one of these names.
const WINDOW_VARIABLES: &[&str] = &[
    "series",
    "batch_id",
    "from_date",
    "batch_start",
    "batch_end",
    "bid",
];

/// `WINDOW_SET`'s options, and any other `name=value`: a parameter of the
/// series. `REPROCESS_HOURS` is 0 or more.
fn window_set_options(i: In, ctx: Ctx) -> PResult<(Options, Vec<Param>)> {
    let mut opts: Vec<Opt> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut i = i;
    loop {
        let before_comma = i;
        if !(opts.is_empty() && params.is_empty()) && peek_char(&i, ',') {
            i = punct(',')(i)?.0;
        }
        let moved = pos(&before_comma) != pos(&i);
        let Some(n) = word_len(i.fragment()).filter(|_| followed_by_eq(&i)) else {
            if moved {
                return Err(Err::Failure(PErr::expected(&i, "an option")));
            }
            break;
        };
        let start = pos(&i);
        let name_text = &i.fragment()[..n];
        let name_span = Span::new(start, start + n);
        let (rest, _) = word(i)?;
        let (rest, _) = punct('=')(rest)?;
        let (rest, lit) = value(rest).map_err(|e| match e {
            Err::Error(e) => Err::Failure(e),
            e => e,
        })?;
        let twice = |what: String| {
            Err(Err::Failure(PErr::span(
                name_span,
                ErrorKind::Invalid(what),
            )))
        };
        match lookup(WINDOW_SET_OPTIONS, name_text) {
            Some(spec) => {
                if opts.iter().any(|o| o.name == spec.name) {
                    return Err(Err::Failure(PErr::span(
                        name_span,
                        ErrorKind::DuplicateOption { name: spec.name },
                    )));
                }
                let value = typed(spec, &lit, ctx).map_err(Err::Failure)?;
                if let Value::Int(h) = value
                    && h < 0
                {
                    return Err(Err::Failure(PErr::span(
                        lit.span,
                        ErrorKind::InvalidValue {
                            option: spec.name.to_string(),
                            expected: "a whole number of hours, 0 or more".into(),
                            found: lit.value.clone(),
                        },
                    )));
                }
                opts.push(Opt {
                    name: spec.name,
                    value,
                    span: Span::new(start, lit.span.end),
                });
            }
            None => {
                if WINDOW_VARIABLES
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(name_text))
                {
                    return Err(Err::Failure(PErr::span(
                        name_span,
                        ErrorKind::Invalid(format!(
                            "{name_text} is a window variable, which a run sets; \
                             give the parameter another name"
                        )),
                    )));
                }
                if params
                    .iter()
                    .any(|p| p.name.value.eq_ignore_ascii_case(name_text))
                {
                    return twice(format!("parameter {name_text} is given twice"));
                }
                params.push(Param {
                    name: Text {
                        value: name_text.to_string(),
                        span: name_span,
                    },
                    value: lit.into_text(),
                });
            }
        }
        i = rest;
    }
    Ok((i, (Options(opts), params)))
}
