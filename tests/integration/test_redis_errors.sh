#!/usr/bin/env bash
# Redis error replies never leave a run hanging or a result lost: writes
# refused under maxmemory (OOM) mid-run, then allowed again; a slow script
# that keeps Redis BUSY. Agents back off (jittered, capped), say each cause
# once and that it cleared, and every result is recorded exactly once.
# Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis
start_agents 3

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
N=300
python3 -c "import json; json.dump({'xs': list(range($N))}, open('$TMP/in.json', 'w'))"
expected=$(python3 -c "print(list(range($N)))" | tr -d ' ')

used() { redis_cli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r'; }
results() {
    local k total=0
    for k in $(redis_cli --scan --pattern "$P:r:*"); do
        total=$((total + $(redis_cli HLEN "$k")))
    done
    echo "$total"
}
some_results() { [ "$(results)" -ge "$1" ]; }
logged() { [ "$(grep -c -F "$1" "$TMP/agents.log")" -ge "$2" ]; }

# ---- OOM mid-run -------------------------------------------------------------
timeout -s KILL 120 "$MAPQ" run "$TMP/naps.yaml" --inputs "$TMP/in.json" \
    >"$TMP/oom.out" 2>"$TMP/oom.err" &
run_pid=$!
wait_for 30 some_results 30
redis_cli CONFIG SET maxmemory-policy noeviction >/dev/null
# Below what is used: every write is refused until it is lifted.
redis_cli CONFIG SET maxmemory $(( $(used) / 2 )) >/dev/null
# Writes are refused once the agents have filled what is left.
wait_for 30 logged "OOM" 1
stalled_at=$(results)
# Held for a while: agents keep trying with backoff, not in a tight loop.
before=$(redis_cli INFO stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p' | tr -d '\r')
wait_for 4 false
after=$(redis_cli INFO stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p' | tr -d '\r')
redis_cli CONFIG SET maxmemory 0 >/dev/null
exited() { ! kill -0 "$1" 2>/dev/null; }
wait_for 90 exited "$run_pid"
wait "$run_pid"
check "OOM mid-run: mapq run ends with exit 0 once writes are allowed" "0" "$?"
check "OOM mid-run: the output is complete and in order" "$expected" "$(tr -d ' \n' <"$TMP/oom.out")"
check "OOM mid-run: each result recorded exactly once" "$N" "$(results)"
check "OOM mid-run: progress had stopped while Redis refused writes" "yes" \
    "$([ "$stalled_at" -lt "$N" ] && echo yes || echo no)"
# Three agents, four seconds: a tight loop would send thousands.
check "OOM mid-run: agents back off (under 400 commands in 4 s)" "yes" \
    "$([ $((after - before)) -lt 400 ] && echo yes || echo "no: $((after - before))")"
oom_lines=$(grep -c 'failed, retrying with backoff: OOM' "$TMP/agents.log")
check "OOM mid-run: each agent says it a few times at most, not per try" "yes" \
    "$([ "$oom_lines" -ge 1 ] && [ "$oom_lines" -le 12 ] && echo yes || echo "no: $oom_lines")"
check "OOM mid-run: and says when it cleared" "yes" \
    "$(grep -q 'works again after' "$TMP/agents.log" && echo yes || echo no)"
# The driver of mapq run too: once per cause and path, not every tick.
drv_lines=$(grep -c 'OOM' "$TMP/oom.err")
check "OOM mid-run: mapq run says it a few times at most" "yes" \
    "$([ "$drv_lines" -le 6 ] && echo yes || echo "no: $drv_lines")"

# ---- BUSY for about 2 s --------------------------------------------------------
redis_cli CONFIG SET busy-reply-threshold 100 >/dev/null
: >"$TMP/agents.log"
busy_errors() {
    redis_cli INFO errorstats | sed -n 's/^errorstat_BUSY:count=\([0-9]*\).*/\1/p' | tr -d '\r'
}
busy_before=$(busy_errors)
redis_cli EVAL 'local t = redis.call("TIME"); local s = t[1] + 2; while tonumber(redis.call("TIME")[1]) < s do end return 1' 0 >/dev/null &
busy_pid=$!
wait "$busy_pid"
busy_after=$(busy_errors)
timeout -s KILL 60 "$MAPQ" run "$TMP/naps.yaml" --input 'xs=[1, 2, 3]' >"$TMP/busy.out" 2>"$TMP/busy.err"
check "BUSY: a run right after it succeeds" "0 [1,2,3]" "$? $(tr -d ' \n' <"$TMP/busy.out")"
busy_lines=$(grep -c 'BUSY' "$TMP/agents.log")
check "BUSY: agents said so a few times at most" "yes" \
    "$([ "$busy_lines" -le 12 ] && echo yes || echo "no: $busy_lines")"
# Three agents for two seconds: without backoff they made ~900 tries.
check "BUSY: Redis answered BUSY a bounded number of times (1-100)" "yes" \
    "$(n=$((${busy_after:-0} - ${busy_before:-0})); [ "$n" -ge 1 ] && [ "$n" -le 100 ] && echo yes || echo "no: $n")"
finish
