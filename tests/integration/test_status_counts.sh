#!/usr/bin/env bash
# RUNNING and QUEUED counts: a subtask an agent holds (running, or
# prefetched) counts as running, the rest of those not ended as queued,
# from the held counts the function library keeps (h:<k>). One agent with
# 2 slots and a map of 6 sleeps: mapq status --json shows some running and
# some queued, never more running than the agent can hold, and counts that
# add up to the total; the driver's own progress record (p:<k>, what the
# progress bar shows) tells running from queued too; at the end nothing
# runs. An agent killed with -9 while it holds subtasks: once its leases
# expire and the reaper queues them again, running drops back, and when
# another agent has finished them the held count is 0: nothing leaks.
# Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
P="$MAPQ_NAMESPACE"

cat >"$TMP/six.yaml" <<'EOF'
name: six
inputs:
  xs: {type: "list[int]", default: [1, 2, 3, 4, 5, 6]}
tasks:
  nap: {inputs: {x: int}, output: int, command: [sh, -c, 'sleep 1; echo "$MAPQ_IN_x"']}
nodes:
  n: {map: nap, over: {x: $inputs.xs}}
output: $n
EOF

# counts EXEC: "running queued total sum status" of node n, from mapq
# status --json.
counts() {
    "$MAPQ" status "$1" --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = d["nodes"][0]["counts"]
print(c["running"], c["queued"], d["nodes"][0]["total"], sum(c.values()), d["status"])' 2>/dev/null
}
# seen EXEC: true once status has shown a running and a queued subtask at
# the same time; writes what it saw to $TMP/seen, and makes
# $TMP/driver_seen once the driver's progress showed a running one.
seen() {
    driver_running "$1" && : >"$TMP/driver_seen"
    local c
    c=$(counts "$1")
    echo "$c" >>"$TMP/seen"
    set -- $c
    [ "${1:-0}" -ge 1 ] && [ "${2:-0}" -ge 1 ]
}
# driver_running EXEC: true once the driver's progress record p:0 shows a
# running subtask (its QUEUED and RUNNING are the 3rd and 4th elements).
driver_running() {
    [ "$(redis_cli EVAL "local p = redis.call('HGET', KEYS[1], 'p:0')
        if not p then return -1 end
        return cmsgpack.unpack(p)[4]" 1 "$P:x:$1")" -ge 1 ] 2>/dev/null
}

# ---- running and queued while one agent works ------------------------------
start_agents 1
timeout -s KILL 90 "$MAPQ" run "$TMP/six.yaml" >"$TMP/run.out" 2>"$TMP/run.err" &
run_pid=$!
has_id() { [ -n "$(exec_of "$TMP/run.err")" ]; }
wait_for 20 has_id
x=$(exec_of "$TMP/run.err")
: >"$TMP/seen"
wait_for 30 seen "$x"
check "status --json: at some point running >= 1 and queued >= 1" "0" "$?"
check "status --json: never more running than the agent's 2 slots (6 queued at most: no prefetch)" "0" \
    "$(awk '$1 > 2' "$TMP/seen" | wc -l | tr -d ' ')"
check "status --json: running + queued + ended add up to the total, every time" "0" \
    "$(awk 'NF >= 4 && $3 != $4' "$TMP/seen" | wc -l | tr -d ' ')"
driver_seen() { [ -e "$TMP/driver_seen" ] || driver_running "$1"; }
wait_for 30 driver_seen "$x"
check "the driver's progress (p:0, the progress bar's figures) shows running subtasks" "0" "$?"
wait_for 60 exited "$run_pid"
wait "$run_pid"
check "the run succeeds" "0 [1,2,3,4,5,6]" "$? $(tr -d ' \n' <"$TMP/run.out")"
check "after the run: nothing running or queued, 6 of 6" "0 0 6 6 succeeded" "$(counts "$x")"
check "after the run: the held count is 0" "0" "$(redis_cli HGET "$P:x:$x" h:0)"
check "after the run: text status names no RUNNING or QUEUED" "0" \
    "$("$MAPQ" status "$x" | grep -c -E 'RUNNING|QUEUED')"

# ---- an agent killed while it holds subtasks --------------------------------
sed 's/sleep 1;/sleep 2;/' "$TMP/six.yaml" >"$TMP/six2.yaml"
"$AGENT" --name it-doomed --slots 2 --lease 2s >>"$TMP/agents.log" 2>&1 &
doomed=$!
PIDS+=($doomed)
# Only the doomed agent serves the queue now.
for p in "${PIDS[@]}"; do
    if [ "$p" != "$doomed" ]; then
        kill -TERM "$p" 2>/dev/null
        wait_for 10 exited "$p"
    fi
done
timeout -s KILL 120 "$MAPQ" run "$TMP/six2.yaml" >"$TMP/run2.out" 2>"$TMP/run2.err" &
run2=$!
has_id2() { [ -n "$(exec_of "$TMP/run2.err")" ]; }
wait_for 20 has_id2
x2=$(exec_of "$TMP/run2.err")
holds_two() { set -- $(counts "$x2"); [ "${1:-0}" = 2 ]; }
wait_for 30 holds_two
check "the doomed agent holds 2 (status: running 2)" "0" "$?"
kill -KILL "$doomed"
wait "$doomed" 2>/dev/null
# Its leases expire within 2 s; the driver reaps every 0.5 s.
none_running() { set -- $(counts "$x2"); [ "${1:-1}" = 0 ] && [ "${2:-0}" = 6 ]; }
wait_for 20 none_running
check "after the leases expired and the reaper queued them again: running 0, queued 6" "0" "$?"
check "and the held count is back to 0" "0" "$(redis_cli HGET "$P:x:$x2" h:0)"
start_agents 1
wait_for 90 exited "$run2"
wait "$run2"
check "another agent finishes the run" "0 [1,2,3,4,5,6]" "$? $(tr -d ' \n' <"$TMP/run2.out")"
check "after it: nothing running, the held count 0 (no lease leaked)" "0 0 6 6 succeeded 0" \
    "$(counts "$x2") $(redis_cli HGET "$P:x:$x2" h:0)"
finish
