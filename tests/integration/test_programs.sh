#!/usr/bin/env bash
# A command named without a path is looked for on the agent's PATH once
# and remembered, as a shell does. When the program moves to another
# directory of PATH, the next subtask still runs: the agent, failing to
# execute where it found it, looks again. When it is gone from PATH, the
# subtask fails "command not found", as a first search would say. A real
# agent of one slot; waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
mkdir -p "$TMP/one" "$TMP/two"
# tool DIR: mapq-it-tool in DIR, printing DIR's name.
tool() {
    printf '#!/bin/sh\necho %s\n' "$1" >"$TMP/$1/mapq-it-tool"
    chmod 755 "$TMP/$1/mapq-it-tool"
}
tool one
PATH="$TMP/one:$TMP/two:$PATH" start_agents 1 --slots 1

cat >"$TMP/tool.yaml" <<'YAML'
name: tool
inputs:
  xs: {type: "list[int]", default: [1, 2, 3]}
tasks:
  where:
    inputs: {x: int}
    output: str
    output_format: text
    command: [mapq-it-tool]
nodes:
  n: {map: where, over: {x: $inputs.xs}}
output: $n
YAML

# run_tool NAME: runs the map; its exit status in RC, --json in NAME.json.
run_tool() {
    timeout -s KILL 60 "$MAPQ" run "$TMP/tool.yaml" --json \
        >"$TMP/$1.json" 2>"$TMP/$1.err"
    RC=$?
}

run_tool first
check "programs: the map runs" "0" "$RC"
check "programs: every subtask ran the program on PATH" \
    '["one","one","one"]' "$(grep -o '"output":\[[^]]*\]' "$TMP/first.json" | sed 's/"output"://')"

# Moved to the next directory of PATH, and changed, between two maps.
rm "$TMP/one/mapq-it-tool"
tool two
run_tool moved
check "programs: a moved program still runs" "0" "$RC"
check "programs: it runs from where it is now" \
    '["two","two","two"]' "$(grep -o '"output":\[[^]]*\]' "$TMP/moved.json" | sed 's/"output"://')"

# Gone from PATH: the subtask fails as a first search would say.
rm "$TMP/two/mapq-it-tool"
run_tool gone
check "programs: a map of a program gone fails" "1" "$([ "$RC" -ne 0 ] && echo 1)"
check "programs: the failure says it is not found" "1" \
    "$(grep -c -m1 'command not found: mapq-it-tool' "$TMP/gone.json" "$TMP/gone.err" | awk -F: '{ s += $NF } END { print (s > 0) }')"

finish
