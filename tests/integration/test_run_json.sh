#!/usr/bin/env bash
# mapq run --json reports every node of the execution, however soon after
# its end the driver lets the execution go: the summary is taken when the
# execution ends. Twenty runs of a three-node workflow, each checked. A
# failure whose task wrote a byte that is not UTF-8 to stderr is still
# valid JSON.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2 --lease 2s

cat >"$TMP/three.yaml" <<'EOF'
name: three
inputs:
  xs: {type: "list[int]", default: [1, 2, 3]}
tasks:
  id: {inputs: {x: int}, output: int, command: [echo, "{x}"]}
  sum: {inputs: {xs: "list[int]"}, output: int, command: [sh, -c, 'echo $(( $(echo "$MAPQ_IN_xs" | tr -d "[] " | tr , +) ))']}
nodes:
  a: {map: id, over: {x: $inputs.xs}}
  b: {map: id, over: {x: $a}}
  c: {task: sum, with: {xs: $b}}
output: $c
EOF
bad=0
for i in $(seq 1 20); do
    timeout -s KILL 60 "$MAPQ" run "$TMP/three.yaml" --json >"$TMP/run.json" 2>"$TMP/run.err"
    got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(",".join(sorted(d["nodes"])), d["output"], d["nodes"]["b"]["SUCCEEDED"])' "$TMP/run.json" 2>&1)
    [ "$got" = "a,b,c 6 3" ] || { bad=$((bad + 1)); echo "# run $i: $got"; }
done
check "--json: all 20 runs list nodes a, b and c with their counts" "0" "$bad"

# A failure whose stderr holds a byte that is not UTF-8, a quote and a tab.
cat >"$TMP/bad.yaml" <<'EOF'
name: bad
tasks:
  t: {inputs: {}, output: int, retries: 0, command: [sh, -c, 'printf "a\377\"q\tz\n" >&2; exit 1']}
nodes:
  n: {task: t}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/bad.yaml" --json >"$TMP/bad.json" 2>"$TMP/bad.err"
check "--json failure: exit 1" "1" "$?"
check "--json failure with odd stderr bytes: valid JSON, the bad byte as U+FFFD" "True" \
    "$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print("a\ufffd\"q\tz" in e)' "$TMP/bad.json" 2>&1)"
finish
