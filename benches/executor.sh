#!/usr/bin/env bash
# Executor benchmark: how fast batchsh runs batches end to end, side by side
# with the programs a user would otherwise reach for (xargs, GNU parallel).
#
# Run it by hand from anywhere:  bash benches/executor.sh
# It is a program, not a test: it prints medians, entities/s and ratios
# against the targets of the executor issue, and asserts nothing about speed.
# The figures and the command that produced them go in BENCHMARKS.md.
#
# Needs: hyperfine, GNU parallel, sqlite3, GNU time (/usr/bin/time), python3,
# rustc and cargo:
#   apt-get update && apt-get install -y parallel hyperfine sqlite3 time
#
# Cases (BENCH_CASES, any subset, in this order):
#   spawn    `exec 'true' ?` over BENCH_SPAWN_N ids at 2 workers, in one
#            hyperfine run with `xargs -P2 -n1 true`, `parallel -j2 true` and
#            a "nothing persisted" baseline on the same ids: a small Rust
#            program (built here with rustc) that spawns each process as
#            batchsh's `exec` does and stores nothing; and two spawn floors
#            (no pipes): that program's, and posix_spawn from C threads
#            (benches/spawn_floor.c, built here with cc). batchsh and the C
#            floor run a second time with the locale unset, as cron runs
#            jobs (`true` loads locale data under a UTF-8 locale).
#   echo     `echo ?` over BENCH_ECHO_N ids from the SQLite source, every
#            outcome persisted; entities/s and peak RSS.
#   big      one batch of `echo ?` over BENCH_BIG_N ids; peak RSS (one run).
#   monitor  BATCH_SUMMARY, BATCH_LIST and BATCH_DETAILS (its default
#            LIMIT, 10,000 rows, and LIMIT=50, a screenful) on a store holding BENCH_STORE_ROWS entity
#            rows (the big case's store when it ran with at least that many
#            ids, otherwise one built with SQL), laid out for a terminal of
#            BENCH_COLUMNS=80 columns (COLUMNS: records for BATCH_SUMMARY
#            and BATCH_LIST, a fitted table for BATCH_DETAILS). With
#            BENCH_BASE_BIN=path/to/older/batchsh, the same statements by
#            that binary run in the same hyperfine run, side by side.
#   sync     `sync_instance` over BENCH_SYNC_N customers, 2 tables each
#            (customer, and orders with 2 rows per customer).
#
# Sizes and knobs (environment; defaults are the issue's sizes):
#   BENCH_SPAWN_N=5000  BENCH_ECHO_N=1000000  BENCH_BIG_N=10000000
#   BENCH_STORE_ROWS=10000000  BENCH_SYNC_N=100000
#   BENCH_RUNS=5 (timed runs per batch case, after 1 warm-up)
#   BENCH_PAIRS=15 (spawn case: interleaved batchsh / spawn-only pairs)
#   BENCH_MONITOR_RUNS=30  BENCH_REPEAT=100  BENCH_CASES="spawn echo big monitor sync"
#   BENCH_OUT=target/bench/executor (hyperfine JSON, peak RSS per run)
#   BENCH_KEEP=1 keeps the work directory (about 3 GB with the defaults)
# With the defaults the whole run took 10 to 12 minutes on 2 cores
# (2026-11-22), most of it GNU parallel and the 10,000,000-id batch.
#
# Every batch run starts from a fresh BATCHSH_HOME (hyperfine --prepare
# copies a template holding only the catalog), so the store and the LU data
# are empty each time: no run finds rows left by the one before (an UPDATE
# that writes the value already stored does no I/O and would flatter it).
#
# The binary is built once and copied into the work directory, so a rebuild
# of target/release/batchsh during the run does not change what is measured.

set -euo pipefail

SPAWN_N=${BENCH_SPAWN_N:-5000}
ECHO_N=${BENCH_ECHO_N:-1000000}
BIG_N=${BENCH_BIG_N:-10000000}
STORE_ROWS=${BENCH_STORE_ROWS:-10000000}
SYNC_N=${BENCH_SYNC_N:-100000}
RUNS=${BENCH_RUNS:-5}
PAIRS=${BENCH_PAIRS:-15}              # interleaved batchsh / spawn-only pairs (spawn case)
MONITOR_RUNS=${BENCH_MONITOR_RUNS:-30}
REPEAT=${BENCH_REPEAT:-100}           # statements per process for the in-process figure
CASES=${BENCH_CASES:-"spawn echo big monitor sync"}
WORKERS=2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench/executor}

die() { echo "executor bench: $*" >&2; exit 2; }
has_case() { [[ " $CASES " == *" $1 "* ]]; }
log() { printf '\n=== %s (%s, load %s)\n' "$*" "$(date +%H:%M:%S)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

for tool in hyperfine parallel sqlite3 python3 cargo rustc; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y parallel hyperfine sqlite3 time)"
done
/usr/bin/time -f %M true 2>/dev/null >/dev/null || die "GNU time not found at /usr/bin/time (apt-get install -y time)"

log "build"
(cd "$ROOT" && cargo build --release --locked)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/batchsh-bench.XXXXXX")
if [[ -z "${BENCH_KEEP:-}" ]]; then
    trap 'rm -rf "$WORK"' EXIT
fi
BIN=$WORK/batchsh
cp "$ROOT/target/release/batchsh" "$BIN"
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.rss "$OUT"/*.txt "$OUT"/*.seconds

{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes in src/')"
    echo "binary:  $(sha256sum "$BIN" | cut -c1-16)"
    echo "nproc:   $(nproc)"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "rustc:   $(rustc --version)"
    echo "tools:   $(hyperfine --version), $(parallel --version | head -1), sqlite3 $(sqlite3 --version | cut -d' ' -f1)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
    # `true` given an argument calls setlocale: a UTF-8 locale costs each
    # spawned process about a fifth more, for batchsh and its peers alike.
    echo "locale:  LANG=${LANG-(unset)} LC_ALL=${LC_ALL-(unset)}"
    echo "sizes:   spawn=$SPAWN_N echo=$ECHO_N big=$BIG_N store_rows=$STORE_ROWS sync=$SYNC_N runs=$RUNS"
    echo "work:    $WORK"
} | tee "$OUT/machine.txt"

# --- The source: ids 1..max, and customers with 2 orders each. ---------------
log "source"
MAX_ID=$SPAWN_N
has_case echo && ((ECHO_N > MAX_ID)) && MAX_ID=$ECHO_N
has_case big && ((BIG_N > MAX_ID)) && MAX_ID=$BIG_N
((MAX_ID < 1000)) && MAX_ID=1000 # the monitor case's seed batch reads 1,000 ids
SRC=$WORK/src.db
sqlite3 "$SRC" >/dev/null <<SQL
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE ids (id INTEGER PRIMARY KEY);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $MAX_ID)
INSERT INTO ids SELECT x FROM c;
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, tier TEXT, region TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount REAL, status TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $SYNC_N)
INSERT INTO customer
SELECT x, 'customer ' || x, CASE x % 3 WHEN 0 THEN 'gold' ELSE 'standard' END,
       CASE x % 4 WHEN 0 THEN 'EU' WHEN 1 THEN 'US' WHEN 2 THEN 'APAC' ELSE 'LATAM' END
FROM c;
INSERT INTO orders (customer_id, amount, status) SELECT id, id * 1.5, 'open' FROM customer;
INSERT INTO orders (customer_id, amount, status) SELECT id, id * 2.5, 'shipped' FROM customer;
CREATE INDEX orders_by_customer ON orders (customer_id);
SQL
sqlite3 "$SRC" "SELECT id FROM ids WHERE id <= $SPAWN_N ORDER BY id" >"$WORK/spawn_ids.txt"
echo "ids: $MAX_ID, customers: $SYNC_N, orders: $((2 * SYNC_N)) ($(du -h "$SRC" | cut -f1))"

# A home holding only the catalog; every run starts from a copy of it.
TEMPLATE=$WORK/template
BATCHSH_HOME=$TEMPLATE "$BIN" --quiet -c "
CREATE INTERFACE src TYPE SQLITE PATH '$SRC';
CREATE LU E FROM src ROOT ('select id from ids');
CREATE LU Customer FROM src
    ROOT ('select id from customer')
    TABLE customer ('select * from customer where id = ?')
    TABLE orders ('select * from orders where customer_id = ?');"
export BATCHSH_HOME=$WORK/home
PREPARE="rm -rf '$BATCHSH_HOME' && cp -a '$TEMPLATE' '$BATCHSH_HOME'"
reset_home() { bash -c "$PREPARE"; }

# Statements live in files so that no quoting passes through hyperfine's shell.
cat >"$WORK/spawn.bsh" <<BSH
BATCH E FROM src USING ('select id from ids where id <= $SPAWN_N')
    FABRIC_COMMAND="exec 'true' ?" WITH MAX_WORKERS_PER_NODE=$WORKERS;
BSH
cat >"$WORK/echo.bsh" <<BSH
BATCH E FROM src USING ('select id from ids where id <= $ECHO_N')
    FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=$WORKERS;
BSH
cat >"$WORK/big.bsh" <<BSH
BATCH E FROM src USING ('select id from ids where id <= $BIG_N')
    FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=$WORKERS;
BSH
cat >"$WORK/sync.bsh" <<BSH
BATCH Customer FABRIC_COMMAND='sync_instance Customer.?' WITH MAX_WORKERS_PER_NODE=$WORKERS;
BSH

# The "nothing persisted" baseline for spawned commands: a plain program
# that spawns each process exactly as batchsh's `exec` does (src/command/
# process.rs: std's Command, the same environment variables, stdin from
# /dev/null, stdout and stderr piped and read by the spawning thread, its
# own process group, the program's path found in PATH once), from WORKERS
# threads, and stores nothing. xargs is a
# baseline too, but it forks where std's Command uses posix_spawn, so on
# some machines it is the slower of the two and would hide the store's cost.
if has_case spawn; then
    cat >"$WORK/spawn_only.rs" <<'RS'
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (workers, program, ids_file) = (args[1].parse::<usize>().unwrap(), &args[2], &args[3]);
    // --no-pipes: stdout and stderr to /dev/null, nothing to read; the
    // machine's floor for spawning a process from a thread pool.
    let pipes = args.get(4).map(String::as_str) != Some("--no-pipes");
    let ids: Vec<String> = std::fs::read_to_string(ids_file).unwrap().lines().map(String::from).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(k) else { break };
                let out = || if pipes { Stdio::piped() } else { Stdio::null() };
                let mut child = Command::new(program)
                    .arg0("true")
                    .arg(id)
                    .env("ENTITY_ID", id)
                    .env("BID", "bench")
                    .env("LU", "E")
                    .env("NODE", "bench")
                    .stdin(Stdio::null())
                    .stdout(out())
                    .stderr(out())
                    .process_group(0)
                    .spawn()
                    .unwrap();
                if !pipes {
                    assert!(child.wait().unwrap().success());
                    continue;
                }
                // Read on this thread, as batchsh does (it polls both; one
                // after the other is the same for `true`, which writes
                // nothing).
                let mut buf = Vec::new();
                child.stdout.take().unwrap().read_to_end(&mut buf).unwrap();
                child.stderr.take().unwrap().read_to_end(&mut buf).unwrap();
                assert!(child.wait().unwrap().success());
            });
        }
    });
}
RS
    rustc -O --edition 2021 -o "$WORK/spawn-only" "$WORK/spawn_only.rs"
    # The same floor without Rust's std: posix_spawn from C threads (cc is
    # there wherever rustc can link).
    cc -O2 -pthread -o "$WORK/spawn-floor-c" "$ROOT/benches/spawn_floor.c"
fi

# Every batch command runs under GNU time, which appends the peak RSS (kB)
# of each run to a file; it adds the same ~1 ms to every command it wraps.
timed() { echo "/usr/bin/time -f %M -a -o '$OUT/$1.rss' $2"; }

# Checks the last run's batch: its status and counters in the store.
check_batch() {
    local want=$1 field=$2
    local got
    got=$(sqlite3 "$BATCHSH_HOME/store.db" \
        "SELECT status || ' total=' || total || ' completed=' || completed || ' failed=' || failed || ' added=' || added FROM batches ORDER BY creation_time DESC LIMIT 1")
    echo "last batch: $got"
    [[ "$got" == DONE* && "$got" == *" $field=$want"* ]] || echo "WARNING: expected DONE with $field=$want" | tee -a "$OUT/warnings.txt"
}

HF=(hyperfine --style basic --warmup 1)

# `true` given an argument calls setlocale(LC_ALL, ""): under a UTF-8
# locale each spawned process loads locale data, about a fifth more work
# (2026-11-22). cron starts jobs with no locale, so the spawn case also runs
# batchsh and the C floor with every locale variable unset.
UNLOCALE="env$(env | grep -oE '^(LANG|LANGUAGE|LC_[A-Z]+)=' | tr -d = | sed 's/^/ -u /' | tr -d '\n')"

if has_case spawn; then
    log "spawn: exec 'true' ? over $SPAWN_N ids, $WORKERS workers, vs xargs and parallel"
    # One --prepare per command: the peers need no store, so the home left
    # at the end is from batchsh's last run, which check_batch reads.
    "${HF[@]}" --runs "$RUNS" --export-json "$OUT/spawn.json" \
        --prepare "$PREPARE" --prepare "$PREPARE" --prepare true --prepare true --prepare true \
        --prepare true --prepare true --prepare true \
        -n "batchsh exec" "$(timed spawn_batchsh "'$BIN' --no-progress '$WORK/spawn.bsh'")" \
        -n "batchsh exec, locale unset" "$(timed spawn_batchsh_c "$UNLOCALE '$BIN' --no-progress '$WORK/spawn.bsh'")" \
        -n "spawn only, nothing persisted" "$(timed spawn_only "'$WORK/spawn-only' $WORKERS $(type -P true) '$WORK/spawn_ids.txt'")" \
        -n "spawn only, no pipes" "$(timed spawn_floor "'$WORK/spawn-only' $WORKERS $(type -P true) '$WORK/spawn_ids.txt' --no-pipes")" \
        -n "posix_spawn floor (C)" "$(timed spawn_floor_c "'$WORK/spawn-floor-c' $WORKERS $SPAWN_N $(type -P true)")" \
        -n "posix_spawn floor (C), locale unset" "$(timed spawn_floor_c_c "$UNLOCALE '$WORK/spawn-floor-c' $WORKERS $SPAWN_N $(type -P true)")" \
        -n "xargs -P2 -n1 true" "$(timed spawn_xargs "xargs -P2 -n1 true <'$WORK/spawn_ids.txt'")" \
        -n "parallel -j2 true" "$(timed spawn_parallel "parallel --will-cite -j2 true <'$WORK/spawn_ids.txt'")" ||
        echo "WARNING: spawn case failed" | tee -a "$OUT/warnings.txt"
    check_batch "$SPAWN_N" completed
    # hyperfine runs all of one command, then all of the next: a VM whose
    # speed drifts over the minutes of the case biases the comparison. The
    # persistence overhead is also measured in pairs, batchsh then the
    # spawn-only program straight after, and judged on the median of the
    # pairs' ratios.
    log "spawn: $PAIRS interleaved pairs, batchsh then spawn only"
    for ((k = 0; k < PAIRS; k++)); do
        reset_home
        t0=$(date +%s%N)
        "$BIN" --no-progress "$WORK/spawn.bsh" >/dev/null || echo "WARNING: spawn pair failed" | tee -a "$OUT/warnings.txt"
        t1=$(date +%s%N)
        "$WORK/spawn-only" "$WORKERS" "$(type -P true)" "$WORK/spawn_ids.txt"
        t2=$(date +%s%N)
        echo "$(((t1 - t0) / 1000)) $(((t2 - t1) / 1000))"
    done >"$OUT/spawn_pairs.txt"
fi

if has_case echo; then
    log "echo: echo ? over $ECHO_N ids"
    "${HF[@]}" --runs "$RUNS" --prepare "$PREPARE" --export-json "$OUT/echo.json" \
        -n "batchsh echo" "$(timed echo "'$BIN' --no-progress '$WORK/echo.bsh'")" ||
        echo "WARNING: echo case failed" | tee -a "$OUT/warnings.txt"
    check_batch "$ECHO_N" completed
fi

BIG_HOME=$WORK/big-home
if has_case big; then
    log "big: one batch of echo ? over $BIG_N ids (single run)"
    rm -rf "$BIG_HOME" && cp -a "$TEMPLATE" "$BIG_HOME"
    start=$(date +%s.%N)
    if BATCHSH_HOME=$BIG_HOME /usr/bin/time -f %M -o "$OUT/big.rss" \
        "$BIN" --no-progress "$WORK/big.bsh" >/dev/null; then
        end=$(date +%s.%N)
        python3 -c "print(f'{$end - $start:.3f}')" >"$OUT/big.seconds"
        BATCHSH_HOME=$BIG_HOME check_batch "$BIG_N" completed
    else
        echo "WARNING: big case failed" | tee -a "$OUT/warnings.txt"
    fi
fi

if has_case monitor; then
    MON_HOME=$WORK/mon-home
    if [[ -f "$BIG_HOME/store.db" ]] && ((BIG_N >= STORE_ROWS)); then
        log "monitor: the big case's store ($BIG_N entity rows)"
        mv "$BIG_HOME" "$MON_HOME"
        BID=$(sqlite3 "$MON_HOME/store.db" "SELECT bid FROM batches ORDER BY creation_time DESC LIMIT 1")
        echo "store built by: running the big batch" >"$OUT/monitor_store.txt"
    else
        log "monitor: building a store of $STORE_ROWS entity rows with SQL"
        rm -rf "$MON_HOME" && cp -a "$TEMPLATE" "$MON_HOME"
        # A real batch of 1,000 ids gives a batch row, its node row, events
        # and progress samples in the executor's own shape; SQL then extends
        # it to STORE_ROWS entity rows (copies of a real row with new ids)
        # and sets its counters to match.
        BATCHSH_HOME=$MON_HOME "$BIN" --no-progress -q -c \
            "BATCH E FROM src USING ('select id from ids where id <= 1000') FABRIC_COMMAND='echo ?'" >/dev/null
        BID=$(sqlite3 "$MON_HOME/store.db" "SELECT bid FROM batches LIMIT 1")
        start=$(date +%s)
        sqlite3 "$MON_HOME/store.db" <<SQL
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;
DROP INDEX batch_entities_open;
WITH RECURSIVE c(x) AS (SELECT 1001 UNION ALL SELECT x + 1 FROM c WHERE x < $STORE_ROWS)
INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, retry_at_ms, node,
                            start_time_ms, end_time_ms, process_time_ms, result, error, worker)
SELECT e.batch, c.x, CAST(c.x AS TEXT), e.status, e.attempts, e.retry_at_ms, e.node,
       e.start_time_ms, e.end_time_ms, e.process_time_ms, '{"echo":"' || c.x || '"}', e.error,
       e.worker
FROM c, (SELECT * FROM batch_entities
         WHERE batch = (SELECT batch_no FROM batches WHERE bid = '$BID') AND seq = 1) AS e;
CREATE INDEX batch_entities_open ON batch_entities (batch, status, seq)
    WHERE status <> 'COMPLETED';
UPDATE batches SET total = $STORE_ROWS, completed = $STORE_ROWS WHERE bid = '$BID';
UPDATE batch_nodes SET completed = $STORE_ROWS WHERE bid = '$BID';
COMMIT;
PRAGMA journal_mode = WAL;
SQL
        echo "store built by: SQL, a real 1,000-id batch extended to $STORE_ROWS rows in $(($(date +%s) - start)) s" |
            tee "$OUT/monitor_store.txt"
    fi
    # A few more batches, so BATCH_LIST has more than one row to print.
    for k in 1 2 3; do
        BATCHSH_HOME=$MON_HOME "$BIN" --no-progress -q -c \
            "BATCH E FROM src USING ('select id from ids where id <= 100') FABRIC_COMMAND='echo ?'" >/dev/null
    done
    rows=$(sqlite3 "$MON_HOME/store.db" "SELECT count(*) FROM batch_entities")
    echo "store: $rows entity rows, $(sqlite3 "$MON_HOME/store.db" "SELECT count(*) FROM batches") batches, $(du -h "$MON_HOME/store.db" | cut -f1); batch $BID" |
        tee -a "$OUT/monitor_store.txt"

    printf 'SHOW SETTINGS;\n' >"$WORK/q_settings.bsh"
    printf 'SHOW INTERFACES;\n' >"$WORK/q_interfaces.bsh"
    printf "BATCH_SUMMARY '%s';\n" "$BID" >"$WORK/q_summary.bsh"
    printf "BATCH_LIST STATUS='ALL';\n" >"$WORK/q_list_all.bsh"
    printf "BATCH_LIST;\n" >"$WORK/q_list.bsh"
    printf "BATCH_DETAILS '%s';\n" "$BID" >"$WORK/q_details.bsh"
    printf "BATCH_DETAILS '%s' LIMIT=50;\n" "$BID" >"$WORK/q_details50.bsh"
    : >"$WORK/r_summary.bsh"; : >"$WORK/r_list_all.bsh"
    for ((k = 0; k < REPEAT; k++)); do
        cat "$WORK/q_summary.bsh" >>"$WORK/r_summary.bsh"
        cat "$WORK/q_list_all.bsh" >>"$WORK/r_list_all.bsh"
    done
    # The same statements by an older binary, side by side.
    base=()
    if [[ -n "${BENCH_BASE_BIN:-}" ]]; then
        cp "$BENCH_BASE_BIN" "$WORK/batchsh-base"
        for q in summary list_all details details50; do
            base+=(-n "base: $q" "$WORK/batchsh-base --no-progress $WORK/q_$q.bsh")
        done
    fi
    # No shell (-N): these take milliseconds, a shell's start would blur them.
    # COLUMNS: the layout of a terminal that wide (stdout is /dev/null).
    COLUMNS=${BENCH_COLUMNS:-80} BATCHSH_HOME=$MON_HOME \
        hyperfine --style basic -N --warmup 3 --runs "$MONITOR_RUNS" \
        --export-json "$OUT/monitor.json" \
        -n "SHOW SETTINGS (process start, no store)" "$BIN --no-progress $WORK/q_settings.bsh" \
        -n "SHOW INTERFACES (process start + store open)" "$BIN --no-progress $WORK/q_interfaces.bsh" \
        -n "BATCH_SUMMARY" "$BIN --no-progress $WORK/q_summary.bsh" \
        -n "BATCH_LIST STATUS='ALL'" "$BIN --no-progress $WORK/q_list_all.bsh" \
        -n "BATCH_LIST" "$BIN --no-progress $WORK/q_list.bsh" \
        -n "BATCH_DETAILS" "$BIN --no-progress $WORK/q_details.bsh" \
        -n "BATCH_DETAILS LIMIT=50" "$BIN --no-progress $WORK/q_details50.bsh" \
        "${base[@]}" \
        -n "BATCH_SUMMARY x$REPEAT" "$BIN --no-progress $WORK/r_summary.bsh" \
        -n "BATCH_LIST STATUS='ALL' x$REPEAT" "$BIN --no-progress $WORK/r_list_all.bsh" ||
        echo "WARNING: monitor case failed" | tee -a "$OUT/warnings.txt"
    rm -rf "$MON_HOME"
fi

if has_case sync; then
    log "sync: sync_instance over $SYNC_N customers (2 tables)"
    "${HF[@]}" --runs "$RUNS" --prepare "$PREPARE" --export-json "$OUT/sync.json" \
        -n "batchsh sync_instance" "$(timed sync "'$BIN' --no-progress '$WORK/sync.bsh'")" ||
        echo "WARNING: sync case failed" | tee -a "$OUT/warnings.txt"
    check_batch "$SYNC_N" added
fi

# --- Summary ------------------------------------------------------------------
log "summary"
python3 - "$OUT" "$SPAWN_N" "$ECHO_N" "$BIG_N" "$SYNC_N" "$REPEAT" <<'PY'
import json, os, statistics, sys

out, spawn_n, echo_n, big_n, sync_n, repeat = sys.argv[1], *map(int, sys.argv[2:])

def load(name):
    p = os.path.join(out, name + ".json")
    if not os.path.exists(p):
        return None
    return {r["command"]: r for r in json.load(open(p))["results"]}

def rss(name):
    p = os.path.join(out, name + ".rss")
    if not os.path.exists(p):
        return None
    # GNU time writes one number per run (and a note if the command failed).
    vals = [int(l) for l in open(p) if l.strip().isdigit()]
    return max(vals) / 1024 if vals else None

def ms(s):
    return f"{s * 1000:.1f} ms" if s < 10 else f"{s:.2f} s"

def mb(v):
    return "-" if v is None else f"{v:.1f} MB"

def verdict(ok):
    return "met" if ok else "NOT met"

rows = []  # (case, figure, bar, verdict)

print(f"{'case':44} {'median':>10} {'min':>10} {'max':>10} {'entities/s':>12} {'peak RSS':>10}")
def line(label, r, n=None, peak=None):
    eps = f"{n / r['median']:,.0f}" if n else "-"
    print(f"{label:44} {ms(r['median']):>10} {ms(r['min']):>10} {ms(r['max']):>10} {eps:>12} {mb(peak):>10}")

spawn = load("spawn")
if spawn:
    b, x, p = spawn["batchsh exec"], spawn["xargs -P2 -n1 true"], spawn["parallel -j2 true"]
    o, f = spawn["spawn only, nothing persisted"], spawn["spawn only, no pipes"]
    line(f"batchsh exec 'true' ? ({spawn_n} ids)", b, spawn_n, rss("spawn_batchsh"))
    line("spawn only (Rust, no store)", o, spawn_n, rss("spawn_only"))
    line("spawn only, no pipes (spawn floor)", f, spawn_n, rss("spawn_floor"))
    c = spawn["posix_spawn floor (C)"]
    line("posix_spawn floor (C, no pipes)", c, spawn_n, rss("spawn_floor_c"))
    bc, cc = spawn["batchsh exec, locale unset"], spawn["posix_spawn floor (C), locale unset"]
    line("batchsh exec, locale unset", bc, spawn_n, rss("spawn_batchsh_c"))
    line("posix_spawn floor (C), locale unset", cc, spawn_n, rss("spawn_floor_c_c"))
    line("xargs -P2 -n1 true", x, spawn_n, rss("spawn_xargs"))
    line("parallel -j2 true", p, spawn_n, rss("spawn_parallel"))
    locale = os.environ.get("LC_ALL") or os.environ.get("LANG") or "none"
    for where, run, fl in ((f"locale {locale}", b, c), ("locale unset, as under cron", bc, cc)):
        eps = spawn_n / run["median"]
        rows.append((f"exec, entities/s ({where})", f"{eps:,.0f}/s", ">= 2,500/s", verdict(eps >= 2500)))
        floor = spawn_n / fl["median"]
        rows.append((f"posix_spawn floor of this machine (C), processes/s ({where})",
                     f"{floor:,.0f}/s", "reported", "-"))
        rows.append((f"exec, share of that floor ({where})", f"{eps / floor * 100:.0f}%",
                     "reported", "-"))
    # "Faster" only counts when the gap is wider than the runs' spread.
    noise = max(b["stddev"] or 0, x["stddev"] or 0)  # null after a single run
    faster = "met" if x["median"] - b["median"] > noise else (
        "NOT met" if b["median"] - x["median"] > noise else "tie (gap within 1 stddev)")
    rows.append(("exec vs xargs (xargs time / batchsh time)", f"{x['median'] / b['median']:.2f}x",
                 "> 1x", faster))
    rows.append(("exec vs parallel (parallel time / batchsh time)", f"{p['median'] / b['median']:.2f}x",
                 ">= 5x", verdict(p["median"] >= 5 * b["median"])))
    over = (b["median"] - o["median"]) / o["median"] * 100
    rows.append(("persistence overhead vs spawn only, hyperfine medians (drift-prone)",
                 f"{over:+.1f}%", "<= 10%", verdict(over <= 10)))
    pairs_file = os.path.join(out, "spawn_pairs.txt")
    pairs = [tuple(map(int, l.split())) for l in open(pairs_file)] if os.path.exists(pairs_file) else []
    if pairs:
        ratios = sorted(a / b for a, b in pairs)
        over = (statistics.median(ratios) - 1) * 100
        print(f"interleaved pairs (batchsh / spawn only), {len(pairs)}: median ratio "
              f"{statistics.median(ratios):.3f}, range {ratios[0]:.3f} … {ratios[-1]:.3f}")
        rows.append((f"persistence overhead vs spawn only, median of {len(pairs)} interleaved pairs",
                     f"{over:+.1f}%", "<= 10%", verdict(over <= 10)))
    over = (b["median"] - x["median"]) / x["median"] * 100
    rows.append(("persistence overhead vs xargs -P2 -n1 true", f"{over:+.1f}%", "<= 10%",
                 verdict(over <= 10)))

echo = load("echo")
if echo:
    e = echo["batchsh echo"]
    line(f"batchsh echo ? ({echo_n} ids)", e, echo_n, rss("echo"))
    eps = echo_n / e["median"]
    rows.append((f"echo over {echo_n:,} ids, entities/s", f"{eps:,.0f}/s", ">= 800,000/s", verdict(eps >= 800_000)))
    rows.append((f"echo over {echo_n:,} ids, peak RSS", mb(rss("echo")), "reported", "-"))

if os.path.exists(os.path.join(out, "big.seconds")):
    secs = float(open(os.path.join(out, "big.seconds")).read())
    peak = rss("big")
    print(f"{f'batchsh echo ? ({big_n} ids, 1 run)':44} {ms(secs):>10} {'':>10} {'':>10} {big_n / secs:>12,.0f} {mb(peak):>10}")
    rows.append((f"batch over {big_n:,} ids, peak RSS", mb(peak), "< 100 MB",
                 verdict(peak is not None and peak < 100)))

mon = load("monitor")
if mon:
    base = mon["SHOW SETTINGS (process start, no store)"]["median"]
    print()
    print(f"{'monitoring statement':44} {'median':>10} {'min':>10} {'max':>10} {'- SETTINGS':>12}")
    for name, r in mon.items():
        if name.endswith(f"x{repeat}"):
            continue
        print(f"{name:44} {ms(r['median']):>10} {ms(r['min']):>10} {ms(r['max']):>10} "
              f"{ms(r['median'] - base):>12}")
    for stmt, what in (("BATCH_DETAILS", "10,000 rows"), ("BATCH_DETAILS LIMIT=50", "50 rows")):
        rows.append((f"{stmt} ({what}), whole command", ms(mon[stmt]["median"]),
                     "< 10 ms", verdict(mon[stmt]["median"] < 0.010)))
    for stmt, q in (("BATCH_SUMMARY", "summary"), ("BATCH_LIST STATUS='ALL'", "list_all"),
                    ("BATCH_DETAILS", "details"), ("BATCH_DETAILS LIMIT=50", "details50")):
        if f"base: {q}" in mon:
            b = mon[f"base: {q}"]["median"]
            print(f"{stmt + ' against the base binary':44} {ms(mon[stmt]['median']):>10} {ms(b):>10} "
                  f"{mon[stmt]['median'] / b:>9.2f}x")
    for stmt in ("BATCH_SUMMARY", "BATCH_LIST STATUS='ALL'"):
        one, many = mon[stmt]["median"], mon[f"{stmt} x{repeat}"]["median"]
        each = (many - one) / (repeat - 1)
        print(f"{stmt + ', in process (repeat slope)':44} {ms(each):>10}")
        rows.append((f"{stmt}, whole command", ms(one), "< 10 ms", verdict(one < 0.010)))
        rows.append((f"{stmt}, statement's share (minus SHOW SETTINGS)", ms(one - base), "< 10 ms",
                     verdict(one - base < 0.010)))
        rows.append((f"{stmt}, in process (slope over {repeat} in one process)", ms(each), "< 10 ms",
                     verdict(each < 0.010)))

sync = load("sync")
if sync:
    s = sync["batchsh sync_instance"]
    line(f"batchsh sync_instance ({sync_n} customers)", s, sync_n, rss("sync"))
    rows.append((f"sync_instance over {sync_n:,} instances", f"{ms(s['median'])}, {sync_n / s['median']:,.0f}/s",
                 "reported", "-"))

print()
print("| bar | measured | target | |")
print("|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
if [[ -s "$OUT/warnings.txt" ]]; then
    echo
    cat "$OUT/warnings.txt"
fi
echo
echo "raw results: $OUT"
