//! The display column names of every table the spec defines (SPEC §4, §6,
//! §8). They are contract: scripts read them, and JSON keys derive from
//! them. Build tables from these, so a name is spelled in one place.

/// What a synchronous BATCH prints at the end (§4).
pub const BATCH_RESULT: &[&str] = &[
    "Batch id",
    "Execution id",
    "Execution succeeded",
    "Execution failed",
    "Total",
    "Added",
    "Updated",
    "Unchanged",
    "Duration",
];

/// What an asynchronous BATCH prints at once (§4).
pub const BATCH_ASYNC: &[&str] = &["Batch id", "Notes"];

/// What `BATCH_APPEND` prints: the ids it recorded for the batch (§6).
pub const BATCH_APPEND: &[&str] = &["Batch id", "Appended"];

/// `BATCH_LIST` (§6).
pub const BATCH_LIST: &[&str] = &[
    "Id",
    "Command",
    "Start date",
    "End date",
    "Status",
    "Created by",
    "Completion %",
    "Execution id",
    "Error",
];

/// `BATCH_PURGE` (§6): the batches it deleted.
pub const BATCH_PURGE: &[&str] = &["Id", "Command", "Status", "End date", "Entities"];

/// `BATCH_SUMMARY` (§6).
pub const BATCH_SUMMARY: &[&str] = &[
    "Level",
    "Name",
    "Status",
    "Start time",
    "End time",
    "Duration",
    "Remaining dur.",
    "Remaining",
    "Total",
    "Succeeded",
    "Failed",
    "Added",
    "Updated",
    "Unchanged",
    "% Completed",
    "Ent./sec (pace)",
    "Ent./sec (avg.)",
];

/// `BATCH_DETAILS` (§6).
pub const BATCH_DETAILS: &[&str] = &[
    "Entity ID",
    "Node id",
    "Status",
    "Attempts",
    "Process time (ms)",
    "Error",
    "Results",
    "Start time",
    "Exit code",
    "Command",
];

/// `BATCH_OUTPUT` (§6) in JSON and CSV: the entity, its stdout (or, with
/// `STREAM='stderr'`, [`BATCH_OUTPUT_STDERR`]), and whether OUTPUT_LIMIT
/// cut it. The table format prints the text alone.
pub const BATCH_OUTPUT_STDOUT: &[&str] = &["Entity ID", "Stdout", "Truncated"];

/// `BATCH_OUTPUT STREAM='stderr'` in JSON and CSV.
pub const BATCH_OUTPUT_STDERR: &[&str] = &["Entity ID", "Stderr", "Truncated"];

/// `BATCH_IN_PROCESS` (§6).
pub const BATCH_IN_PROCESS: &[&str] = &[
    "Node ID",
    "Batch id",
    "Entity ID",
    "LU",
    "Time at work (ms)",
    "Execution id",
    "Command",
];

/// `SHOW NODES` (§6).
pub const SHOW_NODES: &[&str] = &[
    "Node",
    "DC",
    "Worker id",
    "Host",
    "Pid",
    "Kind",
    "Status",
    "Workers",
    "Heartbeat age",
    "Batches",
    "In process",
];

/// `JOBSTATUS` (§8).
pub const JOBSTATUS: &[&str] = &[
    "Type",
    "Name",
    "UID",
    "Status",
    "Creation Time",
    "Start Time",
    "End Time",
    "Affinity",
    "Is Archived",
    "Next Run",
    "Ownership Candidates Num",
    "Notes",
    "Owner",
];

/// `SHOW SCHEDULES` (§8): every STATEMENT and PROCESS job.
pub const SCHEDULES: &[&str] = &[
    "Name",
    "Type",
    "Schedule",
    "Status",
    "Next run",
    "Last run",
    "Last status",
    "Statement",
];

/// `JOB_HISTORY` (§8): one row per run of a job, newest due time first.
pub const JOB_HISTORY: &[&str] = &[
    "Type",
    "Name",
    "UID",
    "Due time",
    "Start time",
    "End time",
    "Status",
    "Late",
    "Node",
    "Output",
    "Error",
];

/// `WINDOW_STATUS` without a name (§9): one row per series, its latest run
/// and its next window.
pub const WINDOW_STATUS: &[&str] = &[
    "Series",
    "Status",
    "Batch ID",
    "Batch start",
    "Batch end",
    "From date",
    "Error",
    "Next from date",
];

/// `BATCH_WAIT NAME='...'` (§9): one row per series it waited for, its
/// latest run.
pub const BATCH_WAIT_NAMED: &[&str] = &["Series", "Status", "Batch ID", "Start", "End", "Bid"];
