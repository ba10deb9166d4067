//! The process's exit codes (SPEC §1), a leaf that every layer may read:
//! how a batch ended (`crate::batch::RunEnd::exit_code`), a failed
//! statement, a usage error, Ctrl-C.

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
/// A batch ended DONE with failed entities, or CANCELLED.
pub const BATCH_INCOMPLETE: i32 = 3;
pub const WAIT_TIMEOUT: i32 = 4;
pub const INTERRUPTED: i32 = 130;
