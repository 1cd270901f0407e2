#!/usr/bin/env bash
# Ended executions leave Redis after their retention: --retention on mapq
# run (and recover, scheduler), `retention:` in the workflow (which wins),
# 3 days by default; Redis's memory returns to where it was; a cancelled
# execution expires too; mapq scheduler prunes P:execs; mapq ls lists what
# is kept and mapq rm deletes one. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis --own # INFO memory must be this test's alone
# Nor may the slow log hold memory: on a loaded machine (an ASan build
# beside other tests) calls over 10 ms are kept there with their
# arguments, several kB each, and would count as what a run left.
redis_cli CONFIG SET slowlog-log-slower-than -1 >/dev/null
# Nor latency histograms: Redis makes one (24,688 bytes) for a command the
# first time it runs, so a command first run during the second run (a
# path taken only under load, this test's own DBSIZE) would count as well.
# CI once saw five of them, 123,552 bytes.
redis_cli CONFIG SET latency-tracking no >/dev/null
start_agents 1
P=$MAPQ_NAMESPACE

# kept: the keys of the namespace other than the agents' own (P:leases
# keeps an agent that held leases until its next renewal or reap).
kept() {
    redis_cli --scan --pattern "$P:*" |
        grep -v -E "^$P:(agents|agent:.*|bell:.*|leases)$" | sort
}
nkept() { kept | wc -l | tr -d ' '; }
# used: Redis's memory without its connections' buffers, which an
# agent's busiest call sizes (used_memory - mem_clients_normal). A run may
# also grow a table of Redis's own once, when its keys peak higher than
# the first run's did: hence 64 kB, still well under what the run holds.
# (With latency tracking off, runs here came back to the byte.)
used() {
    redis_cli INFO memory | tr -d '\r' | awk -F: '
        $1 == "used_memory" { u = $2 } $1 == "mem_clients_normal" { c = $2 }
        END { print u - c }'
}
# where: what INFO says the memory is, for a failure to show.
where() {
    redis_cli INFO memory | tr -d '\r' |
        grep -E '^(used_memory|used_memory_overhead|mem_clients_normal|used_memory_scripts):' |
        tr '\n' ' '
    echo "keys $(redis_cli DBSIZE)"
}

cat >"$TMP/wide.yaml" <<'EOF'
name: wide
inputs:
  xs: {type: "list[int]"}
tasks:
  sq: {inputs: {x: int}, output: int, command: [sh, -c, 'echo $((MAPQ_IN_x * MAPQ_IN_x)); echo done >&2']}
nodes:
  n: {map: sq, over: {x: $inputs.xs}}
output: $n
EOF
xs=$(python3 -c 'print(list(range(1000)))' | tr -d ' ')

# ---- --retention: everything expires, memory comes back ---------------------
"$MAPQ" run "$TMP/wide.yaml" --input "xs=$xs" --retention 2s >/dev/null \
    2>"$TMP/a.err"
check "a 1000-element run with --retention 2s succeeds" 0 "$?"
a=$(exec_of "$TMP/a.err")
check "its record expires within 2 s" yes \
    "$(t=$(redis_cli PTTL "$P:x:$a"); [ "$t" -gt 0 ] && [ "$t" -le 2000 ] && echo yes || echo "no ($t)")"
check "so do its results and logs" yes \
    "$(t=$(redis_cli PTTL "$P:r:$a:0"); u=$(redis_cli PTTL "$P:log:$a"); [ "$t" -gt 0 ] && [ "$u" -gt 0 ] && echo yes || echo "no ($t $u)")"
check "mapq ls shows it, with when it expires" 1 \
    "$("$MAPQ" ls | grep -c "^$a  succeeded  wide .* 20[0-9-]* [0-9:]*$")"
only_execs() { [ "$(kept)" = "$P:execs" ]; }
wait_for 20 only_execs
check "after 2 s nothing of it is left but its P:execs entry" "$P:execs" \
    "$(kept | tr '\n' ' ' | sed 's/ $//')"
check "mapq ls leaves out what expired" 0 "$("$MAPQ" ls | grep -c "^$a")"
base=$(used)
base_where=$(where)
"$MAPQ" run "$TMP/wide.yaml" --input "xs=$xs" --retention 2s >/dev/null \
    2>"$TMP/b.err"
b=$(exec_of "$TMP/b.err")
grown=$(used)
check "a second run holds memory while kept (> 100 kB more)" yes \
    "$([ $((grown - base)) -gt 100000 ] && echo yes || echo "no ($base -> $grown)")"
gone() { [ "$(redis_cli EXISTS "$P:x:$b" "$P:r:$b:0" "$P:log:$b")" = 0 ]; }
wait_for 20 gone
back() { [ $(($(used) - base)) -lt 65536 ]; }
wait_for 10 back
check "after its retention Redis's memory is back (within 64 kB)" yes \
    "$(u=$(used); [ $((u - base)) -lt 65536 ] && echo yes || echo "no ($base -> $u; before: $base_where; after: $(where))")"

# ---- the scheduler prunes P:execs ------------------------------------------
"$MAPQ" scheduler >"$TMP/sched.log" 2>&1 &
PIDS+=($!)
pruned() { [ "$(redis_cli ZCARD "$P:execs")" = 0 ]; }
wait_for 20 pruned
check "mapq scheduler drops expired executions from P:execs" 0 \
    "$(redis_cli ZCARD "$P:execs")"
check "nothing is left at all" 0 "$(nkept)"

# ---- retention: in the workflow wins; the default is 3 days --------------------
sed 's/^name: wide$/name: wide\nretention: 1s/' "$TMP/wide.yaml" >"$TMP/short.yaml"
"$MAPQ" run "$TMP/short.yaml" --input 'xs=[1,2]' --retention 1h >/dev/null \
    2>"$TMP/c.err"
c=$(exec_of "$TMP/c.err")
check "retention: 1s in the workflow wins over --retention 1h" yes \
    "$(t=$(redis_cli PTTL "$P:x:$c"); [ "$t" -gt 0 ] && [ "$t" -le 1000 ] && echo yes || echo "no ($t)")"
"$MAPQ" run "$TMP/wide.yaml" --input 'xs=[1,2]' >/dev/null 2>"$TMP/d.err"
d=$(exec_of "$TMP/d.err")
check "by default an execution is kept 3 days" yes \
    "$(t=$(redis_cli PTTL "$P:x:$d"); [ "$t" -gt 259000000 ] && [ "$t" -le 259200000 ] && echo yes || echo "no ($t)")"
sed 's/^name: wide$/name: wide\nretention: 500ms/' "$TMP/wide.yaml" >"$TMP/bad.yaml"
"$MAPQ" validate "$TMP/bad.yaml" >/dev/null 2>"$TMP/bad.err"
check "retention under 1s: exit 2" 2 "$?"
check "... naming where" 1 "$(grep -c "bad.yaml:2:12: 'retention' must be 1s or more" "$TMP/bad.err")"
"$MAPQ" submit "$TMP/wide.yaml" --input 'xs=[1]' --retention 1h >/dev/null \
    2>"$TMP/sub.err"
check "--retention on submit: exit 2 (the scheduler's or the workflow's apply)" \
    2 "$?"

# ---- a cancelled execution expires too --------------------------------------
sed 's/^  sq: {inputs/  sq: {queue: nobody, inputs/' "$TMP/wide.yaml" >"$TMP/stuck.yaml"
"$MAPQ" run "$TMP/stuck.yaml" --input 'xs=[1,2,3]' --retention 2s \
    >/dev/null 2>"$TMP/e.err" &
run=$!
started() { [ -n "$(exec_of "$TMP/e.err")" ]; }
wait_for 10 started
e=$(exec_of "$TMP/e.err")
"$MAPQ" cancel "$e" 2>/dev/null
wait "$run"
check "the cancelled run exits 1" 1 "$?"
check "its record expires within 2 s" yes \
    "$(t=$(redis_cli PTTL "$P:x:$e"); [ "$t" -gt 0 ] && [ "$t" -le 2000 ] && echo yes || echo "no ($t)")"

# ---- mapq rm --------------------------------------------------------------
"$MAPQ" rm "$d" 2>/dev/null
check "mapq rm: exit 0" 0 "$?"
check "mapq rm: nothing of it is left" 0 \
    "$(kept | grep -c "$d" || true)"
check "mapq rm: mapq ls no longer lists it" 0 "$("$MAPQ" ls | grep -c "^$d")"
"$MAPQ" rm "$d" 2>"$TMP/rm.err"
check "mapq rm again: exit 1" 1 "$?"
check "... no such execution" 1 "$(grep -c "no execution '$d'" "$TMP/rm.err")"
"$MAPQ" run "$TMP/stuck.yaml" --input 'xs=[1]' >/dev/null 2>"$TMP/f.err" &
run=$!
started2() { [ -n "$(exec_of "$TMP/f.err")" ]; }
wait_for 10 started2
f=$(exec_of "$TMP/f.err")
"$MAPQ" rm "$f" 2>"$TMP/rm2.err"
check "mapq rm of a running execution: exit 1" 1 "$?"
check "... saying to cancel it first" 1 \
    "$(grep -c "execution $f has not ended: cancel it first" "$TMP/rm2.err")"
check "... and it is still there" 1 "$(redis_cli EXISTS "$P:x:$f")"
check "mapq ls --json lists it as running" running \
    "$("$MAPQ" ls --json | python3 -c "import json, sys; print([e['status'] for e in json.load(sys.stdin)['executions'] if e['execution'] == '$f'][0])")"
"$MAPQ" cancel "$f" 2>/dev/null
wait "$run"
finish
