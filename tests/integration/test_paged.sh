#!/usr/bin/env bash
# Paged lists (docs/PROTOCOL.md "Paged lists"): an input list of a JSON
# inputs file and a map node's output of more than 65,536 elements go to
# P:pg:<exec> a page at a time, and the values hold references. Real agents
# run a 70,000-element plugin map over such an input; its output is printed
# page by page by mapq run and mapq result, bound by a later map (over) and
# by a task that takes it whole (with), and reused by mapq recover; each is
# checked exactly.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2
N=70000
P=$MAPQ_NAMESPACE

python3 -c "import json; print(json.dumps({'xs': list(range($N))}))" >"$TMP/xs.json"
squares() { python3 -c "import json; print(json.dumps([x * x for x in range($N)], separators=(',', ':')))"; }
squares >"$TMP/want.json"

# The tasks of every workflow here: plugins, and one command that takes a
# list whole. wf FILE NAME: a workflow of them whose nodes and output are
# read from stdin, over the input list xs (and a threshold t).
tasks() {
    cat <<'EOF2'
tasks:
  square:
    inputs: {x: int}
    output: int
    plugin: {library: mapq_example_plugin.so, symbol: square}
  detect:
    inputs: {data_point: int, threshold: int}
    output: bool
    plugin: {library: mapq_example_plugin.so, symbol: detect}
  fail_on:
    inputs: {x: int, bad: int}
    output: int
    plugin: {library: mapq_example_plugin.so, symbol: fail_on}
  total:
    inputs: {all: "list[int]"}
    output: str
    command: [python3, -c, 'import json, sys; a = json.load(sys.stdin)["all"]; print(json.dumps("%d %d" % (len(a), sum(a))))']
EOF2
}
wf() {
    {
        echo "name: $2"
        echo 'inputs: {xs: {type: "list[int]"}, t: {type: int, default: 100}}'
        tasks
        echo "nodes:"
        cat
    } >"$1"
}

wf "$TMP/sq.yaml" paged <<'EOF2'
  sq: {map: square, over: {x: $inputs.xs}}
output: $sq
EOF2

# 1. mapq run prints the paged output exactly; Redis holds pages and a
#    reference, not the list.
"$MAPQ" run "$TMP/sq.yaml" --inputs "$TMP/xs.json" >"$TMP/out.json" 2>"$TMP/err"
check "run: exits 0" 0 $?
check "run: prints the $N squares, in order" "$(cat "$TMP/want.json")" "$(cat "$TMP/out.json")"
x=$(exec_of "$TMP/err")
fields() { redis_cli HKEYS "$P:pg:$1" | grep -c "^$2/"; }
check "pages: the input list is 70 pages of 1,000 in P:pg" 70 "$(fields "$x" i:xs)"
check "pages: the output list is 70 pages of 1,000 too" 70 "$(fields "$x" o:0)"
check "pages: the record's inputs hold a reference, not the list" yes \
    "$([ "$(redis_cli HSTRLEN "$P:x:$x" inputs)" -lt 100 ] && echo yes || echo no)"
check "pages: a page holds its 1,000 elements" 1000 \
    "$(redis_cli --no-raw HGET "$P:pg:$x" o:0/69 | python3 -c '
import sys
s = sys.stdin.read()
# the reply is a quoted string of msgpack: an array 16 header of 1000
print(1000 if s.startswith("\"\\xdc\\x03\\xe8") else s[:20])')"
check "pages: o:0 is a reference (an ext of type 1), not the list" "c7 01" \
    "$(redis_cli HGET "$P:x:$x" o:0 | od -An -tx1 -N3 | awk '{ print $1, $3 }')"
check "pages: output is the same reference" "$(redis_cli HGET "$P:x:$x" o:0 | od -An -tx1)" \
    "$(redis_cli HGET "$P:x:$x" output | od -An -tx1)"

# 1b. Input pages are checked as they are read, before anything reaches
#     Redis: mapq validate needs none, and an element that does not fit
#     fails the run with its place, exit 2, nothing written.
check "validate: a long input list is checked without Redis" \
    "$TMP/sq.yaml: workflow 'paged' is valid (4 tasks, 1 nodes)" \
    "$(MAPQ_REDIS_URL=unix:///nonexistent "$MAPQ" validate "$TMP/sq.yaml" --inputs "$TMP/xs.json" 2>&1)"
python3 -c "
import json
xs = list(range($N)); xs[69000] = 'x'
print(json.dumps({'xs': xs}))" >"$TMP/bad.json"
# The namespace's keys, but the agents' own (they register and beat while
# the run is refused, and may still be registering when it starts).
run_keys() {
    redis_cli --scan --pattern "$MAPQ_NAMESPACE:*" |
        grep -v -e "^$MAPQ_NAMESPACE:agents\$" -e "^$MAPQ_NAMESPACE:agent:" | sort
}
# The agents' leases of the run above (subtasks they had prefetched) end
# with their next calls, and P:leases with their next heartbeat: the keys
# are taken once that is over, so that what changes is the run's alone.
no_leases() { [ "$(redis_cli EXISTS "$P:leases")" = 0 ]; }
wait_for 10 no_leases
before=$(run_keys)
"$MAPQ" run "$TMP/sq.yaml" --inputs "$TMP/bad.json" >/dev/null 2>"$TMP/bad.err"
check "bad element: exit 2" 2 $?
check "bad element: its place and index" \
    "$TMP/bad.json:1:$(python3 -c "
import json
xs = list(range($N)); xs[69000] = 'x'
print(json.dumps({'xs': xs}).index('\"x\"') + 1)"): 'xs': [69000]: expected int, got str" \
    "$(cat "$TMP/bad.err")"
check "bad element: nothing written to Redis" "$before" "$(run_keys)"

# 2. mapq result reads the pages, as a list and pretty-printed.
check "result: the output" "$(cat "$TMP/want.json")" "$("$MAPQ" result "$x" 2>&1)"
check "result --node: the node's output" "$(cat "$TMP/want.json")" \
    "$("$MAPQ" result "$x" --node sq 2>&1)"
check "result --json: the whole list, pretty" "$N $((N - 1)) $(((N - 1) * (N - 1)))" \
    "$("$MAPQ" result "$x" --json | python3 -c 'import json, sys; v = json.load(sys.stdin); print(len(v), v.index(v[-1]), v[-1])')"
"$MAPQ" result "$x" --json >"$TMP/pretty.json"
check "result --json: indented as json.dumps(indent=2) indents it, page by page" yes \
    "$(python3 -c "
import json
want = json.dumps(json.load(open('$TMP/want.json')), indent=2) + '\\n'
print('yes' if open('$TMP/pretty.json').read() == want else 'no')")"

# 3. The list given as --input xs=@FILE.json (a bare JSON list) is paged as
#    a list in an inputs file is, and run --json writes the paged output
#    into its summary page by page.
python3 -c "import json; print(json.dumps(list(range($N))))" >"$TMP/list.json"
"$MAPQ" run "$TMP/sq.yaml" --input xs=@"$TMP/list.json" --json >"$TMP/sum.json" 2>/dev/null
check "run --json: succeeded, with the whole output" "succeeded $N True" \
    "$(python3 -c "
import json
s = json.load(open('$TMP/sum.json'))
print(s['status'], len(s['output']), s['output'] == json.load(open('$TMP/want.json')))")"
x2=$(python3 -c "import json; print(json.load(open('$TMP/sum.json'))['execution'])")
check "--input xs=@FILE.json: the list is 70 pages in P:pg" 70 "$(fields "$x2" i:xs)"
printf '[1, "two"]' >"$TMP/badlist.json"
"$MAPQ" run "$TMP/sq.yaml" --input xs=@"$TMP/badlist.json" >/dev/null 2>"$TMP/badlist.err"
check "--input xs=@FILE.json: a misfit exits 2, naming the input, file and element" \
    "2 --input xs: $TMP/badlist.json: [1]: expected int, got str" \
    "$? $(cat "$TMP/badlist.err")"

# 4. Later nodes bind the paged list: over (a map of its elements) and with
#    (the whole list to one task), and a map output of two paged lists.
wf "$TMP/chain.yaml" chain <<'EOF2'
  sq: {map: square, over: {x: $inputs.xs}}
  big: {map: detect, over: {data_point: $sq}, with: {threshold: $inputs.t}}
  sum: {task: total, with: {all: $sq}}
  sumx: {task: total, with: {all: $inputs.xs}}
output: {big: $big, sum: $sum, sumx: $sumx}
EOF2
"$MAPQ" run "$TMP/chain.yaml" --inputs "$TMP/xs.json" --input t=100 >"$TMP/chain.json" 2>"$TMP/err"
check "chain: exits 0" 0 $?
xc=$(exec_of "$TMP/err")
"$MAPQ" result "$xc" --json >"$TMP/chain-pretty.json"
check "chain: result --json indents a map of paged lists as json.dumps does" yes \
    "$(python3 -c "
import json
want = json.dumps(json.load(open('$TMP/chain.json')), indent=2) + '\\n'
print('yes' if open('$TMP/chain-pretty.json').read() == want else 'no')")"
check "chain: over a paged list, with paged lists (an output, an input)" \
    "$N 11 $N $(python3 -c "print(sum(x * x for x in range($N)))") $N $((N * (N - 1) / 2))" \
    "$(python3 -c "
import json
o = json.load(open('$TMP/chain.json'))
print(len(o['big']), o['big'].index(True), o['sum'], o['sumx'])")"

# 5. mapq recover reuses the paged output of the execution it recovers: the
#    node after it reads the old execution's pages and fails the same way.
wf "$TMP/fails.yaml" fails <<'EOF2'
  sq: {map: square, over: {x: $inputs.xs}}
  chk: {map: fail_on, over: {x: $sq}, with: {bad: 4}}
output: $chk
EOF2
"$MAPQ" run "$TMP/fails.yaml" --inputs "$TMP/xs.json" >/dev/null 2>"$TMP/err1"
check "recover: the first run fails on x=4" 1 $?
x1=$(exec_of "$TMP/err1")
"$MAPQ" recover "$x1" >/dev/null 2>"$TMP/err2"
check "recover: fails the same way" 1 $?
x2=$(exec_of "$TMP/err2")
check "recover: sq is taken whole from the first execution" \
    "$(redis_cli HGET "$P:x:$x1" o:0 | od -An -tx1)" \
    "$(redis_cli HGET "$P:x:$x2" o:0 | od -An -tx1)"
# (How many succeeded before the node gave up depends on timing.)
check "recover: chk read the old pages and failed on index 2" \
    "node 'chk' failed: N of 70000 subtasks succeeded, 70000 needed: 2: refusing x=4" \
    "$(redis_cli HGET "$P:x:$x2" error | sed 's/failed: [0-9]* of/failed: N of/')"

# 6. A page gone from Redis: a node that reads it fails naming it, and the
#    output cannot be printed.
redis_cli HDEL "$P:pg:$x1" o:0/5 >/dev/null
"$MAPQ" recover "$x1" >/dev/null 2>"$TMP/err4"
check "missing page: the node reading it fails" 1 $?
check "missing page: the error names it" \
    "node 'chk': input 'x': page 5 of o:0 is missing or is not a list of 1000 elements" \
    "$(redis_cli HGET "$P:x:$(exec_of "$TMP/err4")" error)"
redis_cli HDEL "$P:pg:$x" o:0/3 >/dev/null
"$MAPQ" result "$x" >/dev/null 2>"$TMP/err3"
check "missing page: mapq result fails" 1 $?
check "missing page: named" \
    "mapq: the output cannot be written as JSON: page 3 of o:0 is missing or is not a list of 1000 elements" \
    "$(cat "$TMP/err3")"

# 7. mapq run killed with -9 while a map over a paged list runs: the
#    scheduler that adopts it rebuilds where each subtask stands (reading
#    the pages again) and finishes it.
wf "$TMP/take.yaml" take <<'EOF2'
  sq: {map: square, over: {x: $inputs.xs}}
  big: {map: detect, over: {data_point: $sq}, with: {threshold: 100}, concurrency: 20}
output: $big
EOF2
"$MAPQ" scheduler --lease 2s >"$TMP/scheduler.log" 2>&1 &
PIDS+=($!)
"$MAPQ" run "$TMP/take.yaml" --inputs "$TMP/xs.json" --lease 2s >/dev/null 2>"$TMP/err5" &
run_pid=$!
wait_for 10 grep -q "^mapq: execution" "$TMP/err5"
x5=$(exec_of "$TMP/err5")
has_results() { [ "$(redis_cli HLEN "$P:r:$1:1")" -ge "$2" ]; }
state_is() { [ "$(redis_cli HGET "$P:x:$1" state)" = "$2" ]; }
wait_for 60 has_results "$x5" 2000
kill -9 "$run_pid"
check "takeover: mapq run was killed while 'big' ran" yes \
    "$([ "$(redis_cli HLEN "$P:r:$x5:1")" -lt $N ] && echo yes || echo no)"
wait_for 30 grep -q "node 'big' reconciled" "$TMP/scheduler.log"
check "takeover: the adopter scanned 'big' over the paged list" 1 \
    "$(grep -c "execution $x5: node 'big' reconciled" "$TMP/scheduler.log")"
wait_for 120 state_is "$x5" succeeded
check "takeover: the output is whole" "$N 11" \
    "$("$MAPQ" result "$x5" | python3 -c 'import json, sys; v = json.load(sys.stdin); print(len(v), v.index(True))')"
check "takeover: each result recorded once" $N "$(redis_cli HLEN "$P:r:$x5:1")"
finish
