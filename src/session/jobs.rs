//! Jobs and schedules (SPEC §8): `STARTJOB`, `STOPJOB`, `RESTARTJOB`,
//! `RESUMEJOB`, `UPDATEJOB`, `JOBSTATUS`, `JOB_HISTORY`, and the short
//! forms `SCHEDULE`, `SHOW SCHEDULES`, `DROP SCHEDULE`. A job's statement
//! and schedule are checked when the job is made: a refused statement
//! stores nothing. The jobs run in workers and ticks ([`crate::jobs`]).

use super::{Result, Session, StatementError, time_cell};
use crate::ast::{JobType, JobVerb, Options, ScheduleSpec, Span, Statement, Stmt, Value};
use crate::batch::JobStatus;
use crate::output::{Cell, Output, Table};
use crate::store::jobs::{JobChange, JobRow, NewJob};
use crate::store::stamp;

/// What a new job is, before it is stored.
struct JobSpec<'a> {
    job_type: JobType,
    name: String,
    uid: String,
    affinity: Option<String>,
    schedule: Option<(&'a ScheduleSpec, Span)>,
    statement: String,
    args: Option<String>,
    timeout_ms: Option<u64>,
    short_form: bool,
}

fn text_opt(options: &Options, name: &str) -> Option<String> {
    match options.get(name) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

fn span_of(options: &Options, name: &str, otherwise: Span) -> Span {
    options
        .0
        .iter()
        .find(|o| o.name == name)
        .map_or(otherwise, |o| o.span)
}

/// Whether a PROCESS job's program is there now: a path (relative to
/// `cwd`, where the job runs), or a name on `PATH`.
fn program_found(program: &str, cwd: &std::path::Path) -> bool {
    if program.contains('/') {
        cwd.join(program).is_file()
    } else {
        which::which(program).is_ok()
    }
}

/// Why `verb` cannot act on `job` as it stands, if it cannot.
fn refusal(verb: JobVerb, job: &JobRow) -> Option<String> {
    let label = job_label(job.job_type, &job.name, &job.uid);
    let status = job.status;
    match verb {
        JobVerb::Stop
            if matches!(
                status,
                JobStatus::Processed | JobStatus::Failed | JobStatus::Terminated
            ) =>
        {
            Some(format!(
                "job {label} is {status}: only a scheduled or running job can stop"
            ))
        }
        JobVerb::Resume if status != JobStatus::Terminated => Some(format!(
            "job {label} is {status}, not stopped: RESUMEJOB resumes a job that STOPJOB \
             stopped (RESTARTJOB runs a job again now)"
        )),
        JobVerb::Restart if matches!(status, JobStatus::InProcess | JobStatus::Stopping) => {
            Some(format!(
                "job {label} is running now: RESTARTJOB runs a job that is not running; \
                 run it again when this run has ended (JOBSTATUS shows it)"
            ))
        }
        _ => None,
    }
}

/// What follows "no job named `name`": the nearest of `names`, or where
/// the jobs are listed.
fn unknown_job_hint<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    crate::typo::suggest(name, names)
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_else(|| " (JOBSTATUS lists the jobs)".into())
}

/// How a job is named in messages: `STATEMENT nightly`, with its UID.
fn job_label(job_type: JobType, name: &str, uid: &str) -> String {
    if uid.is_empty() {
        format!("{} {name}", job_type.keyword())
    } else {
        format!("{} {name} (UID '{uid}')", job_type.keyword())
    }
}

impl Session {
    /// `STARTJOB`, `STOPJOB`, `RESTARTJOB`, `RESUMEJOB`, `UPDATEJOB`.
    pub(super) fn job(
        &mut self,
        verb: JobVerb,
        job_type: JobType,
        options: &Options,
        span: Span,
    ) -> Result<Option<Output>> {
        if verb == JobVerb::Start {
            return self.start_job(job_type, options, span).map(Some);
        }
        if job_type == JobType::BatchJob {
            return Err(StatementError::refused(
                span,
                "a BATCH_JOB follows its batch: BATCH_PAUSE, BATCH_RESUME, BATCH_CANCEL and \
                 BATCH_RETRY with the batch id (its UID) act on it",
            ));
        }
        let name = text_opt(options, "NAME").unwrap_or_default();
        let uid = text_opt(options, "UID");
        let name_span = span_of(options, "NAME", span);
        let mut jobs = self.find_jobs(job_type, &name, uid.as_deref(), name_span)?;
        let mut said = Vec::new();
        // STOPJOB without a UID stops every job of the name that can stop,
        // and leaves those that ended as they are.
        if verb == JobVerb::Stop && uid.is_none() && jobs.len() > 1 {
            let (ended, live): (Vec<JobRow>, Vec<JobRow>) =
                jobs.into_iter().partition(|j| refusal(verb, j).is_some());
            if live.is_empty() {
                let why = refusal(verb, &ended[0]).unwrap_or_default();
                return Err(StatementError::refused(span, why));
            }
            for j in &ended {
                said.push(format!(
                    "job {} is {}: left as it is",
                    job_label(j.job_type, &j.name, &j.uid),
                    j.status
                ));
            }
            jobs = live;
        }
        // Every job is checked before any is changed: a refused statement
        // changes nothing.
        if let Some(why) = jobs.iter().find_map(|j| refusal(verb, j)) {
            return Err(StatementError::refused(span, why));
        }
        for job in &jobs {
            said.push(match verb {
                JobVerb::Stop => self.stop_job(job, span)?,
                JobVerb::Resume => self.resume_job(job, span)?,
                JobVerb::Restart => self.restart_job(job, span)?,
                _ => self.update_job_retrying(job, options, span)?,
            });
        }
        Ok(super::message(said.join("\n")))
    }

    /// The jobs of `job_type` named `name` (with `uid`, when given); none
    /// is an error, with the names that exist.
    fn find_jobs(
        &mut self,
        job_type: JobType,
        name: &str,
        uid: Option<&str>,
        at: Span,
    ) -> Result<Vec<JobRow>> {
        let all = self
            .store()?
            .jobs()
            .map_err(|e| StatementError::at(at, e))?;
        let found: Vec<JobRow> = all
            .iter()
            .filter(|j| j.job_type == job_type && j.name == name)
            .filter(|j| uid.is_none_or(|u| j.uid == u))
            .cloned()
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        let same_name: Vec<&JobRow> = all
            .iter()
            .filter(|j| j.job_type == job_type && j.name == name)
            .collect();
        let message = match (uid, same_name.is_empty()) {
            (Some(u), false) => format!(
                "no {} job {name} with UID '{u}'; its UIDs: {}",
                job_type.keyword(),
                same_name
                    .iter()
                    .map(|j| format!("'{}'", j.uid))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => {
                let names = all
                    .iter()
                    .filter(|j| j.job_type == job_type)
                    .map(|j| j.name.as_str());
                format!(
                    "no {} job named {name}{}",
                    job_type.keyword(),
                    unknown_job_hint(name, names)
                )
            }
        };
        Err(StatementError::refused(at, message))
    }

    fn start_job(&mut self, job_type: JobType, options: &Options, span: Span) -> Result<Output> {
        let name = text_opt(options, "NAME").unwrap_or_default();
        if name.trim().is_empty() {
            return Err(StatementError::refused(
                span_of(options, "NAME", span),
                "a job needs a name: NAME='nightly'",
            ));
        }
        let schedule = match options.get("EXEC_INTERVAL") {
            Some(Value::Schedule(s)) => Some((s, span_of(options, "EXEC_INTERVAL", span))),
            _ => None,
        };
        let statement = match (job_type, options.get("COMMAND")) {
            (JobType::Process, Some(Value::Str(program))) => {
                let at = span_of(options, "COMMAND", span);
                if program.trim().is_empty() {
                    return Err(StatementError::refused(
                        at,
                        "a PROCESS job needs a program: COMMAND='/usr/local/bin/cleanup.sh'",
                    ));
                }
                if program.trim() != program || program.contains('\n') {
                    return Err(StatementError::refused(
                        at,
                        format!(
                            "a PROCESS job's COMMAND is a program's path or name, run without a \
                             shell, and '{program}' has blanks around it: write \
                             COMMAND='/usr/local/bin/cleanup.sh' ARGS='{{\"0\":\"--flag\"}}', or \
                             give a statement to a STARTJOB STATEMENT"
                        ),
                    ));
                }
                if !self.quiet && !program_found(program, &self.cwd) {
                    eprintln!(
                        "warning: the program {program} is not found ({}): each run of the job \
                         fails until it is there",
                        if program.contains('/') {
                            "no such file"
                        } else {
                            "not on PATH"
                        }
                    );
                }
                program.clone()
            }
            (_, Some(Value::Statement(stmt))) => self.job_statement(stmt)?,
            _ => String::new(),
        };
        let spec = JobSpec {
            job_type,
            name,
            uid: text_opt(options, "UID").unwrap_or_default(),
            affinity: text_opt(options, "AFFINITY").filter(|a| !a.trim().is_empty()),
            schedule,
            statement,
            args: match options.get("ARGS") {
                Some(Value::Json(j)) => Some(j.to_string()),
                _ => None,
            },
            timeout_ms: match options.get("TIMEOUT") {
                Some(Value::Duration(d)) if d.0 == 0 => {
                    return Err(StatementError::refused(
                        span_of(options, "TIMEOUT", span),
                        "TIMEOUT must be greater than zero (every run would be killed at once): \
                         write TIMEOUT='10m', or leave it out for no limit",
                    ));
                }
                Some(Value::Duration(d)) => Some(d.0),
                _ => None,
            },
            short_form: false,
        };
        self.create_job(spec, span)
    }

    /// A job's statement, checked as it would run (its LU, interface,
    /// group), in its canonical text.
    fn job_statement(&mut self, stmt: &Stmt) -> Result<String> {
        let refuse = |why: &str| Err(StatementError::refused(stmt.span, why.to_string()));
        match &stmt.kind {
            Statement::Batch(b) => {
                if matches!(b.source, Some(crate::ast::Source::Stdin)) {
                    return refuse(
                        "a job has no standard input: FROM STDIN cannot run in a job; store the \
                         ids in a file and write FROM FILE 'ids.txt'",
                    );
                }
                let workers = self.workers;
                let store = self.store()?;
                crate::analyze::batch(store, b, stmt.span, workers).map_err(|e| {
                    // The parts of a statement in a COMMAND string are
                    // placed within the string: the error points at the
                    // whole statement there. (A SCHEDULE's statement is
                    // placed in the source: its error stays where it is.)
                    let mut e = StatementError::from(e);
                    if e.span.is_some_and(|s| s.start < stmt.span.start) {
                        e.span = Some(stmt.span);
                    }
                    e
                })?;
            }
            Statement::Set { .. }
            | Statement::ShowSettings
            | Statement::Exit
            | Statement::Help { .. } => {
                return refuse(&format!(
                    "{} changes or shows this session only: a job runs in a session of its own \
                     (give a job a BATCH, BATCH_PURGE or another statement that does work)",
                    stmt.kind.name()
                ));
            }
            Statement::Job { .. } | Statement::Schedule { .. } | Statement::DropSchedule { .. } => {
                return refuse(
                    "a job cannot start, change or drop jobs: run that statement itself",
                );
            }
            _ => {}
        }
        Ok(stmt.to_string())
    }

    /// Stores a new job, checking its schedule first; says when it runs.
    fn create_job(&mut self, spec: JobSpec, span: Span) -> Result<Output> {
        let now = crate::knobs::now();
        let (schedule_text, first) = match spec.schedule {
            None => (None, now),
            Some((s, at)) => {
                let compiled = crate::schedule::compile(s)
                    .map_err(|e| StatementError::refused(at, e.to_string()))?;
                let first = compiled
                    .first(now, &chrono::Local)
                    .map_err(|e| StatementError::refused(at, e.to_string()))?;
                (Some(s.to_string()), first)
            }
        };
        let job = NewJob {
            job_type: spec.job_type,
            name: spec.name.clone(),
            uid: spec.uid.clone(),
            affinity: spec.affinity.clone(),
            schedule: schedule_text,
            statement: spec.statement,
            args: spec.args,
            timeout_ms: spec.timeout_ms,
            workdir: Some(self.cwd.to_string_lossy().into_owned()),
            next_run: stamp(first),
            short_form: spec.short_form,
        };
        let store = self.store()?;
        store
            .create_job(&job)
            .map_err(|e| StatementError::at(span, e))?;
        let label = job_label(spec.job_type, &spec.name, &spec.uid);
        let when = if first <= now {
            "it runs now".to_string()
        } else {
            format!(
                "its first run is at {} (local time)",
                crate::output::format_time_in(&first, &chrono::Local)
            )
        };
        let recurs = spec
            .schedule
            .is_some_and(|(s, _)| !matches!(s, ScheduleSpec::At(_)));
        let who = self.who_fires(spec.affinity.as_deref(), first <= now, recurs);
        Ok(Output::Message(format!("job {label} started: {when}{who}")))
    }

    /// Who will fire a job with `affinity`: nobody yet is said, with what
    /// to start. A job due `now` starts a worker in the background, as an
    /// asynchronous batch does.
    /// `recurs`: the job runs again later, which a worker started for now
    /// (it exits once idle) does not do.
    fn who_fires(&mut self, affinity: Option<&str>, now: bool, recurs: bool) -> String {
        let placement = crate::batch::Placement::of_job(affinity);
        let here = self.here();
        let (home, store_path) = (self.home.clone(), self.store_path.clone());
        let Ok(store) = self.store() else {
            return String::new();
        };
        crate::background::wake::nudge_workers(store, None);
        if crate::store::nodes::worker_alive(store, |n| placement.may_own(n)).unwrap_or(true) {
            return String::new();
        }
        if now && placement.may_own(&here) && !crate::knobs::no_background_worker() {
            return match crate::background::spawn::ensure_worker(
                store,
                &home,
                &store_path,
                &here,
                &placement,
            ) {
                Ok(_) if recurs => "; a worker was started in the background to run it now; \
                     its later runs need a worker that keeps running (batchsh worker) or \
                     batchsh tick from cron (* * * * * batchsh tick)"
                    .into(),
                Ok(_) => "; a worker was started in the background to run it".into(),
                Err(e) => format!(
                    "; no worker runs, and none could be started ({e}): start `batchsh worker`"
                ),
            };
        }
        format!(
            "; no worker that may run it ({}) is running: start `batchsh worker`, or run \
             `batchsh tick` from cron (* * * * * batchsh tick)",
            placement.owners_wanted()
        )
    }

    fn stop_job(&mut self, job: &JobRow, span: Span) -> Result<String> {
        let label = job_label(job.job_type, &job.name, &job.uid);
        let (to, said) = match job.status {
            JobStatus::Stopping => {
                return Ok(format!(
                    "job {label} stops already, after the run under way"
                ));
            }
            JobStatus::InProcess => (
                JobStatus::Stopping,
                format!("job {label} stops after the run under way; no run starts after it"),
            ),
            _ => (
                JobStatus::Terminated,
                format!("job {label} stopped: it runs no more (RESUMEJOB resumes it)"),
            ),
        };
        let change = JobChange {
            status: Some(to),
            next_run: (to == JobStatus::Terminated).then_some(None),
            ..Default::default()
        };
        self.change(job, &change, span)?;
        Ok(said)
    }

    fn resume_job(&mut self, job: &JobRow, span: Span) -> Result<String> {
        let label = job_label(job.job_type, &job.name, &job.uid);
        let next = self.next_from_now(job, span)?;
        let change = JobChange {
            status: Some(JobStatus::Scheduled),
            next_run: Some(Some(&next.0)),
            ..Default::default()
        };
        self.change(job, &change, span)?;
        Ok(format!("job {label} resumed: {}", next.1))
    }

    fn restart_job(&mut self, job: &JobRow, span: Span) -> Result<String> {
        let label = job_label(job.job_type, &job.name, &job.uid);
        let now = stamp(crate::knobs::now());
        let change = JobChange {
            status: Some(JobStatus::Restart),
            next_run: Some(Some(&now)),
            end_time: Some(None),
            ..Default::default()
        };
        self.change(job, &change, span)?;
        let who = self.who_fires(job.affinity.as_deref(), true, false);
        Ok(format!("job {label} restarts: it runs now{who}"))
    }

    /// UPDATEJOB of a job that runs often (every second, say) may find
    /// its status changed between reading and writing: it reads the job
    /// again and tries again, a few times.
    fn update_job_retrying(
        &mut self,
        job: &JobRow,
        options: &Options,
        span: Span,
    ) -> Result<String> {
        let mut job = job.clone();
        for _ in 0..10 {
            match self.update_job(&job, options, span) {
                Err(e) if matches!(*e.kind, super::StatementErrorKind::Changed(_)) => {
                    let store = self.store()?;
                    match store
                        .job(job.job_no)
                        .map_err(|e| StatementError::at(span, e))?
                    {
                        Some(now) => job = now,
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
        self.update_job(&job, options, span)
    }

    fn update_job(&mut self, job: &JobRow, options: &Options, span: Span) -> Result<String> {
        let label = job_label(job.job_type, &job.name, &job.uid);
        let affinity = text_opt(options, "AFFINITY");
        let schedule = match options.get("EXEC_INTERVAL") {
            Some(Value::Schedule(s)) => Some((s, span_of(options, "EXEC_INTERVAL", span))),
            _ => None,
        };
        let reset = matches!(options.get("RESET_END_TIME"), Some(Value::Bool(true)));
        let mut said = Vec::new();
        let mut next = None;
        let schedule_text = match schedule {
            Some((s, at)) => {
                let compiled = crate::schedule::compile(s)
                    .map_err(|e| StatementError::refused(at, e.to_string()))?;
                let first = compiled
                    .first(crate::knobs::now(), &chrono::Local)
                    .map_err(|e| StatementError::refused(at, e.to_string()))?;
                next = Some(stamp(first));
                said.push(format!("schedule {s}"));
                Some(s.to_string())
            }
            None => None,
        };
        if let Some(a) = &affinity {
            said.push(format!("affinity '{a}'"));
        }
        let ended = matches!(job.status, JobStatus::Processed | JobStatus::Failed);
        let mut status = None;
        if reset {
            said.push("end time reset".into());
            if ended {
                // An ended job is scheduled again, from now.
                status = Some(JobStatus::Scheduled);
                if next.is_none() {
                    next = Some(self.next_from_now(job, span)?.0);
                }
            }
        }
        let running = matches!(job.status, JobStatus::InProcess | JobStatus::Stopping);
        let change = JobChange {
            status,
            // A running job's next due time is set when its run ends.
            next_run: next.as_deref().filter(|_| !running).map(Some),
            affinity: affinity
                .as_deref()
                .map(|a| Some(a).filter(|a| !a.is_empty())),
            schedule: schedule_text.as_deref().map(Some),
            end_time: reset.then_some(None),
            ..Default::default()
        };
        self.change(job, &change, span)?;
        if said.is_empty() {
            said.push("nothing to change".into());
        }
        Ok(format!("job {label} updated: {}", said.join(", ")))
    }

    /// The job's next due time counted from now, with words for it.
    fn next_from_now(&mut self, job: &JobRow, span: Span) -> Result<(String, String)> {
        let now = crate::knobs::now();
        let schedule = crate::schedule::stored(job.schedule.as_deref())
            .map_err(|e| StatementError::refused(span, e))?;
        let first = match &schedule {
            // A once-only time that has passed: it runs now.
            Some(s) => s.first(now, &chrono::Local).unwrap_or(now),
            None => now,
        };
        let words = if first <= now {
            "it runs now".to_string()
        } else {
            format!(
                "its next run is at {} (local time)",
                crate::output::format_time_in(&first, &chrono::Local)
            )
        };
        Ok((stamp(first), words))
    }

    /// Applies `change` to `job` if no other process changed its status
    /// since it was read.
    fn change(&mut self, job: &JobRow, change: &JobChange, span: Span) -> Result<()> {
        let store = self.store()?;
        let changed = store
            .change_job(job.job_no, &[job.status], change)
            .map_err(|e| StatementError::at(span, e))?;
        if changed {
            return Ok(());
        }
        Err(StatementError::at(
            span,
            super::StatementErrorKind::Changed(format!(
                "job {} changed while this statement ran (a run started or ended); run it again",
                job_label(job.job_type, &job.name, &job.uid)
            )),
        ))
    }

    /// `SCHEDULE name CRON|EVERY|AT '...' DO statement`: a STATEMENT job.
    pub(super) fn schedule(
        &mut self,
        name: &str,
        when: &ScheduleSpec,
        body: &Stmt,
        span: Span,
    ) -> Result<Option<Output>> {
        let statement = self.job_statement(body)?;
        // A bad schedule points at `SCHEDULE name CRON '...'`.
        let when_span = Span::new(span.start, body.span.start.max(span.start));
        let spec = JobSpec {
            job_type: JobType::Statement,
            name: name.to_string(),
            uid: String::new(),
            affinity: None,
            schedule: Some((when, when_span)),
            statement,
            args: None,
            timeout_ms: None,
            short_form: true,
        };
        self.create_job(spec, span).map(Some)
    }

    /// `DROP SCHEDULE name`: the job and its runs go.
    pub(super) fn drop_schedule(&mut self, name: &str, span: Span) -> Result<Option<Output>> {
        // A schedule is a STATEMENT job; a PROCESS job goes the same way.
        let jobs = match self.find_jobs(JobType::Statement, name, None, span) {
            Err(e) => match self.find_jobs(JobType::Process, name, None, span) {
                Ok(jobs) => jobs,
                Err(_) => return Err(e),
            },
            found => found?,
        };
        let running = |j: &JobRow| matches!(j.status, JobStatus::InProcess | JobStatus::Stopping);
        let refused = |j: &JobRow| {
            StatementError::refused(
                span,
                format!(
                    "job {} is running now: STOPJOB {} NAME='{name}' stops it after this run, \
                     then DROP SCHEDULE removes it",
                    job_label(j.job_type, &j.name, &j.uid),
                    j.job_type.keyword()
                ),
            )
        };
        // Every job is checked before any goes.
        if let Some(j) = jobs.iter().find(|j| running(j)) {
            return Err(refused(j));
        }
        let store = self.store()?;
        for job in &jobs {
            if !store
                .delete_job(job.job_no)
                .map_err(|e| StatementError::at(span, e))?
            {
                return Err(refused(job));
            }
        }
        Ok(super::message(format!(
            "schedule {name} dropped, with the record of its runs"
        )))
    }

    /// `JOBSTATUS [TYPE ['name'] [WITH UID='u1']]` (SPEC §8).
    pub(super) fn job_status(
        &mut self,
        job_type: Option<JobType>,
        name: Option<&str>,
        options: &Options,
        span: Span,
    ) -> Result<Option<Output>> {
        let uid = text_opt(options, "UID");
        let store = self.store()?;
        let jobs = store.jobs().map_err(|e| StatementError::at(span, e))?;
        let nodes = store.nodes().map_err(|e| StatementError::at(span, e))?;
        let mut t = Table::new(crate::output::columns::JOBSTATUS.iter().copied());
        for j in jobs
            .iter()
            .filter(|j| job_type.is_none_or(|t| j.job_type == t))
            .filter(|j| name.is_none_or(|n| j.name == n))
            .filter(|j| uid.as_deref().is_none_or(|u| j.uid == u))
        {
            let candidates = nodes
                .iter()
                .filter(|n| {
                    n.takes_work()
                        && crate::batch::Placement::of_job(j.affinity.as_deref())
                            .may_own(&n.ident())
                })
                .count();
            let owner = j.owner_worker.as_ref().map(|w| {
                nodes
                    .iter()
                    .find(|n| n.worker_id == *w)
                    .map_or_else(|| w.clone(), |n| n.node.clone())
            });
            let time = |t: &Option<String>| t.as_deref().map_or(Cell::Null, time_cell);
            t.rows.push(vec![
                Cell::Text(j.job_type.keyword().into()),
                Cell::Text(j.name.clone()),
                Cell::Text(j.uid.clone()),
                Cell::Text(j.status.to_string()),
                time_cell(&j.created_at),
                time(&j.start_time),
                time(&j.end_time),
                j.affinity.clone().into(),
                Cell::Bool(j.archived),
                time(&j.next_run),
                candidates.into(),
                j.notes.clone().into(),
                owner.into(),
            ]);
        }
        Ok(Some(Output::Table(t)))
    }

    /// `JOB_HISTORY ['name'] [LIMIT=n]`: runs, newest due time first.
    pub(super) fn job_history(
        &mut self,
        name: Option<&crate::ast::Text>,
        options: &Options,
        span: Span,
    ) -> Result<Option<Output>> {
        let limit = match options.get("LIMIT") {
            Some(Value::Int(n)) if *n < 0 => usize::MAX,
            Some(Value::Int(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
            _ => 100,
        };
        let store = self.store()?;
        let runs = match name {
            None => store.job_runs(None, limit),
            Some(n) => {
                let jobs = store.jobs().map_err(|e| StatementError::at(span, e))?;
                let mine: Vec<&JobRow> = jobs.iter().filter(|j| j.name == n.value).collect();
                if mine.is_empty() {
                    let names = jobs.iter().map(|j| j.name.as_str());
                    return Err(StatementError::refused(
                        n.span,
                        format!(
                            "no job named {}{}",
                            n.value,
                            unknown_job_hint(&n.value, names)
                        ),
                    ));
                }
                let mut runs = Vec::new();
                for j in mine {
                    runs.extend(
                        store
                            .job_runs(Some(j.job_no), limit)
                            .map_err(|e| StatementError::at(span, e))?,
                    );
                }
                runs.sort_by(|a, b| b.due.cmp(&a.due));
                runs.truncate(limit);
                Ok(runs)
            }
        }
        .map_err(|e| StatementError::at(span, e))?;
        let mut t = Table::new(crate::output::columns::JOB_HISTORY.iter().copied());
        for r in runs {
            t.rows.push(vec![
                Cell::Text(r.job_type.keyword().into()),
                Cell::Text(r.name),
                Cell::Text(r.uid),
                time_cell(&r.due),
                time_cell(&r.start_time),
                r.end_time.as_deref().map_or(Cell::Null, time_cell),
                Cell::Text(r.status.to_string()),
                Cell::Duration(std::time::Duration::from_millis(r.late_ms.max(0) as u64)),
                Cell::Text(r.node),
                r.output.into(),
                r.error.into(),
            ]);
        }
        Ok(Some(Output::Table(t)))
    }

    /// `SHOW SCHEDULES`: every STATEMENT and PROCESS job, its schedule, its
    /// next run (local time) and how its last run went.
    pub(super) fn show_schedules(&mut self, span: Span) -> Result<Option<Output>> {
        let store = self.store()?;
        let jobs = store.jobs().map_err(|e| StatementError::at(span, e))?;
        let mut t = Table::new(crate::output::columns::SCHEDULES.iter().copied());
        for j in jobs.iter().filter(|j| j.job_type != JobType::BatchJob) {
            let last = store
                .job_runs(Some(j.job_no), 1)
                .map_err(|e| StatementError::at(span, e))?
                .into_iter()
                .next();
            let time = |t: &Option<String>| t.as_deref().map_or(Cell::Null, time_cell);
            t.rows.push(vec![
                Cell::Text(j.name.clone()),
                Cell::Text(j.job_type.keyword().into()),
                j.schedule.clone().into(),
                Cell::Text(j.status.to_string()),
                time(&j.next_run),
                time(&last.as_ref().map(|r| r.start_time.clone())),
                last.map(|r| r.status.to_string()).into(),
                j.statement.clone().into(),
            ]);
        }
        Ok(Some(Output::Table(t)))
    }
}
