#!/usr/bin/env bash
# Resources: an agent starts a command only when its task's declared
# resources fit in what --cpus and --mem leave free; declared CPUs are
# pinned to CPUs of the agent's own; a task larger than one agent goes to a
# larger one; a task that fits no live agent fails with one clear error
# instead of waiting forever. Real processes; waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis

# Every attempt marks itself running in $dir, notes how many were running
# then (the most it sees is the concurrency) and its allowed CPUs, and
# ends when the file go exists (or after 6 s).
cat >"$TMP/res.yaml" <<'EOF'
name: res
inputs:
  xs: {type: "list[int]"}
  dir: {type: str}
  cpu: {type: float, default: 1}
tasks:
  t:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        touch "$d/running.$MAPQ_INDEX"
        ls "$d" | grep -c '^running\.' >>"$d/seen"
        grep '^Cpus_allowed_list:' /proc/self/status | cut -f2 >>"$d/cpus"
        i=0
        while [ ! -e "$d/go" ] && [ $i -lt 300 ]; do
            sleep 0.02; i=$((i + 1))
        done
        rm -f "$d/running.$MAPQ_INDEX"
        echo "$MAPQ_IN_x"
nodes:
  n: {map: t, over: {x: $inputs.xs}, with: {dir: $inputs.dir}, @RES@}
output: $n
EOF
# workflow NAME RESOURCES: res.yaml with the node's resources override.
workflow() { sed "s/@RES@/resources: $2/" "$TMP/res.yaml" >"$TMP/$1.yaml"; }
count_running() { ls "$1" | grep -c '^running\.'; }
running_at_least() { [ "$(count_running "$1")" -ge "$2" ]; }
max_seen() { sort -n "$1/seen" | tail -n 1; }
# settled LEASED QUEUED: that many leased and queued.
settled() {
    [ "$(lease_count)" = "$1" ] &&
        [ "$(queue_len default nc)" = "$2" ]
}
stop_agents() {
    kill -TERM "${PIDS[@]}" 2>/dev/null
    wait "${PIDS[@]}" 2>/dev/null
    PIDS=()
}
# start_run NAME N: mapq run of NAME.yaml over 0..N-1 with its own dir.
start_run() {
    mkdir -p "$TMP/$1"
    "$MAPQ" run "$TMP/$1.yaml" --input "xs=[$(seq -s, 0 $(($2 - 1)))]" \
        --input dir="$TMP/$1" >"$TMP/$1.out" 2>"$TMP/$1.err" &
    run_pid=$!
}
ncpu=$(nproc)

# ---- cpu: 1 on an agent with 4 slots and --cpus 2 -------------------------
workflow cpu "{cpu: 1}"
"$AGENT" --name res-a --slots 4 --cpus 2 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
start_run cpu 6
wait_for 20 running_at_least "$TMP/cpu" 2
# The agent claims for its free slots, and hands back what does not fit:
# then two are leased and four queued until one of the two ends.
wait_for 20 settled 2 4
check "cpu: two of four slots run (2 CPUs, 1 each)" "2" \
    "$(count_running "$TMP/cpu")"
touch "$TMP/cpu/go"
wait_for 40 exited "$run_pid"
wait "$run_pid"
check "cpu: mapq run exits 0 with every result" "0 [0,1,2,3,4,5]" \
    "$? $(tr -d ' \n' <"$TMP/cpu.out")"
check "cpu: never more than two at once" "2" "$(max_seen "$TMP/cpu")"
if [ "$ncpu" -ge 2 ]; then
    check "cpu: each attempt was pinned to one CPU" "6" \
        "$(grep -c '^[0-9]*$' "$TMP/cpu/cpus")"
else
    echo "ok - cpu: pinning not checked: this host has one CPU # skip"
fi
stop_agents

# ---- mem: 600Mi on an agent with --mem 1Gi --------------------------------
workflow mem "{mem: 600Mi}"
"$AGENT" --name res-m --slots 4 --mem 1Gi >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
start_run mem 3
wait_for 20 running_at_least "$TMP/mem" 1
wait_for 20 settled 1 2
check "mem: one at a time (1Gi, 600Mi each)" "1" "$(count_running "$TMP/mem")"
touch "$TMP/mem/go"
wait_for 40 exited "$run_pid"
wait "$run_pid"
check "mem: mapq run exits 0" "0" "$?"
check "mem: never two at once" "1" "$(max_seen "$TMP/mem")"
stop_agents

# ---- a task for the larger of two agents ----------------------------------
workflow big "{cpu: 3}"
"$AGENT" --name res-small --slots 2 --cpus 1 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
"$AGENT" --name res-big --slots 2 --cpus 4 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
both_live() { [ "$(redis_cli ZCARD "$P:agents")" -ge 2 ]; }
wait_for 10 both_live
mkdir -p "$TMP/big" && touch "$TMP/big/go"
start_run big 4
wait_for 40 exited "$run_pid"
wait "$run_pid"
check "larger agent: mapq run exits 0 with every result" "0 [0,1,2,3]" \
    "$? $(tr -d ' \n' <"$TMP/big.out")"
id=$(exec_of "$TMP/big.err")
"$MAPQ" logs "$id" n >"$TMP/big.logs" 2>&1
check "larger agent: every attempt ran on the agent with 4 CPUs" "4 0" \
    "$(grep -c 'attempt 1: agent res-big,' "$TMP/big.logs") $(grep -c 'agent res-small' "$TMP/big.logs")"

# ---- a task no live agent fits --------------------------------------------
workflow huge "{cpu: 8}"
mkdir -p "$TMP/huge" && touch "$TMP/huge/go"
start_run huge 3
wait_for 30 exited "$run_pid"
wait "$run_pid"
check "fits nowhere: mapq run exits 1" "1" "$?"
check "fits nowhere: the error names the resources and the largest agent" \
    "yes" "$(grep -q "resources {cpu: 8} fit no live agent of queue 'default' (2 serve it; the largest has 4 CPUs" "$TMP/huge.err" && echo yes || echo no)"
check "fits nowhere: none of its subtasks ran" "no" \
    "$([ -e "$TMP/huge/seen" ] && echo ran || echo no)"
check "fits nowhere: nothing left queued or leased" "0 0" \
    "$(queue_len default nc) $(lease_count)"
check "the agents still run" "2" \
    "$(for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && echo x; done | wc -l | tr -d ' ')"
finish
