//! The store's ceiling: how many entities per second the executor's writes
//! can take, with nothing else running. It calls [`BatchStore::step`](batchsh::store::BatchStore::step) exactly as
//! the executor's writer does for a fast command (the ids of a step stored
//! claimed in one claim row, then each entity's row written with its
//! outcome in a later step), with no
//! source, no workers and no commands, so the figure is what SQLite does
//! with the store's layout on this machine. The end-to-end `echo ?` figure
//! of `benches/executor.sh` can come close to it, never pass it.
//!
//! Run it with `cargo bench --bench store_step` (release profile). It is a
//! program, not a test: it prints medians and asserts nothing about speed.
//! Knobs (environment): STEP_N=1000000 entities per run, STEP_RUNS=5,
//! STEP_SIZE=4096 entities claimed per step (the executor's steps for
//! `echo ?` are a few thousand entities).

use batchsh::store::batches::{Claimed, NewBatch, NewId, Outcome, OutcomeState, RunRef, StepInput};
use batchsh::store::{InterfaceDef, LuDef};
use std::time::Instant;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = knob("STEP_N", 1_000_000);
    let runs = knob("STEP_RUNS", 5);
    let size = knob("STEP_SIZE", 4096).max(1);
    println!(
        "command: cargo bench --bench store_step   (STEP_N={n} STEP_RUNS={runs} STEP_SIZE={size})"
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    let mut rates = Vec::new();
    for run in 1..=runs {
        let (rate, bytes) = one_run(n, size);
        println!(
            "run {run}: {rate:>9.0} entities/s, store {:.1} MB ({:.0} bytes per entity)",
            bytes as f64 / 1e6,
            bytes as f64 / n as f64
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "median: {median:.0} entities/s (min {:.0}, max {:.0})",
        rates[0],
        rates[rates.len() - 1]
    );
}

/// One batch of `n` entities through the store alone: entities/s, and the
/// size of the store file (after a checkpoint) at the end.
fn one_run(n: usize, size: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("store.db");
    let store = batchsh::store::open(&path, batchsh::store::Upgrades::Silent).expect("a new store");
    let bid = "bench-batch";
    // The batch's LU, which taking the batch over checks.
    store
        .create_interface(
            &InterfaceDef {
                name: "i".into(),
                kind: batchsh::catalog::InterfaceKind::Sqlite,
                location: "/nonexistent.db".into(),
                header: true,
                delimiter: ',',
                types: true,
                created_at: batchsh::store::now(),
            },
            false,
        )
        .expect("an interface");
    store
        .create_lu(
            &LuDef {
                name: "E".into(),
                interface: "i".into(),
                root_sql: "select 1".into(),
                tables: Vec::new(),
                created_at: batchsh::store::now(),
            },
            false,
        )
        .expect("an LU");
    store
        .create_batch(
            &NewBatch {
                bid,
                command: "BATCH E FABRIC_COMMAND='echo ?'",
                lu: "E",
                fabric_command: "echo ?",
                source: &serde_json::json!({}),
                arguments: &serde_json::json!({}),
                execution_id: "bench",
                node: "node",
                estimated_total: Some(n as i64),
                max_workers: Some(2),
                queued: false,
                placement: &batchsh::batch::Placement::default(),
                open: false,
                workdir: None,
                lines: None,
                series: None,
            },
            false,
        )
        .expect("the batch");
    let run = RunRef {
        bid,
        execution_id: "bench",
        node: "node",
        worker: "bench-worker",
    };
    store.take_ownership(run, "LOCAL_DC").expect("owner");
    let tuning = store.begin_run().expect("tuning");
    let started = Instant::now();
    let mut next_seq = 0i64;
    let mut given = 0usize;
    let mut in_flight: Vec<Claimed> = Vec::new();
    let ms = chrono::Utc::now().timestamp_millis();
    loop {
        let new_ids: Vec<NewId> = (given..(given + size).min(n))
            .map(|k| NewId::Ok((k + 1).to_string()))
            .collect();
        given += new_ids.len();
        let outcomes = in_flight
            .drain(..)
            .map(|c| Outcome {
                seq: c.seq,
                claim: c.claim,
                result: Some(format!("{{\"echo\":\"{}\"}}", c.entity_id)),
                entity_id: c.entity_id,
                start_ms: ms,
                end_ms: ms,
                process_ms: 0,
                state: OutcomeState::Completed {
                    added: false,
                    updated: false,
                    unchanged: false,
                },
            })
            .collect::<Vec<_>>();
        let claim = new_ids.len();
        if claim == 0 && outcomes.is_empty() {
            break;
        }
        let step = store
            .step(
                run,
                &mut next_seq,
                &mut StepInput {
                    ids_complete: given == n,
                    new_ids,
                    outcomes,
                    claim,
                    ..StepInput::default()
                },
            )
            .expect("a step");
        in_flight = step.claimed;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(tuning);
    drop(store);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    (rate, bytes)
}
