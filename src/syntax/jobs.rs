//! Jobs and schedules (SPEC §8): `STARTJOB` and its siblings, `JOBSTATUS`,
//! and the shorter `SCHEDULE name CRON|EVERY|AT '...' DO <statement>`.

use super::error::{ErrorKind, PErr};
use super::keywords::{
    JOB_HISTORY_OPTIONS, JOB_ID_OPTIONS, JOBSTATUS_OPTIONS, OptSpec, STARTJOB_PROCESS_OPTIONS,
    STARTJOB_STATEMENT_OPTIONS, UPDATEJOB_OPTIONS,
};
use super::lexeme::{kw, name, peek_kw, pos, string, word};
use super::options::{options, require};
use super::values::{
    NONZERO_INTERVAL, is_zero_interval, parse_cron, parse_interval, parse_timestamp,
};
use super::{Ctx, In, PResult, end, statement};
use crate::ast::{JobType, JobVerb, Options, ScheduleSpec, Span, Statement};
use nom::Err;

fn job_type(i: In) -> PResult<JobType> {
    let expected = || {
        Err::Failure(PErr::at(
            &i,
            ErrorKind::Expected(JobType::ALL.iter().map(|t| t.keyword()).collect()),
        ))
    };
    let (rest, (w, _)) = word(i).map_err(|_| expected())?;
    match JobType::ALL
        .into_iter()
        .find(|t| t.keyword().eq_ignore_ascii_case(w))
    {
        Some(t) => Ok((rest, t)),
        None => Err(expected()),
    }
}

/// `STARTJOB`, `STOPJOB`, `RESTARTJOB`, `RESUMEJOB`, `UPDATEJOB`.
pub(crate) fn job<'a>(i: In<'a>, ctx: Ctx, verb_word: &str) -> PResult<'a, Statement> {
    let verb = match verb_word {
        "STARTJOB" => JobVerb::Start,
        "STOPJOB" => JobVerb::Stop,
        "RESTARTJOB" => JobVerb::Restart,
        "RESUMEJOB" => JobVerb::Resume,
        _ => JobVerb::Update,
    };
    let type_at = pos(&i);
    let (i, job_type) = job_type(i)?;
    if verb == JobVerb::Start && job_type == JobType::BatchJob {
        return Err(Err::Failure(PErr::span(
            Span::new(type_at, type_at + "BATCH_JOB".len()),
            ErrorKind::Invalid(
                "BATCH_JOB jobs are made by BATCH ... WITH ASYNC=true; \
                 start a STATEMENT job to run a batch"
                    .into(),
            ),
        )));
    }
    let at = pos(&i);
    let (specs, required): (&'static [OptSpec], &[&'static str]) = match (verb, job_type) {
        (JobVerb::Start, JobType::Process) => (STARTJOB_PROCESS_OPTIONS, &["NAME", "COMMAND"]),
        (JobVerb::Start, _) => (STARTJOB_STATEMENT_OPTIONS, &["NAME", "COMMAND"]),
        (JobVerb::Stop | JobVerb::Restart, _) => (JOB_ID_OPTIONS, &["NAME"]),
        (JobVerb::Resume, _) => (JOB_ID_OPTIONS, &["NAME", "UID"]),
        (JobVerb::Update, _) => (UPDATEJOB_OPTIONS, &["NAME"]),
    };
    let (i, opts) = options(i, specs, ctx)?;
    let (i, ()) = end(i, &["an option"])?;
    require(&opts, required, verb.keyword(), Span::new(at, at))?;
    Ok((
        i,
        Statement::Job {
            verb,
            job_type,
            options: opts,
        },
    ))
}

/// `JOBSTATUS [TYPE ['name'] [WITH UID='u1']]`
pub(crate) fn jobstatus(i: In, ctx: Ctx) -> PResult<Statement> {
    if i.fragment().is_empty() || i.fragment().starts_with(';') {
        return Ok((
            i,
            Statement::JobStatus {
                job_type: None,
                name: None,
                options: Options::default(),
            },
        ));
    }
    let (i, job_type) = job_type(i)?;
    let (i, name) = match string(i) {
        Ok((rest, lit)) => (rest, Some(lit.into_text())),
        Err(Err::Failure(e)) => return Err(Err::Failure(e)),
        Err(_) => (i, None),
    };
    let (i, opts) = if peek_kw(&i, "WITH") {
        let (i, _) = kw("WITH")(i)?;
        let (i, opts) = options(i, JOBSTATUS_OPTIONS, ctx)?;
        if opts.is_empty() {
            return Err(Err::Failure(PErr::expected(&i, "an option")));
        }
        (i, opts)
    } else {
        (i, Options::default())
    };
    let hints: &[&str] = match (&name, opts.is_empty()) {
        (None, true) => &["a job name", "WITH"],
        (Some(_), true) => &["WITH"],
        (_, false) => &["an option"],
    };
    let (i, ()) = end(i, hints)?;
    Ok((
        i,
        Statement::JobStatus {
            job_type: Some(job_type),
            name,
            options: opts,
        },
    ))
}

/// `JOB_HISTORY ['name'] [LIMIT=n]`: the runs of one job, or of every job.
pub(crate) fn job_history(i: In, ctx: Ctx) -> PResult<Statement> {
    let (i, name) = match string(i) {
        Ok((rest, lit)) => (rest, Some(lit.into_text())),
        Err(Err::Failure(e)) => return Err(Err::Failure(e)),
        Err(_) => (i, None),
    };
    let (i, opts) = options(i, JOB_HISTORY_OPTIONS, ctx)?;
    let hints: &[&str] = if name.is_none() && opts.is_empty() {
        &["a job name", "an option"]
    } else {
        &["an option"]
    };
    let (i, ()) = end(i, hints)?;
    Ok((
        i,
        Statement::JobHistory {
            name,
            options: opts,
        },
    ))
}

/// `SCHEDULE name (CRON 'expr' | EVERY 'interval' | AT 'time') DO statement`
pub(crate) fn schedule(i: In, ctx: Ctx) -> PResult<Statement> {
    let (i, name) = name(i).map_err(|_| Err::Failure(PErr::expected(&i, "a schedule name")))?;
    let (i, when) = if peek_kw(&i, "CRON") {
        let (i, _) = kw("CRON")(i)?;
        let (i, lit) = string(i)?;
        let c = parse_cron(&lit.value).ok_or_else(|| bad_when(lit.span, "CRON", &lit.value))?;
        (i, ScheduleSpec::Cron(c))
    } else if peek_kw(&i, "EVERY") {
        let (i, _) = kw("EVERY")(i)?;
        let (i, lit) = string(i)?;
        let d =
            parse_interval(&lit.value).ok_or_else(|| bad_when(lit.span, "EVERY", &lit.value))?;
        (i, ScheduleSpec::Every(d))
    } else if peek_kw(&i, "AT") {
        let (i, _) = kw("AT")(i)?;
        let (i, lit) = string(i)?;
        let t = parse_timestamp(&lit.value).ok_or_else(|| bad_when(lit.span, "AT", &lit.value))?;
        (i, ScheduleSpec::At(t))
    } else {
        return Err(Err::Failure(PErr::at(
            &i,
            ErrorKind::Expected(vec!["CRON", "EVERY", "AT"]),
        )));
    };
    let (i, _) = kw("DO")(i)?;
    if peek_kw(&i, "SCHEDULE") {
        return Err(Err::Failure(PErr::at(
            &i,
            ErrorKind::Invalid(
                "a schedule cannot run SCHEDULE; schedule the statement itself".into(),
            ),
        )));
    }
    let (i, body) = statement(i, ctx.depth + 1)?;
    Ok((
        i,
        Statement::Schedule {
            name,
            when,
            body: Box::new(body),
        },
    ))
}

fn bad_when(span: Span, form: &str, found: &str) -> Err<PErr> {
    let expected = match form {
        "CRON" => "a 5-field crontab or 6/7-field Quartz expression such as '0 2 * * *'",
        "EVERY" if is_zero_interval(found) => NONZERO_INTERVAL,
        "EVERY" => "an interval such as '00:15:00', '1.00:00:00' or '15m'",
        _ => "a local time 'yyyy-MM-dd HH:mm:ss'",
    };
    Err::Failure(PErr::span(
        span,
        ErrorKind::InvalidValue {
            option: form.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        },
    ))
}
