#!/usr/bin/env bash
# The cache (SPEC section 5): hits per subtask keyed by the inputs' hash,
# shared between map and plain uses of a task, successes only, ttl,
# identical inputs run once within a node, --overwrite-cache, and
# `mapq cache ls|rm|clear`. Tests count executions (a plugin appends a line
# per call), not just outputs. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2

# The plugin appends each execution's x to $TMP/runs (the path is an
# input, so it must stay the same for the keys to match); fresh() empties
# it before a run, runs() counts the lines.
RUNS="$TMP/runs"
fresh() { : >"$RUNS"; }
runs() { wc -l <"$RUNS" | tr -d ' '; }
status_line() { "$MAPQ" status "$1" 2>&1 | sed -n "s/^  $2  *//p"; }

# A cached plugin task (version 1) used by a map node and by a plain node.
cat >"$TMP/cached.yaml" <<'EOF'
name: cached
inputs:
  xs: {type: "list[int]"}
  one: {type: int, default: 5}
  path: {type: str}
tasks:
  double:
    inputs: {x: int, path: str}
    output: int
    cache: {version: "1"}
    plugin: {library: mapq_fault_plugin.so, symbol: count}
nodes:
  many: {map: double, over: {x: $inputs.xs}, with: {path: $inputs.path}, concurrency: 2000, min_success_ratio: 0}
  single: {task: double, with: {x: $inputs.one, path: $inputs.path}}
output: {many: $many, single: $single}
EOF

# inputs N [CHANGED]: an inputs file with xs = 0..N-1 (element 0 replaced
# by CHANGED when given).
inputs() {
    local first=${2:-0}
    { printf '{"xs": [%s' "$first"; seq -s, 1 $(($1 - 1)) | sed 's/^/,/'; printf ']}\n'; } \
        >"$TMP/in.json"
}

# ---- 10,000 subtasks: the rerun runs nothing --------------------------------
inputs 10000
fresh
"$MAPQ" run "$TMP/cached.yaml" --inputs "$TMP/in.json" --input path="$RUNS" \
    >"$TMP/o1" 2>"$TMP/e1"
check "first run: exit 0" "0" "$?"
# The plain node's x = 5 has the key of the map's element 5: whichever of
# the two finishes first makes the other a cache hit unless both run at
# once, so 5 ran once or twice; every other element exactly once.
once_but_5() {
    [ "$(sort -nu "$RUNS" | wc -l)" = 10000 ] &&
        [ -z "$(sort -n "$RUNS" | uniq -d | grep -vx 5)" ] &&
        [ "$(grep -cx 5 "$RUNS")" -le 2 ]
}
check "first run: every element ran once (5 once or twice, with the plain node)" \
    "yes" "$(once_but_5 && echo yes)"
fresh
"$MAPQ" run "$TMP/cached.yaml" --inputs "$TMP/in.json" --input path="$RUNS" \
    >"$TMP/o2" 2>"$TMP/e2"
check "rerun: exit 0 and the same output" "0 yes" \
    "$? $(cmp -s "$TMP/o1" "$TMP/o2" && echo yes || echo no)"
check "rerun: nothing ran" "0" "$(runs)"
check "rerun: every subtask is CACHED" "succeeded  total 10000  CACHED 10000" \
    "$(status_line "$(exec_of "$TMP/e2")" many)"
inputs 10000 777777
fresh
"$MAPQ" run "$TMP/cached.yaml" --inputs "$TMP/in.json" --input path="$RUNS" \
    >/dev/null 2>"$TMP/e3"
check "one element changed: exactly that one ran" "777777" "$(cat "$RUNS")"
check "one element changed: the rest are CACHED" \
    "succeeded  total 10000  SUCCEEDED 1  CACHED 9999" \
    "$(status_line "$(exec_of "$TMP/e3")" many)"

# ---- shared between map and plain uses; identical inputs run once ----------
# The plain node's x = 5 was cached by the map's element 5 (and vice versa).
fresh
"$MAPQ" run "$TMP/cached.yaml" --input 'xs=[5]' --input one=3 \
    --input path="$RUNS" >"$TMP/o4" 2>/dev/null
check "map and plain uses share entries: nothing ran" "0 {\"many\":[10],\"single\":6}" \
    "$(runs) $(cat "$TMP/o4")"
fresh
"$MAPQ" run "$TMP/cached.yaml" --input 'xs=[-3,20001,20001,20001,-3]' \
    --input one=30000 --input path="$RUNS" >"$TMP/o5" 2>"$TMP/e5"
check "identical inputs in one node: -3 ran once, 20001 once (and the plain 30000)" \
    "-3 20001 30000" "$(sort -n "$RUNS" | tr '\n' ' ' | sed 's/ $//')"
check "identical inputs: the followers share the result" \
    '{"many":[null,40002,40002,40002,null],"single":60000}' "$(cat "$TMP/o5")"
check "identical inputs: followers of a success are CACHED" \
    "succeeded  total 5  SUCCEEDED 1  CACHED 2  FAILED 2" \
    "$(status_line "$(exec_of "$TMP/e5")" many)"

# ---- canonical keys: the order of map keys never matters -------------------
cat >"$TMP/dict.yaml" <<'EOF'
name: dict
inputs:
  d: {type: "dict[int]"}
  path: {type: str}
tasks:
  withd:
    inputs: {x: int, d: "dict[int]", path: str}
    output: int
    cache: {version: "1"}
    plugin: {library: mapq_fault_plugin.so, symbol: count}
nodes:
  m: {map: withd, over: {x: [1, 2]}, with: {d: $inputs.d, path: $inputs.path}}
output: $m
EOF
fresh
"$MAPQ" run "$TMP/dict.yaml" --input 'd={"a": 1, "b": 2}' --input path="$RUNS" >/dev/null 2>&1
"$MAPQ" run "$TMP/dict.yaml" --input 'd={"b": 2, "a": 1}' --input path="$RUNS" >/dev/null 2>&1
check "map key order does not change the key: the second run ran nothing" "2" "$(runs)"

# ---- followers hold no slot of the window ---------------------------------------
# concurrency 2 over [1 x 6, 2, 3]: while the first 1 runs (it waits for a
# file), 2 and 3 must start: the five identical subtasks wait without
# holding slots.
cat >"$TMP/window.yaml" <<'EOF'
name: window
inputs:
  xs: {type: "list[int]"}
  dir: {type: str}
tasks:
  hold:
    inputs: {x: int, dir: str}
    output: int
    cache: {version: "w"}
    command:
      - sh
      - -c
      - |
        touch "$MAPQ_IN_dir/started.$MAPQ_IN_x"
        i=0
        while [ "$MAPQ_IN_x" = 1 ] && [ ! -e "$MAPQ_IN_dir/go" ] && [ $i -lt 1000 ]; do
            sleep 0.02; i=$((i + 1))
        done
        echo $((MAPQ_IN_x * 10))
nodes:
  m: {map: hold, over: {x: $inputs.xs}, with: {dir: $inputs.dir}, concurrency: 2}
output: $m
EOF
mkdir "$TMP/w"
"$MAPQ" run "$TMP/window.yaml" --input 'xs=[1,1,1,1,1,1,2,3]' --input dir="$TMP/w" \
    >"$TMP/w.out" 2>/dev/null &
wpid=$!
others_started() { [ -e "$TMP/w/started.2" ] && [ -e "$TMP/w/started.3" ]; }
wait_for 15 others_started
check "followers hold no slot: 2 and 3 ran while the leader held its slot" "yes" \
    "$(others_started && echo yes || echo no)"
touch "$TMP/w/go"
wait "$wpid"
check "followers: the output" "0 [10,10,10,10,10,10,20,30]" "$? $(cat "$TMP/w.out")"

# ---- only successes are cached ------------------------------------------------
fresh
"$MAPQ" run "$TMP/cached.yaml" --input 'xs=[-3]' --input one=20001 \
    --input path="$RUNS" >/dev/null 2>&1
check "a failure is not cached: -3 runs again, 20001 does not" "-3" "$(cat "$RUNS")"

# ---- --overwrite-cache ----------------------------------------------------------
fresh
"$MAPQ" run "$TMP/cached.yaml" --input 'xs=[1,2]' --input one=100 \
    --input path="$RUNS" --overwrite-cache >/dev/null 2>"$TMP/e7"
check "--overwrite-cache runs everything again" "3" "$(runs)"

# ---- ttl ------------------------------------------------------------------------
sed 's/cache: {version: "1"}/cache: {version: "ttl", ttl: 1s}/' "$TMP/cached.yaml" >"$TMP/ttl.yaml"
fresh
"$MAPQ" run "$TMP/ttl.yaml" --input 'xs=[1,2,3]' --input one=100 \
    --input path="$RUNS" >/dev/null 2>&1
check "ttl: entries carry their expiry" "yes" \
    "$("$MAPQ" cache ls --json | grep -q '"ttl_ms":[0-9]' && echo yes || echo no)"
ttl_gone() { [ "$("$MAPQ" cache ls --json | grep -c '"ttl_ms":[0-9]')" = 0 ]; }
wait_for 10 ttl_gone
fresh
"$MAPQ" run "$TMP/ttl.yaml" --input 'xs=[1,2,3]' --input one=100 \
    --input path="$RUNS" >/dev/null 2>&1
check "ttl: once expired, the subtasks run again" "4" "$(runs)"

# ---- mapq cache ls | rm | clear --------------------------------------------------
"$MAPQ" cache ls --task double >"$TMP/ls" 2>&1
check "cache ls: one line per entry of the task" "yes" \
    "$([ "$(grep -c '^double  *[0-9a-f]\{32\}  *[0-9]*  never expires$' "$TMP/ls")" -ge 10000 ] && echo yes || echo no)"
# Entries that never expire (the ttl ones above may expire meanwhile).
key=$(awk '/never expires$/ { print $2; exit }' "$TMP/ls")
before=$(grep -c 'never expires$' "$TMP/ls")
"$MAPQ" cache rm "$key" >"$TMP/rm" 2>&1
check "cache rm: removes that entry" "0 removed 1 cache entry $((before - 1)) 0" \
    "$? $(cat "$TMP/rm") $("$MAPQ" cache ls --task double | grep -c 'never expires$') $("$MAPQ" cache ls | grep -c "$key")"
"$MAPQ" cache rm nothex >/dev/null 2>"$TMP/rm2"
check "cache rm: a malformed key exits 2 with one line" "2 1" "$? $(wc -l <"$TMP/rm2")"
"$MAPQ" cache clear --task double >"$TMP/clear" 2>&1
check "cache clear --task: removes every entry of the task" "0 no cache entries of task double" \
    "$? $("$MAPQ" cache ls --task double)"
fresh
"$MAPQ" run "$TMP/cached.yaml" --input 'xs=[1,2]' --input one=100 \
    --input path="$RUNS" >/dev/null 2>&1
check "after clear: everything runs again" "3" "$(runs)"
finish
