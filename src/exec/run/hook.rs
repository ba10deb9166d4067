//! `ON_DONE`: the shell command run when a batch reaches a final status.

use super::*;

/// Runs the batch's `ON_DONE` hook to its end. Its output goes to stderr,
/// so stdout keeps only the data asked for (one JSON document per
/// statement); a hook that fails or cannot start is reported there too.
/// Either way the batch's outcome stands.
pub(super) fn on_done(cmd: &str, bid: &str, status: BatchStatus, c: &crate::batch::Counters) {
    let mut hook = std::process::Command::new("sh");
    hook.arg("-c")
        .arg(cmd)
        .env("BID", bid)
        .env("STATUS", status.as_str())
        .env("TOTAL", c.total.to_string())
        .env("SUCCEEDED", c.completed.to_string())
        .env("FAILED", c.failed.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr());
    let ran = command::run_tracked(hook);
    match ran {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("warning: ON_DONE of batch {bid} ended with {s}; the batch is {status}"),
        Err(e) => {
            eprintln!("warning: ON_DONE of batch {bid} could not start: {e}; the batch is {status}")
        }
    }
}
