#!/usr/bin/env bash
# Redis error replies never leave a run hanging or a result lost: writes
# refused under maxmemory (OOM) mid-run, then allowed again; a slow script
# that keeps Redis BUSY, with agents idle and mid-run; a Redis user that may
# not write result records (a missing permission), then may. Agents back off
# (jittered, capped), say each cause once and that it cleared, and every
# result is recorded exactly once. Agents run with -v: they log each retry
# at debug level ("... failed (N in a row) ..."), which is how tries are
# counted per agent. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis --own # CONFIG SET, ACL SETUSER
start_agents 3 -v
AGENTS=("${PIDS[@]}")

cat >"$TMP/naps.yaml" <<'EOF'
name: naps
inputs:
  xs: {type: "list[int]"}
tasks:
  nap:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'sleep 0.05; echo "$MAPQ_IN_x"']
nodes:
  n: {map: nap, over: {x: $inputs.xs}}
output: $n
EOF
# inputs FILE COUNT: {"xs": [0, ..., COUNT-1]}; upto COUNT: the output.
inputs() { python3 -c "import json; json.dump({'xs': list(range($2))}, open('$1', 'w'))"; }
upto() { python3 -c "print(list(range($1)))" | tr -d ' '; }

used() { redis_cli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r'; }
# results: result records of every execution (HLEN of each P:r:<exec>:<k>).
results() {
    local k total=0
    for k in $(redis_cli --scan --pattern "$P:r:*"); do
        total=$((total + $(redis_cli HLEN "$k")))
    done
    echo "$total"
}
some_results() { [ "$(results)" -ge "$1" ]; }
progressed() { [ "$(results)" -gt "$1" ]; }
# within SECONDS COMMAND...: whether COMMAND succeeds within SECONDS of wall
# time (wait_for counts polls, and results() makes slow ones).
within() {
    local end=$(($(date +%s%3N) + $1 * 1000))
    shift
    while [ "$(date +%s%3N)" -lt "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
loglines() { wc -l <"$TMP/agents.log"; }
# said PID FROM PATTERN: lines of agent PID after line FROM matching PATTERN.
said() {
    tail -n +"$(($2 + 1))" "$TMP/agents.log" | grep "mapq-agent\[$1\]" |
        grep -c -e "$3"
}
# each FROM MIN MAX PATTERN: "yes" when every agent said PATTERN MIN..MAX
# times after line FROM, else "no" and the counts.
each() {
    local p n ok=yes counts=""
    for p in "${AGENTS[@]}"; do
        n=$(said "$p" "$1" "$4")
        counts="$counts $n"
        { [ "$n" -ge "$2" ] && [ "$n" -le "$3" ]; } || ok=no
    done
    echo "# per agent:$counts ($4)" >>"$TMP/figures"
    [ "$ok" = yes ] && echo yes || echo "no:$counts"
}
each_said() { [ "$(each "$1" 1 1000000 "$2")" = yes ]; }

# ---- OOM mid-run -------------------------------------------------------------
N=400
inputs "$TMP/in.json" $N
timeout -s KILL 120 "$MAPQ" run "$TMP/naps.yaml" --inputs "$TMP/in.json" \
    >"$TMP/oom.out" 2>"$TMP/oom.err" &
run_pid=$!
wait_for 30 some_results 30
start=$(loglines)
redis_cli CONFIG SET maxmemory-policy noeviction >/dev/null
# Below what is used: every write is refused until it is lifted, whatever
# the run frees meanwhile.
redis_cli CONFIG SET maxmemory $(( $(used) / 2 )) >/dev/null
# Each agent meets it: its claims and results are refused.
oom='failed, retrying with backoff: OOM'
wait_for 30 each_said "$start" "$oom"
check "OOM mid-run: every agent says that Redis refuses writes" "yes" \
    "$(each "$start" 1 1000000 "$oom")"
stalled_at=$(results)
hold=$(loglines)
# Held for 6 s: no result lands, agents keep trying with backoff.
if within 6 progressed "$stalled_at"; then stalled=no; else stalled=yes; fi
tries=$(each "$hold" 1 40 'failed (.* in a row).*OOM')
redis_cli CONFIG SET maxmemory 0 >/dev/null
wait_for 90 exited "$run_pid"
wait "$run_pid"
rc=$?
check "OOM mid-run: mapq run ends with exit 0 once writes are allowed" "0" "$rc"
check "OOM mid-run: the output is complete and in order" "$(upto $N)" \
    "$(tr -d ' \n' <"$TMP/oom.out")"
check "OOM mid-run: each result recorded exactly once (HLEN of the results = $N)" \
    "$N" "$(results)"
check "OOM mid-run: no result landed while Redis refused writes ($stalled_at of $N)" \
    "yes" "$([ "$stalled" = yes ] && [ "$stalled_at" -lt "$N" ] && echo yes || echo no)"
# A loop without backoff tries thousands of times in 6 s.
check "OOM mid-run: each agent tried 1-40 times in 6 s (backoff)" "yes" "$tries"
# Once per path at most (claim, result, renewal, reap, ...), not per try.
check "OOM mid-run: each agent says it a few times (1-6), not per try" "yes" \
    "$(each "$start" 1 6 "$oom")"
wait_for 10 each_said "$start" 'works again after .*(OOM)'
check "OOM mid-run: each agent says when it cleared" "yes" \
    "$(each "$start" 1 6 'works again after .*(OOM)')"
# The driver of mapq run too: once per cause and path, not every tick.
drv_lines=$(grep -c 'OOM' "$TMP/oom.err")
check "OOM mid-run: mapq run says it a few times at most" "yes" \
    "$([ "$drv_lines" -le 6 ] && echo yes || echo "no: $drv_lines")"

# ---- BUSY for about 7 s, agents idle -------------------------------------------
redis_cli CONFIG SET busy-reply-threshold 100 >/dev/null
busy_errors() {
    redis_cli INFO errorstats | sed -n 's/^errorstat_BUSY:count=\([0-9]*\).*/\1/p' | tr -d '\r'
}
# busy [SECONDS]: a script keeps Redis busy that long (2 s by default).
busy() {
    redis_cli EVAL 'local s = tonumber(redis.call("TIME")[1]) + tonumber(ARGV[1])
        while tonumber(redis.call("TIME")[1]) < s do end
        return 1' 0 "${1:-2}" >/dev/null
}
start=$(loglines)
busy_before=$(busy_errors)
# Idle agents call Redis every 5 s (heartbeat): 7 s of BUSY (6-7 s: TIME
# counts whole seconds) meets each of them.
busy 7
busy_after=$(busy_errors)
wait_for 10 each_said "$start" 'works again after .*(BUSY)'
check "BUSY idle: each agent met it and says when it cleared" "yes" \
    "$(each "$start" 1 6 'works again after .*(BUSY)')"
check "BUSY idle: each agent says it a few times (1-6), not per try" "yes" \
    "$(each "$start" 1 6 'failed, retrying with backoff: BUSY')"
# Without backoff an agent made ~300 tries in 2 s.
check "BUSY idle: each agent tried 1-30 times" "yes" \
    "$(each "$start" 1 30 'failed (.* in a row).*BUSY')"
check "BUSY idle: Redis answered BUSY 1-90 times in all" "yes" \
    "$(n=$((${busy_after:-0} - ${busy_before:-0})); [ "$n" -ge 1 ] && [ "$n" -le 90 ] && echo yes || echo "no: $n")"
timeout -s KILL 60 "$MAPQ" run "$TMP/naps.yaml" --input 'xs=[1, 2, 3]' >"$TMP/busy.out" 2>"$TMP/busy.err"
check "BUSY idle: a run right after it succeeds" "0 [1,2,3]" "$? $(tr -d ' \n' <"$TMP/busy.out")"

# ---- BUSY for about 2 s, mid-run -------------------------------------------------
M=150
inputs "$TMP/in2.json" $M
before=$(results)
start=$(loglines)
timeout -s KILL 60 "$MAPQ" run "$TMP/naps.yaml" --inputs "$TMP/in2.json" \
    >"$TMP/busy2.out" 2>"$TMP/busy2.err" &
run_pid=$!
wait_for 30 some_results $((before + 20))
busy
wait_for 40 exited "$run_pid"
wait "$run_pid"
rc=$?
check "BUSY mid-run: mapq run ends with exit 0" "0" "$rc"
check "BUSY mid-run: the output is complete and in order" "$(upto $M)" \
    "$(tr -d ' \n' <"$TMP/busy2.out")"
check "BUSY mid-run: each result recorded exactly once" "$((before + M))" "$(results)"
check "BUSY mid-run: each agent tried 1-30 times" "yes" \
    "$(each "$start" 1 30 'failed (.* in a row).*BUSY')"

# ---- a permission missing, then given ------------------------------------------
# The Redis user may read every key but write no result record: results are
# refused, with the same error however often they are sent. That does not
# clear by itself: agents say so once, as an error naming the command, and
# try again at the longest delay until an operator gives the permission.
# (A key pattern grants its accesses only as a whole: %R~* to read all, and
# all access to the keys whose name does not go on with "r" after P:.)
M=60
inputs "$TMP/in3.json" $M
before=$(results)
start=$(loglines)
redis_cli ACL SETUSER default resetkeys '%R~*' "~$P:[^r]*" >/dev/null
timeout -s KILL 60 "$MAPQ" run "$TMP/naps.yaml" --inputs "$TMP/in3.json" \
    >"$TMP/perm.out" 2>"$TMP/perm.err" &
run_pid=$!
refused='error .*FCALL mapq1_step refused by redis: .*user executing the script'
wait_for 30 each_said "$start" "$refused"
hold=$(loglines)
if within 5 progressed "$before"; then stalled=no; else stalled=yes; fi
tries=$(each "$hold" 1 4 'FCALL mapq1_step failed (.* in a row)')
redis_cli ACL SETUSER default allkeys >/dev/null
wait_for 40 exited "$run_pid"
wait "$run_pid"
rc=$?
check "NOPERM: each agent says once, as an error, which command Redis refuses and why" \
    "yes" "$(each "$start" 1 1 "$refused")"
check "NOPERM: no result landed without the permission" "yes" "$stalled"
# At the longest delay (2 s): 2-3 tries in 5 s, not dozens.
check "NOPERM: each agent sent its results again 1-4 times in 5 s" "yes" "$tries"
check "NOPERM: once given, mapq run ends with exit 0" "0" "$rc"
check "NOPERM: the output is complete and in order" "$(upto $M)" \
    "$(tr -d ' \n' <"$TMP/perm.out")"
check "NOPERM: each result recorded exactly once" "$((before + M))" "$(results)"
check "NOPERM: each agent says when it works again" "yes" \
    "$(each "$start" 1 1 'FCALL mapq1_step works again after')"

# Figures: how often each agent said what.
sort -u "$TMP/figures"
finish
