#!/usr/bin/env bash
# Redis loses an execution mid-run (restarted without persistence; here
# its data is flushed): mapq run says that Redis no longer has the
# execution and exits 3, an infrastructure failure, instead of "it has
# ended or no longer exists". Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis --own # FLUSHALL
if [ -n "${MAPQ_TEST_REDIS_URL:-}" ]; then
    echo "# skipped: flushing a shared Redis would touch other data"
    finish
fi
start_agents 1

cat >"$TMP/slow.yaml" <<'EOF'
name: slow
inputs:
  xs: {type: "list[int]", default: [1, 2, 3, 4]}
tasks:
  nap: {inputs: {x: int}, output: int, command: [sh, -c, 'sleep 30; echo 1']}
nodes:
  n: {map: nap, over: {x: $inputs.xs}}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/slow.yaml" >"$TMP/run.out" 2>"$TMP/run.err" &
run_pid=$!
running() { [ "$(lease_count)" -ge 1 ]; }
wait_for 20 running
redis_cli FLUSHALL >/dev/null
wait_for 20 exited "$run_pid"
wait "$run_pid"
check "lost record: mapq run exits 3" "3" "$?"
check "lost record: says Redis no longer has the execution" "1" \
    "$(grep -c "Redis no longer has this execution's record: its data was lost" "$TMP/run.err")"
finish
