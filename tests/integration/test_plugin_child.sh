#!/usr/bin/env bash
# A plugin subtask lost once runs again in a child process (so that a
# crash costs only its own attempt), and that child is watched from the
# agent's loop under the task's timeout: a plugin call that never returns
# blocks neither the agent's other subtasks nor its heartbeat, and ends
# TIMED_OUT. Real processes; waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis

results_at_least() { [ "$(redis_cli HLEN "$P:r:$1:0")" -ge "$2" ]; }
leased() { [ "$(lease_count)" -ge "$1" ]; }

cat >"$TMP/hang.yaml" <<'EOF'
name: hang
inputs: {xs: {type: "list[int]"}, bad: {type: int}}
tasks:
  h:
    inputs: {x: int, bad: int}
    output: int
    timeout: 8s
    plugin: {library: mapq_fault_plugin.so, symbol: hang_on}
nodes:
  n: {map: h, over: {x: $inputs.xs}, with: {bad: $inputs.bad}, min_success_ratio: 0.9}
output: $n
EOF
# Agent a claims the ten subtasks in one batch, runs the plugin on its loop
# (first attempts) and hangs on 3, its results for 0-2 still unsent: every
# subtask it holds loses its lease and runs again (s = 1) on b, where each
# call runs in a child.
"$AGENT" --name pc-a --slots 1 --lease 2s >>"$TMP/agents.log" 2>&1 &
a=$!
"$MAPQ" run "$TMP/hang.yaml" --input "xs=[$(seq -s, 0 9)]" --input bad=3 \
    >"$TMP/hang.out" 2>"$TMP/hang.err" &
run_pid=$!
wait_for 10 test -s "$TMP/hang.err"
id=$(exec_of "$TMP/hang.err")
wait_for 10 leased 10
"$AGENT" --name pc-b --slots 1 --lease 2s >>"$TMP/agents.log" 2>&1 &
b=$!
PIDS+=("$b")
kill -9 "$a"
# On b, the other subtasks finish while the call on 3 still hangs.
if wait_for 6 results_at_least "$id" 9; then others=yes; else others="no: $(redis_cli HLEN "$P:r:$id:0") recorded"; fi
check "the other subtasks finish while a plugin call hangs in its child" \
    "yes" "$others"
# b's heartbeat goes on meanwhile (it holds a subtask: every second): its
# score in P:agents moves on twice while the call on 3 still hangs.
beat() { redis_cli ZSCORE "$P:agents" pc-b; }
moved() { [ "$(beat)" != "$1" ]; }
b0=$(beat)
wait_for 3 moved "$b0"
b1=$(beat)
wait_for 3 moved "$b1"
check "the agent's heartbeat goes on while the call hangs" "yes" \
    "$([ "$(beat)" != "$b1" ] && [ "$b1" != "$b0" ] &&
        [ "$(redis_cli HLEN "$P:r:$id:0")" = 9 ] && echo yes || echo no)"
wait_for 30 exited "$run_pid"
wait "$run_pid"
check "the hung call ends TIMED_OUT at its timeout; the run succeeds" \
    "0 [0,1,2,null,4,5,6,7,8,9]" "$? $(tr -d ' \n' <"$TMP/hang.out")"
"$MAPQ" logs "$id" n 3 >"$TMP/logs3" 2>&1
check "its log says TIMED_OUT" "yes" \
    "$(grep -q 'TIMED_OUT' "$TMP/logs3" && echo yes || echo "no: $(cat "$TMP/logs3")")"
finish
