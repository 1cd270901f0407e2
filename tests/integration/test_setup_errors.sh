#!/usr/bin/env bash
# A connection whose setup Redis refuses (no password, a wrong password, an
# ACL user without a permission, a server where FUNCTION is unavailable)
# gives one clean line naming the URL (without the password) and Redis's
# reason: the CLI exits 3, an agent says it once and keeps trying. Waits
# are bounded polls.
. "$(dirname "$0")/harness.sh"

# A password-protected redis-server on a free TCP port of the loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# start_tcp_redis NAME CONF [redis-server args]: PORT_<NAME> gets the port.
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

cli wrongpass "redis://:Zq9wrong@127.0.0.1:$P"
check "WRONGPASS: exit 3" "3" "$RC"
check "WRONGPASS: one line" "1" "$(lines wrongpass)"
check "WRONGPASS: the reason" "1" "$(has wrongpass 'AUTH: WRONGPASS')"
check "WRONGPASS: the password is not shown" "0" "$(has wrongpass Zq9wrong)"

cli noperm "redis://nofunc:pw@127.0.0.1:$P"
check "NOPERM: exit 3" "3" "$RC"
check "NOPERM: one line" "1" "$(lines noperm)"
check "NOPERM: names the refused command" "1" "$(has noperm "NOPERM this user has no permissions to run the 'function|load' command")"

cli nokeys "redis://nokeys:pw@127.0.0.1:$P"
check "NOPERM on keys: exit 3" "3" "$RC"
check "NOPERM on keys: one line" "1" "$(lines nokeys)"
check "NOPERM on keys: Redis's reason" "1" "$(has nokeys 'NOPERM')"

# A server where FUNCTION does not exist: the library cannot be loaded.
printf 'rename-command FUNCTION ""\n' >"$TMP/nofunction.conf"
start_tcp_redis nf "$TMP/nofunction.conf" --requirepass secretpw
cli noload "redis://:secretpw@127.0.0.1:$PORT_nf"
check "function load refused: exit 3" "3" "$RC"
check "function load refused: one line" "1" "$(lines noload)"
check "function load refused: the reason" "1" "$(has noload "FUNCTION: ERR unknown command 'FUNCTION'")"

# ---- agents: the cause once, not once per reconnect --------------------------
# agent NAME URL: an agent whose log is $TMP/NAME.log.
agent() {
    "$AGENT" --name "$1" --slots 1 --redis "$2" >"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
}
reconnects() { [ "$(grep -c 'reconnect\|connect' "$TMP/$1.log")" -ge 0 ] && \
    [ "$(grep -c -F "$2" "$TMP/$1.log")" -ge 1 ]; }
agent a-wrongpass "redis://:Zq9wrong@127.0.0.1:$P"
agent a-noauth "redis://127.0.0.1:$P"
agent a-noperm "redis://nofunc:pw@127.0.0.1:$P"
wait_for 10 reconnects a-wrongpass "WRONGPASS"
wait_for 10 reconnects a-noauth "NOAUTH"
wait_for 10 reconnects a-noperm "NOPERM"
# Redis counts the refused attempts: wait until it has seen several, so
# that a cause logged per attempt would show.
refused() { [ "$(rcli INFO stats | sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p' | tr -d '\r')" -ge "$1" ]; }
wait_for 20 refused 40
for a in wrongpass noauth noperm; do
    code=$(echo "$a" | tr a-z A-Z)
    check "agent $a: says why, once" "1" "$(grep -c -F "$code" "$TMP/a-$a.log")"
    check "agent $a: the password is not shown" "0" "$(grep -c -F Zq9wrong "$TMP/a-$a.log")"
done
# Fixing the password in Redis lets the waiting agent in, and it says so.
rcli CONFIG SET requirepass Zq9wrong >/dev/null
connected() { grep -q 'connected to redis' "$TMP/a-wrongpass.log"; }
wait_for 10 connected
check "agent wrongpass: connects once Redis takes its password" "1" "$(grep -c 'connected to redis' "$TMP/a-wrongpass.log")"
finish
