#!/usr/bin/env bash
# Two versions of batchsh side by side: the working tree against an earlier
# commit, on the same batches, one right after the other in one hyperfine
# run. For a change that must not cost speed; run it twice and compare the
# ratios (the machine is noisy).
#
# Run it by hand:  bash benches/compare.sh BASE_REV
# It prints hyperfine's table (medians and the ratio); it asserts nothing.
#
# Cases: `echo ?` over COMPARE_ECHO_N ids (every outcome persisted: the
# store's writes are the whole cost) and `exec 'true' ?` over
# COMPARE_SPAWN_N ids (process spawning), both at 2 workers.
# Knobs: COMPARE_ECHO_N=1000000 COMPARE_SPAWN_N=2000 COMPARE_RUNS=5.
# Needs: hyperfine, sqlite3 (apt-get install -y hyperfine sqlite3).

set -euo pipefail

BASE=${1:?usage: bash benches/compare.sh BASE_REV}
ECHO_N=${COMPARE_ECHO_N:-1000000}
SPAWN_N=${COMPARE_SPAWN_N:-2000}
RUNS=${COMPARE_RUNS:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/base-src" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

echo "== building the working tree and $BASE (release)"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
cp "$ROOT/target/release/batchsh" "$WORK/new"
git -C "$ROOT" worktree add --quiet --detach "$WORK/base-src" "$BASE"
# The base shares this checkout's build folder: its dependencies are built.
CARGO_TARGET_DIR="$ROOT/target/compare-base" \
    cargo build --release --quiet --manifest-path "$WORK/base-src/Cargo.toml"
cp "$ROOT/target/compare-base/release/batchsh" "$WORK/base"

sqlite3 "$WORK/src.db" "CREATE TABLE ids (id INTEGER PRIMARY KEY);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $ECHO_N)
    INSERT INTO ids SELECT x FROM c;"
for v in new base; do
    mkdir -p "$WORK/template-$v"
    "$WORK/$v" --home "$WORK/template-$v" -q -c "
        CREATE INTERFACE src TYPE SQLITE PATH '$WORK/src.db';
        CREATE LU E FROM src ROOT ('select id from ids');"
done
run() { # version: a fresh home holding only the catalog
    echo "rm -rf $WORK/home-$1 && cp -r $WORK/template-$1 $WORK/home-$1"
}
echo "BATCH E FABRIC_COMMAND='echo ?' WITH MAX_WORKERS_PER_NODE=2;" >"$WORK/echo.bsh"
echo "BATCH E FROM src USING ('select id from ids where id <= $SPAWN_N')
    FABRIC_COMMAND=\"exec 'true' ?\" WITH MAX_WORKERS_PER_NODE=2;" >"$WORK/spawn.bsh"
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== echo ? over $ECHO_N ids (load $(load))"
hyperfine --runs "$RUNS" --warmup 1 \
    --prepare "$(run base)" -n "base $BASE" "$WORK/base --home $WORK/home-base -q $WORK/echo.bsh" \
    --prepare "$(run new)" -n "working tree" "$WORK/new --home $WORK/home-new -q $WORK/echo.bsh"
echo "== exec 'true' ? over $SPAWN_N ids (load $(load))"
hyperfine --runs "$RUNS" --warmup 1 \
    --prepare "$(run base)" -n "base $BASE" "$WORK/base --home $WORK/home-base -q $WORK/spawn.bsh" \
    --prepare "$(run new)" -n "working tree" "$WORK/new --home $WORK/home-new -q $WORK/spawn.bsh"
