#!/usr/bin/env bash
# `batchsh tick` on a store of TICK_JOBS jobs (default 10,000), each a
# PROCESS job running /bin/true once a day, the whole process timed:
#
# - nothing due (issue 17: < 50 ms), beside the same tick on an empty
#   store, which is the floor of starting the process and opening a store;
# - TICK_DUE of them due (default 100): the tick fires them, runs them,
#   records them and exits; the time of the whole process and runs/s.
#
# The store is built fast: two jobs made by real STARTJOB statements, then
# their rows copied in SQL. "Now" is held still with the tests' hidden
# clock (BATCHSH_TEST_NOW_FILE): the idle jobs are due at 03:00 UTC, the
# others at 01:00 UTC; a tick at 00:30 has nothing to do, one at 02:00
# fires TICK_DUE runs. Each timed tick with runs due starts from a fresh
# copy of the store (copied outside the timing).
#
# Run it by hand:  bash benches/tick.sh
# It prints the median, min and max of each case; it asserts only that the
# cases did what they say (nothing written when nothing is due, every due
# run PROCESSED). Uses hyperfine when installed (apt-get install -y
# hyperfine), else a timing loop of its own.
# Needs: python3. Knobs: TICK_JOBS=10000 TICK_DUE=100 TICK_RUNS=50
# TICK_DUE_RUNS=15.

set -euo pipefail

JOBS=${TICK_JOBS:-10000}
DUE=${TICK_DUE:-100}
RUNS=${TICK_RUNS:-50}
DUE_RUNS=${TICK_DUE_RUNS:-15}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Schedules are local time: hold it to UTC so that the due times above hold.
export TZ=UTC

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/batchsh"
echo 2030-01-01T12:00:00Z >"$WORK/made"
echo 2030-01-02T00:30:00Z >"$WORK/idle"
echo 2030-01-02T02:00:00Z >"$WORK/due"

BATCHSH_TEST_NOW_FILE="$WORK/made" "$BIN" --home "$WORK/template" -q -c "
    STARTJOB PROCESS NAME='idle' COMMAND='/bin/true' EXEC_INTERVAL='0 3 * * *';
    STARTJOB PROCESS NAME='due' COMMAND='/bin/true' EXEC_INTERVAL='0 1 * * *';" 2>/dev/null
python3 - "$WORK/template/store.db" "$JOBS" "$DUE" <<'PY'
import sqlite3, sys
db, jobs, due = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
cols = ("type, uid, status, affinity, schedule, statement, args, created_at, next_run, "
        "archived, timeout_ms, workdir, short_form")
for name, copies in (("due", due - 1), ("idle", jobs - due - 1)):
    c.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?2)
        INSERT INTO jobs (name, {cols})
        SELECT name || '_' || x, {cols} FROM jobs, n WHERE name = ?1 AND ?2 > 0""",
              (name, copies))
c.commit()
have = c.execute("SELECT count(*), sum(name LIKE 'due%') FROM jobs").fetchone()
assert have == (jobs, due), have
PY
cp -a "$WORK/template" "$WORK/home"
mkdir "$WORK/empty"
cat >"$WORK/fresh.sh" <<SH
#!/usr/bin/env bash
rm -f "$WORK/home/store.db-wal" "$WORK/home/store.db-shm"
cp "$WORK/template/store.db" "$WORK/home/store.db"
SH
chmod +x "$WORK/fresh.sh"

# time NAME NOW RUNS PREPARE HOME: RUNS ticks at the time in file NOW, each
# after PREPARE, timed; the times (ms) go to $WORK/NAME.times.
time_ticks() {
    local name=$1 now=$2 runs=$3 prepare=$4 home=$5
    if command -v hyperfine >/dev/null; then
        BATCHSH_TEST_NOW_FILE="$now" hyperfine -N --style none -w 3 -r "$runs" \
            --prepare "$prepare" --export-json "$WORK/$name.json" \
            "$BIN --home $home tick" >/dev/null
        python3 -c 'import json, sys
for t in json.load(open(sys.argv[1]))["results"][0]["times"]:
    print(t * 1000)' "$WORK/$name.json" >"$WORK/$name.times"
    else
        BATCHSH_TEST_NOW_FILE="$now" python3 - "$runs" "$prepare" "$BIN" "$home" \
            >"$WORK/$name.times" <<'PY'
import subprocess, sys, time
runs, prepare, bin, home = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
for i in range(3 + runs):
    subprocess.run(prepare.split(), check=True)
    t0 = time.perf_counter()
    subprocess.run([bin, "--home", home, "tick"], check=True, stderr=subprocess.DEVNULL)
    if i >= 3:
        print((time.perf_counter() - t0) * 1000)
PY
    fi
}

echo "== batchsh tick, $JOBS jobs, $(command -v hyperfine >/dev/null && echo hyperfine || echo timing loop) (load $(cut -d' ' -f1-3 /proc/loadavg))"
before=$(cksum <"$WORK/home/store.db")
time_ticks empty "$WORK/idle" "$RUNS" true "$WORK/empty"
time_ticks idle "$WORK/idle" "$RUNS" true "$WORK/home"
unchanged=$([ "$before" = "$(cksum <"$WORK/home/store.db")" ] && echo yes || echo NO)
time_ticks due "$WORK/due" "$DUE_RUNS" "$WORK/fresh.sh" "$WORK/home"

python3 - "$WORK" "$JOBS" "$DUE" "$unchanged" <<'PY'
import sqlite3, statistics, sys
work, jobs, due, unchanged = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(f"{work}/home/store.db")
runs = dict(c.execute("SELECT status, count(*) FROM job_runs GROUP BY status").fetchall())
times = {n: [float(t) for t in open(f"{work}/{n}.times")] for n in ("empty", "idle", "due")}
print(f"{'case':34} {'median':>10} {'min':>9} {'max':>9} {'rounds':>7} {'runs/s':>8}")
for n, label in (("empty", "nothing due, empty store"),
                 ("idle", f"nothing due, {jobs:,} jobs"),
                 ("due", f"{due} due of {jobs:,} jobs")):
    t = times[n]
    m = statistics.median(t)
    rate = f"{due / m * 1000:8.0f}" if n == "due" else f"{'':8}"
    print(f"{label:34} {m:7.1f} ms {min(t):6.1f} ms {max(t):6.1f} ms {len(t):7} {rate}")
idle = statistics.median(times["idle"])
print(f"nothing due under 50 ms: {'met' if idle < 50 else 'NOT met'}; "
      f"store unchanged by the ticks with nothing due: {unchanged}")
ok = runs == {"PROCESSED": due}
print(f"runs of the last tick with {due} due: {runs}" + ("" if ok else "  (NOT as expected)"))
sys.exit(0 if ok and unchanged == "yes" else 1)
PY
