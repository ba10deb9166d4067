//! Starting a background worker for an asynchronous batch that no live
//! worker can take (SPEC §7): `batchsh worker --until-idle` for this store,
//! detached from the terminal (a process group of its own, no stdin), its
//! output in `<home>/logs/`. A lock file serialises the statements that
//! start one, so that two statements at the same moment start one worker,
//! not two: the first starts it and waits until it has registered; the
//! second then finds it alive.
//!
//! Placement decides: a worker is started only when one started here (this
//! process's node, DC and host) may own the batch's job; otherwise the
//! batch waits for a node its `JOB_AFFINITY` or `@DC` names, and the Notes
//! say which, and how to start one there.

use super::StartError;
use crate::batch::{NodeIdent, Placement};
use crate::store::Store;
use crate::store::nodes::{waits_for, worker_alive};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a statement waits for the worker it started to register.
const REGISTER_WAIT: Duration = Duration::from_secs(10);

/// What a statement that queued an asynchronous batch placed as `p`
/// needs: a live worker that may own its job. Starts one when there is
/// none and one started here may own it, and says what it did: the Notes
/// of the statement's result.
pub fn ensure_worker(
    store: &dyn Store,
    home: &Path,
    store_path: &Path,
    here: &NodeIdent,
    p: &Placement,
) -> Result<String, StartError> {
    let queued = |store: &dyn Store| -> Result<String, StartError> {
        Ok(match waits_for(store, p, false)? {
            Some(why) => format!("queued; {why}"),
            None => "queued: a worker runs it (BATCH_WAIT waits for it)".into(),
        })
    };
    if worker_alive(store, |n| p.may_own(n))? || !p.may_own(here) {
        return queued(store);
    }
    if crate::knobs::no_background_worker() {
        return Ok("queued; no worker runs, and none was started (a test asked so)".into());
    }
    let logs = home.join("logs");
    let io = |what: &str| {
        let what = format!("{what} in {}", logs.display());
        move |source| StartError::Io { what, source }
    };
    std::fs::create_dir_all(&logs).map_err(io("cannot create the worker's log folder"))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(logs.join("worker-start.lock"))
        .map_err(io("cannot open the lock that starts a worker"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io("cannot lock the start of a worker")(e.into()))?;
    // Under the lock: another statement may have started one meanwhile.
    if worker_alive(store, |n| p.may_own(n))? {
        return queued(store);
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join("worker-started.log"))
        .map_err(io("cannot open the started worker's output"))?;
    let exe = std::env::current_exe().map_err(io("cannot find batchsh's own program"))?;
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(exe);
    // A URL's password stays out of the process list: the worker reads
    // the store from its environment.
    command.env_remove("BATCHSH_STORE");
    if crate::store::is_url(store_path) {
        command.env("BATCHSH_STORE", store_path);
    } else {
        command.arg("--store").arg(store_path);
    }
    let mut child = command
        .arg("--home")
        .arg(home)
        .args([
            "--node",
            &here.node,
            "--dc",
            &here.dc,
            "--quiet",
            "worker",
            "--until-idle",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(
            out.try_clone()
                .map_err(io("cannot share the worker's output"))?,
        )
        .stderr(out)
        .process_group(0)
        .spawn()
        .map_err(io("cannot start a background worker"))?;
    let pid = child.id();
    // Reaped when it ends, while this process lives (a REPL).
    std::thread::spawn(move || child.wait());
    let since = Instant::now();
    while !worker_alive(store, |n| p.may_own(n))? {
        if since.elapsed() > REGISTER_WAIT {
            return Ok(format!(
                "queued; a background worker (pid {pid}) was started but has not registered \
                 yet: see {}",
                logs.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // It may own the job; whether any worker may process the entities
    // is another matter (AFFINITY).
    let processing = match waits_for(store, p, true)? {
        Some(why) => format!("; {why}"),
        None => String::new(),
    };
    Ok(format!(
        "queued; no worker was running, so a background worker (pid {pid}) was started for \
         this store; its log is in {}{processing}",
        logs.display()
    ))
}
