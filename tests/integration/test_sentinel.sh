#!/usr/bin/env bash
# Redis failover through Sentinel: a primary, a replica (two with
# --durable, so that one is left to confirm writes after the failover)
# and three Sentinels (redis-server --sentinel, as Debian's
# redis-sentinel runs it);
# mapq run and two agents are given only the Sentinels'
# redis+sentinel:// URL. Mid-run the primary is killed with -9; the
# Sentinels promote the replica, and every process must find it, go on
# and finish the run. Twice: as is (replication is asynchronous, so the
# last writes acknowledged before the kill may be gone) and with --durable
# (every write waits for the replica). Each prints subtasks lost (missing
# from the output), results recorded twice, subtasks that ran again and
# the time to recover; with --durable, lost and recorded twice must be 0.
# Also: a Sentinel URL that names no known primary gets a clear error.
# Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

N=300
MASTER=mq

# start_cluster NAME REPLICAS: a primary ($P1), its replicas (ports in
# REPLICAS), three Sentinels ($S1 $S2 $S3) watching it (quorum 2, down
# after 1 s);
# sets URL.
start_cluster() {
    local d=$TMP/cluster.$1 i port
    mkdir -p "$d"
    P1=$(free_port)
    redis-server --port "$P1" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$d" >"$d/p1.log" 2>&1 &
    PRIMARY_PID=$!
    PIDS+=($PRIMARY_PID)
    REPLICAS=()
    for i in $(seq 1 "$2"); do
        port=$(free_port)
        mkdir -p "$d/r$i"
        redis-server --port "$port" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$d/r$i" --replicaof 127.0.0.1 "$P1" \
            >"$d/r$i.log" 2>&1 &
        PIDS+=($!)
        REPLICAS+=("$port")
    done
    wait_for 10 redis-cli -p "$P1" PING || { cat "$d/p1.log"; exit 1; }
    URL="redis+sentinel://"
    for i in 1 2 3; do
        port=$(free_port)
        cat >"$d/s$i.conf" <<EOF
port $port
bind 127.0.0.1
dir $d
sentinel monitor $MASTER 127.0.0.1 $P1 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 10000
EOF
        redis-server "$d/s$i.conf" --sentinel >"$d/s$i.log" 2>&1 &
        PIDS+=($!)
        eval "S$i=$port"
        URL="${URL}127.0.0.1:$port,"
    done
    URL="${URL%,}/$MASTER"
    # Before any fault: the replica is in sync and the Sentinels know
    # each other (a failover needs a quorum and a leader).
    check "$1: the replicas are in sync" 0 "$(wait_for 20 synced; echo $?)"
    check "$1: the sentinels know each other" 0 \
        "$(wait_for 30 sentinels_met; echo $?)"
}
synced() {
    local p
    for p in "${REPLICAS[@]}"; do
        redis-cli -p "$p" INFO replication | grep -q '^master_link_status:up' ||
            return 1
    done
}
sentinels_met() {
    local i
    for i in "$S1" "$S2" "$S3"; do
        [ "$(redis-cli -p "$i" SENTINEL sentinels "$MASTER" | grep -c '^name$')" -ge 2 ] ||
            return 1
    done
}
# The primary the first Sentinel names.
primary_port() {
    redis-cli -p "$S1" SENTINEL get-master-addr-by-name "$MASTER" | sed -n 2p
}

cat >"$TMP/fo.yaml" <<'EOF'
name: fo
inputs:
  xs: {type: "list[int]"}
  dir: {type: str}
tasks:
  step:
    inputs: {x: int, dir: str}
    output: int
    command: [sh, -c, 'echo "$MAPQ_IN_x" >>"$MAPQ_IN_dir/ran"; sleep 0.05; echo "$MAPQ_IN_x"']
nodes:
  n: {map: step, over: {x: $inputs.xs}, with: {dir: $inputs.dir}}
output: $n
EOF
XS="[$(seq -s , 0 $((N - 1)))]"

ran_at_least() { [ "$(wc -l <"$1/ran" 2>/dev/null || echo 0)" -ge "$2" ]; }
ended() { exited "$1"; }

# promoted: whether the Sentinels name one of the replicas.
promoted() {
    local p now
    now=$(primary_port)
    for p in "${REPLICAS[@]}"; do [ "$now" = "$p" ] && return 0; done
    return 1
}

# failover MODE REPLICAS [--durable]: one run through a primary killed
# mid-run.
failover() {
    local mode=$1 d flag=${3:-} agents=() pid rc t0 t1 lost twice again id
    start_cluster "$mode" "$2"
    d=$TMP/run.$mode
    mkdir -p "$d"
    for i in 1 2; do
        "$AGENT" --redis "$URL" --name "fo-$mode-$i" --slots 4 --lease 10s \
            $flag >>"$d/agents.log" 2>&1 &
        agents+=($!)
        PIDS+=($!)
    done
    "$MAPQ" run "$TMP/fo.yaml" --redis "$URL" $flag --input "xs=$XS" \
        --input "dir=\"$d\"" >"$d/out" 2>"$d/err" &
    pid=$!
    PIDS+=($pid)
    check "$mode: the run gets going" 0 "$(wait_for 60 ran_at_least "$d" $((N / 4)); echo $?)"
    kill -9 "$PRIMARY_PID"
    t0=$(date +%s.%N)
    check "$mode: the sentinels promote a replica" 0 \
        "$(wait_for 30 promoted; echo $?)"
    check "$mode: the run ends" 0 "$(wait_for 120 ended "$pid"; echo $?)"
    t1=$(date +%s.%N)
    if ! ended "$pid"; then
        kill -9 "$pid"
        sed 's/^/#   /' "$d/err" | tail -n 20
        tail -n 20 "$d/agents.log" | sed 's/^/#   /'
    fi
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    check "$mode: mapq run exits 0" 0 "$rc"
    lost=$(python3 - "$d/out" "$N" <<'PY'
import json, sys
try:
    got = json.load(open(sys.argv[1]))
except Exception:
    got = []
n = int(sys.argv[2])
print(sum(1 for i in range(n) if i >= len(got) or got[i] != i))
PY
)
    id=$(exec_of "$d/err")
    twice=$(MAPQ_REDIS_URL="$URL" "$MAPQ" logs "$id" n 2>/dev/null |
        awk '/SUCCEEDED$/ { n[$1]++ }
             END { t = 0; for (k in n) if (n[k] > 1) t++; print t }')
    check "$mode: mapq logs shows a succeeded attempt of each subtask" "$N" \
        "$(MAPQ_REDIS_URL="$URL" "$MAPQ" logs "$id" n 2>/dev/null |
            awk '/SUCCEEDED$/ { print $1 }' | sort -u | wc -l)"
    again=$(( $(sort "$d/ran" | wc -l) - $(sort -u "$d/ran" | wc -l) ))
    echo "# $mode: lost $lost, recorded twice $twice, ran again $again," \
        "recovered in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    if [ -n "$flag" ]; then
        check "$mode: no subtask lost" 0 "$lost"
        check "$mode: no result recorded twice" 0 "$twice"
    fi
    for pid in "${agents[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    cp "$d/agents.log" "$TMP/agents.log"
}

failover async 1
failover durable 2 --durable

# A name no Sentinel monitors: one clear error, the exit status of an
# unreachable Redis.
"$MAPQ" ls --redis "redis+sentinel://127.0.0.1:$S1/nosuch" >/dev/null 2>"$TMP/bad.err"
check "an unknown primary name: exit 3" 3 "$?"
check "an unknown primary name: says why" 1 \
    "$(grep -c "no sentinel named the primary: sentinel 127.0.0.1:$S1: knows no primary 'nosuch'" "$TMP/bad.err")"
finish
