#!/usr/bin/env bash
# Background workers (`batchsh worker`, `ASYNC=true`): what running a batch
# in a worker costs against running it in the statement's process, what a
# second worker adds, how soon a dead worker's batch is taken over, how
# soon BATCH_WAIT sees a batch end, and what an idle worker burns.
#
# Run it by hand:  bash benches/async.sh
# It prints its tables and a summary against the targets; it asserts
# nothing. The figures and this command go in BENCHMARKS.md.
# Needs: sqlite3, python3, cargo (apt-get install -y sqlite3).
#
# Cases (ASYNC_CASES, any subset, in this order):
#   rate      `echo ?` over ASYNC_N ids, three ways per round, the order
#             turning from round to round: synchronous (BATCH in the
#             statement's process), ASYNC=true with one
#             `worker --workers 2` already alive, and ASYNC=true with two.
#             Timed from the BATCH statement to BATCH_WAIT's return (one
#             process: `BATCH ... ASYNC=true; BATCH_WAIT;`). Each async run
#             is cut into its stored times: queued -> job taken
#             (start_time - creation_time), running (end_time -
#             start_time), and BATCH_WAIT's return after end_time.
#   scale     `sleep 20 ?` over ASYNC_SLEEP_N ids, MAX_WORKERS_PER_NODE=8,
#             on one worker and on two (each `--workers 8`), alternating.
#   takeover  a slow batch (`sleep 200 ?` over ASYNC_SLEEP_N ids, 2 at a
#             time) owned by worker A, worker B alive and helping; A is
#             killed (kill -9) once the batch is under way. Takeover time:
#             from the kill to the first poll (every 50 ms) that sees the
#             batch under a new execution id, which B's takeover writes in
#             the transaction that marks A DEAD and sends A's claimed
#             entities back to WAITING. The same again with A stopped
#             (kill -STOP: its pid stays, so only its silent heartbeat says
#             it is dead, as for a worker on another machine).
#   wait      BATCH_WAIT latency: a batch of `sleep 1000 ?` over 2 ids on
#             an alive worker; BATCH_WAIT 'bid' started at once (before the
#             batch ends); latency = the wall clock when it returned - the
#             batch's stored end_time.
#   idle      CPU of idle workers over ASYNC_IDLE_S seconds (utime + stime
#             from /proc/<pid>/stat): one on a store holding only the
#             catalog, one on a store holding a finished ASYNC_N-id batch.
#
# Knobs (environment): ASYNC_N=1000000 ASYNC_RUNS=5 ASYNC_SLEEP_N=2000
#   ASYNC_SCALE_RUNS=3 ASYNC_TAKEOVER_RUNS=3 ASYNC_WAIT_RUNS=15
#   ASYNC_IDLE_S=30 ASYNC_CASES="rate scale takeover wait idle"
#   ASYNC_OUT=target/bench/async (raw figures, one file per case)
#
# Why not hyperfine: an async run needs its workers started and seen alive
# before the timed region and stopped after it, and the three ways of one
# round run back to back so that they share the machine's moment.
#
# The store is only read with the sqlite3 tool once its workers are
# stopped; while one runs, the script polls through batchsh. An sqlite3
# tool that closes the store while a worker runs can delete the store's
# write-ahead log under the worker (docs/benchmarks.md, 2026-12-07).

set -euo pipefail

N=${ASYNC_N:-1000000}
RUNS=${ASYNC_RUNS:-5}
SLEEP_N=${ASYNC_SLEEP_N:-2000}
SCALE_RUNS=${ASYNC_SCALE_RUNS:-3}
TAKEOVER_RUNS=${ASYNC_TAKEOVER_RUNS:-3}
WAIT_RUNS=${ASYNC_WAIT_RUNS:-15}
IDLE_S=${ASYNC_IDLE_S:-30}
CASES=${ASYNC_CASES:-"rate scale takeover wait idle"}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${ASYNC_OUT:-$ROOT/target/bench/async}

has_case() { [[ " $CASES " == *" $1 "* ]]; }
now_ms() { date +%s%3N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
log() { printf '\n=== %s (%s, load %s)\n' "$*" "$(date +%H:%M:%S)" "$(load)"; }

(cd "$ROOT" && cargo build --release --quiet)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/batchsh-async.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
BIN=$WORK/batchsh
cp "$ROOT/target/release/batchsh" "$BIN"
mkdir -p "$OUT"
rm -f "$OUT"/*.txt

{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes in src/')"
    echo "nproc:   $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "rustc:   $(rustc --version)"
    echo "load:    $(load)"
    echo "sizes:   n=$N runs=$RUNS sleep_n=$SLEEP_N scale_runs=$SCALE_RUNS takeover_runs=$TAKEOVER_RUNS wait_runs=$WAIT_RUNS idle_s=$IDLE_S"
} | tee "$OUT/machine.txt"

sqlite3 "$WORK/src.db" "PRAGMA journal_mode = OFF; CREATE TABLE ids (id INTEGER PRIMARY KEY);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < max($N, $SLEEP_N))
    INSERT INTO ids SELECT x FROM c;" >/dev/null
"$BIN" --home "$WORK/template" -q -c "
    CREATE INTERFACE src TYPE SQLITE PATH '$WORK/src.db';
    CREATE LU E FROM src ROOT ('select id from ids where id <= $N');
    CREATE LU S FROM src ROOT ('select id from ids where id <= $SLEEP_N');
    CREATE LU W FROM src ROOT ('select id from ids where id <= 2');"

fresh() { rm -rf "$1" && cp -a "$WORK/template" "$1"; }
# start_worker HOME NODE K: prints its pid.
start_worker() {
    "$BIN" --home "$1" --node "$2" worker --workers "$3" >>"$1.worker.out" 2>&1 </dev/null &
    echo $!
}
alive() { "$BIN" --home "$1" --format json -c 'SHOW NODES' | grep -o '"status":"alive"' | wc -l; }
# wait_alive HOME COUNT: until SHOW NODES shows COUNT workers alive.
wait_alive() {
    for _ in $(seq 200); do
        (($(alive "$1") >= $2)) && return 0
        sleep 0.05
    done
    echo "async bench: $2 workers not alive after 10 s in $1" >&2
    return 1
}
# stop PID...: a drain (SIGTERM), then the exit.
stop() {
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
# The stored times of a home's batches, ms since 1970: bid creation start end.
ms_of() { echo "CAST(round((julianday($1) - 2440587.5) * 86400000) AS INTEGER)"; }
times_of() {
    sqlite3 -separator ' ' "$1/store.db" \
        "SELECT bid, $(ms_of creation_time), $(ms_of start_time), $(ms_of end_time), status
         FROM batches ORDER BY creation_time"
}
bid_list() { "$BIN" --home "$1" --format json -c "BATCH_LIST STATUS='ALL'"; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[0]['$1'])"; }

# --- rate: sync against async on one and two workers -------------------------
# One async run: HOME K; appends "case wall queue run wait" to rate.txt.
async_run() {
    local home=$1 k=$2 pids=() t0 t1
    fresh "$home"
    for ((w = 1; w <= k; w++)); do pids+=("$(start_worker "$home" "w$w" 2)"); done
    PIDS+=("${pids[@]}")
    wait_alive "$home" "$k"
    t0=$(now_ms)
    "$BIN" --home "$home" -q --no-progress -c \
        "BATCH E FABRIC_COMMAND='echo ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2; BATCH_WAIT;" >/dev/null
    t1=$(now_ms)
    stop "${pids[@]}"
    read -r _ created started ended status < <(times_of "$home")
    [[ $status == DONE ]] || echo "WARNING: async $k: batch $status" | tee -a "$OUT/warnings.txt"
    echo "async$k $((t1 - t0)) $((started - created)) $((ended - started)) $((t1 - ended)) $((created - t0))" >>"$OUT/rate.txt"
}
sync_run() {
    local home=$1 t0 t1
    fresh "$home"
    t0=$(now_ms)
    "$BIN" --home "$home" -q --no-progress -c \
        "BATCH E FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2" >/dev/null
    t1=$(now_ms)
    echo "sync $((t1 - t0)) - - - -" >>"$OUT/rate.txt"
}
if has_case rate; then
    log "rate: echo ? over $N ids, sync / async on 1 worker / async on 2 workers, $RUNS rounds (+1 warm-up)"
    for ((i = 0; i <= RUNS; i++)); do
        order=(sync async1 async2)
        order=("${order[@]:i%3}" "${order[@]:0:i%3}")
        for c in "${order[@]}"; do
            case $c in
                sync) sync_run "$WORK/home" ;;
                async1) async_run "$WORK/home" 1 ;;
                async2) async_run "$WORK/home" 2 ;;
            esac
        done
        if ((i == 0)); then : >"$OUT/rate.txt"; fi # the warm-up round is not kept
        echo "round $i done (load $(load))"
    done
    # An async home with a finished batch, for the idle case.
    async_run "$WORK/home-big" 1
    sed -i '$d' "$OUT/rate.txt"
fi

# --- scale: sleep 20 ? on one worker and on two --------------------------------
if has_case scale; then
    log "scale: sleep 20 ? over $SLEEP_N ids at MAX_WORKERS_PER_NODE=8, 1 worker / 2 workers, $SCALE_RUNS rounds"
    for ((i = 0; i < SCALE_RUNS; i++)); do
        for k in $( ((i % 2)) && echo "2 1" || echo "1 2"); do
            home=$WORK/home pids=()
            fresh "$home"
            for ((w = 1; w <= k; w++)); do pids+=("$(start_worker "$home" "w$w" 8)"); done
            PIDS+=("${pids[@]}")
            wait_alive "$home" "$k"
            t0=$(now_ms)
            "$BIN" --home "$home" -q --no-progress -c \
                "BATCH S FABRIC_COMMAND='sleep 20 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=8; BATCH_WAIT;" >/dev/null
            t1=$(now_ms)
            stop "${pids[@]}"
            split=$(sqlite3 "$home/store.db" "SELECT group_concat(node || '=' || completed, ',') FROM (SELECT * FROM batch_nodes ORDER BY node)")
            read -r _ created started ended _ < <(times_of "$home")
            echo "workers$k $((t1 - t0)) $((started - created)) $((ended - started)) $((t1 - ended)) $split" >>"$OUT/scale.txt"
        done
        echo "round $i done (load $(load))"
    done
fi

# --- takeover: kill -9 (and kill -STOP) of the owner -----------------------------
if has_case takeover; then
    for how in KILL STOP; do
        log "takeover: kill -$how of the owner, $TAKEOVER_RUNS runs"
        for ((i = 0; i < TAKEOVER_RUNS; i++)); do
            home=$WORK/home
            fresh "$home"
            a=$(start_worker "$home" wA 2)
            PIDS+=("$a")
            wait_alive "$home" 1
            bid=$("$BIN" --home "$home" --format json -c \
                "BATCH S FABRIC_COMMAND='sleep 200 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2" | json_field batch_id)
            # B starts once A owns the batch (a worker that starts while a
            # job waits takes it at once).
            until [[ $(bid_list "$home" | json_field status) == IN_PROGRESS ]]; do sleep 0.05; done
            b=$(start_worker "$home" wB 2)
            PIDS+=("$b")
            wait_alive "$home" 2
            sleep 3 # well under way: both workers hold claims
            grep -q "job taken" "$home"/logs/worker-wA-*.log ||
                echo "WARNING: takeover: A does not own the batch" | tee -a "$OUT/warnings.txt"
            exec_id=$(bid_list "$home" | json_field execution_id)
            t0=$(now_ms)
            kill -"$how" "$a"
            polls=0
            while [[ $(bid_list "$home" | json_field execution_id) == "$exec_id" ]]; do
                polls=$((polls + 1))
                sleep 0.05
                if (($(now_ms) - t0 > 60000)); then
                    echo "WARNING: no takeover within 60 s" | tee -a "$OUT/warnings.txt"
                    break
                fi
            done
            t1=$(now_ms)
            dead=$("$BIN" --home "$home" --format json -c 'SHOW NODES' |
                python3 -c "import json,sys; print(' '.join(n['node'] + '=' + n['status'] for n in json.load(sys.stdin)))")
            done1=$(bid_list "$home" | json_field completion_pct)
            sleep 1
            done2=$(bid_list "$home" | json_field completion_pct)
            "$BIN" --home "$home" -q -c "BATCH_CANCEL '$bid'" >/dev/null
            kill -9 "$a" 2>/dev/null || true
            wait "$a" 2>/dev/null || true
            stop "$b"
            echo "$how $((t1 - t0)) $polls $dead progress:$done1->$done2" >>"$OUT/takeover.txt"
            tail -1 "$OUT/takeover.txt"
        done
    done
fi

# --- wait: BATCH_WAIT's latency after the stored end -------------------------
if has_case wait; then
    log "wait: BATCH_WAIT after a 1 s batch, $WAIT_RUNS runs"
    home=$WORK/home
    fresh "$home"
    w=$(start_worker "$home" w1 2)
    PIDS+=("$w")
    wait_alive "$home" 1
    for ((i = 0; i < WAIT_RUNS; i++)); do
        bid=$("$BIN" --home "$home" --format json -c \
            "BATCH W FABRIC_COMMAND='sleep 1000 ?' WITH ASYNC=true MAX_WORKERS_PER_NODE=2" | json_field batch_id)
        t0=$(now_ms)
        "$BIN" --home "$home" -q --no-progress -c "BATCH_WAIT '$bid'" >/dev/null
        t1=$(now_ms)
        echo "$bid $t0 $t1" >>"$WORK/wait.raw"
    done
    stop "$w"
    times_of "$home" >"$WORK/wait.times"
    python3 - "$WORK/wait.raw" "$WORK/wait.times" >>"$OUT/wait.txt" <<'PY'
import sys
ends = {l.split()[0]: (int(l.split()[2]), int(l.split()[3])) for l in open(sys.argv[2])}
for l in open(sys.argv[1]):
    bid, t0, t1 = l.split()
    start, end = ends[bid]
    # the wait started before the batch ended; latency = its return - end
    print(f"{int(t1) - end} {end - int(t0)}")
PY
    cat "$OUT/wait.txt" | tr '\n' ' '
    echo
fi

# --- idle: CPU of idle workers ------------------------------------------------
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
if has_case idle; then
    log "idle: CPU of idle workers over $IDLE_S s"
    homes=("$WORK/home-idle")
    fresh "$WORK/home-idle"
    [[ -d $WORK/home-big ]] && homes+=("$WORK/home-big")
    pids=()
    for h in "${homes[@]}"; do
        pids+=("$(start_worker "$h" idle "$(nproc)")")
        wait_alive "$h" 1
    done
    PIDS+=("${pids[@]}")
    sleep 2 # past the start
    declare -A c0
    for p in "${pids[@]}"; do c0[$p]=$(ticks "$p"); done
    t0=$(now_ms)
    sleep "$IDLE_S"
    t1=$(now_ms)
    hz=$(getconf CLK_TCK)
    for k in "${!pids[@]}"; do
        p=${pids[$k]}
        echo "$(basename "${homes[$k]}") $(($(ticks "$p") - ${c0[$p]})) $hz $((t1 - t0))" >>"$WORK/idle.raw"
    done
    stop "${pids[@]}"
    # The stores' sizes, read once their workers are stopped.
    k=0
    while read -r line; do
        echo "$line $(sqlite3 "${homes[$k]}/store.db" "SELECT count(*) FROM batch_entities")" >>"$OUT/idle.txt"
        k=$((k + 1))
    done <"$WORK/idle.raw"
fi

# --- Summary ------------------------------------------------------------------
log "summary"
python3 - "$OUT" "$N" "$SLEEP_N" <<'PY'
import os, statistics, sys
out, n, sleep_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
med = statistics.median

def rows(name):
    p = os.path.join(out, name + ".txt")
    return [l.split() for l in open(p)] if os.path.exists(p) else []

summary = []
def verdict(ok):
    return "met" if ok else "NOT met"

r = rows("rate")
if r:
    by = {}
    for c, wall, *rest in r:
        by.setdefault(c, []).append((int(wall), rest))
    print(f"{'echo ? over %d ids' % n:34} {'median':>9} {'min':>9} {'max':>9} {'entities/s':>11}"
          f" {'queued':>8} {'running':>8} {'wait':>8}")
    rate = {}
    for c in ("sync", "async1", "async2"):
        if c not in by:
            continue
        walls = [w for w, _ in by[c]]
        m = med(walls)
        rate[c] = n / m * 1000
        parts = ["-"] * 3
        if c != "sync":
            parts = [f"{med([int(x[i]) for _, x in by[c]])} ms" for i in range(3)]
        label = {"sync": "synchronous BATCH", "async1": "ASYNC, 1 worker --workers 2",
                 "async2": "ASYNC, 2 workers --workers 2"}[c]
        print(f"{label:34} {m:>6} ms {min(walls):>6} ms {max(walls):>6} ms {rate[c]:>11,.0f}"
              f" {parts[0]:>8} {parts[1]:>8} {parts[2]:>8}")
    print("(queued: job taken - stored; running: end - start; wait: BATCH_WAIT's return - end; medians)")
    # Per round, async1 against the sync run of the same round.
    pairs = [s / a for (s, _), (a, _) in zip(by.get("sync", []), by.get("async1", []))]
    if "sync" in rate and "async1" in rate:
        share = rate["async1"] / rate["sync"] * 100
        print(f"per round, sync time / async time: {', '.join(f'{p:.2f}' for p in pairs)}")
        summary.append(("async (1 worker) rate / sync rate, echo ? over %s ids" % f"{n:,}",
                        f"{share:.0f}% ({rate['async1']:,.0f}/s against {rate['sync']:,.0f}/s)",
                        ">= 90%", verdict(share >= 90)))
        # The same, the worker's own run only (start to end as stored).
        run = med([int(x[1]) for _, x in by["async1"]])
        summary.append(("the same, the worker's run only (stored start to end)",
                        f"{n / run * 1000:,.0f}/s ({n / run * 1000 / rate['sync'] * 100:.0f}%)", "reported", "-"))
    if "async1" in rate and "async2" in rate:
        summary.append(("two workers' aggregate rate against one's, echo ?",
                        f"{rate['async2']:,.0f}/s against {rate['async1']:,.0f}/s ({rate['async2'] / rate['async1']:.2f}x)",
                        ">= one's", verdict(rate["async2"] >= rate["async1"])))

s = rows("scale")
if s:
    print()
    print(f"{'sleep 20 ? over %d ids' % sleep_n:34} {'median':>9} {'min':>9} {'max':>9}"
          f" {'queued':>8} {'running':>8} {'wait':>8}  split of the last run")
    med_of = {}
    for c in ("workers1", "workers2"):
        runs = [x for x in s if x[0] == c]
        if not runs:
            continue
        walls = [int(x[1]) for x in runs]
        med_of[c] = med(walls)
        parts = [f"{med([int(x[i]) for x in runs])} ms" for i in (2, 3, 4)]
        print(f"{c.replace('workers', '') + ' worker(s) --workers 8':34} {med(walls):>6} ms {min(walls):>6} ms"
              f" {max(walls):>6} ms {parts[0]:>8} {parts[1]:>8} {parts[2]:>8}  {runs[-1][5] if len(runs[-1]) > 5 else ''}")
    if len(med_of) == 2:
        x = med_of["workers1"] / med_of["workers2"]
        pairs = [int(a[1]) / int(b[1]) for a, b in zip([r for r in s if r[0] == "workers1"],
                                                        [r for r in s if r[0] == "workers2"])]
        print(f"per round, 1 worker / 2 workers: {', '.join(f'{p:.2f}' for p in pairs)}")
        summary.append(("two workers against one, sleep 20 ? over %s ids" % f"{sleep_n:,}",
                        f"{x:.2f}x ({med_of['workers1'] / 1000:.2f} s against {med_of['workers2'] / 1000:.2f} s)",
                        ">= 1.9x", verdict(x >= 1.9)))

t = rows("takeover")
if t:
    print()
    for how, label in (("KILL", "kill -9 (pid gone)"), ("STOP", "kill -STOP (heartbeat only)")):
        ms = [int(x[1]) for x in t if x[0] == how]
        if not ms:
            continue
        print(f"takeover after {label:28}: median {med(ms)} ms, runs {', '.join(map(str, ms))} ms")
        if how == "KILL":
            summary.append(("takeover after kill -9 of the owner (kill to new execution)",
                            f"{med(ms) / 1000:.2f} s (runs {', '.join(f'{v / 1000:.2f}' for v in ms)})",
                            "<= 12 s", verdict(med(ms) <= 12000)))
        else:
            summary.append(("the same, owner stopped (kill -STOP: heartbeat only)",
                            f"{med(ms) / 1000:.2f} s (runs {', '.join(f'{v / 1000:.2f}' for v in ms)})",
                            "<= 12 s", verdict(med(ms) <= 12000)))

w = rows("wait")
if w:
    lat = [int(x[0]) for x in w]
    print()
    print(f"BATCH_WAIT return - stored end_time: median {med(lat)} ms, min {min(lat)}, max {max(lat)}"
          f" ({len(lat)} runs; each wait started {min(int(x[1]) for x in w)} to {max(int(x[1]) for x in w)} ms before the end)")
    summary.append(("BATCH_WAIT's return after the stored end",
                    f"median {med(lat)} ms, max {max(lat)} ms", "within 1 s", verdict(max(lat) <= 1000)))

i = rows("idle")
if i:
    print()
    for home, ticks, hz, wall, nrows in i:
        pct = int(ticks) / int(hz) / (int(wall) / 1000) * 100
        print(f"idle worker on {home} ({nrows} entity rows): {int(ticks) / int(hz):.2f} s CPU in {int(wall) / 1000:.1f} s = {pct:.2f}% of a core")
        summary.append((f"idle worker's CPU ({nrows} entity rows in the store)", f"{pct:.2f}% of a core",
                        "< 1%", verdict(pct < 1)))

print()
print("| figure | measured | target | |")
print("|---|---|---|---|")
for row in summary:
    print("| " + " | ".join(row) + " |")
PY
if [[ -s "$OUT/warnings.txt" ]]; then
    echo
    cat "$OUT/warnings.txt"
fi
echo "raw results: $OUT"
