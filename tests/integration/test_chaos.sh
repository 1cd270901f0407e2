#!/usr/bin/env bash
# Many faults in one map: agents killed with -9 and restarted under the
# same name, an agent stopped until its leases are taken back and then
# let go on (a host that hung), an agent drained with SIGTERM, redis-server
# killed with -9 and stopped with SIGTERM (appendonly yes), `mapq run`
# killed with -9 (a `mapq scheduler` adopts the execution) and that
# scheduler killed with -9 and started again. Each fault comes once the
# map has made more progress, so all of them land mid-map. The execution
# still succeeds with every output correct, each result recorded once and
# nothing left queued or leased. Each kind of fault has its own test; this
# one is for how they meet. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

if [ -n "${MAPQ_TEST_REDIS_URL:-}" ]; then
    echo "# skipped with MAPQ_TEST_REDIS_URL: it restarts redis-server"
    finish
fi
N=2000

cat >"$TMP/double.yaml" <<'EOF'
name: double
inputs:
  xs: {type: "list[int]"}
tasks:
  double:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'sleep 0.0$((MAPQ_IN_x % 5)); echo $((MAPQ_IN_x * 2))']
  total:
    inputs: {ys: "list[int]"}
    output: int
    command: [sh, -c, 'echo "$MAPQ_IN_ys" | tr -d "[]" | tr "," "\n" | awk "{s+=\$1} END {print s}"']
nodes:
  doubled: {map: double, over: {x: $inputs.xs}, concurrency: 12}
  sum: {task: total, with: {ys: $doubled}}
output: {doubled: $doubled, sum: $sum}
EOF
list() { seq -s, 0 $(($1 - 1)) | sed 's/^/[/; s/$/]/'; }
expected() {
    echo "{\"doubled\":$(seq -s, 0 2 $((2 * $1 - 2)) | sed 's/^/[/; s/$/]/'),\"sum\":$(($1 * ($1 - 1)))}"
}

AOF="$TMP/aof"
mkdir "$AOF"
export MAPQ_REDIS_URL="unix://$AOF/redis.sock"
redis_cli() { redis-cli -s "$AOF/redis.sock" "$@"; }
start_aof() {
    redis-server --port 0 --unixsocket "$AOF/redis.sock" --save '' \
        --appendonly yes --appendfsync everysec --dir "$AOF" \
        >>"$AOF/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_for 10 redis_pong
}
start_aof
P=$MAPQ_NAMESPACE

# Agents by number, each always under the name ch-<n>; started again
# after a fault with the same name, as systemd would. Every process goes
# in PIDS as it starts, for the teardown whenever the test ends.
declare -A AGENTS
start_agent() {
    "$AGENT" --name "ch-$1" --slots 2 --lease 2s >>"$TMP/agents.log" 2>&1 &
    AGENTS[$1]=$!
    PIDS+=($!)
}
# stop_agent N SIGNAL: signals agent N and waits for it to end (bash says
# nothing of a job it killed).
stop_agent() {
    { kill -"$2" "${AGENTS[$1]}" && wait "${AGENTS[$1]}"; } 2>/dev/null
}
for i in 1 2 3 4; do start_agent "$i"; done
start_scheduler() {
    "$MAPQ" scheduler --lease 2s >>"$TMP/scheduler.log" 2>&1 &
    SCHEDULER=$!
    PIDS+=($!)
}
start_scheduler

"$MAPQ" run "$TMP/double.yaml" --input xs="$(list $N)" --lease 2s \
    >"$TMP/run.out" 2>"$TMP/run.err" &
RUN=$!
PIDS+=($!)
wait_for 10 grep -q "^mapq: execution" "$TMP/run.err"
id=$(exec_of "$TMP/run.err")

results() { redis_cli HLEN "$P:r:$id:0" 2>/dev/null || echo 0; }
# reached K: whether K tenths of the map are recorded.
reached() { [ "$(results)" -ge $(($1 * N / 10)) ]; }
# taken_back NAME: agent NAME has not renewed for longer than its lease,
# and no agent's leases are left past their deadline (the reaper has run
# since).
taken_back() {
    local t now beat
    mapfile -t t < <(redis_cli TIME)
    now=$((t[0] * 1000 + t[1] / 1000))
    beat=$(redis_cli ZSCORE "$P:agents" "$1")
    [ -n "$beat" ] && [ $((now - ${beat%.*})) -gt 2500 ] &&
        [ "$(redis_cli ZCOUNT "$P:leases" -inf "$now")" = 0 ]
}
fault=0 midmap=0
# at K WHAT: waits for K tenths of the map, then says which fault comes
# (counted in midmap while the map is not yet all recorded).
at() {
    local r
    fault=$((fault + 1))
    wait_for 60 reached "$1"
    r=$(results)
    [ "$r" -lt "$N" ] && midmap=$((midmap + 1))
    echo "# fault $fault at $r of $N recorded: $2"
}

at 1 "agent 1 killed with -9"
stop_agent 1 KILL
start_agent 1
at 2 "mapq run killed with -9"
{ kill -9 "$RUN" && wait "$RUN"; } 2>/dev/null
at 3 "agent 2 drained with SIGTERM"
stop_agent 2 TERM
start_agent 2
at 4 "redis-server killed with -9"
{ kill -9 "$REDIS_PID" && wait "$REDIS_PID"; } 2>/dev/null
start_aof
at 5 "agent 3 stopped until its leases are taken back, then continued"
kill -STOP "${AGENTS[3]}"
wait_for 30 taken_back ch-3
taken=$?
kill -CONT "${AGENTS[3]}"
at 6 "the scheduler killed with -9"
{ kill -9 "$SCHEDULER" && wait "$SCHEDULER"; } 2>/dev/null
start_scheduler
at 7 "agents 1 and 4 killed with -9 together"
{ kill -9 "${AGENTS[1]}" "${AGENTS[4]}" &&
    wait "${AGENTS[1]}" "${AGENTS[4]}"; } 2>/dev/null
start_agent 1
start_agent 4
at 8 "redis-server stopped with SIGTERM"
kill -TERM "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
start_aof

ended() { [ "$(redis_cli HGET "$P:x:$id" state)" = succeeded ]; }
wait_for 120 ended
check "chaos: all 8 faults came while the map ran" "8 8" "$fault $midmap"
check "chaos: a stopped agent's leases are taken back" 0 "$taken"
check "chaos: the execution succeeds" "succeeded" \
    "$(redis_cli HGET "$P:x:$id" state)"
check "chaos: every output is correct" "$(expected $N)" \
    "$("$MAPQ" result "$id" 2>&1)"
check "chaos: all $N results recorded" "$N" "$(results)"
check "chaos: nothing left queued or leased" "0 0" \
    "$(queue_len default nc) $(lease_count)"
check "chaos: the scheduler adopted the execution" "yes" \
    "$(grep -q "adopting execution $id" "$TMP/scheduler.log" && echo yes || echo no)"
# In the sanitized build, a process that met a fault badly says so here.
check "chaos: no sanitizer report from any process" "" \
    "$(grep -h -i -E 'sanitizer|runtime error' "$TMP/agents.log" "$TMP/scheduler.log" "$TMP/run.err")"
finish
