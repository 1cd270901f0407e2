#!/usr/bin/env bash
# Recovery of the scheduler side: `mapq run` killed with -9 while a
# `mapq scheduler` runs (the scheduler adopts the execution once its lease
# expires and finishes it), and redis-server restarted in the middle of a
# map, gracefully and with kill -9 (appendonly yes): agents and the driver
# reconnect, reconcile, and the execution completes with every output
# correct and each result recorded once. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

# A map that doubles each element slowly enough to be caught mid-way, and
# a node after it that sums the doubled list (so that a node starts after
# the takeover, from outputs read back from Redis).
cat >"$TMP/double.yaml" <<'EOF'
name: double
inputs:
  xs: {type: "list[int]"}
tasks:
  double:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'sleep 0.02; echo $((MAPQ_IN_x * 2))']
  total:
    inputs: {ys: "list[int]"}
    output: int
    command: [sh, -c, 'echo "$MAPQ_IN_ys" | tr -d "[]" | tr "," "\n" | awk "{s+=\$1} END {print s}"']
nodes:
  doubled: {map: double, over: {x: $inputs.xs}, concurrency: 8}
  sum: {task: total, with: {ys: $doubled}}
output: {doubled: $doubled, sum: $sum}
EOF

# list N: the JSON list [0, 1, ..., N-1]; expected N: the output for it.
list() { seq -s, 0 $(($1 - 1)) | sed 's/^/[/; s/$/]/'; }
expected() {
    local n=$1
    echo "{\"doubled\":$(seq -s, 0 2 $((2 * n - 2)) | sed 's/^/[/; s/$/]/'),\"sum\":$((n * (n - 1)))}"
}
results() { redis_cli HLEN "$MAPQ_NAMESPACE:r:$1:0"; }
has_results() { [ "$(results "$1")" -ge "$2" ]; }
state_is() { [ "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$1" state)" = "$2" ]; }
now_ms() { date +%s%3N; }

# ---- scheduler loss ---------------------------------------------------------
start_redis --own # restarted below
start_agents 3 --lease 2s
"$MAPQ" scheduler --lease 2s >"$TMP/scheduler.log" 2>&1 &
PIDS+=($!)

"$MAPQ" run "$TMP/double.yaml" --input xs="$(list 200)" --lease 2s \
    >"$TMP/s.out" 2>"$TMP/s.err" &
run_pid=$!
wait_for 10 grep -q "^mapq: execution" "$TMP/s.err"
id=$(exec_of "$TMP/s.err")
wait_for 30 has_results "$id" 40
kill -9 "$run_pid"
wait "$run_pid" 2>/dev/null
killed_at=$(now_ms)
check "scheduler loss: mapq run was killed mid-map" "yes" \
    "$([ "$(results "$id")" -lt 200 ] && echo yes || echo no)"
wait_for 20 grep -q "adopting execution $id" "$TMP/scheduler.log"
check "scheduler loss: mapq scheduler adopts the execution" "yes" \
    "$(grep -q "adopting execution $id" "$TMP/scheduler.log" && echo yes || echo no)"
echo "# adopted $(( $(now_ms) - killed_at )) ms after the kill (owner lease 2 s)"
wait_for 20 grep -q "node 'doubled' reconciled" "$TMP/scheduler.log"
check "scheduler loss: the adopter rebuilt the node's state from redis" "1" \
    "$(grep -c "execution $id: node 'doubled' reconciled" "$TMP/scheduler.log")"
wait_for 60 state_is "$id" succeeded
check "scheduler loss: the execution succeeds" "succeeded" \
    "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$id" state)"
check "scheduler loss: mapq result shows the full output" "$(expected 200)" \
    "$("$MAPQ" result "$id" 2>&1)"
check "scheduler loss: each subtask's result is recorded once" "200" \
    "$(results "$id")"
check "scheduler loss: nothing left queued or leased" "0 0" \
    "$(queue_len default nc) $(lease_count)"
check "scheduler loss: it is no longer owned" "0" \
    "$(redis_cli ZCARD "$MAPQ_NAMESPACE:owners")"

# A driver that stalls past its lease (SIGSTOP) loses the execution: the
# scheduler adopts it, and the stalled driver, once it runs again, takes no
# event meant for the new owner (they go to the new epoch's list) and
# stops following it with exit 3.
"$MAPQ" run "$TMP/double.yaml" --input xs="$(list 300)" --lease 1s \
    >"$TMP/p.out" 2>"$TMP/p.err" &
run_pid=$!
wait_for 10 grep -q "^mapq: execution" "$TMP/p.err"
id=$(exec_of "$TMP/p.err")
wait_for 30 has_results "$id" 30
kill -STOP "$run_pid"
wait_for 20 grep -q "adopting execution $id" "$TMP/scheduler.log"
kill -CONT "$run_pid"
wait_for 20 exited "$run_pid"
wait "$run_pid"
check "stalled driver: it stops following, exit 3" "3 1" \
    "$? $(grep -c "execution $id: stopped following it: another scheduler took it over" "$TMP/p.err")"
wait_for 60 state_is "$id" succeeded
check "stalled driver: the new owner finishes with the full output" \
    "succeeded $(expected 300) 300" \
    "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$id" state) $("$MAPQ" result "$id" 2>&1) $(results "$id")"

# A second scheduler does not take an execution whose owner is alive.
"$MAPQ" run "$TMP/double.yaml" --input xs="$(list 50)" --lease 2s \
    >"$TMP/o.out" 2>"$TMP/o.err"
check "an owned execution is not adopted: mapq run finishes it itself" \
    "0 $(expected 50)" "$? $(cat "$TMP/o.out")"
check "an owned execution is not adopted: the scheduler never took it" "0" \
    "$(grep -c "adopting execution $(exec_of "$TMP/o.err")" "$TMP/scheduler.log")"

# ---- redis restart ------------------------------------------------------------
# These need a redis-server of our own to restart, with appendonly yes.
if [ -n "${MAPQ_TEST_REDIS_URL:-}" ]; then
    echo "# redis restart: skipped with MAPQ_TEST_REDIS_URL (not ours to restart)"
    finish
fi
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()

AOF="$TMP/aof"
mkdir "$AOF"
start_aof() {
    redis-server --port 0 --unixsocket "$AOF/redis.sock" --save '' \
        --appendonly yes --appendfsync everysec --dir "$AOF" \
        >>"$AOF/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_for 10 redis_cli PING
}
kill -TERM "$REDIS_PID"
wait "$REDIS_PID"
REDIS_PID=
export MAPQ_REDIS_URL="unix://$AOF/redis.sock"
redis_cli() { redis-cli -s "$AOF/redis.sock" "$@"; }
start_aof
start_agents 3 --lease 2s

# restart_during HOW N: runs a map of N elements and restarts redis-server
# (SIGTERM or SIGKILL) once a quarter of the results are in.
restart_during() {
    local how=$1 n=$2 run_pid id rc before
    "$MAPQ" run "$TMP/double.yaml" --input xs="$(list "$n")" \
        >"$TMP/$how.out" 2>"$TMP/$how.err" &
    run_pid=$!
    wait_for 10 grep -q "^mapq: execution" "$TMP/$how.err"
    id=$(exec_of "$TMP/$how.err")
    wait_for 30 has_results "$id" $((n / 4))
    before=$(results "$id")
    kill -"$how" "$REDIS_PID"
    wait "$REDIS_PID" 2>/dev/null
    check "redis $how: the map was cut mid-way" "yes" \
        "$([ "$before" -lt "$n" ] && echo yes || echo no)"
    echo "# redis $how with $before of $n results recorded"
    start_aof
    wait_for 90 exited "$run_pid"
    wait "$run_pid"
    rc=$?
    check "redis $how: mapq run completes and exits 0" "0" "$rc"
    check "redis $how: the driver reconnected and rebuilt its state" "yes" \
        "$([ "$(grep -c "reconnected to redis; rebuilding" "$TMP/$how.err")" -ge 1 ] && echo yes || echo no)"
    check "redis $how: every output is correct" "$(expected "$n")" \
        "$(cat "$TMP/$how.out")"
    check "redis $how: each result recorded once" "$n" "$(results "$id")"
    check "redis $how: the execution is recorded succeeded" "succeeded" \
        "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$id" state)"
    check "redis $how: nothing left queued or leased" "0 0" \
        "$(queue_len default nc) $(lease_count)"
}
restart_during TERM 300
restart_during KILL 300
check "agents survived both restarts" "3" \
    "$(for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && echo x; done | wc -l | tr -d ' ')"
finish
