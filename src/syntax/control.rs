//! Managing and inspecting batches (SPEC §6): the `BATCH_*` statements and
//! the legacy `CANCEL BATCH`; and the window statements of SPEC §9, which
//! share their shape (a name, then options).

use super::batch::{id_list, using_sql};
use super::error::{ErrorKind, PErr};
use super::keywords::{
    DETAILS_OPTIONS, EDIT_OPTIONS, IN_PROCESS_OPTIONS, LIST_OPTIONS, OUTPUT_OPTIONS, OptSpec,
    PURGE_OPTIONS, RETRY_OPTIONS, WAIT_OPTIONS, WINDOW_SET_OPTIONS, WINDOW_STATUS_OPTIONS,
};
use super::lexeme::{
    bare, bare_len, followed_by_eq, kw, name, peek_char, peek_kw, pos, string, string_or_bare,
};
use super::options::{options, require};
use super::{Ctx, In, PResult, end};
use crate::ast::{AppendSource, Options, Span, Statement, Text};
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
        "BATCH_IN_PROCESS" => only_options(i, ctx, IN_PROCESS_OPTIONS)
            .map(|(i, options)| (i, S::BatchInProcess { options })),
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

/// `WINDOW_STATUS 'name' [FORMAT=...]`, `WINDOW_SET 'name' FROM_DATE='...'`.
pub(crate) fn window<'a>(i: In<'a>, ctx: Ctx, w: &str) -> PResult<'a, Statement> {
    let (i, series) = string_or_bare(i, &["a batch series name"])?;
    let name = series.into_text();
    if w == "WINDOW_SET" {
        let at = pos(&i);
        let (i, options) = options(i, WINDOW_SET_OPTIONS, ctx)?;
        require(&options, &["FROM_DATE"], "WINDOW_SET", Span::new(at, at))?;
        let (i, ()) = end(i, &["an option"])?;
        Ok((i, Statement::WindowSet { name, options }))
    } else {
        let (i, options) = options(i, WINDOW_STATUS_OPTIONS, ctx)?;
        let (i, ()) = end(i, &["an option"])?;
        Ok((i, Statement::WindowStatus { name, options }))
    }
}
