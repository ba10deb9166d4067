#!/usr/bin/env bash
# CSV type inference: the first query on a CSV interface of CSV_N rows
# (default 1,000,000; columns id, name, amount) with its columns typed
# (the default) against `WITH TYPES=false`, which keeps every field text,
# as every CSV interface was before columns were typed. Each round runs
# both, in turns first, each as a new process (a CSV file is loaded by the
# first query of each process); it prints the medians and their ratio and
# asserts nothing.
#
# Run it by hand:  bash benches/csv.sh
# Needs: python3. Knobs: CSV_N=1000000 CSV_RUNS=9.

set -euo pipefail

N=${CSV_N:-1000000}
RUNS=${CSV_RUNS:-9}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/batchsh"
python3 - "$WORK/ids.csv" "$N" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,name,amount\n")
    for i in range(1, int(sys.argv[2]) + 1):
        f.write(f"{i},customer {i},{i * 0.25}\n")
PY
"$BIN" --home "$WORK/home" -q -c "CREATE INTERFACE typed TYPE CSV PATH '$WORK/ids.csv';
    CREATE INTERFACE text TYPE CSV PATH '$WORK/ids.csv' WITH TYPES=false;"
# The query selects 100 ids: what is measured is the load of the file
# the first query of a process makes, and the query itself.
q() {
    "$BIN" --home "$WORK/home" -q --format json -c \
        "EXPLAIN BATCH C FROM $1 USING ('select id from ids where $2') FABRIC_COMMAND='echo ?'"
}
ms() { date +%s%3N; }
echo "== first query on a CSV interface of $N rows, typed against TYPES=false, $RUNS rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
q typed "id <= 100" | grep -q '"entities_now":100' || { echo "typed: id <= 100 is not 100 ids" >&2; exit 1; }
q text "cast(id as integer) <= 100" | grep -q '"entities_now":100' || { echo "text: not 100 ids" >&2; exit 1; }
for r in $(seq 1 "$RUNS"); do
    for c in $( ((r % 2)) && echo "typed text" || echo "text typed"); do
        t0=$(ms)
        if [ "$c" = typed ]; then q typed "id <= 100" >/dev/null; else q text "cast(id as integer) <= 100" >/dev/null; fi
        echo "$c $(($(ms) - t0))" >>"$WORK/times.txt"
    done
done
python3 - "$WORK/times.txt" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    c, t = line.split()
    by.setdefault(c, []).append(int(t))
for c, label in (("typed", "typed (default)"), ("text", "TYPES=false")):
    t = by[c]
    print(f"{label:16} median {statistics.median(t):7.0f} ms  min {min(t):6} ms  max {max(t):6} ms")
ratio = statistics.median(by["typed"]) / statistics.median(by["text"])
pairs = sorted(a / b for a, b in zip(by["typed"], by["text"]))
print(f"typed / TYPES=false: {ratio:.3f} (medians); per round: {', '.join(f'{p:.2f}' for p in pairs)}")
print("within 1.5x: " + ("met" if ratio <= 1.5 else "NOT met"))
PY
