#!/usr/bin/env bash
# Ids from standard input against the same ids from an SQLite source:
# `echo ?` over STDIN_N ids (default 1,000,000), `FROM STDIN` and `FROM src
# USING ('select id from ids')`, side by side in one run, each
# from a fresh copy of a home holding only the catalog.
#
# Run it by hand:  bash benches/stdin.sh
# Each round runs both statements, in turns first; it prints the medians,
# the ratio and each round's ratio; it asserts nothing.
# Needs: sqlite3 (apt-get install -y sqlite3), python3.
# Knobs: STDIN_N=1000000 STDIN_RUNS=9.

set -euo pipefail

N=${STDIN_N:-1000000}
RUNS=${STDIN_RUNS:-9}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/batchsh"
seq 1 "$N" >"$WORK/ids.txt"
sqlite3 "$WORK/src.db" "CREATE TABLE ids (id INTEGER PRIMARY KEY);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $N)
    INSERT INTO ids SELECT x FROM c;"
"$BIN" --home "$WORK/template" -q -c "CREATE INTERFACE src TYPE SQLITE PATH '$WORK/src.db';"
cat >"$WORK/stdin.sh" <<SH
#!/usr/bin/env bash
rm -rf "$WORK/home" && cp -a "$WORK/template" "$WORK/home"
"$BIN" --home "$WORK/home" -q --no-progress -c \
    "BATCH Ids FROM STDIN FABRIC_COMMAND='echo ?'" <"$WORK/ids.txt" >/dev/null
SH
cat >"$WORK/sqlite.sh" <<SH
#!/usr/bin/env bash
rm -rf "$WORK/home" && cp -a "$WORK/template" "$WORK/home"
"$BIN" --home "$WORK/home" -q --no-progress -c \
    "BATCH Ids FROM src USING ('select id from ids') FABRIC_COMMAND='echo ?'" >/dev/null
SH
chmod +x "$WORK/stdin.sh" "$WORK/sqlite.sh"
ms() { date +%s%3N; }
echo "== echo ? over $N ids: FROM STDIN against FROM an SQLite source, $RUNS rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
"$WORK/stdin.sh" && "$WORK/sqlite.sh" # warm-up
for r in $(seq 1 "$RUNS"); do
    # Each round runs both, in turns first, so drift in the machine's
    # load falls on both alike.
    for c in $( ((r % 2)) && echo "stdin sqlite" || echo "sqlite stdin"); do
        t0=$(ms)
        "$WORK/$c.sh"
        echo "$c $(($(ms) - t0))" >>"$WORK/times.txt"
    done
done
python3 - "$WORK/times.txt" "$N" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    c, t = line.split()
    by.setdefault(c, []).append(int(t))
n = int(sys.argv[2])
for c, label in (("stdin", "FROM STDIN"), ("sqlite", "FROM src USING")):
    t = by[c]
    m = statistics.median(t)
    print(f"{label:16} median {m:7.0f} ms  min {min(t):6} ms  max {max(t):6} ms  {n / m * 1000:12,.0f} ids/s")
pairs = sorted(a / b for a, b in zip(by["stdin"], by["sqlite"]))
ratio = statistics.median(by["stdin"]) / statistics.median(by["sqlite"])
print(f"FROM STDIN / FROM src USING: {ratio:.3f} (medians); per round: {', '.join(f'{p:.2f}' for p in pairs)}")
print("within 10%: " + ("met" if ratio <= 1.10 else "NOT met"))
PY
