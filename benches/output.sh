#!/usr/bin/env bash
# Every entity's output (SHOW_OUTPUT, BATCH_OUTPUT) against GNU parallel:
# OUTPUT_N ids (default 2,000), each a `shell` entity printing
# OUTPUT_LINES lines (default 100), on 2 workers.
#
#  1. the batch without SHOW_OUTPUT, with SHOW_OUTPUT=true (lines tagged
#     and printed as they come), and `parallel -j2 --tag --line-buffer`
#     running the same shell text, side by side in one hyperfine run,
#     stdout to /dev/null, each batch from a fresh copy of an empty home;
#  2. BATCH_OUTPUT of that batch (raw text, and --format json) against
#     `parallel -j2 -k` printing the same output in input order.
#
# Run it by hand:  bash benches/output.sh
# It prints hyperfine's tables; it asserts nothing.
# Needs: hyperfine, GNU parallel (apt-get install -y hyperfine parallel).
# Knobs: OUTPUT_N=2000 OUTPUT_LINES=100 OUTPUT_RUNS=5; OUTPUT_KEEP=1 keeps the
# work folder (its scripts, the home) to look at.

set -euo pipefail

N=${OUTPUT_N:-2000}
LINES=${OUTPUT_LINES:-100}
RUNS=${OUTPUT_RUNS:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap '[ -n "${OUTPUT_KEEP:-}" ] || rm -rf "$WORK"' EXIT

# Each case's median, and its ratio to the first case's.
medians() {
    python3 - "$1" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
first = results[0]["median"]
for r in results:
    print(f"median {r['median']:8.3f} s  {r['median'] / first:6.2f}x of the first  {r['command']}")
PY
}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/batchsh"
seq 1 "$N" >"$WORK/ids.txt"
# The entity's work: LINES lines with shell builtins only, so the figures
# are about carrying output, not about starting programs.
TEXT="i=0; while [ \$i -lt $LINES ]; do echo \"line \$i of \$ENTITY_ID\"; i=\$((i+1)); done"
mkdir -p "$WORK/empty"
for show in false true; do
    # The statement in a script file: its shell text holds both quotes.
    printf '%s\n' "BATCH Out FROM FILE '$WORK/ids.txt' FABRIC_COMMAND=\$\$shell '$TEXT'\$\$ WITH MAX_WORKERS_PER_NODE=2 SHOW_OUTPUT=$show;" >"$WORK/batch-$show.bsh"
    cat >"$WORK/batch-$show.sh" <<SH
#!/usr/bin/env bash
rm -rf "$WORK/home" && cp -a "$WORK/empty" "$WORK/home"
"$BIN" --home "$WORK/home" -q --no-progress "$WORK/batch-$show.bsh" >/dev/null
SH
done
cat >"$WORK/parallel-tag.sh" <<SH
#!/usr/bin/env bash
parallel -j2 --tag --line-buffer 'ENTITY_ID={} sh -c '"'"'$TEXT'"'"'' <"$WORK/ids.txt" >/dev/null
SH
cat >"$WORK/parallel-k.sh" <<SH
#!/usr/bin/env bash
parallel -j2 -k 'ENTITY_ID={} sh -c '"'"'$TEXT'"'"'' <"$WORK/ids.txt" >/dev/null
SH
chmod +x "$WORK"/*.sh
echo "== $N shell entities of $LINES lines each, 2 workers (load $(cut -d' ' -f1-3 /proc/loadavg))"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/run.json" \
    -n "BATCH" "$WORK/batch-false.sh" \
    -n "BATCH SHOW_OUTPUT=true" "$WORK/batch-true.sh" \
    -n "parallel --tag --line-buffer" "$WORK/parallel-tag.sh"
medians "$WORK/run.json"

# The home the last run left holds the batch with SHOW_OUTPUT=true.
"$BIN" --home "$WORK/home" -q -c "BATCH_OUTPUT" >"$WORK/out.txt"
"$BIN" --home "$WORK/home" -q --format json -c "BATCH_OUTPUT" >"$WORK/out.json"
echo "== BATCH_OUTPUT: $(wc -l <"$WORK/out.txt") lines, $(wc -c <"$WORK/out.txt") bytes raw, $(wc -c <"$WORK/out.json") bytes JSON"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/read.json" \
    -n "BATCH_OUTPUT" "$BIN --home $WORK/home -q -c BATCH_OUTPUT" \
    -n "BATCH_OUTPUT --format json" "$BIN --home $WORK/home -q --format json -c BATCH_OUTPUT" \
    -n "parallel -k (runs the commands again)" "$WORK/parallel-k.sh"
medians "$WORK/read.json"
