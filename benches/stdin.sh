#!/usr/bin/env bash
# Ids from standard input against the same ids from an SQLite source:
# `echo ?` over STDIN_N ids (default 1,000,000), `FROM STDIN` and `FROM src
# USING ('select id from ids')`, side by side in one hyperfine run, each
# from a fresh copy of a home holding only the catalog.
#
# Run it by hand:  bash benches/stdin.sh
# It prints hyperfine's table; it asserts nothing.
# Needs: hyperfine, sqlite3 (apt-get install -y hyperfine sqlite3).
# Knobs: STDIN_N=1000000 STDIN_RUNS=5.

set -euo pipefail

N=${STDIN_N:-1000000}
RUNS=${STDIN_RUNS:-5}
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
echo "== echo ? over $N ids: FROM STDIN against FROM an SQLite source (load $(cut -d' ' -f1-3 /proc/loadavg))"
hyperfine -N --warmup 1 --runs "$RUNS" \
    -n "FROM STDIN" "$WORK/stdin.sh" \
    -n "FROM src USING" "$WORK/sqlite.sh"
