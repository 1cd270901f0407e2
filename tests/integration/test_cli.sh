#!/usr/bin/env bash
# The CLI end to end: local mode, submit + scheduler + status + result, and
# the exit status of bad input.
. "$(dirname "$0")/harness.sh"

ex="$SRC/examples"
unset MAPQ_REDIS_URL

# Local mode: no Redis URL, a private redis-server and 2 agents.
out=$("$MAPQ" run "$ex/anomalies.yaml" --agents 2 --quiet 2>"$TMP/err")
check "local mode runs anomalies.yaml" "5" "$out"
check "local mode exits 0" "0" "$?"

# Validation errors: exit 2 with file:line:column, nothing submitted.
cat >"$TMP/bad.yaml" <<'YAML'
name: bad
tasks:
  t:
    inputs: {x: int}
    output: int
    command: [echo, "1"]
nodes:
  n:
    map: t
    over: {x: [1, 2]}
    concurency: 2
YAML
"$MAPQ" validate "$TMP/bad.yaml" >/dev/null 2>"$TMP/err"
check "validate exits 2 on an unknown key" "2" "$?"
check "the error names file:line:column and the key" "1" \
    "$(grep -c "bad.yaml:11:5: .*concurency" "$TMP/err")"
"$MAPQ" validate "$ex/anomalies.yaml" >/dev/null 2>&1
check "validate accepts a good workflow" "0" "$?"
"$MAPQ" run "$ex/anomalies.yaml" --input threshold=abc --redis unix:///nonexistent >/dev/null 2>"$TMP/err"
check "a wrong --input type exits 2 before connecting" "2" "$?"

# Unreachable Redis: exit 3 with one clear line.
"$MAPQ" run "$ex/anomalies.yaml" --redis unix://$TMP/none.sock >/dev/null 2>"$TMP/err"
check "unreachable redis exits 3" "3" "$?"
check "unreachable redis is one line" "1" "$(wc -l <"$TMP/err" | tr -d ' ')"

# Submit, a scheduler service, status and result.
start_redis
start_agents 2
"$MAPQ" scheduler >>"$TMP/scheduler.log" 2>&1 &
PIDS+=($!)
id=$("$MAPQ" submit "$ex/zip.yaml" 2>"$TMP/err")
check "submit prints an execution id" "1" "$(echo "$id" | grep -c '^[0-9a-f]\{12\}$')"
wait_for 20 sh -c "'$MAPQ' status $id | grep -q succeeded"
check "the scheduler drives a submitted execution" "0" "$?"
check "result shows the output" "[111,122,133]" "$("$MAPQ" result "$id")"
check "status lists the map node with its counts" "1" \
    "$("$MAPQ" status "$id" | grep -c 'sums.*SUCCEEDED 3')"
# A failing map with run_all: every subtask runs, and the error groups failed indices by message into ranges,
# even when the message itself holds ';'.
cat >"$TMP/fail.yaml" <<'YAML'
name: failing
tasks:
  t:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'if [ "$MAPQ_IN_x" -ge 3 ]; then echo "bad; x" >&2; exit 1; fi; echo "$MAPQ_IN_x"']
nodes:
  n:
    map: t
    over: {x: [0, 1, 2, 3, 4, 5, 1, 9]}
    run_all: true
output: $n
YAML
"$MAPQ" run "$TMP/fail.yaml" --quiet >/dev/null 2>"$TMP/err"
check "a failed map exits 1" "1" "$?"
check "failed subtasks are grouped by index ranges" "1" \
    "$(grep -c "node 'n' failed: 4 of 8 subtasks succeeded, 8 needed: 3-5,7: exit status 1: bad; x" "$TMP/err")"
"$MAPQ" result 000000000000 >/dev/null 2>&1
check "result of an unknown execution exits 1" "1" "$?"
finish
