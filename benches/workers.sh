#!/usr/bin/env bash
# Worker counts for I/O-bound commands: a synchronous batch of
# `shell 'sleep 0.2; : ?'` over 200 ids at MAX_WORKERS_PER_NODE=50, side by
# side with `parallel -j50` on the same ids in one hyperfine run, and the
# same batch at 2 workers (the ratio says the 50 really run at once).
#
# Run it by hand:  bash benches/workers.sh
# It prints hyperfine's tables; it asserts nothing.
# Needs: hyperfine, GNU parallel, sqlite3
#   (apt-get install -y hyperfine parallel sqlite3).
# Knobs: WORKERS_N=200 WORKERS_J=50 WORKERS_RUNS=7.

set -euo pipefail

N=${WORKERS_N:-200}
J=${WORKERS_J:-50}
RUNS=${WORKERS_RUNS:-7}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/batchsh"
sqlite3 "$WORK/src.db" "CREATE TABLE ids (id INTEGER PRIMARY KEY);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $N)
    INSERT INTO ids SELECT x FROM c;"
seq 1 "$N" >"$WORK/ids.txt"
"$BIN" --home "$WORK/template" -q -c "
    CREATE INTERFACE src TYPE SQLITE PATH '$WORK/src.db';
    CREATE LU Id FROM src ROOT ('select id from ids');"
cat >"$WORK/run.sh" <<SH
#!/usr/bin/env bash
rm -rf "$WORK/home" && cp -a "$WORK/template" "$WORK/home"
"$BIN" --home "$WORK/home" -q --no-progress -c \
    "BATCH Id FABRIC_COMMAND=\"shell 'sleep 0.2; : ?'\" WITH MAX_WORKERS_PER_NODE=\$1" >/dev/null
SH
chmod +x "$WORK/run.sh"

echo "== $N x sleep 0.2 at $J at once (load $(cut -d' ' -f1-3 /proc/loadavg))"
hyperfine -N --warmup 1 --runs "$RUNS" \
    -n "batchsh MAX_WORKERS_PER_NODE=$J" "$WORK/run.sh $J" \
    -n "parallel -j$J" "parallel --halt now,fail=1 -j$J 'sleep 0.2; : {}' :::: $WORK/ids.txt"
echo "== the same batch at 2 workers"
hyperfine -N --runs 3 -n "batchsh MAX_WORKERS_PER_NODE=2" "$WORK/run.sh 2"
