//! The words of the language in one place: statement names, option tables,
//! and the value types options take. The parser, the "did you mean"
//! suggestions, the grammar test and the REPL completer all read these lists,
//! so a new word is added once.

pub use crate::typo::suggest;

/// A statement as a user names it (`CREATE INTERFACE`, `BATCH_LIST`), with a
/// one-line summary for `HELP`.
#[derive(Debug)]
pub struct StatementWord {
    /// Space-separated words, upper case.
    pub name: &'static str,
    pub summary: &'static str,
}

/// Every statement, in the order `HELP` lists them. Legacy spellings included.
pub const STATEMENTS: &[StatementWord] = &[
    st(
        "CREATE INTERFACE",
        "define a data source (SQLite file, CSV file or folder, PostgreSQL database)",
    ),
    st("DROP INTERFACE", "remove a data source"),
    st("SHOW INTERFACES", "list the data sources"),
    st(
        "CREATE LU",
        "define a logical unit: its root query and tables",
    ),
    st("DROP LU", "remove a logical unit"),
    st("SHOW LUS", "list the logical units"),
    st(
        "DESCRIBE LU",
        "show a logical unit's interface, root query and tables",
    ),
    st(
        "DESCRIBE INTERFACE",
        "show an interface's tables, columns and their types",
    ),
    st("GET", "print one instance's stored tables"),
    st(
        "CREATE INSTANCE GROUP",
        "save a one-column query of entity ids",
    ),
    st("DROP INSTANCE GROUP", "remove an instance group"),
    st("SHOW INSTANCE GROUPS", "list the instance groups"),
    st("BATCH", "run one command per entity on a pool of workers"),
    st("MIGRATE", "legacy form of BATCH ... sync_instance"),
    st("EXPLAIN", "show what a BATCH would do, without running it"),
    st("BATCH_PAUSE", "stop handing out entities of a batch"),
    st("BATCH_RESUME", "continue a paused batch"),
    st(
        "BATCH_CANCEL",
        "stop a batch; unprocessed entities stay unprocessed",
    ),
    st("CANCEL BATCH", "legacy form of BATCH_CANCEL"),
    st(
        "BATCH_RETRY",
        "run a batch's failed and unprocessed entities again",
    ),
    st("BATCH_EDIT", "change the worker count of a running batch"),
    st("BATCH_APPEND", "add entities to an OPEN batch"),
    st("BATCH_WAITOFF", "close an OPEN batch to appends"),
    st("BATCH_WAIT", "block until a batch, or named batches, end"),
    st(
        "BATCH_PURGE",
        "delete finished batches and their entity rows",
    ),
    st("BATCH_LIST", "one row per batch, newest first"),
    st(
        "BATCH_INFO",
        "everything about one batch, as key/value rows",
    ),
    st(
        "BATCH_SUMMARY",
        "progress per node, per DC and for the cluster",
    ),
    st("BATCH_DETAILS", "one row per entity of a batch"),
    st("BATCH_IN_PROCESS", "entities being processed right now"),
    st("BATCH_HISTORY", "every status change of a batch"),
    st(
        "BATCH_OUTPUT",
        "the raw stdout (or stderr) of a batch's entities, in input order",
    ),
    st(
        "SHOW NODES",
        "the processes that run batches: workers, synchronous runs",
    ),
    st(
        "STARTJOB",
        "create and start a job (a statement or a process)",
    ),
    st("STOPJOB", "stop a job"),
    st("RESTARTJOB", "run a job again now"),
    st("RESUMEJOB", "resume a stopped job"),
    st("UPDATEJOB", "change a job's affinity or schedule"),
    st("JOBSTATUS", "list jobs and their status"),
    st("JOB_HISTORY", "the past runs of a job, or of every job"),
    st(
        "SCHEDULE",
        "run a statement on a cron, interval or one-time schedule",
    ),
    st("SHOW SCHEDULES", "list the schedules"),
    st("DROP SCHEDULE", "remove a schedule"),
    st(
        "WINDOW_STATUS",
        "a named batch series' last run and next window",
    ),
    st(
        "WINDOW_SET",
        "set a named series' next window, its settings and parameters",
    ),
    st(
        "WINDOW_OPEN",
        "open a run of a named series and print its window",
    ),
    st(
        "WINDOW_CLOSE",
        "end the open run of a named series: it succeeded",
    ),
    st(
        "WINDOW_FAIL",
        "end the open run of a named series: it failed",
    ),
    st("HELP", "list statements, or show one statement's syntax"),
    st(
        "SET",
        "change a session setting (FORMAT, PROGRESS, EXPANDED, TIMING, PAGER)",
    ),
    st("SHOW SETTINGS", "print the session settings"),
    st("EXIT", "leave the REPL (also QUIT)"),
];

/// Statements that parse (and print back) but do not run yet: running one
/// says "not implemented yet". `HELP` marks them, and the test that runs
/// HELP's examples skips theirs.
pub const NOT_BUILT: &[&str] = &[];

/// Whether the statement (as [`STATEMENTS`] names it) runs in this version.
pub fn is_built(statement: &str) -> bool {
    !NOT_BUILT.contains(&statement)
}

const fn st(name: &'static str, summary: &'static str) -> StatementWord {
    StatementWord { name, summary }
}

/// The words a statement may start with, for "did you mean" on an unknown
/// statement.
pub fn leading_words() -> Vec<&'static str> {
    let mut words: Vec<&'static str> = STATEMENTS
        .iter()
        .map(|s| s.name.split(' ').next().unwrap_or(s.name))
        .collect();
    words.push("QUIT");
    words.dedup();
    words
}

/// What an option's value must be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptType {
    /// `true` / `false`, bare or quoted, any case.
    Bool,
    /// A whole number, bare or quoted.
    Int,
    /// A number with an optional fraction.
    Number,
    /// `'500ms'`, `'30s'`, `'5m'`, `'2h'`, `'1d'`, `'HH:MM:SS'`, `'D.HH:MM:SS'`.
    Duration,
    /// A whole number, or a percentage `'N%'`.
    IntOrPercent,
    /// Any string.
    Str,
    /// One character.
    Char,
    /// A JSON array, written as a string.
    JsonArray,
    /// A JSON object, written as a string.
    JsonObject,
    /// One of the listed words (case-insensitive), or a comma list of them
    /// when `list` is true.
    Enum {
        values: &'static [&'static str],
        list: bool,
    },
    /// A point in time: `'today'`, `'yesterday'`, `'now'`, `'YYYY-MM-DD'`,
    /// `'YYYY-MM-DD HH:MM:SS'` or RFC 3339.
    Time,
    /// A job schedule: timestamp, interval or cron expression (SPEC §8).
    Schedule,
    /// A statement of this language.
    Statement,
}

impl OptType {
    /// What to tell a user who gave a wrong value.
    pub fn describe(self) -> String {
        match self {
            OptType::Bool => "true or false".into(),
            OptType::Int => "a whole number".into(),
            OptType::Number => "a number".into(),
            OptType::Duration => {
                "a duration such as '500ms', '30s', '5m', '2h', '1d' or 'HH:MM:SS'".into()
            }
            OptType::IntOrPercent => "a whole number or a percentage such as '5%'".into(),
            OptType::Str => "a string".into(),
            OptType::Char => "a single character".into(),
            OptType::JsonArray => "a JSON array such as '[\"a\", 1]'".into(),
            OptType::JsonObject => "a JSON object such as '{\"0\": \"x\"}'".into(),
            OptType::Enum { values, list } => {
                let one = values.join(", ");
                if list {
                    format!("one or more (comma separated) of {one}")
                } else {
                    format!("one of {one}")
                }
            }
            OptType::Time => "a time such as 'today', '2026-01-31' or '2026-01-31 02:00:00'".into(),
            OptType::Schedule => {
                "a schedule: 'yyyy-MM-dd HH:mm:ss', 'HH:MM:SS', 'D.HH:MM:SS' or a cron expression"
                    .into()
            }
            OptType::Statement => "a batchsh statement".into(),
        }
    }
}

#[derive(Debug)]
pub struct OptSpec {
    pub name: &'static str,
    /// Legacy spellings, read as `name`.
    pub aliases: &'static [&'static str],
    pub ty: OptType,
}

const fn opt(name: &'static str, ty: OptType) -> OptSpec {
    OptSpec {
        name,
        aliases: &[],
        ty,
    }
}

const fn legacy(name: &'static str, aliases: &'static [&'static str], ty: OptType) -> OptSpec {
    OptSpec { name, aliases, ty }
}

pub const BATCH_STATUSES: &[&str] = crate::batch::BatchStatus::NAMES;

pub const ENTITY_STATUSES: &[&str] = crate::batch::EntityStatus::NAMES;

/// Statuses a `BATCH_LIST` filter accepts: every batch status, `ALL`, and
/// `GENERATE_IID` as a short form of `GENERATE_IID_LIST`.
const LIST_STATUSES: &[&str] = crate::batch::BatchStatus::FILTER_NAMES;

const FINAL_STATUSES: &[&str] = crate::batch::BatchStatus::FINAL_NAMES;

/// `BATCH ... WITH` options (SPEC §4).
pub const BATCH_OPTIONS: &[OptSpec] = &[
    opt("ASYNC", OptType::Bool),
    opt("AFFINITY", OptType::Str),
    opt("JOB_AFFINITY", OptType::Str),
    legacy(
        "GENERATE_ENTITIES_FIRST",
        &["GENERATE_IIDS_FIRST"],
        OptType::Bool,
    ),
    legacy("ALLOW_MULTIPLE", &["ALLOW_MULTIPLY"], OptType::Bool),
    opt("MAX_NODES", OptType::Int),
    opt("MAX_WORKERS_PER_NODE", OptType::Int),
    opt("ESTIMATED_ENTITIES_COUNT", OptType::Int),
    opt("BIND_PARAMS", OptType::Str),
    opt("BIND_PARAMS_SEPARATOR", OptType::Str),
    opt("BIND_PARAMS_JSON", OptType::JsonArray),
    opt("MAX_RETRIES", OptType::Int),
    opt("RETRY_DELAY", OptType::Duration),
    opt("ENTITY_TIMEOUT", OptType::Duration),
    opt("MAX_FAILURES", OptType::IntOrPercent),
    opt("CHUNK_SIZE", OptType::Int),
    opt("NAME", OptType::Str),
    opt("REPROCESS_HOURS", OptType::Number),
    opt("TRUNC_START", OptType::Bool),
    opt("OPEN", OptType::Bool),
    opt("ON_DONE", OptType::Str),
    opt("RESUME", OptType::Bool),
    opt("OUTPUT_LIMIT", OptType::Str),
    opt("SHOW_OUTPUT", OptType::Bool),
];

/// `CREATE INTERFACE ... TYPE CSV ... WITH` options.
pub const CSV_OPTIONS: &[OptSpec] = &[
    opt("HEADER", OptType::Bool),
    opt("DELIMITER", OptType::Char),
    opt("TYPES", OptType::Bool),
];

pub const RETRY_OPTIONS: &[OptSpec] = &[opt("ALLOW_CANCELLED", OptType::Bool)];

pub const EDIT_OPTIONS: &[OptSpec] = &[opt("MAX_WORKERS_PER_NODE", OptType::Int)];

pub const WAIT_OPTIONS: &[OptSpec] = &[
    opt("NAME", OptType::Str),
    opt("SINCE", OptType::Time),
    opt("TIMEOUT", OptType::Duration),
    opt("FAIL_FAST", OptType::Bool),
];

pub const PURGE_OPTIONS: &[OptSpec] = &[
    opt("OLDER_THAN", OptType::Duration),
    opt(
        "STATUS",
        OptType::Enum {
            values: FINAL_STATUSES,
            list: true,
        },
    ),
];

pub const LIST_OPTIONS: &[OptSpec] = &[
    opt(
        "STATUS",
        OptType::Enum {
            values: LIST_STATUSES,
            list: true,
        },
    ),
    opt("FROM_DATE", OptType::Time),
    opt("TO_DATE", OptType::Time),
    opt("FILTER", OptType::Str),
    opt("LIMIT", OptType::Int),
];

pub const DETAILS_OPTIONS: &[OptSpec] = &[
    opt(
        "STATUS",
        OptType::Enum {
            values: ENTITY_STATUSES,
            list: true,
        },
    ),
    opt("ENTITIES", OptType::Str),
    opt("AFFINITY", OptType::Str),
    opt("LIMIT", OptType::Int),
    opt("SORT_BY_PROCESS_TIME", OptType::Bool),
];

pub const IN_PROCESS_OPTIONS: &[OptSpec] = &[opt("FILTER", OptType::Str)];

/// `BATCH_OUTPUT` (SPEC §6): which entities, and which of their streams.
pub const OUTPUT_OPTIONS: &[OptSpec] = &[
    opt(
        "STATUS",
        OptType::Enum {
            values: ENTITY_STATUSES,
            list: true,
        },
    ),
    opt("ENTITIES", OptType::Str),
    opt(
        "STREAM",
        OptType::Enum {
            values: &["STDOUT", "STDERR"],
            list: false,
        },
    ),
];

/// `STARTJOB STATEMENT`: the command is a statement of this language.
pub const STARTJOB_STATEMENT_OPTIONS: &[OptSpec] = &[
    opt("NAME", OptType::Str),
    opt("UID", OptType::Str),
    opt("AFFINITY", OptType::Str),
    opt("EXEC_INTERVAL", OptType::Schedule),
    opt("COMMAND", OptType::Statement),
];

/// `STARTJOB PROCESS`: the command is a program, `ARGS` its arguments.
pub const STARTJOB_PROCESS_OPTIONS: &[OptSpec] = &[
    opt("NAME", OptType::Str),
    opt("UID", OptType::Str),
    opt("AFFINITY", OptType::Str),
    opt("EXEC_INTERVAL", OptType::Schedule),
    opt("COMMAND", OptType::Str),
    opt("ARGS", OptType::JsonObject),
    opt("TIMEOUT", OptType::Duration),
];

pub const JOB_ID_OPTIONS: &[OptSpec] = &[opt("NAME", OptType::Str), opt("UID", OptType::Str)];

pub const UPDATEJOB_OPTIONS: &[OptSpec] = &[
    opt("NAME", OptType::Str),
    opt("UID", OptType::Str),
    opt("AFFINITY", OptType::Str),
    opt("EXEC_INTERVAL", OptType::Schedule),
    opt("RESET_END_TIME", OptType::Bool),
];

pub const JOBSTATUS_OPTIONS: &[OptSpec] = &[opt("UID", OptType::Str)];

pub const JOB_HISTORY_OPTIONS: &[OptSpec] = &[opt("LIMIT", OptType::Int)];

pub const WINDOW_STATUS_OPTIONS: &[OptSpec] = &[opt(
    "FORMAT",
    OptType::Enum {
        values: &["TABLE", "JSON", "INFA"],
        list: false,
    },
)];

/// `WINDOW_OPEN` prints what `WINDOW_STATUS` does, in the same formats.
pub const WINDOW_OPEN_OPTIONS: &[OptSpec] = WINDOW_STATUS_OPTIONS;

/// Besides these, `WINDOW_SET` takes any `name='value'`: the series' own
/// parameters.
pub const WINDOW_SET_OPTIONS: &[OptSpec] = &[
    opt("FROM_DATE", OptType::Time),
    opt("REPROCESS_HOURS", OptType::Int),
    opt("TRUNC_START", OptType::Bool),
];

pub const WINDOW_FAIL_OPTIONS: &[OptSpec] = &[opt("ERROR", OptType::Str)];

/// Every option table, for the completer and the grammar test.
pub const ALL_OPTION_TABLES: &[(&str, &[OptSpec])] = &[
    ("BATCH", BATCH_OPTIONS),
    ("CREATE INTERFACE", CSV_OPTIONS),
    ("BATCH_RETRY", RETRY_OPTIONS),
    ("BATCH_EDIT", EDIT_OPTIONS),
    ("BATCH_WAIT", WAIT_OPTIONS),
    ("BATCH_PURGE", PURGE_OPTIONS),
    ("BATCH_LIST", LIST_OPTIONS),
    ("BATCH_DETAILS", DETAILS_OPTIONS),
    ("BATCH_IN_PROCESS", IN_PROCESS_OPTIONS),
    ("BATCH_OUTPUT", OUTPUT_OPTIONS),
    ("STARTJOB STATEMENT", STARTJOB_STATEMENT_OPTIONS),
    ("STARTJOB PROCESS", STARTJOB_PROCESS_OPTIONS),
    ("STOPJOB", JOB_ID_OPTIONS),
    ("UPDATEJOB", UPDATEJOB_OPTIONS),
    ("JOBSTATUS", JOBSTATUS_OPTIONS),
    ("JOB_HISTORY", JOB_HISTORY_OPTIONS),
    ("WINDOW_STATUS", WINDOW_STATUS_OPTIONS),
    ("WINDOW_SET", WINDOW_SET_OPTIONS),
    ("WINDOW_OPEN", WINDOW_OPEN_OPTIONS),
    ("WINDOW_FAIL", WINDOW_FAIL_OPTIONS),
];

/// The per-entity command names (SPEC §5).
pub const COMMANDS: &[&str] = &[
    "sync_instance",
    "delete_instance",
    "exec",
    "shell",
    "pipe",
    "sql",
    "echo",
    "sleep",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_word() {
        assert_eq!(
            suggest("FABRIC_COMAND", ["FABRIC_COMMAND", "FROM"]),
            Some("FABRIC_COMMAND")
        );
        assert_eq!(suggest("batch_lsit", leading_words()), Some("BATCH_LIST"));
        assert_eq!(suggest("xyzzy", leading_words()), None);
        assert_eq!(suggest(&"B".repeat(100_000), leading_words()), None);
    }

    #[test]
    fn option_names_are_unique_per_table() {
        for (table, specs) in ALL_OPTION_TABLES {
            let mut names: Vec<&str> = specs
                .iter()
                .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied()))
                .collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "duplicate option in {table}");
        }
    }
}
