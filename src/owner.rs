//! Whether the process that owns a batch (SPEC §7: the node and pid that
//! run it, with their heartbeat) is still alive. Control statements act on
//! a live owner through requests and take a dead one's batch over;
//! `BATCH_IN_PROCESS` shows only the entities of live owners.

/// This machine's name: the default node id (SPEC §1).
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Whether the process that owns the batch is alive: on this host, its pid
/// is checked directly (so a kill -9 is seen at once), and must belong to
/// a process started before the owner's last heartbeat (after a crash or
/// a reboot the pid may be another process's); elsewhere, or without
/// `/proc`, its heartbeat must be recent.
pub fn alive(owner_node: Option<&str>, owner_pid: Option<i64>, heartbeat_at: Option<&str>) -> bool {
    let Some(owner) = owner_node else {
        return false;
    };
    lives(owner == hostname(), owner_pid, heartbeat_at)
}

/// Whether the process `pid` of `host` that last beat at `heartbeat_at`
/// is alive, as [`alive`] decides it (a node of the nodes table).
pub fn process_alive(host: &str, pid: i64, heartbeat_at: &str) -> bool {
    lives(host == hostname(), Some(pid), Some(heartbeat_at))
}

/// Whether process `pid` of `host`, which last beat at `heartbeat_at`, is
/// known to be gone: on this host, its pid names no process (or a later
/// one). Elsewhere nothing is known from here: only a heartbeat, which
/// stopping does not make a death until a node judges it so.
pub fn gone_here(host: &str, pid: i64, heartbeat_at: &str) -> bool {
    let heartbeat = chrono::DateTime::parse_from_rfc3339(heartbeat_at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc));
    host == hostname() && pid_is_owner(pid, heartbeat) == Some(false)
}

/// Whether a background process (a worker) of `host` with `pid` that last
/// beat at `heartbeat_at` is alive (SPEC §7): its heartbeat is younger than
/// the dead-after time, and, on this host, its pid is still its process (a
/// vanished one is dead at once). Unlike [`alive`], a process that exists
/// but has stopped beating (SIGSTOP, a paused VM) is dead: its batches are
/// taken over, and it writes nothing more when it wakes.
pub fn beating(host: &str, pid: i64, heartbeat_at: &str) -> bool {
    let heartbeat = chrono::DateTime::parse_from_rfc3339(heartbeat_at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc));
    if host == hostname() && pid_is_owner(pid, heartbeat) == Some(false) {
        return false;
    }
    let dead_after = chrono::TimeDelta::from_std(crate::knobs::dead_after())
        .unwrap_or(chrono::TimeDelta::seconds(10));
    heartbeat.is_some_and(|t| chrono::Utc::now().signed_duration_since(t) < dead_after)
}

/// See [`alive`]; `here`: the process is on this host.
fn lives(here: bool, owner_pid: Option<i64>, heartbeat_at: Option<&str>) -> bool {
    let heartbeat = heartbeat_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    if here && let Some(pid) = owner_pid {
        if i64::from(std::process::id()) == pid {
            return false;
        }
        if let Some(alive) = pid_is_owner(pid, heartbeat) {
            return alive;
        }
    }
    // How long a running batch may go without a heartbeat before its
    // process counts as dead (SPEC §7).
    let dead_after = chrono::TimeDelta::from_std(crate::knobs::dead_after())
        .unwrap_or(chrono::TimeDelta::seconds(10));
    heartbeat.is_some_and(|t| chrono::Utc::now().signed_duration_since(t) < dead_after)
}

/// How much later than the owner's last heartbeat a process with its pid
/// may seem to have started and still be taken for it: process start
/// times are derived from the boot time, which the clock's adjustments
/// move by a little.
const START_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// Whether process `pid` of this host is the owner that wrote `heartbeat`:
/// it exists and did not start after that. `None` where `/proc` cannot
/// tell (no `/proc`, or the process's entry cannot be read).
fn pid_is_owner(pid: i64, heartbeat: Option<chrono::DateTime<chrono::Utc>>) -> Option<bool> {
    let proc_dir = std::path::Path::new("/proc");
    if !proc_dir.join("self/stat").exists() {
        return None;
    }
    let stat = match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")) {
        Ok(stat) => stat,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
        // It exists but cannot be read (another user's process under
        // `hidepid`): the heartbeat decides.
        Err(_) => return None,
    };
    Some(match (process_start(&stat), heartbeat) {
        (Some(started), Some(beat)) => started <= beat + START_SLACK,
        _ => true,
    })
}

/// When process `pid` of this host started, if `/proc` tells: with its
/// pid, it tells that process from a later one given the same pid.
pub fn started_at(pid: u32) -> Option<chrono::DateTime<chrono::Utc>> {
    process_start(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// When a process started, from its `/proc/<pid>/stat` line: field 22,
/// in clock ticks after the boot time of `/proc/stat`.
fn process_start(stat: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    // The fields after the command name, which is in parentheses and may
    // hold anything: the first of them is field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: i64 = rest.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = i64::try_from(rustix::param::clock_ticks_per_second())
        .ok()?
        .max(1);
    chrono::DateTime::from_timestamp(boot, 0)?.checked_add_signed(chrono::TimeDelta::milliseconds(
        ticks.checked_mul(1000)? / hz,
    ))
}

#[cfg(test)]
mod tests {
    use super::{pid_is_owner, process_start};
    use chrono::{TimeDelta, Utc};

    #[test]
    fn a_process_start_is_read_past_any_command_name() {
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let started = process_start(&own).unwrap();
        assert!(started <= Utc::now() && started > Utc::now() - TimeDelta::days(1));
        // A command name may hold spaces and parentheses; field 22 is 0
        // ticks: the boot time itself.
        let odd = "42 (a) b (c) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0";
        let boot = process_start(odd).unwrap();
        assert!(boot <= started);
        assert_eq!(process_start("42 (no fields)"), None);
    }

    #[test]
    fn a_pid_is_the_owner_only_if_it_started_before_the_heartbeat() {
        let me = i64::from(std::process::id());
        assert_eq!(pid_is_owner(me, Some(Utc::now())), Some(true));
        assert_eq!(pid_is_owner(me, None), Some(true));
        // This process started after a heartbeat of a day ago: it is not
        // the process that wrote it.
        let long_ago = Utc::now() - TimeDelta::days(1);
        assert_eq!(pid_is_owner(me, Some(long_ago)), Some(false));
        // No such process.
        assert_eq!(
            pid_is_owner(i64::from(i32::MAX), Some(Utc::now())),
            Some(false)
        );
    }
}
