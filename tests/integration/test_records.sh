#!/usr/bin/env bash
# Records: a task's output declared as a record ({sum: float, ...}) is
# checked member by member on the agent, a record input reaches the task as
# a JSON object, and records in a JSON inputs file are typed like the rest.
# Named outputs (outputs: {...}) are taken one by one with $NODE.NAME: a
# list of them from a map node, null where a subtask failed. Real
# processes; waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2

cat >"$TMP/rec.yaml" <<'YAML'
name: rec
inputs:
  pts: {type: "list[{x: int, y: float}]"}
  scale: {type: {k: int}, default: {k: 10}}
tasks:
  t:
    inputs: {pt: {x: int, y: float}, scale: "{k: int}"}
    output: {sum: float, tag: str?}
    command:
      - python3
      - -c
      - |
        import json, sys
        a = json.load(sys.stdin)
        p, k = a["pt"], a["scale"]["k"]
        if p["x"] < 0:
            print(json.dumps({"sum": 0, "extra": 1}))
        elif p["x"] == 0:
            print(json.dumps({"sum": 0}))
        else:
            print(json.dumps({"sum": (p["x"] + p["y"]) * k, "tag": None}))
nodes:
  m: {map: t, over: {pt: $inputs.pts}, with: {scale: $inputs.scale}, min_success_ratio: 0.1}
output: $m
YAML

echo '{"pts": [{"x": 1, "y": 0.5}, {"x": 2, "y": 1}]}' >"$TMP/ok.json"
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/rec.yaml" --inputs "$TMP/ok.json" 2>"$TMP/ok.err")
check "records in, records out" '0 [{"sum":15.0,"tag":null},{"sum":30.0,"tag":null}]' \
    "$? $(echo "$out" | tr -d ' \n')"

echo '{"pts": [{"x": 1, "y": 1}, {"x": 0, "y": 1}, {"x": -1, "y": 1}]}' >"$TMP/bad.json"
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/rec.yaml" --inputs "$TMP/bad.json" 2>"$TMP/bad.err")
check "outputs that are not the record fail only their subtasks" '0 [{"sum":20.0,"tag":null},null,null]' \
    "$? $(echo "$out" | tr -d ' \n')"
x=$(exec_of "$TMP/bad.err")
errors=$("$MAPQ" logs "$x" m --json | python3 -c '
import json, sys
print(" | ".join(sorted(e.get("error", "") for e in json.load(sys.stdin) if e.get("error"))))')
check "each failure names the member" \
    "output: missing member 'tag' of {sum: float, tag: str?} | output[\"extra\"]: not a member of {sum: float, tag: str?}" \
    "$errors"

echo '{"pts": [{"x": 1}]}' >"$TMP/short.json"
timeout -s KILL 60 "$MAPQ" run "$TMP/rec.yaml" --inputs "$TMP/short.json" >/dev/null 2>"$TMP/short.err"
check "an input record without a member is refused before anything runs" \
    "2 $TMP/short.json:1:10: 'pts': [0]: missing member 'y' of {x: int, y: float}" \
    "$? $(grep -v '^mapq: execution' "$TMP/short.err")"
cat >"$TMP/named.yaml" <<'YAML'
name: named
inputs:
  xs: {type: "list[int]", default: [1, 2, 3, 4]}
tasks:
  stats:
    inputs: {x: int}
    outputs: {sq: int, name: str}
    command: [sh, -c, 'test "$MAPQ_IN_x" -ne 3 && echo "{\"sq\": $((MAPQ_IN_x * MAPQ_IN_x)), \"name\": \"n$MAPQ_IN_x\"}"']
  total:
    inputs: {vals: "list[int?]"}
    outputs: {sum: int, count: int}
    command: [python3, -c, 'import json,sys; v=[x for x in json.load(sys.stdin)["vals"] if x is not None]; print(json.dumps({"sum": sum(v), "count": len(v)}))']
  shout:
    inputs: {name: str?}
    output: str
    command: [sh, -c, 'echo "\"$MAPQ_IN_name!\""']
nodes:
  m: {map: stats, over: {x: $inputs.xs}, min_success_ratio: 0.5}
  t: {task: total, with: {vals: $m.sq}}
  s: {map: shout, over: {name: $m.name}}
output: {sum: $t.sum, count: $t.count, names: $s, squares: $m.sq}
YAML
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/named.yaml" 2>"$TMP/named.err")
check "named outputs, taken one by one (null where a subtask failed)" \
    '0 {"sum":21,"count":3,"names":["n1!","n2!","!","n4!"],"squares":[1,4,null,16]}' \
    "$? $(echo "$out" | tr -d ' \n')"
finish
