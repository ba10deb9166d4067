//! The statements of the batchsh language, as the parser produces them.
//!
//! Every node that names something carries the [`Span`] of its text, so that
//! later passes (analysis, execution) can point at the right place. Spans are
//! position metadata: two statements that say the same thing compare equal
//! wherever they stand, which is what the round-trip tests rely on.
//!
//! `Display` prints every statement back in canonical form (see `display.rs`).

/// The catalog's own words, which the store and the sources read too.
pub use crate::catalog::InterfaceKind;
use std::fmt;

/// A byte range in the source text. Always compares equal: see the module doc.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The range as a tuple, for tests and tools that do care about position.
    pub fn range(self) -> (usize, usize) {
        (self.start, self.end)
    }

    /// Moves the span by `delta` bytes (used to place spans of text parsed
    /// from inside a string literal back into the outer text).
    pub fn shifted(self, delta: usize) -> Span {
        Span::new(self.start + delta, self.end + delta)
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

/// A name (LU, interface, group, data center, table, column...), as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

impl Name {
    pub fn new(text: impl Into<String>, span: Span) -> Name {
        Name {
            text: text.into(),
            span,
        }
    }
}

/// A string value as written in the source (quotes removed, escapes undone).
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub value: String,
    pub span: Span,
}

/// A parameter of a series, `name='value'` in `WINDOW_SET`: a name that is
/// none of the statement's options.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Text,
    pub value: Text,
}

/// One statement with the span of its text (without the closing `;`).
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: Statement,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    // --- catalog (SPEC §3)
    CreateInterface {
        or_replace: bool,
        name: Name,
        kind: InterfaceKind,
        /// `PATH` for SQLITE and CSV, `URL` for POSTGRES.
        location: Text,
        options: Options,
    },
    DropInterface {
        name: Name,
    },
    ShowInterfaces,
    CreateLu {
        or_replace: bool,
        name: Name,
        interface: Name,
        root: Text,
        tables: Vec<LuTable>,
    },
    DropLu {
        name: Name,
    },
    ShowLus,
    DescribeLu {
        name: Name,
    },
    DescribeInterface {
        name: Name,
    },
    Get {
        lu: Name,
        id: Text,
    },
    CreateInstanceGroup {
        or_replace: bool,
        lu: Name,
        group: Name,
        interface: Option<Name>,
        sql: Text,
    },
    DropInstanceGroup {
        lu: Name,
        group: Name,
    },
    ShowInstanceGroups {
        lu: Option<Name>,
    },

    // --- batches (SPEC §4)
    Batch(Box<BatchStmt>),
    Explain(Box<BatchStmt>),

    // --- control and monitoring (SPEC §6)
    BatchPause {
        bid: Option<Text>,
    },
    BatchResume {
        bid: Option<Text>,
    },
    BatchCancel {
        bid: Option<Text>,
    },
    BatchRetry {
        bid: Option<Text>,
        options: Options,
    },
    BatchEdit {
        bid: Option<Text>,
        options: Options,
    },
    BatchAppend {
        bid: Text,
        source: AppendSource,
    },
    BatchWaitoff {
        bid: Option<Text>,
    },
    BatchWait {
        bid: Option<Text>,
        options: Options,
    },
    BatchPurge {
        options: Options,
    },
    BatchList {
        options: Options,
    },
    BatchInfo {
        bid: Option<Text>,
    },
    BatchSummary {
        bid: Option<Text>,
    },
    BatchDetails {
        bid: Option<Text>,
        options: Options,
    },
    /// `BATCH_IN_PROCESS ['bid']`: one batch's entities, or every
    /// batch's without a bid.
    BatchInProcess {
        bid: Option<Text>,
        options: Options,
    },
    BatchHistory {
        bid: Option<Text>,
    },
    /// `BATCH_OUTPUT`: the entities' own output, raw (SPEC §6).
    BatchOutput {
        bid: Option<Text>,
        options: Options,
    },

    // --- jobs and schedules (SPEC §8)
    Job {
        verb: JobVerb,
        job_type: JobType,
        options: Options,
    },
    JobStatus {
        job_type: Option<JobType>,
        name: Option<Text>,
        options: Options,
    },
    /// `JOB_HISTORY ['name'] [LIMIT=n]`: the runs of jobs.
    JobHistory {
        name: Option<Text>,
        options: Options,
    },
    Schedule {
        name: Name,
        when: ScheduleSpec,
        body: Box<Stmt>,
    },
    ShowSchedules,
    /// `SHOW NODES`: the nodes known to the store (SPEC §6).
    ShowNodes,
    DropSchedule {
        name: Name,
    },

    // --- windows (SPEC §9)
    WindowStatus {
        name: Option<Text>,
        options: Options,
    },
    WindowSet {
        name: Text,
        options: Options,
        /// The series' own parameters (`region='EU'`), in written order.
        params: Vec<Param>,
    },
    WindowOpen {
        name: Text,
        options: Options,
    },
    WindowClose {
        name: Text,
    },
    WindowFail {
        name: Text,
        options: Options,
    },

    // --- session (SPEC §12)
    Help {
        topic: Option<Name>,
    },
    Set {
        setting: Setting,
    },
    ShowSettings,
    Exit,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LuTable {
    pub name: Name,
    /// Row identity columns; empty means "the first column".
    pub key: Vec<Name>,
    pub sql: Text,
}

/// `BATCH`, or its legacy form `MIGRATE` (whose command is implied).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStmt {
    pub migrate: bool,
    pub target: Target,
    pub source: Option<Source>,
    /// For `MIGRATE`, the implied `sync_instance <LU>.?`.
    pub command: EntityCommand,
    pub options: Options,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub lu: Name,
    pub dc: Option<Name>,
    pub selection: Selection,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    /// The LU's ROOT query, or the source when one is given.
    All,
    Group(Name),
    Ids(Vec<Text>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Fabric,
    Query {
        interface: Name,
        sql: Text,
    },
    /// `FROM STDIN`: one id per line on standard input.
    Stdin,
    /// `FROM FILE 'ids.txt'`: one id per line in a file.
    File(Text),
}

#[derive(Clone, Debug, PartialEq)]
pub enum AppendSource {
    Ids(Vec<Text>),
    Query { interface: Name, sql: Text },
}

/// A per-entity command (SPEC §5), parsed from the `FABRIC_COMMAND` string.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityCommand {
    pub kind: CommandKind,
    /// Span of the command text in the outer source.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CommandKind {
    SyncInstance {
        lu: Name,
    },
    DeleteInstance {
        lu: Name,
    },
    Exec {
        program: String,
        args: Vec<Arg>,
    },
    Shell {
        script: String,
    },
    /// `pipe 'program' 'arg' ...`: one long-running process per entity
    /// thread, the id written to its stdin; its arguments are strings only.
    Pipe {
        program: String,
        args: Vec<String>,
    },
    Sql {
        interface: Name,
        statement: String,
    },
    Echo,
    Sleep {
        ms: u64,
    },
}

impl CommandKind {
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::SyncInstance { .. } => "sync_instance",
            CommandKind::DeleteInstance { .. } => "delete_instance",
            CommandKind::Exec { .. } => "exec",
            CommandKind::Shell { .. } => "shell",
            CommandKind::Pipe { .. } => "pipe",
            CommandKind::Sql { .. } => "sql",
            CommandKind::Echo => "echo",
            CommandKind::Sleep { .. } => "sleep",
        }
    }
}

/// One argument of an `exec` command.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Literal(String),
    /// `?`: the entity id.
    EntityId,
    /// `:from_date`, `:batch_id`...: a window variable (SPEC §9).
    Param(String),
}

impl Arg {
    /// A literal with GNU parallel's `{}` in it, which batchsh passes as
    /// is (the entity id is `?`).
    pub fn has_parallel_braces(&self) -> bool {
        matches!(self, Arg::Literal(l) if l.contains("{}"))
    }
}

/// The named parameters a statement may use (SPEC §2).
pub const NAMED_PARAMS: &[&str] = &["from_date", "batch_start", "batch_end", "batch_id", "bid"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobVerb {
    Start,
    Stop,
    Restart,
    Resume,
    Update,
}

impl JobVerb {
    pub fn keyword(self) -> &'static str {
        match self {
            JobVerb::Start => "STARTJOB",
            JobVerb::Stop => "STOPJOB",
            JobVerb::Restart => "RESTARTJOB",
            JobVerb::Resume => "RESUMEJOB",
            JobVerb::Update => "UPDATEJOB",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobType {
    Statement,
    Process,
    BatchJob,
}

impl JobType {
    pub const ALL: [JobType; 3] = [JobType::Statement, JobType::Process, JobType::BatchJob];

    pub fn keyword(self) -> &'static str {
        match self {
            JobType::Statement => "STATEMENT",
            JobType::Process => "PROCESS",
            JobType::BatchJob => "BATCH_JOB",
        }
    }
}

/// When a job or schedule runs (SPEC §8).
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleSpec {
    /// Once, at a local time.
    At(chrono::NaiveDateTime),
    /// Every interval, counted from the end of the previous run.
    Every(Duration),
    /// A 5-field crontab or 6/7-field Quartz expression, fields single-spaced.
    Cron(String),
}

/// A duration in milliseconds; prints in the largest exact unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

#[derive(Clone, Debug, PartialEq)]
pub enum Setting {
    Format(OutputFormat),
    Progress(bool),
    /// `SET EXPANDED on|off|auto`: tables as one key/value block per row.
    Expanded(Expanded),
    /// `SET TIMING on|off`: each statement's time on stderr.
    Timing(bool),
    /// `SET PAGER on|off`: tall tables on a terminal through the pager.
    Pager(bool),
}

/// When a table prints as one key/value block per row (psql's `\x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expanded {
    Off,
    On,
    /// When the table is wider than the terminal.
    Auto,
}

impl Expanded {
    pub const ALL: [Expanded; 3] = [Expanded::On, Expanded::Off, Expanded::Auto];

    pub fn name(self) -> &'static str {
        match self {
            Expanded::Off => "off",
            Expanded::On => "on",
            Expanded::Auto => "auto",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
        }
    }
}

/// `NAME=value` pairs, in the order written, names canonical (upper case,
/// legacy spellings replaced).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options(pub Vec<Opt>);

impl Options {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|o| o.name == name).map(|o| &o.value)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Opt {
    pub name: &'static str,
    pub value: Value,
    /// From the option name to the end of its value.
    pub span: Span,
}

/// A typed option value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Number(f64),
    Duration(Duration),
    Percent(f64),
    Str(String),
    Json(serde_json::Value),
    Schedule(ScheduleSpec),
    Statement(Box<Stmt>),
}

impl Statement {
    /// The canonical statement name, as `batchsh parse` reports it.
    pub fn name(&self) -> &'static str {
        use Statement::*;
        match self {
            CreateInterface { .. } => "CREATE_INTERFACE",
            DropInterface { .. } => "DROP_INTERFACE",
            ShowInterfaces => "SHOW_INTERFACES",
            CreateLu { .. } => "CREATE_LU",
            DropLu { .. } => "DROP_LU",
            ShowLus => "SHOW_LUS",
            DescribeLu { .. } => "DESCRIBE_LU",
            DescribeInterface { .. } => "DESCRIBE_INTERFACE",
            Get { .. } => "GET",
            CreateInstanceGroup { .. } => "CREATE_INSTANCE_GROUP",
            DropInstanceGroup { .. } => "DROP_INSTANCE_GROUP",
            ShowInstanceGroups { .. } => "SHOW_INSTANCE_GROUPS",
            Batch(b) if b.migrate => "MIGRATE",
            Batch(_) => "BATCH",
            Explain(_) => "EXPLAIN",
            BatchPause { .. } => "BATCH_PAUSE",
            BatchResume { .. } => "BATCH_RESUME",
            BatchCancel { .. } => "BATCH_CANCEL",
            BatchRetry { .. } => "BATCH_RETRY",
            BatchEdit { .. } => "BATCH_EDIT",
            BatchAppend { .. } => "BATCH_APPEND",
            BatchWaitoff { .. } => "BATCH_WAITOFF",
            BatchWait { .. } => "BATCH_WAIT",
            BatchPurge { .. } => "BATCH_PURGE",
            BatchList { .. } => "BATCH_LIST",
            BatchInfo { .. } => "BATCH_INFO",
            BatchSummary { .. } => "BATCH_SUMMARY",
            BatchDetails { .. } => "BATCH_DETAILS",
            BatchInProcess { .. } => "BATCH_IN_PROCESS",
            BatchHistory { .. } => "BATCH_HISTORY",
            BatchOutput { .. } => "BATCH_OUTPUT",
            Job { verb, .. } => verb.keyword(),
            JobStatus { .. } => "JOBSTATUS",
            JobHistory { .. } => "JOB_HISTORY",
            Schedule { .. } => "SCHEDULE",
            ShowSchedules => "SHOW_SCHEDULES",
            ShowNodes => "SHOW_NODES",
            DropSchedule { .. } => "DROP_SCHEDULE",
            WindowStatus { .. } => "WINDOW_STATUS",
            WindowSet { .. } => "WINDOW_SET",
            WindowOpen { .. } => "WINDOW_OPEN",
            WindowClose { .. } => "WINDOW_CLOSE",
            WindowFail { .. } => "WINDOW_FAIL",
            Help { .. } => "HELP",
            Set { .. } => "SET",
            ShowSettings => "SHOW_SETTINGS",
            Exit => "EXIT",
        }
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

mod display;
mod json;

pub use display::{on_off, quote};
pub use json::to_json;

/// A local time as statements write it: `yyyy-MM-dd HH:mm:ss` (an `AT`
/// schedule, a `FROM_DATE`, a window's times).
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A local time written as [`TIMESTAMP_FORMAT`] says.
pub fn parse_timestamp(s: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(s.trim(), TIMESTAMP_FORMAT).ok()
}
