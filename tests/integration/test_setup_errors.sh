#!/usr/bin/env bash
# A connection whose setup Redis refuses (no password, a wrong password, an
# ACL user without a permission, a server where FUNCTION is unavailable)
# gives one clean line naming the URL (without the password) and Redis's
# reason: the CLI exits 3, an agent says it once and keeps trying. Waits
# are bounded polls.
. "$(dirname "$0")/harness.sh"

# A password-protected redis-server on a free TCP port of the loopback.
# start_tcp_redis NAME CONF [redis-server args]: PORT_<NAME> gets the port.
# Unix URLs take no password, hence TCP; another process may take the free
# port first, so try again.
start_tcp_redis() {
    local name=$1 conf=$2 port try
    shift 2
    for try in 1 2 3 4 5; do
        port=$(free_port)
        redis-server "$conf" --port "$port" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$TMP" "$@" >"$TMP/$name.log" 2>&1 &
        PIDS+=($!)
        if wait_for 5 redis-cli -p "$port" -a secretpw --no-auth-warning PING; then
            eval "PORT_$name=$port"
            return 0
        fi
    done
    echo "redis-server $name did not start"; cat "$TMP/$name.log"; exit 1
}

: >"$TMP/plain.conf"
start_tcp_redis pw "$TMP/plain.conf" --requirepass secretpw
P=$PORT_pw
rcli() { redis-cli -p "$P" -a secretpw --no-auth-warning "$@"; }
rcli ACL SETUSER nofunc on '>pw' '~*' '&*' +@all -function >/dev/null
rcli ACL SETUSER nokeys on '>pw' '~elsewhere:*' '&*' +@all >/dev/null

# cli NAME URL: mapq status of an unknown execution through URL; the exit
# status in RC, stderr in $TMP/NAME.err.
cli() {
    timeout -s KILL 20 "$MAPQ" status 0123456789abcdef0123456789abcdef \
        --redis "$2" >/dev/null 2>"$TMP/$1.err"
    RC=$?
}
lines() { wc -l <"$TMP/$1.err" | tr -d ' '; }
has() { grep -c -F -- "$2" "$TMP/$1.err"; }

cli noauth "redis://127.0.0.1:$P"
check "NOAUTH: exit 3" "3" "$RC"
check "NOAUTH: one line" "1" "$(lines noauth)"
check "NOAUTH: the reason, not a protocol error" "1" "$(has noauth 'NOAUTH Authentication required')"
check "NOAUTH: names the URL" "1" "$(has noauth "redis://127.0.0.1:$P/0")"
check "NOAUTH: no bulk length complaint" "0" "$(has noauth 'bulk length')"

cli wrongpass "redis://:Zq9wrong@127.0.0.1:$P"
check "WRONGPASS: exit 3" "3" "$RC"
check "WRONGPASS: one line" "1" "$(lines wrongpass)"
check "WRONGPASS: the reason" "1" "$(has wrongpass 'AUTH: WRONGPASS')"
check "WRONGPASS: the password is not shown" "0" "$(has wrongpass Zq9wrong)"

cli noperm "redis://nofunc:pw@127.0.0.1:$P"
check "NOPERM: exit 3" "3" "$RC"
check "NOPERM: one line" "1" "$(lines noperm)"
check "NOPERM: names the refused command" "1" "$(has noperm "FUNCTION LOAD: NOPERM this user has no permissions to run the 'function|load' command")"
check "NOPERM: names the URL" "1" "$(has noperm "redis 'redis://127.0.0.1:$P/0'")"

# An ACL user without access to mapq's keys gets through setup; its first
# read is refused.
cli nokeys "redis://nokeys:pw@127.0.0.1:$P"
check "NOPERM on keys: exit 3" "3" "$RC"
check "NOPERM on keys: one line" "1" "$(lines nokeys)"
check "NOPERM on keys: Redis's reason" "1" "$(has nokeys 'NOPERM this user has no permissions to access one of the keys')"
check "NOPERM on keys: names the URL" "1" "$(has nokeys "redis 'redis://127.0.0.1:$P/0'")"
check "NOPERM on keys: not taken for a missing execution" "0" "$(has nokeys 'no execution')"

# Once the library is in Redis (loaded above), a user without FUNCTION gets
# in: only a missing or older library needs FUNCTION LOAD.
cli funcless "redis://nofunc:pw@127.0.0.1:$P"
check "a user without FUNCTION, library loaded: gets in (no such execution: 1)" \
    "1 0" "$RC $(has funcless 'cannot use redis')"

# A server where FUNCTION does not exist: the library cannot be loaded.
printf 'rename-command FUNCTION ""\n' >"$TMP/nofunction.conf"
start_tcp_redis nf "$TMP/nofunction.conf" --requirepass secretpw
cli noload "redis://:secretpw@127.0.0.1:$PORT_nf"
check "function load refused: exit 3" "3" "$RC"
check "function load refused: one line" "1" "$(lines noload)"
check "function load refused: the reason" "1" "$(has noload "FUNCTION LOAD: ERR unknown command 'FUNCTION'")"
check "function load refused: without Redis's echo of the library" "0" "$(grep -c -e 'args beginning' -e '#!lua' "$TMP/noload.err")"
check "function load refused: the password is not shown" "0" "$(has noload secretpw)"

# mapq run, too, says it on one line and exits 3.
printf 'name: w\ntasks: {t: {command: [echo, "1"], output: int}}\nnodes: {n: {task: t}}\noutput: $n\n' >"$TMP/w.yaml"
timeout -s KILL 20 "$MAPQ" run "$TMP/w.yaml" --redis "redis://:Zq9wrong@127.0.0.1:$P" \
    >/dev/null 2>"$TMP/run.err"
check "mapq run, WRONGPASS: exit 3" "3" "$?"
check "mapq run, WRONGPASS: one line naming URL and reason" "1" \
    "$(grep -c -F "redis 'redis://127.0.0.1:$P/0': AUTH: WRONGPASS" "$TMP/run.err")"
check "mapq run, WRONGPASS: nothing else" "1" "$(lines run)"
# An ACL user without the namespace's keys: the command and key it was
# refused, and what to grant.
timeout -s KILL 20 "$MAPQ" run "$TMP/w.yaml" --redis "redis://nokeys:pw@127.0.0.1:$P" \
    >/dev/null 2>"$TMP/runkeys.err"
check "mapq run, NOPERM on keys: exit 3" "3" "$?"
check "mapq run, NOPERM on keys: one line" "1" "$(lines runkeys)"
check "mapq run, NOPERM on keys: names the command, the key and the grant" "1" \
    "$(grep -c "HSET $MAPQ_NAMESPACE:x:[0-9a-f]*: NOPERM .*keys '$MAPQ_NAMESPACE:\*'" "$TMP/runkeys.err")"

# ---- agents: the cause once, not once per reconnect --------------------------
# agent NAME URL: an agent whose log is $TMP/NAME.log.
agent() {
    "$AGENT" --name "$1" --slots 1 --redis "$2" >"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
}
said() { grep -q -F -- "$2" "$TMP/$1.log"; }
# connections PORT: how many connections that redis-server has accepted.
connections() {
    redis-cli -p "$1" -a secretpw --no-auth-warning INFO stats |
        sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p'
}
# Without the library, a user who may not load it cannot work.
rcli FUNCTION DELETE mapq1 >/dev/null
base=$(connections "$P")
base_nf=$(connections "$PORT_nf")
agent a-wrongpass "redis://:Zq9wrong@127.0.0.1:$P"
agent a-noauth "redis://127.0.0.1:$P"
agent a-noperm "redis://nofunc:pw@127.0.0.1:$P"
agent a-noload "redis://:secretpw@127.0.0.1:$PORT_nf"
agent a-change "redis://:Zq9wrong@127.0.0.1:$PORT_nf"
for a in "wrongpass:AUTH: WRONGPASS" "noauth:PING: NOAUTH" \
    "noperm:FUNCTION LOAD: NOPERM" "noload:FUNCTION LOAD: ERR unknown command 'FUNCTION'"; do
    check "agent ${a%%:*}: says why within 10 s" "0" "$(wait_for 10 said "a-${a%%:*}" "${a#*:}"; echo $?)"
done
# Redis counts the refused attempts: wait until each agent has tried many
# times (three connections each, about ten attempts each), so that a cause
# logged per attempt would show.
more_than() { [ "$(connections "$1")" -ge "$2" ]; }
wait_for 30 more_than "$P" $((base + 90))
wait_for 30 more_than "$PORT_nf" $((base_nf + 60))
check "agents tried again and again" "1" \
    "$([ "$(connections "$P")" -ge $((base + 90)) ] && [ "$(connections "$PORT_nf")" -ge $((base_nf + 60)) ] && echo 1)"
for a in wrongpass:WRONGPASS noauth:NOAUTH noperm:NOPERM "noload:unknown command" change:WRONGPASS; do
    name=${a%%:*}
    check "agent $name: says why, once" "1" "$(grep -c -F "${a#*:}" "$TMP/a-$name.log")"
    check "agent $name: one line for it" "1" "$(grep -c 'cannot use redis' "$TMP/a-$name.log")"
    check "agent $name: the password is not shown" "0" "$(grep -c -e Zq9wrong -e secretpw "$TMP/a-$name.log")"
done
check "agent names its redis, without the password" "1" \
    "$(grep -c -F "redis redis://127.0.0.1:$P/0" "$TMP/a-wrongpass.log")"
# The same setup command refused for another reason is a new cause: said
# once more.
redis-cli -p "$PORT_nf" -a secretpw --no-auth-warning CONFIG SET requirepass "" >/dev/null
check "agent change: says the new cause within 10 s" "0" \
    "$(wait_for 10 said a-change "AUTH: ERR AUTH <password> called without any password configured"; echo $?)"
check "agent change: one line per cause" "2" "$(grep -c 'cannot use redis' "$TMP/a-change.log")"
# Fixing the password in Redis lets the waiting agent in, and it says so.
rcli CONFIG SET requirepass Zq9wrong >/dev/null
connected() { grep -q 'connected to redis' "$TMP/a-wrongpass.log"; }
# Its backoff is at most 2 s, but on a loaded CI machine its three
# connections' setups may take several times that.
wait_for 30 connected
check "agent wrongpass: connects once Redis takes its password" "1" "$(grep -c 'connected to redis' "$TMP/a-wrongpass.log")"
check "agent wrongpass: says the fault cleared" "1" "$(grep -c 'accepts the connection again' "$TMP/a-wrongpass.log")"
finish
