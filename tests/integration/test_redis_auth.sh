#!/usr/bin/env bash
# Where the Redis password may come from (SPEC section 11), against a real
# redis-server with a password holding '@', '/' and ':':
#   - in the URL, %-escaped: mapq and mapq-agent connect;
#   - --redis-password-file: mapq and mapq-agent connect with a URL that
#     has no password (so none is in argv), and it replaces a wrong one;
#   - MAPQ_REDIS_PASSWORD: fills a URL that has none; a task never sees it;
#   - a wrong password (file or variable): exit 3 saying so, the password
#     not shown; a missing file: exit 2;
#   - rediss:// is answered with the TLS recipe, exit 2;
#   - an IPv6 literal reaches a Redis on [::1] (where the host has IPv6).
# Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

SECRET='p@ss/w:rd-Zk7long'
ESCAPED='p%40ss%2Fw%3Ard-Zk7long'
started=0
for try in 1 2 3 4 5; do
    PORT=$(free_port)
    redis-server --port "$PORT" --bind 127.0.0.1 --requirepass "$SECRET" \
        --save '' --appendonly no --dir "$TMP" >"$TMP/redis-pw.log" 2>&1 &
    PIDS+=($!)
    if wait_for 5 redis-cli -p "$PORT" -a "$SECRET" --no-auth-warning PING; then
        started=1
        break
    fi
done
[ "$started" = 1 ] || { echo "redis-server did not start"; cat "$TMP/redis-pw.log"; exit 1; }
unset MAPQ_REDIS_URL
BARE="redis://127.0.0.1:$PORT"
printf '%s\n' "$SECRET" >"$TMP/pw"
printf 'wrong-password\n' >"$TMP/badpw"

# ls ARGS...: mapq ls's exit status, stderr kept in $TMP/ls.err.
ls_rc() { "$MAPQ" ls "$@" >/dev/null 2>"$TMP/ls.err"; echo $?; }

check "a %-escaped password in the URL" "0" \
    "$(ls_rc --redis "redis://:$ESCAPED@127.0.0.1:$PORT")"
check "--redis-password-file with a URL without one" "0" \
    "$(ls_rc --redis "$BARE" --redis-password-file "$TMP/pw")"
check "--redis-password-file replaces the URL's" "0" \
    "$(ls_rc --redis "redis://:nope@127.0.0.1:$PORT" --redis-password-file "$TMP/pw")"
check "MAPQ_REDIS_PASSWORD fills a URL without one" "0" \
    "$(MAPQ_REDIS_PASSWORD="$SECRET" ls_rc --redis "$BARE")"
check "a wrong password file: exit 3" "3" \
    "$(ls_rc --redis "$BARE" --redis-password-file "$TMP/badpw")"
check "  saying why, without the password" "1 0" \
    "$(grep -c -i 'auth\|password' "$TMP/ls.err") $(grep -c 'wrong-password' "$TMP/ls.err")"
check "a missing password file: exit 2" "2" \
    "$(ls_rc --redis "$BARE" --redis-password-file "$TMP/none")"
check "  naming it" "1" "$(grep -c "password file '$TMP/none'" "$TMP/ls.err")"
check "rediss:// is answered with the TLS recipe: exit 2" "2" \
    "$(ls_rc --redis "rediss://127.0.0.1:$PORT")"
check "  one line pointing at stunnel" "1" "$(grep -c 'stunnel' "$TMP/ls.err")"

# An agent with the file, and one with the variable; a task prints what it
# sees of MAPQ_REDIS_PASSWORD.
"$AGENT" --redis "$BARE" --redis-password-file "$TMP/pw" --name it-file \
    --slots 1 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
MAPQ_REDIS_PASSWORD="$SECRET" "$AGENT" --redis "$BARE" --name it-env \
    --slots 1 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
two_agents() { [ "$("$MAPQ" agents --redis "$BARE" --redis-password-file "$TMP/pw" 2>/dev/null | grep -c 'it-')" = 2 ]; }
wait_for 20 two_agents
check "agents connect with --redis-password-file and MAPQ_REDIS_PASSWORD" "0" "$?"
cat >"$TMP/env.yaml" <<'EOF'
name: env
inputs:
  xs: {type: "list[int]", default: [1, 2, 3, 4]}
tasks:
  t: {inputs: {x: int}, output: str, command: [sh, -c, 'printf "\"%s\"" "${MAPQ_REDIS_PASSWORD:-none}"']}
nodes:
  m: {map: t, over: {x: $inputs.xs}}
output: $m
EOF
out=$(MAPQ_REDIS_PASSWORD="$SECRET" timeout -s KILL 60 "$MAPQ" run "$TMP/env.yaml" \
    --redis "$BARE" 2>"$TMP/run.err")
check "a run through both agents succeeds" "0" "$?"
check "no task saw MAPQ_REDIS_PASSWORD" '["none","none","none","none"]' \
    "$(echo "$out" | tr -d ' \n')"
"$AGENT" --redis "$BARE" --redis-password-file "$TMP/none" >"$TMP/agent-bad.out" 2>&1
check "an agent with a missing password file: exit 2" "2" "$?"

# IPv6, where the host has it.
P6=$(free_port)
redis-server --port "$P6" --bind ::1 --save '' --appendonly no --dir "$TMP" \
    >"$TMP/redis6.log" 2>&1 &
PIDS+=($!)
if wait_for 5 redis-cli -h ::1 -p "$P6" PING; then
    check "an IPv6 literal: redis://[::1]:PORT" "0" "$(ls_rc --redis "redis://[::1]:$P6/0")"
else
    echo "ok - an IPv6 literal # SKIP redis-server cannot listen on [::1] here"
fi
finish
