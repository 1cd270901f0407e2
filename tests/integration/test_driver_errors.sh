#!/usr/bin/env bash
# The driver (mapq run, mapq scheduler) when Redis answers with an error:
#  - an ACL user lacking a command, or the key pattern, that the driver
#    needs: mapq run prints one error naming the command and what the user
#    lacks, and exits 3 at once; mapq scheduler logs it once and keeps
#    trying, and drives the execution once the permission is granted;
#  - Redis full (maxmemory under noeviction) while the driver pushes a
#    large map: pushes are retried with backoff, the cause is logged once
#    per path, and once memory is freed the run finishes with every output;
#  - Redis restarted without persistence: mapq run says that Redis no
#    longer has the execution, naming it, and exits 3.
# Waits are bounded polls; the only sleeps set how long a fault lasts.
. "$(dirname "$0")/harness.sh"

if [ -n "${MAPQ_TEST_REDIS_URL:-}" ]; then
    echo "# skipped: needs Redis servers of its own (ACL, maxmemory, restart)"
    finish
fi
start_redis --own # its CONFIG SET and restart are the server's
NS=$MAPQ_NAMESPACE

cat >"$TMP/two.yaml" <<'EOF'
name: two
inputs:
  xs: {type: "list[int]", default: [1, 2]}
tasks:
  id: {inputs: {x: int}, output: int, command: [echo, "{x}"]}
nodes:
  n: {map: id, over: {x: $inputs.xs}}
output: $n
EOF

# ---- an ACL user lacking a permission ---------------------------------
# A TCP Redis of its own: unix URLs carry no user or password.
for try in 1 2 3; do
    PORT=$(free_port)
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP" >"$TMP/acl-redis.log" 2>&1 &
    ACL_PID=$!
    PIDS+=("$ACL_PID")
    wait_for 5 redis-cli -p "$PORT" PING && break
done
acl() { redis-cli -p "$PORT" "$@"; }
# refusals CLI KIND: how many errors of KIND (NOPERM, OOM) the Redis that
# CLI (acl, redis_cli) talks to has replied.
refusals() {
    local n
    n=$("$1" INFO errorstats | sed -n "s/^errorstat_$2:count=\([0-9]*\).*/\1/p" | tr -d '\r')
    echo "${n:-0}"
}
# refused CLI KIND N: whether that Redis has replied N errors of KIND.
refused() { [ "$(refusals "$1" "$2")" -ge "$3" ]; }
acl ACL SETUSER noblm on '>pw1' "~$NS:*" '+@all' '-blmpop' >/dev/null
# nokeys may create, own and follow executions, but not queue subtasks.
acl ACL SETUSER nokeys on '>pw2' "~$NS:x:*" "~$NS:execs" "~$NS:owners" \
    "~$NS:ev:*" "~$NS:wake:*" '+@all' >/dev/null

# A command the driver needs (BLMPOP, its event wait) is refused.
start=$(date +%s)
timeout -s KILL 30 "$MAPQ" run --redis "redis://noblm:pw1@127.0.0.1:$PORT" \
    "$TMP/two.yaml" >"$TMP/acl1.out" 2>"$TMP/acl1.err"
rc=$?
took=$(( $(date +%s) - start ))
check "ACL without BLMPOP: mapq run exits 3" "3" "$rc"
check "ACL without BLMPOP: within 20 s" "yes" "$([ "$took" -le 20 ] && echo yes || echo "no: ${took}s")"
check "ACL without BLMPOP: one error line, naming BLMPOP and the NOPERM" "1" \
    "$(grep -c "BLMPOP refused by Redis: NOPERM .*'blmpop' command.*grant it the command" "$TMP/acl1.err")"
check "ACL without BLMPOP: nothing else said about it" "1" \
    "$(grep -ci "noperm" "$TMP/acl1.err")"

# Keys the driver's functions write (queues, bodies) are refused.
start=$(date +%s)
timeout -s KILL 30 "$MAPQ" run --redis "redis://nokeys:pw2@127.0.0.1:$PORT" \
    "$TMP/two.yaml" >"$TMP/acl2.out" 2>"$TMP/acl2.err"
rc=$?
took=$(( $(date +%s) - start ))
check "ACL without the key pattern: mapq run exits 3" "3" "$rc"
check "ACL without the key pattern: within 20 s" "yes" "$([ "$took" -le 20 ] && echo yes || echo "no: ${took}s")"
check "ACL without the key pattern: one error, naming mapq1_push and '~$NS:*'" "1" \
    "$(grep -c "^mapq: execution [0-9a-f]*: FCALL mapq1_push refused by Redis: .*keys.*'~$NS:\*'" "$TMP/acl2.err")"
check "ACL without the key pattern: nothing else said about it" "1" \
    "$(grep -c "refused\|can't access\|NOPERM" "$TMP/acl2.err")"

# mapq scheduler, a daemon, logs the cause once, keeps trying at the cap
# delay, and drives the execution once the user gets the command.
id=$("$MAPQ" submit --redis "redis://127.0.0.1:$PORT" "$TMP/two.yaml")
MAPQ_REDIS_URL="redis://127.0.0.1:$PORT" start_agents 1
noperm0=$(refusals acl NOPERM)
"$MAPQ" scheduler --redis "redis://noblm:pw1@127.0.0.1:$PORT" \
    >"$TMP/sched.log" 2>&1 &
sched=$!
PIDS+=("$sched")
logged() { grep -q "BLMPOP failed, retrying with backoff: NOPERM" "$TMP/sched.log"; }
wait_for 10 logged
# The fault lasts while the scheduler is refused five more times: it must
# neither exit nor log again.
wait_for 20 refused acl NOPERM $((noperm0 + 5))
check "scheduler, ACL without BLMPOP: refused five times, still running" "yes yes" \
    "$(refused acl NOPERM $((noperm0 + 5)) && echo yes || echo no) $(kill -0 "$sched" 2>/dev/null && echo yes || echo no)"
check "scheduler, ACL without BLMPOP: the cause logged once" "1" \
    "$(grep -c "BLMPOP failed, retrying with backoff: NOPERM" "$TMP/sched.log")"
acl ACL SETUSER noblm '+blmpop' >/dev/null
succeeded() { [ "$(acl HGET "$NS:x:$id" state)" = succeeded ]; }
wait_for 20 succeeded
check "scheduler, BLMPOP granted: the execution succeeds" "succeeded" \
    "$(acl HGET "$NS:x:$id" state)"
check "scheduler, BLMPOP granted: it says the cause cleared" "1" \
    "$(grep -c "BLMPOP works again after .* (NOPERM)" "$TMP/sched.log")"
kill -TERM "$sched"
wait_for 10 exited "$sched"

# ---- Redis full while the driver pushes a large map --------------------
# 1,000 subtasks whose bodies carry a 2 KB string: about 2 MB of pushes,
# twice what maxmemory leaves, while the record (created first) is small.
# No agent runs until memory is freed, so only the driver meets the OOM.
python3 - "$TMP/big.json" <<'EOF'
import json, sys
json.dump({"xs": list(range(1000)), "pad": "p" * 2000}, open(sys.argv[1], "w"))
EOF
cat >"$TMP/big.yaml" <<'EOF'
name: big
inputs:
  xs: {type: "list[int]"}
  pad: {type: str}
tasks:
  id: {inputs: {x: int, pad: str}, output: int, command: [echo, "{x}"]}
nodes:
  n: {map: id, over: {x: $inputs.xs}, with: {pad: $inputs.pad}}
output: $n
EOF
redis_cli CONFIG SET maxmemory-policy noeviction >/dev/null
used=$(redis_cli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
redis_cli CONFIG SET maxmemory $((used + 1000000)) >/dev/null
oom0=$(refusals redis_cli OOM)
timeout -s KILL 90 "$MAPQ" run "$TMP/big.yaml" --inputs "$TMP/big.json" --json \
    >"$TMP/big.out" 2>"$TMP/big.err" &
run=$!
oom() { grep -q "FCALL mapq1_push failed, retrying with backoff: OOM" "$TMP/big.err"; }
wait_for 20 oom
check "OOM: the refused push is logged" "0" "$?"
# Redis stays full while the driver is refused five more times.
wait_for 20 refused redis_cli OOM $((oom0 + 5))
redis_cli CONFIG SET maxmemory 0 >/dev/null
start_agents 3
wait_for 60 exited "$run"
wait "$run"
check "OOM lifted: mapq run exits 0" "0" "$?"
check "OOM lifted: every output, in order" "ok" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ok = d["output"] == list(range(1000)) and d["nodes"][0]["name"] == "n" and d["nodes"][0]["counts"]["succeeded"] == 1000
print("ok" if ok else "bad: %s" % json.dumps(d)[:300])' "$TMP/big.out" 2>&1)"
n_oom=$(grep -c "failed, retrying with backoff: OOM" "$TMP/big.err")
check "OOM: each path logs the cause once (push, record, renewal, reap, wake: <= 6 lines)" \
    "yes" "$([ "$n_oom" -ge 1 ] && [ "$n_oom" -le 6 ] && echo yes || echo "no: $n_oom")"
check "OOM: the push says it works again" "1" \
    "$(grep -c "FCALL mapq1_push works again after .* (OOM)" "$TMP/big.err")"
check "OOM: the execution is recorded succeeded" "succeeded" \
    "$(redis_cli HGET "$NS:x:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/big.out")" state)"

# ---- Redis restarted without persistence ---------------------------------
cat >"$TMP/slow.yaml" <<'EOF'
name: slow
inputs:
  xs: {type: "list[int]", default: [1, 2]}
tasks:
  nap: {inputs: {x: int}, output: int, command: [sh, -c, 'sleep 30; echo 1']}
nodes:
  n: {map: nap, over: {x: $inputs.xs}}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/slow.yaml" >"$TMP/lost.out" 2>"$TMP/lost.err" &
run=$!
running() { [ "$(lease_count "$NS")" -ge 1 ]; }
wait_for 20 running
id=$(sed -n 's/^mapq: execution \([0-9a-f]*\)$/\1/p' "$TMP/lost.err")
kill -TERM "$REDIS_PID"
wait "$REDIS_PID"
redis-server --port 0 --unixsocket "$TMP/redis.sock" --save '' \
    --appendonly no --dir "$TMP" >>"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
wait_for 5 redis_cli PING
wait_for 30 exited "$run"
wait "$run"
check "restart without persistence: mapq run exits 3" "3" "$?"
check "restart without persistence: names the execution and says Redis lost it" "1" \
    "$(grep -c "^mapq: execution $id: Redis no longer has this execution's record: its data was lost (a Redis restart without persistence" "$TMP/lost.err")"
finish
