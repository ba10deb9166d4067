#!/usr/bin/env bash
# The PostgreSQL store (`--store postgres://...`): its rate against the
# SQLite store's, what more workers add on it, and how fast its monitoring
# statements answer on a big store.
#
# Run it by hand:  bash benches/postgres.sh
# It prints its tables and a summary against the targets; it asserts
# nothing. The figures and this command go in BENCHMARKS.md.
# Needs: PostgreSQL 15+ (installed by .ci/pg-cluster with apt-get when
# missing), psql, sqlite3, python3, hyperfine, cargo.
#
# The servers: two private clusters, each on a unix socket in the work
# directory, stopped at exit. One is started by `.ci/pg-cluster start`,
# as the tests start theirs: fsync=off, synchronous_commit=off,
# full_page_writes=off ("fast"). The other is the same cluster's make
# started with PostgreSQL's defaults, fsync=on, synchronous_commit=on,
# full_page_writes=on ("durable"): every commit waits for its flush, as
# the SQLite store's do. Every PostgreSQL figure is measured on both, in
# the same rounds (BENCH_PG="fast durable", any subset).
#
# Every run gets a store of its own: a new database copied from a template
# database holding only the catalog (CREATE DATABASE ... TEMPLATE), dropped
# after the run; the SQLite runs a copy of a home holding the same
# catalog. The ids come from the same SQLite source for both stores.
#
# Cases (BENCH_CASES, any subset, in this order):
#   rate     `echo ?` over BENCH_N ids, a synchronous
#            `BATCH E FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2`
#            (one host, the statement's own process), on the SQLite store
#            and on each PostgreSQL cluster, the order turning from round
#            to round. Whole command, process start to exit.
#   scale    `sleep 20 ?` over BENCH_SLEEP_N ids on PostgreSQL, ASYNC=true
#            with MAX_WORKERS_PER_NODE=8, on 1 and on 3 worker processes
#            (`worker --node wN --workers 8`, started and seen alive before
#            the timed region), alternating. Timed from the BATCH
#            statement to BATCH_WAIT's return (one process).
#   curve    `echo ?` over BENCH_N ids on PostgreSQL, ASYNC=true with
#            MAX_WORKERS_PER_NODE=2, on 1, 2 and 4 worker processes
#            (`worker --workers 2` each), the order turning. Aggregate
#            rate (BATCH to BATCH_WAIT's return), and what the store did:
#            its database's committed transactions (pg_stat_database
#            xact_commit, read after the workers exit) and the claim rows
#            written (pg_stat_user_tables n_tup_ins of batch_claims) and
#            entity rows claimed from WAITING (n_tup_upd of batch_entities
#            less the outcomes' own updates is not separable, so only the
#            inserts and commits are counted), per second of the run; and
#            the machine's busy CPU over the timed run (/proc/stat): its
#            share of every core, and CPU seconds per million entities,
#            which tell whether more workers could have had more cores.
#   monitor  BATCH_SUMMARY and BATCH_LIST STATUS='ALL' (whole command,
#            `--format json`, hyperfine, BENCH_MONITOR_RUNS runs) on a
#            PostgreSQL store holding BENCH_STORE_ROWS entity rows: a real
#            1,000-id batch extended by SQL (INSERT ... SELECT
#            generate_series, copies of its first row with new ids) and its
#            counters (batches, batch_nodes) set to match, three small real
#            batches beside it; then each statement with `SET TIMING on`,
#            whose own time (stderr) is the statement without the
#            process's start and the connection.
#
# Knobs (environment): BENCH_N=1000000 BENCH_RUNS=3 BENCH_SLEEP_N=3000
#   BENCH_SCALE_RUNS=3 BENCH_CURVE_RUNS=3 BENCH_STORE_ROWS=10000000
#   BENCH_MONITOR_RUNS=20 BENCH_CASES="rate scale curve monitor"
#   BENCH_PG="fast durable" BENCH_PGSS=1 (pg_stat_statements loaded; 0: not)
#   BENCH_TIMEOUT=300 (s; a run still going then is killed, with a warning)
#   BENCH_PERF=0 (1: each curve run under `perf record -a`, and each
#   process name's share of all samples printed after the curve)
#   BENCH_OUT=target/bench/postgres (raw figures)
# A smaller run: BENCH_N=100000 BENCH_RUNS=3 BENCH_SLEEP_N=600
#   BENCH_STORE_ROWS=1000000 BENCH_MONITOR_RUNS=10.

set -euo pipefail

N=${BENCH_N:-1000000}
RUNS=${BENCH_RUNS:-3}
SLEEP_N=${BENCH_SLEEP_N:-3000}
SCALE_RUNS=${BENCH_SCALE_RUNS:-3}
CURVE_RUNS=${BENCH_CURVE_RUNS:-3}
STORE_ROWS=${BENCH_STORE_ROWS:-10000000}
MONITOR_RUNS=${BENCH_MONITOR_RUNS:-20}
CASES=${BENCH_CASES:-"rate scale curve monitor"}
read -r -a MODES <<<"${BENCH_PG:-fast durable}"
PGSS=${BENCH_PGSS:-1}
PERF=${BENCH_PERF:-0}
LIMIT=${BENCH_TIMEOUT:-300} # seconds a run may take before it is killed and marked TIMEOUT
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench/postgres}

has_case() { [[ " $CASES " == *" $1 "* ]]; }
now_ms() { date +%s%3N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
log() { printf '\n=== %s (%s, load %s)\n' "$*" "$(date +%H:%M:%S)" "$(load)"; }
die() { echo "postgres bench: $*" >&2; exit 2; }

[[ $PERF == 1 ]] && { command -v perf >/dev/null || die "BENCH_PERF=1: perf not found (apt-get install -y linux-perf)"; }
for tool in psql sqlite3 python3 hyperfine cargo; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y postgresql-client sqlite3 hyperfine)"
done

(cd "$ROOT" && cargo build --release --quiet)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/batchsh-pg.XXXXXX")
chmod 755 "$WORK" # the clusters' directories, owned by postgres, are under it
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for m in "${MODES[@]}"; do "$ROOT/.ci/pg-cluster" stop "$WORK/pg-$m" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
BIN=$WORK/batchsh
cp "$ROOT/target/release/batchsh" "$BIN"
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.json

# --- The clusters ---------------------------------------------------------------
declare -A BASE # mode -> URL, DB standing for the database
pg_at() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -At "$1" -c "$2"; } # URL SQL
for m in "${MODES[@]}"; do
    dir=$WORK/pg-$m
    url=$("$ROOT/.ci/pg-cluster" start "$dir")
    if [[ $PGSS == 1 ]]; then
        # pg_stat_statements: which statements the runs spend the server's time in.
        pg_at "$url" "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
        "$ROOT/.ci/pg-cluster" stop "$dir"
        [[ $m == fast ]] && "$ROOT/.ci/pg-cluster" start "$dir" >/dev/null
    fi
    if [[ $m == durable ]]; then
        # The same cluster restarted with PostgreSQL's own durability.
        "$ROOT/.ci/pg-cluster" stop "$dir"
        if command -v pg_ctl >/dev/null; then
            pgbin=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
        else
            pgbin=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -1)
        fi
        runas=()
        [[ $(id -u) == 0 ]] && runas=(runuser -u postgres --)
        "${runas[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-k $dir -c listen_addresses= -c max_connections=300 -c shared_buffers=256MB" start >/dev/null
    elif [[ $m != fast ]]; then
        die "BENCH_PG: unknown mode $m (fast, durable)"
    fi
    [[ $PGSS == 1 ]] && pg_at "$url" "CREATE EXTENSION pg_stat_statements"
    BASE[$m]=${url%%/postgres\?*}
    BASE[$m]="${BASE[$m]}/DB?${url#*\?}"
done
url_of() { echo "${BASE[$1]/DB/$2}"; } # MODE DATABASE
pg() { pg_at "$(url_of "$1" "$2")" "$3"; } # MODE DB SQL
settings() {
    pg "$1" postgres "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
        WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'wal_level')"
}

{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes in src/')"
    echo "nproc:   $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "rustc:   $(rustc --version)"
    echo "server:  $(pg "${MODES[0]}" postgres 'SHOW server_version'), unix socket, on this machine"
    for m in "${MODES[@]}"; do echo "pg $m: $(settings "$m")"; done
    echo "load:    $(load)"
    echo "sizes:   n=$N runs=$RUNS sleep_n=$SLEEP_N scale_runs=$SCALE_RUNS curve_runs=$CURVE_RUNS store_rows=$STORE_ROWS monitor_runs=$MONITOR_RUNS"
} | tee "$OUT/machine.txt"
echo "NOTE: the \"fast\" cluster runs with fsync=off and synchronous_commit=off (commits not flushed);" \
    "the \"durable\" one with fsync=on and synchronous_commit=on; the SQLite store syncs its commits."

# --- The source and the catalog -------------------------------------------------
MAX=$N
((SLEEP_N > MAX)) && MAX=$SLEEP_N
((MAX < 1000)) && MAX=1000
sqlite3 "$WORK/src.db" "PRAGMA journal_mode = OFF; CREATE TABLE ids (id INTEGER PRIMARY KEY);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $MAX)
    INSERT INTO ids SELECT x FROM c;" >/dev/null
CATALOG="CREATE INTERFACE src TYPE SQLITE PATH '$WORK/src.db';
    CREATE LU E FROM src ROOT ('select id from ids where id <= $N');
    CREATE LU S FROM src ROOT ('select id from ids where id <= $SLEEP_N');
    CREATE LU K FROM src ROOT ('select id from ids where id <= 1000');"
"$BIN" --home "$WORK/template" -q -c "$CATALOG"
for m in "${MODES[@]}"; do
    pg "$m" postgres "CREATE DATABASE tmpl"
    "$BIN" --home "$WORK/tmpl-home" --store "$(url_of "$m" tmpl)" -q -c "$CATALOG"
    rm -rf "$WORK/tmpl-home"
done

# fresh_home HOME: a home holding the catalog (the SQLite store's too).
fresh_home() { rm -rf "$1" && cp -a "$WORK/template" "$1"; }
# fresh_db MODE: a database copied from the template; prints its URL.
fresh_db() {
    pg "$1" postgres "DROP DATABASE IF EXISTS run" && pg "$1" postgres "CREATE DATABASE run TEMPLATE tmpl"
    url_of "$1" run
}
# pgss MODE LABEL: the run database's top statements by server time, to
# statements.txt; prints the calls, rows and server ms of the claims of
# WAITING rows.
pgss() {
    if [[ $PGSS != 1 ]]; then echo "- - -"; return; fi
    local db="(SELECT oid FROM pg_database WHERE datname = 'run')"
    pg "$1" postgres "SELECT '$2', calls, rows, round(total_exec_time::numeric, 1),
            left(regexp_replace(query, '\s+', ' ', 'g'), 90)
        FROM pg_stat_statements WHERE dbid = $db ORDER BY total_exec_time DESC LIMIT 8" >>"$OUT/statements.txt"
    pg "$1" postgres "SELECT coalesce(sum(calls), 0), coalesce(sum(rows), 0),
            round(coalesce(sum(total_exec_time), 0)) FROM pg_stat_statements
        WHERE dbid = $db AND query LIKE '%FOR UPDATE SKIP LOCKED%'" | tr '|' ' '
}
drop_db() { pg "$1" postgres "DROP DATABASE IF EXISTS run WITH (FORCE)"; }
# start_worker HOME URL NODE K: prints its pid.
start_worker() {
    "$BIN" --home "$1" --store "$2" --node "$3" worker --workers "$4" >>"$1.worker.out" 2>&1 </dev/null &
    echo $!
}
alive() { "$BIN" --home "$1" --store "$2" --format json -c 'SHOW NODES' | grep -o '"status":"alive"' | wc -l; }
wait_alive() { # HOME URL COUNT
    for _ in $(seq 400); do
        (($(alive "$1" "$2") >= $3)) && return 0
        sleep 0.05
    done
    die "$3 workers not alive after 20 s in $1"
}
# stop PID...: a drain (SIGTERM), then the exit; kill -9 after 20 s.
stop() {
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 200); do
        local left=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
        ((left)) || break
        sleep 0.1
    done
    for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
# cpu_ticks: the machine's busy and total CPU time so far (/proc/stat, in
# clock ticks; iowait counts as idle).
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# cpu_busy "BUSY0 TOTAL0" "BUSY1 TOTAL1": the busy CPU time between two
# readings, in ms (every core's together), and its share of all cores' time (%).
cpu_busy() {
    local b0 t0 b1 t1 hz
    read -r b0 t0 <<<"$1"
    read -r b1 t1 <<<"$2"
    hz=$(getconf CLK_TCK)
    echo "$(((b1 - b0) * 1000 / hz)) $(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))"
}
# timed ARGS...: runs batchsh, killed after LIMIT seconds (a warning says so).
# With TIMED_UNDER set (an array: a command and its arguments), under it.
TIMED_UNDER=()
timed() {
    timeout -s KILL "$LIMIT" "${TIMED_UNDER[@]}" "$BIN" "$@" >/dev/null ||
        echo "WARNING: killed or failed after $LIMIT s (exit $?): batchsh $*" | tee -a "$OUT/warnings.txt" >&2
}
status_of() { # HOME STORE: the last batch's status and percentage done
    "$BIN" --home "$1" --store "$2" --format json -c "BATCH_LIST STATUS='ALL'" |
        python3 -c "import json,sys; b=json.load(sys.stdin)[0]; print(b['status'], b['completion_pct'])"
}
# async_run MODE LU COMMAND MAXW K PERWORKER: one ASYNC batch on K workers
# of a fresh database; prints "wall_ms status commits claim_rows
# claim_calls claimed claim_ms queued_ms running_ms".
async_run() {
    local m=$1 lu=$2 cmd=$3 maxw=$4 k=$5 per=$6 home=$WORK/home url pids=() t0 t1 st
    fresh_home "$home"
    url=$(fresh_db "$m")
    for ((w = 1; w <= k; w++)); do pids+=("$(start_worker "$home" "$url" "w$w" "$per")"); done
    PIDS+=("${pids[@]}")
    wait_alive "$home" "$url" "$k"
    local c0 cpu0 cpu1
    c0=$(pg "$m" run "SELECT xact_commit FROM pg_stat_database WHERE datname = 'run'")
    cpu0=$(cpu_ticks)
    [[ $PERF == 1 && $lu == E ]] && TIMED_UNDER=(perf record -a -q -o "$WORK/perf.data" --)
    t0=$(now_ms)
    timed --home "$home" --store "$url" -q --no-progress -c \
        "BATCH $lu FABRIC_COMMAND='$cmd' WITH ASYNC=true MAX_WORKERS_PER_NODE=$maxw; BATCH_WAIT;"
    t1=$(now_ms)
    if ((${#TIMED_UNDER[@]})); then
        TIMED_UNDER=()
        # A batch's own threads are named after it: one name for all.
        perf report -i "$WORK/perf.data" --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' |
            sed -E 's/batch-[0-9a-f]{8}/batch (its threads)/' | head -6 |
            sed "s|^|$m/$k |" >>"$OUT/perf.txt"
    fi
    cpu1=$(cpu_ticks)
    stop "${pids[@]}"
    st=$(status_of "$home" "$url")
    sleep 0.5 # the workers' last statistics reach the server as their sessions end
    local c1 ins claims times
    c1=$(pg "$m" run "SELECT pg_stat_clear_snapshot(), xact_commit FROM pg_stat_database WHERE datname = 'run'" | cut -d'|' -f2)
    ins=$(pg "$m" run "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname = 'batch_claims'")
    claims=$(pgss "$m" "$m/$lu/$k")
    # The stored times: queued (job taken - stored) and running (end - start).
    times=$(pg "$m" run "SELECT round(extract(epoch FROM start_time::timestamptz - creation_time::timestamptz) * 1000),
            round(extract(epoch FROM end_time::timestamptz - start_time::timestamptz) * 1000) FROM batches" | tr '|' ' ')
    drop_db "$m"
    echo "$((t1 - t0)) ${st// /:} $((c1 - c0)) $ins $claims $times $(cpu_busy "$cpu0" "$cpu1")"
}

# --- rate: SQLite against PostgreSQL, synchronous BATCH --------------------------
sync_sqlite() {
    local home=$WORK/home t0 t1
    fresh_home "$home"
    t0=$(now_ms)
    timed --home "$home" -q --no-progress -c "BATCH E FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2"
    t1=$(now_ms)
    echo "$((t1 - t0)) $(status_of "$home" "$home/store.db" | tr ' ' ':')"
}
sync_pg() {
    local home=$WORK/home url t0 t1 st claims
    fresh_home "$home"
    url=$(fresh_db "$1")
    t0=$(now_ms)
    timed --home "$home" --store "$url" -q --no-progress -c \
        "BATCH E FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2"
    t1=$(now_ms)
    st=$(status_of "$home" "$url")
    claims=$(pgss "$1" "$1/sync")
    drop_db "$1"
    echo "$((t1 - t0)) ${st// /:} $claims"
}
if has_case rate; then
    log "rate: echo ? over $N ids, synchronous BATCH at MAX_WORKERS_PER_NODE=2, SQLite / PostgreSQL (${MODES[*]}), $RUNS rounds (+1 warm-up)"
    order=(sqlite "${MODES[@]}")
    for ((i = 0; i <= RUNS; i++)); do
        o=("${order[@]:i%${#order[@]}}" "${order[@]:0:i%${#order[@]}}")
        line=""
        for c in "${o[@]}"; do
            if [[ $c == sqlite ]]; then r=$(sync_sqlite); else r=$(sync_pg "$c"); fi
            ((i > 0)) && echo "$i $c $r" >>"$OUT/rate.txt"
            line+=" $c=${r%% *}ms"
        done
        echo "round $i:$line$( ((i == 0)) && echo ' (warm-up, not kept)') (load $(load))"
    done
fi

# --- scale: sleep 20 ? on 1 and 3 workers ---------------------------------------
if has_case scale; then
    log "scale: sleep 20 ? over $SLEEP_N ids, ASYNC, MAX_WORKERS_PER_NODE=8, 1 / 3 workers (--workers 8), $SCALE_RUNS rounds"
    for ((i = 1; i <= SCALE_RUNS; i++)); do
        line=""
        for m in "${MODES[@]}"; do
            for k in $( ((i % 2)) && echo "1 3" || echo "3 1"); do
                r=$(async_run "$m" S 'sleep 20 ?' 8 "$k" 8)
                echo "$i $m $k $r" >>"$OUT/scale.txt"
                line+=" $m/$k=${r%% *}ms"
            done
        done
        echo "round $i:$line (load $(load))"
    done
fi

# --- curve: echo ? on 1, 2, 4 workers -------------------------------------------
if has_case curve; then
    log "curve: echo ? over $N ids, ASYNC, MAX_WORKERS_PER_NODE=2, 1 / 2 / 4 workers (--workers 2), $CURVE_RUNS rounds"
    ks=(1 2 4)
    for ((i = 1; i <= CURVE_RUNS; i++)); do
        line=""
        o=("${ks[@]:i%3}" "${ks[@]:0:i%3}")
        for m in "${MODES[@]}"; do
            for k in "${o[@]}"; do
                r=$(async_run "$m" E 'echo ?' 2 "$k" 2)
                echo "$i $m $k $r" >>"$OUT/curve.txt"
                line+=" $m/$k=${r%% *}ms"
            done
        done
        echo "round $i:$line (load $(load))"
    done
    if [[ -s $OUT/perf.txt ]]; then
        echo "perf record -a: each process name's share of all samples, per run (mode/workers)"
        cat "$OUT/perf.txt"
    fi
fi

# --- monitor: BATCH_SUMMARY and BATCH_LIST on a big store ------------------------
if has_case monitor; then
    m=${MODES[0]}
    log "monitor: building a PostgreSQL store ($m) of $STORE_ROWS entity rows with SQL"
    home=$WORK/mon-home
    fresh_home "$home"
    pg "$m" postgres "DROP DATABASE IF EXISTS mon" && pg "$m" postgres "CREATE DATABASE mon TEMPLATE tmpl"
    url=$(url_of "$m" mon)
    "$BIN" --home "$home" --store "$url" --no-progress -q -c "BATCH K FABRIC_COMMAND='echo ?'" >/dev/null
    bid=$(pg "$m" mon "SELECT bid FROM batches LIMIT 1")
    t0=$(now_ms)
    pg "$m" mon "
BEGIN;
DROP INDEX batch_entities_open;
INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, retry_at_ms, node,
                            start_time_ms, end_time_ms, process_time_ms, result, error, worker)
SELECT e.batch, g.x, g.x::text, e.status, e.attempts, e.retry_at_ms, e.node,
       e.start_time_ms, e.end_time_ms, e.process_time_ms, '{\"echo\":\"' || g.x || '\"}', e.error, e.worker
FROM generate_series(1001, $STORE_ROWS) AS g (x),
     (SELECT * FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = '$bid') AND seq = 1) AS e;
CREATE INDEX batch_entities_open ON batch_entities (batch, status, seq) WHERE status <> 'COMPLETED';
UPDATE batches SET total = total + $STORE_ROWS - 1000, completed = completed + $STORE_ROWS - 1000 WHERE bid = '$bid';
UPDATE batch_nodes SET completed = completed + $STORE_ROWS - 1000 WHERE bid = '$bid';
COMMIT;"
    pg "$m" mon "VACUUM ANALYZE"
    echo "store built by: SQL, a real 1,000-id batch extended to $STORE_ROWS rows in $((($(now_ms) - t0) / 1000)) s" |
        tee "$OUT/monitor_store.txt"
    for k in 1 2 3; do
        "$BIN" --home "$home" --store "$url" --no-progress -q -c "BATCH K FABRIC_COMMAND='echo ?'" >/dev/null
    done
    echo "store: $(pg "$m" mon "SELECT count(*) FROM batch_entities") entity rows, $(pg "$m" mon "SELECT count(*) FROM batches") batches, $(pg "$m" mon "SELECT pg_size_pretty(pg_database_size('mon'))"); batch $bid; summary: $(pg "$m" mon "SELECT total, completed FROM batch_totals WHERE bid = '$bid'")" |
        tee -a "$OUT/monitor_store.txt"
    printf "BATCH_SUMMARY '%s';\n" "$bid" >"$WORK/q_summary.bsh"
    printf "BATCH_LIST STATUS='ALL';\n" >"$WORK/q_list_all.bsh"
    printf 'SHOW SETTINGS;\n' >"$WORK/q_settings.bsh"
    printf 'SHOW INTERFACES;\n' >"$WORK/q_interfaces.bsh"
    hyperfine --style basic -N --warmup 3 --runs "$MONITOR_RUNS" --export-json "$OUT/monitor.json" \
        -n "SHOW SETTINGS (process start, no store)" "$BIN --home $home --no-progress --format json $WORK/q_settings.bsh" \
        -n "SHOW INTERFACES (process start + connect)" "$BIN --home $home --store $url --no-progress --format json $WORK/q_interfaces.bsh" \
        -n "BATCH_SUMMARY" "$BIN --home $home --store $url --no-progress --format json $WORK/q_summary.bsh" \
        -n "BATCH_LIST STATUS='ALL'" "$BIN --home $home --store $url --no-progress --format json $WORK/q_list_all.bsh" ||
        echo "WARNING: monitor case failed" | tee -a "$OUT/warnings.txt"
    # The statements' own times, as `SET TIMING on` prints them.
    for q in summary list_all; do
        for ((i = 0; i < MONITOR_RUNS; i++)); do
            { printf 'SET TIMING on;\n'; cat "$WORK/q_$q.bsh"; } |
                "$BIN" --home "$home" --store "$url" --no-progress --format json 2>&1 >/dev/null |
                grep -io 'time[^0-9]*[0-9.]* *[mµu]*s' | tail -1 | sed "s/^/$q /" >>"$OUT/monitor_timing.txt" || true
        done
    done
    pg "$m" postgres "DROP DATABASE mon WITH (FORCE)"
fi

# --- Summary ----------------------------------------------------------------------
log "summary"
python3 - "$OUT" "$N" "$SLEEP_N" "$STORE_ROWS" <<'PY'
import json, os, re, statistics, sys
out, n, sleep_n, store_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
med = statistics.median
summary = []
def verdict(ok):
    return "met" if ok else "NOT met"
def rows(name):
    p = os.path.join(out, name + ".txt")
    return [l.split() for l in open(p)] if os.path.exists(p) else []
def done(name, at):
    """The runs of a case whose batch ended DONE; the others are left out
    of the medians (a run killed after BENCH_TIMEOUT, say) and named."""
    rs = rows(name)
    left = [x for x in rs if not x[at].startswith("DONE")]
    for x in left:
        print(f"left out of the medians ({name}): {' '.join(x)}")
    return [x for x in rs if x[at].startswith("DONE")]

r = done("rate", 3)
if r:
    print(f"{'echo ? over %d ids, sync BATCH' % n:36} {'median':>9} {'min':>9} {'max':>9} {'entities/s':>11}  status")
    rate = {}
    for c in ("sqlite", "fast", "durable"):
        walls = [int(x[2]) for x in r if x[1] == c]
        if not walls:
            continue
        m = med(walls)
        rate[c] = n / m * 1000
        sts = sorted({x[3] for x in r if x[1] == c})
        label = {"sqlite": "SQLite store", "fast": "PostgreSQL, fsync=off",
                 "durable": "PostgreSQL, fsync=on"}[c]
        print(f"{label:36} {m:>6} ms {min(walls):>6} ms {max(walls):>6} ms {rate[c]:>11,.0f}  {' '.join(sts)}")
    print("runs (round, store, ms, status; claims of WAITING rows: calls, rows, server ms):")
    for x in r:
        print("  " + " ".join(x))
    for c, label in (("fast", "fsync=off, synchronous_commit=off"), ("durable", "fsync=on, synchronous_commit=on")):
        if c in rate and "sqlite" in rate:
            per = []
            for i in sorted({x[0] for x in r}):
                a = [int(x[2]) for x in r if x[0] == i and x[1] == "sqlite"]
                b = [int(x[2]) for x in r if x[0] == i and x[1] == c]
                if a and b:
                    per.append(a[0] / b[0])
            share = rate[c] / rate["sqlite"] * 100
            print(f"PostgreSQL ({c}) / SQLite per round: {', '.join(f'{p:.2f}' for p in per)}")
            summary.append((f"`echo ?` over {n:,} ids, sync BATCH, PostgreSQL ({label}) against SQLite",
                            f"{share:.0f}% ({rate[c]:,.0f}/s against {rate['sqlite']:,.0f}/s)", ">= 50%",
                            verdict(share >= 50)))

s = done("scale", 4)
if s:
    print()
    print(f"{'sleep 20 ? over %d ids, ASYNC' % sleep_n:36} {'median':>9} {'min':>9} {'max':>9} {'queued':>10} {'running':>10}  status")
    for c in ("fast", "durable"):
        med_of, run_of = {}, {}
        for k in ("1", "3"):
            walls = [int(x[3]) for x in s if x[1] == c and x[2] == k]
            if not walls:
                continue
            med_of[k] = med(walls)
            runs = [x for x in s if x[1] == c and x[2] == k]
            sts = sorted({x[4] for x in runs})
            q = med([float(x[10]) for x in runs]) if len(runs[0]) > 11 else float("nan")
            r_ = med([float(x[11]) for x in runs]) if len(runs[0]) > 11 else float("nan")
            print(f"{'PostgreSQL (%s), %s worker(s)' % (c, k):36} {med(walls):>6} ms {min(walls):>6} ms {max(walls):>6} ms"
                  f" {q:>7.0f} ms {r_:>7.0f} ms  {' '.join(sts)}")
            run_of[k] = r_
        if len(med_of) == 2:
            x = med_of["1"] / med_of["3"]
            summary.append((f"3 workers against 1, `sleep 20 ?` over {sleep_n:,} ids, PostgreSQL ({c})",
                            f"{x:.2f}x ({med_of['1'] / 1000:.2f} s against {med_of['3'] / 1000:.2f} s);"
                            f" the stored runs alone {run_of['1'] / run_of['3']:.2f}x",
                            ">= 2.8x", verdict(x >= 2.8)))
    print("(queued: the job taken - the batch stored; running: its end - its start, as stored; medians)")

cv = done("curve", 4)
def num(v):
    return int(v) if v not in ("-", "") else None
if cv:
    print()
    print(f"{'echo ? over %d ids, ASYNC' % n:36} {'median':>9} {'min':>9} {'max':>9} {'entities/s':>11}"
          f" {'commits/s':>10} {'claim rows':>10} {'CLAIMs/s':>9} {'claimed':>9} {'CPU busy':>9} {'CPU s/1M':>9}  status")
    for c in ("fast", "durable"):
        curve = []
        for k in ("1", "2", "4"):
            runs = [x for x in cv if x[1] == c and x[2] == k]
            if not runs:
                continue
            walls = [int(x[3]) for x in runs]
            m = med(walls)
            commits = med([int(x[5]) / int(x[3]) * 1000 for x in runs])
            rows_ins = med([int(x[6]) for x in runs])
            calls = [num(x[7]) / int(x[3]) * 1000 for x in runs if num(x[7]) is not None]
            took = [num(x[8]) for x in runs if num(x[8]) is not None]
            calls_s = f"{med(calls):,.0f}" if calls else "-"
            took_s = f"{med(took):,.0f}" if took else "-"
            sts = sorted({x[4] for x in runs})
            # The machine's busy CPU over the timed run: its share of both
            # cores, and CPU seconds per million entities.
            busy = [(int(x[12]), int(x[13])) for x in runs if len(x) > 13]
            busy_pct = f"{med([b[1] for b in busy]):.0f}%" if busy else "-"
            cpu_per_m = f"{med([b[0] / 1000 / n * 1e6 for b in busy]):.2f}" if busy else "-"
            curve.append((k, n / m * 1000, commits, calls_s, med([int(x[6]) / int(x[3]) * 1000 for x in runs]), took_s,
                          busy_pct, cpu_per_m))
            print(f"{'PostgreSQL (%s), %s worker(s)' % (c, k):36} {m:>6} ms {min(walls):>6} ms {max(walls):>6} ms"
                  f" {n / m * 1000:>11,.0f} {commits:>10,.0f} {rows_ins:>10,.0f} {calls_s:>9} {took_s:>9}"
                  f" {busy_pct:>9} {cpu_per_m:>9}  {' '.join(sts)}")
        if curve:
            summary.append((f"`echo ?` over {n:,} ids on 1, 2, 4 workers, PostgreSQL ({c}): aggregate rate"
                            " (the machine's CPU busy)",
                            ", ".join(f"{x[0]}: {x[1]:,.0f}/s ({x[6]})" for x in curve), "figure only", "-"))
            last = curve[-1]
            summary.append((f"the same at {last[0]} workers: the store's transactions and claims per second",
                            f"{last[2]:,.0f} commits/s; {last[4]:,.1f} claim rows/s (ids claimed as read);"
                            f" {last[3]} claims of WAITING rows/s, which took {last[5]} rows a run (median)", "figure only", "-"))
    print("(commits/s: pg_stat_database.xact_commit of the run's database, from the workers' start to their exit,"
          " monitoring included, per second of the timed run; claim rows: rows inserted into batch_claims, ids"
          " claimed as they arrive; CLAIMs/s: calls of the statement claiming WAITING rows FOR UPDATE SKIP"
          " LOCKED (pg_stat_statements), per second; claimed: the rows those calls took; CPU busy: the machine's"
          " busy share of all its cores over the timed run, /proc/stat; CPU s/1M: that busy time, every core's"
          " together, per million entities)")

st = rows("statements")
if st:
    # Server time per statement, summed over the runs of a kind.
    print()
    for label in sorted({x[0].split("|")[0] for x in st}):
        agg = {}
        nruns = 0
        for x in st:
            f = " ".join(x).split("|")
            if f[0] != label:
                continue
            q = f[4]
            a = agg.setdefault(q, [0, 0, 0.0])
            a[0] += int(f[1]); a[1] += int(f[2]); a[2] += float(f[3])
        top = sorted(agg.items(), key=lambda kv: -kv[1][2])[:5]
        print(f"top statements by server time, {label} (summed over its runs):")
        for q, (calls, rws, ms) in top:
            print(f"  {ms:>10,.1f} ms {calls:>8,} calls {rws:>10,} rows  {q}")

p = os.path.join(out, "monitor.json")
if os.path.exists(p):
    print()
    res = json.load(open(p))["results"]
    timing = rows("monitor_timing")
    for x in res:
        ms = [t * 1000 for t in x["times"]]
        print(f"{x['command']:42} median {med(ms):7.1f} ms  min {min(ms):7.1f}  max {max(ms):7.1f}  ({len(ms)} runs)")
    def own(q):
        vals = []
        for t in timing:
            if t[0] != q:
                continue
            m_ = re.match(r"([0-9.]+)\s*(ms|s|µs|us)", " ".join(t[1:]).split(":")[-1].strip()) \
                or re.search(r"([0-9.]+)\s*(ms|s|µs|us)", " ".join(t[1:]))
            if m_:
                v = float(m_.group(1))
                vals.append(v * {"ms": 1, "s": 1000, "µs": 0.001, "us": 0.001}[m_.group(2)])
        return vals
    for q, name in (("summary", "BATCH_SUMMARY"), ("list_all", "BATCH_LIST STATUS='ALL'")):
        whole = [med([t * 1000 for t in x["times"]]) for x in res if x["command"] == name]
        o = own(q)
        own_s = f"; the statement itself (SET TIMING) median {med(o):.1f} ms" if o else ""
        if whole:
            summary.append((f"{name}, `--format json`, PostgreSQL store of {store_rows:,} entity rows, whole command",
                            f"{whole[0]:.1f} ms (median of {len(res[0]['times'])}){own_s}", "< 20 ms",
                            verdict(whole[0] < 20)))

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
