#!/usr/bin/env bash
# What users see of an execution: `mapq logs` (every attempt: agent, start,
# duration, exit status or signal, phase, stderr tail), `mapq status`
# (counts by phase) and `mapq agents` (live agents and their heartbeats).
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2 --lease 2s


# Attempt 1 of every element fails with a message on stderr and exit 3;
# attempt 2 succeeds. Element 9 sleeps past its timeout on every attempt.
cat >"$TMP/flaky.yaml" <<'EOF'
name: flaky
inputs:
  xs: {type: "list[int]", default: [0, 1, 2]}
tasks:
  flaky:
    inputs: {x: int}
    output: int
    retries: 1
    timeout: 1s
    command:
      - sh
      - -c
      - |
        [ "$MAPQ_IN_x" = 9 ] && exec sleep 30
        if [ "$MAPQ_ATTEMPT" = 1 ]; then
            echo "warming up" >&2
            echo "first try of $MAPQ_IN_x fails" >&2
            exit 3
        fi
        echo $((MAPQ_IN_x + 100))
nodes:
  m: {map: flaky, over: {x: $inputs.xs}, min_success_ratio: 0.5}
output: $m
EOF

out=$("$MAPQ" run "$TMP/flaky.yaml" 2>"$TMP/run.err")
check "the run succeeds on second attempts" "0 [100,101,102]" "$? $out"
id=$(exec_of "$TMP/run.err")

"$MAPQ" logs "$id" m 1 >"$TMP/logs1" 2>&1
check "logs of one subtask: exit 0" "0" "$?"
check "logs of one subtask: two attempts" "2" "$(grep -c '^m\[1\] attempt' "$TMP/logs1")"
check "attempt 1: its agent, exit status, phase and that it was retried" "1" \
    "$(grep -c '^m\[1\] attempt 1: agent it-agent-[12], started 20[0-9-]*T[0-9:.]*Z, [0-9.]*s, exit 3, FAILED, retried$' "$TMP/logs1")"
check "attempt 1: its stderr tail" "2" \
    "$(grep -c -e '^  stderr: warming up$' -e '^  stderr: first try of 1 fails$' "$TMP/logs1")"
check "attempt 2: exit 0, SUCCEEDED" "1" \
    "$(grep -c '^m\[1\] attempt 2: agent it-agent-[12], .*, exit 0, SUCCEEDED$' "$TMP/logs1")"

"$MAPQ" logs "$id" m >"$TMP/logs" 2>&1
check "logs of a node: every attempt of every subtask, in index order" \
    "m[0] attempt 1 m[0] attempt 2 m[1] attempt 1 m[1] attempt 2 m[2] attempt 1 m[2] attempt 2" \
    "$(grep -o '^m\[[0-9]\] attempt [0-9]' "$TMP/logs" | tr '\n' ' ' | sed 's/ $//')"
"$MAPQ" logs "$id" m 1 --json >"$TMP/logs.json" 2>&1
check "logs --json: one object per attempt" "2" "$(grep -o '"attempt":' "$TMP/logs.json" | wc -l | tr -d ' ')"
check "logs --json: exit status and phase" "1" \
    "$(grep -c '"attempt":1,"agent":"it-agent-[12]","started_ms":[0-9]*,"duration_ms":[0-9]*,"exit_status":3,"phase":"failed","retried":true' "$TMP/logs.json")"

"$MAPQ" logs "$id" nosuch 2>"$TMP/err" >/dev/null
check "logs of an unknown node: exit 1 naming it" "1 1" "$? $(grep -c "no node 'nosuch'" "$TMP/err")"
"$MAPQ" logs 000000000000 m 2>"$TMP/err" >/dev/null
check "logs of an unknown execution: exit 1" "1" "$?"

# First attempts that succeed: their records are kept in log pages
# ("0/p<index / 16>", docs/PROTOCOL.md), which mapq logs reads as it reads
# a subtask's own field.
cat >"$TMP/ok.yaml" <<'EOF'
name: ok
inputs:
  xs: {type: "list[int]"}
tasks:
  t:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'echo "note $MAPQ_IN_x" >&2; echo $MAPQ_IN_x']
nodes:
  m: {map: t, over: {x: $inputs.xs}}
output: $m
EOF
"$MAPQ" run "$TMP/ok.yaml" --input "xs=[$(seq -s, 0 69)]" >/dev/null 2>"$TMP/ok.err"
check "a map of first-attempt successes" "0" "$?"
id3=$(exec_of "$TMP/ok.err")
has() { redis_cli HEXISTS "$MAPQ_NAMESPACE:log:$id3" "$1"; }
check "their records are in log pages of 16" "5 0 0 1 1" \
    "$(redis_cli HLEN "$MAPQ_NAMESPACE:log:$id3") $(has 0/65) $(has 0/0) $(has 0/p0) $(has 0/p4)"
"$MAPQ" logs "$id3" m 65 >"$TMP/logs65" 2>&1
check "logs of one subtask in a page: its attempt and its stderr" "0 1 1" \
    "$? $(grep -c '^m\[65\] attempt 1: agent it-agent-[12], .*, exit 0, SUCCEEDED$' "$TMP/logs65") $(grep -c '^  stderr: note 65$' "$TMP/logs65")"
"$MAPQ" logs "$id3" m >"$TMP/logsall" 2>&1
check "logs of the node: one attempt per subtask, in index order" \
    "$(seq -s ' ' 0 69)" \
    "$(sed -n 's/^m\[\([0-9]*\)\] attempt 1:.*/\1/p' "$TMP/logsall" | tr '\n' ' ' | sed 's/ $//')"

# A timeout: killed by a signal, TIMED_OUT, on both attempts.
out=$("$MAPQ" run "$TMP/flaky.yaml" --input 'xs=[9, 1]' 2>"$TMP/run2.err")
check "a timed-out element: the map still succeeds at ratio 0.5" "0 [null,101]" "$? $out"
id2=$(exec_of "$TMP/run2.err")
"$MAPQ" logs "$id2" m 0 >"$TMP/logs9" 2>&1
check "timed out: both attempts show the signal and TIMED_OUT" "2" \
    "$(grep -c '^m\[0\] attempt [12]: .*, signal 9, TIMED_OUT' "$TMP/logs9")"
check "timed out: the error says so" "2" "$(grep -c '^  error: timed out after 1s' "$TMP/logs9")"

# mapq status: counts by phase.
"$MAPQ" status "$id2" >"$TMP/status" 2>&1
check "status: the execution's state" "1" "$(grep -c "^execution $id2: succeeded$" "$TMP/status")"
check "status: counts by phase" "1" \
    "$(grep -c '^  m  *succeeded  *total 2  SUCCEEDED 1  TIMED_OUT 1$' "$TMP/status")"

# mapq watch: prints the status again as it changes, until the end; its
# exit status is the execution's.
cat >"$TMP/naps.yaml" <<'EOF'
name: naps
tasks:
  nap:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'sleep 1; echo $MAPQ_IN_x']
nodes:
  n: {map: nap, over: {x: [1, 2, 3, 4, 5, 6]}, concurrency: 2}
output: $n
EOF
"$MAPQ" run "$TMP/naps.yaml" >/dev/null 2>"$TMP/naps.err" &
naps=$!
wait_for 10 grep -q "^mapq: execution" "$TMP/naps.err"
nid=$(exec_of "$TMP/naps.err")
"$MAPQ" watch "$nid" >"$TMP/watch" 2>&1
check "watch: exits 0 once the execution succeeded" "0" "$?"
check "watch: it saw the execution running, then succeeded" "running succeeded" \
    "$(sed -n "s/^execution $nid: //p" "$TMP/watch" | sed -n '1p;$p' | tr '\n' ' ' | sed 's/ $//')"
check "watch: it printed the progress more than once" "yes" \
    "$([ "$(grep -c '^  n ' "$TMP/watch")" -ge 3 ] && echo yes || echo no)"
wait "$naps"
"$MAPQ" watch "$id2" >/dev/null 2>&1
check "watch of an ended execution: returns at once with its status" "0" "$?"

# A lost attempt (its agent killed) is logged when its lease is taken back.
cat >"$TMP/lost.yaml" <<'EOF'
name: lost
inputs:
  dir: {type: str}
tasks:
  once:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        if [ "$MAPQ_ATTEMPT" = 1 ]; then echo $PPID >"$MAPQ_IN_dir/agent"; exec sleep 30; fi
        echo 7
nodes:
  m: {map: once, over: {x: [0]}, with: {dir: $inputs.dir}}
output: $m
EOF
mkdir "$TMP/lost"
"$MAPQ" run "$TMP/lost.yaml" --input dir="$TMP/lost" >"$TMP/lost.out" 2>"$TMP/lost.err" &
run_pid=$!
wait_for 10 test -s "$TMP/lost/agent"
killed=$(cat "$TMP/lost/agent")
kill -9 "$killed"
start_agents 1 --lease 2s --name it-agent-3
wait_for 30 exited "$run_pid"
check "a lost attempt: the run still succeeds" "[7]" "$(cat "$TMP/lost.out")"
"$MAPQ" logs "$(exec_of "$TMP/lost.err")" m 0 >"$TMP/logs-lost" 2>&1
check "a lost attempt is logged as lost" "1" \
    "$(grep -c '^m\[0\] attempt 1: .*LOST$' "$TMP/logs-lost")"
check "a lost attempt: the reason" "1" "$(grep -c '^  error: lease expired' "$TMP/logs-lost")"

# mapq agents: the live agents, with slots, queues and heartbeats. The
# killed agent leaves the list once its heartbeat is 15 s old; the others
# report 0 subtasks held at their next heartbeat (within 5 s when idle).
listed() { "$MAPQ" agents >"$TMP/agents" 2>&1 && [ "$(grep -c "$1" "$TMP/agents")" = "$2" ]; }
idle_line='^it-agent-[0-9]  *[^ ]*  *2  *[0-9.]*  *[0-9.]* [KMGTP]iB  *0  *default  *no  *[0-9.]*s ago$'
wait_for 25 listed '^it-agent-[0-9]  ' 2
check "agents: the live ones are listed, the killed one is not" "2" \
    "$(grep -c '^it-agent-[0-9]  ' "$TMP/agents")"
wait_for 8 listed "$idle_line" 2
check "agents: slots, CPUs, memory, running, queues, interruptible, heartbeat" "2" \
    "$(grep -c "$idle_line" "$TMP/agents")"
"$MAPQ" agents --json >"$TMP/agents.json" 2>&1
check "agents --json" "0 2" \
    "$? $(grep -o '"slots":2,"running":0,"queues":\["default"\],"interruptible":false,"heartbeat_ms_ago":[0-9]*,"cpus":[0-9.]*,"mem_bytes":[1-9][0-9]*' "$TMP/agents.json" | wc -l | tr -d ' ')"
# An agent that stops leaves the list at once.
for p in "${PIDS[@]}"; do
    if [ "$p" != "$killed" ] && kill -0 "$p" 2>/dev/null; then stop=$p; break; fi
done
kill -TERM "$stop"
wait "$stop"
"$MAPQ" agents >"$TMP/agents2" 2>&1
check "agents: a stopped agent is gone at once" "1" "$(grep -c '^it-agent-[0-9]  ' "$TMP/agents2")"
finish
