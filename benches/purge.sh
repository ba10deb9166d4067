#!/usr/bin/env bash
# BATCH_PURGE of a store holding 10,000,000 entity rows (10 finished
# batches of 1,000,000, ended long ago), while a batch runs beside it on
# the same store. It prints:
#
# - the purge's rate: entity rows deleted per second of the whole
#   statement (the process's wall time);
# - the longest wait for the store's write lock seen by a probe writer
#   beside it (a Python sqlite3 connection that takes the lock with
#   BEGIN IMMEDIATE every 5 ms, with SQLite's own busy wait, the one a
#   batch's steps use): the stall a batch's commit can meet;
# - the batch running beside it (`sleep 1 ?`, 4 workers): its rate and its
#   longest gap between two consecutive entity end times during the
#   purge, and how it ended. The gap shows a stall only once it outlasts
#   the ~100 ms of work a run keeps claimed ahead, so the probe is the
#   sharper figure.
# The same figures are first taken over 15 s of the same batch alone
# (then cancelled), with the probe: the probe waits for the batch's own
# commits too.
#
# Run it by hand:  bash benches/purge.sh
# It prints figures; it asserts nothing. Needs sqlite3 and python3.
# Knobs: PURGE_BATCHES=10 PURGE_ROWS_PER_BATCH=1000000 PURGE_SIDE_N=300000.

set -euo pipefail

BATCHES=${PURGE_BATCHES:-10}
PER=${PURGE_ROWS_PER_BATCH:-1000000}
SIDE_N=${PURGE_SIDE_N:-300000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/batchsh"
HOME_DIR="$WORK/home"
DB="$HOME_DIR/store.db"
bsh() { "$BIN" --home "$HOME_DIR" -q --no-progress "$@"; }
ms() { date +%s%3N; }

# A real batch is the template of the old ones: its row is copied with new
# ids and numbers, and each copy gets $PER entity rows written by SQL.
seq 1 3 | bsh -c "BATCH Old FROM STDIN FABRIC_COMMAND='echo ?'" >/dev/null
echo "== building $BATCHES finished batches of $PER entity rows each"
started=$(ms)
{
    echo "PRAGMA synchronous = OFF;"
    echo "CREATE TEMP TABLE tpl AS SELECT * FROM batches WHERE lu = 'Old';"
    for k in $(seq 1 "$BATCHES"); do
        no=$((1000 + k))
        cat <<SQL
UPDATE tpl SET bid = printf('old-%04d', $k), batch_no = $no, total = $PER, completed = $PER,
    end_time = '2020-01-01T00:00:00.000Z', start_time = '2019-12-31T00:00:00.000Z';
INSERT INTO batches SELECT * FROM tpl;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $PER)
INSERT INTO batch_entities (batch, seq, entity_id, status, attempts, node, start_time_ms,
    end_time_ms, process_time_ms, result)
SELECT $no, x, x, 'COMPLETED', 1, 'bench', 1577750400000 + x, 1577750400000 + x, 0,
    '{"echo":"' || x || '"}' FROM c;
SQL
    done
} | sqlite3 "$DB"
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
rows=$(sqlite3 "$DB" "SELECT count(*) FROM batch_entities")
echo "   $rows entity rows in $(( ($(ms) - started) / 1000 )) s; store $(du -h "$DB" | cut -f1)"

# The longest gap (ms) between consecutive entity end times of batch
# $1, between the times $2 and $3 (ms since 1970).
longest_gap() {
    sqlite3 "$DB" "SELECT coalesce(max(d), 0) FROM (
        SELECT end_time_ms - lag(end_time_ms) OVER (ORDER BY end_time_ms) AS d
        FROM batch_entities
        WHERE batch = (SELECT batch_no FROM batches WHERE bid = '$1')
            AND end_time_ms BETWEEN $2 AND $3)"
}
bid_of() { sqlite3 "$DB" "SELECT bid FROM batches WHERE lu = '$1' ORDER BY batch_no DESC LIMIT 1"; }

cat >"$WORK/probe.py" <<'PY'
import os, sqlite3, sys, time
db, stop, out = sys.argv[1:4]
c = sqlite3.connect(db, timeout=30, isolation_level=None)
waits = []
while not os.path.exists(stop):
    t0 = time.monotonic()
    c.execute("BEGIN IMMEDIATE")
    waits.append(time.monotonic() - t0)
    c.execute("COMMIT")
    time.sleep(0.005)
waits.sort()
n = len(waits)
with open(out, "w") as f:
    f.write("%d %.1f %.1f %.1f %d %d\n" % (n, waits[n // 2] * 1000, waits[int(n * 0.99)] * 1000,
                                    waits[-1] * 1000, sum(w > 0.05 for w in waits),
                                    sum(w > 0.1 for w in waits)))
PY
# Starts the probe writer; `probe_end` stops it and prints its figures.
probe_start() {
    rm -f "$WORK/stop"
    python3 "$WORK/probe.py" "$DB" "$WORK/stop" "$WORK/probe.out" &
    probe_pid=$!
}
probe_end() {
    touch "$WORK/stop"
    wait "$probe_pid"
    read -r probes p50 p99 pmax over50 over100 <"$WORK/probe.out"
    echo "   probe writer, $probes lock takes: median ${p50} ms, p99 ${p99} ms, longest ${pmax} ms;" \
        "$over50 over 50 ms, $over100 over 100 ms"
}
# Starts the side batch of $1 ids named $2 in the background, and waits
# until it runs.
side_start() {
    seq 1 "$1" | bsh -c "BATCH $2 FROM STDIN FABRIC_COMMAND='sleep 1 ?' WITH MAX_WORKERS_PER_NODE=4" \
        >"$WORK/side.out" 2>&1 &
    side_pid=$!
    until [ "$(sqlite3 "$DB" "SELECT count(*) FROM batches WHERE lu = '$2' AND status = 'IN_PROGRESS'" 2>/dev/null)" = 1 ]; do
        sleep 0.05
    done
    sleep 1
}
side_end() {
    side_status=0
    wait "$side_pid" || side_status=$?
}

# The first batch on a store this size meets a cold page cache (gaps of
# up to half a second between its entities' ends, purge or not): one
# small batch warms it, so that the figures below are the purge's.
side_start 10000 Warm
side_end

echo "== the side batch alone (sleep 1 ms, 4 workers), 15 s of it, with the probe"
side_start 200000 Alone
probe_start
t0=$(ms)
sleep 15
t1=$(ms)
probe_end
alone=$(bid_of Alone)
done_alone=$(sqlite3 "$DB" "SELECT count(*) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = '$alone') AND end_time_ms BETWEEN $t0 AND $t1")
echo "   $(( done_alone * 1000 / (t1 - t0) )) entities/s; longest gap between end times" \
    "$(longest_gap "$alone" "$t0" "$t1") ms"
bsh -c "BATCH_CANCEL '$alone'" >/dev/null
side_end

echo "== BATCH_PURGE beside the side batch ($SIDE_N x sleep 1 ms) and the probe"
side_start "$SIDE_N" Beside
probe_start
sleep 1
p0=$(ms)
bsh --format csv -c "BATCH_PURGE" >"$WORK/purged.csv"
p1=$(ms)
probe_end
side_end
beside=$(bid_of Beside)
purged=$(( $(wc -l <"$WORK/purged.csv") - 1 ))
left=$(sqlite3 "$DB" "SELECT count(*) FROM batch_entities WHERE batch > 1000 AND batch <= $((1000 + BATCHES))")
done_beside=$(sqlite3 "$DB" "SELECT count(*) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = '$beside') AND end_time_ms BETWEEN $p0 AND $p1")
after=$(sqlite3 "$DB" "SELECT count(*) FROM batch_entities WHERE batch = (SELECT batch_no FROM batches WHERE bid = '$beside') AND end_time_ms > $p1")
echo "   purged $purged batches; $left of their $(( BATCHES * PER )) entity rows left"
echo "   BATCH_PURGE: $(( (p1 - p0) / 1000 )).$(( (p1 - p0) % 1000 / 100 )) s," \
    "$(( (BATCHES * PER) * 1000 / (p1 - p0) )) rows/s"
echo "   side batch: exit $side_status, $(sqlite3 "$DB" "SELECT status || ', ' || completed || ' of ' || total FROM batches WHERE bid = '$beside'");" \
    "during the purge $(( done_beside * 1000 / (p1 - p0) )) entities/s, longest gap between" \
    "end times $(longest_gap "$beside" "$p0" "$p1") ms; $after entities finished after the purge"
