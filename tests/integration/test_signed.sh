#!/usr/bin/env bash
# Signed subtasks (SPEC section 11): agents with --secret-file run only
# task specs and subtasks a scheduler signed with the same secret.
#   - signed: mapq run --secret-file works end to end;
#   - unsigned: a run without the secret fails, each subtask once (no
#     retry, though the task asks for 2) with a security error, and its
#     command never runs;
#   - forged by hand in Redis, then driven by a scheduler that has the
#     secret (so its bodies are signed): a task spec replaced by an
#     unsigned one, one altered under a good signature, and one signed for
#     another execution (replayed) all fail with a security error, and the
#     forged command (it would create a marker file) never runs.
# Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
P="$MAPQ_NAMESPACE"
head -c 32 /dev/urandom | base64 >"$TMP/secret"
mkdir "$TMP/marks"
export MARKS="$TMP/marks" # where commands leave their marker files
start_agents 1 --secret-file "$TMP/secret"

# wf NAME CMD: a map of 3 whose command is CMD, with 2 retries.
wf() {
    cat <<EOF
name: $1
inputs:
  xs: {type: "list[int]", default: [1, 2, 3]}
tasks:
  t:
    inputs: {x: int}
    output: int
    retries: 2
    command: [sh, -c, '$2']
nodes:
  m: {map: t, over: {x: \$inputs.xs}}
output: \$m
EOF
}
wf good 'touch "$MARKS/ran-$MAPQ_EXECUTION-$MAPQ_IN_x"; echo $((MAPQ_IN_x * MAPQ_IN_x))' \
    >"$TMP/good.yaml"
wf evil 'touch "$MARKS/evil-$MAPQ_EXECUTION"; echo 0' >"$TMP/evil.yaml"

# state EXEC: its state, from mapq status --json.
state() {
    "$MAPQ" status "$1" --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])'
}
ended() { case "$(state "$1")" in succeeded | failed | cancelled) return 0 ;; esac; return 1; }

# ---- signed: runs -------------------------------------------------------
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/good.yaml" --secret-file "$TMP/secret" 2>"$TMP/good.err")
check "signed: the run succeeds" "0 [1,4,9]" "$? $(echo "$out" | tr -d ' \n')"
x=$(exec_of "$TMP/good.err")
check "signed: each command ran once" "3" "$(ls "$MARKS" | grep -c "^ran-$x-")"

# ---- unsigned: refused, never retried, never run ------------------------
timeout -s KILL 60 "$MAPQ" run "$TMP/good.yaml" >/dev/null 2>"$TMP/plain.err"
check "unsigned: the run fails (exit 1)" "1" "$?"
x=$(exec_of "$TMP/plain.err")
check "unsigned: the error names the security failure" "1" \
    "$(grep -c "failed: .*security: the body is not signed" "$TMP/plain.err")"
check "unsigned: no command ran" "0" "$(ls "$MARKS" | grep -c "^ran-$x-")"
attempts=$("$MAPQ" logs "$x" m --json | python3 -c '
import json, sys
a = json.load(sys.stdin)
print(len(a), sum("security" in e.get("error", "") for e in a))')
check "unsigned: one attempt per subtask, each a security error (not retried)" \
    "3 3" "$attempts"
check "unsigned: the agent logged why" "1" \
    "$(grep -c "set aside: security: the body is not signed" "$TMP/agents.log" | awk '{print ($1 >= 3)}')"

# ---- forged task specs, driven by a scheduler with the secret -----------
# submit FILE [--secret-file F]: an execution, not driven yet.
submit() {
    "$MAPQ" submit "$@" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["execution"])'
}
evil=$(submit "$TMP/evil.yaml")                               # unsigned
signed_evil=$(submit "$TMP/evil.yaml" --secret-file "$TMP/secret") # signed for itself
l1=$(submit "$TMP/good.yaml" --secret-file "$TMP/secret")
l2=$(submit "$TMP/good.yaml" --secret-file "$TMP/secret")
l3=$(submit "$TMP/good.yaml" --secret-file "$TMP/secret")
for e in "$evil" "$signed_evil"; do "$MAPQ" cancel "$e" >/dev/null; done
# l1: the unsigned evil spec; l2: the evil spec under l2's own signature;
# l3: the evil spec signed for another execution.
redis_cli EVAL "redis.call('HSET', KEYS[1], 't:0', redis.call('HGET', KEYS[2], 't:0'))" \
    2 "$P:x:$l1" "$P:x:$evil" >/dev/null
redis_cli EVAL "local good = redis.call('HGET', KEYS[1], 't:0')
    redis.call('HSET', KEYS[1], 't:0', string.sub(good, 1, 34) .. redis.call('HGET', KEYS[2], 't:0'))" \
    2 "$P:x:$l2" "$P:x:$evil" >/dev/null
redis_cli EVAL "redis.call('HSET', KEYS[1], 't:0', redis.call('HGET', KEYS[2], 't:0'))" \
    2 "$P:x:$l3" "$P:x:$signed_evil" >/dev/null
"$MAPQ" scheduler --secret-file "$TMP/secret" >>"$TMP/scheduler.log" 2>&1 &
PIDS+=($!)
all_ended() { ended "$l1" && ended "$l2" && ended "$l3"; }
wait_for 90 all_ended ||
    sed 's/^/# scheduler: /' "$TMP/scheduler.log" | tail -20 # why not
check "forged: unsigned, altered and replayed specs all fail" \
    "failed failed failed" "$(state "$l1") $(state "$l2") $(state "$l3")"
check "forged: the unsigned spec is refused as such" "1" \
    "$("$MAPQ" status "$l1" --json | grep -c 'security: the spec is not signed')"
for e in "$l2" "$l3"; do
    check "forged: $( [ "$e" = "$l2" ] && echo altered || echo replayed) spec: its signature does not match" "1" \
        "$("$MAPQ" status "$e" --json | grep -c "security: the spec's signature does not match")"
done
check "forged: no forged command ever ran (no evil-* marker)" "0" \
    "$(ls "$MARKS" | grep -c '^evil-')"
check "forged: nor the legitimate one of those executions" "0" \
    "$(ls "$MARKS" | grep -c -E "^ran-($l1|$l2|$l3)-")"
finish
