#!/usr/bin/env bash
# An idle agent and a doorbell lost with a crashed agent: a redis-cli
# takes the push's ring and exits, as an agent killed between its BLPOP and
# its claim would. The idle agent never hears the ring; its doorbell wait
# times out (15 s) and it claims with its next heartbeat (5 s at most), so
# the subtask still runs, within that bound, and only once. Real processes
# on a private Redis (the test counts blocked clients); waits are bounded
# polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis --own

cat >"$TMP/one.yaml" <<'EOF'
name: one
inputs:
  xs: {type: "list[int]"}
tasks:
  t:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'echo $((MAPQ_IN_x * 3))']
nodes:
  n: {map: t, over: {x: $inputs.xs}}
output: $n
EOF

blocked() { redis_cli INFO clients | tr -d '\r' | sed -n 's/^blocked_clients://p'; }
blocked_at_least() { [ "$(blocked)" -ge "$1" ]; }

# The stand-in blocks on the command doorbell first, so Redis serves it
# before the agent (BLPOP serves its waiters in order).
redis_cli BLPOP "$P:bell:default:nc" 120 >"$TMP/thief.out" 2>&1 &
thief=$!
PIDS+=($thief)
wait_for 10 blocked_at_least 1 ||
    echo "# the stand-in did not block: $(cat "$TMP/thief.out")"
"$AGENT" --name idle-1 --slots 1 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
# Both of the agent's doorbell waits (commands, plugins) are in place.
check "the idle agent waits on its doorbells" "yes" \
    "$(wait_for 10 blocked_at_least 3 && echo yes || echo "no: $(blocked) blocked")"

t0=$(date +%s)
timeout -s KILL 90 "$MAPQ" run "$TMP/one.yaml" --input 'xs=[7]' \
    >"$TMP/run.out" 2>"$TMP/run.err"
rc=$?
elapsed=$(($(date +%s) - t0))
wait_for 5 exited "$thief"
check "the ring went to the stand-in, which left" "$P:bell:default:nc 1" \
    "$(tr '\n' ' ' <"$TMP/thief.out" | sed 's/ $//')"
check "the run still ends, with its result" "0 [21]" \
    "$rc $(tr -d ' \n' <"$TMP/run.out")"
# One doorbell wait (15 s) and one idle heartbeat (5 s), with room for a
# slow machine; without the safety net it would wait for ever.
check "the lost ring delayed it by at most a wait and a beat (${elapsed} s)" \
    "yes" "$([ "$elapsed" -le 30 ] && echo yes || echo no)"
exec_id=$(exec_of "$TMP/run.err")
check "the subtask ran once, and succeeded" "1 succeeded" \
    "$("$MAPQ" logs "$exec_id" n --json 2>/dev/null | python3 -c '
import json, sys
a = json.load(sys.stdin)
print(len(a), " ".join(e.get("phase", "?") for e in a))')"
finish
