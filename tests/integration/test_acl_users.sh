#!/usr/bin/env bash
# Least-privilege Redis users (SPEC section 11), with the ACL lines
# docs/OPERATIONS.md ("Redis users") gives: the operator loads the library
# (mapq setup, as the default user); an agent user and a scheduler user,
# each limited to its namespace and without FUNCTION or dangerous
# commands, run a workflow and mapq's everyday commands; the users of
# another namespace (a second tenant) run theirs beside it and can neither
# replace the library, nor touch the first tenant's keys, nor reach them
# through a function; a user that may not write records gets one clear
# error and exit 3. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis --own
A=tenanta$$
B=tenantb$$
SOCK="$TMP/redis.sock"

# acl_user NAME PASSWORD NS: the documented user for namespace NS.
acl_user() {
    redis_cli ACL SETUSER "$1" reset on ">$2" "~$3:*" resetchannels \
        -@all +@read +@write +@scripting +@connection +@blocking +time \
        -@dangerous -function >/dev/null
}
url() { echo "unix://$SOCK?db=0"; }
unset MAPQ_REDIS_URL # each command below names its user

out=$("$MAPQ" setup --redis "$(url)" --json 2>&1)
check "mapq setup (the operator) loads the library" "1" \
    "$(echo "$out" | grep -c '"action":"kept"\|"action":"replaced"')"
for t in "$A" "$B"; do
    acl_user "$t-agent" "pw-$t-agent" "$t"
    acl_user "$t-sched" "pw-$t-sched" "$t"
done
# A user needs a redis:// URL (unix:// takes none): a loopback port too.
PORT=$(free_port)
redis_cli CONFIG SET bind 127.0.0.1 >/dev/null
redis_cli CONFIG SET port "$PORT" >/dev/null
# tcp USER PASSWORD: the URL of that user.
tcp() { echo "redis://$1:$2@127.0.0.1:$PORT/0"; }

cat >"$TMP/sq.yaml" <<'EOF'
name: sq
inputs:
  xs: {type: "list[int]", default: [1, 2, 3]}
tasks:
  t: {inputs: {x: int}, output: int, command: [sh, -c, 'echo $((MAPQ_IN_x * MAPQ_IN_x))']}
nodes:
  m: {map: t, over: {x: $inputs.xs}}
output: $m
EOF

for t in "$A" "$B"; do
    "$AGENT" --redis "$(tcp "$t-agent" "pw-$t-agent")" --namespace "$t" \
        --name "it-$t" --slots 2 >>"$TMP/agents.log" 2>&1 &
    PIDS+=($!)
done
for t in "$A" "$B"; do
    out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/sq.yaml" --namespace "$t" \
        --redis "$(tcp "$t-sched" "pw-$t-sched")" 2>"$TMP/run-$t.err")
    check "$t: a run as the scheduler user, agents as the agent user" \
        "0 [1,4,9]" "$? $(echo "$out" | tr -d ' \n')"
    x=$(exec_of "$TMP/run-$t.err")
    for cmd in "status $x" "logs $x m" "agents" "ls" "result $x"; do
        # shellcheck disable=SC2086
        "$MAPQ" $cmd --namespace "$t" --redis "$(tcp "$t-sched" "pw-$t-sched")" \
            >/dev/null 2>"$TMP/cmd.err"
        check "$t: mapq $(echo "$cmd" | cut -d' ' -f1) as the scheduler user" \
            "0" "$(echo "$? $(head -c 200 "$TMP/cmd.err")" | sed 's/ *$//')"
    done
done

# The second tenant's users cannot reach the first tenant's anything.
as_b() { redis-cli -s "$SOCK" --user "$B-sched" --pass "pw-$B-sched" --no-auth-warning "$@" 2>&1; }
check "tenant B cannot replace the library" "1" \
    "$(as_b FUNCTION LOAD REPLACE "$(cat "$SRC/common/mapq_functions.lua")" | grep -c NOPERM)"
check "tenant B cannot write tenant A's keys" "1" \
    "$(as_b HSET "$A:x:$x" state cancelled | grep -c NOPERM)"
xa=$(exec_of "$TMP/run-$A.err")
check "tenant B cannot reach them through a function either" "1" \
    "$(as_b FCALL mapq1_cancel 0 "$A" "$xa" | grep -c "can't access at least one of the keys")"
check "tenant A's execution is untouched" "succeeded" \
    "$("$MAPQ" status "$xa" --namespace "$A" --redis "$(tcp "$A-sched" "pw-$A-sched")" --json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"

# A user that may read but not write records.
redis_cli ACL SETUSER readonly on '>pw-ro' "~$A:*" -@all +@read +@scripting \
    +@connection +time -@dangerous -function >/dev/null
timeout -s KILL 30 "$MAPQ" run "$TMP/sq.yaml" --namespace "$A" \
    --redis "$(tcp readonly pw-ro)" >/dev/null 2>"$TMP/ro.err"
check "a user without write access: exit 3" "3" "$?"
check "  with one clear line naming the refusal" "1" \
    "$(grep -c 'NOPERM' "$TMP/ro.err" | awk '{print ($1 >= 1)}')"
finish
