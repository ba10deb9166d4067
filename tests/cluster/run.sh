#!/usr/bin/env bash
# Three hosts run one asynchronous batch on one store, one host is killed and
# one is cut off mid-batch, and the survivors must finish it: every entity
# recorded COMPLETED exactly once, the counters adding up, a schedule that
# comes due during the run fired exactly once. See README.md beside this file
# for the knobs; run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BIN=${BATCHSH_BIN:-$repo/target/release/batchsh}
N=${N:-100000}
MODE=${MODE:-auto}          # netns | local | auto (netns when `ip netns add` works)
STORE=${STORE:-postgres}    # postgres | sqlite (a shared file: for developing the rig)
WORKERS=${WORKERS:-8}       # --workers of each worker
DELAY_MS=${DELAY_MS:-10}    # the work of one entity, so that the batch outlives the faults
KILL_AT=${KILL_AT:-20}      # % of entities done when host2 is killed
STALL_AT=${STALL_AT:-30}    # % done when host3 is cut off (or stopped)
STALL_SECS=${STALL_SECS:-15} # host3 stays cut off this long at least (past the 10 s dead limit), and until the batch ends
STALL=${STALL:-}            # cut | stop; default: cut with namespaces and PostgreSQL, else stop
TIMEOUT=${TIMEOUT:-900}     # seconds the batch may take in all
NET=${NET:-10.77.0}         # the /24 of the namespaces
KEEP=${KEEP:-0}             # 1: keep the temporary folder (it is kept anyway on failure)
NET_ONLY=${NET_ONLY:-0}     # 1: set up the hosts and PostgreSQL, check the cut, run no batch
export TZ=${TZ:-UTC}        # schedules are local time: one zone for every process
export LC_ALL=C             # one sort order for `sort` and `comm`

say() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
# die also ends the script from a subshell (a `$(...)`), whose exit alone would not
die() {
    say "error: $*"
    [ "$BASHPID" != $$ ] && kill -USR1 $$
    exit 1
}
trap 'exit 1' USR1
failures=0
check() { # check NAME CONDITION-STATUS DETAIL
    if [ "$2" = 0 ]; then say "ok    $1"; else say "FAIL  $1: $3"; failures=$((failures + 1)); fi
}

[ "$(id -u)" = 0 ] || die "run me as root: namespaces, PostgreSQL's own user and SIGSTOP of workers need it"
[ -x "$BIN" ] || die "no batchsh at $BIN: build it (cargo build --release) or set BATCHSH_BIN"
for tool in jq ip; do command -v "$tool" >/dev/null || die "$tool is missing: install it (apt-get install $tool)"; done
case $N in '' | *[!0-9]* | 0) die "N must be a positive number of entities, not '$N'" ;; esac
case $TIMEOUT in '' | *[!0-9]* | 0) die "TIMEOUT must be a number of seconds, not '$TIMEOUT'" ;; esac

tmp=$(mktemp -d /tmp/bsh-cluster.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach its data folder in it
shared=$tmp/shared
mkdir -p "$shared" "$tmp/logs"
chmod 777 "$shared"

pids=()       # every batchsh worker started, for the clean-up
stopped=""    # a worker left stopped, to wake before it is killed
pg_dir=""
netns_made=0

cleanup() {
    local rc=$?
    set +e
    [ -n "$stopped" ] && kill -CONT "$stopped" 2>/dev/null
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 50); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    # A worker a statement started in the background (it should not have):
    # any process still running on one of this run's homes.
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "--home $tmp/home-" && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    [ -n "$pg_dir" ] && "$repo/.ci/pg-cluster" stop "$pg_dir" 2>/dev/null
    if [ $netns_made = 1 ]; then remove_netns; fi
    if [ $rc = 0 ] && [ "$KEEP" != 1 ]; then
        rm -rf "$tmp"
    else
        say "logs, stores and per-host files are kept in $tmp"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the hosts

remove_netns() {
    local i
    for i in 1 2 3; do
        ip netns del "bsh-h$i" 2>/dev/null || true
        ip link del "bsh-v$i" 2>/dev/null || true
    done
    ip link del bsh-br0 2>/dev/null || true
}

make_netns() {
    remove_netns # what a run killed before its clean-up left behind
    netns_made=1
    ip link add bsh-br0 type bridge
    ip addr add "$NET.254/24" dev bsh-br0
    ip link set bsh-br0 up
    local i
    for i in 1 2 3; do
        ip netns add "bsh-h$i"
        ip link add "bsh-v$i" type veth peer name eth0 netns "bsh-h$i"
        ip link set "bsh-v$i" master bsh-br0 up
        ip -n "bsh-h$i" addr add "$NET.$i/24" dev eth0
        ip -n "bsh-h$i" link set eth0 up
        ip -n "bsh-h$i" link set lo up
    done
}

if [ "$MODE" = auto ]; then
    if refused=$(ip netns add bsh-probe 2>&1); then
        ip netns del bsh-probe
        MODE=netns
    else
        say "network namespaces are refused here ($refused): the three workers run on this host"
        MODE=local
    fi
fi
case $MODE in
netns) make_netns ;;
local) ;;
*) die "MODE must be netns, local or auto, not '$MODE'" ;;
esac
if [ -z "$STALL" ]; then
    if [ "$MODE" = netns ] && [ "$STORE" = postgres ]; then STALL="cut"; else STALL="stop"; fi
fi
[ "$STALL" = cut ] && [ "$MODE" != netns ] && die "STALL=cut needs MODE=netns"
[ "$STALL" = cut ] && [ "$STORE" != postgres ] && die "STALL=cut needs STORE=postgres: a shared SQLite file is not behind the link"
if [ "$STALL" = cut ]; then stall_word="cut off"; else stall_word="stopped (SIGSTOP)"; fi
say "mode $MODE, store $STORE, host3 $stall_word; $N entities, $WORKERS workers per host, ${DELAY_MS} ms each; in $tmp"

# on HOST CMD...: runs CMD on host HOST (1, 2, 3), as its own machine:
# its namespace and a host name of its own, so that no worker takes another
# for one of its host (whose pid it could check). Each step execs the next,
# so that `(on ...) &` leaves $! the pid of CMD itself.
on() {
    local h=$1
    shift
    if [ "$MODE" = netns ]; then
        # shellcheck disable=SC2016 # the inner shell expands them
        exec ip netns exec "bsh-h$h" unshare --uts sh -c 'echo "$0" >/proc/sys/kernel/hostname && exec "$@"' "bsh-h$h" "$@"
    else
        exec "$@"
    fi
}

# ---------------------------------------------------------------- the store

if [ "$STORE" = postgres ]; then
    pg_dir=$tmp/pg
    if [ "$MODE" = netns ]; then
        pg_host=$NET.1 pg_port=5432
    else
        pg_host=127.0.0.1 pg_port=$((40000 + $$ % 20000))
    fi
    (on 1 env PG_PORT="$pg_port" PG_LISTEN="$pg_host" "$repo/.ci/pg-cluster" start "$pg_dir" >/dev/null 2>"$tmp/logs/pg-cluster.err") \
        || die "PostgreSQL did not start: $(cat "$tmp/logs/pg-cluster.err")"
    echo "host all all $NET.0/24 trust" >>"$pg_dir/data/pg_hba.conf"
    psql_local() { psql "host=$pg_dir port=$pg_port user=postgres dbname=postgres" -v ON_ERROR_STOP=1 -Atq "$@"; }
    psql_local -c 'select pg_reload_conf()' >/dev/null
    psql_local -c 'create database batchsh' >/dev/null
    store=postgres://postgres@$pg_host:$pg_port/batchsh
    for h in 1 2 3; do
        (on $h psql "$store?connect_timeout=5" -Atc 'select 1') >/dev/null \
            || die "host$h cannot reach PostgreSQL at $pg_host:$pg_port"
    done
    say "PostgreSQL on $pg_host:$pg_port, reached from the three hosts"
    if [ "$NET_ONLY" = 1 ]; then
        reaches() { (on "$1" psql "$store?connect_timeout=2" -Atc 'select 1') >/dev/null 2>&1 && echo 0 || echo 1; }
        if [ "$MODE" = netns ]; then
            ip link set bsh-v3 down
            check "host3 cut off cannot reach PostgreSQL" "$([ "$(reaches 3)" = 1 ] && echo 0 || echo 1)" "it still does"
            check "host1 and host2 still reach it" "$([ "$(reaches 1)$(reaches 2)" = 00 ] && echo 0 || echo 1)" "one does not"
            ip link set bsh-v3 up
            for _ in $(seq 20); do [ "$(reaches 3)" = 0 ] && break; sleep 0.5; done
            check "host3 reaches it again once its link is up" "$(reaches 3)" "it does not"
        fi
        [ $failures = 0 ] || exit 1
        say "the network and PostgreSQL are ready (NET_ONLY=1: no batch)"
        exit 0
    fi
else
    store=$shared/store.db
fi

# bsh ARGS...: a statement from outside the workers (the operator's shell)
bsh() { "$BIN" --home "$tmp/home-client" --store "$store" --node client --no-progress "$@"; }
json() {
    bsh --format json -c "$1" 2>>"$tmp/logs/client.err" \
        || die "the statement $1 failed: $(tail -n 1 "$tmp/logs/client.err")"
}

if ! out=$(bsh -c 'SHOW NODES' 2>&1); then
    die "this batchsh cannot use the store $store: $out"
fi

# ------------------------------------------------------- the source and work

printf 'id\n' >"$shared/ids.csv"
seq 1 "$N" >>"$shared/ids.csv"
mkfifo "$shared/never.fifo"
chmod 666 "$shared/never.fifo"
# One process per worker thread (`pipe`): it does the entity's work (waits
# DELAY), then appends the id to its host's file, then answers. An id in two
# files ran twice; the store must still record it once.
cat >"$shared/work.sh" <<'EOF'
#!/usr/bin/env bash
dir=$1 delay=$2
exec 3<>"$dir/never.fifo" # nothing is ever written: `read -t` on it waits without a fork
while IFS= read -r id; do
    if [ "$delay" != 0 ]; then read -r -t "$delay" -u 3 _; fi
    printf '%s\n' "$id" >>"$dir/ran-$NODE.txt"
    printf '{"ok":true}\n'
done
EOF
chmod 755 "$shared/work.sh"
delay_s=$(awk -v ms="$DELAY_MS" 'BEGIN { printf "%.3f", ms / 1000 }')

bsh -q -c "CREATE INTERFACE src TYPE CSV PATH '$shared'; CREATE LU L FROM src ROOT ('select id from ids')"

# ---------------------------------------------------------------- the workers

declare -A worker # host number -> pid of its current worker
start_worker() {
    local h=$1
    (on "$h" "$BIN" --home "$tmp/home-h$h" --store "$store" --node "host$h" worker --workers "$WORKERS" \
        >>"$tmp/logs/host$h.out" 2>&1) &
    worker[$h]=$!
    pids+=("$!")
    # Registered before anything is queued: a statement that finds no live
    # worker starts one of its own, which would run entities off the hosts.
    local i
    for i in $(seq 100); do
        [ "$(node_status "${worker[$h]}")" = alive ] && return 0
        sleep 0.1
    done
    die "host$h's worker did not register: $(tail -n 3 "$tmp/logs/host$h.out")"
}

node_status() { # node_status PID: the status SHOW NODES gives the worker of that pid
    json 'SHOW NODES' | jq -r --argjson pid "$1" '[.[] | select(.pid == $pid)][0].status // "unknown"'
}
done_count() { # entities of the batch that reached a final status
    json "BATCH_SUMMARY '$bid'" | jq -r '[.[] | select(.level == "Cluster")][0] | (.succeeded + .failed)'
}
now_ms() { date +%s%3N; }

# host2 owns the batch: it is started alone, takes the batch's job, and its
# kill -9 then tests the takeover of an owner, not only of a helper.
start_worker 2
bid=$(json "BATCH L FROM src USING ('select id from ids') FABRIC_COMMAND=\"pipe '$shared/work.sh' '$shared' '$delay_s'\" WITH ASYNC=true ENTITY_TIMEOUT='60s'" | jq -r '.[0].batch_id')
[ -n "$bid" ] && [ "$bid" != null ] || die "the batch was not queued: $(cat "$tmp/logs/client.err")"
t_start=$(now_ms)
say "batch $bid queued"
for _ in $(seq 100); do
    json "BATCH_INFO '$bid'" | jq -e '.job | test("owner node host2")' >/dev/null && break
    sleep 0.1
done
json "BATCH_INFO '$bid'" | jq -e '.job | test("owner node host2")' >/dev/null || die "host2 did not take the batch's job: $(json "BATCH_INFO '$bid'" | jq -r .job)"
start_worker 1
start_worker 3
say "workers: host1 ${worker[1]}, host2 ${worker[2]} (owner), host3 ${worker[3]}"

# The schedule comes due while all three run: they race for it.
due=$(date -d '+4 seconds' '+%Y-%m-%d %H:%M:%S')
bsh -q -c "SCHEDULE race AT '$due' DO BATCH Race ('once') FABRIC_COMMAND=\"shell 'echo ? \$NODE >>$shared/schedule-fired.txt'\""
say "schedule race due at $due"

# ----------------------------------------------------------------- the faults

batch_status() { json "BATCH_INFO '$bid'" | jq -r .status; }
wait_done_pct() { # wait until PCT % of the entities are done; fails when the batch ended first
    local pct=$1 want=$(($1 * N / 100)) status
    while :; do
        [ "$(done_count)" -ge "$want" ] && return 0
        status=$(batch_status)
        case $status in DONE | FAILED | CANCELLED)
            die "the batch ended ($status) before $pct % were done: give it more to do (N, DELAY_MS)" ;;
        esac
        sleep 0.2
    done
}
in_process_of() { # entities that NODE holds in process now
    json BATCH_IN_PROCESS | jq --arg bid "$bid" --arg node "$1" '[.[] | select(.batch_id == $bid and .node_id == $node)] | length'
}
wait_busy() { # wait until NODE has entities in process: a fault then catches some in flight
    local i status
    for i in $(seq 150); do
        [ "$(in_process_of "$1")" -gt 0 ] && return 0
        status=$(batch_status)
        case $status in DONE | FAILED | CANCELLED)
            die "the batch ended ($status) before $1 was hit: give it more to do (N, DELAY_MS)" ;;
        esac
        sleep 0.2
    done
    die "$1 has had no entity in process for 30 s"
}
# watch_node NODE PID SINCE_MS: "DEAD_MS BACK_MS", the ms from SINCE_MS until the
# worker of PID shows dead in SHOW NODES, and until no entity is in process
# on NODE any more (its claims went back, or the batch ended); -1 when not
# seen within the batch's TIMEOUT. Returns when both are seen.
watch_node() {
    local node=$1 pid=$2 since=$3 dead=-1 back=-1 t
    while [ $dead = -1 ] || [ $back = -1 ]; do
        t=$(($(now_ms) - since))
        [ $t -gt $((TIMEOUT * 1000)) ] && break
        [ $dead = -1 ] && [ "$(node_status "$pid")" = dead ] && dead=$t
        [ $back = -1 ] && [ "$(in_process_of "$node")" = 0 ] && back=$t
        sleep 0.2
    done
    echo "$dead $back"
}

wait_done_pct "$KILL_AT"
until [ "$(date '+%Y-%m-%d %H:%M:%S')" \> "$due" ]; do sleep 0.2; done
sleep 1 # the schedule's run has started on one of the three
wait_busy host2
kill -KILL "${worker[2]}"
t_kill=$(now_ms)
say "host2 killed (kill -9) at $(done_count) done"
read -r dead2 back2 < <(watch_node host2 "${worker[2]}" "$t_kill")
say "host2 dead after $dead2 ms, its entities back after $back2 ms; job: $(json "BATCH_INFO '$bid'" | jq -r .job)"

# host3 stays cut off (or stopped) until the batch has ended, and for
# STALL_SECS at least: the survivors must take its claims back to finish.
wait_done_pct "$STALL_AT"
stalled=${worker[3]}
wait_busy host3
if [ "$STALL" = cut ]; then
    ip link set bsh-v3 down
    t_stall=$(now_ms)
    if (on 3 psql "$store?connect_timeout=2" -Atc 'select 1') >/dev/null 2>&1; then
        check "host3 is cut off" 1 "it still reaches PostgreSQL"
    fi
else
    kill -STOP "$stalled"
    stopped=$stalled
    t_stall=$(now_ms)
fi
say "host3 $stall_word at $(done_count) done"
read -r dead3 back3 < <(watch_node host3 "$stalled" "$t_stall")
say "host3 dead after $dead3 ms, its entities back after $back3 ms"
last_done=-1 last_change=$(now_ms)
while :; do
    case $(batch_status) in DONE | FAILED | CANCELLED) break ;; esac
    [ $(($(now_ms) - t_start)) -gt $((TIMEOUT * 1000)) ] && break
    count=$(done_count)
    [ "$count" != "$last_done" ] && last_done=$count last_change=$(now_ms)
    # A process stopped in the middle of a commit keeps SQLite's write lock,
    # and every writer waits for it (docs/workers.md): wake it, or wait forever.
    if [ "$STORE" = sqlite ] && [ $(($(now_ms) - last_change)) -gt 20000 ]; then
        say "no progress for 20 s: host3 holds the SQLite store's write lock"
        break
    fi
    sleep 0.5
done
t_end=$(now_ms)
rest=$((STALL_SECS * 1000 - ($(now_ms) - t_stall)))
[ $rest -gt 0 ] && sleep "$(awk -v ms=$rest 'BEGIN { printf "%.3f", ms / 1000 }')"
stall_ms=$(($(now_ms) - t_stall))
if [ "$STALL" = cut ]; then
    ip link set bsh-v3 up
    say "host3's link restored"
else
    kill -CONT "$stalled"
    stopped=""
    say "host3 continued (SIGCONT)"
fi

# A stalled worker finds it was declared dead and exits 1, committing nothing.
# Behind a link that was down, TCP retransmits with a backoff that grows to
# 2 min: the worker may hear from PostgreSQL only that late.
if [ "$STALL" = cut ]; then back_secs=150; else back_secs=30; fi
stall_rc=none
for _ in $(seq $((back_secs * 10))); do kill -0 "$stalled" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$stalled" 2>/dev/null; then
    check "host3's stalled worker exits" 1 "it still runs $back_secs s after it came back; its row in SHOW NODES is $(node_status "$stalled")"
else
    stall_rc=0
    wait "$stalled" || stall_rc=$?
    check "host3's stalled worker exits 1" "$([ "$stall_rc" = 1 ] && echo 0 || echo 1)" "it exited $stall_rc"
fi

# ------------------------------------------------------------------- the end

wait_rc=0
bsh -q -c "BATCH_WAIT '$bid' TIMEOUT='1m'" >/dev/null 2>>"$tmp/logs/client.err" || wait_rc=$?
check "the batch ends DONE with no failed entity" "$wait_rc" "BATCH_WAIT exited $wait_rc"

# The schedule's own batch may still run: let it end before counting.
for _ in $(seq 100); do
    json "JOB_HISTORY 'race'" | jq -e 'length > 0 and all(.[]; .status != "IN_PROCESS")' >/dev/null && break
    sleep 0.2
done
race_bid=$(json "JOB_HISTORY 'race'" | jq -r '.[0].output // empty')
[ -n "$race_bid" ] && bsh -q -c "BATCH_WAIT '$race_bid' TIMEOUT='1m'" >/dev/null 2>&1 || true

# ----------------------------------------------------------------- the checks

json "BATCH_DETAILS '$bid' LIMIT=-1" >"$tmp/details.json"
json "BATCH_SUMMARY '$bid'" >"$tmp/summary.json"
json "JOB_HISTORY 'race'" >"$tmp/job-history.json"

jq -r '.[] | [.entity_id, .node_id, .status, .attempts] | @tsv' "$tmp/details.json" | sort -k1,1 >"$tmp/recorded.tsv"
rows=$(wc -l <"$tmp/recorded.tsv")
completed=$(awk -F'\t' '$3 == "COMPLETED"' "$tmp/recorded.tsv" | wc -l)
distinct=$(cut -f1 "$tmp/recorded.tsv" | uniq | wc -l)
check "one entity row per id" "$([ "$rows" = "$N" ] && [ "$distinct" = "$N" ] && echo 0 || echo 1)" "$rows rows, $distinct ids, $N expected"
check "every entity COMPLETED" "$([ "$completed" = "$N" ] && echo 0 || echo 1)" \
    "$completed of $N; others: $(awk -F'\t' '$3 != "COMPLETED" { print $3 }' "$tmp/recorded.tsv" | sort | uniq -c | tr '\n' ' ')"
missing=$(comm -23 <(seq 1 "$N" | sort) <(cut -f1 "$tmp/recorded.tsv") | wc -l)
check "the recorded ids are the source's" "$([ "$missing" = 0 ] && echo 0 || echo 1)" "$missing ids of the source have no row"

cluster=$(jq -c '[.[] | select(.level == "Cluster")][0]' "$tmp/summary.json")
check "the counters add up" "$(jq -e --argjson n "$N" '.total == $n and .succeeded == $n and .failed == 0 and .remaining == 0' <<<"$cluster" >/dev/null && echo 0 || echo 1)" "cluster row: $cluster"
node_sum=$(jq '[.[] | select(.level == "Node") | .succeeded] | add' "$tmp/summary.json")
check "the nodes' counters add up to the cluster's" "$([ "$node_sum" = "$N" ] && echo 0 || echo 1)" "nodes say $node_sum"

# What ran where: each host's file, and the ids found in more than one line.
cat "$shared"/ran-*.txt | sort | uniq -c | awk '$1 > 1 { print $2 }' >"$tmp/ran-twice.txt"
ran_twice=$(wc -l <"$tmp/ran-twice.txt")
never_ran=$(comm -23 <(seq 1 "$N" | sort) <(cat "$shared"/ran-*.txt | sort -u) | wc -l)
check "every entity ran" "$([ "$never_ran" = 0 ] && echo 0 || echo 1)" "$never_ran ids are in no host's file"
# An id may run twice only when it was in flight on the killed or the stalled
# host: it is in host2's or host3's file, and it is in host1's file at most once.
bad_twice=$(sort "$tmp/ran-twice.txt" | comm -23 - <(cat "$shared/ran-host2.txt" "$shared/ran-host3.txt" 2>/dev/null | sort -u) | wc -l)
twice_on_h1=$(sort "$shared/ran-host1.txt" | uniq -d | wc -l)
check "ids ran twice only after the killed or stalled host ran them" \
    "$([ "$bad_twice" = 0 ] && [ "$twice_on_h1" = 0 ] && echo 0 || echo 1)" \
    "$bad_twice ids ran twice without host2 or host3, $twice_on_h1 ran twice on host1"
# And the store knows it: such an id went back to waiting and was claimed again.
not_reclaimed=$(awk -F'\t' '$4 > 1 { print $1 }' "$tmp/recorded.tsv" | comm -13 - <(sort "$tmp/ran-twice.txt") | wc -l)
check "ids that ran twice were claimed again (attempts > 1)" "$([ "$not_reclaimed" = 0 ] && echo 0 || echo 1)" \
    "$not_reclaimed ran twice with one attempt recorded"
# The node recorded for an entity is one whose file has it.
not_there=0
# shellcheck disable=SC2013 # node names are words
for node in $(cut -f2 "$tmp/recorded.tsv" | sort -u); do
    touch "$shared/ran-$node.txt"
    n=$(awk -F'\t' -v node="$node" '$2 == node { print $1 }' "$tmp/recorded.tsv" | comm -23 - <(sort -u "$shared/ran-$node.txt") | wc -l)
    not_there=$((not_there + n))
done
check "each entity's recorded node ran it" "$([ "$not_there" = 0 ] && echo 0 || echo 1)" "$not_there entities recorded for a node that did not run them"
others=$(cut -f2 "$tmp/recorded.tsv" | sort -u | grep -vx 'host[123]' | tr '\n' ' ' || true)
check "only the three hosts ran entities" "$([ -z "$others" ] && echo 0 || echo 1)" "entities were recorded for $others"
retried=$(awk -F'\t' '$4 > 1' "$tmp/recorded.tsv" | wc -l)

due_utc=$(date -u -d "$due" '+%Y-%m-%dT%H:%M:%S')
runs=$(jq --arg due "$due_utc" '[.[] | select(.due_time[0:19] == $due)] | length' "$tmp/job-history.json")
all_runs=$(jq length "$tmp/job-history.json")
fired=$(wc -l <"$shared/schedule-fired.txt" 2>/dev/null || echo 0)
check "the schedule fired once for its due time" \
    "$([ "$runs" = 1 ] && [ "$all_runs" = 1 ] && [ "$fired" = 1 ] && echo 0 || echo 1)" \
    "JOB_HISTORY has $runs runs for $due ($all_runs in all), its command ran $fired times"
race_status=$(jq -r '.[0].status // "none"' "$tmp/job-history.json")
check "the schedule's run ended PROCESSED" "$([ "$race_status" = PROCESSED ] && echo 0 || echo 1)" "it is $race_status: $(jq -c '.[0]' "$tmp/job-history.json")"

# ---------------------------------------------------------------- the figures

elapsed_ms=$((t_end - t_start))
rate=$(awk -v n="$N" -v ms="$elapsed_ms" 'BEGIN { printf "%.0f", n * 1000 / ms }')
cat <<EOF

  mode               $MODE, store $STORE, host3 $stall_word for $(awk -v ms="$stall_ms" 'BEGIN { printf "%.1f s", ms / 1000 }')
  entities           $N, ${DELAY_MS} ms of work each, $WORKERS workers per host
  elapsed            $(awk -v ms="$elapsed_ms" 'BEGIN { printf "%.1f s", ms / 1000 }') (queued to ended)
  entities/s         $rate
  takeover host2     dead after $dead2 ms, its entities back after $back2 ms (from kill -9; -1: not seen)
  takeover host3     dead after $dead3 ms, its entities back after $back3 ms (from being $stall_word); its worker exited $stall_rc
  per node           $(jq -r '[.[] | select(.level == "Node") | "\(.name) \(.succeeded)"] | join(", ")' "$tmp/summary.json")
  ran twice          $ran_twice ids (in flight on host2 or host3), $retried entities with attempts > 1
  schedule           fired by $(cut -d' ' -f2 "$shared/schedule-fired.txt" 2>/dev/null | tr '\n' ' ')(job run on $(jq -r '.[0].node // "none"' "$tmp/job-history.json"), $(jq -r '.[0].late // "?"' "$tmp/job-history.json") ms late)
EOF

if [ $failures != 0 ]; then
    say "$failures checks failed"
    exit 1
fi
say "all checks passed"
