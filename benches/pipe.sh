#!/usr/bin/env bash
# pipe against a process per entity, and pipe's own ceiling.
#
# (a) A per-entity Python script over PIPE_N ids (default 20,000) at 2
#     workers: `pipe 'python3' 'worker.py'` against `exec 'python3' 'one.py' ?`
#     and `parallel -j2 python3 one.py {}`. The last two start Python once per
#     id, so they run on PIPE_SPAWN_N ids (default 1,000) and are compared by
#     rate (entities per second); the three run in one hyperfine call. All
#     three run the interpreter itself (python3's sys.executable), not a
#     wrapper such as pyenv's shim, which would add its own start-up to
#     every exec and make the ratio say more than it should.
# (b) `pipe 'cat'` over PIPE_CAT_N ids (default 1,000,000) from an SQLite
#     source, every outcome committed as usual, against `echo ?` on the same
#     ids (the engine without a process), and against pipe one id at a time
#     (BATCHSH_TEST_PIPE_WINDOW=1: no id written before the last one's
#     answer), whose rate gives the cost of one round trip.
#
# Run it by hand:  bash benches/pipe.sh
# It prints hyperfine's tables and the rates; it asserts nothing.
# Needs: hyperfine, GNU parallel, sqlite3, python3
#   (apt-get install -y hyperfine parallel sqlite3 python3).
# Knobs: PIPE_N=20000 PIPE_SPAWN_N=500 PIPE_CAT_N=1000000 PIPE_RUNS=5
#        PIPE_CASES="python cat".

set -euo pipefail

N=${PIPE_N:-20000}
SPAWN_N=${PIPE_SPAWN_N:-500}
CAT_N=${PIPE_CAT_N:-1000000}
RUNS=${PIPE_RUNS:-5}
CASES=${PIPE_CASES:-python cat}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/batchsh"
cp "$ROOT"/benches/pipe/*.py "$WORK/"
PY=$(python3 -c 'import sys; print(sys.executable)')

ids_db() { # FILE COUNT
    sqlite3 "$1" "CREATE TABLE ids (id INTEGER PRIMARY KEY);
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $2)
        INSERT INTO ids SELECT x FROM c;"
}

# A run of one BATCH on a fresh copy of the template home: run.sh SQL COMMAND.
cat >"$WORK/run.sh" <<SH
#!/usr/bin/env bash
rm -rf "$WORK/home" && cp -a "$WORK/template" "$WORK/home"
cd "$WORK" && "$BIN" --home "$WORK/home" -q --no-progress -c \
    "BATCH Ids FROM src USING ('\$1') FABRIC_COMMAND=\"\$2\" WITH MAX_WORKERS_PER_NODE=2 ENTITY_TIMEOUT='1m'" >/dev/null
SH
chmod +x "$WORK/run.sh"

# The mean of a hyperfine JSON export's command named NAME, in seconds.
mean() { python3 -c 'import json,sys; print([r["mean"] for r in json.load(open(sys.argv[1]))["results"] if r["command"] == sys.argv[2]][0])' "$1" "$2"; }
rate() { python3 -c "import sys; print(f'{$1 / $2:,.0f}')"; }

ids_db "$WORK/src.db" "$CAT_N"
"$BIN" --home "$WORK/template" -q -c "CREATE INTERFACE src TYPE SQLITE PATH '$WORK/src.db';"
seq 1 "$SPAWN_N" >"$WORK/spawn_ids.txt"

if [[ " $CASES " == *" python "* ]]; then
    echo "== (a) a Python script per entity at 2 workers ($PY): pipe over $N ids, exec and parallel over $SPAWN_N (load $(cut -d' ' -f1-3 /proc/loadavg))"
    hyperfine -N --runs "$RUNS" --export-json "$WORK/python.json" \
        -n "pipe" "$WORK/run.sh 'select id from ids where id <= $N' \"pipe '$PY' 'worker.py'\"" \
        -n "exec" "$WORK/run.sh 'select id from ids where id <= $SPAWN_N' \"exec '$PY' 'one.py' ?\"" \
        -n "parallel" "bash -c 'cd $WORK && parallel --halt now,fail=1 -j2 $PY one.py {} :::: $WORK/spawn_ids.txt >/dev/null'"
    pipe_s=$(mean "$WORK/python.json" pipe)
    exec_s=$(mean "$WORK/python.json" exec)
    par_s=$(mean "$WORK/python.json" parallel)
    echo "pipe:     $(rate "$N" "$pipe_s") entities/s"
    echo "exec:     $(rate "$SPAWN_N" "$exec_s") entities/s"
    echo "parallel: $(rate "$SPAWN_N" "$par_s") entities/s"
    python3 -c "p=$N/$pipe_s; print(f'pipe against exec: {p/($SPAWN_N/$exec_s):.0f}x, against parallel: {p/($SPAWN_N/$par_s):.0f}x')"
fi

if [[ " $CASES " == *" cat "* ]]; then
    echo "== (b) pipe 'cat' over $CAT_N ids from an SQLite source, 2 workers (load $(cut -d' ' -f1-3 /proc/loadavg))"
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/cat.json" \
        -n "pipe 'cat'" "$WORK/run.sh 'select id from ids' \"pipe 'cat'\"" \
        -n "echo ?" "$WORK/run.sh 'select id from ids' 'echo ?'"
    echo "== the same, one id at a time (BATCHSH_TEST_PIPE_WINDOW=1)"
    BATCHSH_TEST_PIPE_WINDOW=1 hyperfine -N --runs 3 --export-json "$WORK/lockstep.json" \
        -n "pipe 'cat', one at a time" "$WORK/run.sh 'select id from ids' \"pipe 'cat'\""
    cat_s=$(mean "$WORK/cat.json" "pipe 'cat'")
    echo_s=$(mean "$WORK/cat.json" "echo ?")
    lock_s=$(mean "$WORK/lockstep.json" "pipe 'cat', one at a time")
    echo "pipe 'cat':               $(rate "$CAT_N" "$cat_s") entities/s"
    echo "echo ?:                   $(rate "$CAT_N" "$echo_s") entities/s"
    echo "pipe 'cat', one at a time: $(rate "$CAT_N" "$lock_s") entities/s"
    python3 -c "print(f'one round trip (2 workers, one at a time): {2 * $lock_s / $CAT_N * 1e6:.1f} us per entity per worker')"
fi
