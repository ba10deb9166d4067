//! `ON_DONE`: the shell command run when a batch reaches a final status.

use super::*;

/// Runs the batch's `ON_DONE` hook to its end. Its output goes to stderr,
/// so stdout keeps only the data asked for (one JSON document per
/// statement); a hook that fails or cannot start is reported there too.
/// Either way the batch's outcome stands.
pub(super) fn on_done(
    events: &dyn Events,
    cmd: &str,
    bid: &str,
    status: BatchStatus,
    c: &crate::batch::Counters,
) {
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
        Ok(s) => events.event(Event::HookFailed {
            bid,
            status,
            why: format!("ended with {s}"),
        }),
        Err(e) => events.event(Event::HookFailed {
            bid,
            status,
            why: format!("could not start: {e}"),
        }),
    }
}
