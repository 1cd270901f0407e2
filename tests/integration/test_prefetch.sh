#!/usr/bin/env bash
# Prefetch: an agent running short commands holds more subtasks than its
# slots (leased, counted in flight). A kill -9 of an agent holding them
# loses none; a stopping agent hands them back at once, costing them no
# attempt; and a node's concurrency stays an exact window. Real processes;
# waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis

hlen_at_least() { [ "$(redis_cli HLEN "$1")" -ge "$2" ]; }
leased_at_least() { [ "$(lease_count)" -ge "$1" ]; }
leased_exactly() { [ "$(lease_count)" = "$1" ]; }
exists() { [ -e "$1" ]; }

# A short task (a few ms) until the file block exists: then the attempt
# that starts next, if it is its subtask's first, waits until unblock
# exists. Every attempt logs "index attempt".
cat >"$TMP/short.yaml" <<'EOF'
name: short
inputs:
  xs: {type: "list[int]"}
  dir: {type: str}
tasks:
  t:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        echo "$MAPQ_INDEX $MAPQ_ATTEMPT" >>"$d/attempts"
        if [ -e "$d/block" ] && [ "$MAPQ_ATTEMPT" = 1 ]; then
            touch "$d/blocked"
            i=0
            while [ ! -e "$d/unblock" ] && [ $i -lt 3000 ]; do
                sleep 0.02; i=$((i + 1))
            done
        fi
        echo "$MAPQ_IN_x"
nodes:
  n: {map: t, over: {x: $inputs.xs}, with: {dir: $inputs.dir}}
output: $n
EOF

# start_run NAME N: mapq run of short.yaml over 0..N-1 in $TMP/NAME.
start_run() {
    mkdir -p "$TMP/$1"
    "$MAPQ" run "$TMP/short.yaml" --input "xs=[$(seq -s, 0 $(($2 - 1)))]" \
        --input dir="$TMP/$1" >"$TMP/$1.out" 2>"$TMP/$1.err" &
    run_pid=$!
    wait_for 10 test -s "$TMP/$1.err"
    id=$(exec_of "$TMP/$1.err")
}

# ---- kill -9 of an agent holding prefetched subtasks ---------------------
# One agent with one slot learns the task is short, then its next attempt
# blocks while it holds prefetched subtasks: more leases than slots. How
# many more depends on how fast this machine runs sh (a batch is about
# 100 ms of work, at least 2), so the test asks for at least one more.
# A claim prefetches only while the list keeps 8 or more for others: N
# leaves plenty when the block lands, however many the agent ran while
# the test polled (a fast agent runs 50 before a loaded machine's poll
# sees 8 results).
N=200
"$AGENT" --name pre-a --slots 1 --lease 2s >>"$TMP/agents.log" 2>&1 &
a=$!
start_run kill $N
wait_for 20 hlen_at_least "$P:r:$id:0" 8
touch "$TMP/kill/block"
wait_for 20 exists "$TMP/kill/blocked"
wait_for 10 leased_at_least 2
held=$(lease_count)
check "kill -9: the agent holds prefetched subtasks beyond its one slot" \
    "yes" "$([ "$held" -ge 2 ] && echo yes || echo "no: $held")"
kill -9 "$a"
wait "$a" 2>/dev/null
touch "$TMP/kill/unblock"
start_agents 1
wait_for 60 exited "$run_pid"
wait "$run_pid"
rc=$?
check "kill -9: mapq run ends with exit 0" "0" "$rc"
check "kill -9: the output is complete and in order" \
    "[$(seq -s, 0 $((N - 1)))]" "$(tr -d ' \n' <"$TMP/kill.out")"
check "kill -9: each result recorded exactly once" "$N" \
    "$(redis_cli HLEN "$P:r:$id:0")"
check "kill -9: no lease is left" "0" "$(lease_count)"
for p in "${PIDS[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null; done
PIDS=()

# ---- a stopping agent hands its prefetch back at once ----------------------
# The same, then SIGTERM: only the running subtask keeps its lease (for
# its grace); the prefetched ones are back on the list at once, and later
# run as first attempts.
"$AGENT" --name pre-b --slots 1 --grace 1s >>"$TMP/agents.log" 2>&1 &
b=$!
start_run drain $N
wait_for 20 hlen_at_least "$P:r:$id:0" 8
touch "$TMP/drain/block"
wait_for 20 exists "$TMP/drain/blocked"
wait_for 10 leased_at_least 2
held=$(lease_count)
check "drain: the agent holds prefetched subtasks when it is stopped" \
    "yes" "$([ "$held" -ge 2 ] && echo yes || echo "no: $held")"
kill -TERM "$b"
if wait_for 3 leased_exactly 1; then back=yes; else back="no: $(lease_count) leased"; fi
check "drain: the prefetched subtasks go back at once, the running one stays" \
    "yes" "$back"
wait_for 15 exited "$b"
wait "$b" 2>/dev/null
touch "$TMP/drain/unblock"
start_agents 1
wait_for 60 exited "$run_pid"
wait "$run_pid"
check "drain: mapq run ends with exit 0" "0" "$?"
check "drain: the output is complete" "[$(seq -s, 0 $((N - 1)))]" \
    "$(tr -d ' \n' <"$TMP/drain.out")"
# Only the attempt that was running when the agent stopped ran twice.
check "drain: a handed-back subtask runs as its first attempt" "1" \
    "$(awk '$2 > 1' "$TMP/drain/attempts" | wc -l)"
for p in "${PIDS[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null; done
PIDS=()

# ---- concurrency stays an exact window -------------------------------------
# concurrency 3 on two agents of two slots each, short subtasks: never more
# than 3 leased (running or prefetched) at once, and the window fills.
cat >"$TMP/window.yaml" <<'EOF'
name: window
inputs: {xs: {type: "list[int]"}}
tasks:
  t:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'sleep 0.02; echo "$MAPQ_IN_x"']
nodes:
  n: {map: t, over: {x: $inputs.xs}, concurrency: 3}
output: $n
EOF
start_agents 2
M=80
"$MAPQ" run "$TMP/window.yaml" --input "xs=[$(seq -s, 0 $((M - 1)))]" \
    >"$TMP/window.out" 2>"$TMP/window.err" &
run_pid=$!
max=0
while ! exited "$run_pid"; do
    n=$(redis_cli EVAL "local n = 0
        for _, a in ipairs(redis.call('ZRANGE', ARGV[2] .. ':leases', 0, -1)) do
            n = n + redis.call('HLEN', ARGV[2] .. ':lease:' .. a)
        end
        for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
            n = n + redis.call('LLEN', ARGV[1] .. string.match(m, '^[^/]+'))
        end
        return n" 1 "$P:qx:default:nc" "$P:q:default:nc:" "$P")
    [ "$n" -gt "$max" ] && max=$n
done
wait "$run_pid"
check "window: mapq run ends with exit 0" "0" "$?"
check "window: in flight (leased or queued) never above 3, and 3 reached" \
    "3" "$max"
check "window: the output is complete" "[$(seq -s, 0 $((M - 1)))]" \
    "$(tr -d ' \n' <"$TMP/window.out")"
finish
