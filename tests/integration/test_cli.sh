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

# A Redis URL that cannot be read is a usage error (2), not an unreachable
# Redis (3): one line, the password hidden, the environment named.
"$MAPQ" status abcdef123456 --redis "redis://:hunter2@host:99999" >/dev/null 2>"$TMP/err"
check "a malformed --redis URL exits 2" "2" "$?"
check "the URL error is one line naming the URL, password hidden" \
    "mapq: bad port in redis URL 'redis://:*******@host:99999'" "$(cat "$TMP/err")"
MAPQ_REDIS_URL="redis://host:x" "$MAPQ" run "$ex/zip.yaml" >/dev/null 2>"$TMP/err"
check "a malformed MAPQ_REDIS_URL exits 2" "2" "$?"
check "the error says it came from MAPQ_REDIS_URL" "1" \
    "$(grep -c "(MAPQ_REDIS_URL)$" "$TMP/err")"
"$AGENT" --redis "redis://host:x" >/dev/null 2>"$TMP/err"
check "mapq-agent: a malformed --redis URL exits 2" "2" "$?"

# --version: the project's version and the Redis protocol, exit 0.
version=$(sed -n 's/^project(mapq VERSION \([0-9.]*\) .*/\1/p' "$SRC/CMakeLists.txt")
check "mapq --version" "mapq $version (protocol 1) 0" \
    "$("$MAPQ" --version) $?"
check "mapq-agent --version" "mapq-agent $version (protocol 1) 0" \
    "$("$AGENT" --version) $?"

# --log-format json: every log line one JSON object with the same fields as
# a text line, whatever bytes a message holds (the agent's name here holds
# one that is not UTF-8); any other format is a usage error.
json_lines() {
    python3 - "$1" "$2" <<'PY'
import json, sys
keys = {"time", "component", "pid", "level", "file", "line", "msg"}
n, levels, msgs = 0, set(), []
for raw in open(sys.argv[1], "rb"):
    o = json.loads(raw)
    assert set(o) == keys and o["component"] == sys.argv[2], o
    assert isinstance(o["pid"], int) and isinstance(o["line"], int), o
    n += 1
    levels.add(o["level"])
    msgs.append(o["msg"])
print(n >= 2, "error" in levels,
      any(m.startswith("cannot use redis (still trying): connect:") for m in msgs),
      any("bad\ufffdname" in m for m in msgs))
PY
}
"$AGENT" --log-format json --name $'bad\xffname' --redis unix://$TMP/none.sock \
    2>"$TMP/agent.json" &
lf=$!
cannot() { grep -q "cannot use redis" "$TMP/agent.json"; }
wait_for 10 cannot
kill -TERM "$lf"
wait "$lf"
check "mapq-agent --log-format json: JSON lines, its error, its odd name" \
    "True True True True" "$(json_lines "$TMP/agent.json" mapq-agent 2>&1)"
"$MAPQ" run "$ex/zip.yaml" --agents 1 -v --quiet --log-format json \
    >/dev/null 2>"$TMP/run.json"
check "mapq run -v --log-format json: exit 0, every line JSON" "0 yes" \
    "$? $(python3 -c 'import json,sys; ls = [json.loads(l) for l in open(sys.argv[1])]; print("yes" if ls else "none")' "$TMP/run.json" 2>&1)"
"$AGENT" --log-format xml >/dev/null 2>"$TMP/err"
check "mapq-agent --log-format xml exits 2" "2 1" \
    "$? $(grep -c "must be text or json, got 'xml'" "$TMP/err")"
"$MAPQ" status abcdef123456 --log-format yaml >/dev/null 2>"$TMP/err"
check "mapq --log-format yaml exits 2" "2 1" \
    "$? $(grep -c "must be text or json, got 'yaml'" "$TMP/err")"

# Durations and sizes as people write them: compound durations, a B after
# a size unit, fractions that come to whole bytes. Accepted options get as
# far as Redis (3, or 1 for a health file never touched); a wrong one is
# refused first (2).
"$MAPQ" run "$ex/zip.yaml" --lease 1m30s --redis unix://$TMP/none.sock >/dev/null 2>&1
check "mapq run --lease 1m30s is accepted" "3" "$?"
"$MAPQ" run "$ex/zip.yaml" --lease 1m30 --redis unix://$TMP/none.sock >/dev/null 2>"$TMP/err"
check "mapq run --lease 1m30 is refused" "2" "$?"
"$AGENT" --mem 4GiB --grace 1m30s --worker-idle 2m30s --check-health "$TMP/never" >/dev/null 2>&1
check "mapq-agent --mem 4GiB --grace 1m30s are accepted" "1" "$?"
"$AGENT" --mem 1.3Ki --check-health "$TMP/never" >/dev/null 2>"$TMP/err"
check "mapq-agent --mem 1.3Ki is refused: not whole bytes" "2 1" \
    "$? $(grep -c "size '1.3Ki' is not a whole number of bytes" "$TMP/err")"
cat >"$TMP/units.yaml" <<'YAML'
name: units
tasks:
  t:
    inputs: {x: int}
    output: int
    command: [echo, "1"]
    timeout: 1m30s
    resources: {mem: 1.5GiB}
    retry_backoff: {initial: 1s500ms, max: 2m}
nodes:
  n: {map: t, over: {x: [1, 2]}}
output: $n
YAML
"$MAPQ" validate "$TMP/units.yaml" >/dev/null 2>"$TMP/err"
check "a workflow with timeout 1m30s and mem 1.5GiB validates" "0" "$?"
sed -i 's/timeout: 1m30s/timeout: 30s1m/' "$TMP/units.yaml"
"$MAPQ" validate "$TMP/units.yaml" >/dev/null 2>"$TMP/err"
check "timeout 30s1m (units out of order) is refused at its line" "2 1" \
    "$? $(grep -c "units.yaml:7:14: 'timeout' must be a duration" "$TMP/err")"

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
