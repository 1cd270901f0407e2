#!/usr/bin/env bash
# Edge values round-trip exactly: from a JSON inputs file through command
# tasks (stdin JSON and MAPQ_IN_<name> in, stdout JSON or text out), the
# result store, the cache and both output forms of mapq run. Empty strings,
# lists and dicts, zero, 64-bit extremes, floats down to the smallest
# subnormal, characters beyond the BMP, NUL bytes inside str. A task output
# that is not valid UTF-8 is an error naming the element; a value that
# cannot be written as JSON is an error and a non-zero exit, never a
# success with the output left out. Waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2

ECHO="import json,sys; print(json.dumps(json.load(sys.stdin)['x']))"
# A str input's MAPQ_IN_ variable holds its text as it is.
ENVSTR="import json,os; print(json.dumps(os.environ['MAPQ_IN_x']))"
cat >"$TMP/edges.yaml" <<EOF
name: edges
inputs:
  strs: {type: "list[str]"}
  ints: {type: "list[int]"}
  floats: {type: "list[float]"}
  lists: {type: "list[list[int]]"}
  dicts: {type: "list[dict[int]]"}
  anys: {type: "list[any]"}
  nuls: {type: "list[list[str]]"}
tasks:
  echo_str: {inputs: {x: str}, output: str, cache: {version: "1"}, command: [python3, -c, "$ECHO"]}
  echo_int: {inputs: {x: int}, output: int, cache: {version: "1"}, command: [python3, -c, "$ECHO"]}
  echo_float: {inputs: {x: float}, output: float, cache: {version: "1"}, command: [python3, -c, "$ECHO"]}
  echo_list: {inputs: {x: "list[int]"}, output: "list[int]", cache: {version: "1"}, command: [python3, -c, "$ECHO"]}
  echo_dict: {inputs: {x: "dict[int]"}, output: "dict[int]", cache: {version: "1"}, command: [python3, -c, "$ECHO"]}
  echo_any: {inputs: {x: any}, output: any, cache: {version: "1"}, command: [python3, -c, "$ECHO"]}
  echo_lstr: {inputs: {x: "list[str]"}, output: "list[str]", cache: {version: "1"}, command: [python3, -c, "$ECHO"]}
  env_str: {inputs: {x: str}, output: str, cache: {version: "1"}, command: [python3, -c, "$ENVSTR"]}
  env_int: {inputs: {x: int}, output: int, cache: {version: "1"}, command: [sh, -c, 'printf %s "\$MAPQ_IN_x"']}
  env_float: {inputs: {x: float}, output: float, cache: {version: "1"}, command: [sh, -c, 'printf %s "\$MAPQ_IN_x"']}
  env_list: {inputs: {x: "list[int]"}, output: "list[int]", cache: {version: "1"}, command: [sh, -c, 'printf %s "\$MAPQ_IN_x"']}
  env_dict: {inputs: {x: "dict[int]"}, output: "dict[int]", cache: {version: "1"}, command: [sh, -c, 'printf %s "\$MAPQ_IN_x"']}
  env_lstr: {inputs: {x: "list[str]"}, output: "list[str]", cache: {version: "1"}, command: [sh, -c, 'printf %s "\$MAPQ_IN_x"']}
nodes:
  s: {map: echo_str, over: {x: \$inputs.strs}}
  i: {map: echo_int, over: {x: \$inputs.ints}}
  f: {map: echo_float, over: {x: \$inputs.floats}}
  l: {map: echo_list, over: {x: \$inputs.lists}}
  d: {map: echo_dict, over: {x: \$inputs.dicts}}
  a: {map: echo_any, over: {x: \$inputs.anys}}
  n: {map: echo_lstr, over: {x: \$inputs.nuls}}
  es: {map: env_str, over: {x: \$inputs.strs}}
  ei: {map: env_int, over: {x: \$inputs.ints}}
  ef: {map: env_float, over: {x: \$inputs.floats}}
  el: {map: env_list, over: {x: \$inputs.lists}}
  ed: {map: env_dict, over: {x: \$inputs.dicts}}
  en: {map: env_lstr, over: {x: \$inputs.nuls}}
output: {s: \$s, i: \$i, f: \$f, l: \$l, d: \$d, a: \$a, n: \$n,
         es: \$es, ei: \$ei, ef: \$ef, el: \$el, ed: \$ed, en: \$en}
EOF
# As Python's json.dump writes it: "\ud83d\ude00" for the emoji.
python3 - "$TMP/in.json" <<'EOF'
import json, sys
json.dump({"strs": ["", "a", "\U0001F600", "\u00e9\n\"\\", " "],
           "ints": [0, -1, 9223372036854775807, -9223372036854775808],
           "floats": [0.0, -0.0, 0.1, 1e308, 5e-324, 1.0, -2.5],
           "lists": [[], [1, -1]],
           "dicts": [{}, {"k": 0, "": -5}],
           "anys": [None, True, False, "", [], {}, 0, [[[]]], {"a": {"b": [None]}}],
           "nuls": [["a\u0000b", "\u0000", ""], []]},
          open(sys.argv[1], "w"))
EOF
# same FILE FORM: the output in FILE (whole, or its "output" member when
# FORM is json) equals the inputs, value for value and type for type.
same() {
    python3 - "$TMP/in.json" "$1" "$2" <<'EOF'
import json, math, sys
want = json.load(open(sys.argv[1]))
try:
    got = json.load(open(sys.argv[2]))
    if sys.argv[3] == "json":
        got = got["output"]
except (ValueError, KeyError) as e:
    print("unreadable: %s" % e)
    sys.exit(0)
pairs = {"s": "strs", "i": "ints", "f": "floats", "l": "lists", "d": "dicts",
         "a": "anys", "n": "nuls", "es": "strs", "ei": "ints", "ef": "floats",
         "el": "lists", "ed": "dicts", "en": "nuls"}
def eq(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(eq(a[k], b[k]) for k in a)
    return a == b
bad = [k for k, v in pairs.items() if not eq(got.get(k), want[v])]
print("same" if not bad else "differ in " + ",".join(bad) + ": " + json.dumps(got))
EOF
}
cached() {
    python3 -c 'import json,sys; print(sum(n["counts"]["cached"] for n in json.load(open(sys.argv[1]))["nodes"]))' "$1" 2>&1
}
json_output() {
    python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["output"], separators=(",", ":"), ensure_ascii=False))' "$1" 2>&1
}
run() {
    timeout -s KILL 60 "$MAPQ" run "$TMP/edges.yaml" --inputs "$TMP/in.json" "$@"
}

run >"$TMP/plain.out" 2>"$TMP/plain.err"
check "plain: exit 0" "0" "$?"
check "plain: every value back as it went in" "same" "$(same "$TMP/plain.out" plain)"
run --json >"$TMP/json.out" 2>"$TMP/json.err"
check "--json: exit 0" "0" "$?"
check "--json: the output is there, every value as it went in" "same" "$(same "$TMP/json.out" json)"
check "--json: every subtask came from the cache" "53" "$(cached "$TMP/json.out")"
run >"$TMP/cached.out" 2>"$TMP/cached.err"
check "cached rerun: exit 0" "0" "$?"
check "cached rerun: the same text" "0" "$(cmp -s "$TMP/plain.out" "$TMP/cached.out"; echo $?)"
run --overwrite-cache >"$TMP/fresh.out" 2>"$TMP/fresh.err"
check "rerun without the cache: the same text" "0" "$(cmp -s "$TMP/plain.out" "$TMP/fresh.out"; echo $?)"

# A map over ["", "a"] with a text output: the empty string is a value.
cat >"$TMP/empty.yaml" <<'EOF'
name: empty
inputs:
  xs: {type: "list[str]", default: ["", "a"]}
tasks:
  t: {inputs: {x: str}, output: str, output_format: text, command: [printf, "%s", "{x}"]}
nodes:
  n: {map: t, over: {x: $inputs.xs}}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/empty.yaml" >"$TMP/empty.out" 2>"$TMP/empty.err"
check "empty string: exit 0" "0" "$?"
check "empty string: the output holds it" '["","a"]' "$(tr -d ' \n' <"$TMP/empty.out")"
timeout -s KILL 60 "$MAPQ" run "$TMP/empty.yaml" --json >"$TMP/empty.json" 2>&1
check "empty string: --json has the output" '["","a"]' "$(json_output "$TMP/empty.json")"
# The same through --input (YAML) and a text task, beyond the BMP too.
timeout -s KILL 60 "$MAPQ" run "$TMP/empty.yaml" --input 'xs=["", "😀", "\U0001F600"]' \
    --json >"$TMP/empty2.json" 2>&1
check "--input YAML strings: --json has them" '["","😀","😀"]' "$(json_output "$TMP/empty2.json")"

# Output that is not UTF-8: an error on that element, exit 1.
cat >"$TMP/latin.yaml" <<'EOF'
name: latin
inputs:
  xs: {type: "list[int]", default: [0, 1, 2]}
tasks:
  t:
    inputs: {x: int}
    output: str
    output_format: text
    command: [sh, -c, 'if [ "$MAPQ_IN_x" = 2 ]; then printf "caf\351"; else printf ok; fi']
nodes:
  n: {map: t, over: {x: $inputs.xs}}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/latin.yaml" >"$TMP/latin.out" 2>"$TMP/latin.err"
check "invalid UTF-8: exit 1" "1" "$?"
check "invalid UTF-8: the error names node and element 2" "1" \
    "$(grep -c "node 'n' failed: .* 2: output is not valid UTF-8" "$TMP/latin.err")"
# The same in JSON output: element 1 of a map over [0, 1].
cat >"$TMP/latin_json.yaml" <<'EOF'
name: latin_json
inputs:
  xs: {type: "list[int]", default: [0, 1]}
tasks:
  t:
    inputs: {x: int}
    output: "list[str]"
    command: [sh, -c, 'if [ "$MAPQ_IN_x" = 1 ]; then printf "[\"caf\351\"]"; else printf "[]"; fi']
nodes:
  n: {map: t, over: {x: $inputs.xs}}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/latin_json.yaml" --json >"$TMP/latin_json.out" 2>"$TMP/latin_json.err"
check "invalid UTF-8 in JSON output: exit 1" "1" "$?"
check "invalid UTF-8 in JSON output: the error names node and element 1" "True" \
    "$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print("node '"'"'n'"'"' failed" in e and " 1: output is not valid JSON" in e and "not valid UTF-8" in e)' "$TMP/latin_json.out" 2>&1)"

# A value JSON cannot carry (NaN, infinity, an integer past INT64_MAX),
# meant for the workflow's output: an error and a non-zero exit, never
# exit 0 with the output left out.
cat >"$TMP/nojson.yaml" <<'EOF'
name: nojson
inputs:
  v: {type: any}
tasks:
  t: {inputs: {}, output: int, command: [echo, "1"]}
nodes:
  n: {task: t}
output: {n: $n, v: $inputs.v}
EOF
# Such values are refused where they come in: an --input is bad input
# (exit 2), never a run that fails or succeeds without its output.
for v in .nan .inf 1e999 18446744073709551615; do
    timeout -s KILL 60 "$MAPQ" run "$TMP/nojson.yaml" --input "v=$v" >"$TMP/nojson.out" 2>"$TMP/nojson.err"
    check "--input v=$v: refused as bad input (exit 2)" "2" "$?"
    check "output $v: says why" "1" "$(grep -c -E 'NaN|out of range' "$TMP/nojson.err")"
    check "output $v: nothing on stdout" "" "$(cat "$TMP/nojson.out")"
    timeout -s KILL 60 "$MAPQ" run "$TMP/nojson.yaml" --input "v=$v" --json >"$TMP/nojson.json" 2>"$TMP/nojson.jerr"
    check "--json, --input v=$v: refused as bad input (exit 2)" "2" "$?"
    check "--json output $v: not a success" "" \
        "$(grep -o '"status":"succeeded"' "$TMP/nojson.json")"
    check "--json output $v: says why" "1" "$(cat "$TMP/nojson.json" "$TMP/nojson.jerr" | grep -c -E 'NaN|out of range')"
done
# Bound to a task's input, such a value fails the run with the reason.
cat >"$TMP/nojson2.yaml" <<'EOF'
name: nojson2
inputs:
  v: {type: int}
tasks:
  t: {inputs: {x: int}, output: int, command: [sh, -c, 'printf %s "$MAPQ_IN_x"']}
nodes:
  n: {task: t, with: {x: $inputs.v}}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/nojson2.yaml" --input "v=9223372036854775808" >"$TMP/nojson2.out" 2>"$TMP/nojson2.err"
check "int past INT64_MAX into a task: refused as bad input (exit 2)" "2" "$?"
check "int past INT64_MAX into a task: says so" "1" "$(grep -c 'out of range' "$TMP/nojson2.err")"

# A str holding a NUL byte cannot go into a command's environment: one
# clear error on that element.
printf '{"xs": ["a\\u0000b"]}' >"$TMP/nul.json"
timeout -s KILL 60 "$MAPQ" run "$TMP/empty.yaml" --inputs "$TMP/nul.json" >"$TMP/nul.out" 2>"$TMP/nul.err"
check "NUL in a str for a command: exit 1" "1" "$?"
check "NUL in a str for a command: says so for element 0" "1" \
    "$(grep -c "0: input 'x' holds a NUL byte" "$TMP/nul.err")"
finish
