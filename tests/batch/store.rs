//! A store that is locked, read-only or on a full disk, under a batch.

use crate::world::World;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// SPEC §11: a store locked by another process is waited for, not
/// reported as corrupt.
#[test]
fn a_locked_store_is_waited_for() {
    let w = World::new(3);
    let holder = w.sqlite();
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE batches SET error = error;")
        .unwrap();
    let child = w.spawn("CREATE INTERFACE other TYPE SQLITE PATH 'crm.db'");
    std::thread::sleep(Duration::from_millis(700));
    holder.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("interface other created"));
}

/// Runs as root? (Root writes read-only files, so the read-only tests
/// then run batchsh as the unprivileged user `nobody`.)
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs `script` on the world's store as a user who cannot write what the
/// permissions forbid: this user, or `nobody` when this user is root (the
/// binary is copied where `nobody` can run it).
fn run_unprivileged(w: &World, script: &str) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mut bin = PathBuf::from(env!("CARGO_BIN_EXE_batchsh"));
    let mut cmd;
    if running_as_root() {
        let copy = w.path().join("bin/batchsh");
        if !copy.exists() {
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(&bin, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(
                copy.parent().unwrap(),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        bin = copy;
        cmd = Command::new(&bin);
        cmd.uid(65534).gid(65534);
    } else {
        cmd = Command::new(&bin);
    }
    cmd.current_dir(w.path())
        .args(["--home", w.home().to_str().unwrap(), "-c", script])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// SPEC §11, §13: a store that cannot be written (the file, or its folder
/// where SQLite keeps the -wal and -shm files) is a clear error, for reads
/// and batches alike, and the store is left byte for byte as it was.
#[test]
fn a_read_only_store_is_a_clear_error_and_is_left_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(5);
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    let store = w.home().join("store.db");
    let before = std::fs::read(&store).unwrap();
    mode(w.path(), 0o755).unwrap();
    // The file read-only; then the file writable but its folder not.
    for (file_mode, dir_mode) in [(0o444, 0o755), (0o666, 0o555)] {
        mode(&store, file_mode).unwrap();
        mode(&w.home(), dir_mode).unwrap();
        for script in [
            "BATCH_LIST",
            "BATCH Customer FABRIC_COMMAND='echo ?'",
            "CREATE INTERFACE other TYPE SQLITE PATH 'crm.db'",
        ] {
            let out = run_unprivileged(&w, script);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{script}: {stderr}");
            assert!(
                stderr.contains("cannot write to the store")
                    && stderr.contains("store.db-wal")
                    && stderr.contains("--store"),
                "{script}: {stderr}"
            );
            assert!(!stderr.contains("not a batchsh store"), "{stderr}");
        }
        assert_eq!(std::fs::read(&store).unwrap(), before, "the store changed");
        assert!(!w.home().join("store.db-wal").exists());
    }
    mode(&w.home(), 0o755).unwrap();
    mode(&store, 0o644).unwrap();
    w.test("SHOW INTERFACES").status(0).run();
}

/// A disk that fills up mid-batch (simulated by a file size limit, which
/// makes the store's writes fail as a full disk does): the batch stops
/// with a clear error and is FAILED with it, nothing committed is lost,
/// and BATCH_RETRY finishes it without running a COMPLETED entity again.
#[test]
fn a_full_disk_fails_the_batch_clearly_and_retry_finishes_it() {
    const N: i64 = 100_000;
    let w = World::new(N);
    let out = Command::new("sh")
        .current_dir(w.path())
        .args([
            "-c",
            // 2048 blocks of 512 bytes: 1 MiB for each file, the store
            // and its write-ahead log, well short of what this batch needs
            // (about 7.5 MB; with 4 MiB each, the two together could hold
            // it). Ignoring SIGXFSZ makes the write fail with EFBIG
            // instead of killing the process.
            "trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_batchsh"),
            "--home",
            w.home().to_str().unwrap(),
            "-c",
            "BATCH Customer FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writing the store failed") && stderr.contains("BATCH_RETRY"),
        "{stderr}"
    );
    let bid = w.last_bid();
    // FAILED with the reason; or, when the store file is full too (which
    // one fills first is a race with the checkpointer), left IN_PROGRESS
    // as after a crash, and stderr says that it could not be marked.
    if w.status(&bid) == "FAILED" {
        let error = w.error(&bid);
        assert!(error.contains("writing the store failed"), "{error}");
    } else {
        assert_eq!(w.status(&bid), "IN_PROGRESS");
        assert!(
            stderr.contains(&format!("batch {bid} could not be marked FAILED")),
            "{stderr}"
        );
    }
    w.assert_counters_add_up(&bid);
    let done_before = |c: &rusqlite::Connection| -> Vec<(String, i64, i64)> {
        let mut st = c
            .prepare(
                "SELECT entity_id, end_time_ms, attempts FROM batch_entities
                 WHERE batch = (SELECT batch_no FROM batches WHERE bid = ?1) AND status = 'COMPLETED' ORDER BY seq",
            )
            .unwrap();
        st.query_map([&bid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = done_before(&w.sqlite());
    assert!(
        (before.len() as i64) < N,
        "the batch finished under the limit"
    );

    w.retry_to_done(&bid);
    assert_eq!(
        w.query_i64("SELECT completed FROM batches WHERE bid = ?1", &bid),
        N
    );
    // Every entity COMPLETED before the failure kept its row: same end
    // time, same attempt: it did not run again.
    let after: std::collections::HashMap<String, (i64, i64)> = done_before(&w.sqlite())
        .into_iter()
        .map(|(id, end, attempts)| (id, (end, attempts)))
        .collect();
    for (id, end, attempts) in &before {
        assert_eq!(after.get(id), Some(&(*end, *attempts)), "entity {id}");
    }
}
